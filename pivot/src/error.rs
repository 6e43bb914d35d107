//! pivot's one error type: every message names what failed (syscall and path), why, and a hint.

use std::io;

use conventions::output::errtext;

/// Everything that can make pivot fail.
#[derive(Debug)]
pub enum Error {
    /// A syscall failed on a path.
    Sys {
        /// The call and its path, e.g. `mount(proc) on ROOT/proc`.
        what: String,
        /// The kernel's answer.
        source: io::Error,
        /// What to do about it.
        hint: String,
    },
    /// Bad input found before anything was changed.
    Input {
        /// The argument at fault.
        what: String,
        /// What is wrong with it.
        why: String,
        /// What to do about it.
        hint: String,
    },
    /// Running in the host's initial mount namespace without the explicit flag.
    HostNamespace(String),
    /// The command could not be executed (126/127).
    Exec {
        /// The message from conventions::exec.
        msg: String,
        /// 126 or 127 (or 1).
        code: i32,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Sys { what, source, hint } => {
                write!(f, "{what} failed: {} ({hint})", errtext(source))
            }
            Error::Input { what, why, hint } => write!(f, "{what}: {why} ({hint})"),
            Error::HostNamespace(why) => write!(
                f,
                "refusing to run in the host's initial mount namespace: {why} (run under \
                 `unshare -m` or `unshare-rs -m`; pass --i-know-this-is-the-host-namespace only \
                 to really switch the host's root)"
            ),
            Error::Exec { msg, .. } => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Sys { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error {
    /// The process exit code for this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::Exec { code, .. } => *code,
            _ => conventions::exit::FAILURE,
        }
    }

    /// A syscall failure with the hint chosen from its errno.
    pub fn sys(what: impl Into<String>, source: impl Into<io::Error>) -> Error {
        let source = source.into();
        let hint = hint_for(&source).to_string();
        Error::Sys {
            what: what.into(),
            source,
            hint,
        }
    }

    /// A syscall failure with a hint of the caller's.
    pub fn sys_hint(
        what: impl Into<String>,
        source: impl Into<io::Error>,
        hint: impl Into<String>,
    ) -> Error {
        Error::Sys {
            what: what.into(),
            source: source.into(),
            hint: hint.into(),
        }
    }

    /// Bad input.
    pub fn input(
        what: impl Into<String>,
        why: impl Into<String>,
        hint: impl Into<String>,
    ) -> Error {
        Error::Input {
            what: what.into(),
            why: why.into(),
            hint: hint.into(),
        }
    }
}

/// `/NAME` inside `newroot` cannot take the proc, dev or sys mount pivot would put there.
pub fn not_real_dir(
    newroot: &std::path::Path,
    name: &str,
    e: crate::resolve::RealDirError,
) -> Error {
    use crate::resolve::RealDirError;
    let what = format!("/{name} inside {}", newroot.display());
    let why = match e {
        RealDirError::Symlink(to) => {
            format!("is a symlink (to {})", std::path::Path::new(&to).display())
        }
        RealDirError::NotDir => "is not a directory".to_string(),
        RealDirError::Io(e) => return Error::sys(format!("open({what})"), e),
    };
    Error::input(
        what,
        why,
        format!(
            "pivot mounts {name} only on a real directory, as runc does: make /{name} a \
             directory, or pass --no-{name}"
        ),
    )
}

/// `inside` could not be resolved within `newroot`: the one message both the command line's
/// steps (`apply`) and a spec's (`spec`) give, with the caller's hint.
pub fn resolving(
    newroot: &std::path::Path,
    inside: &std::path::Path,
    e: &crate::resolve::ResolveError,
    hint: &str,
) -> Error {
    Error::input(
        format!(
            "resolving {} inside {}",
            inside.display(),
            newroot.display()
        ),
        e.to_string(),
        hint,
    )
}

/// The generic hint for an errno.
pub fn hint_for(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) => {
            "needs CAP_SYS_ADMIN over the mount namespace: run as root or under `unshare -r -m`"
        }
        Some(libc::EACCES) => "permission denied on the path: check its mode and owner",
        Some(libc::ENOENT) => "the path does not exist",
        Some(libc::ENOTDIR) => "a path component is not a directory",
        Some(libc::EROFS) => "the filesystem is read-only",
        Some(libc::EBUSY) => "something is mounted or in use there",
        Some(libc::ENODEV) => "the kernel lacks this filesystem type",
        Some(libc::EMFILE) | Some(libc::ENFILE) => "raise the limit of open files, ulimit -n",
        Some(libc::EINVAL) => {
            "the kernel rejected the arguments; see the mount's propagation and \
                               whether the path is a mount point"
        }
        _ => "see the manual page of the syscall",
    }
}
