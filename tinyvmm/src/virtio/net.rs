//! virtio-net (`--net tap=NAME[,mac=MAC]`): the guest's Ethernet frames go to a tap device on
//! the host and the tap's frames to the guest, so a guest joins whatever the tap is wired to (an
//! address on the host, a bridge, a namespace). Queue 0 receives, queue 1 transmits; the tap
//! is read only while the guest has given receive buffers, and a frame that came first waits in
//! the device for one. Features: VERSION_1, MAC, STATUS (the link always up), and the checksum
//! and TCP segmentation offloads both ways (CSUM, HOST_TSO4/6; GUEST_CSUM, GUEST_TSO4/6). The
//! tap speaks the same `virtio_net_hdr_v1`, so the offloads cost the device nothing but checks:
//! a header goes through as it came, once its flags and GSO type are ones the driver accepted
//! (receive: the tap is told with TUNSETOFFLOAD what the guest takes) or the device offered
//! (transmit); no ECN or UDP segmentation, which are not offered. Without the guest's offloads
//! a received header is zeros but `num_buffers` = 1.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ids::VIRTIO_ID_NET;
use virtio_bindings::virtio_net::{
    VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
    VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS,
    VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_NONE,
    VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_S_LINK_UP,
};
use vm_memory::GuestMemoryMmap;

use super::chain::{read_from, total, write_to};
use super::{Buf, Device, Fault};

/// The header before every frame (virtio_net_hdr_v1, which VERSION_1 makes the only layout).
pub const HDR_LEN: usize = 12;
/// The receive queue.
pub const RX: usize = 0;
/// The transmit queue.
pub const TX: usize = 1;
/// The largest frame either way, header excluded: without offloads no frame is longer than the
/// link's MTU and its Ethernet header; this leaves room for a 64 KiB MTU.
pub const MAX_FRAME: usize = 65_550;
/// The configuration space: `mac`, `status`, `max_virtqueue_pairs` (read only with MQ, which is
/// not offered; 1 for a reader that looks anyway).
pub const CONFIG_LEN: usize = 10;

/// One `--net` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetArg {
    /// The tap on the host, opened (or created) by name.
    pub tap: String,
    /// The guest's MAC address; `None`: a random locally administered one.
    pub mac: Option<[u8; 6]>,
}

/// Parses `tap=NAME[,mac=AA:BB:CC:DD:EE:FF]` (names and addresses checked as netwire checks
/// them).
pub fn parse_net(s: &str) -> Result<NetArg, String> {
    let usage = "tap=NAME[,mac=AA:BB:CC:DD:EE:FF]";
    let mut tap = None;
    let mut mac = None;
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("tap", v)) => tap = Some(netwire::parse::ifname(v)?),
            Some(("mac", v)) => mac = Some(netwire::parse::mac(v)?.0),
            _ => return Err(format!("unknown net option '{part}' in '{s}' ({usage})")),
        }
    }
    let tap = tap.ok_or_else(|| format!("no tap in '{s}' ({usage})"))?;
    Ok(NetArg { tap, mac })
}

/// A random unicast, locally administered MAC (first byte 0x02 mod 4), so that VMs on one
/// bridge do not collide without saying.
pub fn random_mac() -> [u8; 6] {
    let mut m = [0u8; 6];
    super::rng::fill(&mut m);
    m[0] = (m[0] & 0xfc) | 0x02;
    m
}

/// Where frames go and come from: a tap, or queues in memory in tests and the fuzz target.
pub trait Tap: Send {
    /// One frame with its header into `buf`: its length, or `WouldBlock` when there is none.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Sends one frame with its header.
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;
    /// The descriptor that becomes readable when a frame waits, if there is one to watch.
    fn fd(&self) -> Option<RawFd> {
        None
    }
    /// Tells the tap which offloads its frames to the guest may use (TUN_F_* bits).
    fn set_offload(&mut self, _tun_flags: u32) -> io::Result<()> {
        Ok(())
    }
}

/// A tap opened by [`netwire::tap::open`]: non-blocking, with virtio-net headers.
#[derive(Debug)]
pub struct TapFd(pub OwnedFd);

impl Tap for TapFd {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: read writes at most buf.len() bytes into the valid slice.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: write reads frame.len() bytes from the valid slice.
        let n = unsafe { libc::write(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn fd(&self) -> Option<RawFd> {
        Some(self.0.as_raw_fd())
    }

    fn set_offload(&mut self, tun_flags: u32) -> io::Result<()> {
        netwire::tap::set_offload(&self.0, tun_flags)
    }
}

/// Frames in memory: `rx` waits to be received by the guest, `tx` is what it sent (headers
/// included).
#[derive(Debug, Default)]
pub struct MemTap {
    /// Frames for the guest, each with its header, first first.
    pub rx: std::collections::VecDeque<Vec<u8>>,
    /// Frames the guest sent, each with the header the device wrote.
    pub tx: Vec<Vec<u8>>,
    /// The last TUNSETOFFLOAD flags.
    pub offload: u32,
}

impl Tap for MemTap {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let f = self.rx.pop_front().ok_or(io::ErrorKind::WouldBlock)?;
        // A read(2) of a tap truncates a frame longer than the buffer; so does this.
        let n = f.len().min(buf.len());
        buf[..n].copy_from_slice(&f[..n]);
        Ok(n)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.tx.push(frame.to_vec());
        Ok(())
    }

    fn set_offload(&mut self, tun_flags: u32) -> io::Result<()> {
        self.offload = tun_flags;
        Ok(())
    }
}

/// What the device counts, for tests and the fuzz target.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Frames handed to the guest.
    pub rx: u64,
    /// Frames sent to the tap.
    pub tx: u64,
    /// Frames dropped: too long for the guest's buffer, malformed from the tap, arriving while
    /// the driver was not running, or refused by the tap.
    pub dropped: u64,
}

/// The network device over a [`Tap`].
pub struct Net<T> {
    tap: T,
    mac: [u8; 6],
    /// A frame read from the tap (header included) that no receive buffer has taken yet: its
    /// length in `buf`.
    pending: Option<usize>,
    /// Where frames are read from the tap, kept so that a frame costs no allocation.
    buf: Vec<u8>,
    /// The features the driver accepted.
    acked: u64,
    /// The tap failed other than "nothing to read" (deleted under the VM: its descriptor then
    /// polls as an error for ever), so it is no longer watched.
    gone: bool,
    /// Counters.
    pub counts: Counts,
}

impl<T: Tap> Net<T> {
    /// A device with the guest MAC `mac`.
    pub fn new(tap: T, mac: [u8; 6]) -> Net<T> {
        Net {
            tap,
            mac,
            pending: None,
            buf: vec![0u8; HDR_LEN + MAX_FRAME],
            acked: 0,
            gone: false,
            counts: Counts::default(),
        }
    }

    /// The tap (tests look at what was sent).
    pub fn tap(&self) -> &T {
        &self.tap
    }

    /// Reads the next frame from the tap into `pending`, dropping what no guest can take (a
    /// read shorter than a header, a header asking for offloads that were never set).
    fn fill(&mut self) {
        while self.pending.is_none() {
            match self.tap.recv(&mut self.buf) {
                Ok(n) => match rx_frame(&mut self.buf[..n], self.acked) {
                    Some(()) => self.pending = Some(n),
                    None => self.counts.dropped += 1,
                },
                Err(e) => {
                    self.note(&e);
                    return;
                }
            }
        }
    }

    /// Takes a read error: nothing more to read, or (anything but WouldBlock and EINTR) a tap
    /// that will give nothing again.
    fn note(&mut self, e: &io::Error) {
        if !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ) {
            self.gone = true;
        }
    }

    fn receive(&mut self, mem: &GuestMemoryMmap, bufs: &[Buf]) -> Result<u32, Fault> {
        if bufs.iter().any(|b| !b.write) {
            return Err(Fault::Layout("a receive buffer the device cannot write"));
        }
        let Some(len) = self.pending.take() else {
            // Not reached: the transport asks `ready` first.
            return Ok(0);
        };
        let frame = &self.buf[..len];
        if total(bufs) < frame.len() as u64 {
            // The spec's driver gives buffers for the largest frame (1526 bytes for an MTU of
            // 1500); a frame larger than this one's buffer is dropped, the buffer used empty.
            self.counts.dropped += 1;
            return Ok(0);
        }
        write_to(mem, bufs, frame)?;
        self.counts.rx += 1;
        Ok(frame.len() as u32)
    }

    fn transmit(&mut self, mem: &GuestMemoryMmap, bufs: &[Buf]) -> Result<u32, Fault> {
        if bufs.iter().any(|b| b.write) {
            return Err(Fault::Layout("a transmit buffer the device would write"));
        }
        let len = total(bufs);
        if len < HDR_LEN as u64 {
            return Err(Fault::Layout("a transmit request shorter than its header"));
        }
        if len > (HDR_LEN + MAX_FRAME) as u64 {
            return Err(Fault::Layout("a transmitted frame longer than 65550 bytes"));
        }
        let mut frame = vec![0u8; len as usize];
        read_from(mem, bufs, 0, &mut frame)?;
        tx_header(&frame[..HDR_LEN], self.acked)?;
        // The tap takes the header as it is (its checksum and segmentation requests checked
        // above), but for num_buffers, which means nothing on transmit.
        frame[10..HDR_LEN].fill(0);
        match self.tap.send(&frame) {
            Ok(()) => self.counts.tx += 1,
            // A tap that is down or gone drops the frame, as a cable that is out.
            Err(_) => self.counts.dropped += 1,
        }
        Ok(0)
    }
}

/// The offloads offered (all but VERSION_1, MAC and STATUS in [`Net`]'s features).
pub const OFFLOADS: u64 = 1 << VIRTIO_NET_F_CSUM
    | 1 << VIRTIO_NET_F_GUEST_CSUM
    | 1 << VIRTIO_NET_F_GUEST_TSO4
    | 1 << VIRTIO_NET_F_GUEST_TSO6
    | 1 << VIRTIO_NET_F_HOST_TSO4
    | 1 << VIRTIO_NET_F_HOST_TSO6;

/// TUNSETOFFLOAD's bits (linux/if_tun.h).
pub const TUN_F_CSUM: u32 = 0x01;
pub const TUN_F_TSO4: u32 = 0x02;
pub const TUN_F_TSO6: u32 = 0x04;

fn has(features: u64, bit: u32) -> bool {
    features & (1 << bit) != 0
}

/// What the tap may hand the guest, for the features the driver accepted: segmentation only
/// with the checksum offload, which the kernel demands (and the spec, of GUEST_TSO4/6).
pub fn tun_offload(acked: u64) -> u32 {
    if !has(acked, VIRTIO_NET_F_GUEST_CSUM) {
        return 0;
    }
    let mut f = TUN_F_CSUM;
    if has(acked, VIRTIO_NET_F_GUEST_TSO4) {
        f |= TUN_F_TSO4;
    }
    if has(acked, VIRTIO_NET_F_GUEST_TSO6) {
        f |= TUN_F_TSO6;
    }
    f
}

/// Whether a header's flags and GSO type ask only for what `csum`, `tso4` and `tso6` allow
/// (DATA_VALID, "checksum checked", only on receive, `rx`).
fn header_allowed(h: &[u8], rx: bool, csum: bool, tso4: bool, tso6: bool) -> bool {
    let mut flags = 0;
    if csum {
        flags |= VIRTIO_NET_HDR_F_NEEDS_CSUM as u8;
        if rx {
            flags |= VIRTIO_NET_HDR_F_DATA_VALID as u8;
        }
    }
    let gso = u32::from(h[1]);
    let gso_ok = gso == VIRTIO_NET_HDR_GSO_NONE
        || (gso == VIRTIO_NET_HDR_GSO_TCPV4 && tso4)
        || (gso == VIRTIO_NET_HDR_GSO_TCPV6 && tso6);
    h[0] & !flags == 0 && gso_ok
}

/// Makes what a read of the tap gave (header first) the frame for the guest, or says to drop
/// it (`None`): shorter than a header and an Ethernet header, or with flags or a GSO type the
/// driver did not accept (which the tap, told by TUNSETOFFLOAD, never sets). Without
/// GUEST_CSUM the header becomes zeros (even the tap's DATA_VALID is the guest's only by
/// that feature); `num_buffers` becomes 1, which a VERSION_1 device must set.
pub fn rx_frame(read: &mut [u8], acked: u64) -> Option<()> {
    if read.len() < HDR_LEN + 14 {
        return None;
    }
    let csum = has(acked, VIRTIO_NET_F_GUEST_CSUM);
    let tso4 = csum && has(acked, VIRTIO_NET_F_GUEST_TSO4);
    let tso6 = csum && has(acked, VIRTIO_NET_F_GUEST_TSO6);
    // The tap's DATA_VALID asks nothing of a guest: without the feature it is cleared, not
    // a reason to drop.
    let mut h = [0u8; 2];
    h.copy_from_slice(&read[..2]);
    if !csum {
        h[0] &= !(VIRTIO_NET_HDR_F_DATA_VALID as u8);
    }
    if !header_allowed(&h, true, csum, tso4, tso6) {
        return None;
    }
    if !csum {
        read[..HDR_LEN].fill(0);
    }
    read[10..12].copy_from_slice(&1u16.to_le_bytes());
    Some(())
}

/// Checks a transmit header against the features the driver accepted: checksum requests
/// only with CSUM, TCP segmentation only with HOST_TSO4/6 (and CSUM, as the spec requires).
pub fn tx_header(h: &[u8], acked: u64) -> Result<(), Fault> {
    if h.len() < HDR_LEN {
        return Err(Fault::Layout("a transmit request shorter than its header"));
    }
    let csum = has(acked, VIRTIO_NET_F_CSUM);
    let tso4 = csum && has(acked, VIRTIO_NET_F_HOST_TSO4);
    let tso6 = csum && has(acked, VIRTIO_NET_F_HOST_TSO6);
    if !header_allowed(&[h[0], 0], false, csum, false, false) {
        return Err(Fault::Layout(if csum {
            "a transmit header with flags other than NEEDS_CSUM"
        } else {
            "a transmit header with flags (checksum offload was not negotiated)"
        }));
    }
    if !header_allowed(&[0, h[1]], false, csum, tso4, tso6) {
        return Err(Fault::Layout(
            "a transmit header with a GSO type that was not negotiated",
        ));
    }
    Ok(())
}

/// The configuration space for `mac`: the address, the link up, one queue pair.
pub fn config(mac: [u8; 6]) -> Vec<u8> {
    let mut c = Vec::with_capacity(CONFIG_LEN);
    c.extend_from_slice(&mac);
    c.extend_from_slice(&(VIRTIO_NET_S_LINK_UP as u16).to_le_bytes());
    c.extend_from_slice(&1u16.to_le_bytes());
    c
}

impl<T: Tap> Device for Net<T> {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_NET
    }

    fn features(&self) -> u64 {
        1 << VIRTIO_F_VERSION_1 | 1 << VIRTIO_NET_F_MAC | 1 << VIRTIO_NET_F_STATUS | OFFLOADS
    }

    fn negotiated(&mut self, acked: u64) {
        self.acked = acked;
        // A tap that refuses leaves the guest's offloads off: the tap then hands over only
        // whole, checksummed frames, which a guest with GUEST_CSUM takes as well.
        if self.tap.set_offload(tun_offload(acked)).is_err() {
            self.acked &= !(1 << VIRTIO_NET_F_GUEST_TSO4 | 1 << VIRTIO_NET_F_GUEST_TSO6);
        }
    }

    fn queues(&self) -> usize {
        2
    }

    fn config(&self) -> Vec<u8> {
        config(self.mac)
    }

    fn ready(&mut self, queue: usize) -> bool {
        if queue != RX {
            return true;
        }
        self.fill();
        self.pending.is_some()
    }

    fn serve(&mut self, queue: usize, mem: &GuestMemoryMmap, bufs: &[Buf]) -> Result<u32, Fault> {
        match queue {
            RX => self.receive(mem, bufs),
            _ => self.transmit(mem, bufs),
        }
    }

    fn input(&self) -> Option<(RawFd, usize)> {
        self.tap.fd().map(|fd| (fd, RX))
    }

    fn wants_input(&self) -> bool {
        self.pending.is_none() && !self.gone
    }

    fn discard_input(&mut self) {
        if self.pending.take().is_some() {
            self.counts.dropped += 1;
        }
        // Bounded: a tap that never runs dry (a flood) is read again on the next wake-up.
        for _ in 0..super::mmio::BATCH {
            match self.tap.recv(&mut self.buf) {
                Ok(_) => self.counts.dropped += 1,
                Err(e) => {
                    self.note(&e);
                    if e.kind() != io::ErrorKind::Interrupted {
                        return;
                    }
                }
            }
        }
    }

    fn reset(&mut self) {
        if self.pending.take().is_some() {
            self.counts.dropped += 1;
        }
    }
}

/// Opens the tap of `arg` (creating it if there is none: it then goes when tinyvmm ends) and
/// makes its device.
pub fn open(arg: &NetArg) -> Result<Net<TapFd>, netwire::Error> {
    let fd = netwire::tap::open(&arg.tap)?;
    Ok(Net::new(TapFd(fd), arg.mac.unwrap_or_else(random_mac)))
}
