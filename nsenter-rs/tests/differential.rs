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
    compare(&with_target(t.pid, &["-u", "-w"]), &["pwd".to_string()]);
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

/// A target with its own user namespace (setgroups denied, as `-r` leaves it), pid namespace
/// and /proc, made by our unshare-rs; killed by PID on drop.
fn own_proc_target() -> Target {
    let unshare_rs = testcaps::sibling_bin("unshare-rs");
    let unshare_rs = unshare_rs.to_str().expect("utf-8 path");
    Target::start(
        &[unshare_rs, "-r", "-fp", "--mount-proc", "sleep", "60"],
        true,
    )
}

/// Issue #22 item 7: after joining a mount namespace whose /proc belongs to another pid
/// namespace, /proc/self does not exist for us; util-linux never looks there. nsenter-rs used
/// to, and blamed setgroups for its ENOENT.
#[test]
fn user_and_mount_namespace_of_a_target_with_its_own_proc() {
    testcaps::require!(Cap::Root, Cap::Userns);
    let t = own_proc_target();
    for opts in [&["-U", "-n", "-m"][..], &["-U", "-m"], &["-U", "-m", "-p"]] {
        let args = with_target(t.pid, opts);
        let ours = nsenter_rs_prog(&args, &sh("id -u; id -g; id -G"));
        assert_eq!(
            (ours.code, ours.stdout.as_str(), ours.stderr.as_str()),
            (Some(0), "0\n0\n0\n", ""),
            "{opts:?}"
        );
        compare(&args, &sh("id -u; id -g; id -G"));
    }
}

/// util-linux since 2.40 (followed here; 2.38.1 on this host differs): `-t PID` with nothing
/// to enter is an error, "no namespace specified".
#[test]
fn a_target_without_a_namespace_is_an_error() {
    testcaps::require!(Cap::Root);
    let t = Target::start(&["sleep", "60"], false);
    let pid = t.pid.to_string();
    for args in [
        &["-t", pid.as_str(), "echo", "ran"][..],
        &["-t", pid.as_str(), "-w", "echo", "ran"],
        &["-t", pid.as_str(), "-r", "-F", "echo", "ran"],
    ] {
        let ours = nsenter_rs(args);
        assert_fails(&ours, "no namespace specified");
        // 2.38.1 runs the program where it is.
        let theirs = testcaps::run(Command::new("/usr/bin/nsenter").args(args), LIMIT);
        assert_eq!((theirs.code, theirs.stdout.as_str()), (Some(0), "ran\n"));
    }
}

/// util-linux since 2.40: `-W` takes an optional argument (attached: `-W/dir`, `-W=/dir`,
/// `--wdns=/dir`); 2.38.1 needs one. The forms both read the same way are compared.
#[test]
fn wdns_takes_an_optional_argument() {
    testcaps::require!(Cap::Root);
    let t = Target::start(&["sleep", "60"], false);
    for opts in [&["-u", "-W/etc"][..], &["-u", "--wdns=/etc"]] {
        compare(&with_target(t.pid, opts), &["pwd".to_string()]);
    }
    let r = testcaps::run(
        Command::new("sh").args([
            "-c",
            &format!(
                "cd /tmp && '{BIN}' -t {} -u -W=/etc pwd && '{BIN}' -t {} -u -W pwd",
                t.pid, t.pid
            ),
        ]),
        LIMIT,
    );
    // -W=/etc drops the '=' as util-linux does; -W alone changes nothing and `pwd` is the
    // program (2.38.1 would take `pwd` as the directory).
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "/etc\n/tmp\n"),
        "{r:?}"
    );
    assert_fails(
        &nsenter_rs(
            &with_target(t.pid, &["-u", "-w", "-W", "true"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        ),
        "mutually exclusive",
    );
}

/// A zombie target: util-linux says "cannot open /proc/PID/ns/net: No such file or directory";
/// nsenter-rs fails the same way and says why.
#[test]
fn a_zombie_target_is_named_as_such() {
    testcaps::require!(Cap::Root);
    // sh starts `true` and becomes a sleep that never reaps it.
    let parent = Target::start(&["sh", "-c", "/bin/true & exec sleep 60"], false);
    let zombie = Target::child_named(parent.pid, "true");
    let state = || std::fs::read_to_string(format!("/proc/{zombie}/stat")).unwrap_or_default();
    for _ in 0..500 {
        if state().contains(") Z ") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(state().contains(") Z "), "{}", state());
    let z = zombie.to_string();
    for (args, no_pidfd) in [
        (&["-t", z.as_str(), "-n", "echo", "ran"][..], false),
        (&["-t", z.as_str(), "-n", "echo", "ran"], true),
        (&["-t", z.as_str(), "-a", "echo", "ran"], false),
        (&["-t", z.as_str(), "-u", "-r", "echo", "ran"], false),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        if no_pidfd {
            cmd.env("NSENTER_RS_NO_PIDFD", "1");
        }
        let ours = testcaps::run(&mut cmd, LIMIT);
        assert_fails(
            &ours,
            &format!(
                "process {z} is a zombie: it has exited and its parent, process {}",
                parent.pid
            ),
        );
        let theirs = testcaps::run(Command::new("/usr/bin/nsenter").args(args), LIMIT);
        assert_eq!(
            (theirs.code, theirs.stdout.as_str()),
            (Some(1), ""),
            "{theirs:?}"
        );
    }
}
