//! The conventions every tool follows: --help with examples, --version, unknown options exit 1.

const BIN: &str = env!("CARGO_BIN_EXE_nsenter-rs");

#[test]
fn help_shows_examples() {
    testcaps::cli::assert_help_has_examples(BIN);
}

#[test]
fn version_prints_the_version() {
    testcaps::cli::assert_version(BIN, "nsenter-rs", env!("CARGO_PKG_VERSION"));
}

#[test]
fn unknown_option_is_one_line_and_exit_1() {
    testcaps::cli::assert_unknown_option(BIN, "nsenter-rs", 1);
}

#[test]
fn starts_without_the_std_runtime() {
    testcaps::cli::assert_starts_without_std_runtime(BIN);
}

#[test]
fn help_and_version_into_a_full_disk_are_a_write_error() {
    testcaps::cli::assert_help_and_version_write_errors(BIN, "nsenter-rs", 1);
}

#[test]
fn a_usage_error_into_a_full_stderr_does_not_panic() {
    testcaps::cli::assert_stderr_write_error(BIN, 1);
}

#[test]
fn ls_into_a_full_disk_is_a_write_error() {
    for args in [&["--ls"][..], &["--ls", "--json"]] {
        testcaps::cli::assert_write_error(BIN, args, testcaps::StdoutTo::Full, "nsenter-rs", 1);
    }
}

#[test]
fn ls_with_stdout_closed_writes_into_no_descriptor_of_its_own() {
    // Before, the listing went into a namespace file nsenter-rs had opened as fd 1.
    for args in [&["--ls"][..], &["--ls", "--json"]] {
        testcaps::cli::assert_write_error(BIN, args, testcaps::StdoutTo::Closed, "nsenter-rs", 1);
    }
}

/// A mistyped option or subcommand names the nearest one (#24), in the usage error's one line.
#[test]
fn typos_suggest_the_nearest_name() {
    testcaps::cli::assert_usage_line(
        BIN,
        &["--targte", "1"],
        "nsenter-rs: unexpected argument '--targte' found; did you mean '--target'? (try 'nsenter-rs --help')",
        1,
    );
}
