//! Booting Linux-style kernels (`run --kernel`): the pure plan (bzImage setup header or ELF
//! vmlinux, command line, initrd placement, e820 map) and the boot structures Linux reads (the
//! zero page of the 64-bit boot protocol, PVH's start info), filled in as linux-loader's
//! `boot_params` and `hvm_start_info` and handed over as bytes, so they are unit-tested without
//! KVM.

use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use vm_memory::ByteValued;

use crate::layout;
use crate::plan::{self, PlanError};

/// The command line every kernel gets before `--append`: the console on COM1, reboots through
/// the i8042 reset, and a panic that resets at once (`panic=-1`) with the BIOS warm-boot flag
/// (`reboot=panic_warm`: 0x1234 at [`RESET_FLAG_ADDR`]), which is how tinyvmm tells it from a
/// reboot (cold, 0).
pub const DEFAULT_CMDLINE: &str = "console=ttyS0 reboot=k,panic_warm panic=-1";
/// The BIOS data area's reset flag (a u16): Linux writes [`RESET_FLAG_WARM`] or 0 (cold) here
/// before every restart, whichever way it then resets (i8042, ACPI reset register, triple
/// fault); tinyvmm puts [`RESET_FLAG_UNSET`] there at boot to see whether it did.
pub const RESET_FLAG_ADDR: u64 = 0x472;
/// The warm-boot value: with `reboot=panic_warm`, a panic's restart.
pub const RESET_FLAG_WARM: u16 = 0x1234;
/// The cold-boot value: an ordinary restart (`reboot`).
pub const RESET_FLAG_COLD: u16 = 0;
/// What tinyvmm writes before the kernel runs: neither value, so a triple fault with the flag
/// still unset is a crash, not a restart.
pub const RESET_FLAG_UNSET: u16 = 0xffff;
/// Where the zero page (`boot_params`) goes; RSI points at it.
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// Where the command line goes.
pub const CMDLINE_ADDR: u64 = 0x2_0000;
/// The initial stack of the 64-bit boot protocol, below the page tables.
pub const BOOT_STACK: u64 = 0x8ff0;
/// Where the PVH module list (the initrd) goes, after the start info and its memory map.
pub const PVH_MODLIST_ADDR: u64 = layout::PVH_INFO_ADDR + 0x100;
/// Where a bzImage's protected-mode part loads.
pub const BZIMAGE_LOAD: u64 = 0x10_0000;
/// Start of the legacy hole the e820 map reserves (EBDA, video, BIOS).
pub const EBDA_START: u64 = 0x9_fc00;
/// End of the legacy hole.
pub const HIGH_MEMORY: u64 = 0x10_0000;
/// e820 type: RAM.
pub const E820_RAM: u32 = 1;
/// e820 type: reserved.
pub const E820_RESERVED: u32 = 2;

// The boot structures stay clear of each other (the memory map has three entries).
const _: () = assert!(
    layout::PVH_MEMMAP_ADDR + 3 * std::mem::size_of::<hvm_memmap_table_entry>() as u64
        <= PVH_MODLIST_ADDR
);
const _: () = assert!(PVH_MODLIST_ADDR + 32 <= ZERO_PAGE_ADDR);
const _: () = assert!(ZERO_PAGE_ADDR + 4096 < BOOT_STACK && BOOT_STACK < layout::PML4_ADDR);
const _: () = assert!(BOOT_STACK < CMDLINE_ADDR && CMDLINE_ADDR + 4096 < EBDA_START);

const HDRS: u32 = 0x5372_6448;
const XLF_KERNEL_64: u16 = 1;
const LOADED_HIGH: u8 = 1;

/// How the kernel is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// bzImage: 64-bit boot protocol at load address + 0x200, RSI = zero page.
    BzImage,
    /// ELF with the PVH note: 32-bit protected mode, EBX = start info.
    Pvh,
    /// ELF without the note: 64-bit boot protocol at e_entry, RSI = zero page.
    Elf,
}

/// Everything needed to boot a kernel, decided without KVM.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelPlan {
    /// How it is entered.
    pub kind: KernelKind,
    /// Guest memory.
    pub mem: u64,
    /// Entry point (guest-physical).
    pub entry: u64,
    /// End of the kernel in memory (initrd goes above).
    pub kernel_end: u64,
    /// The command line, NUL-terminated.
    pub cmdline: Vec<u8>,
    /// The initrd's address and size.
    pub initrd: Option<(u64, u64)>,
    /// The e820 map: base, length, type.
    pub e820: Vec<(u64, u64, u32)>,
    /// A bzImage's setup header (the bytes from 0x1f1 up to its end), copied into the zero page.
    pub setup_header: Option<setup_header>,
    /// The kernel says it is Linux (a bzImage's kernel_version string, a vmlinux's "Linux" ELF
    /// note), which a PVM host cannot boot to the end; the synthetic test kernels say neither.
    pub linux: bool,
}

/// Whether a bzImage's setup header points at a version string ("6.1.0-57-cloud-amd64 (...)"):
/// kernel_version is its offset from 0x200, 0 when there is none.
fn bzimage_has_version(kernel: &[u8], h: &setup_header) -> bool {
    let at = usize::from(h.kernel_version);
    at != 0 && kernel.get(0x200 + at).is_some_and(|c| c.is_ascii_digit())
}

fn bad(why: impl Into<String>) -> PlanError {
    PlanError::Image(why.into())
}

/// Where the setup header starts in a bzImage and in the zero page.
const SETUP_HEADER_AT: usize = 0x1f1;

/// A bzImage's setup header, or None when `kernel` is too short to hold one. Bytes past the
/// header's own end (0x202 + the jump's offset at 0x201: older protocols end earlier) stay 0,
/// as the boot protocol asks of a loader that copies it. xtask reads a bzImage's payload fields
/// with it too, so the setup header has one reader.
pub fn read_setup_header(kernel: &[u8]) -> Option<setup_header> {
    let len = std::mem::size_of::<setup_header>();
    let bytes = kernel.get(SETUP_HEADER_AT..SETUP_HEADER_AT + len)?;
    let end = (0x202 + usize::from(*kernel.get(0x201)?)).clamp(0x268, SETUP_HEADER_AT + len);
    let mut h = setup_header::default();
    let keep = end - SETUP_HEADER_AT;
    h.as_mut_slice()[..keep].copy_from_slice(&bytes[..keep]);
    Some(h)
}

/// The e820 map for `mem` bytes: low RAM, the legacy hole, RAM from 1 MiB.
pub fn e820(mem: u64) -> Vec<(u64, u64, u32)> {
    let mut map = vec![
        (0, EBDA_START.min(mem), E820_RAM),
        (EBDA_START, HIGH_MEMORY - EBDA_START, E820_RESERVED),
    ];
    if mem > HIGH_MEMORY {
        map.push((HIGH_MEMORY, mem - HIGH_MEMORY, E820_RAM));
    }
    map
}

/// Plans booting `kernel` with an initrd of `initrd_len` bytes and `--append`.
pub fn plan(
    kernel: &[u8],
    initrd_len: Option<u64>,
    append: Option<&str>,
    mem: u64,
    host_ram: u64,
) -> Result<KernelPlan, PlanError> {
    plan::check_mem(mem, host_ram)?;
    if mem < 2 * HIGH_MEMORY {
        return Err(PlanError::Option(
            "--mem: a kernel needs at least 2M of guest memory".into(),
        ));
    }
    if kernel.is_empty() {
        return Err(bad("the kernel is empty"));
    }
    let mut cmdline = DEFAULT_CMDLINE.to_string();
    if let Some(extra) = append.filter(|a| !a.trim().is_empty()) {
        cmdline.push(' ');
        cmdline.push_str(extra.trim());
    }
    if cmdline.contains('\0') {
        return Err(PlanError::Option(
            "--append: the command line cannot contain NUL".into(),
        ));
    }
    let mut cmdline_max: u64 = 4095;
    let mut initrd_max: u64 = 0xffff_ffff;
    let linux;
    let (kind, entry, kernel_end, setup_header) = if kernel.starts_with(b"\x7fELF") {
        let elf = plan::parse_elf(kernel)?;
        let mut end = 0;
        for p in &elf.pieces {
            let stop = p
                .addr
                .checked_add(p.mem_len)
                .ok_or_else(|| bad("a segment overflows the address space"))?;
            if p.addr < HIGH_MEMORY {
                return Err(bad(format!(
                    "segment at 0x{:x} is below 1 MiB, where the boot structures go",
                    p.addr
                )));
            }
            if stop > mem {
                return Err(bad(format!(
                    "segment [0x{:x}, 0x{stop:x}) lies outside guest memory (--mem)",
                    p.addr
                )));
            }
            end = end.max(stop);
        }
        linux = elf.linux;
        match elf.pvh_entry {
            Some(e) => (KernelKind::Pvh, e, end, None),
            None => (KernelKind::Elf, elf.entry, end, None),
        }
    } else {
        let Some(hdr) = read_setup_header(kernel).filter(|h| ({ h.header }) == HDRS) else {
            return Err(bad(
                "neither an ELF vmlinux nor a bzImage (no \"HdrS\" setup header at 0x202)",
            ));
        };
        let version = hdr.version;
        if version < 0x020c {
            return Err(bad(format!(
                "boot protocol {}.{:02} is too old: the 64-bit entry needs 2.12 (Linux 3.8)",
                version >> 8,
                version & 0xff
            )));
        }
        if hdr.xloadflags & XLF_KERNEL_64 == 0 {
            return Err(bad(
                "the bzImage has no 64-bit entry (XLF_KERNEL_64 is clear)",
            ));
        }
        if hdr.loadflags & LOADED_HIGH == 0 {
            return Err(bad("the bzImage does not load high (zImage)"));
        }
        let sects = match hdr.setup_sects {
            0 => 4,
            n => u64::from(n),
        };
        let setup_len = (sects + 1) * 512;
        let pm_len = (kernel.len() as u64)
            .checked_sub(setup_len)
            .filter(|&n| n > 0)
            .ok_or_else(|| bad("truncated bzImage: nothing after the setup sectors"))?;
        let init_size = u64::from(hdr.init_size);
        let end = BZIMAGE_LOAD + pm_len.max(init_size);
        if end > mem {
            return Err(bad(format!(
                "the kernel needs [0x{BZIMAGE_LOAD:x}, 0x{end:x}), more than --mem"
            )));
        }
        cmdline_max = u64::from(hdr.cmdline_size).max(255);
        initrd_max = u64::from(hdr.initrd_addr_max);
        linux = bzimage_has_version(kernel, &hdr);
        (KernelKind::BzImage, BZIMAGE_LOAD + 0x200, end, Some(hdr))
    };
    if entry >= mem {
        return Err(bad(format!(
            "entry point 0x{entry:x} lies outside guest memory"
        )));
    }
    if cmdline.len() as u64 > cmdline_max {
        return Err(PlanError::Option(format!(
            "--append: the command line has {} bytes, the kernel takes at most {cmdline_max}",
            cmdline.len()
        )));
    }
    let initrd = match initrd_len {
        None => None,
        Some(0) => return Err(bad("the initrd is empty")),
        Some(len) => {
            let top = mem.min(initrd_max.saturating_add(1));
            let addr = top
                .checked_sub(len)
                .map(|a| a & !0xfff)
                .filter(|&a| a >= kernel_end)
                .ok_or_else(|| {
                    bad(format!(
                        "the initrd ({len} bytes) does not fit between the kernel's end \
                         (0x{kernel_end:x}) and 0x{top:x} (raise --mem)"
                    ))
                })?;
            Some((addr, len))
        }
    };
    let mut cmd = cmdline.into_bytes();
    cmd.push(0);
    Ok(KernelPlan {
        kind,
        mem,
        entry,
        kernel_end,
        cmdline: cmd,
        initrd,
        e820: e820(mem),
        setup_header,
        linux,
    })
}

/// The zero page (`boot_params`, 4 KiB) of the 64-bit boot protocol.
pub fn zero_page(p: &KernelPlan) -> Vec<u8> {
    let mut z = vec![0u8; std::mem::size_of::<boot_params>()];
    let bp = boot_params::from_mut_slice(&mut z).expect("a zero page is one boot_params");
    bp.hdr = p.setup_header.unwrap_or(setup_header {
        // An ELF vmlinux has no setup header: give the fields the kernel reads.
        boot_flag: 0xaa55,
        header: HDRS,
        version: 0x020c,
        kernel_alignment: 0x100_0000,
        ..setup_header::default()
    });
    bp.acpi_rsdp_addr = crate::acpi::RSDP_ADDR;
    bp.hdr.type_of_loader = 0xff; // undefined
    bp.hdr.loadflags |= LOADED_HIGH;
    bp.hdr.cmd_line_ptr = CMDLINE_ADDR as u32;
    bp.hdr.cmdline_size = (p.cmdline.len() - 1) as u32;
    if let Some((addr, len)) = p.initrd {
        bp.hdr.ramdisk_image = addr as u32;
        bp.hdr.ramdisk_size = len as u32;
        bp.ext_ramdisk_image = (addr >> 32) as u32;
        bp.ext_ramdisk_size = (len >> 32) as u32;
    }
    bp.e820_entries = p.e820.len() as u8;
    for (i, &(addr, size, kind)) in p.e820.iter().enumerate() {
        bp.e820_table[i] = boot_e820_entry {
            addr,
            size,
            r#type: kind,
        };
    }
    z
}

/// PVH's start info with its memory map (at [`layout::PVH_MEMMAP_ADDR`]), built by
/// [`layout::pvh_start_info_with`], and the module list for the initrd (at
/// [`PVH_MODLIST_ADDR`]): (address, bytes) pieces to write.
pub fn pvh_info(p: &KernelPlan) -> Vec<(u64, Vec<u8>)> {
    let info = hvm_start_info {
        nr_modules: u32::from(p.initrd.is_some()),
        modlist_paddr: if p.initrd.is_some() {
            PVH_MODLIST_ADDR
        } else {
            0
        },
        cmdline_paddr: CMDLINE_ADDR,
        rsdp_paddr: crate::acpi::RSDP_ADDR,
        ..hvm_start_info::default()
    };
    let mut out = vec![(
        layout::PVH_INFO_ADDR,
        layout::pvh_start_info_with(info, &p.e820),
    )];
    if let Some((paddr, size)) = p.initrd {
        let m = hvm_modlist_entry {
            paddr,
            size,
            ..hvm_modlist_entry::default()
        };
        out.push((PVH_MODLIST_ADDR, m.as_slice().to_vec()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests read the structures at the offsets the kernel's boot protocol documents.
    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    /// A bzImage header with `version` and `xloadflags`, one setup sector, `pm` payload bytes.
    fn bz(version: u16, xloadflags: u16, pm: usize) -> Vec<u8> {
        let mut k = vec![0u8; 1024 + pm];
        k[0x1f1] = 1;
        k[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
        k[0x201] = 0x66;
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x206..0x208].copy_from_slice(&version.to_le_bytes());
        k[0x211] = 1;
        k[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
        k[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        k[0x236..0x238].copy_from_slice(&xloadflags.to_le_bytes());
        k[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
        k[0x260..0x264].copy_from_slice(&0x1_0000u32.to_le_bytes());
        k
    }

    const MEM: u64 = 64 << 20;

    #[test]
    fn bzimage_plan() {
        let p = plan(&bz(0x020f, 1, 4096), Some(10_000), Some("quiet"), MEM, 0).unwrap();
        assert_eq!(p.kind, KernelKind::BzImage);
        assert_eq!(p.entry, 0x10_0200);
        assert_eq!(p.kernel_end, 0x11_0000);
        assert_eq!(
            p.cmdline,
            b"console=ttyS0 reboot=k,panic_warm panic=-1 quiet\0"
        );
        assert_eq!(p.initrd, Some(((MEM - 10_000) & !0xfff, 10_000)));
        assert_eq!(
            p.e820,
            vec![
                (0, 0x9_fc00, 1),
                (0x9_fc00, 0x6_0400, 2),
                (0x10_0000, MEM - 0x10_0000, 1)
            ]
        );
        let h = p.setup_header.expect("a bzImage's header");
        assert_eq!(({ h.version }, { h.init_size }), (0x020f, 0x1_0000));
        // Past the header's end (0x202 + 0x66 = 0x268) nothing is copied.
        assert_eq!({ h.kernel_info_offset }, 0);
        // No kernel_version string: not taken for Linux.
        assert!(!p.linux);
        let mut k = bz(0x020f, 1, 4096);
        k[0x20e..0x210].copy_from_slice(&0x300u16.to_le_bytes());
        k[0x500..0x506].copy_from_slice(b"6.1.0\0");
        assert!(plan(&k, None, None, MEM, 0).unwrap().linux);
        k[0x500] = 0;
        assert!(!plan(&k, None, None, MEM, 0).unwrap().linux);
        k[0x20e..0x210].copy_from_slice(&0xfff0u16.to_le_bytes());
        assert!(!plan(&k, None, None, MEM, 0).unwrap().linux);
    }

    #[test]
    fn bzimage_refusals() {
        let too_old = plan(&bz(0x020b, 1, 4096), None, None, MEM, 0);
        assert!(matches!(too_old, Err(PlanError::Image(m)) if m.contains("too old")));
        let no64 = plan(&bz(0x020f, 0, 4096), None, None, MEM, 0);
        assert!(matches!(no64, Err(PlanError::Image(m)) if m.contains("XLF_KERNEL_64")));
        let empty_pm = plan(&bz(0x020f, 1, 0), None, None, MEM, 0);
        assert!(matches!(empty_pm, Err(PlanError::Image(m)) if m.contains("truncated")));
        assert!(plan(b"garbage", None, None, MEM, 0).is_err());
        assert!(plan(&[], None, None, MEM, 0).is_err());
        let long = "x".repeat(3000);
        assert!(matches!(
            plan(&bz(0x020f, 1, 16), None, Some(&long), MEM, 0),
            Err(PlanError::Option(m)) if m.contains("at most 2047")
        ));
        // An initrd that cannot fit above the kernel.
        assert!(plan(&bz(0x020f, 1, 16), Some(MEM), None, MEM, 0).is_err());
        assert!(plan(&bz(0x020f, 1, 16), Some(0), None, MEM, 0).is_err());
        // Memory too small for the kernel's init_size.
        assert!(plan(&bz(0x020f, 1, 16), None, None, 1 << 20, 0).is_err());
    }

    #[test]
    fn initrd_respects_initrd_addr_max() {
        let mut k = bz(0x020f, 1, 16);
        k[0x22c..0x230].copy_from_slice(&0x1ff_ffffu32.to_le_bytes()); // 32 MiB - 1
        let p = plan(&k, Some(4096), None, MEM, 0).unwrap();
        assert_eq!(p.initrd, Some((0x200_0000 - 4096, 4096)));
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut seed = 0x9e37_79b9u32;
        for len in [0usize, 1, 100, 0x268, 0x300, 0x400, 0x401, 2000] {
            for variant in 0..8 {
                let mut k: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        (seed >> 16) as u8
                    })
                    .collect();
                if len > 0x206 && variant & 1 == 1 {
                    k[0x202..0x206].copy_from_slice(b"HdrS");
                }
                if len > 4 && variant & 2 == 2 {
                    k[0..4].copy_from_slice(b"\x7fELF");
                }
                let initrd = (variant & 4 == 4).then_some(u64::from(seed));
                if let Ok(p) = plan(&k, initrd, Some("x"), MEM, 0) {
                    let _ = zero_page(&p);
                    let _ = pvh_info(&p);
                }
            }
        }
    }

    #[test]
    fn zero_page_fields() {
        let p = plan(&bz(0x020f, 1, 4096), Some(8192), Some("a=b"), MEM, 0).unwrap();
        let z = zero_page(&p);
        assert_eq!(&z[0x202..0x206], b"HdrS");
        assert_eq!(z[0x1fe..0x200], [0x55, 0xaa]);
        assert_eq!(z[0x210], 0xff);
        // acpi_rsdp_addr: where the ACPI tables start.
        let rsdp = u64::from_le_bytes(z[0x70..0x78].try_into().unwrap());
        assert_eq!(rsdp, crate::acpi::RSDP_ADDR);
        assert_eq!(u32_at(&z, 0x228), 0x2_0000);
        assert_eq!(u32_at(&z, 0x218) as u64, p.initrd.unwrap().0);
        assert_eq!(u32_at(&z, 0x21c), 8192);
        assert_eq!(z[0x1e8], 3);
        assert_eq!(u32_at(&z, 0x2d0 + 2 * 20 + 16), 1);
        assert_eq!(
            u64::from_le_bytes(z[0x2d0 + 48..0x2d0 + 56].try_into().unwrap()),
            MEM - 0x10_0000
        );
    }

    #[test]
    fn pvh_start_info_has_cmdline_memmap_and_module() {
        let p = KernelPlan {
            kind: KernelKind::Pvh,
            mem: MEM,
            entry: 0x100_0000,
            kernel_end: 0x200_0000,
            cmdline: b"x\0".to_vec(),
            initrd: Some((0x300_0000, 100)),
            e820: e820(MEM),
            setup_header: None,
            linux: true,
        };
        let parts = pvh_info(&p);
        let info = &parts[0].1;
        assert_eq!(parts[0].0, layout::PVH_INFO_ADDR);
        assert_eq!(u32_at(info, 0), layout::PVH_MAGIC);
        assert_eq!(u32_at(info, 12), 1);
        assert_eq!(u32_at(info, 48), 3);
        // rsdp_paddr.
        let rsdp = u64::from_le_bytes(info[32..40].try_into().unwrap());
        assert_eq!(rsdp, crate::acpi::RSDP_ADDR);
        // The three e820 entries follow at memmap_paddr, the last one RAM.
        let memmap = (layout::PVH_MEMMAP_ADDR - layout::PVH_INFO_ADDR) as usize;
        assert_eq!(info.len(), memmap + 3 * 24);
        assert_eq!(u32_at(info, memmap + 2 * 24 + 16), E820_RAM);
        assert_eq!(parts[1].0, PVH_MODLIST_ADDR);
        assert_eq!(u32_at(&parts[1].1, 0), 0x300_0000);
    }
}
