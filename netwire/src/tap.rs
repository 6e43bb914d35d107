//! Tap devices, which rtnetlink cannot make usable: /dev/net/tun's TUNSETIFF creates one, and
//! TUNSETPERSIST keeps it after the descriptor closes so that a VMM opens it later.

use crate::error::Error;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// From linux/if_tun.h: _IOW('T', 202..206, int).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const TUNSETOWNER: libc::c_ulong = 0x4004_54cc;
const TUNSETGROUP: libc::c_ulong = 0x4004_54ce;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

fn fail(op: String, hint: &str) -> Error {
    Error::Tun {
        op,
        why: conventions::output::errtext(&std::io::Error::last_os_error()),
        hint: hint.into(),
    }
}

/// Creates the persistent tap `name` (at most 15 bytes, checked by the parser).
pub fn create(name: &str, owner: Option<u32>, group: Option<u32>) -> Result<(), Error> {
    // SAFETY: a NUL-terminated literal path; the result is checked.
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(fail(
            "open /dev/net/tun".into(),
            "load the tun module (modprobe tun) or create the node: mknod /dev/net/tun c 10 200",
        ));
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; 16],
        flags: IFF_TAP | IFF_NO_PI,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes an ifreq, which IfReq lays out (name, then flags in the
    // union, padded to the kernel's 40 bytes).
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) } != 0 {
        return Err(fail(
            format!("ioctl(TUNSETIFF) tap {name}"),
            "creating a tap needs CAP_NET_ADMIN",
        ));
    }
    let set = |op: libc::c_ulong, v: libc::c_ulong, what: &str| -> Result<(), Error> {
        // SAFETY: these tun ioctls take an integer argument by value.
        if unsafe { libc::ioctl(fd.as_raw_fd(), op, v) } != 0 {
            return Err(fail(format!("ioctl({what}) tap {name}"), "see tun(4)"));
        }
        Ok(())
    };
    if let Some(uid) = owner {
        set(TUNSETOWNER, libc::c_ulong::from(uid), "TUNSETOWNER")?;
    }
    if let Some(gid) = group {
        set(TUNSETGROUP, libc::c_ulong::from(gid), "TUNSETGROUP")?;
    }
    // Last: until it is persistent, closing the descriptor (any failure above) removes it.
    set(TUNSETPERSIST, 1, "TUNSETPERSIST")?;
    Ok(())
}
