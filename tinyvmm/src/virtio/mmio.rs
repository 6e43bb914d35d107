//! The virtio-mmio register page (version 2, virtio 1.x) of one device and its queues, as plain
//! state: [`Transport::read`]/[`Transport::write`] are what a vCPU's MMIO access does,
//! [`Transport::process`] serves a queue's available requests. A driver that breaks the
//! virtqueue rules puts the device into NEEDS_RESET (and raises a configuration-change
//! interrupt) rather than stopping the VM; only a reset (status 0) brings it back.

use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET,
    VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_mmio::*;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::GuestMemoryMmap;

use super::chain::{self, Fault};
use super::{Device, QueueSetup};

/// "virt", little-endian.
pub const MAGIC: u32 = 0x7472_6976;
/// The modern (virtio 1.x) MMIO layout.
pub const VERSION: u32 = 2;
/// The vendor id devices report: "TVMM" would do; QEMU's 0x554d4551 shows drivers ignore it.
pub const VENDOR: u32 = 0x4d4d_5654;
/// The largest queue a device offers.
pub const QUEUE_MAX: u16 = 256;
/// Requests served per [`Transport::process`] call before it returns (the caller comes back
/// while the queue has more), so that one driver flooding a queue cannot hold the lock for ever.
pub const BATCH: usize = 256;

/// One device's transport state.
pub struct Transport {
    dev: Box<dyn Device>,
    queues: Vec<Queue>,
    queue_sel: u32,
    dev_features_sel: u32,
    drv_features_sel: u32,
    drv_features: u64,
    status: u32,
    interrupt_status: u32,
    config_generation: u32,
    /// Why the device needs a reset, once the driver broke a rule.
    fault: Option<Fault>,
    /// An external device ([`Device::external`]) has its queues with its backend.
    active: bool,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("device_id", &self.dev.device_id())
            .field("status", &self.status)
            .field("fault", &self.fault)
            .finish()
    }
}

/// What a register write asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Nothing more.
    Done,
    /// The driver notified this queue: serve it.
    Notify(usize),
}

fn queue(max: u16) -> Queue {
    // A power of two up to 32768 is always a valid maximum.
    Queue::new(max).unwrap_or_else(|_| unreachable!("QUEUE_MAX is a valid queue size"))
}

/// A write to one of the selected queue's set-up registers.
fn set_queue(q: &mut Queue, reg: u32, v: u32) {
    match reg {
        // virtio-queue refuses (and keeps the old size for) anything but a power of two up to
        // the maximum; the queue is then not valid when used.
        VIRTIO_MMIO_QUEUE_NUM => q.set_size(v.min(u32::from(u16::MAX)) as u16),
        VIRTIO_MMIO_QUEUE_READY => q.set_ready(v == 1),
        VIRTIO_MMIO_QUEUE_DESC_LOW => q.set_desc_table_address(Some(v), None),
        VIRTIO_MMIO_QUEUE_DESC_HIGH => q.set_desc_table_address(None, Some(v)),
        VIRTIO_MMIO_QUEUE_AVAIL_LOW => q.set_avail_ring_address(Some(v), None),
        VIRTIO_MMIO_QUEUE_AVAIL_HIGH => q.set_avail_ring_address(None, Some(v)),
        VIRTIO_MMIO_QUEUE_USED_LOW => q.set_used_ring_address(Some(v), None),
        VIRTIO_MMIO_QUEUE_USED_HIGH => q.set_used_ring_address(None, Some(v)),
        _ => {}
    }
}

impl Transport {
    /// A transport for `dev`, reset.
    pub fn new(dev: Box<dyn Device>) -> Transport {
        let queues = (0..dev.queues()).map(|_| queue(QUEUE_MAX)).collect();
        Transport {
            dev,
            queues,
            queue_sel: 0,
            dev_features_sel: 0,
            drv_features_sel: 0,
            drv_features: 0,
            status: 0,
            interrupt_status: 0,
            config_generation: 0,
            fault: None,
            active: false,
        }
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Why the device needs a reset, if it does.
    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
    }

    fn reset(&mut self) {
        self.dev.reset();
        for q in &mut self.queues {
            q.reset();
        }
        self.queue_sel = 0;
        self.dev_features_sel = 0;
        self.drv_features_sel = 0;
        self.drv_features = 0;
        self.status = 0;
        self.interrupt_status = 0;
        self.fault = None;
        self.active = false;
    }

    /// A read of `data.len()` bytes at `offset` into the register page. Registers are 32-bit;
    /// other widths read zeros (the configuration space takes any width).
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if offset >= u64::from(VIRTIO_MMIO_CONFIG) {
            let config = self.dev.config();
            let start = (offset - u64::from(VIRTIO_MMIO_CONFIG)) as usize;
            for (i, b) in data.iter_mut().enumerate() {
                *b = config.get(start + i).copied().unwrap_or(0);
            }
            return;
        }
        if data.len() != 4 {
            return;
        }
        let q = self.queues.get(self.queue_sel as usize);
        let v: u32 = match offset as u32 {
            VIRTIO_MMIO_MAGIC_VALUE => MAGIC,
            VIRTIO_MMIO_VERSION => VERSION,
            VIRTIO_MMIO_DEVICE_ID => self.dev.device_id(),
            VIRTIO_MMIO_VENDOR_ID => VENDOR,
            VIRTIO_MMIO_DEVICE_FEATURES => match self.dev_features_sel {
                0 => self.dev.features() as u32,
                1 => (self.dev.features() >> 32) as u32,
                _ => 0,
            },
            VIRTIO_MMIO_QUEUE_NUM_MAX => q.map_or(0, |q| u32::from(q.max_size())),
            VIRTIO_MMIO_QUEUE_READY => q.map_or(0, |q| u32::from(q.ready())),
            VIRTIO_MMIO_INTERRUPT_STATUS => self.interrupt_status,
            VIRTIO_MMIO_STATUS => self.status,
            VIRTIO_MMIO_QUEUE_DESC_LOW => q.map_or(0, |q| q.desc_table() as u32),
            VIRTIO_MMIO_QUEUE_DESC_HIGH => q.map_or(0, |q| (q.desc_table() >> 32) as u32),
            VIRTIO_MMIO_QUEUE_AVAIL_LOW => q.map_or(0, |q| q.avail_ring() as u32),
            VIRTIO_MMIO_QUEUE_AVAIL_HIGH => q.map_or(0, |q| (q.avail_ring() >> 32) as u32),
            VIRTIO_MMIO_QUEUE_USED_LOW => q.map_or(0, |q| q.used_ring() as u32),
            VIRTIO_MMIO_QUEUE_USED_HIGH => q.map_or(0, |q| (q.used_ring() >> 32) as u32),
            VIRTIO_MMIO_CONFIG_GENERATION => self.config_generation,
            // SHM_LEN reads all-ones: no shared memory region.
            VIRTIO_MMIO_SHM_LEN_LOW | VIRTIO_MMIO_SHM_LEN_HIGH => u32::MAX,
            _ => 0,
        };
        data.copy_from_slice(&v.to_le_bytes());
    }

    /// A write of `data` at `offset`. Only 32-bit writes count (the configuration spaces here
    /// are read-only).
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Write {
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            return Write::Done;
        };
        let v = u32::from_le_bytes(bytes);
        // Queue set-up is only for a driver between FEATURES_OK and DRIVER_OK.
        let setup = self.status & VIRTIO_CONFIG_S_FEATURES_OK != 0
            && self.status & VIRTIO_CONFIG_S_DRIVER_OK == 0;
        match offset as u32 {
            VIRTIO_MMIO_DEVICE_FEATURES_SEL => self.dev_features_sel = v,
            VIRTIO_MMIO_DRIVER_FEATURES_SEL => self.drv_features_sel = v,
            VIRTIO_MMIO_DRIVER_FEATURES if self.status & VIRTIO_CONFIG_S_FEATURES_OK == 0 => {
                match self.drv_features_sel {
                    0 => self.drv_features = (self.drv_features & !0xffff_ffff) | u64::from(v),
                    1 => {
                        self.drv_features = (self.drv_features & 0xffff_ffff) | (u64::from(v) << 32)
                    }
                    _ => {}
                }
            }
            VIRTIO_MMIO_QUEUE_SEL => self.queue_sel = v,
            VIRTIO_MMIO_QUEUE_NOTIFY if (v as usize) < self.queues.len() => {
                return Write::Notify(v as usize);
            }
            VIRTIO_MMIO_INTERRUPT_ACK => self.interrupt_status &= !v,
            VIRTIO_MMIO_STATUS => self.set_status(v),
            reg if setup => {
                if let Some(q) = self.queues.get_mut(self.queue_sel as usize) {
                    set_queue(q, reg, v);
                }
            }
            _ => {}
        }
        Write::Done
    }

    fn set_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        let mut v = v & 0xff;
        // NEEDS_RESET is the device's to set, and stays until the reset.
        v = (v & !VIRTIO_CONFIG_S_NEEDS_RESET) | (self.status & VIRTIO_CONFIG_S_NEEDS_RESET);
        if v & VIRTIO_CONFIG_S_FEATURES_OK != 0 && self.status & VIRTIO_CONFIG_S_FEATURES_OK == 0 {
            // The driver may only accept offered features, and a modern device needs VERSION_1.
            let ok = self.drv_features & !self.dev.features() == 0
                && self.drv_features & (1 << VIRTIO_F_VERSION_1) != 0;
            if ok {
                self.dev.negotiated(self.drv_features);
            } else {
                v &= !VIRTIO_CONFIG_S_FEATURES_OK;
            }
        }
        self.status = v;
    }

    /// Whether the driver has the device running (FEATURES_OK accepted, DRIVER_OK, no reset
    /// needed).
    pub fn live(&self) -> bool {
        self.status & VIRTIO_CONFIG_S_FEATURES_OK != 0
            && self.status & VIRTIO_CONFIG_S_DRIVER_OK != 0
            && self.status & VIRTIO_CONFIG_S_NEEDS_RESET == 0
    }

    /// Whether the device's input descriptor ([`Device::input`]) should be watched again; a
    /// device whose driver does not run it first drops what arrived.
    pub fn wants_input(&mut self) -> bool {
        if !self.live() {
            self.dev.discard_input();
        }
        self.dev.wants_input()
    }

    /// The device's input descriptor and the queue it feeds.
    pub fn input(&self) -> Option<(std::os::fd::RawFd, usize)> {
        self.dev.input()
    }

    /// Puts the device into NEEDS_RESET for `fault` and raises the configuration interrupt.
    fn fail(&mut self, fault: Fault) {
        self.fault = Some(fault);
        self.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
        self.config_generation = self.config_generation.wrapping_add(1);
        self.interrupt_status |= VIRTIO_MMIO_INT_CONFIG;
    }

    /// Serves up to [`BATCH`] available requests of queue `index`: returns whether the guest
    /// must be interrupted (used buffers, or the device just went into NEEDS_RESET) and whether
    /// requests remain. An external device's backend is told instead.
    pub fn process(&mut self, index: usize, mem: &GuestMemoryMmap) -> (bool, bool) {
        if !self.live() {
            return (false, false);
        }
        if self.dev.external() {
            if self.active {
                self.dev.kick(index);
            }
            return (false, false);
        }
        match self.serve_queue(index, mem) {
            Ok((used, more)) => {
                if used {
                    self.interrupt_status |= VIRTIO_MMIO_INT_VRING;
                }
                (used, more)
            }
            Err(fault) => {
                self.fail(fault);
                (true, false)
            }
        }
    }

    /// Whether the device's queues are run by another process ([`Device::external`]).
    pub fn external(&self) -> bool {
        self.dev.external()
    }

    /// Hands an external device's queues to its backend once the driver has it running (after
    /// a status write); returns whether the guest must be interrupted (the backend refused,
    /// and the device needs a reset).
    pub fn activate(&mut self, mem: &GuestMemoryMmap) -> bool {
        if !self.dev.external() || self.active || !self.live() {
            return false;
        }
        let queues: Vec<QueueSetup> = self
            .queues
            .iter()
            .map(|q| QueueSetup {
                ready: q.ready(),
                size: q.size(),
                desc: q.desc_table(),
                avail: q.avail_ring(),
                used: q.used_ring(),
            })
            .collect();
        match self.dev.activate(mem, self.drv_features, &queues) {
            Ok(()) => {
                self.active = true;
                false
            }
            Err(fault) => {
                self.fail(fault);
                true
            }
        }
    }

    /// An external device's backend signalled: returns whether the guest must be interrupted
    /// for used buffers.
    pub fn signalled(&mut self) -> bool {
        if self.dev.signalled() && self.active {
            self.interrupt_status |= VIRTIO_MMIO_INT_VRING;
            return true;
        }
        false
    }

    fn serve_queue(&mut self, index: usize, mem: &GuestMemoryMmap) -> Result<(bool, bool), Fault> {
        let Some(q) = self.queues.get_mut(index) else {
            return Ok((false, false));
        };
        if !q.ready() {
            return Ok((false, false));
        }
        if !q.is_valid(mem) {
            return Err(Fault::Ring(
                "rings not in guest RAM or a size not a power of two".into(),
            ));
        }
        let size = q.size();
        let mut used = false;
        for _ in 0..BATCH {
            if !self.dev.ready(index) {
                return Ok((used, false));
            }
            let chain = {
                let mut iter = q.iter(mem).map_err(|e| Fault::Ring(e.to_string()))?;
                match iter.next() {
                    Some(c) => c,
                    None => return Ok((used, false)),
                }
            };
            let head = chain.head_index();
            let bufs = chain::collect(chain, mem, size)?;
            let len = self.dev.serve(index, mem, &bufs)?;
            q.add_used(mem, head, len)
                .map_err(|e| Fault::Ring(e.to_string()))?;
            used = true;
        }
        Ok((used, true))
    }
}
