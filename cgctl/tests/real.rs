//! cgctl against this machine's real cgroups, as root: limits that strike (pids, memory, CPU),
//! the report, the group commands, bad input, and that nothing is left behind.

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testcaps::{require, Cap, CgroupGuard};

mod common;
use common::block_device;

const BIN: &str = env!("CARGO_BIN_EXE_cgctl");
const LIMIT: Duration = Duration::from_secs(60);

fn cgctl(args: &[&str]) -> testcaps::Output {
    testcaps::run(Command::new(BIN).args(args), LIMIT)
}

fn ok(args: &[&str]) -> String {
    let out = cgctl(args);
    assert_eq!(out.code, Some(0), "cgctl {args:?}: {out:?}");
    out.stdout
}

/// The report `run --json` printed as the last line of stderr.
fn report(out: &testcaps::Output) -> Value {
    let line = out.stderr.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("no JSON report ({e}): {out:?}"))
}

/// Where cgctl routes `controller` on this host: (version, mount), from `cgctl info --json`.
fn route(controller: &str) -> Option<(u64, std::path::PathBuf)> {
    let out = testcaps::run(Command::new(BIN).args(["info", "--json"]), LIMIT);
    let v: Value = serde_json::from_str(out.stdout.trim()).ok()?;
    let r = &v["controllers"][controller];
    Some((r["version"].as_u64()?, r["mount"].as_str()?.into()))
}

fn mounted(controller: &str) -> bool {
    route(controller).is_some()
}

/// The v2 mount point, if cgroup2 is mounted.
fn v2_mount() -> Option<std::path::PathBuf> {
    let out = testcaps::run(Command::new(BIN).args(["info", "--json"]), LIMIT);
    let v: Value = serde_json::from_str(out.stdout.trim()).ok()?;
    v["hierarchies"]
        .as_array()?
        .iter()
        .find(|h| h["version"] == 2)
        .and_then(|h| h["mount"].as_str().map(Into::into))
}

/// Gates on testcaps' `cgroup` (memory, pids, cpu and freezing usable here), then checks that
/// cgctl routes each of the controllers too: one the host has and cgctl misses is a failure.
macro_rules! need {
    ($($c:expr),+) => {
        require!(Cap::Cgroup);
        for c in [$($c),+] {
            assert!(mounted(c), "the host has the {c} controller, cgctl info routes none");
        }
    };
}

/// Whether a /proc/PID/cgroup text puts the process in `group` in every hierarchy (v1 named
/// hierarchies aside), whatever the layout.
fn in_group(proc_cgroup: &str, group: &str) -> bool {
    let lines: Vec<&str> = proc_cgroup
        .lines()
        .filter(|l| !l.contains("name="))
        .collect();
    !lines.is_empty() && lines.iter().all(|l| l.ends_with(&format!(":/{group}")))
}

/// Whether a /proc/PID/cgroup text puts a `run`'s command in `group` where a run places it:
/// v2 and the hierarchies of the report's controllers (memory, pids).
fn in_run_group(proc_cgroup: &str, group: &str) -> bool {
    let lines: Vec<&str> = proc_cgroup
        .lines()
        .filter(|l| {
            let c = l.split(':').nth(1).unwrap_or("");
            l.starts_with("0::") || c.split(',').any(|c| ["memory", "pids"].contains(&c))
        })
        .collect();
    !lines.is_empty() && lines.iter().all(|l| l.ends_with(&format!(":/{group}")))
}

/// Swap in use makes a memory limit swap instead of OOM-kill: limit swap too where there is any.
fn swap_args() -> Vec<&'static str> {
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    if swaps.lines().count() > 1 {
        vec!["--swap", "0"]
    } else {
        vec![]
    }
}

/// `cgctl run OPTS --json [--swap 0 unless OPTS set it] -- dd` of one 100M block: the allocation
/// the memory limit tests OOM-kill; returns the output and its report.
fn run_100m_alloc(opts: &[&str]) -> (testcaps::Output, Value) {
    let mut args = vec!["run"];
    args.extend(opts);
    args.push("--json");
    if !opts.contains(&"--swap") {
        args.extend(swap_args());
    }
    args.extend([
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=100M",
        "count=1",
    ]);
    let out = cgctl(&args);
    let rep = report(&out);
    (out, rep)
}

/// `cgctl run --memory MEMORY --json -- dd if=/dev/zero of=/dev/null BS COUNT`, which must exit
/// 0; returns its report.
fn dd_ok_under(memory: &str, bs: &str, count: &str) -> Value {
    let out = cgctl(&[
        "run",
        "--memory",
        memory,
        "--json",
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        bs,
        count,
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    report(&out)
}

fn gone(guard: &CgroupGuard) {
    assert!(
        guard.existing().is_empty(),
        "left behind: {:?}",
        guard.existing()
    );
}

fn report_group_gone(rep: &Value) {
    let name = rep["cgroup"].as_str().expect("cgroup in report");
    for m in testcaps::cgroup_mounts() {
        assert!(
            !m.join(name).exists(),
            "{} left behind",
            m.join(name).display()
        );
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `cgctl args` in the background with its output discarded, for tests that signal it.
fn spawn_quiet(args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Sends `sig` to `child` and waits up to 20 s for it to end (killing it and failing otherwise).
fn signal_and_wait(child: &mut std::process::Child, sig: i32) -> std::process::ExitStatus {
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
    testcaps::wait_bounded(child, Duration::from_secs(20))
}

fn alive(pid: i32) -> bool {
    // A zombie counts as gone: it runs nothing and holds no cgroup.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn pids_limit_refuses_forks_and_counts_them() {
    require!(Cap::Root);
    need!("pids");
    let g = CgroupGuard::new("cgctl-pids");
    let out = cgctl(&[
        "run",
        "--pids",
        "5",
        "--name",
        g.name(),
        "--json",
        "--",
        "sh",
        "-c",
        // A subshell per job, so that the loop survives its failed forks and keeps trying.
        "for i in $(seq 20); do (sleep 1 &); done; wait",
    ]);
    let rep = report(&out);
    assert!(out.stderr.contains("fork"), "{out:?}");
    // Five tasks at most, so most of the 20 jobs are refused, and each refusal is counted.
    assert!(rep["pids_limit_hits"].as_u64().unwrap() >= 10, "{rep}");
    let peak = rep["pids_peak"].as_u64().unwrap();
    assert!((1..=5).contains(&peak), "{rep}");
    assert_eq!(rep["limits"]["pids"], 5);
    assert_eq!(rep["oom_killed"], false);
    gone(&g);
}

#[test]
fn memory_limit_oom_kills_the_allocation() {
    require!(Cap::Root);
    need!("memory");
    let g = CgroupGuard::new("cgctl-oom");
    let (out, rep) = run_100m_alloc(&["--memory", "32M", "--name", g.name()]);
    // cgctl dies of the child's signal.
    assert_eq!(out.signal, Some(libc::SIGKILL), "{out:?}");
    assert_eq!(rep["signal"], 9, "{rep}");
    assert_eq!(rep["exit_code"], Value::Null);
    assert_eq!(rep["oom_killed"], true, "{rep}");
    assert!(rep["oom_kills"].as_u64().unwrap() >= 1);
    let peak = rep["memory_peak_bytes"].as_u64().unwrap();
    assert!(
        (28 << 20..=32 << 20).contains(&peak),
        "peak {peak} not near 32M: {rep}"
    );
    gone(&g);
}

#[test]
fn an_oom_kill_with_no_swap_counts_its_limit_hits() {
    require!(Cap::Root);
    need!("memory");
    let g = CgroupGuard::new("cgctl-oom-noswap");
    // --swap 0 on v1 is memory.memsw.limit_in_bytes = --memory: the charges fail there first,
    // and v1 counts them in memory.memsw.failcnt, not memory.failcnt.
    let (out, rep) = run_100m_alloc(&["--memory", "32M", "--swap", "0", "--name", g.name()]);
    assert_eq!(out.signal, Some(libc::SIGKILL), "{out:?}");
    assert_eq!(rep["oom_killed"], true, "{rep}");
    assert!(rep["memory_limit_hits"].as_u64().unwrap() >= 1, "{rep}");
    gone(&g);
}

#[test]
fn report_errors_hint_at_the_report_file() {
    require!(Cap::Root);
    for (path, needle, hint) in [
        (
            "/dev/full",
            "write report /dev/full failed: No space left on device",
            "(the report's file system is full)",
        ),
        (
            "/nonexistent-dir/r.json",
            "create report /nonexistent-dir/r.json failed: No such file or directory",
            "(its directory does not exist: create it first)",
        ),
    ] {
        let out = cgctl(&["run", "--report", path, "--", "true"]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        assert!(out.stderr.contains(needle), "{out:?}");
        assert!(out.stderr.trim_end().ends_with(hint), "{out:?}");
        for wrong in ["cpuset", "controller"] {
            assert!(!out.stderr.contains(wrong), "{out:?}");
        }
    }
}

#[test]
fn small_work_under_16m_is_not_oom_killed() {
    require!(Cap::Root);
    need!("memory");
    let rep = dd_ok_under("16M", "bs=1M", "count=4");
    assert_eq!(rep["exit_code"], 0);
    assert_eq!(rep["oom_killed"], false, "{rep}");
    assert_eq!(rep["oom_kills"], 0);
    assert!(rep["memory_peak_bytes"].as_u64().unwrap() < 16 << 20);
    report_group_gone(&rep);
}

#[test]
fn the_allocation_really_allocates() {
    require!(Cap::Root);
    need!("memory");
    // Without a tight limit the same dd reaches 100M: the OOM case above is a real allocation.
    let rep = dd_ok_under("512M", "bs=100M", "count=1");
    assert!(
        rep["memory_peak_bytes"].as_u64().unwrap() >= 100 << 20,
        "{rep}"
    );
    assert_eq!(rep["oom_killed"], false);
    report_group_gone(&rep);
}

#[test]
fn cpu_quota_throttles_a_busy_loop() {
    require!(Cap::Root);
    need!("cpu");
    let out = cgctl(&[
        "run",
        "--cpus",
        "0.2",
        "--json",
        "--",
        "timeout",
        "1",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    assert_eq!(out.code, Some(124), "{out:?}");
    let rep = report(&out);
    let cpu = rep["cpu_usage_usec"].as_f64().unwrap();
    let wall = rep["wall_time_usec"].as_f64().unwrap();
    let share = cpu / wall;
    // A functional check that the quota throttles, not a benchmark: unthrottled it would be ~1.
    assert!((0.1..0.35).contains(&share), "cpu share {share}: {rep}");
    assert!(rep["cpu_nr_throttled"].as_u64().unwrap() > 0, "{rep}");
    assert_eq!(rep["limits"]["cpu_quota_usec"], 20000);
    report_group_gone(&rep);
}

#[test]
fn run_passes_exit_codes_and_cleans_up_orphans() {
    require!(Cap::Root);
    let out = cgctl(&[
        "run",
        "--json",
        "--",
        "sh",
        "-c",
        "sleep 30 & echo $!; exit 7",
    ]);
    assert_eq!(out.code, Some(7), "{out:?}");
    let rep = report(&out);
    assert_eq!(rep["exit_code"], 7);
    let orphan: i32 = out.stdout.trim().parse().expect("orphan pid");
    wait_until("the orphan to die", || !alive(orphan));
    report_group_gone(&rep);
    let out = cgctl(&["run", "--json", "--", "/nonexistent/program"]);
    assert_eq!(out.code, Some(127), "{out:?}");
    // strerror's words, never std's " (os error N)"; the report follows on stderr.
    assert_eq!(
        out.stderr.lines().next(),
        Some("cgctl: failed to execute /nonexistent/program: No such file or directory"),
        "{out:?}"
    );
    report_group_gone(&report(&out));
}

#[test]
fn run_places_the_command_in_every_hierarchy_and_writes_the_report() {
    require!(Cap::Root);
    let g = CgroupGuard::new("cgctl-place");
    let file = std::env::temp_dir().join(format!("{}.json", g.name()));
    let file_s = file.display().to_string();
    let out = cgctl(&[
        "run",
        "--name",
        g.name(),
        "--report",
        &file_s,
        "--",
        "cat",
        "/proc/self/cgroup",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let own = format!(":/{}", g.name());
    // The hierarchies a run uses: the report's (memory, pids) and v2 (clone3
    // CLONE_INTO_CGROUP, cpu.stat), or v1 cpuacct and freezer without v2. Elsewhere the command stays where
    // cgctl was, as this test's own /proc/self/cgroup shows.
    let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let used = |line: &str| {
        let ctrls = line.split(':').nth(1).unwrap_or("");
        let v2 = line.starts_with("0::");
        v2 || ctrls.split(',').any(|c| ["memory", "pids"].contains(&c))
            || (ctrls.split(',').any(|c| c == "freezer" || c == "cpuacct")
                && !mine.lines().any(|l| l.starts_with("0::")))
    };
    let mut checked = 0;
    for line in out.stdout.lines() {
        if line.contains("name=") {
            continue;
        }
        if used(line) {
            assert!(line.ends_with(&own), "{line} not in the group: {out:?}");
            checked += 1;
        } else {
            assert!(
                mine.lines().any(|l| l == line),
                "{line} moved although the run needs nothing there: {out:?}"
            );
        }
    }
    assert!(checked > 0, "no hierarchy checked: {out:?}");
    // A limit brings its hierarchy in: --cpuset places the command in the cpuset group too.
    if route("cpuset").is_some_and(|(v, _)| v == 1) {
        let out = cgctl(&[
            "run",
            "--cpuset",
            "0",
            "--name",
            g.name(),
            "--",
            "cat",
            "/proc/self/cgroup",
        ]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let line = out
            .stdout
            .lines()
            .find(|l| l.split(':').nth(1) == Some("cpuset"));
        assert!(line.is_some_and(|l| l.ends_with(&own)), "{out:?}");
    }
    let text = std::fs::read_to_string(&file).expect("report file");
    let _ = std::fs::remove_file(&file);
    let rep: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(rep["exit_code"], 0);
    for key in [
        "signal",
        "oom_killed",
        "oom_kills",
        "memory_peak_bytes",
        "cpu_usage_usec",
        "cpu_user_usec",
        "cpu_system_usec",
        "pids_peak",
        "pids_limit_hits",
        "wall_time_usec",
        "limits",
    ] {
        assert!(rep.get(key).is_some(), "{key} missing: {rep}");
    }
    gone(&g);
}

#[test]
fn sigterm_to_cgctl_reaches_the_command_and_cleans_up() {
    require!(Cap::Root);
    let g = CgroupGuard::new("cgctl-term");
    let mut child = spawn_quiet(&["run", "--name", g.name(), "--", "sleep", "30"]);
    wait_until("sleep to start", || {
        cgctl(&["pids", g.name()]).stdout.lines().count() == 1
    });
    let status = signal_and_wait(&mut child, libc::SIGTERM);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    gone(&g);
}

#[test]
fn concurrent_runs_do_not_collide() {
    require!(Cap::Root);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                cgctl(&["run", "--pids", "10", "--json", "--", "sh", "-c", "exit 3"])
            })
        })
        .collect();
    let mut names = Vec::new();
    for h in handles {
        let out = h.join().unwrap();
        assert_eq!(out.code, Some(3), "{out:?}");
        let rep = report(&out);
        report_group_gone(&rep);
        names.push(rep["cgroup"].as_str().unwrap().to_string());
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 4);
}

fn spawn_in(group: &str, script: &str) -> std::process::Child {
    spawn_quiet(&["exec", group, "--", "sh", "-c", script])
}

fn reap(mut c: std::process::Child) {
    let start = Instant::now();
    while c.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = c.kill();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn freeze_and_thaw() {
    require!(Cap::Root, Cap::Cgroup);
    let g = CgroupGuard::new("cgctl-freeze");
    // v1 freezer where it is mounted, else v2 cgroup.freeze.
    let check: Box<dyn Fn() -> bool> = match (route("freezer"), v2_mount()) {
        (Some((1, m)), _) => {
            let f = m.join(g.name()).join("freezer.state");
            Box::new(move || std::fs::read_to_string(&f).unwrap_or_default().trim() == "FROZEN")
        }
        (_, Some(m)) => {
            let f = m.join(g.name()).join("cgroup.events");
            Box::new(move || {
                std::fs::read_to_string(&f)
                    .unwrap_or_default()
                    .contains("frozen 1")
            })
        }
        _ => panic!("testcaps' cgroup found a v1 freezer or a cgroup2, cgctl info neither"),
    };
    ok(&["create", g.name()]);
    let c = spawn_in(g.name(), "while :; do sleep 0.05; done");
    wait_until("the loop to start", || !ok(&["pids", g.name()]).is_empty());
    ok(&["freeze", g.name()]);
    assert!(check(), "not frozen after cgctl freeze");
    // Frozen: no new sleep can start, so the pid list stays the same.
    let before = ok(&["pids", g.name()]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ok(&["pids", g.name()]), before);
    ok(&["thaw", g.name()]);
    assert!(!check(), "still frozen after cgctl thaw");
    wait_until("a new sleep after thaw", || {
        ok(&["pids", g.name()]) != before
    });
    ok(&["kill", g.name()]);
    assert_eq!(ok(&["pids", g.name()]), "");
    reap(c);
    ok(&["delete", g.name()]);
    gone(&g);
}

#[test]
fn kill_leaves_no_escapee_of_a_fork_loop() {
    require!(Cap::Root);
    need!("pids");
    for sig in ["KILL", "TERM"] {
        let g = CgroupGuard::new("cgctl-kill");
        ok(&["create", g.name(), "--pids", "500"]);
        // Keeps forking (about 100 a second, each child living a second) until killed.
        let c = spawn_in(g.name(), "while :; do sh -c 'sleep 1' & sleep 0.01; done");
        wait_until("the fork loop to grow", || {
            ok(&["pids", g.name()]).lines().count() >= 10
        });
        ok(&["kill", g.name(), "-s", sig]);
        wait_until("the group to empty", || ok(&["pids", g.name()]).is_empty());
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            ok(&["pids", g.name()]),
            "",
            "an escapee after kill -s {sig}"
        );
        reap(c);
        ok(&["delete", g.name()]);
        gone(&g);
    }
}

#[test]
fn move_exec_pids_list_and_delete() {
    require!(Cap::Root);
    let g = CgroupGuard::new("cgctl-move");
    let a = format!("{}/a", g.name());
    let c = format!("{}/b/c", g.name());
    ok(&["create", &a]);
    ok(&["create", &c, "--pids", "10"]);
    let list = ok(&["list", g.name()]);
    assert_eq!(
        list,
        format!("{0}\n{0}/a\n{0}/b\n{0}/b/c\n", g.name()),
        "{list}"
    );
    let v: Value = serde_json::from_str(ok(&["list", g.name(), "--json"]).trim()).unwrap();
    assert_eq!(v["cgroups"].as_array().unwrap().len(), 4);
    // move: a process started outside goes in everywhere.
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id().to_string();
    ok(&["move", &a, &pid]);
    assert_eq!(ok(&["pids", &a]), format!("{pid}\n"));
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in own.lines().filter(|l| !l.contains("name=")) {
        assert!(line.ends_with(&format!(":/{a}")), "{line}");
    }
    // The parent's pids include its descendants'.
    assert_eq!(ok(&["pids", g.name()]), format!("{pid}\n"));
    // exec: the program runs inside the group.
    let out = cgctl(&["exec", &c, "--", "cat", "/proc/self/cgroup"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(in_group(&out.stdout, &c), "{out:?}");
    let out = cgctl(&["exec", &c, "--", "/nonexistent"]);
    assert_eq!(out.code, Some(127), "{out:?}");
    assert_eq!(
        out.stderr,
        "cgctl: failed to execute /nonexistent: No such file or directory\n"
    );
    // Not empty, not recursive: refused, and nothing removed.
    let out = cgctl(&["delete", g.name()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.contains("-r"), "{out:?}");
    // With a live process, delete -r fails and says so.
    let out = cgctl(&["delete", "-r", g.name()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("kill"), "{out:?}");
    ok(&["kill", g.name()]);
    testcaps::wait_bounded(&mut sleeper, LIMIT);
    ok(&["delete", "-r", g.name()]);
    gone(&g);
    let out = cgctl(&["pids", g.name()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("does not exist"), "{out:?}");
}

#[test]
fn create_get_set_stat() {
    require!(Cap::Root);
    need!("memory", "pids", "cpu");
    let g = CgroupGuard::new("cgctl-set");
    ok(&[
        "create",
        g.name(),
        "--memory",
        "64M",
        "--pids",
        "20",
        "--cpus",
        "0.5",
    ]);
    let out = ok(&["get", g.name(), "pids.max"]);
    assert_eq!(out, "pids.max: 20\n");
    ok(&["set", g.name(), "--pids", "30", "--set", "pids.max=31"]);
    assert_eq!(ok(&["get", g.name(), "pids.max", "-n"]), "31\n");
    let v: Value = serde_json::from_str(ok(&["get", g.name(), "--json"]).trim()).unwrap();
    let mem = v
        .get("memory.max")
        .or_else(|| v.get("memory.limit_in_bytes"))
        .unwrap();
    assert_eq!(mem, "67108864", "{v}");
    let cpu = v
        .get("cpu.max")
        .or_else(|| v.get("cpu.cfs_quota_us"))
        .unwrap();
    assert!(cpu.as_str().unwrap().starts_with("50000"), "{v}");
    if mounted("blkio") {
        if let Some((dev, majmin)) = block_device() {
            ok(&["set", g.name(), "--io-read-bps", &format!("{dev}=1M")]);
            assert_eq!(
                ok(&["get", g.name(), "blkio.throttle.read_bps_device", "-n"]),
                format!("{majmin} 1048576\n")
            );
        }
    }
    // The keys create/set take read back in their units, on whichever version carries each.
    ok(&["set", g.name(), "--cpu-weight", "50"]);
    assert_eq!(
        ok(&["get", g.name(), "memory", "cpus", "pids", "cpu-weight"]),
        "memory: 67108864\ncpus: 0.5\npids: 31\ncpu-weight: 50\n"
    );
    ok(&["set", g.name(), "--memory", "max", "--cpus", "max"]);
    assert_eq!(ok(&["get", g.name(), "memory", "cpus", "-n"]), "max\nmax\n");
    let out = cgctl(&["get", g.name(), "memroy"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "cgctl: get: unknown key 'memroy' (an interface file such as pids.max, or one of: memory, memory-high, swap, cpus, cpu-weight, pids, cpuset, mems)\n"
    );
    // cgexec's form: the command is the first word that is not an option, no `--` needed.
    let out = cgctl(&[
        "run",
        "--parent",
        g.name(),
        "--memory",
        "64M",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.code, Some(3), "{out:?}");
    let s: Value = serde_json::from_str(ok(&["stat", g.name(), "--json"]).trim()).unwrap();
    assert_eq!(s["pids_current"], 0, "{s}");
    assert_eq!(s["oom_kills"], 0, "{s}");
    let out = cgctl(&["create", g.name()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("already exists"), "{out:?}");
    let out = cgctl(&["run", "--name", g.name(), "--", "true"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("already exists"), "{out:?}");
    // --parent: NAME is relative to it, for run as for the other commands.
    let out = cgctl(&[
        "run",
        "--parent",
        g.name(),
        "--name",
        "child",
        "--json",
        "--",
        "cat",
        "/proc/self/cgroup",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        in_run_group(&out.stdout, &format!("{}/child", g.name())),
        "{out:?}"
    );
    assert_eq!(report(&out)["cgroup"], format!("{}/child", g.name()));
    assert_eq!(ok(&["list", g.name()]), format!("{}\n", g.name()));
    assert_eq!(
        ok(&["get", "--parent", g.name(), "", "pids.max", "-n"]),
        "31\n"
    );
    ok(&["delete", g.name()]);
    gone(&g);
}

#[test]
fn info_reports_the_layout() {
    require!(Cap::Root);
    let v: Value = serde_json::from_str(ok(&["info", "--json"]).trim()).unwrap();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v1 = info.contains(" - cgroup cgroup ");
    let v2 = info.contains(" - cgroup2 ");
    let want = match (v1, v2) {
        (true, true) => "hybrid",
        (false, true) => "unified",
        (true, false) => "legacy",
        (false, false) => "none",
    };
    assert_eq!(v["layout"], want, "{v}");
    if mounted("memory") {
        assert!(v["controllers"]["memory"]["mount"].is_string(), "{v}");
    }
    assert!(!v["own"].as_array().unwrap().is_empty());
    let text = ok(&["info"]);
    assert!(text.starts_with(&format!("layout: {want}\n")), "{text}");
}

#[test]
fn bad_input_is_one_line_and_leaves_nothing() {
    require!(Cap::Root);
    let g = CgroupGuard::new("cgctl-bad");
    let n = g.name();
    let dotdot = format!("{n}/../x");
    // Nested under the guarded name, so that a regression's group is still removed.
    let tab = format!("{n}/a\tb");
    let escape = format!("{n}/a\x1b[2Jb");
    let del = format!("{n}/a\x7fb");
    let long = format!("{n}/{}", "x".repeat(256));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["create", n, "--memory", "12Q"], "invalid size"),
        (vec!["create", n, "--memory", "lots"], "invalid size"),
        (vec!["create", n, "--pids", "0"], "--pids"),
        (vec!["create", n, "--pids=-3"], "--pids"),
        (vec!["create", n, "--cpus", "0"], "--cpus"),
        (vec!["create", n, "--cpu-weight", "0"], "--cpu-weight"),
        (
            vec!["create", n, "--set", "bogus.file=1"],
            "bogus controller",
        ),
        (
            vec!["create", n, "--io-read-bps", "/dev/no-such-disk=1M"],
            "unknown device",
        ),
        (
            vec!["create", n, "--io-write-bps", "/dev/null=1M"],
            "not a block device",
        ),
        (vec!["create", &dotdot], "invalid cgroup name"),
        // Fails after the directories exist: they must be removed again.
        (
            vec!["create", n, "--pids", "5", "--set", "pids.no_such_file=1"],
            "no_such_file",
        ),
        (vec!["create", "/etc"], "invalid cgroup name"),
        (vec!["create", &tab], "control character"),
        (vec!["create", &escape], "control character"),
        (vec!["create", &del], "control character"),
        (
            vec!["run", "--name", &tab, "--", "true"],
            "control character",
        ),
        (vec!["create", &long], "longer than 255 bytes"),
        (
            vec!["run", "--name", &long, "--", "true"],
            "longer than 255 bytes",
        ),
        // -1 is no size: cgroup v1's own "unlimited" spelling must not pass as max silently.
        (vec!["create", n, "--memory=-1"], "--memory"),
        (vec!["create", n, "--swap=-1", "--memory", "1G"], "--swap"),
        (vec!["run", "--memory=-1", "--", "true"], "--memory"),
        // An empty write changes nothing: it must not pass as if it had set the file.
        (
            vec!["create", n, "--set", "pids.max="],
            "--set: empty value for pids.max",
        ),
        (
            vec!["run", "--set", "pids.max=", "--", "true"],
            "--set: empty value",
        ),
        (vec!["stat", n], "does not exist"),
        (vec!["delete", n], "does not exist"),
        (vec!["kill", n, "-s", "NOPE"], "unknown signal"),
        (vec!["move", n, "0"], ""),
        (vec!["run", "--memory", "1X", "--", "true"], "invalid size"),
        (
            vec!["run", "--report", "/nonexistent-dir/r.json", "--", "true"],
            "create report /nonexistent-dir/r.json failed: No such file or directory (its directory",
        ),
    ];
    for (args, needle) in cases {
        let out = cgctl(&args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("cgctl: "), "{args:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {out:?}");
        // strerror's words, never std's " (os error N)".
        assert!(!out.stderr.contains("(os error"), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "");
        gone(&g);
    }
    if std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" - cgroup cgroup ") && l.contains(",memory"))
    {
        // v1 memory has no memory.high: an error naming the controller, never silence.
        let out = cgctl(&["create", n, "--memory-high", "1G"]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stderr.contains("memory controller"), "{out:?}");
        gone(&g);
    }
}

#[test]
fn v2_controllers_for_real_where_the_host_has_them() {
    // A v1 or hybrid host skips: the fake-tree tests and the guest lane cover v2 there.
    require!(Cap::Root, Cap::CgroupV2);
    let (Some((2, _)), Some((2, _))) = (route("memory"), route("pids")) else {
        panic!("memory and pids are on cgroup v2, cgctl info routes them elsewhere");
    };
    let g = CgroupGuard::new("cgctl-v2");
    let (out, rep) = run_100m_alloc(&["--memory", "32M", "--pids", "16", "--name", g.name()]);
    assert_eq!(out.signal, Some(libc::SIGKILL), "{out:?}");
    assert_eq!(rep["oom_killed"], true, "{rep}");
    assert!(
        rep["memory_peak_bytes"].as_u64().unwrap() >= 24 << 20,
        "{rep}"
    );
    assert!(rep["pids_peak"].as_u64().is_some(), "{rep}");
    gone(&g);
}

#[test]
fn sigint_is_forwarded_to_the_command() {
    require!(Cap::Root);
    let g = CgroupGuard::new("cgctl-int");
    let mut child = spawn_quiet(&[
        "run",
        "--name",
        g.name(),
        "--",
        "sh",
        "-c",
        "trap 'exit 5' INT; sleep 30 & wait",
    ]);
    // The shell and its sleep are both in the group once the trap is set.
    wait_until("sh and sleep to start", || {
        cgctl(&["pids", g.name()]).stdout.lines().count() == 2
    });
    let status = signal_and_wait(&mut child, libc::SIGINT);
    // The command caught the forwarded SIGINT and exited 5; its orphaned sleep was killed.
    assert_eq!(status.code(), Some(5), "{status:?}");
    gone(&g);
}

#[test]
fn run_with_a_nested_name_removes_only_the_parents_it_made() {
    require!(Cap::Root);
    let g = CgroupGuard::new("cgctl-nest");
    let nested = format!("{}/inner/job", g.name());
    let out = cgctl(&["run", "--name", &nested, "--", "true"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    gone(&g);
    ok(&["create", g.name()]);
    let out = cgctl(&["run", "--name", &nested, "--", "true"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    // The parent existed before the run: it stays, and only it.
    assert_eq!(ok(&["list", g.name()]), format!("{}\n", g.name()));
    ok(&["delete", g.name()]);
    gone(&g);
}

#[test]
fn the_command_borrows_our_memory_until_it_execs() {
    require!(Cap::Root);
    need!("pids");
    let (out, trace) = testcaps::strace(
        Command::new(BIN).args(["run", "--pids", "8", "--", "true"]),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    if v2_mount().is_some() {
        // Born in its v2 group (clone3 CLONE_INTO_CGROUP), on cgctl's memory until it execs.
        let clone = testcaps::one_call(&trace, "clone3");
        assert!(
            clone.contains("flags=CLONE_VM|CLONE_VFORK|CLONE_INTO_CGROUP"),
            "{trace}"
        );
    } else {
        let clone = testcaps::one_call(&trace, "clone");
        assert!(
            clone.contains("flags=CLONE_VM|CLONE_VFORK|SIGCHLD"),
            "{trace}"
        );
    }
}

/// The parent pid of `pid` (field 4 of /proc/PID/stat), if it exists.
fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The records `cgctl run` (pid `pid`) keeps in /run/cgctl.
fn records_of(pid: u32) -> Vec<std::path::PathBuf> {
    let prefix = format!("run-{pid}-");
    std::fs::read_dir("/run/cgctl")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// `cgctl gc` collects every dead run's group: the tests that call it take turns, so that one's
/// gc does not collect (and name) the group another test is about to see its own gc remove.
static GC_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Removes the records of a test's `cgctl run` when dropped, even when the test failed.
struct RecordGuard(u32);

impl Drop for RecordGuard {
    fn drop(&mut self) {
        for r in records_of(self.0) {
            let _ = std::fs::remove_file(r);
        }
    }
}

#[test]
fn sigkill_of_cgctl_kills_the_command_and_gc_removes_the_group() {
    require!(Cap::Root);
    let _turn = GC_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let g = CgroupGuard::new("cgctl-killed");
    // The command (pid P, cgctl's child) leaves a background sleep behind in the group.
    let mut cgctl_run = spawn_quiet(&[
        "run",
        "--name",
        g.name(),
        "--",
        "sh",
        "-c",
        "sleep 100 & exec sleep 101",
    ]);
    let records = RecordGuard(cgctl_run.id());
    let pids = || -> Vec<i32> {
        cgctl(&["pids", g.name()])
            .stdout
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    };
    wait_until("both sleeps to start", || pids().len() == 2);
    let cgctl_pid = cgctl_run.id() as i32;
    let (child, orphan): (Vec<i32>, Vec<i32>) = pids()
        .into_iter()
        .partition(|&p| ppid(p) == Some(cgctl_pid));
    let (child, orphan) = (child[0], orphan[0]);
    assert_eq!(records_of(cgctl_run.id()).len(), 1, "no record of the run");
    let status = signal_and_wait(&mut cgctl_run, libc::SIGKILL);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // The parent-death signal ends the command with cgctl.
    wait_until("the command to die with cgctl", || !alive(child));
    // What it started is still there, in the group, in every hierarchy of the run, and recorded.
    assert!(alive(orphan), "the background sleep is gone already");
    assert!(g.existing().len() >= 2, "{:?}", g.existing());
    assert_eq!(records_of(cgctl_pid as u32).len(), 1);
    // gc --parent keeps to the groups below it.
    let elsewhere = format!("{}-elsewhere", g.name());
    let out = cgctl(&["gc", "--parent", &elsewhere]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""), "{out:?}");
    assert!(alive(orphan) && g.existing().len() >= 2);
    let out = cgctl(&["gc", "--parent", g.name()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.lines().any(|l| l == g.name()),
        "gc did not name {}: {out:?}",
        g.name()
    );
    assert_eq!(out.stderr, "");
    wait_until("gc to kill the orphan", || !alive(orphan));
    gone(&g);
    assert!(records_of(cgctl_pid as u32).is_empty(), "record left");
    drop(records);
}

#[test]
fn gc_leaves_live_runs_alone_and_a_finished_run_leaves_no_record() {
    require!(Cap::Root);
    let _turn = GC_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let g = CgroupGuard::new("cgctl-live");
    let mut cgctl_run = spawn_quiet(&["run", "--name", g.name(), "--", "sleep", "100"]);
    let _records = RecordGuard(cgctl_run.id());
    wait_until("sleep to start", || {
        cgctl(&["pids", g.name()]).stdout.lines().count() == 1
    });
    let out = cgctl(&["gc"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.lines().any(|l| l == g.name()), "{out:?}");
    assert_eq!(cgctl(&["pids", g.name()]).stdout.lines().count(), 1);
    assert_eq!(records_of(cgctl_run.id()).len(), 1);
    let status = signal_and_wait(&mut cgctl_run, libc::SIGTERM);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    gone(&g);
    assert!(records_of(cgctl_run.id()).is_empty(), "record left");
}
