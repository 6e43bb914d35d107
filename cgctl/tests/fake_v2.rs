//! The cgroup v2 code path against a fake cgroup2 tree in a temp dir (interface files with their
//! kernel formats), through the built binary; no root and no real cgroup is touched.
//!
//! Only in debug builds: a release cgctl ignores `CGCTL_MOUNTINFO`/`CGCTL_ROOT`
//! (`cgctl::layout::TEST_HOOKS`), so these tests would reach the host's real cgroups.
#![cfg(debug_assertions)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::block_device;

const BIN: &str = env!("CARGO_BIN_EXE_cgctl");

/// A fake unified host: mountinfo names cgroup2 at /sys/fs/cgroup, the tree lives in a temp dir.
struct Fake {
    dir: testcaps::TempDir,
}

impl Fake {
    fn new(controllers: &str) -> Fake {
        let dir = testcaps::TempDir::new("cgctl-fake").expect("temp dir");
        let root = dir.path().join("sys/fs/cgroup");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(
            dir.path().join("mountinfo"),
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n\
             31 23 0:27 / /tmp rw - tmpfs tmpfs rw\n",
        )
        .unwrap();
        std::fs::write(root.join("cgroup.controllers"), format!("{controllers}\n")).unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        std::fs::write(root.join("cgroup.procs"), "").unwrap();
        Fake { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("sys/fs/cgroup")
    }

    fn run(&self, args: &[&str]) -> testcaps::Output {
        testcaps::run(
            Command::new(BIN)
                .args(args)
                .env("CGCTL_MOUNTINFO", self.dir.path().join("mountinfo"))
                .env("CGCTL_ROOT", self.dir.path()),
            Duration::from_secs(30),
        )
    }

    /// Plays the kernel: the interface files a new v2 group gets, in their formats.
    fn populate(&self, group: &str) {
        let g = self.root().join(group);
        for (f, v) in [
            ("cgroup.controllers", "cpuset cpu io memory pids\n"),
            ("cgroup.subtree_control", ""),
            ("cgroup.procs", ""),
            ("cgroup.kill", ""),
            ("cgroup.freeze", "0\n"),
            ("cgroup.events", "populated 0\nfrozen 0\n"),
            ("memory.max", "max\n"),
            ("memory.high", "max\n"),
            ("memory.swap.max", "max\n"),
            ("memory.current", "1234\n"),
            ("memory.peak", "33554432\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n",
            ),
            ("cpu.max", "max 100000\n"),
            ("cpu.weight", "100\n"),
            (
                "cpu.stat",
                "usage_usec 200000\nuser_usec 150000\nsystem_usec 50000\nnr_periods 10\nnr_throttled 8\nthrottled_usec 800000\n",
            ),
            ("pids.max", "max\n"),
            ("pids.current", "0\n"),
            ("pids.peak", "5\n"),
            ("pids.events", "max 15\n"),
            ("io.max", ""),
            ("cpuset.cpus", ""),
            ("cpuset.mems", ""),
        ] {
            std::fs::write(g.join(f), v).unwrap();
        }
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root().join(rel)).unwrap_or_default()
    }
}

fn one_line_error(out: &testcaps::Output, needle: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.starts_with("cgctl: "), "{out:?}");
    assert!(out.stderr.contains(needle), "{needle:?} not in {out:?}");
}

#[test]
fn info_sees_a_unified_layout() {
    let fake = Fake::new("cpuset cpu io memory pids");
    let out = fake.run(&["info", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["layout"], "unified");
    assert_eq!(v["controllers"]["memory"]["version"], 2);
    assert_eq!(v["controllers"]["io"]["version"], 2);
    assert_eq!(
        v["controllers"]["pids"]["mount"],
        fake.root().display().to_string()
    );
    assert!(v["controllers"].get("freezer").is_none());
}

#[test]
fn create_delegates_controllers_and_set_writes_v2_formats() {
    let fake = Fake::new("cpuset cpu io memory pids");
    let out = fake.run(&["create", "demo/job"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(fake.root().join("demo/job").is_dir());
    // The root and the intermediate group delegate every available controller to children.
    assert_eq!(
        fake.read("cgroup.subtree_control"),
        "+memory +pids +cpu +io +cpuset"
    );
    fake.populate("demo/job");
    let mut args = vec![
        "set",
        "demo/job",
        "--memory",
        "32M",
        "--memory-high",
        "24M",
        "--swap",
        "0",
        "--cpus",
        "0.5",
        "--cpu-weight",
        "200",
        "--pids",
        "10",
        "--cpuset",
        "0",
        "--set",
        "memory.oom.group=1",
    ];
    let dev = block_device();
    let io_arg = dev.as_ref().map(|(p, _)| format!("{p}=1M"));
    if let Some(a) = &io_arg {
        args.extend(["--io-read-bps", a.as_str()]);
    }
    std::fs::write(fake.root().join("demo/job/memory.oom.group"), "0\n").unwrap();
    let out = fake.run(&args);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fake.read("demo/job/memory.max"), "33554432");
    assert_eq!(fake.read("demo/job/memory.high"), "25165824");
    assert_eq!(fake.read("demo/job/memory.swap.max"), "0");
    assert_eq!(fake.read("demo/job/cpu.max"), "50000 100000");
    assert_eq!(fake.read("demo/job/cpu.weight"), "200");
    assert_eq!(fake.read("demo/job/pids.max"), "10");
    assert_eq!(fake.read("demo/job/cpuset.cpus"), "0");
    assert_eq!(fake.read("demo/job/memory.oom.group"), "1");
    if let Some((_, majmin)) = &dev {
        assert_eq!(
            fake.read("demo/job/io.max"),
            format!("{majmin} rbps=1048576")
        );
    }
    let out = fake.run(&["get", "demo/job", "memory.max", "pids.max"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "memory.max: 33554432\npids.max: 10\n");
    let out = fake.run(&["get", "demo/job", "cpu.max", "--json"]);
    assert_eq!(out.stdout.trim(), r#"{"cpu.max":"50000 100000"}"#);
    let out = fake.run(&["get", "demo/job"]);
    assert!(out.stdout.contains("memory.max: 33554432\n"), "{out:?}");
    assert!(!out.stdout.contains("limit_in_bytes"), "{out:?}");
}

#[test]
fn stat_reads_v2_counters() {
    let fake = Fake::new("cpu memory pids");
    std::fs::create_dir(fake.root().join("g")).unwrap();
    fake.populate("g");
    let out = fake.run(&["stat", "g", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["memory_current_bytes"], 1234);
    assert_eq!(v["memory_peak_bytes"], 33554432);
    assert_eq!(v["memory_limit_hits"], 17);
    assert_eq!(v["oom_kills"], 1);
    assert_eq!(v["cpu_usage_usec"], 200000);
    assert_eq!(v["cpu_user_usec"], 150000);
    assert_eq!(v["cpu_system_usec"], 50000);
    assert_eq!(v["cpu_nr_throttled"], 8);
    assert_eq!(v["cpu_throttled_usec"], 800000);
    assert_eq!(v["pids_peak"], 5);
    assert_eq!(v["pids_limit_hits"], 15);
    let out = fake.run(&["stat", "g"]);
    assert!(out.stdout.contains("pids_limit_hits 15\n"), "{out:?}");
}

#[test]
fn freeze_thaw_kill_pids_move_use_v2_core_files() {
    let fake = Fake::new("memory pids");
    std::fs::create_dir(fake.root().join("g")).unwrap();
    fake.populate("g");
    // The kernel reports "frozen 1" once every task stopped; the fake reports it at once.
    std::fs::write(
        fake.root().join("g/cgroup.events"),
        "populated 1\nfrozen 1\n",
    )
    .unwrap();
    let out = fake.run(&["freeze", "g"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fake.read("g/cgroup.freeze"), "1");
    std::fs::write(
        fake.root().join("g/cgroup.events"),
        "populated 1\nfrozen 0\n",
    )
    .unwrap();
    let out = fake.run(&["thaw", "g"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fake.read("g/cgroup.freeze"), "0");
    // Pids of the group and of its descendants, sorted, once each.
    std::fs::write(fake.root().join("g/cgroup.procs"), "99999999\n99999997\n").unwrap();
    std::fs::create_dir(fake.root().join("g/child")).unwrap();
    std::fs::write(fake.root().join("g/child/cgroup.procs"), "99999998\n").unwrap();
    let out = fake.run(&["pids", "g"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "99999997\n99999998\n99999999\n");
    let out = fake.run(&["list", "g"]);
    assert_eq!(out.stdout, "g\ng/child\n");
    std::fs::remove_dir_all(fake.root().join("g/child")).unwrap();
    // move writes one pid per write into cgroup.procs.
    let me = std::process::id().to_string();
    let out = fake.run(&["move", "g", &me]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fake.read("g/cgroup.procs"), me);
    // An empty group needs no cgroup.kill (nothing in it can fork); the real tests kill live ones.
    std::fs::write(fake.root().join("g/cgroup.procs"), "").unwrap();
    let out = fake.run(&["kill", "g"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fake.read("g/cgroup.kill"), "");
}

#[test]
fn v2_errors_name_the_controller() {
    let fake = Fake::new("cpu memory");
    let out = fake.run(&["create", "x", "--pids", "5"]);
    one_line_error(&out, "needs the pids controller");
    assert!(!fake.root().join("x").exists());
    let out = fake.run(&["create", "x", "--memory", "1G"]);
    // mkdir in a fake tree makes no interface files: the failure must remove the new group.
    one_line_error(&out, "memory");
    assert!(!fake.root().join("x").exists(), "create left x behind");
    let out = fake.run(&["freeze", "nope"]);
    one_line_error(&out, "does not exist");
    let out = fake.run(&["create", "../escape"]);
    one_line_error(&out, "invalid cgroup name");
    let out = fake.run(&["set", "nope", "--memory", "1G"]);
    one_line_error(&out, "does not exist");
}

#[test]
fn no_internal_processes_is_explained() {
    let fake = Fake::new("cpu memory pids");
    // A parent that holds processes: the fake refuses subtree_control writes as the kernel
    // answers EBUSY, here by making the file a directory (EISDIR), so only the path is checked.
    let p = fake.root().join("busy");
    std::fs::create_dir_all(p.join("cgroup.subtree_control")).unwrap();
    std::fs::write(p.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    let out = fake.run(&["create", "busy/leaf", "--pids", "3"]);
    one_line_error(&out, "busy/cgroup.subtree_control");
    assert!(!p.join("leaf").exists());
    assert!(Path::new(&p).is_dir());
    // Without limits the controllers are optional: the group is made and works with v2's
    // core files (kill, freeze, events).
    let out = fake.run(&["create", "busy/leaf"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(p.join("leaf").is_dir());
}

#[test]
fn controllers_named_by_set_are_delegated_too() {
    let fake = Fake::new("memory hugetlb");
    let out = fake.run(&["create", "h", "--set", "hugetlb.2MB.max=0"]);
    // The fake kernel makes no hugetlb files, so the write fails and the group is removed, but
    // the root was asked to delegate hugetlb as well as the usual controllers.
    one_line_error(&out, "hugetlb");
    assert_eq!(fake.read("cgroup.subtree_control"), "+memory +hugetlb");
    assert!(!fake.root().join("h").exists());
    let out = fake.run(&["create", "h", "--set", "rdma.max=x"]);
    one_line_error(&out, "rdma controller");
}
