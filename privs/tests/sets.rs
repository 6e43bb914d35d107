//! `caps::apply_sets` (the OCI runtime's five sets) on a thread of its own: capability sets
//! are per thread, so the test's other threads keep theirs.

use privs::caps::{self, Sets};
use privs::Capability as C;
use testcaps::Cap;

fn field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn the_five_oci_sets_are_applied() {
    testcaps::require!(Cap::Root);
    let sets = Sets {
        bounding: caps::parse_oci_list(&["CAP_CHOWN", "CAP_KILL", "CAP_SETPCAP"]).unwrap(),
        effective: [C::CAP_KILL].into_iter().collect(),
        permitted: [C::CAP_KILL, C::CAP_CHOWN].into_iter().collect(),
        inheritable: [C::CAP_CHOWN].into_iter().collect(),
        ambient: [C::CAP_CHOWN].into_iter().collect(),
    };
    let status = std::thread::spawn(move || {
        caps::apply_sets(&sets).map_err(|e| e.to_string())?;
        std::fs::read_to_string("/proc/thread-self/status").map_err(|e| e.to_string())
    })
    .join()
    .expect("thread")
    .expect("apply_sets");
    assert_eq!(field(&status, "CapBnd"), "0000000000000121");
    assert_eq!(field(&status, "CapPrm"), "0000000000000021");
    assert_eq!(field(&status, "CapEff"), "0000000000000020");
    assert_eq!(field(&status, "CapInh"), "0000000000000001");
    assert_eq!(field(&status, "CapAmb"), "0000000000000001");
}

#[test]
fn a_set_that_cannot_be_had_is_one_line() {
    testcaps::require!(Cap::Root);
    let sets = Sets {
        bounding: caps::parse_oci_list(&["CAP_KILL"]).unwrap(),
        permitted: [C::CAP_KILL].into_iter().collect(),
        ambient: [C::CAP_KILL].into_iter().collect(),
        ..Sets::default()
    };
    let e = std::thread::spawn(move || caps::apply_sets(&sets).map_err(|e| e.to_string()))
        .join()
        .expect("thread")
        .unwrap_err();
    // Ambient needs the capability inheritable too.
    assert_eq!(
        e,
        "prctl(PR_CAP_AMBIENT, RAISE, kill) failed: Operation not permitted"
    );
}
