//! Telling whether we run in the host's initial mount (or UTS) namespace, so that a script bug
//! cannot pivot the host: pivot refuses there unless told explicitly.
//!
//! The direct test compares `/proc/self/ns/mnt` with `/proc/1/ns/mnt`. PID 1's namespace links
//! may be unreadable (a supervisor that is not dumpable, another user namespace), so the kernel's
//! fixed inode numbers of the initial namespaces are used as well: UTS has had one since Linux
//! 3.8, the mount namespace since the nsfs rework (`MNT_NS_INIT_INO`, seen on 6.18 kernels);
//! before that it got the first dynamic inode at boot. PID 1 is compared with only when it is
//! the machine's init: in a PID namespace with its own /proc, PID 1 is that namespace's init,
//! and such a /proc only exists in a mount namespace a container set-up made.

use std::io;
use std::path::Path;

/// nsfs inode of the initial mount namespace on kernels that fix it (uapi `linux/nsfs.h`).
pub const MNT_NS_INIT_INO: u64 = 0xEFFF_FFF8;
/// nsfs inode of the initial UTS namespace (fixed since Linux 3.8).
pub const UTS_NS_INIT_INO: u64 = 0xEFFF_FFFE;
/// First kernel (major, minor) known to give the initial mount namespace a fixed inode.
pub const FIXED_MNT_INO_SINCE: (u32, u32) = (6, 18);

/// What we can say about our namespace of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It is the host's initial namespace.
    Host,
    /// It is not.
    NotHost,
    /// We cannot tell; the string says why.
    Unknown(String),
}

/// The first inode number the kernel hands out dynamically (`PROC_DYNAMIC_FIRST`).
pub const FIRST_DYNAMIC_INO: u64 = 0xF000_0000;
/// nsfs inode of the initial PID namespace (fixed since Linux 3.8).
pub const PID_NS_INIT_INO: u64 = 0xEFFF_FFFC;

/// The pure decision. `own` is our namespace file's (dev, ino); `init_ino` the fixed inode of the
/// initial namespace of this kind and `fixed` whether this kernel is known to use it; `pid1` is
/// PID 1's namespace file as /proc shows it, or the error reading it, and `pid1_is_init` whether
/// that PID 1 is the machine's init (its PID namespace is the initial one: with a fresh /proc in
/// a PID namespace, PID 1 is that namespace's init and proves nothing).
pub fn judge(
    own: (u64, u64),
    init_ino: u64,
    fixed: bool,
    pid1: &Result<(u64, u64), io::Error>,
    pid1_is_init: bool,
) -> Verdict {
    if own.1 == init_ino {
        return Verdict::Host;
    }
    if fixed {
        return Verdict::NotHost;
    }
    // Before fixed inodes, the initial mount namespace was the first nsfs inode allocated at
    // boot; a later namespace never gets it. Refusing on it is the safe side.
    if own.1 == FIRST_DYNAMIC_INO {
        return Verdict::Host;
    }
    match pid1 {
        Ok(p) if pid1_is_init => {
            if *p == own {
                Verdict::Host
            } else {
                Verdict::NotHost
            }
        }
        // /proc shows the PID namespace it was mounted for. A /proc whose PID 1 is not the
        // machine's init was mounted for a new PID namespace, which container set-ups (`unshare
        // -fp --mount-proc`, which implies -m) do in a mount namespace of their own: the host's
        // /proc always shows the machine's init.
        Ok(_) => Verdict::NotHost,
        Err(e) => Verdict::Unknown(format!(
            "cannot read /proc/1/ns/*: {} and this kernel has no fixed inode for the initial \
             namespace",
            conventions::output::errtext(e)
        )),
    }
}

/// Parses `uname -r` into (major, minor).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default()
}

fn verdict(kind: &str, init_ino: u64, fixed: bool) -> Verdict {
    let own = match crate::sys::dev_ino(&Path::new("/proc/self/ns").join(kind)) {
        Ok(o) => o,
        Err(e) => {
            return Verdict::Unknown(format!(
                "cannot read /proc/self/ns/{kind}: {} (is /proc mounted?)",
                conventions::output::errtext(&e)
            ))
        }
    };
    let pid1 = crate::sys::dev_ino(&Path::new("/proc/1/ns").join(kind));
    let pid1_is_init = crate::sys::dev_ino(Path::new("/proc/1/ns/pid"))
        .is_ok_and(|(_, ino)| ino == PID_NS_INIT_INO);
    judge(own, init_ino, fixed, &pid1, pid1_is_init)
}

/// Our mount namespace compared with the host's.
pub fn mount_ns() -> Verdict {
    let fixed = kernel_version(&release()).is_some_and(|v| v >= FIXED_MNT_INO_SINCE);
    verdict("mnt", MNT_NS_INIT_INO, fixed)
}

/// Our UTS namespace compared with the host's.
pub fn uts_ns() -> Verdict {
    verdict("uts", UTS_NS_INIT_INO, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied() -> Result<(u64, u64), io::Error> {
        Err(io::Error::from_raw_os_error(libc::EACCES))
    }

    #[test]
    fn decisions() {
        let m = MNT_NS_INIT_INO;
        // The fixed inode alone proves the host, whatever PID 1 says.
        assert_eq!(judge((4, m), m, false, &denied(), false), Verdict::Host);
        assert_eq!(judge((4, m), m, true, &Ok((4, 9)), true), Verdict::Host);
        // On a kernel with the fixed inode, another inode is another namespace.
        assert_eq!(judge((4, 9), m, true, &Ok((4, 9)), false), Verdict::NotHost);
        assert_eq!(judge((4, 9), m, true, &denied(), false), Verdict::NotHost);
        // Without it, only the machine's own init can be compared with.
        assert_eq!(judge((4, 9), m, false, &Ok((4, 9)), true), Verdict::Host);
        assert_eq!(judge((4, 9), m, false, &Ok((4, 8)), true), Verdict::NotHost);
        // A /proc mounted for a PID namespace of its own is a container's, not the host's.
        assert_eq!(
            judge((4, 9), m, false, &Ok((4, 9)), false),
            Verdict::NotHost
        );
        assert!(matches!(
            judge((4, 0xF000_0001), m, false, &denied(), false),
            Verdict::Unknown(why) if why.contains("Permission denied")
        ));
        // An old kernel's initial mount namespace.
        assert_eq!(
            judge((4, FIRST_DYNAMIC_INO), m, false, &denied(), false),
            Verdict::Host
        );
        // The UTS rule: fixed since 3.8.
        let u = UTS_NS_INIT_INO;
        assert_eq!(judge((4, u), u, true, &denied(), false), Verdict::Host);
        assert_eq!(judge((4, 5), u, true, &denied(), false), Verdict::NotHost);
    }

    #[test]
    fn versions() {
        assert_eq!(kernel_version("6.18.44-fc-v595\n"), Some((6, 18)));
        assert_eq!(kernel_version("5.10.0-21-amd64"), Some((5, 10)));
        assert_eq!(kernel_version("garbage"), None);
    }
}
