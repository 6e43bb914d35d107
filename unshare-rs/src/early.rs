//! The fast path: an everyday command line (namespace flags, `-f`, `-r`/`-c`, `--mount-proc` and
//! a program) run before glibc starts, with raw syscalls, because glibc's start-up alone is a
//! third of what unshare-rs takes (see `conventions::prelibc`).
//!
//! It runs the same [`Step`]s as the ordinary path, in the same order. Any command line outside
//! that set, and any step that fails, goes to the ordinary path through [`handover`]: it parses
//! the line again and resumes at the step where the fast path stopped, so the failing step runs
//! once more there (a failed unshare, mount, write or execve changed nothing) and fails with the
//! ordinary message and exit code. Nothing here prints.
//!
//! `MICROTOOLS_EARLY=0` in the environment sends every command line to the ordinary path, and so
//! does a start in secure-execution mode (set-uid, file capabilities), where glibc cleans the
//! environment first.

use crate::plan::Step;
use conventions::prelibc::{self, Start};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};

/// Which single-id maps `-r` or `-c` asked for (the last one given wins, as in the plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Map {
    /// `-r`: the caller is root inside.
    Root,
    /// `-c`: the caller keeps its ids inside.
    Current,
}

/// A command line the fast path runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quick {
    /// `CLONE_NEW*` flags.
    pub flags: libc::c_int,
    /// `-f`.
    pub fork: bool,
    /// `-r` or `-c`.
    pub map: Option<Map>,
    /// `--mount-proc` (on /proc).
    pub mount_proc: bool,
    /// Index (in the arguments after argv\[0\]) of the program.
    pub program: usize,
}

/// The long options the fast path knows, with what they set.
const LONG: [(&[u8], Opt); 11] = [
    (b"mount", Opt::Ns(libc::CLONE_NEWNS)),
    (b"uts", Opt::Ns(libc::CLONE_NEWUTS)),
    (b"ipc", Opt::Ns(libc::CLONE_NEWIPC)),
    (b"net", Opt::Ns(libc::CLONE_NEWNET)),
    (b"pid", Opt::Ns(libc::CLONE_NEWPID)),
    (b"user", Opt::Ns(libc::CLONE_NEWUSER)),
    (b"cgroup", Opt::Ns(libc::CLONE_NEWCGROUP)),
    (b"fork", Opt::Fork),
    (b"map-root-user", Opt::Map(Map::Root)),
    (b"map-current-user", Opt::Map(Map::Current)),
    (b"mount-proc", Opt::MountProc),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Ns(libc::c_int),
    Fork,
    Map(Map),
    MountProc,
}

#[inline(always)]
fn short(c: u8) -> Option<Opt> {
    Some(match c {
        b'm' => Opt::Ns(libc::CLONE_NEWNS),
        b'u' => Opt::Ns(libc::CLONE_NEWUTS),
        b'i' => Opt::Ns(libc::CLONE_NEWIPC),
        b'n' => Opt::Ns(libc::CLONE_NEWNET),
        b'p' => Opt::Ns(libc::CLONE_NEWPID),
        b'U' => Opt::Ns(libc::CLONE_NEWUSER),
        b'C' => Opt::Ns(libc::CLONE_NEWCGROUP),
        b'f' => Opt::Fork,
        b'r' => Opt::Map(Map::Root),
        b'c' => Opt::Map(Map::Current),
        _ => return None,
    })
}

#[inline(always)]
fn apply(q: &mut Quick, o: Opt) {
    match o {
        Opt::Ns(flag) => q.flags |= flag,
        Opt::Fork => q.fork = true,
        Opt::Map(m) => {
            q.flags |= libc::CLONE_NEWUSER;
            q.map = Some(m);
        }
        Opt::MountProc => {
            q.flags |= libc::CLONE_NEWNS;
            q.mount_proc = true;
        }
    }
}

/// Reads the arguments after argv\[0\] (`arg(i)` is the i-th of them); None when the line is not
/// one the fast path runs: an option it does not know (or an abbreviation, a `=VALUE`), no
/// program (the default shell), or an empty program name.
#[inline(always)]
pub fn parse<'a>(arg: impl Fn(usize) -> Option<&'a [u8]>) -> Option<Quick> {
    let mut q = Quick {
        flags: 0,
        fork: false,
        map: None,
        mount_proc: false,
        program: 0,
    };
    let mut i = 0;
    loop {
        let a = arg(i)?;
        if prelibc::eq(a, b"--") {
            q.program = i + 1;
            break;
        }
        if let (true, Some(name)) = (prelibc::starts_with(a, b"--"), a.get(2..)) {
            let mut known = None;
            let mut k = 0;
            while k < LONG.len() {
                if let Some((long, opt)) = LONG.get(k) {
                    if prelibc::eq(name, long) {
                        known = Some(*opt);
                    }
                }
                k += 1;
            }
            apply(&mut q, known?);
        } else if let (true, Some(letters)) = (a.len() > 1 && a.first() == Some(&b'-'), a.get(1..))
        {
            let mut k = 0;
            while let Some(c) = letters.get(k) {
                apply(&mut q, short(*c)?);
                k += 1;
            }
        } else {
            q.program = i;
            break;
        }
        i += 1;
    }
    match arg(q.program) {
        Some(p) if !p.is_empty() => Some(q),
        _ => None,
    }
}

/// Propagation of / in a new mount namespace: the default, private.
const PRIVATE: libc::c_ulong = libc::MS_REC | libc::MS_PRIVATE;

/// The `k`-th step of `q`'s run, as [`crate::plan::Plan::steps`] orders them.
#[inline(always)]
pub fn step_at(q: &Quick, k: usize) -> Option<Step> {
    let mut n = 0;
    let mut pick = |wanted: bool| {
        let hit = wanted && n == k;
        if wanted {
            n += 1;
        }
        hit
    };
    if pick(q.flags != 0) {
        return Some(Step::Unshare(q.flags));
    }
    if pick(q.fork) {
        return Some(Step::Fork);
    }
    if pick(q.map.is_some()) {
        return Some(Step::MapUser);
    }
    if pick(q.map.is_some()) {
        return Some(Step::MapGroup);
    }
    if pick(q.flags & libc::CLONE_NEWNS != 0) {
        return Some(Step::Propagation(PRIVATE));
    }
    if pick(q.mount_proc) {
        return Some(Step::MountProc);
    }
    if pick(true) {
        return Some(Step::Exec);
    }
    None
}

/// Where the ordinary path takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// From the start: the fast path did nothing.
    Start,
    /// At step `step` of the plan, in the child the fast path forked if `child`; `caller` is the
    /// euid and egid read before unshare (a new user namespace changes what getuid says).
    Resume {
        /// Index into the plan's steps.
        step: usize,
        /// We are the forked child (the parent waits in the fast path).
        child: bool,
        /// The caller's ids, if the fast path read them.
        caller: Option<(u32, u32)>,
    },
    /// Waiting for this child failed in the fast path; the ordinary path waits and reports.
    Wait(libc::pid_t),
}

/// The handover, in plain statics: there is no TLS yet, and the process is single-threaded.
static STEP: AtomicUsize = AtomicUsize::new(usize::MAX);
static CHILD: AtomicI32 = AtomicI32::new(0);
static HAVE_CALLER: AtomicI32 = AtomicI32::new(0);
static EUID: AtomicU32 = AtomicU32::new(0);
static EGID: AtomicU32 = AtomicU32::new(0);
static WAIT: AtomicI32 = AtomicI32::new(0);

/// What the fast path left for the ordinary path.
pub fn handover() -> Handover {
    let pid = WAIT.load(Ordering::Relaxed);
    if pid > 0 {
        return Handover::Wait(pid);
    }
    match STEP.load(Ordering::Relaxed) {
        usize::MAX => Handover::Start,
        step => Handover::Resume {
            step,
            child: CHILD.load(Ordering::Relaxed) != 0,
            caller: (HAVE_CALLER.load(Ordering::Relaxed) != 0)
                .then(|| (EUID.load(Ordering::Relaxed), EGID.load(Ordering::Relaxed))),
        },
    }
}

/// The entry point (see `conventions::prelibc`): returns to let glibc start.
///
/// # Safety
/// Called only by `microtools_early_entry`, with the initial stack pointer.
#[link_section = "early_text"]
pub unsafe extern "C" fn entry(sp: *const usize) {
    // SAFETY: the entry point passes the stack the process started with.
    let start = unsafe { Start::from_stack(sp) };
    // Set-uid or with file capabilities: glibc must clean the environment first.
    if start.secure() {
        return;
    }
    if let Some(v) = start.env(b"MICROTOOLS_EARLY=") {
        if prelibc::eq(v, b"0") {
            return;
        }
    }
    if let Some(q) = parse(|i| start.arg(i + 1)) {
        run(&start, &q);
    }
}

use prelibc::sys;

#[inline(always)]
fn syscall(n: libc::c_long, a: [usize; 6]) -> isize {
    // SAFETY: every caller passes arguments valid for `n`: integers, or pointers to NUL-terminated
    // strings and buffers that live across the call.
    unsafe { sys::call(n, a) }
}

/// Runs `q`'s steps; returns (after recording the handover) only when one failed.
#[link_section = "early_text"]
#[inline(never)]
fn run(start: &Start, q: &Quick) {
    let mut caller = None;
    if q.flags & libc::CLONE_NEWUSER != 0 {
        caller = Some((
            syscall(libc::SYS_geteuid, [0; 6]) as u32,
            syscall(libc::SYS_getegid, [0; 6]) as u32,
        ));
    }
    let mut child = false;
    let mut k = 0;
    while let Some(step) = step_at(q, k) {
        let ok = match step {
            Step::Unshare(flags) => {
                syscall(libc::SYS_unshare, [flags as usize, 0, 0, 0, 0, 0]) == 0
            }
            Step::Fork => match fork_and_wait() {
                Forked::Child => {
                    child = true;
                    true
                }
                Forked::Failed => false,
                Forked::WaitFailed(pid) => {
                    WAIT.store(pid, Ordering::Relaxed);
                    return;
                }
            },
            Step::MapUser | Step::MapGroup => match (caller, q.map) {
                (Some((euid, egid)), Some(map)) => {
                    let (inner, outer) = match (step == Step::MapUser, map) {
                        (true, Map::Root) => (0, euid),
                        (true, Map::Current) => (euid, euid),
                        (false, Map::Root) => (0, egid),
                        (false, Map::Current) => (egid, egid),
                    };
                    if step == Step::MapUser {
                        write_map(b"/proc/self/uid_map\0", inner, outer)
                    } else {
                        deny_setgroups() && write_map(b"/proc/self/gid_map\0", inner, outer)
                    }
                }
                _ => false,
            },
            Step::Propagation(flags) => mount(b"none\0", b"/\0", None, flags),
            Step::MountProc => mount(
                b"proc\0",
                b"/proc\0",
                Some(b"proc\0"),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            ),
            Step::Exec => {
                exec(start, q.program + 1);
                false
            }
            _ => false,
        };
        if !ok {
            break;
        }
        k += 1;
    }
    STEP.store(k, Ordering::Relaxed);
    CHILD.store(child as i32, Ordering::Relaxed);
    if let Some((euid, egid)) = caller {
        HAVE_CALLER.store(1, Ordering::Relaxed);
        EUID.store(euid, Ordering::Relaxed);
        EGID.store(egid, Ordering::Relaxed);
    }
}

#[inline(always)]
fn mount(source: &[u8], target: &[u8], fstype: Option<&[u8]>, flags: libc::c_ulong) -> bool {
    let fstype = match fstype {
        Some(t) => t.as_ptr() as usize,
        None => 0,
    };
    let a = [
        source.as_ptr() as usize,
        target.as_ptr() as usize,
        fstype,
        flags as usize,
        0,
        0,
    ];
    syscall(libc::SYS_mount, a) == 0
}

/// A buffer on the stack that text is appended to, in loops of our own: left uninitialized,
/// because zeroing it would be a call to `memset`, and filled byte by byte (no `memcpy`).
struct Buf<const N: usize> {
    bytes: [core::mem::MaybeUninit<u8>; N],
    len: usize,
}

impl<const N: usize> Buf<N> {
    #[inline(always)]
    fn new() -> Buf<N> {
        Buf {
            bytes: [const { core::mem::MaybeUninit::uninit() }; N],
            len: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, s: &[u8]) -> bool {
        let mut i = 0;
        while let Some(b) = s.get(i) {
            match self.bytes.get_mut(self.len) {
                // SAFETY: a valid, exclusive byte of our buffer; volatile so that the loop is not
                // turned into a call to memcpy.
                Some(slot) => unsafe { core::ptr::write_volatile(slot.as_mut_ptr(), *b) },
                None => return false,
            }
            self.len += 1;
            i += 1;
        }
        true
    }

    #[inline(always)]
    fn number(&mut self, mut v: u32) -> bool {
        let mut digits = [0u8; 10];
        let mut n = 0;
        loop {
            if let Some(d) = digits.get_mut(n) {
                *d = b'0' + (v % 10) as u8;
            }
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        while n > 0 {
            n -= 1;
            match digits.get(n) {
                Some(d) if self.push(&[*d]) => {}
                _ => return false,
            }
        }
        true
    }

    #[inline(always)]
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: the first `len` bytes were written by push, and len <= N.
        unsafe { core::slice::from_raw_parts(self.bytes.as_ptr().cast::<u8>(), self.len) }
    }
}

/// Opens `path` for writing and writes all of `text` in one write, as the ordinary path does.
#[inline(always)]
fn write_file(path: &[u8], text: &[u8]) -> Result<(), isize> {
    let fd = syscall(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as usize,
            path.as_ptr() as usize,
            (libc::O_WRONLY | libc::O_CLOEXEC) as usize,
            0,
            0,
            0,
        ],
    );
    if fd < 0 {
        return Err(fd);
    }
    let n = syscall(
        libc::SYS_write,
        [fd as usize, text.as_ptr() as usize, text.len(), 0, 0, 0],
    );
    syscall(libc::SYS_close, [fd as usize, 0, 0, 0, 0, 0]);
    if n == text.len() as isize {
        Ok(())
    } else {
        Err(n)
    }
}

/// `inner outer 1`, util-linux's single-id map line.
#[inline(always)]
fn write_map(path: &[u8], inner: u32, outer: u32) -> bool {
    let mut line = Buf::<32>::new();
    line.number(inner)
        && line.push(b" ")
        && line.number(outer)
        && line.push(b" 1")
        && write_file(path, line.as_bytes()).is_ok()
}

/// `deny` to setgroups before an unprivileged gid_map; a kernel without the file is fine.
#[inline(always)]
fn deny_setgroups() -> bool {
    match write_file(b"/proc/self/setgroups\0", b"deny") {
        Ok(()) => true,
        Err(e) => e == -(libc::ENOENT as isize),
    }
}

enum Forked {
    /// We are the child; the parent waits and ends as it ends.
    Child,
    /// fork failed; nothing changed.
    Failed,
    /// We are the parent and waiting for this child failed.
    WaitFailed(libc::pid_t),
}

/// Forks as the ordinary path does: SIGINT and SIGTERM blocked across the fork, then ignored
/// by the parent, which waits and ends the way the child ended. Returns in the child.
#[inline(always)]
fn fork_and_wait() -> Forked {
    let set = sys::sigbit(libc::SIGINT) | sys::sigbit(libc::SIGTERM);
    let Ok(old) = sys::sigprocmask(libc::SIG_BLOCK, set) else {
        return Forked::Failed;
    };
    let pid = syscall(libc::SYS_clone, [libc::SIGCHLD as usize, 0, 0, 0, 0, 0]);
    if pid <= 0 {
        let _ = sys::sigprocmask(libc::SIG_SETMASK, old);
        return if pid == 0 {
            Forked::Child
        } else {
            Forked::Failed
        };
    }
    let pid = pid as libc::pid_t;
    let mut prev = sys::KernelSigaction::EMPTY;
    sys::set_disposition(libc::SIGINT, libc::SIG_IGN, &mut prev);
    sys::set_disposition(libc::SIGTERM, libc::SIG_IGN, &mut prev);
    let _ = sys::sigprocmask(libc::SIG_SETMASK, old);
    match sys::wait(pid) {
        Ok(status) => conventions::exit::relay_early(status),
        Err(_) => Forked::WaitFailed(pid),
    }
}

/// execvp's search: the name as a path if it has a slash, else each directory of `$PATH`
/// (glibc's default `/bin:/usr/bin` without one), going on past a directory where it is missing
/// or not permitted. Returns when the program could not be run this way, for the ordinary path
/// to try again with glibc's execvp (which also runs scripts without a #! line through sh) and
/// report.
#[inline(always)]
fn exec(start: &Start, program: usize) {
    let Some(name) = start.arg(program) else {
        return;
    };
    // The ordinary path's execvp sets SIGPIPE to its default first.
    let mut prev = sys::KernelSigaction::EMPTY;
    sys::set_disposition(libc::SIGPIPE, libc::SIG_DFL, &mut prev);
    // SAFETY: program < argc, so argv + program is within argv, and NULL-terminated.
    let argv = unsafe { start.argv().add(program) } as usize;
    let envp = start.envp() as usize;
    let mut k = 0;
    while let Some(c) = name.get(k) {
        if *c == b'/' {
            syscall(
                libc::SYS_execve,
                [name.as_ptr() as usize, argv, envp, 0, 0, 0],
            );
            return;
        }
        k += 1;
    }
    let path: &[u8] = start.env(b"PATH=").unwrap_or(b"/bin:/usr/bin");
    let mut from = 0;
    loop {
        let mut to = from;
        while let Some(c) = path.get(to) {
            if *c == b':' {
                break;
            }
            to += 1;
        }
        let dir = path.get(from..to).unwrap_or(&[]);
        let mut file = Buf::<4096>::new();
        let built = file.push(dir)
            && (dir.is_empty() || file.push(b"/"))
            && file.push(name)
            && file.push(b"\0");
        if !built {
            return;
        }
        let r = syscall(
            libc::SYS_execve,
            [file.as_bytes().as_ptr() as usize, argv, envp, 0, 0, 0],
        );
        let errno = -r as i32;
        if !matches!(
            errno,
            libc::EACCES
                | libc::ENOENT
                | libc::ESTALE
                | libc::ENOTDIR
                | libc::ENODEV
                | libc::ETIMEDOUT
        ) {
            return;
        }
        if to >= path.len() {
            return;
        }
        from = to + 1;
    }
}

/// Whether the fast path reads `args` (after argv\[0\]) as the ordinary path does: when it takes
/// the line, the plan must have the same namespaces, fork, maps, /proc and program, nothing
/// else, and the same steps in the same order (the handover resumes by step index). The unit
/// tests and the fuzz target `unshare_early_args` run it. Err says how they differ.
pub fn agrees_with_plan(args: &[std::ffi::OsString]) -> Result<(), String> {
    use crate::plan::{self, Caller, Command};
    use std::os::unix::ffi::OsStrExt;
    let caller = Caller {
        euid: 1000,
        egid: 100,
    };
    let Some(q) = parse(|i| args.get(i).map(|a| a.as_bytes())) else {
        return Ok(());
    };
    let lookup = |s: &str| s.parse::<u32>().map_err(|e| e.to_string());
    let p = match plan::parse(args, caller, &lookup, &lookup) {
        Ok(Command::Run(p)) => p,
        other => return Err(format!("fast path took {args:?}, the plan says {other:?}")),
    };
    let (user, group) = match q.map {
        None => (None, None),
        Some(Map::Root) => (Some(0), Some(0)),
        Some(Map::Current) => (Some(caller.euid), Some(caller.egid)),
    };
    let fast_steps: Vec<Step> = (0..).map_while(|k| step_at(&q, k)).collect();
    let same = p.flags == q.flags
        && p.fork == q.fork
        && p.map_user == user
        && p.map_group == group
        && p.mount_proc == q.mount_proc.then(|| std::path::PathBuf::from("/proc"))
        && args.get(q.program..) == Some(&p.program[..])
        && p.propagation == Some(PRIVATE)
        && p.steps() == fast_steps
        && p.persist.is_empty()
        && p.kill_child.is_none()
        && !p.forward_signals
        && p.setgroups.is_none()
        && p.user_ranges.is_empty()
        && p.group_ranges.is_empty()
        && p.root.is_none()
        && p.wd.is_none()
        && p.setuid.is_none()
        && p.setgid.is_none()
        && p.monotonic.is_none()
        && p.boottime.is_none()
        && !p.keep_caps
        && !p.clear_env
        && p.whitelist_env.is_empty()
        && p.binfmt.is_none()
        && p.load_interp.is_none()
        && p.owner.is_none()
        && !p.lo_up
        && p.report.is_none();
    if same {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: fast path {q:?} with steps {fast_steps:?}, plan {p:?} with steps {:?}",
            p.steps()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(args: &[&str]) -> Option<Quick> {
        parse(|i| args.get(i).map(|a| a.as_bytes()))
    }

    fn steps(q: &Quick) -> Vec<Step> {
        (0..).map_while(|k| step_at(q, k)).collect()
    }

    #[test]
    fn reads_everyday_lines() {
        let q = quick(&["-fp", "--mount-proc", "ps", "-ef"]).expect("fast");
        assert_eq!(
            q,
            Quick {
                flags: libc::CLONE_NEWPID | libc::CLONE_NEWNS,
                fork: true,
                map: None,
                mount_proc: true,
                program: 2,
            }
        );
        assert_eq!(
            steps(&q),
            vec![
                Step::Unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS),
                Step::Fork,
                Step::Propagation(PRIVATE),
                Step::MountProc,
                Step::Exec
            ]
        );
        let q = quick(&["-r", "-c", "--", "-x"]).expect("fast");
        assert_eq!(
            (q.map, q.program, q.flags),
            (Some(Map::Current), 3, libc::CLONE_NEWUSER)
        );
        assert_eq!(steps(&quick(&["true"]).expect("fast")), vec![Step::Exec]);
        assert_eq!(quick(&["-", "x"]).map(|q| q.program), Some(0));
    }

    #[test]
    fn leaves_the_rest_to_the_ordinary_path() {
        for line in [
            &[][..],
            &["-n"],
            &["--"],
            &["-n", "--"],
            &[""],
            &["-T", "true"],
            &["-nx", "true"],
            &["--mount=/run/x", "true"],
            &["--mount-pro", "true"],
            &["--mount-proc=/p", "true"],
            &["--kill-child", "true"],
            &["-h"],
            &["--lo-up", "-n", "true"],
        ] {
            assert_eq!(quick(line), None, "{line:?}");
        }
    }

    /// Every line of up to three option tokens, then a program or not: the fast path takes only
    /// lines the ordinary path reads the same way, and takes the everyday ones.
    #[test]
    fn agrees_with_the_plan_on_every_short_line() {
        let tokens = [
            "-m",
            "-u",
            "-i",
            "-n",
            "-p",
            "-U",
            "-C",
            "-T",
            "-f",
            "-r",
            "-c",
            "-x",
            "-fp",
            "-rc",
            "-mipunfC",
            "-nT",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--user",
            "--cgroup",
            "--time",
            "--fork",
            "--map-root-user",
            "--map-current-user",
            "--mount-proc",
            "--mount-proc=/proc",
            "--mount-proc=",
            "--mount-binfmt",
            "-l",
            "--whitelist-env=A",
            "--mount=",
            "--moun",
            "--mount-p",
            "--forw",
            "--kill-child",
            "--",
            "-",
            "",
        ];
        let tails: [&[&str]; 4] = [&[], &["true"], &["sh", "-c", "x"], &["-n"]];
        let mut taken = 0;
        let mut line: Vec<&str> = Vec::new();
        let mut check = |line: &[&str]| {
            for tail in tails {
                let args: Vec<std::ffi::OsString> =
                    line.iter().chain(tail).map(Into::into).collect();
                if let Err(e) = agrees_with_plan(&args) {
                    panic!("{e}");
                }
                taken +=
                    usize::from(parse(|i| args.get(i).map(|a| a.as_encoded_bytes())).is_some());
            }
        };
        check(&line);
        for a in tokens {
            line.push(a);
            check(&line);
            for b in tokens {
                line.push(b);
                check(&line);
                for c in tokens {
                    line.push(c);
                    check(&line);
                    line.pop();
                }
                line.pop();
            }
            line.pop();
        }
        // The check above only means something if the fast path takes many of them.
        assert!(taken > 20_000, "the fast path took only {taken} lines");
    }

    #[test]
    fn takes_the_benchmarked_lines() {
        for line in [
            &["true"][..],
            &["-r", "true"],
            &["-fp", "--mount-proc", "true"],
            &["-n", "true"],
            &["-mipunfC", "true"],
        ] {
            assert!(quick(line).is_some(), "{line:?}");
        }
    }
}
