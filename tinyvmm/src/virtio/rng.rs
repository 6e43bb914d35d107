//! virtio-rng (`--rng`): every device-writable buffer of a request is filled from the host's
//! getrandom(2), so a guest kernel's entropy pool is ready as soon as its driver probes.

use vm_memory::{Bytes, GuestMemoryMmap};

use super::chain;
use super::{Buf, Device, Fault};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ids::VIRTIO_ID_RNG;

/// Bytes served per request at most: a driver asking for more gets this much (the used length
/// says so), so that a huge buffer does not keep the device thread busy.
pub const MAX_PER_REQUEST: usize = 64 * 1024;

/// The entropy device.
#[derive(Debug, Default)]
pub struct Rng;

/// Fills `buf` from getrandom(2) (which does not fail for a buffer once the host's pool is
/// initialised, apart from signals).
pub fn fill(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: getrandom writes at most rest.len() bytes into the valid slice.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            done += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // Never reached on Linux >= 3.17; the guest then gets zeros, not a hang.
            return;
        }
    }
}

impl Device for Rng {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_RNG
    }

    fn features(&self) -> u64 {
        1 << VIRTIO_F_VERSION_1
    }

    fn serve(&mut self, _queue: usize, mem: &GuestMemoryMmap, bufs: &[Buf]) -> Result<u32, Fault> {
        let mut left = MAX_PER_REQUEST;
        let mut written = 0u32;
        let mut chunk = vec![0u8; 4096];
        for (addr, n, b) in chain::pieces(bufs.iter().filter(|b| b.write), chunk.len()) {
            let n = n.min(left);
            if n == 0 {
                break;
            }
            fill(&mut chunk[..n]);
            mem.write_slice(&chunk[..n], addr)
                .map_err(|_| b.outside())?;
            left -= n;
            written += n as u32;
        }
        Ok(written)
    }
}
