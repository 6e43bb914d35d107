//! The pure plan step: checks the options against each other and decides what to join and how,
//! with no syscall, so that every rule is unit-tested apart from the kernel.

use crate::args::{IdSpec, Options, Source, TargetSpec};
use conventions::ns::NsKind;
use std::ffi::OsString;

/// What the tool does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Enter namespaces and run a program.
    Run(Plan),
    /// `--ls`: list a process's namespaces.
    Ls {
        /// The process (None: ourselves).
        target: Option<TargetSpec>,
        /// One JSON object per line instead of a table.
        json: bool,
    },
}

/// A checked `nsenter` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `-t`.
    pub target: Option<TargetSpec>,
    /// Namespaces asked for one by one, in `conventions::ns::ALL` order.
    pub explicit: Vec<(NsKind, Source)>,
    /// `-a`.
    pub all: bool,
    /// `-N FD`: the network namespace of the target's socket FD.
    pub net_socket: Option<i32>,
    /// `--user-parent`.
    pub user_parent: bool,
    /// `-r`.
    pub root: Option<Source>,
    /// `-w`.
    pub wd: Option<Source>,
    /// `-W`.
    pub wdns: Option<OsString>,
    /// `-e`.
    pub env: bool,
    /// False with `-F`.
    pub may_fork: bool,
    /// `-S`.
    pub uid: Option<IdSpec>,
    /// `-G`.
    pub gid: Option<IdSpec>,
    /// `--preserve-credentials`.
    pub preserve_credentials: bool,
    /// `--keep-caps`.
    pub keep_caps: bool,
    /// `-c`.
    pub join_cgroup: bool,
    /// `--mount-proc`.
    pub mount_proc: bool,
    /// The program (empty: the default shell).
    pub program: Vec<OsString>,
}

fn kind(long: &str) -> NsKind {
    // Names in Options come from the same table, so the lookup cannot miss; fall back to the
    // first row rather than panic.
    conventions::ns::by_name(long).unwrap_or(conventions::ns::ALL[0])
}

fn needs_target(what: &str) -> String {
    format!("{what} needs a target: give -t PID")
}

/// Checks `o` and turns it into a [`Mode`]; an `Err` is the one-line usage error.
pub fn plan(o: Options) -> Result<Mode, String> {
    if o.follow_context {
        return Err(
            "-Z/--follow-context: SELinux is not supported by nsenter-rs (drop -Z)".to_string(),
        );
    }
    if o.json && !o.ls {
        return Err("--json only goes with --ls".to_string());
    }
    if o.ls {
        let others = o.all
            || !o.namespaces.is_empty()
            || o.uid.is_some()
            || o.gid.is_some()
            || o.preserve_credentials
            || o.keep_caps
            || o.root.is_some()
            || o.wd.is_some()
            || o.wdns_given
            || o.env
            || o.no_fork
            || o.join_cgroup
            || o.net_socket.is_some()
            || o.user_parent
            || o.mount_proc;
        if others {
            return Err("--ls takes only --target and --json".to_string());
        }
        if let Some(p) = o.program.first() {
            return Err(format!(
                "--ls runs no program, but '{}' was given",
                p.to_string_lossy()
            ));
        }
        return Ok(Mode::Ls {
            target: o.target,
            json: o.json,
        });
    }
    let has_target = o.target.is_some();
    if o.all && !has_target {
        return Err("no target PID specified for --all (give -t PID)".to_string());
    }
    let mut explicit: Vec<(NsKind, Source)> = Vec::new();
    for (long, src) in &o.namespaces {
        let k = kind(long);
        if *src == Source::Target && !has_target {
            return Err(format!(
                "neither filename nor target pid supplied for --{} (give --{}=FILE or -t PID)",
                k.long, k.long
            ));
        }
        explicit.push((k, src.clone()));
    }
    explicit.sort_by_key(|(k, _)| conventions::ns::ALL.iter().position(|a| a == k));
    for (what, src) in [("--root", &o.root), ("--wd", &o.wd)] {
        if *src == Some(Source::Target) && !has_target {
            return Err(format!(
                "neither directory nor target pid supplied for {what} (give {what}=DIR or -t PID)"
            ));
        }
    }
    if o.wd.is_some() && o.wdns_given {
        return Err("mutually exclusive arguments: --wdns --wd".to_string());
    }
    if !has_target {
        if o.env {
            return Err(needs_target("--env"));
        }
        if o.uid == Some(IdSpec::Follow) {
            return Err(needs_target("--setuid follow"));
        }
        if o.gid == Some(IdSpec::Follow) {
            return Err(needs_target("--setgid follow"));
        }
        if o.join_cgroup {
            return Err(needs_target("--join-cgroup"));
        }
        if o.net_socket.is_some() {
            return Err(needs_target("--net-socket"));
        }
        if o.user_parent {
            return Err(needs_target("--user-parent"));
        }
    }
    if o.net_socket.is_some() && o.namespaces.iter().any(|(l, _)| *l == "net") {
        return Err("--net-socket and --net both name the network namespace: give one".to_string());
    }
    // util-linux since 2.40 (2.38.1 runs the program where it is).
    if explicit.is_empty() && !o.all && o.net_socket.is_none() && !o.user_parent {
        return Err(
            "no namespace specified (give -a or a namespace option such as -n, -m, -U)".to_string(),
        );
    }
    if o.mount_proc {
        let has = |name: &str| o.all || explicit.iter().any(|(k, _)| k.proc_name == name);
        if !has("pid") || !has("mnt") {
            return Err(
                "--mount-proc needs both a pid and a mount namespace to enter (add -p -m)"
                    .to_string(),
            );
        }
        if o.no_fork {
            return Err(
                "--mount-proc needs the fork into the pid namespace: drop -F/--no-fork".to_string(),
            );
        }
    }
    Ok(Mode::Run(Plan {
        target: o.target,
        explicit,
        all: o.all,
        net_socket: o.net_socket,
        user_parent: o.user_parent,
        root: o.root,
        wd: o.wd,
        wdns: o.wdns,
        env: o.env,
        may_fork: !o.no_fork,
        uid: o.uid,
        gid: o.gid,
        preserve_credentials: o.preserve_credentials,
        keep_caps: o.keep_caps,
        join_cgroup: o.join_cgroup,
        mount_proc: o.mount_proc,
        program: o.program,
    }))
}

/// Where one namespace to join comes from, once `-a`, `-N` and the kernel are taken into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinSource {
    /// `/proc/PID/ns/KIND` of the target (or its pidfd).
    Target,
    /// A namespace file.
    File(OsString),
    /// The network namespace of the target's socket FD.
    Socket(i32),
}

/// One namespace to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// Its kind.
    pub kind: NsKind,
    /// Where it comes from.
    pub source: JoinSource,
}

/// What the running system says, for [`joins`].
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    /// Whether the kernel has this kind of namespace.
    pub supported: &'a dyn Fn(NsKind) -> bool,
    /// Whether the target's user namespace is the caller's own.
    pub same_user_ns: bool,
}

/// The namespaces to join, in `conventions::ns::ALL` order. `-a` takes every kind the kernel has,
/// but not the caller's own user namespace (joining it is EINVAL); an explicit option for a kind
/// the kernel lacks is an error.
pub fn joins(plan: &Plan, facts: Facts<'_>) -> Result<Vec<Join>, String> {
    let mut out = Vec::new();
    for k in conventions::ns::ALL {
        let explicit = plan.explicit.iter().find(|(e, _)| *e == k);
        let socket = (k.proc_name == "net").then_some(plan.net_socket).flatten();
        let source = match (explicit, socket) {
            (_, Some(fd)) => JoinSource::Socket(fd),
            (Some((_, Source::File(f))), None) => JoinSource::File(f.clone()),
            (Some((_, Source::Target)), None) => JoinSource::Target,
            (None, None) if plan.all => {
                if !(facts.supported)(k) || (k.proc_name == "user" && facts.same_user_ns) {
                    continue;
                }
                JoinSource::Target
            }
            (None, None) => continue,
        };
        if !(facts.supported)(k) {
            return Err(format!(
                "the kernel has no {} namespaces (/proc/self/ns/{} is missing)",
                k.proc_name, k.proc_name
            ));
        }
        out.push(Join { kind: k, source });
    }
    Ok(out)
}

/// Whether every namespace comes from the target itself, so that one `setns(pidfd, mask)` can
/// join them all atomically.
pub fn pidfd_joinable(plan: &Plan, joins: &[Join]) -> bool {
    plan.target.is_some()
        && !plan.user_parent
        && !joins.is_empty()
        && joins.iter().all(|j| j.source == JoinSource::Target)
}

/// The `CLONE_NEW*` mask of `joins`.
pub fn mask(joins: &[Join]) -> libc::c_int {
    joins.iter().fold(0, |m, j| m | j.kind.flag)
}

/// Whether a pid namespace is joined, which makes us fork unless `-F`.
pub fn joins_pid(joins: &[Join]) -> bool {
    joins.iter().any(|j| j.kind.proc_name == "pid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{parse, Parsed};

    fn mode(args: &[&str]) -> Result<Mode, String> {
        match parse(args.iter().map(OsString::from)) {
            Ok(Parsed::Run(o)) => plan(o),
            other => panic!("{other:?}"),
        }
    }

    fn run_plan(args: &[&str]) -> Plan {
        match mode(args) {
            Ok(Mode::Run(p)) => p,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn names(j: &[Join]) -> Vec<&'static str> {
        j.iter().map(|j| j.kind.proc_name).collect()
    }

    const EVERYTHING: &dyn Fn(NsKind) -> bool = &|_| true;
    const NO_TIME: &dyn Fn(NsKind) -> bool = &|k| k.proc_name != "time";

    /// `joins` for `p` on a kernel with the `supported` kinds and a target whose user namespace
    /// is (`same_user_ns`) or is not the caller's.
    fn joins_with(
        p: &Plan,
        supported: &dyn Fn(NsKind) -> bool,
        same_user_ns: bool,
    ) -> Result<Vec<Join>, String> {
        joins(
            p,
            Facts {
                supported,
                same_user_ns,
            },
        )
    }

    #[test]
    fn all_skips_own_user_ns_and_missing_kinds() {
        let p = run_plan(&["-t", "1", "-a"]);
        let j = joins_with(&p, NO_TIME, true).unwrap();
        assert_eq!(names(&j), ["cgroup", "ipc", "uts", "net", "pid", "mnt"]);
        let j = joins_with(&p, EVERYTHING, false).unwrap();
        assert_eq!(
            names(&j),
            ["user", "cgroup", "ipc", "uts", "net", "pid", "mnt", "time"]
        );
        assert!(pidfd_joinable(&p, &j));
        assert!(joins_pid(&j));
        assert_eq!(mask(&j), conventions::ns::all_flags());
    }

    #[test]
    fn explicit_kinds_in_table_order_files_win() {
        let p = run_plan(&["-t", "1", "-a", "--net=/run/netns/x", "-m"]);
        let j = joins_with(&p, EVERYTHING, true).unwrap();
        let net = j.iter().find(|j| j.kind.proc_name == "net").unwrap();
        assert_eq!(net.source, JoinSource::File("/run/netns/x".into()));
        assert!(!pidfd_joinable(&p, &j));
        let p = run_plan(&["-t", "1", "-m", "-U", "-n"]);
        let j = joins_with(&p, EVERYTHING, true).unwrap();
        // Explicit -U is kept even for the caller's own user ns: the kernel's error is reported.
        assert_eq!(names(&j), ["user", "net", "mnt"]);
        assert!(!joins_pid(&j));
        assert_eq!(
            mask(&j),
            libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWNS
        );
    }

    #[test]
    fn explicit_missing_kind_is_an_error() {
        let p = run_plan(&["-t", "1", "-T"]);
        let e = joins_with(&p, NO_TIME, false).unwrap_err();
        assert!(e.contains("no time namespaces"), "{e}");
    }

    #[test]
    fn net_socket_replaces_net() {
        let p = run_plan(&["-t", "1", "-N", "3", "-u"]);
        let j = joins_with(&p, EVERYTHING, false).unwrap();
        assert_eq!(names(&j), ["uts", "net"]);
        assert_eq!(j[1].source, JoinSource::Socket(3));
        assert!(!pidfd_joinable(&p, &j));
        assert!(mode(&["-t", "1", "-N", "3", "-n"]).is_err());
    }

    #[test]
    fn missing_target_is_an_error() {
        for args in [
            &["-m"][..],
            &["-a"],
            &["-r"],
            &["-w"],
            &["-e"],
            &["-S", "follow"],
            &["-G", "follow"],
            &["-c"],
            &["-N", "3"],
        ] {
            assert!(mode(args).is_err(), "{args:?}");
        }
        assert!(mode(&["-m"]).unwrap_err().contains("--mount"));
        // A target and nothing to enter (util-linux since 2.40).
        for args in [
            &["-t", "1"][..],
            &[],
            &["-t", "1", "-r", "-w", "true"],
            &["-r/"],
        ] {
            assert!(
                mode(args)
                    .unwrap_err()
                    .starts_with("no namespace specified"),
                "{args:?}"
            );
        }
        // With files, no target is needed.
        let p = run_plan(&["--net=/x", "-r/", "-w/tmp", "-S", "0"]);
        assert_eq!(p.explicit.len(), 1);
        assert_eq!(p.target, None);
    }

    #[test]
    fn conflicts() {
        assert_eq!(
            mode(&["-t", "1", "-w", "-W", "/"]),
            Err("mutually exclusive arguments: --wdns --wd".to_string())
        );
        assert!(mode(&["-Z", "-t", "1"]).unwrap_err().contains("SELinux"));
        assert!(mode(&["--json"]).is_err());
        assert!(mode(&["--ls", "-n", "-t", "1"]).is_err());
        assert!(mode(&["--ls", "true"]).is_err());
        assert!(mode(&["--ls", "-W"]).is_err());
        assert!(mode(&["--user-parent"])
            .unwrap_err()
            .contains("--user-parent needs a target"));
        assert!(mode(&["-t", "1", "--user-parent"]).is_ok());
        // -W excludes -w even without a directory.
        assert!(mode(&["-t", "1", "-n", "-w", "-W"]).is_err());
        assert!(mode(&["-t", "1", "-n", "-W"]).is_ok());
        assert!(mode(&["-t", "1", "-n", "--mount-proc"]).is_err());
        assert!(mode(&["-t", "1", "-p", "-m", "-F", "--mount-proc"]).is_err());
        assert!(mode(&["-t", "1", "-p", "-m", "--mount-proc"]).is_ok());
        assert!(mode(&["-t", "1", "-a", "--mount-proc"]).is_ok());
    }

    #[test]
    fn ls_mode() {
        assert_eq!(
            mode(&["--ls"]),
            Ok(Mode::Ls {
                target: None,
                json: false
            })
        );
        assert_eq!(
            mode(&["--ls", "--json", "-t", "4"]),
            Ok(Mode::Ls {
                target: Some(TargetSpec {
                    pid: 4,
                    inode: None
                }),
                json: true
            })
        );
    }

    #[test]
    fn fork_and_ids() {
        let p = run_plan(&["-t", "1", "-p", "-F", "-S", "follow", "-G", "5", "id"]);
        assert!(!p.may_fork);
        assert_eq!(p.uid, Some(IdSpec::Follow));
        assert_eq!(p.gid, Some(IdSpec::Id(5)));
        assert_eq!(p.program, vec![OsString::from("id")]);
    }
}
