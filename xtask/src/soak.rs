//! `cargo xtask soak`: many containers and many tiny VMs started and ended in a loop, so that a
//! leak that one run cannot show (a mount, a cgroup, a process, a descriptor, a temp file, memory
//! that grows) shows after a thousand.
//!
//! Each soak keeps `--parallel` instances running at once and starts the next as one ends. The
//! driver makes itself a child subreaper, so a process an instance leaves behind is reparented
//! to it and counted, instead of vanishing into the host's init. Afterwards it compares the
//! world with what it was before: the host's mount table, the cgroups under the soak's own
//! parent group in every hierarchy, its own descriptors and the instances' private TMPDIR.
//! Memory: every instance runs in a group under that parent, so what the instances leave
//! charged (page cache, kernel memory of removed groups) stays in the parent's memory usage;
//! it is read once the first tenth has ended and again at the end, and must not grow.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
Usage: cargo xtask soak [--containers N] [--vms N] [--parallel N] [--time-limit SECS] [--bin-dir DIR]

Starts N containers (cgctl run -> unshare-rs -> pivot, /bin/true in the busybox rootfs) and N
tiny VMs (tinyvmm's embedded guest), --parallel at a time, and fails if anything is left after
them: host mounts, cgroups, processes, descriptors, temp files, or memory that grew.
Defaults: 1000 of each, 20 at a time, 600 s per soak, binaries from target/debug.

Examples:
  cargo xtask soak
  cargo xtask soak --containers 100 --vms 0 --parallel 4
";

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub containers: usize,
    pub vms: usize,
    pub parallel: usize,
    pub time_limit: Duration,
    pub bin_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            containers: 1000,
            vms: 1000,
            parallel: 20,
            time_limit: Duration::from_secs(600),
            bin_dir: None,
        }
    }
}

/// Reads the recipe's arguments; `Ok(None)` means help was asked for.
pub fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("soak: {name} needs a value"))
        };
        let number = |v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("soak: {name}: '{v}' is not a whole number"))
        };
        match name {
            "--containers" => o.containers = number(value()?)?,
            "--vms" => o.vms = number(value()?)?,
            "--parallel" => o.parallel = number(value()?)?,
            "--time-limit" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e7)
                    .ok_or_else(|| {
                        format!("soak: --time-limit: '{v}' is not a number of seconds")
                    })?;
                o.time_limit = Duration::from_secs_f64(secs);
            }
            "--bin-dir" => o.bin_dir = Some(PathBuf::from(value()?)),
            other => return Err(format!("soak: unknown argument '{other}' (try --help)")),
        }
    }
    if o.parallel == 0 || o.parallel > 1000 {
        return Err(format!(
            "soak: --parallel must be 1 to 1000, not {}",
            o.parallel
        ));
    }
    Ok(Some(o))
}

/// What one soak saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub name: &'static str,
    pub started: usize,
    pub failed: Vec<String>,
    pub leftovers: Vec<String>,
    pub wall: Duration,
    /// The parent group's memory usage once the first tenth had ended, and at the end.
    pub memory_after_tenth: u64,
    pub memory_at_end: u64,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failed.is_empty() && self.leftovers.is_empty()
    }
}

/// Runs the recipe: each soak in turn, a line for each, and the "N passed, N failed" summary.
pub fn run(args: &[String]) -> Result<(), String> {
    let Some(opts) = parse(args)? else {
        print!("{USAGE}");
        return Ok(());
    };
    let bin_dir = opts
        .bin_dir
        .clone()
        .unwrap_or_else(|| crate::util::target_dir().join("debug"));
    for tool in ["cgctl", "unshare-rs", "pivot", "tinyvmm"] {
        if !bin_dir.join(tool).is_file() {
            return Err(format!(
                "soak: no {tool} in {} (build it: cargo build --workspace)",
                bin_dir.display()
            ));
        }
    }
    become_subreaper()?;
    block_sigchld()?;
    let mut outcomes = Vec::new();
    if opts.containers > 0 {
        let rootfs = crate::rootfs::default_dir();
        crate::rootfs::ensure(&rootfs)?;
        outcomes.push(containers(&opts, &bin_dir, &rootfs)?);
    }
    if opts.vms > 0 {
        outcomes.push(vms(&opts, &bin_dir)?);
    }
    let mut passed = 0;
    for o in &outcomes {
        let rate = o.started as f64 / o.wall.as_secs_f64().max(1e-9);
        if o.passed() {
            passed += 1;
            println!(
                "PASS soak_{}: {} started and ended, {} at a time, in {:.1} s ({rate:.0}/s); \
                 memory charged after the first tenth {} KiB, at the end {} KiB; nothing left",
                o.name,
                o.started,
                opts.parallel,
                o.wall.as_secs_f64(),
                o.memory_after_tenth / 1024,
                o.memory_at_end / 1024
            );
        } else {
            println!(
                "FAIL soak_{}: {} started in {:.1} s",
                o.name,
                o.started,
                o.wall.as_secs_f64()
            );
            for f in o.failed.iter().take(5) {
                println!("    | failed: {f}");
            }
            if o.failed.len() > 5 {
                println!("    | ... {} failures in all", o.failed.len());
            }
            for l in &o.leftovers {
                println!("    | left behind: {l}");
            }
        }
    }
    println!("{passed} passed, {} failed", outcomes.len() - passed);
    if passed == outcomes.len() {
        Ok(())
    } else {
        Err("soak: something failed or was left behind (see above)".to_string())
    }
}

pub(crate) fn become_subreaper() -> Result<(), String> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "soak: prctl(PR_SET_CHILD_SUBREAPER) failed: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// The state compared before and after a soak or a scale run: mounts (this namespace's and
/// the host init's), the driver's descriptors, cgctl's run records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub mounts: BTreeSet<String>,
    pub init_mounts: BTreeSet<String>,
    pub fds: BTreeSet<String>,
    pub cgctl_records: BTreeSet<String>,
}

/// One mountinfo line as "mount point fstype source", or None for the mounts the kernel makes on
/// first use (autofs-triggered tracefs, debugfs, binfmt_misc), which say nothing of the bench.
pub fn mount_key(line: &str) -> Option<String> {
    let m = conventions::mountinfo::parse_line(line)?;
    if matches!(m.fstype.as_str(), "tracefs" | "debugfs" | "binfmt_misc") {
        return None;
    }
    Some(format!("{} {} {}", m.mount_point, m.fstype, m.source))
}

fn mounts_of(path: &str) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(mount_key)
        .collect()
}

pub(crate) fn links(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The world now.
pub fn snapshot() -> Snapshot {
    Snapshot {
        mounts: mounts_of("/proc/self/mountinfo"),
        init_mounts: mounts_of("/proc/1/mountinfo"),
        fds: links("/proc/self/fd"),
        cgctl_records: std::fs::read_dir("/run/cgctl")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// What `after` has that `before` had not, and what went missing, one line each.
pub fn compare(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let mut diff = |what: &str, b: &BTreeSet<String>, a: &BTreeSet<String>| {
        for x in a.difference(b) {
            out.push(format!("{what}: {x}"));
        }
        for x in b.difference(a) {
            out.push(format!("{what} gone: {x}"));
        }
    };
    diff("mount in this namespace", &before.mounts, &after.mounts);
    diff("host mount", &before.init_mounts, &after.init_mounts);
    diff("descriptor of the driver", &before.fds, &after.fds);
    diff(
        "cgctl run record in /run/cgctl",
        &before.cgctl_records,
        &after.cgctl_records,
    );
    out
}

/// The parent PID in a /proc/PID/stat line: the second field after the command name, which may
/// itself hold spaces and parentheses.
pub(crate) fn stat_ppid(stat: &str) -> Option<i32> {
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Processes that were reparented to the driver (it is their subreaper) and still run.
pub(crate) fn adopted_children(known: &HashMap<i32, usize>) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat_ppid(&stat) == Some(me) && !known.contains_key(&pid) {
            out.push(pid);
        }
    }
    out
}

/// One soak: `make(i)` builds instance i's command, which runs in a group under `parent`;
/// every instance must exit 0.
fn soak(
    name: &'static str,
    opts: &Options,
    count: usize,
    parent: &ParentGroup,
    make: &dyn Fn(usize) -> Command,
) -> Result<Outcome, String> {
    // A private directory for the instances' TMPDIR, removed when the soak ends.
    let under = crate::util::target_dir().join("tmp");
    let tmp = testcaps::TempDir::new_in(&under, &format!("soak-{name}")).map_err(|e| {
        format!(
            "soak: cannot create a directory in {}: {e}",
            under.display()
        )
    })?;
    let tmpdir = tmp.path();
    let before = snapshot();
    let mut outcome = Outcome {
        name,
        ..Outcome::default()
    };
    let mut running: HashMap<i32, usize> = HashMap::new();
    let mut strays = 0usize;
    let tenth = (count / 10).max(1);
    let start = Instant::now();
    let mut next = 0;
    while next < count || !running.is_empty() {
        if next == tenth && running.is_empty() && outcome.memory_after_tenth == 0 {
            outcome.memory_after_tenth = parent.memory_usage()?;
        }
        // The first tenth ends before the rest starts, so that the memory read after it is
        // read with nothing running.
        let batch_end = if next < tenth { tenth } else { count };
        while next < batch_end && running.len() < opts.parallel {
            let mut cmd = make(next);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .env("TMPDIR", tmpdir);
            let child = cmd
                .spawn()
                .map_err(|e| format!("soak: cannot start {}: {e}", crate::util::describe(&cmd)))?;
            running.insert(child.id() as i32, next);
            outcome.started += 1;
            next += 1;
        }
        if start.elapsed() > opts.time_limit {
            kill_and_reap(running.keys().copied());
            running.clear();
            outcome.failed.push(format!(
                "time limit of {:?} reached after {} of {count} instances",
                opts.time_limit, outcome.started
            ));
            break;
        }
        match reap(Duration::from_millis(200)) {
            Reaped::Child(pid, status) => match running.remove(&pid) {
                Some(i) => {
                    if status != 0 {
                        outcome
                            .failed
                            .push(format!("instance {i}: {}", describe_status(status)));
                    }
                }
                None => strays += 1,
            },
            Reaped::NotYet => {}
            Reaped::NoChildren => break,
        }
    }
    outcome.wall = start.elapsed();
    let adopted = adopted_children(&running);
    kill_and_reap(adopted.iter().copied());
    if strays > 0 {
        outcome.leftovers.push(format!(
            "{strays} process(es) outlived their instance and were reaped by the driver"
        ));
    }
    if !adopted.is_empty() {
        outcome
            .leftovers
            .push(format!("processes still running: {adopted:?} (killed)"));
    }
    outcome.leftovers.extend(compare(&before, &snapshot()));
    let left: Vec<String> = std::fs::read_dir(tmpdir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().display().to_string())
        .collect();
    if !left.is_empty() {
        outcome.leftovers.push(format!("temp files: {left:?}"));
    }
    let groups = parent.children();
    if !groups.is_empty() {
        outcome.leftovers.push(format!(
            "{} cgroup(s) under {}: {:?}",
            groups.len(),
            parent.name,
            groups.iter().take(5).collect::<Vec<_>>()
        ));
    }
    outcome.memory_at_end = parent.memory_usage()?;
    if outcome.memory_after_tenth == 0 {
        outcome.memory_after_tenth = outcome.memory_at_end;
    }
    if !memory_flat(outcome.memory_after_tenth, outcome.memory_at_end) {
        outcome.leftovers.push(format!(
            "memory grew: {} KiB charged to {} after the first tenth, {} KiB at the end",
            outcome.memory_after_tenth / 1024,
            parent.name,
            outcome.memory_at_end / 1024
        ));
    }
    Ok(outcome)
}

/// Whether the memory charged at the end stays within a quarter, and 4 MiB, of what was
/// charged after the first tenth: a leak of a page per instance over 900 more would not.
pub fn memory_flat(after_tenth: u64, at_end: u64) -> bool {
    at_end <= after_tenth + after_tenth / 4 + (4 << 20)
}

/// Kills our children `pids` and waits for each, so that none is left as a zombie for the
/// host's init to reap.
pub(crate) fn kill_and_reap(pids: impl Iterator<Item = i32>) {
    let pids: Vec<i32> = pids.collect();
    for pid in &pids {
        // SAFETY: kill takes plain integers; these PIDs are our own unreaped children (direct
        // ones, or reparented to us as their subreaper), so they cannot have been reused.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    for pid in pids {
        let mut status = 0;
        // SAFETY: status is a valid, writable local; a SIGKILLed child ends, so this returns.
        while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
}

/// What waiting for a child gave.
pub(crate) enum Reaped {
    /// (pid, wait status)
    Child(i32, i32),
    /// None ended within the time given.
    NotYet,
    /// There is no child left to wait for.
    NoChildren,
}

/// Waits up to `within` for any child to end. SIGCHLD is blocked (see `block_sigchld`) and
/// waited for with sigtimedwait, so that a hung instance cannot keep the driver from checking
/// its time limit.
pub(crate) fn reap(within: Duration) -> Reaped {
    let mut waited = false;
    loop {
        let mut status = 0;
        // SAFETY: status is a valid, writable local for the duration of the call.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            return Reaped::Child(pid, status);
        }
        if pid < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Reaped::NoChildren;
        }
        if waited {
            return Reaped::NotYet;
        }
        let set = sigchld_set();
        let ts = libc::timespec {
            tv_sec: within.as_secs() as libc::time_t,
            tv_nsec: within.subsec_nanos() as libc::c_long,
        };
        // SAFETY: set and ts are valid for the call; a null siginfo pointer is allowed.
        unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
        waited = true;
    }
}

fn sigchld_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given before sigaddset reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        set
    }
}

/// Blocks SIGCHLD in the driver, so that `reap` can wait for it; spawned children start with
/// an empty mask (std resets it), so the instances do not inherit this.
pub(crate) fn block_sigchld() -> Result<(), String> {
    let set = sigchld_set();
    // SAFETY: set is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "soak: pthread_sigmask(SIG_BLOCK, SIGCHLD) failed: {}",
            std::io::Error::from_raw_os_error(rc)
        ))
    }
}

pub(crate) fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// The cgroup every container's group is made under, in every hierarchy, so that what the
/// soak leaves is read off one place and nothing else on the host is looked at.
pub(crate) struct ParentGroup {
    cgctl: PathBuf,
    pub(crate) name: String,
}

impl ParentGroup {
    fn new(cgctl: &Path, what: &str) -> Result<ParentGroup, String> {
        Self::named(cgctl, format!("xtask-soak-{what}-{}", std::process::id()))
    }

    /// Creates the group `name` (unique to the caller) in every hierarchy with `cgctl create`.
    pub(crate) fn named(cgctl: &Path, name: String) -> Result<ParentGroup, String> {
        let out = Command::new(cgctl)
            .args(["create", &name])
            .output()
            .map_err(|e| format!("soak: cannot run {}: {e}", cgctl.display()))?;
        if !out.status.success() {
            return Err(format!(
                "soak: cgctl create {name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(ParentGroup {
            cgctl: cgctl.to_path_buf(),
            name,
        })
    }

    /// The memory charged to the parent and what is under it, in bytes (v1
    /// memory.usage_in_bytes, or v2 memory.current where the memory controller is on v2).
    pub(crate) fn memory_usage(&self) -> Result<u64, String> {
        for mount in testcaps::cgroup_mounts() {
            for file in ["memory.usage_in_bytes", "memory.current"] {
                let path = mount.join(&self.name).join(file);
                if let Ok(text) = std::fs::read_to_string(&path) {
                    return text.trim().parse().map_err(|_| {
                        format!(
                            "soak: {} holds '{}', not a number",
                            path.display(),
                            text.trim()
                        )
                    });
                }
            }
        }
        Err(format!(
            "soak: no memory controller file for group {} (memory.usage_in_bytes or \
             memory.current) in any cgroup hierarchy",
            self.name
        ))
    }

    /// The first of `files` of the group that holds a number, in whichever hierarchy has it
    /// (e.g. v1's memory.kmem.usage_in_bytes); None where no hierarchy has one.
    pub(crate) fn read_u64(&self, files: &[&str]) -> Option<u64> {
        testcaps::cgroup_mounts().iter().find_map(|mount| {
            files.iter().find_map(|f| {
                std::fs::read_to_string(mount.join(&self.name).join(f))
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
            })
        })
    }

    /// Groups left under the parent, in any hierarchy.
    pub(crate) fn children(&self) -> Vec<String> {
        let mut out = Vec::new();
        for mount in testcaps::cgroup_mounts() {
            let dir = mount.join(&self.name);
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(e.path().display().to_string());
                }
            }
        }
        out
    }
}

impl Drop for ParentGroup {
    fn drop(&mut self) {
        let _ = Command::new(&self.cgctl)
            .args(["delete", "-r", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn containers(opts: &Options, bin: &Path, rootfs: &Path) -> Result<Outcome, String> {
    let parent = ParentGroup::new(&bin.join("cgctl"), "containers")?;
    let make = |_i: usize| {
        let mut c = Command::new(bin.join("cgctl"));
        c.args([
            "run",
            "--parent",
            &parent.name,
            "--memory",
            "64M",
            "--pids",
            "20",
        ])
        .arg("--")
        .arg(bin.join("unshare-rs"))
        .args(["-fpmuin", "--mount-proc", "--"])
        .arg(bin.join("pivot"))
        .arg(rootfs)
        .arg("/bin/true");
        c
    };
    soak("containers", opts, opts.containers, &parent, &make)
}

/// Each VM joins the soak's group (`cgctl exec`, which only joins and execs) so that what its
/// guest memory and KVM objects leave charged is counted.
fn vms(opts: &Options, bin: &Path) -> Result<Outcome, String> {
    let parent = ParentGroup::new(&bin.join("cgctl"), "vms")?;
    let tinyvmm: OsString = bin.join("tinyvmm").into_os_string();
    let make = |_i: usize| {
        let mut c = Command::new(bin.join("cgctl"));
        c.args(["exec", &parent.name, "--"]).arg(&tinyvmm).args([
            "run",
            "--mem",
            "16M",
            "--timeout",
            "60",
        ]);
        c
    };
    soak("vms", opts, opts.vms, &parent, &make)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_are_a_thousand_of_each_twenty_at_a_time() {
        let o = parse(&[]).unwrap().unwrap();
        assert_eq!(o, Options::default());
        assert_eq!((o.containers, o.vms, o.parallel), (1000, 1000, 20));
    }

    #[test]
    fn options_take_separate_and_inline_values() {
        let o = parse(&args(
            "--containers 5 --vms=7 --parallel 3 --time-limit 1.5 --bin-dir /b",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            o,
            Options {
                containers: 5,
                vms: 7,
                parallel: 3,
                time_limit: Duration::from_millis(1500),
                bin_dir: Some(PathBuf::from("/b")),
            }
        );
        assert_eq!(parse(&args("--help")).unwrap(), None);
    }

    #[test]
    fn bad_arguments_are_refused_with_the_option_named() {
        for (line, needle) in [
            ("--containers", "--containers needs a value"),
            ("--vms x", "--vms: 'x' is not a whole number"),
            ("--parallel 0", "--parallel must be 1 to 1000"),
            ("--time-limit -1", "--time-limit: '-1'"),
            ("--time-limit nan", "--time-limit: 'nan'"),
            ("--frobnicate", "unknown argument '--frobnicate'"),
        ] {
            let err = parse(&args(line)).unwrap_err();
            assert!(err.contains(needle), "{line}: {err}");
        }
    }

    #[test]
    fn the_parent_pid_is_read_past_a_command_name_with_parentheses() {
        assert_eq!(stat_ppid("42 (sleep) S 7 42 42 0"), Some(7));
        assert_eq!(stat_ppid("42 (a) b (c)) R 9 1"), Some(9));
        assert_eq!(stat_ppid("42 (x"), None);
    }

    #[test]
    fn memory_is_flat_within_a_quarter_and_four_mib() {
        let mib = 1 << 20;
        assert!(memory_flat(8 * mib, 8 * mib));
        assert!(memory_flat(8 * mib, 14 * mib));
        assert!(!memory_flat(8 * mib, 14 * mib + 1));
        assert!(!memory_flat(0, 5 * mib));
    }

    #[test]
    fn mountinfo_lines_become_keys_without_the_kernels_own() {
        assert_eq!(
            mount_key("36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue")
                .as_deref(),
            Some("/mnt1 ext3 /dev/root")
        );
        assert_eq!(
            mount_key("40 22 0:36 / /sys/kernel/tracing rw - tracefs tracefs rw"),
            None
        );
        assert_eq!(mount_key("garbage"), None);
    }

    #[test]
    fn differences_name_the_kind_of_thing_left() {
        let before = Snapshot {
            mounts: ["/ ext4 /dev/vda".to_string()].into(),
            fds: ["/dev/null".to_string()].into(),
            ..Snapshot::default()
        };
        let mut after = before.clone();
        after.mounts.insert("/x proc proc".into());
        after.fds.insert("anon_inode:kvm-vm".into());
        after.cgctl_records.insert("1234".into());
        after.init_mounts.insert("/y tmpfs tmpfs".into());
        assert!(compare(&before, &before).is_empty());
        assert_eq!(
            compare(&before, &after),
            [
                "mount in this namespace: /x proc proc",
                "host mount: /y tmpfs tmpfs",
                "descriptor of the driver: anon_inode:kvm-vm",
                "cgctl run record in /run/cgctl: 1234"
            ]
        );
        assert_eq!(
            compare(&after, &before)[0],
            "mount in this namespace gone: /x proc proc"
        );
    }
}
