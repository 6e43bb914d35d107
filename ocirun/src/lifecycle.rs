//! The runtime's side of the container lifecycle: create (state directory, cgroup, the init
//! handshake), start (the exec fifo, watched together with the init's pidfd), kill, delete, run,
//! and the state queries; every failure undoes what it made.

use conventions::output::errtext;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cgctl::group::Group;
use cgctl::layout::{Layout, Version};
use pivot::spec::SpecMount;

use crate::config::{self, Plan};
use crate::error::{Error, Result};
use crate::state::{self, Loaded, Record, Status};
use crate::sys;

/// The host's cgroup layout, read (from /proc/self/mountinfo) once per ocirun process: `run`
/// needs it in create, start's status and delete.
pub fn host_layout() -> Result<&'static Layout> {
    static LAYOUT: std::sync::OnceLock<Layout> = std::sync::OnceLock::new();
    if let Some(l) = LAYOUT.get() {
        return Ok(l);
    }
    let l = Layout::host()?;
    Ok(LAYOUT.get_or_init(|| l))
}

/// Options of `create` (and `run`).
#[derive(Debug, Clone)]
pub struct CreateOpts {
    /// The id.
    pub id: String,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Descriptors 3..3+N stay open for the container.
    pub preserve_fds: u32,
    /// Where the pty master goes when process.terminal is true.
    pub console_socket: Option<PathBuf>,
}

/// Reads, checks and plans a bundle's config for container `id` (no side effects but the
/// compiled seccomp profile kept under `root`).
pub fn plan_bundle(root: &Path, id: &str, bundle: &Path, layout: &Layout) -> Result<Plan> {
    let v = config::read(bundle)?;
    config::check(&v)?;
    config::check_labels(&v, config::host_selinux())?;
    let spec = config::typed(v)?;
    let route = |c: &str| layout.route_version(c);
    let seccomp = |s: &_| crate::seccomp::compile_cached(root, s);
    let plan = config::plan(&spec, id, bundle, &route, &seccomp)?;
    let rootfs = &plan.root.newroot;
    match std::fs::metadata(rootfs) {
        Ok(m) if m.is_dir() => Ok(plan),
        Ok(_) => Err(Error::config(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        )),
        Err(e) => Err(Error::config(
            "root.path",
            format!("{}: {}", rootfs.display(), errtext(&e)),
        )),
    }
}

/// What create made, removed again when it fails.
struct Undo<'a> {
    dir: Option<PathBuf>,
    group: Option<(Group<'a>, Vec<PathBuf>)>,
    init: Option<libc::pid_t>,
}

impl Undo<'_> {
    fn run(&mut self) {
        if let Some(pid) = self.init.take() {
            let _ = sys::kill(pid, libc::SIGKILL);
            wait_gone(pid, None);
        }
        if let Some((g, made)) = self.group.take() {
            let _ = g.kill(libc::SIGKILL);
            let _ = g.delete(false);
            Group::remove_made(&made);
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Waits (up to 10 s) until `pid` has exited: reaped when it is our child, else until its
/// pidfd says so or it is gone.
fn wait_gone(pid: libc::pid_t, start_time: Option<u64>) {
    let mut status = 0;
    // SAFETY: a non-blocking waitpid on a specific pid; `status` is a valid out-parameter.
    let ours = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } >= 0;
    if ours {
        let _ = sys::waitpid(pid);
        return;
    }
    if let Ok(fd) = nsenter_rs::sys::pidfd_open(pid) {
        let still_it = start_time.is_none_or(|t| sys::proc_stat(pid).is_some_and(|s| s.0 == t));
        if still_it {
            let _ = sys::poll_in(&[&fd], 10_000);
        }
    }
}

/// `cgroup`-type mounts become what runc gives a v1 or hybrid host: a tmpfs with the
/// container's own group of every hierarchy bound into it (no cgroup filesystem is mounted).
fn expand_cgroup_mounts(mounts: &mut Vec<SpecMount>, group: &Group<'_>) {
    let mut out = Vec::new();
    for m in mounts.drain(..) {
        if m.fstype.as_deref() != Some("cgroup") && m.fstype.as_deref() != Some("cgroup2") {
            out.push(m);
            continue;
        }
        let ro = m.flags & libc::MS_RDONLY;
        out.push(SpecMount {
            label: m.label.clone(),
            destination: m.destination.clone(),
            fstype: Some("tmpfs".into()),
            source: Some("tmpfs".into()),
            flags: m.flags & !libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data: "mode=755".into(),
            propagation: 0,
            copy_up: false,
        });
        for h in group.existing() {
            let hier = &group.layout.hierarchies[h];
            let name = match hier.version {
                Version::V2 => "unified".to_string(),
                Version::V1 => hier.controllers.join(","),
            };
            out.push(SpecMount {
                label: format!("{} ({name})", m.label),
                destination: m.destination.join(name),
                fstype: None,
                source: Some(group.dir(h)),
                flags: libc::MS_BIND | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | ro,
                data: String::new(),
                propagation: 0,
                copy_up: false,
            });
        }
    }
    *mounts = out;
}

/// `create`: returns the init's pid once it waits on the exec fifo. With `subreaper`, the init
/// is reparented to us (for `run`, which waits for it).
pub fn create(root: &Path, o: &CreateOpts, subreaper: bool) -> Result<libc::pid_t> {
    create_as(root, o, subreaper, false)
}

/// [`create`], or with `immediate` (`run`) a container whose init execs as soon as it is set
/// up, without an exec fifo to wait on: `run`'s create and start in one handshake.
fn create_as(root: &Path, o: &CreateOpts, subreaper: bool, immediate: bool) -> Result<libc::pid_t> {
    state::check_id(&o.id)?;
    let bundle = std::fs::canonicalize(&o.bundle).map_err(|e| {
        Error::sys_hint(
            format!("bundle {}", o.bundle.display()),
            e,
            "give the bundle directory with -b/--bundle",
        )
    })?;
    let layout = host_layout()?;
    let mut plan = plan_bundle(root, &o.id, &bundle, layout)?;
    plan.root.no_pivot = o.no_pivot;
    if !plan.seccomp_unknown.is_empty() {
        eprintln!(
            "ocirun: warning: linux.seccomp: system calls unknown to libseccomp left out: {}",
            plan.seccomp_unknown.join(", ")
        );
    }
    if plan.root.shared_mount_ns {
        // The container would mount in ocirun's own mount namespace: never the host's.
        pivot::refuse_host_namespace(false).map_err(|_| {
            Error::config(
                "linux.namespaces",
                "no mount namespace, and ocirun runs in the host's: the container's mounts \
                 would change the host (add {\"type\": \"mount\"}, or run ocirun in a mount \
                 namespace of its own: unshare -m --propagation private)",
            )
        })?;
    }
    plan.preserve_fds = o.preserve_fds;
    crate::console::check(
        plan.process.terminal,
        o.console_socket.as_deref(),
        if subreaper { "run" } else { "create" },
    )?;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| Error::sys(format!("mkdir({})", root.display()), e))?;
    }
    let dir = state::dir(root, &o.id);
    {
        use std::os::unix::fs::DirBuilderExt;
        // mkdir is the duplicate check: atomic, whoever comes second gets EEXIST.
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::state(
                    &o.id,
                    format!("already exists ({})", dir.display()),
                ))
            }
            Err(e) => return Err(Error::sys(format!("mkdir({})", dir.display()), e)),
        }
    }
    let mut undo = Undo {
        dir: Some(dir.clone()),
        group: None,
        init: None,
    };
    let result = create_in(
        &dir, layout, &mut plan, &bundle, o, subreaper, immediate, &mut undo,
    );
    match result {
        Ok(pid) => Ok(pid),
        Err(e) => {
            undo.run();
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn create_in<'a>(
    dir: &Path,
    layout: &'a Layout,
    plan: &mut Plan,
    bundle: &Path,
    o: &CreateOpts,
    subreaper: bool,
    immediate: bool,
    undo: &mut Undo<'a>,
) -> Result<libc::pid_t> {
    if !immediate {
        let fifo = dir.join(state::FIFO);
        sys::mkfifo(&fifo, 0o622)
            .map_err(|e| Error::sys(format!("mkfifo({})", fifo.display()), e))?;
    }
    let group = Group::new(layout, None, &plan.cgroup.name)?;
    match group.create(&plan.cgroup.writes) {
        Ok(made) => undo.group = Some((group.clone(), made)),
        Err(cgctl::Error::Exists(name)) => {
            // An empty group that exists in every hierarchy is taken over, as runc does (an
            // engine may make it first); one with processes is another container's.
            let everywhere = group.existing() == group.managed();
            if !everywhere || !group.procs().is_empty() {
                return Err(Error::state(
                    &o.id,
                    format!(
                        "cgroup '{name}' (linux.cgroupsPath) exists {} (give the container a                          cgroup of its own)",
                        if everywhere {
                            "and has processes"
                        } else {
                            "in only some hierarchies"
                        }
                    ),
                ));
            }
            group.apply(&plan.cgroup.writes)?;
        }
        Err(e) => return Err(e.into()),
    }
    // Named in the state directory before anything runs in it, so that `delete --force` of a
    // create that was killed half way finds the group.
    let cg_file = dir.join(state::CGROUP);
    std::fs::write(&cg_file, &plan.cgroup.name)
        .map_err(|e| Error::sys(format!("writing {}", cg_file.display()), e))?;
    expand_cgroup_mounts(&mut plan.root.mounts, &group);
    let dir_fd = sys::open(dir, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| Error::sys(format!("open({})", dir.display()), e))?;
    let console = match &o.console_socket {
        Some(p) => Some(crate::console::connect(p)?),
        None => None,
    };
    // The init joins the v1 hierarchies itself where it can (cloned straight from here, no
    // user namespace: it writes the host's cgroupfs as root): see cgctl's self_join_split.
    // A lone v2 hierarchy left (this hybrid host's, or a pure v2 host) is joined at clone
    // time (CLONE_INTO_CGROUP), so that no pid is written from here at all.
    let direct = crate::init::direct(plan);
    let mut by_pid = if direct && !plan.has(libc::CLONE_NEWUSER) {
        let (tasks, by_pid) = group.self_join_split()?;
        plan.cgroup.self_join = tasks;
        by_pid
    } else {
        group.require()?
    };
    let v2_dir = match by_pid.as_slice() {
        [h] if direct && layout.hierarchies[*h].version == cgctl::layout::Version::V2 => {
            sys::open(&group.dir(*h), libc::O_RDONLY | libc::O_DIRECTORY).ok()
        }
        _ => None,
    };
    let (ours, theirs) =
        sys::seqpacket_pair().map_err(|e| Error::sys("socketpair(AF_UNIX, SOCK_SEQPACKET)", e))?;
    if subreaper {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let pid = if direct {
        // SAFETY: ocirun is single-threaded.
        let (pid, in_cgroup) = unsafe {
            crate::init::clone_init(
                plan,
                &theirs,
                &ours,
                &dir_fd,
                console.as_ref(),
                v2_dir.as_ref(),
            )
        }?;
        if in_cgroup {
            by_pid.clear();
        }
        drop(theirs);
        drop(console);
        pid
    } else {
        // SAFETY: ocirun is single-threaded.
        let a = unsafe { sys::clone_fork(0) }.map_err(|e| Error::sys("fork()", e))?;
        if a == 0 {
            drop(ours);
            crate::init::intermediate(plan, &theirs, &dir_fd, console.as_ref());
        }
        drop(theirs);
        drop(console);
        let first = sys::recv(&ours);
        let _ = sys::waitpid(a);
        match message(first, "the intermediate process")? {
            Msg::Pid(p) => p,
            _ => return Err(Error::Init("the intermediate process sent no pid".into())),
        }
    };
    undo.init = Some(pid);
    parent_setup(plan, &group, &by_pid, pid, &ours)?;
    let annotations = serde_json::to_value(&plan.annotations).unwrap_or_default();
    let hook_state = crate::hooks::state(&o.id, "creating", pid, bundle, &annotations);
    // The spec's prestart hooks see the container as created (runtime-tools checks it);
    // createRuntime's run during creation.
    let mut prestart_state = hook_state.clone();
    prestart_state["status"] = "created".into();
    crate::hooks::run(&plan.hooks.prestart, &prestart_state)?;
    crate::hooks::run(&plan.hooks.create_runtime, &hook_state)?;
    // The state goes with go, for the hooks the init runs itself.
    let word = if immediate { "run" } else { "go" };
    sys::send(&ours, format!("{word} {hook_state}").as_bytes())
        .map_err(|e| Error::sys("sending go to the container's init", e))?;
    match message(sys::recv(&ours), "the container's init")? {
        Msg::Ready => {}
        _ => return Err(Error::Init("the container's init sent no ready".into())),
    }
    let start_time = sys::proc_stat(pid).map(|s| s.0).unwrap_or(0);
    let record = Record {
        id: o.id.clone(),
        pid,
        start_time,
        bundle: bundle.to_path_buf(),
        rootfs: std::fs::canonicalize(&plan.root.newroot)
            .unwrap_or_else(|_| plan.root.newroot.clone()),
        created: state::rfc3339(SystemTime::now()),
        cgroup: plan.cgroup.name.clone(),
        annotations: plan.annotations.clone(),
        // SAFETY: geteuid has no preconditions.
        owner: unsafe { libc::geteuid() },
        hooks: plan.hooks_json.clone(),
    };
    record.save(dir)?;
    if let Some(p) = &o.pid_file {
        write_pid_file(p, pid)?;
    }
    undo.init = None;
    undo.group = None;
    undo.dir = None;
    Ok(pid)
}

fn write_pid_file(p: &Path, pid: libc::pid_t) -> Result<()> {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = p.with_file_name(format!(".{name}.ocirun-tmp"));
    std::fs::write(&tmp, pid.to_string())
        .map_err(|e| Error::sys(format!("writing --pid-file {}", tmp.display()), e))?;
    std::fs::rename(&tmp, p).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::sys(format!("rename to --pid-file {}", p.display()), e)
    })
}

enum Msg {
    Pid(libc::pid_t),
    Joined,
    Ready,
}

fn message(m: std::io::Result<Vec<u8>>, from: &str) -> Result<Msg> {
    let m = m.map_err(|e| Error::sys(format!("reading from {from}"), e))?;
    let text = String::from_utf8_lossy(&m);
    if m.is_empty() {
        return Err(Error::Init(format!(
            "{from} died while setting up the container"
        )));
    }
    if let Some(err) = text.strip_prefix("error ") {
        return Err(Error::Init(err.to_string()));
    }
    if let Some(p) = text.strip_prefix("pid ") {
        return p
            .parse()
            .map(Msg::Pid)
            .map_err(|_| Error::Init(format!("{from} sent a bad pid '{p}'")));
    }
    if text == "ready" {
        return Ok(Msg::Ready);
    }
    if text == "joined" {
        return Ok(Msg::Joined);
    }
    Err(Error::Init(format!("{from} sent '{text}'")))
}

/// What the runtime does for the init from outside: id maps, cgroup (the hierarchies `by_pid`,
/// after the init said it joined the others), oom score.
fn parent_setup(
    plan: &Plan,
    group: &Group<'_>,
    by_pid: &[usize],
    pid: libc::pid_t,
    sock: &std::os::fd::OwnedFd,
) -> Result<()> {
    if plan.new_flags() & libc::CLONE_NEWUSER != 0 {
        for (file, lines, field) in [
            ("uid_map", &plan.uid_map, "linux.uidMappings"),
            ("gid_map", &plan.gid_map, "linux.gidMappings"),
        ] {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, unshare_rs::idmap::format(lines)).map_err(|e| {
                Error::sys_hint(
                    format!("writing {path} ({field})"),
                    e,
                    "the host ids must exist and the ranges must not overlap",
                )
            })?;
        }
    }
    if !plan.cgroup.self_join.is_empty() {
        match message(sys::recv(sock), "the container's init")? {
            Msg::Joined => {}
            _ => {
                return Err(Error::Init(
                    "the container's init did not join its cgroup".into(),
                ))
            }
        }
    }
    group.join_in(pid, by_pid)?;
    if let Some(adj) = plan.process.oom_score_adj {
        let path = format!("/proc/{pid}/oom_score_adj");
        std::fs::write(&path, adj.to_string())
            .map_err(|e| Error::sys(format!("writing {path} (process.oomScoreAdj)"), e))?;
    }
    Ok(())
}

/// The group of a record.
fn group_of<'a>(layout: &'a Layout, r: &Record) -> Option<Group<'a>> {
    Group::new(layout, None, &r.cgroup).ok()
}

/// Whether the record's cgroup is frozen (v1 freezer.state or v2 cgroup.freeze).
fn frozen(layout: &Layout, r: &Record) -> bool {
    let Some(g) = group_of(layout, r) else {
        return false;
    };
    if let Some(d) = g.controller_dir("freezer") {
        if let Ok(s) = std::fs::read_to_string(d.join("freezer.state")) {
            return s.trim() == "FROZEN" || s.trim() == "FREEZING";
        }
    }
    if let Some(h) = layout.v2() {
        if let Ok(s) = std::fs::read_to_string(g.dir(h).join("cgroup.freeze")) {
            return s.trim() == "1";
        }
    }
    false
}

/// The status of a record on this host.
pub fn status_of(root: &Path, r: &Record) -> Status {
    let is_frozen = host_layout().map(|l| frozen(l, r)).unwrap_or(false);
    state::status(root, r, is_frozen)
}

/// `start`: lets the init exec the user's program.
pub fn start(root: &Path, id: &str) -> Result<()> {
    state::check_id(id)?;
    let r = state::require(root, id)?;
    let st = status_of(root, &r);
    if st != Status::Created {
        return Err(Error::state(
            id,
            format!(
                "cannot start a container that is {} (only a created one)",
                st.name()
            ),
        ));
    }
    let fifo_path = state::dir(root, id).join(state::FIFO);
    // The pidfd first: opening the fifo lets the init go, and a short program may have exited
    // and been reaped by its parent (conmon, a shim) before a later pidfd_open.
    let pidfd = nsenter_rs::sys::pidfd_open(r.pid).map_err(|e| {
        Error::state(
            id,
            format!(
                "the container's init (pid {}) is gone before start: {}",
                r.pid,
                errtext(&e)
            ),
        )
    })?;
    let fifo = sys::open(&fifo_path, libc::O_RDONLY | libc::O_NONBLOCK)
        .map_err(|e| Error::sys(format!("open({})", fifo_path.display()), e))?;
    loop {
        let ready = sys::poll_in(&[&fifo, &pidfd], -1)
            .map_err(|e| Error::sys("poll(exec fifo, pidfd)", e))?
            .unwrap_or_default();
        let fifo_ready = ready.first().is_some_and(|r| r & libc::POLLIN != 0);
        if fifo_ready {
            let mut b = [0u8; 1];
            match sys::read(&fifo, &mut b) {
                Ok(1) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                Err(e) => return Err(Error::sys(format!("read({})", fifo_path.display()), e)),
            }
        }
        if ready.get(1).is_some_and(|r| r & libc::POLLIN != 0)
            || !fifo_ready && ready.first().is_some_and(|r| r & libc::POLLHUP != 0)
        {
            return Err(Error::state(
                id,
                "the container's init died before it could exec (see its stderr)",
            ));
        }
    }
    std::fs::remove_file(&fifo_path)
        .map_err(|e| Error::sys(format!("unlink({})", fifo_path.display()), e))?;
    // The init holds its end until it execs (or dies): then the fifo hangs up.
    loop {
        let ready = sys::poll_in(&[&fifo, &pidfd], -1)
            .map_err(|e| Error::sys("poll(exec fifo, pidfd)", e))?
            .unwrap_or_default();
        let hung_up = ready.first().is_some_and(|r| r & libc::POLLHUP != 0);
        let died = ready.get(1).is_some_and(|r| r & libc::POLLIN != 0);
        if hung_up || died {
            break;
        }
        if ready.first().is_some_and(|r| r & libc::POLLIN != 0) {
            // Nothing more is written; drain whatever it is so that poll does not spin.
            let mut b = [0u8; 16];
            if !matches!(sys::read(&fifo, &mut b), Ok(n) if n > 0) {
                break;
            }
        }
    }
    hooks_of(&r, "running", |h| &h.poststart);
    Ok(())
}

/// Runs the record's hooks of one kind, warning on failures (poststart, poststop).
fn hooks_of(
    r: &Record,
    status: &str,
    which: impl Fn(&crate::hooks::Hooks) -> &Vec<crate::hooks::Hook>,
) {
    match crate::hooks::from_json(&r.hooks) {
        Ok(h) => {
            let annotations = serde_json::to_value(&r.annotations).unwrap_or_default();
            let st = crate::hooks::state(&r.id, status, r.pid, &r.bundle, &annotations);
            crate::hooks::run_warning("ocirun", which(&h), &st);
        }
        Err(e) => eprintln!("ocirun: warning: {e}"),
    }
}

/// `kill [--all] ID SIGNAL`.
pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    state::check_id(id)?;
    let r = state::require(root, id)?;
    let st = status_of(root, &r);
    if st == Status::Stopped {
        return Err(Error::state(id, "is not running (stopped)"));
    }
    if all {
        let layout = host_layout()?;
        if let Some(g) = group_of(layout, &r) {
            return g.kill(sig).map_err(Error::from);
        }
    }
    sys::kill(r.pid, sig).map_err(|e| Error::sys(format!("kill({}, {sig})", r.pid), e))
}

/// `delete [--force] ID`.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    state::check_id(id)?;
    let dir = state::dir(root, id);
    let r = match state::load(root, id) {
        Loaded::Missing if force => return Ok(()),
        Loaded::Ready(r) => r,
        Loaded::Creating | Loaded::Corrupt(_) if force => {
            if let Ok(name) = std::fs::read_to_string(dir.join(state::CGROUP)) {
                let layout = host_layout()?;
                if let Ok(g) = Group::new(layout, None, name.trim()) {
                    if !g.existing().is_empty() {
                        g.kill(libc::SIGKILL)?;
                        g.delete(false)?;
                    }
                }
                remove_default_parent(layout, id, name.trim());
            }
            return std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::sys(format!("removing {}", dir.display()), e));
        }
        _ => return state::require(root, id).map(|_| ()),
    };
    let layout = host_layout()?;
    let group = group_of(layout, &r).filter(|g| !g.existing().is_empty());
    let st = state::status(root, &r, frozen(layout, &r));
    // The spec: deleting a container that is not stopped is an error (a created one too).
    if st != Status::Stopped && !force {
        return Err(Error::state(
            id,
            format!("is {} (stop it first, or use delete --force)", st.name()),
        ));
    }
    if st != Status::Stopped {
        if let Some(g) = &group {
            g.kill(libc::SIGKILL)?;
        }
        let _ = sys::kill(r.pid, libc::SIGKILL);
        if st == Status::Paused {
            if let Some(g) = &group {
                let _ = g.set_frozen(false);
            }
        }
        wait_gone(r.pid, Some(r.start_time));
    }
    if let Some(g) = &group {
        // What the container left behind (its own children outlive it without a pid namespace).
        g.kill(libc::SIGKILL)?;
        g.delete(false)?;
    }
    remove_default_parent(layout, id, &r.cgroup);
    std::fs::remove_dir_all(&dir)
        .map_err(|e| Error::sys(format!("removing {}", dir.display()), e))?;
    hooks_of(&r, "stopped", |h| &h.poststop);
    Ok(())
}

/// Removes the shared parent of default cgroups when this container's was the last in it, so
/// that no `ocirun/` stays behind once every container is deleted.
fn remove_default_parent(layout: &Layout, id: &str, cgroup: &str) {
    if cgroup == config::default_cgroup(id) {
        if let Ok(p) = Group::new(layout, None, config::DEFAULT_CGROUP_PARENT) {
            p.remove_if_unused();
        }
    }
}

/// `pause` / `resume`.
pub fn set_paused(root: &Path, id: &str, paused: bool) -> Result<()> {
    state::check_id(id)?;
    let r = state::require(root, id)?;
    let st = status_of(root, &r);
    let ok = if paused {
        st == Status::Running || st == Status::Created
    } else {
        st == Status::Paused
    };
    if !ok {
        return Err(Error::state(
            id,
            format!(
                "cannot {} a container that is {}",
                if paused { "pause" } else { "resume" },
                st.name()
            ),
        ));
    }
    let layout = host_layout()?;
    let g = Group::new(layout, None, &r.cgroup)?;
    g.set_frozen(paused).map_err(Error::from)
}

/// `state ID`: the JSON.
pub fn state_json(root: &Path, id: &str) -> Result<serde_json::Value> {
    state::check_id(id)?;
    if let Loaded::Creating = state::load(root, id) {
        return Ok(state::creating_json(id));
    }
    let r = state::require(root, id)?;
    Ok(state::state_json(&r, status_of(root, &r)))
}

/// `list`: every container under `root`, by id.
pub fn list(root: &Path) -> Result<Vec<serde_json::Value>> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::sys(format!("reading {}", root.display()), e)),
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| state::check_id(id).is_ok())
        .collect();
    ids.sort();
    Ok(ids
        .iter()
        .filter_map(|id| match state::load(root, id) {
            Loaded::Ready(r) => Some(state::state_json(&r, status_of(root, &r))),
            Loaded::Creating => Some(state::creating_json(id)),
            _ => None,
        })
        .collect())
}

/// `run`: create, start, wait; the container's outcome, after deleting it. With `detach`,
/// returns after start.
pub fn run(
    root: &Path,
    o: &CreateOpts,
    detach: bool,
) -> Result<Option<conventions::exit::Outcome>> {
    // One handshake: the init execs once it is set up (no exec fifo), then poststart.
    let pid = create_as(root, o, !detach, true)?;
    match state::require(root, &o.id) {
        Ok(r) => hooks_of(&r, "running", |h| &h.poststart),
        Err(e) => {
            let _ = delete(root, &o.id, true);
            return Err(e);
        }
    }
    if detach {
        return Ok(None);
    }
    let signals = [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ];
    let outcome =
        conventions::child::wait_relaying(pid, &signals, conventions::child::Disposition::Forward)
            .map_err(|e| Error::sys(format!("waitpid({pid})"), e))?;
    delete(root, &o.id, true)?;
    Ok(Some(outcome))
}

/// `ps`: the host pids in the container's cgroup.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    state::check_id(id)?;
    let r = state::require(root, id)?;
    let layout = host_layout()?;
    Ok(group_of(layout, &r).map(|g| g.procs()).unwrap_or_default())
}

/// `update --resources FILE|-`: new limits (a linux.resources object) written into the
/// container's cgroup, with config.json's refusals and JSON paths.
pub fn update(root: &Path, id: &str, resources: &Path) -> Result<()> {
    state::check_id(id)?;
    let r = state::require(root, id)?;
    if status_of(root, &r) == Status::Stopped {
        return Err(Error::state(
            id,
            "cannot update a container that is stopped",
        ));
    }
    let shown = resources.display().to_string();
    let text = if shown == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
            .map_err(|e| Error::sys("reading --resources from stdin", e))?;
        t
    } else {
        std::fs::read_to_string(resources)
            .map_err(|e| Error::sys(format!("reading --resources {shown}"), e))?
    };
    let wrap = |e: Error| Error::Usage(format!("--resources {shown}: {e}"));
    let v = config::parse(&text).map_err(wrap)?;
    config::check(&serde_json::json!({"ociVersion": "1.0.0", "linux": {"resources": v.clone()}}))
        .map_err(wrap)?;
    let typed: oci_spec::runtime::LinuxResources = serde_path_to_error::deserialize(v)
        .map_err(|e| Error::Usage(format!("--resources {shown}: {}: {}", e.path(), e.inner())))?;
    let layout = host_layout()?;
    let route = |c: &str| layout.route_version(c);
    let writes = config::resource_writes(Some(&typed), &[], &route).map_err(wrap)?;
    let g = Group::new(layout, None, &r.cgroup)?;
    g.apply(&writes).map_err(Error::from)
}
