//! `cargo xtask soak` starts 1,000 containers and 1,000 tiny VMs, 20 at a time, and finds
//! nothing left afterwards; and a soak whose instances fail or leave things behind fails.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testcaps::{require, Cap};

fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.arg("soak");
    c
}

/// The directory of the workspace's built tools (cgctl, unshare-rs, pivot, tinyvmm).
fn bin_dir() -> std::path::PathBuf {
    testcaps::sibling_bin("cgctl")
        .parent()
        .map(Path::to_path_buf)
        .expect("a directory holds cgctl")
}

/// The two soaks the reliability issue asks for, at full size: both pass, each line says how
/// many instances ran, and the summary counts both.
#[test]
fn a_thousand_containers_and_a_thousand_vms_leave_nothing_behind() {
    require!(Cap::Root, Cap::Kvm, Cap::Rootfs);
    let out = testcaps::run(
        xtask()
            .arg("--bin-dir")
            .arg(bin_dir())
            .args(["--time-limit", "600"]),
        Duration::from_secs(1500),
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("PASS soak_containers: 1000 started and ended, 20 at a time, in "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("PASS soak_vms: 1000 started and ended, 20 at a time, in "),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.lines().last(),
        Some("2 passed, 0 failed"),
        "{}",
        out.stdout
    );
}

/// A stand-in tinyvmm that fails, leaves a temp file in its TMPDIR and a process running: the
/// soak reports all three and fails, and the process it left is gone afterwards.
#[test]
fn a_soak_whose_instances_leave_things_behind_fails() {
    require!(Cap::Root);
    let dir = testcaps::target_dir()
        .join("tmp")
        .join(testcaps::unique_name("soak-fake-bin"));
    std::fs::create_dir_all(&dir).unwrap();
    for tool in ["cgctl", "unshare-rs", "pivot"] {
        std::os::unix::fs::symlink(testcaps::sibling_bin(tool), dir.join(tool)).unwrap();
    }
    let pids = dir.join("strays");
    let fake = dir.join("tinyvmm");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ntouch \"$TMPDIR/leak.$$\"\nsleep 60 &\necho $! >> '{}'\nexit 3\n",
            pids.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = testcaps::run(
        xtask().arg("--bin-dir").arg(&dir).args([
            "--containers",
            "0",
            "--vms",
            "3",
            "--parallel",
            "2",
        ]),
        Duration::from_secs(120),
    );
    let started = std::fs::read_to_string(&pids).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(started.lines().count(), 3, "{started}");
    let strays: Vec<&str> = started
        .lines()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
        })
        .collect();
    assert!(
        strays.is_empty(),
        "left running: {strays:?}\n{}",
        out.stdout
    );
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("FAIL soak_vms: 3 started"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("    | failed: instance 0: exit 3"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("    | left behind: processes still running: ["),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("    | left behind: temp files: ["),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.lines().last(),
        Some("0 passed, 1 failed"),
        "{}",
        out.stdout
    );
}

/// Bad arguments are one line on stderr and exit 1, before anything starts.
#[test]
fn bad_arguments_exit_1_with_one_line() {
    let out = testcaps::run(xtask().args(["--parallel", "0"]), Duration::from_secs(30));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr, "xtask: soak: --parallel must be 1 to 1000, not 0\n",
        "{out:?}"
    );
}
