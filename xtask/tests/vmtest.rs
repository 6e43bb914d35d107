//! `cargo xtask vmtest` boots the guest kernel, runs the guest cases and reports them: the whole
//! lane end to end, and that a failing guest case fails the lane with its output shown.

use std::process::Command;
use testcaps::{require, Cap};

fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.arg("vmtest");
    c
}

fn summary_line(stdout: &str) -> Option<(usize, usize)> {
    let last = stdout.lines().last()?;
    let (p, f) = last.split_once(" passed, ")?;
    Some((p.parse().ok()?, f.strip_suffix(" failed")?.parse().ok()?))
}

/// The whole lane: every case in xtask/vmtest/cases passes in one boot (the busybox-only baseline
/// cases and the tool cases: cgctl on pure cgroup v2, pivot from an initramfs, unshare-rs and
/// nsenter-rs on 6.1), and the final line counts all of them.
#[test]
fn every_guest_case_passes() {
    require!(Cap::Kernel, Cap::Qemu, Cap::Rootfs);
    let cases = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/vmtest/cases"))
        .expect("xtask/vmtest/cases")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sh"))
        .count();
    let out = testcaps::run(xtask().args(["--timeout", "300"]), testcaps::HANG_GUARD);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        summary_line(&out.stdout),
        Some((cases, 0)),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("PASS baseline_cgroup2 ["),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("PASS baseline_initramfs ["),
        "{}",
        out.stdout
    );
}

/// A guest case that fails, one that leaves a cgroup behind and one that leaves a process behind
/// fail the lane, and the failure's output reaches the host.
#[test]
fn failing_guest_cases_fail_the_lane() {
    require!(Cap::Kernel, Cap::Qemu, Cap::Rootfs);
    let dir = std::env::temp_dir().join(testcaps::unique_name("xtask-vmtest-cases"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a_ok.sh"),
        "expect_eq \"$(cat /proc/1/comm)\" init \"pid 1\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b_bad.sh"),
        "echo some-diagnostic-text\nexpect_eq 1 2 \"one and two\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("c_leaky.sh"), "mkdir /sys/fs/cgroup/leaked\n").unwrap();
    std::fs::write(dir.join("d_orphan.sh"), "sleep 30 &\n").unwrap();
    let out = testcaps::run(
        xtask().arg("--cases").arg(&dir).args(["--timeout", "120"]),
        testcaps::HANG_GUARD,
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(summary_line(&out.stdout), Some((1, 3)), "{}", out.stdout);
    assert!(out.stdout.contains("PASS a_ok ["), "{}", out.stdout);
    assert!(
        out.stdout.contains("FAIL b_bad (exit 1) ["),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("    | some-diagnostic-text\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("    | FAIL: one and two: expected '2', got '1'\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("FAIL c_leaky (exit 0 cgroups-left-behind) ["),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("FAIL d_orphan (exit 0 processes-left-behind) ["),
        "{}",
        out.stdout
    );
}

fn one_case_dir(name: &str, script: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(testcaps::unique_name("xtask-vmtest-cases"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.sh")), script).unwrap();
    dir
}

/// A guest that runs past --timeout is killed (by PID) and the lane fails, naming the case that
/// never reported.
#[test]
fn a_guest_past_its_time_limit_is_killed_and_fails() {
    require!(Cap::Kernel, Cap::Qemu, Cap::Rootfs);
    let dir = one_case_dir("hangs", "sleep 600\n");
    let out = testcaps::run(
        xtask().arg("--cases").arg(&dir).args(["--timeout", "10"]),
        testcaps::HANG_GUARD,
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("killing the VMM"), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("FAIL hangs (no result: the guest did not run it)\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("guest did not finish"),
        "{}",
        out.stdout
    );
    assert_eq!(summary_line(&out.stdout), Some((0, 1)), "{}", out.stdout);
}

/// A guest kernel panic (panic=-1 and -no-reboot end QEMU) fails the lane.
#[test]
fn a_guest_panic_fails_the_lane() {
    require!(Cap::Kernel, Cap::Qemu, Cap::Rootfs);
    let dir = one_case_dir("crashes", "echo c >/proc/sysrq-trigger\nsleep 60\n");
    let out = testcaps::run(
        xtask().arg("--cases").arg(&dir).args(["--timeout", "120"]),
        testcaps::HANG_GUARD,
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stderr.contains("killing the VMM"), "{}", out.stderr);
    assert!(
        out.stdout.contains("guest did not finish"),
        "{}",
        out.stdout
    );
    assert_eq!(summary_line(&out.stdout), Some((0, 1)), "{}", out.stdout);
}
