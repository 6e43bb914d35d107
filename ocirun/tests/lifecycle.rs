//! The container lifecycle through the built binary, as root with the busybox rootfs: states
//! and transitions, exit statuses, signals, cleanup of the state directory and the cgroup, and
//! the failures that must leave nothing behind. ocirun mounts only in the container's own new
//! mount namespace, so these tests never touch the host's.

mod common;
use common::Env;

use serde_json::{json, Value};
use testcaps::Cap;

fn cgroup_file(env: &Env, controller: &str, file: &str) -> String {
    let p = format!("/sys/fs/cgroup/{controller}/{}/{file}", env.cgroup.name());
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn run_passes_the_exit_status_and_cleans_up() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let b = env.bundle.to_str().unwrap().to_string();
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let out = env.ocirun(&["run", "-b", &b, "r1"]);
    assert_eq!(out.code, Some(7), "{out:?}");
    // Every mount happened in the container's own mount namespace.
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        host_mounts
    );
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    assert!(!env.state_dir("r1").exists());
    assert_eq!(env.cgroup.existing(), Vec::<std::path::PathBuf>::new());
    let out = env.ocirun(&["state", "r1"]);
    assert_eq!(out.code, Some(1), "{out:?}");
}

#[test]
fn run_of_a_killed_container_reraises_the_signal() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    // Without a pid namespace the shell is no namespace init and can be killed by itself.
    let env = Env::new(&["sh", "-c", "kill -KILL $$"]);
    env.config(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["run", "-b", &b, "r2"]);
    assert_eq!(out.signal, Some(libc::SIGKILL), "{out:?}");
    assert!(!env.state_dir("r2").exists());
}

#[test]
fn create_start_kill_delete_walk_through_the_states() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    env.config(|c| c["annotations"] = json!({"org.example.k": "v"}));
    let b = env.bundle.to_str().unwrap().to_string();
    let pid_file = env.dir.join("c.pid");
    let out = env.ocirun(&[
        "create",
        "--bundle",
        &b,
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c1",
    ]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");

    let s = env.state("c1");
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(s["status"], "created");
    assert_eq!(s["pid"], pid);
    assert_eq!(s["id"], "c1");
    assert_eq!(s["ociVersion"], "1.1.0");
    assert_eq!(
        s["bundle"],
        Value::from(
            std::fs::canonicalize(&env.bundle)
                .unwrap()
                .to_str()
                .unwrap()
        )
    );
    assert_eq!(
        s["rootfs"],
        Value::from(
            std::fs::canonicalize(testcaps::rootfs())
                .unwrap()
                .to_str()
                .unwrap()
        )
    );
    assert_eq!(s["annotations"], json!({"org.example.k": "v"}));
    let created = s["created"].as_str().unwrap();
    assert!(
        created.len() == 30 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    // The init is alive, in its cgroup, and has not exec'd the program yet.
    assert!(Env::alive(pid));
    assert_eq!(
        cgroup_file(&env, "pids", "cgroup.procs").trim(),
        pid.to_string()
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_ne!(cmdline, b"sleep\x001000\x00");
    assert!(env.state_dir("c1").join("exec.fifo").exists());

    let out = env.ocirun(&["start", "c1"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    let s = env.wait_status("c1", "running");
    assert_eq!(s["pid"], pid);
    assert!(!env.state_dir("c1").join("exec.fifo").exists());
    // The program runs under the init's pid (it exec'd); a moment may pass before it has.
    let start = std::time::Instant::now();
    while std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default() != b"sleep\x001000\x00"
    {
        assert!(start.elapsed() < common::LIMIT, "sleep never ran");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    let out = env.ocirun(&["kill", "c1", "KILL"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    let s = env.wait_status("c1", "stopped");
    assert_eq!(s["pid"], 0);

    let out = env.ocirun(&["delete", "c1"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    assert!(!env.state_dir("c1").exists());
    assert_eq!(env.cgroup.existing(), Vec::<std::path::PathBuf>::new());
    let out = env.ocirun(&["state", "c1"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .starts_with("ocirun: container c1: does not exist"),
        "{out:?}"
    );
}

#[test]
fn kill_takes_numbers_and_refuses_a_stopped_container() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    // A pid namespace's init gets only the signals it handles: the shell traps TERM.
    let env = Env::new(&["sh", "-c", "trap 'exit 3' TERM; while :; do sleep 1; done"]);
    env.create("k1");
    assert_eq!(env.ocirun(&["start", "k1"]).code, Some(0));
    let out = env.ocirun(&["kill", "k1", "15"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    env.wait_status("k1", "stopped");
    let out = env.ocirun(&["kill", "k1", "TERM"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "ocirun: container k1: is not running (stopped)\n"
    );
    let out = env.ocirun(&["kill", "k1", "NOSUCHSIG"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.contains("unknown signal 'NOSUCHSIG'"), "{out:?}");
}

#[test]
fn kill_all_signals_every_process_of_the_cgroup() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    env.create("ka");
    assert_eq!(env.ocirun(&["start", "ka"]).code, Some(0));
    let start = std::time::Instant::now();
    while cgroup_file(&env, "pids", "cgroup.procs").lines().count() < 3 {
        assert!(start.elapsed() < common::LIMIT, "the sleeps never started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = env.ocirun(&["ps", "--format", "json", "ka"]);
    let pids: Vec<i64> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(pids.len(), 3, "{out:?}");
    let out = env.ocirun(&["kill", "--all", "ka", "KILL"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    env.wait_status("ka", "stopped");
    assert!(pids.iter().all(|p| !Env::alive(*p)));
}

#[test]
fn start_of_a_container_that_is_not_created_fails() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    let out = env.ocirun(&["start", "nosuch"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .starts_with("ocirun: container nosuch: does not exist"),
        "{out:?}"
    );
    env.create("s1");
    assert_eq!(env.ocirun(&["start", "s1"]).code, Some(0));
    let out = env.ocirun(&["start", "s1"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "ocirun: container s1: cannot start a container that is running (only a created one)\n"
    );
}

#[test]
fn delete_of_a_running_container_needs_force() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    env.create("d1");
    assert_eq!(env.ocirun(&["start", "d1"]).code, Some(0));
    let pid = env.state("d1")["pid"].as_i64().unwrap();
    let out = env.ocirun(&["delete", "d1"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "ocirun: container d1: is running (stop it first, or use delete --force)\n"
    );
    assert!(Env::alive(pid));
    assert_eq!(env.state("d1")["status"], "running");
    let out = env.ocirun(&["delete", "--force", "d1"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    assert!(!Env::alive(pid));
    assert!(!env.state_dir("d1").exists());
    assert_eq!(env.cgroup.existing(), Vec::<std::path::PathBuf>::new());
    // --force on a container that is gone is not an error (engines call it to be sure).
    assert_eq!(env.ocirun(&["delete", "--force", "d1"]).code, Some(0));
    assert_eq!(env.ocirun(&["delete", "d1"]).code, Some(1));
}

#[test]
fn deleting_a_created_container_needs_force_too() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    env.create("d2");
    let pid = env.state("d2")["pid"].as_i64().unwrap();
    let out = env.ocirun(&["delete", "d2"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "ocirun: container d2: is created (stop it first, or use delete --force)\n"
    );
    assert!(Env::alive(pid));
    let out = env.ocirun(&["delete", "--force", "d2"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    assert!(!Env::alive(pid));
    assert!(!env.state_dir("d2").exists());
}

#[test]
fn a_duplicate_id_is_refused() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    env.create("dup");
    let pid = env.state("dup")["pid"].clone();
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["create", "-b", &b, "dup"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        format!(
            "ocirun: container dup: already exists ({})\n",
            env.state_dir("dup").display()
        )
    );
    let s = env.state("dup");
    assert_eq!(
        (s["status"].clone(), s["pid"].clone()),
        (json!("created"), pid)
    );
}

#[test]
fn list_shows_every_container() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    let out = env.ocirun(&["list", "--format", "json"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "[]\n"),
        "{out:?}"
    );
    env.create("l1");
    let out = env.ocirun(&["list", "--format", "json"]);
    let all: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0]["id"].clone(), all[0]["status"].clone()),
        (json!("l1"), json!("created"))
    );
    let out = env.ocirun(&["list", "-q"]);
    assert_eq!(out.stdout, "l1\n");
    let out = env.ocirun(&["list"]);
    assert!(
        out.stdout
            .starts_with("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\nl1\t"),
        "{out:?}"
    );
}

#[test]
fn the_container_gets_what_its_config_says() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&[
        "sh",
        "-c",
        "hostname; id -u; id -g; pwd; echo $FOO; touch /x 2>/dev/null || echo ro; \
         wc -c < /etc/group; grep -c ocirun-test /proc/self/cgroup; ulimit -n; \
         grep CapBnd /proc/self/status",
    ]);
    env.config(|c| {
        c["hostname"] = json!("box1");
        c["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/etc/group"));
        c["process"]["user"] = json!({"uid": 1000, "gid": 1001});
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FOO=bar"]);
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100}]);
        c["process"]["capabilities"]["bounding"] = json!(["CAP_KILL"]);
    });
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["run", "-b", &b, "cfg"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    // CAP_KILL is capability 5.
    assert_eq!(
        lines,
        [
            "box1",
            "1000",
            "1001",
            "/tmp",
            "bar",
            "ro",
            "0",
            &env.cgroup_count(),
            "100",
            "CapBnd:\t0000000000000020"
        ],
        "{out:?}"
    );
}

/// A new cgroup namespace is made after the init joined its cgroup (the init joins the v1
/// hierarchies itself, then unshares): the container sees its own cgroup as the root of every
/// hierarchy, and the pids limit at the root of its /sys/fs/cgroup/pids is its own.
#[test]
fn a_cgroup_namespace_is_rooted_at_the_containers_cgroup() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&[
        "sh",
        "-c",
        "cat /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max",
    ]);
    env.config(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
        c["linux"]["resources"]["pids"] = json!({"limit": 20});
    });
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["run", "-b", &b, "cgns"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.pop(), Some("20"), "{out:?}");
    let host = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(lines.len(), host.lines().count(), "{out:?}");
    for l in lines {
        assert!(l.ends_with(":/"), "{l} in {out:?}");
    }
}

#[test]
fn limits_are_written_and_removed_with_the_container() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    env.config(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        c["linux"]["resources"]["pids"] = json!({"limit": 20});
        c["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000, "shares": 512});
    });
    env.create("lim");
    assert_eq!(
        cgroup_file(&env, "memory", "memory.limit_in_bytes").trim(),
        "67108864"
    );
    assert_eq!(cgroup_file(&env, "pids", "pids.max").trim(), "20");
    assert_eq!(cgroup_file(&env, "cpu", "cpu.cfs_quota_us").trim(), "50000");
    assert_eq!(cgroup_file(&env, "cpu", "cpu.shares").trim(), "512");
    let pid = env.state("lim")["pid"].as_i64().unwrap();
    assert_eq!(
        cgroup_file(&env, "memory", "cgroup.procs").trim(),
        pid.to_string()
    );
    assert_eq!(env.ocirun(&["delete", "--force", "lim"]).code, Some(0));
    assert_eq!(env.cgroup.existing(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_user_namespace_maps_ids() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sh", "-c", "id -u; cat /proc/self/uid_map"]);
    env.config(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"hostID": 100000, "containerID": 0, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"hostID": 100000, "containerID": 0, "size": 65536}]);
    });
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["run", "-b", &b, "u1"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words, ["0", "0", "100000", "65536"], "{out:?}");
}

/// Asserts that nothing of container `id` is left: no state dir (with the exec fifo in it), no
/// cgroup, no process of this test's ocirun (an init or intermediate that never exec'd still
/// carries ocirun's command line with the test's own --root).
fn nothing_left(env: &Env, id: &str) {
    assert!(!env.state_dir(id).exists(), "state dir of {id} left");
    assert_eq!(env.cgroup.existing(), Vec::<std::path::PathBuf>::new());
    let root = env.root.to_str().unwrap().as_bytes().to_vec();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            cmd.split(|b| *b == 0).any(|a| a == root.as_slice())
        })
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, Vec::<String>::new(), "processes of {id} left");
}

fn create_fails(env: &Env, id: &str) -> common::Out {
    let b = env.bundle.to_str().unwrap().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let out = env.ocirun(&["create", "-b", &b, id]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    nothing_left(env, id);
    // No mount of the half-made container reached the host's namespace.
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        mounts
    );
    out
}

#[test]
fn malformed_config_names_the_json_path() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["true"]);
    env.config(|c| c["process"]["args"] = json!("true"));
    let out = create_fails(&env, "m1");
    assert!(
        out.stderr
            .starts_with("ocirun: config.json: process.args: invalid type: string"),
        "{out:?}"
    );
    env.config(|c| c["process"]["args"] = json!(["true"]));
    env.config(|c| c["linux"]["namespaces"][0]["type"] = json!("bogus"));
    let out = create_fails(&env, "m1");
    assert!(
        out.stderr
            .starts_with("ocirun: config.json: linux.namespaces[0].type: unknown variant `bogus`"),
        "{out:?}"
    );
    std::fs::write(
        env.bundle.join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [}",
    )
    .unwrap();
    let out = create_fails(&env, "m1");
    assert!(
        out.stderr.starts_with("ocirun: config.json: process.args"),
        "{out:?}"
    );
    assert!(out.stderr.contains("line 1 column"), "{out:?}");
}

#[test]
fn unknown_versions_and_unsupported_fields_are_refused() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["true"]);
    env.config(|c| c["ociVersion"] = json!("2.0.0"));
    let out = create_fails(&env, "v1");
    assert_eq!(
        out.stderr,
        "ocirun: config.json: ociVersion: version '2.0.0' is not supported (ocirun implements runtime-spec 1.x)\n"
    );
    env.config(|c| c["ociVersion"] = json!("1.0.2"));
    env.config(|c| c["process"]["apparmorProfile"] = json!("docker-default"));
    let out = create_fails(&env, "v1");
    assert_eq!(
        out.stderr,
        "ocirun: config.json: process.apparmorProfile: not supported by ocirun (AppArmor is not implemented)\n"
    );
}

#[test]
fn a_missing_rootfs_is_refused() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["true"]);
    env.config(|c| c["root"]["path"] = json!("nosuch"));
    let out = create_fails(&env, "nr");
    let canon = std::fs::canonicalize(&env.bundle).unwrap();
    assert_eq!(
        out.stderr,
        format!(
            "ocirun: config.json: root.path: {}/nosuch: No such file or directory\n",
            canon.display()
        )
    );
}

#[test]
fn create_failing_halfway_leaves_nothing_behind() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["true"]);
    // A bad mount: the init has set up part of the rootfs when it fails.
    env.config(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/mnt", "type": "nosuchfs", "source": "x"}))
    });
    let out = create_fails(&env, "h1");
    assert!(
        out.stderr
            .starts_with("ocirun: setting up the root filesystem: mounts[7]: mount(nosuchfs) on "),
        "{out:?}"
    );
    env.config(|c| {
        c["mounts"].as_array_mut().unwrap().pop();
    });
    // A bad cgroup value: the group was made and is removed again.
    env.config(|c| c["linux"]["resources"]["cpu"] = json!({"quota": 500, "period": 100}));
    let out = create_fails(&env, "h2");
    assert!(out.stderr.starts_with("ocirun: cgroup: write "), "{out:?}");
    assert!(out.stderr.contains("cpu.cfs_period_us"), "{out:?}");
    env.config(|c| {
        c["linux"]["resources"]
            .as_object_mut()
            .unwrap()
            .remove("cpu");
    });
}

impl Env {
    /// How often the test's cgroup name appears in the container's /proc/self/cgroup: once per
    /// hierarchy the container is in (all but named ones), as ocirun's library puts it.
    fn cgroup_count(&self) -> String {
        let layout = cgctl::layout::Layout::host().unwrap();
        layout
            .hierarchies
            .iter()
            .filter(|h| h.managed())
            .count()
            .to_string()
    }
}

#[test]
fn pause_and_resume_freeze_the_cgroup() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    env.create("p1");
    assert_eq!(env.ocirun(&["start", "p1"]).code, Some(0));
    let out = env.ocirun(&["pause", "p1"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    assert_eq!(env.state("p1")["status"], "paused");
    assert_eq!(
        cgroup_file(&env, "freezer", "freezer.state").trim(),
        "FROZEN"
    );
    let out = env.ocirun(&["pause", "p1"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "ocirun: container p1: cannot pause a container that is paused\n"
    );
    let out = env.ocirun(&["resume", "p1"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    assert_eq!(env.state("p1")["status"], "running");
    // A paused container is deleted with --force too (thawed so that SIGKILL lands).
    assert_eq!(env.ocirun(&["pause", "p1"]).code, Some(0));
    assert_eq!(env.ocirun(&["delete", "--force", "p1"]).code, Some(0));
    nothing_left(&env, "p1");
}

#[test]
fn a_corrupt_state_dir_is_reported_and_removed_by_force() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["true"]);
    std::fs::create_dir_all(env.state_dir("bad")).unwrap();
    std::fs::write(env.state_dir("bad").join("state.json"), "{not json").unwrap();
    let out = env.ocirun(&["state", "bad"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.contains("its state is corrupt"), "{out:?}");
    assert!(
        out.stderr.contains("ocirun delete --force removes it"),
        "{out:?}"
    );
    assert_eq!(env.ocirun(&["delete", "bad"]).code, Some(1));
    assert!(env.state_dir("bad").exists());
    assert_eq!(env.ocirun(&["delete", "--force", "bad"]).code, Some(0));
    assert!(!env.state_dir("bad").exists());
    // A directory without a record is a create that never finished (killed half way): its
    // cgroup, named in the directory, goes with delete --force.
    std::fs::create_dir_all(env.state_dir("half")).unwrap();
    assert_eq!(env.state("half")["status"], "creating");
    let pids = std::path::Path::new("/sys/fs/cgroup/pids").join(env.cgroup.name());
    std::fs::create_dir_all(&pids).unwrap();
    std::fs::write(env.state_dir("half").join("cgroup"), env.cgroup.name()).unwrap();
    assert_eq!(env.ocirun(&["delete", "--force", "half"]).code, Some(0));
    assert!(!env.state_dir("half").exists());
    assert!(!pids.exists());
}

#[test]
fn seccomp_filters_the_container_s_syscalls() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    // mkdir(2) and mkdirat(2) fail with EACCES; everything else is allowed.
    let env = Env::new(&["sh", "-c", "mkdir /tmp/ocirun-seccomp-probe; echo $?"]);
    for nnp in [true, false] {
        env.config(|c| {
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                              "errnoRet": libc::EACCES}]
            });
        });
        let b = env.bundle.to_str().unwrap().to_string();
        let out = env.ocirun(&["run", "-b", &b, "sc"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout, "1\n", "noNewPrivileges {nnp}: {out:?}");
        assert!(out.stderr.contains("Permission denied"), "{out:?}");
    }
    assert!(!testcaps::rootfs().join("tmp/ocirun-seccomp-probe").exists());
    // The first run compiled the profile and kept it under the root; the second ran on the kept
    // filter (and was filtered all the same). No container id starts with a dot: list skips it.
    let cached = || -> Vec<(String, u32)> {
        use std::os::unix::fs::PermissionsExt;
        let mut v: Vec<(String, u32)> = std::fs::read_dir(env.root.join(".seccomp"))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
                (e.file_name().to_string_lossy().into_owned(), mode)
            })
            .collect();
        v.sort();
        v
    };
    let one = cached();
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0].1, 0o600);
    let list = env.ocirun(&["list", "-q"]);
    assert_eq!((list.code, list.stdout.as_str()), (Some(0), ""), "{list:?}");
    // Another profile, another file; the first stays.
    env.config(|c| {
        c["linux"]["seccomp"]["syscalls"][0]["errnoRet"] = json!(libc::EPERM);
    });
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["run", "-b", &b, "sc"]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "1\n"), "{out:?}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
    let two = cached();
    assert_eq!(two.len(), 2, "{two:?}");
    assert!(two.contains(&one[0]), "{two:?}");
}

#[test]
fn a_missing_program_fails_at_start_with_127() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    // The spec's create does not look at the program (a bundle may get it later): run shows the
    // exec failure as the container's own exit status.
    let env = Env::new(&["nosuchprog"]);
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["run", "-b", &b, "np"]);
    assert_eq!(out.code, Some(127), "{out:?}");
    assert_eq!(
        out.stderr,
        "ocirun: process.args[0]: failed to execute nosuchprog: No such file or directory\n"
    );
    nothing_left(&env, "np");
}

#[test]
fn hooks_get_the_state_at_their_points_and_a_failing_one_undoes_create() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["true"]);
    let log = env.dir.join("hooks.log");
    let hook = |name: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("read s; echo \"{name} $s\" >> {}", log.display())], "timeout": 10})
    };
    env.config(|c| {
        c["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")]
        })
    });
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["run", "-b", &b, "hk"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<(&str, serde_json::Value)> = text
        .lines()
        .map(|l| {
            let (name, s) = l.split_once(' ').unwrap();
            (name, serde_json::from_str(s).unwrap())
        })
        .collect();
    let names: Vec<&str> = lines.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["prestart", "createRuntime", "poststart", "poststop"]
    );
    let status: Vec<&str> = lines
        .iter()
        .map(|(_, s)| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["created", "creating", "running", "stopped"]);
    assert!(lines
        .iter()
        .all(|(_, s)| s["id"] == "hk" && s["pid"].as_i64().unwrap() > 0));

    // A failing createContainer hook (run by the init, in the container's namespaces).
    env.config(|c| {
        c["hooks"] =
            json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]})
    });
    let out = create_fails(&env, "hk2");
    assert_eq!(
        out.stderr,
        "ocirun: hooks.createContainer[0]: /bin/sh failed (exit status: 3)\n"
    );
}

#[test]
fn only_preserved_descriptors_reach_the_container() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    let b = env.bundle.to_str().unwrap().to_string();
    let root = env.root.to_str().unwrap().to_string();
    for (n, want) in [("0", vec!["0", "1", "2"]), ("1", vec!["0", "1", "2", "3"])] {
        let id = format!("fd{n}");
        // ocirun starts with descriptors 3 and 4 open (not close-on-exec).
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg("exec 3</dev/null 4</dev/null; exec \"$@\"")
            .arg("sh")
            .args([
                common::BIN,
                "--root",
                &root,
                "create",
                "--preserve-fds",
                n,
                "-b",
                &b,
                &id,
            ]);
        let out = common::run_to_files(&mut cmd, &env.dir);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(env.ocirun(&["start", &id]).code, Some(0));
        let pid = env.state(&id)["pid"].as_i64().unwrap();
        let start = std::time::Instant::now();
        while std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
            != b"sleep\x001000\x00"
        {
            assert!(start.elapsed() < common::LIMIT, "sleep never ran");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        fds.sort();
        assert_eq!(fds, want, "--preserve-fds {n}");
        assert_eq!(env.ocirun(&["delete", "--force", &id]).code, Some(0));
    }
}

#[test]
fn an_empty_existing_cgroup_is_taken_over_and_a_busy_one_refused() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    env.config(|c| c["linux"]["resources"]["pids"] = json!({"limit": 33}));
    env.create("cg1");
    // A second container with the same cgroupsPath: the group has the first one's init.
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["create", "-b", &b, "cg2"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("exists and has processes"), "{out:?}");
    assert!(!env.state_dir("cg2").exists());
    assert_eq!(env.state("cg1")["status"], "created");
    assert_eq!(cgroup_file(&env, "pids", "pids.max").trim(), "33");
    // Once the first one is gone but its group is left (made empty again by hand here, as an
    // engine may make a group first), the next container takes it over.
    assert_eq!(env.ocirun(&["kill", "cg1", "KILL"]).code, Some(0));
    env.wait_status("cg1", "stopped");
    std::fs::remove_dir_all(env.state_dir("cg1")).unwrap();
    env.create("cg3");
    let pid = env.state("cg3")["pid"].as_i64().unwrap();
    assert_eq!(
        cgroup_file(&env, "pids", "cgroup.procs").trim(),
        pid.to_string()
    );
    assert_eq!(env.ocirun(&["delete", "--force", "cg3"]).code, Some(0));
    assert_eq!(env.cgroup.existing(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_filter_without_close_range_still_starts_the_container() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    // Without noNewPrivileges the filter is installed before the capabilities are dropped; the
    // descriptors are marked close-on-exec before it, so a profile without close_range works
    // (runtime-tools' default profile is one).
    let env = Env::new(&["echo", "ran"]);
    env.config(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}]
        });
    });
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["run", "-b", &b, "cr"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (Some(0), "ran\n", ""),
        "{out:?}"
    );
}

#[test]
fn update_changes_the_limits_of_a_container() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    env.config(|c| c["linux"]["resources"]["pids"] = json!({"limit": 20}));
    env.create("up");
    assert_eq!(cgroup_file(&env, "pids", "pids.max").trim(), "20");
    let r = env.dir.join("r.json");
    std::fs::write(
        &r,
        r#"{"pids": {"limit": 30}, "memory": {"limit": 33554432}}"#,
    )
    .unwrap();
    let out = env.ocirun(&["update", "--resources", r.to_str().unwrap(), "up"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    assert_eq!(cgroup_file(&env, "pids", "pids.max").trim(), "30");
    assert_eq!(
        cgroup_file(&env, "memory", "memory.limit_in_bytes").trim(),
        "33554432"
    );
    std::fs::write(&r, r#"{"pids": {"limit": "many"}}"#).unwrap();
    let out = env.ocirun(&["update", "--resources", r.to_str().unwrap(), "up"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.starts_with(&format!(
            "ocirun: --resources {}: pids.limit: invalid type",
            r.display()
        )),
        "{out:?}"
    );
    std::fs::write(&r, r#"{"blockIO": {"weight": 10}}"#).unwrap();
    let out = env.ocirun(&["update", "--resources", r.to_str().unwrap(), "up"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("linux.resources.blockIO: not supported by ocirun"),
        "{out:?}"
    );
    assert_eq!(cgroup_file(&env, "pids", "pids.max").trim(), "30");
}

#[test]
fn a_foreign_state_dir_is_refused_and_its_pid_never_signalled() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["true"]);
    // runc's state.json shape, naming a live process that is not a container of ours.
    let mut bystander = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    let pid = bystander.id() as i64;
    std::fs::create_dir_all(env.state_dir("runcs")).unwrap();
    std::fs::write(
        env.state_dir("runcs").join("state.json"),
        json!({"id": "runcs", "init_process_pid": pid, "config": {}}).to_string(),
    )
    .unwrap();
    for args in [
        &["state", "runcs"][..],
        &["start", "runcs"],
        &["kill", "runcs", "KILL"],
        &["delete", "runcs"],
        &["events", "--stats", "runcs"],
    ] {
        let out = env.ocirun(args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("its state is corrupt"),
            "{args:?}: {out:?}"
        );
    }
    assert_eq!(env.ocirun(&["delete", "--force", "runcs"]).code, Some(0));
    assert!(!env.state_dir("runcs").exists());
    assert!(
        Env::alive(pid),
        "delete --force signalled a pid it had only read"
    );
    let _ = bystander.kill();
    let _ = bystander.wait();
}

#[test]
fn a_duplicate_create_leaves_the_first_container_alone() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    env.create("twice");
    let first = env.state("twice");
    let b = env.bundle.to_str().unwrap().to_string();
    let out = env.ocirun(&["create", "-b", &b, "twice"]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(1), ""), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert_eq!(env.state("twice"), first);
    assert!(env.state_dir("twice").join("exec.fifo").exists());
    assert_eq!(env.ocirun(&["delete", "--force", "twice"]).code, Some(0));
    nothing_left(&env, "twice");
}

#[test]
fn a_container_without_a_mount_namespace_is_refused_in_the_host_s() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["true"]);
    env.config(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "mount");
    });
    // The tests run in the host's mount namespace: the container would mount there.
    let out = create_fails(&env, "nomnt");
    assert!(
        out.stderr.starts_with(
            "ocirun: config.json: linux.namespaces: no mount namespace, and ocirun runs in the host's"
        ),
        "{out:?}"
    );
}

#[test]
fn without_a_mount_namespace_the_container_chroots_in_ocirun_s() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    // ocirun in a private mount namespace of its own (unshare(1)), the container sharing it.
    let env = Env::new(&[
        "sh",
        "-c",
        "cat /proc/self/mountinfo | wc -l; ls /bin/busybox",
    ]);
    env.config(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "mount");
    });
    let b = env.bundle.to_str().unwrap().to_string();
    let host_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", common::BIN, "--root"])
        .arg(&env.root)
        .args(["run", "-b", &b, "shared"]);
    let out = common::run_to_files(&mut cmd, &env.dir);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    // It sees unshare's namespace, with every host mount in it.
    assert!(lines[0].trim().parse::<usize>().unwrap() > 5, "{out:?}");
    assert_eq!(lines[1], "/bin/busybox");
    assert_eq!(std::fs::read_link("/proc/self/ns/mnt").unwrap(), host_ns);
    nothing_left(&env, "shared");
}

#[test]
fn events_report_the_cgroup_s_counters() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = Env::new(&["sleep", "1000"]);
    env.config(|c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 20});
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    });
    env.create("ev");
    assert_eq!(env.ocirun(&["start", "ev"]).code, Some(0));
    let out = env.ocirun(&["events", "--stats", "ev"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], "ev");
    let d = &v["data"];
    assert_eq!(d["pids"], json!({"current": 1, "limit": 20}), "{v}");
    assert_eq!(d["memory"]["usage"]["limit"], 67108864, "{v}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{v}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{v}");
    assert!(
        d["memory"]["raw"].as_object().unwrap().contains_key("rss"),
        "{v}"
    );
    assert!(d["blkio"]["ioServiceBytesRecursive"].is_array(), "{v}");
    let out = env.ocirun(&["events", "--interval", "0s", "ev"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.starts_with("ocirun: --interval '0s': "),
        "{out:?}"
    );
    assert_eq!(env.ocirun(&["kill", "ev", "KILL"]).code, Some(0));
    env.wait_status("ev", "stopped");
    let out = env.ocirun(&["events", "--stats", "ev"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "ocirun: container ev: is stopped: it has no cgroup to report\n"
    );
}

#[test]
fn the_events_stream_tells_an_oom_kill_and_ends_with_the_container() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    // dd's 64 MiB buffer in a 16 MiB group (swap included): the OOM killer takes dd, the
    // shell lives on.
    let env = Env::new(&[
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000",
    ]);
    env.config(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216});
    });
    env.create("oom");
    let file = env.dir.join("events.out");
    let mut events = std::process::Command::new(common::BIN)
        .arg("--root")
        .arg(&env.root)
        .args(["events", "--interval", "50ms", "oom"])
        .stdout(std::fs::File::create(&file).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait_for = |what: &str| {
        let start = std::time::Instant::now();
        loop {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            if text.contains(what) {
                return text;
            }
            assert!(start.elapsed() < common::LIMIT, "no {what} in {text}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    wait_for("\"type\":\"stats\"");
    assert_eq!(env.ocirun(&["start", "oom"]).code, Some(0));
    wait_for("\"type\":\"oom\"");
    assert_eq!(env.ocirun(&["kill", "oom", "KILL"]).code, Some(0));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = events.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > common::LIMIT {
            let _ = events.kill();
            let _ = events.wait();
            panic!("events did not end with the container");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&file).unwrap();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v["type"] == "stats" || v["type"] == "oom", "{l}");
        assert_eq!(v["id"], "oom");
    }
}
