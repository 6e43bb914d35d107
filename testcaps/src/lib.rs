//! What every tool's integration tests share: capability gating (skip with a printed reason, or
//! fail when `MICROTOOLS_REQUIRE` demands the capability), cgroup cleanup guards, temporary
//! directories ([`TempDir`]), and bounded runs of built binaries.
//!
//! Tests never create user namespaces or call setns in the threaded test process: they run
//! binaries (ours or util-linux's) that do.

use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod tempdir;
pub use tempdir::TempDir;

/// A capability a test may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// Effective uid 0.
    Root,
    /// User namespaces can be created (checked by running `unshare -U true`).
    Userns,
    /// `/dev/kvm` opens and answers KVM_GET_API_VERSION with 12.
    Kvm,
    /// A guest kernel from `cargo xtask kernel`: its bzImage at [`kernel_image`] and its ELF
    /// vmlinux at [`kernel_elf`].
    Kernel,
    /// `qemu-system-x86_64` is on PATH.
    Qemu,
    /// The busybox rootfs from `cargo xtask rootfs` is at [`rootfs`].
    Rootfs,
    /// KVM backed by the CPU's virtualization extensions (vmx/svm), able to boot stock Linux;
    /// not PVM, the software layer some cloud VMs offer as /dev/kvm.
    HwKvm,
    /// The cgroup controllers the cgroup tests limit and read (memory, pids, cpu) are mounted,
    /// in v1 or v2, and freezing works (a v1 freezer, or any cgroup2).
    Cgroup,
    /// A cgroup v1 controller hierarchy is mounted (a v1 or hybrid host).
    CgroupV1,
    /// memory and pids are on cgroup v2 (a pure v2 host, or a hybrid one that moved them).
    CgroupV2,
    /// The container engines of `cargo xtask engines` are installed: podman, conmon, crun,
    /// containerd and ctr on PATH.
    Engines,
}

/// Every capability, with the name `MICROTOOLS_REQUIRE` uses for it.
pub const ALL: [(Cap, &str); 11] = [
    (Cap::Root, "root"),
    (Cap::Userns, "userns"),
    (Cap::Kvm, "kvm"),
    (Cap::Kernel, "kernel"),
    (Cap::Qemu, "qemu"),
    (Cap::Rootfs, "rootfs"),
    (Cap::HwKvm, "hwkvm"),
    (Cap::Cgroup, "cgroup"),
    (Cap::CgroupV1, "cgroupv1"),
    (Cap::CgroupV2, "cgroupv2"),
    (Cap::Engines, "engines"),
];

impl Cap {
    /// The name used in `MICROTOOLS_REQUIRE` and in skip messages.
    pub fn name(self) -> &'static str {
        ALL.iter()
            .find(|(c, _)| *c == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// Looks a capability up by name.
    pub fn from_name(name: &str) -> Option<Cap> {
        ALL.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }
}

/// Checks whether the machine has `cap`; `Err` says why not. `MICROTOOLS_PRETEND_MISSING`
/// (a list like `MICROTOOLS_REQUIRE`) makes a capability look missing, so the gating itself can be
/// tested on a machine that has everything.
pub fn check(cap: Cap) -> Result<(), String> {
    if parse_list(&std::env::var("MICROTOOLS_PRETEND_MISSING").unwrap_or_default())
        .iter()
        .any(|n| n == cap.name())
    {
        return Err("MICROTOOLS_PRETEND_MISSING lists it".to_string());
    }
    match cap {
        // SAFETY: geteuid has no preconditions.
        Cap::Root => match unsafe { libc::geteuid() } {
            0 => Ok(()),
            uid => Err(format!("running as uid {uid}, not root")),
        },
        Cap::Userns => {
            let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
                .map_err(|e| format!("cannot read /proc/sys/user/max_user_namespaces: {e}"))?;
            if max.trim() == "0" {
                return Err("sysctl user.max_user_namespaces is 0".to_string());
            }
            let status = Command::new("unshare")
                .args(["-U", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| format!("cannot run util-linux unshare to probe: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err("`unshare -U true` failed".to_string())
            }
        }
        Cap::Kvm => kvm_api_version().and_then(|v| {
            if v == 12 {
                Ok(())
            } else {
                Err(format!("KVM_GET_API_VERSION answered {v}, not 12"))
            }
        }),
        Cap::Kernel => match [kernel_image(), kernel_elf()]
            .into_iter()
            .find(|p| !p.is_file())
        {
            None => Ok(()),
            Some(path) => Err(format!(
                "no guest kernel at {} (run `cargo xtask kernel`)",
                path.display()
            )),
        },
        Cap::Qemu => {
            if find_in_path("qemu-system-x86_64").is_some() {
                Ok(())
            } else {
                Err("qemu-system-x86_64 is not on PATH (run `cargo xtask deps`)".to_string())
            }
        }
        Cap::HwKvm => {
            check(Cap::Kvm)?;
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            let loaded = |m: &str| Path::new("/sys/module").join(m).exists();
            hwkvm_verdict(
                kvm_is_pvm(),
                &cpuinfo,
                loaded("kvm_intel") || loaded("kvm_amd"),
            )
        }
        Cap::Cgroup | Cap::CgroupV1 | Cap::CgroupV2 => check_cgroup(cap),
        Cap::Engines => {
            let missing: Vec<&str> = ["podman", "conmon", "crun", "containerd", "ctr"]
                .into_iter()
                .filter(|t| find_in_path(t).is_none())
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "not on PATH: {} (run `cargo xtask deps`)",
                    missing.join(", ")
                ))
            }
        }
        Cap::Rootfs => {
            let root = rootfs();
            if root.join("bin/busybox").is_file() {
                Ok(())
            } else {
                Err(format!(
                    "no busybox rootfs at {} (run `cargo xtask rootfs`)",
                    root.display()
                ))
            }
        }
    }
}

/// The cgroup controllers mounted here and the version of the hierarchy each is on, from
/// mountinfo (a v1 mount's options name its controllers, as /proc/cgroups lists them) and each
/// cgroup2 root's cgroup.controllers; `None` for "some cgroup2 is mounted".
pub fn cgroup_controllers() -> Result<Vec<(Option<String>, u8)>, String> {
    let mounts = conventions::mountinfo::read_self()
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let known = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    let known: Vec<&str> = known
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut out = Vec::new();
    for m in &mounts {
        match m.fstype.as_str() {
            "cgroup" => out.extend(
                m.super_option_list()
                    .filter(|o| known.contains(o))
                    .map(|o| (Some(o.to_string()), 1)),
            ),
            "cgroup2" => {
                out.push((None, 2));
                let ctl = Path::new(&m.mount_point).join("cgroup.controllers");
                let text = std::fs::read_to_string(ctl).unwrap_or_default();
                out.extend(text.split_whitespace().map(|c| (Some(c.to_string()), 2)));
            }
            _ => {}
        }
    }
    Ok(out)
}

fn check_cgroup(cap: Cap) -> Result<(), String> {
    let have = cgroup_controllers()?;
    let on = |c: &str, v: Option<u8>| {
        have.iter()
            .any(|(n, ver)| n.as_deref() == Some(c) && v.is_none_or(|v| v == *ver))
    };
    let missing: Vec<&str> = match cap {
        Cap::Cgroup => {
            let freezer = on("freezer", Some(1)) || have.iter().any(|(n, _)| n.is_none());
            ["memory", "pids", "cpu"]
                .into_iter()
                .filter(|c| !on(c, None))
                .chain((!freezer).then_some("freezer"))
                .collect()
        }
        Cap::CgroupV1 => {
            if have.iter().any(|(_, v)| *v == 1) {
                vec![]
            } else {
                vec!["any v1 controller"]
            }
        }
        _ => ["memory", "pids"]
            .into_iter()
            .filter(|c| !on(c, Some(2)))
            .collect(),
    };
    if missing.is_empty() {
        Ok(())
    } else {
        let what = if cap == Cap::CgroupV2 {
            " on cgroup v2"
        } else {
            ""
        };
        Err(format!("no {}{what} here", missing.join(", ")))
    }
}

/// Whether /dev/kvm is PVM's (software virtualization: tiny guests run, stock Linux does not).
pub fn kvm_is_pvm() -> bool {
    Path::new("/sys/module/kvm_pvm").exists()
}

/// The pure part of the `hwkvm` check: not PVM, a CPU with vmx or svm, and KVM's hardware backend
/// (kvm_intel or kvm_amd) loaded. True inside the nested lane's level 1 (kvm_amd on QEMU's
/// emulated AMD-V), false on a PVM host.
pub fn hwkvm_verdict(pvm: bool, cpuinfo: &str, hw_module: bool) -> Result<(), String> {
    if pvm {
        return Err(
            "KVM here is PVM (software virtualization), which cannot boot stock Linux".to_string(),
        );
    }
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or("");
    if !flags.split_whitespace().any(|f| f == "vmx" || f == "svm") {
        return Err("the CPU flags have neither vmx nor svm".to_string());
    }
    if !hw_module {
        return Err("neither kvm_intel nor kvm_amd is loaded (/sys/module)".to_string());
    }
    Ok(())
}

/// How long a test lets one guest boot or one tool run before it counts as hung: a hang guard,
/// never a timing. Generous, because CI shares two cores with other builds and a loaded machine
/// must not make a test fail; stated once here for every test (and `cargo xtask demo`) that
/// boots a guest.
pub const HANG_GUARD: Duration = Duration::from_secs(600);

fn kvm_api_version() -> Result<i32, String> {
    use std::os::fd::AsRawFd;
    let meta = std::fs::metadata("/dev/kvm").map_err(|e| format!("/dev/kvm: {e}"))?;
    if !meta.file_type().is_char_device() {
        return Err("/dev/kvm is not a character device".to_string());
    }
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("open /dev/kvm: {e}"))?;
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    // SAFETY: KVM_GET_API_VERSION takes no argument and only returns a number.
    let v = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_GET_API_VERSION, 0) };
    if v < 0 {
        return Err(format!(
            "KVM_GET_API_VERSION: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(v)
}

/// Splits a capability list as `MICROTOOLS_REQUIRE` holds it: names separated by commas or spaces.
pub fn parse_list(s: &str) -> Vec<String> {
    s.split([',', ' ', '\t', '\n'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// The capabilities `MICROTOOLS_REQUIRE` demands.
pub fn required() -> Vec<String> {
    parse_list(&std::env::var("MICROTOOLS_REQUIRE").unwrap_or_default())
}

/// What a test does about one capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Present: run.
    Run,
    /// Missing and not demanded: print `SKIPPED <test>: needs <cap> (<why>)` and return.
    Skip(String),
    /// Missing but demanded by `MICROTOOLS_REQUIRE`: the test fails with this message.
    Fail(String),
}

/// The pure decision: given whether the capability or condition `name` is present and the
/// demanded list.
pub fn decide(
    test: &str,
    name: &str,
    present: Result<(), String>,
    demanded: &[String],
) -> Decision {
    match present {
        Ok(()) => Decision::Run,
        Err(why) if demanded.iter().any(|d| d == name) => Decision::Fail(format!(
            "{test}: needs {name} ({why}), and MICROTOOLS_REQUIRE demands it"
        )),
        Err(why) => Decision::Skip(format!("SKIPPED {test}: needs {name} ({why})")),
    }
}

/// Carries out a [`Decision`]: true to run; prints and logs the skip line and returns false;
/// panics (fails the test) when the missing one is demanded.
fn act(decision: Decision) -> bool {
    match decision {
        Decision::Run => true,
        Decision::Skip(line) => {
            println!("{line}");
            eprintln!("{line}");
            log_skip(&line);
            false
        }
        Decision::Fail(msg) => panic!("{msg}"),
    }
}

/// Gates a test on `caps`: returns true to run; prints the skip line and returns false when one
/// is missing; panics (fails the test) when a missing one is listed in `MICROTOOLS_REQUIRE`.
pub fn require(test: &str, caps: &[Cap]) -> bool {
    let demanded = required();
    caps.iter()
        .all(|&cap| act(decide(test, cap.name(), check(cap), &demanded)))
}

/// Gates a test on a named condition that only the test can judge (a kernel feature its tool
/// probes, where the test runs, how the host set a device up): skipped and demanded exactly as
/// a [`Cap`], so that `MICROTOOLS_REQUIRE` listing `name` turns its absence into a failure.
/// The names in use are [`CONDITIONS`].
pub fn require_condition(test: &str, name: &str, present: Result<(), String>) -> bool {
    // A mistyped name would skip under a name nobody demands.
    assert!(
        CONDITIONS.iter().any(|(n, _)| *n == name),
        "{test}: {name:?} is not in testcaps::CONDITIONS"
    );
    act(decide(test, name, present, &required()))
}

/// The conditions tests gate on through [`require_condition`], with what each means.
pub const CONDITIONS: [(&str, &str); 4] = [
    (
        "landlock",
        "the kernel has Landlock (setpriv-rs's --landlock-* tests)",
    ),
    (
        "noselinux",
        "SELinux is not running (setpriv-rs's util-linux comparison of --selinux-label)",
    ),
    (
        "hostns",
        "the tests run in the host's mount namespace (pivot's refusal to pivot it)",
    ),
    (
        "kvmprivate",
        "/dev/kvm is not world-accessible (tinyvmm's permission-denied message)",
    ),
];

/// `require_that!("name", result)`: [`require_condition`] for the enclosing test, returning
/// early when it skips.
#[macro_export]
macro_rules! require_that {
    ($name:expr, $present:expr $(,)?) => {
        if !$crate::require_condition($crate::function_name!(), $name, $present) {
            return;
        }
    };
}

/// Appends a skip line to the file `MICROTOOLS_SKIP_LOG` names, if any: cargo test captures a
/// passing test's output, so `cargo xtask ci` collects skips there and prints them at the end.
fn log_skip(line: &str) {
    use std::io::Write;
    if let Some(path) = std::env::var_os("MICROTOOLS_SKIP_LOG").filter(|p| !p.is_empty()) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// `require!(Cap::Root, Cap::Kvm)` at the top of a test returns early (skipping) unless every
/// capability is present; the test's name comes from the enclosing function's path.
#[macro_export]
macro_rules! require {
    ($($cap:expr),+ $(,)?) => {
        if !$crate::require($crate::function_name!(), &[$($cap),+]) {
            return;
        }
    };
}

/// The path of the enclosing function, used as a test's name in skip lines.
#[macro_export]
macro_rules! function_name {
    () => {{
        fn f() {}
        fn type_name_of<T>(_: T) -> &'static str {
            std::any::type_name::<T>()
        }
        let name = type_name_of(f);
        name.strip_suffix("::f").unwrap_or(name)
    }};
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target/` in the workspace).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// The busybox rootfs for container tests: `MICROTOOLS_ROOTFS`, else `target/rootfs`.
pub fn rootfs() -> PathBuf {
    match std::env::var_os("MICROTOOLS_ROOTFS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => target_dir().join("rootfs"),
    }
}

/// The guest kernel (bzImage) from `cargo xtask kernel`: `MICROTOOLS_KERNEL`, else
/// `target/kernel/vmlinuz`.
pub fn kernel_image() -> PathBuf {
    match std::env::var_os("MICROTOOLS_KERNEL") {
        Some(k) if !k.is_empty() => PathBuf::from(k),
        _ => target_dir().join("kernel/vmlinuz"),
    }
}

/// The same kernel as an uncompressed ELF (`vmlinux`, entered at its PVH note), which
/// `cargo xtask kernel` extracts beside the bzImage.
pub fn kernel_elf() -> PathBuf {
    kernel_image().with_file_name("vmlinux")
}

/// A binary of another workspace crate, next to the running test's own profile directory
/// (`target/debug/NAME`). Panics with a hint when it was not built.
pub fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("."));
    // Test executables live in target/<profile>/deps/.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| target_dir().join("debug"));
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built (run `cargo build --workspace` first)",
        path.display()
    );
    path
}

/// The tool binary a test runs: `$MICROTOOLS_BIN_DIR/NAME` when that is set (`cargo xtask ci`
/// runs unshare-rs's tests a second time on the shipped static build that way), else `built`,
/// the test build cargo names in `CARGO_BIN_EXE_<name>`.
pub fn tool_bin(name: &str, built: &'static str) -> &'static str {
    match std::env::var_os("MICROTOOLS_BIN_DIR") {
        Some(dir) if !dir.is_empty() => {
            let path = PathBuf::from(dir).join(name);
            assert!(
                path.is_file(),
                "MICROTOOLS_BIN_DIR has no {}",
                path.display()
            );
            Box::leak(
                path.into_os_string()
                    .into_string()
                    .unwrap_or_default()
                    .into_boxed_str(),
            )
        }
        _ => built,
    }
}

/// Whether the tests run on a build other than cargo's test build (see [`tool_bin`]).
pub fn shipped_build() -> bool {
    std::env::var_os("MICROTOOLS_BIN_DIR").is_some_and(|d| !d.is_empty())
}

/// Finds `name` in PATH.
pub use conventions::exec::find_in_path;

/// The syscalls `cmd` makes, as `strace -f -qq` prints them (one per line, children
/// included), for tests that check how a tool starts; panics with a hint when strace is missing
/// (`cargo xtask deps` installs it).
pub fn strace(cmd: &mut Command, limit: Duration) -> (Output, String) {
    let log = std::env::temp_dir().join(unique_name("strace").replace('/', "-"));
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-qq", "-s", "64", "-o"])
        .arg(&log)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => traced.env(k, v),
            None => traced.env_remove(k),
        };
    }
    if conventions::exec::find_in_path("strace").is_none() {
        panic!("strace is not installed (cargo xtask deps installs it)");
    }
    let out = run(&mut traced, limit);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    (out, text)
}

/// The lines of an strace log that call `syscall` (`name(` at the start of the call).
pub fn calls<'a>(trace: &'a str, syscall: &str) -> Vec<&'a str> {
    let open = format!("{syscall}(");
    trace
        .lines()
        .filter(|l| {
            // "PID name(args..." with -f; the pid column is optional.
            let call = l.split_once(' ').map_or(*l, |(first, rest)| {
                if first.chars().all(|c| c.is_ascii_digit()) {
                    rest.trim_start()
                } else {
                    l
                }
            });
            call.starts_with(&open)
        })
        .collect()
}

/// The one call of `syscall` in a trace (panics, showing the trace, unless there is exactly
/// one): e.g. the clone that started a tool's child.
pub fn one_call<'a>(trace: &'a str, syscall: &str) -> &'a str {
    match calls(trace, syscall)[..] {
        [one] => one,
        ref other => panic!("{} {syscall} calls, not one:\n{trace}", other.len()),
    }
}

/// Checks that a trace shows none of what Rust's runtime start-up does (the tools have a plain
/// C `main`): no poll of fds 0-2, no read of /proc/self/maps, no alternate signal stack.
pub fn assert_no_std_runtime_startup(trace: &str) {
    for call in ["poll", "sigaltstack"] {
        let found = calls(trace, call);
        assert!(found.is_empty(), "{call} at start-up: {found:?}\n{trace}");
    }
    assert!(
        !trace.contains("/proc/self/maps"),
        "/proc/self/maps read at start-up:\n{trace}"
    );
}

/// An argument vector from string literals, as parsers take it.
pub fn os_args(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(std::ffi::OsString::from).collect()
}

/// Copies an executable for a test to run, through a `cp` child process: the descriptor open
/// for writing then lives only in `cp`, never in the threaded test process, where another
/// test's fork could inherit it and make every exec of the copy fail with ETXTBSY until its
/// child execs.
pub fn copy_executable(src: impl AsRef<Path>, dst: impl AsRef<Path>) {
    let (src, dst) = (src.as_ref(), dst.as_ref());
    let status = Command::new("cp")
        .arg("--")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap_or_else(|e| panic!("cannot run cp: {e}"));
    assert!(
        status.success(),
        "cp {} {} failed: {status}",
        src.display(),
        dst.display()
    );
}

/// A name no other test or run uses: `PREFIX-PID-N-NANOS`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// What a bounded run produced.
#[derive(Debug)]
pub struct Output {
    /// Exit code, or None when killed by a signal.
    pub code: Option<i32>,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

/// Runs `cmd` with stdout and stderr captured (stdin closed unless set), killing it by PID and
/// failing the test if it runs longer than `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    run_with_stdout(cmd, StdoutTo::Captured, limit)
}

/// Waits for a child the test spawned (to signal it, or to read it while it runs) for at most
/// `limit`: past that it is killed by PID and the test fails, as [`run`] bounds a run.
pub fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) => {}
            Err(e) => panic!("waiting for pid {}: {e}", child.id()),
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pid {} ran longer than {limit:?}: killed", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Where [`run_with_stdout`] points the command's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdoutTo {
    /// A pipe the test reads ([`Output::stdout`]), as [`run`] does.
    Captured,
    /// `/dev/full`: every write fails with ENOSPC.
    Full,
    /// Fd 1 closed, so that the first descriptor the command opens would become its stdout.
    Closed,
}

/// As [`run`], with stdout `to` (stderr always captured; `Output::stdout` is empty unless
/// `Captured`): the write-error tests of every tool.
pub fn run_with_stdout(cmd: &mut Command, to: StdoutTo, limit: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    use std::os::unix::process::ExitStatusExt;
    let desc = format!("{cmd:?} (stdout {to:?})");
    match to {
        StdoutTo::Captured => cmd.stdout(Stdio::piped()),
        StdoutTo::Full => cmd.stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap_or_else(|e| panic!("open /dev/full: {e}")),
        ),
        StdoutTo::Closed => {
            // SAFETY: close(2) is async-signal-safe and touches only the child's own fd 1.
            unsafe {
                cmd.pre_exec(|| {
                    libc::close(1);
                    Ok(())
                })
            };
            cmd.stdout(Stdio::null())
        }
    };
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {desc}: {e}"));
    let (out_buf, out_reader) = collect(child.stdout.take());
    let (err_buf, err_reader) = collect(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                // What it printed so far says where it hung; the readers are not joined, since a
                // grandchild may still hold the pipes open.
                panic!(
                    "{desc} ran longer than {limit:?} and was killed; the end of its output:\n\
                     stdout:\n{}\nstderr:\n{}",
                    tail(&out_buf, 20),
                    tail(&err_buf, 40)
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("waiting for {desc}: {e}"),
        }
    };
    let _ = out_reader.join();
    let _ = err_reader.join();
    let text = |b: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&b.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    };
    let (stdout, stderr) = (text(&out_buf), text(&err_buf));
    Output {
        code: status.code(),
        signal: status.signal(),
        stdout,
        stderr,
    }
}

/// A thread that appends what `pipe` yields to a buffer the caller can read at any time.
fn collect(
    pipe: Option<impl Read + Send + 'static>,
) -> (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    let reader = std::thread::spawn(move || {
        let Some(mut pipe) = pipe else { return };
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
    });
    (buf, reader)
}

/// The last `lines` lines of what a buffer holds, as text without control sequences.
fn tail(buf: &Mutex<Vec<u8>>, lines: usize) -> String {
    let text = strip_escapes(&String::from_utf8_lossy(
        &buf.lock().unwrap_or_else(|p| p.into_inner()),
    ));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Terminal control sequences and carriage returns removed (a VM's firmware clears the screen
/// on the serial line), so that captured output and failure messages print as text.
pub fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\u{1b}' => {
                if it.peek() == Some(&'[') {
                    it.next();
                    for d in it.by_ref() {
                        if ('@'..='~').contains(&d) {
                            break;
                        }
                    }
                } else {
                    it.next();
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Mount points of cgroup hierarchies (v1 and v2) seen in `/proc/self/mountinfo`.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    conventions::mountinfo::cgroup_mounts()
        .into_iter()
        .map(|m| PathBuf::from(m.mount_point))
        .collect()
}

/// Removes a test's cgroup `NAME` (relative to each hierarchy's root) from every hierarchy when
/// dropped, even when the test failed: kills what is left in it (by PID), then removes the
/// directories deepest first.
#[derive(Debug)]
pub struct CgroupGuard {
    name: String,
}

impl CgroupGuard {
    /// Guards a fresh, unique cgroup name beginning with `prefix`; nothing is created.
    pub fn new(prefix: &str) -> CgroupGuard {
        CgroupGuard {
            name: unique_name(prefix),
        }
    }

    /// The guarded name, relative to each hierarchy's root.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Directories of the guarded group that exist now.
    pub fn existing(&self) -> Vec<PathBuf> {
        cgroup_mounts()
            .into_iter()
            .map(|m| m.join(&self.name))
            .filter(|p| p.is_dir())
            .collect()
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        for _ in 0..50 {
            let dirs = self.existing();
            if dirs.is_empty() {
                return;
            }
            for dir in dirs {
                remove_tree(&dir);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("warning: cgroup {} could not be removed", self.name);
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path());
            }
        }
    }
    // Thaw first so that SIGKILL is delivered.
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    if std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill with a PID read from the test's own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_run_panics_with_what_it_printed() {
        let hung = std::panic::catch_unwind(|| {
            run(
                Command::new("sh").args(["-c", "echo started; echo stuck-here >&2; exec sleep 30"]),
                Duration::from_millis(300),
            )
        });
        let msg = hung.expect_err("the hang guard struck");
        let msg = msg
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        assert!(msg.contains("and was killed"), "{msg}");
        assert!(msg.contains("stdout:\nstarted\n"), "{msg}");
        assert!(msg.ends_with("stderr:\nstuck-here"), "{msg}");
    }

    #[test]
    fn lists_parse() {
        assert_eq!(
            parse_list("root, userns,kvm"),
            vec!["root", "userns", "kvm"]
        );
        assert!(parse_list("").is_empty());
        for (cap, name) in ALL {
            assert_eq!(Cap::from_name(name), Some(cap));
            assert_eq!(cap.name(), name);
        }
    }

    #[test]
    fn a_bounded_wait_kills_what_outlives_it() {
        let mut c = Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .expect("sh");
        assert_eq!(
            wait_bounded(&mut c, Duration::from_secs(20)).code(),
            Some(3)
        );
        let mut c = Command::new("sleep").arg("30").spawn().expect("sleep");
        let pid = c.id() as i32;
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_bounded(&mut c, Duration::from_millis(50))
        }));
        assert!(waited.is_err(), "the wait returned: {waited:?}");
        // SAFETY: signal 0 only asks whether the pid (our reaped child) still exists.
        let gone = unsafe { libc::kill(pid, 0) } == -1;
        assert!(gone, "pid {pid} is still there");
    }

    #[test]
    fn decisions() {
        let demanded = vec!["kvm".to_string()];
        assert_eq!(decide("t", "kvm", Ok(()), &demanded), Decision::Run);
        assert_eq!(
            decide("t", "root", Err("uid 5".into()), &demanded),
            Decision::Skip("SKIPPED t: needs root (uid 5)".into())
        );
        assert!(matches!(
            decide("t", "kvm", Err("no /dev/kvm".into()), &demanded),
            Decision::Fail(m) if m.contains("needs kvm (no /dev/kvm)") && m.contains("MICROTOOLS_REQUIRE")
        ));
    }

    #[test]
    fn hwkvm_needs_hardware_virtualization_and_its_module() {
        let svm = "processor\t: 0\nflags\t\t: fpu sse2 svm npt\n";
        assert_eq!(hwkvm_verdict(false, svm, true), Ok(()));
        assert!(hwkvm_verdict(true, svm, true).is_err_and(|e| e.contains("PVM")));
        assert!(hwkvm_verdict(false, "flags\t: fpu sse2\n", true)
            .is_err_and(|e| e.contains("neither vmx nor svm")));
        assert!(hwkvm_verdict(false, svm, false).is_err_and(|e| e.contains("kvm_amd")));
        // "svm" must be a whole flag, not part of another.
        assert!(hwkvm_verdict(false, "flags\t: svmx\n", true).is_err());
    }

    #[test]
    fn names_the_function() {
        let name = function_name!();
        assert!(name.ends_with("tests::names_the_function"), "{name}");
    }
}

/// The command-line conventions every tool's `tests/cli.rs` checks, written once.
pub mod cli {
    use std::process::Command;
    use std::time::Duration;

    fn run(bin: &str, args: &[&str]) -> crate::Output {
        crate::run(Command::new(bin).args(args), Duration::from_secs(30))
    }

    /// `--help` exits 0, prints usage and an `Examples:` section on stdout, nothing on stderr.
    pub fn assert_help_has_examples(bin: &str) {
        let out = run(bin, &["--help"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(out.stdout.contains("Usage:"), "{out:?}");
        assert!(out.stdout.contains("Examples:"), "{out:?}");
        assert_eq!(out.stderr, "");
        // The examples name the project's tools, not util-linux's (#24): `unshare-rs`, not
        // `unshare` (a drop-in link speaks under the util-linux name and is not run here). The
        // options' words ("unshare mounts namespace", as util-linux's) are not examples.
        let examples = out.stdout.split("Examples:").skip(1).collect::<String>();
        for word in examples.split(|c: char| c.is_whitespace() || "`'\"()|&;".contains(c)) {
            assert!(
                !["unshare", "nsenter", "setpriv"].contains(&word),
                "--help names util-linux's `{word}`: {}",
                out.stdout
            );
        }
    }

    /// `--version` prints exactly `NAME VERSION` and exits 0.
    /// `--version` prints `NAME VERSION (commit C)` for a release build, `NAME VERSION (... no
    /// commit recorded)` otherwise (conventions::VERSION).
    pub fn assert_version(bin: &str, name: &str, version: &str) {
        let out = run(bin, &["--version"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let build = out
            .stdout
            .strip_prefix(&format!("{name} {version} ("))
            .and_then(|r| r.strip_suffix(")\n"))
            .unwrap_or_else(|| panic!("not `{name} {version} (...)`: {out:?}"));
        let hash = |c: &str| c.len() == 12 && c.bytes().all(|b| b.is_ascii_hexdigit());
        assert!(
            build.strip_prefix("commit ").is_some_and(hash)
                || build.ends_with("no commit recorded"),
            "{out:?}"
        );
    }

    /// `--version` under strace shows none of Rust's runtime start-up: the tool's `main` is a
    /// plain C `main` (CONVENTIONS.md, "Start-up").
    pub fn assert_starts_without_std_runtime(bin: &str) {
        let (out, trace) =
            crate::strace(Command::new(bin).arg("--version"), Duration::from_secs(30));
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(
            !crate::calls(&trace, "execve").is_empty(),
            "no trace: {trace}"
        );
        crate::assert_no_std_runtime_startup(&trace);
    }

    /// `ARGS` with stdout `to` (/dev/full, or fd 1 closed) ends as util-linux's close_stdout
    /// does: exit `code` (1; tinyvmm's 125), no signal (no panic's SIGABRT), and exactly one line
    /// on stderr, `NAME: write error: <strerror of errno>`.
    pub fn assert_write_error(
        bin: &str,
        args: &[&str],
        to: crate::StdoutTo,
        name: &str,
        code: i32,
    ) {
        let out = crate::run_with_stdout(Command::new(bin).args(args), to, Duration::from_secs(30));
        let why = match to {
            crate::StdoutTo::Closed => "Bad file descriptor",
            _ => "No space left on device",
        };
        assert_eq!(
            (out.code, out.signal),
            (Some(code), None),
            "{args:?}: {out:?}"
        );
        assert_eq!(
            out.stderr,
            format!("{name}: write error: {why}\n"),
            "{args:?}: {out:?}"
        );
    }

    /// `--help` and `--version` into /dev/full: [`assert_write_error`].
    pub fn assert_help_and_version_write_errors(bin: &str, name: &str, code: i32) {
        for arg in ["--help", "--version"] {
            assert_write_error(bin, &[arg], crate::StdoutTo::Full, name, code);
        }
    }

    /// A failed write of stderr (a usage error into /dev/full) is no panic either: exit `code`,
    /// no signal, nothing on stdout.
    pub fn assert_stderr_write_error(bin: &str, code: i32) {
        use std::os::unix::process::ExitStatusExt;
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full");
        let mut child = Command::new(bin)
            .arg("--no-such-option")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(full)
            .spawn()
            .expect("spawn");
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{bin} --no-such-option 2>/dev/full hung");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(
            (status.code(), status.signal()),
            (Some(code), None),
            "{status:?}"
        );
    }

    /// A mistyped option or subcommand (`args`) gives exit `code`, nothing on stdout and exactly
    /// the line `expected` on stderr: the usage error with its "did you mean" (#24).
    pub fn assert_usage_line(bin: &str, args: &[&str], expected: &str, code: i32) {
        let out = run(bin, args);
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(code), "", format!("{expected}\n").as_str()),
            "{args:?}: {out:?}"
        );
    }

    /// An unknown option gives exit `code` and one line on stderr naming it, nothing on stdout.
    pub fn assert_unknown_option(bin: &str, name: &str, code: i32) {
        let out = run(bin, &["--no-such-option"]);
        assert_eq!(out.code, Some(code), "{out:?}");
        assert_eq!(out.stdout, "");
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        assert!(
            out.stderr.starts_with(&format!(
                "{name}: unexpected argument '--no-such-option' found"
            )),
            "{out:?}"
        );
    }
}

/// `count` command lines for a parser's no-panic test, each of up to five arguments glued from
/// one to three of `pieces` (option fragments and junk bytes), from a xorshift generator started
/// at `seed`: deterministic, so that a failure reproduces, and the same for every tool whose
/// parser is tested so (the fuzz targets explore further).
pub fn random_lines<'a>(
    pieces: &'a [&'a [u8]],
    seed: u64,
    count: usize,
) -> impl Iterator<Item = Vec<std::ffi::OsString>> + 'a {
    use std::os::unix::ffi::OsStringExt;
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count).map(move |_| {
        let n = (next() % 6) as usize;
        (0..n)
            .map(|_| {
                let mut a = Vec::new();
                for _ in 0..1 + next() % 3 {
                    a.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
                }
                std::ffi::OsString::from_vec(a)
            })
            .collect()
    })
}
