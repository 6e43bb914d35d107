//! The crate's one error type: every failure says what failed and why, in one line.

/// Why setpriv-rs could not run the program.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong; printed with a `(try 'TOOL --help')` hint by main.
    #[error("{0}")]
    Usage(String),
    /// A setting could not be read or applied (bad input found late, a refused call).
    #[error("{0}")]
    Privs(#[from] privs::Error),
    /// A syscall failed.
    #[error("{what} failed: {}{}", conventions::output::errtext(err), if hint.is_empty() { String::new() } else { format!(" ({hint})") })]
    Sys {
        /// The call and its arguments.
        what: String,
        /// The kernel's answer.
        err: std::io::Error,
        /// What to do about it; may be empty.
        hint: String,
    },
    /// Something unsupported or inconsistent that is not a syscall failure.
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
    /// The exit code: 126/127 for exec failures, else 1.
    pub fn code(&self) -> i32 {
        match self {
            Error::Exec { code, .. } => *code,
            _ => conventions::exit::FAILURE,
        }
    }

    /// The last OS error for `what`.
    pub fn last(what: impl Into<String>, hint: &str) -> Error {
        Error::Sys {
            what: what.into(),
            err: std::io::Error::last_os_error(),
            hint: hint.to_string(),
        }
    }
}
