//! setpriv-rs as the last step of the composed container, the README's pipeline
//! (`unshare-rs -fpmuinC --lo-up --mount-proc -- pivot --reaper ROOTFS setpriv-rs
//! --default-container -- CMD`), run inside the busybox rootfs: the program is no longer host
//! root with every capability.

use std::process::Command;
use std::time::Duration;
use testcaps::Cap;

const BIN: &str = env!("CARGO_BIN_EXE_setpriv-rs");
/// Where the binary is bound inside the rootfs (as scripts/container.sh does).
const INSIDE: &str = "/.microtools/setpriv-rs";
/// The engines' eleven capabilities (bits 0 1 3 4 5 6 7 8 10 18 31).
const DEFAULT_SET: &str = "00000000800405fb";

/// `--ro-bind` arguments for the binary and, when it is dynamically linked, its libraries.
fn binds(bin: &str) -> Vec<String> {
    let mut v = vec!["--ro-bind".to_string(), format!("{bin}:{INSIDE}")];
    // A static binary makes ldd fail with nothing on stdout: no libraries then.
    let ldd = testcaps::run(Command::new("ldd").arg(bin), Duration::from_secs(30));
    for line in ldd.stdout.lines() {
        let path = match line.split_once("=> ") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            v.push("--ro-bind".to_string());
            v.push(p.to_string());
        }
    }
    v
}

fn in_container(script: &str) -> testcaps::Output {
    let bin = testcaps::tool_bin("setpriv-rs", BIN);
    let mut cmd = Command::new(testcaps::sibling_bin("unshare-rs"));
    cmd.args(["-fpmuinC", "--lo-up", "--mount-proc", "--"])
        .arg(testcaps::sibling_bin("pivot"))
        .arg("--reaper")
        .args(binds(bin))
        .arg(testcaps::rootfs())
        .args([INSIDE, "--default-container", "--", "/bin/sh", "-c", script]);
    testcaps::run(&mut cmd, Duration::from_secs(60))
}

fn field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn the_container_process_has_the_engine_set_nnp_and_a_filter() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let out = in_container("cat /proc/self/status; echo pid=$$");
    assert_eq!(out.code, Some(0), "{out:?}");
    // PID 2: pivot's reaper is PID 1.
    assert!(out.stdout.contains("pid=2\n"), "{out:?}");
    assert_eq!(field(&out.stdout, "CapEff"), DEFAULT_SET, "{out:?}");
    assert_eq!(field(&out.stdout, "CapPrm"), DEFAULT_SET);
    assert_eq!(field(&out.stdout, "CapBnd"), DEFAULT_SET);
    assert_eq!(field(&out.stdout, "CapInh"), "0000000000000000");
    assert_eq!(field(&out.stdout, "CapAmb"), "0000000000000000");
    assert_eq!(field(&out.stdout, "NoNewPrivs"), "1");
    assert_eq!(field(&out.stdout, "Seccomp"), "2");
}

#[test]
fn mknod_mount_unshare_and_raising_a_capability_fail_with_eperm() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let out = in_container(
        "mknod /tmp/null c 1 3; echo mknod=$?; \
         mount -t proc proc /mnt; echo mount=$?; \
         unshare -U true; echo unshare=$?; \
         /.microtools/setpriv-rs --inh-caps +sys_admin true; echo raise=$?; \
         chown 1:1 /tmp && echo chown=ok",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout, "mknod=1\nmount=1\nunshare=1\nraise=1\nchown=ok\n",
        "{out:?}"
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{out:?}");
    assert_eq!(lines[0], "mknod: /tmp/null: Operation not permitted");
    // busybox words EPERM from mount(2) this way.
    assert_eq!(lines[1], "mount: permission denied (are you root?)");
    assert_eq!(
        lines[2],
        "unshare: unshare(0x10000000): Operation not permitted"
    );
    assert_eq!(
        lines[3],
        "setpriv-rs: capset(Inheritable: sys_admin) failed: Operation not permitted"
    );
}
