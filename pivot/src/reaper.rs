//! `--reaper`: pivot stays as the command's parent (PID 1 of a new PID namespace) instead of
//! exec'ing it, because a PID 1 that is an ordinary program never reaps the orphans reparented
//! to it and ignores signals it has no handler for. As bubblewrap's init and tini do, it reaps
//! every child, forwards the usual signals to the command, and ends as the command ended.

use std::ffi::OsString;

use conventions::exit::Outcome;

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::unistd::ForkResult;

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
    let mut set = SigSet::empty();
    for sig in FORWARDED.iter().chain([&libc::SIGCHLD]) {
        set.add(Signal::try_from(*sig).map_err(|e| Error::sys("sigaddset", e))?);
    }
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
        .map_err(|e| Error::sys("sigprocmask(SIG_BLOCK)", e))?;
    // Orphans of the command come to us also when we are not PID 1 (no PID namespace).
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // SAFETY: pivot is single-threaded; the child only restores its mask and execs.
    let child = match unsafe { nix::unistd::fork() } {
        Err(e) => return Err(Error::sys("fork() for --reaper", e)),
        Ok(ForkResult::Parent { child }) => child,
        Ok(ForkResult::Child) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            exec_child(argv, die_with_parent, fds)
        }
    };
    say(format!("--reaper: the command is PID {child}"));
    loop {
        // EINTR: a signal outside the set (not blocked) interrupted the wait.
        let Ok(sig) = set.wait() else { continue };
        if sig != Signal::SIGCHLD {
            say(format!(
                "--reaper: forwarding signal {} to PID {child}",
                sig as i32
            ));
            let _ = nix::sys::signal::kill(child, sig);
            continue;
        }
        if let Some(outcome) = reap(child.as_raw()) {
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

/// The forked child: drops the supervisor's descriptors and execs the command; its exec failure
/// is its 126/127.
fn exec_child(argv: &[OsString], die_with_parent: bool, fds: Fds) -> ! {
    for fd in [fds.status, fds.sync].into_iter().flatten() {
        crate::sys::close_fd(fd);
    }
    if die_with_parent {
        if let Err(e) = crate::sys::die_with_parent() {
            let e = conventions::output::errtext(&e);
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
