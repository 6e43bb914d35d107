//! Reading `/proc/self/mountinfo`: whether `/` is a mount point at all (not inside a chroot) and
//! whether it is the initramfs (`rootfs`), which is what decides pivot_root's EINVAL fallback.

/// One line of mountinfo, the fields pivot uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Mount point, unescaped, relative to our root.
    pub mount_point: String,
    /// Filesystem type.
    pub fstype: String,
}

/// Undoes the kernel's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text, skipping malformed lines.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let mount_point = unescape(pre.split_whitespace().nth(4)?);
            let fstype = post.split_whitespace().next()?.to_string();
            Some(Entry {
                mount_point,
                fstype,
            })
        })
        .collect()
}

/// What `/` is, for the pivot_root fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootKind {
    /// `/` is not a mount point (we are in a chroot): pivot_root refuses.
    NotMountPoint,
    /// `/` is the initramfs: pivot_root refuses.
    Rootfs,
    /// An ordinary mounted root, of this type.
    Mounted(String),
}

/// Classifies `/` from parsed mountinfo (the last entry on `/` is the visible one).
pub fn root_kind(entries: &[Entry]) -> RootKind {
    match entries.iter().rev().find(|e| e.mount_point == "/") {
        None => RootKind::NotMountPoint,
        Some(e) if e.fstype == "rootfs" => RootKind::Rootfs,
        Some(e) => RootKind::Mounted(e.fstype.clone()),
    }
}

/// Reads our own mountinfo.
pub fn read() -> Vec<Entry> {
    parse(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// Whether `path` (as mountinfo shows it) is a mount point.
pub fn is_mount_point(entries: &[Entry], path: &str) -> bool {
    entries.iter().any(|e| e.mount_point == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
        27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
        28 27 0:25 / /mnt/with\\040space ro - tmpfs none ro\n";

    #[test]
    fn parses_and_classifies() {
        let e = parse(HOST);
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].mount_point, "/mnt/with space");
        assert_eq!(root_kind(&e), RootKind::Mounted("ext4".into()));
        assert!(is_mount_point(&e, "/proc"));
        assert!(!is_mount_point(&e, "/sys"));
        let initramfs = parse("1 1 0:2 / / rw - rootfs rootfs rw\n");
        assert_eq!(root_kind(&initramfs), RootKind::Rootfs);
        // In a chroot, mounts outside the root are not listed and none is on /.
        let chroot = parse("40 39 0:30 / /proc rw - proc proc rw\n");
        assert_eq!(root_kind(&chroot), RootKind::NotMountPoint);
        assert_eq!(root_kind(&parse("garbage\n")), RootKind::NotMountPoint);
        // A tmpfs stacked over rootfs hides it.
        let stacked = parse("1 1 0:2 / / rw - rootfs rootfs rw\n2 1 0:3 / / rw - tmpfs t rw\n");
        assert_eq!(root_kind(&stacked), RootKind::Mounted("tmpfs".into()));
    }
}
