//! Carrying out a [`Plan`]: open everything that names the target first (so that a reused pid or
//! a later mount-namespace switch cannot redirect a path), join the namespaces, then root, cwd,
//! environment, fork, ids, caps and exec, in util-linux's order.

use crate::args::{IdSpec, Source, TargetSpec};
use crate::error::Error;
use crate::plan::{self, Facts, Join, JoinSource, Plan};
use crate::sys;
use conventions::ns::{self, NsKind};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::unistd::{fchdir, ForkResult};
use std::cell::{OnceCell, RefCell};
use std::convert::Infallible;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

/// The target process, held by a pidfd (where the kernel has one) and a `/proc/PID` directory
/// descriptor, so that everything read about it is about the same process.
pub struct Target {
    /// The pid.
    pub pid: i32,
    /// pidfd_open's descriptor, None on kernels without pidfd_open.
    pub pidfd: Option<OwnedFd>,
    /// `/proc/PID`, O_PATH, opened on first use: a plain `-t PID -n` joins through the pidfd
    /// alone and needs no path. See [`Target::dir`].
    procdir: OnceCell<OwnedFd>,
}

impl Target {
    /// Opens the target and, for `PID:INODE`, checks that PID is still that process.
    pub fn open(spec: TargetSpec) -> Result<Target, Error> {
        let pid = spec.pid;
        let pidfd = match sys::pidfd_open(pid) {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => None,
            Err(e) => return Err(Error::of_target(pid, format!("pidfd_open({pid})"), e)),
        };
        if let Some(expected) = spec.inode {
            let Some(fd) = &pidfd else {
                return Err(Error::Invalid(format!(
                    "cannot check {pid}:{expected}: the kernel has no pidfd_open (Linux 5.3+); give the pid alone"
                )));
            };
            let magic = sys::fs_type(fd).map_err(|e| Error::sys("fstatfs(pidfd)", e, ""))?;
            if magic != sys::PIDFS_MAGIC {
                return Err(Error::Invalid(format!(
                    "cannot check {pid}:{expected}: the kernel has no pidfs (Linux 6.9+), so pidfd inodes do not identify processes; give the pid alone"
                )));
            }
            let actual = sys::inode(fd).map_err(|e| Error::sys("fstat(pidfd)", e, ""))?;
            if actual != expected {
                return Err(Error::InodeMismatch {
                    pid,
                    expected,
                    actual,
                });
            }
        }
        let t = Target {
            pid,
            pidfd,
            procdir: OnceCell::new(),
        };
        if t.pidfd.is_none() {
            // Without a pidfd, opening /proc/PID is what says the process exists.
            t.dir()?;
        }
        Ok(t)
    }

    /// `/proc/PID`, opened on first use and checked against the pidfd, so that what is opened
    /// through it is the target's even if the pid was reused. Callers that read through it after
    /// joining a mount namespace must call this before joining: the path names the caller's
    /// /proc.
    pub fn dir(&self) -> Result<&OwnedFd, Error> {
        if let Some(fd) = self.procdir.get() {
            return Ok(fd);
        }
        let path = format!("/proc/{}", self.pid);
        let fd = sys::openat(None, OsStr::new(&path), libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| Error::of_target(self.pid, format!("open({path})"), e))?;
        self.still_alive()?;
        Ok(self.procdir.get_or_init(|| fd))
    }

    /// Fails when the process the pidfd holds has ended: then the pid may already belong to
    /// another process, and what was opened by path may be that other process's.
    pub fn still_alive(&self) -> Result<(), Error> {
        match &self.pidfd {
            Some(fd) if !sys::pidfd_alive(fd) => Err(Error::TargetGone {
                pid: self.pid,
                what: "pidfd_send_signal(0)".to_string(),
                err: io::Error::from_raw_os_error(libc::ESRCH),
            }),
            _ => Ok(()),
        }
    }

    /// Opens `/proc/PID/<rel>`.
    pub fn open_rel(&self, rel: &str, flags: libc::c_int) -> Result<OwnedFd, Error> {
        sys::openat(Some(self.dir()?), OsStr::new(rel), flags)
            .map_err(|e| self.failed(format!("open(/proc/{}/{rel})", self.pid), e))
    }

    /// The error for a call about the target that failed with `err`: a zombie (whose
    /// namespace files read ENOENT and whose pidfd setns answers ESRCH) is named as such.
    pub fn failed(&self, what: String, err: io::Error) -> Error {
        if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) {
            if let Some(('Z', ppid)) = self.state() {
                return Error::Zombie {
                    pid: self.pid,
                    ppid,
                    what,
                    err,
                };
            }
        }
        Error::of_target(self.pid, what, err)
    }

    /// The state letter and parent of the target, from `/proc/PID/stat` (None if unreadable).
    fn state(&self) -> Option<(char, i32)> {
        let path = format!("/proc/{}/stat", self.pid);
        let fd = sys::openat(None, OsStr::new(&path), libc::O_RDONLY).ok()?;
        let mut text = String::new();
        io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).ok()?;
        crate::error::parse_stat_state(&text)
    }

    /// Reads `/proc/PID/<rel>`.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, Error> {
        let fd = self.open_rel(rel, libc::O_RDONLY)?;
        let mut buf = Vec::new();
        io::Read::read_to_end(&mut std::fs::File::from(fd), &mut buf)
            .map_err(|e| self.failed(format!("read(/proc/{}/{rel})", self.pid), e))?;
        Ok(buf)
    }

    /// The inode of the target's namespace of `kind`.
    pub fn ns_inode(&self, kind: NsKind) -> Result<u64, Error> {
        let fd = self.open_rel(&format!("ns/{}", kind.proc_name), libc::O_RDONLY)?;
        sys::inode(&fd).map_err(|e| Error::sys("fstat(ns)", e, ""))
    }
}

/// One namespace, opened and checked.
struct Opened {
    kind: NsKind,
    fd: OwnedFd,
    /// Where it came from, for messages.
    label: String,
}

fn kind_of_flag(flag: libc::c_int) -> &'static str {
    ns::by_flag(flag).map(|k| k.proc_name).unwrap_or("unknown")
}

/// Checks that `fd` is a namespace file of `kind`.
fn check_ns_file(fd: &OwnedFd, kind: NsKind, label: &str) -> Result<(), Error> {
    let not_ns = || {
        Error::Invalid(format!(
            "{label} is not a namespace file (give /proc/PID/ns/{} or a bind mount of one)",
            kind.proc_name
        ))
    };
    match sys::fs_type(fd) {
        Ok(t) if t == sys::NSFS_MAGIC => {}
        _ => return Err(not_ns()),
    }
    match sys::ns_type(fd) {
        Ok(t) if t == kind.flag => Ok(()),
        Ok(t) => Err(Error::Invalid(format!(
            "{label} is a {} namespace, not a {} namespace",
            kind_of_flag(t),
            kind.proc_name
        ))),
        Err(_) => Err(not_ns()),
    }
}

fn open_joins(joins: &[Join], target: Option<&Target>) -> Result<Vec<Opened>, Error> {
    let mut out = Vec::with_capacity(joins.len());
    for j in joins {
        let kind = j.kind;
        let opened = match &j.source {
            JoinSource::Target => {
                let t = target.ok_or_else(|| Error::Invalid("no target".to_string()))?;
                let rel = format!("ns/{}", kind.proc_name);
                let fd = t.open_rel(&rel, libc::O_RDONLY)?;
                Opened {
                    kind,
                    fd,
                    label: format!("/proc/{}/{rel}", t.pid),
                }
            }
            JoinSource::File(f) => {
                let label = f.to_string_lossy().into_owned();
                let fd = sys::openat(None, f, libc::O_RDONLY).map_err(|e| {
                    Error::sys(
                        format!("open({label})"),
                        e,
                        format!(
                            "--{} takes a namespace file such as /proc/PID/ns/{} or a bind mount of one",
                            kind.long, kind.proc_name
                        ),
                    )
                })?;
                check_ns_file(&fd, kind, &label)?;
                Opened { kind, fd, label }
            }
            JoinSource::Socket(sock) => {
                let t = target.ok_or_else(|| Error::Invalid("no target".to_string()))?;
                let pidfd = t.pidfd.as_ref().ok_or_else(|| {
                    Error::Invalid(
                        "--net-socket needs pidfd_getfd (Linux 5.6+), which this kernel lacks"
                            .to_string(),
                    )
                })?;
                let what = format!("pidfd_getfd({}, {sock})", t.pid);
                let dup = sys::pidfd_getfd(pidfd, *sock).map_err(|e| match e.raw_os_error() {
                    Some(libc::EBADF) => Error::Invalid(format!(
                        "process {} has no file descriptor {sock} (see /proc/{}/fd)",
                        t.pid, t.pid
                    )),
                    _ => Error::of_target(t.pid, what, e),
                })?;
                let fd = sys::ioctl_fd(&dup, sys::SIOCGSKNS).map_err(|e| {
                    Error::sys(
                        format!("ioctl(SIOCGSKNS) on fd {sock} of process {}", t.pid),
                        e,
                        "the descriptor must be a socket",
                    )
                })?;
                Opened {
                    kind,
                    fd,
                    label: format!(
                        "the network namespace of socket fd {sock} of process {}",
                        t.pid
                    ),
                }
            }
        };
        out.push(opened);
    }
    Ok(out)
}

/// `--user-parent`: the user namespace joined is the parent of the one `-U` names (the
/// target's, or `--user=FILE`'s); without `-U`, the parent of the target's user namespace, as
/// util-linux since 2.40 does (2.38.1 has no `--user-parent`).
fn user_parent(opened: &mut Vec<Opened>, target: Option<&Target>) -> Result<(), Error> {
    let user = ns::by_name("user").ok_or_else(|| Error::Invalid("no user kind".into()))?;
    if !opened.iter().any(|o| o.kind == user) {
        let t = target.ok_or_else(|| Error::Invalid("--user-parent needs -t PID".into()))?;
        let fd = t.open_rel("ns/user", libc::O_RDONLY)?;
        opened.insert(
            0,
            Opened {
                kind: user,
                fd,
                label: format!("/proc/{}/ns/user", t.pid),
            },
        );
    }
    if let Some(u) = opened.iter_mut().find(|o| o.kind == user) {
        let parent = sys::ioctl_fd(&u.fd, sys::NS_GET_PARENT).map_err(|e| {
            Error::sys(
                format!("ioctl(NS_GET_PARENT) on {}", u.label),
                e,
                "EPERM: the parent is outside your own user namespace; the initial user namespace has none",
            )
        })?;
        u.fd = parent;
        u.label = format!("the parent user namespace of {}", u.label);
    }
    Ok(())
}

/// A hint for a failed setns of `fd`.
fn setns_hint(err: &io::Error, kind: NsKind, fd: Option<&OwnedFd>) -> String {
    match err.raw_os_error() {
        Some(libc::EINVAL) if kind.proc_name == "user" => {
            let own = ns::by_name("user")
                .and_then(|k| k.inode(ns::Proc::Current).ok())
                .zip(fd.and_then(|f| sys::inode(f).ok()));
            match own {
                Some((a, b)) if a == b => {
                    "it is your own user namespace: drop -U (-a skips it by itself)".to_string()
                }
                _ => String::new(),
            }
        }
        Some(libc::EPERM) => {
            let euid = nix::unistd::geteuid().as_raw();
            let owner = fd
                .and_then(|f| {
                    if kind.proc_name == "user" {
                        sys::owner_uid(f).ok()
                    } else {
                        sys::ioctl_fd(f, sys::NS_GET_USERNS)
                            .ok()
                            .and_then(|u| sys::owner_uid(&u).ok())
                    }
                })
                .filter(|&o| o != euid);
            match owner {
                Some(o) if euid != 0 => format!(
                    "the namespace's user namespace is owned by another user (uid {o}); you need CAP_SYS_ADMIN there"
                ),
                _ => "needs CAP_SYS_ADMIN in the namespace's owning user namespace (and CAP_SYS_CHROOT for mount namespaces)".to_string(),
            }
        }
        _ => String::new(),
    }
}

/// Joins the opened namespaces in two passes as util-linux does: every kind but user first,
/// ignoring failures, then user and whatever failed, failing for good. Entering the user
/// namespace last keeps the privileges needed for the others when it deprivileges us; when it is
/// what grants them, the first pass fails and the second succeeds after it.
fn join_files(opened: Vec<Opened>) -> Result<(), Error> {
    let mut pending: Vec<Opened> = Vec::new();
    let mut user = Vec::new();
    for o in opened {
        if o.kind.proc_name == "user" {
            user.push(o);
        } else if sys::setns(&o.fd, o.kind.flag).is_err() {
            pending.push(o);
        }
    }
    for o in user.into_iter().chain(pending) {
        sys::setns(&o.fd, o.kind.flag).map_err(|e| {
            let hint = setns_hint(&e, o.kind, Some(&o.fd));
            Error::sys(
                format!("setns({}, {})", o.label, ns::flag_names(o.kind.flag)),
                e,
                hint,
            )
        })?;
    }
    Ok(())
}

fn open_dir(src: &Source, rel: &str, target: Option<&Target>) -> Result<OwnedFd, Error> {
    match src {
        Source::Target => target
            .ok_or_else(|| Error::Invalid("no target".to_string()))?
            .open_rel(rel, libc::O_RDONLY | libc::O_DIRECTORY),
        Source::File(d) => sys::openat(None, d, libc::O_RDONLY | libc::O_DIRECTORY).map_err(|e| {
            Error::sys(
                format!("open({})", d.to_string_lossy()),
                e,
                "give an existing directory",
            )
        }),
    }
}

/// Parses `/proc/PID/environ`: NUL-separated `KEY=VALUE` entries.
pub fn parse_environ(raw: &[u8]) -> Vec<(OsString, OsString)> {
    raw.split(|&b| b == 0)
        .filter_map(|e| {
            let i = e.iter().position(|&b| b == b'=')?;
            (i > 0).then(|| {
                (
                    OsString::from_vec(e[..i].to_vec()),
                    OsString::from_vec(e[i + 1..].to_vec()),
                )
            })
        })
        .collect()
}

/// The effective uid and gid in `/proc/PID/status`, as the reader's user namespace sees them.
pub fn parse_status_ids(status: &str) -> Option<(u32, u32)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u32>().ok())
    };
    Some((field("Uid:")?, field("Gid:")?))
}

/// The v2 cgroup path of a process from `/proc/PID/cgroup` (the `0::PATH` line).
pub fn parse_v2_cgroup(content: &str) -> Option<&str> {
    content.lines().find_map(|l| l.strip_prefix("0::"))
}

/// Where the cgroup2 hierarchy is mounted, and the cgroup its mount shows as root, from
/// `/proc/self/mountinfo` text (parsed by [`conventions::mountinfo`], so both are unescaped).
pub fn parse_cgroup2_mount(mountinfo: &str) -> Option<(String, String)> {
    conventions::mountinfo::parse(mountinfo)
        .into_iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| (m.mount_point, m.root))
}

/// One line of `/proc/PID/cgroup`: hierarchy id, controllers (empty for cgroup2; `name=systemd`
/// for a named hierarchy) and the path.
pub fn parse_cgroup_lines(content: &str) -> Vec<(&str, &str, &str)> {
    content
        .lines()
        .filter_map(|l| {
            let (id, rest) = l.split_once(':')?;
            let (controllers, path) = rest.split_once(':')?;
            Some((id, controllers, path))
        })
        .collect()
}

/// The `cgroup.procs` files that put a process into the target's cgroup in every hierarchy
/// mounted here (cgroup2 and each v1 hierarchy of a hybrid host), given the target's and our
/// own `/proc/PID/cgroup` and our mounts. A hierarchy where we are in the target's group
/// already is left alone, and so is one that is not mounted here.
pub fn cgroup_procs_files(
    target: &str,
    own: &str,
    mounts: &[conventions::mountinfo::Mount],
) -> Vec<String> {
    let own = parse_cgroup_lines(own);
    let mut out = Vec::new();
    for (id, controllers, path) in parse_cgroup_lines(target) {
        if own
            .iter()
            .any(|&(i, c, p)| i == id && c == controllers && p == path)
        {
            continue;
        }
        let first = controllers.split(',').next().unwrap_or_default();
        let mount = mounts.iter().find(|m| {
            if controllers.is_empty() {
                m.fstype == "cgroup2"
            } else {
                m.fstype == "cgroup" && m.super_option_list().any(|o| o == first)
            }
        });
        let Some(m) = mount else { continue };
        let rel = if m.root == "/" {
            path
        } else {
            path.strip_prefix(m.root.as_str()).unwrap_or(path)
        };
        let dir = rel.trim_start_matches('/');
        out.push(if dir.is_empty() {
            format!("{}/cgroup.procs", m.mount_point)
        } else {
            format!("{}/{dir}/cgroup.procs", m.mount_point)
        });
    }
    out
}

/// `-c`: moves us into the target's cgroup, in cgroup2 and, on a v1 or hybrid host, in every
/// v1 hierarchy too, before the mount namespace changes what /sys/fs/cgroup is.
fn join_cgroup(t: &Target) -> Result<(), Error> {
    let raw = t.read("cgroup")?;
    let content = String::from_utf8_lossy(&raw);
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| Error::sys("read(/proc/self/cgroup)", e, ""))?;
    let mounts = conventions::mountinfo::read_self()
        .map_err(|e| Error::sys("read(/proc/self/mountinfo)", e, ""))?;
    let known = parse_cgroup_lines(&content).iter().any(|&(_, c, _)| {
        mounts.iter().any(|m| {
            (c.is_empty() && m.fstype == "cgroup2")
                || (m.fstype == "cgroup"
                    && m.super_option_list()
                        .any(|o| Some(o) == c.split(',').next()))
        })
    });
    if !known {
        return Err(Error::Invalid(format!(
            "--join-cgroup: none of the cgroup hierarchies of process {} is mounted here",
            t.pid
        )));
    }
    let pid = format!("{}\n", std::process::id());
    for procs in cgroup_procs_files(&content, &own, &mounts) {
        std::fs::write(&procs, &pid).map_err(|e| {
            Error::sys(
                format!("write({procs})"),
                e,
                "the target's cgroup must be one you may write to (in cgroup2 a leaf)",
            )
        })?;
    }
    Ok(())
}

/// setgroups(2) with an empty list.
fn drop_groups() -> io::Result<()> {
    nix::unistd::setgroups(&[]).map_err(io::Error::from)
}

/// Switches to `gid` and `uid`, dropping the supplementary groups first when a gid is set.
/// Dropping them is tried twice, as util-linux does: once before joining (`early`, where we
/// still have our privileges, when a user namespace is entered) and once here; it fails only if
/// both attempts failed. Inside a user namespace whose setgroups is "deny" (every namespace
/// made by `unshare -r`) the second attempt always fails, and the first one has already done it.
fn set_ids(uid: Option<u32>, gid: Option<u32>, early: Option<&io::Error>) -> Result<(), Error> {
    if let Some(g) = gid {
        if let (Err(e), Some(first)) = (drop_groups(), early) {
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                format!(
                    "needs CAP_SETGID, in the entered user namespace too (where setgroups may be denied); before joining it failed as well: {}",
                    conventions::output::errtext(first)
                )
            } else {
                String::new()
            };
            return Err(Error::sys("setgroups([])", e, hint));
        }
        if let Err(e) = nix::unistd::setgid(nix::unistd::Gid::from_raw(g)) {
            return Err(Error::sys(
                format!("setgid({g})"),
                io::Error::from(e),
                "the gid must be mapped in the user namespace, and CAP_SETGID is needed",
            ));
        }
    }
    if let Some(u) = uid {
        if let Err(e) = nix::unistd::setuid(nix::unistd::Uid::from_raw(u)) {
            return Err(Error::sys(
                format!("setuid({u})"),
                io::Error::from(e),
                "the uid must be mapped in the user namespace, and CAP_SETUID is needed",
            ));
        }
    }
    Ok(())
}

fn resolve_id(
    spec: Option<IdSpec>,
    follow: &mut dyn FnMut() -> Result<u32, Error>,
) -> Result<Option<u32>, Error> {
    match spec {
        None => Ok(None),
        Some(IdSpec::Id(n)) => Ok(Some(n)),
        Some(IdSpec::Follow) => follow().map(Some),
    }
}

/// Runs the plan. Returns only on failure: on success the process is replaced by the program
/// (or, when it forked, ends with the child's status).
pub fn run(tool: &str, plan: Plan) -> Result<Infallible, Error> {
    let target = plan.target.map(Target::open).transpose()?;
    let same_user_ns = match (&target, plan.all) {
        (Some(t), true) => {
            let user = ns::by_name("user").ok_or_else(|| Error::Invalid("no user kind".into()))?;
            let own = user
                .inode(ns::Proc::Current)
                .map_err(|e| Error::sys("stat(/proc/self/ns/user)", e, ""))?;
            t.ns_inode(user)? == own
        }
        _ => false,
    };
    // Which kinds the kernel has. `-a` asks about every kind: one listing of /proc/self/ns
    // costs a fifth of a stat per kind (each stat resolves a namespace). Otherwise one stat per
    // kind asked, at most once each: `-n` needs one.
    let listed: Option<Vec<OsString>> = if plan.all {
        std::fs::read_dir("/proc/self/ns")
            .ok()
            .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
    } else {
        None
    };
    let known: RefCell<Vec<(NsKind, bool)>> = RefCell::new(Vec::new());
    let supported = |k: NsKind| {
        if let Some(names) = &listed {
            return names
                .iter()
                .any(|n| n.as_os_str() == OsStr::new(k.proc_name));
        }
        if let Some(&(_, s)) = known.borrow().iter().find(|(kind, _)| *kind == k) {
            return s;
        }
        let s = k.supported();
        known.borrow_mut().push((k, s));
        s
    };
    let joins = plan::joins(
        &plan,
        Facts {
            supported: &supported,
            same_user_ns,
        },
    )
    .map_err(Error::Invalid)?;

    // Everything that names the target by path is opened before any namespace changes.
    let root_fd = plan
        .root
        .as_ref()
        .map(|s| open_dir(s, "root", target.as_ref()))
        .transpose()?;
    let wd_fd = plan
        .wd
        .as_ref()
        .map(|s| open_dir(s, "cwd", target.as_ref()))
        .transpose()?;
    let environ = match (&target, plan.env) {
        (Some(t), true) => Some(parse_environ(&t.read("environ")?)),
        _ => None,
    };
    let use_pidfd = plan::pidfd_joinable(&plan, &joins)
        && target.as_ref().is_some_and(|t| t.pidfd.is_some())
        && std::env::var_os("NSENTER_RS_NO_PIDFD").is_none();
    let mut opened = if use_pidfd {
        Vec::new()
    } else {
        let mut o = open_joins(&joins, target.as_ref())?;
        if plan.user_parent {
            user_parent(&mut o, target.as_ref())?;
        }
        o
    };
    if let Some(t) = &target {
        t.still_alive()?;
        if plan.join_cgroup {
            join_cgroup(t)?;
        }
    }
    let entered_user = if use_pidfd {
        joins.iter().any(|j| j.kind.proc_name == "user")
    } else {
        opened.iter().any(|o| o.kind.proc_name == "user")
    };
    // The first of util-linux's two tries at dropping the supplementary groups (see set_ids).
    let early_groups = (entered_user && !plan.preserve_credentials)
        .then(drop_groups)
        .and_then(Result::err);

    // --setuid/--setgid follow read /proc/PID/status after joining, when /proc may be the
    // entered mount namespace's: the directory is opened now, naming our /proc.
    if let Some(t) = &target {
        if plan.uid == Some(IdSpec::Follow) || plan.gid == Some(IdSpec::Follow) {
            t.dir()?;
        }
    }
    let mut joined = false;
    if let (true, Some(t)) = (use_pidfd, &target) {
        if let Some(pidfd) = &t.pidfd {
            let mask = plan::mask(&joins);
            match sys::setns(pidfd, mask) {
                Ok(()) => joined = true,
                // Kernels before 5.8 refuse a pidfd here; the files below then say what is wrong.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    opened = open_joins(&joins, Some(t))?;
                    t.still_alive()?;
                }
                Err(e) => {
                    let kinds = ns::kinds_in(mask);
                    let kind = kinds.first().copied().unwrap_or(ns::ALL[0]);
                    // The ptrace access check is the usual cause; opening the file names it.
                    let fd = match t.open_rel(&format!("ns/{}", kind.proc_name), libc::O_RDONLY) {
                        Ok(fd) => Some(fd),
                        Err(access @ Error::Access { .. }) => return Err(access),
                        Err(_) => None,
                    };
                    if e.raw_os_error() == Some(libc::ESRCH) {
                        let what = format!("setns(pidfd of {}, {})", t.pid, ns::flag_names(mask));
                        return Err(t.failed(what, e));
                    }
                    let hint = setns_hint(&e, kind, fd.as_ref());
                    return Err(Error::sys(
                        format!("setns(pidfd of {}, {})", t.pid, ns::flag_names(mask)),
                        e,
                        hint,
                    ));
                }
            }
        }
    }
    if !joined {
        join_files(opened)?;
    }

    if plan.mount_proc {
        // A private copy of the entered mount namespace, so that the fresh /proc does not
        // appear in (and pile up on) the target's own mount table.
        nix::sched::unshare(CloneFlags::CLONE_NEWNS)
            .map_err(|e| Error::sys("unshare(CLONE_NEWNS) for --mount-proc", e, ""))?;
        let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
        nix::mount::mount(Some("none"), "/", None::<&str>, private, None::<&str>)
            .map_err(|e| Error::sys("mount(/, MS_REC|MS_PRIVATE)", e, ""))?;
    }

    if let Some(root) = &root_fd {
        // Keep the current directory across the chroot unless one is given.
        let keep = if wd_fd.is_none() && plan.wdns.is_none() {
            Some(
                sys::openat(None, OsStr::new("."), libc::O_RDONLY | libc::O_DIRECTORY)
                    .map_err(|e| Error::sys("open(.)", e, ""))?,
            )
        } else {
            None
        };
        fchdir(root.as_raw_fd()).map_err(|e| Error::sys("fchdir(root)", e, ""))?;
        nix::unistd::chroot(".").map_err(|e| Error::sys("chroot(.)", e, "needs CAP_SYS_CHROOT"))?;
        if let Some(k) = keep {
            fchdir(k.as_raw_fd()).map_err(|e| Error::sys("fchdir(old cwd)", e, ""))?;
        }
    }
    if let Some(wd) = &wd_fd {
        fchdir(wd.as_raw_fd()).map_err(|e| Error::sys("fchdir(wd)", e, ""))?;
    }
    if let Some(dir) = &plan.wdns {
        nix::unistd::chdir(dir.as_os_str()).map_err(|e| {
            Error::sys(
                format!("chdir({}) in the entered namespaces", dir.to_string_lossy()),
                e,
                "-W resolves the directory after entering the mount namespace and root",
            )
        })?;
    }
    if let Some(env) = environ {
        let keys: Vec<OsString> = std::env::vars_os().map(|(k, _)| k).collect();
        for k in keys {
            std::env::remove_var(k);
        }
        for (k, v) in env {
            std::env::set_var(k, v);
        }
    }

    if plan::joins_pid(&joins) && plan.may_fork {
        // The terminal sends SIGINT and SIGQUIT to the program as well; dying of them in the
        // parent would orphan a program that handles them (an interactive shell). They are
        // ignored from before the fork, so no signal slips in between, and the child gets
        // back the dispositions we were started with. SIGTERM and SIGHUP, which are sent to
        // the parent alone, are passed on below.
        let saved = [libc::SIGINT, libc::SIGQUIT].map(|sig| {
            // SAFETY: setting a signal to SIG_IGN has no memory effects; the old value is kept.
            (sig, unsafe { libc::signal(sig, libc::SIG_IGN) })
        });
        let mut child = |_: bool| -> Infallible {
            for (sig, old) in saved {
                // SAFETY: restores a disposition the kernel gave us (in this child only).
                unsafe { libc::signal(sig, old) };
            }
            let e = match finish(&plan, target.as_ref(), entered_user, early_groups.as_ref()) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            conventions::errln!("{tool}: {e}");
            // SAFETY: _exit ends this child without running the parent's exit handlers.
            unsafe { libc::_exit(e.code()) }
        };
        // SAFETY: nsenter-rs is single-threaded, and the child ends in exec or _exit. It
        // borrows our memory until it execs: nothing of ours is copied for a program that
        // replaces the child at once.
        let child = match unsafe { conventions::spawn::spawn(None, &mut child) } {
            Ok(s) => s.pid,
            // EINVAL: a kernel that refuses CLONE_VM here; a copying fork runs the same child.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // SAFETY: nsenter-rs is single-threaded, so the child may run any code.
                match unsafe { nix::unistd::fork() }.map_err(|e| Error::sys("fork()", e, ""))? {
                    ForkResult::Parent { child } => child.as_raw(),
                    // The closure's type says it cannot return.
                    #[allow(unreachable_code)]
                    ForkResult::Child => match child(false) {},
                }
            }
            Err(e) => return Err(Error::sys("clone(CLONE_VM|CLONE_VFORK)", e, "")),
        };
        let outcome = conventions::child::wait_relaying(
            child,
            &[libc::SIGTERM, libc::SIGHUP],
            conventions::child::Disposition::Forward,
        )
        .map_err(|e| Error::sys(format!("waitpid({child})"), e, ""))?;
        conventions::exit::relay(outcome);
    }
    finish(&plan, target.as_ref(), entered_user, early_groups.as_ref())
}

/// The last steps, in the process that execs (the forked child when a pid namespace was
/// joined): mount /proc, switch ids, keep caps, exec.
fn finish(
    plan: &Plan,
    target: Option<&Target>,
    entered_user: bool,
    early_groups: Option<&io::Error>,
) -> Result<Infallible, Error> {
    if plan.mount_proc {
        nix::mount::mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|e| {
            Error::sys(
                "mount(proc, /proc)",
                e,
                "the entered root needs a /proc directory",
            )
        })?;
    }

    let mut status_ids: Option<(u32, u32)> = None;
    let mut follow = |which: usize| -> Result<u32, Error> {
        if status_ids.is_none() {
            let t = target.ok_or_else(|| Error::Invalid("follow needs -t PID".to_string()))?;
            // Opened after joining, so the ids read are those of the entered user namespace.
            let raw = t.read("status")?;
            status_ids = parse_status_ids(&String::from_utf8_lossy(&raw));
        }
        status_ids
            .map(|(u, g)| if which == 0 { u } else { g })
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "cannot parse /proc/{}/status",
                    plan.target.map_or(0, |t| t.pid)
                ))
            })
    };
    let uid = resolve_id(plan.uid, &mut || follow(0))?;
    let gid = resolve_id(plan.gid, &mut || follow(1))?;
    if entered_user && !plan.preserve_credentials {
        set_ids(Some(uid.unwrap_or(0)), Some(gid.unwrap_or(0)), early_groups)?;
    } else {
        set_ids(uid, gid, early_groups)?;
    }
    if entered_user && plan.keep_caps {
        conventions::ids::keep_caps().map_err(Error::Invalid)?;
    }

    let argv = conventions::exec::program_or_default(&plan.program);
    let (msg, code) = conventions::exec::execvp(&argv);
    Err(Error::Exec { msg, code })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environ_parses() {
        let env = parse_environ(b"A=1\0B=x=y\0\0NOEQ\0=v\0C=\0");
        assert_eq!(
            env,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), "".into())
            ]
        );
    }

    #[test]
    fn status_ids_parse() {
        let s = "Name:\tsleep\nUid:\t5\t7\t7\t7\nGid:\t9\t11\t11\t11\n";
        assert_eq!(parse_status_ids(s), Some((7, 11)));
        assert_eq!(parse_status_ids("Name: x\n"), None);
    }

    #[test]
    fn cgroup_lines_parse() {
        assert_eq!(
            parse_v2_cgroup("4:memory:/a\n0::/user.slice/x\n"),
            Some("/user.slice/x")
        );
        assert_eq!(parse_v2_cgroup("4:memory:/a\n"), None);
        let mi = "30 25 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                  35 25 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            parse_cgroup2_mount(mi),
            Some(("/sys/fs/cgroup/unified".to_string(), "/".to_string()))
        );
        assert_eq!(
            parse_cgroup2_mount("1 2 3:4 / / rw - ext4 /dev/x rw\n"),
            None
        );
        assert_eq!(
            parse_cgroup2_mount("9 1 0:40 /a\\040b /cg\\040two rw - cgroup2 none rw\n"),
            Some(("/cg two".to_string(), "/a b".to_string()))
        );
    }

    #[test]
    fn cgroup_files_cover_every_hierarchy() {
        let mi = conventions::mountinfo::parse(
            "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
             35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             36 31 0:33 /sub /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
             40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        let target =
            "9:name=systemd:/t\n8:pids:/sub/t\n4:memory:/same\n1:cpu:/\n3:blkio:/t\n0::/t/leaf\n";
        let own = "9:name=systemd:/\n8:pids:/\n4:memory:/same\n1:cpu:/x\n0::/\n";
        assert_eq!(
            cgroup_procs_files(target, own, &mi),
            vec![
                "/sys/fs/cgroup/systemd/t/cgroup.procs",
                "/sys/fs/cgroup/pids/t/cgroup.procs",
                // memory: we are in /same already; blkio: not mounted here.
                "/sys/fs/cgroup/cpu/cgroup.procs",
                "/sys/fs/cgroup/unified/t/leaf/cgroup.procs",
            ]
        );
        assert_eq!(
            parse_cgroup_lines("0::/a:b\nbad\n"),
            vec![("0", "", "/a:b")]
        );
        assert!(cgroup_procs_files("", own, &mi).is_empty());
    }
}
