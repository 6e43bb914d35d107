//! `cargo xtask rootfs DIR` yields a root filesystem in which busybox's shell runs under chroot.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use testcaps::{require, Cap};

/// The test's directory, removed when the test ends, also when it fails.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn rootfs_runs_a_shell_under_chroot() {
    require!(Cap::Root);
    let dir = Dir(std::env::temp_dir().join(testcaps::unique_name("xtask-rootfs-test")));
    // Building the rootfs may build the tools first: the shared hang guard bounds it.
    let out = testcaps::run(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("rootfs")
            .arg(&dir.0),
        testcaps::HANG_GUARD,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = testcaps::run(
        Command::new("chroot")
            .arg(&dir.0)
            .args(["/bin/sh", "-c", "echo ok; ls /bin/sh"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "ok\n/bin/sh\n");
}
