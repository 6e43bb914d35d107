//! unshare-rs: create namespaces and run a program in them, a drop-in for util-linux `unshare`
//! with `--lo-up`, `--report` and errors that name their cause.
//!
//! - [`early`]: the fast path, an everyday command line run before glibc starts.
//! - [`plan`]: the pure step: the command line (read by [`conventions::getopt`]) to a checked [`plan::Plan`] and its ordered steps.
//! - [`idmap`]: id map parsing and building.
//! - [`persist`]: namespace persistence by bind mounts.
//! - [`mod@run`]: the syscalls, in util-linux's order.
//! - [`error`]: the error type and its hints.

pub mod early;
pub mod error;
pub mod idmap;
pub mod persist;
pub mod plan;
pub mod run;

use conventions::exit::Outcome;
use error::Error;
use std::ffi::OsString;

/// What `main` should do once the command line is handled.
#[derive(Debug)]
pub enum Exit {
    /// Exit with this code (help, version, success without a child).
    Code(i32),
    /// End the way the child ended.
    Child(Outcome),
}

/// The `--help` text for `tool`.
pub fn help(tool: &str) -> String {
    // The examples name the project's tools, or util-linux's when we run as the drop-in.
    let nsenter = if tool == "unshare" {
        "nsenter"
    } else {
        "nsenter-rs"
    };
    format!(
        "Usage: {tool} [options] [<program> [<argument>...]]

Run a program with some namespaces unshared from the parent (util-linux unshare compatible).

Options:
 -m, --mount[=<file>]      unshare mounts namespace
 -u, --uts[=<file>]        unshare UTS namespace (hostname etc)
 -i, --ipc[=<file>]        unshare System V IPC namespace
 -n, --net[=<file>]        unshare network namespace
 -p, --pid[=<file>]        unshare pid namespace
 -U, --user[=<file>]       unshare user namespace
 -C, --cgroup[=<file>]     unshare cgroup namespace
 -T, --time[=<file>]       unshare time namespace
                           (=<file> persists the namespace by a bind mount on <file>)

 -f, --fork                fork before launching <program>
 --map-user=<uid>|<name>   map current user to uid (implies --user)
 --map-group=<gid>|<name>  map current group to gid (implies --user)
 -r, --map-root-user       map current user to root (implies --user)
 -c, --map-current-user    map current user to itself (implies --user)
 --map-auto                map users and groups automatically (implies --user)
 --map-subids              map the user's subordinate ids to themselves (implies --user)
 --map-users=<inneruid>:<outeruid>:<count>|auto|subids|all
                           map count users from outeruid to inneruid (implies --user)
 --map-groups=<innergid>:<outergid>:<count>|auto|subids|all
                           map count groups from outergid to innergid (implies --user)

 --kill-child[=<signame>]  when dying, kill the forked child (implies --fork)
                             defaults to SIGKILL
 --forward-signals         forward SIGINT and SIGTERM to the child (else they are ignored)
 --mount-proc[=<dir>]      mount proc filesystem first (implies --mount)
 --mount-binfmt[=<dir>]    mount a binfmt_misc of the new user namespace on <dir> (default
                           /proc/sys/fs/binfmt_misc, then with a fresh /proc; implies --user
                           and --mount)
 -l, --load-interp <definition>
                           register a binfmt_misc interpreter, :name:type:offset:magic:mask:
                           interpreter:flags (implies --mount-binfmt; with F and --root it is
                           registered before the chroot)
 --propagation slave|shared|private|unchanged
                           modify mount propagation in mount namespace (default private)
 --setgroups allow|deny    control the setgroups syscall in user namespaces
 --keep-caps               retain capabilities granted in user namespaces
 --owner=<uid>:<gid>       create the user namespace as (and owned by) this user; the maps
                           are written by a privileged helper (implies --user; needs root)

 -R, --root=<dir>          run the command with root directory set to <dir>
 -w, --wd=<dir>            change working directory to <dir>
 -S, --setuid <uid>        set uid in entered namespace
 -G, --setgid <gid>        set gid in entered namespace
 --monotonic <offset>      set clock monotonic offset (seconds) in time namespaces
 --boottime <offset>       set clock boottime offset (seconds) in time namespaces
 --clear-env               run the program with an empty environment
 --whitelist-env <list>    clear the environment except the comma-separated variables

Long options may be abbreviated to any unambiguous prefix (--ut, --kill).

Beyond util-linux:
 --lo-up                   bring the loopback interface up in the new network namespace
 --report=<fd>|<file>      before exec, write one JSON line: the program's pid as the caller
                           sees it and the inode of each namespace it runs in

Beyond util-linux, as bubblewrap:
 --unshare-all             -m -i -p -n -u -f, and user and cgroup where the kernel has them
                           (a new user namespace then maps the caller's ids, as -c)
 --unshare-user-try        a new user namespace where the kernel has one, else none
 --unshare-cgroup-try      a new cgroup namespace where the kernel has one, else none
 --share-net               keep the network namespace (after --unshare-all or -n)
 --disable-userns          the program cannot create user namespaces: a nested one is entered
                           whose parent allows one child (makes a user namespace as
                           --unshare-user-try, but fails where the kernel has none)

 -h, --help                display this help
 -V, --version             display version

Exit status: the program's; 128+N (the signal re-raised) if it was killed by signal N;
1 if {tool} failed; 126 if the program could not be executed, 127 if it was not found.

Examples:
  {tool} -r id                          # root in a new user namespace
  {tool} -fp --mount-proc ps -ef         # a pid namespace with its own /proc
  {tool} -n --lo-up ping -c1 127.0.0.1   # a network namespace with lo up
  {tool} --uts=/run/ns/uts hostname demo && {nsenter} --uts=/run/ns/uts hostname
  {tool} -fpm --report=3 sleep 60 3>ns.json &   # ns.json: pid and namespace inodes
  {tool} --unshare-all --disable-userns sh        # bwrap's namespaces, no new user ones
"
    )
}

/// Parses `args` (after argv\[0\]) and runs, taking over from the fast path where it stopped
/// (`from`, [`early::handover`]; `Start` when it did nothing). Errors are returned for `main` to
/// print once.
pub fn run(tool: &str, args: &[OsString], from: early::Handover) -> Result<Exit, Error> {
    let caller = match from {
        early::Handover::Resume {
            caller: Some((euid, egid)),
            ..
        } => plan::Caller { euid, egid },
        _ => plan::Caller {
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
        },
    };
    let cmd = plan::parse(args, caller, &conventions::ids::uid, &conventions::ids::gid)
        .map_err(|m| Error::Usage(format!("{m} (try '{tool} --help')")))?;
    match cmd {
        plan::Command::Help => {
            conventions::out!("{}", help(tool));
            Ok(Exit::Code(0))
        }
        plan::Command::Version => {
            conventions::outln!("{tool} {}", conventions::VERSION);
            Ok(Exit::Code(0))
        }
        plan::Command::Run(mut p) => {
            p.resolve_try(caller, &run::kernel_has)
                .map_err(Error::Failed)?;
            match from {
                early::Handover::Start => run::execute(tool, &p, caller, 0, false),
                early::Handover::Resume { step, child, .. } => {
                    run::execute(tool, &p, caller, step, child)
                }
                early::Handover::Wait(pid) => run::wait_for(&p, pid),
            }
            .map(Exit::Child)
        }
    }
}
