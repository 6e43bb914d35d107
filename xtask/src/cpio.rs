//! The guest lanes' initramfs archives are written by the workspace's one newc writer, the
//! `newc` crate (tinyvmm's one-shot mode writes its archive with it too); this module only keeps
//! the name the lanes import it by, and checks with cpio(1) that what it writes unpacks.

pub use newc::Archive;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::process::{Command, Stdio};

    /// The real check: cpio (or busybox cpio) unpacks what we wrote, with modes and link targets.
    #[test]
    fn cpio_unpacks_it() {
        let mut a = Archive::new();
        a.dir("/tmp", 0o1777);
        a.file("/bin/tool", 0o755, b"#!/bin/sh\necho hi\n".to_vec());
        a.file("/etc/odd-length", 0o640, b"abc".to_vec());
        a.file("/empty", 0o644, Vec::new());
        a.symlink("/bin/sh", "tool");
        a.chardev("/dev/null-ish", 0o600, 1, 3);
        let tmp = testcaps::TempDir::new("xtask-cpio-test").expect("temp dir");
        let dir = tmp.path();
        let tool = if Command::new("cpio").arg("--version").output().is_ok() {
            vec!["cpio", "--quiet"]
        } else {
            vec!["busybox", "cpio"]
        };
        let mut child = Command::new(tool[0])
            .args(&tool[1..])
            .arg("-idm")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .spawn()
            .expect("run cpio (cargo xtask deps installs it)");
        // The archive is far smaller than a pipe's buffer: the write cannot block on cpio.
        let mut stdin = child.stdin.take().unwrap();
        a.write_to(&mut stdin).unwrap();
        drop(stdin);
        let status = testcaps::wait_bounded(&mut child, testcaps::HANG_GUARD);
        assert!(status.success(), "{status:?}");
        assert_eq!(
            std::fs::read_to_string(dir.join("bin/tool")).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        let mode = |p: &str| {
            std::fs::symlink_metadata(dir.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("bin/tool"), 0o755);
        assert_eq!(mode("etc/odd-length"), 0o640);
        assert_eq!(mode("tmp"), 0o1777);
        assert_eq!(
            std::fs::read_to_string(dir.join("etc/odd-length")).unwrap(),
            "abc"
        );
        assert_eq!(std::fs::read(dir.join("empty")).unwrap().len(), 0);
        assert_eq!(
            std::fs::read_link(dir.join("bin/sh")).unwrap(),
            std::path::PathBuf::from("tool")
        );
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let meta = std::fs::symlink_metadata(dir.join("dev/null-ish")).unwrap();
            assert!(meta.file_type().is_char_device());
        }
    }
}
