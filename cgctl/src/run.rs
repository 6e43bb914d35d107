//! `cgctl run`: a command in a fresh group, charged to it from its first instruction (clone3 with
//! CLONE_INTO_CGROUP on v2, joining every v1 hierarchy before exec), then reaped, measured and
//! cleaned up whatever happened to it. The child borrows cgctl's memory until it execs
//! (`conventions::spawn`), so starting it copies nothing.

use crate::cgroupfs::Ahead;
use crate::group::Group;
use crate::layout::{Layout, Version};
use crate::limits::Write;
use crate::stats::{Report, Stats};
use crate::{Error, Result};
use conventions::exit::Outcome;
use std::convert::Infallible;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Instant;

/// Signals forwarded to the command while cgctl waits for it.
pub const FORWARDED: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

static CHILD: AtomicI32 = AtomicI32::new(0);
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn early(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; pid is our own unreaped child.
        unsafe { libc::kill(pid, sig) };
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

fn signal_mask(how: libc::c_int) -> libc::sigset_t {
    // SAFETY: sigset operations on a local set; sigprocmask with a valid set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(how, &set, &mut old);
        old
    }
}

/// Our handler for the forwarded signals from before the spawn until cgctl exits: it forwards to
/// the child while one exists and otherwise remembers the signal, so a Ctrl-C at any moment ends
/// in cleanup instead of a group left behind.
fn install_early_handlers() {
    for sig in FORWARDED {
        // SAFETY: a zeroed sigaction with a valid handler; the handler is async-signal-safe.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = early as extern "C" fn(libc::c_int) as libc::sighandler_t;
            act.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

/// What `run` needs besides the limits.
#[derive(Debug)]
pub struct RunSpec<'a> {
    /// The group to create (must not exist).
    pub group: Group<'a>,
    /// Planned limit writes.
    pub writes: Vec<crate::limits::Write>,
    /// Limits as JSON for the report.
    pub limits_json: serde_json::Value,
    /// The command.
    pub argv: Vec<OsString>,
}

/// Whether the processes of a v2 group that refused to enable controllers for its children
/// (the no-internal-process rule) are only cgctl itself, which can step aside into a leaf.
pub fn only_me(procs: &[i32], me: i32) -> bool {
    !procs.is_empty() && procs.iter().all(|&p| p == me)
}

/// A leaf cgctl made in a v2 parent and moved itself into, so that the parent may enable
/// controllers for the run's group (v2 forbids controllers for the children of a group that
/// holds processes). `restore` undoes it all: the controllers cgctl enabled there, its own
/// place, the leaf.
#[derive(Debug)]
struct Leaf {
    /// The parent that held cgctl.
    parent: std::path::PathBuf,
    /// `parent/cgctl-leaf-PID`.
    dir: std::path::PathBuf,
    /// The parent's cgroup.subtree_control before.
    before: Vec<String>,
}

impl Leaf {
    /// When `err` is the EBUSY of a v2 parent's cgroup.subtree_control and cgctl is the only
    /// process in that parent, moves cgctl into a new leaf of it; `None` when the refusal is
    /// another one (other processes live there: the error stands).
    fn for_refusal(group: &Group, err: &Error) -> Result<Option<Leaf>> {
        let Error::Sys { path, .. } = err else {
            return Ok(None);
        };
        let Some(v2) = group.layout.v2() else {
            return Ok(None);
        };
        if err.errno() != Some(libc::EBUSY)
            || path.file_name() != Some(std::ffi::OsStr::new("cgroup.subtree_control"))
            || !path.starts_with(&group.layout.hierarchies[v2].mount)
        {
            return Ok(None);
        }
        let Some(parent) = path.parent() else {
            return Ok(None);
        };
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        let procs = crate::cgroupfs::parse_pids(
            &crate::cgroupfs::read_small(&parent.join("cgroup.procs")).unwrap_or_default(),
        );
        if !only_me(&procs, me) {
            return Ok(None);
        }
        let before: Vec<String> = crate::cgroupfs::read(path)?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let dir = parent.join(format!("cgctl-leaf-{me}"));
        std::fs::create_dir(&dir).map_err(|e| Error::sys("mkdir", &dir, e))?;
        if let Err(e) = crate::cgroupfs::write(&dir.join("cgroup.procs"), &me.to_string()) {
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        Ok(Some(Leaf {
            parent: parent.to_path_buf(),
            dir,
            before,
        }))
    }

    /// Disables the controllers enabled in the parent since, moves cgctl back into the parent
    /// and removes the leaf.
    fn restore(self) -> Result<()> {
        let ctl = self.parent.join("cgroup.subtree_control");
        let now = crate::cgroupfs::read(&ctl)?;
        let off: Vec<String> = now
            .split_whitespace()
            .filter(|c| !self.before.iter().any(|b| b == c))
            .map(|c| format!("-{c}"))
            .collect();
        if !off.is_empty() {
            crate::cgroupfs::write(&ctl, &off.join(" "))?;
        }
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        crate::cgroupfs::write(&self.parent.join("cgroup.procs"), &me.to_string())?;
        std::fs::remove_dir(&self.dir).map_err(|e| Error::sys("rmdir", &self.dir, e))
    }
}

/// Controllers whose counters the report reads, wherever the host has them.
pub const REPORTED: [&str; 2] = ["memory", "pids"];

/// The hierarchies a run makes its group in: those its limits write to, those the report reads
/// (memory, pids; CPU time from v2 cpu.stat, which needs no controller, or from v1 cpuacct
/// without v2), and the one that can end everything left behind: v2 (clone3 places the child
/// there, cgroup.kill) where it is mounted, else the v1 freezer. Hierarchies that carry no limit and no counter of the run (devices,
/// blkio, cpuset, net_cls, ... without options that need them) get no group: the command
/// stays in cgctl's own group there, which charges it nothing, as nothing there is limited or
/// measured. Each directory costs a mkdir, a migration and an rmdir.
pub fn scope(layout: &Layout, writes: &[Write]) -> Vec<usize> {
    let mut hs: Vec<usize> = Vec::new();
    let mut add = |h: Option<usize>| {
        if let Some(h) = h {
            if !hs.contains(&h) {
                hs.push(h);
            }
        }
    };
    for w in writes {
        add(if w.controller == "cgroup" {
            layout.v2()
        } else {
            layout.route(&w.controller)
        });
    }
    for c in REPORTED {
        add(layout.route(c));
    }
    match layout.v2() {
        Some(v2) => add(Some(v2)),
        None => {
            add(layout.route("cpuacct"));
            add(layout.route("freezer"));
        }
    }
    hs.sort_unstable();
    hs
}

/// Runs the command; returns how it ended and the report. The group is gone afterwards.
pub fn run(tool: &str, spec: RunSpec) -> Result<(Outcome, Report)> {
    let RunSpec {
        group,
        writes,
        limits_json,
        argv,
    } = spec;
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Usage("a command argument contains a NUL byte".to_string()))?;
    if cargs.is_empty() {
        return Err(Error::Usage("no command given after --".to_string()));
    }
    let group = {
        let hs = scope(group.layout, &writes);
        group.scoped(hs)
    };
    install_early_handlers();
    // Recorded before the group exists, so that no SIGKILL leaves a group without a record.
    let claim = crate::owner::Claim::record(&group.name());
    let release = |claim: Option<crate::owner::Claim>| {
        if let Some(c) = claim {
            c.release();
        }
    };
    let created = match group.create(&writes) {
        Ok(made) => Ok((made, None)),
        Err(e) => match Leaf::for_refusal(&group, &e) {
            // cgctl itself was the only process in the parent: it waits in a leaf instead.
            Ok(Some(leaf)) => match group.create(&writes) {
                Ok(made) => Ok((made, Some(leaf))),
                Err(e) => leaf.restore().and(Err(e)),
            },
            Ok(None) => Err(e),
            Err(le) => Err(le),
        },
    };
    let (made, leaf) = match created {
        Ok(c) => c,
        Err(e) => {
            // create removes what it made when it fails: nothing is left to collect.
            release(claim);
            return Err(e);
        }
    };
    let mut ahead = Ahead::default();
    let result = spawn_and_wait(tool, &group, &cargs, &mut ahead);
    // Whatever happened, nothing of the run may outlive it; one hierarchical counter tells
    // whether anything is left to kill (usually nothing: the command was reaped).
    let kill = if group.populated_via(&mut ahead) == Some(false) {
        Ok(())
    } else {
        group.kill(libc::SIGKILL)
    };
    let mut stats = Stats::read_for_report(&group, &mut ahead);
    if stats.cpu_nr_throttled.is_none()
        && !writes.iter().any(|w| w.controller == "cpu")
        && group.layout.route("cpu").is_some()
    {
        // No cpu group of its own: nothing set a quota on it, so nothing throttled it.
        stats.cpu_nr_throttled = Some(0);
    }
    // A process that left the hierarchy the counter watches still blocks an rmdir: kill what
    // the remaining directories hold, then try again.
    let delete = group
        .delete(true)
        .or_else(|_| group.kill(libc::SIGKILL).and_then(|()| group.delete(true)));
    // A nested --name may have made its parents: they go too.
    let parents: Vec<std::path::PathBuf> = made
        .into_iter()
        .filter(|d| !d.ends_with(&group.rel))
        .collect();
    Group::remove_made(&parents);
    let restore = leaf.map(|l| l.restore()).unwrap_or(Ok(()));
    if delete.is_ok() {
        release(claim);
    }
    CHILD.store(0, Ordering::SeqCst);
    let (outcome, wall) = result?;
    kill?;
    delete?;
    restore?;
    let report = Report {
        exit_code: match outcome {
            Outcome::Exited(c) => Some(c),
            Outcome::Signaled(_) => None,
        },
        signal: match outcome {
            Outcome::Signaled(s) => Some(s),
            Outcome::Exited(_) => None,
        },
        stats,
        oom_kills_before: 0,
        wall_time_usec: wall,
        limits: limits_json,
        group: group.name(),
    };
    Ok((outcome, report))
}

/// Starts the command in the group and waits for it; while it runs, opens the files the report
/// will read into `ahead`.
fn spawn_and_wait(
    tool: &str,
    group: &Group,
    cargs: &[CString],
    ahead: &mut Ahead,
) -> Result<(Outcome, u64)> {
    use std::os::fd::AsRawFd;
    let v2 = group
        .layout
        .v2()
        .filter(|&h| group.in_scope(h))
        .map(|h| group.dir(h));
    let v2_fd = match &v2 {
        Some(d) => Some(
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags_dir()
                .open(d)
                .map_err(|e| Error::sys("open", d, e))?,
        ),
        None => None,
    };
    // Files the child writes itself into (all but the v2 one, when clone3 did it). On v1 the
    // single-threaded child moves itself through `tasks`: a write of the caller's own thread
    // skips the global threadgroup lock that a cgroup.procs write takes, and with it an RCU
    // grace period (milliseconds) per run.
    let procs: Vec<(Version, CString)> = group
        .managed()
        .into_iter()
        .filter_map(|h| {
            let file = match group.layout.hierarchies[h].version {
                Version::V1 => "tasks",
                Version::V2 => "cgroup.procs",
            };
            let p = group.dir(h).join(file);
            CString::new(p.as_os_str().as_bytes())
                .ok()
                .map(|c| (group.layout.hierarchies[h].version, c))
        })
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let old_mask = signal_mask(libc::SIG_BLOCK);
    let start = Instant::now();
    let mut body =
        |in_cgroup: bool| -> Infallible { child(tool, me, &procs, in_cgroup, &ptrs, &old_mask) };
    // SAFETY: cgctl is single-threaded, and `child` ends in execvp or _exit. The child borrows
    // our memory until it execs: no copy of cgctl's address space for a program that replaces
    // it at once.
    let spawned =
        unsafe { conventions::spawn::spawn(v2_fd.as_ref().map(|f| f.as_raw_fd()), &mut body) };
    let pid = match spawned {
        Ok(s) => s.pid,
        Err(e) => {
            // SAFETY: restores the mask saved above.
            unsafe { libc::sigprocmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };
            return Err(Error::Other(format!(
                "clone3/clone failed: {}",
                conventions::output::errtext(&e)
            )));
        }
    };
    CHILD.store(pid, Ordering::SeqCst);
    // SAFETY: restores the mask saved above; pending signals now reach `early`, which forwards.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };
    let pending = PENDING.swap(0, Ordering::SeqCst);
    if pending > 0 {
        // SAFETY: our own child.
        unsafe { libc::kill(pid, pending) };
    }
    // The command runs (on the other CPU, if there is one): open what the report will read.
    group.open_populated_ahead(ahead);
    Stats::open_ahead(group, ahead);
    let outcome = conventions::child::wait_relaying(
        pid,
        &FORWARDED,
        conventions::child::Disposition::Forward,
    );
    // wait_relaying restored `early`; the child is reaped, so stop forwarding to its pid.
    CHILD.store(0, Ordering::SeqCst);
    let wall = start.elapsed().as_micros() as u64;
    let outcome = outcome.map_err(|e| {
        Error::Other(format!(
            "waitpid({pid}) failed: {}",
            conventions::output::errtext(&e)
        ))
    })?;
    Ok((outcome, wall))
}

/// The child between spawn and exec: die with cgctl, join the group everywhere, restore
/// signals, exec.
fn child(
    tool: &str,
    parent: libc::pid_t,
    procs: &[(Version, CString)],
    placed_v2: bool,
    argv: &[*const libc::c_char],
    old_mask: &libc::sigset_t,
) -> ! {
    // The command must not outlive cgctl: if cgctl dies (SIGKILL gives it no chance to clean
    // up), the kernel kills the command; what it started is left to `cgctl gc`. The signal is
    // kept across exec (but cleared by exec of a set-uid or file-capability program).
    // SAFETY: prctl(PR_SET_PDEATHSIG) with a valid signal; getppid and _exit are always safe.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        // cgctl died before the signal was armed: no one will ever wait for this command.
        if libc::getppid() != parent {
            libc::_exit(conventions::exit::FAILURE);
        }
    }
    for (v, path) in procs {
        if *v == Version::V2 && placed_v2 {
            continue;
        }
        // SAFETY: open/write/close on a valid C string path; "0" means the calling process.
        let ok = unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            let ok = fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
            if fd >= 0 {
                libc::close(fd);
            }
            ok
        };
        if !ok {
            let e = std::io::Error::last_os_error();
            conventions::errln!(
                "{tool}: write '0' to {} failed: {} (cannot join the group)",
                path.to_string_lossy(),
                conventions::output::errtext(&e)
            );
            // SAFETY: _exit is always safe.
            unsafe { libc::_exit(conventions::exit::FAILURE) };
        }
    }
    // SAFETY: default dispositions and the original mask for the program; argv is a valid
    // NULL-terminated array of C strings that outlives execvp.
    unsafe {
        for s in FORWARDED {
            libc::signal(s, libc::SIG_DFL);
        }
        libc::sigprocmask(libc::SIG_SETMASK, old_mask, std::ptr::null_mut());
        libc::execvp(argv[0], argv.as_ptr());
    }
    let e = std::io::Error::last_os_error();
    // SAFETY: argv[0] is a valid C string.
    let prog = unsafe { std::ffi::CStr::from_ptr(argv[0]) }.to_string_lossy();
    let why = conventions::output::errtext(&e);
    conventions::errln!("{tool}: failed to execute {prog}: {why}");
    let code = conventions::exit::exec_failure_code(e.raw_os_error().unwrap_or(libc::ENOENT));
    // SAFETY: _exit is always safe.
    unsafe { libc::_exit(code) }
}

trait DirFlag {
    fn custom_flags_dir(&mut self) -> &mut Self;
}

impl DirFlag for std::fs::OpenOptions {
    fn custom_flags_dir(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
    }
}

/// A fresh group name for a run: `cgctl-run-PID-NANOS`.
pub fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("cgctl-run-{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const HYBRID: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";

    fn w(controller: &str, file: &str) -> Write {
        Write {
            controller: controller.into(),
            file: file.into(),
            value: "1".into(),
        }
    }

    fn mounts(l: &Layout, hs: &[usize]) -> Vec<String> {
        hs.iter()
            .map(|&h| l.hierarchies[h].mount.display().to_string())
            .collect()
    }

    #[test]
    fn only_cgctl_itself_may_step_aside() {
        assert!(only_me(&[42], 42));
        assert!(!only_me(&[42, 7], 42));
        assert!(!only_me(&[7], 42));
        assert!(!only_me(&[], 42));
    }

    #[test]
    fn scope_is_the_limits_the_report_and_the_killer() {
        let l = Layout::detect(HYBRID, Path::new(""));
        let base = mounts(&l, &scope(&l, &[]));
        assert_eq!(
            base,
            [
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/pids",
                "/sys/fs/cgroup/unified"
            ]
        );
        let with = mounts(
            &l,
            &scope(&l, &[w("cpu", "cpu.cfs_quota_us"), w("io", "blkio.x")]),
        );
        assert!(with.contains(&"/sys/fs/cgroup/cpu".to_string()), "{with:?}");
        assert!(
            with.contains(&"/sys/fs/cgroup/blkio".to_string()),
            "{with:?}"
        );
        assert!(!with.contains(&"/sys/fs/cgroup/devices".to_string()));
        // Without v2, CPU time comes from v1 cpuacct and the v1 freezer stops a fork loop.
        let legacy: String = HYBRID
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        let l = Layout::detect(&legacy, Path::new(""));
        let hs = mounts(&l, &scope(&l, &[]));
        assert!(hs.contains(&"/sys/fs/cgroup/freezer".to_string()), "{hs:?}");
        assert!(hs.contains(&"/sys/fs/cgroup/cpuacct".to_string()), "{hs:?}");
        assert_eq!(hs.len(), 4, "{hs:?}");
    }
}
