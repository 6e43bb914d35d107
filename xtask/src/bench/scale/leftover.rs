//! What a scale run must not leave: the world before a family's runs against the world after
//! (mounts of the bench's namespace and of the host's init, cgctl's run records, the driver's
//! descriptors), plus what can only be looked for afterwards (cgroups named with the run's tag,
//! processes still parented to the driver, KVM VMs of the instances, runtime state, temp files).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The state compared before and after.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub mounts: BTreeSet<String>,
    pub init_mounts: BTreeSet<String>,
    pub fds: BTreeSet<String>,
    pub cgctl_records: BTreeSet<String>,
}

/// One mountinfo line as "mount point fstype source", or None for the mounts the kernel makes on
/// first use (autofs-triggered tracefs, debugfs, binfmt_misc), which say nothing of the bench.
pub fn mount_key(line: &str) -> Option<String> {
    let (left, right) = line.split_once(" - ")?;
    let point = left.split_whitespace().nth(4)?;
    let mut r = right.split_whitespace();
    let (fstype, source) = (r.next()?, r.next().unwrap_or(""));
    if matches!(fstype, "tracefs" | "debugfs" | "binfmt_misc") {
        return None;
    }
    Some(format!("{point} {fstype} {source}"))
}

fn mounts_of(path: &str) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(mount_key)
        .collect()
}

fn links(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The world now.
pub fn snapshot() -> Snapshot {
    Snapshot {
        mounts: mounts_of("/proc/self/mountinfo"),
        init_mounts: mounts_of("/proc/1/mountinfo"),
        fds: links("/proc/self/fd"),
        cgctl_records: std::fs::read_dir("/run/cgctl")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// What `after` has that `before` had not, and what went missing, one line each.
pub fn compare(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let mut diff = |what: &str, b: &BTreeSet<String>, a: &BTreeSet<String>| {
        for x in a.difference(b) {
            out.push(format!("{what}: {x}"));
        }
        for x in b.difference(a) {
            out.push(format!("{what} gone: {x}"));
        }
    };
    diff(
        "mount in the bench's namespace",
        &before.mounts,
        &after.mounts,
    );
    diff("host mount", &before.init_mounts, &after.init_mounts);
    diff("descriptor of the driver", &before.fds, &after.fds);
    diff(
        "cgctl run record in /run/cgctl",
        &before.cgctl_records,
        &after.cgctl_records,
    );
    out
}

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
    fn mountinfo_lines_become_keys_without_the_kernels_own() {
        assert_eq!(
            mount_key("36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue")
                .as_deref(),
            Some("/mnt1 ext3 /dev/root")
        );
        assert_eq!(
            mount_key("40 22 0:36 / /sys/kernel/tracing rw - tracefs tracefs rw"),
            None
        );
        assert_eq!(mount_key("garbage"), None);
    }

    #[test]
    fn differences_name_the_kind_of_thing_left() {
        let before = Snapshot {
            mounts: ["/ ext4 /dev/vda".to_string()].into(),
            fds: ["/dev/null".to_string()].into(),
            ..Snapshot::default()
        };
        let mut after = before.clone();
        after.mounts.insert("/x proc proc".into());
        after.fds.insert("anon_inode:kvm-vm".into());
        after.cgctl_records.insert("1234".into());
        after.init_mounts.insert("/y tmpfs tmpfs".into());
        assert!(compare(&before, &before).is_empty());
        assert_eq!(
            compare(&before, &after),
            [
                "mount in the bench's namespace: /x proc proc",
                "host mount: /y tmpfs tmpfs",
                "descriptor of the driver: anon_inode:kvm-vm",
                "cgctl run record in /run/cgctl: 1234"
            ]
        );
        assert_eq!(
            compare(&after, &before)[0],
            "mount in the bench's namespace gone: /x proc proc"
        );
    }

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
