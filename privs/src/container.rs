//! What a container process gets by default, chosen once here for setpriv-rs
//! `--default-container` and the OCI runtime.

use crate::caps::CapsHashSet;
use ::caps::Capability;

/// The capabilities podman leaves a container by default (containers.conf), which is Docker's
/// default less MKNOD, NET_RAW and AUDIT_WRITE. runc's `runc spec` template has only
/// AUDIT_WRITE, KILL and NET_BIND_SERVICE, but the engines' set is what images are written
/// against (chown in an entrypoint, a server dropping to a user with setuid/setgid).
pub const DEFAULT_CAPS: [Capability; 11] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETGID,
    Capability::CAP_SETPCAP,
    Capability::CAP_SETUID,
    Capability::CAP_SYS_CHROOT,
];

/// [`DEFAULT_CAPS`] as a set.
pub fn default_caps() -> CapsHashSet {
    DEFAULT_CAPS.iter().copied().collect()
}
