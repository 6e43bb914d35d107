//! tinyvmm's seccomp confinement seen from outside: every thread of a running tinyvmm has the
//! filter (`Seccomp: 2`, no_new_privs) and none has it with `--no-seccomp`; a call outside the
//! allow-list ends the run with 125 and the handler's one line. (Every other test of this crate
//! runs its guests with the filter on, the default.)

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testcaps::{require, Cap};

const BIN: &str = env!("CARGO_BIN_EXE_tinyvmm");

/// A directory under target/tmp, removed on drop.
fn temp_dir(name: &str) -> testcaps::TempDir {
    testcaps::TempDir::new_in(testcaps::target_dir().join("tmp"), name)
        .expect("create the temporary directory")
}

/// A running tinyvmm, killed by its PID and reaped on drop (also when an assertion fails).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = testcaps::wait_bounded(&mut self.0, Duration::from_secs(10));
    }
}

/// `(comm, Seccomp, NoNewPrivs)` of each thread of `pid`.
fn threads(pid: u32) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let dir = t.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        out.push((
            comm.trim().to_string(),
            field("Seccomp:"),
            field("NoNewPrivs:"),
        ));
    }
    out.sort();
    out
}

/// Starts a guest that spins with a virtio disk (its device thread starts before the filter)
/// and a timeout (its watchdog thread starts after it), and returns its threads once the
/// watchdog is there, which is after the point where the filter is installed.
fn spinning_threads(extra: &[&str]) -> Vec<(String, String, String)> {
    let dir = temp_dir("tinyvmm-seccomp");
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).expect("write the disk image");
    let mut args = vec![
        "run".to_string(),
        "--mem".into(),
        "16M".into(),
        "--timeout".into(),
        "60".into(),
        "--disk".into(),
        disk.to_str().expect("utf-8 path").into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(tinyvmm::guest_path("spin.bin"));
    let child = Command::new(BIN)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tinyvmm");
    let vmm = Running(child);
    let pid = vmm.0.id();
    let start = Instant::now();
    loop {
        let now = threads(pid);
        if now.iter().any(|t| t.0 == "watchdog") {
            return now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no watchdog thread in 20 s: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_thread_of_a_running_vmm_has_the_filter() {
    require!(Cap::Kvm);
    let threads = spinning_threads(&[]);
    let names: Vec<&str> = threads.iter().map(|t| t.0.as_str()).collect();
    // The main thread (its vCPU), the device thread made before the filter (TSYNC gave it the
    // filter) and the watchdog made after (it inherited it); KVM's own kernel threads, if
    // listed, belong to the kernel and carry the creator's mode too.
    for name in ["tinyvmm", "virtio", "watchdog"] {
        assert!(names.contains(&name), "{threads:?}");
    }
    for (comm, seccomp, nnp) in &threads {
        assert_eq!(
            (seccomp.as_str(), nnp.as_str()),
            ("2", "1"),
            "thread {comm}: {threads:?}"
        );
    }
}

#[test]
fn no_seccomp_leaves_every_thread_unconfined() {
    require!(Cap::Kvm);
    let threads = spinning_threads(&["--no-seccomp"]);
    assert!(threads.iter().any(|t| t.0 == "virtio"), "{threads:?}");
    for (comm, seccomp, nnp) in &threads {
        assert_eq!(
            (seccomp.as_str(), nnp.as_str()),
            ("0", "0"),
            "thread {comm}: {threads:?}"
        );
    }
}

/// A shared object for LD_PRELOAD that makes tinyvmm itself call open(2) at the first write of
/// the guest's console (which happens only while the guest runs, after set-up), then writes as
/// asked. Built with the C compiler the Rust toolchain links with.
const PRELOAD: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int probed;

ssize_t write(int fd, const void *buf, size_t n) {
    if (fd == 1 && !probed) {
        probed = 1;
        int f = open("/", O_RDONLY | O_DIRECTORY);
        const char *said = f >= 0 ? "probe: open(/) succeeded\n" : "probe: open(/) failed\n";
        syscall(SYS_write, 2, said, strlen(said));
    }
    return syscall(SYS_write, fd, buf, n);
}
"#;

fn build_preload(dir: &Path) -> PathBuf {
    let src = dir.join("probe.c");
    let so = dir.join("probe.so");
    std::fs::write(&src, PRELOAD).expect("write probe.c");
    let out = testcaps::run(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&so)
            .arg(&src),
        Duration::from_secs(120),
    );
    assert_eq!(out.code, Some(0), "cc: {out:?}");
    so
}

/// The filter bites: the same open(2) the probe makes goes through with `--no-seccomp` and ends
/// the run with the handler's line and 125 with the filter. The probe is a test-side
/// LD_PRELOAD library, not a hook in tinyvmm; it needs the dynamically linked debug build
/// (`CARGO_BIN_EXE_tinyvmm`, never the shipped static one).
#[test]
fn a_call_outside_the_allow_list_ends_the_run_with_one_line() {
    require!(Cap::Kvm);
    let dir = temp_dir("tinyvmm-seccomp-probe");
    let so = build_preload(dir.path());
    let run = |extra: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        let image = tinyvmm::guest_path("hello-long.bin");
        args.push(&image);
        testcaps::run(
            Command::new(BIN).args(&args).env("LD_PRELOAD", &so),
            Duration::from_secs(30),
        )
    };
    let free = run(&["--no-seccomp"]);
    assert_eq!(free.code, Some(0), "{free:?}");
    assert_eq!(free.stderr, "probe: open(/) succeeded\n", "{free:?}");
    assert!(free.stdout.starts_with("Hello"), "{free:?}");

    let confined = run(&[]);
    assert_eq!(confined.code, Some(125), "{confined:?}");
    assert_eq!(
        confined.stderr,
        format!(
            "tinyvmm: seccomp: system call {} (openat) is not in tinyvmm's allow-list (--no-seccomp turns the filter off)\n",
            libc::SYS_openat
        ),
        "{confined:?}"
    );
    assert_eq!(confined.stdout, "", "{confined:?}");
}
