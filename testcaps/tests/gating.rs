//! The capability gating, run for real: every demanded capability is present, and a missing one
//! skips or fails depending on `MICROTOOLS_REQUIRE` (checked by re-running this test binary).

use std::process::Command;
use std::time::Duration;
use testcaps::{require, Cap};

#[test]
fn every_demanded_capability_is_present() {
    let demanded = testcaps::required();
    let mut missing = Vec::new();
    for name in &demanded {
        match Cap::from_name(name) {
            // A condition is judged by the tests that gate on it (require_condition).
            None if testcaps::CONDITIONS.iter().any(|(n, _)| n == name) => {}
            None => missing.push(format!("{name}: not a known capability or condition")),
            Some(cap) => {
                if let Err(why) = testcaps::check(cap) {
                    missing.push(format!("{name}: {why}"));
                }
            }
        }
    }
    println!("MICROTOOLS_REQUIRE={demanded:?}");
    assert!(missing.is_empty(), "demanded but missing: {missing:?}");
}

/// Run only by `gating_works_both_ways`, with MICROTOOLS_PRETEND_MISSING=kvm.
#[test]
#[ignore = "run by gating_works_both_ways in a child process"]
fn inner_needs_kvm() {
    require!(Cap::Kvm);
    println!("INNER RAN");
}

fn run_inner(require_list: &str) -> testcaps::Output {
    let exe = std::env::current_exe().expect("own test binary");
    testcaps::run(
        Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "inner_needs_kvm",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("MICROTOOLS_PRETEND_MISSING", "kvm")
            .env_remove("MICROTOOLS_SKIP_LOG")
            .env("MICROTOOLS_REQUIRE", require_list),
        Duration::from_secs(60),
    )
}

#[test]
fn gating_works_both_ways() {
    let skipped = run_inner("");
    assert_eq!(skipped.code, Some(0), "{skipped:?}");
    assert!(
        skipped.stdout.contains(
            "SKIPPED gating::inner_needs_kvm: needs kvm (MICROTOOLS_PRETEND_MISSING lists it)"
        ),
        "{skipped:?}"
    );
    assert!(!skipped.stdout.contains("INNER RAN"));

    let failed = run_inner("root,kvm");
    assert_eq!(failed.code, Some(101), "{failed:?}");
    assert!(
        failed.stderr.contains("needs kvm")
            && failed.stderr.contains("MICROTOOLS_REQUIRE demands it"),
        "{failed:?}"
    );
    assert!(!failed.stdout.contains("INNER RAN"));
}
