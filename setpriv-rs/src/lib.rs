//! setpriv-rs: run a program with different privilege settings, a drop-in for util-linux
//! `setpriv` (2.42's options), plus `--seccomp FILE` (OCI runtime-spec seccomp JSON) and
//! `--default-container` (what a container engine gives a container by default).
//!
//! The flow is [`args::parse`] (getopt_long as util-linux reads it), [`plan::plan`] (pure checks
//! between options), then [`dump`] or [`run::run`].

pub mod args;
pub mod dump;
pub mod error;
pub mod plan;
pub mod run;
pub mod users;

pub use error::Error;

/// The `--help` text.
pub fn help(tool: &str) -> String {
    let mut rights = String::new();
    for (name, what) in args::LANDLOCK_FS {
        rights += &format!("  {name:>12} - {what}\n");
    }
    format!(
        "Usage:
 {tool} [options] <program> [<argument>...]

Run a program with different privilege settings.

Options:
 -d, --dump                  show current state (and do not exec)
 --nnp, --no-new-privs       disallow granting new privileges
 --ambient-caps <caps>       set ambient capabilities
 --inh-caps <caps>           set inheritable capabilities
 --bounding-set <caps>       set capability bounding set
 --ruid <uid|user>           set real uid
 --euid <uid|user>           set effective uid
 --rgid <gid|group>          set real gid
 --egid <gid|group>          set effective gid
 --reuid <uid|user>          set real and effective uid
 --regid <gid|group>         set real and effective gid
 --clear-groups              clear supplementary groups
 --keep-groups               keep supplementary groups
 --init-groups               initialize supplementary groups
 --list-caps                 list all known capabilities
 --groups <group>[,...]      set supplementary group(s) by GID or name
 --securebits <bits>         set securebits
 --pdeathsig keep|clear|<signame>
                             set or clear parent death signal
 --ptracer <pid>|any|none    allow ptracing from the given process
 --selinux-label <label>     set SELinux label (an error where SELinux is not running)
 --apparmor-profile <pr>     set AppArmor profile (an error where AppArmor is not running)
 --landlock-access <access>  add Landlock access
 --landlock-rule <rule>      add Landlock rule
 --seccomp-filter <file>     load seccomp filter from file (classic BPF, as util-linux)
 --reset-env                 clear all environment and initialize
                               HOME, SHELL, USER, LOGNAME and PATH

Beyond util-linux:
 --seccomp <file>            load a seccomp profile in the OCI runtime-spec format
                             (linux.seccomp of config.json), last before exec
 --default-container         what container engines give a container: the bounding set
                             cut to CHOWN DAC_OVERRIDE FOWNER FSETID KILL NET_BIND_SERVICE
                             SETFCAP SETGID SETPCAP SETUID SYS_CHROOT, inheritable and
                             ambient sets empty, no_new_privs, and the built-in seccomp
                             profile (--bounding-set, --inh-caps, --ambient-caps and
                             --seccomp given too replace their part)

 -h, --help                  display this help
 -V, --version               display version

Arguments:
 <caps> is a comma-separated list of +cap and -cap (cap a name of --list-caps, cap_N, or all)
 <access> is a landlock access; syntax is fs[:<right>, ...>]
 <rule> is a landlock rule; syntax is <type>:<right>:<argument>

 available landlock rule types are:
  path-beneath - filesystem based rule; <argument> is a path

 available landlock filesystems rights are:
{rights}
Long options may be abbreviated to any unambiguous prefix (--no-new, --default-c).

Exit status: the program's (setpriv-rs execs it); 1 when {tool} fails (usage included),
126 program not executable, 127 program not found.

Examples:
  {tool} -d                                      show this process's privileges
  {tool} --reuid=1000 --regid=1000 --init-groups --inh-caps=-all sh
  {tool} --bounding-set=-all,+net_bind_service --nnp ./server
  {tool} --default-container -- /bin/sh          the last step of a container
  {tool} --seccomp profile.json -- ./untrusted
"
    )
}

/// Parses `args` (without argv\[0\]) and runs; returns the exit code on failure or for
/// `--help`/`--version`/`--dump`/`--list-caps`. On success the process becomes the program.
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
        Ok(plan::Mode::Dump(level)) => {
            conventions::out!("{}", dump::dump(level));
            Ok(0)
        }
        Ok(plan::Mode::ListCaps) => {
            conventions::out!("{}", dump::list_caps());
            Ok(0)
        }
        Ok(plan::Mode::Run(p)) => run::run(*p).map(|never| match never {}),
    };
    let code = match result {
        Ok(code) => code,
        Err(Error::Usage(msg)) => return usage(msg),
        Err(e) => {
            conventions::errln!("{tool}: {e}");
            e.code()
        }
    };
    conventions::output::flush();
    code
}
