//! `cargo xtask man`: every page renders under `man -l` without a warning and has the sections
//! a system tool's page has; every bash completion loads and completes an option.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    v.sort();
    v
}

/// The pages and completions in the test's own directory, removed when the test ends.
fn generate() -> testcaps::TempDir {
    let dir = testcaps::TempDir::new("xtask-man-test").expect("temp dir");
    let out = testcaps::run(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["man", "--drop-in", "--out"])
            .arg(dir.path()),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("{}\n", dir.path().display()));
    dir
}

#[test]
fn every_man_page_renders_with_exit_status_and_examples() {
    let dir = generate();
    let mut names = Vec::new();
    for (section, tools) in [
        (
            "1",
            &["unshare-rs", "nsenter-rs", "setpriv-rs", "cgctl", "tinyvmm"][..],
        ),
        (
            "8",
            &["pivot", "pivot_root", "switch_root", "ocirun", "netwire"][..],
        ),
    ] {
        let man_dir = dir.path().join(format!("share/man/man{section}"));
        for t in tools {
            assert!(
                man_dir.join(format!("{t}.{section}")).is_file(),
                "no {t}.{section}"
            );
        }
        for page in files(&man_dir) {
            let out = testcaps::run(
                Command::new("man")
                    .args(["--warnings", "-E", "UTF-8", "-P", "cat", "-l"])
                    .arg(&page)
                    .env("MANWIDTH", "80"),
                Duration::from_secs(30),
            );
            let name = page.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
            assert_eq!(out.code, Some(0), "{}: {out:?}", page.display());
            assert_eq!(out.stderr, "", "{}: groff warned", page.display());
            for heading in ["NAME", "SYNOPSIS", "OPTIONS", "EXIT STATUS", "EXAMPLES"] {
                assert!(
                    out.stdout.lines().any(|l| l == heading),
                    "{}: no {heading} section:\n{}",
                    page.display(),
                    out.stdout
                );
            }
            // man justifies lines: compare with the spaces collapsed.
            let words = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                words.contains(&format!("NAME {name} - ")),
                "{}: NAME does not name {name}",
                page.display()
            );
            names.push(name.to_string());
        }
    }
    assert!(names.iter().any(|n| n == "cgctl-run"), "{names:?}");
    // The drop-ins' option words come from their tables and help: one each.
    let unshare =
        std::fs::read_to_string(dir.path().join("share/man/man1/unshare-rs.1")).expect("page");
    assert!(unshare.contains("\\-\\-lo\\-up"), "{unshare}");
    assert!(
        unshare.contains("bring the loopback interface up"),
        "{unshare}"
    );
}

#[test]
fn every_bash_completion_loads_and_completes_help() {
    let dir = generate();
    let comp = dir.path().join("share/bash-completion/completions");
    let scripts = files(&comp);
    assert_eq!(scripts.len(), 10, "{scripts:?}");
    for script in scripts {
        let tool = script.file_name().and_then(|s| s.to_str()).expect("name");
        // Load it, show the registration, then run its function as bash does for `TOOL --he<TAB>`.
        let body = format!(
            "source \"$1\" || exit 9\n\
             spec=$(complete -p {tool}) || exit 8\n\
             echo \"$spec\"\n\
             fn=${{spec#*-F }}; fn=${{fn%% *}}\n\
             COMP_WORDS=({tool} --he); COMP_CWORD=1; COMP_LINE='{tool} --he'; COMP_POINT=${{#COMP_LINE}}\n\
             \"$fn\" {tool} --he {tool}\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
        );
        let out = testcaps::run(
            Command::new("bash")
                .args(["--norc", "--noprofile", "-c", &body, "bash"])
                .arg(&script),
            Duration::from_secs(30),
        );
        assert_eq!(out.code, Some(0), "{tool}: {out:?}");
        let mut lines = out.stdout.lines();
        let spec = lines.next().unwrap_or_default();
        assert!(
            spec.starts_with("complete ") && spec.ends_with(&format!(" {tool}")),
            "{tool}: {spec}"
        );
        let words: Vec<&str> = lines.map(str::trim).collect();
        assert!(words.contains(&"--help"), "{tool}: completed {words:?}");
    }
}
