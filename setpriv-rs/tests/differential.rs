//! setpriv-rs against util-linux setpriv (2.38.1 on this host) for every option both have: the
//! same exit status, the same stdout (the `--dump` text, what a child sees in
//! /proc/self/status, `id`, `env`), and errors of the same shape (one line, the tool's name).
//!
//! Where 2.42 differs from 2.38 (no --ptracer, --landlock-*, --seccomp-filter in 2.38) the
//! options are tested against the kernel instead, in tests/apply.rs.

use std::process::Command;
use std::time::Duration;
use testcaps::Cap;

const BIN: &str = env!("CARGO_BIN_EXE_setpriv-rs");
const UL: &str = "setpriv";

fn run(bin: &str, args: &[&str]) -> testcaps::Output {
    testcaps::run(
        Command::new(if bin == BIN {
            testcaps::tool_bin("setpriv-rs", BIN)
        } else {
            bin
        })
        .args(args)
        .env("TERM", "xterm"),
        Duration::from_secs(30),
    )
}

/// Runs both; same code and stdout, and stderr empty for both or one line for both.
fn compare(args: &[&str]) {
    let ours = run(BIN, args);
    let theirs = run(UL, args);
    assert_eq!(
        (ours.code, &ours.stdout),
        (theirs.code, &theirs.stdout),
        "{args:?}\nours: {ours:?}\ntheirs: {theirs:?}"
    );
    assert_eq!(
        ours.stderr.is_empty(),
        theirs.stderr.is_empty(),
        "{args:?}\nours: {ours:?}\ntheirs: {theirs:?}"
    );
    if !ours.stderr.is_empty() {
        assert_eq!(ours.stderr.lines().count(), 1, "{ours:?}");
        assert!(ours.stderr.starts_with("setpriv-rs: "), "{ours:?}");
    }
}

/// The lines of a child's /proc/self/status that privileges show in.
const STATUS: &str = "grep -E '^(Cap|NoNewPrivs|Seccomp|Groups|Uid|Gid)' /proc/self/status";

#[test]
fn dump_and_list_caps_match() {
    compare(&["-d"]);
    compare(&["--dump", "-d"]);
    compare(&["-ddd"]);
    compare(&["--list-caps"]);
}

#[test]
fn what_the_program_sees_matches() {
    testcaps::require!(Cap::Root);
    for opts in [
        &[][..],
        &["--nnp"],
        &["--no-new-privs"],
        &["--inh-caps", "+chown,+cap_3"],
        &["--inh-caps=-all"],
        &["--bounding-set", "-all,+chown,+net_bind_service"],
        &["--bounding-set", "-sys_admin,-mknod"],
        &["--inh-caps", "+net_raw", "--ambient-caps", "+net_raw"],
        &[
            "--inh-caps",
            "+CHOWN,+KILL",
            "--ambient-caps",
            "+chown,+kill,-chown",
        ],
        &["--reuid", "65534", "--regid", "65534", "--clear-groups"],
        &["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"],
        &["--ruid", "65534", "--egid", "65534", "--keep-groups"],
        &["--euid", "65534"],
        &["--rgid", "1", "--groups", "1,2,3"],
        &["--regid", "0", "--groups", "root,daemon"],
        &["--reuid", "nobody", "--init-groups"],
        &[
            "--reuid",
            "65534",
            "--inh-caps",
            "+chown",
            "--ambient-caps",
            "+chown",
            "--clear-groups",
            "--regid",
            "65534",
        ],
    ] {
        let mut args = opts.to_vec();
        args.extend(["sh", "-c", STATUS]);
        compare(&args);
    }
}

#[test]
fn settings_shown_by_a_dump_in_the_program_match() {
    testcaps::require!(Cap::Root);
    // util-linux's own --dump as the program, so both are read the same way.
    for opts in [
        &["--securebits", "+noroot"][..],
        &["--securebits", "+noroot,+no_setuid_fixup,-noroot"],
        &["--securebits", "-all"],
        &["--securebits", "+keep_caps_locked"],
        &["--pdeathsig", "TERM"],
        &["--pdeathsig", "clear"],
        &["--pdeathsig", "keep"],
        &["--pdeathsig", "sigkill"],
    ] {
        let mut args = opts.to_vec();
        args.extend(["setpriv", "-d"]);
        compare(&args);
    }
}

#[test]
fn reset_env_matches() {
    testcaps::require!(Cap::Root);
    compare(&["--reset-env", "env"]);
    compare(&[
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
        "--reset-env",
        "env",
    ]);
}

#[test]
fn exit_statuses_match() {
    compare(&["sh", "-c", "exit 7"]);
    compare(&["true"]);
    compare(&["--", "false"]);
    // Exec failures: 127 not found, 126 not executable.
    compare(&["/nonexistent/program"]);
    compare(&["/etc/passwd"]);
}

#[test]
fn usage_errors_match() {
    for args in [
        &["-d", "--nnp"][..],
        &["-d", "true"],
        &["--list-caps", "--nnp"],
        &[],
        &["--nnp"],
        &["--regid", "0", "true"],
        &["--init-groups", "true"],
        &["--inh-caps", "+nope", "true"],
        &["--bounding-set", "chown", "true"],
        &["--ambient-caps", "+chown,", "true"],
        &["--securebits", "+all", "true"],
        &["--securebits", "noroot", "true"],
        &["--securebits", "+keep_caps", "true"],
        &["--securebits", "+bogus", "true"],
        &["--pdeathsig", "NOPE", "true"],
        &["--nnp", "--nnp", "true"],
        &["--clear-groups", "--keep-groups", "true"],
        &["--ruid", "0", "--reuid", "0", "true"],
    ] {
        let ours = run(BIN, args);
        let theirs = run(UL, args);
        assert_eq!(
            ours.code, theirs.code,
            "{args:?}\nours: {ours:?}\ntheirs: {theirs:?}"
        );
        assert_eq!(
            (ours.stdout.as_str(), theirs.stdout.as_str()),
            ("", ""),
            "{args:?}"
        );
        assert_eq!(ours.stderr.lines().count(), 1, "{args:?}: {ours:?}");
        assert!(ours.stderr.starts_with("setpriv-rs: "), "{ours:?}");
    }
}

#[test]
fn privilege_failures_exit_1_where_util_linux_exits_127() {
    // util-linux exits 127 when it cannot apply a setting (SETPRIV_EXIT_PRIVERR), which a caller
    // cannot tell from "program not found"; setpriv-rs exits 1 as the other tools, same message.
    testcaps::require_that!(
        "noselinux",
        if std::path::Path::new("/sys/fs/selinux").exists() {
            Err("/sys/fs/selinux exists: SELinux is running".to_string())
        } else {
            Ok(())
        }
    );
    let ours = run(BIN, &["--selinux-label", "x", "true"]);
    let theirs = run(UL, &["--selinux-label", "x", "true"]);
    assert_eq!((ours.code, theirs.code), (Some(1), Some(127)));
    assert_eq!(
        ours.stderr,
        "setpriv-rs: --selinux-label: SELinux is not running\n"
    );
    assert_eq!(theirs.stderr, "setpriv: SELinux is not running\n");
    if !std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        let ours = run(BIN, &["--apparmor-profile", "x", "true"]);
        assert_eq!(ours.code, Some(1));
        assert_eq!(
            ours.stderr,
            "setpriv-rs: --apparmor-profile: AppArmor is not running (no /sys/kernel/security/apparmor)\n"
        );
    }
}
