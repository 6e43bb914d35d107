//! The one error type of cgctl: every message says what failed, on which path, and what to do.

use std::path::{Path, PathBuf};

/// Everything that can go wrong; `main` prints it once as `cgctl: MESSAGE` and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from the user (sizes, names, devices, signals, pids).
    #[error("{0}")]
    Usage(String),
    /// A limit needs a controller that this host does not offer.
    #[error("{what} needs the {controller} controller, which {why} (see `cgctl info`)")]
    Controller {
        /// The option or file that needs it.
        what: String,
        /// The controller's name.
        controller: String,
        /// Why it cannot be used.
        why: String,
    },
    /// A syscall on a cgroupfs path failed.
    #[error("{op} {} failed: {}{}", path.display(), conventions::output::errtext(source), hint_suffix(hint))]
    Sys {
        /// The syscall or operation (`mkdir`, `write`, `rmdir`, ...).
        op: String,
        /// The path it was applied to.
        path: PathBuf,
        /// The kernel's answer.
        source: std::io::Error,
        /// What to do about it; may be empty.
        hint: String,
    },
    /// The named cgroup does not exist in any hierarchy.
    #[error("cgroup '{0}' does not exist in any hierarchy (see `cgctl list`)")]
    Missing(String),
    /// The named cgroup already exists.
    #[error("cgroup '{0}' already exists (pick another name or `cgctl delete` it)")]
    Exists(String),
    /// No cgroup filesystem is mounted.
    #[error("no cgroup hierarchy is mounted (/proc/self/mountinfo lists no cgroup or cgroup2 filesystem)")]
    NoCgroups,
    /// Something else, already phrased as one line.
    #[error("{0}")]
    Other(String),
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(" ({hint})")
    }
}

impl Error {
    /// A failed syscall on `path` with the hint usually right for its errno.
    pub fn sys(op: &str, path: &Path, source: std::io::Error) -> Error {
        let hint = match source.raw_os_error() {
            Some(libc::ENOENT) => {
                "the file or group does not exist; is the controller enabled for it?"
            }
            Some(libc::EACCES) | Some(libc::EPERM) => {
                "run as root or get the group delegated to you"
            }
            Some(libc::EBUSY) => "the group still holds processes or child groups",
            Some(libc::EROFS) => "cgroupfs is mounted read-only here",
            Some(libc::EINVAL) => "the kernel refused this value for this file",
            Some(libc::ENOSPC) => "v1 cpuset groups need cpuset.cpus and cpuset.mems set first",
            _ => "",
        };
        Error::Sys {
            op: op.to_string(),
            path: path.to_path_buf(),
            source,
            hint: hint.to_string(),
        }
    }

    /// As [`Error::sys`] with an explicit hint.
    pub fn sys_hint(op: &str, path: &Path, source: std::io::Error, hint: &str) -> Error {
        Error::Sys {
            op: op.to_string(),
            path: path.to_path_buf(),
            source,
            hint: hint.to_string(),
        }
    }

    /// The errno of a failed syscall, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Sys { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// The result type of cgctl.
pub type Result<T> = std::result::Result<T, Error>;
