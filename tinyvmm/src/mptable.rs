//! The Intel MultiProcessor table a kernel reads to find its CPUs, the IOAPIC and how ISA
//! interrupts are wired (`--cpus`), built as bytes at the start of the EBDA, where Linux scans.

/// Where the table goes: the last KiB of base memory, reserved in the e820 map.
pub const MPTABLE_ADDR: u64 = 0x9_fc00;
/// The local APIC's address.
pub const LAPIC_ADDR: u32 = 0xfee0_0000;
/// The IOAPIC's address (KVM's in-kernel IOAPIC).
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;
/// Most CPUs tinyvmm gives a guest (the table and its e820 hole have room for many more).
pub const MAX_CPUS: u8 = 32;

const ISA_IRQS: u8 = 16;

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b))
        .wrapping_neg()
}

/// The floating pointer and the configuration table for `cpus` CPUs (APIC ids 0..cpus, CPU 0
/// the bootstrap processor), one ISA bus, the IOAPIC (id `cpus`) with ISA IRQ n on pin n, LINT0
/// ExtINT and LINT1 NMI.
pub fn mptable(cpus: u8) -> Vec<u8> {
    let ioapic_id = cpus;
    let mut entries: Vec<u8> = Vec::new();
    let mut count: u16 = 0;
    for id in 0..cpus {
        let mut e = [0u8; 20];
        e[0] = 0; // processor
        e[1] = id;
        e[2] = 0x14; // local APIC version
        e[3] = if id == 0 { 0x3 } else { 0x1 }; // enabled, BSP
        e[4..8].copy_from_slice(&0x600u32.to_le_bytes()); // family 6
        e[8..12].copy_from_slice(&0x201u32.to_le_bytes()); // FPU, APIC
        entries.extend_from_slice(&e);
        count += 1;
    }
    entries.extend_from_slice(&[1, 0, b'I', b'S', b'A', b' ', b' ', b' ']); // bus 0: ISA
    count += 1;
    let mut ioapic = [2u8, ioapic_id, 0x11, 1, 0, 0, 0, 0];
    ioapic[4..8].copy_from_slice(&IOAPIC_ADDR.to_le_bytes());
    entries.extend_from_slice(&ioapic);
    count += 1;
    for irq in 0..ISA_IRQS {
        // I/O interrupt: INT, conforming polarity and trigger, bus 0 IRQ n -> IOAPIC pin n.
        entries.extend_from_slice(&[3, 0, 0, 0, 0, irq, ioapic_id, irq]);
        count += 1;
    }
    // Local interrupts to every local APIC: ExtINT on LINT0, NMI on LINT1.
    entries.extend_from_slice(&[4, 3, 0, 0, 0, 0, 0xff, 0]);
    entries.extend_from_slice(&[4, 1, 0, 0, 0, 0, 0xff, 1]);
    count += 2;

    let mut table = Vec::with_capacity(44 + entries.len());
    table.extend_from_slice(b"PCMP");
    table.extend_from_slice(&((44 + entries.len()) as u16).to_le_bytes());
    table.push(4); // spec revision 1.4
    table.push(0); // checksum, below
    table.extend_from_slice(b"TINYVMM ");
    table.extend_from_slice(b"000000000000");
    table.extend_from_slice(&0u32.to_le_bytes()); // OEM table
    table.extend_from_slice(&0u16.to_le_bytes());
    table.extend_from_slice(&count.to_le_bytes());
    table.extend_from_slice(&LAPIC_ADDR.to_le_bytes());
    table.extend_from_slice(&0u16.to_le_bytes()); // extended table
    table.push(0);
    table.push(0);
    table.extend_from_slice(&entries);
    table[7] = checksum(&table);

    let mut fp = [0u8; 16];
    fp[0..4].copy_from_slice(b"_MP_");
    fp[4..8].copy_from_slice(&((MPTABLE_ADDR + 16) as u32).to_le_bytes());
    fp[8] = 1; // length in 16-byte units
    fp[9] = 4;
    fp[10] = checksum(&fp);
    let mut out = fp.to_vec();
    out.extend_from_slice(&table);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }

    #[test]
    fn checksums_and_counts() {
        for cpus in [1u8, 2, 4, MAX_CPUS] {
            let t = mptable(cpus);
            assert_eq!(&t[0..4], b"_MP_");
            assert_eq!(sum(&t[0..16]), 0);
            let table = &t[16..];
            assert_eq!(&table[0..4], b"PCMP");
            let len = u16::from_le_bytes([table[4], table[5]]) as usize;
            assert_eq!(len, table.len());
            assert_eq!(sum(table), 0);
            let count = u16::from_le_bytes([table[34], table[35]]);
            assert_eq!(count, u16::from(cpus) + 1 + 1 + 16 + 2);
            let processors: Vec<&[u8]> = (0..usize::from(cpus))
                .map(|i| &table[44 + i * 20..64 + i * 20])
                .collect();
            assert!(processors.iter().all(|p| p[0] == 0));
            assert_eq!(processors[0][3], 3);
            assert!(processors.iter().skip(1).all(|p| p[3] == 1));
            // The whole table fits in the EBDA hole below 640 KiB.
            assert!(MPTABLE_ADDR + t.len() as u64 <= 0xa_0000);
        }
    }
}
