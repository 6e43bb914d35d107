//! The crate's one error type: every failure says what failed, why, and what to do about it.

use conventions::output::errtext;
use std::io;

/// Why nsenter-rs could not run the program.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong; printed with a `(try 'TOOL --help')` hint by main.
    #[error("{0}")]
    Usage(String),
    /// The target process does not exist (any more).
    #[error(
        "target process {pid} does not exist: {what} failed: {} (it exited, or the pid is wrong)",
        errtext(err)
    )]
    TargetGone {
        /// The target.
        pid: i32,
        /// The call that found out.
        what: String,
        /// The kernel's answer.
        err: io::Error,
    },
    /// The target has exited but was not reaped: its namespaces are gone with it.
    #[error(
        "{what} failed: {} (process {pid} is a zombie: it has exited and its parent, process {ppid}, has not reaped it, so it has no namespaces, root or cwd left to enter)",
        errtext(err)
    )]
    Zombie {
        /// The target.
        pid: i32,
        /// Its parent, which should wait for it.
        ppid: i32,
        /// The call that found out.
        what: String,
        /// The kernel's answer.
        err: io::Error,
    },
    /// The ptrace access mode check refused to show us the target.
    #[error("{what} failed: {} (ptrace access mode check on process {pid} failed: it belongs to another user or is not dumpable, or CAP_SYS_PTRACE is missing)", errtext(err))]
    Access {
        /// The target.
        pid: i32,
        /// The call that failed.
        what: String,
        /// The kernel's answer.
        err: io::Error,
    },
    /// `-t PID:INODE` named a process that is not the one holding PID now.
    #[error("process {pid} has pidfs inode {actual}, not {expected}: the pid was reused by another process (nothing was run)")]
    InodeMismatch {
        /// The pid.
        pid: i32,
        /// The inode the user gave.
        expected: u64,
        /// The inode of the process holding the pid now.
        actual: u64,
    },
    /// A syscall failed; `hint` says what to do.
    #[error("{what} failed: {}{}", errtext(err), if hint.is_empty() { String::new() } else { format!(" ({hint})") })]
    Sys {
        /// The syscall and its arguments, e.g. `setns(/proc/5/ns/net, CLONE_NEWNET)`.
        what: String,
        /// The kernel's answer.
        err: io::Error,
        /// What to do about it; may be empty.
        hint: String,
    },
    /// Something is wrong that is not a syscall failure (a file that is no namespace, ...).
    #[error("{0}")]
    Invalid(String),
    /// The program could not be executed: the message and 126/127.
    #[error("{msg}")]
    Exec {
        /// What failed.
        msg: String,
        /// 126 or 127 (1 for a bad argument).
        code: i32,
    },
}

impl Error {
    /// The exit code for this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::Exec { code, .. } => *code,
            _ => conventions::exit::FAILURE,
        }
    }

    /// A syscall error with a hint.
    pub fn sys(
        what: impl Into<String>,
        err: impl Into<io::Error>,
        hint: impl Into<String>,
    ) -> Error {
        Error::Sys {
            what: what.into(),
            err: err.into(),
            hint: hint.into(),
        }
    }

    /// Classifies a failure to read something of process `pid`: gone, refused, or other.
    pub fn of_target(pid: i32, what: impl Into<String>, err: io::Error) -> Error {
        let what = what.into();
        match err.raw_os_error() {
            Some(libc::ESRCH) | Some(libc::ENOENT) => Error::TargetGone { pid, what, err },
            Some(libc::EACCES) | Some(libc::EPERM) => Error::Access { pid, what, err },
            _ => Error::sys(what, err, ""),
        }
    }
}

/// The state letter and the parent pid in `/proc/PID/stat` text (`5 (a b) Z 1 ...`); the
/// command name may hold spaces and parentheses, so the fields are read after its last `)`.
pub fn parse_stat_state(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_state_parses() {
        assert_eq!(parse_stat_state("42 (true) Z 41 42 7 0"), Some(('Z', 41)));
        assert_eq!(parse_stat_state("9 (a) b) (c) S 1 9"), Some(('S', 1)));
        assert_eq!(parse_stat_state("9 (x"), None);
        assert_eq!(parse_stat_state(""), None);
        let e = Error::Zombie {
            pid: 42,
            ppid: 41,
            what: "setns(pidfd of 42, CLONE_NEWNET)".into(),
            err: io::Error::from_raw_os_error(libc::ESRCH),
        };
        assert_eq!(
            e.to_string(),
            "setns(pidfd of 42, CLONE_NEWNET) failed: No such process (process 42 is a zombie: it has exited and its parent, process 41, has not reaped it, so it has no namespaces, root or cwd left to enter)"
        );
    }

    #[test]
    fn messages_name_the_cause() {
        let e = Error::of_target(
            5,
            "open(/proc/5/ns/net)",
            io::Error::from_raw_os_error(libc::EACCES),
        );
        let m = e.to_string();
        assert!(
            m.starts_with("open(/proc/5/ns/net) failed: Permission denied (ptrace access mode"),
            "{m}"
        );
        let e = Error::of_target(
            5,
            "pidfd_open(5)",
            io::Error::from_raw_os_error(libc::ESRCH),
        );
        assert_eq!(
            e.to_string(),
            "target process 5 does not exist: pidfd_open(5) failed: No such process (it exited, or the pid is wrong)"
        );
        let e = Error::sys(
            "setns(x, CLONE_NEWNET)",
            io::Error::from_raw_os_error(libc::EINVAL),
            "",
        );
        assert_eq!(
            e.to_string(),
            "setns(x, CLONE_NEWNET) failed: Invalid argument"
        );
        assert_eq!(e.code(), 1);
        let e = Error::Exec {
            msg: "m".into(),
            code: 127,
        };
        assert_eq!(e.code(), 127);
    }
}
