//! The conventions every tool follows: --help with examples, --version, unknown options exit 1.

const BIN: &str = env!("CARGO_BIN_EXE_cgctl");

#[test]
fn help_shows_examples() {
    testcaps::cli::assert_help_has_examples(BIN);
}

#[test]
fn version_prints_the_version() {
    testcaps::cli::assert_version(BIN, "cgctl", env!("CARGO_PKG_VERSION"));
}

#[test]
fn unknown_option_is_one_line_and_exit_1() {
    testcaps::cli::assert_unknown_option(BIN, "cgctl", 1);
}

#[test]
fn starts_without_the_std_runtime() {
    testcaps::cli::assert_starts_without_std_runtime(BIN);
}

#[test]
fn help_and_version_into_a_full_disk_are_a_write_error() {
    testcaps::cli::assert_help_and_version_write_errors(BIN, "cgctl", 1);
}

#[test]
fn a_usage_error_into_a_full_stderr_does_not_panic() {
    testcaps::cli::assert_stderr_write_error(BIN, 1);
}

#[test]
fn info_and_list_into_a_full_disk_are_a_write_error() {
    use testcaps::StdoutTo::Full;
    for args in [
        &["info"][..],
        &["info", "--json"],
        &["list"],
        &["list", "--json"],
    ] {
        testcaps::cli::assert_write_error(BIN, args, Full, "cgctl", 1);
    }
}

/// A release build ignores the test hooks: the layout `info` prints is the host's, whatever
/// CGCTL_MOUNTINFO and CGCTL_ROOT say (debug builds honour them: tests/fake_v2.rs).
#[cfg(not(debug_assertions))]
#[test]
fn release_builds_ignore_the_test_hooks() {
    let dir = std::env::temp_dir().join(testcaps::unique_name("cgctl-hooks"));
    std::fs::create_dir_all(dir.join("sys/fs/cgroup")).unwrap();
    std::fs::write(
        dir.join("mountinfo"),
        "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    )
    .unwrap();
    let info = |hooked: bool| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["info", "--json"]);
        if hooked {
            cmd.env("CGCTL_MOUNTINFO", dir.join("mountinfo"))
                .env("CGCTL_ROOT", &dir);
        }
        testcaps::run(&mut cmd, std::time::Duration::from_secs(30))
    };
    let (plain, hooked) = (info(false), info(true));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(plain.code, Some(0), "{plain:?}");
    assert_eq!(hooked.stdout, plain.stdout);
    assert!(!hooked.stdout.contains("cgctl-hooks"), "{hooked:?}");
}

/// A mistyped option or subcommand names the nearest one (#24), in the usage error's one line.
#[test]
fn typos_suggest_the_nearest_name() {
    testcaps::cli::assert_usage_line(
        BIN,
        &["craete", "demo"],
        "cgctl: unrecognized subcommand 'craete'; did you mean 'create'? (try 'cgctl --help')",
        1,
    );
    testcaps::cli::assert_usage_line(
        BIN,
        &["run", "--memroy", "64M", "--", "true"],
        "cgctl: unexpected argument '--memroy' found; did you mean '--memory'? (try 'cgctl --help')",
        1,
    );
    testcaps::cli::assert_usage_line(
        BIN,
        &["--memory", "64M", "run", "true"],
        "cgctl: unexpected argument '--memory' found; did you mean 'run --memory'? (try 'cgctl --help')",
        1,
    );
}
