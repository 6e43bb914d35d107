//! The test harness of ocirun's integration tests: a bundle of the busybox rootfs in a temp dir
//! with a unique --root and cgroup, bounded runs whose output goes to files (a created
//! container's init keeps the stdio it inherited, so pipes would not close), and a guard that
//! kills leftover containers by pid and removes everything.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_ocirun");
pub const LIMIT: Duration = Duration::from_secs(30);

/// What a bounded run produced.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with stdout and stderr to files in `dir`, killed by pid (and the test failed) after
/// `LIMIT`.
pub fn run_to_files(cmd: &mut Command, dir: &Path) -> Out {
    use std::os::unix::process::ExitStatusExt;
    let n = testcaps::unique_name("out");
    let (o, e) = (
        dir.join(format!("{n}.stdout")),
        dir.join(format!("{n}.stderr")),
    );
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot spawn {desc}: {err}"));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{desc} ran longer than {LIMIT:?} and was killed");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(err) => panic!("waiting for {desc}: {err}"),
        }
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let out = Out {
        code: status.code(),
        signal: status.signal(),
        stdout: read(&o),
        stderr: read(&e),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    out
}

/// A bundle, a --root and a cgroup name of one test; everything is removed on drop.
pub struct Env {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub cgroup: testcaps::CgroupGuard,
}

impl Env {
    /// A bundle whose config is `ocirun spec`'s with `args`, the cgroup set to a unique name.
    pub fn new(args: &[&str]) -> Env {
        let dir = std::env::temp_dir().join(testcaps::unique_name("ocirun-test"));
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        std::os::unix::fs::symlink(testcaps::rootfs(), bundle.join("rootfs")).unwrap();
        let env = Env {
            root: dir.join("root"),
            dir,
            bundle,
            cgroup: testcaps::CgroupGuard::new("ocirun-test"),
        };
        let out = env.ocirun(&["spec", "-b", env.bundle.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let name = env.cgroup.name().to_string();
        env.config(|c| {
            c["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
            c["linux"]["cgroupsPath"] = Value::from(format!("/{name}"));
        });
        env
    }

    /// Changes config.json.
    pub fn config(&self, f: impl FnOnce(&mut Value)) {
        let file = self.bundle.join("config.json");
        let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(&file, c.to_string()).unwrap();
    }

    /// Runs `ocirun --root ROOT ARGS...`.
    pub fn ocirun(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(BIN);
        cmd.arg("--root").arg(&self.root).args(args);
        run_to_files(&mut cmd, &self.dir)
    }

    /// `create -b BUNDLE ID`, asserted to succeed.
    pub fn create(&self, id: &str) {
        let b = self.bundle.to_str().unwrap().to_string();
        let out = self.ocirun(&["create", "-b", &b, id]);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stderr, "", "{out:?}");
    }

    /// `state ID` as JSON, asserted to succeed.
    pub fn state(&self, id: &str) -> Value {
        let out = self.ocirun(&["state", id]);
        assert_eq!(out.code, Some(0), "{out:?}");
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    }

    /// Waits (hang guard only) until `state ID` says `status`.
    pub fn wait_status(&self, id: &str, status: &str) -> Value {
        let start = Instant::now();
        loop {
            let s = self.state(id);
            if s["status"] == status {
                return s;
            }
            assert!(start.elapsed() < LIMIT, "{id} never became {status}: {s}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The container's state directory.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Whether `pid` is a live (not zombie) process.
    pub fn alive(pid: i64) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(s) => {
                let state = s.rsplit(')').next().unwrap_or("").trim_start();
                !state.starts_with('Z') && !state.starts_with('X')
            }
            Err(_) => false,
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Leftover containers: kill their inits by pid, then let ocirun delete what it made.
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(e.path().join("state.json")) {
                    if let Ok(v) = serde_json::from_str::<Value>(&text) {
                        if let Some(pid) = v["pid"].as_i64().filter(|p| *p > 0) {
                            // SAFETY: kill(2) of the init a test of ours created.
                            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                        }
                    }
                }
                let id = e.file_name().to_string_lossy().to_string();
                let _ = self.ocirun(&["delete", "--force", &id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
