//! tinyvmm: a minimal KVM virtual machine monitor for scripts: one vCPU (more for kernels), RAM
//! from 0, a UART on stdin/stdout, a status port whose byte becomes the exit status, and little
//! else.
//!
//! - [`plan`]: options and image bytes to a [`plan::LoadPlan`], pure and unit-tested.
//! - [`layout`]: the boot structures (GDT, page tables, memory maps), pure.
//! - [`vm`]: the KVM calls and the exit loop.
//! - [`cpu`]: the vCPU's boot state (modes, registers, MSRs, LAPIC, FPU, CPUID).
//! - [`linux`]: booting Linux-style kernels (`--kernel`): plan, zero page, PVH start info.
//! - [`initramfs`]: the one-shot mode's initramfs (`--rootfs DIR -- CMD`).
//! - [`input`]: input files read only when regular and within `--mem`.
//! - [`mptable`]: the MultiProcessor table for `--cpus`.
//! - [`acpi`]: the ACPI tables (RSDP, XSDT, hardware-reduced FADT, DSDT with `\_S5`, MADT).
//! - [`platform`]: the legacy ports a kernel probes (CMOS, i8042, PCI) and the ACPI registers.
//! - [`devices`]: the UART, the status port, the i8042 reset.
//! - [`coalesced`]: `--console-ring`: the UART's transmitter writes queued by KVM, not exits.
//! - [`report`]: the JSON report.
//! - [`seccomp`]: the filter tinyvmm confines itself with once the VM is set up.
//! - [`virtio`]: virtio-mmio devices: `--disk` (block), `--rng` (entropy), `--net` (a tap),
//!   `--vsock` (host Unix sockets) and `--share` (virtio-fs, run by virtiofsd).

pub mod acpi;
pub mod coalesced;
pub mod cpu;
pub mod devices;
pub mod error;
pub mod initramfs;
pub mod input;
pub mod layout;
pub mod linux;
pub mod mptable;
pub mod plan;
pub mod platform;
pub mod report;
pub mod seccomp;
pub mod virtio;
pub mod vm;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

pub use error::Error;
use plan::{FormatArg, Options, PlanError};

/// Exit status: tinyvmm's own failure (bad options, bad image, no /dev/kvm).
pub const EXIT_FAILURE: i32 = 125;
/// Exit status: `--timeout` expired.
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit status: the guest crashed.
pub const EXIT_CRASH: i32 = 123;
/// Exit status: a kernel rebooted.
pub const EXIT_REBOOT: i32 = 122;
/// Exit status: a kernel panicked.
pub const EXIT_PANIC: i32 = 121;

/// The guest that runs when no image is given (built from guests/info.s).
pub const EMBEDDED_GUEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/info.bin"));

/// Directory holding the example guests built from tinyvmm/guests (used by the tests).
pub const GUEST_DIR: &str = env!("OUT_DIR");

/// The path of the example guest `name` in [`GUEST_DIR`], as the tests put it on a command line.
pub fn guest_path(name: &str) -> String {
    format!("{GUEST_DIR}/{name}")
}

macro_rules! guests {
    ($($name:literal),* $(,)?) => {
        /// The example guests `tinyvmm guests DIR` writes out (#24: a user finds them there, not
        /// in a hashed build directory), by file name.
        pub const GUESTS: &[(&str, &[u8])] = &[
            $(($name, include_bytes!(concat!(env!("OUT_DIR"), "/", $name)))),*
        ];
    };
}
guests!(
    "info.bin",
    "hello-real.bin",
    "hello-long.bin",
    "primes.elf",
    "pvh.elf",
    "echo.bin",
    "status.bin",
    "spin.bin",
    "fault.bin",
    "fault-real.bin",
    "reset.bin",
    "chaos.bin",
    "virtio.bin",
    "net.bin",
    "testkernel-bz.bin",
    "testkernel-pvh.elf",
);

const AFTER_HELP: &str = "\
Exit status:
  N    the guest wrote byte N (0-255) to the status port 0xf4
  0    the guest halted with no interrupt source, or reset (0xfe to port 0x64);
       a kernel (--kernel) powered off
  121  a kernel panicked: it reset with the warm-boot flag (0x1234 at 0x472) that
       reboot=panic_warm on the default command line asks for
  122  a kernel rebooted: it reset (i8042, ACPI reset register, triple fault) with the
       cold-boot flag (0 at 0x472)
  123  the guest crashed (triple fault, KVM internal or emulation error, entry failure)
  124  --timeout expired
  125  tinyvmm's own failure: bad options, bad image, no /dev/kvm
  (not 1: a guest may exit with 1)

Examples:
  tinyvmm run                          # the built-in guest reports what it sees
  tinyvmm guests g                     # writes the example guests into g/
  tinyvmm run g/hello-long.bin         # a flat image, format by content
  tinyvmm run --format real g/hello-real.bin   # 16-bit, loaded at 0x1000, entered at 0000:1000
  tinyvmm run --mem 16M --timeout 5 g/primes.elf; echo \"guest said $?\"
  echo hi | tinyvmm run --report run.json g/echo.bin
  tinyvmm run --kernel vmlinux --initrd initrd.cpio --append quiet --mem 512M
  tinyvmm run --kernel bzImage --initrd initrd.cpio --disk root.img --rng
  tinyvmm run --kernel bzImage --initrd initrd.cpio --net tap=vm0,mac=02:00:00:00:00:02
  tinyvmm run --kernel bzImage --initrd initrd.cpio --vsock 3,uds=/run/vm.sock
      # guest: connect to CID 2 port 52 -> host: /run/vm.sock_52 (a listener there)
      # host:  socat - UNIX-CONNECT:/run/vm.sock, then write CONNECT 52 -> guest port 52
  tinyvmm run --kernel bzImage --initrd initrd.cpio --share /srv/data:data,ro
      # guest: mount -t virtiofs data /mnt (virtiofs.ko); writes there fail (EROFS)
  tinyvmm run --kernel bzImage --rootfs ./rootfs -- sh -c 'exit 3'; echo $?   # 3
  tinyvmm run --kernel bzImage --rootfs ./rootfs -- uname -r > out 2> log  # out: CMD's output
  tinyvmm run --kernel bzImage --rootfs ./rootfs --share-rootfs -- ls /  # ./rootfs over virtio-fs";

/// Command line of tinyvmm.
#[derive(Parser, Debug, PartialEq)]
#[command(
    name = "tinyvmm",
    version = conventions::VERSION,
    about = "a minimal KVM virtual machine monitor for scripts",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// tinyvmm's subcommands.
// One value per process, parsed once: a box for `run`'s options would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug, PartialEq)]
pub enum Command {
    /// Run IMAGE (or the built-in guest) in a fresh VM until it ends.
    #[command(after_help = AFTER_HELP)]
    Run(RunArgs),
    /// Write the example guests (ELF, PVH, flat, real mode, the synthetic kernels) into DIR,
    /// which is created if missing, and print their paths.
    #[command(
        after_help = "Examples:\n  tinyvmm guests g && tinyvmm run g/primes.elf\n  \
                      printf '\\007' | tinyvmm run g/status.bin; echo $?   # 7\n  \
                      tinyvmm run --kernel g/testkernel-bz.bin     # what a kernel reads at boot"
    )]
    Guests {
        /// Where to write them.
        dir: PathBuf,
    },
}

/// Options of `tinyvmm run`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct RunArgs {
    /// How to load and enter the image.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// Guest memory (e.g. 64M, 1G); allocated as the guest touches it.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_mem)]
    pub mem: u64,
    /// Load address of a flat image (real: 0x1000, long: 0x100000).
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub load: Option<u64>,
    /// Stop the guest after SECS seconds (fractions allowed); exit 124.
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Give the guest the host's supported CPUID with the hypervisor leaf set (always on for
    /// the built-in guest).
    #[arg(long)]
    pub cpuid: bool,
    /// Print the run's report as one JSON line on stdout after the guest's output.
    #[arg(long)]
    pub json: bool,
    /// Write the run's report as JSON to FILE (created before the guest starts).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Log every vCPU exit on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Run without the seccomp filter tinyvmm confines itself with once the VM is set up (for
    /// debugging: a refused call ends the run with 125 and a line naming it).
    #[arg(long)]
    pub no_seccomp: bool,
    /// With --kernel: let KVM queue the kernel's console writes in its coalesced-I/O ring
    /// instead of stopping the vCPU for each byte (a chatty boot's port-write exits fall ~30x). Off
    /// by default: under nested KVM on QEMU's emulated AMD-V it crashed the level-1 host.
    #[arg(long)]
    pub console_ring: bool,
    /// Boot a Linux kernel instead of an image: a bzImage (64-bit boot protocol) or an ELF
    /// vmlinux (PVH entry when it has the note), with an interrupt controller, a PIT and the
    /// UART on IRQ 4.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["image", "format", "load"])]
    pub kernel: Option<PathBuf>,
    /// Initial ramdisk for --kernel, placed page-aligned at the top of memory.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// Words added to the kernel command line "console=ttyS0 reboot=k,panic_warm panic=-1".
    #[arg(long, value_name = "CMDLINE")]
    pub append: Option<String>,
    /// One-shot mode with --kernel: build an initramfs from DIR whose /init runs CMD and reports
    /// its exit status, which becomes tinyvmm's. CMD's stdout comes over a virtio console to
    /// tinyvmm's stdout; the serial console (the kernel's log, CMD's stderr) goes to stderr.
    #[arg(long, value_name = "DIR", conflicts_with = "initrd")]
    pub rootfs: Option<PathBuf>,
    /// With --rootfs: give the guest DIR itself over virtio-fs (tag `rootfs`, a virtiofsd as
    /// for --share) as its root instead of packing DIR into an initramfs at every start; the
    /// initramfs holds only a small init and the modules virtio-fs needs, from
    /// DIR/lib/modules. The command's writes land in DIR.
    #[arg(long, requires = "rootfs")]
    pub share_rootfs: bool,
    /// vCPUs for --kernel (1 to 32), listed in the ACPI MADT and the MP table; the kernel starts
    /// the others.
    #[arg(long, value_name = "N", default_value = "1", value_parser = clap::value_parser!(u8).range(1..=32))]
    pub cpus: u8,
    /// A raw disk image as a virtio-blk device (/dev/vda, /dev/vdb... in order); `,ro` makes
    /// it read-only. Locked (flock) against a second VM. Repeatable.
    #[arg(long, value_name = "FILE[,ro]", value_parser = virtio::blk::parse_disk)]
    pub disk: Vec<virtio::blk::DiskArg>,
    /// A virtio-rng device fed by the host's getrandom(2).
    #[arg(long)]
    pub rng: bool,
    /// A virtio-net device on the host's tap NAME (eth0, eth1... in order), created if there is
    /// none, and then gone when tinyvmm ends; MAC defaults to a random local one. Repeatable.
    #[arg(long, value_name = "tap=NAME[,mac=MAC]", value_parser = virtio::net::parse_net)]
    pub net: Vec<virtio::net::NetArg>,
    /// A virtio-vsock device: the guest's context id CID (3 and up); a guest connection to
    /// the host (CID 2) port P goes to the Unix socket PATH_P, and a program that connects to
    /// PATH and writes "CONNECT P\n" reaches the guest's port P (after "OK PORT\n").
    /// PATH is created, and removed when tinyvmm ends.
    #[arg(long, value_name = "CID[,uds=PATH]", value_parser = virtio::vsock::parse_vsock)]
    pub vsock: Option<virtio::vsock::VsockArg>,
    /// A host directory the guest mounts live with `mount -t virtiofs TAG DIR` (virtio-fs):
    /// served by a virtiofsd that tinyvmm starts and stops (`,ro`: read-only), or by the
    /// virtiofsd listening at `socket=PATH`. Guest memory is then a memfd virtiofsd maps.
    /// Repeatable.
    #[arg(long, value_name = "HOSTDIR:TAG[,ro]", value_parser = virtio::fs::parse_share)]
    pub share: Vec<virtio::fs::ShareArg>,
    /// Guest image; without one (and without --kernel), the built-in guest runs.
    pub image: Option<PathBuf>,
    /// The command the one-shot mode runs (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

impl Default for RunArgs {
    /// What `tinyvmm run` with no options means (clap's defaults, for library callers).
    fn default() -> RunArgs {
        RunArgs {
            format: FormatArg::Auto,
            mem: plan::DEFAULT_MEM,
            load: None,
            timeout: None,
            cpuid: false,
            json: false,
            report: None,
            verbose: false,
            no_seccomp: false,
            console_ring: false,
            kernel: None,
            initrd: None,
            append: None,
            rootfs: None,
            share_rootfs: false,
            cpus: 1,
            disk: Vec::new(),
            rng: false,
            net: Vec::new(),
            vsock: None,
            share: Vec::new(),
            image: None,
            command: Vec::new(),
        }
    }
}

pub(crate) fn parse_mem(s: &str) -> Result<u64, String> {
    conventions::size::parse_size(s).map_err(|e| e.to_string())
}

pub(crate) fn parse_addr(s: &str) -> Result<u64, String> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16)
            .map_err(|_| format!("invalid address '{s}' (e.g. 0x100000 or 1M)")),
        None => conventions::size::parse_size(t)
            .map_err(|_| format!("invalid address '{s}' (e.g. 0x100000 or 1M)")),
    }
}

pub(crate) fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid timeout '{s}' (seconds, e.g. 1 or 0.5)"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!(
            "invalid timeout '{s}' (more than 0 and at most 1e9 seconds)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn host_ram() -> u64 {
    // SAFETY: sysinfo only fills the zeroed struct it is given.
    unsafe {
        let mut info: libc::sysinfo = std::mem::zeroed();
        if libc::sysinfo(&mut info) != 0 {
            return 0;
        }
        (info.totalram as u64).saturating_mul(u64::from(info.mem_unit))
    }
}

/// Why a Linux kernel does not boot here, when /dev/kvm is PVM: the hint of the note before the
/// run and of its ending line.
pub const PVM_HINT: &str = "KVM here is PVM, software virtualization that cannot boot Linux \
    to the end: boot it under hardware KVM, vmx or svm, as `cargo xtask nested` does";

/// Whether /dev/kvm is PVM, the software virtualization some cloud VMs offer: it runs tiny
/// guests but emulates a kernel's privileged code so slowly that Linux never finishes booting.
fn kvm_is_pvm() -> bool {
    std::path::Path::new("/sys/module/kvm_pvm").exists()
}

/// Runs the tool and returns the process exit code, for `main` to exit with at once; the command
/// confines itself with seccomp, which library callers that go on running ([`run_vm`]) don't.
pub fn run(tool: &str, cli: Cli) -> i32 {
    let args = match cli.command {
        Some(Command::Run(args)) => args,
        Some(Command::Guests { dir }) => {
            return match write_guests(&dir) {
                Ok(()) => 0,
                Err(e) => {
                    conventions::errln!("{tool}: {e}");
                    EXIT_FAILURE
                }
            }
        }
        None => {
            conventions::errln!("{tool}: missing subcommand 'run' (try '{tool} --help')");
            return EXIT_FAILURE;
        }
    };
    match run_vm_with(tool, &args, true) {
        Ok((outcome, linux_on_pvm)) => {
            let hint = if linux_on_pvm {
                format!(" ({PVM_HINT})")
            } else {
                String::new()
            };
            match &outcome.end {
                vm::End::Timeout => {
                    let secs = args.timeout.map(|d| d.as_secs_f64()).unwrap_or(0.0);
                    conventions::errln!(
                        "{tool}: timeout: the guest was still running after {secs} s{hint}"
                    );
                }
                vm::End::Crash { what, rip } => match rip {
                    Some(rip) => {
                        conventions::errln!("{tool}: guest crashed: {what} at RIP 0x{rip:x}{hint}")
                    }
                    None => conventions::errln!("{tool}: guest crashed: {what}{hint}"),
                },
                _ => {}
            }
            outcome.end.status()
        }
        Err(e) => {
            conventions::errln!("{tool}: {e}");
            EXIT_FAILURE
        }
    }
}

/// `tinyvmm guests DIR`: every [`GUESTS`] file into `dir` (replacing what is there), each path
/// printed once written.
fn write_guests(dir: &std::path::Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Guests {
        path: dir.to_path_buf(),
        source: e,
    })?;
    for (name, bytes) in GUESTS {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| Error::Guests {
            path: path.clone(),
            source,
        })?;
        conventions::outln!("{}", path.display());
    }
    Ok(())
}

/// Plans, runs and reports one guest; the error is tinyvmm's own failure. Everything the run
/// opened and mapped is closed and unmapped before it returns.
pub fn run_vm(tool: &str, args: &RunArgs) -> Result<vm::Outcome, Error> {
    run_vm_with(tool, args, false).map(|(outcome, _)| outcome)
}

/// [`run_vm`], and whether the guest was a Linux kernel on a PVM host (which cannot boot it);
/// `command` for the tinyvmm command, a process that exits right after (and so may confine
/// itself).
fn run_vm_with(tool: &str, args: &RunArgs, command: bool) -> Result<(vm::Outcome, bool), Error> {
    let ram = host_ram();
    if args.kernel.is_none()
        && (args.initrd.is_some() || args.append.is_some() || args.rootfs.is_some())
    {
        return Err(Error::BadOption(
            "--initrd, --append and --rootfs go with --kernel".to_string(),
        ));
    }
    if args.kernel.is_none() && args.cpus != 1 {
        return Err(Error::BadOption("--cpus goes with --kernel".to_string()));
    }
    if args.kernel.is_none() && args.console_ring {
        return Err(Error::BadOption(
            "--console-ring goes with --kernel".to_string(),
        ));
    }
    if args.share_rootfs && args.share.iter().any(|s| s.tag == initramfs::ROOTFS_TAG) {
        return Err(Error::BadOption(format!(
            "--share-rootfs shares DIR with the tag '{}': give the other --share another tag",
            initramfs::ROOTFS_TAG
        )));
    }
    if args.rootfs.is_some() == args.command.is_empty() {
        return Err(Error::BadOption(
            "--rootfs DIR and a command after -- go together".to_string(),
        ));
    }
    // Options first: a bad --mem is reported as such even when the image is bad too.
    plan::check_mem(args.mem, ram).map_err(|e| match e {
        PlanError::Image(why) | PlanError::Option(why) => Error::BadOption(why),
    })?;
    // Only the command confines itself: a library caller goes on living after the run, and a
    // filter is for the rest of a process's life.
    let seccomp = if command && !args.no_seccomp {
        Some(seccomp::compile()?)
    } else {
        None
    };
    let cfg = vm::RunConfig {
        timeout: args.timeout,
        cpuid: args.cpuid || args.image.is_none(),
        verbose: args.verbose,
        tool: tool.to_string(),
        seccomp,
        console_ring: args.console_ring,
        // The one-shot mode's command writes to the virtio console (stdout); the serial
        // console is the kernel's log.
        serial: devices::RawOut(if args.rootfs.is_some() { 2 } else { 1 }),
    };
    let count = args.disk.len()
        + usize::from(args.rng)
        + args.net.len()
        + args.share.len()
        + usize::from(args.share_rootfs);
    let one_shot = args.rootfs.is_some();
    if count + usize::from(args.vsock.is_some()) + usize::from(one_shot) > virtio::MAX_DEVICES {
        return Err(Error::BadOption(format!(
            "at most {} virtio devices (--disk, --rng, --net, --vsock, --share, the one-shot mode's console)",
            virtio::MAX_DEVICES
        )));
    }
    let devices = || -> Result<Vec<Box<dyn virtio::Device>>, Error> {
        // Disks first, so that the n-th --disk is the guest's n-th virtio disk (vda, vdb...).
        let mut devices: Vec<Box<dyn virtio::Device>> = Vec::new();
        for d in &args.disk {
            let blk = virtio::blk::open(d).map_err(|why| Error::Disk {
                path: d.path.clone(),
                why,
            })?;
            devices.push(Box::new(blk));
        }
        if args.rng {
            devices.push(Box::new(virtio::rng::Rng));
        }
        // After the others, so that adding a NIC moves no disk or entropy device.
        for n in &args.net {
            let net = virtio::net::open(n).map_err(|e| Error::Net {
                tap: n.tap.clone(),
                why: e.to_string(),
            })?;
            devices.push(Box::new(net));
        }
        if let Some(v) = &args.vsock {
            let vsock = virtio::vsock::open(v).map_err(|e| Error::Vsock {
                path: v
                    .uds
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                why: conventions::output::without_os_error(&e.to_string()).to_string(),
            })?;
            devices.push(Box::new(vsock));
        }
        for sh in &args.share {
            let fs = virtio::fs::open(sh).map_err(|why| Error::Share {
                path: sh.path().to_path_buf(),
                why,
            })?;
            devices.push(Box::new(fs));
        }
        if let (true, Some(dir)) = (args.share_rootfs, &args.rootfs) {
            let root = virtio::fs::ShareArg {
                source: virtio::fs::Source::Dir(dir.clone()),
                tag: initramfs::ROOTFS_TAG.to_string(),
                read_only: false,
            };
            let fs = virtio::fs::open(&root).map_err(|why| Error::Share {
                path: dir.clone(),
                why,
            })?;
            devices.push(Box::new(fs));
        }
        if one_shot {
            devices.push(Box::new(virtio::console::Console::new(1)));
        }
        Ok(devices)
    };
    // Every input is checked against what guest memory can hold before it is read.
    let read = |what: &'static str, path: &PathBuf| {
        input::read(path, args.mem, input::GUEST_MEMORY).map_err(|why| Error::ReadImage {
            what,
            path: path.clone(),
            why,
        })
    };
    // The report file is opened before the run: once the filter is on, nothing can be opened.
    let mut report_file = match &args.report {
        Some(path) => Some(std::fs::File::create(path).map_err(|source| Error::Report {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    let ran = run_guest(tool, args, &cfg, ram, &read, &devices);
    let (format, outcome, linux_on_pvm) = match ran {
        Ok(r) => r,
        Err(e) => {
            // No report of a run that did not happen (this is still before the filter).
            if let Some(path) = &args.report {
                drop(report_file.take());
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    if args.json || args.report.is_some() {
        let json = report::json(format, args.mem, &outcome);
        if let (Some(file), Some(path)) = (report_file.as_mut(), &args.report) {
            use std::io::Write;
            file.write_all(format!("{json}\n").as_bytes())
                .map_err(|source| Error::Report {
                    path: path.clone(),
                    source,
                })?;
        }
        if args.json {
            conventions::outln!("{json}");
        }
    }
    Ok((outcome, linux_on_pvm))
}

type Devices<'a> = dyn Fn() -> Result<Vec<Box<dyn virtio::Device>>, Error> + 'a;
type Reader<'a> = dyn Fn(&'static str, &PathBuf) -> Result<Vec<u8>, Error> + 'a;

/// Reads the inputs, plans and runs the guest: the format's name for the report, the outcome,
/// and whether it was Linux on PVM (see [`PVM_HINT`]).
fn run_guest(
    tool: &str,
    args: &RunArgs,
    cfg: &vm::RunConfig,
    ram: u64,
    read: &Reader<'_>,
    devices: &Devices<'_>,
) -> Result<(&'static str, vm::Outcome, bool), Error> {
    let mut linux_on_pvm = false;
    let (format, outcome) = if let Some(kpath) = &args.kernel {
        let kernel = read("kernel", kpath)?;
        let initrd = match &args.rootfs {
            Some(dir) => {
                let built = if args.share_rootfs {
                    initramfs::build_shared(dir, &args.command)
                } else {
                    initramfs::build(dir, &args.command, args.mem)
                };
                Some(built.map_err(|e| {
                    Error::BadOption(format!("--rootfs: cannot build the initramfs: {}", e.0))
                })?)
            }
            None => args
                .initrd
                .as_ref()
                .map(|p| read("initrd", p))
                .transpose()?,
        };
        let plan = linux::plan(
            &kernel,
            initrd.as_ref().map(|i| i.len() as u64),
            args.append.as_deref(),
            args.mem,
            ram,
        )
        .map_err(|e| match e {
            PlanError::Image(why) => Error::BadImage {
                path: kpath.clone(),
                why,
            },
            PlanError::Option(why) => Error::BadOption(why),
        })?;
        // Said before the run, which otherwise stays silent for as long as it is let run.
        linux_on_pvm = plan.linux && kvm_is_pvm();
        if linux_on_pvm {
            let expect = match plan.kind {
                linux::KernelKind::BzImage => "a bzImage printed nothing in 45 s",
                _ => "a vmlinux prints its early console with earlyprintk=serial after 15 to 35 s, then stalls",
            };
            conventions::errln!("{tool}: note: {PVM_HINT} (here {expect})");
        }
        let boot = vm::Boot::Kernel {
            plan: &plan,
            cpus: args.cpus,
            kernel,
            initrd,
        };
        let outcome = vm::run(boot, cfg, devices()?).map_err(|e| match e {
            Error::BadImage { why, .. } => Error::BadImage {
                path: kpath.clone(),
                why,
            },
            e => e,
        })?;
        let format = match plan.kind {
            linux::KernelKind::BzImage => "kernel-bzimage",
            linux::KernelKind::Pvh => "kernel-pvh",
            linux::KernelKind::Elf => "kernel-elf",
        };
        (format, outcome)
    } else {
        let (path, bytes) = match &args.image {
            Some(path) => (path.clone(), read("image", path)?),
            None => (PathBuf::from("<built-in guest>"), EMBEDDED_GUEST.to_vec()),
        };
        let opts = Options {
            format: if args.image.is_none() {
                FormatArg::Long
            } else {
                args.format
            },
            mem: args.mem,
            load: args.load,
            host_ram: ram,
        };
        let plan = plan::plan(&opts, &bytes).map_err(|e| match e {
            PlanError::Image(why) => Error::BadImage {
                path: path.clone(),
                why,
            },
            PlanError::Option(why) => Error::BadOption(why),
        })?;
        let boot = vm::Boot::Image {
            plan: &plan,
            image: &bytes,
        };
        let outcome = vm::run(boot, cfg, devices()?).map_err(|e| match e {
            Error::BadImage { why, .. } => Error::BadImage { path, why },
            e => e,
        })?;
        (plan.format.name(), outcome)
    };
    Ok((format, outcome, linux_on_pvm))
}
