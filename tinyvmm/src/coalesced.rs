//! The transmitter without an exit per byte: KVM's coalesced port I/O queues a kernel guest's
//! writes to COM1's transmit register in a ring page shared with tinyvmm instead of stopping the
//! vCPU for each, and the console takes them out in order before any other access to the UART
//! (Linux reads the line or interrupt status after every burst, so nothing waits long) and when
//! the run ends. Output stays byte for byte what the guest wrote; only the exits go. Opt-in
//! (`--console-ring`): in the nested lane the ring was what crashed level 1 (tinyvmm's README).

use std::sync::atomic::{AtomicU32, Ordering};

use kvm_bindings::{kvm_coalesced_mmio, KVM_COALESCED_MMIO_PAGE_OFFSET};
use kvm_ioctls::{Cap, IoEventAddress, Kvm, VcpuFd, VmFd};

/// Bytes one ring entry carries at most.
const ENTRY_DATA: usize = 8;

/// The ring page KVM fills (`struct kvm_coalesced_mmio_ring`): `first` (tinyvmm's, the next
/// entry to read), `last` (KVM's, one past the newest), then the entries.
pub struct TxRing {
    page: *mut u8,
    size: usize,
}

// SAFETY: the page is a shared mapping of the VM's ring, valid until drop from any thread; the
// console reads it only under its lock, so one reader at a time advances `first`.
unsafe impl Send for TxRing {}

impl TxRing {
    /// Queues the VM's writes to `port` (one byte wide) in the ring, mapped through `vcpu`.
    /// None where KVM cannot coalesce port I/O (the run then exits per byte as before).
    pub fn register(kvm: &Kvm, vm: &VmFd, vcpu: &VcpuFd, port: u16) -> Option<TxRing> {
        if !kvm.check_extension(Cap::CoalescedPio) {
            return None;
        }
        // SAFETY: sysconf has no preconditions.
        let size = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
        let offset = libc::off_t::from(KVM_COALESCED_MMIO_PAGE_OFFSET) * size as libc::off_t;
        // SAFETY: a new shared mapping of the vCPU fd's ring page, at the offset KVM documents;
        // nothing else lives at the address the kernel picks.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(vcpu),
                offset,
            )
        };
        if page == libc::MAP_FAILED {
            return None;
        }
        let ring = TxRing {
            page: page.cast(),
            size,
        };
        vm.register_coalesced_mmio(IoEventAddress::Pio(u64::from(port)), 1)
            .ok()?;
        Some(ring)
    }

    fn capacity(&self) -> u32 {
        ((self.size - 8) / std::mem::size_of::<kvm_coalesced_mmio>()) as u32
    }

    fn index(&self, at: usize) -> &AtomicU32 {
        // SAFETY: `first` and `last` are the page's two leading, aligned u32s, which KVM and
        // this reader update in place; the page outlives `self`.
        unsafe { &*self.page.add(at * 4).cast::<AtomicU32>() }
    }

    /// Takes out every queued write in order, handing each byte to `out`.
    pub fn drain(&mut self, mut out: impl FnMut(u8)) {
        let cap = self.capacity();
        let first = self.index(0);
        let last = self.index(1).load(Ordering::Acquire);
        let mut at = first.load(Ordering::Relaxed);
        while at != last && at < cap {
            // SAFETY: entry `at` < capacity lies inside the page; KVM wrote it before it moved
            // `last` past it (the Acquire above), and does not touch it until `first` passes it.
            let e = unsafe {
                self.page
                    .add(8)
                    .cast::<kvm_coalesced_mmio>()
                    .add(at as usize)
                    .read_volatile()
            };
            let len = (e.len as usize).min(ENTRY_DATA);
            e.data[..len].iter().for_each(|&b| out(b));
            at = (at + 1) % cap;
        }
        first.store(at, Ordering::Release);
    }
}

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `register`, unmapped once.
        unsafe { libc::munmap(self.page.cast(), self.size) };
    }
}
