//! What the integration tests share: target processes started with util-linux `unshare` (killed
//! by PID when dropped, even when a test fails), bounded runs of nsenter-rs and util-linux
//! nsenter, and namespace inodes read from /proc.

#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_nsenter-rs");
pub const LIMIT: Duration = Duration::from_secs(30);

/// Every namespace kind, in the order the inode-printing script prints them.
pub const KINDS: [&str; 8] = ["user", "cgroup", "ipc", "uts", "net", "pid", "mnt", "time"];

/// A shell script that prints `KIND INODE` for each of [`KINDS`] of the shell itself.
pub fn inode_script() -> Vec<String> {
    let kinds = KINDS.join(" ");
    vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("for k in {kinds}; do echo \"$k $(stat -L -c %i /proc/self/ns/$k)\"; done"),
    ]
}

/// The namespace inode of `kind` of `pid` ("self" for the test process).
pub fn ns_inode(pid: &str, kind: &str) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("stat /proc/{pid}/ns/{kind}: {e}"))
        .ino()
}

/// What [`inode_script`] should print when `entered` kinds are the target's and the rest ours.
pub fn expected_inodes(target: i32, entered: &[&str]) -> String {
    KINDS
        .iter()
        .map(|k| {
            let who = if entered.contains(k) {
                target.to_string()
            } else {
                "self".to_string()
            };
            format!("{k} {}\n", ns_inode(&who, k))
        })
        .collect()
}

/// A target without a pid namespace (so /proc/self works after -m), holding mount, uts, ipc,
/// net and cgroup namespaces.
pub fn flat_target() -> Target {
    Target::start(
        &[
            "/usr/bin/unshare",
            "-m",
            "-u",
            "-i",
            "-n",
            "-C",
            "sleep",
            "60",
        ],
        false,
    )
}

/// A target in new pid (with its own /proc), mount, uts, ipc, net, cgroup and time namespaces.
pub fn pid_target() -> Target {
    let mut argv = vec!["/usr/bin/unshare"];
    argv.extend(EVERY_NS_SLEEP);
    Target::start(&argv, true)
}

/// unshare's arguments for a target in a new namespace of every kind but user (its PID
/// namespace with its own /proc): `sleep 60` as PID 1.
pub const EVERY_NS_SLEEP: [&str; 10] = [
    "-fp",
    "--mount-proc",
    "-m",
    "-u",
    "-i",
    "-n",
    "-C",
    "-T",
    "sleep",
    "60",
];

/// A process to enter, started by the test, killed (the whole tree it started, by PID) on drop.
pub struct Target {
    spawned: Child,
    /// The process whose namespaces the test enters (the spawned one, or its forked child).
    pub pid: i32,
    /// Extra pids to kill on drop.
    pub others: Vec<i32>,
}

fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Target {
    /// Runs `argv` (which must end up exec'ing `sleep`); with `forked`, the sleep is a child of
    /// the spawned process (unshare -f), found through /proc.
    pub fn start(argv: &[&str], forked: bool) -> Target {
        Self::start_as(argv, forked, "sleep")
    }

    /// As [`Target::start`], for a program whose process name is `name`.
    pub fn start_as(argv: &[&str], forked: bool, name: &str) -> Target {
        Self::start_full(argv, forked, name, None)
    }

    fn start_full(
        argv: &[&str],
        forked: bool,
        name: &str,
        dir: Option<&std::path::Path>,
    ) -> Target {
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        let spawned = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"));
        let top = spawned.id() as i32;
        let mut t = Target {
            spawned,
            pid: top,
            others: Vec::new(),
        };
        let pid = if forked {
            wait_until("the forked target", || {
                children(top).into_iter().find(|&c| comm(c) == name)
            })
        } else {
            wait_until("the target to exec", || (comm(top) == name).then_some(top))
        };
        t.pid = pid;
        t
    }

    /// The first descriptor of the target that is a socket.
    pub fn socket_fd(&self) -> i32 {
        wait_until("a socket in the target", || {
            std::fs::read_dir(format!("/proc/{}/fd", self.pid))
                .ok()?
                .flatten()
                .find(|e| {
                    std::fs::read_link(e.path())
                        .map(|l| l.to_string_lossy().starts_with("socket:"))
                        .unwrap_or(false)
                })
                .and_then(|e| e.file_name().to_str()?.parse().ok())
        })
    }

    /// The pid of the spawned process (unshare itself when it forked).
    pub fn top(&self) -> i32 {
        self.spawned.id() as i32
    }

    /// Waits for a child of `parent` named `name`.
    pub fn child_named(parent: i32, name: &str) -> i32 {
        wait_until(name, || {
            children(parent).into_iter().find(|&c| comm(c) == name)
        })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        for &p in self.others.iter().chain([self.pid].iter()) {
            // SAFETY: kill with a pid this test started.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        let _ = self.spawned.kill();
        let _ = self.spawned.wait();
    }
}

/// Runs nsenter-rs with `args`.
pub fn nsenter_rs(args: &[&str]) -> testcaps::Output {
    testcaps::run(Command::new(BIN).args(args), LIMIT)
}

/// Runs nsenter-rs with `args` then `program`.
pub fn nsenter_rs_prog(args: &[String], program: &[String]) -> testcaps::Output {
    testcaps::run(Command::new(BIN).args(args).args(program), LIMIT)
}

/// Runs util-linux nsenter with `args` then `program`.
pub fn nsenter_ul_prog(args: &[String], program: &[String]) -> testcaps::Output {
    testcaps::run(
        Command::new("/usr/bin/nsenter").args(args).args(program),
        LIMIT,
    )
}

/// `["-t", PID, ...rest]` as owned strings.
pub fn with_target(pid: i32, rest: &[&str]) -> Vec<String> {
    let mut v = vec!["-t".to_string(), pid.to_string()];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

/// Asserts a clean failure: exit 1, one line on stderr starting `nsenter-rs: ` and containing
/// `needle`, nothing on stdout (the program, which would print, never ran).
pub fn assert_fails(out: &testcaps::Output, needle: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.starts_with("nsenter-rs: "), "{out:?}");
    assert!(out.stderr.contains(needle), "wanted {needle:?} in {out:?}");
    // strerror's words, never std's " (os error N)".
    assert!(!out.stderr.contains("(os error"), "{out:?}");
}

/// The pidfs inode of `pid`, from a pidfd opened by the test (no setns involved).
pub fn pidfd_inode(pid: i32) -> u64 {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(
        fd >= 0,
        "pidfd_open({pid}): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the descriptor is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    std::fs::File::from(fd)
        .metadata()
        .expect("fstat pidfd")
        .ino()
}

/// A copy of nsenter-rs in a fresh directory under /tmp that any user may execute, for tests
/// that run it unprivileged (the checkout may sit in a directory only root can enter).
/// Removed on drop.
pub struct WorldExec {
    /// Held only to be removed, with the copy, when this is dropped.
    _dir: testcaps::TempDir,
    /// The copy.
    pub bin: std::path::PathBuf,
}

impl WorldExec {
    /// Makes the copy.
    pub fn new() -> WorldExec {
        use std::os::unix::fs::PermissionsExt;
        let dir = testcaps::TempDir::new("nsenter-rs-test").expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod dir");
        let bin = dir.path().join("nsenter-rs");
        // A hard link opens nothing for writing; a copy does, and a process another test thread
        // forks meanwhile may hold that descriptor until it execs (see `run_retrying`).
        if std::fs::hard_link(BIN, &bin).is_err() {
            testcaps::copy_executable(BIN, &bin);
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
                .expect("chmod bin");
        }
        WorldExec { _dir: dir, bin }
    }

    /// Runs `make()`'s command, again while exec of the copy fails with ETXTBSY (a sibling test
    /// thread's fork briefly inheriting the copy's write descriptor).
    pub fn run_retrying(&self, make: impl Fn() -> Command) -> testcaps::Output {
        for _ in 0..20 {
            let out = testcaps::run(&mut make(), LIMIT);
            if !out.stderr.contains("Text file busy") {
                return out;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} stayed busy", self.bin.display());
    }

    /// The copy's path as a string.
    pub fn path(&self) -> String {
        self.bin.to_string_lossy().into_owned()
    }
}
