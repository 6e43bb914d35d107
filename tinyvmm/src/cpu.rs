//! The vCPU's boot state, as Firecracker's vstate/vcpu split keeps it apart from the VM and its
//! exit loop: the CPU modes a guest is entered in (long mode with the flat GDT and identity page
//! tables, 32-bit protected mode for PVH), the registers handed to KVM, the MSRs, LAPIC LINT
//! pins, FPU and CPUID a firmware would leave, and the guest-memory writes those need.

use kvm_bindings::{kvm_segment, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::layout;
use crate::Error;

/// Writes `bytes` into guest memory at `addr`.
pub(crate) fn write(mem: &GuestMemoryMmap, addr: u64, bytes: &[u8]) -> Result<(), Error> {
    mem.write_slice(bytes, GuestAddress(addr))
        .map_err(|e| Error::Memory {
            size: bytes.len() as u64,
            why: format!("writing at 0x{addr:x}: {e}"),
        })
}

/// Long mode as a 64-bit boot protocol hands it over: the flat GDT, identity-mapped page tables
/// for `ram` bytes, paging, PAE and SSE enabled; shared by flat/ELF guests and bzImage kernels.
pub(crate) fn enter_long_mode(
    mem: &GuestMemoryMmap,
    sregs: &mut kvm_bindings::kvm_sregs,
    ram: u64,
) -> Result<(), Error> {
    write_gdt(mem, true)?;
    for (addr, entry) in layout::page_table_entries(ram) {
        write(mem, addr, &entry.to_le_bytes())?;
    }
    set_segments(sregs, true);
    sregs.cr3 = layout::PML4_ADDR;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG;
    sregs.efer = EFER_LME | EFER_LMA;
    Ok(())
}

/// 32-bit protected mode with paging off, as the PVH entry expects it; shared by PVH guests and
/// PVH kernels.
pub(crate) fn enter_protected_mode(
    mem: &GuestMemoryMmap,
    sregs: &mut kvm_bindings::kvm_sregs,
) -> Result<(), Error> {
    write_gdt(mem, false)?;
    set_segments(sregs, false);
    sregs.cr0 = CR0_PE | CR0_ET;
    sregs.cr4 = 0;
    sregs.efer = 0;
    Ok(())
}

/// Hands the prepared boot CPU state to KVM: segment/control registers first, then the
/// general-purpose registers.
pub(crate) fn commit_registers(
    vcpu: &VcpuFd,
    sregs: &kvm_bindings::kvm_sregs,
    regs: &kvm_bindings::kvm_regs,
) -> Result<(), Error> {
    vcpu.set_sregs(sregs)
        .map_err(Error::ioctl("KVM_SET_SREGS"))?;
    vcpu.set_regs(regs).map_err(Error::ioctl("KVM_SET_REGS"))?;
    Ok(())
}

/// The MSRs as a kernel expects them from firmware: the syscall and sysenter MSRs cleared, the
/// TSC at 0, fast strings enabled.
pub(crate) fn set_boot_msrs(vcpu: &VcpuFd) -> Result<(), Error> {
    const MSRS: [(u32, u64); 10] = [
        (0x174, 0),       // IA32_SYSENTER_CS
        (0x175, 0),       // IA32_SYSENTER_ESP
        (0x176, 0),       // IA32_SYSENTER_EIP
        (0xc000_0081, 0), // STAR
        (0xc000_0082, 0), // LSTAR
        (0xc000_0083, 0), // CSTAR
        (0xc000_0084, 0), // SYSCALL_MASK
        (0xc000_0102, 0), // KERNEL_GS_BASE
        (0x10, 0),        // IA32_TSC
        (0x1a0, 1),       // IA32_MISC_ENABLE: fast strings
    ];
    let entries: Vec<kvm_bindings::kvm_msr_entry> = MSRS
        .iter()
        .map(|&(index, data)| kvm_bindings::kvm_msr_entry {
            index,
            data,
            ..Default::default()
        })
        .collect();
    let msrs = kvm_bindings::Msrs::from_entries(&entries).map_err(|_| Error::Ioctl {
        ioctl: "KVM_SET_MSRS",
        source: vmm_sys_util::errno::Error::new(libc::E2BIG),
    })?;
    let set = vcpu.set_msrs(&msrs).map_err(Error::ioctl("KVM_SET_MSRS"))?;
    if set != entries.len() {
        return Err(Error::Ioctl {
            ioctl: "KVM_SET_MSRS",
            source: vmm_sys_util::errno::Error::new(libc::EINVAL),
        });
    }
    Ok(())
}

/// LINT0 as ExtINT (the PIC's interrupts, the PIT's timer among them) and LINT1 as NMI, as a
/// BIOS leaves them.
pub(crate) fn set_lapic(vcpu: &VcpuFd) -> Result<(), Error> {
    const LVT_LINT0: usize = 0x350;
    const LVT_LINT1: usize = 0x360;
    const EXTINT: u32 = 7;
    const NMI: u32 = 4;
    let mut lapic = vcpu.get_lapic().map_err(Error::ioctl("KVM_GET_LAPIC"))?;
    for (off, mode) in [(LVT_LINT0, EXTINT), (LVT_LINT1, NMI)] {
        let raw: [u8; 4] = std::array::from_fn(|i| lapic.regs[off + i] as u8);
        let v = (u32::from_le_bytes(raw) & !0x700) | (mode << 8);
        for (i, b) in v.to_le_bytes().iter().enumerate() {
            lapic.regs[off + i] = *b as _;
        }
    }
    vcpu.set_lapic(&lapic)
        .map_err(Error::ioctl("KVM_SET_LAPIC"))
}

pub(crate) const CR0_PE: u64 = 1;
pub(crate) const CR0_MP: u64 = 1 << 1;
pub(crate) const CR0_ET: u64 = 1 << 4;
pub(crate) const CR0_NE: u64 = 1 << 5;
pub(crate) const CR0_PG: u64 = 1 << 31;
pub(crate) const CR4_PAE: u64 = 1 << 5;
pub(crate) const CR4_OSFXSR: u64 = 1 << 9;
pub(crate) const CR4_OSXMMEXCPT: u64 = 1 << 10;
pub(crate) const EFER_LME: u64 = 1 << 8;
pub(crate) const EFER_LMA: u64 = 1 << 10;

pub(crate) fn write_gdt(mem: &GuestMemoryMmap, long: bool) -> Result<(), Error> {
    let bytes: Vec<u8> = layout::gdt(long)
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
    write(mem, layout::GDT_ADDR, &bytes)
}

fn segment(selector: u16, code: bool, long: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: 1,
        dpl: 0,
        db: u8::from(!(code && long)),
        s: 1,
        l: u8::from(code && long),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

pub(crate) fn set_segments(sregs: &mut kvm_bindings::kvm_sregs, long: bool) {
    sregs.gdt.base = layout::GDT_ADDR;
    sregs.gdt.limit = 31;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cs = segment(layout::CODE_SEL, true, long);
    let data = segment(layout::DATA_SEL, false, long);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = kvm_segment {
        base: 0,
        limit: 0x67,
        selector: layout::TSS_SEL,
        type_: 0xb,
        present: 1,
        s: 0,
        ..Default::default()
    };
}

pub(crate) fn set_fpu(vcpu: &VcpuFd) -> Result<(), Error> {
    let fpu = kvm_bindings::kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(Error::ioctl("KVM_SET_FPU"))
}

/// KVM's supported CPUID with the hypervisor bit and KVM's signature leaf, and `apic_id` as
/// the initial (x2)APIC id.
pub(crate) fn set_cpuid(kvm: &Kvm, vcpu: &VcpuFd, apic_id: u8) -> Result<(), Error> {
    let mut cpuid: CpuId = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(Error::ioctl("KVM_GET_SUPPORTED_CPUID"))?;
    let mut has_signature = false;
    for e in cpuid.as_mut_slice() {
        match e.function {
            1 => {
                e.ecx |= 1 << 31;
                e.ebx = (e.ebx & 0x00ff_ffff) | (u32::from(apic_id) << 24);
            }
            0xb | 0x1f => e.edx = u32::from(apic_id),
            0x4000_0000 => {
                has_signature = true;
                set_kvm_signature(e);
            }
            _ => {}
        }
    }
    if !has_signature {
        let mut e = kvm_bindings::kvm_cpuid_entry2 {
            function: 0x4000_0000,
            ..Default::default()
        };
        set_kvm_signature(&mut e);
        // A full table keeps its entries; the signature is then what KVM itself offers.
        let _ = cpuid.push(e);
    }
    vcpu.set_cpuid2(&cpuid)
        .map_err(Error::ioctl("KVM_SET_CPUID2"))
}

fn set_kvm_signature(e: &mut kvm_bindings::kvm_cpuid_entry2) {
    let sig = *b"KVMKVMKVM\0\0\0";
    e.eax = e.eax.max(0x4000_0001);
    e.ebx = u32::from_le_bytes([sig[0], sig[1], sig[2], sig[3]]);
    e.ecx = u32::from_le_bytes([sig[4], sig[5], sig[6], sig[7]]);
    e.edx = u32::from_le_bytes([sig[8], sig[9], sig[10], sig[11]]);
}
