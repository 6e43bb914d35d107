//! `cargo xtask engines` as CI runs it: podman and containerd drive ocirun (crun as the
//! reference), containerd's CRI plugin loads ocirun as a handler, and nothing is left; every
//! step passes, and the summary counts them.

use std::process::Command;
use std::time::Duration;
use testcaps::{require, Cap};

#[test]
fn podman_and_containerd_drive_ocirun_and_leave_nothing() {
    require!(Cap::Root, Cap::Rootfs, Cap::Engines, Cap::CgroupV1);
    let out = testcaps::run(
        Command::new(env!("CARGO_BIN_EXE_xtask")).arg("engines"),
        Duration::from_secs(900),
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    // Each lane's steps for both runtimes, and the leftover checks.
    for must in [
        "PASS podman/ocirun: run --rm true",
        "PASS podman/ocirun: run -it through the console socket",
        "PASS podman/ocirun: exec -t",
        "PASS podman/ocirun: the default seccomp profile",
        "PASS podman/crun: run -it through the console socket",
        "PASS containerd/ocirun: a create that fails: the shim reports the runtime's message",
        "PASS containerd/crun: task exec",
        "PASS cri: the CRI plugin starts",
        "PASS nothing left: no process in the lane's mount namespace",
        "PASS nothing left: no cgroup under microtools-engines/ that could not be removed",
        "PASS nothing left: no nsfs mount in the host's mount namespace",
    ] {
        assert!(lines.contains(&must), "no {must:?} in:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("FAIL "), "{}", out.stdout);
    let summary = lines.last().copied().unwrap_or("");
    let passed: usize = summary
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary {summary:?}"));
    assert_eq!(
        passed,
        lines.iter().filter(|l| l.starts_with("PASS ")).count()
    );
    // Both runtimes ran the same podman and containerd steps.
    let count = |p: &str| lines.iter().filter(|l| l.starts_with(p)).count();
    assert_eq!(count("PASS podman/ocirun: "), count("PASS podman/crun: "));
    assert_eq!(
        count("PASS containerd/ocirun: "),
        count("PASS containerd/crun: ")
    );
}
