//! The pure plan step: from the options and the image's bytes to a [`LoadPlan`] (format, where
//! each piece goes, the entry point, the memory layout), with every check that bad input needs,
//! before any KVM call.

use linux_loader::elf;
use vm_memory::ByteValued;

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
    /// A note owned by "Linux" (a vmlinux's build salt): the image is a Linux kernel, which a
    /// PVM host cannot boot to the end.
    pub linux: bool,
    /// A PT_INTERP segment: a dynamically linked program, which needs a loader (xtask asks this
    /// of the busybox it puts in test root filesystems, through this one ELF reader).
    pub interpreter: bool,
}

const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// The `T` (one of linux-loader's ELF structs) at `off`, copied out: an image's offsets need not
/// be aligned, so the bytes are not viewed in place.
fn read_at<T: ByteValued + Default>(b: &[u8], off: usize) -> Option<T> {
    let mut t = T::default();
    let len = std::mem::size_of::<T>();
    t.as_mut_slice()
        .copy_from_slice(b.get(off..off.checked_add(len)?)?);
    Some(t)
}

/// Parses an ELF64 x86-64 executable's header, loadable segments and notes, reading
/// linux-loader's own `Elf64_Ehdr`, `Elf64_Phdr` and `Elf64_Nhdr` (no byte offsets of its own).
/// linux-loader 0.14 has no way to check an image without loading it: its header check
/// (`validate_header`) and note walk (`parse_elf_note`) are private to `Elf::load`, which writes
/// straight into guest memory and reports neither the segments nor a "Linux" note; the plan must
/// see all of them before any memory or KVM exists.
pub fn parse_elf(b: &[u8]) -> Result<ElfInfo, PlanError> {
    let truncated = |what: &str| image(format!("truncated ELF: {what} is cut off"));
    if !b.starts_with(elf::ELFMAG) {
        return Err(image("not an ELF file"));
    }
    let eh: elf::Elf64_Ehdr = read_at(b, 0).ok_or_else(|| truncated("the ELF header"))?;
    match eh.e_ident[elf::EI_CLASS] {
        elf::ELFCLASS64 => {}
        elf::ELFCLASS32 => return Err(image("32-bit ELF; tinyvmm loads ELF64 (x86-64) images")),
        c => return Err(image(format!("unknown ELF class {c}"))),
    }
    if eh.e_ident[elf::EI_DATA] != elf::ELFDATA2LSB {
        return Err(image("big-endian ELF; x86-64 is little-endian"));
    }
    let machine = eh.e_machine;
    if machine != elf::EM_X86_64 {
        return Err(image(format!("ELF for machine {machine}, not x86-64 (62)")));
    }
    if eh.e_phnum == 0 {
        return Err(image("ELF without program headers: nothing to load"));
    }
    let phsize = std::mem::size_of::<elf::Elf64_Phdr>();
    if usize::from(eh.e_phentsize) != phsize {
        return Err(image(format!(
            "ELF program header size {}, expected {phsize}",
            eh.e_phentsize
        )));
    }
    let phoff = usize::try_from(eh.e_phoff)
        .ok()
        .filter(|o| {
            o.checked_add(usize::from(eh.e_phnum) * phsize)
                .is_some_and(|end| end <= b.len())
        })
        .ok_or_else(|| truncated("the program header table"))?;
    let mut info = ElfInfo {
        entry: eh.e_entry,
        pieces: Vec::new(),
        pvh_entry: None,
        linux: false,
        interpreter: false,
    };
    for i in 0..usize::from(eh.e_phnum) {
        let ph: elf::Elf64_Phdr =
            read_at(b, phoff + i * phsize).ok_or_else(|| truncated("a program header"))?;
        let (offset, filesz, memsz) = (ph.p_offset, ph.p_filesz, ph.p_memsz);
        let data = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(filesz).ok())
            .and_then(|(o, n)| Some((o, o.checked_add(n)?)))
            .filter(|&(_, end)| end <= b.len());
        match ph.p_type {
            elf::PT_LOAD => {
                let (start, _) = data.ok_or_else(|| {
                    truncated(&format!("segment {i} (offset {offset}, {filesz} bytes)"))
                })?;
                if filesz > memsz {
                    return Err(image(format!(
                        "segment {i} has more file bytes ({filesz}) than memory bytes ({memsz})"
                    )));
                }
                if memsz > 0 {
                    info.pieces.push(Piece {
                        addr: ph.p_paddr,
                        offset: start,
                        len: filesz as usize,
                        mem_len: memsz,
                    });
                }
            }
            elf::PT_INTERP => info.interpreter = true,
            elf::PT_NOTE => {
                let (start, end) = data.ok_or_else(|| truncated(&format!("note segment {i}")))?;
                for (name, kind, desc) in notes(&b[start..end]) {
                    match (name, kind, desc.len()) {
                        (b"Xen", XEN_ELFNOTE_PHYS32_ENTRY, 4) => {
                            info.pvh_entry = read_at::<u32>(desc, 0).map(u64::from)
                        }
                        (b"Xen", XEN_ELFNOTE_PHYS32_ENTRY, 8) => info.pvh_entry = read_at(desc, 0),
                        (b"Linux", _, _) => info.linux = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if info.pieces.is_empty() {
        return Err(image("ELF without loadable segments"));
    }
    Ok(info)
}

/// The notes of a PT_NOTE segment: owner (without its NUL), type and descriptor, each padded to
/// 4 bytes; the walk ends at the first note that does not fit.
fn notes(mut b: &[u8]) -> impl Iterator<Item = (&[u8], u32, &[u8])> {
    std::iter::from_fn(move || {
        let h: elf::Elf64_Nhdr = read_at(b, 0)?;
        let pad = |n: u32| usize::try_from(n).ok()?.checked_add(3).map(|n| n & !3);
        let name_at = std::mem::size_of::<elf::Elf64_Nhdr>();
        let desc_at = name_at.checked_add(pad(h.n_namesz)?)?;
        let next = desc_at.checked_add(pad(h.n_descsz)?)?;
        let name = b.get(name_at..name_at + h.n_namesz as usize)?;
        let desc = b.get(desc_at..desc_at + h.n_descsz as usize)?;
        b = b.get(next..).unwrap_or(&[]);
        Some((name.strip_suffix(b"\0").unwrap_or(name), h.n_type, desc))
    })
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
        assert!(!parse_elf(&e).unwrap().linux);
    }

    #[test]
    fn an_interpreter_segment_marks_a_dynamic_program() {
        let interp = b"/lib64/ld-linux-x86-64.so.2\0";
        let payload: Vec<u8> = [&[0x90; 8][..], interp].concat();
        let load = (1, 176, 0x10_0000, 8, 8);
        let dynamic = elf(
            62,
            0x10_0000,
            &[load, (3, 184, 0, interp.len() as u64, interp.len() as u64)],
            &payload,
        );
        assert!(parse_elf(&dynamic).unwrap().interpreter);
        let fixed = elf(62, 0x10_0000, &[(1, 120, 0x10_0000, 8, 8)], &payload[..8]);
        assert!(!parse_elf(&fixed).unwrap().interpreter);
    }

    #[test]
    fn notes_are_walked_to_the_pvh_entry_and_the_linux_owner() {
        // A "Linux" build-salt note (odd sizes: padded), then a 64-bit PVH entry.
        let mut n = Vec::new();
        for (name, kind, desc) in [
            (&b"Linux\0"[..], 0x100u32, &b"6.1.0\0"[..]),
            (&b"Xen\0"[..], 18, &0x10_0020u64.to_le_bytes()[..]),
        ] {
            n.extend_from_slice(&(name.len() as u32).to_le_bytes());
            n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            n.extend_from_slice(&kind.to_le_bytes());
            n.extend_from_slice(name);
            n.resize(n.len().next_multiple_of(4), 0);
            n.extend_from_slice(desc);
            n.resize(n.len().next_multiple_of(4), 0);
        }
        let payload: Vec<u8> = [vec![0x90; 8], n.clone()].concat();
        let e = elf(
            62,
            0x10_0000,
            &[
                (1, 176, 0x10_0000, 8, 8),
                (4, 184, 0, n.len() as u64, n.len() as u64),
            ],
            &payload,
        );
        let info = parse_elf(&e).unwrap();
        assert_eq!((info.pvh_entry, info.linux), (Some(0x10_0020), true));
        // A note cut short ends the walk without a panic; what came before still counts.
        let cut = elf(
            62,
            0x10_0000,
            &[(1, 176, 0x10_0000, 8, 8), (4, 184, 0, 20, 20)],
            &payload[..8 + 20],
        );
        let info = parse_elf(&cut).unwrap();
        assert_eq!((info.pvh_entry, info.linux), (None, false));
        let cut = elf(
            62,
            0x10_0000,
            &[(1, 176, 0x10_0000, 8, 8), (4, 184, 0, 28, 28)],
            &payload[..8 + 28],
        );
        let info = parse_elf(&cut).unwrap();
        assert_eq!((info.pvh_entry, info.linux), (None, true));
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
            let _ = notes(&b).count();
        }
    }
}
