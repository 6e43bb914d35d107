//! `cargo xtask conformance`: the OCI runtime conformance suite (opencontainers/runtime-tools,
//! built offline from ../shared/conformance) run against ocirun, and against crun and runc where
//! they are installed, on the same machine, with per-test results and a summary line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util;

const USAGE: &str =
    "usage: cargo xtask conformance [FILTER] [--timeout SECS] [--ocirun-only | --ci] [-v]";

/// Tests whose own check races with the container's start, so that any runtime fails them now
/// and then (see xtask/README.md): `killsig` sends TERM right after `start` to a shell that is
/// PID 1 and sets its trap only once it runs. In `--ci` a failure of one of them is run once
/// more; a second failure fails CI.
pub const RACY: &[&str] = &["killsig"];

/// The tests ocirun cannot pass on this kind of host (Debian 12, kernel 6.18, hybrid cgroups,
/// root without CAP_SYS_RESOURCE), each with the reason, which is the host's or the test's own:
/// crun and runc fail every one of them here too. `--ci` runs every other test and fails when
/// one of those fails; xtask/README.md explains each row.
pub const HOST_FAILURES: &[(&str, &str)] = &[
    (
        "hooks",
        "prints the plan 1..0 for every runtime: it asserts nothing",
    ),
    (
        "prestart",
        "prints the plan 1..0 for every runtime: it asserts nothing",
    ),
    (
        "prestart_fail",
        "prints the plan 1..0 for every runtime: it asserts nothing",
    ),
    (
        "poststart",
        "prints the plan 1..0 for every runtime: it asserts nothing",
    ),
    (
        "poststart_fail",
        "prints the plan 1..0 for every runtime: it asserts nothing",
    ),
    (
        "poststop",
        "prints the plan 1..0 for every runtime: it asserts nothing",
    ),
    (
        "poststop_fail",
        "prints the plan 1..0 for every runtime: it asserts nothing",
    ),
    (
        "linux_cgroups_blkio",
        "wants /dev/sda (8:0) and blkio weights: the host has virtio disks and no BFQ/CFQ",
    ),
    (
        "linux_cgroups_relative_blkio",
        "wants /dev/sda (8:0) and blkio weights: the host has virtio disks and no BFQ/CFQ",
    ),
    (
        "linux_cgroups_hugetlb",
        "wants a v1 hugetlb hierarchy: the host has hugetlb on cgroup2 only",
    ),
    (
        "linux_cgroups_relative_hugetlb",
        "wants a v1 hugetlb hierarchy: the host has hugetlb on cgroup2 only",
    ),
    (
        "linux_cgroups_network",
        "wants net_cls/net_prio hierarchies: the host mounts neither",
    ),
    (
        "linux_cgroups_relative_network",
        "wants net_cls/net_prio hierarchies: the host mounts neither",
    ),
    (
        "linux_cgroups_memory",
        "kernel 6.18 takes memory.kmem.limit_in_bytes but keeps no kernel memory limit",
    ),
    (
        "linux_cgroups_relative_memory",
        "kernel 6.18 takes memory.kmem.limit_in_bytes but keeps no kernel memory limit",
    ),
    (
        "linux_process_apparmor_profile",
        "AppArmor is not enabled on the host (and not implemented by ocirun)",
    ),
    (
        "process_capabilities",
        "root on this host lacks CAP_SYS_RESOURCE",
    ),
    (
        "process_capabilities_fail",
        "root on this host lacks CAP_SYS_RESOURCE",
    ),
    (
        "process_rlimits",
        "runtimetest is a Go 1.19 program: its runtime raises its own RLIMIT_NOFILE soft limit",
    ),
    (
        "process_rlimits_fail",
        "root on this host lacks CAP_SYS_RESOURCE (raising a hard limit)",
    ),
    (
        "start",
        "its last case starts a container without process and wants success",
    ),
    (
        "pidfile",
        "racy: it kills a container whose `true` may have exited and wants success (a stopped \
         container's kill is an error)",
    ),
];

/// Why `test` cannot pass here, or `None` when it must.
pub fn host_failure(test: &str) -> Option<&'static str> {
    HOST_FAILURES
        .iter()
        .find(|(t, _)| *t == test)
        .map(|(_, why)| *why)
}

/// One test's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0, a TAP plan, no `not ok`.
    Pass(usize),
    /// Why not: the first `not ok` line, the exit status or a timeout.
    Fail(String),
}

/// Judges one test from its exit status and TAP output.
pub fn judge(success: bool, tap: &str) -> Verdict {
    let not_ok = tap
        .lines()
        .find(|l| l.starts_with("not ok") && !l.contains("# TODO"));
    if let Some(l) = not_ok {
        return Verdict::Fail(l.to_string());
    }
    let oks = tap.lines().filter(|l| l.starts_with("ok ")).count();
    let planned = tap.lines().any(|l| l.starts_with("1.."));
    match (success, planned) {
        (true, true) if oks == 0 => Verdict::Fail("no assertion ran (1..0)".into()),
        (true, true) => Verdict::Pass(oks),
        (true, false) => Verdict::Fail("no TAP plan (the test stopped early)".into()),
        (false, _) => {
            let last = tap
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output");
            Verdict::Fail(format!("exited non-zero; last line: {}", last.trim()))
        }
    }
}

fn build_script() -> Option<PathBuf> {
    let candidates = [
        util::root().join("../shared/conformance/build-runtime-tools.sh"),
        PathBuf::from("/work/shared/conformance/build-runtime-tools.sh"),
    ];
    candidates.into_iter().find(|p| p.is_file())
}

fn have(cmd: &str) -> Option<PathBuf> {
    conventions::exec::find_in_path(cmd)
}

/// Where the built suite is kept: a cache of this machine's, outside the work tree, so that a
/// fresh clone (CI's) does not link the 60 Go programs again (minutes on two busy cores).
/// Its name carries the source tarball's name and size, so another suite gets its own.
fn cache_dir(script: &Path) -> PathBuf {
    let tarball = script
        .parent()
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("runtime-tools-") && n.ends_with(".tar.gz"))
        });
    let key = match &tarball {
        Some(t) => format!(
            "{}-{}",
            t.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("runtime-tools")
                .trim_end_matches(".tar.gz"),
            std::fs::metadata(t).map(|m| m.len()).unwrap_or(0)
        ),
        None => "runtime-tools".to_string(),
    };
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(util::target_dir);
    base.join("microtools").join(key)
}

fn built(dir: &Path) -> bool {
    dir.join("validation/default/default.t").is_file() && dir.join("runtimetest").is_file()
}

/// Builds the suite into the cache unless it is there; the build goes to a temporary
/// directory renamed into place, so an interrupted build leaves no half-built suite.
fn build_suite() -> Result<PathBuf, String> {
    let script = build_script()
        .ok_or("no ../shared/conformance/build-runtime-tools.sh next to the repository")?;
    let dir = cache_dir(&script);
    if built(&dir) {
        return Ok(dir);
    }
    if have("go").is_none() {
        util::run(Command::new("apt-get").args(["install", "-y", "golang-go"]))?;
    }
    let parent = dir.parent().unwrap_or(Path::new("/tmp"));
    std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    let tmp = parent.join(format!(".building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = util::run(Command::new("sh").arg(&script).arg(&tmp));
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        format!("renaming {} to {}: {e}", tmp.display(), dir.display())
    })?;
    Ok(dir)
}

fn tests(dir: &Path, filter: Option<&str>) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("validation"))
        .map_err(|e| format!("reading {}/validation: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            dir.join("validation")
                .join(n)
                .join(format!("{n}.t"))
                .is_file()
        })
        .filter(|n| filter.is_none_or(|f| n.contains(f)))
        .collect();
    names.sort();
    Ok(names)
}

/// How a runtime is run (each test in a private mount namespace); crun's without the cgroup2
/// mount, since it refuses this host's hybrid layout otherwise.
struct Runtime {
    name: &'static str,
    path: PathBuf,
    hide_cgroup2: bool,
}

fn tmp_entries() -> Vec<String> {
    std::fs::read_dir("/tmp")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("ocitest"))
                .collect()
        })
        .unwrap_or_default()
}

/// The cgroups the suite's tests name (runtime-tools' cgroups.AbsCgroupPath and RelCgroupPath),
/// deepest first.
const SUITE_CGROUPS: [&str; 4] = [
    "testdir/cgrouptest/container",
    "testdir/cgrouptest",
    "testdir",
    "cgrouptest",
];

/// Removes what a runtime left of the suite's cgroups (rmdir: only empty ones go), so that one
/// runtime's leftovers do not decide the next runtime's result.
fn remove_suite_cgroups() {
    for m in testcaps::cgroup_mounts() {
        for rel in SUITE_CGROUPS {
            let _ = std::fs::remove_dir(m.join(rel));
        }
    }
}

/// ocirun's parent group for containers without linux.cgroupsPath (`ocirun/ID`), which many of
/// the suite's configs are: ocirun removes the container's group, not the parent.
const DEFAULT_PARENT: &str = "ocirun";

/// On drop, removes the (empty) default parent group from each hierarchy where it did not
/// exist when the recipe started: the suite's runs made it; one that was there stays.
struct DefaultParents(Vec<std::path::PathBuf>);

impl DefaultParents {
    fn missing_now() -> DefaultParents {
        DefaultParents(
            testcaps::cgroup_mounts()
                .into_iter()
                .map(|m| m.join(DEFAULT_PARENT))
                .filter(|d| !d.exists())
                .collect(),
        )
    }
}

impl Drop for DefaultParents {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// ocirun's default --root, where the suite's runs keep their state.
const DEFAULT_ROOT: &str = "/run/ocirun";

/// On drop, removes what the suite's runs left in ocirun's default --root that was not there
/// when the recipe started: the compiled seccomp profiles (`.seccomp/`), then the root itself
/// if it is empty. The containers are deleted one by one ([`remove_new_containers`]).
struct DefaultRoot {
    root_was_there: bool,
    cache_was_there: bool,
}

impl DefaultRoot {
    fn now() -> DefaultRoot {
        let root = Path::new(DEFAULT_ROOT);
        DefaultRoot {
            root_was_there: root.exists(),
            cache_was_there: root.join(".seccomp").exists(),
        }
    }
}

impl Drop for DefaultRoot {
    fn drop(&mut self) {
        let root = Path::new(DEFAULT_ROOT);
        if !self.cache_was_there {
            let _ = std::fs::remove_dir_all(root.join(".seccomp"));
        }
        if !self.root_was_there {
            let _ = std::fs::remove_dir(root);
        }
    }
}

/// Containers under ocirun's default --root.
fn ocirun_ids() -> Vec<String> {
    std::fs::read_dir(DEFAULT_ROOT)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                // Only container ids: not ocirun's own files (.seccomp/).
                .filter(|n| ocirun::state::check_id(n).is_ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes (with --force) the containers a test left behind.
fn remove_new_containers(ocirun: &Path, before: &[String]) {
    for id in ocirun_ids() {
        if !before.contains(&id) {
            let _ = Command::new(ocirun)
                .args(["delete", "--force", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn run_one(dir: &Path, rt: &Runtime, test: &str, limit: Duration) -> Verdict {
    let t = format!("validation/{test}/{test}.t");
    // Every test runs in a private mount namespace: a test whose config has no mount namespace
    // (linux_ns_itype) makes crun and runc mount the bundle's /proc, /sys and /dev in the
    // namespace they run in, which must not be the host's.
    let script = if rt.hide_cgroup2 {
        "umount -l /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\""
    } else {
        "exec \"$0\""
    };
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(&t);
    let out_file = util::target_dir().join(format!("conformance-{}-{test}.tap", rt.name));
    let Ok(out) = std::fs::File::create(&out_file) else {
        return Verdict::Fail(format!("cannot create {}", out_file.display()));
    };
    let before = tmp_entries();
    let containers_before = ocirun_ids();
    let child = cmd
        .current_dir(dir)
        .env("RUNTIME", &rt.path)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Verdict::Fail(format!("cannot run {t}: {e}")),
    };
    let status = util::wait_bounded(&mut child, limit, Duration::from_millis(20))
        .ok()
        .flatten();
    // Each test unpacks a bundle under /tmp/ocitest*: remove what this one left.
    for n in tmp_entries() {
        if !before.contains(&n) {
            let _ = std::fs::remove_dir_all(Path::new("/tmp").join(n));
        }
    }
    if rt.name == "ocirun" {
        remove_new_containers(&rt.path, &containers_before);
    }
    remove_suite_cgroups();
    let tap = std::fs::read_to_string(&out_file).unwrap_or_default();
    match status {
        None => Verdict::Fail(format!("timed out after {} s", limit.as_secs())),
        Some(s) => judge(s.success(), &tap),
    }
}

/// Runs the recipe.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut filter = None;
    let mut limit = Duration::from_secs(120);
    let mut verbose = false;
    let mut peers = true;
    let mut ci = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--timeout" => {
                let v = it.next().ok_or(USAGE)?;
                limit = Duration::from_secs(v.parse().map_err(|_| USAGE.to_string())?);
            }
            "-v" | "--verbose" => verbose = true,
            "--ocirun-only" => peers = false,
            "--ci" => {
                peers = false;
                ci = true;
            }
            f if !f.starts_with('-') && filter.is_none() => filter = Some(f.to_string()),
            _ => return Err(USAGE.to_string()),
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the conformance suite runs containers: run it as root".into());
    }
    util::run(util::cargo().args(["build", "-p", "ocirun"]))?;
    let _parents = DefaultParents::missing_now();
    let _root = DefaultRoot::now();
    let dir = build_suite()?;
    let mut runtimes = vec![Runtime {
        name: "ocirun",
        path: util::target_dir().join("debug/ocirun"),
        hide_cgroup2: false,
    }];
    let peer_list: &[(&'static str, bool)] = if peers {
        &[("crun", true), ("runc", false)]
    } else {
        &[]
    };
    for &(name, hide) in peer_list {
        if let Some(path) = have(name) {
            runtimes.push(Runtime {
                name,
                path,
                hide_cgroup2: hide,
            });
        }
    }
    let all = tests(&dir, None)?;
    if let Some((stale, _)) = HOST_FAILURES
        .iter()
        .find(|(t, _)| !all.iter().any(|n| n == t))
    {
        return Err(format!(
            "conformance: HOST_FAILURES names {stale}, which the suite does not have"
        ));
    }
    let mut names = tests(&dir, filter.as_deref())?;
    if ci {
        // What cannot pass here is not run: it costs time (kill and pidfile wait out timeouts
        // in some of them) and decides nothing.
        names.retain(|n| host_failure(n).is_none());
    }
    let mut table: Vec<(String, Vec<Verdict>)> = Vec::new();
    for test in &names {
        let mut row = Vec::new();
        for rt in &runtimes {
            let t0 = Instant::now();
            let mut v = run_one(&dir, rt, test, limit);
            if ci && matches!(v, Verdict::Fail(_)) && RACY.contains(&test.as_str()) {
                println!(
                    "{test:<36} {:<7} failed once; racy in itself, run again",
                    rt.name
                );
                v = run_one(&dir, rt, test, limit);
            }
            let secs = t0.elapsed().as_secs_f64();
            let shown = match &v {
                Verdict::Pass(n) => format!("pass ({n} ok)"),
                Verdict::Fail(why) => format!("FAIL: {why}"),
            };
            println!("{test:<36} {:<7} {secs:5.1} s  {shown}", rt.name);
            if verbose {
                let f = util::target_dir().join(format!("conformance-{}-{test}.tap", rt.name));
                println!("{}", std::fs::read_to_string(f).unwrap_or_default());
            }
            row.push(v);
        }
        table.push((test.clone(), row));
    }
    println!();
    for (i, rt) in runtimes.iter().enumerate() {
        let passed = table
            .iter()
            .filter(|(_, r)| matches!(r[i], Verdict::Pass(_)))
            .count();
        println!(
            "{}: {passed} passed, {} failed",
            rt.name,
            table.len() - passed
        );
    }
    if runtimes.len() > 1 {
        let behind: Vec<&str> = table
            .iter()
            .filter(|(_, r)| {
                !matches!(r[0], Verdict::Pass(_))
                    && r[1..].iter().any(|v| matches!(v, Verdict::Pass(_)))
            })
            .map(|(t, _)| t.as_str())
            .collect();
        println!(
            "ocirun fails {} test(s) that another runtime passes here: {}",
            behind.len(),
            behind.join(" ")
        );
    }
    let passed = table
        .iter()
        .filter(|(_, r)| matches!(r[0], Verdict::Pass(_)))
        .count();
    let unexpected: Vec<&str> = table
        .iter()
        .filter(|(t, r)| !matches!(r[0], Verdict::Pass(_)) && host_failure(t).is_none())
        .map(|(t, _)| t.as_str())
        .collect();
    let skipped = if ci {
        format!(
            " ({} not run: they cannot pass on this host, see xtask/README.md)",
            HOST_FAILURES.len()
        )
    } else {
        String::new()
    };
    println!("{passed} passed, {} failed{skipped}", table.len() - passed);
    if ci && !unexpected.is_empty() {
        return Err(format!(
            "conformance: ocirun failed {} test(s) it passes on this host: {}",
            unexpected.len(),
            unexpected.join(" ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_failures_are_unique_and_explained() {
        for (i, (t, why)) in HOST_FAILURES.iter().enumerate() {
            assert!(!why.is_empty(), "{t}");
            assert!(HOST_FAILURES[..i].iter().all(|(u, _)| u != t), "{t} twice");
        }
        assert!(host_failure("default").is_none());
        assert!(host_failure("process_capabilities").is_some());
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            judge(true, "TAP version 13\nok 1 - a\nok 2 # SKIP b\n1..2\n"),
            Verdict::Pass(2)
        );
        assert_eq!(
            judge(true, "ok 1 - a\nnot ok 2 - b\n1..2\n"),
            Verdict::Fail("not ok 2 - b".into())
        );
        assert!(matches!(judge(false, "ok 1\n1..1\n"), Verdict::Fail(m) if m.contains("non-zero")));
        assert!(matches!(judge(true, "ok 1\n"), Verdict::Fail(m) if m.contains("no TAP plan")));
    }
}
