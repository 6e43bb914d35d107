//! virtio devices (virtio 1.x, modern) on the MMIO transport, for `--disk`, `--rng`, `--net`,
//! `--vsock`, `--share` and the one-shot mode's console: a device is a page of registers at
//! [`MMIO_BASE`] + n * [`MMIO_STRIDE`] with its own interrupt line, described to a kernel in the
//! DSDT (`LNRO0005`, as Linux's virtio_mmio driver matches), since Debian's kernels build no
//! `virtio_mmio.device=` command-line parsing. The register model and request parsing are pure
//! ([`mmio`], [`chain`], [`blk`], [`rng`], [`net`], [`console`], [`vsock`]'s packets); [`bus`]
//! wires them to KVM (ioeventfd, irqfd) and runs requests on a thread of their own, which also
//! watches what a device receives from outside (a tap, vsock's host sockets). [`fs`]'s queues
//! are run by another process (virtiofsd, over vhost-user): the transport hands it the rings
//! and forwards notifications and interrupts.

pub mod blk;
pub mod bus;
pub mod chain;
pub mod console;
pub mod fs;
pub mod mmio;
pub mod net;
pub mod rng;
pub mod vsock;

use std::os::fd::RawFd;

use vm_memory::GuestMemoryMmap;

pub use chain::{Buf, Fault};

/// The first device's registers: above the largest guest RAM (3 GiB), below the IOAPIC.
pub const MMIO_BASE: u64 = 0xd000_0000;
/// One page of registers per device.
pub const MMIO_STRIDE: u64 = 0x1000;
/// Interrupt lines (GSIs) the devices get, in order: the ISA lines nothing else uses (COM1 has
/// 4, the RTC 8, the SCI 9), then the IOAPIC's upper pins.
pub const IRQS: [u32; 17] = [
    5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
];
/// How many devices a VM can have (one interrupt line each).
pub const MAX_DEVICES: usize = IRQS.len();

/// The guest-physical address of device `n`'s registers.
pub fn mmio_addr(n: usize) -> u64 {
    MMIO_BASE + n as u64 * MMIO_STRIDE
}

/// Where the driver put one queue, as the transport holds it when the driver starts the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSetup {
    /// The driver made the queue ready.
    pub ready: bool,
    /// Its size.
    pub size: u16,
    /// Guest-physical addresses of the descriptor table, the available and the used ring.
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
}

/// What a virtio device is to its transport: its type, features, configuration space, queues,
/// and how it serves one request.
pub trait Device: Send {
    /// The virtio device id (1 network, 2 block, 3 console, 4 entropy, 19 vsock).
    fn device_id(&self) -> u32;
    /// Feature bits offered, VIRTIO_F_VERSION_1 included.
    fn features(&self) -> u64;
    /// Number of queues.
    fn queues(&self) -> usize {
        1
    }
    /// The device-specific configuration space.
    fn config(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Serves the request in `bufs` (already checked to lie in RAM) taken from `queue`: returns
    /// how many bytes it wrote into the guest's buffers (the used length), or the driver's
    /// fault, which makes the device need a reset.
    fn serve(&mut self, queue: usize, mem: &GuestMemoryMmap, bufs: &[Buf]) -> Result<u32, Fault>;
    /// Whether the device has something for a request of `queue` now. A device that answers
    /// only when something arrives from outside (a network device's receive queue) says no
    /// while nothing has, and the guest's buffers stay available.
    fn ready(&mut self, _queue: usize) -> bool {
        true
    }
    /// A descriptor whose readability means that `queue` may now be served (a tap for the
    /// receive queue), watched by the device thread.
    fn input(&self) -> Option<(RawFd, usize)> {
        None
    }
    /// Whether the [`Device::input`] descriptor should be watched again: not while the device
    /// holds what it read for a buffer the guest has not given yet (the descriptor would stay
    /// readable and wake the thread for nothing).
    fn wants_input(&self) -> bool {
        true
    }
    /// Throws away what arrived while the driver does not run the device (a link that is down
    /// drops its frames).
    fn discard_input(&mut self) {}
    /// The driver accepted `features` (FEATURES_OK): a device whose work depends on them
    /// (the network's offloads) takes note.
    fn negotiated(&mut self, _features: u64) {}
    /// The driver reset the device: forget what was in flight.
    fn reset(&mut self) {}
    /// Whether another process runs the device's queues (vhost-user): the transport then
    /// serves no request itself, calls [`Device::activate`] when the driver starts the device,
    /// [`Device::kick`] for each notification, and reads [`Device::input`] as the backend's
    /// interrupt ([`Device::signalled`]).
    fn external(&self) -> bool {
        false
    }
    /// Whether guest memory must be shareable with another process (a memfd).
    fn shares_memory(&self) -> bool {
        false
    }
    /// The driver set DRIVER_OK with `features` and these queues: an external device hands
    /// them to its backend.
    fn activate(
        &mut self,
        _mem: &GuestMemoryMmap,
        _features: u64,
        _queues: &[QueueSetup],
    ) -> Result<(), Fault> {
        Ok(())
    }
    /// The driver notified `queue` of an external device.
    fn kick(&mut self, _queue: usize) {}
    /// An external device's backend signalled used buffers (reading its signal).
    fn signalled(&mut self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests;
