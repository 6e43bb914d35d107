//! Where the cgroup hierarchies are, read from mountinfo (never hard-coded), so that one binary
//! routes each controller to v1 or v2 on unified, hybrid and legacy hosts alike.

use std::path::{Path, PathBuf};

/// The two cgroup filesystems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `cgroup` (one hierarchy per controller set).
    V1,
    /// `cgroup2` (the unified hierarchy).
    V2,
}

impl Version {
    /// 1 or 2.
    pub fn number(self) -> u8 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
        }
    }
}

/// How the host mounts its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only cgroup2.
    Unified,
    /// v1 controller hierarchies and cgroup2 side by side.
    Hybrid,
    /// Only v1.
    Legacy,
    /// No cgroup filesystem at all.
    None,
}

impl Kind {
    /// The name `info` prints.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Unified => "unified",
            Kind::Hybrid => "hybrid",
            Kind::Legacy => "legacy",
            Kind::None => "none",
        }
    }
}

/// Controllers a v1 mount can carry (anything else in its super options is a mount option).
pub const V1_CONTROLLERS: [&str; 14] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "blkio",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Whether the test hooks `CGCTL_MOUNTINFO` and `CGCTL_ROOT` are honoured: in debug builds
/// (cargo's test and dev profiles, which `tests/fake_v2.rs` runs), never in a release build. A
/// shipped tool must not write to another cgroupfs because of its environment.
pub const TEST_HOOKS: bool = cfg!(debug_assertions);

/// Where the layout comes from: the mountinfo file and the prefix of every mount point. The real
/// ones unless `hooks` is on and `env` sets `CGCTL_MOUNTINFO` / `CGCTL_ROOT`.
pub fn sources(
    hooks: bool,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> (PathBuf, PathBuf) {
    let hook = |k: &str| env(k).filter(|_| hooks).map(PathBuf::from);
    (
        hook("CGCTL_MOUNTINFO").unwrap_or_else(|| PathBuf::from("/proc/self/mountinfo")),
        hook("CGCTL_ROOT").unwrap_or_default(),
    )
}

/// One cgroup mount as mountinfo shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `cgroup` or `cgroup2`.
    pub version: Version,
    /// The device number field (`0:29`), which tells bind mounts of one hierarchy apart.
    pub dev: String,
    /// The directory of the hierarchy inside the filesystem (field 4).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// v1: the controllers named in the super options.
    pub controllers: Vec<String>,
    /// v1: the `name=` of a named hierarchy without controllers (systemd's).
    pub name: Option<String>,
}

/// The cgroup and cgroup2 mounts of a mountinfo text (parsed by [`conventions::mountinfo`]);
/// other filesystems and malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    // Only cgroup lines are parsed in full: every field of every mount would be a few hundred
    // allocations on each start, for lines that are dropped anyway.
    let is_cgroup = |line: &&str| {
        line.split_once(" - ")
            .is_some_and(|(_, fs)| fs.starts_with("cgroup ") || fs.starts_with("cgroup2 "))
    };
    text.lines()
        .filter(is_cgroup)
        .filter_map(conventions::mountinfo::parse_line)
        .filter_map(cgroup_mount)
        .collect()
}

/// The cgroup view of one mount, `None` when it is no cgroup filesystem.
fn cgroup_mount(m: conventions::mountinfo::Mount) -> Option<Mount> {
    let version = match m.fstype.as_str() {
        "cgroup" => Version::V1,
        "cgroup2" => Version::V2,
        _ => return None,
    };
    let mut controllers = Vec::new();
    let mut name = None;
    if version == Version::V1 {
        for opt in m.super_option_list() {
            if V1_CONTROLLERS.contains(&opt) {
                controllers.push(opt.to_string());
            } else if let Some(n) = opt.strip_prefix("name=") {
                name = Some(n.to_string());
            }
        }
    }
    Some(Mount {
        version,
        dev: m.dev,
        root: m.root,
        mount_point: PathBuf::from(m.mount_point),
        controllers,
        name,
    })
}

/// One hierarchy cgctl may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// v1 or v2.
    pub version: Version,
    /// Its mount point, with the test prefix applied.
    pub mount: PathBuf,
    /// Its root inside the filesystem (mountinfo field 4).
    pub root: String,
    /// v1: the mounted controllers; v2: the root's `cgroup.controllers`.
    pub controllers: Vec<String>,
    /// v1 named hierarchy (`name=systemd`).
    pub name: Option<String>,
}

impl Hierarchy {
    /// Whether cgctl makes groups here: every v2 hierarchy (its core files work without
    /// controllers) and every v1 hierarchy that carries a controller; named v1 hierarchies
    /// belong to whoever named them.
    pub fn managed(&self) -> bool {
        self.version == Version::V2 || !self.controllers.is_empty()
    }

    /// A short label: `v1:cpu,cpuacct`, `v1:name=systemd`, `v2`.
    pub fn label(&self) -> String {
        match (self.version, &self.name) {
            (Version::V2, _) => "v2".to_string(),
            (Version::V1, Some(n)) if self.controllers.is_empty() => format!("v1:name={n}"),
            (Version::V1, _) => format!("v1:{}", self.controllers.join(",")),
        }
    }
}

/// The cgroup layout of the host: every hierarchy and which one each controller lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Unified, hybrid, legacy or none.
    pub kind: Kind,
    /// Hierarchies in mountinfo order, one per filesystem (bind mounts dropped).
    pub hierarchies: Vec<Hierarchy>,
}

/// The name a controller has in the given version (`io` is `blkio` on v1).
pub fn native_name(controller: &str, version: Version) -> &str {
    match (controller, version) {
        ("io", Version::V1) => "blkio",
        ("blkio", Version::V2) => "io",
        (c, _) => c,
    }
}

impl Layout {
    /// Builds the layout from mountinfo text; v2 controllers are read from
    /// `prefix/<mount>/cgroup.controllers`, and every path gets `prefix` in front, so tests can
    /// point it at a fake tree (the real host uses an empty prefix).
    pub fn detect(mountinfo: &str, prefix: &Path) -> Layout {
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for m in parse_mountinfo(mountinfo) {
            if seen.contains(&m.dev) {
                continue;
            }
            seen.push(m.dev.clone());
            let mount = join_prefix(prefix, &m.mount_point);
            let controllers = match m.version {
                Version::V1 => m.controllers.clone(),
                Version::V2 => crate::cgroupfs::read_small(&mount.join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            };
            hierarchies.push(Hierarchy {
                version: m.version,
                mount,
                root: m.root,
                controllers,
                name: m.name,
            });
        }
        let v1 = hierarchies
            .iter()
            .any(|h| h.version == Version::V1 && !h.controllers.is_empty());
        let v2 = hierarchies.iter().any(|h| h.version == Version::V2);
        let kind = match (v1, v2) {
            (true, true) => Kind::Hybrid,
            (false, true) => Kind::Unified,
            (true, false) => Kind::Legacy,
            (false, false) => Kind::None,
        };
        Layout { kind, hierarchies }
    }

    /// The host's layout, from /proc/self/mountinfo; in test builds only (see
    /// [`TEST_HOOKS`]), `CGCTL_MOUNTINFO` (a file) and `CGCTL_ROOT` (a path prefix) replace both
    /// for tests against a fake tree.
    pub fn host() -> crate::Result<Layout> {
        let (info_path, prefix) = sources(TEST_HOOKS, &|k| std::env::var_os(k));
        let text = crate::cgroupfs::read(&info_path)?;
        Ok(Layout::detect(&text, &prefix))
    }

    /// The index of the hierarchy that carries `controller` (logical name: `io` finds v1
    /// `blkio`), preferring v1 where a controller is bound (the kernel allows only one).
    pub fn route(&self, controller: &str) -> Option<usize> {
        let find = |v: Version| {
            let native = native_name(controller, v);
            self.hierarchies
                .iter()
                .position(|h| h.version == v && h.controllers.iter().any(|c| c == native))
        };
        find(Version::V1).or_else(|| find(Version::V2))
    }

    /// The version `controller` is routed to, if any.
    pub fn route_version(&self, controller: &str) -> Option<Version> {
        self.route(controller).map(|i| self.hierarchies[i].version)
    }

    /// The v2 hierarchy, if mounted.
    pub fn v2(&self) -> Option<usize> {
        self.hierarchies
            .iter()
            .position(|h| h.version == Version::V2)
    }

    /// The hierarchy an interface file lives in: by its controller prefix (`memory.max` goes
    /// where memory is), and files of no routed controller (`cgroup.kill`, `cpu.stat` without
    /// the cpu controller) go to v2 when it is mounted.
    pub fn file_home(&self, file: &str) -> Option<usize> {
        let prefix = file.split('.').next().unwrap_or("");
        if prefix == "cgroup" || prefix == "notify_on_release" || prefix == "tasks" {
            return self
                .v2()
                .or_else(|| self.hierarchies.iter().position(|h| h.managed()));
        }
        self.route(prefix).or_else(|| {
            // v2 core files such as cpu.stat and memory.pressure exist without the controller.
            if ["cpu", "memory", "io", "irq"].contains(&prefix) {
                self.v2()
            } else {
                None
            }
        })
    }

    /// Controller names known on this host, each once, in a stable order.
    pub fn controllers(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for (i, h) in self.hierarchies.iter().enumerate() {
            for c in &h.controllers {
                let logical = if c == "blkio" { "io" } else { c.as_str() };
                if !out.iter().any(|(n, _)| n == logical) {
                    if let Some(idx) = self.route(logical) {
                        out.push((logical.to_string(), idx));
                    } else {
                        out.push((logical.to_string(), i));
                    }
                }
            }
        }
        out.sort();
        out
    }
}

fn join_prefix(prefix: &Path, p: &Path) -> PathBuf {
    if prefix.as_os_str().is_empty() {
        return p.to_path_buf();
    }
    let rel = p.strip_prefix("/").unwrap_or(p);
    prefix.join(rel)
}

/// One line of /proc/PID/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCgroup {
    /// Hierarchy id (0 for v2).
    pub id: u32,
    /// Controllers of that hierarchy (empty for v2), `name=` entries included.
    pub controllers: Vec<String>,
    /// The path relative to the hierarchy's root.
    pub path: String,
}

/// Parses /proc/PID/cgroup (`N:ctrl,ctrl:/path`, `0::/path`); bad lines are skipped.
pub fn parse_proc_cgroup(text: &str) -> Vec<OwnCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?.parse().ok()?;
            let ctrls = parts.next()?;
            let path = parts.next()?;
            Some(OwnCgroup {
                id,
                controllers: ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hooks_only_in_debug_builds() {
        let fake = |k: &str| match k {
            "CGCTL_MOUNTINFO" => Some("/tmp/fake/mountinfo".into()),
            "CGCTL_ROOT" => Some("/tmp/fake".into()),
            _ => None,
        };
        let real = (PathBuf::from("/proc/self/mountinfo"), PathBuf::new());
        // Off (a release build): the environment changes nothing.
        assert_eq!(sources(false, &fake), real);
        assert_eq!(sources(false, &|_| None), real);
        // On: the fake tree.
        assert_eq!(
            sources(true, &fake),
            (
                PathBuf::from("/tmp/fake/mountinfo"),
                PathBuf::from("/tmp/fake")
            )
        );
        assert_eq!(sources(true, &|_| None), real);
        // And the switch is the build's: off wherever debug assertions are (release).
        assert_eq!(TEST_HOOKS, cfg!(debug_assertions));
    }

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 31 0:32 / /mnt/again rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_routes_per_controller() {
        let l = Layout::detect(HYBRID, Path::new(""));
        assert_eq!(l.kind, Kind::Hybrid);
        assert_eq!(l.hierarchies.len(), 7, "the bind mount is dropped");
        let mem = l.route("memory").expect("memory");
        assert_eq!(l.hierarchies[mem].mount, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(l.route_version("io"), Some(Version::V1));
        assert_eq!(
            l.hierarchies[l.route("io").unwrap()].mount,
            Path::new("/sys/fs/cgroup/blkio")
        );
        assert_eq!(l.route("cpuset"), None);
        assert_eq!(l.v2(), Some(6));
        let named = &l.hierarchies[5];
        assert_eq!(named.name.as_deref(), Some("systemd"));
        assert!(!named.managed());
        assert_eq!(named.label(), "v1:name=systemd");
        assert_eq!(l.file_home("cgroup.kill"), Some(6));
        assert_eq!(l.file_home("memory.limit_in_bytes"), Some(mem));
        assert_eq!(l.file_home("bogus.file"), None);
    }

    #[test]
    fn unified_reads_controllers_under_the_prefix() {
        let dir = std::env::temp_dir().join(format!("cgctl-layout-{}", std::process::id()));
        let root = dir.join("sys/fs/cgroup");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let info = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = Layout::detect(info, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(l.kind, Kind::Unified);
        assert_eq!(l.hierarchies[0].mount, root);
        assert_eq!(l.route_version("memory"), Some(Version::V2));
        assert_eq!(l.route_version("io"), Some(Version::V2));
        assert_eq!(l.route_version("blkio"), Some(Version::V2));
        assert_eq!(l.route("freezer"), None);
        assert_eq!(l.file_home("cpu.stat"), Some(0));
    }

    #[test]
    fn legacy_and_none() {
        let legacy = "1 0 0:40 / /cg/mem rw - cgroup cgroup rw,memory,cpu\n";
        let l = Layout::detect(legacy, Path::new(""));
        assert_eq!(l.kind, Kind::Legacy);
        assert_eq!(l.route("cpu"), Some(0));
        assert_eq!(l.hierarchies[0].label(), "v1:memory,cpu");
        let none = Layout::detect("garbage\n1 2 3\n", Path::new(""));
        assert_eq!(none.kind, Kind::None);
    }

    #[test]
    fn escapes_and_proc_cgroup() {
        let info = "1 0 0:40 /a\\040b /mnt/with\\040space rw - cgroup2 none rw\n";
        let m = parse_mountinfo(info);
        assert_eq!(m[0].mount_point, Path::new("/mnt/with space"));
        assert_eq!(m[0].root, "/a b");
        let own = parse_proc_cgroup("4:memory:/x/y\n9:name=systemd:/\n0::/user.slice\nbad\n");
        assert_eq!(own.len(), 3);
        assert_eq!(own[0].controllers, vec!["memory"]);
        assert_eq!(own[0].path, "/x/y");
        assert_eq!(own[2].id, 0);
        assert!(own[2].controllers.is_empty());
    }
}
