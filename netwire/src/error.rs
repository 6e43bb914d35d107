//! The one error type of netwire: each names the netlink operation (or other call), the object,
//! the kernel's words and what to do.

use crate::parse::NsRef;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input found by the plan, before anything was changed.
    #[error("{0}")]
    Invalid(String),
    /// A netlink request the kernel refused.
    #[error("{op} failed: {why} ({hint})")]
    Netlink {
        op: String,
        errno: i32,
        why: String,
        hint: String,
    },
    #[error("{what} network namespace ({path}): {why} ({hint})")]
    Namespace {
        what: String,
        path: String,
        why: String,
        hint: String,
    },
    /// A tap device call (open /dev/net/tun, TUNSETIFF...).
    #[error("{op} failed: {why} ({hint})")]
    Tun {
        op: String,
        why: String,
        hint: String,
    },
    /// The CNI allocator's file.
    #[error("{op} {path} failed: {why} ({hint})")]
    Store {
        op: &'static str,
        path: String,
        why: String,
        hint: String,
    },
}

impl Error {
    pub fn socket(ns: Option<&NsRef>, errno: i32) -> Error {
        let op = match ns {
            None => "socket(AF_NETLINK, NETLINK_ROUTE)".to_string(),
            Some(n) => format!("socket(AF_NETLINK, NETLINK_ROUTE) in {n}"),
        };
        Error::Netlink {
            op,
            errno,
            why: conventions::output::strerror(errno),
            hint: "is this a Linux kernel with rtnetlink?".into(),
        }
    }

    /// A refused request: `op` names the message and its object, e.g. `RTM_NEWLINK bridge br0`.
    pub fn netlink(op: impl Into<String>, errno: i32, hint: impl Into<String>) -> Error {
        let mut hint = hint.into();
        if errno == libc::EPERM || errno == libc::EACCES {
            hint = "changing network devices needs CAP_NET_ADMIN in the namespace's owner".into();
        }
        Error::Netlink {
            op: op.into(),
            errno,
            why: conventions::output::strerror(errno),
            hint,
        }
    }

    /// The errno behind a netlink or tun failure, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}
