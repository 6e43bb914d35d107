//! virtio-console, the one-shot mode's channel for the command's output: what the guest writes
//! to /dev/hvc0 goes to tinyvmm's stdout unchanged, so that the serial console carries only the
//! kernel's log (on stderr) and `tinyvmm run --rootfs DIR -- CMD > FILE` gets CMD's output alone.
//! One port, no multiport or size features; the command's stdin stays the serial console.

use std::io::Write as _;

use vm_memory::{Bytes, GuestMemoryMmap};

use super::chain;
use super::{Buf, Device, Fault};
use crate::devices::RawOut;
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ids::VIRTIO_ID_CONSOLE;

/// The port's receive queue (host to guest): never served, since nothing is sent to the guest.
pub const RX: usize = 0;
/// The port's transmit queue (guest to host).
pub const TX: usize = 1;

/// The console device, writing the guest's output to a descriptor of tinyvmm's.
#[derive(Debug)]
pub struct Console {
    out: RawOut,
}

impl Console {
    /// A console whose output goes to `fd` (1: stdout).
    pub fn new(fd: i32) -> Console {
        Console { out: RawOut(fd) }
    }
}

impl Device for Console {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_CONSOLE
    }

    fn features(&self) -> u64 {
        1 << VIRTIO_F_VERSION_1
    }

    fn queues(&self) -> usize {
        2
    }

    /// `struct virtio_console_config` (cols, rows, max_nr_ports, emerg_wr), all zero: a driver
    /// reads its fields only with the features this device does not offer.
    fn config(&self) -> Vec<u8> {
        vec![0; 12]
    }

    fn ready(&mut self, queue: usize) -> bool {
        queue == TX
    }

    /// Writes out the chain's readable buffers; device-writable ones in a transmit chain are a
    /// driver's fault, and so is any buffer outside RAM. The used length is 0: nothing written
    /// into the guest.
    fn serve(&mut self, queue: usize, mem: &GuestMemoryMmap, bufs: &[Buf]) -> Result<u32, Fault> {
        if queue != TX {
            return Ok(0);
        }
        if bufs.iter().any(|b| b.write) {
            return Err(Fault::Layout(
                "a device-writable buffer in a console transmit chain",
            ));
        }
        let mut chunk = vec![0u8; 4096];
        for (addr, n, b) in chain::pieces(bufs, chunk.len()) {
            mem.read_slice(&mut chunk[..n], addr)
                .map_err(|_| b.outside())?;
            // A closed stdout is tinyvmm's write error at exit (RawOut says so); the guest
            // goes on, as with the serial console.
            if self.out.write_all(&chunk[..n]).is_err() {
                break;
            }
        }
        Ok(0)
    }
}
