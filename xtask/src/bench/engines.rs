//! The engines' group of `cargo xtask bench`: `podman run --rm IMAGE true` and `ctr run --rm`
//! with ocirun against the same with crun, in one run. podman and containerd only run inside a
//! private mount namespace (tmpfs on /run and /var/lib/containers), so a holder process keeps
//! that namespace, with containerd in it, and each timed command enters it with nsenter.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Case, Group};
use crate::bench::report::Goal;
use crate::engines;

/// The holder: `xtask engines --hold DIR` in its own mount namespace; it stops containerd and
/// exits when its stdin closes (on drop), and the lane's cgroups are removed after.
pub struct Lane {
    child: Child,
    dir: PathBuf,
    crun: PathBuf,
    /// The holder's tmpfs needs /var/lib/containers as its mount point, made on the host's
    /// filesystem when missing: removed again on drop if it was made for this lane.
    made_var: bool,
}

impl Lane {
    /// Starts the holder and waits until it is ready (image imported, containerd up).
    pub fn start() -> Result<Lane, String> {
        let crun = conventions::exec::find_in_path("crun").ok_or("crun is not installed")?;
        for tool in ["podman", "conmon", "containerd", "ctr", "nsenter"] {
            if conventions::exec::find_in_path(tool).is_none() {
                return Err(format!("{tool} is not installed (cargo xtask deps)"));
            }
        }
        let dir =
            std::env::temp_dir().join(format!("microtools-bench-engines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let made_var = !Path::new(engines::MOUNT_POINT).exists();
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "--"])
            .arg(exe)
            .args(["engines", "--hold"])
            .arg(&dir)
            .env(
                engines::OUTER_NS,
                engines::mnt_ns().unwrap_or(0).to_string(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        let mut lane = Lane {
            child,
            dir,
            crun,
            made_var,
        };
        let start = Instant::now();
        while !lane.dir.join("ready").exists() {
            if let Ok(Some(s)) = lane.child.try_wait() {
                return Err(format!("the engines' holder exited with {s}"));
            }
            if start.elapsed() > Duration::from_secs(120) {
                return Err("the engines' holder was not ready in 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(lane)
    }

    fn enter(&self) -> Vec<String> {
        vec![
            "nsenter".into(),
            format!("--mount=/proc/{}/ns/mnt", self.child.id()),
            "--".into(),
        ]
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let left = engines::sweep_cgroups();
        if !left.is_empty() {
            eprintln!("xtask bench: the engines' cgroups could not be removed: {left:?}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.made_var {
            let _ = std::fs::remove_dir(engines::MOUNT_POINT);
        }
    }
}

/// The two groups, ocirun (the shipped build at `ocirun`) against crun.
pub fn groups(lane: &Lane, ocirun: &Path) -> Vec<Group> {
    let podman = |rt: &Path| {
        let mut v = lane.enter();
        v.push("env".into());
        for (k, p) in engines::podman_env(&lane.dir.join("podman")) {
            v.push(format!("{k}={}", p.display()));
        }
        v.extend(
            [
                "podman",
                "--runtime",
                &rt.display().to_string(),
                "run",
                "--rm",
                "--cgroupns=private",
                "--network=none",
                // Both runtimes alike; ocirun takes podman's default profile (several actions)
                // only with the libseccomp-based filter.
                "--security-opt",
                "seccomp=unconfined",
                "--cgroup-parent",
                "/microtools-engines/bench",
                engines::IMAGE,
                "true",
            ]
            .map(String::from),
        );
        v
    };
    let ctr = |rt: &Path, name: &str| {
        let mut v = lane.enter();
        v.extend(
            [
                "ctr",
                "--address",
                engines::CTR_SOCK,
                "--namespace",
                engines::CTR_NS,
                "run",
                "--rm",
                "--runc-binary",
                &rt.display().to_string(),
                "--cgroup",
                &format!("/microtools-engines/bench-{name}"),
                "--env",
                "PATH=/bin:/sbin",
                "--rootfs",
                "/var/lib/containers/microtools-rootfs",
                &format!("bench-{name}"),
                "true",
            ]
            .map(String::from),
        );
        v
    };
    let case = |label: &str, argv: Vec<String>| Case {
        label: label.to_string(),
        argv,
        expect: 0,
        approach: None,
    };
    vec![
        Group {
            title:
                "podman run --rm IMAGE true (conmon, cgroupfs, --network=none, seccomp=unconfined)"
                    .into(),
            tool: "ocirun",
            ours: case("podman --runtime ocirun run --rm", podman(ocirun)),
            peers: vec![(
                case("podman --runtime crun run --rm", podman(&lane.crun)),
                Goal::Ratio(1.0),
            )],
            reference: false,
            slow: false,
            prepare: None,
        },
        Group {
            title: "ctr run --rm --rootfs DIR ID true (containerd's runc shim)".into(),
            tool: "ocirun",
            ours: case("ctr run --runc-binary ocirun", ctr(ocirun, "ocirun")),
            peers: vec![(
                case("ctr run --runc-binary crun", ctr(&lane.crun, "crun")),
                Goal::Ratio(1.0),
            )],
            reference: false,
            slow: false,
            prepare: None,
        },
    ]
}
