//! What a scale run must not leave: the world before a family's runs against the world after
//! (mounts of the bench's namespace and of the host's init, cgctl's run records, the driver's
//! descriptors), plus what can only be looked for afterwards (cgroups named with the run's tag,
//! processes still parented to the driver, KVM VMs of the instances, runtime state, temp files).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::soak::{compare, links, snapshot, Snapshot};

/// Whether a descriptor's link names a KVM object: the device, a VM or a vCPU.
pub fn is_kvm(link: &str) -> bool {
    link == "/dev/kvm" || link.starts_with("anon_inode:kvm-")
}

/// Whether a descriptor's link is a vCPU (what a VMM holds once its VM runs).
pub fn is_vcpu(link: &str) -> bool {
    link.starts_with("anon_inode:kvm-vcpu")
}

/// The PID of a KVM debugfs directory entry ("PID-FD", one per VM), if it is one.
pub fn kvm_debugfs_pid(name: &str) -> Option<i32> {
    let (pid, fd) = name.split_once('-')?;
    fd.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Names at the top of each cgroup hierarchy that start with `tag`, as paths.
pub fn tagged_groups(tag: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (mnt, _, _) in crate::demo::cgroup_mounts() {
        for e in std::fs::read_dir(&mnt).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(tag) {
                out.push(e.path());
            }
        }
    }
    out
}

/// Everything left after a family's runs, whose instances were `pids` and whose runtimes kept
/// state in `state_dirs`; the cgroups are looked for by `tag` once the family's parents are gone.
/// Processes found are killed (and reaped) after being reported, so that the next family starts
/// clean.
pub fn check(
    before: &Snapshot,
    tag: &str,
    pids: &BTreeSet<i32>,
    state_dirs: &[PathBuf],
    tmpdir: &Path,
) -> Vec<String> {
    let mut out = compare(before, &snapshot());
    let adopted = crate::soak::adopted_children(&Default::default());
    for &pid in &adopted {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let kvm = links(&format!("/proc/{pid}/fd"))
            .into_iter()
            .filter(|l| is_kvm(l))
            .count();
        out.push(format!(
            "process {pid} ({}) still running{}",
            comm.trim(),
            if kvm > 0 {
                format!(", holding {kvm} KVM descriptor(s)")
            } else {
                String::new()
            }
        ));
    }
    crate::soak::kill_and_reap(adopted.into_iter());
    // Where debugfs is mounted, KVM lists every VM as PID-FD: none may be an instance's.
    for e in std::fs::read_dir("/sys/kernel/debug/kvm")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if kvm_debugfs_pid(&name).is_some_and(|p| pids.contains(&p)) {
            out.push(format!("KVM VM {name} of an instance"));
        }
    }
    for d in state_dirs {
        let left: Vec<String> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // Only what names a container: not a runtime's own files (ocirun's .seccomp/).
            .filter(|name| ocirun::state::check_id(name).is_ok())
            .collect();
        if !left.is_empty() {
            out.push(format!("container state in {}: {left:?}", d.display()));
        }
    }
    let temp: Vec<String> = std::fs::read_dir(tmpdir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().display().to_string())
        .collect();
    if !temp.is_empty() {
        out.push(format!("temp files: {temp:?}"));
    }
    for g in tagged_groups(tag) {
        out.push(format!("cgroup {}", g.display()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_descriptors_and_debugfs_entries() {
        assert!(is_kvm("/dev/kvm"));
        assert!(is_kvm("anon_inode:kvm-vm"));
        assert!(is_kvm("anon_inode:kvm-vcpu:0"));
        assert!(!is_kvm("anon_inode:[eventfd]"));
        assert!(is_vcpu("anon_inode:kvm-vcpu:3"));
        assert!(!is_vcpu("anon_inode:kvm-vm"));
        assert_eq!(kvm_debugfs_pid("4242-12"), Some(4242));
        assert_eq!(kvm_debugfs_pid("vcpu0"), None);
        assert_eq!(kvm_debugfs_pid("mmu_shadow_zapped"), None);
    }
}
