//! Containers without a linux.cgroupsPath get `ocirun/ID`, under one parent that none owns: the
//! delete that leaves it empty removes it, so nothing stays behind. Alone in its own test binary,
//! because every other test gives its containers a cgroup of their own and a parallel test here
//! could hold the parent.

mod common;

use common::Env;
use std::path::PathBuf;
use testcaps::Cap;

/// Where the shared parent exists now: in each hierarchy under /sys/fs/cgroup, or at its root
/// on a pure cgroup v2 host.
fn parents() -> Vec<PathBuf> {
    let base = PathBuf::from("/sys/fs/cgroup");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&base)
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("ocirun"))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    if base.join("ocirun").is_dir() {
        found.push(base.join("ocirun"));
    }
    found.sort();
    found
}

#[test]
fn the_shared_parent_of_default_cgroups_goes_with_the_last_container() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    assert_eq!(
        parents(),
        Vec::<PathBuf>::new(),
        "an ocirun/ cgroup is left from an earlier ocirun: rmdir it where it is empty"
    );
    let env = Env::new(&["sleep", "60"]);
    env.config(|c| {
        if let Some(linux) = c["linux"].as_object_mut() {
            linux.remove("cgroupsPath");
        }
    });
    let (a, b) = (
        testcaps::unique_name("dflt-a"),
        testcaps::unique_name("dflt-b"),
    );
    env.create(&a);
    env.create(&b);
    let made = parents();
    assert!(!made.is_empty(), "no ocirun/ parent was made");
    for p in &made {
        assert!(
            p.join(&a).is_dir() && p.join(&b).is_dir(),
            "{}",
            p.display()
        );
    }
    // One container still in it: the parent stays.
    let out = env.ocirun(&["delete", "--force", &a]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(parents(), made);
    assert!(made.iter().all(|p| !p.join(&a).exists()));
    // The last one out removes it, in every hierarchy.
    let out = env.ocirun(&["delete", "--force", &b]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(parents(), Vec::<PathBuf>::new());
}
