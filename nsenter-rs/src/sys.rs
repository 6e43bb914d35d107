//! The syscalls and ioctls nsenter needs that nix does not wrap (pidfd_open, pidfd_getfd,
//! pidfd_send_signal, the nsfs ioctls), and nix's that are called often, each as an
//! `io::Result` on descriptors we own.

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `_IO(0xb7, 1)`: the user namespace that owns a namespace.
pub const NS_GET_USERNS: libc::c_ulong = 0xb701;
/// `_IO(0xb7, 2)`: the parent of a user or pid namespace.
pub const NS_GET_PARENT: libc::c_ulong = 0xb702;
/// `_IO(0xb7, 3)`: the `CLONE_NEW*` type of a namespace file.
pub const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
/// `_IO(0xb7, 4)`: the uid that owns a user namespace.
pub const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;
/// The network namespace of a socket.
pub const SIOCGSKNS: libc::c_ulong = 0x894c;
/// `statfs.f_type` of pidfs (Linux 6.9), where pidfd inodes identify a process for good.
pub const PIDFS_MAGIC: i64 = 0x5049_4446;
/// `statfs.f_type` of nsfs, the filesystem of namespace files.
pub const NSFS_MAGIC: i64 = 0x6e73_6673;

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` was just returned by the kernel as a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// pidfd_open(2).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    check(r).map(owned)
}

/// Whether the process behind `pidfd` is still alive (pidfd_send_signal with signal 0).
pub fn pidfd_alive(pidfd: &OwnedFd) -> bool {
    // SAFETY: signal 0 only checks existence and permission; NULL info and 0 flags are valid.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// pidfd_getfd(2): a duplicate of descriptor `fd` of the process behind `pidfd`.
pub fn pidfd_getfd(pidfd: &OwnedFd, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall on a valid pidfd; returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    check(r).map(owned)
}

/// fstat(2)'s inode number.
pub fn inode(fd: &OwnedFd) -> io::Result<u64> {
    Ok(nix::sys::stat::fstat(fd.as_raw_fd())?.st_ino)
}

/// fstatfs(2)'s filesystem type.
pub fn fs_type(fd: &OwnedFd) -> io::Result<i64> {
    Ok(nix::sys::statfs::fstatfs(fd)?.filesystem_type().0 as i64)
}

/// openat(2) relative to `dir` (or the cwd when None) with O_CLOEXEC added.
pub fn openat(dir: Option<&OwnedFd>, path: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let dirfd = dir.map(|d| d.as_raw_fd());
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(dirfd, path, flags, Mode::empty())?;
    Ok(owned(fd.into()))
}

/// setns(2) with a namespace file or a pidfd; `nstype` is a set of `CLONE_NEW*` flags.
pub fn setns(fd: &OwnedFd, nstype: libc::c_int) -> io::Result<()> {
    Ok(nix::sched::setns(fd, CloneFlags::from_bits_retain(nstype))?)
}

/// An nsfs ioctl that returns a new descriptor (NS_GET_USERNS, NS_GET_PARENT, SIOCGSKNS).
pub fn ioctl_fd(fd: &OwnedFd, req: libc::c_ulong) -> io::Result<OwnedFd> {
    // SAFETY: these ioctls take no argument and return a new descriptor or -1.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, 0) };
    check(r as libc::c_long).map(owned)
}

/// NS_GET_NSTYPE: the `CLONE_NEW*` type of a namespace file.
pub fn ns_type(fd: &OwnedFd) -> io::Result<libc::c_int> {
    // SAFETY: NS_GET_NSTYPE takes no argument and returns a number or -1.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _, 0) };
    check(r as libc::c_long).map(|t| t as libc::c_int)
}

/// NS_GET_OWNER_UID of a user namespace file.
pub fn owner_uid(fd: &OwnedFd) -> io::Result<u32> {
    let mut uid: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t into the local.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_OWNER_UID as _, &mut uid) };
    check(r as libc::c_long).map(|_| uid)
}
