//! The conventions every tool follows: --help with examples, --version, unknown options exit 125 (tinyvmm's own failure code).

use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tinyvmm");

fn run(args: &[&str]) -> testcaps::Output {
    testcaps::run(Command::new(BIN).args(args), Duration::from_secs(30))
}

#[test]
fn help_shows_examples_and_the_exit_statuses() {
    testcaps::cli::assert_help_has_examples(BIN);
    for args in [&["--help"][..], &["run", "--help"]] {
        let out = run(args);
        assert_eq!(out.code, Some(0), "{out:?}");
        for row in [
            "  123  the guest crashed",
            "  124  --timeout expired",
            "  125  tinyvmm's own",
        ] {
            assert!(out.stdout.contains(row), "{args:?} lacks {row:?}: {out:?}");
        }
    }
}

#[test]
fn version_prints_the_version() {
    testcaps::cli::assert_version(BIN, "tinyvmm", env!("CARGO_PKG_VERSION"));
}

#[test]
fn unknown_option_is_one_line_and_exit_125() {
    testcaps::cli::assert_unknown_option(BIN, "tinyvmm", 125);
}

#[test]
fn missing_subcommand_is_one_line_and_exit_125() {
    let out = run(&[]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert_eq!(
        out.stderr,
        "tinyvmm: missing subcommand 'run' (try 'tinyvmm --help')\n"
    );
}

#[test]
fn starts_without_the_std_runtime() {
    testcaps::cli::assert_starts_without_std_runtime(BIN);
}

#[test]
fn help_and_version_into_a_full_disk_are_a_write_error() {
    testcaps::cli::assert_help_and_version_write_errors(BIN, "tinyvmm", 125);
}

#[test]
fn a_usage_error_into_a_full_stderr_does_not_panic() {
    testcaps::cli::assert_stderr_write_error(BIN, 125);
}

/// A mistyped option or subcommand names the nearest one (#24), in the usage error's one line.
#[test]
fn typos_suggest_the_nearest_name() {
    testcaps::cli::assert_usage_line(
        BIN,
        &["run", "--kernl", "x"],
        "tinyvmm: unexpected argument '--kernl' found; did you mean '--kernel'? (try 'tinyvmm --help')",
        125,
    );
}
