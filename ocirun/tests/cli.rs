//! The command line: --help with examples, runc's --version form, unknown options, the refused
//! global flags, `spec` and `features`; no root needed.

mod common;
use common::BIN;

use std::process::Command;
use std::time::Duration;

fn run(args: &[&str]) -> testcaps::Output {
    testcaps::run(Command::new(BIN).args(args), Duration::from_secs(30))
}

#[test]
fn help_shows_examples() {
    testcaps::cli::assert_help_has_examples(BIN);
}

#[test]
fn unknown_option_is_one_line_and_exit_1() {
    testcaps::cli::assert_unknown_option(BIN, "ocirun", 1);
}

#[test]
fn starts_without_the_std_runtime() {
    testcaps::cli::assert_starts_without_std_runtime(BIN);
}

#[test]
fn version_is_runc_s_three_lines() {
    let out = run(&["--version"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert_eq!(
        lines[0],
        format!("ocirun version {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(lines[1].starts_with("commit: "), "{out:?}");
    assert_eq!(lines[2], "spec: 1.1.0");
}

#[test]
fn systemd_cgroup_is_refused_clearly() {
    let out = run(&["--systemd-cgroup", "list"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with("ocirun: --systemd-cgroup: systemd cgroup management is not supported"),
        "{out:?}"
    );
}

#[test]
fn errors_go_to_the_json_log_too() {
    let dir = std::env::temp_dir().join(testcaps::unique_name("ocirun-log"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log.json");
    let root = dir.join("root");
    let out = run(&[
        "--root",
        root.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nosuch",
    ]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(
        last["msg"],
        format!(
            "container nosuch: does not exist (no {}/nosuch)",
            root.display()
        )
    );
    assert!(last["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        out.stderr,
        format!("ocirun: {}\n", last["msg"].as_str().unwrap())
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_log_that_cannot_be_opened_is_one_line_with_strerror() {
    let log = std::env::temp_dir()
        .join(testcaps::unique_name("ocirun-nodir"))
        .join("log.json");
    let out = run(&["--log", log.to_str().unwrap(), "list"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "ocirun: opening --log {} failed: No such file or directory\n",
            log.display()
        )
    );
}

#[test]
fn spec_writes_a_config_that_ocirun_reads_and_refuses_to_overwrite() {
    let dir = std::env::temp_dir().join(testcaps::unique_name("ocirun-spec"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(&["spec", "-b", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["ociVersion"], "1.1.0");
    assert_eq!(c["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(c["root"]["path"], "rootfs");
    let out = run(&["spec", "-b", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("does not overwrite a config.json"),
        "{out:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn features_is_runtime_spec_1_1_json() {
    let out = run(&["features"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let f: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert_eq!(f["ociVersionMax"], "1.1.0");
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    assert!(f["linux"]["seccomp"]["actions"]
        .as_array()
        .unwrap()
        .contains(&"SCMP_ACT_KILL_PROCESS".into()));
    assert_eq!(f["linux"]["cgroup"]["systemd"], false);
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&"user".into()));
    assert!(f["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .contains(&"CAP_KILL".into()));
    assert!(f["mountOptions"]
        .as_array()
        .unwrap()
        .contains(&"rbind".into()));
}

#[test]
fn a_command_is_required() {
    let out = run(&[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "ocirun: a command is required (try 'ocirun --help')\n"
    );
}

/// A mistyped option or subcommand names the nearest one (#24), in the usage error's one line.
#[test]
fn typos_suggest_the_nearest_name() {
    testcaps::cli::assert_usage_line(
        BIN,
        &["sate", "x"],
        "ocirun: unrecognized subcommand 'sate'; did you mean 'state' or 'update'? (try 'ocirun --help')",
        1,
    );
    testcaps::cli::assert_usage_line(
        BIN,
        &["run", "--bundel", "x", "id"],
        "ocirun: unexpected argument '--bundel' found; did you mean '--bundle'? (try 'ocirun --help')",
        1,
    );
}
