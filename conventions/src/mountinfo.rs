//! `/proc/PID/mountinfo` parsed once for every tool: mount points, types, propagation, options.

use std::path::Path;

/// One line of mountinfo (see proc(5)), its fields unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Field 1: mount id.
    pub id: u32,
    /// Field 2: parent mount id.
    pub parent: u32,
    /// Field 3: `major:minor` of the filesystem.
    pub dev: String,
    /// Field 4: the root of the mount inside its filesystem.
    pub root: String,
    /// Field 5: the mount point, relative to the reader's root.
    pub mount_point: String,
    /// Field 6: per-mount options (`rw,nosuid,...`).
    pub options: String,
    /// The optional fields (`shared:N`, `master:N`, `propagate_from:N`, `unbindable`).
    pub optional: Vec<String>,
    /// The filesystem type (`proc`, `cgroup2`, `rootfs`, ...).
    pub fstype: String,
    /// The mount source.
    pub source: String,
    /// Per-superblock options (for v1 cgroups, the controllers).
    pub super_options: String,
}

impl Mount {
    /// Whether the mount is in a shared peer group.
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }

    /// Whether the mount receives propagation from a master (slave).
    pub fn is_slave(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("master:"))
    }

    /// Whether the per-mount options hold `opt` (e.g. `ro`).
    pub fn has_option(&self, opt: &str) -> bool {
        self.options.split(',').any(|o| o == opt)
    }

    /// The super options split at commas.
    pub fn super_option_list(&self) -> impl Iterator<Item = &str> {
        self.super_options.split(',').filter(|o| !o.is_empty())
    }
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\134` for a backslash).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(oct[0] - b'0') * 64
                    + u32::from(oct[1] - b'0') * 8
                    + u32::from(oct[2] - b'0');
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one line; `None` for a malformed one.
pub fn parse_line(line: &str) -> Option<Mount> {
    let (pre, post) = line.split_once(" - ")?;
    let mut pre = pre.split(' ').filter(|f| !f.is_empty());
    let id = pre.next()?.parse().ok()?;
    let parent = pre.next()?.parse().ok()?;
    let dev = pre.next()?.to_string();
    let root = unescape(pre.next()?);
    let mount_point = unescape(pre.next()?);
    let options = pre.next()?.to_string();
    let optional = pre.map(str::to_string).collect();
    let mut post = post.split(' ').filter(|f| !f.is_empty());
    let fstype = post.next()?.to_string();
    let source = unescape(post.next().unwrap_or(""));
    let super_options = post.next().unwrap_or("").to_string();
    Some(Mount {
        id,
        parent,
        dev,
        root,
        mount_point,
        options,
        optional,
        fstype,
        source,
        super_options,
    })
}

/// Parses mountinfo text, skipping malformed lines.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// Reads and parses `/proc/self/mountinfo`.
pub fn read_self() -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// The cgroup hierarchies (v1 and v2) mounted in this process's mount namespace, in mountinfo
/// order; none when it cannot be read (a cgroup walk then finds nothing to do).
pub fn cgroup_mounts() -> Vec<Mount> {
    read_self()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .collect()
}

/// The mount that holds `path` (absolute, canonical): the longest mount point that is a prefix
/// of it, the last one listed when several stack on the same point (the visible one).
pub fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts {
        if !path.starts_with(&m.mount_point) {
            continue;
        }
        if best.is_none_or(|b| m.mount_point.len() >= b.mount_point.len()) {
            best = Some(m);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 22 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 22 0:40 /sub /mnt/with\\040space ro,nosuid master:3 propagate_from:2 - tmpfs none rw
garbage line
";

    #[test]
    fn parses_fields() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].id, 22);
        assert_eq!(m[0].parent, 1);
        assert_eq!(m[0].dev, "8:1");
        assert_eq!(m[0].mount_point, "/");
        assert!(m[0].is_shared());
        assert_eq!(m[0].fstype, "ext4");
        assert_eq!(m[0].source, "/dev/vda");
        assert_eq!(
            m[2].super_option_list().collect::<Vec<_>>(),
            vec!["rw", "cpu"]
        );
        assert_eq!(m[3].fstype, "cgroup2");
        assert_eq!(m[4].mount_point, "/mnt/with space");
        assert_eq!(m[4].root, "/sub");
        assert!(m[4].is_slave() && !m[4].is_shared());
        assert!(m[4].has_option("ro") && !m[4].has_option("rw"));
    }

    #[test]
    fn finds_the_holding_mount() {
        let m = parse(SAMPLE);
        let of = |p: &str| mount_of(&m, Path::new(p)).map(|m| m.id);
        assert_eq!(of("/etc/passwd"), Some(22));
        assert_eq!(of("/sys/fs/cgroup/cpu/x"), Some(32));
        assert_eq!(of("/sys/fs/cgroupx"), Some(22));
        assert_eq!(of("/mnt/with space/a"), Some(50));
    }

    #[test]
    fn unescapes_and_survives_garbage() {
        assert_eq!(unescape("a\\040b\\134c\\011"), "a b\\c\t");
        assert_eq!(unescape("\\777x"), "\\777x");
        assert_eq!(unescape("trail\\04"), "trail\\04");
        for bad in ["", " - ", "1 2 3 4 5 6 -", "x y 0:1 / / rw - ext4"] {
            assert!(parse_line(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn reads_our_own() {
        let own = read_self().expect("read mountinfo");
        assert!(own.iter().any(|m| m.mount_point == "/"));
    }
}
