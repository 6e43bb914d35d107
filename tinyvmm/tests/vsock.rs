//! `--vsock CID,uds=PATH` on the host: the listener is at PATH while the VM runs and gone when
//! it ends (also by SIGTERM, which still ends tinyvmm with 143); a second VM on the same PATH
//! is refused in one line; a host program that connects while no guest driver runs is closed
//! on rather than left hanging; bad options are usage errors. Data through a Linux guest's
//! driver is shown in `cargo xtask nested` (linux_virtio_vsock): on this PVM host no Linux
//! guest boots; the device's protocol is unit-tested (src/virtio/tests.rs).

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testcaps::{require, Cap};

const BIN: &str = env!("CARGO_BIN_EXE_tinyvmm");

/// A socket path short enough for sun_path.
fn sock_path() -> PathBuf {
    std::env::temp_dir().join(format!("{}.sock", testcaps::unique_name("tvs")))
}

fn is_socket(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// Waits (bounded) until `p` is a socket.
fn wait_for_socket(p: &Path) {
    let start = Instant::now();
    while !is_socket(p) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never appeared",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// tinyvmm running the spinning guest (bounded by --timeout) with a vsock listener at `p`.
fn spinner(p: &Path) -> Child {
    Command::new(BIN)
        .args(["run", "--timeout", "30", "--vsock"])
        .arg(format!("3,uds={}", p.display()))
        .arg(tinyvmm::guest_path("spin.bin"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tinyvmm")
}

fn term(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) of the child this test started, by its PID.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    testcaps::wait_bounded(child, Duration::from_secs(20))
}

#[test]
fn the_listener_is_there_while_the_vm_runs_and_gone_after() {
    require!(Cap::Kvm);
    let s = sock_path();
    // The guest waits for its status byte, sent once the socket is there (bounded).
    let out = testcaps::run(
        Command::new("sh")
            .args([
                "-c",
                "( n=0; while [ ! -S \"$S\" ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n + 1)); done; \
                   [ -S \"$S\" ] && echo 'during: a socket' >&2; printf '*' ) | \
                 \"$T\" run --vsock 3,uds=\"$S\" \"$G\"; echo \"status $?\"; \
                 [ -e \"$S\" ] && echo 'after: still there' || echo 'after: gone'",
            ])
            .env("T", BIN)
            .env("G", tinyvmm::guest_path("status.bin"))
            .env("S", &s)
            .stdin(Stdio::null()),
        Duration::from_secs(60),
    );
    assert_eq!(out.stdout, "status 42\nafter: gone\n", "{}", out.stderr);
    assert_eq!(out.stderr, "during: a socket\n");
}

#[test]
fn sigterm_removes_the_listener_and_still_ends_with_143() {
    require!(Cap::Kvm);
    let s = sock_path();
    let mut vm = spinner(&s);
    wait_for_socket(&s);
    let status = term(&mut vm);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(!s.exists(), "{} left", s.display());
    let mut err = String::new();
    vm.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert_eq!(err, "", "nothing said: the signal ended it");
}

#[test]
fn a_second_vm_on_the_same_path_is_refused_and_a_stale_socket_is_replaced() {
    require!(Cap::Kvm);
    let s = sock_path();
    let mut first = spinner(&s);
    wait_for_socket(&s);
    let out = testcaps::run(
        Command::new(BIN)
            .args(["run", "--vsock"])
            .arg(format!("3,uds={}", s.display()))
            .arg(tinyvmm::guest_path("status.bin"))
            .stdin(Stdio::null()),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(125), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "tinyvmm: --vsock: cannot listen at {}: a program listens on it already (another \
             VM's? give another uds=PATH)\n",
            s.display()
        )
    );
    assert!(is_socket(&s), "the first VM's socket stays");
    // SAFETY: kill(2) of the child this test started, by its PID.
    unsafe { libc::kill(first.id() as libc::pid_t, libc::SIGKILL) };
    testcaps::wait_bounded(&mut first, Duration::from_secs(20));
    assert!(is_socket(&s), "SIGKILL leaves the socket");
    // The next VM takes the stale socket's place, and removes it when it ends.
    let out = testcaps::run(
        Command::new("sh")
            .args(["-c", "printf '*' | \"$T\" run --vsock 3,uds=\"$S\" \"$G\""])
            .env("T", BIN)
            .env("G", tinyvmm::guest_path("status.bin"))
            .env("S", &s)
            .stdin(Stdio::null()),
        Duration::from_secs(30),
    );
    assert_eq!((out.code, out.stderr.as_str()), (Some(42), ""), "{out:?}");
    assert!(!s.exists());
}

#[test]
fn a_host_connection_without_a_guest_driver_is_closed_on() {
    require!(Cap::Kvm);
    let s = sock_path();
    let mut vm = spinner(&s);
    wait_for_socket(&s);
    let mut c = UnixStream::connect(&s).expect("connect to the listener");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The device may close on the connection before the line is written (EPIPE), or after
    // (EOF, or ECONNRESET with the line unread); a hang would be the read timeout.
    let mut buf = [0u8; 16];
    let end = c.write_all(b"CONNECT 52\n").and_then(|()| c.read(&mut buf));
    let status = term(&mut vm);
    match end {
        Ok(0) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ) => {}
        other => panic!("expected the end of the connection, got {other:?}"),
    }
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(!s.exists());
}

#[test]
fn bad_vsock_options_are_usage_errors() {
    for (arg, why) in [
        ("2", "bad vsock context id '2' (CID[,uds=PATH], CID 3 to 4294967294)"),
        ("x,uds=/tmp/s", "bad vsock context id 'x' (CID[,uds=PATH], CID 3 to 4294967294)"),
        ("3,path=/tmp/s", "unknown vsock option 'path=/tmp/s' in '3,path=/tmp/s' (CID[,uds=PATH], CID 3 to 4294967294)"),
    ] {
        let out = testcaps::run(
            Command::new(BIN)
                .args(["run", "--vsock", arg])
                .stdin(Stdio::null()),
            Duration::from_secs(10),
        );
        assert_eq!(out.code, Some(125), "{arg}: {out:?}");
        assert!(out.stderr.contains(why), "{arg}: {}", out.stderr);
        assert_eq!(out.stdout, "");
    }
    // A path that is a file, not a socket, is refused and left alone.
    let p = sock_path();
    std::fs::write(&p, b"x").unwrap();
    let out = testcaps::run(
        Command::new(BIN)
            .args(["run", "--vsock"])
            .arg(format!("3,uds={}", p.display()))
            .stdin(Stdio::null()),
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(125), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "tinyvmm: --vsock: cannot listen at {}: exists and is not a socket (remove it, or \
             give another uds=PATH)\n",
            p.display()
        )
    );
    let out = testcaps::run(
        Command::new(BIN)
            .args(["run", "--vsock", "3,uds=/nonexistent-dir/v.sock"])
            .stdin(Stdio::null()),
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(125), "{out:?}");
    assert_eq!(
        out.stderr,
        "tinyvmm: --vsock: cannot listen at /nonexistent-dir/v.sock: bind: No such file or \
         directory (does its directory exist?)\n"
    );
    assert_eq!(std::fs::read(&p).unwrap(), b"x");
    std::fs::remove_file(&p).unwrap();
}
