//! ocirun: an OCI runtime with runc's command line, made of the microtools libraries (pivot for
//! the root filesystem, cgctl for cgroups, unshare-rs's id maps, nsenter-rs's namespace calls).
//!
//! - [`config`]: config.json to a checked plan (pure).
//! - [`lifecycle`]: create, start, kill, delete, run, state, list, pause.
//! - [`init`]: the container's side of create.
//! - [`exec`]: another process in a running container.
//! - [`hooks`]: the spec's hooks.
//! - [`events`]: `events`, the cgroup's counters in runc's JSON.
//! - [`state`]: the state directory and the status.
//! - [`log`]: stderr and `--log` in text or JSON lines.
//! - [`seccomp`]: linux.seccomp compiled by privs (libseccomp).
//! - [`console`]: process.terminal's pty and `--console-socket`.
//! - [`defaults`]: `spec` and `features`.

pub mod config;
pub mod console;
pub mod defaults;
pub mod error;
pub mod events;
pub mod exec;
pub mod hooks;
pub mod init;
pub mod lifecycle;
pub mod log;
pub mod seccomp;
pub mod state;
pub mod sys;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use error::{Error, Result};
use lifecycle::CreateOpts;

const EXAMPLES: &str = "\
Examples:
  mkdir -p b/rootfs && tar -C b/rootfs -xf busybox.tar && cd b && ocirun spec
  ocirun run -b b c1                          create, start, wait; exit with its status
  ocirun create -b b --pid-file c1.pid c1 && ocirun start c1
  ocirun state c1                             the runtime-spec state JSON
  ocirun kill c1 TERM && ocirun delete c1
  ocirun --root /run/mine --log log.json --log-format json list --format json

Exit status: 0, or the container's with `run` (a signal re-raised); 1 when ocirun fails.";

/// Command line of ocirun.
#[derive(Parser, Debug)]
#[command(
    name = "ocirun",
    about = "An OCI runtime (runc's command line) made of the microtools libraries",
    after_help = EXAMPLES,
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory of the containers' state (and of compiled seccomp profiles, in .seccomp/).
    #[arg(long, global = true, value_name = "DIR", default_value = "/run/ocirun")]
    pub root: PathBuf,
    /// Also write errors (and --debug lines) to FILE.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of --log.
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: log::Format,
    /// Print debug lines.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported: an error).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Print the version, commit and spec version.
    #[arg(short = 'v', long)]
    pub version: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options shared by create and run.
#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    /// The bundle directory (holds config.json).
    #[arg(short = 'b', long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's host pid to FILE.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// An AF_UNIX socket the pty master is sent to (with process.terminal).
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// MS_MOVE and chroot instead of pivot_root (for a ramfs root).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc's sake: ocirun makes no session keyring anyway.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Keep descriptors 3 to 3+N-1 open for the container (all others are closed on exec).
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container id.
    pub id: String,
}

/// `list --format` and `ps --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Columns for people.
    Table,
    /// JSON.
    Json,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container: set it up completely, its process waiting until `start`.
    #[command(after_help = "Examples:\n  ocirun create -b ./bundle --pid-file c1.pid c1")]
    Create(CreateArgs),
    /// Let a created container's process run.
    #[command(after_help = "Examples:\n  ocirun start c1")]
    Start {
        /// The container id.
        id: String,
    },
    /// Create, start and wait for a container; exit with its status and delete it.
    #[command(
        after_help = "Examples:\n  ocirun run -b ./bundle c1\n  ocirun run -d -b ./bundle c1"
    )]
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return after start instead of waiting.
        #[arg(short = 'd', long)]
        detach: bool,
    },
    /// Print the state of a container as JSON.
    #[command(after_help = "Examples:\n  ocirun state c1")]
    State {
        /// The container id.
        id: String,
    },
    /// Send a signal (default TERM) to a container's init, or with --all to all its processes.
    #[command(
        after_help = "Examples:\n  ocirun kill c1\n  ocirun kill c1 9\n  ocirun kill --all c1 KILL"
    )]
    Kill {
        /// Signal every process of the container's cgroup.
        #[arg(short = 'a', long)]
        all: bool,
        /// The container id.
        id: String,
        /// Name (TERM, SIGKILL) or number.
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete a stopped (or created) container; --force kills a running one first.
    #[command(after_help = "Examples:\n  ocirun delete c1\n  ocirun delete --force c1")]
    Delete {
        /// Kill the container first if it runs.
        #[arg(short = 'f', long)]
        force: bool,
        /// The container id.
        id: String,
    },
    /// List the containers.
    #[command(after_help = "Examples:\n  ocirun list\n  ocirun list --format json")]
    List {
        /// Output format.
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Ids only.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Run another process in a running container.
    #[command(
        after_help = "Examples:\n  ocirun exec c1 ps\n  ocirun exec --env FOO=1 --cwd /tmp --user 1000:1000 c1 sh -c 'id; pwd'\n  ocirun exec --process p.json --detach --pid-file p.pid c1"
    )]
    Exec {
        /// A JSON file with an OCI process object (instead of COMMAND).
        #[arg(short = 'p', long, value_name = "FILE")]
        process: Option<PathBuf>,
        /// Return once the process runs.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Write the process's host pid to FILE.
        #[arg(long = "pid-file", value_name = "FILE")]
        pid_file: Option<PathBuf>,
        /// Working directory inside the container.
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// Set an environment variable (repeatable).
        #[arg(short = 'e', long, value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Run as user id UID, or UID:GID.
        #[arg(short = 'u', long, value_name = "UID[:GID]")]
        user: Option<String>,
        /// A pty for the process (its master goes to --console-socket).
        #[arg(short = 't', long)]
        tty: bool,
        /// An AF_UNIX socket the pty master is sent to.
        #[arg(long = "console-socket", value_name = "PATH")]
        console_socket: Option<PathBuf>,
        /// The container id.
        id: String,
        /// The command and its arguments.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
    },
    /// Change a container's cgroup limits (a linux.resources JSON object).
    #[command(
        after_help = "Examples:\n  ocirun update --resources r.json c1\n  echo '{\"pids\": {\"limit\": 50}}' | ocirun update --resources - c1"
    )]
    Update {
        /// The linux.resources JSON, or - for stdin.
        #[arg(short = 'r', long, value_name = "FILE")]
        resources: PathBuf,
        /// The container id.
        id: String,
    },
    /// Print the container's cgroup counters as JSON lines (runc's stats events).
    #[command(
        after_help = "Examples:\n  ocirun events --stats c1\n  ocirun events --interval 1s c1    every second until c1 stops"
    )]
    Events {
        /// Print the counters once and exit.
        #[arg(long)]
        stats: bool,
        /// Time between two readings (5s, 500ms, 1m).
        #[arg(long, value_name = "DURATION", default_value = "5s")]
        interval: String,
        /// The container id.
        id: String,
    },
    /// Freeze every process of a container.
    #[command(after_help = "Examples:\n  ocirun pause c1")]
    Pause {
        /// The container id.
        id: String,
    },
    /// Thaw a paused container.
    #[command(after_help = "Examples:\n  ocirun resume c1")]
    Resume {
        /// The container id.
        id: String,
    },
    /// List the processes of a container (host pids).
    #[command(after_help = "Examples:\n  ocirun ps c1\n  ocirun ps --format json c1")]
    Ps {
        /// Output format.
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: ListFormat,
        /// The container id.
        id: String,
    },
    /// Write a default config.json into the bundle directory.
    #[command(after_help = "Examples:\n  ocirun spec\n  ocirun spec -b ./bundle")]
    Spec {
        /// Where to write config.json.
        #[arg(short = 'b', long, value_name = "DIR", default_value = ".")]
        bundle: PathBuf,
    },
    /// Print what this runtime supports (runtime-spec 1.1 features JSON).
    #[command(after_help = "Examples:\n  ocirun features")]
    Features,
}

/// The `--version` text, in runc's three-line form.
pub fn version_text() -> String {
    format!(
        "ocirun version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        conventions::COMMIT,
        defaults::SPEC_VERSION
    )
}

/// What `main` does at the end.
#[derive(Debug)]
pub enum Exit {
    /// Exit with this code.
    Code(i32),
    /// End the way the container ended (`run`).
    Child(conventions::exit::Outcome),
}

/// Parses `args` (argv\[0\] included), runs, and says how to exit; errors are printed here,
/// once, on stderr and in the --log file.
pub fn main_with(tool: &str, args: Vec<OsString>) -> Exit {
    use conventions::cli::Parsed;
    let cli: Cli = match conventions::cli::try_parse_from(tool, args) {
        Parsed::Run(c) => c,
        Parsed::Info(text) => {
            print!("{text}");
            flush();
            return Exit::Code(0);
        }
        Parsed::Usage(line) => {
            eprintln!("{line}");
            return Exit::Code(conventions::exit::FAILURE);
        }
    };
    let mut log = match log::Log::open(cli.log.as_deref(), cli.log_format, cli.debug) {
        Ok(l) => l,
        Err(e) => {
            let shown = cli
                .log
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display();
            log::Log::stderr().error(
                tool,
                &format!(
                    "opening --log {shown} failed: {}",
                    conventions::output::errtext(&e)
                ),
            );
            return Exit::Code(conventions::exit::FAILURE);
        }
    };
    let result = dispatch(&cli, &mut log, tool);
    flush();
    match result {
        Ok(exit) => exit,
        Err(e) => {
            log.error(tool, &e.to_string());
            Exit::Code(conventions::exit::FAILURE)
        }
    }
}

fn flush() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

fn create_opts(a: &CreateArgs) -> Result<CreateOpts> {
    Ok(CreateOpts {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
        console_socket: a.console_socket.clone(),
    })
}

fn dispatch(cli: &Cli, log: &mut log::Log, tool: &str) -> Result<Exit> {
    if cli.version {
        print!("{}", version_text());
        return Ok(Exit::Code(0));
    }
    if cli.systemd_cgroup {
        return Err(Error::Usage(
            "--systemd-cgroup: systemd cgroup management is not supported (ocirun writes \
             cgroupfs directly; drop the flag)"
                .into(),
        ));
    }
    let Some(command) = &cli.command else {
        return Err(Error::Usage(format!(
            "a command is required (try '{tool} --help')"
        )));
    };
    let root = &cli.root;
    log.debug(tool, &format!("{command:?} with --root {}", root.display()));
    match command {
        Command::Create(a) => {
            lifecycle::create(root, &create_opts(a)?, false)?;
        }
        Command::Start { id } => lifecycle::start(root, id)?,
        Command::Run { create, detach } => {
            if let Some(outcome) = lifecycle::run(root, &create_opts(create)?, *detach)? {
                return Ok(Exit::Child(outcome));
            }
        }
        Command::State { id } => {
            let v = lifecycle::state_json(root, id)?;
            println!("{}", pretty(&v));
        }
        Command::Kill { all, id, signal } => {
            let sig = conventions::signal::parse(signal).map_err(Error::Usage)?;
            lifecycle::kill(root, id, sig, *all)?;
        }
        Command::Delete { force, id } => lifecycle::delete(root, id, *force)?,
        Command::List { format, quiet } => {
            let all = lifecycle::list(root)?;
            print!("{}", list_text(&all, *format, *quiet));
        }
        Command::Exec {
            process,
            detach,
            pid_file,
            cwd,
            env,
            user,
            tty,
            console_socket,
            id,
            command,
        } => {
            if process.is_some() && !command.is_empty() {
                return Err(Error::Usage(
                    "give either --process FILE or a COMMAND, not both".into(),
                ));
            }
            let o = exec::ExecOpts {
                process_file: process.clone(),
                args: command.clone(),
                detach: *detach,
                pid_file: pid_file.clone(),
                cwd: cwd.clone(),
                env: env.clone(),
                user: user.clone(),
                tty: *tty,
                console_socket: console_socket.clone(),
            };
            if let Some(outcome) = exec::exec(root, id, &o)? {
                return Ok(Exit::Child(outcome));
            }
        }
        Command::Update { resources, id } => lifecycle::update(root, id, resources)?,
        Command::Events {
            stats,
            interval,
            id,
        } => events::events(root, id, *stats, events::parse_interval(interval)?)?,
        Command::Pause { id } => lifecycle::set_paused(root, id, true)?,
        Command::Resume { id } => lifecycle::set_paused(root, id, false)?,
        Command::Ps { format, id } => {
            let pids = lifecycle::pids(root, id)?;
            match format {
                ListFormat::Json => println!("{}", serde_json::Value::from(pids)),
                ListFormat::Table => {
                    println!("PID");
                    for p in pids {
                        println!("{p}");
                    }
                }
            }
        }
        Command::Spec { bundle } => defaults::write_spec(bundle)?,
        Command::Features => println!("{}", pretty(&defaults::features())),
    }
    Ok(Exit::Code(0))
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// `list`'s output.
pub fn list_text(all: &[serde_json::Value], format: ListFormat, quiet: bool) -> String {
    let s = |v: &serde_json::Value, k: &str| {
        v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
    };
    if quiet {
        return all.iter().map(|v| format!("{}\n", s(v, "id"))).collect();
    }
    match format {
        ListFormat::Json => format!("{}\n", serde_json::Value::from(all.to_vec())),
        ListFormat::Table => {
            let mut out = String::from("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n");
            for v in all {
                let pid = v.get("pid").and_then(|p| p.as_i64()).unwrap_or(0);
                let owner = s(v, "owner");
                out.push_str(&format!(
                    "{}\t{pid}\t{}\t{}\t{}\t{}\n",
                    s(v, "id"),
                    s(v, "status"),
                    s(v, "bundle"),
                    s(v, "created"),
                    if owner.is_empty() {
                        "root".to_string()
                    } else {
                        owner
                    }
                ));
            }
            out
        }
    }
}
