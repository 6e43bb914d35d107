//! The fast path (src/early.rs) against the ordinary one: the same command lines, run once each
//! way (`MICROTOOLS_EARLY=0` turns the fast path off), must end the same way, print the same and
//! leave the program in the same kernel state, failures and handovers included; and the fast
//! path must really run before glibc starts. Only the shipped static build has it
//! (`MICROTOOLS_BIN_DIR`, as `cargo xtask ci` runs these tests a second time): in cargo's test
//! build it is compiled out, and both runs take the ordinary path.

mod common;

use common::*;
use std::process::Command;
use testcaps::Cap;

/// What the program reports of its world: namespace links (inodes differ from run to run, so
/// only whether each differs from ours is kept), id maps, setgroups, the propagation of /, and
/// which process is PID 1 in its /proc.
const PROBE: &str =
    "for k in cgroup ipc mnt net pid time user uts; do readlink /proc/self/ns/$k; done; \
     cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; \
     awk '$5 == \"/\" { print \"root\", $7 }' /proc/self/mountinfo; \
     echo \"pid1 $(cat /proc/1/comm)\"";

/// Runs unshare-rs with `opts` then `program`, the fast path on or off; the output with the
/// namespace links replaced by the kinds that differ from the test's own.
fn run_both(opts: &[&str], program: &[&str]) -> [(Option<i32>, Option<i32>, String, String); 2] {
    [None, Some("0")].map(|early| {
        let mut cmd = Command::new(bin());
        cmd.args(opts).args(program);
        if let Some(v) = early {
            cmd.env("MICROTOOLS_EARLY", v);
        }
        let out = testcaps::run(&mut cmd, LIMIT);
        let links = parse_links(&out.stdout);
        let rest: Vec<&str> = out.stdout.lines().filter(|l| !l.contains(":[")).collect();
        let stdout = format!("new: {:?}\n{}", differing(&links), rest.join("\n"));
        (out.code, out.signal, stdout, out.stderr)
    })
}

fn assert_same(opts: &[&str], program: &[&str], code: i32) {
    let [fast, ordinary] = run_both(opts, program);
    assert_eq!(
        fast, ordinary,
        "{opts:?} {program:?}: fast path (left) and ordinary path (right) differ"
    );
    assert_eq!(ordinary.0, Some(code), "{opts:?} {program:?}: {ordinary:?}");
}

#[test]
fn both_paths_leave_the_program_in_the_same_world() {
    testcaps::require!(Cap::Root, Cap::Userns);
    let probe = ["sh", "-c", PROBE];
    for opts in [
        &[][..],
        &["-n"],
        &["-r"],
        &["-c"],
        &["-U"],
        &["-m"],
        &["-fm"],
        &["--mount-proc"],
        &["-fp", "--mount-proc"],
        &["-fpr", "--mount-proc"],
        &["-mipunfC"],
        &["--net", "--uts", "--fork", "--map-root-user"],
        &["-rc", "--"],
    ] {
        assert_same(opts, &probe, 0);
    }
}

#[test]
fn both_paths_fail_the_same_way() {
    testcaps::require!(Cap::Root, Cap::Userns);
    // mount(proc) refused in a user namespace that does not own the pid namespace: after the
    // unshare and the propagation change, in the process itself or in the forked child.
    assert_same(&["-U", "--mount-proc"], &["true"], 1);
    assert_same(&["-fU", "--mount-proc"], &["true"], 1);
    // The program cannot be run: not found, not executable, found only later in PATH.
    assert_same(&["-n"], &["/nonexistent/program"], 127);
    assert_same(&["-f"], &["no-such-program-microtools"], 127);
    assert_same(&["-r"], &["/etc"], 126);
    // Statuses and signals of the child pass through.
    assert_same(&["-f"], &["sh", "-c", "exit 42"], 42);
    let [fast, ordinary] = run_both(&["-f"], &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(fast, ordinary);
    assert_eq!((ordinary.0, ordinary.1), (None, Some(libc::SIGTERM)));
}

#[test]
fn an_unprivileged_unshare_fails_the_same_way() {
    testcaps::require!(Cap::Root);
    let run = |early: &str| {
        testcaps::run(
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .args([bin(), "-n", "true"])
                .env("MICROTOOLS_EARLY", early),
            LIMIT,
        )
    };
    let (fast, ordinary) = (run("1"), run("0"));
    assert_eq!(ordinary.code, Some(1), "{ordinary:?}");
    assert!(
        ordinary
            .stderr
            .starts_with("unshare-rs: unshare(CLONE_NEWNET) failed"),
        "{ordinary:?}"
    );
    assert_eq!((fast.code, fast.stderr), (ordinary.code, ordinary.stderr));
}

/// A caller that ignores SIGCHLD: the child is reaped by the kernel and waiting for it fails,
/// which the fast path hands over to the ordinary one to report.
#[test]
fn a_failed_wait_is_reported_the_same_way() {
    // perl, because sh does not pass an ignored SIGCHLD on to what it execs.
    let run = |early: &str| {
        testcaps::run(
            Command::new("perl")
                .args([
                    "-e",
                    "$SIG{CHLD} = 'IGNORE'; exec @ARGV or die",
                    bin(),
                    "-f",
                    "true",
                ])
                .env("MICROTOOLS_EARLY", early),
            LIMIT,
        )
    };
    let (fast, ordinary) = (run("1"), run("0"));
    assert_eq!(ordinary.code, Some(1), "{ordinary:?}");
    assert!(ordinary.stderr.contains("waitpid("), "{ordinary:?}");
    assert_eq!(
        (fast.code, fast.stderr.split(')').nth(1)),
        (ordinary.code, ordinary.stderr.split(')').nth(1)),
        "the messages differ only in the pid:\n{fast:?}\n{ordinary:?}"
    );
}

/// The names of the sections of the ELF file at `path` (empty if it is not one).
fn elf_sections(path: &str) -> Vec<String> {
    let elf = std::fs::read(path).expect("read the binary");
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| u64::from(u32_at(o)) | u64::from(u32_at(o + 4)) << 32;
    let (shoff, shentsize) = (u64_at(0x28) as usize, usize::from(u16_at(0x3a)));
    let (shnum, shstrndx) = (usize::from(u16_at(0x3c)), usize::from(u16_at(0x3e)));
    let header = |i: usize| shoff + i * shentsize;
    let names = u64_at(header(shstrndx) + 0x18) as usize;
    (0..shnum)
        .map(|i| {
            let at = names + u32_at(header(i)) as usize;
            let name = elf.get(at..).unwrap_or_default();
            let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
            String::from_utf8_lossy(&name[..end]).into_owned()
        })
        .collect()
}

#[test]
fn only_the_shipped_build_has_the_fast_path() {
    let sections = elf_sections(bin());
    assert!(sections.iter().any(|s| s == ".text"), "{sections:?}");
    assert_eq!(
        sections.iter().any(|s| s == "early_text"),
        testcaps::shipped_build(),
        "{}: {sections:?}",
        bin()
    );
}

/// The syscalls the process made before its unshare.
fn before_unshare(trace: &str) -> Vec<&str> {
    trace
        .lines()
        .take_while(|l| !l.contains("unshare("))
        .collect()
}

#[test]
fn the_fast_path_runs_before_glibc_starts() {
    testcaps::require!(Cap::Root);
    let trace = |early: &str| {
        let (out, trace) = testcaps::strace(
            Command::new(bin())
                .args(["-n", "true"])
                .env("MICROTOOLS_EARLY", early),
            LIMIT,
        );
        assert_eq!(out.code, Some(0), "{out:?}");
        trace
    };
    let (fast, ordinary) = (trace("1"), trace("0"));
    // The ordinary path reads the caller's ids and pid before it unshares; the fast path, which
    // needs them only for a user namespace, goes straight to unshare. Without a fast path
    // (cargo's test build) both runs are the ordinary one.
    for call in ["geteuid(", "getpid("] {
        assert!(
            before_unshare(&ordinary).iter().any(|l| l.contains(call)),
            "{call}\n{ordinary}"
        );
        assert_eq!(
            before_unshare(&fast).iter().any(|l| l.contains(call)),
            !testcaps::shipped_build(),
            "{call}\n{fast}"
        );
    }
    if testcaps::shipped_build() {
        // The static shipped build: glibc's start-up (its TLS set-up first of all) never runs
        // before the program's execve (whose own loader sets up TLS again).
        let ours = |trace: &str| -> String {
            let mut lines = trace.lines();
            let first = lines.next().unwrap_or_default().to_string();
            lines
                .take_while(|l| !l.contains("execve("))
                .fold(first, |acc, l| acc + "\n" + l)
        };
        let tls = "arch_prctl(ARCH_SET_FS";
        assert!(ours(&ordinary).contains(tls), "{ordinary}");
        assert!(!ours(&fast).contains(tls), "{fast}");
    }
}

/// A set-uid start (AT_SECURE) is left to the ordinary path, where glibc cleans the environment
/// first: with the set-uid bit, the caller's ids are read before the unshare, as the ordinary
/// path does; without it, not.
#[test]
fn a_set_uid_start_takes_the_ordinary_path() {
    testcaps::require!(Cap::Root);
    let dir = TempDir::new("unshare-rs-setuid").expect("temp dir");
    let copy = dir.path().join("unshare-rs");
    testcaps::copy_executable(bin(), &copy);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let traced = |mode: u32| {
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let log = dir.path().join(format!("trace-{mode:o}"));
        // strace -u runs the program as nobody with its set-uid bit honoured.
        let out = testcaps::run(
            Command::new("strace")
                .args(["-f", "-qq", "-u", "nobody", "-o"])
                .arg(&log)
                .arg(&copy)
                .args(["-U", "true"]),
            LIMIT,
        );
        assert_eq!(out.code, Some(0), "{out:?}");
        std::fs::read_to_string(&log).expect("trace")
    };
    let plain = traced(0o755);
    let setuid = traced(0o4755);
    let reads_ids = |trace: &str| before_unshare(trace).iter().any(|l| l.contains("getpid("));
    // Without a fast path (cargo's test build) both starts take the ordinary path.
    assert_eq!(reads_ids(&plain), !testcaps::shipped_build(), "{plain}");
    assert!(reads_ids(&setuid), "{setuid}");
}
