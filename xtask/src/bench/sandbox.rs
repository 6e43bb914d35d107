//! The sandbox comparisons of issues #26 and #27, kept apart from the tool-by-tool plan: the
//! composed container with and without setpriv-rs --default-container against bwrap with the
//! same seccomp filter, and the container on a tmpfs root and on an overlay against bwrap's
//! tmpfs root, each group in one hyperfine run.

use super::report::Goal;
use super::{Case, Group};
use crate::util;
use std::path::{Path, PathBuf};

/// Where setpriv-rs is bound inside the rootfs (as scripts/container.sh does).
const INSIDE: &str = "/.microtools/setpriv-rs";

/// What the groups need made before the timing: the default container profile compiled to
/// classic BPF, for bwrap's `--seccomp FD`.
pub struct Prepared {
    bpf: PathBuf,
}

/// Writes the default profile's BPF program under `work` (privs' example
/// `default_container_bpf`, libseccomp's export).
pub fn prepare(work: &Path) -> Result<Prepared, String> {
    std::fs::create_dir_all(work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let bpf = work.join("default-container.bpf");
    let mut cmd = util::cargo();
    cmd.args([
        "run",
        "-q",
        "--release",
        "-p",
        "privs",
        "--example",
        "default_container_bpf",
        "--",
    ])
    .arg(&bpf);
    util::run(&mut cmd).map_err(|e| format!("compiling the default profile to BPF: {e}"))?;
    Ok(Prepared { bpf })
}

/// `sh -c 'exec "$@" 3<BPF' sh ARGV...`: every case of the seccomp group starts the same way,
/// because bwrap reads its filter from a descriptor, which hyperfine cannot open for it.
fn with_fd3(bpf: &Path, argv: &[&str]) -> Vec<String> {
    let mut v = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        format!(
            "exec \"$@\" 3<{}",
            super::shell_quote(&bpf.display().to_string())
        ),
        "sh".to_string(),
    ];
    v.extend(argv.iter().map(|s| s.to_string()));
    v
}

fn case(label: &str, argv: Vec<String>) -> Case {
    Case {
        label: label.to_string(),
        argv,
        expect: 0,
        approach: None,
    }
}

/// bwrap's arguments for what `pivot --tmpfs-root ROOTFS` builds: a tmpfs root with each
/// top-level entry of ROOTFS bound in (symlinks copied), /proc and /dev of its own.
pub fn bwrap_tmpfs_root(rootfs: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(rootfs)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut v = vec!["/usr/bin/bwrap".to_string(), "--unshare-all".to_string()];
    for n in names {
        let p = rootfs.join(&n);
        let dst = format!("/{n}");
        match (n.as_str(), std::fs::read_link(&p)) {
            ("proc", _) => v.extend(["--proc".into(), dst]),
            ("dev", _) => v.extend(["--dev".into(), dst]),
            (_, Ok(target)) => {
                v.extend(["--symlink".into(), target.display().to_string(), dst]);
            }
            _ => v.extend(["--bind".into(), p.display().to_string(), dst]),
        }
    }
    v.push("/bin/true".into());
    v
}

/// The two groups; the seccomp one only when `prepared` (the BPF program) is there.
pub fn groups(bin: &Path, rootfs: &Path, prepared: Option<&Prepared>) -> Vec<Group> {
    let ours = |name: &str| bin.join(name).display().to_string();
    let root = rootfs.display().to_string();
    let (unshare, pivot) = (ours("unshare-rs"), ours("pivot"));
    let setpriv_bind = format!("{}:{INSIDE}", ours("setpriv-rs"));
    let mut groups = Vec::new();
    if let Some(p) = prepared {
        let container = |tail: &[&str]| {
            let mut v = vec![
                unshare.as_str(),
                "-mpuinCf",
                "--",
                pivot.as_str(),
                "--ro-bind",
                setpriv_bind.as_str(),
                root.as_str(),
            ];
            v.extend(tail);
            with_fd3(&p.bpf, &v)
        };
        let bwrap = with_fd3(
            &p.bpf,
            &[
                "/usr/bin/bwrap",
                "--unshare-all",
                "--bind",
                &root,
                "/",
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--seccomp",
                "3",
                "/bin/true",
            ],
        );
        groups.push(Group {
            title: "a confined container: capabilities dropped, no_new_privs, seccomp filter"
                .into(),
            tool: "setpriv-rs",
            reference: false,
            slow: false,
            prepare: None,
            ours: case(
                "unshare-rs -mpuinCf -- pivot ROOTFS setpriv-rs --default-container -- /bin/true",
                container(&[INSIDE, "--default-container", "--", "/bin/true"]),
            ),
            peers: vec![
                (
                    case(
                        "the same container without setpriv-rs: unshare-rs -mpuinCf -- pivot ROOTFS /bin/true",
                        container(&["/bin/true"]),
                    ),
                    Goal::None,
                ),
                (
                    case(
                        "bwrap --unshare-all --bind ROOTFS / --proc /proc --dev /dev --seccomp 3 /bin/true (the same profile as BPF)",
                        bwrap,
                    ),
                    Goal::Ratio(1.0),
                ),
            ],
        });
    }
    let argv = |opt: &str| {
        [
            unshare.as_str(),
            "-mpuinCf",
            "--",
            pivot.as_str(),
            opt,
            root.as_str(),
            "/bin/true",
        ]
        .map(String::from)
        .to_vec()
    };
    let bwrap_tmpfs = case(
        "bwrap --unshare-all, ROOTFS's entries bound on its tmpfs root, --proc /proc --dev /dev /bin/true",
        bwrap_tmpfs_root(rootfs),
    );
    groups.push(Group {
        title: "a container on a tmpfs root (the rootfs never written)".into(),
        tool: "pivot",
        reference: false,
        slow: false,
        prepare: None,
        ours: case(
            "unshare-rs -mpuinCf -- pivot --tmpfs-root ROOTFS /bin/true",
            argv("--tmpfs-root"),
        ),
        peers: vec![(bwrap_tmpfs.clone(), Goal::Ratio(1.0))],
    });
    groups.push(Group {
        title: "a container on an overlay of the rootfs, writes thrown away".into(),
        tool: "pivot",
        reference: false,
        slow: false,
        prepare: None,
        ours: case(
            "unshare-rs -mpuinCf -- pivot --tmp-overlay-root ROOTFS /bin/true",
            argv("--tmp-overlay-root"),
        ),
        // Debian's bwrap 0.8 has no overlay options (0.11's `--overlay-src ROOTFS
        // --tmp-overlay /`): its tmpfs root is the closest it can do.
        peers: vec![(bwrap_tmpfs, Goal::None)],
    });
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_groups_run_the_same_rootfs_and_the_seccomp_one_needs_its_bpf() {
        let bin = Path::new("/b");
        let root = Path::new("/nonexistent-rootfs");
        let g = groups(bin, root, None);
        assert_eq!(g.len(), 2);
        assert_eq!(
            g[0].ours.argv,
            [
                "/b/unshare-rs",
                "-mpuinCf",
                "--",
                "/b/pivot",
                "--tmpfs-root",
                "/nonexistent-rootfs",
                "/bin/true"
            ]
        );
        assert_eq!(g[1].ours.argv[4], "--tmp-overlay-root");
        assert_eq!(
            g[0].peers[0].0.argv[..2],
            ["/usr/bin/bwrap", "--unshare-all"]
        );
        let p = Prepared {
            bpf: PathBuf::from("/w/d.bpf"),
        };
        let g = groups(bin, root, Some(&p));
        assert_eq!(g.len(), 3);
        assert_eq!(
            g[0].ours.argv[..4],
            ["/bin/sh", "-c", "exec \"$@\" 3</w/d.bpf", "sh"]
        );
        assert_eq!(
            g[0].ours.argv[4..],
            [
                "/b/unshare-rs",
                "-mpuinCf",
                "--",
                "/b/pivot",
                "--ro-bind",
                "/b/setpriv-rs:/.microtools/setpriv-rs",
                "/nonexistent-rootfs",
                "/.microtools/setpriv-rs",
                "--default-container",
                "--",
                "/bin/true"
            ]
        );
        assert_eq!(g[0].peers[0].0.argv[..11], g[0].ours.argv[..11]);
        assert!(g[0].peers[1].0.argv.ends_with(&[
            "--seccomp".into(),
            "3".into(),
            "/bin/true".into()
        ]));
    }
}
