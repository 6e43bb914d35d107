//! The pure plan step: from the options and the image's bytes to a [`LoadPlan`] (format, where
//! each piece goes, the entry point, the memory layout), with every check that bad input needs,
//! before any KVM call.

use crate::layout;

/// Guest memory tinyvmm accepts at most: below the 32-bit MMIO hole and the VMX TSS at
/// 0xfffbd000, which keeps RAM one region.
pub const MAX_MEM: u64 = 3 << 30;
/// Guest memory at least: room for the boot structures of every format.
pub const MIN_MEM: u64 = 1 << 20;
/// Default guest memory.
pub const DEFAULT_MEM: u64 = 64 << 20;

/// What `--format` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Decide by content: ELF with a PVH note -> pvh, other ELF -> elf, a flat image with the boot
    /// signature 0x55 0xaa at bytes 510-511 -> real, any other flat image -> long.
    Auto,
    /// Flat image entered in 16-bit real mode.
    Real,
    /// Flat image entered in 64-bit long mode.
    Long,
    /// ELF64 executable entered at e_entry in long mode.
    Elf,
    /// ELF with the Xen PVH entry note, entered in 32-bit protected mode.
    Pvh,
}

/// How the guest is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 16-bit real mode.
    Real,
    /// 64-bit long mode, flat image.
    Long,
    /// 64-bit long mode, ELF64.
    Elf,
    /// 32-bit protected mode at the PVH entry.
    Pvh,
}

impl Format {
    /// The name as `--format` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Real => "real",
            Format::Long => "long",
            Format::Elf => "elf",
            Format::Pvh => "pvh",
        }
    }
}

/// The options the plan depends on.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--format`.
    pub format: FormatArg,
    /// `--mem` in bytes.
    pub mem: u64,
    /// `--load`.
    pub load: Option<u64>,
    /// The host's RAM in bytes (guest memory may not exceed it).
    pub host_ram: u64,
}

/// A run of bytes of the image copied to guest memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Guest-physical address.
    pub addr: u64,
    /// Offset in the image.
    pub offset: usize,
    /// Bytes copied from the image.
    pub len: usize,
    /// Bytes the piece occupies in memory (the rest is zero, like .bss).
    pub mem_len: u64,
}

/// Everything needed to build the VM, decided without KVM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// How the guest is entered.
    pub format: Format,
    /// Guest memory in bytes, one region from 0.
    pub mem: u64,
    /// What goes where.
    pub pieces: Vec<Piece>,
    /// Entry point: a guest-physical address (real mode: CS<<4 + IP).
    pub entry: u64,
    /// Initial stack pointer (real mode: SP with SS 0).
    pub stack: u64,
    /// Guest-physical ranges tinyvmm writes its own structures to.
    pub reserved: Vec<(u64, u64)>,
}

/// Why an image or the options cannot be planned; turned into [`crate::Error`] with the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The image is unusable.
    Image(String),
    /// The options are unusable.
    Option(String),
}

fn image(why: impl Into<String>) -> PlanError {
    PlanError::Image(why.into())
}

/// Checks `--mem` against tinyvmm's and the host's limits.
pub fn check_mem(mem: u64, host_ram: u64) -> Result<(), PlanError> {
    let show = conventions::size::format_size;
    if mem == 0 {
        return Err(PlanError::Option("--mem 0: a guest needs memory".into()));
    }
    if !mem.is_multiple_of(4096) {
        return Err(PlanError::Option(format!(
            "--mem {mem}: must be a multiple of 4K"
        )));
    }
    if mem < MIN_MEM {
        return Err(PlanError::Option(format!(
            "--mem {}: at least {} is needed",
            show(mem),
            show(MIN_MEM)
        )));
    }
    if mem > MAX_MEM {
        return Err(PlanError::Option(format!(
            "--mem {}: at most {} is supported",
            show(mem),
            show(MAX_MEM)
        )));
    }
    if host_ram != 0 && mem > host_ram {
        return Err(PlanError::Option(format!(
            "--mem {}: more than the host's RAM ({})",
            show(mem),
            show(host_ram)
        )));
    }
    Ok(())
}

/// Plans loading `bytes` with `opts`.
pub fn plan(opts: &Options, bytes: &[u8]) -> Result<LoadPlan, PlanError> {
    check_mem(opts.mem, opts.host_ram)?;
    if bytes.is_empty() {
        return Err(image("the image is empty"));
    }
    let is_elf = bytes.starts_with(b"\x7fELF");
    let format = match opts.format {
        FormatArg::Real => Format::Real,
        FormatArg::Long => Format::Long,
        FormatArg::Elf => Format::Elf,
        FormatArg::Pvh => Format::Pvh,
        FormatArg::Auto if is_elf => {
            let elf = parse_elf(bytes)?;
            if elf.pvh_entry.is_some() {
                Format::Pvh
            } else {
                Format::Elf
            }
        }
        FormatArg::Auto if bytes.len() >= 512 && bytes[510..512] == [0x55, 0xaa] => Format::Real,
        FormatArg::Auto => Format::Long,
    };
    if opts.load.is_some() && matches!(format, Format::Elf | Format::Pvh) {
        return Err(PlanError::Option(format!(
            "--load applies to flat images (real, long), not to {} images, which say where they load",
            format.name()
        )));
    }
    let mem = opts.mem;
    let mut reserved = vec![(
        layout::BOOT_INFO_ADDR,
        layout::BOOT_INFO_ADDR + layout::boot_info(mem).len() as u64,
    )];
    if format != Format::Real {
        reserved.push((layout::GDT_ADDR, layout::GDT_ADDR + 32));
    }
    if matches!(format, Format::Long | Format::Elf) {
        reserved.push((layout::PML4_ADDR, layout::page_tables_end(mem)));
    }
    if format == Format::Pvh {
        reserved.push((
            layout::PVH_INFO_ADDR,
            layout::PVH_INFO_ADDR + layout::pvh_start_info(mem).len() as u64,
        ));
    }
    let (pieces, entry, stack) = match format {
        Format::Real => {
            let addr = opts.load.unwrap_or(layout::REAL_LOAD);
            if addr >= 0x1_0000 && !addr.is_multiple_of(16) {
                return Err(PlanError::Option(format!(
                    "--load 0x{addr:x}: a real-mode load address at or above 64K must be a multiple of 16 (it becomes CS)"
                )));
            }
            let end = addr.saturating_add(bytes.len() as u64);
            if end > layout::REAL_LIMIT.min(mem) {
                return Err(image(format!(
                    "{} bytes at 0x{addr:x} end past 0x{:x}, the end of real-mode memory",
                    bytes.len(),
                    layout::REAL_LIMIT.min(mem)
                )));
            }
            let piece = Piece {
                addr,
                offset: 0,
                len: bytes.len(),
                mem_len: bytes.len() as u64,
            };
            (vec![piece], addr, addr.min(0x1_0000))
        }
        Format::Long => {
            let addr = opts.load.unwrap_or(layout::LONG_LOAD);
            let end = addr.saturating_add(bytes.len() as u64);
            if end > mem {
                return Err(image(format!(
                    "{} bytes at 0x{addr:x} do not fit in {} of guest memory (--mem)",
                    bytes.len(),
                    conventions::size::format_size(mem)
                )));
            }
            let piece = Piece {
                addr,
                offset: 0,
                len: bytes.len(),
                mem_len: bytes.len() as u64,
            };
            (vec![piece], addr, mem & !0xf)
        }
        Format::Elf | Format::Pvh => {
            let elf = parse_elf(bytes)?;
            let entry = if format == Format::Pvh {
                elf.pvh_entry
                    .ok_or_else(|| image("no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"))?
            } else {
                elf.entry
            };
            for p in &elf.pieces {
                let end = p.addr.checked_add(p.mem_len).ok_or_else(|| {
                    image(format!(
                        "segment at 0x{:x} overflows the address space",
                        p.addr
                    ))
                })?;
                if end > mem {
                    return Err(image(format!(
                        "segment [0x{:x}, 0x{end:x}) lies outside guest memory of {} (--mem)",
                        p.addr,
                        conventions::size::format_size(mem)
                    )));
                }
            }
            if entry >= mem {
                return Err(image(format!(
                    "entry point 0x{entry:x} lies outside guest memory"
                )));
            }
            let stack = if format == Format::Pvh {
                mem.min(1 << 32) & !0xf
            } else {
                mem & !0xf
            };
            (elf.pieces, entry, stack)
        }
    };
    for p in &pieces {
        let end = p.addr + p.mem_len;
        for &(start, stop) in &reserved {
            if p.addr < stop && start < end {
                return Err(image(format!(
                    "[0x{:x}, 0x{end:x}) overlaps tinyvmm's boot structures at [0x{start:x}, 0x{stop:x})",
                    p.addr
                )));
            }
        }
    }
    Ok(LoadPlan {
        format,
        mem,
        pieces,
        entry,
        stack,
        reserved,
    })
}

/// What the plan needs from an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// e_entry.
    pub entry: u64,
    /// The PT_LOAD segments, at their physical addresses.
    pub pieces: Vec<Piece>,
    /// The PVH entry from the XEN_ELFNOTE_PHYS32_ENTRY note, if present.
    pub pvh_entry: Option<u64>,
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const EM_X86_64: u16 = 62;
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Parses an ELF64 x86-64 executable's header, loadable segments and PVH note.
pub fn parse_elf(b: &[u8]) -> Result<ElfInfo, PlanError> {
    let truncated = |what: &str| image(format!("truncated ELF: {what} is cut off"));
    if !b.starts_with(b"\x7fELF") {
        return Err(image("not an ELF file"));
    }
    if b.len() < 64 {
        return Err(truncated("the ELF header"));
    }
    match b[4] {
        2 => {}
        1 => return Err(image("32-bit ELF; tinyvmm loads ELF64 (x86-64) images")),
        c => return Err(image(format!("unknown ELF class {c}"))),
    }
    if b[5] != 1 {
        return Err(image("big-endian ELF; x86-64 is little-endian"));
    }
    let machine = u16_at(b, 18).ok_or_else(|| truncated("the ELF header"))?;
    if machine != EM_X86_64 {
        return Err(image(format!("ELF for machine {machine}, not x86-64 (62)")));
    }
    let entry = u64_at(b, 24).ok_or_else(|| truncated("the ELF header"))?;
    let phoff = u64_at(b, 32).ok_or_else(|| truncated("the ELF header"))?;
    let phentsize = u16_at(b, 54).ok_or_else(|| truncated("the ELF header"))?;
    let phnum = u16_at(b, 56).ok_or_else(|| truncated("the ELF header"))?;
    if phnum == 0 {
        return Err(image("ELF without program headers: nothing to load"));
    }
    if phentsize != 56 {
        return Err(image(format!(
            "ELF program header size {phentsize}, expected 56"
        )));
    }
    let table_end = usize::try_from(phoff)
        .ok()
        .and_then(|o| o.checked_add(usize::from(phnum) * 56))
        .filter(|&end| end <= b.len());
    let Some(_) = table_end else {
        return Err(truncated("the program header table"));
    };
    let phoff = phoff as usize;
    let mut pieces = Vec::new();
    let mut pvh_entry = None;
    for i in 0..usize::from(phnum) {
        let h = phoff + i * 56;
        let field = |off| u64_at(b, h + off).ok_or_else(|| truncated("a program header"));
        let kind = u32_at(b, h).ok_or_else(|| truncated("a program header"))?;
        let offset = field(8)?;
        let paddr = field(24)?;
        let filesz = field(32)?;
        let memsz = field(40)?;
        let data = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(filesz).ok())
            .and_then(|(o, n)| Some((o, o.checked_add(n)?)))
            .filter(|&(_, end)| end <= b.len());
        match kind {
            PT_LOAD => {
                let (start, _) = data.ok_or_else(|| {
                    truncated(&format!("segment {i} (offset {offset}, {filesz} bytes)"))
                })?;
                if filesz > memsz {
                    return Err(image(format!(
                        "segment {i} has more file bytes ({filesz}) than memory bytes ({memsz})"
                    )));
                }
                if memsz == 0 {
                    continue;
                }
                pieces.push(Piece {
                    addr: paddr,
                    offset: start,
                    len: filesz as usize,
                    mem_len: memsz,
                });
            }
            PT_NOTE => {
                let (start, end) = data.ok_or_else(|| truncated(&format!("note segment {i}")))?;
                if let Some(e) = find_pvh_note(&b[start..end]) {
                    pvh_entry = Some(e);
                }
            }
            _ => {}
        }
    }
    if pieces.is_empty() {
        return Err(image("ELF without loadable segments"));
    }
    Ok(ElfInfo {
        entry,
        pieces,
        pvh_entry,
    })
}

/// Finds the Xen PVH entry note in a PT_NOTE segment.
fn find_pvh_note(mut notes: &[u8]) -> Option<u64> {
    let align4 = |n: usize| n.checked_add(3).map(|n| n & !3);
    while notes.len() >= 12 {
        let namesz = u32_at(notes, 0)? as usize;
        let descsz = u32_at(notes, 4)? as usize;
        let kind = u32_at(notes, 8)?;
        let name_end = 12usize.checked_add(align4(namesz)?)?;
        let desc_end = name_end.checked_add(align4(descsz)?)?;
        let name = notes.get(12..12 + namesz)?;
        let desc = notes.get(name_end..name_end + descsz)?;
        if name == b"Xen\0" && kind == XEN_ELFNOTE_PHYS32_ENTRY {
            return match descsz {
                4 => u32_at(desc, 0).map(u64::from),
                8 => u64_at(desc, 0),
                _ => None,
            };
        }
        notes = notes.get(desc_end..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(format: FormatArg) -> Options {
        Options {
            format,
            mem: DEFAULT_MEM,
            load: None,
            host_ram: 0,
        }
    }

    /// A minimal ELF64: header, `phdrs` program headers, then `payload`.
    fn elf(
        machine: u16,
        entry: u64,
        phdrs: &[(u32, u64, u64, u64, u64)],
        payload: &[u8],
    ) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[0..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[24..32].copy_from_slice(&entry.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for &(kind, offset, paddr, filesz, memsz) in phdrs {
            let mut h = [0u8; 56];
            h[0..4].copy_from_slice(&kind.to_le_bytes());
            h[8..16].copy_from_slice(&offset.to_le_bytes());
            h[16..24].copy_from_slice(&paddr.to_le_bytes());
            h[24..32].copy_from_slice(&paddr.to_le_bytes());
            h[32..40].copy_from_slice(&filesz.to_le_bytes());
            h[40..48].copy_from_slice(&memsz.to_le_bytes());
            b.extend_from_slice(&h);
        }
        b.extend_from_slice(payload);
        b
    }

    fn pvh_note(entry: u32) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&18u32.to_le_bytes());
        n.extend_from_slice(b"Xen\0");
        n.extend_from_slice(&entry.to_le_bytes());
        n
    }

    #[test]
    fn auto_detects_flat_formats() {
        let long = plan(&opts(FormatArg::Auto), &[0xf4]).unwrap();
        assert_eq!(long.format, Format::Long);
        assert_eq!(long.entry, 0x10_0000);
        assert_eq!(long.stack, DEFAULT_MEM);
        assert_eq!(long.pieces[0].addr, 0x10_0000);
        let mut boot = vec![0u8; 512];
        boot[510] = 0x55;
        boot[511] = 0xaa;
        let real = plan(&opts(FormatArg::Auto), &boot).unwrap();
        assert_eq!(real.format, Format::Real);
        assert_eq!((real.entry, real.stack), (0x1000, 0x1000));
        // The same bytes, forced.
        assert_eq!(
            plan(&opts(FormatArg::Long), &boot).unwrap().format,
            Format::Long
        );
    }

    #[test]
    fn load_address_moves_flat_images() {
        let mut o = opts(FormatArg::Long);
        o.load = Some(0x20_0000);
        let p = plan(&o, &[0xf4; 16]).unwrap();
        assert_eq!((p.entry, p.pieces[0].addr), (0x20_0000, 0x20_0000));
        o.load = Some(0xa000); // inside the page tables
        assert!(matches!(plan(&o, &[0xf4]), Err(PlanError::Image(m)) if m.contains("overlaps")));
        o.load = Some(DEFAULT_MEM - 1);
        assert!(
            matches!(plan(&o, &[0xf4, 0xf4]), Err(PlanError::Image(m)) if m.contains("do not fit"))
        );
        o.load = Some(u64::MAX);
        assert!(plan(&o, &[0xf4]).is_err());
        let mut r = opts(FormatArg::Real);
        r.load = Some(0x1_0001);
        assert!(matches!(plan(&r, &[0xf4]), Err(PlanError::Option(_))));
        r.load = Some(0x9_fff0);
        assert!(matches!(plan(&r, &[0xf4; 32]), Err(PlanError::Image(_))));
        r.load = Some(0x2_0000);
        let p = plan(&r, &[0xf4]).unwrap();
        assert_eq!((p.entry, p.stack), (0x2_0000, 0x1_0000));
    }

    #[test]
    fn elf_images_load_by_program_headers() {
        let e = elf(62, 0x10_0004, &[(1, 120, 0x10_0000, 8, 0x2000)], &[0x90; 8]);
        let p = plan(&opts(FormatArg::Auto), &e).unwrap();
        assert_eq!(p.format, Format::Elf);
        assert_eq!(p.entry, 0x10_0004);
        assert_eq!(
            p.pieces,
            vec![Piece {
                addr: 0x10_0000,
                offset: 120,
                len: 8,
                mem_len: 0x2000
            }]
        );
        assert!(plan(&opts(FormatArg::Pvh), &e).is_err());
        let mut o = opts(FormatArg::Elf);
        o.load = Some(0x20_0000);
        assert!(matches!(plan(&o, &e), Err(PlanError::Option(_))));
    }

    #[test]
    fn pvh_note_selects_pvh() {
        let note = pvh_note(0x10_0010);
        let payload: Vec<u8> = [vec![0x90; 8], note.clone()].concat();
        let e = elf(
            62,
            0x10_0000,
            &[
                (1, 176, 0x10_0000, 8, 8),
                (4, 184, 0, note.len() as u64, note.len() as u64),
            ],
            &payload,
        );
        let p = plan(&opts(FormatArg::Auto), &e).unwrap();
        assert_eq!(p.format, Format::Pvh);
        assert_eq!(p.entry, 0x10_0010);
        assert_eq!(plan(&opts(FormatArg::Elf), &e).unwrap().entry, 0x10_0000);
    }

    #[test]
    fn bad_elves_are_refused() {
        let o = opts(FormatArg::Auto);
        let good = elf(62, 0x10_0000, &[(1, 120, 0x10_0000, 8, 8)], &[0x90; 8]);
        for cut in [4, 63, 100, 127] {
            assert!(
                matches!(plan(&o, &good[..cut]), Err(PlanError::Image(m)) if m.contains("truncated")),
                "cut at {cut}"
            );
        }
        let arm = elf(183, 0x10_0000, &[(1, 120, 0x10_0000, 8, 8)], &[0; 8]);
        assert!(matches!(plan(&o, &arm), Err(PlanError::Image(m)) if m.contains("not x86-64")));
        let mut elf32 = good.clone();
        elf32[4] = 1;
        assert!(matches!(plan(&o, &elf32), Err(PlanError::Image(m)) if m.contains("32-bit")));
        let outside = elf(62, 0x10_0000, &[(1, 120, 0x4000_0000, 8, 8)], &[0; 8]);
        assert!(matches!(plan(&o, &outside), Err(PlanError::Image(m)) if m.contains("outside")));
        let huge = elf(62, 0x10_0000, &[(1, 120, 0x10_0000, 8, u64::MAX)], &[0; 8]);
        assert!(plan(&o, &huge).is_err());
        let low = elf(62, 0x600, &[(1, 120, 0x600, 8, 8)], &[0; 8]);
        assert!(matches!(plan(&o, &low), Err(PlanError::Image(m)) if m.contains("overlaps")));
        let no_load = elf(62, 0x10_0000, &[(6, 0, 0, 0, 0)], &[]);
        assert!(plan(&o, &no_load).is_err());
        let bad_entry = elf(62, 0x1_0000_0000, &[(1, 120, 0x10_0000, 8, 8)], &[0; 8]);
        assert!(plan(&o, &bad_entry).is_err());
        let big_file = elf(62, 0x10_0000, &[(1, 120, 0x10_0000, 9, 8)], &[0; 9]);
        assert!(plan(&o, &big_file).is_err());
    }

    #[test]
    fn images_and_memory_limits() {
        let o = opts(FormatArg::Auto);
        assert!(matches!(plan(&o, &[]), Err(PlanError::Image(m)) if m.contains("empty")));
        let mut small = opts(FormatArg::Long);
        small.mem = 2 << 20;
        assert!(matches!(
            plan(&small, &vec![0; 1 << 20 | 1]),
            Err(PlanError::Image(_))
        ));
        assert!(check_mem(0, 0).is_err());
        assert!(check_mem(4095, 0).is_err());
        assert!(check_mem(512 << 10, 0).is_err());
        assert!(check_mem(4 << 30, 0).is_err());
        assert!(check_mem(64 << 20, 32 << 20).is_err());
        assert!(check_mem(64 << 20, 0).is_ok());
        assert!(check_mem(MAX_MEM, 0).is_ok());
    }

    #[test]
    fn never_panics_on_garbage() {
        let o = opts(FormatArg::Auto);
        let mut seed = 0x1234_5678u32;
        for len in 0..300 {
            let mut b: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            if len >= 4 {
                b[0..4].copy_from_slice(b"\x7fELF");
            }
            if len > 5 {
                b[4] = 2;
                b[5] = 1;
            }
            let _ = plan(&o, &b);
            let _ = find_pvh_note(&b);
        }
    }
}
