//! `process.terminal` with `--console-socket`: the container's process gets a pty made in its
//! own devpts, and the master goes to the engine (conmon, containerd's shim) over the socket by
//! SCM_RIGHTS, as runc does; also the receiving side, for tests and small receivers.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use conventions::output::errtext;

/// Whether a terminal is made, and the socket its master goes to, from the config's
/// `process.terminal` and the command line (`command` names the flags in errors).
pub fn check(terminal: bool, socket: Option<&Path>, command: &str) -> Result<()> {
    match (terminal, socket) {
        (true, None) => Err(Error::Usage(format!(
            "{command}: process.terminal is true but no --console-socket was given (ocirun \
             hands the pty master to the caller; give --console-socket PATH)"
        ))),
        (false, Some(p)) => Err(Error::Usage(format!(
            "{command}: --console-socket {}: process.terminal is false (set it{}, or drop the \
             flag)",
            p.display(),
            if command == "exec" {
                " or give --tty"
            } else {
                ""
            }
        ))),
        _ => Ok(()),
    }
}

/// Connects to the console socket while its path still resolves (before any namespace is
/// joined); the descriptor is close-on-exec.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    UnixStream::connect(path).map(OwnedFd::from).map_err(|e| {
        Error::sys_hint(
            format!("connect({}) (--console-socket)", path.display()),
            e,
            "the caller must listen on that AF_UNIX stream socket",
        )
    })
}

fn check_rc(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A new pty from this mount namespace's /dev/ptmx: its master, its slave (opened) and the
/// slave's path.
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd, PathBuf)> {
    // SAFETY: a constant NUL-terminated path.
    let m = check_rc(unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: just opened, owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the valid pointer.
    check_rc(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int through the valid pointer.
    check_rc(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
    // TIOCGPTPEER opens the slave through the master, so no other /dev/pts can be raced in.
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new descriptor.
    let s = check_rc(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: just returned by the kernel, owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    Ok((master, slave, PathBuf::from(format!("/dev/pts/{n}"))))
}

/// Sends `fd` over the stream socket `sock` by SCM_RIGHTS, with `name` as the message's bytes
/// (runc sends the pty's path; receivers may ignore it).
pub fn send_fd(sock: &OwnedFd, fd: RawFd, name: &str) -> io::Result<()> {
    let mut data = name.as_bytes().to_vec();
    if data.is_empty() {
        data.push(0);
    }
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer has room for one header with one descriptor (CMSG_SPACE);
    // CMSG_FIRSTHDR of it is non-null and CMSG_DATA points inside it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
    }
    // SAFETY: `msg` points at `iov`, `data` and `cbuf`, all alive for the call.
    let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Receives one descriptor sent by SCM_RIGHTS (close-on-exec) and the message's bytes.
pub fn recv_fd(sock: RawFd) -> io::Result<(OwnedFd, String)> {
    let mut data = vec![0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points at buffers alive for the call.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled `msg`; CMSG_FIRSTHDR checks msg_controllen and returns null when
    // no header came.
    let c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    let rights = !c.is_null() && {
        // SAFETY: a non-null `c` points at a header inside `cbuf`.
        let (level, kind) = unsafe { ((*c).cmsg_level, (*c).cmsg_type) };
        level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS
    };
    if !rights {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no descriptor came with the message",
        ));
    }
    // SAFETY: an SCM_RIGHTS header carries at least one descriptor at CMSG_DATA, now ours.
    let fd = unsafe { OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast())) };
    data.truncate(n as usize);
    let name = String::from_utf8_lossy(&data)
        .trim_end_matches('\0')
        .to_string();
    Ok((fd, name))
}

/// Makes this process's terminal: a pty from the container's /dev/ptmx (sized when asked), the
/// master sent over `sock`, the slave on stdin, stdout and stderr and made the controlling
/// terminal of a new session. With `console`, the slave is also bound onto /dev/console (the
/// init's terminal, as runc does; not an exec's).
pub fn take_terminal(sock: &OwnedFd, size: Option<(u16, u16)>, console: bool) -> Result<()> {
    let (master, slave, path) = open_pty().map_err(|e| {
        Error::sys_hint(
            "opening /dev/ptmx (process.terminal)",
            e,
            "the container needs a devpts mount at /dev/pts and /dev/ptmx",
        )
    })?;
    if let Some((height, width)) = size {
        let ws = libc::winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize through the valid pointer.
        check_rc(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) })
            .map_err(|e| Error::sys("ioctl(TIOCSWINSZ) (process.consoleSize)", e))?;
    }
    if console {
        bind_console(&path)?;
    }
    send_fd(sock, master.as_raw_fd(), &path.to_string_lossy()).map_err(|e| {
        Error::sys_hint(
            "sending the pty master to --console-socket",
            e,
            "the receiver must accept the connection and read one SCM_RIGHTS message",
        )
    })?;
    drop(master);
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        check_rc(unsafe { libc::dup2(slave.as_raw_fd(), target) })
            .map_err(|e| Error::sys(format!("dup2(pty slave, {target})"), e))?;
    }
    drop(slave);
    // SAFETY: setsid has no preconditions (it fails in a process group leader, reported).
    check_rc(unsafe { libc::setsid() })
        .map_err(|e| Error::sys("setsid() (process.terminal)", e))?;
    // SAFETY: TIOCSCTTY on stdin, now the slave, with an integer argument.
    check_rc(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) })
        .map_err(|e| Error::sys("ioctl(TIOCSCTTY) (process.terminal)", e))?;
    Ok(())
}

fn bind_console(slave: &Path) -> Result<()> {
    let dst = Path::new("/dev/console");
    if std::fs::symlink_metadata(dst).is_err() {
        std::fs::File::create(dst)
            .map_err(|e| Error::sys("creating /dev/console (process.terminal)", e))?;
    }
    let to_c = |p: &Path| CString::new(p.to_string_lossy().as_bytes()).unwrap_or_default();
    let (src, dstc) = (to_c(slave), to_c(dst));
    // SAFETY: both are NUL-terminated paths; a bind mount needs no fstype or data.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            dstc.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    check_rc(r).map(|_| ()).map_err(|e| {
        Error::Init(format!(
            "bind-mounting {} onto /dev/console (process.terminal) failed: {}",
            slave.display(),
            errtext(&e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_and_socket_go_together() {
        assert!(check(false, None, "create").is_ok());
        assert!(check(true, Some(Path::new("/s")), "create").is_ok());
        let e = check(true, None, "create").unwrap_err().to_string();
        assert_eq!(
            e,
            "create: process.terminal is true but no --console-socket was given (ocirun hands \
             the pty master to the caller; give --console-socket PATH)"
        );
        let e = check(false, Some(Path::new("/s")), "exec")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "exec: --console-socket /s: process.terminal is false (set it or give --tty, or drop \
             the flag)"
        );
    }

    #[test]
    fn a_descriptor_crosses_a_socket_pair() {
        let (a, b) = UnixStream::pair().unwrap();
        let (a, b) = (OwnedFd::from(a), OwnedFd::from(b));
        let f = std::fs::File::open("/proc/self/status").unwrap();
        send_fd(&a, f.as_raw_fd(), "/dev/pts/7").unwrap();
        let (got, name) = recv_fd(b.as_raw_fd()).unwrap();
        assert_eq!(name, "/dev/pts/7");
        let ours = std::fs::metadata("/proc/self/status").unwrap();
        let theirs = std::fs::File::from(got).metadata().unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((ours.dev(), ours.ino()), (theirs.dev(), theirs.ino()));
    }
}
