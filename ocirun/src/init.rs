//! The container's side of create: the intermediate process that joins namespaces by path and
//! clones the init into the new ones, and the init that sets itself up completely, reports
//! ready, and waits on the exec fifo until `start` before it execs the user's program.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use crate::config::{CapSets, Plan, Process};
use crate::error::{Error, Result};
use crate::sys;
use conventions::output::errtext;

/// Runs in the forked intermediate process: joins the namespaces given by path, makes a time
/// namespace if asked, clones the init with the other new namespaces, sends its pid and exits.
pub fn intermediate(
    plan: &Plan,
    sock: &OwnedFd,
    state_dir: &OwnedFd,
    console: Option<&OwnedFd>,
) -> ! {
    let pid = match join_and_clone(plan) {
        Ok(0) => init(plan, sock, state_dir, console),
        Ok(pid) => pid,
        Err(e) => {
            let _ = sys::send(sock, format!("error {e}").as_bytes());
            sys::exit_now(1)
        }
    };
    let _ = sys::send(sock, format!("pid {pid}").as_bytes());
    sys::exit_now(0)
}

fn join_and_clone(plan: &Plan) -> Result<libc::pid_t> {
    // Every file is opened before the first join: a joined mount namespace hides the paths.
    let mut fds = Vec::new();
    for n in &plan.namespaces {
        if let Some(p) = &n.path {
            let fd = sys::open(p, libc::O_RDONLY).map_err(|e| {
                Error::sys_hint(
                    format!(
                        "open({}) (linux.namespaces {} path)",
                        p.display(),
                        n.kind.proc_name
                    ),
                    e,
                    "the path must be a namespace file such as /proc/PID/ns/NAME",
                )
            })?;
            fds.push((n, fd));
        }
    }
    for (n, fd) in &fds {
        nsenter_rs::sys::setns(fd, n.kind.flag).map_err(|e| {
            Error::sys_hint(
                format!(
                    "setns({}, CLONE_NEW{}) (linux.namespaces {} path)",
                    n.path.as_deref().unwrap_or(Path::new("")).display(),
                    n.kind.proc_name.to_uppercase(),
                    n.kind.proc_name
                ),
                e,
                "the file must be a namespace of that type",
            )
        })?;
    }
    let mut flags = plan.new_flags();
    if flags & conventions::ns::CLONE_NEWTIME != 0 {
        // clone(2) cannot take CLONE_NEWTIME (its bits are the exit signal's): unshare it for
        // the children, set the offsets before anyone enters, then clone.
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
            conventions::ns::CLONE_NEWTIME,
        ))
        .map_err(|e| Error::sys("unshare(CLONE_NEWTIME)", std::io::Error::from(e)))?;
        if !plan.time_offsets.is_empty() {
            let text: String = plan
                .time_offsets
                .iter()
                .map(|(clock, s, ns)| format!("{clock} {s} {ns}\n"))
                .collect();
            std::fs::write("/proc/self/timens_offsets", text).map_err(|e| {
                Error::sys("writing /proc/self/timens_offsets (linux.timeOffsets)", e)
            })?;
        }
        flags &= !conventions::ns::CLONE_NEWTIME;
    }
    // The cgroup namespace comes after the cgroup join: the init unshares it (see init).
    flags &= !libc::CLONE_NEWCGROUP;
    // SAFETY: this process is a fork of the single-threaded ocirun.
    unsafe { clone_with(flags) }
}

/// clone(2) with the new namespaces' flags, the error naming them.
///
/// # Safety
/// The caller must be single-threaded.
unsafe fn clone_with(flags: libc::c_int) -> Result<libc::pid_t> {
    // SAFETY: the caller is single-threaded.
    unsafe { sys::clone_fork(flags) }.map_err(|e| {
        Error::sys_hint(
            format!("clone({})", conventions::ns::flag_names(flags)),
            e,
            "the kernel refused a namespace: see linux.namespaces",
        )
    })
}

/// Whether the init can be cloned by ocirun itself: nothing is joined by path and there is no
/// time namespace to unshare first, so no intermediate process is needed (one fork, one exit
/// and one message less per container).
pub fn direct(plan: &Plan) -> bool {
    plan.namespaces.iter().all(|n| n.path.is_none())
        && plan.new_flags() & conventions::ns::CLONE_NEWTIME == 0
}

/// Clones the init straight from the (single-threaded) runtime, for a [`direct`] plan: the
/// child becomes the init and never returns; the parent gets its pid. With `cgroup` (a v2
/// group's directory) the init starts inside that group where the kernel can do that (clone3);
/// the second value says whether it did.
///
/// # Safety
/// The caller must be single-threaded.
pub unsafe fn clone_init(
    plan: &Plan,
    sock: &OwnedFd,
    runtime_end: &OwnedFd,
    state_dir: &OwnedFd,
    console: Option<&OwnedFd>,
    cgroup: Option<&OwnedFd>,
) -> Result<(libc::pid_t, bool)> {
    // The cgroup namespace comes after the cgroup join: the init unshares it (see init).
    let flags = plan.new_flags() & !libc::CLONE_NEWCGROUP;
    // SAFETY: the caller is single-threaded.
    let into = cgroup
        .and_then(|fd| unsafe { conventions::spawn::fork_into_cgroup(flags, fd.as_raw_fd()) }.ok());
    let (pid, in_cgroup) = match into {
        Some(pid) => (pid, true),
        // No clone3 here, or a group it will not start a process in: the runtime joins the
        // init by pid, and says why if that fails too.
        // SAFETY: the caller is single-threaded.
        None => (unsafe { clone_with(flags) }?, false),
    };
    match pid {
        0 => {
            // The runtime's end of the pair: the init must see EOF when the runtime dies.
            // SAFETY: closing a descriptor of this copy of the process; the OwnedFd is never
            // dropped here (init does not return).
            unsafe { libc::close(runtime_end.as_raw_fd()) };
            init(plan, sock, state_dir, console)
        }
        pid => Ok((pid, in_cgroup)),
    }
}

/// The init: joins the v1 hierarchies of its cgroup itself where the plan says so, waits for
/// the parent's go (maps written, the other hierarchies joined), unshares the cgroup
/// namespace, sets everything up, reports ready, blocks on the exec fifo, execs. Never returns.
fn init(plan: &Plan, sock: &OwnedFd, state_dir: &OwnedFd, console: Option<&OwnedFd>) -> ! {
    if !plan.cgroup.self_join.is_empty() {
        for tasks in &plan.cgroup.self_join {
            if let Err(e) = std::fs::write(tasks, "0") {
                let _ = sys::send(
                    sock,
                    format!(
                        "error joining the cgroup (linux.cgroupsPath): writing 0 to {}: {}",
                        tasks.display(),
                        errtext(&e)
                    )
                    .as_bytes(),
                );
                sys::exit_now(1);
            }
        }
        if sys::send(sock, b"joined").is_err() {
            sys::exit_now(1);
        }
    }
    // `go STATE` waits on the exec fifo for `start`; `run STATE` (ocirun run) execs at once.
    let (hook_state, wait_for_start): (serde_json::Value, bool) = match sys::recv(sock) {
        Ok(m) if m.starts_with(b"go ") => {
            (serde_json::from_slice(&m[3..]).unwrap_or_default(), true)
        }
        Ok(m) if m.starts_with(b"run ") => {
            (serde_json::from_slice(&m[4..]).unwrap_or_default(), false)
        }
        _ => sys::exit_now(1),
    };
    if plan.new_flags() & libc::CLONE_NEWCGROUP != 0 {
        // Only now, with every hierarchy joined (by the runtime too, before go), so that the
        // namespace's root is the container's own cgroup, as runc does.
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP) {
            let _ = sys::send(
                sock,
                format!(
                    "error unshare(CLONE_NEWCGROUP) (linux.namespaces cgroup): {}",
                    errtext(&std::io::Error::from(e))
                )
                .as_bytes(),
            );
            sys::exit_now(1);
        }
    }
    let argv = match setup(plan, &hook_state, console) {
        Ok(argv) => argv,
        Err(e) => {
            let _ = sys::send(sock, format!("error {e}").as_bytes());
            sys::exit_now(1)
        }
    };
    if sys::send(sock, b"ready").is_err() {
        sys::exit_now(1);
    }
    if wait_for_start {
        // Blocks until `start` opens the fifo for reading; the directory fd reaches it from
        // inside the new root.
        let fifo = match sys::openat(state_dir, crate::state::FIFO, libc::O_WRONLY) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("ocirun: opening the exec fifo failed: {}", errtext(&e));
                sys::exit_now(1)
            }
        };
        if sys::write_all(&fifo, b"0").is_err() {
            sys::exit_now(1);
        }
        // Kept open (close-on-exec) until the exec: `start` returns when it closes, so a
        // signal sent right after start reaches the program, not the init before it.
        std::mem::forget(fifo);
    }
    if !plan.hooks.start_container.is_empty() {
        let mut st = hook_state.clone();
        st["status"] = "created".into();
        if let Err(e) = crate::hooks::run(&plan.hooks.start_container, &st) {
            eprintln!("ocirun: {e}");
            sys::exit_now(1);
        }
    }
    if plan.process.no_new_privileges {
        // As late as can be: nothing but execve runs under the filter.
        if let Some(prog) = &plan.seccomp {
            if let Err(e) = prog.install() {
                eprintln!(
                    "ocirun: installing the seccomp filter failed: {}",
                    errtext(&e)
                );
                sys::exit_now(1);
            }
        }
    }
    // A missing program is the container's failure after start, as the conformance suite
    // wants (a bundle may be created before its program is put in place).
    let (msg, code) = conventions::exec::execvp(&argv);
    eprintln!("ocirun: process.args[0]: {msg}");
    sys::exit_now(code)
}

fn setup(
    plan: &Plan,
    hook_state: &serde_json::Value,
    console: Option<&OwnedFd>,
) -> Result<Vec<OsString>> {
    if plan.new_flags() & libc::CLONE_NEWUSER != 0 && plan.uid_map.iter().any(|r| r.inner == 0) {
        // Root of the new user namespace, so that the set-up's files are owned by it.
        conventions::ids::switch_to(Some(0), Some(0), false).map_err(Error::Init)?;
    }
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h)
            .map_err(|e| Error::sys(format!("sethostname({h}) (hostname)"), e.into()))?;
    }
    if let Some(d) = &plan.domainname {
        // SAFETY: the pointer and length describe `d`'s bytes.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        if r != 0 {
            return Err(Error::sys(
                format!("setdomainname({d}) (domainname)"),
                std::io::Error::last_os_error(),
            ));
        }
    }
    for (k, v) in &plan.sysctl {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v)
            .map_err(|e| Error::sys(format!("writing {path} (linux.sysctl.{k})"), e))?;
    }
    // In the container's namespaces, while the runtime's paths still resolve.
    crate::hooks::run(&plan.hooks.create_container, hook_state)?;
    pivot::spec::setup("ocirun", &plan.root)?;
    // In the new root, so that the pty is the container's devpts's.
    if let (true, Some(sock)) = (plan.process.terminal, console) {
        crate::console::take_terminal(sock, plan.process.console_size, true)?;
    }
    process(&plan.process, plan.seccomp.as_ref(), plan.preserve_fds)
}

/// Applies a process's settings to this process (cwd, rlimits, umask, env, seccomp without
/// no_new_privs, user, capabilities, no_new_privs); returns its argv. Shared with `exec`.
pub fn process(
    p: &Process,
    seccomp: Option<&privs::seccomp::Bpf>,
    preserve_fds: u32,
) -> Result<Vec<OsString>> {
    // Before the seccomp filter, which may not allow close_range.
    sys::cloexec_from(3 + preserve_fds)
        .map_err(|e| Error::sys("marking inherited descriptors close-on-exec", e))?;
    std::env::set_current_dir(&p.cwd).map_err(|e| {
        Error::sys_hint(
            format!("chdir({}) (process.cwd)", p.cwd.display()),
            e,
            "process.cwd must be a directory inside the container",
        )
    })?;
    for &(res, soft, hard) in &p.rlimits {
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `lim` is a valid rlimit.
        if unsafe { libc::setrlimit(res as _, &lim) } != 0 {
            return Err(Error::sys_hint(
                format!("setrlimit({res}, {soft}, {hard}) (process.rlimits)"),
                std::io::Error::last_os_error(),
                "raising a hard limit needs CAP_SYS_RESOURCE",
            ));
        }
    }
    if let Some(m) = p.umask {
        // SAFETY: umask has no preconditions.
        unsafe { libc::umask(m as libc::mode_t) };
    }
    for (k, _) in std::env::vars_os() {
        std::env::remove_var(k);
    }
    for e in &p.env {
        if let Some((k, v)) = e.split_once('=') {
            if !k.is_empty() {
                std::env::set_var(k, v);
            }
        }
    }
    let argv: Vec<OsString> = p.args.iter().map(OsString::from).collect();
    if !p.no_new_privileges {
        // Without no_new_privs installing a filter needs CAP_SYS_ADMIN: before the capabilities
        // are dropped.
        if let Some(prog) = seccomp {
            prog.install()
                .map_err(|e| Error::sys("seccomp(SECCOMP_SET_MODE_FILTER) (linux.seccomp)", e))?;
        }
    }
    user_and_caps(p)?;
    if p.no_new_privileges {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Error::sys(
                "prctl(PR_SET_NO_NEW_PRIVS) (process.noNewPrivileges)",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(argv)
}

fn user_and_caps(p: &Process) -> Result<()> {
    let groups: Vec<nix::unistd::Gid> = p
        .additional_gids
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    // setgroups fails in a user namespace whose setgroups file says deny; only ask when needed.
    if !groups.is_empty()
        || nix::unistd::getgroups()
            .map(|g| !g.is_empty())
            .unwrap_or(false)
    {
        nix::unistd::setgroups(&groups)
            .map_err(|e| Error::sys("setgroups (process.user.additionalGids)", e.into()))?;
    }
    let Some(c) = &p.caps else {
        return conventions::ids::switch_to(Some(p.uid), Some(p.gid), false)
            .map_err(|e| Error::Init(format!("process.user: {e}")));
    };
    let caps_error = |e: privs::Error| Error::Init(format!("process.capabilities: {e}"));
    // The bounding set while CAP_SETPCAP is still effective (the uid change clears it).
    if let Some(b) = &c.bounding {
        privs::caps::limit_bounding(&b.iter().copied().collect()).map_err(caps_error)?;
    }
    // Keep the permitted set across the uid change; the sets are set from the config after.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    conventions::ids::switch_to(Some(p.uid), Some(p.gid), false)
        .map_err(|e| Error::Init(format!("process.user: {e}")))?;
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    let sets = sets_of(c).map_err(caps_error)?;
    privs::caps::apply_sets(&sets).map_err(caps_error)
}

/// The OCI sets as privs applies them: a set the config leaves out stays as it is (the
/// effective one follows the permitted one).
fn sets_of(c: &CapSets) -> std::result::Result<privs::caps::Sets, privs::Error> {
    use privs::caps::{read, CapSet, CapsHashSet};
    let given = |v: &Option<Vec<privs::Capability>>,
                 set: CapSet|
     -> std::result::Result<CapsHashSet, privs::Error> {
        match v {
            Some(l) => Ok(l.iter().copied().collect()),
            None => read(set),
        }
    };
    let permitted = given(&c.permitted, CapSet::Permitted)?;
    Ok(privs::caps::Sets {
        bounding: given(&c.bounding, CapSet::Bounding)?,
        effective: match &c.effective {
            Some(l) => l.iter().copied().collect(),
            None => permitted.clone(),
        },
        inheritable: given(&c.inheritable, CapSet::Inheritable)?,
        ambient: given(&c.ambient, CapSet::Ambient)?,
        permitted,
    })
}
