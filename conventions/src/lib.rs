//! The conventions every microtools binary follows, written once so that no tool copies them.
//!
//! - [`ns`]: the namespace table (name, `CLONE_*` flag, `/proc/PID/ns` file, option letters).
//! - [`exit`]: wait status to exit code, re-raising a child's fatal signal, exec failure codes.
//! - [`getopt`]: getopt_long as glibc reads it (util-linux's command lines), for the drop-ins.
//! - [`cli`]: clap errors mapped to exit 1 with one line, the `TOOL: what: why (hint)` format.
//! - [`size`]: sizes such as `64M`, `1.5G`, `max`.
//! - [`signal`]: signal names and numbers as `kill(1)` takes them.
//! - [`exec`]: the default program and execvp with 126/127.
//! - [`ids`]: uid/gid by number or name, dropping to them, `--keep-caps`.
//! - [`mountinfo`]: `/proc/self/mountinfo` parsed once.
//! - [`child`]: waiting for a child while forwarding (or ignoring) signals.
//! - [`prelibc`]: an entry point that runs before glibc starts, and raw syscalls for it.
//! - [`spawn`]: starting a child that borrows our memory until it execs (vfork semantics).
//! - [`output`]: stdout/stderr writes that never panic, `TOOL: write error: ...` and exit 1.

pub mod child;
pub mod cli;
pub mod exec;
pub mod exit;
pub mod getopt;
pub mod ids;
pub mod mountinfo;
pub mod ns;
pub mod output;
pub mod prelibc;
pub mod signal;
pub mod size;
pub mod spawn;

/// The commit a release build was made from (see build.rs), or `unknown`.
pub const COMMIT: &str = env!("MICROTOOLS_COMMIT");

/// What every tool's `--version` says after its name: the version and `(commit C)`, or why no
/// commit is recorded (debug builds record none).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("MICROTOOLS_BUILD"),
    ")"
);
