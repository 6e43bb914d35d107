//! The syscalls pivot makes on descriptors it owns, as nix calls that take `&OwnedFd` and answer
//! `io::Result` (the error type every pivot message is built from). Hand-written here is only
//! what nix 0.29 lacks: `mount_setattr(2)`, statx's mount-root attribute, `setenv`/`unsetenv`
//! that refuse a bad name instead of panicking as std's do, and an owning `open`/`openat` (nix
//! 0.29 hands back a bare `RawFd`).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{FchmodatFlags, Mode, SFlag};

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

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn mode(m: u32) -> Mode {
    Mode::from_bits_truncate(m as libc::mode_t)
}

/// A path that names what `fd` refers to, usable as a mount source or target while a procfs is
/// mounted at `/proc`: the kernel follows the magic link to the very object the fd holds, so a
/// path checked once cannot be swapped under us by a symlink.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `mount(2)` with the kernel's flag word, which pivot's plan and ocirun's config carry as is.
pub fn mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let flags = MsFlags::from_bits_retain(flags);
    Ok(nix::mount::mount(src, target, fstype, flags, data)?)
}

/// Makes the mount `fd` refers to read-only (its whole subtree when `recursive`); see
/// [`set_mount_attrs`].
pub fn make_readonly(fd: &OwnedFd, recursive: bool) -> io::Result<()> {
    set_mount_attrs(fd, MOUNT_ATTR_RDONLY, recursive)
}

/// Sets the `MOUNT_ATTR_*` bits `attrs` (read-only, nosuid, nodev) on the mount `fd` refers to
/// (its whole subtree when `recursive`) with `mount_setattr(2)`, which nix 0.29 does not wrap.
/// On kernels before 5.12 it falls back to a bind remount of that one mount, repeating the flags
/// it already has (the kernel locks them in a user namespace).
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
    let mut flags = statvfs_flags(&nix::sys::statvfs::statvfs(&path)?);
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

/// The mount flags a `statvfs` reports that a bind remount must repeat.
pub fn statvfs_flags(st: &nix::sys::statvfs::Statvfs) -> libc::c_ulong {
    let f = st.flags().bits();
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
        if f & st_bit != 0 {
            flags |= ms_bit;
        }
    }
    flags
}

/// Takes ownership of a descriptor nix just returned.
fn owned(fd: nix::Result<RawFd>) -> io::Result<OwnedFd> {
    let fd = fd?;
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open(2)` returning an owned fd (O_CLOEXEC added).
pub fn open(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_CLOEXEC;
    owned(nix::fcntl::open(path, flags, Mode::empty()))
}

/// `openat(2)` relative to `dir`, returning an owned fd (O_CLOEXEC added).
pub fn openat(dir: &OwnedFd, name: &OsStr, flags: libc::c_int, perm: u32) -> io::Result<OwnedFd> {
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_CLOEXEC;
    owned(nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        flags,
        mode(perm),
    ))
}

/// `mkdirat(2)`.
pub fn mkdirat(dir: &OwnedFd, name: &OsStr, perm: u32) -> io::Result<()> {
    Ok(nix::sys::stat::mkdirat(
        Some(dir.as_raw_fd()),
        name,
        mode(perm),
    )?)
}

/// `readlinkat(2)` of `name` in `dir`.
pub fn readlinkat(dir: &OwnedFd, name: &OsStr) -> io::Result<OsString> {
    Ok(nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name)?)
}

/// `fstat(2)`.
pub fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    Ok(nix::sys::stat::fstat(fd.as_raw_fd())?)
}

/// `fstatat(2)` of `name` in `dir` without following a final symlink.
pub fn lstatat(dir: &OwnedFd, name: &OsStr) -> io::Result<libc::stat> {
    let flags = AtFlags::AT_SYMLINK_NOFOLLOW;
    Ok(nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, flags)?)
}

/// `fstatfs(2)`'s filesystem magic number.
pub fn fs_magic(fd: &OwnedFd) -> io::Result<i64> {
    Ok(nix::sys::statfs::fstatfs(fd)?.filesystem_type().0 as i64)
}

/// `unlinkat(2)`; `dir_too` removes a directory (AT_REMOVEDIR).
pub fn unlinkat(dir: &OwnedFd, name: &OsStr, dir_too: bool) -> io::Result<()> {
    use nix::unistd::UnlinkatFlags;
    let flags = if dir_too {
        UnlinkatFlags::RemoveDir
    } else {
        UnlinkatFlags::NoRemoveDir
    };
    Ok(nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, flags)?)
}

/// `symlinkat(2)`: creates `name` in `dir` pointing at `target`.
pub fn symlinkat(target: &OsStr, dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    Ok(nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), name)?)
}

/// `fchmod(2)` of an open (not `O_PATH`) descriptor.
pub fn fchmod(fd: &OwnedFd, perm: u32) -> io::Result<()> {
    Ok(nix::sys::stat::fchmod(fd.as_raw_fd(), mode(perm))?)
}

/// `fchmodat(2)` of `name` in `dir`, so that the umask does not narrow what was just made.
pub fn fchmodat(dir: &OwnedFd, name: &OsStr, perm: u32) -> io::Result<()> {
    let follow = FchmodatFlags::FollowSymlink;
    Ok(nix::sys::stat::fchmodat(
        Some(dir.as_raw_fd()),
        name,
        mode(perm),
        follow,
    )?)
}

/// `mknodat(2)` of a node of type `kind` (`S_IFCHR`, `S_IFBLK`, `S_IFIFO`); the umask narrows
/// `perm` (callers follow with [`fchmodat`]).
pub fn mknodat(dir: &OwnedFd, name: &OsStr, kind: u32, perm: u32, dev: u64) -> io::Result<()> {
    let kind = SFlag::from_bits_truncate(kind as libc::mode_t);
    Ok(nix::sys::stat::mknodat(
        Some(dir.as_raw_fd()),
        name,
        kind,
        mode(perm),
        dev,
    )?)
}

/// `fchdir(2)`.
pub fn fchdir(fd: &OwnedFd) -> io::Result<()> {
    Ok(nix::unistd::fchdir(fd.as_raw_fd())?)
}

/// `(st_dev, st_ino)` of a path, following symlinks (namespace files are magic links).
pub fn dev_ino(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// `statx(2)` attribute: the path is the root of a mount.
const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;

/// Whether `name` in `dir` is the root of a mount (statx, Linux 5.8+, which nix 0.29 does not
/// wrap; older kernels answer with an error and callers rely on the device check alone).
pub fn is_mount_root(dir: &OwnedFd, name: &OsStr) -> io::Result<bool> {
    let c = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
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
    fd_open_for(fd, libc::O_WRONLY)
}

/// Whether descriptor `fd` is open for writing: EBADF when it is not open or open read-only.
pub fn fd_writable(fd: RawFd) -> io::Result<()> {
    fd_open_for(fd, libc::O_RDONLY)
}

fn fd_open_for(fd: RawFd, not: libc::c_int) -> io::Result<()> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)?;
    if flags & libc::O_ACCMODE == not {
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
        let n = match nix::unistd::read(from, &mut buf) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(0) => return Ok(total),
            Ok(n) => n,
        };
        let mut done = 0usize;
        while done < n {
            match nix::unistd::write(to, &buf[done..n]) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(w) => done += w,
            }
        }
        total += n as u64;
    }
}

/// `close(2)` of a descriptor pivot was handed by number (`--file FD`): the command must not
/// inherit it. Nothing else in pivot owns that number (pivot's own descriptors are OwnedFd
/// values opened later and never handed out by number).
pub fn close_fd(fd: RawFd) {
    let _ = nix::unistd::close(fd);
}

/// `chmod(2)` through the `/proc/self/fd` path of an `O_PATH` descriptor (fchmod itself refuses
/// `O_PATH`); the magic link reaches the very object, so no symlink is followed.
pub fn chmod_fd(fd: &OwnedFd, perm: u32) -> io::Result<()> {
    let follow = FchmodatFlags::FollowSymlink;
    Ok(nix::sys::stat::fchmodat(
        None,
        &fd_path(fd),
        mode(perm),
        follow,
    )?)
}

// The environment is changed only on the way to the exec, in pivot's one thread: nothing reads it
// at the same time (pivot starts no threads; std's own lock is not needed for that). nix 0.29
// has no setenv, and std's set_var panics on a name with `=` or a NUL where these answer EINVAL.

fn cstr(s: &OsStr) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

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
    unsafe { nix::env::clearenv() }.map_err(|_| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// `prctl(PR_SET_PDEATHSIG, SIGKILL)`, then the check that the parent did not die before it (we
/// would have been reparented already and no signal would ever come): ESRCH then. (As PID 1 of a
/// PID namespace the parent is outside it and shows as 0 either way.)
pub fn die_with_parent() -> io::Result<()> {
    let parent = nix::unistd::getppid();
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    if nix::unistd::getppid() != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}
