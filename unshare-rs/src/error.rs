//! The one error type of unshare-rs, and the hints that name the likely cause of EPERM/EINVAL.

use std::io;

/// Everything that can go wrong; `Display` is the line printed after `TOOL: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad command line (the `(try ... --help)` suffix is added by the caller).
    #[error("{0}")]
    Usage(String),
    /// A failed syscall: what was attempted, the error, and a hint when one is known.
    #[error("{what}: {}{}", conventions::output::errtext(.source), suffix(.hint))]
    Sys {
        /// The syscall and its arguments (`unshare(CLONE_NEWUSER)`, `mount /proc on /x`).
        what: String,
        /// The errno.
        source: io::Error,
        /// The likely cause and what to do, or empty.
        hint: String,
    },
    /// A failure that is not a syscall's (bad subid file, ...).
    #[error("{0}")]
    Failed(String),
    /// execvp failed: the message and the exit code (126 or 127).
    #[error("{msg}")]
    Exec {
        /// `failed to execute PROG: why`.
        msg: String,
        /// 126 or 127.
        code: i32,
    },
    /// A helper process already printed the reason.
    #[error("a helper process failed")]
    Reported,
}

fn suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(" ({hint})")
    }
}

impl Error {
    /// A syscall failure with the current errno.
    pub fn last(what: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Sys {
            what: what.into(),
            source: io::Error::last_os_error(),
            hint: hint.into(),
        }
    }

    /// A syscall failure with a given error.
    pub fn io(what: impl Into<String>, source: io::Error, hint: impl Into<String>) -> Error {
        Error::Sys {
            what: what.into(),
            source,
            hint: hint.into(),
        }
    }

    /// The exit status this error gives.
    pub fn code(&self) -> i32 {
        match self {
            Error::Exec { code, .. } => *code,
            _ => conventions::exit::FAILURE,
        }
    }
}

/// Reads a sysctl under /proc/sys (`user/max_user_namespaces`), trimmed.
pub fn sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{name}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The likely cause of a failed unshare(2) with `flags`, given errno, the euid and a sysctl
/// reader (passed in so that the decision is testable without the machine's settings).
pub fn unshare_hint(
    errno: i32,
    flags: libc::c_int,
    euid: u32,
    sysctl: &dyn Fn(&str) -> Option<String>,
) -> String {
    let user = flags & libc::CLONE_NEWUSER != 0;
    match errno {
        libc::EPERM => {
            if user && sysctl("user/max_user_namespaces").as_deref() == Some("0") {
                return "user namespaces are disabled: sysctl user.max_user_namespaces is 0".into();
            }
            if user
                && euid != 0
                && sysctl("kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1")
            {
                return "AppArmor forbids unprivileged user namespaces: sysctl \
                        kernel.apparmor_restrict_unprivileged_userns is 1 (set it to 0 or give the \
                        program an AppArmor profile with 'userns,')"
                    .into();
            }
            if user
                && euid != 0
                && sysctl("kernel/unprivileged_userns_clone").as_deref() == Some("0")
            {
                return "unprivileged user namespaces are disabled: sysctl \
                        kernel.unprivileged_userns_clone is 0"
                    .into();
            }
            if euid != 0 && flags & !libc::CLONE_NEWUSER != 0 && !user {
                return "creating these namespaces needs CAP_SYS_ADMIN: run as root, or add -r \
                        (or -U) to create a user namespace that grants it"
                    .into();
            }
            if user {
                "the caller may not create a user namespace: a chrooted process, a seccomp \
                 filter or a security module forbids it"
                    .into()
            } else {
                "missing capability CAP_SYS_ADMIN, or a seccomp filter or security module \
                 forbids it"
                    .into()
            }
        }
        libc::EINVAL => {
            if flags & conventions::ns::CLONE_NEWTIME != 0 {
                "the kernel may lack time namespaces (Linux 5.6, CONFIG_TIME_NS) or another of \
                 the requested types"
                    .into()
            } else {
                "the kernel lacks one of the requested namespace types (check CONFIG_*_NS)".into()
            }
        }
        libc::ENOSPC => "the limit of namespaces is reached: see /proc/sys/user/max_*_namespaces, \
                         or the nesting depth of 32 user namespaces"
            .into(),
        libc::EUSERS => "too many nested user namespaces".into(),
        libc::ENOMEM => "out of memory, or the pid namespace's init has exited".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_cause() {
        let disabled = |n: &str| (n == "user/max_user_namespaces").then(|| "0".to_string());
        assert!(
            unshare_hint(libc::EPERM, libc::CLONE_NEWUSER, 1000, &disabled)
                .contains("user.max_user_namespaces is 0")
        );
        let apparmor = |n: &str| {
            (n == "kernel/apparmor_restrict_unprivileged_userns").then(|| "1".to_string())
        };
        assert!(
            unshare_hint(libc::EPERM, libc::CLONE_NEWUSER, 1000, &apparmor)
                .contains("apparmor_restrict_unprivileged_userns is 1")
        );
        let none = |_: &str| None;
        assert!(unshare_hint(libc::EPERM, libc::CLONE_NEWNET, 1000, &none)
            .contains("CAP_SYS_ADMIN: run as root"));
        assert!(
            unshare_hint(libc::EINVAL, conventions::ns::CLONE_NEWTIME, 0, &none)
                .contains("time namespaces")
        );
        assert_eq!(unshare_hint(libc::EBADF, 0, 0, &none), "");
        let e = Error::io(
            "unshare(CLONE_NEWUSER) failed",
            io::Error::from_raw_os_error(libc::EPERM),
            "why",
        );
        assert_eq!(
            e.to_string(),
            "unshare(CLONE_NEWUSER) failed: Operation not permitted (why)"
        );
        assert_eq!(e.code(), 1);
        assert_eq!(
            Error::Exec {
                msg: "x".into(),
                code: 127
            }
            .code(),
            127
        );
    }
}
