//! virtio-vsock (`--vsock CID[,uds=PATH]`): stream sockets between the guest and the host, on
//! Firecracker's model. A guest connection to the host (CID 2) port P becomes a connection to
//! the Unix socket `PATH_P`; a host program connects to the listener at PATH, writes
//! `CONNECT P\n`, reads `OK <host port>\n` once the guest accepted, and the rest is the stream.
//! Queue 0 receives, 1 transmits, 2 carries events (none are sent: the device never resets
//! its transport under a running guest).
//!
//! Every packet starts with [`HDR_LEN`] bytes ([`Hdr`]). Flow control is the spec's credit:
//! each side says how much it can buffer (`buf_alloc`) and how much it has passed on
//! (`fwd_cnt`), and never sends more than the other has room for. The device gives each
//! connection [`BUF_ALLOC`] bytes: what the host socket does not take at once waits in the
//! connection, and a guest that sends past its credit gets the connection reset. Host sockets
//! are read only while the guest has credit for their bytes and the device is holding no
//! packet the guest has no buffer for yet.
//!
//! The device has many descriptors (the listener, every connection) but its transport watches
//! one: an epoll of its own, readable when any of them needs the device, with an eventfd in it
//! that says a control packet (a reply the transmit queue produced) waits for the receive
//! queue.

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, Ordering};

use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ids::VIRTIO_ID_VSOCK;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::chain::{read_from, total, write_to};
use super::{Buf, Device, Fault};

/// The receive queue.
pub const RX: usize = 0;
/// The transmit queue.
pub const TX: usize = 1;
/// The event queue.
pub const EVENT: usize = 2;
/// `struct virtio_vsock_hdr`, packed.
pub const HDR_LEN: usize = 44;
/// The host's address (VMADDR_CID_HOST).
pub const HOST_CID: u64 = 2;
/// VIRTIO_VSOCK_TYPE_STREAM, the only type offered (no SEQPACKET).
pub const TYPE_STREAM: u16 = 1;
/// The operations (VIRTIO_VSOCK_OP_*).
pub const OP_REQUEST: u16 = 1;
pub const OP_RESPONSE: u16 = 2;
pub const OP_RST: u16 = 3;
pub const OP_SHUTDOWN: u16 = 4;
pub const OP_RW: u16 = 5;
pub const OP_CREDIT_UPDATE: u16 = 6;
pub const OP_CREDIT_REQUEST: u16 = 7;
/// SHUTDOWN's flags: the sender will receive no more, send no more.
pub const SHUTDOWN_RCV: u32 = 1;
pub const SHUTDOWN_SEND: u32 = 2;
/// What the device buffers per connection for the host socket (its `buf_alloc`).
pub const BUF_ALLOC: u32 = 256 * 1024;
/// The largest payload the guest's driver sends in one packet (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE);
/// also how much of a host socket is read at once.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Connections at once; a host connection beyond is closed, a guest one reset.
pub const MAX_CONNS: usize = 1024;
/// The first port the device gives a host-initiated connection (the guest sees it as the
/// peer's port); Firecracker's are in the same upper range, away from the guest's own.
pub const FIRST_HOST_PORT: u32 = 1 << 30;
/// The longest `CONNECT <port>\n` line.
pub const MAX_LINE: usize = 32;

/// The epoll data of the listener and of the control eventfd; connections are numbered below.
const LISTENER: u64 = u64::MAX;
const KICK: u64 = u64::MAX - 1;

/// One `--vsock` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsockArg {
    /// The guest's context id (3 and up: 0-2 are reserved, `u32::MAX` is VMADDR_CID_ANY).
    pub cid: u32,
    /// The host side: the listener for host-initiated connections and the prefix of
    /// `PATH_PORT`; without it every guest connection to the host is reset.
    pub uds: Option<PathBuf>,
}

/// Parses `CID[,uds=PATH]`.
pub fn parse_vsock(s: &str) -> Result<VsockArg, String> {
    let usage = "CID[,uds=PATH], CID 3 to 4294967294";
    let mut parts = s.split(',');
    let first = parts.next().unwrap_or_default();
    let cid = first
        .parse::<u32>()
        .ok()
        .filter(|c| (3..u32::MAX).contains(c))
        .ok_or_else(|| format!("bad vsock context id '{first}' ({usage})"))?;
    let mut uds = None;
    for part in parts {
        match part.split_once('=') {
            Some(("uds", v)) if !v.is_empty() => {
                // sun_path holds 107 bytes and a NUL; PATH_PORT adds up to 11.
                if v.len() > 96 {
                    return Err(format!(
                        "uds path '{v}' is longer than 96 bytes (a Unix socket's path holds \
                         107, and PATH_PORT adds up to 11)"
                    ));
                }
                uds = Some(PathBuf::from(v));
            }
            _ => return Err(format!("unknown vsock option '{part}' in '{s}' ({usage})")),
        }
    }
    Ok(VsockArg { cid, uds })
}

/// A packet header (`struct virtio_vsock_hdr`, little-endian).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hdr {
    pub src_cid: u64,
    pub dst_cid: u64,
    pub src_port: u32,
    pub dst_port: u32,
    pub len: u32,
    pub kind: u16,
    pub op: u16,
    pub flags: u32,
    pub buf_alloc: u32,
    pub fwd_cnt: u32,
}

impl Hdr {
    /// Reads a header.
    pub fn parse(b: &[u8; HDR_LEN]) -> Hdr {
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default());
        let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap_or_default());
        Hdr {
            src_cid: u64_at(0),
            dst_cid: u64_at(8),
            src_port: u32_at(16),
            dst_port: u32_at(20),
            len: u32_at(24),
            kind: u16_at(28),
            op: u16_at(30),
            flags: u32_at(32),
            buf_alloc: u32_at(36),
            fwd_cnt: u32_at(40),
        }
    }

    /// The header's bytes.
    pub fn bytes(&self) -> [u8; HDR_LEN] {
        let mut b = [0u8; HDR_LEN];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.kind.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }
}

/// Parses `CONNECT <port>` (the line without its newline): the guest port.
pub fn parse_connect(line: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(line).ok()?;
    let port = s.strip_prefix("CONNECT ")?.trim_end_matches('\r');
    if port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    port.parse().ok()
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A host program connected to the listener; its `CONNECT` line is still coming.
    Line,
    /// The REQUEST went to the guest; its RESPONSE (or RST) is awaited.
    Requested,
    /// Data flows.
    Open,
}

/// One connection: a host socket and the guest's port.
struct Conn {
    sock: OwnedFd,
    state: State,
    /// The host side's port as the guest sees it, and the guest's.
    local_port: u32,
    peer_port: u32,
    line: Vec<u8>,
    /// The guest's buffer space and what it has passed on; bytes sent to it.
    peer_buf_alloc: u32,
    peer_fwd_cnt: u32,
    rx_cnt: u32,
    /// Bytes passed on to the host socket, and the count the guest was last told.
    fwd_cnt: u32,
    fwd_told: u32,
    /// Guest bytes the host socket has not taken yet.
    out: Vec<u8>,
    /// The host socket ended (read gave 0): SHUTDOWN went to the guest.
    host_eof: bool,
    /// The guest's SHUTDOWN flags so far.
    peer_shut: u32,
    /// The guest shut its sending side: the host socket's write side goes once `out` is empty.
    shut_host_write: bool,
    /// The epoll events registered (0: not registered).
    watching: u32,
    /// Listed in [`Vsock::readable`].
    queued: bool,
}

impl Conn {
    fn new(sock: OwnedFd, state: State, local_port: u32, peer_port: u32) -> Conn {
        Conn {
            sock,
            state,
            local_port,
            peer_port,
            line: Vec::new(),
            peer_buf_alloc: 0,
            peer_fwd_cnt: 0,
            rx_cnt: 0,
            fwd_cnt: 0,
            fwd_told: 0,
            out: Vec::new(),
            host_eof: false,
            peer_shut: 0,
            shut_host_write: false,
            watching: 0,
            queued: false,
        }
    }

    /// How many more bytes the guest has room for.
    fn credit(&self) -> u32 {
        let in_flight = self.rx_cnt.wrapping_sub(self.peer_fwd_cnt);
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    fn take_credit(&mut self, h: &Hdr) {
        self.peer_buf_alloc = h.buf_alloc;
        self.peer_fwd_cnt = h.fwd_cnt;
    }

    /// The events the connection needs watched now.
    fn wanted(&self) -> u32 {
        let mut ev = 0;
        match self.state {
            State::Line => ev |= libc::EPOLLIN as u32,
            State::Requested => {}
            State::Open => {
                if !self.host_eof
                    && !self.queued
                    && self.peer_shut & SHUTDOWN_RCV == 0
                    && self.credit() > 0
                {
                    ev |= libc::EPOLLIN as u32;
                }
                if !self.out.is_empty() {
                    ev |= libc::EPOLLOUT as u32;
                }
            }
        }
        ev
    }
}

/// A packet for the guest: a header and, for RW, bytes of connection `conn` that may go out
/// over several receive buffers.
#[derive(Debug)]
struct Packet {
    hdr: Hdr,
    conn: Option<u64>,
    data: Vec<u8>,
    off: usize,
}

/// What the device counts, for tests and the fuzz target.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Connections opened (either way).
    pub opened: u64,
    /// RST packets sent to the guest.
    pub resets: u64,
    /// Payload bytes to the guest, and from it to host sockets.
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// The PATH the listener is bound to, for the signal handler that removes it.
static LISTENER_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

/// The vsock device.
pub struct Vsock {
    cid: u64,
    uds: Option<PathBuf>,
    listener: Option<OwnedFd>,
    epoll: Epoll,
    kick: EventFd,
    conns: HashMap<u64, Conn>,
    /// (local port, guest port) to connection.
    ports: HashMap<(u32, u32), u64>,
    next_id: u64,
    next_port: u32,
    /// Control packets for the guest, first first.
    ctl: VecDeque<Hdr>,
    /// The packet the next receive buffer takes.
    pending: Option<Packet>,
    /// Open connections epoll found readable, to be read in turn.
    readable: VecDeque<u64>,
    /// Counters.
    pub counts: Counts,
}

fn setup_err(what: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A `sockaddr_un` for `path`.
fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: a zeroed sockaddr_un is a valid (empty) address.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= sa.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{}' cannot be a Unix socket's path", path.display()),
        ));
    }
    for (d, s) in sa.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((sa, len as libc::socklen_t))
}

fn unix_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the descriptor is owned from here.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new non-blocking Unix socket given `path`'s address through `call` (connect or bind).
fn socket_at(
    path: &Path,
    call: unsafe extern "C" fn(libc::c_int, *const libc::sockaddr, libc::socklen_t) -> libc::c_int,
) -> io::Result<OwnedFd> {
    let (sa, len) = sockaddr(path)?;
    let fd = unix_socket()?;
    // SAFETY: sa is a valid sockaddr_un of `len` bytes and fd a socket; `call` is connect(2)
    // or bind(2), which read the address only.
    let r = unsafe {
        call(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Connects to the Unix socket `path` without blocking: a listener whose backlog is full
/// refuses (EAGAIN) as one that is not there does.
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    socket_at(path, libc::connect)
}

/// Binds and listens at `path`. A socket already there that nobody listens on (a tinyvmm that
/// was killed) is replaced; one that answers, or a file that is not a socket, is an error.
fn listen(path: &Path) -> io::Result<OwnedFd> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket (remove it, or give another uds=PATH)",
            ));
        }
        match connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "a program listens on it already (another VM's? give another uds=PATH)",
                ))
            }
            Err(_) => std::fs::remove_file(path).map_err(setup_err("removing the stale socket"))?,
        }
    }
    let fd = socket_at(path, libc::bind).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::NotFound => " (does its directory exist?)",
            io::ErrorKind::PermissionDenied => " (can this user write its directory?)",
            _ => "",
        };
        let text = conventions::output::without_os_error(&e.to_string()).to_string();
        io::Error::new(e.kind(), format!("bind: {text}{hint}"))
    })?;
    // SAFETY: listen(2) on the bound socket.
    if unsafe { libc::listen(fd.as_raw_fd(), 128) } < 0 {
        let e = io::Error::last_os_error();
        let _ = std::fs::remove_file(path);
        return Err(setup_err("listen")(e));
    }
    Ok(fd)
}

/// Removes the listener's socket when SIGTERM, SIGINT or SIGHUP ends tinyvmm, then lets the
/// signal end it as it would have (the handler is reset before it runs).
extern "C" fn remove_on_signal(sig: libc::c_int) {
    let p = LISTENER_PATH.load(Ordering::SeqCst);
    // SAFETY: p is null or the leaked NUL-terminated path; unlink and raise are
    // async-signal-safe. The signal stays blocked until the handler returns, then the default
    // action (SA_RESETHAND put it back) ends the process.
    unsafe {
        if !p.is_null() {
            libc::unlink(p);
        }
        libc::raise(sig);
    }
}

fn remove_listener_on_signals(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    // Leaked on purpose: the handler may read it until the process ends.
    let old = LISTENER_PATH.swap(c.into_raw(), Ordering::SeqCst);
    if !old.is_null() {
        // SAFETY: old came from CString::into_raw above, in an earlier call.
        drop(unsafe { CString::from_raw(old) });
    }
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with a handler that only unlinks and re-raises.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = remove_on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESETHAND;
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if r < 0 {
            return Err(setup_err("sigaction")(io::Error::last_os_error()));
        }
    }
    Ok(())
}

impl Vsock {
    /// A device for guest `cid`; with `uds`, listening at it.
    pub fn new(cid: u32, uds: Option<&Path>) -> io::Result<Vsock> {
        let epoll = Epoll::new().map_err(setup_err("epoll_create"))?;
        let kick =
            EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(setup_err("eventfd"))?;
        epoll
            .ctl(
                ControlOperation::Add,
                kick.as_raw_fd(),
                EpollEvent::new(EventSet::IN, KICK),
            )
            .map_err(setup_err("epoll_ctl"))?;
        let listener = match uds {
            Some(p) => {
                let l = listen(p)?;
                epoll
                    .ctl(
                        ControlOperation::Add,
                        l.as_raw_fd(),
                        EpollEvent::new(EventSet::IN, LISTENER),
                    )
                    .map_err(setup_err("epoll_ctl"))?;
                Some(l)
            }
            None => None,
        };
        Ok(Vsock {
            cid: u64::from(cid),
            uds: uds.map(Path::to_path_buf),
            listener,
            epoll,
            kick,
            conns: HashMap::new(),
            ports: HashMap::new(),
            next_id: 0,
            next_port: FIRST_HOST_PORT,
            ctl: VecDeque::new(),
            pending: None,
            readable: VecDeque::new(),
            counts: Counts::default(),
        })
    }

    /// How many connections there are (tests).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// A header from the host side of `c` to the guest.
    fn hdr(&self, c: &Conn, op: u16, flags: u32) -> Hdr {
        Hdr {
            src_cid: HOST_CID,
            dst_cid: self.cid,
            src_port: c.local_port,
            dst_port: c.peer_port,
            len: 0,
            kind: TYPE_STREAM,
            op,
            flags,
            buf_alloc: BUF_ALLOC,
            fwd_cnt: c.fwd_cnt,
        }
    }

    fn push_ctl(&mut self, h: Hdr) {
        if h.op == OP_RST {
            self.counts.resets += 1;
        }
        self.ctl.push_back(h);
        // Wakes the transport's watch, so that the receive queue is served.
        let _ = self.kick.write(1);
    }

    /// A reset for a guest packet `h` that belongs to no connection.
    fn reset_reply(&mut self, h: &Hdr) {
        if h.op == OP_RST {
            return;
        }
        self.push_ctl(Hdr {
            src_cid: h.dst_cid,
            dst_cid: h.src_cid,
            src_port: h.dst_port,
            dst_port: h.src_port,
            kind: h.kind,
            op: OP_RST,
            ..Hdr::default()
        });
    }

    /// Drops connection `id` (its host socket closes); with `rst`, the guest is told.
    fn close(&mut self, id: u64, rst: bool) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        self.ports.remove(&(c.local_port, c.peer_port));
        if matches!(&self.pending, Some(p) if p.conn == Some(id)) {
            self.pending = None;
        }
        if c.watching != 0 {
            let _ = self.epoll.ctl(
                ControlOperation::Delete,
                c.sock.as_raw_fd(),
                EpollEvent::default(),
            );
        }
        if rst && c.state != State::Line {
            let h = self.hdr(&c, OP_RST, 0);
            self.push_ctl(h);
        }
    }

    /// Registers what connection `id` needs watched now.
    fn rewatch(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let want = c.wanted();
        if want == c.watching {
            return;
        }
        let fd = c.sock.as_raw_fd();
        let r = if want == 0 {
            // Removed rather than left with no events: a hung-up socket would still report
            // EPOLLHUP and wake the device for nothing.
            self.epoll
                .ctl(ControlOperation::Delete, fd, EpollEvent::default())
        } else {
            let op = if c.watching == 0 {
                ControlOperation::Add
            } else {
                ControlOperation::Modify
            };
            let ev = EventSet::from_bits_truncate(want);
            self.epoll.ctl(op, fd, EpollEvent::new(ev, id))
        };
        match r {
            Ok(()) => c.watching = want,
            // Not reached (the descriptor is open); the connection is unusable then.
            Err(_) => self.close(id, true),
        }
    }

    fn add(&mut self, c: Conn) -> Option<u64> {
        if self.conns.len() >= MAX_CONNS {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.ports.insert((c.local_port, c.peer_port), id);
        self.conns.insert(id, c);
        self.counts.opened += 1;
        self.rewatch(id);
        Some(id)
    }

    /// A free host-side port for a host-initiated connection.
    fn host_port(&mut self) -> u32 {
        loop {
            let p = self.next_port;
            self.next_port = self.next_port.checked_add(1).unwrap_or(FIRST_HOST_PORT);
            if !self.ports.keys().any(|&(l, _)| l == p) {
                return p;
            }
        }
    }

    /// Takes what the listener, the host sockets and the control eventfd have.
    fn poll(&mut self) {
        let mut events = [EpollEvent::default(); 32];
        let n = match self.epoll.wait(0, &mut events) {
            Ok(n) => n,
            Err(_) => return,
        };
        for ev in &events[..n] {
            match ev.data() {
                KICK => {
                    let _ = self.kick.read();
                }
                LISTENER => self.accept(),
                id => self.host_event(id, ev.events()),
            }
        }
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        let lfd = l.as_raw_fd();
        loop {
            // SAFETY: accept4 on the listening socket, no address wanted.
            let fd = unsafe {
                libc::accept4(
                    lfd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                return;
            }
            // SAFETY: fd is a new descriptor nothing else owns.
            let sock = unsafe { OwnedFd::from_raw_fd(fd) };
            // No guest port yet: keyed by a port that no guest connection has.
            let local = self.host_port();
            // Closed (the host program sees EOF) when there are too many.
            let _ = self.add(Conn::new(sock, State::Line, local, u32::MAX));
        }
    }

    fn host_event(&mut self, id: u64, events: u32) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let hup = events & (libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
        match c.state {
            State::Line => self.read_line(id),
            State::Requested => {}
            State::Open => {
                if events & libc::EPOLLOUT as u32 != 0 || (hup && !c.out.is_empty()) {
                    self.flush(id);
                }
                if let Some(c) = self.conns.get_mut(&id) {
                    if (events & libc::EPOLLIN as u32 != 0 || hup) && !c.queued && !c.host_eof {
                        c.queued = true;
                        self.readable.push_back(id);
                    }
                }
            }
        }
        self.rewatch(id);
    }

    /// Reads a host connection's `CONNECT` line byte by byte (what follows it is the stream's
    /// and stays in the socket); a complete line sends the guest a REQUEST.
    fn read_line(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let complete = loop {
            let mut b = [0u8; 1];
            match read_fd(c.sock.as_raw_fd(), &mut b) {
                Ok(1) if b[0] == b'\n' => break true,
                Ok(1) if c.line.len() < MAX_LINE => c.line.push(b[0]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EOF, an error, a line too long: the host program is closed on.
                _ => break false,
            }
        };
        let key = parse_connect(&c.line).map(|port| (c.local_port, port));
        let key = match key {
            Some(k) if complete && !self.ports.contains_key(&k) => k,
            _ => return self.close(id, false),
        };
        let old = (c.local_port, c.peer_port);
        c.peer_port = key.1;
        c.state = State::Requested;
        self.ports.remove(&old);
        self.ports.insert(key, id);
        let h = self.hdr(&self.conns[&id], OP_REQUEST, 0);
        self.push_ctl(h);
    }

    /// Writes what waits for connection `id`'s host socket; a socket that refuses is reset.
    fn flush(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut done = 0;
        let mut failed = false;
        while done < c.out.len() {
            match write_fd(c.sock.as_raw_fd(), &c.out[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        c.out.drain(..done);
        c.fwd_cnt = c.fwd_cnt.wrapping_add(done as u32);
        self.counts.tx_bytes += done as u64;
        if failed {
            return self.close(id, true);
        }
        self.after_flush(id);
    }

    /// Once the host socket took everything: the shutdown the guest asked for, and a credit
    /// update when the guest's view of the room is half a buffer behind.
    fn after_flush(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.out.is_empty() {
            if c.peer_shut & (SHUTDOWN_RCV | SHUTDOWN_SEND) == SHUTDOWN_RCV | SHUTDOWN_SEND {
                return self.close(id, true);
            }
            if c.shut_host_write {
                c.shut_host_write = false;
                // SAFETY: shutdown(2) on the connection's socket.
                unsafe { libc::shutdown(c.sock.as_raw_fd(), libc::SHUT_WR) };
            }
        }
        if c.fwd_cnt.wrapping_sub(c.fwd_told) >= BUF_ALLOC / 2 {
            c.fwd_told = c.fwd_cnt;
            let h = self.hdr(&self.conns[&id], OP_CREDIT_UPDATE, 0);
            self.push_ctl(h);
        }
        self.rewatch(id);
    }

    /// The next packet for the guest: a control packet first, else bytes of a readable host
    /// socket the guest has credit for.
    fn next_packet(&mut self) -> Option<Packet> {
        if let Some(hdr) = self.ctl.pop_front() {
            return Some(Packet {
                hdr,
                conn: None,
                data: Vec::new(),
                off: 0,
            });
        }
        while let Some(id) = self.readable.pop_front() {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            c.queued = false;
            let room = (c.credit() as usize).min(MAX_PAYLOAD);
            if c.state != State::Open || room == 0 || c.host_eof {
                self.rewatch(id);
                continue;
            }
            let mut data = vec![0u8; room];
            match read_fd(c.sock.as_raw_fd(), &mut data) {
                Ok(0) => {
                    // The host program sends no more; the guest reads to the end, then closes.
                    c.host_eof = true;
                    let h = self.hdr(&self.conns[&id], OP_SHUTDOWN, SHUTDOWN_SEND);
                    self.rewatch(id);
                    return Some(Packet {
                        hdr: h,
                        conn: None,
                        data: Vec::new(),
                        off: 0,
                    });
                }
                Ok(n) => {
                    data.truncate(n);
                    let h = self.hdr(&self.conns[&id], OP_RW, 0);
                    self.rewatch(id);
                    return Some(Packet {
                        hdr: h,
                        conn: Some(id),
                        data,
                        off: 0,
                    });
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    self.rewatch(id);
                }
                Err(_) => {
                    self.close(id, true);
                    if let Some(hdr) = self.ctl.pop_front() {
                        return Some(Packet {
                            hdr,
                            conn: None,
                            data: Vec::new(),
                            off: 0,
                        });
                    }
                }
            }
        }
        None
    }

    fn receive(&mut self, mem: &GuestMemoryMmap, bufs: &[Buf]) -> Result<u32, Fault> {
        if bufs.iter().any(|b| !b.write) {
            return Err(Fault::Layout("a receive buffer the device cannot write"));
        }
        let room = total(bufs);
        if room < HDR_LEN as u64 {
            return Err(Fault::Layout(
                "a receive buffer shorter than a vsock header",
            ));
        }
        let Some(p) = self.pending.as_mut() else {
            // Not reached: the transport asks `ready` first.
            return Ok(0);
        };
        let n = (p.data.len() - p.off).min((room - HDR_LEN as u64) as usize);
        let mut hdr = p.hdr;
        hdr.len = n as u32;
        if let Some(c) = p.conn.and_then(|id| self.conns.get_mut(&id)) {
            hdr.fwd_cnt = c.fwd_cnt;
            c.fwd_told = c.fwd_cnt;
            c.rx_cnt = c.rx_cnt.wrapping_add(n as u32);
        }
        let mut bytes = Vec::with_capacity(HDR_LEN + n);
        bytes.extend_from_slice(&hdr.bytes());
        bytes.extend_from_slice(&p.data[p.off..p.off + n]);
        p.off += n;
        if p.off >= p.data.len() {
            self.pending = None;
        }
        self.counts.rx_bytes += n as u64;
        write_to(mem, bufs, &bytes)
    }

    fn transmit(&mut self, mem: &GuestMemoryMmap, bufs: &[Buf]) -> Result<u32, Fault> {
        if bufs.iter().any(|b| b.write) {
            return Err(Fault::Layout("a transmit buffer the device would write"));
        }
        let len = total(bufs);
        if len < HDR_LEN as u64 {
            return Err(Fault::Layout("a vsock packet shorter than its header"));
        }
        let mut raw = [0u8; HDR_LEN];
        read_from(mem, bufs, 0, &mut raw)?;
        let h = Hdr::parse(&raw);
        if u64::from(h.len) > len - HDR_LEN as u64 {
            return Err(Fault::Layout("a vsock packet longer than its buffers"));
        }
        if h.len as usize > MAX_PAYLOAD {
            return Err(Fault::Layout("a vsock packet longer than 64 KiB"));
        }
        let mut data = vec![0u8; h.len as usize];
        read_from(mem, bufs, HDR_LEN as u64, &mut data)?;
        self.packet(&h, &data);
        Ok(0)
    }

    /// What the guest sent, its header checked.
    pub fn packet(&mut self, h: &Hdr, data: &[u8]) {
        if h.src_cid != self.cid || h.dst_cid != HOST_CID || h.kind != TYPE_STREAM {
            return self.reset_reply(h);
        }
        let id = self.ports.get(&(h.dst_port, h.src_port)).copied();
        match (h.op, id) {
            (OP_REQUEST, None) => self.guest_connect(h),
            (OP_RST, Some(id)) => self.close(id, false),
            (_, None) => self.reset_reply(h),
            (op, Some(id)) => self.on_conn(id, op, h, data),
        }
    }

    /// A guest connection to the host's port `dst_port`: to `PATH_PORT`, or reset.
    fn guest_connect(&mut self, h: &Hdr) {
        let sock = match &self.uds {
            Some(p) => {
                let mut path = p.clone().into_os_string();
                path.push(format!("_{}", h.dst_port));
                connect(Path::new(&path)).ok()
            }
            None => None,
        };
        let Some(sock) = sock else {
            return self.reset_reply(h);
        };
        let mut c = Conn::new(sock, State::Open, h.dst_port, h.src_port);
        c.take_credit(h);
        let reply = self.hdr(&c, OP_RESPONSE, 0);
        match self.add(c) {
            Some(_) => self.push_ctl(reply),
            None => self.reset_reply(h),
        }
    }

    fn on_conn(&mut self, id: u64, op: u16, h: &Hdr, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.take_credit(h);
        match (op, c.state) {
            (OP_RESPONSE, State::Requested) => {
                c.state = State::Open;
                let ok = format!("OK {}\n", c.local_port);
                // A fresh socket takes a short line whole; one that does not is reset.
                match write_fd(c.sock.as_raw_fd(), ok.as_bytes()) {
                    Ok(n) if n == ok.len() => {}
                    _ => return self.close(id, true),
                }
            }
            (OP_RW, State::Open) => {
                if c.peer_shut & SHUTDOWN_SEND != 0 {
                    return self.close(id, true);
                }
                // The guest may not send past the room it was given.
                let in_use = c.out.len() + data.len();
                if in_use > BUF_ALLOC as usize {
                    return self.close(id, true);
                }
                c.out.extend_from_slice(data);
                return self.flush(id);
            }
            (OP_SHUTDOWN, State::Open) => {
                c.peer_shut |= h.flags & (SHUTDOWN_RCV | SHUTDOWN_SEND);
                if h.flags & SHUTDOWN_SEND != 0 {
                    c.shut_host_write = true;
                }
                return self.after_flush(id);
            }
            (OP_CREDIT_UPDATE, State::Open) => {}
            (OP_CREDIT_REQUEST, State::Open) => {
                c.fwd_told = c.fwd_cnt;
                let reply = self.hdr(&self.conns[&id], OP_CREDIT_UPDATE, 0);
                self.push_ctl(reply);
            }
            // A REQUEST for a connection there is, a RESPONSE out of turn, an unknown
            // operation: the connection is reset.
            _ => return self.close(id, true),
        }
        self.rewatch(id);
    }

    /// Drops every connection, and whatever waited for the guest.
    fn drop_all(&mut self) {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id, false);
        }
        self.ctl.clear();
        self.pending = None;
        self.readable.clear();
        let _ = self.kick.read();
    }
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: read writes at most buf.len() bytes into the valid slice.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

fn write_fd(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: send reads buf.len() bytes from the valid slice; MSG_NOSIGNAL makes a closed
    // peer an EPIPE, not a SIGPIPE.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// The configuration space: the guest's CID (le64).
pub fn config(cid: u32) -> Vec<u8> {
    u64::from(cid).to_le_bytes().to_vec()
}

impl Device for Vsock {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_VSOCK
    }

    fn features(&self) -> u64 {
        1 << VIRTIO_F_VERSION_1
    }

    fn queues(&self) -> usize {
        3
    }

    fn config(&self) -> Vec<u8> {
        self.cid.to_le_bytes().to_vec()
    }

    fn ready(&mut self, queue: usize) -> bool {
        match queue {
            TX => true,
            RX => {
                if self.pending.is_none() {
                    self.poll();
                    self.pending = self.next_packet();
                }
                self.pending.is_some()
            }
            // No event is ever sent: the buffers stay the guest's.
            _ => false,
        }
    }

    fn serve(&mut self, queue: usize, mem: &GuestMemoryMmap, bufs: &[Buf]) -> Result<u32, Fault> {
        match queue {
            RX => self.receive(mem, bufs),
            _ => self.transmit(mem, bufs),
        }
    }

    fn input(&self) -> Option<(RawFd, usize)> {
        Some((self.epoll.as_raw_fd(), RX))
    }

    fn wants_input(&self) -> bool {
        self.pending.is_none()
    }

    fn discard_input(&mut self) {
        // No driver: host programs that connect are closed on, as a guest that does not
        // listen would reset them.
        self.drop_all();
        self.accept();
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id, false);
        }
    }

    fn reset(&mut self) {
        self.drop_all();
    }
}

impl Drop for Vsock {
    fn drop(&mut self) {
        if let (Some(p), Some(_)) = (&self.uds, &self.listener) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Makes the device of `arg`: binds its listener (and has SIGTERM, SIGINT and SIGHUP remove
/// it as they end tinyvmm).
pub fn open(arg: &VsockArg) -> io::Result<Vsock> {
    let v = Vsock::new(arg.cid, arg.uds.as_deref())?;
    if let Some(p) = &arg.uds {
        remove_listener_on_signals(p)?;
    }
    Ok(v)
}
