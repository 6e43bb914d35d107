//! What netwire's integration tests share: a sandbox network namespace to run a script in, and
//! the host's network state, which every test checks is unchanged afterwards.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

pub fn netwire() -> &'static str {
    testcaps::tool_bin("netwire", env!("CARGO_BIN_EXE_netwire"))
}

/// The host namespace's links and addresses, as names and address/prefix pairs (no counters or
/// lifetimes, which change by themselves).
pub fn host_net() -> (Vec<String>, Vec<String>) {
    let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("read /sys/class/net")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    links.sort();
    let out = testcaps::run(
        Command::new("ip").args(["-o", "addr", "show"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut addrs: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect();
    addrs.sort();
    (links, addrs)
}

/// Checks the host's network after a test: taken when made, compared when dropped, so that a
/// failed assertion checks it too.
pub struct HostUnchanged(pub (Vec<String>, Vec<String>));

impl HostUnchanged {
    pub fn new() -> HostUnchanged {
        HostUnchanged(host_net())
    }
}

impl Drop for HostUnchanged {
    fn drop(&mut self) {
        let now = host_net();
        if !std::thread::panicking() {
            assert_eq!(now, self.0, "the host's links or addresses changed");
        } else if now != self.0 {
            eprintln!(
                "the host's links or addresses changed: {:?} -> {now:?}",
                self.0
            );
        }
    }
}

/// The sh prelude of a sandbox: NW, UNS, NSE name the tools; `holder VAR` starts a process in
/// a new network namespace (a container's) and sets VAR to its PID; every holder is killed on
/// exit. The script runs in a temporary directory of its own, `$work`, removed on exit.
const PRELUDE: &str = r#"
set -eu
mount -t sysfs sysfs /sys
holders=
work=$(mktemp -d "${TMPDIR:-/tmp}/netwire-test.XXXXXX")
cd "$work"
trap 'for p in $holders; do kill -KILL $p 2>/dev/null || true; done; wait 2>/dev/null || true; cd /; rm -rf "$work"' EXIT
holder() {
    "$UNS" -n -- sleep 60 &
    p=$!
    holders="$holders $p"
    while [ "$(readlink /proc/$p/ns/net 2>/dev/null)" = "$(readlink /proc/self/ns/net)" ]; do sleep 0.01; done
    eval "$1=$p"
}
"#;

/// Runs `script` with sh inside a network namespace of its own (made by unshare-rs -n), so that
/// nothing it makes can reach the host's, and a private mount namespace whose /sys is the new
/// network namespace's.
pub fn sandbox(script: &str) -> testcaps::Output {
    sandbox_env(script, &[])
}

pub fn sandbox_env(script: &str, env: &[(&str, &str)]) -> testcaps::Output {
    sandbox_with(&["-nm"], script, env)
}

/// As [`sandbox_env`], with unshare-rs's namespace options `flags` (e.g. a PID namespace too,
/// so that whatever the script leaves running dies with it).
pub fn sandbox_with(flags: &[&str], script: &str, env: &[(&str, &str)]) -> testcaps::Output {
    let uns = testcaps::sibling_bin("unshare-rs");
    let nse = testcaps::sibling_bin("nsenter-rs");
    let mut cmd = Command::new(&uns);
    cmd.args(flags)
        .args(["--", "sh", "-c"])
        .arg(format!("{PRELUDE}\n{script}"))
        .env("NW", netwire())
        .env("UNS", &uns)
        .env("NSE", &nse);
    for (k, v) in env {
        cmd.env(k, v);
    }
    testcaps::run(&mut cmd, Duration::from_secs(120))
}
