//! unshare-rs's bubblewrap options (issue #27: `--unshare-all` with its `-try` forms,
//! `--disable-userns`) against Debian's bwrap on the same busybox rootfs: unshare-rs then pivot
//! on one side, bwrap binding the rootfs on the other, the same script inside, and the same
//! namespaces (which ones are new), id maps, messages and exit status.

mod common;

use common::*;
use std::process::Command;
use testcaps::Cap;

/// What the sandbox prints: its namespace links, its maps and setgroups, the limit it reads,
/// whether it can make a user namespace, and an exit status of its own.
const SCRIPT: &str =
    "for n in cgroup ipc mnt net pid time user uts; do readlink /proc/self/ns/$n; done; \
     cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; \
     cat /proc/sys/user/max_user_namespaces; \
     unshare -U true; echo unshare=$?; exit 7";

/// pivot, the other crate's test build (the one `cargo build` made).
fn pivot() -> String {
    testcaps::sibling_bin("pivot").display().to_string()
}

fn rootfs() -> String {
    testcaps::rootfs().display().to_string()
}

/// `[WRAP...] unshare-rs OPTS -- pivot ROOTFS /bin/sh -c SCRIPT`.
fn ours_on_rootfs(wrap: &[&str], opts: &[&str]) -> testcaps::Output {
    let (root, pivot) = (rootfs(), pivot());
    let mut args: Vec<&str> = wrap.to_vec();
    args.push(bin());
    args.extend(opts);
    args.extend(["--", &pivot, &root, "/bin/sh", "-c", SCRIPT]);
    testcaps::run(Command::new(args[0]).args(&args[1..]), LIMIT)
}

/// `[WRAP...] bwrap OPTS --bind ROOTFS / --proc /proc --dev /dev /bin/sh -c SCRIPT`.
fn bwrap_on_rootfs(wrap: &[&str], opts: &[&str]) -> testcaps::Output {
    let root = rootfs();
    let mut args: Vec<&str> = wrap.to_vec();
    args.push("bwrap");
    args.extend(opts);
    args.extend(["--bind", &root, "/", "--proc", "/proc", "--dev", "/dev"]);
    args.extend(["/bin/sh", "-c", SCRIPT]);
    testcaps::run(Command::new(args[0]).args(&args[1..]), LIMIT)
}

/// The namespace kinds of the sandbox's output that differ from `base` (the test's own, or the
/// wrapper's user namespace printed first), and the rest of the output.
fn split(out: &testcaps::Output) -> (Vec<String>, String) {
    let links = parse_links(&out.stdout);
    assert_eq!(links.len(), KINDS.len(), "{out:?}");
    let rest: String = out
        .stdout
        .lines()
        .filter(|l| !l.contains(":["))
        .map(|l| format!("{l}\n"))
        .collect();
    (differing(&links), rest)
}

#[test]
fn unshare_all_makes_the_namespaces_bwrap_makes() {
    testcaps::require!(Cap::Root, Cap::Userns, Cap::Rootfs);
    let ours = ours_on_rootfs(&[], &["--unshare-all"]);
    let theirs = bwrap_on_rootfs(&[], &["--unshare-all"]);
    assert_eq!(ours.code, Some(7), "{ours:?}");
    assert_eq!(theirs.code, Some(7), "{theirs:?}");
    let (ours_new, ours_rest) = split(&ours);
    let (theirs_new, theirs_rest) = split(&theirs);
    // bwrap's set: everything but time, the user and cgroup ones because this kernel has them.
    assert_eq!(
        ours_new,
        ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"],
        "{ours:?}"
    );
    assert_eq!(ours_new, theirs_new, "bwrap: {theirs:?}");
    // The caller (root) mapped to itself, setgroups denied; the sandbox may make user
    // namespaces.
    assert!(
        ours_rest.starts_with(
            "         0          0          1\n         0          0          1\ndeny\n"
        ),
        "{ours:?}"
    );
    assert!(ours_rest.ends_with("unshare=0\n"), "{ours:?}");
    assert_eq!(ours_rest, theirs_rest, "bwrap: {theirs:?}");
    assert_eq!(ours.stderr, theirs.stderr);
}

#[test]
fn unshare_all_skips_a_user_namespace_the_kernel_refuses() {
    testcaps::require!(Cap::Root, Cap::Userns, Cap::Rootfs);
    // In a user namespace whose max_user_namespaces is 0, both skip the user namespace (the
    // sandbox stays in the wrapper's) and still make the others.
    let ns = bin().to_string();
    let wrap = [
        ns.as_str(),
        "-r",
        "--",
        "sh",
        "-c",
        "echo 0 > /proc/sys/user/max_user_namespaces && readlink /proc/self/ns/user && exec \"$@\"",
        "sh",
    ];
    let ours = ours_on_rootfs(&wrap, &["--unshare-all"]);
    let theirs = bwrap_on_rootfs(&wrap, &["--unshare-all"]);
    for out in [&ours, &theirs] {
        assert_eq!(out.code, Some(7), "{out:?}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        let outer = lines[0];
        assert!(outer.starts_with("user:["), "{out:?}");
        assert_eq!(
            lines[7], outer,
            "the sandbox is in the wrapper's user namespace: {out:?}"
        );
        assert!(out.stdout.ends_with("\n0\nunshare=1\n"), "{out:?}");
    }
    let (ours_new, ours_rest) = split(&ours);
    let (theirs_new, theirs_rest) = split(&theirs);
    assert_eq!(
        ours_new,
        ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
    );
    assert_eq!(ours_new, theirs_new, "bwrap: {theirs:?}");
    assert_eq!(ours_rest, theirs_rest, "bwrap: {theirs:?}");
    // busybox's message for the refused unshare, the same under both.
    assert_eq!(
        ours.stderr,
        "unshare: unshare(0x10000000): No space left on device\n"
    );
    assert_eq!(ours.stderr, theirs.stderr);
    // --disable-userns cannot be honoured there: one line, exit 1, nothing run.
    let refused = ours_on_rootfs(&wrap, &["--unshare-all", "--disable-userns"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert_eq!(
        refused.stdout.lines().count(),
        1,
        "only the wrapper's line: {refused:?}"
    );
    assert_eq!(
        refused.stderr,
        "unshare-rs: --disable-userns needs a new user namespace, and this kernel cannot make one (no /proc/self/ns/user, or sysctl user.max_user_namespaces is 0)\n"
    );
}

#[test]
fn disable_userns_leaves_the_sandbox_unable_to_make_user_namespaces_as_bwrap() {
    testcaps::require!(Cap::Root, Cap::Userns, Cap::Rootfs);
    let ours = ours_on_rootfs(&[], &["--unshare-all", "--disable-userns"]);
    // bwrap 0.8 wants --unshare-user spelled out next to --disable-userns.
    let theirs = bwrap_on_rootfs(
        &[],
        &["--unshare-all", "--unshare-user", "--disable-userns"],
    );
    assert_eq!(ours.code, Some(7), "{ours:?}");
    assert_eq!(theirs.code, Some(7), "{theirs:?}");
    let (ours_new, ours_rest) = split(&ours);
    let (theirs_new, theirs_rest) = split(&theirs);
    assert_eq!(
        ours_new,
        ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
    );
    assert_eq!(ours_new, theirs_new, "bwrap: {theirs:?}");
    // The nested namespace maps root through; its own limit is untouched (the parent's is 1),
    // and `unshare -U` fails with ENOSPC under both.
    assert_eq!(
        ours_rest,
        "         0          0          1\n         0          0          1\ndeny\n2147483647\nunshare=1\n"
    );
    assert_eq!(ours_rest, theirs_rest, "bwrap: {theirs:?}");
    assert_eq!(
        ours.stderr,
        "unshare: unshare(0x10000000): No space left on device\n"
    );
    assert_eq!(ours.stderr, theirs.stderr);
    // The one-line refusals of what it cannot nest.
    let out = common::ours(&["--disable-userns", "--map-users=0:100000:10", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .starts_with("unshare-rs: --disable-userns works with single-id maps")
            && out.stderr.lines().count() == 1,
        "{out:?}"
    );
}

#[test]
fn disable_userns_as_an_unprivileged_user_matches_bwrap() {
    testcaps::require!(Cap::Root, Cap::Userns, Cap::Rootfs);
    // As nobody: -r, so that pivot (exec'd after unshare-rs) is root in the nested namespace
    // and keeps its capabilities there; bwrap sets up in its own process and maps 0 by --uid.
    let wrap = [
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--",
    ];
    let ours = ours_on_rootfs(&wrap, &["--unshare-all", "-r", "--disable-userns"]);
    let theirs = bwrap_on_rootfs(
        &wrap,
        &[
            "--unshare-all",
            "--unshare-user",
            "--uid",
            "0",
            "--gid",
            "0",
            "--disable-userns",
        ],
    );
    assert_eq!(ours.code, Some(7), "{ours:?}");
    assert_eq!(theirs.code, Some(7), "{theirs:?}");
    let (ours_new, ours_rest) = split(&ours);
    let (theirs_new, theirs_rest) = split(&theirs);
    assert_eq!(
        ours_new,
        ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
    );
    assert_eq!(ours_new, theirs_new, "bwrap: {theirs:?}");
    assert_eq!(
        ours_rest,
        "         0          0          1\n         0          0          1\ndeny\n2147483647\nunshare=1\n"
    );
    assert_eq!(ours_rest, theirs_rest, "bwrap: {theirs:?}");
    assert_eq!(
        ours.stderr,
        "unshare: unshare(0x10000000): No space left on device\n"
    );
    assert_eq!(ours.stderr, theirs.stderr);
}
