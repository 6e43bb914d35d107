//! `cargo xtask kernel`: real guest kernels (Debian's cloud kernel, and its generic one for the
//! hardware-KVM lane) for the guest-kernel test lanes and tinyvmm, fetched with `apt-get download`
//! and unpacked with `dpkg -x` under target/ so the host's own kernel packages are never touched.

use crate::util;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which of Debian's kernel packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `linux-image-cloud-amd64`: the guest kernel of every lane (small, boots in 2 s under TCG,
    /// no CONFIG_X86_MPPARSE).
    Cloud,
    /// `linux-image-amd64`: the generic kernel, which reads an MP table (`--cpus` without ACPI).
    Generic,
}

impl Flavour {
    /// Both, in the order `cargo xtask kernel` prints them.
    pub const ALL: [Flavour; 2] = [Flavour::Cloud, Flavour::Generic];

    /// The metapackage that always depends on the current kernel of this flavour.
    pub fn meta(self) -> &'static str {
        match self {
            Flavour::Cloud => "linux-image-cloud-amd64",
            Flavour::Generic => "linux-image-amd64",
        }
    }

    /// Where its files go: the cloud kernel at `target/kernel` (where testcaps looks), the
    /// generic one at `target/kernel/generic`.
    pub fn dir(self) -> PathBuf {
        match self {
            Flavour::Cloud => dir(),
            Flavour::Generic => dir().join("generic"),
        }
    }
}

/// Fetches (once) both kernels and prints their bzImage paths, the cloud one first; also
/// extracts each uncompressed `vmlinux` ELF.
pub fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("usage: cargo xtask kernel (takes no arguments)".to_string());
    }
    for f in Flavour::ALL {
        let k = ensure_flavour(f)?;
        println!("{}", k.display());
    }
    Ok(())
}

/// Where `cargo xtask kernel` puts its files.
pub fn dir() -> PathBuf {
    util::target_dir().join("kernel")
}

/// The unpacked package directory of a fetched kernel (`DIR/linux-image-VERSION-FLAVOUR`), found
/// through the `vmlinuz` symlink, where its modules are.
pub fn package_dir(f: Flavour) -> Result<PathBuf, String> {
    let link = f.dir().join("vmlinuz");
    let target =
        std::fs::read_link(&link).map_err(|e| format!("reading link {}: {e}", link.display()))?;
    // vmlinuz -> linux-image-X/boot/vmlinuz-X
    let first = target
        .components()
        .next()
        .ok_or_else(|| format!("{} points nowhere", link.display()))?;
    Ok(f.dir().join(first.as_os_str()))
}

/// The guest kernel the lane boots: `MICROTOOLS_KERNEL`, else `target/kernel/vmlinuz`
/// (the same rule as `testcaps::kernel_image`).
pub fn image() -> PathBuf {
    match std::env::var_os("MICROTOOLS_KERNEL") {
        Some(k) if !k.is_empty() => PathBuf::from(k),
        _ => dir().join("vmlinuz"),
    }
}

/// Makes sure `target/kernel/vmlinuz` (and `vmlinux`) exist; returns the bzImage path.
/// A second call finds both and does nothing.
pub fn ensure() -> Result<PathBuf, String> {
    ensure_flavour(Flavour::Cloud)
}

/// [`ensure`] for either flavour: `vmlinuz` in [`Flavour::dir`], and for the cloud kernel also
/// `vmlinux` (the generic kernel's payload is XZ, which xtask does not decode; the lanes boot its
/// bzImage only).
pub fn ensure_flavour(f: Flavour) -> Result<PathBuf, String> {
    let dir = f.dir();
    let vmlinuz = dir.join("vmlinuz");
    let vmlinux = dir.join("vmlinux");
    let wants_vmlinux = f == Flavour::Cloud;
    if vmlinuz.is_file() && (vmlinux.is_file() || !wants_vmlinux) {
        eprintln!("xtask kernel: {} is cached", vmlinuz.display());
        return Ok(vmlinuz);
    }
    if !vmlinuz.is_file() {
        fetch(&dir, f.meta())?;
    }
    if wants_vmlinux && !vmlinux.is_file() {
        // Only tinyvmm's PVH path needs the ELF; the bzImage alone serves the test lane, so a
        // kernel packaged with another compression is a warning here, not a failure.
        match write_vmlinux(&vmlinuz, &vmlinux) {
            Ok(()) => eprintln!("xtask kernel: extracted {}", vmlinux.display()),
            Err(e) => eprintln!("xtask kernel: warning: no {}: {e}", vmlinux.display()),
        }
    }
    Ok(vmlinuz)
}

fn write_vmlinux(vmlinuz: &Path, vmlinux: &Path) -> Result<(), String> {
    let bz = std::fs::read(vmlinuz).map_err(|e| format!("reading {}: {e}", vmlinuz.display()))?;
    let elf = extract_vmlinux(&bz).map_err(|e| format!("{}: {e}", vmlinuz.display()))?;
    let tmp = vmlinux.with_extension("tmp");
    std::fs::write(&tmp, elf).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, vmlinux).map_err(|e| format!("renaming to {}: {e}", vmlinux.display()))
}

/// Downloads the versioned kernel package, unpacks it under `dir/VERSIONED-PACKAGE/` and points
/// `dir/vmlinuz` at its `boot/vmlinuz-*`.
fn fetch(dir: &Path, meta: &str) -> Result<(), String> {
    let pkg = match resolve_versioned(meta) {
        Ok(p) => p,
        Err(_) => {
            // Empty apt lists (a fresh container) know no packages yet.
            util::run(&mut util::apt_get(&["update", "-qq"]))?;
            resolve_versioned(meta)?
        }
    };
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| format!("creating {}: {e}", debs.display()))?;
    let deb = match find_deb(&debs, &pkg) {
        Some(d) => d,
        None => {
            util::run(util::apt_get(&["download", &pkg]).current_dir(&debs))?;
            find_deb(&debs, &pkg).ok_or_else(|| {
                format!("apt-get download {pkg} left no .deb in {}", debs.display())
            })?
        }
    };
    let unpacked = dir.join(&pkg);
    let _ = std::fs::remove_dir_all(&unpacked);
    util::run(Command::new("dpkg").arg("-x").arg(&deb).arg(&unpacked))?;
    let boot = unpacked.join("boot");
    let bz = std::fs::read_dir(&boot)
        .map_err(|e| format!("reading {}: {e}", boot.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().starts_with("vmlinuz-"))
                .unwrap_or(false)
        })
        .ok_or_else(|| format!("{} has no boot/vmlinuz-*", deb.display()))?;
    let rel = bz
        .strip_prefix(dir)
        .map_err(|_| format!("{} is not under {}", bz.display(), dir.display()))?;
    let link = dir.join("vmlinuz");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(rel, &link)
        .map_err(|e| format!("symlink {} -> {}: {e}", link.display(), rel.display()))?;
    eprintln!("xtask kernel: {} -> {}", link.display(), rel.display());
    Ok(())
}

/// The real package behind the metapackage, e.g. `linux-image-6.1.0-56-cloud-amd64`.
fn resolve_versioned(meta: &str) -> Result<String, String> {
    let out = util::output(Command::new("apt-cache").args(["depends", meta]))?;
    parse_depends(&out, meta)
        .ok_or_else(|| format!("apt-cache depends {meta} names no linux-image-*"))
}

/// Picks the versioned kernel image out of `apt-cache depends META` output.
fn parse_depends(out: &str, meta: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let dep = l.trim().strip_prefix("Depends:")?.trim();
        (dep.starts_with("linux-image-") && dep != meta).then(|| dep.to_string())
    })
}

fn find_deb(debs: &Path, pkg: &str) -> Option<PathBuf> {
    let prefix = format!("{pkg}_");
    std::fs::read_dir(debs)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .map(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with(&prefix) && n.ends_with(".deb")
                })
                .unwrap_or(false)
        })
}

/// The uncompressed ELF kernel inside a bzImage: the setup header locates the payload
/// (`payload_offset`/`payload_length`, boot protocol 2.08+); Debian compresses it with LZ4 in the
/// legacy frame format, which is decoded here so xtask needs no decompressor package.
pub fn extract_vmlinux(bz: &[u8]) -> Result<Vec<u8>, String> {
    let h = tinyvmm::linux::read_setup_header(bz)
        .filter(|h| ({ h.header }) == u32::from_le_bytes(*b"HdrS"))
        .ok_or("not a bzImage (no HdrS setup header)")?;
    let version = h.version;
    if version < 0x208 {
        return Err(format!(
            "boot protocol {version:#x} has no payload fields (needs 2.08+)"
        ));
    }
    let setup_sects = match h.setup_sects {
        0 => 4,
        n => usize::from(n),
    };
    let base = (setup_sects + 1) * 512;
    let off = base.saturating_add(h.payload_offset as usize);
    let len = h.payload_length as usize;
    let payload = bz
        .get(off..off.saturating_add(len))
        .ok_or("payload_offset/payload_length point past the end of the file")?;
    let elf = if payload.starts_with(&[0x02, 0x21, 0x4c, 0x18]) {
        lz4_legacy_decode(payload)?
    } else {
        return Err(format!(
            "payload compression with magic {:02x?} is not supported (only LZ4)",
            payload.get(..4).unwrap_or(payload)
        ));
    };
    if !elf.starts_with(b"\x7fELF") {
        return Err("decompressed payload is not an ELF file".to_string());
    }
    Ok(elf)
}

/// Decodes an LZ4 legacy frame: magic, then blocks of (u32 LE compressed size, data), each block
/// independent. The kernel's build appends the uncompressed size as 4 trailing bytes, which a
/// reader recognises because no full block follows it.
pub fn lz4_legacy_decode(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut pos = 4;
    let mut out = Vec::new();
    while pos + 4 <= data.len() {
        let size =
            u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        pos += 4;
        if size == 0 || size > data.len() - pos {
            break;
        }
        lz4_block_decode(&data[pos..pos + size], &mut out)?;
        pos += size;
    }
    if out.is_empty() {
        return Err("LZ4 stream holds no block".to_string());
    }
    Ok(out)
}

/// Appends one decoded LZ4 block to `out`; matches may only reach back into this block's output
/// (legacy blocks are independent).
pub fn lz4_block_decode(block: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    let mut i = 0;
    let bad = |what: &str| Err(format!("corrupt LZ4 block: {what}"));
    let read_len = |i: &mut usize, mut n: usize| -> Option<usize> {
        loop {
            let b = *block.get(*i)?;
            *i += 1;
            n = n.checked_add(b as usize)?;
            if b != 255 {
                return Some(n);
            }
        }
    };
    while i < block.len() {
        let token = block[i];
        i += 1;
        let mut lit = (token >> 4) as usize;
        if lit == 15 {
            match read_len(&mut i, lit) {
                Some(n) => lit = n,
                None => return bad("literal length"),
            }
        }
        let Some(literals) = block.get(i..i.saturating_add(lit)) else {
            return bad("literals past the end");
        };
        out.extend_from_slice(literals);
        i += lit;
        if i == block.len() {
            break; // the last sequence has literals only
        }
        let Some(o) = block.get(i..i + 2) else {
            return bad("truncated match offset");
        };
        let offset = u16::from_le_bytes([o[0], o[1]]) as usize;
        i += 2;
        let mut mlen = (token & 15) as usize;
        if mlen == 15 {
            match read_len(&mut i, mlen) {
                Some(n) => mlen = n,
                None => return bad("match length"),
            }
        }
        mlen += 4;
        if offset == 0 || offset > out.len() - start {
            return bad("match offset out of range");
        }
        let from = out.len() - offset;
        if offset >= mlen {
            out.extend_from_within(from..from + mlen);
        } else {
            // Overlapping copy repeats the last `offset` bytes.
            for k in 0..mlen {
                let b = out[from + k];
                out.push(b);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_versioned_package() {
        let out = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n";
        let cloud = Flavour::Cloud.meta();
        assert_eq!(
            parse_depends(out, cloud).as_deref(),
            Some("linux-image-6.1.0-56-cloud-amd64")
        );
        assert_eq!(parse_depends("linux-image-cloud-amd64\n", cloud), None);
        let generic = "linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n";
        assert_eq!(
            parse_depends(generic, Flavour::Generic.meta()).as_deref(),
            Some("linux-image-6.1.0-57-amd64")
        );
        assert_ne!(Flavour::Cloud.dir(), Flavour::Generic.dir());
    }

    #[test]
    fn lz4_literals_and_overlapping_matches() {
        // "abc" literal, then a match of 9 at offset 3 ("abcabcabc"), then literal "xyz" last.
        let block = [0x35, b'a', b'b', b'c', 3, 0, 0x30, b'x', b'y', b'z'];
        let mut out = Vec::new();
        lz4_block_decode(&block, &mut out).unwrap();
        assert_eq!(out, b"abcabcabcabcxyz");
    }

    #[test]
    fn lz4_long_lengths_and_legacy_frame() {
        // 20 literal 'q's (15 + 5), match of 4 + 15 + 255 + 1 at offset 1, then an empty last literal run.
        let mut block = vec![0xff, 5];
        block.extend([b'q'; 20]);
        block.extend([1, 0, 255, 1, 0x00]);
        let mut frame = vec![0x02, 0x21, 0x4c, 0x18];
        frame.extend((block.len() as u32).to_le_bytes());
        frame.extend(&block);
        frame.extend(295u32.to_le_bytes()); // the kernel's appended size
        let out = lz4_legacy_decode(&frame).unwrap();
        assert_eq!(out.len(), 20 + 4 + 15 + 255 + 1);
        assert!(out.iter().all(|&b| b == b'q'));
    }

    #[test]
    fn lz4_rejects_corruption_without_panicking() {
        let mut out = Vec::new();
        assert!(lz4_block_decode(&[0x00, 5, 0], &mut out).is_err()); // offset beyond output
        assert!(lz4_block_decode(&[0xf0], &mut out).is_err()); // length runs off the end
        assert!(lz4_block_decode(&[0x50, b'a'], &mut out).is_err()); // short literals
        assert!(lz4_legacy_decode(&[0x02, 0x21, 0x4c, 0x18]).is_err());
    }

    #[test]
    fn rejects_non_bzimages() {
        assert!(extract_vmlinux(b"not a kernel").is_err());
        let mut fake = vec![0u8; 0x300];
        fake[0x202..0x206].copy_from_slice(b"HdrS");
        fake[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        fake[0x24c..0x250].copy_from_slice(&0x10000u32.to_le_bytes());
        assert!(extract_vmlinux(&fake).is_err()); // payload past the end
    }
}
