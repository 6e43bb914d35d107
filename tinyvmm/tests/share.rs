//! `--share HOSTDIR:TAG[,ro]` on the host: tinyvmm starts virtiofsd as its child on a socket in
//! the abstract namespace (no file), in a mount namespace of its own where `,ro` makes the
//! directory a read-only bind mount; virtiofsd is gone when tinyvmm ends, by its timeout, by
//! SIGTERM or by SIGKILL; what cannot work is refused in one line. A Linux guest mounting the
//! share is shown in `cargo xtask nested` (linux_virtio_fs): on this PVM host no Linux guest
//! boots.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testcaps::{require, Cap};

const BIN: &str = env!("CARGO_BIN_EXE_tinyvmm");

/// A fresh directory to share, removed by the caller.
fn share_dir() -> PathBuf {
    let d = std::env::temp_dir().join(testcaps::unique_name("tvfs"));
    std::fs::create_dir_all(&d).expect("mkdir");
    std::fs::write(d.join("f"), "from the host\n").expect("write");
    d
}

/// tinyvmm spinning (bounded by --timeout) with `--share share`.
fn spinner(share: &str, timeout: &str) -> Child {
    Command::new(BIN)
        .args(["run", "--timeout", timeout, "--share", share])
        .arg(tinyvmm::guest_path("spin.bin"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tinyvmm")
}

/// The children of process `pid` (every thread's), by /proc's children lists.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Waits (bounded) for tinyvmm `pid`'s virtiofsd child and returns its pid.
fn wait_for_virtiofsd(pid: u32) -> u32 {
    let start = Instant::now();
    loop {
        if let Some(c) = children(pid)
            .into_iter()
            .find(|&c| comm(c).as_deref() == Some("virtiofsd"))
        {
            return c;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "tinyvmm {pid} never had a virtiofsd child"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (bounded) until process `pid` is gone or a zombie no one needs to reap: its comm
/// is no longer virtiofsd's, or its state is Z.
fn assert_gone(pid: u32, what: &str) {
    let start = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'));
        if comm(pid).as_deref() != Some("virtiofsd") || zombie {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: virtiofsd {pid} still runs"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The abstract socket names in /proc/net/unix that start with `@prefix`.
fn abstract_sockets(prefix: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(7))
        .filter(|p| p.starts_with(&format!("@{prefix}")))
        .map(str::to_string)
        .collect()
}

fn caps(test: &str) -> bool {
    if !require(test, &[Cap::Root, Cap::Kvm, Cap::Qemu]) {
        return false;
    }
    // QEMU up to 7.2 ships virtiofsd; a host with a newer QEMU needs Debian's virtiofsd.
    assert!(
        tinyvmm::virtio::fs::find_virtiofsd().is_some(),
        "{test}: QEMU is here but no virtiofsd (install qemu-system-common or virtiofsd)"
    );
    true
}

#[test]
fn virtiofsd_runs_while_the_vm_does_and_goes_with_it_however_it_ends() {
    if !caps("virtiofsd_runs_while_the_vm_does_and_goes_with_it_however_it_ends") {
        return;
    }
    let dir = share_dir();
    let canonical = std::fs::canonicalize(&dir).expect("canonicalize");
    for how in ["timeout", "TERM", "KILL"] {
        let mut vm = spinner(
            &format!("{}:data", dir.display()),
            if how == "timeout" { "2" } else { "30" },
        );
        let fsd = wait_for_virtiofsd(vm.id());
        let cmdline = std::fs::read(format!("/proc/{fsd}/cmdline")).expect("cmdline");
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert!(
            args.contains(&format!("source={}", canonical.display())),
            "{how}: {args:?}"
        );
        assert!(args.contains(&"--fd=3".to_string()), "{how}: {args:?}");
        // Its end of the connection (it accepts on the listener it got as 3, then closes that).
        let sockets = std::fs::read_dir(format!("/proc/{fsd}/fd"))
            .expect("virtiofsd's fds")
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:["))
            .count();
        assert!(sockets >= 1, "{how}: virtiofsd holds no socket");
        // The only name is in the abstract namespace: no file to leave behind.
        let prefix = format!("tinyvmm-{}-fs", vm.id());
        let names = abstract_sockets(&prefix);
        assert!(!names.is_empty(), "{how}: no @{prefix}0 in /proc/net/unix");
        assert!(
            names.iter().all(|n| *n == format!("@{prefix}0")),
            "{how}: {names:?}"
        );
        let status = match how {
            "timeout" => vm.wait().expect("wait"),
            sig => {
                let n = if sig == "TERM" {
                    libc::SIGTERM
                } else {
                    libc::SIGKILL
                };
                // SAFETY: signals the child this test started, by its pid.
                assert_eq!(unsafe { libc::kill(vm.id() as i32, n) }, 0);
                vm.wait().expect("wait")
            }
        };
        match how {
            "timeout" => assert_eq!(status.code(), Some(124), "{how}"),
            "TERM" => assert_eq!(status.signal(), Some(libc::SIGTERM), "{how}"),
            _ => assert_eq!(status.signal(), Some(libc::SIGKILL), "{how}"),
        }
        assert_gone(fsd, how);
        // The kernel lets go of a dead process's sockets a moment after it is reaped.
        let start = Instant::now();
        while !abstract_sockets(&prefix).is_empty() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(abstract_sockets(&prefix), Vec::<String>::new(), "{how}");
    }
    // The shared directory itself is as it was: virtiofsd wrote nothing there.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["f"]);
    std::fs::remove_dir_all(&dir).expect("rm");
}

#[test]
fn ro_gives_virtiofsd_a_read_only_bind_mount_in_a_mount_namespace_of_its_own() {
    if !caps("ro_gives_virtiofsd_a_read_only_bind_mount_in_a_mount_namespace_of_its_own") {
        return;
    }
    let dir = share_dir();
    let mut vm = spinner(&format!("{}:data,ro", dir.display()), "30");
    let fsd = wait_for_virtiofsd(vm.id());
    let ours = std::fs::read_link("/proc/self/ns/mnt").expect("our mnt ns");
    let theirs = std::fs::read_link(format!("/proc/{fsd}/ns/mnt")).expect("its mnt ns");
    assert_ne!(ours, theirs, "virtiofsd shares the host's mount namespace");
    // Its root is the shared directory (it chroots there): the mount at its "/" is read-only.
    let start = Instant::now();
    let root_opts = loop {
        let mi = std::fs::read_to_string(format!("/proc/{fsd}/mountinfo")).unwrap_or_default();
        let opts = mi
            .lines()
            .rev()
            .filter(|l| l.split_whitespace().nth(4) == Some("/"))
            .find_map(|l| l.split_whitespace().nth(5).map(str::to_string));
        if let Some(o) = opts.filter(|o| o.starts_with("ro")) {
            break o;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "virtiofsd's root never read-only:\n{mi}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(root_opts.split(',').any(|o| o == "ro"), "{root_opts}");
    // The host's own view of the directory stays writable.
    std::fs::write(dir.join("g"), "x").expect("the host can still write");
    // SAFETY: signals the child this test started, by its pid.
    assert_eq!(unsafe { libc::kill(vm.id() as i32, libc::SIGKILL) }, 0);
    vm.wait().expect("wait");
    assert_gone(fsd, "ro");
    std::fs::remove_dir_all(&dir).expect("rm");
}

#[test]
fn what_cannot_be_shared_is_refused_in_one_line() {
    if !caps("what_cannot_be_shared_is_refused_in_one_line") {
        return;
    }
    let dir = share_dir();
    let file = dir.join("f");
    let missing = dir.join("missing");
    let sock = dir.join("no.sock");
    let comma = dir.join("a,b");
    std::fs::create_dir(&comma).expect("mkdir a,b");
    let link = dir.join("link");
    std::os::unix::fs::symlink(&comma, &link).expect("symlink");
    for (arg, line) in [
        (
            format!("{}:t", missing.display()),
            format!(
                "tinyvmm: --share {}: No such file or directory (HOSTDIR must be an existing \
                 directory)\n",
                missing.display()
            ),
        ),
        (
            format!("{}:t", file.display()),
            format!(
                "tinyvmm: --share {}: not a directory (HOSTDIR must be an existing directory)\n",
                file.display()
            ),
        ),
        (
            format!("{}:t", link.display()),
            format!(
                "tinyvmm: --share {}: {} contains a comma, which virtiofsd's -o options cannot \
                 carry\n",
                link.display(),
                std::fs::canonicalize(&comma).unwrap().display()
            ),
        ),
        (
            format!("socket={}:t", sock.display()),
            format!(
                "tinyvmm: --share {}: connecting: No such file or directory (is virtiofsd \
                 listening there?)\n",
                sock.display()
            ),
        ),
    ] {
        let out = Command::new(BIN)
            .args(["run", "--timeout", "10", "--share", &arg])
            .arg(tinyvmm::guest_path("spin.bin"))
            .stdin(Stdio::null())
            .output()
            .expect("run tinyvmm");
        assert_eq!(out.status.code(), Some(125), "{arg}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), line, "{arg}");
        assert!(out.stdout.is_empty(), "{arg}");
    }
    for (arg, says) in [
        ("/srv", "no tag in '/srv'"),
        ("/srv:t,rw", "unknown share option 'rw'"),
    ] {
        let out = Command::new(BIN)
            .args(["run", "--share", arg])
            .output()
            .expect("run tinyvmm");
        assert_eq!(out.status.code(), Some(125), "{arg}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{arg}: {err}");
        assert_eq!(err.lines().count(), 1, "{arg}: {err}");
    }
    // The one-shot root's tag is taken.
    let out = Command::new(BIN)
        .args(["run", "--kernel", "/nonexistent-kernel", "--rootfs"])
        .arg(&dir)
        .arg("--share-rootfs")
        .arg("--share")
        .arg(format!("{}:rootfs", dir.display()))
        .args(["--", "true"])
        .output()
        .expect("run tinyvmm");
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tinyvmm: --share-rootfs shares DIR with the tag 'rootfs': give the other --share \
         another tag\n"
    );
    std::fs::remove_dir_all(&dir).expect("rm");
}
