//! What the integration tests share: running unshare-rs or util-linux's unshare, bounded, and
//! reading namespace inodes the way the program sees them.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// The unshare-rs under test: cargo's test build, or the shipped one (`MICROTOOLS_BIN_DIR`).
pub fn bin() -> &'static str {
    testcaps::tool_bin("unshare-rs", env!("CARGO_BIN_EXE_unshare-rs"))
}
pub const UTIL: &str = "/usr/bin/unshare";
pub const LIMIT: Duration = Duration::from_secs(20);

/// Runs `prog args` with a time limit.
pub fn run_with(prog: &str, args: &[&str]) -> testcaps::Output {
    testcaps::run(Command::new(prog).args(args), LIMIT)
}

/// Runs unshare-rs.
pub fn ours(args: &[&str]) -> testcaps::Output {
    run_with(bin(), args)
}

/// Runs util-linux unshare.
pub fn util(args: &[&str]) -> testcaps::Output {
    run_with(UTIL, args)
}

/// The namespace kinds in the order `readlink` is given them.
pub const KINDS: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

/// The argv tail that makes the program print its own namespace links, one per line.
pub fn readlink_args() -> Vec<String> {
    let mut v = vec!["readlink".to_string()];
    v.extend(KINDS.iter().map(|k| format!("/proc/self/ns/{k}")));
    v
}

/// Parses `readlink` output (`uts:[4026531838]` lines) into kind -> inode.
pub fn parse_links(out: &str) -> BTreeMap<String, u64> {
    out.lines()
        .filter_map(|l| {
            let (kind, rest) = l.split_once(":[")?;
            Some((kind.to_string(), rest.trim_end_matches(']').parse().ok()?))
        })
        .collect()
}

/// The test process's own namespace inodes, by kind name.
pub fn own_inodes() -> BTreeMap<String, u64> {
    conventions::ns::inodes(conventions::ns::Proc::Current)
        .expect("own namespaces")
        .into_iter()
        .map(|(k, ino)| (k.proc_name.to_string(), ino))
        .collect()
}

/// Which kinds of `theirs` differ from the test process's own namespaces.
pub fn differing(theirs: &BTreeMap<String, u64>) -> Vec<String> {
    let own = own_inodes();
    theirs
        .iter()
        .filter(|(k, ino)| own.get(*k) != Some(*ino))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Runs `tool` with `opts` and the readlink program, and returns the kinds that differ.
pub fn shape(tool: &str, opts: &[&str]) -> (testcaps::Output, Vec<String>) {
    let tail = readlink_args();
    let mut args: Vec<&str> = opts.to_vec();
    args.extend(tail.iter().map(String::as_str));
    let out = run_with(tool, &args);
    let links = parse_links(&out.stdout);
    assert_eq!(links.len(), KINDS.len(), "{tool} {opts:?}: {out:?}");
    (out, differing(&links))
}

/// Runs `sh -c script sh DIR TOOL` under util-linux `unshare -m --propagation private`, so that
/// the script's mounts stay out of the host's mount namespace.
pub fn script_in_private_mnt_ns(script: &str, dir: &TempDir, tool: &str) -> testcaps::Output {
    let args = [
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        path_str(dir),
        tool,
    ];
    run_with(UTIL, &args)
}

pub use testcaps::TempDir;

/// `dir`'s path as the string command lines and mountinfo lines hold.
pub fn path_str(dir: &TempDir) -> &str {
    dir.path().to_str().expect("utf-8 temp path")
}

/// The lines of the test process's mountinfo that mention `needle`.
pub fn host_mounts_with(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// How many nsfs bind mounts the test process's mount namespace holds.
pub fn host_nsfs_count() -> usize {
    host_mounts_with(" - nsfs ").len()
}
