//! The fast path's run time: the entry point that the shipped static build starts in, the raw
//! syscalls of each step, and the handover to the ordinary path.
//!
//! Compiled only where it is measured to matter: the shipped static, non-PIE build (`cargo xtask
//! demo`/`bench`/`ci`: `+crt-static`, `relocation-model=static`), where glibc's start-up is a
//! third of a run (`unshare-rs -r true` 0.80 ms instead of 1.41 ms). A dynamic build gains
//! nothing from it (the loader's own start-up dominates), so `build.rs` sets `microtools_early`
//! and the `--entry` link flag for the static build only (`build/early_entry.rs`).

use super::{parse, step_at, Handover, Map, Quick};
use crate::plan::Step;
use conventions::prelibc::{self, Start};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};

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
