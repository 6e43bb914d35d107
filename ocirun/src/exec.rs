//! `exec`: another process in a running container: the init's namespaces joined (files opened
//! first, user namespace first), the container's cgroup and seccomp filter, and the process given
//! by `--process FILE` or by argv over the container's own config.

use conventions::output::errtext;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use cgctl::group::Group;
use serde_json::json;

use crate::config::{self, Process};
use crate::error::{Error, Result};
use crate::state::{self, Status};
use crate::sys;

/// `exec`'s options.
#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    /// A JSON file with an OCI process object.
    pub process_file: Option<PathBuf>,
    /// argv instead (over the container's config.json process).
    pub args: Vec<String>,
    /// Return once the process runs.
    pub detach: bool,
    /// Write its host pid here.
    pub pid_file: Option<PathBuf>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// `NAME=VALUE` to add or replace.
    pub env: Vec<String>,
    /// `UID[:GID]`.
    pub user: Option<String>,
    /// A pty (as process.terminal).
    pub tty: bool,
    /// Where its master goes.
    pub console_socket: Option<PathBuf>,
}

/// The process an exec runs, checked: the file's, or the config's with argv and the flags.
pub fn process(
    root: &Path,
    bundle: &Path,
    o: &ExecOpts,
) -> Result<(Process, Option<privs::seccomp::Bpf>)> {
    let cfg = config::read(bundle)?;
    config::check(&cfg)?;
    let spec = config::typed(cfg)?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => crate::seccomp::compile_cached(root, s)?.0,
        None => None,
    };
    let mut p = match &o.process_file {
        Some(file) => {
            let shown = file.display().to_string();
            let text = std::fs::read_to_string(file)
                .map_err(|e| Error::sys(format!("reading --process {shown}"), e))?;
            let v = config::parse(&text)
                .map_err(|e| Error::Usage(format!("--process {shown}: {e}")))?;
            // The same refusals as config.json's process.
            config::check(&json!({"ociVersion": "1.0.0", "process": v.clone()}))
                .map_err(|e| Error::Usage(format!("--process {shown}: {e}")))?;
            let typed: oci_spec::runtime::Process =
                serde_path_to_error::deserialize(v).map_err(|e| {
                    Error::Usage(format!("--process {shown}: {}: {}", e.path(), e.inner()))
                })?;
            config::process_of(&typed)
                .map_err(|e| Error::Usage(format!("--process {shown}: {e}")))?
        }
        None => {
            let base = spec
                .process()
                .as_ref()
                .ok_or_else(|| Error::config("process", "missing"))?;
            let mut p = config::process_of(base)?;
            if o.args.is_empty() {
                return Err(Error::Usage(
                    "exec needs a COMMAND or --process FILE".to_string(),
                ));
            }
            p.args = o.args.clone();
            p
        }
    };
    if let Some(cwd) = &o.cwd {
        if !cwd.is_absolute() {
            return Err(Error::Usage(format!(
                "--cwd {}: must be an absolute path",
                cwd.display()
            )));
        }
        p.cwd = cwd.clone();
    }
    for e in &o.env {
        let Some((k, _)) = e.split_once('=') else {
            return Err(Error::Usage(format!("--env {e}: must be NAME=VALUE")));
        };
        p.env
            .retain(|x| x.split_once('=').map(|(n, _)| n) != Some(k));
        p.env.push(e.clone());
    }
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| Error::Usage(format!("--user {u}: UID[:GID] as numbers")))
        };
        p.uid = num(uid)?;
        if let Some(g) = gid {
            p.gid = num(g)?;
        }
    }
    p.terminal |= o.tty;
    Ok((p, seccomp))
}

/// Runs `exec`: the process's outcome, or `None` with `detach`.
pub fn exec(root: &Path, id: &str, o: &ExecOpts) -> Result<Option<conventions::exit::Outcome>> {
    state::check_id(id)?;
    let r = state::require(root, id)?;
    let st = crate::lifecycle::status_of(root, &r);
    if !matches!(st, Status::Running | Status::Created) {
        return Err(Error::state(
            id,
            format!("cannot exec in a container that is {}", st.name()),
        ));
    }
    let (p, seccomp) = process(root, &r.bundle, o)?;
    crate::console::check(p.terminal, o.console_socket.as_deref(), "exec")?;
    let console = match &o.console_socket {
        Some(path) => Some(crate::console::connect(path)?),
        None => None,
    };
    // Every namespace of the init that is not ours, files opened before the first join.
    let mut joins = Vec::new();
    for kind in conventions::ns::ALL {
        let theirs = format!("/proc/{}/ns/{}", r.pid, kind.proc_name);
        let ours = format!("/proc/self/ns/{}", kind.proc_name);
        let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
            continue;
        };
        if a.ino() == b.ino() && a.dev() == b.dev() {
            continue;
        }
        let fd = sys::open(Path::new(&theirs), libc::O_RDONLY)
            .map_err(|e| Error::sys(format!("open({theirs})"), e))?;
        joins.push((kind, fd));
    }
    let layout = crate::lifecycle::host_layout()?;
    let group = Group::new(layout, None, &r.cgroup)?;
    let (ours, theirs) =
        sys::seqpacket_pair().map_err(|e| Error::sys("socketpair(AF_UNIX, SOCK_SEQPACKET)", e))?;
    if !o.detach {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    // SAFETY: ocirun is single-threaded.
    let a = unsafe { sys::clone_fork(0) }.map_err(|e| Error::sys("fork()", e))?;
    if a == 0 {
        drop(ours);
        child(&joins, &p, seccomp.as_ref(), &theirs, console.as_ref());
    }
    drop(theirs);
    drop(console);
    let first = sys::recv(&ours);
    let _ = sys::waitpid(a);
    let m = first.map_err(|e| Error::sys("reading from the exec'd process", e))?;
    let text = String::from_utf8_lossy(&m).to_string();
    let pid: libc::pid_t = match text.strip_prefix("pid ").and_then(|p| p.parse().ok()) {
        Some(p) => p,
        None => {
            return Err(Error::Init(
                text.strip_prefix("error ")
                    .unwrap_or("the exec'd process died while joining the container")
                    .to_string(),
            ))
        }
    };
    let kill_it = |e: Error| {
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = sys::waitpid(pid);
        e
    };
    group.join(pid).map_err(|e| kill_it(e.into()))?;
    if let Some(f) = &o.pid_file {
        std::fs::write(f, pid.to_string())
            .map_err(|e| kill_it(Error::sys(format!("writing --pid-file {}", f.display()), e)))?;
    }
    sys::send(&ours, b"go").map_err(|e| kill_it(Error::sys("sending go", e)))?;
    // Nothing more comes when it exec'd (the socket closes on exec); an error otherwise.
    let m = sys::recv(&ours).unwrap_or_default();
    if let Some(err) = String::from_utf8_lossy(&m).strip_prefix("error ") {
        return Err(kill_it(Error::Init(err.to_string())));
    }
    if o.detach {
        return Ok(None);
    }
    let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];
    conventions::child::wait_relaying(pid, &signals, conventions::child::Disposition::Forward)
        .map(Some)
        .map_err(|e| Error::sys(format!("waitpid({pid})"), e))
}

/// The forked child: joins, forks the process (so that a joined pid namespace applies), sends
/// its pid and exits; the process waits for go, sets itself up and execs.
fn child(
    joins: &[(conventions::ns::NsKind, std::os::fd::OwnedFd)],
    p: &Process,
    seccomp: Option<&privs::seccomp::Bpf>,
    sock: &std::os::fd::OwnedFd,
    console: Option<&std::os::fd::OwnedFd>,
) -> ! {
    let fail = |msg: String| -> ! {
        let _ = sys::send(sock, format!("error {msg}").as_bytes());
        sys::exit_now(1)
    };
    for (kind, fd) in joins {
        if let Err(e) = nsenter_rs::sys::setns(fd, kind.flag) {
            fail(format!(
                "setns into the container's {} namespace failed: {}",
                kind.proc_name,
                errtext(&e)
            ));
        }
    }
    // SAFETY: this process is a fork of the single-threaded ocirun.
    let pid = match unsafe { sys::clone_fork(0) } {
        Ok(pid) => pid,
        Err(e) => fail(format!("fork() failed: {}", errtext(&e))),
    };
    if pid > 0 {
        let _ = sys::send(sock, format!("pid {pid}").as_bytes());
        sys::exit_now(0);
    }
    match sys::recv(sock) {
        Ok(m) if m == b"go" => {}
        _ => sys::exit_now(1),
    }
    if let (true, Some(c)) = (p.terminal, console) {
        if let Err(e) = crate::console::take_terminal(c, p.console_size, false) {
            fail(e.to_string());
        }
    }
    let argv = match crate::init::process(p, seccomp, 0) {
        Ok(a) => a,
        Err(e) => fail(e.to_string()),
    };
    if p.no_new_privileges {
        if let Some(prog) = seccomp {
            if let Err(e) = prog.install() {
                fail(format!(
                    "installing the seccomp filter failed: {}",
                    errtext(&e)
                ));
            }
        }
    }
    let (msg, code) = conventions::exec::execvp(&argv);
    let _ = sys::send(sock, format!("error process.args[0]: {msg}").as_bytes());
    sys::exit_now(code)
}
