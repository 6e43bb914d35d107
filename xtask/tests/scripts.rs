//! The composition scripts in `scripts/` run for real (as root, through the built binaries) and
//! show what their headers promise: limits applied, the ping through the veth pair, nsenter-rs in
//! the right namespaces, a guest speaking from inside its VM.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testcaps::{require, Cap, CgroupGuard};

fn script(name: &str) -> PathBuf {
    testcaps::workspace_root().join("scripts").join(name)
}

/// `sh SCRIPT ARGS` with the workspace's tool binaries first on PATH.
fn sh(name: &str, tools: &[&str]) -> Command {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for t in tools {
        let dir = testcaps::sibling_bin(t)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    dirs.extend(std::env::split_paths(&path));
    let mut c = Command::new("/bin/sh");
    c.arg(script(name))
        .env(
            "PATH",
            std::env::join_paths(dirs).expect("PATH without colons"),
        )
        .env("MICROTOOLS_ROOTFS", testcaps::rootfs());
    c
}

/// The JSON object a tool printed on a line of its own.
fn json_line(text: &str) -> serde_json::Value {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON object in:\n{text}"))
}

/// True while `pid` exists and is not a zombie, waiting up to 5 s for it to go (a killed
/// process stays until whoever inherited it reaps it).
/// Kills, when dropped, the container of every unshare-rs report in `dir` (by the PID the report
/// names) and removes the reports: a script killed at its time limit cannot run its own trap.
struct ReportGuard {
    files: Vec<PathBuf>,
    dir: Option<PathBuf>,
}

impl Drop for ReportGuard {
    fn drop(&mut self) {
        let mut files = self.files.clone();
        if let Some(dir) = &self.dir {
            let reports = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
                .map(|e| e.path());
            files.extend(reports);
        }
        for f in files {
            let pid = std::fs::read_to_string(&f)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["pid"].as_i64());
            if let Some(pid) = pid.filter(|p| *p > 1) {
                // SAFETY: kill by the PID of a container this test's script started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            let _ = std::fs::remove_file(&f);
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn pid_alive(pid: i32) -> bool {
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(") ")
                    .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
                    .unwrap_or(false)
            })
            .unwrap_or(false)
    };
    for _ in 0..100 {
        if !running() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Pids the scripts print in `container NAME: pid N` or `container a: pid N; container b: pid M`.
fn printed_pids(out: &str) -> Vec<i32> {
    out.split(|c: char| !c.is_ascii_alphanumeric())
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "pid")
        .filter_map(|w| w[1].parse().ok())
        .collect()
}

#[test]
fn container_sh_isolates_and_applies_limits() {
    require!(Cap::Root, Cap::Rootfs);
    let group = CgroupGuard::new("mt-container-sh");
    // Eight background sleeps under a pids limit of 4: some forks must fail, which ends the
    // inner shell only.
    let inner = "echo pid=$$; echo host=$(hostname); ip -o link show lo; \
                 sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait' 2>/dev/null; echo done";
    let out = testcaps::run(
        sh(
            "container.sh",
            &["cgctl", "unshare-rs", "pivot", "setpriv-rs"],
        )
        .args(["--memory", "32M", "--pids", "4", "--hostname", "box"])
        .args(["--name", group.name()])
        .arg(testcaps::rootfs())
        .args(["/bin/sh", "-c", inner]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    // The command is PID 2: pivot's reaper is PID 1.
    assert!(out.stdout.contains("pid=2\n"), "{out:?}");
    assert!(out.stdout.contains("host=box\n"), "{out:?}");
    assert!(out.stdout.contains("<LOOPBACK,UP,LOWER_UP>"), "{out:?}");
    assert!(out.stdout.ends_with("done\n"), "{out:?}");
    let report = json_line(&out.stderr);
    assert_eq!(report["exit_code"], 0, "{report}");
    assert!(
        report["pids_limit_hits"].as_u64().unwrap_or(0) >= 1,
        "the pids limit did not strike: {report}"
    );
    let limits = report["limits"].to_string();
    assert!(
        limits.contains("33554432") || limits.contains("32M"),
        "memory limit not in the report: {report}"
    );
    assert!(
        group.existing().is_empty(),
        "cgctl left {:?}",
        group.existing()
    );
}

/// issue #27: container.sh runs pivot's reaper as the container's PID 1: an orphan (a child
/// whose parent has exited, reparented to PID 1) is reaped instead of staying a zombie, and the
/// command's status comes back through cgctl and the script.
#[test]
fn container_sh_reaps_orphans_and_returns_the_status() {
    require!(Cap::Root, Cap::Rootfs);
    let group = CgroupGuard::new("mt-container-reap");
    // The command's shell makes a checker in the background and becomes `head`, which never
    // reaps: were it PID 1, the checker's orphan (a short `sleep` whose parent exits at once) would stay
    // a zombie. The checker waits up to 3 s for the orphan's /proc entry to go and says what it
    // saw; head prints that and ends the command.
    let inner = "mkfifo /dev/shm/said; \
                 ( o=$(sh -c 'sleep 0.1 & echo $!'); i=0; \
                 while [ -e /proc/$o ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i+1)); done; \
                 if [ -e /proc/$o ]; then echo \"orphan $o: $(cut -d' ' -f3 /proc/$o/stat)\"; \
                 else echo reaped; fi > /dev/shm/said ) & exec head -n 1 /dev/shm/said";
    let run = |script: &str| {
        testcaps::run(
            sh(
                "container.sh",
                &["cgctl", "unshare-rs", "pivot", "setpriv-rs"],
            )
            .args(["--name", group.name()])
            .arg(testcaps::rootfs())
            .args(["/bin/sh", "-c", script]),
            Duration::from_secs(30),
        )
    };
    let out = run(inner);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "reaped\n"),
        "{out:?}"
    );
    let out = run("echo pid=$$ ppid=$PPID; exit 7");
    assert_eq!(out.code, Some(7), "{out:?}");
    assert_eq!(out.stdout, "pid=2 ppid=1\n", "{out:?}");
    assert_eq!(json_line(&out.stderr)["exit_code"], 7, "{out:?}");
    assert!(
        group.existing().is_empty(),
        "cgctl left {:?}",
        group.existing()
    );
}

#[test]
fn pair_sh_pings_across_the_veth_pair() {
    require!(Cap::Root, Cap::Rootfs);
    // pair.sh keeps its reports in a temporary directory under TMPDIR: a private one here.
    let tmp = std::env::temp_dir().join(testcaps::unique_name("mt-pair"));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let guard = ReportGuard {
        files: Vec::new(),
        dir: Some(tmp.clone()),
    };
    let out = testcaps::run(
        sh("pair.sh", &["unshare-rs", "nsenter-rs", "pivot"])
            .env("TMPDIR", &tmp)
            .arg(testcaps::rootfs()),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("1 packets received"),
        "ping output: {out:?}"
    );
    assert!(
        out.stdout.contains("pair: ping from a to b got through"),
        "{out:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "pair.sh left {left:?}");
    drop(guard);
    let pids = printed_pids(&out.stdout);
    assert_eq!(pids.len(), 2, "{out:?}");
    for pid in pids {
        assert!(!pid_alive(pid), "container pid {pid} outlived pair.sh");
    }
}

#[test]
fn bridge_sh_joins_two_containers_on_a_netwire_bridge() {
    require!(Cap::Root, Cap::Rootfs);
    let tmp = std::env::temp_dir().join(testcaps::unique_name("mt-bridge"));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let guard = ReportGuard {
        files: Vec::new(),
        dir: Some(tmp.clone()),
    };
    let links = || {
        let mut v: Vec<_> = std::fs::read_dir("/sys/class/net")
            .expect("/sys/class/net")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        v.sort();
        v
    };
    let before = links();
    let out = testcaps::run(
        sh(
            "bridge.sh",
            &["unshare-rs", "nsenter-rs", "pivot", "netwire"],
        )
        .env("TMPDIR", &tmp)
        .arg(testcaps::rootfs()),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
    assert!(
        out.stdout
            .contains("bridge: a pinged b, and b the bridge, over br0"),
        "{out:?}"
    );
    assert_eq!(
        out.stdout.matches("1 packets received").count(),
        2,
        "{out:?}"
    );
    // netwire show in the switch: the bridge with its address, the tap and both host ends on it.
    assert!(out.stdout.contains(" br0 bridge up mtu 1500 "), "{out:?}");
    assert!(out.stdout.contains(" 10.201.0.1/24"), "{out:?}");
    assert!(out.stdout.contains(": tap0 tun up mtu 1500 "), "{out:?}");
    assert_eq!(
        out.stdout.matches(" veth up mtu 1500 ").count(),
        2,
        "{out:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "bridge.sh left {left:?}");
    drop(guard);
    let _ = std::fs::remove_dir(&tmp);
    let pids = printed_pids(&out.stdout);
    assert_eq!(pids.len(), 3, "{out:?}");
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} outlived bridge.sh");
    }
    assert_eq!(links(), before, "the host's links changed");
}

#[test]
fn enter_sh_enters_the_reported_namespaces() {
    require!(Cap::Root, Cap::Rootfs);
    let name = testcaps::unique_name("mt-enter");
    let report = PathBuf::from(format!("/run/microtools/{name}.json"));
    let _guard = ReportGuard {
        files: vec![report.clone()],
        dir: None,
    };
    let out = testcaps::run(
        sh("enter.sh", &["unshare-rs", "nsenter-rs", "pivot"])
            .arg(&name)
            .arg(testcaps::rootfs()),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    for ns in ["mnt", "uts", "ipc", "net", "pid", "cgroup"] {
        let inode = |prefix: &str| -> u64 {
            out.stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{prefix} {ns} ")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no '{prefix} {ns}' line: {out:?}"))
        };
        let ours = std::fs::metadata(format!("/proc/self/ns/{ns}"))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .expect("own namespace");
        assert_eq!(inode("entered"), inode("container"), "{ns}: {out:?}");
        assert_ne!(inode("container"), ours, "{ns} is the host's: {out:?}");
    }
    assert!(
        out.stdout.contains(&format!("entered hostname {name}\n")),
        "{out:?}"
    );
    assert!(!report.exists(), "enter.sh left {}", report.display());
    let pids = printed_pids(&out.stdout);
    assert_eq!(pids.len(), 1, "{out:?}");
    assert!(!pid_alive(pids[0]), "the container outlived enter.sh");
}

#[test]
fn vm_sh_runs_the_embedded_guest() {
    require!(Cap::Kvm);
    let out = testcaps::run(&mut sh("vm.sh", &["tinyvmm"]), Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("tinyvmm exit status: 0\n"), "{out:?}");
    let guest: Vec<&str> = out
        .stdout
        .split("guest (64M of guest memory):\n")
        .nth(1)
        .and_then(|s| s.split("tinyvmm exit status").next())
        .map(|s| s.lines().collect())
        .unwrap_or_default();
    assert!(!guest.is_empty(), "the guest printed nothing: {out:?}");
    let guest = guest.join("\n");
    assert!(
        guest.contains("hello from inside the VM") && guest.contains("cpu mode: "),
        "{guest}"
    );
    assert!(guest.contains(" MiB of RAM in the memory map"), "{guest}");
    let report = json_line(&out.stdout.replace("report: ", "\n"));
    assert!(report.is_object(), "{report}");
}

/// The jailed tinyvmm of cgroup `group`: its pid, found by its name and its cgroup.
fn jailed_tinyvmm(group: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        (comm.trim() == "tinyvmm" && cgroup.contains(&format!("/{group}\n"))).then_some(pid)
    })
}

const JAIL_TOOLS: [&str; 5] = ["cgctl", "unshare-rs", "pivot", "setpriv-rs", "tinyvmm"];

/// issue #26: jailed-vm.sh runs tinyvmm as Firecracker's jailer runs Firecracker: a guest's
/// status comes back through the chain; inside, tinyvmm has no capability, no_new_privs, its
/// seccomp filter, its own pid and net namespaces, and a root of only itself, setpriv-rs,
/// /dev/kvm and the guest's file (plus the libraries of a dynamic build); nothing is left.
#[test]
fn jailed_vm_sh_confines_tinyvmm() {
    require!(Cap::Root, Cap::Kvm, Cap::Cgroup);
    let guest = |name: &str| Path::new(tinyvmm::GUEST_DIR).join(name);
    let tmp = testcaps::target_dir()
        .join("tmp")
        .join(testcaps::unique_name("jailed-vm"));
    std::fs::create_dir_all(&tmp).expect("create the script's TMPDIR");
    let input = tmp.join("stdin");
    std::fs::write(&input, b"*").expect("write the guest's input");

    // The status guest reads a byte from its console and exits with it: 42.
    let out = testcaps::run(
        sh("jailed-vm.sh", &JAIL_TOOLS)
            .env("TMPDIR", &tmp)
            .arg(guest("status.bin"))
            .stdin(std::fs::File::open(&input).expect("open the input")),
        Duration::from_secs(60),
    );
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (Some(42), "", ""),
        "{out:?}"
    );

    // A guest that spins until --timeout: looked at from outside while it runs.
    let group = CgroupGuard::new("mt-jailed-vm");
    let mut child = sh("jailed-vm.sh", &JAIL_TOOLS)
        .env("TMPDIR", &tmp)
        .args(["--name", group.name(), "--", "--timeout", "4"])
        .arg(guest("spin.bin"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start jailed-vm.sh");
    let mut pid = None;
    for _ in 0..400 {
        // Its seccomp mode is set once the VM is set up, so wait for it as well.
        pid = jailed_tinyvmm(group.name()).filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/status"))
                .is_ok_and(|s| s.contains("\nSeccomp:\t2\n"))
        });
        if pid.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let seen = pid.map(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let fields: Vec<String> = status
            .lines()
            .filter(|l| {
                [
                    "CapEff:",
                    "CapPrm:",
                    "CapBnd:",
                    "CapAmb:",
                    "NoNewPrivs:",
                    "Seccomp:",
                ]
                .iter()
                .any(|k| l.starts_with(k))
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let ns = |n: &str| std::fs::read_link(format!("/proc/{pid}/ns/{n}")).ok();
        let own_ns = |n: &str| std::fs::read_link(format!("/proc/self/ns/{n}")).ok();
        let distinct: Vec<bool> = ["pid", "net", "mnt", "ipc", "uts", "cgroup"]
            .iter()
            .map(|n| ns(n).is_some() && ns(n) != own_ns(n))
            .collect();
        let list = |dir: &str| {
            let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/root{dir}"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        (
            fields,
            distinct,
            list("/"),
            list("/dev"),
            list("/vm"),
            list("/.jail"),
        )
    });
    let status = testcaps::wait_bounded(&mut child, Duration::from_secs(60));
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let (fields, distinct, root, dev, vm, jail) = seen.expect("no jailed tinyvmm with its filter");
    assert_eq!(
        fields,
        [
            "CapPrm: 0000000000000000",
            "CapEff: 0000000000000000",
            "CapBnd: 0000000000000000",
            "CapAmb: 0000000000000000",
            "NoNewPrivs: 1",
            "Seccomp: 2"
        ]
    );
    assert_eq!(distinct, [true; 6], "namespaces shared with the host");
    // A dynamic build brings its libraries (lib, lib64, usr); a static one has none.
    let extra: Vec<&String> = root
        .iter()
        .filter(|e| ![".jail", "dev", "vm"].contains(&e.as_str()))
        .collect();
    assert!(
        extra
            .iter()
            .all(|e| ["lib", "lib64", "usr"].contains(&e.as_str())),
        "{root:?}"
    );
    assert_eq!(dev, ["kvm"]);
    assert_eq!(vm, ["1-spin.bin"]);
    assert_eq!(jail, ["setpriv-rs", "tinyvmm"]);
    assert_eq!(status.code(), Some(124), "{stderr}");
    assert_eq!(
        stderr,
        "tinyvmm: timeout: the guest was still running after 4 s\n"
    );
    assert!(
        group.existing().is_empty(),
        "cgctl left {:?}",
        group.existing()
    );
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .expect("list TMPDIR")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "stdin")
        .collect();
    assert!(left.is_empty(), "the script left {left:?}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn jailed_vm_sh_refuses_what_the_jail_cannot_hold() {
    let out = testcaps::run(
        sh("jailed-vm.sh", &JAIL_TOOLS).args(["--", "--report", "r.json"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.ends_with(
            "--report is not available in the jail (its root is read-only): use --json\n"
        ),
        "{out:?}"
    );
}

/// Every script answers `--help` and `-h` with its usage and an example on stdout, exit 0, and
/// runs nothing (no tool on PATH is needed for it); an unknown option is exit 1 (#24).
#[test]
fn every_script_answers_help() {
    let dir = testcaps::workspace_root().join("scripts");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("scripts/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".sh"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for name in &names {
        for flag in ["--help", "-h"] {
            let out = testcaps::run(
                Command::new("/bin/sh")
                    .arg(dir.join(name))
                    .arg(flag)
                    .env("PATH", "/usr/bin:/bin"),
                Duration::from_secs(30),
            );
            assert_eq!(
                (out.code, out.stderr.as_str()),
                (Some(0), ""),
                "{name} {flag}: {out:?}"
            );
            let lines: Vec<&str> = out.stdout.lines().collect();
            assert!(
                lines
                    .first()
                    .is_some_and(|l| l.starts_with(&format!("usage: {name} "))),
                "{name} {flag}: {out:?}"
            );
            assert!(
                lines.iter().any(|l| l.contains(&format!("Example (as root, from the clone): PATH=\"$PWD/target/x86_64-unknown-linux-gnu/release:$PATH\" scripts/{name}"))),
                "{name} {flag}: {out:?}"
            );
        }
        let out = testcaps::run(
            Command::new("/bin/sh").arg(dir.join(name)).arg("--bogus"),
            Duration::from_secs(30),
        );
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(1), ""),
            "{name} --bogus: {out:?}"
        );
        assert_eq!(out.stderr.lines().count(), 1, "{name} --bogus: {out:?}");
    }
}
