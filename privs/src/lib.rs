//! privs: the privilege settings a container process gets, written once for every tool that
//! sets them (setpriv-rs; the OCI runtime; pivot and tinyvmm when they confine themselves).
//!
//! - [`caps`]: capability names as setpriv(1) and the OCI runtime spec write them, `+cap,-all`
//!   lists, and applying a container's capability sets.
//! - [`container`]: what a container gets by default: the engines' capability set.
//! - [`seccomp`]: OCI runtime-spec seccomp JSON compiled by libseccomp, and the default profile.

pub mod caps;
pub mod container;
pub mod seccomp;

pub use ::caps::Capability;

/// Why a privilege setting could not be read or applied.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, said in one line naming what is wrong (a capability name, a JSON field).
    #[error("{0}")]
    Invalid(String),
    /// A call into the kernel failed.
    #[error("{what} failed: {why}")]
    Sys {
        /// The operation, e.g. `prctl(PR_CAPBSET_DROP, sys_admin)`.
        what: String,
        /// The kernel's answer.
        why: String,
    },
}
