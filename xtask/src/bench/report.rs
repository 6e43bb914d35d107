//! BENCHMARKS.md from the measured results: pure formatting (and hyperfine's JSON parsed), so
//! that what the file says is unit-tested apart from the measuring.

use super::chart::Bar;
use super::Case;
use crate::measure::stats;
use crate::util;
use std::fmt::Write as _;
use std::process::Command;

/// What an issue asks of ours against one peer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// No goal: shown for reference.
    None,
    /// Our median divided by the peer's at most this.
    Ratio(f64),
    /// Our median at most this many milliseconds above the peer's.
    OverheadMs(f64),
}

/// One command's measurements.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The command.
    pub case: Case,
    /// The goal of ours against this case (peers only).
    pub goal: Goal,
    /// Why it was not measured, if it was not.
    pub unavailable: Option<String>,
    /// Every timed run, milliseconds.
    pub times_ms: Vec<f64>,
    /// Largest peak RSS of the checking runs, KiB.
    pub peak_rss_kib: u64,
}

impl CaseResult {
    fn median(&self) -> Option<f64> {
        (!self.times_ms.is_empty()).then(|| stats(&self.times_ms).0)
    }

    /// 25th and 75th percentiles.
    fn quartiles(&self) -> (f64, f64) {
        let mut v = self.times_ms.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        if v.is_empty() {
            (0.0, 0.0)
        } else {
            (at(0.25), at(0.75))
        }
    }
}

/// A group's results: the first case is ours, the rest are peers.
#[derive(Debug, Clone)]
pub struct GroupResult {
    /// Heading.
    pub title: String,
    /// The tool (issue) the goals come from.
    pub tool: &'static str,
    /// The first case is a reference point, not ours.
    pub reference: bool,
    /// Ours first.
    pub cases: Vec<CaseResult>,
}

/// A level-1 section's start: its heading and, when it was not measured, the line saying why
/// (then the section is only that: `Err` holds it).
pub fn section_head(heading: &str, why_not: Option<&str>) -> Result<String, String> {
    let mut s = String::new();
    let _ = writeln!(s, "\n{heading}\n");
    match why_not {
        Some(why) => {
            let _ = writeln!(s, "Not measured: {why}.\n");
            Err(s)
        }
        None => Ok(s),
    }
}

/// Verdict of one goal, as text.
pub fn judge(goal: Goal, ours: f64, peer: f64) -> String {
    match goal {
        Goal::None => String::new(),
        Goal::Ratio(max) => {
            let met = if ours / peer <= max { "met" } else { "missed" };
            format!("ratio <= {max}: {met}")
        }
        Goal::OverheadMs(max) => {
            let met = if ours - peer <= max { "met" } else { "missed" };
            format!("<= +{max} ms: {met}")
        }
    }
}

/// The machine the numbers come from.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Online CPUs.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// UTC date and time of the run.
    pub date: String,
    /// What kind of KVM this is.
    pub kvm: String,
    /// Which build of our tools was measured: the command, the directory, `--version`.
    pub build: String,
    /// /proc/loadavg's 1-minute figure when the run started and when it ended: how busy the
    /// machine was with other work.
    pub load: (String, String),
    /// Versions of the peers and the harness.
    pub versions: Vec<(String, String)>,
}

/// Describes /dev/kvm from the CPU flags: hardware virtualization, or a software layer that
/// offers the KVM interface without vmx/svm (as on the machine these tools were written on).
pub fn describe_kvm(cpuinfo: &str, dev_kvm: bool) -> String {
    if !dev_kvm {
        return "no /dev/kvm: VM rows could not run".to_string();
    }
    let hw = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    if hw {
        "/dev/kvm with hardware virtualization (vmx/svm)".to_string()
    } else {
        "/dev/kvm without vmx/svm in the CPU flags: a software virtualization layer inside a VM, \
         whose KVM control path is real and fast while guest kernel code is emulated; VM start \
         costs here are what a VMM pays, not what a guest OS needs to boot"
            .to_string()
    }
}

impl Machine {
    /// Reads this machine's description.
    pub fn here() -> Machine {
        let first_line = |cmd: &mut Command| {
            util::output(cmd)
                .ok()
                .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
                .unwrap_or_else(|| "not installed".to_string())
        };
        let cpu = util::cpu_model();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            load: (String::new(), load_average()),
            build: String::new(),
            kvm: describe_kvm(&cpuinfo, std::path::Path::new("/dev/kvm").exists()),
            cpu,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            date: first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
            versions: vec![
                (
                    "util-linux".into(),
                    first_line(Command::new("unshare").arg("--version")),
                ),
                (
                    "bubblewrap".into(),
                    first_line(Command::new("bwrap").arg("--version")),
                ),
                (
                    "libcgroup (cgroup-tools)".into(),
                    first_line(Command::new("dpkg-query").args([
                        "-W",
                        "-f=${Version}",
                        "cgroup-tools",
                    ])),
                ),
                (
                    "QEMU".into(),
                    first_line(Command::new("qemu-system-x86_64").arg("--version")),
                ),
                (
                    "hyperfine".into(),
                    first_line(Command::new("hyperfine").arg("--version")),
                ),
            ],
        }
    }
}

/// The 1-minute load average now.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// Per result in hyperfine's `--export-json`, its run times in milliseconds.
pub fn parse_hyperfine(text: &str) -> Vec<Vec<f64>> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    v["results"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    r["times"]
                        .as_array()
                        .map(|ts| {
                            ts.iter()
                                .filter_map(|t| t.as_f64())
                                .map(|t| t * 1e3)
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The chart's bars: every measured case marked with an approach, once each.
pub fn chart_bars(groups: &[GroupResult]) -> Vec<Bar> {
    let mut bars: Vec<Bar> = Vec::new();
    for c in groups.iter().flat_map(|g| g.cases.iter()) {
        let (Some(approach), Some(ms)) = (c.case.approach, c.median()) else {
            continue;
        };
        if bars.iter().any(|b| b.label == c.case.label) {
            continue;
        }
        bars.push(Bar {
            label: short_label(&c.case.label),
            approach,
            ms,
        });
    }
    let order = |a: &str| match a {
        "process" => 0,
        "container" => 1,
        _ => 2,
    };
    bars.sort_by(|a, b| {
        order(a.approach)
            .cmp(&order(b.approach))
            .then(a.ms.total_cmp(&b.ms))
    });
    bars
}

fn short_label(label: &str) -> String {
    label
        .replace(
            " --unshare-all --bind ROOTFS / --proc /proc --dev /dev /bin/true",
            " --unshare-all",
        )
        .replace(" -- pivot ROOTFS /bin/true", " + pivot")
        .replace(
            "cgctl run --pids 64 --memory 64M -- unshare-rs",
            "cgctl + unshare-rs",
        )
        .replace(" --pids 64 --memory 64M -- /bin/true", " (limits)")
        .replace(
            "qemu-system-x86_64 -M microvm (same PVH guest, KVM)",
            "QEMU -M microvm (KVM): tiny guest",
        )
        .replace(
            "tinyvmm run --mem 16M pvh-exit.elf",
            "tinyvmm (KVM): tiny guest",
        )
        .replace(
            "qemu-system-x86_64 -accel tcg -M pc: Linux to init, power-off",
            "QEMU (TCG): Linux boot to init",
        )
}

fn ms(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.2} s", x / 1e3)
    } else if x >= 10.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.3} ms")
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}

/// BENCHMARKS.md.
pub fn markdown(
    m: &Machine,
    groups: &[GroupResult],
    split: &[(String, f64)],
    sizes: &[(String, u64, String)],
    quick: bool,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "Written by `cargo xtask bench` on {} (with `--quick`: {}). Every tool is timed against its \
         peer on the same machine in the same run; rerun the command to measure yours.\n",
        m.date,
        if quick { "yes, few runs" } else { "no" }
    );
    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "- CPU: {} ({} online)", m.cpu, m.cpus);
    let _ = writeln!(s, "- kernel: {}", m.kernel);
    let _ = writeln!(
        s,
        "- load average (1 min) at the start and end of the run: {} and {} (other work on the machine widens the spreads)",
        m.load.0, m.load.1
    );
    let _ = writeln!(s, "- KVM: {}", m.kvm);
    if !m.build.is_empty() {
        let _ = writeln!(s, "- our tools: {}", m.build);
    }
    for (k, v) in &m.versions {
        let _ = writeln!(s, "- {k}: {v}");
    }
    let _ = writeln!(s, "\n![start to exit per approach](docs/bench.svg)\n");
    let _ = writeln!(s, "## Start to exit, ours against each peer\n");
    let _ = writeln!(
        s,
        "Median of all timed runs, spread as the 25th-75th percentile, peak RSS as GNU time's `%M` \
         (the largest process of the tree), the largest of three runs. Ratio = ours / peer (below 1: ours is faster).\n"
    );
    let _ = writeln!(
        s,
        "| benchmark | command | median | p25-p75 | runs | peak RSS | ours vs this | goal |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for g in groups {
        let ours = g.cases.first().and_then(CaseResult::median);
        for (i, c) in g.cases.iter().enumerate() {
            let who = match (i, g.reference) {
                (0, true) => "reference",
                (0, false) => "**ours**",
                _ => "peer",
            };
            let title = if i == 0 {
                format!("{} ({})", g.title, g.tool)
            } else {
                String::new()
            };
            match (&c.unavailable, c.median()) {
                (Some(why), _) => {
                    let _ = writeln!(
                        s,
                        "| {title} | {who}: `{}` | unavailable: {} | | | | | |",
                        c.case.label,
                        why.replace('|', "/")
                    );
                }
                (None, Some(med)) => {
                    let (q1, q3) = c.quartiles();
                    let (ratio, goal) = match (i, ours) {
                        (0, _) | (_, None) => (String::new(), String::new()),
                        (_, Some(o)) => {
                            let r = match c.goal {
                                Goal::OverheadMs(_) => {
                                    format!("{:.2}x, {:+.3} ms", o / med, o - med)
                                }
                                _ => format!("{:.2}x", o / med),
                            };
                            (r, judge(c.goal, o, med))
                        }
                    };
                    let _ = writeln!(
                        s,
                        "| {title} | {who}: `{}` | {} | {}-{} | {} | {} | {ratio} | {goal} |",
                        c.case.label,
                        ms(med),
                        ms(q1),
                        ms(q3),
                        c.times_ms.len(),
                        size(c.peak_rss_kib * 1024),
                    );
                }
                (None, None) => {}
            }
        }
    }
    if !split.is_empty() {
        let _ = writeln!(
            s,
            "\n## tinyvmm: where a tiny guest's time goes\n\nMedians of its own `--report` over 20 runs \
             of the PVH guest; the rest of the start-to-exit time is exec, dynamic set-up and exit of \
             the process.\n"
        );
        let _ = writeln!(s, "| phase | median |");
        let _ = writeln!(s, "|---|---|");
        for (k, v) in split {
            let _ = writeln!(s, "| {} | {v:.0} us |", k.trim_end_matches("_us"));
        }
    }
    let _ = writeln!(s, "\n## Binary sizes\n");
    let _ = writeln!(
        s,
        "Ours are Rust release builds (LTO, stripped) linked statically and not position independent (glibc included: `crt-static`, `relocation-model=static`, as `cargo xtask demo` and `bench` build them); the peers link libc dynamically.\n"
    );
    let _ = writeln!(s, "| binary | size | |");
    let _ = writeln!(s, "|---|---|---|");
    for (name, bytes, note) in sizes {
        let _ = writeln!(s, "| `{name}` | {} | {note} |", size(*bytes));
    }
    let _ = writeln!(s, "\n## Exact commands\n");
    let _ = writeln!(
        s,
        "Each group ran as {} `hyperfine -N {}` invocations, alternating the order of the \
         commands (forward, reverse, ...), and the times of all are pooled (no shell in between, except for the \
         libcgroup sequence, which needs one `sh` for its four programs). Each command was first run three \
         times to check its exit status (QEMU's isa-debug-exit makes the guest's 0 into 1) and \
         record its peak RSS. ROOTFS is the busybox rootfs of `cargo xtask rootfs`; PID a \
         `unshare -fpmuinC --mount-proc sleep` holder; the guest `pvh-exit.elf` is the 3 \
         instructions of `xtask/src/bench/guest.rs` with a PVH entry note. The Linux reference \
         boots `cargo xtask kernel`'s Debian kernel with the demo's busybox initramfs (its /init \
         prints a few lines and powers off) under QEMU with the CPU emulated in software, since KVM \
         on a host without vmx/svm cannot run a stock kernel; it is checked once and timed with \
         `--warmup 1 --runs 3` in two passes.\n",
        super::PASSES,
        super::hyperfine_runs(quick).join(" ")
    );
    for g in groups {
        let _ = writeln!(s, "{}:\n\n```sh", g.title);
        for c in &g.cases {
            let _ = writeln!(s, "{}", c.case.command_line());
        }
        let _ = writeln!(s, "```\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(label: &str, times: &[f64], goal: Goal) -> CaseResult {
        CaseResult {
            case: Case::new(label, &["/bin/true"]).on_chart("process"),
            goal,
            unavailable: None,
            times_ms: times.to_vec(),
            peak_rss_kib: 1024,
        }
    }

    #[test]
    fn parses_hyperfine_json() {
        let t = parse_hyperfine(
            r#"{"results":[{"command":"a","times":[0.001,0.002]},{"command":"b","times":[0.5]}]}"#,
        );
        assert_eq!(t, vec![vec![1.0, 2.0], vec![500.0]]);
        assert!(parse_hyperfine("garbage").is_empty());
    }

    #[test]
    fn kvm_kinds() {
        assert!(describe_kvm("flags : fpu vmx sse\n", true).contains("hardware"));
        assert!(describe_kvm("flags : fpu sse\n", true).contains("software"));
        assert!(describe_kvm("", false).starts_with("no /dev/kvm"));
    }

    #[test]
    fn goals() {
        assert_eq!(judge(Goal::Ratio(0.8), 0.4, 1.0), "ratio <= 0.8: met");
        assert_eq!(judge(Goal::Ratio(0.8), 0.9, 1.0), "ratio <= 0.8: missed");
        assert_eq!(judge(Goal::OverheadMs(0.3), 1.2, 1.0), "<= +0.3 ms: met");
        assert_eq!(judge(Goal::None, 1.0, 1.0), "");
    }

    #[test]
    fn markdown_has_ratio_machine_and_commands() {
        let g = GroupResult {
            title: "unshare true".into(),
            tool: "unshare-rs",
            reference: false,
            cases: vec![
                case("ours", &[0.4, 0.5, 0.6], Goal::None),
                case("peer", &[1.0, 1.0, 1.0], Goal::Ratio(0.8)),
            ],
        };
        let m = Machine {
            cpu: "cpu".into(),
            cpus: 2,
            kernel: "6.1".into(),
            date: "2026-01-01 00:00 UTC".into(),
            kvm: "kvm".into(),
            build: "the shipped build, `RUSTFLAGS=x cargo build`".into(),
            load: ("0.10".into(), "0.20".into()),
            versions: vec![("hyperfine".into(), "hyperfine 1.15.0".into())],
        };
        let md = markdown(
            &m,
            std::slice::from_ref(&g),
            &[("create_us".into(), 120.0)],
            &[("cgctl".into(), 500_000, "ours".into())],
            false,
        );
        assert!(
            md.contains("- our tools: the shipped build, `RUSTFLAGS=x cargo build`\n"),
            "{md}"
        );
        assert!(
            md.contains("| unshare true (unshare-rs) | **ours**: `ours` | 0.500 ms"),
            "{md}"
        );
        assert!(md.contains("| 0.50x | ratio <= 0.8: met |"), "{md}");
        assert!(md.contains("2026-01-01 00:00 UTC"));
        assert!(md.contains("run: 0.10 and 0.20"), "{md}");
        assert!(md.contains("| create | 120 us |"));
        assert!(md.contains("| `cgctl` | 488 KiB | ours |"));
        assert!(md.contains("```sh\n/bin/true\n/bin/true\n```"));
        let bars = chart_bars(&[g]);
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].ms, 0.5);
    }
}
