//! Exit statuses as util-linux tools give them: the child's code, its fatal signal re-raised, 126/127.

/// Our own failure, usage errors included.
pub const FAILURE: i32 = 1;
/// The command was found but could not be executed.
pub const NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;

/// How a waited-for child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It called exit(code).
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl Outcome {
    /// Decodes a raw wait status as waitpid(2) returns it. A stopped or continued status is not
    /// an end; callers wait without WUNTRACED, so it is mapped as the shell would see a stop.
    /// Inlined always: [`relay_early`] runs it before glibc starts.
    #[inline(always)]
    pub fn from_raw(status: i32) -> Outcome {
        if libc::WIFEXITED(status) {
            Outcome::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Outcome::Signaled(libc::WTERMSIG(status))
        } else {
            Outcome::Signaled(libc::WSTOPSIG(status))
        }
    }

    /// The status a shell shows for this outcome: the code, or 128+N.
    pub fn shell_code(self) -> i32 {
        match self {
            Outcome::Exited(code) => code,
            Outcome::Signaled(sig) => 128 + sig,
        }
    }
}

/// The exit code for a failed execve of the program: 127 when it does not exist, else 126.
pub fn exec_failure_code(errno: i32) -> i32 {
    match errno {
        libc::ENOENT | libc::ENOTDIR => NOT_FOUND,
        _ => NOT_EXECUTABLE,
    }
}

/// Waits for `pid` to end, retrying EINTR, and returns how it ended.
pub fn wait(pid: libc::pid_t) -> std::io::Result<Outcome> {
    crate::prelibc::sys::wait(pid)
        .map(Outcome::from_raw)
        .map_err(|e| std::io::Error::from_raw_os_error(-e as i32))
}

/// Ends this process the way the child ended: exit with its code, or die of its signal so that
/// our parent sees the same status (a shell prints 128+N). If the signal cannot kill us (it is
/// ignored by the kernel for us, as for a PID 1), exit with 128+N instead.
pub fn relay(outcome: Outcome) -> ! {
    match outcome {
        // As util-linux's close_stdout at exit: a failed write of ours turns the code into 1.
        Outcome::Exited(code) => {
            crate::output::exit(&crate::output::tool_name("microtools"), code, FAILURE)
        }
        Outcome::Signaled(sig) => {
            // The signal ends us before process::exit could flush.
            crate::output::flush();
            crate::prelibc::sys::reraise(sig)
        }
    }
}

/// [`relay`] for code that runs before glibc starts (see [`crate::prelibc`]): from a raw wait
/// status, with raw syscalls only and nothing to flush. Inlined always, so that it lands in the
/// caller's `early_text` section.
#[inline(always)]
pub fn relay_early(status: i32) -> ! {
    match Outcome::from_raw(status) {
        Outcome::Exited(code) => crate::prelibc::sys::exit(code),
        Outcome::Signaled(sig) => crate::prelibc::sys::reraise(sig),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_raw_statuses() {
        assert_eq!(Outcome::from_raw(0), Outcome::Exited(0));
        assert_eq!(Outcome::from_raw(42 << 8), Outcome::Exited(42));
        assert_eq!(Outcome::from_raw(255 << 8), Outcome::Exited(255));
        assert_eq!(Outcome::from_raw(libc::SIGKILL), Outcome::Signaled(9));
        assert_eq!(
            Outcome::from_raw(libc::SIGSEGV | 0x80),
            Outcome::Signaled(11)
        );
        assert_eq!(Outcome::Signaled(15).shell_code(), 143);
        assert_eq!(Outcome::Exited(3).shell_code(), 3);
    }

    #[test]
    fn exec_failures() {
        assert_eq!(exec_failure_code(libc::ENOENT), 127);
        assert_eq!(exec_failure_code(libc::EACCES), 126);
        assert_eq!(exec_failure_code(libc::ENOEXEC), 126);
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by wait() below, which is what is tested
    fn waits_for_a_real_child() {
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 7"])
            .spawn()
            .expect("spawn sh");
        let outcome = wait(child.id() as libc::pid_t).expect("wait");
        assert_eq!(outcome, Outcome::Exited(7));
    }
}
