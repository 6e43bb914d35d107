//! ocirun's one error type: every message says what failed, why, and what to do, on one line.

use conventions::output::errtext;
use std::io;

/// Everything that can make ocirun fail.
#[derive(Debug)]
pub enum Error {
    /// A bad command line.
    Usage(String),
    /// config.json is unreadable or malformed; `path` is the JSON path (`process.args`).
    Config {
        /// The JSON path, or the file when the whole file is at fault.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A field ocirun does not carry out: refused rather than ignored.
    Unsupported {
        /// The JSON path of the field.
        field: String,
        /// Why, or what to do instead.
        why: String,
    },
    /// A container in the wrong state for the operation, or unknown.
    State {
        /// The container id.
        id: String,
        /// What is wrong.
        why: String,
    },
    /// A syscall or file operation failed.
    Sys {
        /// The call and its path.
        what: String,
        /// The kernel's answer.
        source: io::Error,
        /// What to do about it.
        hint: String,
    },
    /// The root filesystem could not be set up (pivot's library).
    Rootfs(pivot::Error),
    /// A cgroup operation failed (cgctl's library).
    Cgroup(cgctl::Error),
    /// The container's init reported a failure while it was being set up.
    Init(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m}"),
            Error::Config { path, why } => write!(f, "config.json: {path}: {why}"),
            Error::Unsupported { field, why } => {
                write!(f, "config.json: {field}: not supported by ocirun ({why})")
            }
            Error::State { id, why } => write!(f, "container {id}: {why}"),
            Error::Sys { what, source, hint } => {
                write!(f, "{what} failed: {} ({hint})", errtext(source))
            }
            Error::Rootfs(e) => write!(f, "setting up the root filesystem: {e}"),
            Error::Cgroup(e) => write!(f, "cgroup: {e}"),
            Error::Init(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<pivot::Error> for Error {
    fn from(e: pivot::Error) -> Error {
        Error::Rootfs(e)
    }
}

impl From<cgctl::Error> for Error {
    fn from(e: cgctl::Error) -> Error {
        Error::Cgroup(e)
    }
}

impl Error {
    /// A failed call with a hint chosen from its errno.
    pub fn sys(what: impl Into<String>, source: io::Error) -> Error {
        let hint = match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => "run ocirun as root",
            Some(libc::ENOENT) => "the path does not exist",
            Some(libc::EEXIST) => "it exists already",
            Some(libc::ENOSPC) => "a limit of the kernel was reached",
            _ => "see the manual page of the call",
        };
        Error::Sys {
            what: what.into(),
            source,
            hint: hint.to_string(),
        }
    }

    /// A failed call with the caller's hint.
    pub fn sys_hint(what: impl Into<String>, source: io::Error, hint: impl Into<String>) -> Error {
        Error::Sys {
            what: what.into(),
            source,
            hint: hint.into(),
        }
    }

    /// A config.json error at `path`.
    pub fn config(path: impl Into<String>, why: impl Into<String>) -> Error {
        Error::Config {
            path: path.into(),
            why: why.into(),
        }
    }

    /// A refused field.
    pub fn unsupported(field: impl Into<String>, why: impl Into<String>) -> Error {
        Error::Unsupported {
            field: field.into(),
            why: why.into(),
        }
    }

    /// A container-state error.
    pub fn state(id: &str, why: impl Into<String>) -> Error {
        Error::State {
            id: id.to_string(),
            why: why.into(),
        }
    }
}

/// ocirun's result.
pub type Result<T> = std::result::Result<T, Error>;
