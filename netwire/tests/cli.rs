//! The conventions every tool follows: --help with examples, --version, unknown options exit 1.

fn bin() -> &'static str {
    testcaps::tool_bin("netwire", env!("CARGO_BIN_EXE_netwire"))
}

#[test]
fn help_shows_examples() {
    testcaps::cli::assert_help_has_examples(bin());
}

#[test]
fn version_prints_the_version() {
    testcaps::cli::assert_version(bin(), "netwire", env!("CARGO_PKG_VERSION"));
}

#[test]
fn unknown_option_is_one_line_and_exit_1() {
    testcaps::cli::assert_unknown_option(bin(), "netwire", 1);
}

#[test]
fn starts_without_the_std_runtime() {
    testcaps::cli::assert_starts_without_std_runtime(bin());
}

#[test]
fn help_and_version_into_a_full_disk_are_a_write_error() {
    testcaps::cli::assert_help_and_version_write_errors(bin(), "netwire", 1);
}

#[test]
fn a_usage_error_into_a_full_stderr_does_not_panic() {
    testcaps::cli::assert_stderr_write_error(bin(), 1);
}

/// A mistyped option or subcommand names the nearest one (#24), in the usage error's one line.
#[test]
fn typos_suggest_the_nearest_name() {
    testcaps::cli::assert_usage_line(
        bin(),
        &["brige", "br0"],
        "netwire: unrecognized subcommand 'brige'; did you mean 'bridge'? (try 'netwire --help')",
        1,
    );
    testcaps::cli::assert_usage_line(
        bin(),
        &["bridge", "br0", "--adr", "10.0.0.1/24"],
        "netwire: unexpected argument '--adr' found; did you mean '--addr'? (try 'netwire --help')",
        1,
    );
}
