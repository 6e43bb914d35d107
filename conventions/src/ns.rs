//! The namespace table: one row per namespace kind, shared by every tool that names namespaces.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// One kind of Linux namespace, with every name the tools and the kernel use for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NsKind {
    /// File name under `/proc/PID/ns/` (`mnt`, `uts`, ...), also the name lsns prints.
    pub proc_name: &'static str,
    /// Long option of unshare/nsenter (`mount`, `uts`, ...).
    pub long: &'static str,
    /// Short option letter of unshare/nsenter.
    pub short: char,
    /// The `CLONE_NEW*` flag for unshare(2), clone(2) and setns(2).
    pub flag: libc::c_int,
}

/// Every namespace kind, in the order util-linux nsenter joins them (user first, mount late,
/// time last), which is also the order tools print them in.
pub const ALL: [NsKind; 8] = [
    NsKind {
        proc_name: "user",
        long: "user",
        short: 'U',
        flag: libc::CLONE_NEWUSER,
    },
    NsKind {
        proc_name: "cgroup",
        long: "cgroup",
        short: 'C',
        flag: libc::CLONE_NEWCGROUP,
    },
    NsKind {
        proc_name: "ipc",
        long: "ipc",
        short: 'i',
        flag: libc::CLONE_NEWIPC,
    },
    NsKind {
        proc_name: "uts",
        long: "uts",
        short: 'u',
        flag: libc::CLONE_NEWUTS,
    },
    NsKind {
        proc_name: "net",
        long: "net",
        short: 'n',
        flag: libc::CLONE_NEWNET,
    },
    NsKind {
        proc_name: "pid",
        long: "pid",
        short: 'p',
        flag: libc::CLONE_NEWPID,
    },
    NsKind {
        proc_name: "mnt",
        long: "mount",
        short: 'm',
        flag: libc::CLONE_NEWNS,
    },
    NsKind {
        proc_name: "time",
        long: "time",
        short: 'T',
        flag: CLONE_NEWTIME,
    },
];

/// `CLONE_NEWTIME` (Linux 5.6); spelled out because older libc crates lack it.
pub const CLONE_NEWTIME: libc::c_int = 0x0000_0080;

/// The mask of every namespace flag in [`ALL`].
pub fn all_flags() -> libc::c_int {
    ALL.iter().fold(0, |acc, k| acc | k.flag)
}

/// Looks a kind up by its `/proc` name, its long option name or its short letter as a string.
pub fn by_name(name: &str) -> Option<NsKind> {
    ALL.iter().copied().find(|k| {
        k.proc_name == name || k.long == name || (name.len() == 1 && name.starts_with(k.short))
    })
}

/// Looks a kind up by its `CLONE_NEW*` flag.
pub fn by_flag(flag: libc::c_int) -> Option<NsKind> {
    ALL.iter().copied().find(|k| k.flag == flag)
}

/// The kinds whose flags are set in `mask`, in table order.
pub fn kinds_in(mask: libc::c_int) -> Vec<NsKind> {
    ALL.iter().copied().filter(|k| mask & k.flag != 0).collect()
}

/// Names the flags of `mask` as `CLONE_NEWNS|CLONE_NEWPID`, for error messages naming the syscall.
pub fn flag_names(mask: libc::c_int) -> String {
    let names: Vec<&str> = kinds_in(mask)
        .iter()
        .map(|k| match k.proc_name {
            "user" => "CLONE_NEWUSER",
            "cgroup" => "CLONE_NEWCGROUP",
            "ipc" => "CLONE_NEWIPC",
            "uts" => "CLONE_NEWUTS",
            "net" => "CLONE_NEWNET",
            "pid" => "CLONE_NEWPID",
            "mnt" => "CLONE_NEWNS",
            _ => "CLONE_NEWTIME",
        })
        .collect();
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join("|")
    }
}

/// Which process a namespace file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    /// `/proc/self`.
    Current,
    /// `/proc/PID`.
    Pid(i32),
}

impl NsKind {
    /// The path of this kind's namespace file of `proc`.
    pub fn path(&self, proc: Proc) -> PathBuf {
        match proc {
            Proc::Current => PathBuf::from(format!("/proc/self/ns/{}", self.proc_name)),
            Proc::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/{}", self.proc_name)),
        }
    }

    /// The `*_for_children` file for the kinds that have one (pid, time), else the plain file.
    pub fn children_path(&self, proc: Proc) -> PathBuf {
        let base = self.path(proc);
        match self.proc_name {
            "pid" | "time" => PathBuf::from(format!("{}_for_children", base.display())),
            _ => base,
        }
    }

    /// The inode number that identifies the namespace `proc` is in (what `lsns` prints).
    pub fn inode(&self, proc: Proc) -> io::Result<u64> {
        Ok(std::fs::metadata(self.path(proc))?.ino())
    }

    /// Whether the running kernel has this kind of namespace at all.
    pub fn supported(&self) -> bool {
        self.path(Proc::Current).exists()
    }
}

/// The inodes of every namespace kind the kernel has, for `proc`, in table order.
pub fn inodes(proc: Proc) -> io::Result<Vec<(NsKind, u64)>> {
    let mut out = Vec::with_capacity(ALL.len());
    for kind in ALL {
        if !kind.supported() {
            continue;
        }
        out.push((kind, kind.inode(proc)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_agree_with_the_table() {
        for kind in ALL {
            assert_eq!(by_name(kind.proc_name), Some(kind));
            assert_eq!(by_name(kind.long), Some(kind));
            assert_eq!(by_name(&kind.short.to_string()), Some(kind));
            assert_eq!(by_flag(kind.flag), Some(kind));
        }
        assert_eq!(by_name("mount").map(|k| k.proc_name), Some("mnt"));
        assert_eq!(by_name("nope"), None);
        assert_eq!(by_name(""), None);
    }

    #[test]
    fn flags_are_distinct_and_named() {
        let mut seen = 0;
        for kind in ALL {
            assert_eq!(seen & kind.flag, 0, "{} overlaps", kind.proc_name);
            seen |= kind.flag;
        }
        assert_eq!(seen, all_flags());
        assert_eq!(
            flag_names(libc::CLONE_NEWNS | libc::CLONE_NEWPID),
            "CLONE_NEWPID|CLONE_NEWNS"
        );
        assert_eq!(flag_names(0), "0");
    }

    #[test]
    fn paths_and_inodes() {
        let mnt = by_name("m").expect("mnt");
        assert_eq!(mnt.path(Proc::Pid(7)), PathBuf::from("/proc/7/ns/mnt"));
        let pid = by_name("pid").expect("pid");
        assert_eq!(
            pid.children_path(Proc::Current),
            PathBuf::from("/proc/self/ns/pid_for_children")
        );
        let own = mnt.inode(Proc::Current).expect("own mnt ns");
        let mine = mnt
            .inode(Proc::Pid(std::process::id() as i32))
            .expect("by pid");
        assert_eq!(own, mine);
    }
}
