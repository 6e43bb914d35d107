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
        "PASS nothing left: the host's /etc/containers and /etc/cni are as they were",
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

/// The lane's inner modes mount tmpfs on /run: they refuse to run unless the recipe started
/// them in a mount namespace other than its own. Probed inside a private mount namespace, so
/// that a broken guard could not reach the host's mounts.
#[test]
fn the_inner_modes_refuse_the_callers_mount_namespace() {
    require!(Cap::Root);
    let dir = std::env::temp_dir().join(testcaps::unique_name("engines-guard"));
    let want = "xtask: the engine lanes mount tmpfs on /run: refused outside the mount namespace \
                `cargo xtask engines` makes for them (MICROTOOLS_ENGINES_OUTER_NS must name \
                another namespace)\n";
    for mode in ["--inside", "--hold"] {
        // No namespace named, and then the very namespace the mode runs in.
        for same in [false, true] {
            let script = if same {
                "MICROTOOLS_ENGINES_OUTER_NS=$(stat -L -c %i /proc/self/ns/mnt) exec \"$@\""
            } else {
                "exec \"$@\""
            };
            let out = testcaps::run(
                Command::new("unshare")
                    .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
                    .arg(env!("CARGO_BIN_EXE_xtask"))
                    .args(["engines", mode])
                    .arg(&dir)
                    .env_remove("MICROTOOLS_ENGINES_OUTER_NS"),
                Duration::from_secs(60),
            );
            assert_eq!(out.code, Some(1), "{mode} same={same}: {out:?}");
            assert_eq!(out.stderr, want, "{mode} same={same}");
        }
    }
    assert!(!dir.exists());
}
