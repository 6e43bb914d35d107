//! Where tinyvmm puts things in guest memory and the bytes it puts there (GDT, page tables, the
//! memory map): pure functions, so the boot structures are unit-tested without KVM.

use linux_loader::loader::elf::start_info::{hvm_memmap_table_entry, hvm_start_info};
use vm_memory::ByteValued;

/// The GDT, for the long-mode and PVH entries.
pub const GDT_ADDR: u64 = 0x500;
/// tinyvmm's memory map ("TVMM", entry count, e820-like entries), passed in RSI/SI/ESI.
pub const BOOT_INFO_ADDR: u64 = 0x600;
/// PVH's `hvm_start_info`, passed in RBX.
pub const PVH_INFO_ADDR: u64 = 0x6000;
/// The memory map the PVH start info points to.
pub const PVH_MEMMAP_ADDR: u64 = PVH_INFO_ADDR + 0x40;
/// The PML4 of the identity map.
pub const PML4_ADDR: u64 = 0x9000;
/// The one PDPT (a single PML4 entry covers 512 GiB).
pub const PDPT_ADDR: u64 = 0xa000;
/// The first page directory; one 4 KiB directory per GiB of guest memory follows.
pub const PD_ADDR: u64 = 0xb000;
/// Where `real` images load by default, entered at 0000:1000.
pub const REAL_LOAD: u64 = 0x1000;
/// Where `long` images load by default.
pub const LONG_LOAD: u64 = 0x10_0000;
/// Real-mode code reaches 1 MiB; an image must end below the legacy video/BIOS area.
pub const REAL_LIMIT: u64 = 0xa_0000;
/// Magic of tinyvmm's memory map: "TVMM" little-endian.
pub const BOOT_INFO_MAGIC: u32 = 0x4d4d_5654;
/// Magic of PVH's hvm_start_info.
pub const PVH_MAGIC: u32 = 0x336e_c578;
/// Memory-map entry type for RAM (as in e820 and PVH).
pub const MAP_RAM: u32 = 1;

/// Selectors of the GDT built by [`gdt`].
pub const CODE_SEL: u16 = 0x08;
/// Data selector.
pub const DATA_SEL: u16 = 0x10;
/// Task-state selector (VMX needs a usable TR; the TSS itself is never used).
pub const TSS_SEL: u16 = 0x18;

const GIB: u64 = 1 << 30;
const TWO_MIB: u64 = 2 << 20;

/// Page directories needed to identity-map `mem` bytes with 2 MiB pages.
pub fn page_directories(mem: u64) -> u64 {
    mem.div_ceil(GIB).max(1)
}

/// The end of the page tables for `mem` bytes of guest memory.
pub fn page_tables_end(mem: u64) -> u64 {
    PD_ADDR + page_directories(mem) * 0x1000
}

/// Packs a segment descriptor from flags (in the 0xF0FF form: G/DB/L/AVL, then P/DPL/S/type),
/// base and limit.
pub fn descriptor(flags: u16, base: u32, limit: u32) -> u64 {
    let flags = u64::from(flags);
    let base = u64::from(base);
    let limit = u64::from(limit);
    ((base & 0xff00_0000) << 32)
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0xffff)
        | ((limit & 0xf_0000) << 32)
        | ((flags & 0xf0ff) << 40)
}

/// The GDT: null, code (64-bit for long mode, 32-bit for the PVH entry), flat data, a TSS.
pub fn gdt(long: bool) -> [u64; 4] {
    let code = if long { 0xa09b } else { 0xc09b };
    [
        0,
        descriptor(code, 0, 0xfffff),
        descriptor(0xc093, 0, 0xfffff),
        descriptor(0x008b, 0, 0x67),
    ]
}

/// Identity-maps `[0, round_up(mem, 1 GiB))` with 2 MiB pages: returns (address, entry) pairs to
/// write, PML4 -> PDPT -> one page directory per GiB. Addresses past RAM stay mapped, so guest
/// accesses there reach tinyvmm as MMIO and read all-ones.
pub fn page_table_entries(mem: u64) -> Vec<(u64, u64)> {
    const PRESENT_RW: u64 = 0x3;
    const PAGE_SIZE_BIT: u64 = 0x80;
    let dirs = page_directories(mem);
    let mut out = Vec::with_capacity(2 + (dirs * 512) as usize);
    out.push((PML4_ADDR, PDPT_ADDR | PRESENT_RW));
    for d in 0..dirs {
        let pd = PD_ADDR + d * 0x1000;
        out.push((PDPT_ADDR + d * 8, pd | PRESENT_RW));
        for i in 0..512 {
            let phys = d * GIB + i * TWO_MIB;
            out.push((pd + i * 8, phys | PRESENT_RW | PAGE_SIZE_BIT));
        }
    }
    out
}

/// One entry of a memory map: base, length, type, as PVH's `hvm_memmap_table_entry` (tinyvmm's
/// own map uses the same entries).
pub fn map_entry(base: u64, len: u64, kind: u32) -> hvm_memmap_table_entry {
    hvm_memmap_table_entry {
        addr: base,
        size: len,
        type_: kind,
        reserved: 0,
    }
}

/// tinyvmm's memory map: "TVMM", the entry count, then one RAM entry covering all guest memory.
pub fn boot_info(mem: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(&BOOT_INFO_MAGIC.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(map_entry(0, mem, MAP_RAM).as_slice());
    b
}

/// The one builder of PVH's `hvm_start_info` (version 1): `info`'s other fields (command line,
/// RSDP, modules) as the caller fills them in, pointing at `map` (base, length, type) at
/// [`PVH_MEMMAP_ADDR`]; the bytes from [`PVH_INFO_ADDR`] to the map's end.
pub fn pvh_start_info_with(info: hvm_start_info, map: &[(u64, u64, u32)]) -> Vec<u8> {
    let info = hvm_start_info {
        magic: PVH_MAGIC,
        version: 1,
        memmap_paddr: PVH_MEMMAP_ADDR,
        memmap_entries: map.len() as u32,
        ..info
    };
    let mut b = info.as_slice().to_vec();
    b.resize((PVH_MEMMAP_ADDR - PVH_INFO_ADDR) as usize, 0);
    for &(base, len, kind) in map {
        b.extend_from_slice(map_entry(base, len, kind).as_slice());
    }
    b
}

/// The start info of a `--format pvh` image: one RAM entry covering all guest memory, nothing
/// else.
pub fn pvh_start_info(mem: u64) -> Vec<u8> {
    pvh_start_info_with(hvm_start_info::default(), &[(0, mem, MAP_RAM)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_match_the_classic_values() {
        assert_eq!(descriptor(0xa09b, 0, 0xfffff), 0x00af_9b00_0000_ffff);
        assert_eq!(descriptor(0xc093, 0, 0xfffff), 0x00cf_9300_0000_ffff);
        assert_eq!(descriptor(0xc09b, 0, 0xfffff), 0x00cf_9b00_0000_ffff);
        assert_eq!(gdt(true)[0], 0);
    }

    #[test]
    fn page_tables_cover_memory_rounded_to_a_gib() {
        assert_eq!(page_directories(64 << 20), 1);
        assert_eq!(page_directories(1 << 30), 1);
        assert_eq!(page_directories((1 << 30) + 4096), 2);
        assert_eq!(page_tables_end(64 << 20), 0xc000);
        let e = page_table_entries(64 << 20);
        assert_eq!(e.len(), 2 + 512);
        assert_eq!(e[0], (PML4_ADDR, PDPT_ADDR | 3));
        assert_eq!(e[1], (PDPT_ADDR, PD_ADDR | 3));
        assert_eq!(e[2], (PD_ADDR, 0x83));
        assert_eq!(e[3], (PD_ADDR + 8, (2 << 20) | 0x83));
        let two = page_table_entries(3 << 30);
        assert!(two.contains(&(PDPT_ADDR + 16, (PD_ADDR + 0x2000) | 3)));
        assert!(two.contains(&(PD_ADDR + 0x2000 + 8, ((2 << 30) + (2 << 20)) | 0x83)));
        // Even for the largest memory the tables end below where long images load.
        assert!(page_tables_end(3 << 30) < LONG_LOAD);
    }

    #[test]
    fn memory_maps() {
        let b = boot_info(64 << 20);
        assert_eq!(&b[0..4], b"TVMM");
        assert_eq!(b.len(), 32);
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 64 << 20);
        assert_eq!(b[24], 1);
        let p = pvh_start_info(32 << 20);
        assert_eq!(u32::from_le_bytes(p[0..4].try_into().unwrap()), PVH_MAGIC);
        assert_eq!(
            u64::from_le_bytes(p[40..48].try_into().unwrap()),
            PVH_MEMMAP_ADDR
        );
        assert_eq!(p.len(), 0x40 + 24);
        assert_eq!(
            u64::from_le_bytes(p[0x48..0x50].try_into().unwrap()),
            32 << 20
        );
    }
}
