//! Thin, checked wrappers of the syscalls and ioctls nsenter needs that std and libc do not wrap
//! (pidfd_open, pidfd_getfd, setns, the nsfs ioctls), each returning `io::Result`.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

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

/// A C string of `path`, or EINVAL when it holds a NUL byte.
pub fn cpath(path: &OsStr) -> io::Result<CString> {
    CString::new(path.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
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
    // SAFETY: fstat writes only into the zeroed local struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        check(libc::fstat(fd.as_raw_fd(), &mut st) as libc::c_long)?;
        Ok(st.st_ino)
    }
}

/// fstatfs(2)'s filesystem type.
pub fn fs_type(fd: &OwnedFd) -> io::Result<i64> {
    // SAFETY: fstatfs writes only into the zeroed local struct.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        check(libc::fstatfs(fd.as_raw_fd(), &mut st) as libc::c_long)?;
        Ok(st.f_type as i64)
    }
}

/// openat(2) relative to `dir` (or the cwd when None) with O_CLOEXEC added.
pub fn openat(dir: Option<&OwnedFd>, path: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = cpath(path)?;
    let dirfd = dir.map(|d| d.as_raw_fd()).unwrap_or(libc::AT_FDCWD);
    // SAFETY: `c` is a valid C string for the duration of the call.
    let r = unsafe { libc::openat(dirfd, c.as_ptr(), flags | libc::O_CLOEXEC) };
    check(r as libc::c_long).map(owned)
}

/// setns(2) with a namespace file or a pidfd.
pub fn setns(fd: &OwnedFd, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: setns on a descriptor we own; it changes only our own namespaces.
    check(unsafe { libc::setns(fd.as_raw_fd(), nstype) } as libc::c_long).map(|_| ())
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

/// fchdir(2).
pub fn fchdir(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fchdir on a descriptor we own.
    check(unsafe { libc::fchdir(fd.as_raw_fd()) } as libc::c_long).map(|_| ())
}

/// chroot(2).
pub fn chroot(path: &OsStr) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a valid C string.
    check(unsafe { libc::chroot(c.as_ptr()) } as libc::c_long).map(|_| ())
}

/// chdir(2).
pub fn chdir(path: &OsStr) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a valid C string.
    check(unsafe { libc::chdir(c.as_ptr()) } as libc::c_long).map(|_| ())
}

/// unshare(2).
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare changes only our own namespaces.
    check(unsafe { libc::unshare(flags) } as libc::c_long).map(|_| ())
}

/// mount(2) without data.
pub fn mount(
    source: &str,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
) -> io::Result<()> {
    let s = cpath(OsStr::new(source))?;
    let t = cpath(OsStr::new(target))?;
    let f = match fstype {
        Some(f) => Some(cpath(OsStr::new(f))?),
        None => None,
    };
    // SAFETY: all pointers are valid C strings or NULL for the duration of the call.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            std::ptr::null(),
        )
    };
    check(r as libc::c_long).map(|_| ())
}

/// fork(2): `Ok(0)` in the child, the child's pid in the parent.
pub fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: the tool is single-threaded, so the child may run any code.
    check(unsafe { libc::fork() } as libc::c_long).map(|p| p as libc::pid_t)
}
