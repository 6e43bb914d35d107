//! virtio-blk (`--disk FILE[,ro]`): a raw image as /dev/vda, /dev/vdb..., serving read, write,
//! flush and get-id; a read-only disk offers VIRTIO_BLK_F_RO and answers writes with
//! VIRTIO_BLK_S_IOERR. The image is locked with flock(2) (exclusive when writable, shared when
//! read-only), so two VMs cannot write one image; the lock goes with the process, however it
//! ends, and leaves no file behind.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_ID_BYTES,
    VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH,
    VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::chain::{self, read_from, total};
use super::{Buf, Device, Fault};

/// The sector size of the protocol.
pub const SECTOR: u64 = 512;
/// The request header: type, reserved, sector.
const HEADER: u64 = 16;
/// Data buffers a request may have (VIRTIO_BLK_F_SEG_MAX): the queue's size less the header
/// and the status. Without it Linux sends one data buffer a request.
pub const SEG_MAX: u32 = super::mmio::QUEUE_MAX as u32 - 2;
/// Bytes moved through the bounce buffer at a time.
const CHUNK: usize = 64 * 1024;

/// One `--disk` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskArg {
    /// The image.
    pub path: PathBuf,
    /// `,ro`: the guest may not write.
    pub ro: bool,
}

/// Parses `FILE[,ro]` (`,rw` is the default said out loud).
pub fn parse_disk(s: &str) -> Result<DiskArg, String> {
    let (path, ro) = match s.rsplit_once(',') {
        Some((p, "ro")) => (p, true),
        Some((p, "rw")) => (p, false),
        Some((_, opt)) => {
            return Err(format!(
                "unknown disk option '{opt}' in '{s}' (FILE or FILE,ro)"
            ))
        }
        None => (s, false),
    };
    if path.is_empty() {
        return Err(format!("no image file in '{s}' (FILE or FILE,ro)"));
    }
    Ok(DiskArg {
        path: PathBuf::from(path),
        ro,
    })
}

/// Where a disk's bytes live: a file, or memory in tests and the fuzz target.
pub trait Backing: Send {
    /// Reads exactly `buf.len()` bytes at `off`.
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()>;
    /// Writes all of `buf` at `off`.
    fn write_at(&mut self, buf: &[u8], off: u64) -> std::io::Result<()>;
    /// Makes the writes durable.
    fn flush(&mut self) -> std::io::Result<()>;
}

impl Backing for File {
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        self.read_exact_at(buf, off)
    }
    fn write_at(&mut self, buf: &[u8], off: u64) -> std::io::Result<()> {
        self.write_all_at(buf, off)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
}

impl Backing for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        let src = usize::try_from(off)
            .ok()
            .and_then(|o| self.get(o..o.checked_add(buf.len())?))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], off: u64) -> std::io::Result<()> {
        let dst = usize::try_from(off)
            .ok()
            .and_then(|o| self.get_mut(o..o.checked_add(buf.len())?))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        dst.copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A block device over a [`Backing`].
pub struct Blk<B> {
    backing: B,
    sectors: u64,
    ro: bool,
    id: Vec<u8>,
}

impl<B: Backing> Blk<B> {
    /// A disk of `size` bytes (whole sectors count) with the serial `id` (at most 20 bytes).
    pub fn new(backing: B, size: u64, ro: bool, id: &str) -> Blk<B> {
        let mut id = id.as_bytes().to_vec();
        id.truncate(VIRTIO_BLK_ID_BYTES as usize);
        Blk {
            backing,
            sectors: size / SECTOR,
            ro,
            id,
        }
    }

    /// The request's outcome status and the bytes written into the guest's data buffers.
    fn request(
        &mut self,
        mem: &GuestMemoryMmap,
        kind: u32,
        sector: u64,
        data: &[Buf],
    ) -> Result<(u32, u32), Fault> {
        let len = total(data);
        let in_disk = |len: u64| {
            len.is_multiple_of(SECTOR)
                && sector
                    .checked_add(len / SECTOR)
                    .is_some_and(|end| end <= self.sectors)
        };
        match kind {
            VIRTIO_BLK_T_IN => {
                if data.iter().any(|b| !b.write) {
                    return Err(Fault::Layout("a read's data buffer is not device-writable"));
                }
                if !in_disk(len) {
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                }
                let mut off = sector * SECTOR;
                let mut chunk = vec![0u8; CHUNK.min(len as usize)];
                let mut written = 0u32;
                for (addr, n, b) in chain::pieces(data, chunk.len()) {
                    if self.backing.read_at(&mut chunk[..n], off).is_err() {
                        return Ok((VIRTIO_BLK_S_IOERR, written));
                    }
                    mem.write_slice(&chunk[..n], addr)
                        .map_err(|_| b.outside())?;
                    off += n as u64;
                    written += n as u32;
                }
                Ok((VIRTIO_BLK_S_OK, written))
            }
            VIRTIO_BLK_T_OUT => {
                if data.iter().any(|b| b.write) {
                    return Err(Fault::Layout("a write's data buffer is device-writable"));
                }
                if self.ro || !in_disk(len) {
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                }
                let mut off = sector * SECTOR;
                let mut chunk = vec![0u8; CHUNK.min(len as usize)];
                for (addr, n, b) in chain::pieces(data, chunk.len()) {
                    mem.read_slice(&mut chunk[..n], addr)
                        .map_err(|_| b.outside())?;
                    if self.backing.write_at(&chunk[..n], off).is_err() {
                        return Ok((VIRTIO_BLK_S_IOERR, 0));
                    }
                    off += n as u64;
                }
                Ok((VIRTIO_BLK_S_OK, 0))
            }
            VIRTIO_BLK_T_FLUSH => match self.ro || self.backing.flush().is_ok() {
                true => Ok((VIRTIO_BLK_S_OK, 0)),
                false => Ok((VIRTIO_BLK_S_IOERR, 0)),
            },
            VIRTIO_BLK_T_GET_ID => {
                // The serial, NUL-padded when shorter than the buffer.
                let mut id = self.id.clone();
                id.resize(VIRTIO_BLK_ID_BYTES as usize, 0);
                let written = chain::write_to(mem, data.iter().filter(|b| b.write), &id)?;
                Ok((VIRTIO_BLK_S_OK, written))
            }
            _ => Ok((VIRTIO_BLK_S_UNSUPP, 0)),
        }
    }
}

/// Splits a request's buffers into header (the first 16 readable bytes), data and the status
/// byte (the last byte of the last buffer, device-writable).
pub fn split(bufs: &[Buf]) -> Result<(u64, Vec<Buf>, u64), Fault> {
    let last = bufs.last().ok_or(Fault::Layout("empty request"))?;
    if !last.write || last.len == 0 {
        return Err(Fault::Layout("no device-writable status byte at the end"));
    }
    let status_addr = last.addr + u64::from(last.len) - 1;
    // The header is read from the leading readable buffers; the data is what follows it, up to
    // the status byte.
    let mut data = Vec::new();
    let mut skip = HEADER;
    for (i, b) in bufs.iter().enumerate() {
        let mut b = *b;
        if i == bufs.len() - 1 {
            b.len -= 1;
        }
        if skip > 0 {
            if b.write {
                return Err(Fault::Layout("header shorter than 16 bytes"));
            }
            let take = skip.min(u64::from(b.len));
            skip -= take;
            b.addr += take;
            b.len -= take as u32;
        }
        if b.len > 0 {
            data.push(b);
        }
    }
    if skip > 0 {
        return Err(Fault::Layout("header shorter than 16 bytes"));
    }
    Ok((HEADER, data, status_addr))
}

impl<B: Backing> Device for Blk<B> {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn features(&self) -> u64 {
        let ro = if self.ro { 1 << VIRTIO_BLK_F_RO } else { 0 };
        (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_BLK_F_FLUSH) | (1 << VIRTIO_BLK_F_SEG_MAX) | ro
    }

    fn config(&self) -> Vec<u8> {
        // virtio_blk_config: capacity (u64, in sectors), size_max (u32, not offered), seg_max
        // (u32); the rest is for features not offered.
        let mut c = self.sectors.to_le_bytes().to_vec();
        c.extend(0u32.to_le_bytes());
        c.extend(SEG_MAX.to_le_bytes());
        c
    }

    fn serve(&mut self, _queue: usize, mem: &GuestMemoryMmap, bufs: &[Buf]) -> Result<u32, Fault> {
        let (header_len, data, status_addr) = split(bufs)?;
        let mut header = [0u8; HEADER as usize];
        read_from(mem, bufs, 0, &mut header[..header_len as usize])?;
        let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let sector = u64::from_le_bytes(header[8..16].try_into().unwrap_or([0; 8]));
        let (status, written) = self.request(mem, kind, sector, &data)?;
        mem.write_obj(status as u8, GuestAddress(status_addr))
            .map_err(|_| Fault::OutsideRam {
                addr: status_addr,
                len: 1,
            })?;
        Ok(written + 1)
    }
}

/// Opens and locks the image of `arg`: a regular file or a block device, read-write unless
/// `ro`; the serial is the file's device and inode numbers.
pub fn open(arg: &DiskArg) -> Result<Blk<File>, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(!arg.ro)
        .open(&arg.path)
        .map_err(|e| format!("cannot open it: {}", conventions::output::errtext(&e)))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat it: {}", conventions::output::errtext(&e)))?;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let size = if meta.file_type().is_file() {
        meta.len()
    } else if meta.file_type().is_block_device() {
        use std::io::Seek;
        (&file)
            .seek(std::io::SeekFrom::End(0))
            .map_err(|e| format!("cannot size it: {}", conventions::output::errtext(&e)))?
    } else {
        return Err("not a regular file or a block device".into());
    };
    lock(&file, arg.ro, &arg.path)?;
    let id = format!("tinyvmm-{:x}-{:x}", meta.dev(), meta.ino());
    Ok(Blk::new(file, size, arg.ro, &id))
}

fn lock(file: &File, ro: bool, path: &Path) -> Result<(), String> {
    let op = if ro { libc::LOCK_SH } else { libc::LOCK_EX };
    // SAFETY: flock on a file descriptor this function borrows; no memory is involved.
    let r = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Err(format!(
            "it is locked by another process (another VM has {} open{})",
            path.display(),
            if ro { " writable" } else { "" }
        ));
    }
    Err(format!(
        "flock failed: {}",
        conventions::output::errtext(&e)
    ))
}
