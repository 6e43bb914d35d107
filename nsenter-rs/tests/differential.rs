//! nsenter-rs against util-linux nsenter (2.38.1 here) for option vectors both know: the same
//! exit status and the same output of the program run inside.

mod common;

use common::*;
use std::process::Command;
use testcaps::Cap;

fn compare(args: &[String], program: &[String]) {
    let ours = nsenter_rs_prog(args, program);
    let theirs = nsenter_ul_prog(args, program);
    assert_eq!(
        (ours.code, ours.signal, &ours.stdout),
        (theirs.code, theirs.signal, &theirs.stdout),
        "{args:?} {program:?}\nours: {ours:?}\ntheirs: {theirs:?}"
    );
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

#[test]
fn same_namespaces_as_util_linux() {
    testcaps::require!(Cap::Root);
    let flat = flat_target();
    for opts in [
        &["-m"][..],
        &["-u"],
        &["-i"],
        &["-n"],
        &["-C"],
        &["--mount", "--uts", "--ipc", "--net", "--cgroup"],
        &["-mn"],
        &["-n", "-F"],
        &["-n", "-S", "0", "-G", "0"],
        &["--net", "--wd"],
    ] {
        compare(&with_target(flat.pid, opts), &inode_script());
    }
    let pid = pid_target();
    for opts in [
        &["-p", "-m"][..],
        &["-a"],
        &["-T", "-p", "-m"],
        &["--all", "--no-fork"],
    ] {
        compare(&with_target(pid.pid, opts), &inode_script());
    }
    // Namespace files instead of a target.
    let files: Vec<String> = ["uts", "net", "ipc"]
        .iter()
        .map(|k| format!("--{k}=/proc/{}/ns/{k}", flat.pid))
        .collect();
    compare(&files, &inode_script());
    // Signal dispositions and the mask reach the program untouched (no SIGPIPE ignored).
    compare(
        &with_target(flat.pid, &["-n"]),
        &sh("grep -E '^Sig(Ign|Blk)' /proc/self/status"),
    );
    // Options end at the program: its own options are left alone.
    compare(&with_target(flat.pid, &["-n"]), &sh("echo \"$0\" -n -t 1"));
    compare(
        &with_target(flat.pid, &["-n", "--"]),
        &["echo".into(), "-t".into(), "x".into()],
    );
}

#[test]
fn same_status_as_util_linux() {
    testcaps::require!(Cap::Root);
    let t = Target::start(&["/usr/bin/unshare", "-fp", "sleep", "60"], true);
    for script in [
        "exit 0",
        "exit 3",
        "exit 255",
        "kill -9 $$",
        "kill -15 $$",
        "kill -2 $$",
    ] {
        compare(&with_target(t.pid, &["-p"]), &sh(script));
        compare(&with_target(t.pid, &["-p", "-F"]), &sh(script));
    }
    compare(
        &with_target(t.pid, &["-n"]),
        &["/nonexistent/prog".to_string()],
    );
    compare(&with_target(t.pid, &["-n"]), &["/etc".to_string()]);
    // The forked program gets the signal dispositions and mask we were started with.
    compare(
        &with_target(t.pid, &["-p"]),
        &sh("grep -E '^Sig(Ign|Blk)' /proc/self/status"),
    );
}

#[test]
fn same_cwd_as_util_linux() {
    testcaps::require!(Cap::Root);
    let t = Target::start(&["sleep", "60"], false);
    compare(&with_target(t.pid, &["-w"]), &["pwd".to_string()]);
    let r = testcaps::run(
        Command::new("sh").args(["-c", &format!("cd /tmp && '{BIN}' -t {} -n pwd", t.pid)]),
        LIMIT,
    );
    assert_eq!(r.stdout, "/tmp\n", "{r:?}");
}

#[test]
fn same_failures_as_util_linux() {
    // Exit codes only: the messages are ours (and name the cause).
    for args in [
        &["-m", "true"][..],
        &["-a", "true"],
        &["-t", "abc", "true"],
        &["-t", "1", "-W", "/", "-w", "true"],
        &["-t"],
        &["--bogus"],
        &["-x"],
    ] {
        let ours = nsenter_rs(args);
        let theirs = testcaps::run(Command::new("/usr/bin/nsenter").args(args), LIMIT);
        assert_eq!(ours.code, theirs.code, "{args:?}: {ours:?} {theirs:?}");
        assert_eq!(ours.stdout, theirs.stdout, "{args:?}");
        assert_eq!(ours.stderr.lines().count(), 1, "{ours:?}");
    }
}
