//! `cargo xtask bench --scale`: what one more instance costs when there are many. N = 1, 10,
//! 100 and 1,000 instances of the composed container, `ocirun run` and tinyvmm's tiny guest,
//! started one after another and 20 at a time, each beside its peer (bwrap, crun, QEMU microvm)
//! in the same run; then long-running instances held at once for their memory. Afterwards the
//! bench checks that nothing is left (mounts, cgroups, processes, KVM VMs, state, temp files)
//! and fails if something is.

pub mod drive;
pub mod leftover;
pub mod render;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The numbers of instances the issue asks for.
pub const NS: [usize; 4] = [1, 10, 100, 1000];

/// Instances running at once in the concurrent runs.
pub const PARALLEL: usize = 20;

/// Long-running instances held at once at most, whatever the budget allows.
pub const HOLD_CAP: usize = 200;

/// The memory the long-running instances of one case may be charged (cgroup usage): a small
/// share of this 24 GiB machine, which three other sessions share.
pub const BUDGET_BYTES: u64 = 2 << 30;

/// No further long-running instance starts while the machine's MemAvailable is below this.
pub const FLOOR_BYTES: u64 = 8 << 30;

/// One batch: `n` instances, `parallel` of them running at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub n: usize,
    pub parallel: usize,
}

/// The batches for `--scale-max max`: every N of [`NS`] up to `max`, one after another and
/// [`PARALLEL`] at a time (N = 1 once: both are the same run).
pub fn schedule(max: usize) -> Vec<Step> {
    let mut v = Vec::new();
    for n in NS.into_iter().filter(|&n| n <= max) {
        v.push(Step { n, parallel: 1 });
        let p = PARALLEL.min(n);
        if p > 1 {
            v.push(Step { n, parallel: p });
        }
    }
    v
}

/// The `q` quantile (0..=1) by nearest rank: the smallest value with at least q of the samples
/// at or below it; 0 for no samples.
pub fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = (q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// An argv with `{i}` (the instance's number) and `{slot}` (which of the running places it
/// took, 0 to parallel-1) filled in per instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(pub Vec<String>);

impl Template {
    pub fn instantiate(&self, i: usize, slot: usize) -> Vec<String> {
        self.0
            .iter()
            .map(|w| {
                w.replace("{i}", &i.to_string())
                    .replace("{slot}", &slot.to_string())
            })
            .collect()
    }

    /// The command as a reader would type it.
    pub fn shown(&self) -> String {
        self.0
            .iter()
            .map(|w| super::shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How a long-running instance is ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndBy {
    /// SIGKILL to the process running the program `Ready::Comm` waited for: the container's
    /// PID 1, so the namespace ends and the tools around it unwind and clean up (cgctl removes
    /// its group). SIGTERM would not do: PID 1 of a namespace ignores it without a handler.
    KillProgram,
    /// SIGKILL to its process group.
    KillGroup,
}

/// When a long-running instance is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// A process of its tree runs this program (`/proc/PID/comm`).
    Comm(&'static str),
    /// A process of its tree holds a KVM vCPU.
    Vcpu,
}

/// The long-running form of a case.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub argv: Template,
    pub end: EndBy,
    pub ready: Ready,
}

/// Which comparison a case belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// (a) the composed container against bwrap.
    Container,
    /// (b) an OCI runtime's `run` of a bundle, ocirun against crun.
    Oci,
    /// (c) a tiny guest, tinyvmm against QEMU microvm.
    Vm,
}

impl Family {
    pub fn title(self) -> &'static str {
        match self {
            Family::Container => "(a) a container: cgctl run + unshare-rs + pivot, against bwrap",
            Family::Oci => "(b) an OCI runtime: run a bundle (create, start, delete), against crun",
            Family::Vm => "(c) a tiny VM: the PVH guest that exits, against QEMU -M microvm",
        }
    }
}

/// One command measured at every step.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Short name in tables, the chart and cgroup names.
    pub key: &'static str,
    pub family: Family,
    /// Ours or the peer.
    pub ours: bool,
    /// Start to exit: one instance.
    pub argv: Template,
    /// The exit status a correct instance has.
    pub expect: i32,
    /// The long-running form, for the memory held at once.
    pub hold: Option<Hold>,
    /// The cgroup the case's instances run under (made with cgctl, removed after the case).
    pub parent: String,
    /// OCI runtimes' `--root`: must hold nothing after the case.
    pub state_dir: Option<PathBuf>,
}

/// What the plan needs to know of this machine.
pub struct Inputs<'a> {
    pub bin: &'a Path,
    pub rootfs: &'a Path,
    pub work: &'a Path,
    pub exit_guest: &'a Path,
    pub wait_guest: &'a Path,
    /// crun's path, where it is installed.
    pub crun: Option<&'a Path>,
    pub qemu: Option<&'a Path>,
    /// Unique to this run: the prefix of every cgroup and container id.
    pub tag: &'a str,
}

/// The directory of OCI bundle `slot` of case `key` (each running place has its own bundle, so
/// that concurrent containers get different cgroups).
pub fn bundle_dir(work: &Path, key: &str, slot: usize) -> PathBuf {
    work.join(format!("scale-{key}-bundle-{slot}"))
}

/// The cases, ours before its peer in each family.
pub fn plan(x: &Inputs) -> Vec<Case> {
    let p = |s: &Path| s.display().to_string();
    let tool = |t: &str| p(&x.bin.join(t));
    let rootfs = p(x.rootfs);
    let parent = |key: &str| format!("{}-{key}", x.tag);
    let cgexec = |key: &str, tail: &[String]| {
        let mut v = vec![tool("cgctl"), "exec".into(), parent(key), "--".into()];
        v.extend(tail.iter().cloned());
        Template(v)
    };
    let container = |prog: &[&str]| {
        let mut v = vec![
            tool("cgctl"),
            "run".into(),
            "--parent".into(),
            parent("container"),
            "--memory".into(),
            "64M".into(),
            "--pids".into(),
            "64".into(),
            "--".into(),
            tool("unshare-rs"),
            "-mpuinCf".into(),
            "--".into(),
            tool("pivot"),
            rootfs.clone(),
        ];
        v.extend(prog.iter().map(|s| s.to_string()));
        Template(v)
    };
    let bwrap = |prog: &[&str]| super::bwrap_container(&rootfs, prog);
    let sleep = ["/bin/sleep", "3600"];
    let mut cases = vec![
        Case {
            key: "container",
            family: Family::Container,
            ours: true,
            argv: container(&["/bin/true"]),
            expect: 0,
            hold: Some(Hold {
                argv: container(&sleep),
                end: EndBy::KillProgram,
                ready: Ready::Comm("sleep"),
            }),
            parent: parent("container"),
            state_dir: None,
        },
        Case {
            key: "bwrap",
            family: Family::Container,
            ours: false,
            argv: Template(bwrap(&["/bin/true"])),
            expect: 0,
            hold: Some(Hold {
                argv: cgexec("bwrap", &bwrap(&sleep)),
                end: EndBy::KillProgram,
                ready: Ready::Comm("sleep"),
            }),
            parent: parent("bwrap"),
            state_dir: None,
        },
    ];
    let oci = |key: &'static str, ours: bool, runtime: String| {
        let root = x.work.join(format!("scale-{key}-root"));
        Case {
            key,
            family: Family::Oci,
            ours,
            argv: Template(vec![
                runtime,
                "--root".into(),
                p(&root),
                "run".into(),
                "-b".into(),
                p(&x.work.join(format!("scale-{key}-bundle-{{slot}}"))),
                format!("{}-{{i}}", x.tag),
            ]),
            expect: 0,
            hold: None,
            parent: parent(key),
            state_dir: Some(root),
        }
    };
    cases.push(oci("ocirun", true, tool("ocirun")));
    if let Some(c) = x.crun {
        cases.push(oci("crun", false, p(c)));
    }
    let tinyvmm = |tail: &[&str]| {
        let mut v = vec![tool("tinyvmm"), "run".into(), "--mem".into(), "16M".into()];
        v.extend(tail.iter().map(|s| s.to_string()));
        v
    };
    cases.push(Case {
        key: "tinyvmm",
        family: Family::Vm,
        ours: true,
        argv: Template(tinyvmm(&[&p(x.exit_guest)])),
        expect: 0,
        hold: Some(Hold {
            argv: cgexec(
                "tinyvmm",
                &tinyvmm(&["--timeout", "600", "--kernel", &p(x.wait_guest)]),
            ),
            end: EndBy::KillGroup,
            ready: Ready::Vcpu,
        }),
        parent: parent("tinyvmm"),
        state_dir: None,
    });
    if let Some(q) = x.qemu {
        let qemu = |elf: &Path| {
            let mut v = super::guest::qemu_argv(elf, "16M");
            v[0] = p(q);
            v
        };
        cases.push(Case {
            key: "qemu",
            family: Family::Vm,
            ours: false,
            argv: Template(qemu(x.exit_guest)),
            expect: super::guest::QEMU_STATUS,
            hold: Some(Hold {
                argv: cgexec("qemu", &qemu(x.wait_guest)),
                end: EndBy::KillGroup,
                ready: Ready::Vcpu,
            }),
            parent: parent("qemu"),
            state_dir: None,
        });
    }
    cases
}

/// A batch's time limit: a minute, and a second per instance (QEMU starts in about 0.2 s here).
pub fn batch_limit(step: Step) -> Duration {
    Duration::from_secs(60 + step.n as u64)
}

/// What `--scale` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The largest N.
    pub max: usize,
    /// Where BENCHMARKS.md and docs/ are.
    pub out: PathBuf,
}

/// Runs the section: builds what it needs, measures, writes the scale section of
/// BENCHMARKS.md and docs/scale.svg, and fails if anything failed or was left behind.
pub fn run(opts: &Options) -> Result<(), String> {
    let tools = ["cgctl", "unshare-rs", "pivot", "tinyvmm", "ocirun"];
    crate::release::build_release_of(&tools)?;
    let bin = crate::release::release_dir();
    let rootfs = crate::rootfs::default_dir();
    crate::rootfs::ensure(&rootfs)?;
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| format!("resolving {}: {e}", rootfs.display()))?;
    let work = crate::util::target_dir().join("bench");
    let exit_guest = super::guest::build(&work)?;
    let wait_guest = super::guest::build_waiting(&work)?;
    let crun = conventions::exec::find_in_path("crun");
    let qemu = conventions::exec::find_in_path("qemu-system-x86_64");
    if crun.is_none() {
        eprintln!("xtask bench --scale: crun is not installed (cargo xtask deps): no OCI peer");
    }
    if qemu.is_none() {
        eprintln!("xtask bench --scale: QEMU is not installed (cargo xtask deps): no VM peer");
    }
    let tag = format!("mtscale-{}", std::process::id());
    let cases = plan(&Inputs {
        bin: &bin,
        rootfs: &rootfs,
        work: &work,
        exit_guest: &exit_guest,
        wait_guest: &wait_guest,
        crun: crun.as_deref(),
        qemu: qemu.as_deref(),
        tag: &tag,
    });
    let measured = drive::measure_all(&cases, opts.max, &bin, &work, &rootfs)?;
    let section = render::section(&measured);
    let md_path = opts.out.join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&md_path).unwrap_or_default();
    std::fs::write(&md_path, render::splice(&old, &section))
        .map_err(|e| format!("writing {}: {e}", md_path.display()))?;
    let docs = opts.out.join("docs");
    std::fs::create_dir_all(&docs).map_err(|e| format!("creating {}: {e}", docs.display()))?;
    let svg = docs.join("scale.svg");
    super::chart::write_lines(
        &svg,
        &format!(
            "Cost per instance against N ({}, load {})",
            measured.date, measured.load.0
        ),
        "instances N (log scale)",
        "ms of wall time per instance (log scale)",
        &render::lines(&measured),
    )?;
    eprintln!(
        "xtask bench --scale: wrote the scale section of {} and {}",
        md_path.display(),
        svg.display()
    );
    let problems = measured.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        for p in &problems {
            eprintln!("xtask bench --scale: FAILED: {p}");
        }
        Err(format!(
            "bench --scale: {} problem(s), first: {}",
            problems.len(),
            problems[0]
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_each_n_serially_and_twenty_at_a_time() {
        let s = schedule(1000);
        let pairs: Vec<(usize, usize)> = s.iter().map(|s| (s.n, s.parallel)).collect();
        assert_eq!(
            pairs,
            [
                (1, 1),
                (10, 1),
                (10, 10),
                (100, 1),
                (100, 20),
                (1000, 1),
                (1000, 20)
            ]
        );
        assert_eq!(
            schedule(99).last(),
            Some(&Step {
                n: 10,
                parallel: 10
            })
        );
        assert_eq!(schedule(1), [Step { n: 1, parallel: 1 }]);
        assert!(schedule(0).is_empty());
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let xs: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&xs, 0.5), 50.0);
        assert_eq!(percentile(&xs, 0.99), 99.0);
        assert_eq!(percentile(&xs, 1.0), 100.0);
        assert_eq!(percentile(&xs, 0.0), 1.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn the_plan_pairs_each_of_ours_with_its_peer() {
        let x = Inputs {
            bin: Path::new("/b"),
            rootfs: Path::new("/r"),
            work: Path::new("/w"),
            exit_guest: Path::new("/w/pvh-exit.elf"),
            wait_guest: Path::new("/w/pvh-wait.elf"),
            crun: Some(Path::new("/usr/bin/crun")),
            qemu: Some(Path::new("/usr/bin/qemu-system-x86_64")),
            tag: "mtscale-7",
        };
        let cases = plan(&x);
        let keys: Vec<&str> = cases.iter().map(|c| c.key).collect();
        assert_eq!(
            keys,
            ["container", "bwrap", "ocirun", "crun", "tinyvmm", "qemu"]
        );
        let c = &cases[0];
        assert_eq!(
            c.argv.shown(),
            "/b/cgctl run --parent mtscale-7-container --memory 64M --pids 64 -- /b/unshare-rs -mpuinCf -- /b/pivot /r /bin/true"
        );
        let hold = c.hold.as_ref().expect("a sleeping container");
        assert!(hold.argv.shown().ends_with("/r /bin/sleep 3600"));
        assert_eq!(hold.end, EndBy::KillProgram);
        assert_eq!(
            cases[3].argv.instantiate(42, 3),
            [
                "/usr/bin/crun",
                "--root",
                "/w/scale-crun-root",
                "run",
                "-b",
                "/w/scale-crun-bundle-3",
                "mtscale-7-42"
            ]
        );
        assert_eq!(
            bundle_dir(x.work, "crun", 3),
            Path::new("/w/scale-crun-bundle-3")
        );
        assert_eq!(cases[5].expect, super::super::guest::QEMU_STATUS);
        let vm = cases[4].hold.as_ref().expect("a waiting guest");
        assert_eq!(
            vm.argv.shown(),
            "/b/cgctl exec mtscale-7-tinyvmm -- /b/tinyvmm run --mem 16M --timeout 600 --kernel /w/pvh-wait.elf"
        );
        assert!(cases.iter().all(|c| c.parent.starts_with("mtscale-7-")));
        let without = plan(&Inputs {
            crun: None,
            qemu: None,
            ..x
        });
        assert_eq!(without.len(), 4);
    }
}
