//! `cargo xtask rootfs DIR` yields a root filesystem in which busybox's shell runs under chroot.

use std::process::Command;

#[test]
fn rootfs_runs_a_shell_under_chroot() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let demanded = std::env::var("MICROTOOLS_REQUIRE").unwrap_or_default();
        assert!(
            !demanded.split(',').any(|c| c.trim() == "root"),
            "needs root, demanded by MICROTOOLS_REQUIRE"
        );
        println!("SKIPPED rootfs_runs_a_shell_under_chroot: needs root (chroot)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("xtask-rootfs-test-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("rootfs")
        .arg(&dir)
        .status()
        .expect("run xtask");
    assert!(status.success());
    let out = Command::new("chroot")
        .arg(&dir)
        .args(["/bin/sh", "-c", "echo ok; ls /bin/sh"])
        .output()
        .expect("run chroot");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n/bin/sh\n");
}
