//! `cargo xtask bench`: each tool against its peer on this machine, in the same run, with
//! hyperfine (warm-up, many runs, median and spread); peak RSS from wait4 and binary sizes; writes
//! BENCHMARKS.md and an SVG chart of start latency per approach (process, container, VM).

pub mod boot;
pub mod chart;
pub mod devices;
pub mod engines;
pub mod guest;
pub mod net;
pub mod oci;
pub mod oneshot;
pub mod report;
pub mod sandbox;
pub mod scale;
pub mod vmscale;

use crate::{deps, measure, rootfs, util};
use report::{CaseResult, Goal, GroupResult};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One command to time.
#[derive(Debug, Clone)]
pub struct Case {
    /// Short name in tables and the chart.
    pub label: String,
    /// The program and its arguments (run without a shell).
    pub argv: Vec<String>,
    /// The exit status a correct run has.
    pub expect: i32,
    /// "process", "container" or "vm" when the case belongs on the chart.
    pub approach: Option<&'static str>,
}

/// bwrap as the container peer (here and in the scale section): every namespace, ROOTFS as /,
/// a new /proc and /dev, then `prog`.
pub fn bwrap_container(rootfs: &str, prog: &[&str]) -> Vec<String> {
    let head = ["/usr/bin/bwrap", "--unshare-all", "--bind", rootfs, "/"];
    let tail = ["--proc", "/proc", "--dev", "/dev"];
    head.iter()
        .chain(&tail)
        .chain(prog)
        .map(|s| s.to_string())
        .collect()
}

impl Case {
    fn new(label: &str, argv: &[&str]) -> Case {
        Case {
            label: label.to_string(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            expect: 0,
            approach: None,
        }
    }

    fn on_chart(mut self, approach: &'static str) -> Case {
        self.approach = Some(approach);
        self
    }

    /// The command as hyperfine and a reader take it: words, single-quoted where needed.
    pub fn command_line(&self) -> String {
        self.argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Quotes a word for a POSIX shell (and for hyperfine's word splitting) only when needed.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Ours against peers, timed in one hyperfine invocation.
#[derive(Debug, Clone)]
pub struct Group {
    /// Heading.
    pub title: String,
    /// Which tool issue the goal comes from.
    pub tool: &'static str,
    /// Our command.
    pub ours: Case,
    /// The peers, each with the goal for ours against it.
    pub peers: Vec<(Case, Goal)>,
    /// The first command is a reference point, not one of ours.
    pub reference: bool,
    /// Seconds per run: a few runs only.
    pub slow: bool,
    /// A command hyperfine runs before each timed run (`--prepare`), not timed: e.g. a pause
    /// that lets the host go quiet between containers.
    pub prepare: Option<&'static str>,
}

#[derive(Debug)]
struct Options {
    quick: bool,
    out: PathBuf,
    /// Skip the Linux guest boots (a level-1 guest of the nested lane, minutes).
    no_boot: bool,
    /// Only the Linux guest boots: print their section, write nothing.
    boot_only: bool,
    /// Only the VM devices and VM networking: print their section, write nothing.
    devices_only: bool,
    /// Only the one-shot root both ways ([`oneshot`]): its section replaces BENCHMARKS.md's.
    oneshot_only: bool,
    /// Only Linux guests at scale ([`vmscale`]): its section replaces BENCHMARKS.md's.
    vmscale_only: bool,
    /// Rounds of the boot and device groups (`--rounds N`; default 3, 1 with `--quick`).
    rounds: Option<usize>,
    /// Print each level-1 script's output as its report arrives (`-v`).
    verbose: bool,
    /// Only the groups of this tool (`--only ocirun`), e.g. with `--out` to a scratch dir.
    only: Option<String>,
    /// Only the scale section ([`scale`]), N up to `scale_max`.
    scale: bool,
    scale_max: usize,
}

impl Options {
    /// Rounds of the level-1 groups (boots, devices).
    fn rounds(&self) -> usize {
        self.rounds.unwrap_or(if self.quick { 1 } else { 3 })
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        out: util::root(),
        no_boot: false,
        boot_only: false,
        devices_only: false,
        oneshot_only: false,
        vmscale_only: false,
        rounds: None,
        verbose: false,
        only: None,
        scale: false,
        scale_max: 1000,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--no-boot" => o.no_boot = true,
            "--boot-only" => o.boot_only = true,
            "--devices-only" => o.devices_only = true,
            "--oneshot-only" => o.oneshot_only = true,
            "--vmscale-only" => o.vmscale_only = true,
            "--rounds" => {
                let v = it.next().ok_or("--rounds needs a number")?;
                o.rounds = Some(
                    v.parse()
                        .ok()
                        .filter(|&n: &usize| (1..=20).contains(&n))
                        .ok_or(format!("bench: --rounds: '{v}' is not a number from 1 to 20"))?,
                );
            }
            "-v" | "--verbose" => o.verbose = true,
            "--out" => o.out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            "--only" => o.only = Some(it.next().ok_or("--only needs a tool name")?.clone()),
            "--scale" => o.scale = true,
            "--scale-max" => {
                let v = it.next().ok_or("--scale-max needs a number of instances")?;
                o.scale_max = v
                    .parse()
                    .ok()
                    .filter(|&n: &usize| (1..=1000).contains(&n))
                    .ok_or(format!("bench: --scale-max: '{v}' is not a number from 1 to 1000"))?;
                o.scale = true;
            }
            other => {
                return Err(format!(
                    "bench: unexpected argument '{other}' (usage: cargo xtask bench [--quick] [--no-boot | --boot-only | --devices-only] [--rounds N] [-v] [--out DIR] [--only TOOL] | --scale [--scale-max N] [--out DIR])"
                ))
            }
        }
    }
    Ok(o)
}

/// A process that holds namespaces for nsenter to enter: util-linux unshare with every kind,
/// killed (with its child) by PID when dropped.
struct Holder {
    launcher: Child,
    target: i32,
}

impl Holder {
    fn start() -> Result<Holder, String> {
        let mut launcher = Command::new("/usr/bin/unshare")
            .args([
                "-fpmuinC",
                "--kill-child",
                "--mount-proc",
                "/bin/sleep",
                "3600",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run /usr/bin/unshare: {e}"))?;
        let pid = launcher.id();
        let children = format!("/proc/{pid}/task/{pid}/children");
        for _ in 0..200 {
            let target = std::fs::read_to_string(&children)
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()));
            if let Some(target) = target {
                return Ok(Holder { launcher, target });
            }
            if let Ok(Some(status)) = launcher.try_wait() {
                return Err(format!("the namespace holder exited early with {status}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = launcher.kill();
        let _ = launcher.wait();
        Err("the namespace holder started no child within 2 s".to_string())
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: kill by a PID this bench started; the launcher is not reaped yet, and the
        // target dies with it (--kill-child), so it cannot have been reused either.
        unsafe { libc::kill(self.target, libc::SIGKILL) };
        let _ = self.launcher.kill();
        let _ = self.launcher.wait();
    }
}

/// `OURS_TOOL [LEAD] ARGS true` against util-linux's `/usr/bin/TOOL [LEAD] ARGS true`, with the
/// issues' goal of a ratio at or below 0.8. LEAD is shown as `-t PID` in titles.
fn against_util_linux(
    tool: &str,
    ours_tool: &'static str,
    ours: &str,
    lead: &[&str],
    args: &[&str],
) -> Group {
    let argv = |program: String| {
        let mut v = vec![program];
        v.extend(lead.iter().chain(args).map(|s| s.to_string()));
        v.push("true".into());
        v
    };
    let shown_lead = if lead.is_empty() {
        vec![]
    } else {
        vec!["-t", "PID"]
    };
    let shown = shown_lead
        .iter()
        .chain(args)
        .chain(&["true"])
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    Group {
        title: format!("{tool} {shown}"),
        tool: ours_tool,
        reference: false,
        slow: false,
        prepare: None,
        ours: Case {
            label: format!("{ours_tool} {shown}"),
            argv: argv(ours.to_string()),
            expect: 0,
            approach: None,
        },
        peers: vec![(
            Case {
                label: format!("util-linux {tool} {shown}"),
                argv: argv(format!("/usr/bin/{tool}")),
                expect: 0,
                approach: None,
            },
            Goal::Ratio(0.8),
        )],
    }
}

/// The benchmark plan: every comparison the tool issues name.
fn plan(
    bin: &Path,
    rootfs: &Path,
    target: Option<i32>,
    guest: Option<&Path>,
    linux: Option<&LinuxBoot>,
    oci_bundle: Option<(&Path, &Path)>,
    engines: Option<&engines::Lane>,
) -> Vec<Group> {
    let ours = |name: &str| bin.join(name).display().to_string();
    let rootfs = rootfs.display().to_string();
    let mut groups = vec![net::wiring_group(&ours)];
    for args in [
        &[][..],
        &["-r"][..],
        &["-fp", "--mount-proc"][..],
        &["-n"][..],
        &["-mipunfC"][..],
    ] {
        groups.push(against_util_linux(
            "unshare",
            "unshare-rs",
            &ours("unshare-rs"),
            &[],
            args,
        ));
    }
    if let Some(t) = target {
        let t = t.to_string();
        for args in [&["-a"][..], &["-n"][..], &["-p", "-F"][..]] {
            groups.push(against_util_linux(
                "nsenter",
                "nsenter-rs",
                &ours("nsenter-rs"),
                &["-t", &t],
                args,
            ));
        }
    }
    let true_case = Case::new("/bin/true", &["/bin/true"]).on_chart("process");
    let container = Case::new(
        "unshare-rs -mpuinCf -- pivot ROOTFS /bin/true",
        &[
            &ours("unshare-rs"),
            "-mpuinCf",
            "--",
            &ours("pivot"),
            &rootfs,
            "/bin/true",
        ],
    )
    .on_chart("container");
    groups.push(Group {
        title: "a container: namespaces + own root filesystem".into(),
        tool: "pivot",
        reference: false,
        slow: false,
        prepare: None,
        ours: container,
        peers: vec![(
            Case {
                label: "bwrap --unshare-all --bind ROOTFS / --proc /proc --dev /dev /bin/true"
                    .into(),
                argv: bwrap_container(&rootfs, &["/bin/true"]),
                expect: 0,
                approach: None,
            }
            .on_chart("container"),
            Goal::Ratio(1.0),
        )],
    });
    // libcgroup needs four programs; one sh runs them with a name unique to this bench and run,
    // and deletes the group whatever happened.
    // The memory limit's file is named after the hierarchy that holds the controller.
    let v1_memory = crate::demo::cgroup_mounts()
        .iter()
        .any(|(_, t, o)| t == "cgroup" && o.split(',').any(|x| x == "memory"));
    let mem_key = if v1_memory {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    let seq = format!(
        "g=mtbench-{}-$$; cgcreate -g memory,pids:$g && cgset -r {mem_key}=64M -r pids.max=64 $g && cgexec -g memory,pids:$g /bin/true; s=$?; cgdelete -g memory,pids:$g; exit $s",
        std::process::id()
    );
    groups.push(Group {
        title: "a command under cgroup limits".into(),
        tool: "cgctl",
        reference: false,
        slow: false,
        prepare: None,
        ours: Case::new(
            "cgctl run --pids 64 --memory 64M -- /bin/true",
            &[
                &ours("cgctl"),
                "run",
                "--pids",
                "64",
                "--memory",
                "64M",
                "--",
                "/bin/true",
            ],
        )
        .on_chart("process"),
        peers: vec![
            (
                Case::new(
                    "libcgroup: sh -c 'cgcreate; cgset; cgexec /bin/true; cgdelete'",
                    &["/bin/sh", "-c", &seq],
                ),
                Goal::Ratio(0.2),
            ),
            (true_case.clone(), Goal::OverheadMs(0.3)),
        ],
    });
    groups.push(Group {
        title: "the whole container: cgroup limits + namespaces + own root filesystem".into(),
        tool: "composition",
        reference: false,
        slow: false,
        prepare: None,
        ours: Case::new(
            "cgctl run --pids 64 --memory 64M -- unshare-rs -mpuinCf -- pivot ROOTFS /bin/true",
            &[
                &ours("cgctl"),
                "run",
                "--pids",
                "64",
                "--memory",
                "64M",
                "--",
                &ours("unshare-rs"),
                "-mpuinCf",
                "--",
                &ours("pivot"),
                &rootfs,
                "/bin/true",
            ],
        )
        .on_chart("container"),
        peers: vec![(true_case.clone(), Goal::None)],
    });
    if let Some(g) = guest {
        let elf = g.display().to_string();
        let mut qemu = Case {
            label: "qemu-system-x86_64 -M microvm (same PVH guest, KVM)".into(),
            argv: guest::qemu_argv(g, "16M"),
            expect: guest::QEMU_STATUS,
            approach: Some("vm"),
        };
        qemu.argv[0] = "/usr/bin/qemu-system-x86_64".into();
        groups.push(Group {
            title: "a VM: a tiny guest, start to exit".into(),
            tool: "tinyvmm",
            reference: false,
            slow: false,
            prepare: None,
            ours: Case::new(
                "tinyvmm run --mem 16M pvh-exit.elf",
                &[&ours("tinyvmm"), "run", "--mem", "16M", &elf],
            )
            .on_chart("vm"),
            peers: vec![
                (qemu, Goal::Ratio(0.05)),
                (true_case, Goal::OverheadMs(1.0)),
            ],
        });
    }
    if let Some((work, bundle)) = oci_bundle {
        groups.push(oci::group(&bin.join("ocirun"), work, bundle));
        groups.push(oci::spaced_group(&bin.join("ocirun"), work, bundle));
    }
    if let Some(l) = linux {
        let mut argv = vec![l.qemu_cmd.get_program().to_string_lossy().into_owned()];
        argv.extend(
            l.qemu_cmd
                .get_args()
                .map(|a| a.to_string_lossy().into_owned()),
        );
        groups.push(Group {
            title: "a VM booting a Linux kernel to its init and powering off".into(),
            tool: "reference",
            ours: Case {
                label: "qemu-system-x86_64 -accel tcg -M pc: Linux to init, power-off".into(),
                argv,
                expect: 0,
                approach: Some("vm"),
            },
            peers: Vec::new(),
            reference: true,
            slow: true,
            prepare: None,
        });
    }
    if let Some(lane) = engines {
        groups.extend(engines::groups(lane, &bin.join("ocirun")));
    }
    groups
}

/// A Linux boot for the reference group: QEMU with the CPU emulated in software (KVM on hosts
/// like this one cannot run a stock kernel), the demo's busybox initramfs.
pub struct LinuxBoot {
    qemu_cmd: Command,
}

impl LinuxBoot {
    fn prepare(rootfs: &Path, work: &Path) -> Result<LinuxBoot, String> {
        let kernel = crate::kernel::image();
        if !kernel.is_file() {
            return Err(format!(
                "no guest kernel at {} (`cargo xtask kernel` fetches Debian's)",
                kernel.display()
            ));
        }
        let qemu = conventions::exec::find_in_path("qemu-system-x86_64")
            .ok_or("qemu-system-x86_64 is not installed")?;
        let initrd = work.join("linux-init.cpio");
        crate::demo::write_linux_initramfs(rootfs, &initrd)?;
        Ok(LinuxBoot {
            qemu_cmd: crate::demo::linux_qemu(&qemu, &kernel, &initrd),
        })
    }
}

/// Which build the run measures, as BENCHMARKS.md states it: the command that made it (with its
/// RUSTFLAGS), where it is and what unshare-rs's `--version` says (the commit).
fn measured_build(bin: &std::path::Path) -> String {
    let version = util::output(Command::new(bin.join("unshare-rs")).arg("--version"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let dir = bin.strip_prefix(util::root()).unwrap_or(bin);
    format!(
        "the shipped build, `{}` (static, not position independent), in `{}`; `{version}`",
        crate::release::shipped_build_command(&[]),
        dir.display()
    )
}

/// Runs the benchmarks and writes the report and chart.
pub fn run(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    if opts.scale {
        return scale::run(&scale::Options {
            max: opts.scale_max,
            out: opts.out.clone(),
        });
    }
    if util::output(Command::new("hyperfine").arg("--version")).is_err() {
        deps::run(&[])?;
    }
    let rootfs = rootfs::default_dir();
    rootfs::ensure(&rootfs)?;
    let bin = match &opts.only {
        // Only what the group runs (the other tools' shipped builds take minutes).
        Some(t) => {
            crate::release::build_release_of(&[t.as_str()])?;
            crate::release::release_dir()
        }
        None => {
            let bin = crate::release::build_release();
            if let Err(e) = crate::release::build_release_of(&["ocirun", "netwire"]) {
                eprintln!("xtask bench: ocirun or netwire does not build now: {e}");
            }
            bin
        }
    };
    if opts.boot_only {
        print!("{}", boot_section(&bin, &opts));
        return Ok(());
    }
    if opts.devices_only {
        return devices_alone(&bin, &opts);
    }
    if opts.oneshot_only {
        return oneshot_alone(&bin, &opts);
    }
    if opts.vmscale_only {
        let section = vmscale_section(&bin, &opts);
        let md_path = replace_section(
            &bin,
            &opts,
            vmscale::HEADING,
            "--vmscale-only",
            ".",
            &section,
        )?;
        eprintln!(
            "xtask bench: replaced the Linux-at-scale section of {}",
            md_path.display()
        );
        return Ok(());
    }
    let work = util::target_dir().join("bench");
    let guest = match guest::build(&work) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("xtask bench: no VM comparison: {e}");
            None
        }
    };
    let holder = match Holder::start() {
        Ok(h) => Some(h),
        Err(e) => {
            eprintln!("xtask bench: no nsenter comparison: {e}");
            None
        }
    };
    let linux = match LinuxBoot::prepare(&rootfs, &work) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("xtask bench: no Linux boot reference: {e}");
            None
        }
    };
    let sandbox = sandbox::prepare(&work)
        .map_err(|e| eprintln!("xtask bench: no seccomp comparison: {e}"))
        .ok();
    let oci_bundle = match oci::bundle(&bin.join("ocirun"), &work, &rootfs) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("xtask bench: no OCI runtime comparison: {e}");
            None
        }
    };
    let engines = crate::release::build_release_of(&["ocirun"])
        .and_then(|()| engines::Lane::start())
        .map_err(|e| eprintln!("xtask bench: no engines comparison: {e}"))
        .ok();
    // What was just written (the release build, the guest, the initramfs) is flushed before
    // the timing starts, so that its writeback does not land in the first groups' runs.
    util::run(&mut Command::new("sync"))?;
    let mut groups = plan(
        &bin,
        &rootfs,
        holder.as_ref().map(|h| h.target),
        guest.as_deref(),
        linux.as_ref(),
        oci_bundle.as_deref().map(|b| (work.as_path(), b)),
        engines.as_ref(),
    );
    groups.extend(sandbox::groups(&bin, &rootfs, sandbox.as_ref()));
    if let Some(only) = &opts.only {
        groups.retain(|g| g.tool == only.as_str());
        if groups.is_empty() {
            return Err(format!("bench: no group of tool '{only}'"));
        }
    }
    // After the build: what other work there is, not ours.
    let load_start = report::load_average();
    let total = groups.len();
    let mut results = Vec::new();
    let mut cgroup2_hidden = false;
    for (i, g) in groups.iter().enumerate() {
        eprintln!("\nxtask bench [{}/{total}] {}", i + 1, g.title);
        if g.tool == "ocirun" && !cgroup2_hidden {
            // For crun; the groups after this one run without the cgroup2 mount too.
            if let Err(e) = oci::hide_cgroup2() {
                eprintln!("xtask bench: the OCI runtimes see the cgroup2 mount: {e}");
            }
            cgroup2_hidden = true;
        }
        results.push(run_group(g, &work, opts.quick));
        cleanup_libcgroup_groups();
        if g.tool == "ocirun" {
            oci::cleanup(&work);
        }
    }
    drop(holder);
    // `--only TOOL` builds only that tool: the networking rows need netwire's build.
    let net_rows = if opts.only.as_deref().is_some_and(|t| t != "netwire") {
        Vec::new()
    } else {
        eprintln!("\nxtask bench: networking (ping, iperf3) in a sandbox of new namespaces");
        net::measure(&bin, &work, opts.quick).unwrap_or_else(|e| {
            eprintln!("xtask bench: networking not measured: {e}");
            Vec::new()
        })
    };
    for r in &net_rows {
        eprintln!(
            "xtask bench: {}: rtt {:?} ms, tcp {:?} Gbit/s",
            r.path, r.rtt_ms, r.gbit_s
        );
    }
    drop(engines);
    let split = guest
        .as_deref()
        .map(|g| tinyvmm_split(&bin.join("tinyvmm"), g))
        .unwrap_or_default();
    let sizes = binary_sizes(&bin);
    let mut machine = report::Machine::here();
    machine.build = measured_build(&bin);
    machine.load.0 = load_start;
    let mut md = report::markdown(&machine, &results, &split, &sizes, opts.quick)
        + &net::markdown(&net_rows);
    md.push_str(&boot_section(&bin, &opts));
    let (devices_md, net_bars) = devices_section(&bin, &opts);
    md.push_str(&devices_md);
    md.push_str(&oneshot_section(&bin, &opts));
    md.push_str(&vmscale_section(&bin, &opts));
    let docs = opts.out.join("docs");
    std::fs::create_dir_all(&docs).map_err(|e| format!("creating {}: {e}", docs.display()))?;
    let md_path = opts.out.join("BENCHMARKS.md");
    // `--scale` writes its own section; this run keeps it as it was.
    let md = scale::render::keep(&std::fs::read_to_string(&md_path).unwrap_or_default(), md);
    std::fs::write(&md_path, md).map_err(|e| format!("writing {}: {e}", md_path.display()))?;
    let svg = docs.join("bench.svg");
    chart::write(
        &svg,
        &format!(
            "Start to exit on this machine ({}, {})",
            machine.kernel, machine.date
        ),
        chart::START_MS,
        &report::chart_bars(&results),
    )?;
    let net_svg = write_net_chart(&docs, &net_bars)?;
    eprintln!(
        "\nxtask bench: wrote {}, {}{}",
        md_path.display(),
        svg.display(),
        if net_bars.is_empty() {
            String::new()
        } else {
            format!(" and {}", net_svg.display())
        }
    );
    let missing: Vec<String> = results
        .iter()
        .flat_map(|g| g.cases.iter())
        .filter_map(|c| {
            c.unavailable
                .as_ref()
                .map(|why| format!("{}: {why}", c.case.label))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "bench: {} command(s) could not be measured: {}",
            missing.len(),
            missing.join("; ")
        ))
    }
}

/// The guest-boot group ([`boot`]), run last: it boots a level-1 guest under QEMU TCG for
/// minutes, which `--no-boot` skips.
fn boot_section(bin: &Path, opts: &Options) -> String {
    let runs = opts.rounds();
    if opts.no_boot {
        return boot::markdown(&[], runs, Some("skipped (--no-boot)"));
    }
    if opts.only.as_deref().is_some_and(|t| t != "tinyvmm") {
        return boot::markdown(&[], runs, Some("skipped (--only another tool)"));
    }
    match boot::run(bin, runs, opts.verbose) {
        Ok(boots) => boot::markdown(&boots, runs, None),
        Err(e) => {
            eprintln!("xtask bench: no Linux guest boots: {e}");
            boot::markdown(&[], runs, Some(&e))
        }
    }
}

/// The VM-device group ([`devices`]), after the boots and for the same reason skipped by
/// `--no-boot`: its section and the networking chart's bars (none when not measured).
/// docs/net.svg from the level-1 network paths, when any was measured.
fn write_net_chart(docs: &Path, bars: &[chart::Bar]) -> Result<PathBuf, String> {
    let svg = docs.join("net.svg");
    if !bars.is_empty() {
        chart::write(
            &svg,
            "TCP throughput per network path, all in level 1 of the nested lane",
            chart::MBIT_S,
            bars,
        )?;
    }
    Ok(svg)
}

/// `--devices-only`: the devices section measured alone replaces BENCHMARKS.md's, dated and
/// with its build, since the file's header names another run; docs/net.svg goes with it.
fn devices_alone(bin: &Path, opts: &Options) -> Result<(), String> {
    let (section, bars) = devices_section(bin, opts);
    let md_path = replace_section(
        bin,
        opts,
        devices::HEADING,
        "--devices-only",
        "; the other sections are from the run named at the top.",
        &section,
    )?;
    let docs = opts.out.join("docs");
    std::fs::create_dir_all(&docs).map_err(|e| format!("creating {}: {e}", docs.display()))?;
    let svg = write_net_chart(&docs, &bars)?;
    eprintln!(
        "xtask bench: replaced the devices section of {}{}",
        md_path.display(),
        if bars.is_empty() {
            String::new()
        } else {
            format!(" and wrote {}", svg.display())
        }
    );
    Ok(())
}

/// `--oneshot-only`: the one-shot root section measured alone replaces BENCHMARKS.md's, dated.
fn oneshot_alone(bin: &Path, opts: &Options) -> Result<(), String> {
    let section = oneshot_section(bin, opts);
    let md_path = replace_section(bin, opts, oneshot::HEADING, "--oneshot-only", ".", &section)?;
    eprintln!(
        "xtask bench: replaced the one-shot root section of {}",
        md_path.display()
    );
    Ok(())
}

/// Prints `section` (under `heading`), measured alone by `cargo xtask bench FLAG`, with a line
/// saying when and with which build (then `tail`), and puts it in place of BENCHMARKS.md's;
/// returns the file's path.
fn replace_section(
    bin: &Path,
    opts: &Options,
    heading: &str,
    flag: &str,
    tail: &str,
    section: &str,
) -> Result<PathBuf, String> {
    let machine = report::Machine::here();
    // Both sections measure tinyvmm: its build is the one to name.
    let version = util::output(Command::new(bin.join("tinyvmm")).arg("--version"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|e| format!("tinyvmm, version unknown ({e})"));
    let stamp = format!(
        "Measured alone by `cargo xtask bench {flag}`, ending {} (load average {}), `{version}`{tail}",
        machine.date, machine.load.1,
    );
    let section = section.replacen(
        &format!("{heading}\n\n"),
        &format!("{heading}\n\n{stamp}\n\n"),
        1,
    );
    print!("{section}");
    let md_path = opts.out.join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&md_path).unwrap_or_default();
    std::fs::write(&md_path, devices::splice_at(&old, heading, &section))
        .map_err(|e| format!("writing {}: {e}", md_path.display()))?;
    Ok(md_path)
}

fn vmscale_section(bin: &Path, opts: &Options) -> String {
    if opts.no_boot {
        return vmscale::markdown(&[], &[], Some("skipped (--no-boot)"));
    }
    if opts.only.as_deref().is_some_and(|t| t != "tinyvmm") {
        return vmscale::markdown(&[], &[], Some("skipped (--only another tool)"));
    }
    match vmscale::run(bin, opts.verbose) {
        Ok((r, h)) => vmscale::markdown(&r, &h, None),
        Err(e) => {
            eprintln!("xtask bench: no Linux-at-scale measurements: {e}");
            vmscale::markdown(&[], &[], Some(&e))
        }
    }
}

fn oneshot_section(bin: &Path, opts: &Options) -> String {
    let runs = opts.rounds();
    if opts.no_boot {
        return oneshot::markdown(&[], runs, Some("skipped (--no-boot)"));
    }
    if opts.only.as_deref().is_some_and(|t| t != "tinyvmm") {
        return oneshot::markdown(&[], runs, Some("skipped (--only another tool)"));
    }
    match oneshot::run(bin, runs, opts.verbose) {
        Ok(r) => oneshot::markdown(&r, runs, None),
        Err(e) => {
            eprintln!("xtask bench: no one-shot root measurements: {e}");
            oneshot::markdown(&[], runs, Some(&e))
        }
    }
}

fn devices_section(bin: &Path, opts: &Options) -> (String, Vec<chart::Bar>) {
    let runs = opts.rounds();
    let not = |why: &str| (devices::markdown(&[], runs, Some(why)), Vec::new());
    if opts.no_boot {
        return not("skipped (--no-boot)");
    }
    if opts.only.as_deref().is_some_and(|t| t != "tinyvmm") {
        return not("skipped (--only another tool)");
    }
    match devices::run(bin, runs, opts.verbose) {
        Ok(ms) => (devices::markdown(&ms, runs, None), devices::net_bars(&ms)),
        Err(e) => {
            eprintln!("xtask bench: no VM device measurements: {e}");
            not(&e)
        }
    }
}

/// Checks each case (and records its peak RSS) with a few bounded runs, then times the working
/// ones together in one hyperfine invocation.
fn run_group(g: &Group, work: &Path, quick: bool) -> GroupResult {
    let mut cases: Vec<CaseResult> = std::iter::once((&g.ours, Goal::None))
        .chain(g.peers.iter().map(|(c, goal)| (c, *goal)))
        .map(|(c, goal)| check(c, goal, if g.slow { 1 } else { 3 }))
        .collect();
    let ok: Vec<usize> = (0..cases.len())
        .filter(|&i| cases[i].unavailable.is_none())
        .collect();
    // Several hyperfine passes, alternating forward and reverse order, so that load from
    // elsewhere on this shared machine (it drifts over minutes) falls on both sides of a
    // comparison alike; the slow reference keeps two.
    let rev: Vec<usize> = ok.iter().rev().copied().collect();
    let passes: Vec<&Vec<usize>> = (0..if g.slow { 2 } else { PASSES })
        .map(|k| if k % 2 == 0 { &ok } else { &rev })
        .collect();
    for order in passes.into_iter().filter(|o| !o.is_empty()) {
        if let Err(e) = hyperfine_pass(&mut cases, order, work, quick, g.slow, g.prepare) {
            for &i in order {
                cases[i].unavailable = Some(e.clone());
                cases[i].times_ms.clear();
            }
            break;
        }
    }
    GroupResult {
        title: g.title.clone(),
        tool: g.tool,
        reference: g.reference,
        cases,
    }
}

/// One hyperfine invocation over `order`; appends each case's run times.
fn hyperfine_pass(
    cases: &mut [CaseResult],
    order: &[usize],
    work: &Path,
    quick: bool,
    slow: bool,
    prepare: Option<&str>,
) -> Result<(), String> {
    let json = work.join("hyperfine.json");
    let mut h = Command::new("hyperfine");
    h.args(["-N", "--style", "basic", "--export-json"])
        .arg(&json)
        .args(if slow {
            ["--warmup", "1", "--min-runs", "3", "--max-runs", "3"]
        } else {
            hyperfine_runs(quick)
        });
    if order.iter().any(|&i| cases[i].case.expect != 0) {
        h.arg("-i");
    }
    if let Some(p) = prepare {
        h.args(["--prepare", p]);
    }
    for &i in order {
        h.args(["-n", &cases[i].case.label, &cases[i].case.command_line()]);
    }
    let _ = std::fs::remove_file(&json);
    util::run(&mut h).map_err(|e| format!("hyperfine: {e}"))?;
    let text =
        std::fs::read_to_string(&json).map_err(|e| format!("reading {}: {e}", json.display()))?;
    let times = report::parse_hyperfine(&text);
    for (k, &i) in order.iter().enumerate() {
        match times.get(k) {
            Some(t) if !t.is_empty() => cases[i].times_ms.extend(t),
            _ => return Err("hyperfine gave no times".into()),
        }
    }
    Ok(())
}

/// hyperfine passes per group (alternating order; the slow reference has two).
pub const PASSES: usize = 4;

/// Warm-up and run counts of each pass.
pub fn hyperfine_runs(quick: bool) -> [&'static str; 6] {
    if quick {
        ["--warmup", "2", "--min-runs", "3", "--max-runs", "3"]
    } else {
        ["--warmup", "5", "--min-runs", "10", "--max-runs", "75"]
    }
}

/// `runs` bounded runs: the exit status must be the expected one; each is followed by one under
/// GNU time for the peak RSS, the largest of which is kept.
fn check(c: &Case, goal: Goal, runs: usize) -> CaseResult {
    let mut r = CaseResult {
        case: c.clone(),
        goal,
        unavailable: None,
        times_ms: Vec::new(),
        peak_rss_kib: 0,
    };
    for _ in 0..runs {
        let Some((prog, args)) = c.argv.split_first() else {
            r.unavailable = Some("empty command".into());
            return r;
        };
        match measure::run(Command::new(prog).args(args), Duration::from_secs(20)) {
            Ok(run) if run.code == Some(c.expect) && !run.timed_out => {
                let rss =
                    measure::peak_rss_kib(Command::new(prog).args(args), Duration::from_secs(20))
                        .unwrap_or(run.maxrss_kib);
                r.peak_rss_kib = r.peak_rss_kib.max(rss);
            }
            Ok(run) => {
                r.unavailable = Some(format!("exit {}: {}", run.status_text(), run.why()));
                eprintln!("  {}: unavailable: {}", c.label, run.why());
                return r;
            }
            Err(e) => {
                r.unavailable = Some(e);
                return r;
            }
        }
    }
    r
}

/// Removes cgroups the libcgroup sequence of this bench left (an interrupted run).
fn cleanup_libcgroup_groups() {
    let prefix = format!("mtbench-{}-", std::process::id());
    let mut names = Vec::new();
    for (mnt, _, _) in crate::demo::cgroup_mounts() {
        if let Ok(entries) = std::fs::read_dir(&mnt) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    for n in names {
        crate::demo::remove_group(&n);
    }
}

/// Medians of tinyvmm's own phase timings (`--report`) over 20 runs of the tiny guest.
fn tinyvmm_split(tinyvmm: &Path, guest: &Path) -> Vec<(String, f64)> {
    let report = std::env::temp_dir().join(format!("mt-bench-{}-vm.json", std::process::id()));
    let keys = ["create_us", "load_us", "run_us", "teardown_us"];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); keys.len()];
    for _ in 0..20 {
        let ok = measure::run(
            Command::new(tinyvmm)
                .args(["run", "--mem", "16M", "--report"])
                .arg(&report)
                .arg(guest),
            Duration::from_secs(10),
        )
        .map(|r| r.ok())
        .unwrap_or(false);
        if !ok {
            break;
        }
        let v: serde_json::Value = std::fs::read_to_string(&report)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        for (k, s) in keys.iter().zip(samples.iter_mut()) {
            if let Some(x) = v[*k].as_f64() {
                s.push(x);
            }
        }
    }
    let _ = std::fs::remove_file(&report);
    keys.iter()
        .zip(samples)
        .filter(|(_, s)| !s.is_empty())
        .map(|(k, s)| (k.to_string(), measure::stats(&s).0))
        .collect()
}

/// Sizes of our release binaries and of the peers' (which link libc dynamically).
fn binary_sizes(bin: &Path) -> Vec<(String, u64, String)> {
    let mut v = Vec::new();
    for t in crate::release::TOOLS {
        if let Ok(m) = std::fs::metadata(bin.join(t)) {
            v.push((
                t.to_string(),
                m.len(),
                "ours, release (LTO, stripped, static)".into(),
            ));
        }
    }
    for p in [
        "/usr/bin/unshare",
        "/usr/bin/nsenter",
        "/usr/bin/bwrap",
        "/usr/bin/cgcreate",
        "/usr/bin/cgexec",
        "/usr/bin/qemu-system-x86_64",
        "/bin/true",
    ] {
        if let Ok(m) = std::fs::metadata(p) {
            v.push((p.to_string(), m.len(), "peer, Debian".into()));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/bin/true"), "/bin/true");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn rounds_and_verbose_parse() {
        let a = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let o = parse(&a(&["--devices-only", "--rounds", "2", "-v"])).unwrap();
        assert!(o.devices_only && o.verbose);
        assert_eq!(o.rounds(), 2);
        assert_eq!(parse(&a(&["--quick"])).unwrap().rounds(), 1);
        assert_eq!(parse(&a(&[])).unwrap().rounds(), 3);
        assert_eq!(
            parse(&a(&["--quick", "--rounds", "5"])).unwrap().rounds(),
            5
        );
        for bad in [&["--rounds"][..], &["--rounds", "0"], &["--rounds", "x"]] {
            assert!(parse(&a(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_plan_names_every_issue_benchmark() {
        let groups = plan(
            Path::new("/b"),
            Path::new("/r"),
            Some(42),
            Some(Path::new("/g.elf")),
            None,
            Some((Path::new("/w"), Path::new("/w/oci-bundle"))),
            None,
        );
        let titles: Vec<&str> = groups.iter().map(|g| g.title.as_str()).collect();
        for t in [
            "unshare true",
            "unshare -r true",
            "unshare -fp --mount-proc true",
            "unshare -n true",
            "unshare -mipunfC true",
            "nsenter -t PID -a true",
            "nsenter -t PID -n true",
            "nsenter -t PID -p -F true",
            "a veth pair in a new network namespace",
        ] {
            assert!(titles.contains(&t), "{t} missing from {titles:?}");
        }
        let nsenter = groups
            .iter()
            .find(|g| g.title == "nsenter -t PID -p -F true")
            .expect("group");
        assert_eq!(
            nsenter.ours.command_line(),
            "/b/nsenter-rs -t 42 -p -F true"
        );
        let vm = groups.iter().find(|g| g.tool == "tinyvmm").expect("vm");
        assert_eq!(vm.peers[0].0.expect, guest::QEMU_STATUS);
        let oci = groups.iter().find(|g| g.tool == "ocirun").expect("ocirun");
        assert!(oci.peers[0]
            .0
            .command_line()
            .contains("crun --root /w/crun-root run"));
        let cg = groups.iter().find(|g| g.tool == "cgctl").expect("cgctl");
        assert!(cg.peers[0].0.command_line().contains("cgdelete"));
    }
}
