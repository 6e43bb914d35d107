//! Tap devices, which rtnetlink cannot make usable: /dev/net/tun's TUNSETIFF creates one, and
//! TUNSETPERSIST keeps it after the descriptor closes so that a VMM opens it later; [`open`] is
//! that VMM's side (tinyvmm's `--net`), which also makes a tap that lives only as long as its
//! descriptor.

use crate::error::Error;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// From linux/if_tun.h: _IOW('T', 202..206, int).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const TUNSETOWNER: libc::c_ulong = 0x4004_54cc;
const TUNSETGROUP: libc::c_ulong = 0x4004_54ce;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
// _IOW('T', 216, int).
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
/// The header before each frame read from or written to a descriptor of [`open`]: virtio's
/// `virtio_net_hdr_v1` (the legacy 10 bytes and `num_buffers`), so that a virtio-net device
/// passes frames with their header as they are.
pub const VNET_HDR_LEN: usize = 12;

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

/// Opens /dev/net/tun and attaches it to the tap `name` with `flags`, creating the tap when
/// there is none (it then lasts as long as the descriptor, unless made persistent).
fn attach(name: &str, flags: libc::c_short, extra: libc::c_int) -> Result<OwnedFd, Error> {
    if name.len() >= crate::parse::IFNAMSIZ {
        return Err(Error::Invalid(format!(
            "tap name '{name}' is longer than {} bytes (IFNAMSIZ)",
            crate::parse::IFNAMSIZ - 1
        )));
    }
    // SAFETY: a NUL-terminated literal path; the result is checked.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_CLOEXEC | extra,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        let hint = match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => {
                "no access to /dev/net/tun: it is usually mode 0666; check its mode or run as root"
            }
            _ => "is the tun module loaded? modprobe tun, or create the node: mknod /dev/net/tun c 10 200",
        };
        return Err(Error::Tun {
            op: format!("open /dev/net/tun for tap {name}"),
            why: conventions::output::errtext(&e),
            hint: hint.into(),
        });
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; 16],
        flags,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes an ifreq, which IfReq lays out (name, then flags in the
    // union, padded to the kernel's 40 bytes).
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) } != 0 {
        let e = std::io::Error::last_os_error();
        let hint = match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => {
                "creating a tap, or attaching to one owned by another user, needs CAP_NET_ADMIN"
            }
            Some(libc::EINVAL) => "is there a device of that name that is not a tap?",
            Some(libc::EBUSY) => "another process has the tap open",
            _ => "see tun(4)",
        };
        return Err(Error::Tun {
            op: format!("ioctl(TUNSETIFF) tap {name}"),
            why: conventions::output::errtext(&e),
            hint: hint.into(),
        });
    }
    Ok(fd)
}

fn set(
    fd: &OwnedFd,
    name: &str,
    op: libc::c_ulong,
    v: libc::c_ulong,
    what: &str,
) -> Result<(), Error> {
    // SAFETY: these tun ioctls take an integer argument by value.
    if unsafe { libc::ioctl(fd.as_raw_fd(), op, v) } != 0 {
        return Err(fail(format!("ioctl({what}) tap {name}"), "see tun(4)"));
    }
    Ok(())
}

/// Opens the tap `name` for a VMM, creating it if there is none: a tap made here goes away with
/// the descriptor (the process's end, however it ends), one that was there stays. The
/// descriptor is non-blocking, and every frame read or written has a [`VNET_HDR_LEN`]-byte
/// virtio-net header before it (IFF_VNET_HDR, TUNSETVNETHDRSZ); until [`set_offload`], the
/// kernel hands over whole frames with their checksums done.
pub fn open(name: &str) -> Result<OwnedFd, Error> {
    let fd = attach(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, libc::O_NONBLOCK)?;
    let len: libc::c_int = VNET_HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer, which points at `len`.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETVNETHDRSZ, &len as *const libc::c_int) } != 0 {
        return Err(fail(
            format!("ioctl(TUNSETVNETHDRSZ) tap {name}"),
            "see tun(4)",
        ));
    }
    Ok(fd)
}

/// Sets which offloads the tap open on `fd` may use in the frames it hands over
/// (TUNSETOFFLOAD, TUN_F_* bits; 0 for whole, checksummed frames).
pub fn set_offload(fd: &OwnedFd, tun_flags: u32) -> std::io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its flags as an integer argument by value.
    if unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            TUNSETOFFLOAD,
            libc::c_ulong::from(tun_flags),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Creates the persistent tap `name` (at most 15 bytes, checked by the parser).
pub fn create(name: &str, owner: Option<u32>, group: Option<u32>) -> Result<(), Error> {
    let fd = attach(name, IFF_TAP | IFF_NO_PI, 0)?;
    let set = |op, v, what: &str| set(&fd, name, op, v, what);
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
