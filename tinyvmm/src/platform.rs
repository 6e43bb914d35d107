//! The legacy ports a Linux kernel (`--kernel`) probes, answered so that it does not wait on
//! hardware that is not there: a CMOS RTC giving the host's time that is never mid-update
//! (rtc_cmos and the boot clock spin on the update bit otherwise), an i8042 port pair that says
//! "no controller" at the first look, PCI configuration mechanism #1 with a host bridge and no
//! other device, and the ACPI sleep and reset registers of [`crate::acpi`]'s FADT, which end the
//! run. Shared by every vCPU thread; pure apart from reading the clock.

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use crate::acpi;

/// CMOS index port (bit 7: NMI disable).
pub const CMOS_INDEX: u16 = 0x70;
/// CMOS data port.
pub const CMOS_DATA: u16 = 0x71;
/// i8042 data port.
pub const I8042_DATA: u16 = 0x60;
/// i8042 status/command port.
pub const I8042_STATUS: u16 = 0x64;
/// PCI configuration address port (mechanism #1).
pub const PCI_ADDRESS: u16 = 0xcf8;
/// PCI configuration data ports: 0xcfc..=0xcff.
pub const PCI_DATA: u16 = 0xcfc;

/// i8042 status: the output buffer is full and stays so while its data reads 0xff, which Linux
/// takes for "no controller" after flushing 16 bytes; the input buffer is empty, so a keyboard
/// reset (0xfe to 0x64) is sent at once.
const I8042_NO_CONTROLLER: u8 = 0x01;

/// The host bridge at 00:00.0 (class 0x0600, the one device Linux's mechanism #1 check looks
/// for): vendor 0x8086, device 0x0d57, as other minimal VMMs present theirs.
const HOST_BRIDGE_ID: u32 = 0x0d57_8086;
const HOST_BRIDGE_CLASS: u32 = 0x0600_0000;

/// What a port write did to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Nothing that ends the run.
    None,
    /// S5 through the sleep control register.
    PowerOff,
    /// The reset register.
    Reset,
}

/// The ports' state: the CMOS index and RAM, and the PCI address latch.
#[derive(Debug)]
pub struct Platform {
    cmos_index: AtomicU8,
    /// CMOS registers as the guest wrote them (status A-D and RAM; the time registers come
    /// from the clock).
    cmos: [AtomicU8; 128],
    pci_address: AtomicU32,
}

impl Default for Platform {
    fn default() -> Platform {
        let cmos = std::array::from_fn(|_| AtomicU8::new(0));
        cmos[0x0a].store(0x26, Ordering::Relaxed); // 32.768 kHz, 1024 Hz; UIP clear
        cmos[0x0b].store(0x02, Ordering::Relaxed); // 24-hour, BCD, no interrupts
        cmos[0x0d].store(0x80, Ordering::Relaxed); // valid RAM and time
        Platform {
            cmos_index: AtomicU8::new(0),
            cmos,
            pci_address: AtomicU32::new(0),
        }
    }
}

/// Whether `port` is one of the platform's (so the caller need not lock or look further).
pub fn handles(port: u16) -> bool {
    matches!(
        port,
        CMOS_INDEX
            | CMOS_DATA
            | I8042_DATA
            | I8042_STATUS
            | acpi::SLEEP_CONTROL_PORT
            | acpi::SLEEP_STATUS_PORT
            | acpi::RESET_PORT
    ) || (PCI_ADDRESS..PCI_ADDRESS + 8).contains(&port)
}

fn bcd(v: u8) -> u8 {
    (v / 10) << 4 | (v % 10)
}

/// The CMOS time registers for `unix` seconds (UTC): second, minute, hour, weekday (1 =
/// Sunday), day, month, year in the century, century; binary values (the caller encodes).
pub fn cmos_time(unix: u64) -> [u8; 8] {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian, eras of 400 years).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4) % 7 + 1; // 1970-01-01 was a Thursday
    [
        (secs % 60) as u8,
        (secs / 60 % 60) as u8,
        (secs / 3600) as u8,
        weekday as u8,
        day as u8,
        month as u8,
        (year % 100) as u8,
        (year / 100 % 100) as u8,
    ]
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Platform {
    /// A CMOS register's value at `unix` seconds.
    fn cmos_read(&self, index: u8, unix: u64) -> u8 {
        let index = index & 0x7f;
        let t = cmos_time(unix);
        let binary = self.cmos[0x0b].load(Ordering::Relaxed) & 0x04 != 0;
        let enc = |v: u8| if binary { v } else { bcd(v) };
        match index {
            0x00 => enc(t[0]),
            0x02 => enc(t[1]),
            0x04 => enc(t[2]),
            0x06 => enc(t[3]),
            0x07 => enc(t[4]),
            0x08 => enc(t[5]),
            0x09 => enc(t[6]),
            acpi::CMOS_CENTURY => enc(t[7]),
            // Never mid-update: UIP (bit 7) reads clear whatever was written.
            0x0a => self.cmos[0x0a].load(Ordering::Relaxed) & 0x7f,
            // Always 24-hour.
            0x0b => self.cmos[0x0b].load(Ordering::Relaxed) | 0x02,
            // No interrupt flags pending; valid time.
            0x0c => 0,
            0x0d => 0x80,
            i => self.cmos[usize::from(i)].load(Ordering::Relaxed),
        }
    }

    /// A guest read of `port` into `data` (1, 2 or 4 bytes), at `unix` seconds.
    pub fn io_in_at(&self, port: u16, data: &mut [u8], unix: u64) {
        data.fill(0xff);
        let first = |data: &mut [u8], v: u8| {
            if let Some(b) = data.first_mut() {
                *b = v;
            }
        };
        match port {
            CMOS_INDEX => first(data, self.cmos_index.load(Ordering::Relaxed)),
            CMOS_DATA => first(
                data,
                self.cmos_read(self.cmos_index.load(Ordering::Relaxed), unix),
            ),
            I8042_STATUS => first(data, I8042_NO_CONTROLLER),
            acpi::SLEEP_STATUS_PORT => first(data, 0),
            PCI_ADDRESS if data.len() == 4 => {
                data.copy_from_slice(&self.pci_address.load(Ordering::Relaxed).to_le_bytes())
            }
            p if (PCI_DATA..PCI_DATA + 4).contains(&p) => {
                let word = self.pci_config(self.pci_address.load(Ordering::Relaxed));
                let bytes = word.to_le_bytes();
                let at = usize::from(p - PCI_DATA);
                for (i, b) in data.iter_mut().enumerate() {
                    *b = bytes.get(at + i).copied().unwrap_or(0xff);
                }
            }
            _ => {}
        }
    }

    /// A guest read of `port` now.
    pub fn io_in(&self, port: u16, data: &mut [u8]) {
        self.io_in_at(port, data, now());
    }

    /// The configuration dword the PCI address latch selects: the host bridge's first 16 bytes
    /// at 00:00.0, all-ones (no device) elsewhere.
    fn pci_config(&self, address: u32) -> u32 {
        let enabled = address & 0x8000_0000 != 0;
        let bdf = (address >> 8) & 0xffff;
        if !enabled || bdf != 0 {
            return 0xffff_ffff;
        }
        match address & 0xfc {
            0x00 => HOST_BRIDGE_ID,
            0x04 => 0,                 // command, status
            0x08 => HOST_BRIDGE_CLASS, // class, revision 0
            _ => 0,                    // header type 0, single function; no BARs
        }
    }

    /// A guest write of `data` to `port`; what it did to the machine.
    pub fn io_out(&self, port: u16, data: &[u8]) -> Act {
        let value = data.first().copied().unwrap_or(0);
        match port {
            CMOS_INDEX => self.cmos_index.store(value & 0x7f, Ordering::Relaxed),
            CMOS_DATA => {
                let i = self.cmos_index.load(Ordering::Relaxed) & 0x7f;
                // The clock stays the host's: only status and RAM take writes.
                if i >= 0x0a && i != acpi::CMOS_CENTURY {
                    self.cmos[usize::from(i)].store(value, Ordering::Relaxed);
                }
            }
            PCI_ADDRESS if data.len() == 4 => {
                let mut w = [0u8; 4];
                w.copy_from_slice(data);
                self.pci_address
                    .store(u32::from_le_bytes(w), Ordering::Relaxed);
            }
            acpi::SLEEP_CONTROL_PORT
                if value & acpi::SLP_EN != 0 && (value >> 2) & 7 == acpi::S5_SLP_TYP =>
            {
                return Act::PowerOff;
            }
            acpi::RESET_PORT if value == acpi::RESET_VALUE => return Act::Reset,
            _ => {}
        }
        Act::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Platform, port: u16, len: usize, unix: u64) -> Vec<u8> {
        let mut d = vec![0u8; len];
        p.io_in_at(port, &mut d, unix);
        d
    }

    fn cmos(p: &Platform, index: u8, unix: u64) -> u8 {
        p.io_out(CMOS_INDEX, &[index | 0x80]);
        read(p, CMOS_DATA, 1, unix)[0]
    }

    #[test]
    fn civil_dates_from_unix_time() {
        assert_eq!(cmos_time(0), [0, 0, 0, 5, 1, 1, 70, 19]); // Thursday 1970-01-01
                                                              // 2000-02-29 12:34:56, a Tuesday.
        assert_eq!(cmos_time(951_827_696), [56, 34, 12, 3, 29, 2, 0, 20]);
        // 2026-12-03 07:25:47, a Thursday.
        assert_eq!(cmos_time(1_796_282_747), [47, 25, 7, 5, 3, 12, 26, 20]);
        // 2100-03-01 (2100 is no leap year), a Monday.
        assert_eq!(cmos_time(4_107_542_400), [0, 0, 0, 2, 1, 3, 0, 21]);
    }

    #[test]
    fn the_cmos_gives_the_time_in_bcd_and_is_never_updating() {
        let p = Platform::default();
        let t = 951_827_696;
        assert_eq!(cmos(&p, 0x00, t), 0x56);
        assert_eq!(cmos(&p, 0x02, t), 0x34);
        assert_eq!(cmos(&p, 0x04, t), 0x12);
        assert_eq!(cmos(&p, 0x07, t), 0x29);
        assert_eq!(cmos(&p, 0x08, t), 0x02);
        assert_eq!(cmos(&p, 0x09, t), 0x00);
        assert_eq!(cmos(&p, acpi::CMOS_CENTURY, t), 0x20);
        assert_eq!(cmos(&p, 0x0a, t) & 0x80, 0, "UIP");
        assert_eq!(cmos(&p, 0x0b, t), 0x02, "24-hour BCD");
        assert_eq!(cmos(&p, 0x0d, t), 0x80, "valid");
        // Writes: the clock and UIP stay, status B's binary mode and RAM take them.
        p.io_out(CMOS_INDEX, &[0x00]);
        p.io_out(CMOS_DATA, &[0x11]);
        assert_eq!(cmos(&p, 0x00, t), 0x56);
        p.io_out(CMOS_INDEX, &[0x0a]);
        p.io_out(CMOS_DATA, &[0xa6]);
        assert_eq!(cmos(&p, 0x0a, t), 0x26);
        p.io_out(CMOS_INDEX, &[0x0b]);
        p.io_out(CMOS_DATA, &[0x06]);
        assert_eq!(cmos(&p, 0x00, t), 56, "binary");
        assert_eq!(cmos(&p, acpi::CMOS_CENTURY, t), 20);
        p.io_out(CMOS_INDEX, &[0x40]);
        p.io_out(CMOS_DATA, &[0x5a]);
        assert_eq!(cmos(&p, 0x40, t), 0x5a);
        // The index port keeps the index without the NMI bit.
        assert_eq!(read(&p, CMOS_INDEX, 1, t), [0x40]);
    }

    #[test]
    fn the_i8042_says_no_controller_and_is_ready_for_a_reset() {
        let p = Platform::default();
        let status = read(&p, I8042_STATUS, 1, 0)[0];
        assert_eq!(
            status & 0x01,
            0x01,
            "output buffer full: Linux flushes, then gives up"
        );
        assert_eq!(
            status & 0x02,
            0,
            "input buffer empty: the reset command goes at once"
        );
        assert_eq!(read(&p, I8042_DATA, 1, 0), [0xff]);
    }

    #[test]
    fn pci_mechanism_1_shows_a_host_bridge_and_nothing_else() {
        let p = Platform::default();
        let cfg = |addr: u32, port: u16, len: usize| {
            p.io_out(PCI_ADDRESS, &addr.to_le_bytes());
            read(&p, port, len, 0)
        };
        // Linux's check: the latch reads back what was written.
        assert_eq!(
            cfg(0x8000_0000, PCI_ADDRESS, 4),
            0x8000_0000u32.to_le_bytes()
        );
        assert_eq!(cfg(0x8000_0000, PCI_DATA, 4), HOST_BRIDGE_ID.to_le_bytes());
        assert_eq!(cfg(0x8000_0000, PCI_DATA, 2), [0x86, 0x80]);
        assert_eq!(cfg(0x8000_0000, PCI_DATA + 2, 2), [0x57, 0x0d]);
        // PCI_CLASS_DEVICE (0x0a, 16 bits) is the host bridge class 0x0600.
        assert_eq!(cfg(0x8000_0008, PCI_DATA + 2, 2), [0x00, 0x06]);
        // Any other device, function or bus, and a disabled latch: all-ones.
        for addr in [0x8000_0800u32, 0x8000_0100, 0x8001_0000, 0x0000_0000] {
            assert_eq!(cfg(addr, PCI_DATA, 4), [0xff; 4], "0x{addr:x}");
        }
        // Byte writes to the address port (mechanism #2's probe) leave the latch alone.
        p.io_out(PCI_ADDRESS, &0x8000_0000u32.to_le_bytes());
        p.io_out(PCI_ADDRESS + 3, &[0x01]);
        p.io_out(PCI_ADDRESS, &[0x00]);
        assert_eq!(read(&p, PCI_ADDRESS, 4, 0), 0x8000_0000u32.to_le_bytes());
        assert_eq!(read(&p, PCI_ADDRESS, 1, 0), [0xff]);
    }

    #[test]
    fn no_port_access_panics() {
        let p = Platform::default();
        for port in [
            0u16, 0x60, 0x64, 0x70, 0x71, 0x600, 0x601, 0x602, 0xcf8, 0xcfb, 0xcfc,
        ]
        .into_iter()
        .chain(0xcf8..0xd00)
        {
            for len in 0..=8 {
                for v in [0u8, 0x34, 0xff] {
                    let _ = p.io_out(port, &vec![v; len]);
                    for index in [0u8, 0x0b, 0x32, 0x7f, 0xff] {
                        p.io_out(CMOS_INDEX, &[index]);
                        let _ = read(&p, port, len, u64::MAX);
                    }
                }
            }
        }
    }

    #[test]
    fn sleep_and_reset_registers_end_the_run() {
        let p = Platform::default();
        // What Linux writes for S5: SLP_TYP 5 << 2 | SLP_EN.
        assert_eq!(p.io_out(acpi::SLEEP_CONTROL_PORT, &[0x34]), Act::PowerOff);
        assert_eq!(
            p.io_out(acpi::SLEEP_CONTROL_PORT, &[5 << 2]),
            Act::None,
            "no SLP_EN"
        );
        assert_eq!(p.io_out(acpi::SLEEP_CONTROL_PORT, &[0x24]), Act::None, "S1");
        // Clearing WAK_STS before sleeping changes nothing; the status reads 0.
        assert_eq!(p.io_out(acpi::SLEEP_STATUS_PORT, &[0x80]), Act::None);
        assert_eq!(read(&p, acpi::SLEEP_STATUS_PORT, 1, 0), [0]);
        assert_eq!(p.io_out(acpi::RESET_PORT, &[acpi::RESET_VALUE]), Act::Reset);
        assert_eq!(p.io_out(acpi::RESET_PORT, &[0]), Act::None);
        assert!(handles(acpi::RESET_PORT) && handles(0xcff) && handles(0x70));
        assert!(!handles(0x3f8) && !handles(0xf4) && !handles(0x80));
    }
}
