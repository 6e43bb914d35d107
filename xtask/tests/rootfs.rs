//! `cargo xtask rootfs DIR` yields a root filesystem in which busybox's shell runs under chroot.

use std::process::Command;
use std::time::Duration;

use testcaps::{require, Cap};

#[test]
fn rootfs_runs_a_shell_under_chroot() {
    require!(Cap::Root);
    let tmp = testcaps::TempDir::new("xtask-rootfs-test").expect("temp dir");
    // A path that does not exist yet, as a first `cargo xtask rootfs DIR` sees it.
    let dir = tmp.path().join("rootfs");
    // Building the rootfs may build the tools first: the shared hang guard bounds it.
    let out = testcaps::run(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("rootfs")
            .arg(&dir),
        testcaps::HANG_GUARD,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = testcaps::run(
        Command::new("chroot")
            .arg(&dir)
            .args(["/bin/sh", "-c", "echo ok; ls /bin/sh"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "ok\n/bin/sh\n");
}
