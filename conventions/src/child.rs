//! Waiting for a child while relaying signals to it, as `unshare --forward-signals` and `cgctl
//! run` do, so that Ctrl-C and SIGTERM reach the program and not only its parent.

use crate::exit::Outcome;
use std::sync::atomic::{AtomicI32, Ordering};

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; pid is our own child.
        unsafe { libc::kill(pid, sig) };
    }
}

/// What the parent does with a signal while it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Send it on to the child.
    Forward,
    /// Ignore it (util-linux unshare without --forward-signals ignores SIGINT/SIGTERM).
    Ignore,
}

/// Sets `signals` to be forwarded to (or ignored for) `pid`, waits for `pid`, restores the
/// previous handlers and returns how it ended.
pub fn wait_relaying(
    pid: libc::pid_t,
    signals: &[libc::c_int],
    how: Disposition,
) -> std::io::Result<Outcome> {
    CHILD.store(pid, Ordering::SeqCst);
    let handler = match how {
        Disposition::Forward => forward as extern "C" fn(libc::c_int) as libc::sighandler_t,
        Disposition::Ignore => libc::SIG_IGN,
    };
    let mut old = Vec::with_capacity(signals.len());
    for &sig in signals {
        // SAFETY: a zeroed sigaction with a valid handler and an empty mask is well formed; the
        // handler only calls kill(), which is async-signal-safe.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler;
            act.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            let mut prev: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, &act, &mut prev);
            old.push((sig, prev));
        }
    }
    let result = crate::exit::wait(pid);
    for (sig, prev) in old {
        // SAFETY: restores a sigaction the kernel gave us.
        unsafe { libc::sigaction(sig, &prev, std::ptr::null_mut()) };
    }
    CHILD.store(0, Ordering::SeqCst);
    result
}
