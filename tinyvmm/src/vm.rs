//! The KVM side: create the VM and its vCPUs, load a [`LoadPlan`] or a kernel (the vCPU state
//! itself is [`crate::cpu`]'s), and run the exit loop until the guest ends; each KVM call failing
//! names its ioctl.

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use linux_loader::loader::{elf::PvhBootCapability, BzImage, Elf, KernelLoader};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use vmm_sys_util::eventfd::EventFd;

use crate::acpi;
use crate::coalesced::TxRing;
use crate::cpu::{
    commit_registers, enter_long_mode, enter_protected_mode, set_boot_msrs, set_cpuid, set_fpu,
    set_lapic, write,
};
use crate::devices::{Console, COM1, COM1_IRQ, I8042_CMD, I8042_RESET, STATUS_PORT};
use crate::layout;
use crate::linux::{self, KernelKind, KernelPlan};
use crate::mptable;
use crate::plan::{Format, LoadPlan};
use crate::platform::{self, Act, Platform};
use crate::virtio::{self, bus::Bus};
use crate::Error;

/// Address of the VMX real-mode TSS (three pages), above the largest guest memory.
const TSS_ADDR: usize = 0xfffb_d000;

/// How the guest's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A byte written to the status port.
    Status(u8),
    /// HLT with no interrupt source: nothing can ever wake the guest.
    Halt,
    /// i8042 reset (0xfe to port 0x64), or a reset system event.
    Reset,
    /// A poweroff system event, or S5 through the ACPI sleep control register.
    Poweroff,
    /// A kernel that reset (i8042, ACPI reset register, reset event, or a triple fault after
    /// writing the flag) with the cold-boot flag at [`linux::RESET_FLAG_ADDR`]: `reboot`.
    Reboot,
    /// A kernel that reset with the warm-boot flag, as `reboot=panic_warm` makes a panic do
    /// (`panic=-1`).
    Panic,
    /// `--timeout` expired.
    Timeout,
    /// The guest crashed: what happened, and where.
    Crash {
        /// Which crash, naming the KVM exit.
        what: String,
        /// The guest's RIP at that point, if it could be read.
        rip: Option<u64>,
    },
}

impl End {
    /// The exit status tinyvmm gives for this ending.
    pub fn status(&self) -> i32 {
        match self {
            End::Status(b) => i32::from(*b),
            End::Halt | End::Reset | End::Poweroff => 0,
            End::Panic => crate::EXIT_PANIC,
            End::Reboot => crate::EXIT_REBOOT,
            End::Timeout => crate::EXIT_TIMEOUT,
            End::Crash { .. } => crate::EXIT_CRASH,
        }
    }

    /// The reason's name in the report.
    pub fn reason(&self) -> &'static str {
        match self {
            End::Status(_) => "status-port",
            End::Halt => "halt",
            End::Reset => "reset",
            End::Poweroff => "poweroff",
            End::Reboot => "reboot",
            End::Panic => "panic",
            End::Timeout => "timeout",
            End::Crash { .. } => "crash",
        }
    }
}

/// Numbers of vCPU exits, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExitCounts {
    /// Port reads.
    pub io_in: u64,
    /// Port writes.
    pub io_out: u64,
    /// Reads outside RAM.
    pub mmio_read: u64,
    /// Writes outside RAM.
    pub mmio_write: u64,
    /// HLT.
    pub hlt: u64,
    /// KVM_RUN interrupted by a signal (the timeout's kick).
    pub intr: u64,
    /// Triple faults.
    pub shutdown: u64,
    /// System events (reset, poweroff, crash).
    pub system_event: u64,
    /// KVM internal errors (emulation failures; real-mode triple faults here).
    pub internal_error: u64,
    /// VM-entry failures.
    pub fail_entry: u64,
    /// Anything else.
    pub other: u64,
}

impl ExitCounts {
    /// (name, count) pairs, in a stable order.
    pub fn pairs(&self) -> [(&'static str, u64); 11] {
        [
            ("io_in", self.io_in),
            ("io_out", self.io_out),
            ("mmio_read", self.mmio_read),
            ("mmio_write", self.mmio_write),
            ("hlt", self.hlt),
            ("intr", self.intr),
            ("shutdown", self.shutdown),
            ("system_event", self.system_event),
            ("internal_error", self.internal_error),
            ("fail_entry", self.fail_entry),
            ("other", self.other),
        ]
    }

    /// Adds another vCPU's counts.
    pub fn add(&mut self, o: &ExitCounts) {
        self.io_in += o.io_in;
        self.io_out += o.io_out;
        self.mmio_read += o.mmio_read;
        self.mmio_write += o.mmio_write;
        self.hlt += o.hlt;
        self.intr += o.intr;
        self.shutdown += o.shutdown;
        self.system_event += o.system_event;
        self.internal_error += o.internal_error;
        self.fail_entry += o.fail_entry;
        self.other += o.other;
    }

    /// All exits.
    pub fn total(&self) -> u64 {
        self.pairs().iter().map(|p| p.1).sum()
    }
}

/// How long each phase took.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    /// Opening KVM, creating the VM, its memory and the vCPU.
    pub create: Duration,
    /// Loading the image and setting up registers.
    pub load: Duration,
    /// The exit loop.
    pub run: Duration,
    /// Closing the vCPUs and the VM and unmapping the memory.
    pub teardown: Duration,
}

/// Run-time settings that are not part of the load plan.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    /// Stop the guest after this long.
    pub timeout: Option<Duration>,
    /// Pass the host's supported CPUID with the hypervisor leaf set.
    pub cpuid: bool,
    /// Log exits on stderr.
    pub verbose: bool,
    /// tool name for log lines.
    pub tool: String,
    /// The seccomp filter to install on every thread once the VM is set up, just before the
    /// guest runs ([`crate::seccomp`]); None runs unconfined (`--no-seccomp`, library callers,
    /// which a filter would confine for the rest of their lives).
    pub seccomp: Option<privs::seccomp::Bpf>,
    /// Queue a kernel's COM1 writes in KVM's coalesced-I/O ring (`--console-ring`).
    pub console_ring: bool,
    /// Where COM1's output goes: stdout, or stderr in the one-shot mode, whose command writes
    /// its output to the virtio console.
    pub serial: crate::devices::RawOut,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How the guest ended.
    pub end: End,
    /// Exits by kind.
    pub exits: ExitCounts,
    /// Phase timings.
    pub timings: Timings,
}

struct Machine {
    // Field order is drop order: the vCPUs before the VM, the VM before its memory.
    vcpu: VcpuFd,
    aps: Vec<VcpuFd>,
    vm: VmFd,
    kvm: Kvm,
    mem: GuestMemoryMmap,
}

/// What to boot.
#[derive(Debug, Clone)]
pub enum Boot<'a> {
    /// An image as `run IMAGE` loads it.
    Image {
        /// Where it goes and how it is entered.
        plan: &'a LoadPlan,
        /// Its bytes.
        image: &'a [u8],
    },
    /// A Linux-style kernel (`run --kernel`).
    Kernel {
        /// Where it goes and how it is entered.
        plan: &'a KernelPlan,
        /// vCPUs (the first boots, the others wait for the kernel's INIT/SIPI).
        cpus: u8,
        /// The kernel's bytes, freed once they are in guest memory (a copy kept for the run
        /// would count against tinyvmm's own memory for nothing).
        kernel: Vec<u8>,
        /// The initrd's bytes, freed likewise.
        initrd: Option<Vec<u8>>,
    },
}

impl Boot<'_> {
    fn mem(&self) -> u64 {
        match self {
            Boot::Image { plan, .. } => plan.mem,
            Boot::Kernel { plan, .. } => plan.mem,
        }
    }
}

/// Creates the VM with the virtio `devices` (device n at [`virtio::mmio_addr`]`(n)`), loads
/// what `boot` says and runs it to its end.
pub fn run(
    boot: Boot<'_>,
    cfg: &RunConfig,
    devices: Vec<Box<dyn virtio::Device>>,
) -> Result<Outcome, Error> {
    let kernel = matches!(boot, Boot::Kernel { .. });
    let cpus = match &boot {
        Boot::Kernel { cpus, .. } => (*cpus).max(1),
        Boot::Image { .. } => 1,
    };
    let t0 = Instant::now();
    let shared = devices.iter().any(|d| d.shares_memory());
    let mut m = create(boot.mem(), kernel, cpus, shared)?;
    // Only a kernel has an interrupt controller for the UART's line; an image guest polls.
    let irq = if kernel {
        let irq = EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(|source| {
            Error::Setup {
                what: "eventfd for the UART",
                source,
            }
        })?;
        m.vm.register_irqfd(&irq, COM1_IRQ)
            .map_err(Error::ioctl("KVM_IRQFD"))?;
        Some(irq)
    } else {
        None
    };
    let bus = if devices.is_empty() {
        None
    } else {
        let bus = Bus::new(devices, m.mem.clone(), Some(&m.vm), kernel, &cfg.tool)?;
        Some(Arc::new(bus))
    };
    let virtio_lines: Vec<(u64, u32)> = bus
        .as_ref()
        .map(|b| {
            (0..b.len())
                .map(|n| (virtio::mmio_addr(n), virtio::IRQS[n]))
                .collect()
        })
        .unwrap_or_default();
    let t1 = Instant::now();
    match boot {
        Boot::Image { plan, image } => load(&mut m, plan, image, cfg)?,
        Boot::Kernel {
            plan,
            kernel,
            initrd,
            ..
        } => load_kernel(&mut m, plan, &kernel, initrd.as_deref(), &virtio_lines)?,
    }
    let t2 = Instant::now();
    let console = Console::new(irq, cfg.serial);
    if kernel {
        // A kernel waits for the UART's interrupt rather than polling it.
        console.start_input();
        // On request its console output arrives without an exit per byte where KVM can queue
        // it. Not by default: in the nested lane (kvm_amd on QEMU TCG's AMD-V) runs with the
        // ring crashed the level-1 kernel or reset its guests, and without it they did not.
        // (Images always exit per byte: one could write and then spin with no exit to flush.)
        if cfg.console_ring {
            if let Some(ring) = TxRing::register(&m.kvm, &m.vm, &m.vcpu, COM1) {
                console.queue_tx(ring);
            }
        }
    }
    // A kernel gets the legacy ports it probes and the ACPI sleep and reset registers.
    let platform = kernel.then(Platform::default);
    // Requests whose notification KVM signals on an eventfd are served on a thread of their
    // own, stopped and joined when the run is over.
    let worker = match &bus {
        Some(b) if b.needs_thread() => Some(virtio::bus::start(Arc::clone(b))?),
        _ => None,
    };
    // Set-up ends here: what the run needs of signals is installed, and then the filter on
    // every thread there is (TSYNC); the threads run_vcpus starts inherit it.
    if needs_threads(&m, cfg) {
        Control::install_handler()?;
    }
    if let Some(filter) = &cfg.seccomp {
        crate::seccomp::install(filter)?;
    }
    let (end, exits) = run_vcpus(
        &mut m,
        console.clone(),
        platform.as_ref(),
        bus.as_deref(),
        cfg,
    )?;
    drop(worker);
    console.catch_up();
    let end = if kernel {
        let mut flag = [0u8; 2];
        // Unreadable (it is always inside RAM) counts as unset.
        let flag = match m
            .mem
            .read_slice(&mut flag, GuestAddress(linux::RESET_FLAG_ADDR))
        {
            Ok(()) => u16::from_le_bytes(flag),
            Err(_) => linux::RESET_FLAG_UNSET,
        };
        kernel_end(end, flag)
    } else {
        end
    };
    let t3 = Instant::now();
    // Closed here, not left to the process exit, even by the command: KVM then destroys the VM
    // while the process lives, and its MMU notifier goes with one wait for the global SRCU
    // grace period. Left to the exit, the notifier's release in exit_mmap and its unregister
    // wait for two, and with 20 VMs at a time those waits (not the CPU) bounded the rate.
    drop(m);
    let t4 = Instant::now();
    Ok(Outcome {
        end,
        exits,
        timings: Timings {
            create: t1 - t0,
            load: t2 - t1,
            run: t3 - t2,
            teardown: t4 - t3,
        },
    })
}

/// The crash a triple fault is (`KVM_EXIT_SHUTDOWN`), which a kernel's `reboot=t` also uses.
const TRIPLE_FAULT: &str = "triple fault (KVM_EXIT_SHUTDOWN)";

/// How a kernel went down, from its own acts: S5 is a power-off already; a reset is a panic
/// when the kernel left the warm-boot flag (`reboot=panic_warm`) at [`linux::RESET_FLAG_ADDR`]
/// and a reboot otherwise; a triple fault is one of those only when the kernel wrote the flag
/// first (Linux does before every restart), else the crash it is.
pub fn kernel_end(end: End, reset_flag: u16) -> End {
    match end {
        End::Reset if reset_flag == linux::RESET_FLAG_WARM => End::Panic,
        End::Reset => End::Reboot,
        End::Crash { ref what, .. } if what == TRIPLE_FAULT => match reset_flag {
            linux::RESET_FLAG_WARM => End::Panic,
            linux::RESET_FLAG_COLD => End::Reboot,
            _ => end,
        },
        end => end,
    }
}

/// A memfd of `size` bytes: guest memory another process (virtiofsd) can map too.
fn memfd(size: u64) -> Result<std::fs::File, Error> {
    use std::os::fd::FromRawFd;
    let fail = |what: &str, e: std::io::Error| Error::Memory {
        size,
        why: format!("{what}: {}", conventions::output::errtext(&e)),
    };
    // SAFETY: memfd_create takes a NUL-terminated name and returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"tinyvmm-guest-ram".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(fail("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.set_len(size)
        .map_err(|e| fail("ftruncate of the memfd", e))?;
    Ok(file)
}

fn create(mem_size: u64, irqchip: bool, cpus: u8, shared: bool) -> Result<Machine, Error> {
    let kvm = Kvm::new().map_err(Error::kvm_open)?;
    let api = kvm.get_api_version();
    if api != 12 {
        return Err(Error::ApiVersion(api));
    }
    let vm = kvm.create_vm().map_err(Error::ioctl("KVM_CREATE_VM"))?;
    vm.set_tss_address(TSS_ADDR)
        .map_err(Error::ioctl("KVM_SET_TSS_ADDRESS"))?;
    if irqchip {
        // Only for kernels: with an in-kernel interrupt controller KVM handles HLT itself, and
        // a halt could no longer end a simple guest's run.
        vm.create_irq_chip()
            .map_err(Error::ioctl("KVM_CREATE_IRQCHIP"))?;
        let pit = kvm_bindings::kvm_pit_config {
            flags: kvm_bindings::KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        vm.create_pit2(pit)
            .map_err(Error::ioctl("KVM_CREATE_PIT2"))?;
    }
    // Anonymous memory, unless a device's backend must map it too (--share): then a memfd,
    // mapped shared.
    let file = if shared {
        Some(vm_memory::FileOffset::new(memfd(mem_size)?, 0))
    } else {
        None
    };
    let mem =
        GuestMemoryMmap::<()>::from_ranges_with_files([(GuestAddress(0), mem_size as usize, file)])
            .map_err(|e| Error::Memory {
                size: mem_size,
                why: format!(
                    "mmap failed: {}",
                    conventions::output::without_os_error(&e.to_string())
                ),
            })?;
    let host = mem
        .get_host_address(GuestAddress(0))
        .map_err(|e| Error::Memory {
            size: mem_size,
            why: e.to_string(),
        })?;
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: mem_size,
        userspace_addr: host as u64,
    };
    // SAFETY: the region is the whole of `mem`, a live mapping of `mem_size` bytes that
    // the Machine owns and drops only after the VM fd that refers to it.
    unsafe { vm.set_user_memory_region(region) }
        .map_err(Error::ioctl("KVM_SET_USER_MEMORY_REGION"))?;
    let vcpu = vm.create_vcpu(0).map_err(Error::ioctl("KVM_CREATE_VCPU"))?;
    let aps = (1..cpus)
        .map(|id| vm.create_vcpu(u64::from(id)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::ioctl("KVM_CREATE_VCPU"))?;
    Ok(Machine {
        vcpu,
        aps,
        vm,
        kvm,
        mem,
    })
}

fn load(m: &mut Machine, plan: &LoadPlan, image: &[u8], cfg: &RunConfig) -> Result<(), Error> {
    write(&m.mem, layout::BOOT_INFO_ADDR, &layout::boot_info(plan.mem))?;
    match plan.format {
        Format::Real | Format::Long => {
            for p in &plan.pieces {
                write(&m.mem, p.addr, &image[p.offset..p.offset + p.len])?;
            }
        }
        Format::Elf | Format::Pvh => load_elf(m, plan, image)?,
    }
    if cfg.cpuid {
        set_cpuid(&m.kvm, &m.vcpu, 0)?;
    }
    let mut sregs = m.vcpu.get_sregs().map_err(Error::ioctl("KVM_GET_SREGS"))?;
    let mut regs = m.vcpu.get_regs().map_err(Error::ioctl("KVM_GET_REGS"))?;
    regs.rflags = 0x2;
    regs.rsi = layout::BOOT_INFO_ADDR;
    regs.rsp = plan.stack;
    match plan.format {
        Format::Real => {
            let (cs, ip) = if plan.entry < 0x1_0000 {
                (0, plan.entry)
            } else {
                (plan.entry >> 4, 0)
            };
            sregs.cs.selector = cs as u16;
            sregs.cs.base = cs << 4;
            for seg in [
                &mut sregs.ds,
                &mut sregs.es,
                &mut sregs.ss,
                &mut sregs.fs,
                &mut sregs.gs,
            ] {
                seg.selector = 0;
                seg.base = 0;
            }
            regs.rip = ip;
            regs.rsp = plan.stack & 0xffff;
        }
        Format::Long | Format::Elf => {
            enter_long_mode(&m.mem, &mut sregs, plan.mem)?;
            regs.rip = plan.entry;
            set_fpu(&m.vcpu)?;
        }
        Format::Pvh => {
            write(
                &m.mem,
                layout::PVH_INFO_ADDR,
                &layout::pvh_start_info(plan.mem),
            )?;
            enter_protected_mode(&m.mem, &mut sregs)?;
            regs.rip = plan.entry;
            regs.rbx = layout::PVH_INFO_ADDR;
        }
    }
    commit_registers(&m.vcpu, &sregs, &regs)
}

fn load_kernel(
    m: &mut Machine,
    plan: &KernelPlan,
    kernel: &[u8],
    initrd: Option<&[u8]>,
    virtio: &[(u64, u32)],
) -> Result<(), Error> {
    let bad = |why: String| Error::BadImage {
        path: "<kernel>".into(),
        why,
    };
    match plan.kind {
        KernelKind::BzImage => {
            BzImage::load(
                &m.mem,
                Some(GuestAddress(linux::BZIMAGE_LOAD)),
                &mut Cursor::new(kernel),
                None,
            )
            .map_err(|e| bad(format!("bzImage loader: {e}")))?;
        }
        KernelKind::Pvh | KernelKind::Elf => {
            Elf::load(&m.mem, None, &mut Cursor::new(kernel), None)
                .map_err(|e| bad(format!("ELF loader: {e}")))?;
        }
    }
    if let (Some((addr, _)), Some(bytes)) = (plan.initrd, initrd) {
        write(&m.mem, addr, bytes)?;
    }
    write(&m.mem, linux::CMDLINE_ADDR, &plan.cmdline)?;
    write(
        &m.mem,
        linux::RESET_FLAG_ADDR,
        &linux::RESET_FLAG_UNSET.to_le_bytes(),
    )?;
    write(
        &m.mem,
        mptable::MPTABLE_ADDR,
        &mptable::mptable(1 + m.aps.len() as u8),
    )?;
    for (addr, bytes) in acpi::tables(1 + m.aps.len() as u8, virtio) {
        write(&m.mem, addr, &bytes)?;
    }
    for (id, vcpu) in std::iter::once(&m.vcpu).chain(&m.aps).enumerate() {
        set_cpuid(&m.kvm, vcpu, id as u8)?;
        set_lapic(vcpu)?;
        set_boot_msrs(vcpu)?;
        set_fpu(vcpu)?;
    }
    let mut sregs = m.vcpu.get_sregs().map_err(Error::ioctl("KVM_GET_SREGS"))?;
    let mut regs = m.vcpu.get_regs().map_err(Error::ioctl("KVM_GET_REGS"))?;
    regs.rflags = 0x2;
    regs.rip = plan.entry;
    regs.rsp = linux::BOOT_STACK;
    regs.rbp = linux::BOOT_STACK;
    if plan.kind == KernelKind::Pvh {
        for (addr, bytes) in linux::pvh_info(plan) {
            write(&m.mem, addr, &bytes)?;
        }
        enter_protected_mode(&m.mem, &mut sregs)?;
        regs.rbx = layout::PVH_INFO_ADDR;
    } else {
        write(&m.mem, linux::ZERO_PAGE_ADDR, &linux::zero_page(plan))?;
        enter_long_mode(&m.mem, &mut sregs, plan.mem)?;
        regs.rsi = linux::ZERO_PAGE_ADDR;
    }
    commit_registers(&m.vcpu, &sregs, &regs)
}

fn load_elf(m: &mut Machine, plan: &LoadPlan, image: &[u8]) -> Result<(), Error> {
    let bad = |why: String| Error::BadImage {
        path: "<image>".into(),
        why,
    };
    let result = Elf::load(&m.mem, None, &mut Cursor::new(image), None)
        .map_err(|e| bad(format!("ELF loader: {e}")))?;
    if plan.format == Format::Pvh {
        match result.pvh_boot_cap {
            PvhBootCapability::PvhEntryPresent(GuestAddress(e)) if e == plan.entry => {}
            other => {
                return Err(bad(format!(
                    "the ELF loader saw PVH entry {other:?}, the plan 0x{:x}",
                    plan.entry
                )))
            }
        }
    }
    Ok(())
}

/// How the vCPU threads learn that the run is over: the first vCPU to end the run (or the
/// timeout) sets `stop`; a watchdog thread then keeps kicking every vCPU thread still in KVM_RUN
/// with a signal until all have left, so that a kick landing just before KVM_RUN is entered is
/// followed by another.
struct Control {
    stop: AtomicBool,
    state: Mutex<ControlState>,
    cv: Condvar,
}

#[derive(Default)]
struct ControlState {
    /// Threads of the vCPUs still running.
    live: Vec<libc::pthread_t>,
    /// How the run ended, from the first vCPU that ended it.
    end: Option<End>,
    /// The run is over: the watchdog returns.
    quit: bool,
}

extern "C" fn kick_handler(_: libc::c_int) {}

fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN()
}

impl Control {
    fn new() -> Control {
        Control {
            stop: AtomicBool::new(false),
            state: Mutex::new(ControlState::default()),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Installs the kick signal's handler: it does nothing, which is async-signal safe; without
    /// SA_RESTART a blocked KVM_RUN returns EINTR.
    fn install_handler() -> Result<(), Error> {
        // SAFETY: a zeroed sigaction is valid; the handler is an extern "C" fn doing nothing.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = kick_handler as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(kick_signal(), &sa, std::ptr::null_mut())
        };
        if r != 0 {
            return Err(Error::Setup {
                what: "sigaction",
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Registers the calling thread as a running vCPU.
    fn enter(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.lock().live.push(me);
    }

    /// Deregisters the calling thread, recording `end` if it is the first.
    fn leave(&self, end: Option<End>) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let mut st = self.lock();
        st.live.retain(|&t| t != me);
        if let Some(e) = end {
            if st.end.is_none() {
                st.end = Some(e);
            }
            self.stop.store(true, Ordering::SeqCst);
        }
        self.cv.notify_all();
    }

    /// The watchdog: waits for the deadline or a stop, then kicks the live vCPU threads until
    /// none is left or the run is declared over.
    fn watch(&self, deadline: Option<Instant>) {
        let mut st = self.lock();
        loop {
            if st.quit {
                return;
            }
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            st = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        self.stop.store(true, Ordering::SeqCst);
                        break;
                    }
                    self.cv
                        .wait_timeout(st, d - now)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0)
                }
                None => self.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
        }
        while !st.quit && !st.live.is_empty() {
            for &t in &st.live {
                // SAFETY: every thread in `live` is a vCPU thread that removes itself (under
                // this lock) before it ends, so `t` names a live thread.
                unsafe { libc::pthread_kill(t, kick_signal()) };
            }
            st = self
                .cv
                .wait_timeout(st, Duration::from_millis(5))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

/// Whether the run has vCPU threads and a watchdog to kick them: one vCPU and no timeout have
/// nothing to coordinate, no thread, no signal.
fn needs_threads(m: &Machine, cfg: &RunConfig) -> bool {
    !m.aps.is_empty() || cfg.timeout.is_some()
}

/// Runs the bootstrap vCPU on this thread and the others on their own, until the run ends.
fn run_vcpus(
    m: &mut Machine,
    console: Console,
    platform: Option<&Platform>,
    bus: Option<&Bus>,
    cfg: &RunConfig,
) -> Result<(End, ExitCounts), Error> {
    if !needs_threads(m, cfg) {
        let control = Control::new();
        let (end, n) = run_loop(&mut m.vcpu, &console, platform, bus, &control, cfg);
        return Ok((end.unwrap_or(End::Timeout), n));
    }
    let control = Control::new();
    let deadline = cfg.timeout.map(|t| Instant::now() + t);
    let (bsp_end, total) = std::thread::scope(|scope| -> Result<_, Error> {
        let watchdog = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn_scoped(scope, || control.watch(deadline))
            .map_err(|source| Error::Setup {
                what: "spawning the watchdog thread",
                source,
            })?;
        let mut aps = Vec::new();
        for (i, ap) in m.aps.iter_mut().enumerate() {
            let (console, control) = (console.clone(), &control);
            let spawned = std::thread::Builder::new()
                .name(format!("vcpu{}", i + 1))
                .spawn_scoped(scope, move || {
                    run_loop(ap, &console, platform, bus, control, cfg)
                });
            match spawned {
                Ok(h) => aps.push(h),
                Err(source) => {
                    control.stop.store(true, Ordering::SeqCst);
                    control.cv.notify_all();
                    return Err(Error::Setup {
                        what: "spawning a vCPU thread",
                        source,
                    });
                }
            }
        }
        let (end, mut n) = run_loop(&mut m.vcpu, &console, platform, bus, &control, cfg);
        for h in aps {
            if let Ok((_, an)) = h.join() {
                n.add(&an);
            }
        }
        control.lock().quit = true;
        control.cv.notify_all();
        let _ = watchdog.join();
        Ok((end, n))
    })?;
    // The first vCPU to end the run says how; if none did, the timeout stopped them all.
    let first = control.lock().end.take();
    Ok((first.or(bsp_end).unwrap_or(End::Timeout), total))
}

fn rip(vcpu: &VcpuFd) -> Option<u64> {
    vcpu.get_regs().ok().map(|r| r.rip)
}

fn crash(vcpu: &VcpuFd, what: impl Into<String>) -> End {
    End::Crash {
        what: what.into(),
        rip: rip(vcpu),
    }
}

/// One vCPU's exit loop: returns how it ended the run, or None when it was stopped because
/// another vCPU or the timeout ended it.
fn run_loop(
    vcpu: &mut VcpuFd,
    console: &Console,
    platform: Option<&Platform>,
    bus: Option<&Bus>,
    control: &Control,
    cfg: &RunConfig,
) -> (Option<End>, ExitCounts) {
    control.enter();
    let mut n = ExitCounts::default();
    let log = |what: std::fmt::Arguments| {
        if cfg.verbose {
            conventions::errln!("{}: exit: {what}", cfg.tool);
        }
    };
    let end = loop {
        if control.stop.load(Ordering::SeqCst) {
            if cfg.verbose {
                let at = rip(vcpu).map(|r| format!("0x{r:x}")).unwrap_or_default();
                log(format_args!("stopped at RIP {at}"));
            }
            control.leave(None);
            return (None, n);
        }
        match vcpu.run() {
            Ok(VcpuExit::IoOut(port, data)) => {
                n.io_out += 1;
                log(format_args!("io out port 0x{port:x} data {data:02x?}"));
                let value = data.first().copied().unwrap_or(0);
                let act = match platform {
                    Some(p) if platform::handles(port) => p.io_out(port, data),
                    _ => Act::None,
                };
                match port {
                    STATUS_PORT => break End::Status(value),
                    I8042_CMD if value == I8042_RESET => break End::Reset,
                    _ if act == Act::PowerOff => break End::Poweroff,
                    _ if act == Act::Reset => break End::Reset,
                    // Every byte to the transmitter, so that `rep outsb` prints a whole
                    // string in one exit.
                    COM1 => data.iter().for_each(|&b| console.write(0, b)),
                    p if (COM1..COM1 + 8).contains(&p) => console.write((p - COM1) as u8, value),
                    _ => {}
                }
            }
            Ok(VcpuExit::IoIn(port, data)) => {
                n.io_in += 1;
                match port {
                    // Successive reads of the receiver for `rep insb`.
                    COM1 => data.iter_mut().for_each(|b| *b = console.read(0)),
                    p if (COM1..COM1 + 8).contains(&p) => {
                        let v = console.read((p - COM1) as u8);
                        data.fill(0);
                        if let Some(first) = data.first_mut() {
                            *first = v;
                        }
                    }
                    p if platform.is_some() && platform::handles(p) => {
                        if let Some(platform) = platform {
                            platform.io_in(p, data);
                        }
                    }
                    // i8042 status: input and output buffers empty, so a reset sequence proceeds.
                    I8042_CMD => data.fill(0),
                    _ => data.fill(0xff),
                }
                log(format_args!("io in port 0x{port:x} -> {data:02x?}"));
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                n.mmio_read += 1;
                if !bus.is_some_and(|b| b.read(addr, data)) {
                    data.fill(0xff);
                }
                log(format_args!("mmio read 0x{addr:x} ({} bytes)", data.len()));
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                n.mmio_write += 1;
                log(format_args!("mmio write 0x{addr:x} {data:02x?}"));
                if let Some(b) = bus {
                    b.write(addr, data);
                }
            }
            Ok(VcpuExit::Hlt) => {
                n.hlt += 1;
                log(format_args!("hlt"));
                break End::Halt;
            }
            Ok(VcpuExit::Shutdown) => {
                n.shutdown += 1;
                break crash(vcpu, TRIPLE_FAULT);
            }
            Ok(VcpuExit::InternalError) => {
                n.internal_error += 1;
                // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, so `internal` is the
                // union member the kernel filled in.
                let sub = unsafe { vcpu.get_kvm_run().__bindgen_anon_1.internal.suberror };
                let what = match sub {
                    1 => "emulation failure",
                    2 => "exception while delivering an exception (triple fault)",
                    3 => "delivery event failure",
                    _ => "internal error",
                };
                break crash(
                    vcpu,
                    format!("KVM_EXIT_INTERNAL_ERROR: {what} (suberror {sub})"),
                );
            }
            Ok(VcpuExit::FailEntry(reason, _)) => {
                n.fail_entry += 1;
                break crash(
                    vcpu,
                    format!("VM entry failed (KVM_EXIT_FAIL_ENTRY, reason 0x{reason:x})"),
                );
            }
            Ok(VcpuExit::SystemEvent(kind, _)) => {
                n.system_event += 1;
                match kind {
                    kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN => break End::Poweroff,
                    kvm_bindings::KVM_SYSTEM_EVENT_RESET => break End::Reset,
                    k => break crash(vcpu, format!("system event {k} (KVM_EXIT_SYSTEM_EVENT)")),
                }
            }
            Ok(VcpuExit::Intr) => n.intr += 1,
            Ok(other) => {
                n.other += 1;
                let what = format!("unexpected vCPU exit {other:?}");
                break crash(vcpu, what);
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => n.intr += 1,
            Err(e) => {
                let why = conventions::output::strerror(e.errno());
                break crash(vcpu, format!("KVM_RUN failed: {why}"));
            }
        }
    };
    control.leave(Some(end.clone()));
    (Some(end), n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_go_down_three_ways() {
        use linux::{RESET_FLAG_COLD as COLD, RESET_FLAG_UNSET as UNSET, RESET_FLAG_WARM as WARM};
        let triple = End::Crash {
            what: TRIPLE_FAULT.into(),
            rip: Some(1),
        };
        let other = End::Crash {
            what: "KVM_EXIT_INTERNAL_ERROR: emulation failure (suberror 1)".into(),
            rip: Some(1),
        };
        assert_eq!(kernel_end(End::Reset, WARM), End::Panic);
        assert_eq!(kernel_end(End::Reset, COLD), End::Reboot);
        // A reset without the flag (not Linux, or an old one) is still a restart.
        assert_eq!(kernel_end(End::Reset, UNSET), End::Reboot);
        assert_eq!(kernel_end(triple.clone(), WARM), End::Panic);
        assert_eq!(kernel_end(triple.clone(), COLD), End::Reboot);
        assert_eq!(kernel_end(triple.clone(), UNSET), triple);
        assert_eq!(kernel_end(triple.clone(), 0x5a5a), triple);
        assert_eq!(kernel_end(other.clone(), WARM), other);
        // S5, the status port and the timeout are what they are, whatever the flag.
        for flag in [WARM, COLD, UNSET] {
            assert_eq!(kernel_end(End::Poweroff, flag), End::Poweroff);
            assert_eq!(kernel_end(End::Status(3), flag), End::Status(3));
            assert_eq!(kernel_end(End::Timeout, flag), End::Timeout);
        }
        assert_eq!(
            [End::Poweroff, End::Panic, End::Reboot, End::Reset].map(|e| e.status()),
            [0, 121, 122, 0]
        );
    }
}
