//! Bad input: exit 1, one clear line on stderr, nothing run (the program would print `ran`).

mod common;

use common::*;
use testcaps::Cap;

#[test]
fn usage_errors_need_no_privilege() {
    for (args, needle) in [
        (
            &["-m", "echo", "ran"][..],
            "neither filename nor target pid supplied for --mount",
        ),
        (&["-a", "echo", "ran"], "no target PID specified for --all"),
        (&["-r", "echo", "ran"], "--root"),
        (&["-e", "echo", "ran"], "--env needs a target"),
        (&["-S", "follow", "echo", "ran"], "needs a target"),
        (&["-c", "echo", "ran"], "--join-cgroup needs a target"),
        (&["-N", "3", "echo", "ran"], "--net-socket needs a target"),
        (&["-t", "0", "-n", "echo", "ran"], "must be 1 or more"),
        (
            &["-t", "abc", "-n", "echo", "ran"],
            "failed to parse pid: 'abc'",
        ),
        (&["-t", "1:abc", "-n", "echo", "ran"], "pidfs inode"),
        (&["-t", "1:", "-n", "echo", "ran"], "pidfs inode"),
        (&["-t", "1:2:3", "-n", "echo", "ran"], "pidfs inode"),
        (
            &["-t", "1", "-W/", "-w", "echo", "ran"],
            "mutually exclusive arguments: --wdns --wd",
        ),
        (
            &["-Z", "-t", "1", "echo", "ran"],
            "SELinux is not supported",
        ),
        (
            &["-t", "1", "-N", "3", "-n", "echo", "ran"],
            "--net-socket and --net",
        ),
        (
            &["-t", "1", "-n", "--mount-proc", "echo", "ran"],
            "--mount-proc needs",
        ),
        (&["--json", "echo", "ran"], "--json only goes with --ls"),
        (&["--ls", "-n", "-t", "1"], "--ls takes only"),
        (&["-t"], "option '-t' requires an argument"),
        (&["--setuid=bob", "echo", "ran"], "failed to parse uid"),
        (&["-x"], "unexpected argument '-x' found"),
        (&["--all=1"], "doesn't allow an argument"),
        (&["--p"], "is ambiguous"),
        (&["-t", "1", "echo", "ran"], "no namespace specified"),
        (
            &["--user-parent", "echo", "ran"],
            "--user-parent needs a target",
        ),
    ] {
        let out = nsenter_rs(args);
        assert_fails(&out, needle);
        assert!(
            out.stderr.trim_end().ends_with("(try 'nsenter-rs --help')"),
            "{out:?}"
        );
    }
}

#[test]
fn runtime_errors_name_the_cause() {
    testcaps::require!(Cap::Root);
    let t = Target::start(&["/usr/bin/unshare", "-n", "sleep", "60"], false);
    let pid = t.pid.to_string();
    let mnt_file = format!("/proc/{pid}/ns/mnt");
    let wrong_kind = format!("--net={mnt_file}");
    for (args, needle) in [
        (
            vec!["-t", "2147483647", "-n", "echo", "ran"],
            "target process 2147483647 does not exist",
        ),
        (
            vec!["--net=/etc/hostname", "echo", "ran"],
            "/etc/hostname is not a namespace file",
        ),
        (
            vec!["--net=/nonexistent", "echo", "ran"],
            "open(/nonexistent) failed: No such file",
        ),
        (
            vec![wrong_kind.as_str(), "echo", "ran"],
            "is a mnt namespace, not a net namespace",
        ),
        (
            vec!["--uts=/proc", "echo", "ran"],
            "/proc is not a namespace file",
        ),
        (
            vec!["-t", &pid, "-U", "echo", "ran"],
            "it is your own user namespace",
        ),
        (
            vec!["-t", &pid, "-u", "-r/nonexistent", "echo", "ran"],
            "open(/nonexistent)",
        ),
        (
            vec!["-t", &pid, "-n", "-W/nonexistent", "echo", "ran"],
            "chdir(/nonexistent)",
        ),
        (
            vec!["-t", &pid, "-N", "77", "echo", "ran"],
            "has no file descriptor 77",
        ),
    ] {
        let out = nsenter_rs(&args);
        assert_fails(&out, needle);
    }
}

#[test]
fn ptrace_refusal_is_named() {
    testcaps::require!(Cap::Root);
    // An unprivileged caller may not look into root's process: the ptrace access check.
    let t = Target::start(&["sleep", "60"], false);
    let bin = WorldExec::new();
    let out = bin.run_retrying(|| {
        let mut c = std::process::Command::new("setpriv");
        c.current_dir("/")
            .args(["--reuid=1234", "--regid=1234", "--clear-groups"])
            .arg(&bin.bin)
            .arg("-t")
            .arg(t.pid.to_string())
            .args(["-n", "echo", "ran"]);
        c
    });
    assert_fails(&out, "ptrace access mode check");
}

#[test]
fn namespace_of_another_users_user_namespace_is_named() {
    testcaps::require!(Cap::Root);
    // A network namespace persisted by root (in a private mount namespace that disappears with
    // the script), entered by uid 1234: setns is refused, and the owner is named.
    let bin = WorldExec::new();
    let script = format!(
        "set -e; mount -t tmpfs tmpfs /mnt; chmod 755 /mnt; touch /mnt/n; \
         unshare --net=/mnt/n true; \
         exec setpriv --reuid=1234 --regid=1234 --clear-groups '{}' --net=/mnt/n echo ran",
        bin.path()
    );
    let out = bin.run_retrying(|| {
        let mut c = std::process::Command::new("/usr/bin/unshare");
        c.current_dir("/")
            .args(["-m", "--propagation", "private", "sh", "-c", &script]);
        c
    });
    assert_fails(
        &out,
        "setns(/mnt/n, CLONE_NEWNET) failed: Operation not permitted",
    );
    assert!(
        out.stderr.contains("owned by another user (uid 0)"),
        "{out:?}"
    );
}
