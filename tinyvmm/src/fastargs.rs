//! The first of two argument-parsing stages: the everyday `tinyvmm run [OPTIONS] IMAGE` line
//! for a small guest, read without building clap's command tree (a few dozen microseconds of a
//! VM whose whole run takes about one millisecond). Anything this stage does not recognise
//! exactly (help, short options, the kernel options, repeated options, values clap would
//! reject, `--`) returns `None` and goes to clap, which then decides and words every message; a
//! differential test and the `tinyvmm_args` fuzz target hold both stages to the same result.

use crate::plan::FormatArg;
use crate::{Cli, Command, RunArgs};
use std::ffi::OsString;
use std::path::PathBuf;

/// `tinyvmm run [--format F] [--mem S] [--load A] [--timeout T] [--cpuid] [--json]
/// [--report FILE] [IMAGE]` (`args` without argv\[0\]), or `None` for clap.
pub fn parse_run(args: &[OsString]) -> Option<Cli> {
    let (first, rest) = args.split_first()?;
    if first.to_str()? != "run" {
        return None;
    }
    let mut a = RunArgs::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let arg = rest[i].to_str()?;
        i += 1;
        if !arg.starts_with('-') {
            // clap refuses an empty path, and a second image.
            if a.image.is_some() || arg.is_empty() {
                return None;
            }
            a.image = Some(PathBuf::from(arg));
            continue;
        }
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (arg, None),
        };
        // Each option once: a repeat is clap's to reject.
        if seen.contains(&key) {
            return None;
        }
        seen.push(key);
        if key == "--cpuid" || key == "--json" {
            if inline.is_some() {
                return None;
            }
            if key == "--cpuid" {
                a.cpuid = true;
            } else {
                a.json = true;
            }
            continue;
        }
        let v = match inline {
            Some(v) => v,
            None => {
                let v = rest.get(i)?.to_str()?;
                i += 1;
                if v.starts_with('-') {
                    return None;
                }
                v
            }
        };
        if v.is_empty() {
            return None;
        }
        match key {
            "--format" => a.format = <FormatArg as clap::ValueEnum>::from_str(v, false).ok()?,
            "--mem" => a.mem = crate::parse_mem(v).ok()?,
            "--load" => a.load = Some(crate::parse_addr(v).ok()?),
            "--timeout" => a.timeout = Some(crate::parse_timeout(v).ok()?),
            "--report" => a.report = Some(PathBuf::from(v)),
            _ => return None,
        }
    }
    Some(Cli {
        command: Some(Command::Run(a)),
    })
}

/// The property both stages keep, for the tests and the fuzz target: whatever the fast stage
/// accepts, clap parses to the same `Cli`.
pub fn agrees_with_clap(args: &[OsString]) -> bool {
    conventions::cli::agrees_with_clap::<Cli>("tinyvmm", args, parse_run(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use testcaps::os_args as os;

    #[test]
    fn everyday_run_lines_are_read_here_as_clap_reads_them() {
        for args in [
            &["run"][..],
            &["run", "guest.elf"],
            &["run", "--mem", "16M", "pvh-exit.elf"],
            &["run", "--mem=16M", "--timeout", "0.5", "--json", "g.bin"],
            &["run", "--format", "real", "--load", "0x1000", "boot.bin"],
            &[
                "run",
                "--cpuid",
                "--report",
                "r.json",
                "--format=long",
                "g.bin",
            ],
            &["run", "g.bin", "--timeout=2"],
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
            &["--version"],
            &["run", "--help"],
            &["run", "-v", "g.bin"],
            &["run", "--kernel", "vmlinux"],
            &["run", "--mem", "16M", "--mem", "32M", "g.bin"],
            &["run", "--mem", "lots", "g.bin"],
            &["run", "--mem"],
            &["run", "--format", "zip", "g.bin"],
            &["run", "--timeout", "0", "g.bin"],
            &["run", "--json=yes", "g.bin"],
            &["run", "a.bin", "b.bin"],
            &["run", "--", "x"],
            &["run", "--report", "-", "g.bin"],
            &["run", "--report=", "g.bin"],
            // Found by the tinyvmm_args fuzz target: clap refuses an empty path.
            &["run", ""],
        ] {
            assert_eq!(parse_run(&os(args)), None, "{args:?}");
        }
    }
}
