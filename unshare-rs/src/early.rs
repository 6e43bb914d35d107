//! The fast path: an everyday command line (namespace flags, `-f`, `-r`/`-c`, `--mount-proc` and
//! a program) run before glibc starts, with raw syscalls, because glibc's start-up alone is a
//! third of what unshare-rs takes (see `conventions::prelibc`). Only the shipped static build
//! starts there (`entry.rs`, compiled with `cfg(microtools_early)`); every build keeps this
//! file's pure reading of the line ([`parse`], [`step_at`]) for the unit tests and the
//! `unshare_early_args` fuzz target, which hold it to the plan's.
//!
//! It runs the same [`Step`]s as the ordinary path, in the same order. Any command line outside
//! that set, and any step that fails, goes to the ordinary path through [`handover`]: it parses
//! the line again and resumes at the step where the fast path stopped, so the failing step runs
//! once more there (a failed unshare, mount, write or execve changed nothing) and fails with the
//! ordinary message and exit code. Nothing here prints.
//!
//! `MICROTOOLS_EARLY=0` in the environment sends every command line to the ordinary path, and so
//! does a start in secure-execution mode (set-uid, file capabilities), where glibc cleans the
//! environment first.

use crate::plan::Step;
use conventions::prelibc;

/// Which single-id maps `-r` or `-c` asked for (the last one given wins, as in the plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Map {
    /// `-r`: the caller is root inside.
    Root,
    /// `-c`: the caller keeps its ids inside.
    Current,
}

/// A command line the fast path runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quick {
    /// `CLONE_NEW*` flags.
    pub flags: libc::c_int,
    /// `-f`.
    pub fork: bool,
    /// `-r` or `-c`.
    pub map: Option<Map>,
    /// `--mount-proc` (on /proc).
    pub mount_proc: bool,
    /// Index (in the arguments after argv\[0\]) of the program.
    pub program: usize,
}

/// The long options the fast path knows, with what they set.
const LONG: [(&[u8], Opt); 11] = [
    (b"mount", Opt::Ns(libc::CLONE_NEWNS)),
    (b"uts", Opt::Ns(libc::CLONE_NEWUTS)),
    (b"ipc", Opt::Ns(libc::CLONE_NEWIPC)),
    (b"net", Opt::Ns(libc::CLONE_NEWNET)),
    (b"pid", Opt::Ns(libc::CLONE_NEWPID)),
    (b"user", Opt::Ns(libc::CLONE_NEWUSER)),
    (b"cgroup", Opt::Ns(libc::CLONE_NEWCGROUP)),
    (b"fork", Opt::Fork),
    (b"map-root-user", Opt::Map(Map::Root)),
    (b"map-current-user", Opt::Map(Map::Current)),
    (b"mount-proc", Opt::MountProc),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Ns(libc::c_int),
    Fork,
    Map(Map),
    MountProc,
}

#[inline(always)]
fn short(c: u8) -> Option<Opt> {
    Some(match c {
        b'm' => Opt::Ns(libc::CLONE_NEWNS),
        b'u' => Opt::Ns(libc::CLONE_NEWUTS),
        b'i' => Opt::Ns(libc::CLONE_NEWIPC),
        b'n' => Opt::Ns(libc::CLONE_NEWNET),
        b'p' => Opt::Ns(libc::CLONE_NEWPID),
        b'U' => Opt::Ns(libc::CLONE_NEWUSER),
        b'C' => Opt::Ns(libc::CLONE_NEWCGROUP),
        b'f' => Opt::Fork,
        b'r' => Opt::Map(Map::Root),
        b'c' => Opt::Map(Map::Current),
        _ => return None,
    })
}

#[inline(always)]
fn apply(q: &mut Quick, o: Opt) {
    match o {
        Opt::Ns(flag) => q.flags |= flag,
        Opt::Fork => q.fork = true,
        Opt::Map(m) => {
            q.flags |= libc::CLONE_NEWUSER;
            q.map = Some(m);
        }
        Opt::MountProc => {
            q.flags |= libc::CLONE_NEWNS;
            q.mount_proc = true;
        }
    }
}

/// Reads the arguments after argv\[0\] (`arg(i)` is the i-th of them); None when the line is not
/// one the fast path runs: an option it does not know (or an abbreviation, a `=VALUE`), no
/// program (the default shell), or an empty program name.
#[inline(always)]
pub fn parse<'a>(arg: impl Fn(usize) -> Option<&'a [u8]>) -> Option<Quick> {
    let mut q = Quick {
        flags: 0,
        fork: false,
        map: None,
        mount_proc: false,
        program: 0,
    };
    let mut i = 0;
    loop {
        let a = arg(i)?;
        if prelibc::eq(a, b"--") {
            q.program = i + 1;
            break;
        }
        if let (true, Some(name)) = (prelibc::starts_with(a, b"--"), a.get(2..)) {
            let mut known = None;
            let mut k = 0;
            while k < LONG.len() {
                if let Some((long, opt)) = LONG.get(k) {
                    if prelibc::eq(name, long) {
                        known = Some(*opt);
                    }
                }
                k += 1;
            }
            apply(&mut q, known?);
        } else if let (true, Some(letters)) = (a.len() > 1 && a.first() == Some(&b'-'), a.get(1..))
        {
            let mut k = 0;
            while let Some(c) = letters.get(k) {
                apply(&mut q, short(*c)?);
                k += 1;
            }
        } else {
            q.program = i;
            break;
        }
        i += 1;
    }
    match arg(q.program) {
        Some(p) if !p.is_empty() => Some(q),
        _ => None,
    }
}

/// Propagation of / in a new mount namespace: the default, private.
const PRIVATE: libc::c_ulong = libc::MS_REC | libc::MS_PRIVATE;

/// The `k`-th step of `q`'s run, as [`crate::plan::Plan::steps`] orders them.
#[inline(always)]
pub fn step_at(q: &Quick, k: usize) -> Option<Step> {
    let mut n = 0;
    let mut pick = |wanted: bool| {
        let hit = wanted && n == k;
        if wanted {
            n += 1;
        }
        hit
    };
    if pick(q.flags != 0) {
        return Some(Step::Unshare(q.flags));
    }
    if pick(q.fork) {
        return Some(Step::Fork);
    }
    if pick(q.map.is_some()) {
        return Some(Step::MapUser);
    }
    if pick(q.map.is_some()) {
        return Some(Step::MapGroup);
    }
    if pick(q.flags & libc::CLONE_NEWNS != 0) {
        return Some(Step::Propagation(PRIVATE));
    }
    if pick(q.mount_proc) {
        return Some(Step::MountProc);
    }
    if pick(true) {
        return Some(Step::Exec);
    }
    None
}

/// Where the ordinary path takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// From the start: the fast path did nothing.
    Start,
    /// At step `step` of the plan, in the child the fast path forked if `child`; `caller` is the
    /// euid and egid read before unshare (a new user namespace changes what getuid says).
    Resume {
        /// Index into the plan's steps.
        step: usize,
        /// We are the forked child (the parent waits in the fast path).
        child: bool,
        /// The caller's ids, if the fast path read them.
        caller: Option<(u32, u32)>,
    },
    /// Waiting for this child failed in the fast path; the ordinary path waits and reports.
    Wait(libc::pid_t),
}

/// The entry point and what it runs: only in a build that starts there (see [`entry`]).
#[cfg(microtools_early)]
mod entry;
#[cfg(microtools_early)]
pub use entry::{entry, handover};

/// What the fast path left for the ordinary path: in a build without it, nothing.
#[cfg(not(microtools_early))]
pub fn handover() -> Handover {
    Handover::Start
}

/// Whether the fast path reads `args` (after argv\[0\]) as the ordinary path does: when it takes
/// the line, the plan must have the same namespaces, fork, maps, /proc and program, nothing
/// else, and the same steps in the same order (the handover resumes by step index). The unit
/// tests and the fuzz target `unshare_early_args` run it. Err says how they differ.
pub fn agrees_with_plan(args: &[std::ffi::OsString]) -> Result<(), String> {
    use crate::plan::{self, Caller, Command};
    use std::os::unix::ffi::OsStrExt;
    let caller = Caller {
        euid: 1000,
        egid: 100,
    };
    let Some(q) = parse(|i| args.get(i).map(|a| a.as_bytes())) else {
        return Ok(());
    };
    let lookup = |s: &str| s.parse::<u32>().map_err(|e| e.to_string());
    let p = match plan::parse(args, caller, &lookup, &lookup) {
        Ok(Command::Run(p)) => p,
        other => return Err(format!("fast path took {args:?}, the plan says {other:?}")),
    };
    let (user, group) = match q.map {
        None => (None, None),
        Some(Map::Root) => (Some(0), Some(0)),
        Some(Map::Current) => (Some(caller.euid), Some(caller.egid)),
    };
    let fast_steps: Vec<Step> = (0..).map_while(|k| step_at(&q, k)).collect();
    let same = p.flags == q.flags
        && p.fork == q.fork
        && p.map_user == user
        && p.map_group == group
        && p.mount_proc == q.mount_proc.then(|| std::path::PathBuf::from("/proc"))
        && args.get(q.program..) == Some(&p.program[..])
        && p.propagation == Some(PRIVATE)
        && p.steps() == fast_steps
        && p.persist.is_empty()
        && p.kill_child.is_none()
        && !p.forward_signals
        && p.setgroups.is_none()
        && p.user_ranges.is_empty()
        && p.group_ranges.is_empty()
        && p.root.is_none()
        && p.wd.is_none()
        && p.setuid.is_none()
        && p.setgid.is_none()
        && p.monotonic.is_none()
        && p.boottime.is_none()
        && !p.keep_caps
        && !p.clear_env
        && p.whitelist_env.is_empty()
        && p.binfmt.is_none()
        && p.load_interp.is_none()
        && p.owner.is_none()
        && !p.lo_up
        && p.report.is_none();
    if same {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: fast path {q:?} with steps {fast_steps:?}, plan {p:?} with steps {:?}",
            p.steps()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(args: &[&str]) -> Option<Quick> {
        parse(|i| args.get(i).map(|a| a.as_bytes()))
    }

    fn steps(q: &Quick) -> Vec<Step> {
        (0..).map_while(|k| step_at(q, k)).collect()
    }

    #[test]
    fn reads_everyday_lines() {
        let q = quick(&["-fp", "--mount-proc", "ps", "-ef"]).expect("fast");
        assert_eq!(
            q,
            Quick {
                flags: libc::CLONE_NEWPID | libc::CLONE_NEWNS,
                fork: true,
                map: None,
                mount_proc: true,
                program: 2,
            }
        );
        assert_eq!(
            steps(&q),
            vec![
                Step::Unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS),
                Step::Fork,
                Step::Propagation(PRIVATE),
                Step::MountProc,
                Step::Exec
            ]
        );
        let q = quick(&["-r", "-c", "--", "-x"]).expect("fast");
        assert_eq!(
            (q.map, q.program, q.flags),
            (Some(Map::Current), 3, libc::CLONE_NEWUSER)
        );
        assert_eq!(steps(&quick(&["true"]).expect("fast")), vec![Step::Exec]);
        assert_eq!(quick(&["-", "x"]).map(|q| q.program), Some(0));
    }

    #[test]
    fn leaves_the_rest_to_the_ordinary_path() {
        for line in [
            &[][..],
            &["-n"],
            &["--"],
            &["-n", "--"],
            &[""],
            &["-T", "true"],
            &["-nx", "true"],
            &["--mount=/run/x", "true"],
            &["--mount-pro", "true"],
            &["--mount-proc=/p", "true"],
            &["--kill-child", "true"],
            &["-h"],
            &["--lo-up", "-n", "true"],
        ] {
            assert_eq!(quick(line), None, "{line:?}");
        }
    }

    /// Every line of up to three option tokens, then a program or not: the fast path takes only
    /// lines the ordinary path reads the same way, and takes the everyday ones.
    #[test]
    fn agrees_with_the_plan_on_every_short_line() {
        let tokens = [
            "-m",
            "-u",
            "-i",
            "-n",
            "-p",
            "-U",
            "-C",
            "-T",
            "-f",
            "-r",
            "-c",
            "-x",
            "-fp",
            "-rc",
            "-mipunfC",
            "-nT",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--user",
            "--cgroup",
            "--time",
            "--fork",
            "--map-root-user",
            "--map-current-user",
            "--mount-proc",
            "--mount-proc=/proc",
            "--mount-proc=",
            "--mount-binfmt",
            "-l",
            "--whitelist-env=A",
            "--mount=",
            "--moun",
            "--mount-p",
            "--forw",
            "--kill-child",
            "--",
            "-",
            "",
        ];
        let tails: [&[&str]; 4] = [&[], &["true"], &["sh", "-c", "x"], &["-n"]];
        let mut taken = 0;
        let mut line: Vec<&str> = Vec::new();
        let mut check = |line: &[&str]| {
            for tail in tails {
                let args: Vec<std::ffi::OsString> =
                    line.iter().chain(tail).map(Into::into).collect();
                if let Err(e) = agrees_with_plan(&args) {
                    panic!("{e}");
                }
                taken +=
                    usize::from(parse(|i| args.get(i).map(|a| a.as_encoded_bytes())).is_some());
            }
        };
        check(&line);
        for a in tokens {
            line.push(a);
            check(&line);
            for b in tokens {
                line.push(b);
                check(&line);
                for c in tokens {
                    line.push(c);
                    check(&line);
                    line.pop();
                }
                line.pop();
            }
            line.pop();
        }
        // The check above only means something if the fast path takes many of them.
        assert!(taken > 20_000, "the fast path took only {taken} lines");
    }

    #[test]
    fn takes_the_benchmarked_lines() {
        for line in [
            &["true"][..],
            &["-r", "true"],
            &["-fp", "--mount-proc", "true"],
            &["-n", "true"],
            &["-mipunfC", "true"],
        ] {
            assert!(quick(line).is_some(), "{line:?}");
        }
    }
}
