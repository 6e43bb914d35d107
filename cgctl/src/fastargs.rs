//! The first of two argument-parsing stages: the everyday `cgctl run` command line, read without
//! building clap's whole command tree (every subcommand and its ~100 arguments: about 110 KiB of
//! heap and a tenth of a run's time here). Anything this stage does not recognise exactly
//! (help, short options, repeated options, values that look like options, other subcommands,
//! errors) returns `None` and goes to clap, which then decides and words every message; a
//! differential test and the `cgctl_args` fuzz target hold both stages to the same result.

use crate::limits::LimitArgs;
use crate::{Cli, Command};
use std::ffi::OsString;
use std::path::PathBuf;

/// Sets an option that may appear once; a second time is clap's to reject.
fn once(slot: &mut Option<String>, v: &str) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v.to_string());
    Some(())
}

/// `cgctl [--parent P] run [LIMITS] [--name N] [--report F] [--json] [--parent P] -- CMD...`
/// (`args` without argv\[0\]), or `None` for clap.
pub fn parse_run(args: &[OsString]) -> Option<Cli> {
    let mut parent: Option<String> = None;
    let mut i = 0;
    // Global options, then the subcommand.
    loop {
        let a = args.get(i)?.to_str()?;
        if a == "run" {
            i += 1;
            break;
        }
        if let Some(v) = a.strip_prefix("--parent=") {
            if v.is_empty() {
                return None;
            }
            once(&mut parent, v)?;
            i += 1;
        } else if a == "--parent" {
            once(&mut parent, value(args.get(i + 1)?)?)?;
            i += 2;
        } else {
            return None;
        }
    }
    let mut limits = LimitArgs::default();
    let (mut name, mut report, mut json) = (None, None::<String>, false);
    while i < args.len() {
        let a = args[i].to_str()?;
        if a == "--" {
            let command: Vec<OsString> = args[i + 1..].to_vec();
            if command.is_empty() {
                return None;
            }
            return Some(Cli {
                parent,
                command: Command::Run {
                    limits,
                    name,
                    report: report.map(PathBuf::from),
                    json,
                    command,
                },
            });
        }
        if a == "--json" {
            if json {
                return None;
            }
            json = true;
            i += 1;
            continue;
        }
        let (key, v) = match a.split_once('=') {
            Some((k, v)) if !v.is_empty() => {
                i += 1;
                (k, v)
            }
            Some(_) => return None,
            None => {
                i += 2;
                (a, value(args.get(i - 1)?)?)
            }
        };
        match key {
            "--memory" => once(&mut limits.memory, v)?,
            "--memory-high" => once(&mut limits.memory_high, v)?,
            "--swap" => once(&mut limits.swap, v)?,
            "--cpus" => once(&mut limits.cpus, v)?,
            "--cpu-weight" => once(&mut limits.cpu_weight, v)?,
            "--pids" => once(&mut limits.pids, v)?,
            "--cpuset" => once(&mut limits.cpuset, v)?,
            "--mems" => once(&mut limits.mems, v)?,
            "--io-read-bps" => limits.io_read_bps.push(v.to_string()),
            "--io-write-bps" => limits.io_write_bps.push(v.to_string()),
            "--set" => limits.raw.push(v.to_string()),
            "--name" => once(&mut name, v)?,
            "--report" => once(&mut report, v)?,
            "--parent" => once(&mut parent, v)?,
            _ => return None,
        }
    }
    // No `--`: the command is missing, which clap words.
    None
}

/// An option's value given as the next argument: clap takes anything but what looks like an
/// option (or is empty, which it may word differently); those go to clap.
fn value(a: &OsString) -> Option<&str> {
    let v = a.to_str()?;
    if v.is_empty() || v.starts_with('-') {
        return None;
    }
    Some(v)
}

/// The property both stages keep, for the tests and the fuzz target: whatever the fast stage
/// accepts, clap parses to the same `Cli`.
pub fn agrees_with_clap(args: &[OsString]) -> bool {
    conventions::cli::agrees_with_clap::<Cli>("cgctl", args, parse_run(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use testcaps::os_args as os;

    #[test]
    fn everyday_run_lines_are_read_here_as_clap_reads_them() {
        for args in [
            &["run", "--pids", "64", "--memory", "64M", "--", "/bin/true"][..],
            &["run", "--memory=32M", "--json", "--", "sh", "-c", "exit 3"],
            &["--parent", "demo", "run", "--name", "job", "--", "true"],
            &[
                "run",
                "--parent=demo",
                "--report",
                "r.json",
                "--",
                "true",
                "--",
            ],
            &[
                "run",
                "--cpus",
                "0.5",
                "--cpu-weight",
                "50",
                "--memory-high",
                "1G",
                "--swap",
                "0",
                "--cpuset",
                "0",
                "--mems",
                "0",
                "--io-read-bps",
                "/dev/sda=1M",
                "--io-read-bps",
                "/dev/sdb=2M",
                "--io-write-bps=/dev/sda=1M",
                "--set",
                "pids.max=5",
                "--",
                "x",
            ],
        ] {
            let a = os(args);
            assert!(parse_run(&a).is_some(), "{args:?}");
            assert!(agrees_with_clap(&a), "{args:?}");
        }
    }

    #[test]
    fn anything_unusual_goes_to_clap() {
        for args in [
            &[][..],
            &["run"],
            &["run", "--pids", "64"],
            &["run", "--"],
            &["run", "--help"],
            &["run", "-h", "--", "true"],
            &["--version"],
            &["info"],
            &["run", "--memory", "1M", "--memory", "2M", "--", "true"],
            &["run", "--json", "--json", "--", "true"],
            &["run", "--json=true", "--", "true"],
            &["run", "--memory", "--", "true"],
            &["run", "--memory", "-5", "--", "true"],
            &["run", "--memory=", "--", "true"],
            &["run", "--mem", "1M", "--", "true"],
            &["run", "true"],
            &["--parent", "a", "--parent", "b", "run", "--", "true"],
            &["--parent", "a", "run", "--parent", "b", "--", "true"],
            &["--parent=", "run", "--", "true"],
        ] {
            let a = os(args);
            assert_eq!(parse_run(&a), None, "{args:?}");
        }
    }

    #[test]
    fn values_clap_takes_inline_agree() {
        for args in [
            &["run", "--memory=-5", "--", "true"][..],
            &["run", "--name=a=b", "--", "true"],
            &["run", "--set=memory.high=max", "--", "true"],
        ] {
            assert!(agrees_with_clap(&os(args)), "{args:?}");
        }
    }
}
