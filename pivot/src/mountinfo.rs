//! What pivot asks of `/proc/self/mountinfo` (parsed by [`conventions::mountinfo`]): whether `/`
//! is a mount point at all (not inside a chroot) and whether it is the initramfs (`rootfs`),
//! which is what decides pivot_root's EINVAL fallback.

pub use conventions::mountinfo::Mount;

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
pub fn root_kind(mounts: &[Mount]) -> RootKind {
    match mounts.iter().rev().find(|m| m.mount_point == "/") {
        None => RootKind::NotMountPoint,
        Some(m) if m.fstype == "rootfs" => RootKind::Rootfs,
        Some(m) => RootKind::Mounted(m.fstype.clone()),
    }
}

/// Reads our own mountinfo; unreadable counts as empty (no mount known), as before.
pub fn read() -> Vec<Mount> {
    conventions::mountinfo::read_self().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use conventions::mountinfo::parse;

    const HOST: &str = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
        27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
        28 27 0:25 / /mnt/with\\040space ro - tmpfs none ro\n";

    #[test]
    fn parses_and_classifies() {
        let e = parse(HOST);
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].mount_point, "/mnt/with space");
        assert_eq!(root_kind(&e), RootKind::Mounted("ext4".into()));
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
