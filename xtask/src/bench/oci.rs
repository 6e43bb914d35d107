//! The OCI runtime group of `cargo xtask bench`: `ocirun run` against `crun run` and `runc run`
//! on one busybox bundle with one config (cgroup limits, capabilities, masked and read-only
//! paths, the project's default seccomp profile), /bin/true as the container's program.
//!
//! crun refuses this host's hybrid cgroup layout, so the group runs with the cgroup2 mount
//! hidden: the bench process moves into a private mount namespace of its own without it
//! ([`hide_cgroup2`]) before the group, and all three runtimes see the same v1 layout.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{Case, Goal, Group};

/// The cgroup every run of the group uses (runs are sequential; each runtime removes it).
pub fn cgroup_name() -> String {
    format!("mtbench-oci-{}", std::process::id())
}

/// The config all three runtimes run: `base`, `ocirun spec`'s (runc's defaults: three
/// capabilities, masked and read-only paths, a read-only root), with memory, pids and CPU
/// limits, the project's default seccomp profile, and /bin/true.
pub fn config(base: &Value, seccomp: &Value, cgroup: &str) -> Value {
    let mut c = base.clone();
    c["process"]["args"] = json!(["/bin/true"]);
    c["linux"]["cgroupsPath"] = json!(format!("/{cgroup}"));
    c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    c["linux"]["resources"]["pids"] = json!({"limit": 64});
    c["linux"]["resources"]["cpu"] = json!({"shares": 512});
    c["linux"]["seccomp"] = seccomp.clone();
    c
}

/// Writes the bundle under `work`: config.json (from `ocirun spec`) whose root is `rootfs`
/// (absolute and resolved: runc refuses a symlink).
pub fn bundle(ocirun: &Path, work: &Path, rootfs: &Path) -> Result<PathBuf, String> {
    let dir = work.join("oci-bundle");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let rootfs = std::fs::canonicalize(rootfs)
        .map_err(|e| format!("resolving {}: {e}", rootfs.display()))?;
    crate::util::run(
        std::process::Command::new(ocirun)
            .args(["spec", "-b"])
            .arg(&dir),
    )?;
    let file = dir.join("config.json");
    let read = |p: &Path| -> Result<Value, String> {
        let text =
            std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    };
    let mut base = read(&file)?;
    base["root"]["path"] = json!(rootfs.display().to_string());
    let seccomp = read(&crate::util::root().join("privs/src/default-seccomp.json"))?;
    let text = serde_json::to_string_pretty(&config(&base, &seccomp, &cgroup_name()))
        .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("config.json"), text)
        .map_err(|e| format!("writing {}/config.json: {e}", dir.display()))?;
    Ok(dir)
}

/// `RUNTIME --root WORK/NAME-root run -b BUNDLE ID` for one runtime.
fn run_case(label: &str, runtime: &str, work: &Path, bundle: &Path) -> Case {
    let root = work.join(format!("{label}-root")).display().to_string();
    let id = format!("mtbench-{label}");
    let b = bundle.display().to_string();
    Case {
        label: format!("{label} run -b BUNDLE ID (/bin/true)"),
        argv: [runtime, "--root", &root, "run", "-b", &b, &id]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        expect: 0,
        approach: Some("container"),
    }
}

/// The group: ours against crun (the goal: at most 0.7 of its median) and runc.
pub fn group(ocirun: &Path, work: &Path, bundle: &Path) -> Group {
    let peer = |name: &str| {
        conventions::exec::find_in_path(name)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("/usr/bin/{name}"))
    };
    Group {
        title: "an OCI runtime: run a bundle (limits, capabilities, masked paths, seccomp)".into(),
        tool: "ocirun",
        ours: run_case("ocirun", &ocirun.display().to_string(), work, bundle),
        peers: vec![
            (
                run_case("crun", &peer("crun"), work, bundle),
                Goal::Ratio(0.7),
            ),
            (run_case("runc", &peer("runc"), work, bundle), Goal::None),
        ],
        reference: false,
        slow: false,
        prepare: None,
    }
}

/// The same runs one every 100 ms (hyperfine `--prepare 'sleep 0.1'`, not timed), as
/// containers start on a host that is not starting them back to back: there a runtime that
/// writes the init's pid to cgroup.procs waits for an RCU grace period (the kernel's global
/// threadgroup lock), which back-to-back runs mostly find already passed. No goal of the
/// issue's; the row shows what ocirun's self-join and CLONE_INTO_CGROUP save.
pub fn spaced_group(ocirun: &Path, work: &Path, bundle: &Path) -> Group {
    let mut g = group(ocirun, work, bundle);
    g.title = "an OCI runtime: the same run, one every 100 ms (a quiet host between runs)".into();
    for (_, goal) in &mut g.peers {
        *goal = Goal::None;
    }
    // The chart has the back-to-back rows already.
    g.ours.approach = None;
    for (c, _) in &mut g.peers {
        c.approach = None;
    }
    g.prepare = Some("sleep 0.1");
    g
}

/// Moves this (single-threaded) process into a private mount namespace without the cgroup2
/// mount, for crun; the host's mounts are not touched.
pub fn hide_cgroup2() -> Result<(), String> {
    // SAFETY: unshare with a flag only; xtask bench runs no threads.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNS): {}",
            std::io::Error::last_os_error()
        ));
    }
    let root = c"/";
    // SAFETY: NUL-terminated paths; a propagation change of this process's own namespace.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(format!(
            "making / private: {}",
            std::io::Error::last_os_error()
        ));
    }
    let unified = c"/sys/fs/cgroup/unified";
    if Path::new("/sys/fs/cgroup/unified").exists() {
        // SAFETY: a NUL-terminated path, in the namespace made above.
        if unsafe { libc::umount2(unified.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(format!(
                "umount /sys/fs/cgroup/unified: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Removes what a failed run left: the runtimes' state directories and the group's cgroup.
pub fn cleanup(work: &Path) {
    for rt in ["ocirun", "crun", "runc"] {
        let _ = std::fs::remove_dir_all(work.join(format!("{rt}-root")));
    }
    let name = cgroup_name();
    for (mnt, _, _) in crate::demo::cgroup_mounts() {
        let _ = std::fs::remove_dir(Path::new(&mnt).join(&name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_config_with_every_cost() {
        let base = json!({"process": {"args": ["sh"], "capabilities": {"bounding": ["CAP_KILL"]}},
                          "linux": {"maskedPaths": ["/proc/kcore"], "resources": {}}});
        let c = config(&base, &json!({"defaultAction": "SCMP_ACT_ALLOW"}), "g");
        assert_eq!(c["process"]["args"], json!(["/bin/true"]));
        assert_eq!(c["linux"]["cgroupsPath"], "/g");
        assert_eq!(c["linux"]["resources"]["pids"]["limit"], 64);
        assert!(!c["linux"]["maskedPaths"].as_array().unwrap().is_empty());
        assert!(!c["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .is_empty());
        assert_eq!(c["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        let g = group(
            Path::new("/b/ocirun"),
            Path::new("/w"),
            Path::new("/w/oci-bundle"),
        );
        assert_eq!(
            g.ours.command_line(),
            "/b/ocirun --root /w/ocirun-root run -b /w/oci-bundle mtbench-ocirun"
        );
        assert_eq!(g.peers.len(), 2);
        assert!(matches!(g.peers[0].1, Goal::Ratio(r) if r == 0.7));
        assert_eq!(g.prepare, None);
        // The spaced group: the same command lines, a pause before each run, no goal, no bars.
        let s = spaced_group(
            Path::new("/b/ocirun"),
            Path::new("/w"),
            Path::new("/w/oci-bundle"),
        );
        assert_eq!(s.ours.command_line(), g.ours.command_line());
        assert_eq!(s.prepare, Some("sleep 0.1"));
        assert_ne!(s.title, g.title);
        assert!(s
            .peers
            .iter()
            .all(|(c, goal)| matches!(goal, Goal::None) && c.approach.is_none()));
        assert_eq!(s.ours.approach, None);
    }
}
