//! Every subcommand's --help has examples, and usage errors of subcommands are one line, exit 1.

use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cgctl");

fn run(args: &[&str]) -> testcaps::Output {
    testcaps::run(Command::new(BIN).args(args), Duration::from_secs(30))
}

const SUBCOMMANDS: [&str; 14] = [
    "info", "create", "set", "get", "delete", "list", "pids", "move", "exec", "freeze", "thaw",
    "kill", "stat", "run",
];

#[test]
fn every_subcommand_has_examples() {
    for sub in SUBCOMMANDS {
        let out = run(&[sub, "--help"]);
        assert_eq!(out.code, Some(0), "{sub}: {out:?}");
        assert!(out.stdout.contains("Examples:"), "{sub}: {out:?}");
        assert!(
            out.stdout.contains(&format!("cgctl {sub}")),
            "{sub}: {out:?}"
        );
    }
    let out = run(&["run", "--help"]);
    for opt in [
        "--memory",
        "--memory-high",
        "--swap",
        "--cpus",
        "--cpu-weight",
        "--pids",
        "--cpuset",
        "--mems",
        "--io-read-bps",
        "--io-write-bps",
        "--set",
        "--report",
        "--json",
        "--name",
    ] {
        assert!(out.stdout.contains(opt), "{opt} missing: {out:?}");
    }
}

#[test]
fn usage_errors_are_one_line() {
    for args in [
        vec![],
        vec!["bogus"],
        vec!["create"],
        vec!["run"],
        vec!["run", "--pids"],
        vec!["exec", "x"],
        vec!["move", "x"],
        vec!["kill", "x", "--frobnicate"],
    ] {
        let out = run(&args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("cgctl: "), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
    }
}
