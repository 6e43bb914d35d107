//! Thin wrappers of the syscalls pivot makes, so that every `unsafe` block lives in one place and
//! every call returns an `io::Result` the caller can put into an error naming the path.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// `mount_setattr(2)` flag: apply to the whole subtree.
const AT_RECURSIVE: libc::c_int = 0x8000;
/// `mount_attr.attr_set` bit: read-only.
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `mount_attr.attr_set` bit: set-uid and set-gid bits (and file capabilities) are ignored.
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
/// `mount_attr.attr_set` bit: device nodes cannot be opened.
pub const MOUNT_ATTR_NODEV: u64 = 0x4;

/// `struct mount_attr` of `mount_setattr(2)` (version 0, 32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn path_c(p: &Path) -> io::Result<CString> {
    cstr(p.as_os_str())
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The strerror text of an error without Rust's ` (os error N)` suffix, for one-line messages.
pub fn errstr(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A path that names what `fd` refers to, usable as a mount source or target while a procfs is
/// mounted at `/proc`: the kernel follows the magic link to the very object the fd holds, so a
/// path checked once cannot be swapped under us by a symlink.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `mount(2)`.
pub fn mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let src = src.map(path_c).transpose()?;
    let target = path_c(target)?;
    let fstype = fstype.map(|s| cstr(OsStr::new(s))).transpose()?;
    let data = data.map(|s| cstr(OsStr::new(s))).transpose()?;
    let p = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call, or NULL
    // where mount(2) accepts NULL.
    check(unsafe { libc::mount(p(&src), target.as_ptr(), p(&fstype), flags, p(&data).cast()) })
}

/// `umount2(2)`.
pub fn umount2(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let t = path_c(target)?;
    // SAFETY: `t` is a valid NUL-terminated string.
    check(unsafe { libc::umount2(t.as_ptr(), flags) })
}

/// `pivot_root(2)` (no libc wrapper exists).
pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let n = path_c(new_root)?;
    let o = path_c(put_old)?;
    // SAFETY: both arguments are valid NUL-terminated strings.
    let r = unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) };
    check(r as libc::c_int)
}

/// Makes the mount `fd` refers to read-only (its whole subtree when `recursive`) with
/// `mount_setattr(2)`; on kernels before 5.12 falls back to a bind remount that keeps the flags
/// the kernel locks in a user namespace (nosuid, nodev, noexec, atime).
pub fn make_readonly(fd: &OwnedFd, recursive: bool) -> io::Result<()> {
    set_mount_attrs(fd, MOUNT_ATTR_RDONLY, recursive)
}

/// Sets the `MOUNT_ATTR_*` bits `attrs` (read-only, nosuid, nodev) on the mount `fd` refers to
/// (its whole subtree when `recursive`) with `mount_setattr(2)`. On kernels before 5.12 it falls
/// back to a bind remount of that one mount, repeating the flags it already has (the kernel
/// locks them in a user namespace).
pub fn set_mount_attrs(fd: &OwnedFd, attrs: u64, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `fd` is open, the path is an empty C string, `attr` is a valid mount_attr of the
    // size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    let path = fd_path(fd);
    let mut flags = statvfs_flags(&path)?;
    for (bit, ms) in [
        (MOUNT_ATTR_RDONLY, libc::MS_RDONLY),
        (MOUNT_ATTR_NOSUID, libc::MS_NOSUID),
        (MOUNT_ATTR_NODEV, libc::MS_NODEV),
    ] {
        if attrs & bit != 0 {
            flags |= ms;
        }
    }
    mount(
        None,
        &path,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | flags,
        None,
    )
}

/// The mount flags `statvfs` reports that a bind remount must repeat.
fn statvfs_flags(path: &Path) -> io::Result<libc::c_ulong> {
    let c = path_c(path)?;
    // SAFETY: statvfs writes only into `st`, a zeroed local of the right type.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `st` a valid out-pointer.
    check(unsafe { libc::statvfs(c.as_ptr(), &mut st) })?;
    let mut flags = 0;
    for (st_bit, ms_bit) in [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_bit != 0 {
            flags |= ms_bit;
        }
    }
    Ok(flags)
}

/// `open(2)` returning an owned fd (O_CLOEXEC added).
pub fn open(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = path_c(path)?;
    // SAFETY: `c` is a valid C string; the returned fd is checked and owned from here on.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0) };
    owned(fd)
}

fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// `openat(2)` relative to `dir`, returning an owned fd (O_CLOEXEC added).
pub fn openat(dir: &OwnedFd, name: &OsStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: `dir` is an open fd and `c` a valid C string.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    owned(fd)
}

/// `mkdirat(2)`.
pub fn mkdirat(dir: &OwnedFd, name: &OsStr, mode: u32) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: `dir` is an open fd and `c` a valid C string.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) })
}

/// `readlinkat(2)` of `name` in `dir`.
pub fn readlinkat(dir: &OwnedFd, name: &OsStr) -> io::Result<OsString> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `buf` is writable for `buf.len()` bytes; `c` is a valid C string.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(OsString::from_vec(buf))
}

/// `fstat(2)`.
pub fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    // SAFETY: fstat writes only into `st`, a zeroed local of the right type.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `st` a valid out-pointer.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// `fstatat(2)` of `name` in `dir` without following a final symlink.
pub fn lstatat(dir: &OwnedFd, name: &OsStr) -> io::Result<libc::stat> {
    let c = cstr(name)?;
    // SAFETY: fstatat writes only into `st`, a zeroed local of the right type.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is open, `c` a valid C string, `st` a valid out-pointer.
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

/// `fstatfs(2)`'s filesystem magic number.
pub fn fs_magic(fd: &OwnedFd) -> io::Result<i64> {
    // SAFETY: fstatfs writes only into `st`, a zeroed local of the right type.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `st` a valid out-pointer.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) })?;
    Ok(st.f_type as i64)
}

/// `unlinkat(2)`; `dir_too` removes a directory (AT_REMOVEDIR).
pub fn unlinkat(dir: &OwnedFd, name: &OsStr, dir_too: bool) -> io::Result<()> {
    let c = cstr(name)?;
    let flags = if dir_too { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `dir` is open and `c` a valid C string.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) })
}

/// `symlinkat(2)`: creates `name` in `dir` pointing at `target`.
pub fn symlinkat(target: &str, dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let t = cstr(OsStr::new(target))?;
    let n = cstr(name)?;
    // SAFETY: both strings are valid C strings and `dir` is open.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), n.as_ptr()) })
}

/// `symlinkat(2)` with a target that need not be UTF-8.
pub fn symlinkat_os(target: &OsStr, dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let t = cstr(target)?;
    let n = cstr(name)?;
    // SAFETY: both strings are valid C strings and `dir` is open.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), n.as_ptr()) })
}

/// `fchmod(2)` of an open (not `O_PATH`) descriptor.
pub fn fchmod(fd: &OwnedFd, mode: u32) -> io::Result<()> {
    // SAFETY: `fd` is open.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })
}

/// `mknodat(2)` of a character device, then `fchmodat` so that the umask does not narrow it.
pub fn mknod_char(dir: &OwnedFd, name: &OsStr, major: u32, minor: u32) -> io::Result<()> {
    let c = cstr(name)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `dir` is open and `c` a valid C string.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), libc::S_IFCHR | 0o666, dev) })?;
    // SAFETY: as above; the node was just created by us.
    check(unsafe { libc::fchmodat(dir.as_raw_fd(), c.as_ptr(), 0o666, 0) })
}

/// `fchdir(2)`.
pub fn fchdir(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: `fd` is an open fd.
    check(unsafe { libc::fchdir(fd.as_raw_fd()) })
}

/// `chdir(2)`.
pub fn chdir(path: &Path) -> io::Result<()> {
    let c = path_c(path)?;
    // SAFETY: `c` is a valid C string.
    check(unsafe { libc::chdir(c.as_ptr()) })
}

/// `chroot(2)`.
pub fn chroot(path: &Path) -> io::Result<()> {
    let c = path_c(path)?;
    // SAFETY: `c` is a valid C string.
    check(unsafe { libc::chroot(c.as_ptr()) })
}

/// `sethostname(2)`.
pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })
}

/// `(st_dev, st_ino)` of a path, following symlinks (namespace files are magic links).
pub fn dev_ino(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// `statx(2)` attribute: the path is the root of a mount.
const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;

/// Whether `name` in `dir` is the root of a mount (statx, Linux 5.8+; older kernels answer with
/// an error and callers rely on the device check alone).
pub fn is_mount_root(dir: &OwnedFd, name: &OsStr) -> io::Result<bool> {
    let c = cstr(name)?;
    // SAFETY: statx writes only into `stx`, a zeroed local of the right type.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // An empty name asks about `dir` itself.
    let flags = if name.is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: `dir` is open, `c` a valid C string, `stx` a valid out-pointer.
    check(unsafe { libc::statx(dir.as_raw_fd(), c.as_ptr(), flags, 0, &mut stx) })?;
    if stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    Ok(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT != 0)
}

/// Whether descriptor `fd` is open for reading (`fcntl(F_GETFL)`): EBADF when it is not open,
/// EBADF too when it is open write-only.
pub fn fd_readable(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument and only reads the descriptor table.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_ACCMODE == libc::O_WRONLY {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(())
}

/// Whether the object `fd` refers to is the root of a mount (statx's `STATX_ATTR_MOUNT_ROOT`;
/// before Linux 5.8, a device different from its parent's).
pub fn fd_is_mount_root(fd: &OwnedFd) -> io::Result<bool> {
    match is_mount_root(fd, OsStr::new("")) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            let parent = openat(fd, OsStr::new(".."), libc::O_PATH, 0)?;
            Ok(fstat(fd)?.st_dev != fstat(&parent)?.st_dev)
        }
        other => other,
    }
}

/// Copies everything readable from descriptor `from` into `to` and returns the byte count.
pub fn copy_fd(from: RawFd, to: &OwnedFd) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(total);
        }
        let mut done = 0usize;
        while done < n as usize {
            let rest = &buf[done..n as usize];
            // SAFETY: `rest` is readable for its length and `to` is open.
            let w = unsafe { libc::write(to.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if w < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            done += w as usize;
        }
        total += n as u64;
    }
}

/// `close(2)` of a descriptor pivot was handed by number (`--file FD`): the command must not
/// inherit it.
pub fn close_fd(fd: RawFd) {
    // SAFETY: closing a number the user gave us; nothing else in pivot owns it (pivot's own
    // descriptors are OwnedFd values opened later and never handed out by number).
    unsafe { libc::close(fd) };
}

/// `fchmod(2)` through the `/proc/self/fd` path of an `O_PATH` descriptor (fchmod itself refuses
/// `O_PATH`); the magic link reaches the very object, so no symlink is followed.
pub fn chmod_fd(fd: &OwnedFd, mode: u32) -> io::Result<()> {
    let c = path_c(&fd_path(fd))?;
    // SAFETY: `c` is a valid C string.
    check(unsafe { libc::chmod(c.as_ptr(), mode as libc::mode_t) })
}

// The environment is changed only on the way to the exec, in pivot's one thread: nothing reads it
// at the same time (pivot starts no threads; std's own lock is not needed for that).

/// `setenv(3)`, overwriting.
pub fn setenv(name: &OsStr, value: &OsStr) -> io::Result<()> {
    let n = cstr(name)?;
    let v = cstr(value)?;
    // SAFETY: both are valid C strings; no other thread reads the environment (see above).
    check(unsafe { libc::setenv(n.as_ptr(), v.as_ptr(), 1) })
}

/// `unsetenv(3)`.
pub fn unsetenv(name: &OsStr) -> io::Result<()> {
    let n = cstr(name)?;
    // SAFETY: a valid C string; no other thread reads the environment (see above).
    check(unsafe { libc::unsetenv(n.as_ptr()) })
}

/// `clearenv(3)`.
pub fn clearenv() -> io::Result<()> {
    // SAFETY: no other thread reads the environment (see above).
    check(unsafe { libc::clearenv() })
}

/// `setsid(2)`.
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments.
    check(unsafe { libc::setsid() })
}

/// `prctl(PR_SET_PDEATHSIG, SIGKILL)`, then the check that the parent did not die before it (we
/// would have been reparented already and no signal would ever come): ESRCH then. (As PID 1 of a
/// PID namespace the parent is outside it and shows as 0 either way.)
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    // SAFETY: PR_SET_PDEATHSIG takes a signal number.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    })?;
    // SAFETY: as above.
    if unsafe { libc::getppid() } != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}
