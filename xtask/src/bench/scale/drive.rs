//! The measuring of the scale section: batches of short instances (spawn to reaped exit, per
//! instance, with a bounded number running at once), then long-running ones held at once for
//! their memory, each family's cases in the same run, and the leftover check after each family.

use super::leftover;
use super::{Case, EndBy, Family, Hold, Ready, Step};
use crate::bench::report;
use crate::soak::{self, ParentGroup, Reaped};
use std::collections::{BTreeSet, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One batch of one case.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// Index into [`Measured::cases`].
    pub case: usize,
    pub step: Step,
    /// First spawn to last reaped exit.
    pub wall: Duration,
    /// Each instance's spawn to reaped exit, milliseconds.
    pub times_ms: Vec<f64>,
    pub failed: Vec<String>,
    /// Processes reparented to the driver that ended within [`GRACE`] after their instance.
    pub late: usize,
    /// The peak the case's group was charged during the batch over its charge before it (v1
    /// memory.max_usage_in_bytes), per instance running at once, bytes.
    pub peak_bytes: Option<f64>,
    /// Of it, kernel memory (v1 memory.kmem.max_usage_in_bytes), bytes.
    pub peak_kmem_bytes: Option<f64>,
    /// What the group is still charged after the batch over its charge before it, per instance
    /// of the batch, bytes: what instances leave behind in the kernel's caches.
    pub left_bytes: Option<f64>,
}

impl StepResult {
    /// Instances per second.
    pub fn rate(&self) -> f64 {
        self.step.n as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Wall time per instance, milliseconds: what one more instance costs the machine.
    pub fn cost_ms(&self) -> f64 {
        self.wall.as_secs_f64() * 1e3 / self.step.n.max(1) as f64
    }
}

/// Long-running instances of one case held at once.
#[derive(Debug, Clone, Default)]
pub struct HoldResult {
    pub case: usize,
    /// How many ran at once.
    pub count: usize,
    /// What stopped the count: the cap, the budget or the machine's free memory.
    pub limited_by: String,
    /// Per instance: the parent cgroup's memory usage (v1 memory.usage_in_bytes), bytes.
    pub cgroup_bytes: Option<f64>,
    /// Per instance: of it, kernel memory (v1 memory.kmem.usage_in_bytes), bytes.
    pub kmem_bytes: Option<f64>,
    /// Per instance, summed over its processes, KiB.
    pub rss_kib: f64,
    pub pss_kib: f64,
    pub pte_kib: f64,
    pub failed: Vec<String>,
    /// Processes reparented to the driver that ended within [`GRACE`] after the instances.
    pub late: usize,
}

/// Everything the section reports.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub cases: Vec<Case>,
    pub steps: Vec<StepResult>,
    pub holds: Vec<HoldResult>,
    pub leftovers: Vec<String>,
    pub failures: Vec<String>,
    /// 1-minute load average at the start and the end.
    pub load: (String, String),
    pub date: String,
    pub machine: String,
    pub max: usize,
}

impl Measured {
    /// What makes the run fail: a failed instance, a family that could not run, a leftover.
    pub fn problems(&self) -> Vec<String> {
        let mut v = self.failures.clone();
        for s in &self.steps {
            for f in s.failed.iter().take(3) {
                v.push(format!(
                    "{} at N={} x{}: {f}",
                    self.cases[s.case].key, s.step.n, s.step.parallel
                ));
            }
        }
        for h in &self.holds {
            for f in &h.failed {
                v.push(format!("{} held: {f}", self.cases[h.case].key));
            }
        }
        v.extend(self.leftovers.iter().map(|l| format!("left behind: {l}")));
        v
    }
}

fn spawn(argv: &[String], tmpdir: &Path) -> Result<i32, String> {
    let (prog, args) = argv.split_first().ok_or("an empty command")?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("TMPDIR", tmpdir)
        .process_group(0);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", crate::util::describe(&cmd)))?;
    Ok(child.id() as i32)
}

/// A batch's memory high-water mark in the case's group. v1 keeps one per counter, and a write
/// of 0 sets it to the usage of the moment, so the batch's peak is read over that base.
struct Peak {
    dir: PathBuf,
    base: u64,
    kbase: Option<u64>,
}

const MAX_USAGE: &str = "memory.max_usage_in_bytes";
const USAGE: &str = "memory.usage_in_bytes";
const KMEM_MAX_USAGE: &str = "memory.kmem.max_usage_in_bytes";

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Peak {
    /// The group's directory in the v1 memory hierarchy, where the peak files are; None where
    /// the memory controller is not on v1 (the batch then reports no peak).
    fn dir_of(group: &str) -> Option<PathBuf> {
        testcaps::cgroup_mounts()
            .into_iter()
            .map(|m| m.join(group))
            .find(|d| d.join(MAX_USAGE).exists())
    }

    fn start(dir: &Path) -> Option<Peak> {
        std::fs::write(dir.join(MAX_USAGE), "0").ok()?;
        let kbase = std::fs::write(dir.join(KMEM_MAX_USAGE), "0")
            .ok()
            .and_then(|()| read_number(&dir.join(KMEM_MAX_USAGE)));
        Some(Peak {
            dir: dir.to_path_buf(),
            base: read_number(&dir.join(MAX_USAGE))?,
            kbase,
        })
    }

    /// The high-water marks over their bases: all of it, and the kernel's.
    fn high(&self) -> (Option<u64>, Option<u64>) {
        (
            read_number(&self.dir.join(MAX_USAGE)).map(|p| p.saturating_sub(self.base)),
            self.kbase.and_then(|b| {
                read_number(&self.dir.join(KMEM_MAX_USAGE)).map(|p| p.saturating_sub(b))
            }),
        )
    }

    /// The usage now over the base.
    fn left(&self) -> Option<u64> {
        read_number(&self.dir.join(USAGE)).map(|u| u.saturating_sub(self.base))
    }
}

/// A batch's memory: per instance running at once, its peak and the kernel's share of it; per
/// instance of the batch, what is left charged. One at a time the marks are reset before each
/// instance and the highest instance's peak is kept, so that what the earlier ones left (which
/// adds up over the batch) is not counted as the instance's; 20 at a time a batch's leftovers
/// over 20 are a few KiB, and the batch's peak over the instances at once is the measure.
#[derive(Default)]
struct Memory {
    batch: Option<Peak>,
    instance: Option<Peak>,
    highest: (Option<u64>, Option<u64>),
}

impl Memory {
    fn start(dir: Option<&Path>) -> Memory {
        Memory {
            batch: dir.and_then(Peak::start),
            ..Memory::default()
        }
    }

    /// Before an instance is spawned, when one runs at a time.
    fn instance_starts(&mut self, one_at_a_time: bool) {
        if let (true, Some(b)) = (one_at_a_time, &self.batch) {
            self.instance = Peak::start(&b.dir);
        }
    }

    /// After an instance is reaped, when one runs at a time.
    fn instance_ended(&mut self) {
        if let Some(p) = self.instance.take() {
            let (all, kmem) = p.high();
            self.highest = (all.max(self.highest.0), kmem.max(self.highest.1));
        }
    }

    /// (peak, of it kernel) per instance running at once, left per instance of the batch.
    fn end(&self, at_once: usize, n: usize) -> (Option<f64>, Option<f64>, Option<f64>) {
        let Some(b) = &self.batch else {
            return (None, None, None);
        };
        let per = |v: Option<u64>, k: usize| v.map(|v| v as f64 / k.max(1) as f64);
        let (all, kmem) = if at_once == 1 { self.highest } else { b.high() };
        (per(all, at_once), per(kmem, at_once), per(b.left(), n))
    }
}

/// Moves a just-spawned instance into the case's group (v1 memory hierarchy only), so that
/// what it allocates from here on is charged there. The spawn returns once the instance has
/// exec'd (posix_spawn's vfork), so only the exec's own pages are charged to the driver's group;
/// doing it in the child (pre_exec) would make every spawn a fork of the driver. An instance
/// that has already ended (ESRCH) charged little and is let be.
fn join_memory_group(dir: &Path, pid: i32) -> Result<(), String> {
    let procs = dir.join("cgroup.procs");
    match std::fs::write(&procs, pid.to_string()) {
        Err(e) if e.raw_os_error() != Some(libc::ESRCH) => Err(format!(
            "moving instance {pid} into {}: {}",
            procs.display(),
            conventions::output::errtext(&e)
        )),
        _ => Ok(()),
    }
}

fn kill_group(pid: i32) {
    // SAFETY: kill takes plain integers; pid leads the process group of an instance we spawned
    // and have not reaped, so the group cannot belong to anyone else.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
}

/// One batch: `step.n` instances of `case`, `step.parallel` at a time; every PID it started goes
/// into `pids`. With `memory` (the case's group in the v1 memory hierarchy) each instance joins
/// it, and the batch's peak charge is read.
pub fn batch(
    index: usize,
    case: &Case,
    step: Step,
    memory: Option<&Path>,
    tmpdir: &Path,
    pids: &mut BTreeSet<i32>,
) -> StepResult {
    let mut r = StepResult {
        case: index,
        step,
        wall: Duration::ZERO,
        times_ms: Vec::with_capacity(step.n),
        failed: Vec::new(),
        late: 0,
        peak_bytes: None,
        peak_kmem_bytes: None,
        left_bytes: None,
    };
    let mut mem = Memory::start(memory);
    let one_at_a_time = step.parallel.min(step.n) == 1;
    let limit = super::batch_limit(step);
    let mut running: HashMap<i32, (usize, Instant)> = HashMap::new();
    let mut free: Vec<usize> = (0..step.parallel).rev().collect();
    let mut strays = 0;
    let mut next = 0;
    let start = Instant::now();
    loop {
        while next < step.n {
            let Some(slot) = free.pop() else { break };
            mem.instance_starts(one_at_a_time);
            let t0 = Instant::now();
            match spawn(&case.argv.instantiate(next, slot), tmpdir) {
                Ok(pid) => {
                    pids.insert(pid);
                    running.insert(pid, (slot, t0));
                    if let Some(e) = memory.and_then(|d| join_memory_group(d, pid).err()) {
                        r.failed.push(e);
                    }
                }
                Err(e) => {
                    r.failed.push(e);
                    free.push(slot);
                    next = step.n;
                    break;
                }
            }
            next += 1;
        }
        if running.is_empty() {
            break;
        }
        if start.elapsed() > limit {
            r.failed.push(format!(
                "the batch's limit of {limit:?} passed with {} still running",
                running.len()
            ));
            for &pid in running.keys() {
                kill_group(pid);
            }
            soak::kill_and_reap(running.keys().copied());
            break;
        }
        match soak::reap(Duration::from_millis(200)) {
            Reaped::Child(pid, status) => {
                let end = Instant::now();
                match running.remove(&pid) {
                    Some((slot, t0)) => {
                        r.times_ms.push(end.duration_since(t0).as_secs_f64() * 1e3);
                        mem.instance_ended();
                        free.push(slot);
                        let ok =
                            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == case.expect;
                        if !ok {
                            r.failed.push(format!(
                                "an instance ended with {} (expected exit {})",
                                soak::describe_status(status),
                                case.expect
                            ));
                        }
                    }
                    None => strays += 1,
                }
            }
            Reaped::NotYet => {}
            Reaped::NoChildren => break,
        }
    }
    r.wall = start.elapsed();
    r.late = strays + drain_late();
    (r.peak_bytes, r.peak_kmem_bytes, r.left_bytes) = mem.end(step.parallel.min(step.n), step.n);
    r
}

/// Reaps what was reparented to the driver (its subreaper) as an instance's first process
/// exited: bwrap's outer process exits as soon as it has its namespace's status, before the PID 1
/// it cloned is reaped. Those end on their own within moments; what still runs after
/// [`GRACE`] is a leftover, which [`leftover::check`] reports.
fn drain_late() -> usize {
    let mut n = 0;
    let until = Instant::now() + GRACE;
    while Instant::now() < until {
        match soak::reap(Duration::from_millis(50)) {
            Reaped::Child(..) => n += 1,
            Reaped::NotYet => {}
            Reaped::NoChildren => break,
        }
    }
    n
}

/// How long a process reparented to the driver may take to end after its instance did.
pub const GRACE: Duration = Duration::from_secs(2);

/// PIDs of the process tree under `pid`, itself first (`/proc/PID/task/TID/children`).
fn tree(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        for t in std::fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            out.extend(
                kids.split_whitespace()
                    .filter_map(|k| k.parse::<i32>().ok()),
            );
        }
        i += 1;
    }
    out
}

/// The number after `key` in a /proc file of "Key:   123 kB" lines.
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn is_ready(pid: i32, ready: Ready) -> bool {
    tree(pid).into_iter().any(|p| match ready {
        Ready::Comm(name) => {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == name)
        }
        Ready::Vcpu => std::fs::read_dir(format!("/proc/{p}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .any(|l| leftover::is_vcpu(&l.to_string_lossy())),
    })
}

/// Whether our child `pid` has ended; reaps it if so.
fn ended(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: status is a valid, writable local; pid is our own child.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == pid }
}

/// MemAvailable of /proc/meminfo, bytes.
fn mem_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| kib_field(&t, "MemAvailable:"))
        .map_or(0, |k| k * 1024)
}

/// Starts long-running instances of `case` one by one under `parent` until [`super::HOLD_CAP`]
/// (or `max`) run, or the next would pass the budget or the machine's floor; measures them all
/// at once, then ends them.
fn hold(
    index: usize,
    h: &Hold,
    parent: &ParentGroup,
    max: usize,
    tmpdir: &Path,
    pids: &mut BTreeSet<i32>,
) -> HoldResult {
    let kmem = ["memory.kmem.usage_in_bytes"];
    let mut r = HoldResult {
        case: index,
        ..HoldResult::default()
    };
    let cap = super::HOLD_CAP.min(max);
    r.limited_by = format!("the cap of {cap}");
    let base = parent.memory_usage().ok();
    let kbase = parent.read_u64(&kmem);
    let mut live: Vec<i32> = Vec::new();
    while live.len() < cap {
        if mem_available() < super::FLOOR_BYTES {
            r.limited_by = format!(
                "the machine's free memory (MemAvailable under {} GiB)",
                super::FLOOR_BYTES >> 30
            );
            break;
        }
        if let (Some(b), Ok(u), false) = (base, parent.memory_usage(), live.is_empty()) {
            let used = u.saturating_sub(b);
            if used + used / live.len() as u64 > super::BUDGET_BYTES {
                r.limited_by = format!("the budget of {} GiB", super::BUDGET_BYTES >> 30);
                break;
            }
        }
        let pid = match spawn(&h.argv.instantiate(live.len(), 0), tmpdir) {
            Ok(p) => p,
            Err(e) => {
                r.failed.push(e);
                break;
            }
        };
        pids.insert(pid);
        live.push(pid);
        let t0 = Instant::now();
        let up = loop {
            if is_ready(pid, h.ready) {
                break Ok(());
            }
            if ended(pid) {
                live.pop();
                break Err("ended before it was up".to_string());
            }
            if t0.elapsed() > Duration::from_secs(30) {
                break Err("not up within 30 s".to_string());
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if let Err(e) = up {
            r.failed.push(format!("instance {}: {e}", live.len()));
            break;
        }
    }
    // What starting them allocated lazily settles.
    std::thread::sleep(Duration::from_millis(500));
    r.count = live.len();
    let n = r.count.max(1) as f64;
    if let (Some(b), Ok(u)) = (base, parent.memory_usage()) {
        r.cgroup_bytes = Some(u.saturating_sub(b) as f64 / n);
    }
    if let (Some(b), Some(u)) = (kbase, parent.read_u64(&kmem)) {
        r.kmem_bytes = Some(u.saturating_sub(b) as f64 / n);
    }
    for &pid in &live {
        for p in tree(pid) {
            let rollup =
                std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).unwrap_or_default();
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            r.rss_kib += kib_field(&rollup, "Rss:").unwrap_or(0) as f64 / n;
            r.pss_kib += kib_field(&rollup, "Pss:").unwrap_or(0) as f64 / n;
            r.pte_kib += kib_field(&status, "VmPTE:").unwrap_or(0) as f64 / n;
        }
    }
    for &pid in &live {
        match (h.end, h.ready) {
            (EndBy::KillProgram, Ready::Comm(name)) => {
                for p in tree(pid) {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                    if comm.trim() == name {
                        // SAFETY: p is in the tree of an unreaped child of ours, read just now.
                        unsafe { libc::kill(p, libc::SIGKILL) };
                    }
                }
            }
            _ => kill_group(pid),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut waiting = live.clone();
    while !waiting.is_empty() && Instant::now() < deadline {
        waiting.retain(|&p| !ended(p));
        std::thread::sleep(Duration::from_millis(5));
    }
    if !waiting.is_empty() {
        r.failed.push(format!(
            "{} instance(s) did not end within 20 s of their kill (killed as groups)",
            waiting.len()
        ));
        for &p in &waiting {
            kill_group(p);
        }
        soak::kill_and_reap(waiting.into_iter());
    }
    r.late = drain_late();
    r
}

/// Per-slot OCI bundles of `key`: `base` (from `ocirun spec` as the OCI group writes it) with a
/// cgroup per slot under the case's group, so that the batch's memory peak there covers the
/// containers as well as the runtime.
fn write_bundles(
    base: &serde_json::Value,
    work: &Path,
    key: &str,
    parent: &str,
) -> Result<(), String> {
    for slot in 0..super::PARALLEL {
        let dir = super::bundle_dir(work, key, slot);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut c = base.clone();
        c["linux"]["cgroupsPath"] = serde_json::json!(format!("/{parent}/s{slot}"));
        let text = serde_json::to_string_pretty(&c).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("config.json"), text)
            .map_err(|e| format!("writing {}/config.json: {e}", dir.display()))?;
    }
    Ok(())
}

/// Measures every case, family by family (the OCI family last: it hides the cgroup2 mount for
/// crun, for the rest of the process).
pub fn measure_all(
    cases: &[Case],
    max: usize,
    bin: &Path,
    work: &Path,
    rootfs: &Path,
) -> Result<Measured, String> {
    soak::become_subreaper()?;
    soak::block_sigchld()?;
    let machine = report::Machine::here();
    let mut m = Measured {
        cases: cases.to_vec(),
        load: (report::load_average(), String::new()),
        date: machine.date.clone(),
        machine: format!(
            "{} ({} online), kernel {}; {}",
            machine.cpu, machine.cpus, machine.kernel, machine.kvm
        ),
        max,
        ..Measured::default()
    };
    let tag = cases
        .first()
        .and_then(|c| c.parent.rsplit_once('-').map(|(t, _)| t.to_string()))
        .ok_or("bench --scale: no case")?;
    let tmp_parent = crate::util::target_dir().join("tmp");
    let tmp = testcaps::TempDir::new_in(&tmp_parent, "scale").map_err(|e| {
        format!(
            "creating a directory in {}: {} (check that target/ is writable and not full)",
            tmp_parent.display(),
            conventions::output::errtext(&e)
        )
    })?;
    let tmpdir = tmp.path();
    for family in [Family::Container, Family::Vm, Family::Oci] {
        let idx: Vec<usize> = (0..cases.len())
            .filter(|&i| cases[i].family == family)
            .collect();
        if idx.is_empty() {
            continue;
        }
        eprintln!("\nxtask bench --scale: {}", family.title());
        let mut state_dirs: Vec<PathBuf> = Vec::new();
        if family == Family::Oci {
            let prepared = super::super::oci::bundle(&bin.join("ocirun"), work, rootfs)
                .and_then(|b| {
                    let f = b.join("config.json");
                    let text = std::fs::read_to_string(&f)
                        .map_err(|e| format!("reading {}: {e}", f.display()))?;
                    serde_json::from_str::<serde_json::Value>(&text)
                        .map_err(|e| format!("{}: {e}", f.display()))
                })
                .and_then(|base| {
                    idx.iter().try_for_each(|&i| {
                        write_bundles(&base, work, cases[i].key, &cases[i].parent)
                    })
                })
                .and_then(|()| super::super::oci::hide_cgroup2());
            if let Err(e) = prepared {
                m.failures
                    .push(format!("the OCI family could not run: {e}"));
                continue;
            }
            for &i in &idx {
                if let Some(d) = &cases[i].state_dir {
                    let _ = std::fs::remove_dir_all(d);
                    state_dirs.push(d.clone());
                }
            }
        }
        let before = soak::snapshot();
        let mut pids = BTreeSet::new();
        let mut parents = Vec::new();
        for &i in &idx {
            match ParentGroup::named(&bin.join("cgctl"), cases[i].parent.clone()) {
                Ok(p) => parents.push((i, p)),
                Err(e) => m.failures.push(e),
            }
        }
        if parents.len() == idx.len() {
            for (k, step) in super::schedule(max).into_iter().enumerate() {
                // Ours first at one N, the peer first at the next: drifting load from elsewhere
                // falls on both alike.
                let order: Vec<usize> = if k % 2 == 0 {
                    idx.clone()
                } else {
                    idx.iter().rev().copied().collect()
                };
                for &i in &order {
                    let mut s = batch(i, &cases[i], step, None, tmpdir, &mut pids);
                    // Joining the group costs the driver about 0.12 ms per instance (a cgroup
                    // migration), a sixth of a tiny VM's share 20 at a time, so the memory is
                    // read in a batch of its own, untimed, right after the timed one.
                    if let Some(dir) = Peak::dir_of(&cases[i].parent) {
                        let mem = batch(i, &cases[i], step, Some(&dir), tmpdir, &mut pids);
                        (s.peak_bytes, s.peak_kmem_bytes, s.left_bytes) =
                            (mem.peak_bytes, mem.peak_kmem_bytes, mem.left_bytes);
                        s.failed.extend(mem.failed);
                        s.late += mem.late;
                    }
                    let p50 = super::percentile(&s.times_ms, 0.5);
                    let p99 = super::percentile(&s.times_ms, 0.99);
                    eprintln!(
                        "  {:<9} N={:<4} x{:<2} {:>8.0}/s  {:>7.3} ms per instance  p50 {:.2} ms  p99 {:.2} ms  peak {:.0} KiB ({:.0} KiB kernel) each, {:.1} KiB each left{}",
                        cases[i].key,
                        step.n,
                        step.parallel,
                        s.rate(),
                        s.cost_ms(),
                        p50,
                        p99,
                        s.peak_bytes.unwrap_or(0.0) / 1024.0,
                        s.peak_kmem_bytes.unwrap_or(0.0) / 1024.0,
                        s.left_bytes.unwrap_or(0.0) / 1024.0,
                        if s.failed.is_empty() {
                            String::new()
                        } else {
                            format!("  FAILED: {}", s.failed[0])
                        }
                    );
                    m.steps.push(s);
                }
            }
            for (i, parent) in &parents {
                if let Some(h) = &cases[*i].hold {
                    let r = hold(*i, h, parent, max, tmpdir, &mut pids);
                    eprintln!(
                        "  {:<9} held {} at once ({}): {:.0} KiB charged each, {:.0} KiB of it kernel; RSS {:.0} KiB, PSS {:.0} KiB, page tables {:.0} KiB",
                        cases[*i].key,
                        r.count,
                        r.limited_by,
                        r.cgroup_bytes.unwrap_or(0.0) / 1024.0,
                        r.kmem_bytes.unwrap_or(0.0) / 1024.0,
                        r.rss_kib,
                        r.pss_kib,
                        r.pte_kib
                    );
                    m.holds.push(r);
                }
            }
        }
        // The parents hold nothing once every instance has ended; a group left under one is
        // reported by name before cgctl delete -r removes it.
        for (_, p) in &parents {
            for g in p.children() {
                m.leftovers.push(format!("cgroup {g}"));
            }
        }
        drop(parents);
        let left = leftover::check(&before, &tag, &pids, &state_dirs, tmpdir);
        for l in &left {
            eprintln!("xtask bench --scale: LEFT BEHIND: {l}");
        }
        m.leftovers.extend(left);
        for g in leftover::tagged_groups(&tag) {
            if let Some(name) = g.file_name() {
                crate::demo::remove_group(&name.to_string_lossy());
            }
        }
        for &i in &idx {
            for slot in 0..super::PARALLEL {
                let _ = std::fs::remove_dir_all(super::bundle_dir(work, cases[i].key, slot));
            }
        }
        for d in &state_dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    drop(tmp);
    m.load.1 = report::load_average();
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_in_kib() {
        let t = "Rss:                1234 kB\nPss:                 567 kB\n";
        assert_eq!(kib_field(t, "Rss:"), Some(1234));
        assert_eq!(kib_field(t, "Pss:"), Some(567));
        assert_eq!(kib_field(t, "VmPTE:"), None);
        assert_eq!(kib_field("VmPTE:\t      48 kB\n", "VmPTE:"), Some(48));
    }

    #[test]
    fn rate_and_cost_per_instance() {
        let s = StepResult {
            case: 0,
            step: Step {
                n: 1000,
                parallel: 20,
            },
            wall: Duration::from_millis(500),
            times_ms: vec![],
            failed: vec![],
            late: 0,
            peak_bytes: None,
            peak_kmem_bytes: None,
            left_bytes: None,
        };
        assert_eq!(s.rate(), 2000.0);
        assert_eq!(s.cost_ms(), 0.5);
    }

    /// One at a time, each instance's marks are reset before it starts, so the highest
    /// instance's peak is reported, not the batch's (which holds the earlier ones' leftovers);
    /// many at a time, the batch's peak over the instances at once. Plain files stand in for
    /// the v1 counters: a write of 0 reads back as a base of 0.
    #[test]
    fn memory_one_at_a_time_keeps_the_highest_instance() {
        let dir = testcaps::TempDir::new("scale-memory").unwrap();
        let d = dir.path();
        for f in [MAX_USAGE, KMEM_MAX_USAGE, USAGE] {
            std::fs::write(d.join(f), "0").unwrap();
        }
        let mut mem = Memory::start(Some(d));
        for (peak, kmem) in [(3000, 1200), (1000, 400)] {
            mem.instance_starts(true);
            std::fs::write(d.join(MAX_USAGE), format!("{peak}")).unwrap();
            std::fs::write(d.join(KMEM_MAX_USAGE), format!("{kmem}")).unwrap();
            mem.instance_ended();
        }
        std::fs::write(d.join(USAGE), "400").unwrap();
        assert_eq!(mem.end(1, 2), (Some(3000.0), Some(1200.0), Some(200.0)));
        // The same files read as a batch of 2 at once: the group's peak, over 2.
        assert_eq!(mem.end(2, 2), (Some(500.0), Some(200.0), Some(200.0)));
        assert_eq!(Memory::start(None).end(1, 2), (None, None, None));
    }
}
