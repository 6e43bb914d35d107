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
