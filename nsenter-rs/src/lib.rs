//! nsenter-rs: run a program in the namespaces of a process or of namespace files, a drop-in
//! for util-linux `nsenter` with the newest semantics (pidfd, PID:INODE, robust `-a`).
//!
//! The flow is [`args::parse`] (getopt_long as util-linux reads it), [`plan::plan`] (pure checks),
//! then [`enter::run`] or [`ls::run`].

pub mod args;
pub mod enter;
pub mod error;
pub mod ls;
pub mod plan;
pub mod sys;

pub use error::Error;

/// The `--help` text.
pub fn help(tool: &str) -> String {
    format!(
        "Usage:
 {tool} [options] [<program> [<argument>...]]

Run a program with namespaces of other processes.

Options:
 -a, --all              enter all namespaces (not your own user namespace, only kinds the kernel has)
 -t, --target <pid>[:<inode>]
                        target process to get namespaces from; with :<inode>, refuse unless the
                        process's pidfs inode is <inode> (the pid was not reused)
 -m, --mount[=<file>]   enter mount namespace
 -u, --uts[=<file>]     enter UTS namespace (hostname etc)
 -i, --ipc[=<file>]     enter System V IPC namespace
 -n, --net[=<file>]     enter network namespace
 -N, --net-socket <fd>  enter the network namespace of the target's socket <fd>
 -p, --pid[=<file>]     enter pid namespace
 -C, --cgroup[=<file>]  enter cgroup namespace
 -U, --user[=<file>]    enter user namespace
     --user-parent      enter the parent of the target's user namespace (implies -U)
 -T, --time[=<file>]    enter time namespace
 -S, --setuid <uid>|follow  set uid in entered namespace
 -G, --setgid <gid>|follow  set gid in entered namespace
     --preserve-credentials do not touch uids or gids
     --keep-caps        retain capabilities granted in user namespaces
 -r, --root[=<dir>]     set the root directory
 -w, --wd[=<dir>]       set the working directory
 -W, --wdns[=<dir>]     set the working directory in namespace
 -e, --env              inherit environment variables from target process
 -F, --no-fork          do not fork before exec'ing <program>
 -c, --join-cgroup      join the cgroup of the target process (cgroup2 and every v1
                        hierarchy)
 -Z, --follow-context   (SELinux is not supported: an error)

Long options may be abbreviated to any unambiguous prefix (--targ, --preserve).

Beyond util-linux:
     --ls               list the namespaces of the target (or of {tool}) and whether they
                        differ from PID 1's, with its pidfs inode (for -t PID:INODE);
                        --json prints one JSON object per line
     --json             with --ls
     --mount-proc       with -p and -m: mount a fresh /proc for the program (in a private copy
                        of the entered mount namespace, so the target's mounts are untouched)

 -h, --help             display this help
 -V, --version          display version

Exit status: the program's; 1 when {tool} fails (usage included), 126 program not executable,
127 program not found; a program killed by signal N after a pid-namespace fork makes {tool}
die of N (the shell shows 128+N).

Examples:
  {tool} -t 1234 -n ip addr            run `ip addr` in the network namespace of process 1234
  {tool} -t 1234 -a                    a shell in every namespace of 1234
  {tool} --net=/run/netns/blue ip link a persisted network namespace
  {tool} -t 1234:567 -p -m --mount-proc ps   pid 1234 only if its pidfs inode is 567
  {tool} --ls --json -t 1234           the namespaces of 1234, as JSON lines
"
    )
}

/// Parses `args` (without argv\[0\]) and runs; returns the exit code on failure or for
/// `--help`/`--version`/`--ls`. On success of a run, the process becomes the program.
pub fn main_with<I: IntoIterator<Item = std::ffi::OsString>>(tool: &str, args: I) -> i32 {
    use conventions::cli::{help_answer, usage_answer, version_answer};
    let usage = |msg: String| usage_answer(tool, &msg);
    let opts = match args::parse(args) {
        Ok(args::Parsed::Help) => return help_answer(&help(tool)),
        Ok(args::Parsed::Version) => return version_answer(tool, conventions::VERSION),
        Ok(args::Parsed::Run(o)) => o,
        Err(msg) => return usage(msg),
    };
    let result = match plan::plan(opts) {
        Err(msg) => return usage(msg),
        Ok(plan::Mode::Ls { target, json }) => ls::run(target, json).map(|()| 0),
        Ok(plan::Mode::Run(p)) => enter::run(tool, p).map(|never| match never {}),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            conventions::errln!("{tool}: {e}");
            e.code()
        }
    };
    // Nothing else flushes stdout when `main` is a plain C function; a failure is reported by
    // `main`'s conventions::output::exit.
    conventions::output::flush();
    code
}
