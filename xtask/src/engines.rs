//! `cargo xtask engines`: podman (with conmon) and containerd (with its runc shim) drive ocirun
//! as their OCI runtime, each step checked for its exact output and status, with crun as the
//! reference in the same run; then containerd's CRI plugin loads a config with ocirun as a
//! runtime handler. Everything runs in a private mount namespace with tmpfs on /run and
//! /var/lib/containers and config files of its own, and nothing is left afterwards.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{rootfs, util};

const USAGE: &str = "usage: cargo xtask engines [podman] [containerd] [cri]";

/// The image `podman import` makes of the busybox rootfs.
pub const IMAGE: &str = "localhost/microtools-busybox";
/// The cgroup (in every hierarchy) under which every container of the lanes runs.
pub const CGROUP_PARENT: &str = "microtools-engines";
/// containerd's socket inside the lane's namespace.
pub const CTR_SOCK: &str = "/run/microtools-containerd/containerd.sock";
/// containerd's namespace for the lane's containers.
pub const CTR_NS: &str = "microtools";
/// podman's storage, a tmpfs in the lanes.
pub const MOUNT_POINT: &str = "/var/lib/containers";
/// The environment variable naming (by inode) the mount namespace the recipe started in.
pub const OUTER_NS: &str = "MICROTOOLS_ENGINES_OUTER_NS";

/// This process's mount namespace inode.
pub fn mnt_ns() -> Option<u64> {
    std::fs::metadata("/proc/self/ns/mnt").ok().map(|m| m.ino())
}

/// The PATH the containerd lane's containers get.
const PATH: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
/// Every command's bound (a hang guard, not a timing).
const LIMIT: Duration = Duration::from_secs(60);

/// What a bounded command produced.
#[derive(Debug)]
pub struct Out {
    /// Exit code; `None` when killed by a signal or by the bound.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `cmd` (stdin closed) for at most `limit`, killed by pid past that.
pub fn bounded(cmd: &mut Command, limit: Duration) -> Result<Out, String> {
    let desc = util::describe(cmd);
    let dir = std::env::temp_dir();
    let n = format!("microtools-engines-{}-{}", std::process::id(), unique());
    let (o, e) = (dir.join(format!("{n}.out")), dir.join(format!("{n}.err")));
    let file = |p: &Path| std::fs::File::create(p).map_err(|err| format!("{}: {err}", p.display()));
    // Files, not pipes: a detached container or conmon keeps inherited descriptors open.
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file(&o)?)
        .stderr(file(&e)?)
        .spawn()
        .map_err(|err| format!("cannot run {desc}: {err}"))?;
    let status = util::wait_bounded(&mut child, limit, Duration::from_millis(5))
        .map_err(|err| format!("waiting for {desc}: {err}"))?;
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let out = Out {
        code: status.and_then(|s| s.code()),
        stdout: read(&o),
        stderr: read(&e),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    match status {
        None => Err(format!("{desc} ran longer than {limit:?} and was killed")),
        Some(_) => Ok(out),
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The lane's configuration files for podman (containers.conf, storage.conf, registries.conf,
/// policy.json), none of them the host's: (name, text).
pub fn podman_files(run_dir: &Path) -> Vec<(&'static str, String)> {
    let run = run_dir.display();
    vec![
        (
            "containers.conf",
            format!(
                "# cargo xtask engines: podman in a private mount namespace.\n\
                 [containers]\n\
                 # Root here lacks CAP_SYS_RESOURCE: podman's 1048576 cannot be set.\n\
                 default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
                 netns = \"none\"\n\
                 log_driver = \"k8s-file\"\n\
                 [network]\n\
                 # Not /etc/containers/networks: podman writes its lock there.\n\
                 network_config_dir = \"{run}/networks\"\n\
                 [engine]\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 events_logfile_path = \"{run}/events.log\"\n\
                 tmp_dir = \"{run}\"\n\
                 runtime = \"crun\"\n"
            ),
        ),
        (
            "storage.conf",
            "[storage]\ndriver = \"overlay\"\nrunroot = \"/run/containers/storage\"\n\
             graphroot = \"/var/lib/containers/storage\"\n"
                .to_string(),
        ),
        (
            "registries.conf",
            "unqualified-search-registries = []\n".to_string(),
        ),
        (
            "policy.json",
            "{\"default\": [{\"type\": \"insecureAcceptAnything\"}]}\n".to_string(),
        ),
    ]
}

/// The environment that points podman at the lane's files.
pub fn podman_env(conf: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("CONTAINERS_CONF", conf.join("containers.conf")),
        ("CONTAINERS_STORAGE_CONF", conf.join("storage.conf")),
        ("CONTAINERS_REGISTRIES_CONF", conf.join("registries.conf")),
    ]
}

/// containerd's config: its own root and state, its own socket; the CRI plugin only when
/// asked, then with ocirun as the runtime handler `ocirun`.
pub fn containerd_config(root: &Path, ocirun: Option<&Path>) -> String {
    let mut s = format!(
        "version = 2\nroot = \"{}\"\nstate = \"/run/microtools-containerd/state\"\n",
        root.display()
    );
    // Top-level keys before the first table.
    if ocirun.is_none() {
        s.push_str("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n");
    }
    s.push_str(&format!("[grpc]\n  address = \"{CTR_SOCK}\"\n"));
    if let Some(bin) = ocirun {
        // The stock handler stays: the plugin refuses a config whose default (runc) is gone.
        s.push_str(&format!(
            "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  \
             runtime_type = \"io.containerd.runc.v2\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.ocirun]\n  \
             runtime_type = \"io.containerd.runc.v2\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.ocirun.options]\n  \
             BinaryName = \"{}\"\n",
            bin.display()
        ));
    }
    s
}

/// One step's verdict: its name and `Err(why)` on a difference.
pub type Verdict = (String, Result<(), String>);

/// Compares a command's outcome with the expected exit code and stdout.
pub fn expect(out: &Out, code: i32, stdout: &str) -> Result<(), String> {
    if out.code == Some(code) && out.stdout == stdout {
        Ok(())
    } else {
        Err(format!(
            "wanted status {code} and stdout {stdout:?}, got {:?} and {:?} (stderr {:?})",
            out.code,
            out.stdout,
            out.stderr.trim()
        ))
    }
}

/// A runtime the lanes drive: its name and binary.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// `ocirun` or `crun`.
    pub name: &'static str,
    /// Its path.
    pub path: PathBuf,
}

/// The podman lane's context inside the namespace.
pub struct Podman {
    conf: PathBuf,
    rt: Runtime,
}

impl Podman {
    /// A podman command line with the lane's runtime and files.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.arg("--runtime").arg(&self.rt.path).args(args);
        for (k, v) in podman_env(&self.conf) {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Result<Out, String> {
        bounded(&mut self.cmd(args), LIMIT)
    }

    /// `podman run` with the options every step shares.
    fn run_args<'a>(&self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            "run",
            // podman 4.3 ignores cgroupns from containers.conf on cgroup v1.
            "--cgroupns=private",
            "--network=none",
            "--cgroup-parent",
            "/microtools-engines/podman",
        ];
        v.extend_from_slice(extra);
        v
    }
}

const UNCONFINED: &str = "seccomp=unconfined";

/// The podman steps for one runtime.
fn podman_lane(conf: &Path, rt: &Runtime, seccomp_file: &Path) -> Vec<Verdict> {
    let p = Podman {
        conf: conf.to_path_buf(),
        rt: rt.clone(),
    };
    let mut v: Vec<Verdict> = Vec::new();
    let mut step = |name: &str, r: Result<(), String>| {
        v.push((format!("podman/{}: {name}", rt.name), r));
    };
    // Every step but the default-profile one runs unconfined, so that each checks one thing.
    let one = |extra: &[&str], cmd: &[&str], code: i32, stdout: &str| -> Result<(), String> {
        let mut a = p.run_args(&["--rm", "--security-opt", UNCONFINED]);
        a.extend_from_slice(extra);
        a.push(IMAGE);
        a.extend_from_slice(cmd);
        expect(&p.run(&a)?, code, stdout)
    };
    step("run --rm true", one(&[], &["true"], 0, ""));
    step(
        "run --rm: the exit status",
        one(&[], &["sh", "-c", "echo out; exit 7"], 7, "out\n"),
    );
    step("run -it through the console socket", podman_tty(&p));
    step(
        "env and workdir",
        one(
            &["-e", "FOO=bar", "-w", "/tmp"],
            &["sh", "-c", "echo $FOO; pwd"],
            0,
            "bar\n/tmp\n",
        ),
    );
    step(
        "--user 1000:1000",
        one(
            &["--user", "1000:1000"],
            &["sh", "-c", "id -u; id -g; id -G"],
            0,
            "1000\n1000\n1000\n",
        ),
    );
    step(
        "--memory",
        one(
            &["--memory", "64m"],
            &["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"],
            0,
            "67108864\n",
        ),
    );
    step(
        "--pids-limit",
        one(
            &["--pids-limit", "42"],
            &["cat", "/sys/fs/cgroup/pids/pids.max"],
            0,
            "42\n",
        ),
    );
    step(
        "--cpus",
        one(
            &["--cpus", "0.5"],
            &[
                "cat",
                "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
            ],
            0,
            "50000\n100000\n",
        ),
    );
    step(
        "--read-only (tmpfs /tmp stays writable)",
        one(
            &["--read-only"],
            &[
                "sh",
                "-c",
                "touch /x 2>/dev/null; echo $?; touch /tmp/y && echo tmp-ok",
            ],
            0,
            "1\ntmp-ok\n",
        ),
    );
    step(
        "--cap-drop ALL",
        one(
            &["--cap-drop", "ALL"],
            &["grep", "CapEff", "/proc/self/status"],
            0,
            "CapEff:\t0000000000000000\n",
        ),
    );
    step(
        "--cap-drop ALL --cap-add NET_BIND_SERVICE",
        one(
            &["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"],
            &["grep", "CapEff", "/proc/self/status"],
            0,
            "CapEff:\t0000000000000400\n",
        ),
    );
    step("the default seccomp profile", {
        let mut a = p.run_args(&["--rm", IMAGE]);
        a.extend_from_slice(&["grep", "^Seccomp:", "/proc/self/status"]);
        p.run(&a).and_then(|o| expect(&o, 0, "Seccomp:\t2\n"))
    });
    step("--security-opt seccomp=FILE", {
        let opt = format!("seccomp={}", seccomp_file.display());
        let mut a = p.run_args(&["--rm", "--security-opt", &opt, IMAGE]);
        a.extend_from_slice(&["sh", "-c", "mkdir /tmp/d 2>/dev/null; echo $?"]);
        p.run(&a).and_then(|o| expect(&o, 0, "1\n"))
    });
    let name = format!("lane-{}", rt.name);
    let detached = |n: &str, cmd: &[&str]| -> Result<(), String> {
        let mut a = p.run_args(&["-d", "--name", n, "--security-opt", UNCONFINED, IMAGE]);
        a.extend_from_slice(cmd);
        let o = p.run(&a)?;
        if o.code == Some(0) && o.stdout.trim().len() == 64 {
            Ok(())
        } else {
            Err(format!("run -d: {o:?}"))
        }
    };
    let started = detached(&name, &["sleep", "1000"]);
    step("run -d", started.clone());
    if started.is_ok() {
        step(
            "exec",
            p.run(&["exec", &name, "sh", "-c", "echo in-exec; exit 4"])
                .and_then(|o| expect(&o, 4, "in-exec\n")),
        );
        step(
            "exec -t",
            p.run(&[
                "exec",
                "-t",
                &name,
                "sh",
                "-c",
                "tty; [ -t 1 ] && echo on-tty",
            ])
            .and_then(|o| expect(&o, 0, "/dev/pts/0\r\non-tty\r\n")),
        );
        let status = |want: &str| {
            p.run(&["inspect", &name, "--format", "{{.State.Status}}"])
                .and_then(|o| expect(&o, 0, &format!("{want}\n")))
        };
        step(
            "pause",
            p.run(&["pause", &name])
                .and_then(|o| expect(&o, 0, &format!("{name}\n")))
                .and_then(|()| status("paused")),
        );
        step(
            "unpause",
            p.run(&["unpause", &name])
                .and_then(|o| expect(&o, 0, &format!("{name}\n")))
                .and_then(|()| status("running")),
        );
        // sleep as PID 1 has no TERM handler: the kernel ignores TERM, podman kills after 1 s.
        step(
            "stop -t 1: TERM, then KILL after the timeout",
            p.run(&["stop", "-t", "1", &name])
                .and_then(|o| expect(&o, 0, &format!("{name}\n")))
                .and_then(|()| {
                    p.run(&["inspect", &name, "--format", "{{.State.ExitCode}}"])
                        .and_then(|o| expect(&o, 0, "137\n"))
                }),
        );
    }
    let _ = p.run(&["rm", "-f", &name]);
    let trapper = format!("{name}-trap");
    step(
        "stop: a TERM handler's status",
        detached(
            &trapper,
            &[
                "sh",
                "-c",
                "trap 'exit 9' TERM; while :; do sleep 0.1; done",
            ],
        )
        .and_then(|()| {
            // The trap is set once the shell loops: wait for its first sleep.
            std::thread::sleep(Duration::from_millis(300));
            p.run(&["stop", "-t", "20", &trapper])
                .and_then(|o| expect(&o, 0, &format!("{trapper}\n")))
        })
        .and_then(|()| {
            p.run(&["inspect", &trapper, "--format", "{{.State.ExitCode}}"])
                .and_then(|o| expect(&o, 0, "9\n"))
        }),
    );
    let _ = p.run(&["rm", "-f", &trapper]);
    let killed = format!("{name}-kill");
    step(
        "kill",
        detached(&killed, &["sleep", "1000"])
            .and_then(|()| {
                p.run(&["kill", &killed])
                    .and_then(|o| expect(&o, 0, &format!("{killed}\n")))
            })
            .and_then(|()| {
                p.run(&["wait", &killed])
                    .and_then(|o| expect(&o, 0, "137\n"))
            }),
    );
    let _ = p.run(&["rm", "-f", &killed]);
    step(
        "nothing left in podman",
        p.run(&["ps", "-a", "-q"]).and_then(|o| expect(&o, 0, "")),
    );
    v
}

/// A pty pair: (master, slave).
fn openpty() -> Result<(OwnedFd, OwnedFd), String> {
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty writes two descriptors through the valid pointers; the name, termios
    // and winsize arguments may be null.
    let r = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(format!("openpty: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both were just made and are ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) })
}

/// Reads `master` until `needle` came, the pty closed, or the bound.
fn read_pty(master: &mut std::fs::File, needle: &str, seen: &mut String) -> Result<(), String> {
    let start = Instant::now();
    while !seen.contains(needle) {
        if start.elapsed() > LIMIT {
            return Err(format!("waited for {needle:?} on the pty, got {seen:?}"));
        }
        let mut p = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 100) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => return Err(format!("the pty closed before {needle:?}: {seen:?}")),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    Ok(())
}

/// `podman run -it`, its terminal a pty this recipe drives: the container's shell sees a
/// terminal (through conmon, which got ocirun's pty master over the console socket), reads a
/// line typed into it and exits with a status given there.
fn podman_tty(p: &Podman) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let (master, slave) = openpty()?;
    let mut a = p.run_args(&["--rm", "-it", "--security-opt", UNCONFINED, IMAGE]);
    a.extend_from_slice(&["sh", "-c", "tty; read x; echo got:$x; exit $x"]);
    let mut cmd = p.cmd(&a);
    let dup = |f: &OwnedFd| f.try_clone().map_err(|e| format!("dup: {e}"));
    cmd.stdin(Stdio::from(dup(&slave)?))
        .stdout(Stdio::from(dup(&slave)?))
        .stderr(Stdio::from(dup(&slave)?));
    // SAFETY: between fork and exec only setsid and ioctl run, both async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot run podman: {e}"))?;
    drop(slave);
    let mut m = std::fs::File::from(master);
    let mut seen = String::new();
    let r = read_pty(&mut m, "/dev/pts/0\r\n", &mut seen)
        .and_then(|()| {
            m.write_all(b"5\r")
                .map_err(|e| format!("writing to the pty: {e}"))
        })
        .and_then(|()| read_pty(&mut m, "got:5\r\n", &mut seen));
    let status = util::wait_bounded(&mut child, LIMIT, Duration::from_millis(10))
        .map_err(|e| format!("waiting for podman: {e}"))?
        .and_then(|s| s.code());
    r?;
    let text = util::strip_escapes(&seen.replace('\r', ""));
    if status == Some(5) && text == "/dev/pts/0\n5\ngot:5\n" {
        Ok(())
    } else {
        Err(format!(
            "wanted status 5 and the terminal's /dev/pts/0, 5, got:5; got {status:?} and {text:?}"
        ))
    }
}

/// containerd's process in the lane, stopped (by pid) on drop.
pub struct Containerd {
    child: std::process::Child,
}

impl Containerd {
    /// Starts containerd with `config`, its output to `log`, and waits for its socket.
    pub fn start(config: &Path, log: &Path) -> Result<Containerd, String> {
        std::fs::create_dir_all("/run/microtools-containerd").map_err(|e| e.to_string())?;
        let log = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run containerd: {e}"))?;
        let mut c = Containerd { child };
        let start = Instant::now();
        while !Path::new(CTR_SOCK).exists() {
            if start.elapsed() > LIMIT {
                return Err(format!("containerd made no {CTR_SOCK} in {LIMIT:?}"));
            }
            if let Ok(Some(s)) = c.child.try_wait() {
                return Err(format!("containerd exited with {s}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(c)
    }

    fn stop(&mut self) {
        // SAFETY: kill(2) of the containerd this recipe started, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `ctr` command line against the lane's containerd and namespace.
pub fn ctr(args: &[&str]) -> Command {
    let mut c = Command::new("ctr");
    c.args(["--address", CTR_SOCK, "--namespace", CTR_NS])
        .args(args);
    c
}

fn ctr_run(args: &[&str]) -> Result<Out, String> {
    bounded(&mut ctr(args), LIMIT)
}

/// The containerd steps for one runtime.
fn containerd_lane(rt: &Runtime, rootfs: &Path) -> Vec<Verdict> {
    let mut v: Vec<Verdict> = Vec::new();
    let mut step = |name: &str, r: Result<(), String>| {
        v.push((format!("containerd/{}: {name}", rt.name), r));
    };
    let bin = rt.path.display().to_string();
    let root = rootfs.display().to_string();
    let id = format!("lane-{}", rt.name);
    let cg = format!("/{CGROUP_PARENT}/ctr-{}", rt.name);
    let run = |extra: &[&str], id: &str, cmd: &[&str]| {
        // ctr gives a --rootfs container no PATH; crun needs one to find the program.
        let mut a = vec!["run", "--runc-binary", &bin, "--cgroup", &cg, "--env", PATH];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--rootfs", &root, id]);
        a.extend_from_slice(cmd);
        ctr_run(&a)
    };
    step(
        "run --rm: output and exit status",
        run(
            &["--rm"],
            &format!("{id}-once"),
            &["sh", "-c", "echo hi; exit 3"],
        )
        .and_then(|o| expect(&o, 3, "hi\n")),
    );
    let started = run(&["-d"], &id, &["sleep", "1000"]).and_then(|o| expect(&o, 0, ""));
    step("run -d", started.clone());
    if started.is_ok() {
        step(
            "task exec",
            ctr_run(&[
                "task",
                "exec",
                "--exec-id",
                "e1",
                &id,
                "sh",
                "-c",
                "echo in-exec; exit 4",
            ])
            .and_then(|o| expect(&o, 4, "in-exec\n")),
        );
        let pid = ctr_run(&["task", "ls"]).map(|o| {
            o.stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some(id.as_str()))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_string()
        });
        // ctr's table is aligned to the widest pid: compared word by word.
        step(
            "task ps (the runtime's ps --format json)",
            pid.clone().and_then(|pid| {
                ctr_run(&["task", "ps", &id]).and_then(|o| {
                    let words: Vec<&str> = o.stdout.split_whitespace().collect();
                    if o.code == Some(0) && !pid.is_empty() && words == ["PID", "INFO", &pid, "-"] {
                        Ok(())
                    } else {
                        Err(format!("wanted the task's pid {pid:?} alone, got {o:?}"))
                    }
                })
            }),
        );
        let status_is = |want: &str| {
            ctr_run(&["task", "ls"]).and_then(|o| {
                let got = o
                    .stdout
                    .lines()
                    .find(|l| l.split_whitespace().next() == Some(id.as_str()))
                    .and_then(|l| l.split_whitespace().nth(2))
                    .unwrap_or("")
                    .to_string();
                if got == want {
                    Ok(())
                } else {
                    Err(format!("task ls says {got:?}, wanted {want}: {}", o.stdout))
                }
            })
        };
        step(
            "task pause",
            ctr_run(&["task", "pause", &id])
                .and_then(|o| expect(&o, 0, ""))
                .and_then(|()| status_is("PAUSED")),
        );
        step(
            "task resume",
            ctr_run(&["task", "resume", &id])
                .and_then(|o| expect(&o, 0, ""))
                .and_then(|()| status_is("RUNNING")),
        );
        step(
            "task kill -s KILL",
            ctr_run(&["task", "kill", "-s", "KILL", &id])
                .and_then(|o| expect(&o, 0, ""))
                .and_then(|()| {
                    let start = Instant::now();
                    loop {
                        match status_is("STOPPED") {
                            Ok(()) => return Ok(()),
                            Err(e) if start.elapsed() > LIMIT => return Err(e),
                            Err(_) => std::thread::sleep(Duration::from_millis(20)),
                        }
                    }
                }),
        );
        step(
            "task delete and container delete",
            ctr_run(&["task", "delete", &id])
                .and_then(|o| expect(&o, 0, ""))
                .and_then(|()| ctr_run(&["container", "delete", &id]))
                .and_then(|o| expect(&o, 0, "")),
        );
    }
    // The shim reads the runtime's last JSON log line (--log-format json) and reports it.
    let missing = "/nonexistent-microtools-rootfs";
    step(
        "a create that fails: the shim reports the runtime's message",
        {
            let mut a = vec!["run", "--runc-binary", &bin, "--cgroup", &cg, "--rm"];
            a.extend_from_slice(&["--rootfs", missing, "lane-bad", "true"]);
            ctr_run(&a).and_then(|o| {
                let want = if rt.name == "ocirun" {
                    format!(
                        "ctr: failed to create shim task: OCI runtime create failed: config.json: \
                     root.path: {missing}: No such file or directory: unknown\n"
                    )
                } else {
                    String::new()
                };
                let ok = o.code == Some(1)
                    && if want.is_empty() {
                        o.stderr.contains("OCI runtime create failed")
                    } else {
                        o.stderr == want
                    };
                if ok {
                    Ok(())
                } else {
                    Err(format!("wanted status 1 and {want:?}, got {o:?}"))
                }
            })
        },
    );
    let _ = ctr_run(&["container", "delete", "lane-bad"]);
    step(
        "nothing left in containerd",
        ctr_run(&["container", "ls", "-q"]).and_then(|o| expect(&o, 0, "")),
    );
    v
}

/// containerd with the CRI plugin and ocirun as the runtime handler `ocirun`: it loads the
/// config, the plugin starts, and the merged config names ocirun's binary.
fn cri_lane(ocirun: &Path, dir: &Path) -> Vec<Verdict> {
    let mut v = Vec::new();
    let config = dir.join("containerd-cri.toml");
    let text = containerd_config(
        Path::new("/var/lib/containers/containerd-cri"),
        Some(ocirun),
    );
    let r = std::fs::write(&config, &text)
        .map_err(|e| format!("{}: {e}", config.display()))
        .and_then(|()| {
            let o = bounded(
                Command::new("containerd")
                    .arg("--config")
                    .arg(&config)
                    .args(["config", "dump"]),
                LIMIT,
            )?;
            let want = format!("BinaryName = \"{}\"", ocirun.display());
            if o.code == Some(0)
                && o.stdout
                    .contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.ocirun]")
                && o.stdout.contains(&want)
            {
                Ok(())
            } else {
                Err(format!("config dump lacks the ocirun handler: {o:?}"))
            }
        });
    v.push((
        "cri: containerd loads the config with the ocirun handler".to_string(),
        r,
    ));
    let log = dir.join("containerd-cri.log");
    let r = Containerd::start(&config, &log).and_then(|mut c| {
        let o = bounded(
            Command::new("ctr").args(["--address", CTR_SOCK, "plugins", "ls"]),
            LIMIT,
        );
        c.stop();
        let o = o?;
        let line = o
            .stdout
            .lines()
            .find(|l| {
                l.starts_with("io.containerd.grpc.v1") && l.split_whitespace().nth(1) == Some("cri")
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>());
        match line.as_deref() {
            Some([_, _, _, "ok"]) => Ok(()),
            other => {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let why = text
                    .lines()
                    .find(|l| l.contains("failed to load plugin io.containerd.grpc.v1.cri"))
                    .unwrap_or("");
                Err(format!("the cri plugin is not ok: {other:?}: {why}"))
            }
        }
    });
    v.push(("cri: the CRI plugin starts".to_string(), r));
    v
}

/// Prepares the lane's namespace: tmpfs on /run and /var/lib/containers, the cgroup2 mount
/// hidden (crun refuses the hybrid layout with it), podman's files, the imported image.
pub fn prepare(dir: &Path, rootfs: &Path) -> Result<(), String> {
    // Never the caller's mounts: --inside and --hold only run in the namespace that
    // `unshare -m` made for them, which differs from the one the recipe recorded.
    let ours = mnt_ns();
    let outer = std::env::var(OUTER_NS)
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    if ours.is_none() || outer.is_none() || ours == outer {
        return Err(format!(
            "the engine lanes mount tmpfs on /run: refused outside the mount namespace `cargo \
             xtask engines` makes for them ({OUTER_NS} must name another namespace)"
        ));
    }
    for m in ["/run", "/var/lib/containers"] {
        std::fs::create_dir_all(m).map_err(|e| format!("mkdir {m}: {e}"))?;
        util::run(Command::new("mount").args(["-t", "tmpfs", "tmpfs", m]))?;
    }
    if Path::new("/sys/fs/cgroup/unified").exists() {
        let _ = Command::new("umount")
            .args(["-l", "/sys/fs/cgroup/unified"])
            .status();
    }
    let conf = dir.join("podman");
    std::fs::create_dir_all(&conf).map_err(|e| e.to_string())?;
    for (name, text) in podman_files(Path::new("/run/libpod")) {
        std::fs::write(conf.join(name), text).map_err(|e| format!("{name}: {e}"))?;
    }
    std::fs::write(
        dir.join("seccomp.json"),
        "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\", \
         \"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1}]}\n",
    )
    .map_err(|e| e.to_string())?;
    let tar = dir.join("rootfs.tar");
    util::run(
        Command::new("tar")
            .arg("-C")
            .arg(rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    )?;
    let o = bounded(
        Podman {
            conf,
            rt: Runtime {
                name: "crun",
                path: PathBuf::from("crun"),
            },
        }
        .cmd(&["import", "-q"])
        .arg(&tar)
        .arg(IMAGE),
        LIMIT,
    )?;
    if o.code != Some(0) {
        return Err(format!("podman import: {o:?}"));
    }
    // containerd's --rootfs containers get a copy in the tmpfs.
    let copy = Path::new("/var/lib/containers/microtools-rootfs");
    util::run(Command::new("cp").arg("-a").arg(rootfs).arg(copy))?;
    Ok(())
}

fn inside(lanes: &[String], dir: &Path, ocirun: &Path) -> Result<Vec<Verdict>, String> {
    let rootfs = rootfs::default_dir();
    prepare(dir, &rootfs)?;
    let crun = conventions::exec::find_in_path("crun").ok_or("crun is not installed")?;
    let runtimes = [
        Runtime {
            name: "ocirun",
            path: ocirun.to_path_buf(),
        },
        Runtime {
            name: "crun",
            path: crun,
        },
    ];
    let mut all = Vec::new();
    let want = |l: &str| lanes.is_empty() || lanes.iter().any(|x| x == l);
    if want("podman") {
        for rt in &runtimes {
            all.extend(podman_lane(
                &dir.join("podman"),
                rt,
                &dir.join("seccomp.json"),
            ));
        }
    }
    if want("containerd") {
        let config = dir.join("containerd.toml");
        std::fs::write(
            &config,
            containerd_config(Path::new("/var/lib/containers/containerd"), None),
        )
        .map_err(|e| e.to_string())?;
        let mut c = Containerd::start(&config, &dir.join("containerd.log"))?;
        for rt in &runtimes {
            all.extend(containerd_lane(
                rt,
                Path::new("/var/lib/containers/microtools-rootfs"),
            ));
        }
        c.stop();
    }
    if want("cri") {
        all.extend(cri_lane(ocirun, dir));
    }
    Ok(all)
}

/// The lane's cgroups left in any hierarchy (deepest first), after removing the empty ones.
pub fn sweep_cgroups() -> Vec<PathBuf> {
    let mut left = Vec::new();
    for m in conventions::mountinfo::read_self().unwrap_or_default() {
        if m.fstype != "cgroup" && m.fstype != "cgroup2" {
            continue;
        }
        let top = Path::new(&m.mount_point).join(CGROUP_PARENT);
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        for d in dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        left.extend(dirs.into_iter().filter(|d| d.exists()));
    }
    left
}

fn collect_dirs(d: &Path, out: &mut Vec<PathBuf>) {
    if !d.is_dir() {
        return;
    }
    out.push(d.to_path_buf());
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&e.path(), out);
        }
    }
}

/// The namespace files bound somewhere in our mount namespace (an engine's netns files).
fn nsfs_mounts() -> Vec<String> {
    conventions::mountinfo::read_self()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.fstype == "nsfs")
        .map(|m| m.mount_point.to_string())
        .collect()
}

/// Every entry under the host's engine config dirs with its mtime, which the lanes must not
/// touch (their config is in a temp dir).
fn host_config_files() -> Vec<String> {
    fn walk(d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            out.push(format!(
                "{} {}",
                p.display(),
                m.mtime_nsec() + m.mtime() * 1_000_000_000
            ));
            if m.is_dir() {
                walk(&p, out);
            }
        }
    }
    let mut out = Vec::new();
    for d in ["/etc/containers", "/etc/cni"] {
        walk(Path::new(d), &mut out);
    }
    out.sort();
    out
}

/// Processes still in mount namespace `ino`.
fn processes_in_ns(ino: u64) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if std::fs::metadata(format!("/proc/{name}/ns/mnt")).is_ok_and(|m| m.ino() == ino) {
            let comm = std::fs::read_to_string(format!("/proc/{name}/comm")).unwrap_or_default();
            v.push(format!("{name} ({})", comm.trim()));
        }
    }
    v
}

/// The bench's holder (`xtask engines --hold DIR`, in the new mount namespace that
/// bench::engines::Lane made): prepares the
/// lane, starts containerd, says ready, and waits for stdin to close.
pub fn hold(dir: &Path) -> Result<(), String> {
    prepare(dir, &crate::rootfs::default_dir())?;
    let config = dir.join("containerd.toml");
    std::fs::write(
        &config,
        containerd_config(Path::new("/var/lib/containers/containerd"), None),
    )
    .map_err(|e| e.to_string())?;
    let _containerd = Containerd::start(&config, &dir.join("containerd.log"))?;
    std::fs::write(dir.join("ready"), "").map_err(|e| e.to_string())?;
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}

/// Runs the recipe.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut lanes = Vec::new();
    let mut inner_dir = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "podman" | "containerd" | "cri" => lanes.push(a.clone()),
            "--inside" => inner_dir = Some(PathBuf::from(it.next().ok_or(USAGE)?)),
            "--hold" => {
                let dir = PathBuf::from(it.next().ok_or(USAGE)?);
                return hold(&dir);
            }
            _ => return Err(USAGE.to_string()),
        }
    }
    let ocirun = util::target_dir().join("debug/ocirun");
    if let Some(dir) = inner_dir {
        let results = inside(&lanes, &dir, &ocirun)?;
        let lines: Vec<serde_json::Value> = results
            .iter()
            .map(|(n, r)| serde_json::json!({"step": n, "error": r.as_ref().err()}))
            .collect();
        return std::fs::write(
            dir.join("results.json"),
            serde_json::Value::from(lines).to_string(),
        )
        .map_err(|e| format!("writing the results: {e}"));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the engine lanes run containers: run them as root".into());
    }
    for tool in ["podman", "conmon", "crun", "containerd", "ctr"] {
        if conventions::exec::find_in_path(tool).is_none() {
            crate::deps::run(&[])?;
            break;
        }
    }
    rootfs::ensure(&rootfs::default_dir())?;
    util::run(util::cargo().args(["build", "-p", "ocirun"]))?;
    let dir = std::env::temp_dir().join(format!("microtools-engines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let nsfs_before = nsfs_mounts();
    let etc_before = host_config_files();
    // The tmpfs's mount point is made on the real filesystem: removed again if it was ours.
    let made_var = !Path::new(MOUNT_POINT).exists();
    let start = Instant::now();
    let mut inner = Command::new("unshare");
    inner
        .args(["-m", "--propagation", "private", "--"])
        .arg(&exe)
        .arg("engines")
        .args(&lanes)
        .arg("--inside")
        .arg(&dir)
        .env(OUTER_NS, mnt_ns().unwrap_or(0).to_string())
        .stdin(Stdio::null());
    let mut child = inner
        .spawn()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    // The namespace's inode, read while it lives, for the leftover check.
    let mut ns_ino = None;
    let status = loop {
        if ns_ino.is_none() {
            ns_ino = std::fs::metadata(format!("/proc/{}/ns/mnt", child.id()))
                .ok()
                .map(|m| m.ino())
                .filter(|&i| std::fs::metadata("/proc/self/ns/mnt").is_ok_and(|m| m.ino() != i));
        }
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() > Duration::from_secs(900) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for the lane: {e}")),
        }
    };
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap_or_default();
    let mut results: Vec<(String, Option<String>)> =
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|r| {
                (
                    r["step"].as_str().unwrap_or("").to_string(),
                    r["error"].as_str().map(str::to_string),
                )
            })
            .collect();
    if !status.is_some_and(|s| s.success()) {
        results.push((
            "the lane ran to its end".into(),
            Some(format!("{status:?}")),
        ));
    }
    // Nothing left: the namespace (with its tmpfs, state dirs and containerd) is gone with its
    // last process; the containers' cgroups are empty and removed.
    let in_ns = ns_ino.map(processes_in_ns).unwrap_or_default();
    results.push((
        "nothing left: no process in the lane's mount namespace".into(),
        (!in_ns.is_empty()).then(|| format!("still there: {}", in_ns.join(", "))),
    ));
    let new_nsfs: Vec<String> = nsfs_mounts()
        .into_iter()
        .filter(|m| !nsfs_before.contains(m))
        .collect();
    results.push((
        "nothing left: no nsfs mount in the host's mount namespace".into(),
        (!new_nsfs.is_empty()).then(|| format!("new: {}", new_nsfs.join(", "))),
    ));
    let etc_after = host_config_files();
    results.push((
        "nothing left: the host's /etc/containers and /etc/cni are as they were".into(),
        (etc_after != etc_before).then(|| {
            let changed: Vec<&String> = etc_after
                .iter()
                .filter(|e| !etc_before.contains(e))
                .chain(etc_before.iter().filter(|e| !etc_after.contains(e)))
                .collect();
            format!("changed: {changed:?}")
        }),
    ));
    let left = sweep_cgroups();
    results.push((
        format!("nothing left: no cgroup under {CGROUP_PARENT}/ that could not be removed"),
        (!left.is_empty()).then(|| format!("{left:?}")),
    ));
    if made_var {
        let _ = std::fs::remove_dir(MOUNT_POINT);
    }
    let _ = std::fs::remove_dir_all(&dir);
    results.push((
        "nothing left: the lane's temp dir".into(),
        dir.exists().then(|| format!("{} remains", dir.display())),
    ));
    let mut failed = 0;
    for (name, err) in &results {
        match err {
            None => println!("PASS {name}"),
            Some(e) => {
                failed += 1;
                println!("FAIL {name}: {e}");
            }
        }
    }
    println!("engines: {:.1} s", start.elapsed().as_secs_f64());
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} engine step(s) failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_configs() {
        let c = containerd_config(Path::new("/r"), None);
        assert!(c.starts_with("version = 2\nroot = \"/r\"\n"));
        assert!(
            c.contains("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]"),
            "{c}"
        );
        let c = containerd_config(Path::new("/r"), Some(Path::new("/bin/ocirun")));
        assert!(!c.contains("disabled_plugins"));
        assert!(
            c.contains("runtimes.ocirun.options]\n  BinaryName = \"/bin/ocirun\"\n"),
            "{c}"
        );
    }

    #[test]
    fn podman_files_name_the_lane_dirs_and_low_ulimits() {
        let f = podman_files(Path::new("/run/x"));
        let conf = &f[0].1;
        assert!(conf.contains("default_ulimits = [\"nofile=1024:1024\""));
        assert!(conf.contains("cgroup_manager = \"cgroupfs\""));
        assert!(conf.contains("tmp_dir = \"/run/x\""));
        assert!(conf.contains("network_config_dir = \"/run/x/networks\""));
        assert!(f[1]
            .1
            .contains("graphroot = \"/var/lib/containers/storage\""));
    }

    #[test]
    fn expectations() {
        let o = Out {
            code: Some(0),
            stdout: "a\n".into(),
            stderr: String::new(),
        };
        assert!(expect(&o, 0, "a\n").is_ok());
        assert!(expect(&o, 1, "a\n").is_err());
        assert!(expect(&o, 0, "b\n").is_err());
    }
}
