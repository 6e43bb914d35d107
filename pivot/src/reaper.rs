//! `--reaper`: pivot stays as the command's parent (PID 1 of a new PID namespace) instead of
//! exec'ing it, because a PID 1 that is an ordinary program never reaps the orphans reparented
//! to it and ignores signals it has no handler for. As bubblewrap's init and tini do, it reaps
//! every child, forwards the usual signals to the command, and ends as the command ended.

use std::ffi::OsString;

use conventions::exit::Outcome;

use crate::error::Error;

/// The signals passed on to the command (the ones a supervisor or a terminal sends); SIGCHLD is
/// the reaper's own.
pub const FORWARDED: [libc::c_int; 8] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

/// The supervisor's descriptors the reaper holds: the command does not inherit them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fds {
    /// `--json-status-fd`: gets `{ "exit-code": N }` at the end.
    pub status: Option<i32>,
    /// `--sync-fd`: closed only when pivot ends.
    pub sync: Option<i32>,
}

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set; sigaddset takes valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Forks: the child execs `argv` (the exec failure is its 126/127), the parent reaps and
/// forwards until the child ends, then ends the same way. With `die_with_parent` the child is
/// killed when pivot dies (pivot itself already is when its parent dies). Returns only on a
/// failure before the fork.
pub fn run(
    argv: &[OsString],
    die_with_parent: bool,
    fds: Fds,
    say: &dyn Fn(String),
) -> Result<crate::Never, Error> {
    let mut all: Vec<libc::c_int> = FORWARDED.to_vec();
    all.push(libc::SIGCHLD);
    let set = sigset(&all);
    // SAFETY: a zeroed sigset_t is a valid out-parameter for the old mask.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` and `old` are valid sigsets; pivot runs no other thread.
    if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) } != 0 {
        return Err(Error::sys(
            "sigprocmask(SIG_BLOCK)",
            std::io::Error::last_os_error(),
        ));
    }
    // Orphans of the command come to us also when we are not PID 1 (no PID namespace).
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // SAFETY: pivot is single-threaded; the child only restores its mask and execs.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(Error::sys(
            "fork() for --reaper",
            std::io::Error::last_os_error(),
        ));
    }
    if child == 0 {
        // SAFETY: restoring the mask saved above.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        for fd in [fds.status, fds.sync].into_iter().flatten() {
            crate::sys::close_fd(fd);
        }
        if die_with_parent {
            if let Err(e) = crate::sys::die_with_parent() {
                conventions::errln!("pivot: prctl(PR_SET_PDEATHSIG) failed: {e}");
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(conventions::exit::FAILURE) };
            }
        }
        let e = match crate::exec(argv) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        conventions::errln!("pivot: {e}");
        conventions::output::flush();
        // SAFETY: ends the child without running the parent's exit handlers twice.
        unsafe { libc::_exit(e.code()) };
    }
    say(format!("--reaper: the command is PID {child}"));
    loop {
        // SAFETY: `set` is a valid sigset; a null siginfo is allowed.
        let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if sig < 0 {
            // EINTR: a signal outside the set (not blocked) interrupted the wait.
            continue;
        }
        if sig != libc::SIGCHLD {
            say(format!("--reaper: forwarding signal {sig} to PID {child}"));
            // SAFETY: kill takes a pid and a signal number.
            unsafe { libc::kill(child, sig) };
            continue;
        }
        if let Some(outcome) = reap(child) {
            if let Some(fd) = fds.status {
                // The supervisor may be gone; the command's status still is ours.
                let _ = crate::supervise::write_all(
                    fd,
                    &crate::supervise::exit_json(outcome.shell_code()),
                );
            }
            conventions::exit::relay(outcome)
        }
    }
}

/// Reaps every child that has ended; how `command` ended once it did.
fn reap(command: libc::pid_t) -> Option<Outcome> {
    let mut ended = None;
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return ended;
        }
        if pid == command {
            ended = Some(Outcome::from_raw(status));
        }
    }
}
