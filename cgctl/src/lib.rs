//! cgctl: create cgroups, set limits, run commands under them and report what they used, on v1,
//! v2 and hybrid hosts, writing cgroupfs directly.

pub mod cgroupfs;
pub mod detail;
pub mod error;
pub mod group;
pub mod layout;
pub mod limits;
pub mod owner;
pub mod run;
pub mod stats;

pub use error::{Error, Result};

use clap::{Parser, Subcommand};
use group::Group;
use layout::{Layout, Version};
use limits::{LimitArgs, Limits};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  cgctl info
  cgctl run --memory 64M --pids 64 --json -- make -j2
  cgctl create demo/job1 --cpus 0.5 --memory 1G
  cgctl exec demo/job1 -- ./worker
  cgctl stat demo/job1 --json
  cgctl kill demo/job1 && cgctl delete -r demo
  cgctl gc";

/// Command line of cgctl.
#[derive(Parser, Debug, PartialEq)]
#[command(
    name = "cgctl",
    version = conventions::VERSION,
    about = "create cgroups, set limits, run commands under them and report what they used",
    after_help = EXAMPLES,
    subcommand_required = true,
    arg_required_else_help = false
)]
pub struct Cli {
    /// Group NAMEs are relative to this group instead of each hierarchy's root.
    #[arg(long, global = true, value_name = "PATH")]
    pub parent: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug, PartialEq)]
pub enum Command {
    /// Show the cgroup layout, where each controller lives, and the caller's own groups.
    #[command(after_help = "Examples:\n  cgctl info\n  cgctl info --json")]
    Info {
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Create a group in every hierarchy and apply limits.
    #[command(
        after_help = "Examples:\n  cgctl create demo --memory 256M --pids 100\n  cgctl create demo/job1 --cpus 0.5 --cpu-weight 50"
    )]
    Create {
        /// Group name, e.g. demo/job1.
        name: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Change limits of an existing group.
    #[command(
        after_help = "Examples:\n  cgctl set demo --memory 512M\n  cgctl set demo --set pids.max=50"
    )]
    Set {
        /// Group name.
        name: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Print interface files of a group (its limits when no KEY is given).
    #[command(
        after_help = "Examples:\n  cgctl get demo\n  cgctl get demo memory cpus pids\n  cgctl get demo pids.max memory.limit_in_bytes\n  cgctl get demo pids.current --values"
    )]
    Get {
        /// Group name.
        name: String,
        /// Interface files (pids.max, memory.current...), or the keys create and set take
        /// (memory, memory-high, swap, cpus, cpu-weight, pids, cpuset, mems), read on v1 or v2
        /// and printed in their units.
        keys: Vec<String>,
        /// Print values only, one per line.
        #[arg(short = 'n', long)]
        values: bool,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove a group from every hierarchy where it exists.
    #[command(after_help = "Examples:\n  cgctl delete demo/job1\n  cgctl delete -r demo")]
    Delete {
        /// Group name.
        name: String,
        /// Remove child groups first.
        #[arg(short = 'r', long)]
        recursive: bool,
    },
    /// List a group and its descendants (all groups without NAME).
    #[command(after_help = "Examples:\n  cgctl list\n  cgctl list demo --json")]
    List {
        /// Group name.
        name: Option<String>,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the pids in a group and its descendants, one a line.
    #[command(after_help = "Examples:\n  cgctl pids demo")]
    Pids {
        /// Group name.
        name: String,
    },
    /// Move processes into a group (in every hierarchy).
    #[command(after_help = "Examples:\n  cgctl move demo 1234 1235")]
    Move {
        /// Group name.
        name: String,
        /// Process ids.
        #[arg(required = true)]
        pids: Vec<String>,
    },
    /// Join a group, then execute a command.
    #[command(after_help = "Examples:\n  cgctl exec demo -- ./worker --fast")]
    Exec {
        /// Group name.
        name: String,
        /// The command and its arguments (after `--`, or from the first word that is not an
        /// option, as cgexec takes it).
        #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Freeze every process of a group.
    #[command(after_help = "Examples:\n  cgctl freeze demo")]
    Freeze {
        /// Group name.
        name: String,
    },
    /// Thaw a frozen group.
    #[command(after_help = "Examples:\n  cgctl thaw demo")]
    Thaw {
        /// Group name.
        name: String,
    },
    /// Signal every process of a group (SIGKILL leaves nothing, even under a fork loop).
    #[command(after_help = "Examples:\n  cgctl kill demo\n  cgctl kill demo -s TERM")]
    Kill {
        /// Group name.
        name: String,
        /// Signal name or number.
        #[arg(short = 's', long, default_value = "KILL")]
        signal: String,
    },
    /// Show what a group uses: memory, CPU, pids and limit hits.
    #[command(after_help = "Examples:\n  cgctl stat demo\n  cgctl stat demo --json")]
    Stat {
        /// Group name.
        name: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove the groups of `cgctl run`s that were killed (SIGKILL) before they could clean up.
    #[command(
        after_help = "Each run records its pid, the time and its group in /run/cgctl; gc kills what is\nleft in the groups of runs that no longer live, removes them from every hierarchy and\nprints their names, one a line. Groups of live runs, and groups cgctl run did not make,\nare never touched. With --parent, only the groups below PATH.\n\nExamples:\n  cgctl gc\n  cgctl gc --parent ci"
    )]
    Gc,
    /// Run a command in a fresh group under limits, then report what it used and remove the group.
    #[command(
        after_help = "Examples:\n  cgctl run --memory 32M --json -- ./build.sh\n  cgctl run --memory 64M sh -c 'echo hi'\n  cgctl run --cpus 0.5 --pids 64 --report usage.json -- make -j4\n\nThe command gets SIGKILL if cgctl dies (a parent-death signal); what it left in the group\nafter a SIGKILL of cgctl is removed by `cgctl gc`.\n\nThe report (JSON): exit_code, signal, oom_killed, oom_kills, memory_peak_bytes,\ncpu_usage_usec, cpu_user_usec, cpu_system_usec, pids_peak, pids_limit_hits,\nwall_time_usec, limits. cgctl exits with the command's status."
    )]
    Run {
        #[command(flatten)]
        limits: LimitArgs,
        /// Group name (default: a fresh unique one).
        #[arg(long)]
        name: Option<String>,
        /// Write the report to FILE.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Print the report on stderr.
        #[arg(long)]
        json: bool,
        /// The command and its arguments (after `--`, or from the first word that is not an
        /// option, as cgexec takes it).
        #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
}

fn parse_limits(layout: &Layout, a: &LimitArgs) -> Result<(Limits, Vec<limits::Write>)> {
    let l = Limits::parse(a, &limits::block_device)?;
    let route = |c: &str| {
        if c == "cgroup" {
            layout.v2().map(|_| Version::V2)
        } else {
            layout.route_version(c)
        }
    };
    let w = limits::plan(&l, &route)?;
    Ok((l, w))
}

/// Runs the tool and returns the process exit code (errors are printed here, once).
pub fn run(tool: &str, cli: Cli) -> i32 {
    // Rust ignores SIGPIPE, which would turn `cgctl list | head` into a panic and, inherited
    // across exec, hand `run`/`exec` commands an ignored SIGPIPE: restore the default.
    // SAFETY: setting a signal disposition to SIG_DFL has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    match dispatch(tool, cli) {
        Ok(code) => code,
        Err(e) => {
            conventions::errln!("{tool}: {e}");
            conventions::exit::FAILURE
        }
    }
}

fn print_json(v: &Value) {
    conventions::outln!("{v}");
}

fn dispatch(tool: &str, cli: Cli) -> Result<i32> {
    let layout = Layout::host()?;
    let parent = cli.parent.as_deref();
    match cli.command {
        Command::Info { json } => {
            info(&layout, json);
            Ok(0)
        }
        Command::Create { name, limits } => {
            let g = Group::new(&layout, parent, &name)?;
            let (_, writes) = parse_limits(&layout, &limits)?;
            g.create(&writes)?;
            Ok(0)
        }
        Command::Set { name, limits } => {
            let g = Group::new(&layout, parent, &name)?;
            g.require()?;
            let (l, writes) = parse_limits(&layout, &limits)?;
            if l.is_empty() {
                return Err(Error::Usage(
                    "set: give at least one limit (see cgctl set --help)".to_string(),
                ));
            }
            g.apply(&writes)?;
            Ok(0)
        }
        Command::Get {
            name,
            keys,
            values,
            json,
        } => {
            let g = Group::new(&layout, parent, &name)?;
            g.require()?;
            get(&layout, &g, &keys, values, json)?;
            Ok(0)
        }
        Command::Delete { name, recursive } => {
            Group::new(&layout, parent, &name)?.delete(recursive)?;
            Ok(0)
        }
        Command::List { name, json } => {
            let g = Group::new(&layout, parent, name.as_deref().unwrap_or(""))?;
            if name.is_some() {
                g.require()?;
            }
            let tree = g.tree();
            let base = g.name();
            let full = |r: &str| match (base.is_empty(), r.is_empty()) {
                (true, _) => r.to_string(),
                (false, true) => base.clone(),
                (false, false) => format!("{base}/{r}"),
            };
            if json {
                let items: Vec<Value> = tree
                    .iter()
                    .filter(|(r, _)| !(base.is_empty() && r.is_empty()))
                    .map(|(r, h)| json!({"name": full(r), "hierarchies": h}))
                    .collect();
                print_json(&json!({ "cgroups": items }));
            } else {
                for (r, _) in &tree {
                    if base.is_empty() && r.is_empty() {
                        continue;
                    }
                    conventions::outln!("{}", full(r));
                }
            }
            Ok(0)
        }
        Command::Pids { name } => {
            let g = Group::new(&layout, parent, &name)?;
            g.require()?;
            for p in g.procs() {
                conventions::outln!("{p}");
            }
            Ok(0)
        }
        Command::Move { name, pids } => {
            let g = Group::new(&layout, parent, &name)?;
            g.require()?;
            let mut parsed = Vec::new();
            for p in &pids {
                match p.trim().parse::<i32>() {
                    Ok(n) if n > 0 => parsed.push(n),
                    _ => {
                        return Err(Error::Usage(format!(
                            "invalid pid '{p}' (a positive process id)"
                        )))
                    }
                }
            }
            for p in parsed {
                g.join(p)?;
            }
            Ok(0)
        }
        Command::Exec { name, command } => {
            let g = Group::new(&layout, parent, &name)?;
            g.join(0)?;
            let (msg, code) = conventions::exec::execvp(&command);
            conventions::errln!("{tool}: {msg}");
            Ok(code)
        }
        Command::Freeze { name } => {
            Group::new(&layout, parent, &name)?.set_frozen(true)?;
            Ok(0)
        }
        Command::Thaw { name } => {
            Group::new(&layout, parent, &name)?.set_frozen(false)?;
            Ok(0)
        }
        Command::Kill { name, signal } => {
            let sig = conventions::signal::parse(&signal).map_err(Error::Usage)?;
            Group::new(&layout, parent, &name)?.kill(sig)?;
            Ok(0)
        }
        Command::Gc => {
            // Names first, then the error: what was removed is said even when one group failed.
            let under = group::check_name(parent.unwrap_or(""))?;
            let (removed, result) = owner::gc(&layout, &under);
            for n in removed {
                conventions::outln!("{n}");
            }
            result.map(|()| 0)
        }
        Command::Stat { name, json } => {
            let g = Group::new(&layout, parent, &name)?;
            g.require()?;
            let s = stats::Stats::read(&g);
            if json {
                print_json(&s.to_json());
            } else {
                conventions::out!("{}", s.to_text());
            }
            Ok(0)
        }
        Command::Run {
            limits,
            name,
            report,
            json,
            command,
        } => {
            let (l, writes) = parse_limits(&layout, &limits)?;
            // Open the report first: a bad path is an error before anything runs.
            let report_file = report
                .as_ref()
                .map(|p| std::fs::File::create(p).map_err(|e| report_error("create", p, e)))
                .transpose()?;
            let name = name.unwrap_or_else(run::unique_name);
            let group = Group::new(&layout, parent, &name)?;
            let spec = run::RunSpec {
                group,
                writes,
                limits_json: l.to_json(),
                argv: command,
            };
            let (outcome, rep) = run::run(tool, spec)?;
            let text = rep.to_json().to_string();
            if let (Some(mut f), Some(path)) = (report_file, report) {
                use std::io::Write as _;
                f.write_all(format!("{text}\n").as_bytes())
                    .map_err(|e| report_error("write", &path, e))?;
            }
            if json {
                conventions::errln!("{text}");
            }
            conventions::exit::relay(outcome)
        }
    }
}

/// A failed create or write of the `--report` file, with a hint about that file: the cgroupfs
/// hints of [`Error::sys`] (cpuset, controllers) would mislead for an ordinary file.
fn report_error(op: &str, path: &std::path::Path, e: std::io::Error) -> Error {
    let hint = report_hint(e.raw_os_error());
    Error::sys_hint(&format!("{op} report"), path, e, hint)
}

/// The hint for a failed `--report` file by errno.
pub fn report_hint(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::ENOENT) => "its directory does not exist: create it first",
        Some(libc::ENOTDIR) => "a component of the path is not a directory",
        Some(libc::EISDIR) => "it is a directory: give a file name",
        Some(libc::EACCES) | Some(libc::EPERM) => "no permission to write it there",
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => "the report's file system is full",
        Some(libc::EROFS) => "the report's file system is read-only",
        _ => "",
    }
}

/// The files `get` shows when no KEY is given: the limit files of each controller.
const LIMIT_FILES: [&str; 16] = [
    "memory.max",
    "memory.high",
    "memory.swap.max",
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "cpu.max",
    "cpu.weight",
    "cpu.cfs_period_us",
    "cpu.cfs_quota_us",
    "cpu.shares",
    "pids.max",
    "cpuset.cpus",
    "cpuset.mems",
    "io.max",
    "blkio.throttle.read_bps_device",
    "blkio.throttle.write_bps_device",
];

/// Reads a portable key from the hierarchy that carries its controller here.
fn portable(layout: &Layout, g: &Group, key: &str, controller: &str) -> Result<String> {
    let version = layout
        .route_version(controller)
        .ok_or_else(|| Error::Controller {
            what: key.to_string(),
            controller: controller.to_string(),
            why: "is not available on this host (not mounted or not enabled)".to_string(),
        })?;
    let mut contents = Vec::new();
    for f in limits::key_files(key, version)? {
        contents.push(cgroupfs::read(&g.file(f)?)?);
    }
    limits::key_value(key, version, &contents)
}

fn get(layout: &Layout, g: &Group, keys: &[String], values: bool, json: bool) -> Result<()> {
    let mut out: Vec<(String, String)> = Vec::new();
    if keys.is_empty() {
        for f in LIMIT_FILES {
            if let Ok(p) = g.file(f) {
                if let Ok(v) = std::fs::read_to_string(&p) {
                    out.push((f.to_string(), v.trim_end().to_string()));
                }
            }
        }
    } else {
        for k in keys {
            if let Some(controller) = limits::key_controller(k) {
                out.push((k.clone(), portable(layout, g, k, controller)?));
                continue;
            }
            if !k.contains('.') {
                // Not a file name either: key_files phrases the error with the keys it knows.
                limits::key_files(k, Version::V2)?;
            }
            limits::check_file_name(k)?;
            let p = g.file(k)?;
            let v = cgroupfs::read(&p)?;
            out.push((k.clone(), v.trim_end().to_string()));
        }
    }
    if json {
        let m: serde_json::Map<String, Value> =
            out.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
        print_json(&Value::Object(m));
    } else {
        for (k, v) in out {
            if values {
                conventions::outln!("{v}");
            } else if v.contains('\n') {
                conventions::outln!("{k}:");
                for l in v.lines() {
                    conventions::outln!("  {l}");
                }
            } else {
                conventions::outln!("{k}: {v}");
            }
        }
    }
    Ok(())
}

fn info(layout: &Layout, as_json: bool) {
    let own = layout::parse_proc_cgroup(
        &std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
    );
    let routes = layout.controllers();
    if as_json {
        let hs: Vec<Value> = layout
            .hierarchies
            .iter()
            .map(|h| {
                json!({
                    "version": h.version.number(),
                    "mount": h.mount.display().to_string(),
                    "root": h.root,
                    "controllers": h.controllers,
                    "name": h.name,
                    "managed": h.managed(),
                })
            })
            .collect();
        let r: serde_json::Map<String, Value> = routes
            .iter()
            .map(|(c, i)| {
                let h = &layout.hierarchies[*i];
                (
                    c.clone(),
                    json!({"version": h.version.number(), "mount": h.mount.display().to_string()}),
                )
            })
            .collect();
        let o: Vec<Value> = own
            .iter()
            .map(|c| json!({"id": c.id, "controllers": c.controllers, "path": c.path}))
            .collect();
        print_json(&json!({
            "layout": layout.kind.name(),
            "hierarchies": hs,
            "controllers": r,
            "own": o,
        }));
        return;
    }
    conventions::outln!("layout: {}", layout.kind.name());
    conventions::outln!("hierarchies:");
    for h in &layout.hierarchies {
        conventions::outln!("  {} {}", h.label(), h.mount.display());
    }
    conventions::outln!("controllers:");
    for (c, i) in &routes {
        let h = &layout.hierarchies[*i];
        conventions::outln!("  {c} v{} {}", h.version.number(), h.mount.display());
    }
    conventions::outln!("own:");
    for c in &own {
        conventions::outln!("  {}:{}:{}", c.id, c.controllers.join(","), c.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command_of(argv: &[&str]) -> Vec<OsString> {
        match Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(Command::Run { command, .. }) | Ok(Command::Exec { command, .. }) => command,
            other => panic!("{argv:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn the_command_follows_the_options_with_or_without_dashes() {
        let want: Vec<OsString> = ["sh", "-c", "exit 3"].iter().map(OsString::from).collect();
        assert_eq!(
            command_of(&["cgctl", "run", "--memory", "64M", "sh", "-c", "exit 3"]),
            want
        );
        assert_eq!(
            command_of(&["cgctl", "run", "--memory", "64M", "--", "sh", "-c", "exit 3"]),
            want
        );
        assert_eq!(
            command_of(&["cgctl", "exec", "demo", "sh", "-c", "exit 3"]),
            want
        );
        // Options after the command's first word are the command's.
        assert_eq!(
            command_of(&["cgctl", "run", "true", "--json"]),
            vec![OsString::from("true"), OsString::from("--json")]
        );
        assert!(Cli::try_parse_from(["cgctl", "run", "--memory", "64M"]).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet = b" -:/\\0123456789abcgroup2,=\n";
        for _ in 0..2000 {
            let mut s = Vec::new();
            for _ in 0..(x % 120) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let text = String::from_utf8_lossy(&s);
            let _ = layout::Layout::detect(&text, std::path::Path::new("/nonexistent-prefix"));
            let _ = layout::parse_proc_cgroup(&text);
            let _ = group::check_name(&text);
            let _ = limits::parse_cpus(&text);
            let _ = limits::parse_pids(&text);
            let _ = limits::parse_list("cpuset", &text);
        }
    }
}
