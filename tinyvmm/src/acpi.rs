//! The ACPI tables a kernel gets (`--kernel`), built with rust-vmm's `acpi_tables`: they tell
//! Linux how many CPUs there are (MADT, for kernels without MP-table parsing), how to power off
//! and reset (a hardware-reduced FADT with sleep and reset registers on I/O ports, which
//! [`crate::platform`] turns into the run's end) and, by their boot flags, that there is no
//! i8042 or VGA to probe. Pure: the bytes and where they go.

use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, ProcessorLocalApic, MADT,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use acpi_tables::{aml, Aml};

use crate::mptable::{IOAPIC_ADDR, LAPIC_ADDR};

/// The CMOS register holding the century, which the FADT names (and [`crate::platform`]'s RTC
/// answers).
pub const CMOS_CENTURY: u8 = 0x32;

/// Where the RSDP goes: the start of the BIOS area Linux scans for it (16-byte aligned), in the
/// e820 hole below 1 MiB; the other tables follow it.
pub const RSDP_ADDR: u64 = 0xe_0000;
/// The end of the area the tables may use.
pub const TABLES_END: u64 = 0x10_0000;

/// The sleep control register (one byte): SLP_EN with SLP_TYP = [`S5_SLP_TYP`] powers off.
pub const SLEEP_CONTROL_PORT: u16 = 0x600;
/// The sleep status register (one byte): reads 0, writes (WAK_STS clearing) are ignored.
pub const SLEEP_STATUS_PORT: u16 = 0x601;
/// The reset register (one byte): [`RESET_VALUE`] written here resets the machine.
pub const RESET_PORT: u16 = 0x602;
/// What the kernel writes to [`RESET_PORT`] to reset.
pub const RESET_VALUE: u8 = 1;
/// The sleep type `\_S5` gives, which the kernel writes to the sleep control register.
pub const S5_SLP_TYP: u8 = 5;
/// SLP_EN in the sleep control register (ACPI 6, 4.8.3.7).
pub const SLP_EN: u8 = 1 << 5;

/// The OEM id all tables carry.
const OEM_ID: [u8; 6] = *b"TINYVM";
/// The OEM table id all tables carry.
const OEM_TABLE: [u8; 8] = *b"TINYVMM ";
/// IAPC_BOOT_ARCH: VGA not present. LEGACY_DEVICES and 8042 stay clear: there is no i8042 and
/// nothing for a PnP BIOS; "CMOS RTC not present" stays clear: [`crate::platform`] has one.
const IAPC_VGA_NOT_PRESENT: u16 = 1 << 2;
/// The SCI's interrupt: a hardware-reduced machine raises none, but Linux still routes the
/// number (level, low), so it is kept off the ISA lines in use (the timer 0, COM1 4).
const SCI_IRQ: u16 = 9;

fn bytes(t: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    t.to_aml_bytes(&mut v);
    v
}

fn io_register(port: u16) -> GAS {
    GAS::new(
        AddressSpace::SystemIo,
        8,
        0,
        AccessSize::ByteAccess,
        u64::from(port),
    )
}

/// An ISA device in the DSDT: its PnP id, I/O ports and interrupt (edge, active high).
fn isa_device(name: &str, hid: &str, port: u16, ports: u8, irq: u32) -> Vec<u8> {
    let hid = aml::EISAName::new(hid);
    let io = aml::IO::new(port, port, 1, ports);
    let int = aml::Interrupt::new(true, true, false, false, irq);
    let crs = aml::ResourceTemplate::new(vec![&io, &int]);
    let hid = aml::Name::new("_HID".into(), &hid);
    let crs = aml::Name::new("_CRS".into(), &crs);
    bytes(&aml::Device::new(name.into(), vec![&hid, &crs]))
}

/// A virtio-mmio device in the DSDT, as Linux's virtio_mmio driver finds one through ACPI
/// (`LNRO0005`): its register page and its interrupt (edge, active high, as an irqfd raises it).
fn virtio_device(n: usize, base: u64, irq: u32) -> Vec<u8> {
    let name = format!("VR{n:02X}");
    let hid = aml::Name::new("_HID".into(), &"LNRO0005");
    let uid = aml::Name::new("_UID".into(), &(n as u32));
    let mem = aml::Memory32Fixed::new(true, base as u32, crate::virtio::MMIO_STRIDE as u32);
    let int = aml::Interrupt::new(true, true, false, false, irq);
    let crs = aml::ResourceTemplate::new(vec![&mem, &int]);
    let crs = aml::Name::new("_CRS".into(), &crs);
    bytes(&aml::Device::new(
        name.as_str().into(),
        vec![&hid, &uid, &crs],
    ))
}

/// A run of AML already encoded.
struct Raw(Vec<u8>);

impl Aml for Raw {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(&self.0);
    }
}

/// The DSDT: `\_S5`, which tells the kernel that S5 (power-off) exists and its sleep type, and
/// the two ISA devices with interrupts, COM1 (PNP0501, 0x3f8, IRQ 4) and the CMOS RTC (PNP0B00,
/// 0x70, IRQ 8). A hardware-reduced machine has no legacy PIC, so Linux maps no ISA interrupt
/// by itself: a device's interrupt exists only when the firmware describes the device, and
/// without these the UART could not take its interrupt (user space gets no console) nor the RTC
/// driver its alarm. `virtio` devices follow, each an `LNRO0005` with its page and line, as
/// (address, interrupt).
pub fn dsdt(virtio: &[(u64, u32)]) -> Vec<u8> {
    let mut dsdt = Sdt::new(*b"DSDT", 36, 6, OEM_ID, OEM_TABLE, 1);
    let s5 = aml::Name::new(
        "_S5_".into(),
        &aml::Package::new(vec![&S5_SLP_TYP, &0u8, &0u8, &0u8]),
    );
    s5.to_aml_bytes(&mut dsdt);
    let com1 = Raw(isa_device("COM1", "PNP0501", 0x3f8, 8, 4));
    let rtc = Raw(isa_device("RTC_", "PNP0B00", 0x70, 2, 8));
    let devices: Vec<Raw> = virtio
        .iter()
        .enumerate()
        .map(|(n, &(base, irq))| Raw(virtio_device(n, base, irq)))
        .collect();
    let mut children: Vec<&dyn Aml> = vec![&com1, &rtc];
    children.extend(devices.iter().map(|d| d as &dyn Aml));
    aml::Scope::new("\\_SB_".into(), children).to_aml_bytes(&mut dsdt);
    bytes(&dsdt)
}

/// The hardware-reduced FADT pointing at the DSDT at `dsdt_addr`.
pub fn fadt(dsdt_addr: u64) -> Vec<u8> {
    let mut f = FADTBuilder::new(OEM_ID, OEM_TABLE, 1)
        .dsdt_64(dsdt_addr)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::ResetRegSup)
        // No fixed power or sleep button.
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton);
    f.sci_int = SCI_IRQ.into();
    f.iapc_boot_arch = IAPC_VGA_NOT_PRESENT.into();
    f.century = CMOS_CENTURY;
    f.reset_reg = io_register(RESET_PORT);
    f.reset_value = RESET_VALUE;
    f.sleep_control_reg = io_register(SLEEP_CONTROL_PORT);
    f.sleep_status_reg = io_register(SLEEP_STATUS_PORT);
    bytes(&f.finalize())
}

/// The MADT: a local APIC per vCPU (APIC ids and processor uids 0..cpus, all enabled) and the
/// IOAPIC with id `cpus` and GSI base 0, as the MP table says.
pub fn madt(cpus: u8) -> Vec<u8> {
    let mut m = MADT::new(
        OEM_ID,
        OEM_TABLE,
        1,
        LocalInterruptController::Address(LAPIC_ADDR),
    );
    for id in 0..cpus {
        m.add_structure(ProcessorLocalApic::new(id, id, EnabledStatus::Enabled));
    }
    m.add_structure(IoApic::new(cpus, IOAPIC_ADDR, 0));
    bytes(&m)
}

/// Every table for `cpus` vCPUs and the `virtio` devices (address, interrupt) as (guest
/// address, bytes), the RSDP first at [`RSDP_ADDR`], the others after it, each 16-byte aligned;
/// all of them end below [`TABLES_END`].
pub fn tables(cpus: u8, virtio: &[(u64, u32)]) -> Vec<(u64, Vec<u8>)> {
    let next = |addr: u64, len: usize| (addr + len as u64).next_multiple_of(16);
    let dsdt_addr = next(RSDP_ADDR, Rsdp::len());
    let dsdt = dsdt(virtio);
    let fadt_addr = next(dsdt_addr, dsdt.len());
    let fadt = fadt(dsdt_addr);
    let madt_addr = next(fadt_addr, fadt.len());
    let madt = madt(cpus);
    let xsdt_addr = next(madt_addr, madt.len());
    let mut x = XSDT::new(OEM_ID, OEM_TABLE, 1);
    x.add_entry(fadt_addr);
    x.add_entry(madt_addr);
    let xsdt = bytes(&x);
    let rsdp = bytes(&Rsdp::new(OEM_ID, xsdt_addr));
    vec![
        (RSDP_ADDR, rsdp),
        (dsdt_addr, dsdt),
        (fadt_addr, fadt),
        (madt_addr, madt),
        (xsdt_addr, xsdt),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }

    fn u16_at(b: &[u8], off: usize) -> u16 {
        u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    fn table(t: &[(u64, Vec<u8>)], addr: u64) -> &[u8] {
        &t.iter().find(|(a, _)| *a == addr).expect("a table there").1
    }

    #[test]
    fn rsdp_and_xsdt_lead_to_every_table_with_good_checksums() {
        let t = tables(4, &[]);
        let rsdp = table(&t, RSDP_ADDR);
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert_eq!(rsdp.len(), 36);
        assert_eq!(sum(&rsdp[..20]), 0, "ACPI 1.0 checksum");
        assert_eq!(sum(rsdp), 0, "extended checksum");
        assert_eq!(rsdp[15], 2, "revision 2: XSDT");
        assert_eq!(u32_at(rsdp, 20), 36);
        let xsdt = table(&t, u64_at(rsdp, 24));
        assert_eq!(&xsdt[..4], b"XSDT");
        assert_eq!(u32_at(xsdt, 4) as usize, xsdt.len());
        assert_eq!(sum(xsdt), 0);
        let entries: Vec<u64> = (36..xsdt.len())
            .step_by(8)
            .map(|o| u64_at(xsdt, o))
            .collect();
        let sigs: Vec<&[u8]> = entries.iter().map(|&a| &table(&t, a)[..4]).collect();
        assert_eq!(sigs, [&b"FACP"[..], b"APIC"]);
        for (addr, bytes) in &t[1..] {
            assert_eq!(
                u32_at(bytes, 4) as usize,
                bytes.len(),
                "length at 0x{addr:x}"
            );
            assert_eq!(sum(bytes), 0, "checksum at 0x{addr:x}");
            assert_eq!(&bytes[10..16], b"TINYVM");
        }
        // In order, aligned, not overlapping, inside the reserved hole below 1 MiB.
        for w in t.windows(2) {
            assert!(w[0].0 + w[0].1.len() as u64 <= w[1].0);
            assert_eq!(w[1].0 % 16, 0);
        }
        let (last, bytes) = t.last().unwrap();
        assert!(last + bytes.len() as u64 <= TABLES_END);
        assert!(tables(32, &[])
            .iter()
            .all(|(a, b)| a + b.len() as u64 <= TABLES_END));
    }

    #[test]
    fn the_fadt_is_hardware_reduced_with_sleep_and_reset_registers() {
        let t = tables(1, &[]);
        let fadt = t.iter().find(|(_, b)| &b[..4] == b"FACP").unwrap();
        let f = &fadt.1;
        assert_eq!(f.len(), 276, "ACPI 6 FADT with the hypervisor vendor field");
        assert_eq!(f[8], 6, "major revision");
        let flags = u32_at(f, 112);
        assert_ne!(flags & (1 << 20), 0, "HW_REDUCED_ACPI");
        assert_ne!(flags & (1 << 10), 0, "RESET_REG_SUP");
        assert_eq!(u16_at(f, 46), SCI_IRQ);
        assert_eq!(u16_at(f, 109), IAPC_VGA_NOT_PRESENT, "no i8042, no VGA");
        assert_eq!(f[108], CMOS_CENTURY);
        // A generic address: space 1 (I/O), 8 bits wide, offset 0, byte access, the port.
        let gas = |off: usize, port: u16| {
            assert_eq!(&f[off..off + 4], &[1, 8, 0, 1], "GAS at {off}");
            assert_eq!(u64_at(f, off + 4), u64::from(port), "GAS at {off}");
        };
        gas(116, RESET_PORT);
        assert_eq!(f[128], RESET_VALUE);
        gas(244, SLEEP_CONTROL_PORT);
        gas(256, SLEEP_STATUS_PORT);
        let dsdt_addr = u64_at(f, 140);
        assert_eq!(u32_at(f, 40), 0, "the 32-bit DSDT field is unused");
        let dsdt = table(&t, dsdt_addr);
        assert_eq!(&dsdt[..4], b"DSDT");
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn the_dsdt_names_s5_and_the_isa_devices_with_their_interrupts() {
        let d = dsdt(&[]);
        assert_eq!(u32_at(&d, 4) as usize, d.len());
        assert_eq!(sum(&d), 0);
        // NameOp "_S5_" PackageOp PkgLength NumElements(4) BytePrefix 5 Zero Zero Zero.
        assert_eq!(
            &d[36..49],
            &[0x08, b'_', b'S', b'5', b'_', 0x12, 0x07, 4, 0x0a, S5_SLP_TYP, 0, 0, 0]
        );
        // ScopeOp, then the root path "\_SB_".
        assert_eq!(d[49], 0x10);
        assert!(find(&d, b"\\_SB_").is_some());
        for (name, eisa, io, irq) in [
            // EISA ids as DWordPrefix and the compressed id: PNP0501, PNP0B00.
            (
                &b"COM1"[..],
                [0x0c, 0x41, 0xd0, 0x05, 0x01],
                [0xf8, 0x03],
                4u8,
            ),
            (b"RTC_", [0x0c, 0x41, 0xd0, 0x0b, 0x00], [0x70, 0x00], 8),
        ] {
            let at = find(&d, name).unwrap_or_else(|| panic!("{name:?}"));
            assert_eq!(&d[at - 3..at - 1], [0x5b, 0x82], "DeviceOp before {name:?}");
            let dev = &d[at..];
            let hid = find(dev, b"_HID").unwrap();
            assert_eq!(dev[hid + 4..hid + 9], eisa, "{name:?}");
            // IO(Decode16, port, port, 1, len), then Interrupt(consumer, edge, high, exclusive).
            let io_at = find(dev, &[0x47, 0x01, io[0], io[1], io[0], io[1], 1]).unwrap();
            let int = &dev[io_at + 8..io_at + 17];
            assert_eq!(int, [0x89, 6, 0, 0x03, 1, irq, 0, 0, 0], "{name:?}");
        }
    }

    #[test]
    fn the_madt_lists_every_vcpu_and_the_ioapic() {
        for cpus in [1u8, 2, 7, 32] {
            let m = madt(cpus);
            assert_eq!(&m[..4], b"APIC");
            assert_eq!(m.len(), 44 + 8 * usize::from(cpus) + 12, "{cpus} vCPUs");
            assert_eq!(u32_at(&m, 4) as usize, m.len());
            assert_eq!(sum(&m), 0);
            assert_eq!(u32_at(&m, 36), LAPIC_ADDR);
            for id in 0..usize::from(cpus) {
                let e = &m[44 + 8 * id..52 + 8 * id];
                // Type 0, length 8, uid, APIC id, flags: enabled.
                assert_eq!(e, [0, 8, id as u8, id as u8, 1, 0, 0, 0], "vCPU {id}");
            }
            let io = &m[44 + 8 * usize::from(cpus)..];
            assert_eq!(io[..4], [1, 12, cpus, 0]);
            assert_eq!(u32_at(io, 4), IOAPIC_ADDR);
            assert_eq!(u32_at(io, 8), 0, "GSI base");
        }
    }
}
