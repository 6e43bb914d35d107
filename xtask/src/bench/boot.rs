//! `cargo xtask bench`'s guest-boot group: Debian's cloud kernel to its /init and to power-off
//! under tinyvmm, QEMU `-M microvm` and QEMU `-M pc`, each with KVM, one after another in the
//! same level-1 guest of the hardware-KVM lane (this host's PVM cannot boot Linux), and the RSS
//! each VMM has beyond the guest RAM it touched. Level 1 times every boot by /proc/uptime and
//! reports through the lane's console protocol ([`crate::nested`]); this module plans the runs,
//! reads the reports and writes the section of BENCHMARKS.md.

use crate::cpio::Archive;
use crate::kernel::{self, Flavour};
use crate::nested::{self, Parser, Reported};
use crate::{rootfs, util, vmtest};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// What the guest's /init prints first; level 1 takes the time when the line arrives.
pub const INIT_MARK: &str = "@@BENCH-INIT";

/// What the guest's /init prints before it powers off, after a pause in which level 1 samples
/// the VMM's memory (a power-off right after the first mark ended the VMM before the sample).
pub const OFF_MARK: &str = "@@BENCH-OFF";

/// The guest's /init: the mark, a pause, the second mark, power-off.
const GUEST_INIT: &str = "#!/bin/sh\necho @@BENCH-INIT\nsleep 2\necho @@BENCH-OFF\npoweroff -f\n";

/// Guest memory of every boot (the mapping of at least this size is the guest RAM in smaps).
pub const GUEST_MIB: u64 = 256;

/// The command line QEMU boots with: tinyvmm's default plus `quiet` (what tinyvmm boots with).
pub const QEMU_APPEND: &str = "console=ttyS0 reboot=k,panic_warm panic=-1 quiet";

/// The VMMs compared: the report's name, the process name level 1 samples, the command.
pub const VMMS: [(&str, &str, &str); 3] = [
    (
        "tinyvmm",
        "tinyvmm",
        "/lane/bin/tinyvmm run --mem 256M --kernel $K --initrd $I --append quiet",
    ),
    (
        "qemu -M microvm",
        "qemu-system-x86_64",
        "qemu-system-x86_64 -M microvm -accel kvm -cpu host -m 256M -smp 1 -nodefaults \
         -no-user-config -display none -serial stdio -monitor none -no-reboot \
         -kernel $K -initrd $I -append \"$APPEND\"",
    ),
    (
        "qemu -M pc",
        "qemu-system-x86_64",
        "qemu-system-x86_64 -M pc -accel kvm -cpu host -m 256M -smp 1 -nodefaults \
         -no-user-config -display none -serial stdio -monitor none -no-reboot \
         -kernel $K -initrd $I -append \"$APPEND\"",
    ),
];

/// One boot as level 1 reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Boot {
    /// Which VMM ([`VMMS`]' first column).
    pub vmm: String,
    /// Seconds from the VMM's start to the /init mark.
    pub init_s: Option<f64>,
    /// Seconds from the VMM's start to its exit, less the guest's pause between the marks.
    pub end_s: Option<f64>,
    /// The VMM's exit status.
    pub status: Option<i32>,
    /// The VMM's RSS when /init ran, KiB.
    pub rss_kib: Option<u64>,
    /// The guest RAM mapping's RSS then, KiB.
    pub guest_kib: Option<u64>,
}

impl Boot {
    /// RSS beyond the guest RAM touched, KiB.
    pub fn overhead_kib(&self) -> Option<u64> {
        Some(self.rss_kib?.saturating_sub(self.guest_kib?))
    }
}

/// Level 1's script for one boot of `vmm` (a [`VMMS`] row): the VMM's output is read line by
/// line; at the mark the time and the VMM's memory (VmRSS, and the RSS of its largest mapping of
/// at least the guest's size) are printed, at its exit the time and its status.
pub fn script(vmm: &(&str, &str, &str)) -> String {
    let (name, process, command) = vmm;
    format!(
        "# bench boot: {name}\n. /lane/env\n\
         K=/lane/kernels/cloud/vmlinuz\nI=/lane/initrd/bench.cpio\nAPPEND='{QEMU_APPEND}'\n\
         read -r t0 _ </proc/uptime\n\
         ({command} 2>&1; echo \"@@BENCH-RC $?\") | while IFS= read -r line; do\n\
         \x20   case \"$line\" in\n\
         \x20   *{INIT_MARK}*)\n\
         \x20       read -r t _ </proc/uptime\n\
         \x20       echo \"bench.init $t0 $t\"\n\
         \x20       pid=$(pidof {process} | cut -d' ' -f1)\n\
         \x20       echo \"bench.rss $(awk '/^VmRSS:/ {{print $2}}' /proc/$pid/status)\"\n\
         \x20       echo \"bench.guest $(awk '/^Size:/ {{s = $2}} /^Rss:/ {{if (s >= {kib} && $2 > g) g = $2}} END {{print g + 0}}' /proc/$pid/smaps)\"\n\
         \x20       ;;\n\
         \x20   *{OFF_MARK}*)\n\
         \x20       read -r t _ </proc/uptime\n\
         \x20       echo \"bench.off $t0 $t\"\n\
         \x20       ;;\n\
         \x20   @@BENCH-RC*)\n\
         \x20       read -r t _ </proc/uptime\n\
         \x20       echo \"bench.end $t0 $t ${{line#@@BENCH-RC }}\"\n\
         \x20       ;;\n\
         \x20   esac\n\
         done\n",
        kib = GUEST_MIB * 1024,
    )
}

/// Reads one boot's report lines.
pub fn parse(vmm: &str, output: &[String]) -> Boot {
    let mut b = Boot {
        vmm: vmm.to_string(),
        init_s: None,
        end_s: None,
        status: None,
        rss_kib: None,
        guest_kib: None,
    };
    let span = |w: &[&str]| -> Option<f64> {
        let t0: f64 = w.first()?.parse().ok()?;
        let t: f64 = w.get(1)?.parse().ok()?;
        Some(t - t0)
    };
    let mut off = None;
    for line in output {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.split_first() {
            Some((&"bench.init", rest)) => b.init_s = span(rest),
            Some((&"bench.off", rest)) => off = span(rest),
            Some((&"bench.end", rest)) => {
                b.end_s = span(rest);
                b.status = rest.get(2).and_then(|s| s.parse().ok());
            }
            Some((&"bench.rss", [v])) => b.rss_kib = v.parse().ok(),
            Some((&"bench.guest", [v])) => b.guest_kib = v.parse().ok(),
            _ => {}
        }
    }
    // The pause between the marks is the guest's, not the boot's or the power-off's.
    if let (Some(end), Some(off), Some(init)) = (b.end_s, off, b.init_s) {
        b.end_s = Some(end - (off - init));
    }
    b
}

/// The runs in level-1 order: the VMMs taken in turn, `runs` rounds, so that a drift of the load
/// falls on all of them alike. Names are `NN-boot_V_R` (V the [`VMMS`] index).
pub fn plan(runs: usize) -> Vec<(String, usize)> {
    (0..runs)
        .flat_map(|r| (0..VMMS.len()).map(move |v| (r, v)))
        .enumerate()
        .map(|(n, (r, v))| (format!("{n:02}-boot_{v}_{r}"), v))
        .collect()
}

/// The median of `v` (the mean of the middle two for an even count), `None` when empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    (!v.is_empty()).then(|| {
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    })
}

/// One VMM's medians: (name, to /init s, to exit s, overhead KiB, runs that ended with 0).
pub type Summary = (String, Option<f64>, Option<f64>, Option<u64>, usize);

/// The medians per VMM.
pub fn summary(boots: &[Boot]) -> Vec<Summary> {
    VMMS.iter()
        .map(|(name, _, _)| {
            let mine: Vec<&Boot> = boots.iter().filter(|b| b.vmm == *name).collect();
            let ok: Vec<&&Boot> = mine.iter().filter(|b| b.status == Some(0)).collect();
            let init = median(ok.iter().filter_map(|b| b.init_s).collect());
            let end = median(ok.iter().filter_map(|b| b.end_s).collect());
            let over = median(
                ok.iter()
                    .filter_map(|b| b.overhead_kib())
                    .map(|k| k as f64)
                    .collect(),
            )
            .map(|k| k as u64);
            (name.to_string(), init, end, over, ok.len())
        })
        .collect()
}

/// The goals: tinyvmm's time to /init at most 0.7x microvm's, its overhead at most 5 MiB.
pub const INIT_RATIO_GOAL: f64 = 0.7;
/// tinyvmm's own memory goal, KiB.
pub const OVERHEAD_GOAL_KIB: u64 = 5 * 1024;

/// The BENCHMARKS.md section.
pub fn markdown(boots: &[Boot], runs: usize, why_not: Option<&str>) -> String {
    let mut s =
        match super::report::section_head("## Linux guest boots (nested lane, level 1)", why_not) {
            Ok(s) => s,
            Err(not) => return not,
        };
    let _ = writeln!(
        s,
        "Debian's cloud kernel (bzImage) with a busybox initramfs whose /init prints a line, \
         pauses 2 s (level 1 samples the VMM's memory then; the pause is not counted) and \
         powers off, 256 MiB, one vCPU, command line `{QEMU_APPEND}` for all three, booted \
         {runs} time(s) each in turn inside the level-1 guest of `cargo xtask nested` (QEMU TCG \
         with nested AMD-V; every guest exit is emulated, so all times are far above hardware's \
         and only the ratios carry over). Time by level 1's /proc/uptime (10 ms) from the VMM's \
         start to the /init line and to its exit; overhead = the VMM's VmRSS at /init minus the \
         RSS of its guest RAM mapping. Medians of the runs that ended with status 0.\n"
    );
    let _ = writeln!(
        s,
        "| VMM | to /init | to power-off | RSS beyond guest RAM | runs ok |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    let sum = summary(boots);
    let secs = |v: Option<f64>| v.map(|x| format!("{x:.2} s")).unwrap_or("-".into());
    for (name, init, end, over, ok) in &sum {
        let over = over
            .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
            .unwrap_or("-".into());
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {over} | {ok}/{runs} |",
            secs(*init),
            secs(*end)
        );
    }
    let init_of = |n: &str| sum.iter().find(|r| r.0 == n).and_then(|r| r.1);
    let ratio = match (init_of("tinyvmm"), init_of("qemu -M microvm")) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let over = sum.first().and_then(|r| r.3);
    let _ = writeln!(
        s,
        "\nGoals (issue #17): tinyvmm to /init at most {INIT_RATIO_GOAL}x QEMU microvm's: {}; \
         tinyvmm's overhead at most 5 MiB: {}.",
        ratio
            .map(|r| format!(
                "{r:.2}x, {}",
                if r <= INIT_RATIO_GOAL {
                    "met"
                } else {
                    "not met"
                }
            ))
            .unwrap_or("not measured".into()),
        over.map(|k| format!(
            "{:.1} MiB, {}",
            k as f64 / 1024.0,
            if k <= OVERHEAD_GOAL_KIB {
                "met"
            } else {
                "not met"
            }
        ))
        .unwrap_or("not measured".into())
    );
    s
}

/// The files QEMU needs in level 1 besides its libraries: the firmware `-M pc` and `-M microvm`
/// load and the option ROMs for `-kernel`, at their host paths.
const QEMU_DATA: &[&str] = &[
    "/usr/share/seabios/bios-256k.bin",
    "/usr/share/qemu/qboot.rom",
    "/usr/share/qemu/bios-microvm.bin",
    "/usr/share/qemu/linuxboot_dma.bin",
    "/usr/share/qemu/kvmvapic.bin",
];

/// The start of a benchmark's level 1: the lane's runner and env, level 1's modules, tinyvmm,
/// QEMU with its libraries and firmware, and the cloud kernel at /lane/kernels/cloud/vmlinuz.
pub fn level1_with_vmms(bin_dir: &Path) -> Result<Archive, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
    let kernel = kernel::ensure_flavour(Flavour::Cloud)?;
    let qemu = conventions::exec::find_in_path("qemu-system-x86_64")
        .ok_or("qemu-system-x86_64 is not installed (cargo xtask deps)")?;
    let mut a = nested::level1_base()?;
    for (name, data) in nested::kvm_modules()? {
        a.file(&format!("/lane/modules/{name}"), 0o644, data);
    }
    a.file(
        "/lane/bin/tinyvmm",
        0o755,
        vmtest::stripped(&bin_dir.join("tinyvmm"))?,
    );
    add_with_libraries(&mut a, &qemu)?;
    for f in QEMU_DATA {
        if Path::new(f).exists() {
            a.file(f, 0o644, read(Path::new(f))?);
        }
    }
    a.file("/lane/kernels/cloud/vmlinuz", 0o644, read(&kernel)?);
    Ok(a)
}

/// The one copy lives in vmtest, which the nested lane shares without importing bench.
pub use crate::vmtest::add_with_libraries;

/// Level 1's initramfs for a bench group but for its scripts: [`level1_with_vmms`], the
/// group's own files (`add`, given the busybox rootfs), then the rootfs as level 1's own tree.
pub fn level1_group(
    bin_dir: &Path,
    add: impl FnOnce(&mut Archive, &Path) -> Result<(), String>,
) -> Result<Archive, String> {
    let root = rootfs::default_dir();
    rootfs::ensure(&root)?;
    let mut a = level1_with_vmms(bin_dir)?;
    add(&mut a, &root)?;
    vmtest::add_tree(&mut a, &root, "").map_err(|e| format!("adding {}: {e}", root.display()))?;
    Ok(a)
}

/// A level-2 guest's initramfs: the busybox rootfs `root` with `init` as /init.
pub fn guest_initramfs(root: &Path, init: &str) -> Result<Archive, String> {
    let mut guest = Archive::new();
    guest.chardev("/dev/console", 0o600, 5, 1);
    guest.file("/init", 0o755, init.as_bytes().to_vec());
    vmtest::add_tree(&mut guest, root, "")
        .map_err(|e| format!("adding {}: {e}", root.display()))?;
    Ok(guest)
}

/// Level 1's initramfs but for the scripts: [`level1_with_vmms`] and the guest image.
fn level1_initramfs(bin_dir: &Path) -> Result<Archive, String> {
    level1_group(bin_dir, |a, root| {
        a.file(
            "/lane/initrd/bench.cpio",
            0o644,
            guest_initramfs(root, GUEST_INIT)?.to_bytes(),
        );
        Ok(())
    })
}

/// Boots level 1 once and runs every boot `runs` times; the boots in the order they ran.
pub fn run(bin_dir: &Path, runs: usize, verbose: bool) -> Result<Vec<Boot>, String> {
    let a = level1_initramfs(bin_dir)?;
    let scripts: Vec<(String, String)> = plan(runs)
        .into_iter()
        .map(|(name, v)| (name, script(&VMMS[v])))
        .collect();
    eprintln!("xtask bench: booting level 1 for {runs} round(s) of Linux boots");
    let reported = run_scripts(
        &a,
        &scripts,
        |_| BOOT_SCRIPT_SECS,
        "boot",
        nested::LEVEL1_MEM_MIB,
        verbose,
    )?;
    Ok(reported
        .iter()
        .filter_map(|r| {
            let v: usize = r
                .name
                .strip_prefix("boot_")?
                .split('_')
                .next()?
                .parse()
                .ok()?;
            Some(parse(VMMS.get(v)?.0, &r.output))
        })
        .collect())
}

/// Level 1's own start under TCG before its first script: QEMU, the kernel, unpacking the
/// initramfs (~150 MiB with QEMU, the cloud kernel and the guest images), the kvm modules.
const LEVEL1_START_SECS: u64 = 180;

/// What one boot script may take in level 1: a Linux boot under nested KVM took 10-30 s.
const BOOT_SCRIPT_SECS: u64 = 90;

/// A console silent this long means level 1 is stuck: its init.sh prints a heartbeat every 20 s
/// (the nested lane's own guard).
const LEVEL1_IDLE: Duration = Duration::from_secs(180);

/// The wall-clock limit of a level 1 whose scripts are allowed `scripts_secs` together: level
/// 1's start and that, so that more rounds get more time (a fixed 600 s ended the device group's
/// 3 rounds in their first network script).
pub fn level1_limit(scripts_secs: u64) -> Duration {
    Duration::from_secs(LEVEL1_START_SECS + scripts_secs)
}

/// Boots level 1 with `base` and the `scripts` ((file name `NN-NAME`, text) in /lane/serial),
/// each allowed `allowance(name)` seconds, in a level 1 of `mem_mib`, and returns what each
/// reported. A level 1 that stops
/// before the end (its console silent: a nested level 1 here sometimes stalls under load, as the
/// lane's own guard knows) is booted again for the scripts not reported yet; the one that was
/// running when it stopped is tried once more, then left out (said on stderr), so that one stall
/// costs one script's data, not the rest of the group.
pub fn run_scripts(
    base: &Archive,
    scripts: &[(String, String)],
    allowance: impl Fn(&str) -> u64,
    what: &str,
    mem_mib: u64,
    verbose: bool,
) -> Result<Vec<Reported>, String> {
    let mut reported: Vec<Reported> = Vec::new();
    let mut left: Vec<&(String, String)> = scripts.iter().collect();
    let mut stalled: Vec<String> = Vec::new();
    for boot in 1..=MAX_LEVEL1_BOOTS {
        if left.is_empty() {
            break;
        }
        let mut a = base.clone();
        for (name, text) in &left {
            a.file(&format!("/lane/serial/{name}.sh"), 0o755, text.as_bytes());
        }
        let limit = level1_limit(left.iter().map(|(n, _)| allowance(n)).sum());
        if boot > 1 {
            eprintln!(
                "xtask bench: booting level 1 again for {} script(s)",
                left.len()
            );
        }
        let got = run_level1(&a, what, limit, mem_mib, verbose)?;
        let names: Vec<&str> = got.iter().map(|r| r.name.as_str()).collect();
        if let Some(out) = after_boot(&mut left, &names, &mut stalled) {
            eprintln!("xtask bench: {out} stopped level 1 twice; left out");
        }
        reported.extend(got);
    }
    if !left.is_empty() {
        eprintln!(
            "xtask bench: {} script(s) not run after {MAX_LEVEL1_BOOTS} level-1 boots",
            left.len()
        );
    }
    Ok(reported)
}

/// Level-1 boots one group may take (the first and the retries after stalls).
const MAX_LEVEL1_BOOTS: usize = 4;

/// What a level-1 boot leaves to do: `left` loses the scripts it reported (`got`); the first
/// one still left was running when level 1 stopped, and is noted in `stalled`, or, noted
/// already, taken out and returned.
fn after_boot<T>(
    left: &mut Vec<&(String, T)>,
    got: &[&str],
    stalled: &mut Vec<String>,
) -> Option<String> {
    left.retain(|(n, _)| !got.contains(&report_name(n)));
    let first = left.first()?.0.clone();
    if stalled.contains(&first) {
        left.remove(0);
        Some(first)
    } else {
        stalled.push(first);
        None
    }
}

/// The name a script reports under: its file name without the queue position `NN-`.
fn report_name(file: &str) -> &str {
    file.split_once('-').map_or(file, |(_, rest)| rest)
}

/// Boots level 1 once with the initramfs `a` (its scripts in /lane/serial) and returns what each
/// script reported; `what` names the temporary image. Level 1 is killed after `limit`, or when
/// its console is silent for [`LEVEL1_IDLE`]; `verbose` prints each script's output lines.
fn run_level1(
    a: &Archive,
    what: &str,
    limit: Duration,
    mem_mib: u64,
    verbose: bool,
) -> Result<Vec<Reported>, String> {
    let kernel = kernel::ensure_flavour(Flavour::Cloud)?;
    let initrd = util::target_dir().join(format!("bench/{what}-l1-{}.cpio", std::process::id()));
    if let Some(dir) = initrd.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(&initrd, a.to_bytes())
        .map_err(|e| format!("writing {}: {e}", initrd.display()))?;
    let mut parser = Parser::default();
    let mut reported: Vec<Reported> = Vec::new();
    let started = std::time::Instant::now();
    eprintln!("xtask bench: level 1 may run for {} s", limit.as_secs());
    let collected = vmtest::collect_watched(
        &mut nested::level1_qemu_with(&kernel, &initrd, false, mem_mib),
        limit,
        Some(LEVEL1_IDLE),
        &mut |line| {
            if let Some(r) = parser.feed(line) {
                eprintln!(
                    "xtask bench: {} done ({:?}, {} in level 1, {:.0} s since level 1 started)",
                    r.name,
                    r.status,
                    r.took.as_deref().unwrap_or("?"),
                    started.elapsed().as_secs_f64()
                );
                if verbose {
                    for l in &r.output {
                        eprintln!("    {}: {l}", r.name);
                    }
                }
                reported.push(r);
            }
        },
    );
    let _ = std::fs::remove_file(&initrd);
    let (_, finished) = collected?;
    if let Some(why) = parser.level1.setup_failed {
        return Err(format!("level 1 has no KVM: {why}"));
    }
    if !finished {
        eprintln!(
            "xtask bench: level 1 did not finish; {} script(s) reported",
            reported.len()
        );
    }
    Ok(reported)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_stalled_script_is_tried_twice_then_left_out() {
        let scripts: Vec<(String, ())> = ["00-disk_0_0", "01-net_0_0", "02-disk_1_0"]
            .iter()
            .map(|n| (n.to_string(), ()))
            .collect();
        let mut left: Vec<&(String, ())> = scripts.iter().collect();
        let mut stalled = Vec::new();
        let names = |l: &[&(String, ())]| l.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        // The first boot reports disk_0_0 and stops in net_0_0.
        assert_eq!(after_boot(&mut left, &["disk_0_0"], &mut stalled), None);
        assert_eq!(names(&left), ["01-net_0_0", "02-disk_1_0"]);
        // The second stops in it again: it is left out, the rest runs.
        assert_eq!(
            after_boot(&mut left, &[], &mut stalled).as_deref(),
            Some("01-net_0_0")
        );
        assert_eq!(names(&left), ["02-disk_1_0"]);
        // A boot that reports all leaves nothing.
        assert_eq!(after_boot(&mut left, &["disk_1_0"], &mut stalled), None);
        assert!(left.is_empty());
        assert_eq!(report_name("07-net_1_1"), "net_1_1");
    }

    #[test]
    fn reports_parse_and_sum_up() {
        let b = parse(
            "tinyvmm",
            &s(&[
                "noise",
                "bench.init 10.00 12.50",
                "bench.rss 9000",
                "bench.guest 6000",
                "bench.off 10.00 14.50",
                "bench.end 10.00 15.25 0",
            ]),
        );
        assert_eq!(b.init_s, Some(2.5));
        assert_eq!(b.end_s, Some(3.25));
        assert_eq!(b.status, Some(0));
        assert_eq!(b.overhead_kib(), Some(3000));
        let bad = parse("tinyvmm", &s(&["bench.end 1 2 124"]));
        assert_eq!((bad.status, bad.init_s), (Some(124), None));
        let mut micro = b.clone();
        micro.vmm = "qemu -M microvm".into();
        micro.init_s = Some(5.0);
        let sum = summary(&[b.clone(), bad, micro]);
        assert_eq!(
            sum[0],
            ("tinyvmm".into(), Some(2.5), Some(3.25), Some(3000), 1)
        );
        assert_eq!(sum[1].1, Some(5.0));
        assert_eq!(sum[2].4, 0);
        let md = markdown(std::slice::from_ref(&b), 1, None);
        assert!(
            md.contains("| tinyvmm | 2.50 s | 3.25 s | 2.9 MiB | 1/1 |"),
            "{md}"
        );
        assert!(
            md.contains("tinyvmm's overhead at most 5 MiB: 2.9 MiB, met"),
            "{md}"
        );
        let md = markdown(
            &[sum_one("tinyvmm", 2.0), sum_one("qemu -M microvm", 2.5)],
            1,
            None,
        );
        assert!(md.contains("0.80x, not met"), "{md}");
        assert!(markdown(&[], 1, Some("no qemu")).contains("Not measured: no qemu."));
    }

    fn sum_one(vmm: &str, init: f64) -> Boot {
        Boot {
            vmm: vmm.into(),
            init_s: Some(init),
            end_s: Some(init + 1.0),
            status: Some(0),
            rss_kib: Some(100),
            guest_kib: Some(50),
        }
    }

    #[test]
    fn the_plan_takes_the_vmms_in_turn_and_scripts_report_all() {
        let p = plan(2);
        let v: Vec<usize> = p.iter().map(|x| x.1).collect();
        assert_eq!(v, [0, 1, 2, 0, 1, 2]);
        assert_eq!(p[4].0, "04-boot_1_1");
        for vmm in &VMMS {
            let sc = script(vmm);
            for want in [
                "bench.init",
                "bench.rss",
                "bench.guest",
                "bench.off",
                "bench.end",
                INIT_MARK,
                OFF_MARK,
            ] {
                assert!(sc.contains(want), "{want}: {sc}");
            }
            assert!(sc.contains(vmm.2));
            assert!(sc.contains("s >= 262144"));
        }
        assert!(GUEST_INIT.contains(INIT_MARK) && GUEST_INIT.contains(OFF_MARK));
    }
}
