//! `process.terminal` and `--console-socket` through the built binary, as root with the busybox
//! rootfs: the test listens on the socket as conmon and containerd's shim do, receives the pty
//! master by SCM_RIGHTS, and drives the container's shell through it (create and start, run,
//! exec --tty), plus the refusals, which leave nothing behind.

mod common;
use common::{Env, LIMIT};

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use testcaps::Cap;

/// A console socket the test listens on.
struct Socket {
    path: PathBuf,
    listener: UnixListener,
}

impl Socket {
    fn new(env: &Env) -> Socket {
        let path = env.dir.join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        Socket { path, listener }
    }

    fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Accepts one connection and receives the master it sends (hang guard only).
    fn master(&self) -> (std::fs::File, String) {
        let start = Instant::now();
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(start.elapsed() < LIMIT, "nobody connected to the socket");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        let (fd, name) = ocirun::console::recv_fd(conn.as_raw_fd()).unwrap();
        (std::fs::File::from(fd), name)
    }
}

/// Reads from the master until `needle` has come (or the hang guard): everything read.
fn read_until(master: &mut std::fs::File, needle: &str) -> String {
    let fd: &OwnedFd = &master.try_clone().unwrap().into();
    let mut seen = String::new();
    let start = Instant::now();
    while !seen.contains(needle) {
        assert!(
            start.elapsed() < LIMIT,
            "waited for {needle:?}, got {seen:?}"
        );
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, 100) };
        if r <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => panic!("the pty closed before {needle:?}; got {seen:?}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    seen
}

const SHELL: &str = "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; stty size; \
                     stat -L -c %t:%T /dev/console $(tty) | uniq | wc -l; echo ready; read x; \
                     echo got:$x; exit 3";

#[test]
fn create_sends_the_master_and_the_shell_runs_on_the_pty() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sh", "-c", SHELL]);
    env.config(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    });
    let sock = Socket::new(&env);
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["create", "-b", &b, "--console-socket", sock.arg(), "t1"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    let (mut master, name) = sock.master();
    assert_eq!(name, "/dev/pts/0");
    let out = env.ocirun(&["start", "t1"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    // The pty's line discipline turns \n into \r\n; /dev/console is the same pty (one line).
    let seen = read_until(&mut master, "ready\r\n");
    assert_eq!(seen, "/dev/pts/0\r\nall-ttys\r\n30 100\r\n1\r\nready\r\n");
    master.write_all(b"hello\n").unwrap();
    // The echo of the input, then the shell's answer.
    let seen = read_until(&mut master, "got:hello\r\n");
    assert_eq!(seen, "hello\r\ngot:hello\r\n");
    let st = env.wait_status("t1", "stopped");
    assert_eq!(st["pid"], 0);
    let out = env.ocirun(&["delete", "t1"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!env.state_dir("t1").exists());
}

#[test]
fn run_with_a_console_socket_exits_with_the_shells_status() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sh", "-c", "echo in-run; read x; exit $x"]);
    env.config(|c| c["process"]["terminal"] = json!(true));
    let sock = Socket::new(&env);
    let mut cmd = Command::new(common::BIN);
    cmd.arg("--root")
        .arg(&env.root)
        .args(["run", "-b"])
        .arg(&env.bundle)
        .args(["--console-socket", sock.arg(), "t2"]);
    let dir = env.dir.clone();
    let runner = std::thread::spawn(move || common::run_to_files(&mut cmd, &dir));
    let (mut master, _) = sock.master();
    let seen = read_until(&mut master, "in-run\r\n");
    assert_eq!(seen, "in-run\r\n");
    master.write_all(b"7\n").unwrap();
    let out = runner.join().unwrap();
    assert_eq!((out.code, out.stderr.as_str()), (Some(7), ""), "{out:?}");
    assert!(!env.state_dir("t2").exists());
}

#[test]
fn exec_tty_sends_a_master_of_its_own() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    env.create("t3");
    assert_eq!(env.ocirun(&["start", "t3"]).code, Some(0));
    let sock = Socket::new(&env);
    let pid_file = env.dir.join("exec.pid");
    // As conmon runs it for `podman exec -t`: detached, the pid in a file.
    let out = env.ocirun(&[
        "exec",
        "--detach",
        "--tty",
        "--console-socket",
        sock.arg(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "t3",
        "sh",
        "-c",
        "tty; [ -t 0 ] && echo tty-in; read x; echo got:$x",
    ]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(Env::alive(pid));
    let (mut master, name) = sock.master();
    assert_eq!(name, "/dev/pts/0");
    assert_eq!(
        read_until(&mut master, "tty-in\r\n"),
        "/dev/pts/0\r\ntty-in\r\n"
    );
    master.write_all(b"x\n").unwrap();
    assert_eq!(read_until(&mut master, "got:x\r\n"), "x\r\ngot:x\r\n");
    let start = Instant::now();
    while Env::alive(pid) {
        assert!(start.elapsed() < LIMIT, "the exec'd shell did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The container's init goes on.
    assert_eq!(env.state("t3")["status"], "running");
}

#[test]
fn a_terminal_needs_a_socket_and_a_socket_a_terminal() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["true"]);
    let b = env.bundle.to_str().unwrap().to_string();
    let sock = Socket::new(&env);
    let out = env.ocirun(&["create", "-b", &b, "--console-socket", sock.arg(), "t4"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "ocirun: create: --console-socket {}: process.terminal is false (set it, or drop \
             the flag)\n",
            sock.arg()
        )
    );
    env.config(|c| c["process"]["terminal"] = json!(true));
    let out = env.ocirun(&["create", "-b", &b, "t4"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "ocirun: create: process.terminal is true but no --console-socket was given (ocirun \
         hands the pty master to the caller; give --console-socket PATH)\n"
    );
    // A socket nobody listens on: connect fails, and create undoes what it made.
    let gone = env.dir.join("nobody.sock");
    let out = env.ocirun(&[
        "create",
        "-b",
        &b,
        "--console-socket",
        gone.to_str().unwrap(),
        "t4",
    ]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "ocirun: connect({}) (--console-socket) failed: No such file or directory (the \
             caller must listen on that AF_UNIX stream socket)\n",
            gone.display()
        )
    );
    assert!(!env.state_dir("t4").exists());
    assert!(
        env.cgroup.existing().is_empty(),
        "{:?}",
        env.cgroup.existing()
    );
    // exec's side: --console-socket without --tty.
    env.config(|c| {
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sleep", "1000"]);
    });
    env.create("t5");
    let out = env.ocirun(&["exec", "--console-socket", sock.arg(), "t5", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "ocirun: exec: --console-socket {}: process.terminal is false (set it or give \
             --tty, or drop the flag)\n",
            sock.arg()
        )
    );
}
