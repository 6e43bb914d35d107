//! The same argument vectors through util-linux's /usr/bin/unshare (2.38.1 here) and unshare-rs:
//! same exit status, same output, same namespace shape.

mod common;

use common::*;
use testcaps::Cap;

/// Vectors whose stdout is deterministic, run as root.
const VECTORS: &[&[&str]] = &[
    &["true"],
    &["false"],
    &["sh", "-c", "exit 3"],
    &["-f", "sh", "-c", "exit 4"],
    &["-f", "sh", "-c", "kill -TERM $$"],
    // Not `kill -KILL`: util-linux 2.38.1 then fails to unblock the signal and exits 1, where
    // unshare-rs gives 137 as the issue asks (see namespaces.rs).
    &["sh", "-c", "kill -TERM $$"],
    &["-u", "sh", "-c", "hostname differential; hostname"],
    &["-r", "id", "-u"],
    &["-r", "id", "-g"],
    &["-c", "id"],
    &["--map-user=5", "--map-group=7", "id", "-u"],
    // Not `-r --setgroups deny`: util-linux 2.38.1 writes setgroups after gid_map and fails
    // with EPERM; unshare-rs succeeds (namespaces.rs checks the result).
    &["-U", "--setgroups", "deny", "cat", "/proc/self/setgroups"],
    &["-U", "cat", "/proc/self/uid_map"],
    &["-fp", "--mount-proc", "sh", "-c", "echo $$"],
    &["-fp", "--mount-proc=/proc", "readlink", "/proc/self"],
    &[
        "-fmp",
        "--mount-proc",
        "--propagation",
        "slave",
        "readlink",
        "/proc/self",
    ],
    &["-n", "ip", "-o", "link", "show", "lo"],
    &["-m", "findmnt", "-n", "-o", "PROPAGATION", "/"],
    &[
        "-m",
        "--propagation",
        "slave",
        "findmnt",
        "-n",
        "-o",
        "PROPAGATION",
        "/",
    ],
    &[
        "-m",
        "--propagation=unchanged",
        "findmnt",
        "-n",
        "-o",
        "PROPAGATION",
        "/",
    ],
    &[
        "-m",
        "--propagation=private",
        "findmnt",
        "-n",
        "-o",
        "PROPAGATION",
        "/",
    ],
    &["-R", "/", "-w", "/tmp", "pwd"],
    &["-R", "/", "pwd"],
    &["-fp", "-R", "/", "--mount-proc", "readlink", "/proc/self"],
    &[
        "-m",
        "--mount-proc",
        "sh",
        "-c",
        "test -d /proc/self && echo proc",
    ],
    &["--wd=/usr", "pwd"],
    &["-S", "5", "-G", "7", "id"],
    &["--setuid=0", "--setgid=0", "id", "-u"],
    &["--kill-child=TERM", "true"],
    &["--kill-child", "sh", "-c", "exit 9"],
    &["-fpmu", "sh", "-c", "echo $$"],
    &["-m", "--", "sh", "-c", "echo after-dashes"],
    &["-T", "--monotonic=0", "true"],
    &["-fT", "--monotonic", "10", "--boottime", "-5", "true"],
    // A unique prefix of a long option (not --fo: --forward-signals makes it ambiguous).
    &["--ut", "-f", "sh", "-c", "exit 6"],
    &["-i", "sh", "-c", "ipcs -q | grep -c 0x || true"],
    &["-C", "cat", "/proc/self/cgroup"],
    // The program inherits the caller's signal dispositions (Rust's runtime ignores SIGPIPE).
    &["grep", "^SigIgn", "/proc/self/status"],
    &["-f", "grep", "^SigIgn", "/proc/self/status"],
    &["/nonexistent/program"],
    &["/proc/self/status"],
];

#[test]
fn same_status_and_output_as_util_linux() {
    testcaps::require!(Cap::Root, Cap::Userns);
    for args in VECTORS {
        let a = ours(args);
        let b = util(args);
        assert_eq!(
            (a.code, a.signal),
            (b.code, b.signal),
            "{args:?}\nours: {a:?}\nutil: {b:?}"
        );
        assert_eq!(a.stdout, b.stdout, "{args:?}");
        // Messages differ only in the tool's name and wording; both say something or nothing.
        assert_eq!(
            a.stderr.is_empty(),
            b.stderr.is_empty(),
            "{args:?}\n{a:?}\n{b:?}"
        );
    }
}

#[test]
fn same_namespace_shape_as_util_linux() {
    testcaps::require!(Cap::Root, Cap::Userns);
    for opts in [
        &[][..],
        &["-m"],
        &["-u"],
        &["-i"],
        &["-n"],
        &["-fp"],
        &["-U"],
        &["-C"],
        &["-fT"],
        &["-r"],
        &["-fmipunC"],
        &["-fmipunUCT"],
        &["--mount-proc", "-fp"],
        &["--kill-child", "-u"],
        &["--user", "--net", "--fork", "--pid"],
        &["--map-current-user"],
    ] {
        let (a, da) = shape(bin(), opts);
        let (b, db) = shape(UTIL, opts);
        assert_eq!(a.code, b.code, "{opts:?}");
        assert_eq!(da, db, "{opts:?}");
    }
}

#[test]
fn the_same_usage_errors_as_util_linux() {
    for args in [
        &["--bogus"][..],
        &["-Z"],
        &["-mfoo"],
        &["--fork=1"],
        &["--map"],
        &["--root"],
        &["-R"],
        &["--map-users=1:2", "true"],
        &["--kill-child=FOO", "true"],
        &["-T", "--monotonic=abc", "true"],
        &["--monotonic=5", "true"],
        &["--propagation=foo", "true"],
        &["--setgroups=x", "true"],
        &["-r", "--setgroups=allow", "true"],
        &["-R", "/nonexistent", "true"],
        &["-w", "/nonexistent", "true"],
        &["-S", "no-such-user-xyz", "true"],
        // util-linux fails to mount proc on "" (issue #22 item 12); unshare-rs at parse.
        &["--mount-proc=", "true"],
        &["-fp", "--mount-proc=", "true"],
    ] {
        let a = ours(args);
        let b = util(args);
        assert_eq!(a.code, Some(1), "{args:?}: {a:?}");
        assert_eq!(a.code, b.code, "{args:?}: {b:?}");
        assert_eq!(a.stderr.lines().count(), 1, "{args:?}: {a:?}");
    }
}

#[test]
fn persistence_behaves_like_util_linux() {
    testcaps::require!(Cap::Root);
    // Each run in its own private mount namespace, on its own tmpfs; util-linux 2.38.1 needs
    // the target files to exist. (Not --user=FILE: util-linux 2.38.1 binds it from inside the
    // new user namespace and gets EPERM; namespaces.rs checks that unshare-rs persists it.)
    let script = r#"
        set -e
        D=$1; B=$2
        mount -t tmpfs tmpfs "$D"
        touch "$D/uts" "$D/ipc" "$D/net" "$D/pid" "$D/time"
        "$B" --uts="$D/uts" --ipc="$D/ipc" --net="$D/net" hostname same-name
        nsenter --uts="$D/uts" hostname
        nsenter --net="$D/net" ip -o link show lo | grep -c DOWN
        "$B" -f --pid="$D/pid" --time="$D/time" --boottime=1000 true
        nsenter --time="$D/time" cat /proc/uptime | awk '{ print ($1 >= 1000) }'
        awk '/ - nsfs / { split($4, a, ":"); print a[1] }' /proc/self/mountinfo | sort
    "#;
    let dir_a = TempDir::new("unshare-rs-diff-a").expect("temp dir");
    let dir_b = TempDir::new("unshare-rs-diff-b").expect("temp dir");
    let a = script_in_private_mnt_ns(script, &dir_a, bin());
    let b = script_in_private_mnt_ns(script, &dir_b, UTIL);
    assert_eq!(a.code, Some(0), "{a:?}");
    assert_eq!((a.code, &a.stdout), (b.code, &b.stdout), "{b:?}");
    assert_eq!(a.stdout, "same-name\n1\n1\nipc\nnet\npid\ntime\nuts\n");
    assert!(host_mounts_with(path_str(&dir_a)).is_empty());
    assert!(host_mounts_with(path_str(&dir_b)).is_empty());
}

#[test]
fn help_and_version_exit_0_like_util_linux() {
    for args in [
        &["-h"][..],
        &["--help"],
        &["-V"],
        &["--version"],
        &["-m", "-V"],
    ] {
        let a = ours(args);
        let b = util(args);
        assert_eq!((a.code, b.code), (Some(0), Some(0)), "{args:?}");
        assert!(!a.stdout.is_empty() && a.stderr.is_empty(), "{args:?}");
    }
}

/// Issue #22 items 6 and 12: a missing persistence file is an error, as in util-linux (nothing
/// is created), and a run that fails after persisting (a bad -w, a program that is not there,
/// with or without -f) unmounts what it bound, where util-linux leaves the binds.
#[test]
fn persistence_files_must_exist_and_a_failed_run_leaves_nothing_bound() {
    testcaps::require!(Cap::Root);
    let script = r#"
        D=$1; B=$2
        mount -t tmpfs tmpfs "$D"
        "$B" --uts="$D/missing" true 2>/dev/null; echo "missing rc=$?"
        test -e "$D/missing" && echo created || echo "not created"
        touch "$D/uts" "$D/net"
        "$B" --uts="$D/uts" -w /nonexistent true 2>/dev/null; echo "wd rc=$?"
        grep -c ' - nsfs ' /proc/self/mountinfo
        "$B" -f --uts="$D/uts" --net="$D/net" -w /nonexistent true 2>/dev/null; echo "fork wd rc=$?"
        grep -c ' - nsfs ' /proc/self/mountinfo
        "$B" --uts="$D/uts" /nonexistent/program 2>/dev/null; echo "exec rc=$?"
        grep -c ' - nsfs ' /proc/self/mountinfo
        "$B" -f --net="$D/net" /nonexistent/program 2>/dev/null; echo "fork exec rc=$?"
        grep -c ' - nsfs ' /proc/self/mountinfo
        "$B" --uts="$D/uts" -f hostname kept; echo "kept rc=$?"
        grep -c ' - nsfs ' /proc/self/mountinfo
    "#;
    let dir_a = TempDir::new("unshare-rs-undo-a").expect("temp dir");
    let dir_b = TempDir::new("unshare-rs-undo-b").expect("temp dir");
    let a = script_in_private_mnt_ns(script, &dir_a, bin());
    let b = script_in_private_mnt_ns(script, &dir_b, UTIL);
    assert_eq!(
        a.stdout,
        "missing rc=1\nnot created\nwd rc=1\n0\nfork wd rc=1\n0\nexec rc=127\n0\nfork exec rc=127\n0\nkept rc=0\n1\n",
        "{a:?}"
    );
    // util-linux fails the same way, with the same statuses, but keeps the binds.
    assert_eq!(
        b.stdout,
        "missing rc=1\nnot created\nwd rc=1\n1\nfork wd rc=1\n3\nexec rc=127\n4\nfork exec rc=127\n5\nkept rc=0\n6\n",
        "{b:?}"
    );
    assert!(host_mounts_with(path_str(&dir_a)).is_empty());
    assert!(host_mounts_with(path_str(&dir_b)).is_empty());
}
