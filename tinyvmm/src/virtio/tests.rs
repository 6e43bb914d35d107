//! Unit tests of the register model, the chain checks and the devices' request parsing, with a
//! small driver written against guest memory in this process (no KVM).

use virtio_bindings::virtio_mmio::*;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::blk::{parse_disk, split, Blk, DiskArg};
use super::mmio::{Transport, Write, MAGIC, QUEUE_MAX};
use super::rng::Rng;
use super::{Buf, Fault};

const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
const SIZE: u16 = 8;
const NEXT: u16 = 1;
const WRITE: u16 = 2;

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).expect("1 MiB of test memory")
}

fn reg(t: &Transport, off: u32) -> u32 {
    let mut b = [0u8; 4];
    t.read(u64::from(off), &mut b);
    u32::from_le_bytes(b)
}

fn set(t: &mut Transport, off: u32, v: u32) -> Write {
    t.write(u64::from(off), &v.to_le_bytes())
}

/// A driver: sets the device up as Linux does, then offers chains.
struct Driver {
    t: Transport,
    mem: GuestMemoryMmap,
    avail: u16,
}

impl Driver {
    fn new(t: Transport) -> Driver {
        let mut d = Driver {
            t,
            mem: mem(),
            avail: 0,
        };
        d.init(1);
        d
    }

    /// Resets and sets the device up, accepting `features_hi` (VERSION_1 is bit 0 there).
    fn init(&mut self, features_hi: u32) {
        self.mem
            .write_slice(&[0u8; 0x3000], GuestAddress(DESC))
            .expect("clear the rings");
        self.avail = 0;
        let t = &mut self.t;
        set(t, VIRTIO_MMIO_STATUS, 0);
        set(t, VIRTIO_MMIO_STATUS, 3);
        set(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        set(t, VIRTIO_MMIO_DRIVER_FEATURES, features_hi);
        set(t, VIRTIO_MMIO_STATUS, 0xb);
        set(t, VIRTIO_MMIO_QUEUE_SEL, 0);
        set(t, VIRTIO_MMIO_QUEUE_NUM, u32::from(SIZE));
        set(t, VIRTIO_MMIO_QUEUE_DESC_LOW, DESC as u32);
        set(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, AVAIL as u32);
        set(t, VIRTIO_MMIO_QUEUE_USED_LOW, USED as u32);
        set(t, VIRTIO_MMIO_QUEUE_READY, 1);
        set(t, VIRTIO_MMIO_STATUS, 0xf);
    }

    fn desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = GuestAddress(DESC + u64::from(i) * 16);
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..].copy_from_slice(&next.to_le_bytes());
        self.mem.write_slice(&raw, at).expect("descriptor");
    }

    /// Offers `head`, notifies, serves: returns (interrupt, used index, used length of the last).
    fn offer(&mut self, head: u16) -> (bool, u16, u32) {
        let slot = AVAIL + 4 + u64::from(self.avail % SIZE) * 2;
        self.mem.write_obj(head, GuestAddress(slot)).expect("ring");
        self.avail = self.avail.wrapping_add(1);
        self.mem
            .write_obj(self.avail, GuestAddress(AVAIL + 2))
            .expect("idx");
        assert_eq!(
            set(&mut self.t, VIRTIO_MMIO_QUEUE_NOTIFY, 0),
            Write::Notify(0)
        );
        let (irq, more) = self.t.process(0, &self.mem);
        assert!(!more);
        let used: u16 = self.mem.read_obj(GuestAddress(USED + 2)).expect("used idx");
        let last = u64::from(used.wrapping_sub(1) % SIZE);
        let len: u32 = self
            .mem
            .read_obj(GuestAddress(USED + 4 + last * 8 + 4))
            .expect("used len");
        (irq, used, len)
    }

    fn needs_reset(&self) -> bool {
        reg(&self.t, VIRTIO_MMIO_STATUS) & 0x40 != 0
    }

    /// A block request: header at 0x10000, data at 0x11000 (`len`, `flags`), status at 0x12000.
    fn blk(&mut self, kind: u32, sector: u64, len: u32, flags: u16) -> (u8, u32) {
        let mut hdr = [0u8; 16];
        hdr[..4].copy_from_slice(&kind.to_le_bytes());
        hdr[8..].copy_from_slice(&sector.to_le_bytes());
        self.mem.write_slice(&hdr, GuestAddress(0x10000)).unwrap();
        self.mem.write_obj(0xffu8, GuestAddress(0x12000)).unwrap();
        self.desc(0, 0x10000, 16, NEXT, 1);
        if len > 0 {
            self.desc(1, 0x11000, len, flags | NEXT, 2);
        } else {
            self.desc(0, 0x10000, 16, NEXT, 2);
        }
        self.desc(2, 0x12000, 1, WRITE, 0);
        let (irq, _, used_len) = self.offer(0);
        assert!(irq);
        (self.mem.read_obj(GuestAddress(0x12000)).unwrap(), used_len)
    }
}

fn disk(ro: bool) -> Driver {
    let mut bytes = vec![0u8; 8 * 512];
    bytes[512..517].copy_from_slice(b"hello");
    Driver::new(Transport::new(Box::new(Blk::new(
        bytes,
        8 * 512,
        ro,
        "serial-1",
    ))))
}

#[test]
fn registers_say_what_the_device_is() {
    let t = Transport::new(Box::new(Blk::new(vec![0u8; 4096], 4096, true, "x")));
    assert_eq!(reg(&t, VIRTIO_MMIO_MAGIC_VALUE), MAGIC);
    assert_eq!(reg(&t, VIRTIO_MMIO_VERSION), 2);
    assert_eq!(reg(&t, VIRTIO_MMIO_DEVICE_ID), 2);
    // Feature word 0: SEG_MAX (2), RO (5) and FLUSH (9); word 1: VERSION_1.
    assert_eq!(
        reg(&t, VIRTIO_MMIO_DEVICE_FEATURES),
        1 << 2 | 1 << 5 | 1 << 9
    );
    let mut t = t;
    set(&mut t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    assert_eq!(reg(&t, VIRTIO_MMIO_DEVICE_FEATURES), 1);
    set(&mut t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
    assert_eq!(reg(&t, VIRTIO_MMIO_DEVICE_FEATURES), 0);
    assert_eq!(reg(&t, VIRTIO_MMIO_QUEUE_NUM_MAX), u32::from(QUEUE_MAX));
    // A queue that does not exist has no size.
    set(&mut t, VIRTIO_MMIO_QUEUE_SEL, 1);
    assert_eq!(reg(&t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
    // Capacity in sectors, at any width; past it zeros.
    assert_eq!(reg(&t, VIRTIO_MMIO_CONFIG), 8);
    let mut b = [0u8; 1];
    t.read(u64::from(VIRTIO_MMIO_CONFIG), &mut b);
    assert_eq!(b, [8]);
    assert_eq!(reg(&t, VIRTIO_MMIO_CONFIG + 12), 254, "seg_max");
    assert_eq!(reg(&t, VIRTIO_MMIO_CONFIG + 64), 0);
    // Registers are 32-bit: a 2-byte read gives zeros.
    let mut b = [0xaau8; 2];
    t.read(u64::from(VIRTIO_MMIO_MAGIC_VALUE), &mut b);
    assert_eq!(b, [0, 0]);
    let rng = Transport::new(Box::new(Rng));
    assert_eq!(reg(&rng, VIRTIO_MMIO_DEVICE_ID), 4);
    assert_eq!(reg(&rng, VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

#[test]
fn features_ok_needs_version_1_and_only_offered_bits() {
    let mut d = disk(false);
    assert_eq!(reg(&d.t, VIRTIO_MMIO_STATUS), 0xf);
    assert!(d.t.live());
    // A legacy driver (no VERSION_1) is refused FEATURES_OK, and so is one taking bit 33.
    for hi in [0, 3] {
        d.init(hi);
        assert_eq!(
            reg(&d.t, VIRTIO_MMIO_STATUS) & 8,
            0,
            "features word 1 = {hi}"
        );
        assert!(!d.t.live(), "features word 1 = {hi}");
        assert_eq!(d.t.process(0, &d.mem), (false, false));
    }
}

#[test]
fn blk_reads_writes_flushes_and_names_itself() {
    let mut d = disk(false);
    assert_eq!(d.blk(0, 1, 512, WRITE), (0, 513));
    assert_eq!(
        d.mem.read_obj::<[u8; 5]>(GuestAddress(0x11000)).unwrap(),
        *b"hello"
    );
    d.mem.write_slice(b"guest", GuestAddress(0x11000)).unwrap();
    assert_eq!(d.blk(1, 7, 512, 0), (0, 1));
    d.mem
        .write_slice(&[0u8; 512], GuestAddress(0x11000))
        .unwrap();
    assert_eq!(d.blk(0, 7, 512, WRITE), (0, 513));
    assert_eq!(
        d.mem.read_obj::<[u8; 5]>(GuestAddress(0x11000)).unwrap(),
        *b"guest"
    );
    assert_eq!(d.blk(4, 0, 0, 0), (0, 1), "flush");
    // GET_ID: the serial NUL-padded to 20 bytes.
    assert_eq!(d.blk(8, 0, 20, WRITE), (0, 21));
    let id: [u8; 20] = d.mem.read_obj(GuestAddress(0x11000)).unwrap();
    assert_eq!(&id[..9], b"serial-1\0");
    // Past the end, a partial sector: IOERR; an unknown type: UNSUPP. None needs a reset.
    assert_eq!(d.blk(0, 8, 512, WRITE), (1, 1));
    assert_eq!(d.blk(0, 7, 1024, WRITE), (1, 1));
    assert_eq!(d.blk(0, u64::MAX, 512, WRITE), (1, 1));
    assert_eq!(d.blk(0, 0, 100, WRITE), (1, 1));
    assert_eq!(d.blk(13, 0, 0, 0), (2, 1));
    assert!(!d.needs_reset());
    assert_eq!(reg(&d.t, VIRTIO_MMIO_INTERRUPT_STATUS), 1);
    set(&mut d.t, VIRTIO_MMIO_INTERRUPT_ACK, 1);
    assert_eq!(reg(&d.t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

#[test]
fn read_only_blk_refuses_writes_only() {
    let mut d = disk(true);
    assert_eq!(d.blk(1, 0, 512, 0), (1, 1));
    assert_eq!(d.blk(0, 1, 512, WRITE), (0, 513));
    assert_eq!(d.blk(4, 0, 0, 0), (0, 1));
}

#[test]
fn misbehaving_drivers_get_needs_reset() {
    let mut d = disk(false);
    type Setup = fn(&Driver) -> u16;
    let cases: [(&str, Setup, Fault); 7] = [
        (
            "a loop",
            |d| {
                d.desc(3, 0x10000, 16, NEXT, 4);
                d.desc(4, 0x12000, 1, WRITE | NEXT, 3);
                3
            },
            Fault::Loop { head: 3 },
        ),
        (
            "a next outside the table",
            |d| {
                d.desc(3, 0x10000, 16, NEXT, 200);
                3
            },
            Fault::Broken { head: 3 },
        ),
        ("a head outside the table", |_| 9, Fault::Broken { head: 9 }),
        (
            "an address outside RAM",
            |d| {
                d.desc(3, 0xfff0_0000, 16, 0, 0);
                3
            },
            Fault::OutsideRam {
                addr: 0xfff0_0000,
                len: 16,
            },
        ),
        (
            "an oversize length",
            |d| {
                d.desc(3, 0x10000, u32::MAX, 0, 0);
                3
            },
            Fault::OutsideRam {
                addr: 0x10000,
                len: u32::MAX,
            },
        ),
        (
            "no status byte",
            |d| {
                d.desc(3, 0x10000, 16, 0, 0);
                3
            },
            Fault::Layout("no device-writable status byte at the end"),
        ),
        (
            "a short header",
            |d| {
                d.desc(3, 0x10000, 8, NEXT, 4);
                d.desc(4, 0x12000, 1, WRITE, 0);
                3
            },
            Fault::Layout("header shorter than 16 bytes"),
        ),
    ];
    for (what, setup, fault) in cases {
        d.init(1);
        let generation = reg(&d.t, VIRTIO_MMIO_CONFIG_GENERATION);
        let head = setup(&d);
        let (irq, used, _) = d.offer(head);
        assert!(irq, "{what}: the driver is told");
        assert_eq!(used, 0, "{what}: nothing used");
        assert!(d.needs_reset(), "{what}");
        assert_eq!(d.t.fault(), Some(&fault), "{what}");
        assert_eq!(reg(&d.t, VIRTIO_MMIO_INTERRUPT_STATUS), 2, "{what}");
        assert_eq!(
            reg(&d.t, VIRTIO_MMIO_CONFIG_GENERATION),
            generation + 1,
            "{what}"
        );
        // The driver cannot clear NEEDS_RESET but by a reset, and nothing is served till then.
        set(&mut d.t, VIRTIO_MMIO_STATUS, 0xf);
        assert!(d.needs_reset(), "{what}");
        assert_eq!(d.t.process(0, &d.mem), (false, false), "{what}");
    }
    // After a reset the device works again.
    d.init(1);
    assert!(!d.needs_reset());
    assert_eq!(d.t.fault(), None);
    assert_eq!(d.blk(0, 1, 512, WRITE), (0, 513));
}

#[test]
fn rings_outside_ram_or_a_bad_size_need_a_reset() {
    let mut d = disk(false);
    set(&mut d.t, VIRTIO_MMIO_STATUS, 0);
    set(&mut d.t, VIRTIO_MMIO_STATUS, 3);
    set(&mut d.t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    set(&mut d.t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
    set(&mut d.t, VIRTIO_MMIO_STATUS, 0xb);
    set(&mut d.t, VIRTIO_MMIO_QUEUE_NUM, 8);
    set(&mut d.t, VIRTIO_MMIO_QUEUE_DESC_LOW, DESC as u32);
    set(&mut d.t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, AVAIL as u32);
    set(&mut d.t, VIRTIO_MMIO_QUEUE_USED_LOW, 0xfff0_0000);
    set(&mut d.t, VIRTIO_MMIO_QUEUE_READY, 1);
    set(&mut d.t, VIRTIO_MMIO_STATUS, 0xf);
    // Queue set-up after DRIVER_OK is ignored.
    set(&mut d.t, VIRTIO_MMIO_QUEUE_USED_LOW, USED as u32);
    assert_eq!(reg(&d.t, VIRTIO_MMIO_QUEUE_USED_LOW), 0xfff0_0000);
    assert_eq!(d.t.process(0, &d.mem), (true, false));
    assert!(d.needs_reset());
    assert!(matches!(d.t.fault(), Some(Fault::Ring(_))));
}

#[test]
fn rng_fills_writable_buffers_up_to_its_limit() {
    let mut d = Driver::new(Transport::new(Box::new(Rng)));
    d.desc(0, 0x10000, 64, WRITE, 0);
    let (irq, used, len) = d.offer(0);
    assert_eq!((irq, used, len), (true, 1, 64));
    let mut got = [0u8; 64];
    d.mem.read_slice(&mut got, GuestAddress(0x10000)).unwrap();
    assert_ne!(got, [0u8; 64]);
    d.desc(0, 0x20000, 0x80000, WRITE, 0);
    let (_, _, len) = d.offer(0);
    assert_eq!(len as usize, super::rng::MAX_PER_REQUEST);
}

#[test]
fn blk_split_finds_header_data_and_status() {
    let b = |addr, len, write| Buf { addr, len, write };
    // Header over two buffers, data, status at the end of the last data buffer.
    let (_, data, status) =
        split(&[b(0x100, 10, false), b(0x200, 6, false), b(0x300, 513, true)]).unwrap();
    assert_eq!(data, vec![b(0x300, 512, true)]);
    assert_eq!(status, 0x300 + 512);
    let (_, data, _) = split(&[b(0x100, 24, false), b(0x300, 1, true)]).unwrap();
    assert_eq!(data, vec![b(0x110, 8, false)]);
    assert!(split(&[]).is_err());
    assert!(split(&[b(0x100, 16, false)]).is_err());
    assert!(split(&[b(0x100, 16, true)]).is_err());
    assert!(split(&[b(0x100, 16, false), b(0x300, 0, true)]).is_err());
}

#[test]
fn disk_options() {
    let d = |p: &str, ro| DiskArg { path: p.into(), ro };
    assert_eq!(parse_disk("a.img"), Ok(d("a.img", false)));
    assert_eq!(parse_disk("a.img,ro"), Ok(d("a.img", true)));
    assert_eq!(parse_disk("a.img,rw"), Ok(d("a.img", false)));
    assert_eq!(parse_disk("dir,x/a.img,ro"), Ok(d("dir,x/a.img", true)));
    assert!(parse_disk("a.img,RO").is_err());
    assert!(parse_disk(",ro").is_err());
    assert!(parse_disk("").is_err());
}

#[test]
fn the_dsdt_describes_each_device() {
    let d = crate::acpi::dsdt(&[(super::mmio_addr(0), 5), (super::mmio_addr(1), 6)]);
    let find = |n: &[u8]| d.windows(n.len()).position(|w| w == n);
    for (name, base, irq) in [(b"VR00", 0xd000_0000u32, 5u8), (b"VR01", 0xd000_1000, 6)] {
        let at = find(name).expect("the device");
        let dev = &d[at..];
        let hid = dev.windows(8).position(|w| w == b"LNRO0005").expect("_HID");
        assert!(hid < 16);
        // Memory32Fixed (0x86, length 9, read-write, base, 4 KiB), Interrupt (edge, high).
        let mut mem = vec![0x86, 9, 0, 1];
        mem.extend(base.to_le_bytes());
        mem.extend(0x1000u32.to_le_bytes());
        let m = dev
            .windows(mem.len())
            .position(|w| w == mem)
            .expect("Memory32Fixed");
        assert_eq!(&dev[m + 12..m + 21], [0x89, 6, 0, 0x03, 1, irq, 0, 0, 0]);
    }
}

mod net {
    //! virtio-net over a tap in memory: the configuration space, feature negotiation, both
    //! queues, the headers either way, a frame waiting for a receive buffer, and the faults.

    use std::sync::{Arc, Mutex};

    use virtio_bindings::virtio_mmio::*;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    use super::{mem, reg, set};
    use crate::virtio::mmio::{Transport, Write};
    use crate::virtio::net::{self, parse_net, MemTap, Net, NetArg, Tap, HDR_LEN};
    use crate::virtio::Fault;

    /// A tap the test keeps a handle on while the transport owns the device.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<MemTap>>);

    impl Tap for Shared {
        fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().recv(buf)
        }
        fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
            self.0.lock().unwrap().send(frame)
        }
        fn set_offload(&mut self, tun_flags: u32) -> std::io::Result<()> {
            self.0.lock().unwrap().set_offload(tun_flags)
        }
    }

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const SIZE: u16 = 8;
    /// Queue q's rings at 0x10000 * (q + 1): descriptors, then avail at +0x1000, used at +0x2000.
    fn ring(q: usize) -> u64 {
        0x10000 * (q as u64 + 1)
    }

    struct Nic {
        t: Transport,
        mem: GuestMemoryMmap,
        tap: Shared,
        avail: [u16; 2],
    }

    impl Nic {
        fn new() -> Nic {
            let tap = Shared::default();
            let mut n = Nic {
                t: Transport::new(Box::new(Net::new(tap.clone(), MAC))),
                mem: mem(),
                tap,
                avail: [0; 2],
            };
            n.init(1);
            n
        }

        fn init(&mut self, features_hi: u32) {
            self.init_with(1 << 5 | 1 << 16, features_hi);
        }

        /// Sets the driver up accepting features `lo` (word 0) and `hi` (word 1).
        fn init_with(&mut self, lo: u32, features_hi: u32) {
            let t = &mut self.t;
            set(t, VIRTIO_MMIO_STATUS, 0);
            set(t, VIRTIO_MMIO_STATUS, 3);
            set(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
            set(t, VIRTIO_MMIO_DRIVER_FEATURES, lo);
            set(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
            set(t, VIRTIO_MMIO_DRIVER_FEATURES, features_hi);
            set(t, VIRTIO_MMIO_STATUS, 0xb);
            for q in 0..2 {
                let r = ring(q);
                set(t, VIRTIO_MMIO_QUEUE_SEL, q as u32);
                set(t, VIRTIO_MMIO_QUEUE_NUM, u32::from(SIZE));
                set(t, VIRTIO_MMIO_QUEUE_DESC_LOW, r as u32);
                set(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (r + 0x1000) as u32);
                set(t, VIRTIO_MMIO_QUEUE_USED_LOW, (r + 0x2000) as u32);
                set(t, VIRTIO_MMIO_QUEUE_READY, 1);
            }
            set(t, VIRTIO_MMIO_STATUS, 0xf);
        }

        /// Offers one buffer at `addr` on queue `q` as descriptor `i`.
        fn offer(&mut self, q: usize, i: u16, addr: u64, len: u32, write: bool) {
            let r = ring(q);
            let mut raw = [0u8; 16];
            raw[..8].copy_from_slice(&addr.to_le_bytes());
            raw[8..12].copy_from_slice(&len.to_le_bytes());
            raw[12..14].copy_from_slice(&(if write { 2u16 } else { 0 }).to_le_bytes());
            self.mem
                .write_slice(&raw, GuestAddress(r + u64::from(i) * 16))
                .unwrap();
            let slot = r + 0x1000 + 4 + u64::from(self.avail[q] % SIZE) * 2;
            self.mem.write_obj(i, GuestAddress(slot)).unwrap();
            self.avail[q] = self.avail[q].wrapping_add(1);
            self.mem
                .write_obj(self.avail[q], GuestAddress(r + 0x1000 + 2))
                .unwrap();
        }

        /// Notifies queue `q` and serves it: (interrupt, used index, last used length).
        fn kick(&mut self, q: usize) -> (bool, u16, u32) {
            assert_eq!(
                set(&mut self.t, VIRTIO_MMIO_QUEUE_NOTIFY, q as u32),
                Write::Notify(q)
            );
            let (irq, more) = self.t.process(q, &self.mem);
            assert!(!more);
            let used = ring(q) + 0x2000;
            let idx: u16 = self.mem.read_obj(GuestAddress(used + 2)).unwrap();
            let last = u64::from(idx.wrapping_sub(1) % SIZE);
            let len: u32 = self
                .mem
                .read_obj(GuestAddress(used + 4 + last * 8 + 4))
                .unwrap();
            (irq, idx, len)
        }

        fn needs_reset(&self) -> bool {
            reg(&self.t, VIRTIO_MMIO_STATUS) & 0x40 != 0
        }

        fn push_rx(&self, frame: &[u8]) {
            self.tap.0.lock().unwrap().rx.push_back(frame.to_vec());
        }
    }

    /// An Ethernet frame of `len` bytes (broadcast, from `MAC`, type 0x0800), with the tap's
    /// header in front (`flags`, `gso`; the last two bytes left as the tap leaves them: junk).
    fn tap_frame(len: usize, flags: u8, gso: u8) -> Vec<u8> {
        let mut f = vec![0u8; HDR_LEN];
        f[0] = flags;
        f[1] = gso;
        f[10] = 0xaa;
        f[11] = 0xbb;
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&MAC);
        f.extend_from_slice(&[8, 0]);
        f.extend((0..len - 14).map(|i| i as u8));
        f
    }

    #[test]
    fn registers_config_space_and_features() {
        let n = Nic::new();
        assert_eq!(reg(&n.t, VIRTIO_MMIO_DEVICE_ID), 1);
        // Word 0: CSUM (0), GUEST_CSUM (1), MAC (5), GUEST_TSO4/6 (7, 8), HOST_TSO4/6 (11,
        // 12), STATUS (16); word 1: VERSION_1.
        let mut t = Transport::new(Box::new(Net::new(MemTap::default(), MAC)));
        assert_eq!(
            reg(&t, VIRTIO_MMIO_DEVICE_FEATURES),
            1 | 1 << 1 | 1 << 5 | 1 << 7 | 1 << 8 | 1 << 11 | 1 << 12 | 1 << 16
        );
        set(&mut t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
        assert_eq!(reg(&t, VIRTIO_MMIO_DEVICE_FEATURES), 1);
        // Two queues, a third has no size.
        for q in 0..3 {
            set(&mut t, VIRTIO_MMIO_QUEUE_SEL, q);
            let want = if q < 2 { 256 } else { 0 };
            assert_eq!(reg(&t, VIRTIO_MMIO_QUEUE_NUM_MAX), want, "queue {q}");
        }
        // mac, status = LINK_UP, max_virtqueue_pairs = 1, then zeros; any width.
        let mut c = [0u8; 12];
        t.read(u64::from(VIRTIO_MMIO_CONFIG), &mut c);
        assert_eq!(c, [2, 0, 0, 0, 0, 2, 1, 0, 1, 0, 0, 0]);
        let mut b = [0u8; 2];
        t.read(u64::from(VIRTIO_MMIO_CONFIG) + 6, &mut b);
        assert_eq!(u16::from_le_bytes(b), 1, "status: link up");
        assert_eq!(net::config(MAC).len(), net::CONFIG_LEN);
    }

    #[test]
    fn features_ok_needs_version_1_and_only_offered_bits() {
        let mut n = Nic::new();
        assert!(n.t.live());
        // No VERSION_1; or bit 33, not offered.
        for hi in [0, 3] {
            n.init(hi);
            assert_eq!(reg(&n.t, VIRTIO_MMIO_STATUS) & 8, 0, "word 1 = {hi}");
            assert!(!n.t.live());
        }
        // An offload bit not offered (GUEST_ECN, 9) is refused too.
        let t = &mut n.t;
        set(t, VIRTIO_MMIO_STATUS, 0);
        set(t, VIRTIO_MMIO_STATUS, 3);
        set(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
        set(t, VIRTIO_MMIO_DRIVER_FEATURES, 1 << 9);
        set(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        set(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
        set(t, VIRTIO_MMIO_STATUS, 0xb);
        assert_eq!(reg(t, VIRTIO_MMIO_STATUS) & 8, 0);
    }

    #[test]
    fn transmit_sends_the_frame_with_a_zero_header() {
        let mut n = Nic::new();
        let mut f = tap_frame(60, 0, 0);
        // The guest's num_buffers means nothing on transmit; the tap gets zeros.
        f[10] = 1;
        f[11] = 0;
        // The header and the frame in two chained buffers.
        n.mem
            .write_slice(&f[..HDR_LEN], GuestAddress(0x40000))
            .unwrap();
        n.mem
            .write_slice(&f[HDR_LEN..], GuestAddress(0x41000))
            .unwrap();
        let r = ring(1);
        // Descriptor 0 -> 1 chained.
        let d = |addr: u64, len: u32, flags: u16, next: u16| {
            let mut raw = [0u8; 16];
            raw[..8].copy_from_slice(&addr.to_le_bytes());
            raw[8..12].copy_from_slice(&len.to_le_bytes());
            raw[12..14].copy_from_slice(&flags.to_le_bytes());
            raw[14..].copy_from_slice(&next.to_le_bytes());
            raw
        };
        n.mem
            .write_slice(&d(0x40000, HDR_LEN as u32, 1, 1), GuestAddress(r))
            .unwrap();
        n.mem
            .write_slice(&d(0x41000, 60, 0, 0), GuestAddress(r + 16))
            .unwrap();
        n.mem.write_obj(0u16, GuestAddress(r + 0x1000 + 4)).unwrap();
        n.avail[1] = 1;
        n.mem.write_obj(1u16, GuestAddress(r + 0x1000 + 2)).unwrap();
        assert_eq!(n.kick(1), (true, 1, 0));
        let tx = n.tap.0.lock().unwrap().tx.clone();
        assert_eq!(tx.len(), 1);
        assert_eq!(&tx[0][..HDR_LEN], &[0u8; HDR_LEN]);
        assert_eq!(&tx[0][HDR_LEN..], &f[HDR_LEN..]);
        assert!(!n.needs_reset());
    }

    #[test]
    fn accepted_offloads_reach_the_tap_and_a_segmentation_request_goes_through() {
        let mut n = Nic::new();
        assert_eq!(n.tap.0.lock().unwrap().offload, 0, "no offloads accepted");
        // The driver takes everything offered: the tap is told CSUM | TSO4 | TSO6.
        n.init_with(0x1983 | 1 << 5 | 1 << 16, 1);
        assert!(n.t.live());
        assert_eq!(n.tap.0.lock().unwrap().offload, 0x7);
        // A TCPv4 GSO request with NEEDS_CSUM goes to the tap with its header (num_buffers
        // cleared).
        let mut f = tap_frame(60, 1, 1);
        f[2..10].copy_from_slice(&[54, 0, 0xa8, 5, 34, 0, 16, 0]);
        f[10] = 9;
        n.mem.write_slice(&f, GuestAddress(0x40000)).unwrap();
        n.offer(1, 0, 0x40000, f.len() as u32, false);
        assert_eq!(n.kick(1), (true, 1, 0));
        assert!(!n.needs_reset());
        let sent = n.tap.0.lock().unwrap().tx[0].clone();
        assert_eq!(
            &sent[..HDR_LEN],
            &[1, 1, 54, 0, 0xa8, 5, 34, 0, 16, 0, 0, 0]
        );
        assert_eq!(&sent[HDR_LEN..], &f[HDR_LEN..]);
        // A received GSO frame reaches the guest with its header.
        let mut r = tap_frame(60, 1, 1);
        r[4] = 0xa8;
        n.push_rx(&r);
        n.offer(0, 0, 0x50000, 1526, true);
        let (_, _, len) = n.kick(0);
        assert_eq!(len as usize, r.len());
        let mut got = vec![0u8; HDR_LEN];
        n.mem.read_slice(&mut got, GuestAddress(0x50000)).unwrap();
        assert_eq!(&got[..], &[1, 1, 0, 0, 0xa8, 0, 0, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn transmit_faults_on_a_bad_request() {
        // Each bad request on a fresh device: a short header, a writable buffer, an offload
        // asked for (NEEDS_CSUM, a GSO type), a frame over 64 KiB.
        for (what, len, write, hdr0, hdr1) in [
            ("short", 8u32, false, 0u8, 0u8),
            ("writable", 60, true, 0, 0),
            ("csum", 60, false, 1, 0),
            ("gso", 60, false, 0, 1),
            ("huge", 70_000, false, 0, 0),
        ] {
            let mut n = Nic::new();
            n.mem.write_obj(hdr0, GuestAddress(0x40000)).unwrap();
            n.mem.write_obj(hdr1, GuestAddress(0x40001)).unwrap();
            n.offer(1, 0, 0x40000, len, write);
            let (irq, used, _) = n.kick(1);
            assert!(irq, "{what}");
            assert_eq!(used, 0, "{what}: nothing used");
            assert!(n.needs_reset(), "{what}");
            assert!(matches!(n.t.fault(), Some(Fault::Layout(_))), "{what}");
            assert!(n.tap.0.lock().unwrap().tx.is_empty(), "{what}");
        }
    }

    #[test]
    fn receive_fills_a_buffer_with_header_and_frame() {
        let mut n = Nic::new();
        n.push_rx(&tap_frame(98, 2, 0));
        n.offer(0, 0, 0x50000, 1526, true);
        let (irq, used, len) = n.kick(0);
        assert_eq!((irq, used, len), (true, 1, (HDR_LEN + 98) as u32));
        let mut got = vec![0u8; HDR_LEN + 98];
        n.mem.read_slice(&mut got, GuestAddress(0x50000)).unwrap();
        // Zeros but num_buffers = 1 (the tap's DATA_VALID and junk are gone).
        assert_eq!(&got[..HDR_LEN], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(&got[HDR_LEN..], &tap_frame(98, 0, 0)[HDR_LEN..]);
    }

    #[test]
    fn a_frame_waits_for_a_receive_buffer_and_buffers_wait_for_frames() {
        let mut n = Nic::new();
        // No frame: the buffer stays available, nothing used, no interrupt.
        n.offer(0, 0, 0x50000, 1526, true);
        assert_eq!(n.kick(0), (false, 0, 0));
        // A frame came: serving the queue (what the tap's readability does) uses the buffer.
        n.push_rx(&tap_frame(60, 0, 0));
        assert!(n.t.wants_input());
        let (irq, more) = n.t.process(0, &n.mem);
        assert_eq!((irq, more), (true, false));
        // Two more frames and no buffer: one is read and held, the tap is no longer watched.
        n.push_rx(&tap_frame(61, 0, 0));
        n.push_rx(&tap_frame(62, 0, 0));
        assert_eq!(n.t.process(0, &n.mem), (false, false));
        assert!(!n.t.wants_input(), "a frame is held for a buffer");
        assert_eq!(n.tap.0.lock().unwrap().rx.len(), 1);
        // The guest gives two buffers: both frames, in order.
        n.offer(0, 1, 0x51000, 1526, true);
        n.offer(0, 2, 0x52000, 1526, true);
        let (irq, used, len) = n.kick(0);
        assert_eq!((irq, used, len), (true, 3, (HDR_LEN + 62) as u32));
        let b: u8 = n
            .mem
            .read_obj(GuestAddress(0x51000 + HDR_LEN as u64 + 14))
            .unwrap();
        assert_eq!(b, 0, "first payload byte of the 61-byte frame");
        assert!(n.t.wants_input());
    }

    #[test]
    fn receive_drops_what_does_not_fit_and_what_the_tap_should_not_send() {
        let mut n = Nic::new();
        // Too long for the buffer: dropped, the buffer used empty.
        n.push_rx(&tap_frame(1514, 0, 0));
        n.offer(0, 0, 0x50000, 100, true);
        assert_eq!(n.kick(0), (true, 1, 0));
        // A GSO frame, a header with NEEDS_CSUM and a runt: dropped before any buffer.
        n.push_rx(&tap_frame(60, 0, 1));
        n.push_rx(&tap_frame(60, 1, 0));
        n.push_rx(&[0u8; 20]);
        n.push_rx(&tap_frame(60, 0, 0));
        n.offer(0, 1, 0x51000, 1526, true);
        assert_eq!(n.kick(0), (true, 2, (HDR_LEN + 60) as u32));
        assert!(!n.needs_reset());
        // A read-only receive buffer breaks the rules.
        n.push_rx(&tap_frame(60, 0, 0));
        n.offer(0, 2, 0x52000, 1526, false);
        n.kick(0);
        assert!(n.needs_reset());
    }

    #[test]
    fn frames_before_the_driver_runs_or_across_a_reset_are_dropped() {
        let mut n = Nic::new();
        set(&mut n.t, VIRTIO_MMIO_STATUS, 0);
        n.push_rx(&tap_frame(60, 0, 0));
        n.push_rx(&tap_frame(60, 0, 0));
        // Not live: nothing is served, and watching the tap drains it.
        assert_eq!(n.t.process(0, &n.mem), (false, false));
        assert!(n.t.wants_input());
        assert!(n.tap.0.lock().unwrap().rx.is_empty());
        // A held frame goes with a reset.
        n.init(1);
        n.push_rx(&tap_frame(60, 0, 0));
        n.t.process(0, &n.mem);
        assert!(!n.t.wants_input());
        n.init(1);
        assert!(n.t.wants_input(), "the reset dropped the held frame");
        n.offer(0, 0, 0x50000, 1526, true);
        assert_eq!(n.kick(0), (false, 0, 0));
    }

    #[test]
    fn rx_and_tx_headers() {
        let rx = |mut f: Vec<u8>, acked: u64| net::rx_frame(&mut f, acked).map(|()| f);
        assert_eq!(rx(vec![0u8; 25], 0), None, "shorter than both headers");
        // Without GUEST_CSUM: DATA_VALID is cleared, the header is zeros but num_buffers.
        let f = rx(tap_frame(14, 2, 0), 0).unwrap();
        assert_eq!(&f[..HDR_LEN], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(rx(tap_frame(14, 1, 0), 0), None);
        assert_eq!(rx(tap_frame(14, 0, 3), 0), None);
        assert!(net::tx_header(&[0u8; 12], 0).is_ok());
        assert!(net::tx_header(&[0u8; 11], 0).is_err());
        let mut h = [0u8; 12];
        h[10] = 7;
        assert!(net::tx_header(&h, 0).is_ok(), "num_buffers is ignored");
        h[0] = 1;
        assert_eq!(
            net::tx_header(&h, 0),
            Err(Fault::Layout(
                "a transmit header with flags (checksum offload was not negotiated)"
            ))
        );
    }

    #[test]
    fn offloads_go_only_as_far_as_the_driver_accepted_them() {
        use virtio_bindings::virtio_net::*;
        let bit = |b: u32| 1u64 << b;
        let csum = bit(VIRTIO_NET_F_GUEST_CSUM);
        let tso = csum | bit(VIRTIO_NET_F_GUEST_TSO4) | bit(VIRTIO_NET_F_GUEST_TSO6);
        // What the tap is told: nothing without GUEST_CSUM, TSO only with it.
        assert_eq!(net::tun_offload(0), 0);
        assert_eq!(net::tun_offload(bit(VIRTIO_NET_F_GUEST_TSO4)), 0);
        assert_eq!(net::tun_offload(csum), net::TUN_F_CSUM);
        assert_eq!(
            net::tun_offload(tso),
            net::TUN_F_CSUM | net::TUN_F_TSO4 | net::TUN_F_TSO6
        );
        let rx = |mut f: Vec<u8>, acked: u64| net::rx_frame(&mut f, acked).map(|()| f);
        // With GUEST_CSUM the tap's header goes through (gso fields too), num_buffers set.
        let mut t = tap_frame(60, 1, 1);
        t[2..10].copy_from_slice(&[54, 0, 0xa8, 5, 34, 0, 16, 0]);
        let f = rx(t.clone(), tso).unwrap();
        assert_eq!(&f[..HDR_LEN], &[1, 1, 54, 0, 0xa8, 5, 34, 0, 16, 0, 1, 0]);
        assert_eq!(&f[HDR_LEN..], &t[HDR_LEN..]);
        assert_eq!(rx(t.clone(), csum), None, "TCPv4 GSO without GUEST_TSO4");
        assert_eq!(
            rx(tap_frame(60, 2, 0), csum).unwrap()[0],
            2,
            "DATA_VALID kept"
        );
        assert_eq!(rx(tap_frame(60, 1, 0x81), tso), None, "ECN was not offered");
        assert_eq!(rx(tap_frame(60, 1, 3), tso), None, "UDP was not offered");
        assert_eq!(rx(tap_frame(60, 4, 0), tso), None, "an unknown flag");
        // Transmit: NEEDS_CSUM with CSUM, TCP GSO with HOST_TSO4/6 (and CSUM).
        let host = bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_HOST_TSO4);
        let hdr = |flags: u8, gso: u8| {
            let mut h = [0u8; HDR_LEN];
            h[0] = flags;
            h[1] = gso;
            h
        };
        assert!(net::tx_header(&hdr(1, 1), host).is_ok());
        assert!(net::tx_header(&hdr(1, 0), host).is_ok());
        assert!(
            net::tx_header(&hdr(2, 0), host).is_err(),
            "DATA_VALID is not the driver's"
        );
        assert!(net::tx_header(&hdr(1, 4), host).is_err(), "no HOST_TSO6");
        assert!(
            net::tx_header(&hdr(1, 1), bit(VIRTIO_NET_F_HOST_TSO4)).is_err(),
            "no CSUM"
        );
        assert!(net::tx_header(&hdr(1, 0x81), host | bit(VIRTIO_NET_F_HOST_TSO6)).is_err());
    }

    #[test]
    fn net_options_parse() {
        assert_eq!(
            parse_net("tap=vm0"),
            Ok(NetArg {
                tap: "vm0".into(),
                mac: None
            })
        );
        assert_eq!(
            parse_net("tap=vm0,mac=02:00:00:00:00:02"),
            Ok(NetArg {
                tap: "vm0".into(),
                mac: Some(MAC)
            })
        );
        assert_eq!(parse_net("mac=02:00:00:00:00:02,tap=t").unwrap().tap, "t");
        for (bad, why) in [
            ("", "unknown net option ''"),
            ("vm0", "unknown net option 'vm0'"),
            ("mac=02:00:00:00:00:02", "no tap in"),
            ("tap=", "cannot be empty"),
            ("tap=a-name-longer-than-15", "IFNAMSIZ"),
            ("tap=a/b", "contains '/'"),
            ("tap=t,mac=01:00:00:00:00:00", "multicast"),
            ("tap=t,mac=zz", "not a MAC address"),
            ("tap=t,queues=2", "unknown net option 'queues=2'"),
        ] {
            let e = parse_net(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        for _ in 0..16 {
            let m = net::random_mac();
            assert_eq!(m[0] & 3, 2, "unicast, locally administered: {m:02x?}");
        }
    }
}

#[test]
fn pieces_cut_each_buffer_at_the_chunk_size_and_skip_empty_ones() {
    let b = |addr, len| Buf {
        addr,
        len,
        write: true,
    };
    let bufs = [b(0x100, 10), b(0x200, 0), b(0x300, 5)];
    let got: Vec<(u64, usize)> = super::chain::pieces(&bufs, 4)
        .map(|(a, n, _)| (a.0, n))
        .collect();
    assert_eq!(
        got,
        [(0x100, 4), (0x104, 4), (0x108, 2), (0x300, 4), (0x304, 1)]
    );
    // A chunk size of 0 would never advance: it is taken as 1.
    assert_eq!(super::chain::pieces(&bufs[2..], 0).count(), 5);
}

#[test]
fn write_to_fills_buffers_in_order_and_stops_where_the_data_ends() {
    let m = mem();
    let b = |addr, len| Buf {
        addr,
        len,
        write: true,
    };
    let bufs = [b(0x100, 3), b(0x200, 8), b(0x300, 8)];
    assert_eq!(super::chain::write_to(&m, &bufs, b"abcdefg"), Ok(7));
    let mut got = [0u8; 4];
    m.read_slice(&mut got, GuestAddress(0x200)).unwrap();
    assert_eq!(&got, b"defg");
    let mut third = [0u8; 1];
    m.read_slice(&mut third, GuestAddress(0x300)).unwrap();
    assert_eq!(third, [0], "nothing past the data");
    let outside = [b(2 << 20, 4)];
    assert_eq!(
        super::chain::write_to(&m, &outside, b"x"),
        Err(Fault::OutsideRam {
            addr: 2 << 20,
            len: 4
        })
    );
}

mod vsock {
    //! virtio-vsock against real Unix sockets in a temporary directory: guest connections to
    //! PATH_PORT, host connections through PATH's CONNECT line, data and shutdowns both ways,
    //! credit, resets, the listener's path, and malformed packets.

    use std::io::{Read, Write as _};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::PathBuf;

    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    use super::mem;
    use crate::virtio::vsock::*;
    use crate::virtio::{Buf, Device, Fault};

    const CID: u32 = 3;
    const TXB: u64 = 0x1000;
    const RXB: u64 = 0x40000;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tinyvmm-vsock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn hdr(op: u16, src_port: u32, dst_port: u32) -> Hdr {
        Hdr {
            src_cid: u64::from(CID),
            dst_cid: HOST_CID,
            src_port,
            dst_port,
            kind: TYPE_STREAM,
            op,
            buf_alloc: 65536,
            ..Hdr::default()
        }
    }

    fn tx(v: &mut Vsock, m: &GuestMemoryMmap, h: Hdr, data: &[u8]) -> Result<u32, Fault> {
        let h = Hdr {
            len: data.len() as u32,
            ..h
        };
        m.write_slice(&h.bytes(), GuestAddress(TXB)).unwrap();
        m.write_slice(data, GuestAddress(TXB + HDR_LEN as u64))
            .unwrap();
        let len = (HDR_LEN + data.len()) as u32;
        v.serve(
            TX,
            m,
            &[Buf {
                addr: TXB,
                len,
                write: false,
            }],
        )
    }

    /// The next packet for the guest in a 4 KiB buffer (as Linux's driver gives), if any.
    fn rx(v: &mut Vsock, m: &GuestMemoryMmap) -> Option<(Hdr, Vec<u8>)> {
        // The host side's bytes may need a moment to be readable.
        for _ in 0..100 {
            if v.ready(RX) {
                let buf = Buf {
                    addr: RXB,
                    len: (HDR_LEN + 4096) as u32,
                    write: true,
                };
                let n = v.serve(RX, m, &[buf]).unwrap() as usize;
                let mut raw = [0u8; HDR_LEN];
                m.read_slice(&mut raw, GuestAddress(RXB)).unwrap();
                let h = Hdr::parse(&raw);
                assert_eq!(n, HDR_LEN + h.len as usize);
                let mut data = vec![0u8; h.len as usize];
                m.read_slice(&mut data, GuestAddress(RXB + HDR_LEN as u64))
                    .unwrap();
                return Some((h, data));
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        None
    }

    /// A device with its uds in `d`, a listener at PATH_5000, and an open guest connection
    /// from guest port 1234 to host port 5000: (device, the host's end).
    fn connected(d: &std::path::Path, m: &GuestMemoryMmap) -> (Vsock, UnixStream) {
        let uds = d.join("v.sock");
        let l = UnixListener::bind(d.join("v.sock_5000")).unwrap();
        let mut v = Vsock::new(CID, Some(&uds)).unwrap();
        tx(&mut v, m, hdr(OP_REQUEST, 1234, 5000), &[]).unwrap();
        let (r, _) = rx(&mut v, m).expect("a response");
        assert_eq!(
            (r.op, r.src_cid, r.dst_cid, r.src_port, r.dst_port),
            (OP_RESPONSE, HOST_CID, u64::from(CID), 5000, 1234)
        );
        let (s, _) = l.accept().unwrap();
        (v, s)
    }

    #[test]
    fn parses_the_option() {
        assert_eq!(parse_vsock("3").unwrap(), VsockArg { cid: 3, uds: None });
        assert_eq!(
            parse_vsock("42,uds=/run/v.sock").unwrap(),
            VsockArg {
                cid: 42,
                uds: Some("/run/v.sock".into())
            }
        );
        for bad in [
            "",
            "0",
            "2",
            "4294967295",
            "x",
            "3,uds=",
            "3,foo=1",
            "3,uds",
        ] {
            assert!(parse_vsock(bad).is_err(), "{bad}");
        }
        let long = format!("3,uds=/{}", "a".repeat(96));
        assert!(parse_vsock(&long).unwrap_err().contains("longer than 96"));
    }

    #[test]
    fn header_and_connect_line() {
        let h = Hdr {
            src_cid: 3,
            dst_cid: 2,
            src_port: 0x0102_0304,
            dst_port: 5,
            len: 6,
            kind: 1,
            op: 7,
            flags: 8,
            buf_alloc: 9,
            fwd_cnt: 10,
        };
        let b = h.bytes();
        assert_eq!(&b[16..20], &[4, 3, 2, 1]);
        assert_eq!(u16::from_le_bytes([b[30], b[31]]), 7);
        assert_eq!(Hdr::parse(&b), h);
        assert_eq!(parse_connect(b"CONNECT 52"), Some(52));
        assert_eq!(parse_connect(b"CONNECT 52\r"), Some(52));
        for bad in [
            &b"CONNECT"[..],
            b"CONNECT ",
            b"CONNECT -1",
            b"connect 5",
            b"CONNECT 99999999999",
        ] {
            assert_eq!(parse_connect(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn guest_connection_carries_data_both_ways_and_closes() {
        let d = dir("guest");
        let m = mem();
        let (mut v, mut s) = connected(&d, &m);
        assert_eq!(v.features(), 1 << 32);
        assert_eq!(v.queues(), 3);
        assert_eq!(v.config(), 3u64.to_le_bytes());
        tx(&mut v, &m, hdr(OP_RW, 1234, 5000), b"hello").unwrap();
        let mut got = [0u8; 5];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        s.write_all(b"world").unwrap();
        let (h, data) = rx(&mut v, &m).expect("the host's bytes");
        assert_eq!(
            (h.op, h.len, h.fwd_cnt, h.buf_alloc),
            (OP_RW, 5, 5, BUF_ALLOC)
        );
        assert_eq!(data, b"world");
        // The host half-closes: the guest is told it sends no more.
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let (h, _) = rx(&mut v, &m).expect("a shutdown");
        assert_eq!((h.op, h.flags), (OP_SHUTDOWN, SHUTDOWN_SEND));
        // The guest can still send, then closes: RST, and the host reads the end.
        tx(&mut v, &m, hdr(OP_RW, 1234, 5000), b"bye").unwrap();
        tx(
            &mut v,
            &m,
            Hdr {
                flags: SHUTDOWN_RCV | SHUTDOWN_SEND,
                ..hdr(OP_SHUTDOWN, 1234, 5000)
            },
            &[],
        )
        .unwrap();
        let (h, _) = rx(&mut v, &m).expect("a reset");
        assert_eq!(h.op, OP_RST);
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"bye");
        assert_eq!(v.connections(), 0);
        assert!(rx(&mut v, &m).is_none());
        drop(v);
        assert!(!d.join("v.sock").exists(), "the listener's path is removed");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn host_connection_goes_through_the_connect_line() {
        let d = dir("host");
        let m = mem();
        let uds = d.join("v.sock");
        let mut v = Vsock::new(CID, Some(&uds)).unwrap();
        let mut s = UnixStream::connect(&uds).unwrap();
        s.write_all(b"CONNECT 52\nping").unwrap();
        let (h, _) = rx(&mut v, &m).expect("a request");
        assert_eq!(
            (h.op, h.src_cid, h.dst_cid, h.dst_port),
            (OP_REQUEST, HOST_CID, u64::from(CID), 52)
        );
        assert!(h.src_port >= FIRST_HOST_PORT);
        // Nothing of the stream before the guest accepts.
        assert!(rx(&mut v, &m).is_none());
        let resp = Hdr {
            op: OP_RESPONSE,
            src_port: 52,
            dst_port: h.src_port,
            ..hdr(0, 0, 0)
        };
        tx(&mut v, &m, resp, &[]).unwrap();
        let mut line = [0u8; 64];
        let n = s.read(&mut line).unwrap();
        assert_eq!(
            std::str::from_utf8(&line[..n]).unwrap(),
            format!("OK {}\n", h.src_port)
        );
        let (p, data) = rx(&mut v, &m).expect("the stream");
        assert_eq!(
            (p.op, p.dst_port, data.as_slice()),
            (OP_RW, 52, &b"ping"[..])
        );
        // The guest resets: the host program reads the end.
        tx(&mut v, &m, Hdr { op: OP_RST, ..resp }, &[]).unwrap();
        assert_eq!(s.read(&mut line).unwrap(), 0);
        assert_eq!(v.connections(), 0);
        // A bad line is closed on, and the guest hears nothing.
        let mut bad = UnixStream::connect(&uds).unwrap();
        bad.write_all(b"HELLO 5\n").unwrap();
        assert!(rx(&mut v, &m).is_none());
        assert_eq!(bad.read(&mut line).unwrap(), 0);
        drop(v);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_guests_credit_bounds_what_is_read() {
        let d = dir("credit");
        let m = mem();
        let uds = d.join("v.sock");
        let l = UnixListener::bind(d.join("v.sock_7")).unwrap();
        let mut v = Vsock::new(CID, Some(&uds)).unwrap();
        let small = Hdr {
            buf_alloc: 6000,
            ..hdr(OP_REQUEST, 9, 7)
        };
        tx(&mut v, &m, small, &[]).unwrap();
        assert_eq!(rx(&mut v, &m).unwrap().0.op, OP_RESPONSE);
        let (mut s, _) = l.accept().unwrap();
        s.write_all(&[7u8; 20000]).unwrap();
        let mut got = 0;
        while let Some((h, data)) = rx(&mut v, &m) {
            assert_eq!(h.op, OP_RW);
            got += data.len();
        }
        assert_eq!(got, 6000, "no more than the guest's buf_alloc");
        // The guest passed 6000 on: 6000 more.
        let update = Hdr {
            op: OP_CREDIT_UPDATE,
            fwd_cnt: 6000,
            ..small
        };
        tx(&mut v, &m, update, &[]).unwrap();
        let mut more = 0;
        while let Some((_, data)) = rx(&mut v, &m) {
            more += data.len();
        }
        assert_eq!(more, 6000);
        // A credit request is answered.
        tx(
            &mut v,
            &m,
            Hdr {
                op: OP_CREDIT_REQUEST,
                ..update
            },
            &[],
        )
        .unwrap();
        let (h, _) = rx(&mut v, &m).unwrap();
        assert_eq!((h.op, h.buf_alloc), (OP_CREDIT_UPDATE, BUF_ALLOC));
        drop(v);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_guest_past_its_credit_is_reset() {
        let d = dir("flood");
        let m = mem();
        let (mut v, s) = connected(&d, &m);
        // The host reads nothing: the socket fills, then the device's room, then a reset.
        let chunk = vec![1u8; MAX_PAYLOAD];
        let mut reset = false;
        for _ in 0..64 {
            tx(&mut v, &m, hdr(OP_RW, 1234, 5000), &chunk).unwrap();
            if v.connections() == 0 {
                reset = true;
                break;
            }
        }
        assert!(reset, "the connection was reset");
        let mut ops = Vec::new();
        while let Some((h, _)) = rx(&mut v, &m) {
            ops.push(h.op);
        }
        assert_eq!(ops.last(), Some(&OP_RST), "{ops:?}");
        drop(s);
        drop(v);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn strays_and_refusals_are_reset() {
        let d = dir("strays");
        let m = mem();
        let uds = d.join("v.sock");
        let mut v = Vsock::new(CID, Some(&uds)).unwrap();
        // Nobody listens at PATH_5001.
        tx(&mut v, &m, hdr(OP_REQUEST, 1, 5001), &[]).unwrap();
        // Data for a connection there is not.
        tx(&mut v, &m, hdr(OP_RW, 2, 5000), b"x").unwrap();
        // From another CID, and to another CID.
        tx(
            &mut v,
            &m,
            Hdr {
                src_cid: 4,
                ..hdr(OP_REQUEST, 3, 5000)
            },
            &[],
        )
        .unwrap();
        tx(
            &mut v,
            &m,
            Hdr {
                dst_cid: 7,
                ..hdr(OP_REQUEST, 4, 5000)
            },
            &[],
        )
        .unwrap();
        // A reset for nothing is not answered.
        tx(&mut v, &m, hdr(OP_RST, 5, 5000), &[]).unwrap();
        let mut resets = Vec::new();
        while let Some((h, _)) = rx(&mut v, &m) {
            assert_eq!(h.op, OP_RST);
            resets.push(h.dst_port);
        }
        assert_eq!(resets, [1, 2, 3, 4]);
        assert_eq!(v.counts.resets, 4);
        // Without uds, every connection to the host is reset.
        let mut none = Vsock::new(CID, None).unwrap();
        tx(&mut none, &m, hdr(OP_REQUEST, 1, 5000), &[]).unwrap();
        assert_eq!(rx(&mut none, &m).unwrap().0.op, OP_RST);
        drop(v);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn malformed_packets_are_faults() {
        let m = mem();
        let mut v = Vsock::new(CID, None).unwrap();
        let short = Buf {
            addr: TXB,
            len: 43,
            write: false,
        };
        assert!(matches!(v.serve(TX, &m, &[short]), Err(Fault::Layout(_))));
        let h = Hdr {
            len: 100,
            ..hdr(OP_RW, 1, 2)
        };
        m.write_slice(&h.bytes(), GuestAddress(TXB)).unwrap();
        let just_hdr = Buf {
            addr: TXB,
            len: HDR_LEN as u32,
            write: false,
        };
        assert!(matches!(
            v.serve(TX, &m, &[just_hdr]),
            Err(Fault::Layout(_))
        ));
        let writable = Buf {
            write: true,
            ..just_hdr
        };
        assert!(matches!(
            v.serve(TX, &m, &[writable]),
            Err(Fault::Layout(_))
        ));
        // The event queue is never used.
        assert!(!v.ready(EVENT));
    }

    #[test]
    fn the_listener_replaces_a_stale_socket_and_refuses_a_live_one() {
        let d = dir("stale");
        let uds = d.join("v.sock");
        // A socket file nobody listens on (a killed tinyvmm's).
        drop(UnixListener::bind(&uds).unwrap());
        assert!(uds.exists());
        let v = Vsock::new(CID, Some(&uds)).unwrap();
        let e = Vsock::new(CID, Some(&uds))
            .err()
            .expect("a second listener is refused");
        assert!(e.to_string().contains("listens on it already"), "{e}");
        drop(v);
        assert!(!uds.exists());
        std::fs::write(&uds, b"not a socket").unwrap();
        let e = Vsock::new(CID, Some(&uds))
            .err()
            .expect("a file is refused");
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert!(uds.exists(), "the file is left as it was");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn console_writes_the_guests_output_and_faults_on_a_bad_chain() {
    use super::console::{Console, RX, TX};
    use super::Device;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let (mut host, out) = std::os::unix::net::UnixStream::pair().unwrap();
    let m = mem();
    m.write_slice(b"hello ", GuestAddress(0x10000)).unwrap();
    m.write_slice(b"guest\n", GuestAddress(0x20000)).unwrap();
    let mut c = Console::new(out.as_raw_fd());
    assert_eq!((c.device_id(), c.queues(), c.config().len()), (3, 2, 12));
    assert!(c.ready(TX) && !c.ready(RX));
    let b = |addr, len, write| Buf { addr, len, write };
    let chain = [b(0x10000, 6, false), b(0x20000, 6, false)];
    assert!(matches!(c.serve(TX, &m, &chain), Ok(0)));
    let mut got = [0u8; 12];
    host.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello guest\n");
    assert!(matches!(
        c.serve(TX, &m, &[b(0x10000, 6, false), b(0x11000, 6, true)]),
        Err(Fault::Layout(_))
    ));
    assert!(matches!(
        c.serve(TX, &m, &[b((1 << 20) - 2, 4, false)]),
        Err(Fault::OutsideRam { .. })
    ));
    // Nothing of the refused chains went out.
    drop((c, out));
    let mut rest = Vec::new();
    host.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"");
}

/// An external device (vhost-user's shape) that records what the transport asks of it.
#[derive(Default)]
struct Backend {
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    refuse: bool,
    signal: bool,
}

impl super::Device for Backend {
    fn device_id(&self) -> u32 {
        26
    }
    fn features(&self) -> u64 {
        1 << 32
    }
    fn queues(&self) -> usize {
        2
    }
    fn serve(&mut self, q: usize, _: &GuestMemoryMmap, _: &[Buf]) -> Result<u32, Fault> {
        self.log.lock().unwrap().push(format!("serve {q}"));
        Ok(0)
    }
    fn external(&self) -> bool {
        true
    }
    fn activate(
        &mut self,
        _: &GuestMemoryMmap,
        features: u64,
        queues: &[super::QueueSetup],
    ) -> Result<(), Fault> {
        let qs: Vec<String> = queues
            .iter()
            .map(|q| {
                format!(
                    "{}:{}:{:x}:{:x}:{:x}",
                    q.ready, q.size, q.desc, q.avail, q.used
                )
            })
            .collect();
        self.log
            .lock()
            .unwrap()
            .push(format!("activate {features:x} {}", qs.join(" ")));
        if self.refuse {
            return Err(Fault::Backend("SET_MEM_TABLE: refused".into()));
        }
        Ok(())
    }
    fn kick(&mut self, q: usize) {
        self.log.lock().unwrap().push(format!("kick {q}"));
    }
    fn signalled(&mut self) -> bool {
        std::mem::take(&mut self.signal)
    }
    fn reset(&mut self) {
        self.log.lock().unwrap().push("reset".into());
    }
}

#[test]
fn an_external_device_gets_its_rings_at_driver_ok_and_then_only_kicks() {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let dev = Backend {
        log: log.clone(),
        ..Default::default()
    };
    let m = mem();
    let mut t = Transport::new(Box::new(dev));
    assert!(t.external());
    // Before DRIVER_OK nothing is handed over.
    assert!(!t.activate(&m));
    set(&mut t, VIRTIO_MMIO_STATUS, 3);
    set(&mut t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    set(&mut t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
    set(&mut t, VIRTIO_MMIO_STATUS, 0xb);
    set(&mut t, VIRTIO_MMIO_QUEUE_SEL, 1);
    set(&mut t, VIRTIO_MMIO_QUEUE_NUM, u32::from(SIZE));
    set(&mut t, VIRTIO_MMIO_QUEUE_DESC_LOW, DESC as u32);
    set(&mut t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, AVAIL as u32);
    set(&mut t, VIRTIO_MMIO_QUEUE_USED_LOW, USED as u32);
    set(&mut t, VIRTIO_MMIO_QUEUE_READY, 1);
    assert!(!t.activate(&m));
    assert!(log.lock().unwrap().is_empty());
    set(&mut t, VIRTIO_MMIO_STATUS, 0xf);
    assert!(!t.activate(&m));
    // Once: a second status write does not hand the rings over again.
    assert!(!t.activate(&m));
    // The notification is the backend's; the transport serves nothing itself.
    assert_eq!(set(&mut t, VIRTIO_MMIO_QUEUE_NOTIFY, 1), Write::Notify(1));
    assert_eq!(t.process(1, &m), (false, false));
    assert_eq!(
        *log.lock().unwrap(),
        [
            format!("activate 100000000 false:{QUEUE_MAX}:0:0:0 true:{SIZE}:1000:2000:3000"),
            "kick 1".to_string()
        ]
    );
    // No signal, no interrupt; a reset takes the rings back and the next start hands them
    // over again.
    assert!(!t.signalled());
    assert_eq!(reg(&t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    set(&mut t, VIRTIO_MMIO_STATUS, 0);
    assert!(log.lock().unwrap().ends_with(&["reset".to_string()]));
    assert_eq!(t.process(1, &m), (false, false));
    assert!(!log.lock().unwrap().iter().any(|l| l.starts_with("serve")));
}

#[test]
fn an_external_devices_signal_is_the_used_buffer_interrupt_and_a_refusal_needs_a_reset() {
    let m = mem();
    let start = |t: &mut Transport| {
        set(t, VIRTIO_MMIO_STATUS, 3);
        set(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        set(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
        set(t, VIRTIO_MMIO_STATUS, 0xb);
        set(t, VIRTIO_MMIO_STATUS, 0xf);
    };
    let mut t = Transport::new(Box::new(Backend {
        signal: true,
        ..Default::default()
    }));
    // A signal before the rings were handed over is not the guest's.
    assert!(!t.signalled());
    let mut t2 = Transport::new(Box::new(Backend {
        signal: true,
        ..Default::default()
    }));
    start(&mut t2);
    assert!(!t2.activate(&m));
    assert!(t2.signalled());
    assert_eq!(
        reg(&t2, VIRTIO_MMIO_INTERRUPT_STATUS),
        VIRTIO_MMIO_INT_VRING
    );
    assert!(!t2.signalled());
    // A backend that refuses the rings: NEEDS_RESET, a configuration interrupt, the reason.
    t = Transport::new(Box::new(Backend {
        refuse: true,
        ..Default::default()
    }));
    start(&mut t);
    assert!(t.activate(&m));
    assert_eq!(reg(&t, VIRTIO_MMIO_STATUS) & 0x40, 0x40);
    assert_eq!(
        reg(&t, VIRTIO_MMIO_INTERRUPT_STATUS),
        VIRTIO_MMIO_INT_CONFIG
    );
    assert_eq!(
        t.fault().map(ToString::to_string).as_deref(),
        Some("its backend failed: SET_MEM_TABLE: refused")
    );
    // Kicks go nowhere while the device needs a reset.
    assert_eq!(t.process(0, &m), (false, false));
}
