//! A descriptor chain checked before a device touches it: virtio-queue's iterator walks a chain
//! but ends it quietly where it cannot go on (a descriptor it cannot read, a `next` outside the
//! table, a loop that used up the chain's length), which would look like a shorter request. Here
//! each of those, and a buffer outside guest RAM, is a [`Fault`] that puts the device into
//! NEEDS_RESET instead.

use std::fmt;

use virtio_queue::DescriptorChain;
use vm_memory::{Address, Bytes, GuestAddress, GuestMemory, GuestMemoryMmap};

/// One buffer of a chain, inside guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buf {
    /// Guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// The device writes it (VIRTQ_DESC_F_WRITE); otherwise it reads it.
    pub write: bool,
}

/// A request the device cannot take: the driver broke the virtqueue's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The queue's rings are not in guest RAM, or its available index is impossible.
    Ring(String),
    /// The head or a `next` points outside the table, or a descriptor could not be read.
    Broken {
        /// The chain's head index.
        head: u16,
    },
    /// The chain has more descriptors than the queue: it loops.
    Loop {
        /// The chain's head index.
        head: u16,
    },
    /// A buffer is not (entirely) in guest RAM: a bad address or an oversize length.
    OutsideRam {
        /// The buffer's address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// The request's layout is not the device's (too short, buffers in the wrong direction).
    Layout(&'static str),
    /// The process that runs the device's queues (vhost-user) refused or did not answer.
    Backend(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Ring(why) => write!(f, "bad virtqueue: {why}"),
            Fault::Broken { head } => {
                write!(f, "descriptor chain at {head} leaves the descriptor table")
            }
            Fault::Loop { head } => write!(f, "descriptor chain at {head} loops"),
            Fault::OutsideRam { addr, len } => {
                write!(f, "buffer 0x{addr:x} (+{len} bytes) is outside guest RAM")
            }
            Fault::Layout(why) => write!(f, "bad request: {why}"),
            Fault::Backend(why) => write!(f, "its backend failed: {why}"),
        }
    }
}

impl Buf {
    /// The fault of a copy to or from this buffer that guest memory refused.
    pub fn outside(&self) -> Fault {
        Fault::OutsideRam {
            addr: self.addr,
            len: self.len,
        }
    }
}

/// The buffers cut into pieces of at most `max` bytes, in order, as (guest address, length,
/// the buffer): the shape of every copy between a device's staging buffer and guest memory.
pub fn pieces<'a>(
    bufs: impl IntoIterator<Item = &'a Buf>,
    max: usize,
) -> impl Iterator<Item = (GuestAddress, usize, &'a Buf)> {
    let max = max.max(1);
    bufs.into_iter().flat_map(move |b| {
        (0..b.len as usize).step_by(max).map(move |off| {
            let n = (b.len as usize - off).min(max);
            (GuestAddress(b.addr + off as u64), n, b)
        })
    })
}

/// The buffers of `chain`, each checked to lie in `mem`; a chain that stops early (an unreadable
/// descriptor, a `next` out of the table) or loops is a [`Fault`].
pub fn collect<M>(
    chain: DescriptorChain<M>,
    mem: &GuestMemoryMmap,
    queue_size: u16,
) -> Result<Vec<Buf>, Fault>
where
    M: std::ops::Deref,
    M::Target: GuestMemory,
{
    let head = chain.head_index();
    let mut bufs = Vec::new();
    let mut more = true;
    for d in chain {
        let (addr, len) = (d.addr().raw_value(), d.len());
        if len > 0 && !in_ram(mem, addr, len) {
            return Err(Fault::OutsideRam { addr, len });
        }
        bufs.push(Buf {
            addr,
            len,
            write: d.is_write_only(),
        });
        more = d.has_next();
    }
    if bufs.is_empty() {
        return Err(Fault::Broken { head });
    }
    if more {
        // The iterator stopped while the last descriptor still had a successor: either its
        // budget of one visit per table entry ran out, which only a loop reaches, or the
        // successor was unreadable or outside the table.
        return Err(if bufs.len() >= usize::from(queue_size) {
            Fault::Loop { head }
        } else {
            Fault::Broken { head }
        });
    }
    Ok(bufs)
}

/// Whether `[addr, addr + len)` is guest RAM.
pub fn in_ram(mem: &GuestMemoryMmap, addr: u64, len: u32) -> bool {
    addr.checked_add(u64::from(len)).is_some()
        && mem.check_range(
            GuestAddress(addr),
            len as usize,
            vm_memory::Permissions::Read,
        )
}

/// Reads `out.len()` bytes starting `skip` bytes into the concatenation of `bufs`.
pub fn read_from(
    mem: &GuestMemoryMmap,
    bufs: &[Buf],
    mut skip: u64,
    out: &mut [u8],
) -> Result<(), Fault> {
    let mut done = 0;
    for b in bufs {
        if done == out.len() {
            break;
        }
        let len = u64::from(b.len);
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = ((len - skip) as usize).min(out.len() - done);
        mem.read_slice(&mut out[done..done + n], GuestAddress(b.addr + skip))
            .map_err(|_| b.outside())?;
        done += n;
        skip = 0;
    }
    if done < out.len() {
        return Err(Fault::Layout("request shorter than its header"));
    }
    Ok(())
}

/// Writes `data` across the buffers in order, as far as they hold it; returns the bytes written.
pub fn write_to<'a>(
    mem: &GuestMemoryMmap,
    bufs: impl IntoIterator<Item = &'a Buf>,
    data: &[u8],
) -> Result<u32, Fault> {
    let mut done = 0;
    for b in bufs {
        if done == data.len() {
            break;
        }
        let n = (b.len as usize).min(data.len() - done);
        mem.write_slice(&data[done..done + n], GuestAddress(b.addr))
            .map_err(|_| b.outside())?;
        done += n;
    }
    Ok(done as u32)
}

/// Total bytes of `bufs`.
pub fn total(bufs: &[Buf]) -> u64 {
    bufs.iter().map(|b| u64::from(b.len)).sum()
}
