//! The half of unshare-rs that makes syscalls: it checks what can be checked before anything is
//! created, then walks the plan's steps in util-linux's order.

use crate::error::{self, Error};
use crate::idmap::{self, MapSpec, Range};
use crate::persist::{self, Target};
use crate::plan::{Caller, Plan, ReportTo, Setgroups, Step};
use conventions::exit::Outcome;
use conventions::ns::{self, NsKind, Proc};
use std::convert::Infallible;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

/// A one-way channel (read end, write end), close-on-exec so that the program never inherits
/// it. A socket pair rather than a pipe, so that a write to a peer that died fails with EPIPE
/// (MSG_NOSIGNAL) instead of killing us with SIGPIPE, which the program needs at its default.
fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the valid array.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(Error::last("socketpair(AF_UNIX) failed", ""));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads one byte; false on end of file or error (the other side is gone).
fn read_byte(fd: RawFd) -> bool {
    let mut b = [0u8; 1];
    loop {
        // SAFETY: reads at most one byte into a valid local buffer.
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
        if n == 1 {
            return true;
        }
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return false;
    }
}

fn write_byte(fd: RawFd) -> bool {
    // SAFETY: sends one byte from a valid static buffer.
    unsafe { libc::send(fd, b"g".as_ptr().cast(), 1, libc::MSG_NOSIGNAL) == 1 }
}

/// The child that SIGINT/SIGTERM go to until conventions::child takes over.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_early(sig: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; pid is our own child.
        unsafe { libc::kill(pid, sig) };
    }
}

/// fork(2); returns 0 in the child.
fn fork() -> Result<libc::pid_t, Error> {
    // SAFETY: unshare-rs is single-threaded, so the child may run arbitrary code after fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last("fork() failed", ""));
    }
    Ok(pid)
}

/// Leaves the process at once, without running destructors or flushing buffers twice.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(code) }
}

/// A helper process forked before unshare(2), so that it stays in the old namespaces, which
/// waits until told to do its work.
struct Helper {
    pid: libc::pid_t,
    go: Option<OwnedFd>,
}

impl Helper {
    fn spawn(tool: &str, work: impl FnOnce() -> Result<(), Error>) -> Result<Helper, Error> {
        let (r, w) = pipe()?;
        let pid = fork()?;
        if pid == 0 {
            drop(w);
            if !read_byte(r.as_raw_fd()) {
                // The main process gave up before the helper was needed.
                exit_now(0);
            }
            match work() {
                Ok(()) => exit_now(0),
                Err(e) => {
                    conventions::errln!("{tool}: {e}");
                    exit_now(1)
                }
            }
        }
        drop(r);
        Ok(Helper { pid, go: Some(w) })
    }

    /// Lets the helper work and waits for it; its own message was printed if it failed.
    fn sync(mut self) -> Result<(), Error> {
        let go = self.go.take();
        if let Some(fd) = &go {
            write_byte(fd.as_raw_fd());
        }
        drop(go);
        let pid = std::mem::replace(&mut self.pid, 0);
        match conventions::exit::wait(pid) {
            Ok(Outcome::Exited(0)) => Ok(()),
            Ok(_) => Err(Error::Reported),
            Err(e) => Err(Error::io(format!("waitpid({pid}) failed"), e, "")),
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // Closing the pipe tells a waiting helper to leave without working.
        self.go = None;
        if self.pid > 0 {
            let _ = conventions::exit::wait(self.pid);
        }
    }
}

/// The persistence helper: forked before unshare(2), so that it stays in the old namespaces, it
/// binds the namespace files when told and then stays until the run either gets to exec the
/// program or fails, when it unmounts them again: a failed run leaves nothing behind. Its
/// channel is close-on-exec, so a forked child's exec also tells it to keep the binds.
struct BindHelper {
    /// Its pid, 0 in a forked child (whose parent reaps it).
    pid: libc::pid_t,
    /// Our end of the socket pair; a forked child holds a copy.
    chan: Option<OwnedFd>,
}

impl BindHelper {
    fn spawn(tool: &str, pid: libc::pid_t, targets: Vec<Target>) -> Result<BindHelper, Error> {
        let (ours, theirs) = pipe()?;
        let helper = fork()?;
        if helper == 0 {
            drop(ours);
            let fd = theirs.as_raw_fd();
            if !read_byte(fd) {
                exit_now(0);
            }
            if let Err(e) = persist::bind_all(pid, &targets) {
                conventions::errln!("{tool}: {e}");
                exit_now(1);
            }
            write_byte(fd);
            // A byte asks for the undo; the end of the stream keeps the binds.
            if read_byte(fd) {
                persist::unbind_all(&targets);
            }
            exit_now(0);
        }
        drop(theirs);
        Ok(BindHelper {
            pid: helper,
            chan: Some(ours),
        })
    }

    /// Lets the helper bind and waits until it has: Err(Reported) when it failed (it said why
    /// and undid its partial work).
    fn bind(&self) -> Result<(), Error> {
        let fd = self
            .chan
            .as_ref()
            .map(|c| c.as_raw_fd())
            .ok_or(Error::Reported)?;
        if write_byte(fd) && read_byte(fd) {
            Ok(())
        } else {
            Err(Error::Reported)
        }
    }

    /// Asks the helper to unmount the binds, and waits until it has.
    fn undo(&mut self) {
        if let Some(c) = self.chan.take() {
            if write_byte(c.as_raw_fd()) {
                // It closes its end when it is done.
                while read_byte(c.as_raw_fd()) {}
            }
        }
        self.reap();
    }

    /// Lets go of our end: the binds stay once no copy of it is left (a forked child's goes
    /// at its exec).
    fn release(&mut self) {
        self.chan = None;
    }

    /// Waits for the helper to end (after [`BindHelper::release`] or [`BindHelper::undo`]).
    fn reap(&mut self) {
        let pid = std::mem::replace(&mut self.pid, 0);
        if pid > 0 {
            self.chan = None;
            let _ = conventions::exit::wait(pid);
        }
    }
}

impl Drop for BindHelper {
    fn drop(&mut self) {
        self.reap();
    }
}

/// Whether execvp would find `prog` and may execute it, so that the persistence helper can be
/// let go (and reaped: the program must not inherit it as a child) just before the exec.
fn runnable(prog: &std::ffi::OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let ok = |p: &Path| {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: access reads the valid C string.
        p.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
    };
    if prog.as_bytes().contains(&b'/') {
        return ok(Path::new(prog));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    std::env::split_paths(&path).any(|d| ok(&d.join(prog)))
}

fn write_file(path: &Path, text: &str, hint: &str) -> Result<(), Error> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io(format!("write {} failed", path.display()), e, hint))
}

/// The sysctl `user.max_user_namespaces` of the reading process's user namespace.
pub const MAX_USER_NAMESPACES: &str = "/proc/sys/user/max_user_namespaces";

/// Whether the kernel can make a namespace of this `-try` type, as bwrap decides: its
/// `/proc/self/ns` file exists, and for a user namespace neither `user.max_user_namespaces` is
/// 0 nor (RHEL 7) the `user_namespace.enable` module parameter `N`.
pub fn kernel_has(flag: libc::c_int) -> bool {
    let Some(kind) = ns::by_flag(flag) else {
        return false;
    };
    if !Path::new("/proc/self/ns").join(kind.proc_name).exists() {
        return false;
    }
    if flag != libc::CLONE_NEWUSER {
        return true;
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    read(MAX_USER_NAMESPACES).trim() != "0"
        && !read("/sys/module/user_namespace/parameters/enable").starts_with('N')
}

const MAP_HINT: &str = "without CAP_SETUID/CAP_SETGID in the parent user namespace only the \
                        caller's own id can be mapped (-r, -c, --map-user); ranges need \
                        newuidmap/newgidmap and /etc/subuid, /etc/subgid entries";

/// The map helper's work: write the range maps of `pid`, directly as root, else through
/// newuidmap/newgidmap as util-linux does for unprivileged callers.
fn write_maps(
    pid: libc::pid_t,
    uid_lines: &[Range],
    gid_lines: &[Range],
    setgroups: Option<Setgroups>,
    privileged: bool,
) -> Result<(), Error> {
    let run = |helper: &str, lines: &[Range]| -> Result<(), Error> {
        let status = std::process::Command::new(helper)
            .arg(pid.to_string())
            .args(idmap::helper_args(lines))
            .status()
            .map_err(|e| {
                Error::io(
                    format!("failed to execute {helper}"),
                    e,
                    "install it (Debian package uidmap) or run as root",
                )
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Failed(format!(
                "{helper} failed ({status}): check /etc/subuid and /etc/subgid"
            )))
        }
    };
    if !uid_lines.is_empty() {
        if privileged {
            let path = format!("/proc/{pid}/uid_map");
            write_file(Path::new(&path), &idmap::format(uid_lines), MAP_HINT)?;
        } else {
            run("newuidmap", uid_lines)?;
        }
    }
    if !gid_lines.is_empty() {
        if let Some(sg) = setgroups {
            let path = format!("/proc/{pid}/setgroups");
            write_file(Path::new(&path), sg.word(), "")?;
        }
        if privileged {
            let path = format!("/proc/{pid}/gid_map");
            write_file(Path::new(&path), &idmap::format(gid_lines), MAP_HINT)?;
        } else {
            run("newgidmap", gid_lines)?;
        }
    }
    Ok(())
}

/// Mounts a binfmt_misc instance on `dir` (nosuid, nodev, noexec, as util-linux does).
fn mount_binfmt(dir: &Path) -> Result<(), Error> {
    use nix::mount::MsFlags;
    nix::mount::mount(
        Some("binfmt_misc"),
        dir,
        Some("binfmt_misc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| {
        let hint = match e {
            nix::errno::Errno::ENODEV => "the kernel has no binfmt_misc (CONFIG_BINFMT_MISC)",
            nix::errno::Errno::EPERM => {
                "a binfmt_misc of its own needs a new user namespace (Linux 6.7+) and the \
                 mount namespace it owns"
            }
            nix::errno::Errno::ENOENT => "the directory must exist (inside a fresh /proc it does)",
            _ => "",
        };
        Error::io(
            format!("mount binfmt_misc on {} failed", dir.display()),
            std::io::Error::from_raw_os_error(e as i32),
            hint,
        )
    })
}

/// Registers the binfmt_misc definition `def` through `dir/register`.
fn load_interp(dir: &Path, def: &std::ffi::OsStr) -> Result<(), Error> {
    use std::os::unix::ffi::OsStrExt;
    let register = dir.join("register");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&register)
        .and_then(|mut f| f.write_all(def.as_bytes()))
        .map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc::EINVAL) => {
                    "the definition is :name:type:offset:magic:mask:interpreter:flags, and with \
                     the F flag the interpreter must exist"
                }
                Some(libc::EEXIST) => "an interpreter of that name is registered already",
                _ => "",
            };
            Error::io(format!("write {} failed", register.display()), e, hint)
        })
}

/// Brings `lo` up with SIOCSIFFLAGS on an AF_INET socket (no `ip` needed).
pub fn lo_up() -> Result<(), Error> {
    // SAFETY: socket has no memory arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::last("socket(AF_INET) failed", ""));
    }
    // SAFETY: fd was just created and is owned here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(Error::last("ioctl(SIOCGIFFLAGS, lo) failed", ""));
    }
    // SAFETY: the kernel filled ifru_flags, the union member SIOCGIFFLAGS uses.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(Error::last(
            "ioctl(SIOCSIFFLAGS, lo up) failed",
            "needs CAP_NET_ADMIN in the network namespace's user namespace",
        ));
    }
    Ok(())
}

/// `NS_GET_MNTNS_ID` (Linux 6.8): the 64-bit id of the mount namespace of an nsfs descriptor.
const NS_GET_MNTNS_ID: libc::c_ulong = 0x8008_b705;

/// The id of our mount namespace, or None on kernels without `NS_GET_MNTNS_ID`.
fn mnt_ns_id() -> Option<u64> {
    let f = File::open("/proc/self/ns/mnt").ok()?;
    let mut id: u64 = 0;
    // SAFETY: NS_GET_MNTNS_ID writes one u64 into the valid local.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_MNTNS_ID, &mut id) };
    (r == 0).then_some(id)
}

/// Makes sure the new mount namespace's id is above the old one's, so that the helper (still in
/// the old namespace) may bind it: the kernel refuses as a possible loop a mount namespace file
/// whose id is not above the binder's, and ids come from per-CPU batches, so a namespace created
/// later on another CPU can get a lower id. Unsharing again on each allowed CPU in turn finds one
/// whose batch is above the old id (the CPU that made it, at least).
fn newer_mount_namespace(old: u64) -> Result<(), Error> {
    if mnt_ns_id().is_none_or(|id| id > old) {
        return Ok(());
    }
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    let mut saved: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: saved is a valid cpu_set_t of `size` bytes.
    if unsafe { libc::sched_getaffinity(0, size, &mut saved) } != 0 {
        return Ok(());
    }
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads the valid set within CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &saved) })
        .collect();
    let mut result = Ok(());
    for cpu in cpus {
        // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays within CPU_SETSIZE.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::CPU_SET(cpu, &mut one) };
        // SAFETY: pins this thread to one allowed CPU; restored below.
        unsafe { libc::sched_setaffinity(0, size, &one) };
        // SAFETY: unshare takes only flags.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            result = Err(Error::last("unshare(CLONE_NEWNS) failed", ""));
            break;
        }
        if mnt_ns_id().is_none_or(|id| id > old) {
            break;
        }
    }
    // SAFETY: restores the affinity saved above.
    unsafe { libc::sched_setaffinity(0, size, &saved) };
    result
}

/// The JSON object `--report` writes.
pub fn report_json(pid: i32, namespaces: &[(NsKind, u64)]) -> String {
    let mut ns = serde_json::Map::new();
    for (kind, ino) in namespaces {
        ns.insert(kind.proc_name.to_string(), serde_json::Value::from(*ino));
    }
    let mut obj = serde_json::Map::new();
    obj.insert("pid".into(), serde_json::Value::from(pid));
    obj.insert("namespaces".into(), serde_json::Value::Object(ns));
    format!("{}\n", serde_json::Value::Object(obj))
}

/// Everything checked and resolved before the first syscall that changes anything.
struct Runner<'a> {
    tool: &'a str,
    plan: &'a Plan,
    caller: Caller,
    program: Vec<OsString>,
    uid_lines: Vec<Range>,
    gid_lines: Vec<Range>,
    targets: Vec<Target>,
    report_file: Option<File>,
    /// The report file, if we created it and have not written it yet (removed on failure).
    report_created: Option<std::path::PathBuf>,
    report_ns: Option<Vec<(NsKind, u64)>>,
    map_helper: Option<Helper>,
    bind_helper: Option<BindHelper>,
    /// Whether the binds were made (a failure from then on asks `bind_helper` to undo them).
    bound: bool,
    /// Parent to child: go (after the binds) and, with --report, the ack after the report.
    go_r: Option<OwnedFd>,
    go_w: Option<OwnedFd>,
    /// Child to parent: setup done, about to exec (with --report).
    ready_r: Option<OwnedFd>,
    ready_w: Option<OwnedFd>,
    forked_child: bool,
    parent_pid: libc::pid_t,
}

fn resolve_maps(plan: &Plan, caller: Caller) -> Result<(Vec<Range>, Vec<Range>), Error> {
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(caller.euid))
        .ok()
        .flatten()
        .map(|u| u.name);
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(caller.egid))
        .ok()
        .flatten()
        .map(|g| g.name);
    let one = |helper_maps: bool,
               specs: &[MapSpec],
               single: Option<u32>,
               outer: u32,
               subfile: &str,
               procfile: &str,
               who: Option<&str>,
               id: u32|
     -> Result<Vec<Range>, Error> {
        if !helper_maps {
            return Ok(Vec::new());
        }
        let mut ranges = Vec::new();
        for &spec in specs {
            let sub = if matches!(spec, MapSpec::Auto | MapSpec::Subids) {
                let text = std::fs::read_to_string(subfile)
                    .map_err(|e| Error::io(format!("cannot read {subfile}"), e, ""))?;
                let block = idmap::subid_block(&text, who, id);
                if block.is_none() {
                    return Err(Error::Failed(format!(
                        "no line matching user \"{}\" in {subfile} (add one, e.g. with usermod --add-subuids)",
                        who.map(str::to_string).unwrap_or_else(|| id.to_string())
                    )));
                }
                block
            } else {
                None
            };
            let parent = if spec == MapSpec::All {
                idmap::parse_proc_map(&std::fs::read_to_string(procfile).unwrap_or_default())
            } else {
                Vec::new()
            };
            ranges.extend(idmap::resolve(spec, sub, &parent).map_err(Error::Failed)?);
        }
        let lines = idmap::build(single.map(|s| (s, outer)), &ranges);
        // What the kernel would refuse is named now, before anything is created.
        let what = if procfile.ends_with("uid_map") {
            "uid"
        } else {
            "gid"
        };
        idmap::check(&lines, what).map_err(Error::Failed)?;
        Ok(lines)
    };
    let uids = one(
        plan.helper_maps_users(),
        &plan.user_ranges,
        plan.map_user,
        caller.euid,
        "/etc/subuid",
        "/proc/self/uid_map",
        name.as_deref(),
        caller.euid,
    )?;
    let gids = one(
        plan.helper_maps_groups(),
        &plan.group_ranges,
        plan.map_group,
        caller.egid,
        "/etc/subgid",
        "/proc/self/gid_map",
        name.as_deref().or(group.as_deref()),
        caller.euid,
    )?;
    Ok((uids, gids))
}

impl<'a> Runner<'a> {
    fn new(tool: &'a str, plan: &'a Plan, caller: Caller) -> Result<Runner<'a>, Error> {
        let program = conventions::exec::program_or_default(&plan.program);
        if let Some(root) = &plan.root {
            match std::fs::metadata(root) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::io(
                        format!("cannot change root directory to '{}'", root.display()),
                        std::io::Error::from_raw_os_error(libc::ENOTDIR),
                        "",
                    ))
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot change root directory to '{}'", root.display()),
                        e,
                        "",
                    ))
                }
            }
        }
        let (uid_lines, gid_lines) = if plan.uses_map_helper() {
            resolve_maps(plan, caller)?
        } else {
            (Vec::new(), Vec::new())
        };
        let report_created = match &plan.report {
            Some(ReportTo::File(path)) if std::fs::symlink_metadata(path).is_err() => {
                Some(path.clone())
            }
            _ => None,
        };
        let report_file = match &plan.report {
            Some(ReportTo::File(path)) => Some(File::create(path).map_err(|e| {
                Error::io(format!("cannot open report file {}", path.display()), e, "")
            })?),
            Some(ReportTo::Fd(fd)) => {
                // SAFETY: F_GETFD only queries the descriptor table.
                if unsafe { libc::fcntl(*fd, libc::F_GETFD) } < 0 {
                    return Err(Error::last(
                        format!("--report={fd}"),
                        "give an open descriptor, e.g. --report=3 3>report.json",
                    ));
                }
                None
            }
            None => None,
        };
        let targets = match persist::prepare(&plan.persist) {
            Ok(t) => t,
            Err(e) => {
                if let Some(p) = &report_created {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        };
        let needs_go = plan.fork && (!targets.is_empty() || plan.report.is_some());
        let (go_r, go_w) = if needs_go {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let (ready_r, ready_w) = if plan.fork && plan.report.is_some() {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        Ok(Runner {
            tool,
            plan,
            caller,
            program,
            uid_lines,
            gid_lines,
            targets,
            report_file,
            report_created,
            report_ns: None,
            map_helper: None,
            bind_helper: None,
            bound: false,
            go_r,
            go_w,
            ready_r,
            ready_w,
            forked_child: false,
            // SAFETY: getpid has no preconditions.
            parent_pid: unsafe { libc::getpid() },
        })
    }

    fn write_report(&mut self, pid: i32, namespaces: &[(NsKind, u64)]) -> Result<(), Error> {
        let text = report_json(pid, namespaces);
        self.report_created = None;
        match (&self.plan.report, &mut self.report_file) {
            (_, Some(f)) => f
                .write_all(text.as_bytes())
                .and_then(|_| f.flush())
                .map_err(|e| Error::io("cannot write the report", e, "")),
            (Some(ReportTo::Fd(fd)), None) => {
                // SAFETY: the caller's descriptor is borrowed for one write and not closed.
                let mut f = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(*fd) });
                f.write_all(text.as_bytes())
                    .map_err(|e| Error::io(format!("cannot write the report to fd {fd}"), e, ""))
            }
            _ => Ok(()),
        }
    }

    fn persists_mnt(&self) -> bool {
        self.targets.iter().any(|t| t.what.kind.proc_name == "mnt")
    }

    fn capture_ns(&mut self) {
        if self.plan.report.is_some() && !self.plan.fork && self.report_ns.is_none() {
            self.report_ns = ns::inodes(Proc::Current).ok();
        }
    }

    /// The parent's side after the fork: bind, report, release the child, wait for it.
    fn parent_side(
        &mut self,
        child: libc::pid_t,
        old_mask: &libc::sigset_t,
    ) -> Result<Outcome, Error> {
        // The signals were blocked across fork. Before unblocking them, give them the disposition
        // they will have while we wait, so that none is lost or kills us in between;
        // wait_relaying then installs an equivalent one.
        FORWARD_TO.store(child, Ordering::SeqCst);
        let handler = if self.plan.forward_signals {
            forward_early as extern "C" fn(libc::c_int) as libc::sighandler_t
        } else {
            libc::SIG_IGN
        };
        // SAFETY: a zeroed sigaction with a valid handler (async-signal-safe: it only calls
        // kill) and an empty mask is well formed; restoring our own saved mask is harmless.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler;
            act.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(libc::SIGINT, &act, std::ptr::null_mut());
            libc::sigaction(libc::SIGTERM, &act, std::ptr::null_mut());
            libc::sigprocmask(libc::SIG_SETMASK, old_mask, std::ptr::null_mut());
        }
        let kill_child = |e: Error| {
            // SAFETY: child is our own child process.
            unsafe { libc::kill(child, libc::SIGKILL) };
            let _ = conventions::exit::wait(child);
            e
        };
        if let Some(h) = &self.bind_helper {
            h.bind().map_err(kill_child)?;
            self.bound = true;
        }
        self.go_r = None;
        self.ready_w = None;
        let go = self.go_w.take();
        if let Some(w) = &go {
            write_byte(w.as_raw_fd());
        }
        if let Some(r) = self.ready_r.take() {
            // The child sends its namespace inodes (read by itself: with --owner we may not read
            // its /proc files) and closes the pipe just before exec; nothing means it failed.
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut File::from(r), &mut text);
            let namespaces: Vec<(NsKind, u64)> = text
                .lines()
                .filter_map(|l| {
                    let (name, ino) = l.split_once(' ')?;
                    Some((ns::by_name(name)?, ino.parse().ok()?))
                })
                .collect();
            if !namespaces.is_empty() {
                self.write_report(child, &namespaces).map_err(kill_child)?;
                if let Some(w) = &go {
                    write_byte(w.as_raw_fd());
                }
            }
        }
        drop(go);
        // From here the binds are the child's to keep (by exec'ing) or undo (by failing).
        if let Some(h) = self.bind_helper.as_mut() {
            h.release();
        }
        let outcome = wait_for(self.plan, child);
        self.bind_helper = None;
        outcome
    }

    /// The child that borrows our memory: runs the steps after the fork and execs; it cannot
    /// return into the parent's code, so a failure is printed here, as `main` would, and ends
    /// the child with the code `main` would use.
    fn borrowed_child(&mut self, old_mask: &libc::sigset_t, rest: &[Step]) -> ! {
        self.forked_child = true;
        // SAFETY: restores the mask saved before the spawn (in this child only).
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, old_mask, std::ptr::null_mut()) };
        for step in rest {
            if let Err(e) = self.step(step, &[]) {
                if !matches!(e, Error::Reported) {
                    conventions::errln!("{}: {e}", self.tool);
                }
                // SAFETY: _exit ends this child without running the parent's exit handlers.
                unsafe { libc::_exit(e.code()) };
            }
        }
        conventions::errln!("{}: the plan ended without running the program", self.tool);
        // SAFETY: as above.
        unsafe { libc::_exit(conventions::exit::FAILURE) }
    }

    fn step(&mut self, step: &Step, rest: &[Step]) -> Result<Option<Outcome>, Error> {
        let plan = self.plan;
        match step {
            Step::SpawnMapHelper => self.spawn_map_helper()?,
            Step::SpawnBindHelper => self.spawn_bind_helper()?,
            Step::BecomeOwner => self.become_owner()?,
            Step::Unshare(flags) => self.unshare(*flags)?,
            Step::SyncMapHelper => self.sync_map_helper()?,
            Step::TimeOffsets => self.time_offsets()?,
            Step::LoUp => lo_up()?,
            Step::Fork => return self.fork_child(rest),
            Step::Persist => self.persist()?,
            Step::KillWithParent(sig) => self.kill_with_parent(*sig)?,
            Step::MapUser => self.map_user()?,
            Step::MapGroup => self.map_group()?,
            Step::Setgroups(sg) => write_file(
                Path::new("/proc/self/setgroups"),
                sg.word(),
                "setgroups can be changed only before gid_map is written, in a new user namespace",
            )?,
            Step::DisableUserns => self.disable_userns()?,
            Step::Propagation(flags) => self.propagation(*flags)?,
            Step::Chroot => self.chroot()?,
            Step::Chdir => self.chdir()?,
            Step::MountProc => self.mount_proc()?,
            Step::BinfmtBeforeChroot => {
                let dir = Path::new(crate::plan::BINFMT_MISC);
                mount_binfmt(dir)?;
                load_interp(dir, plan.load_interp.as_deref().unwrap_or_default())?;
            }
            Step::MountBinfmt => mount_binfmt(plan.binfmt.as_deref().unwrap_or(Path::new("")))?,
            Step::LoadInterp => load_interp(
                plan.binfmt.as_deref().unwrap_or(Path::new("")),
                plan.load_interp.as_deref().unwrap_or_default(),
            )?,
            Step::SetIds => {
                conventions::ids::switch_to(plan.setuid, plan.setgid, plan.setgid.is_some())
                    .map_err(Error::Failed)?
            }
            Step::KeepCaps => conventions::ids::keep_caps().map_err(Error::Failed)?,
            Step::ClearEnv => self.clear_env()?,
            Step::Report => self.report()?,
            Step::Exec => return Err(self.exec()),
        }
        Ok(None)
    }

    /// Spawns the helper that stays in the parent namespaces to write the range maps.
    fn spawn_map_helper(&mut self) -> Result<(), Error> {
        let plan = self.plan;
        let (pid, uids, gids) = (
            self.parent_pid,
            self.uid_lines.clone(),
            self.gid_lines.clone(),
        );
        let (sg, privileged) = (plan.helper_setgroups(), self.caller.euid == 0);
        self.map_helper = Some(Helper::spawn(self.tool, move || {
            write_maps(pid, &uids, &gids, sg, privileged)
        })?);
        Ok(())
    }

    /// Spawns the helper that stays in the old namespaces for the persistence binds.
    fn spawn_bind_helper(&mut self) -> Result<(), Error> {
        let (pid, targets) = (self.parent_pid, self.targets.clone());
        self.bind_helper = Some(BindHelper::spawn(self.tool, pid, targets)?);
        Ok(())
    }

    /// Becomes the `--owner` (or stays the caller), with no supplementary groups, so that the new
    /// user namespace is owned by it.
    fn become_owner(&mut self) -> Result<(), Error> {
        let plan = self.plan;
        let (uid, gid) = plan.owner.unwrap_or((self.caller.euid, self.caller.egid));
        let hint = "--owner needs root (CAP_SETUID and CAP_SETGID)";
        nix::unistd::setgroups(&[])
            .map_err(|e| Error::io("setgroups([]) failed", std::io::Error::from(e), hint))?;
        let g = nix::unistd::Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).map_err(|e| {
            Error::io(
                format!("setresgid({gid}) failed"),
                std::io::Error::from(e),
                hint,
            )
        })?;
        let u = nix::unistd::Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(|e| {
            Error::io(
                format!("setresuid({uid}) failed"),
                std::io::Error::from(e),
                hint,
            )
        })?;
        Ok(())
    }

    /// unshare(2); with a mount namespace to persist, one whose id the helper may bind.
    fn unshare(&mut self, flags: libc::c_int) -> Result<(), Error> {
        let old_mnt_id = if self.persists_mnt() {
            mnt_ns_id()
        } else {
            None
        };
        // SAFETY: unshare takes only flags.
        if unsafe { libc::unshare(flags) } != 0 {
            let e = std::io::Error::last_os_error();
            let hint = error::unshare_hint(
                e.raw_os_error().unwrap_or(0),
                flags,
                self.caller.euid,
                &error::sysctl,
            );
            return Err(Error::io(
                format!("unshare({}) failed", ns::flag_names(flags)),
                e,
                hint,
            ));
        }
        if let Some(old) = old_mnt_id {
            newer_mount_namespace(old)?;
        }
        // A second unshare (--disable-userns) moved us again.
        self.report_ns = None;
        self.capture_ns();
        Ok(())
    }

    /// Lets the map helper write the maps and waits for it.
    fn sync_map_helper(&mut self) -> Result<(), Error> {
        if let Some(h) = self.map_helper.take() {
            h.sync()?;
        }
        Ok(())
    }

    /// Writes the time namespace offsets (before the fork: they apply to children).
    fn time_offsets(&mut self) -> Result<(), Error> {
        let plan = self.plan;
        let mut text = String::new();
        if let Some(s) = plan.monotonic {
            text.push_str(&format!("monotonic {s} 0\n"));
        }
        if let Some(s) = plan.boottime {
            text.push_str(&format!("boottime {s} 0\n"));
        }
        write_file(
            Path::new("/proc/self/timens_offsets"),
            &text,
            "offsets can be set only before a process enters the time namespace",
        )?;
        Ok(())
    }

    /// Forks (or spawns a child on our memory): the parent binds, reports and waits, and returns
    /// the outcome; the child goes on with `rest`.
    fn fork_child(&mut self, rest: &[Step]) -> Result<Option<Outcome>, Error> {
        let plan = self.plan;
        // SAFETY: all-zero is a valid sigset_t; sigprocmask fills it.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: the sets are valid locals; blocking SIGINT/SIGTERM keeps them from
        // killing the parent before it ignores (or forwards) them.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        }
        if plan.child_borrows_memory() {
            let mut body = |_: bool| -> Infallible { self.borrowed_child(&old, rest) };
            // SAFETY: unshare-rs is single-threaded, and `borrowed_child` ends in exec
            // or _exit. The plan leaves the parent nothing to do until the child has
            // exec'd, so the child may run on our memory and save copying it.
            match unsafe { conventions::spawn::spawn(None, &mut body) } {
                Ok(s) => return self.parent_side(s.pid, &old).map(Some),
                // EINVAL: a kernel that refuses CLONE_VM here; fork below.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => return Err(Error::io("clone(CLONE_VM|CLONE_VFORK) failed", e, "")),
            }
        }
        let pid = fork()?;
        if pid != 0 {
            return self.parent_side(pid, &old).map(Some);
        }
        self.forked_child = true;
        // SAFETY: restores the mask saved above.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        // The child keeps its copy of the persistence helper's channel: the binds the
        // parent makes are undone if the child fails before exec. The parent reaps it.
        if let Some(h) = self.bind_helper.as_mut() {
            h.pid = 0;
            self.bound = true;
        }
        self.report_created = None;
        // The child's copies of the parent's ends.
        self.go_w = None;
        self.ready_r = None;
        if let Some(r) = &self.go_r {
            if !read_byte(r.as_raw_fd()) {
                // The parent failed (and said why): never run the program.
                exit_now(1);
            }
        }
        if plan.report.is_some() {
            // Now, while /proc is still the caller's (before chroot and --mount-proc).
            self.report_ns = ns::inodes(Proc::Current).ok();
        }
        Ok(None)
    }

    /// Binds the namespace files on their targets through the helper.
    fn persist(&mut self) -> Result<(), Error> {
        if let Some(h) = &self.bind_helper {
            h.bind()?;
            self.bound = true;
        }
        Ok(())
    }

    /// PR_SET_PDEATHSIG, and the signal at once if the parent is already gone.
    fn kill_with_parent(&mut self, sig: i32) -> Result<(), Error> {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong) } != 0 {
            return Err(Error::last("prctl(PR_SET_PDEATHSIG) failed", ""));
        }
        // If the parent died before prctl, nobody will send the signal: do it now. In a
        // new pid namespace getppid() is 0, and the go pipe covered that window.
        // SAFETY: getppid and raise have no preconditions.
        unsafe {
            let ppid = libc::getppid();
            if ppid != 0 && ppid != self.parent_pid {
                libc::raise(sig);
            }
        }
        Ok(())
    }

    /// Writes the single-id uid map.
    fn map_user(&mut self) -> Result<(), Error> {
        let plan = self.plan;
        let inner = plan.map_user.unwrap_or(0);
        write_file(
            Path::new("/proc/self/uid_map"),
            &format!("{inner} {} 1", self.caller.euid),
            MAP_HINT,
        )?;
        Ok(())
    }

    /// Denies setgroups (where the kernel has the file) and writes the single-id gid map.
    fn map_group(&mut self) -> Result<(), Error> {
        let plan = self.plan;
        // Since Linux 3.19 an unprivileged gid_map needs setgroups denied first.
        match std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/self/setgroups")
        {
            Ok(mut f) => f
                .write_all(b"deny")
                .map_err(|e| Error::io("write /proc/self/setgroups failed", e, ""))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("open /proc/self/setgroups failed", e, "")),
        }
        let inner = plan.map_group.unwrap_or(0);
        write_file(
            Path::new("/proc/self/gid_map"),
            &format!("{inner} {} 1", self.caller.egid),
            MAP_HINT,
        )?;
        Ok(())
    }

    /// `--disable-userns`, as bwrap does it: the user namespace just made may have one child;
    /// we enter that child, whose program then cannot raise the limit (it is the parent's) nor
    /// make another. The single-id maps go through unchanged (each id to itself).
    fn disable_userns(&mut self) -> Result<(), Error> {
        let plan = self.plan;
        write_file(
            Path::new(MAX_USER_NAMESPACES),
            "1",
            "the new user namespace's own limit; /proc must be a proc mount",
        )?;
        // SAFETY: unshare takes only flags.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            return Err(Error::io(
                "unshare(CLONE_NEWUSER) of the nested user namespace failed",
                std::io::Error::last_os_error(),
                "",
            ));
        }
        if let Some(uid) = plan.map_user {
            write_file(
                Path::new("/proc/self/uid_map"),
                &format!("{uid} {uid} 1"),
                MAP_HINT,
            )?;
        }
        if let Some(gid) = plan.map_group {
            write_file(Path::new("/proc/self/setgroups"), "deny", "")?;
            write_file(
                Path::new("/proc/self/gid_map"),
                &format!("{gid} {gid} 1"),
                MAP_HINT,
            )?;
        }
        // bwrap checks the same way: should a third one be made, we end here, failing.
        // SAFETY: as above.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } == 0 {
            return Err(Error::Failed(format!(
                "--disable-userns: a user namespace could still be created after writing 1 to {MAX_USER_NAMESPACES} (the kernel does not count nested user namespaces against it)"
            )));
        }
        self.report_ns = None;
        self.capture_ns();
        Ok(())
    }

    /// Changes the propagation of / recursively.
    fn propagation(&mut self, flags: libc::c_ulong) -> Result<(), Error> {
        nix::mount::mount(
            Some("none"),
            "/",
            None::<&str>,
            nix::mount::MsFlags::from_bits_truncate(flags),
            None::<&str>,
        )
        .map_err(|e| {
            Error::io(
                "cannot change root filesystem propagation",
                std::io::Error::from_raw_os_error(e as i32),
                if e == nix::errno::Errno::EINVAL {
                    "/ is not a mount point here (a chroot?): use --propagation=unchanged"
                } else {
                    ""
                },
            )
        })?;
        Ok(())
    }

    /// chroot to `--root`.
    fn chroot(&mut self) -> Result<(), Error> {
        let plan = self.plan;
        self.capture_ns();
        let root = plan.root.clone().unwrap_or_default();
        nix::unistd::chroot(&root).map_err(|e| {
            Error::io(
                format!("cannot change root directory to '{}'", root.display()),
                std::io::Error::from_raw_os_error(e as i32),
                "",
            )
        })?;
        Ok(())
    }

    /// chdir to `--wd`, else to / after `--root`.
    fn chdir(&mut self) -> Result<(), Error> {
        let plan = self.plan;
        let dir = plan.chdir_target().unwrap_or_default();
        std::env::set_current_dir(&dir)
            .map_err(|e| Error::io(format!("cannot chdir to '{}'", dir.display()), e, ""))?;
        Ok(())
    }

    /// Mounts proc on `--mount-proc`, first making that mount private unless `--root` or a
    /// private `--propagation` already keeps it from the caller's namespace.
    fn mount_proc(&mut self) -> Result<(), Error> {
        let plan = self.plan;
        let dir = plan.mount_proc.clone().unwrap_or_default();
        use nix::mount::MsFlags;
        if plan.root.is_none() && plan.propagation != Some(libc::MS_REC | libc::MS_PRIVATE) {
            nix::mount::mount(
                Some("none"),
                &dir,
                None::<&str>,
                MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| {
                Error::io(
                    format!("cannot change {} filesystem propagation", dir.display()),
                    std::io::Error::from_raw_os_error(e as i32),
                    "",
                )
            })?;
        }
        nix::mount::mount(
            Some("proc"),
            &dir,
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|e| {
            Error::io(
                format!("mount {} failed", dir.display()),
                std::io::Error::from_raw_os_error(e as i32),
                if e == nix::errno::Errno::EPERM {
                    "mounting proc needs a new pid namespace's owner: add -p -f"
                } else {
                    ""
                },
            )
        })?;
        Ok(())
    }

    /// Clears the environment but for `--whitelist-env`.
    fn clear_env(&mut self) -> Result<(), Error> {
        // --whitelist-env: the listed variables that are set keep their values.
        let kept: Vec<(&String, OsString)> = self
            .plan
            .whitelist_env
            .iter()
            .filter_map(|k| Some((k, std::env::var_os(k)?)))
            .collect();
        let keys: Vec<OsString> = std::env::vars_os().map(|(k, _)| k).collect();
        for k in keys {
            std::env::remove_var(k);
        }
        for (k, v) in kept {
            std::env::set_var(k, v);
        }
        Ok(())
    }

    /// The `--report`: written here without a fork; a forked child sends its namespaces to the
    /// parent and waits for its go.
    fn report(&mut self) -> Result<(), Error> {
        if self.forked_child {
            if let Some(w) = self.ready_w.take() {
                let text: String = self
                    .report_ns
                    .iter()
                    .flatten()
                    .map(|(k, ino)| format!("{} {ino}\n", k.proc_name))
                    .collect();
                let _ = File::from(w).write_all(text.as_bytes());
            }
            if let Some(r) = &self.go_r {
                if !read_byte(r.as_raw_fd()) {
                    exit_now(1);
                }
            }
        } else {
            self.capture_ns();
            let namespaces = self.report_ns.clone().unwrap_or_default();
            // SAFETY: getpid has no preconditions.
            let pid = unsafe { libc::getpid() };
            self.write_report(pid, &namespaces)?;
        }
        Ok(())
    }

    /// Executes the program; returns only if that failed, with the error.
    fn exec(&mut self) -> Error {
        if let (false, Some(h)) = (self.forked_child, self.bind_helper.as_mut()) {
            // Without a fork the helper is our child: keep the binds and reap it now,
            // unless the exec is sure to fail (then the failure path undoes them).
            if self.program.first().is_some_and(|p| runnable(p)) {
                h.release();
                h.reap();
                self.bind_helper = None;
            }
        }
        let (msg, code) = conventions::exec::execvp(&self.program);
        Error::Exec { msg, code }
    }
}

/// The parent's wait for the forked child, SIGINT and SIGTERM ignored or forwarded meanwhile.
pub fn wait_for(plan: &Plan, child: libc::pid_t) -> Result<Outcome, Error> {
    let how = if plan.forward_signals {
        conventions::child::Disposition::Forward
    } else {
        conventions::child::Disposition::Ignore
    };
    conventions::child::wait_relaying(child, &[libc::SIGINT, libc::SIGTERM], how)
        .map_err(|e| Error::io(format!("waitpid({child}) failed"), e, ""))
}

/// Runs the plan from step `from` (0: all of it; more when the fast path in `early` ran the
/// first steps), as the forked child if `forked_child`: returns how the child ended (with
/// --fork), or an error; without --fork it returns only on failure, since the program replaces
/// this process.
pub fn execute(
    tool: &str,
    plan: &Plan,
    caller: Caller,
    from: usize,
    forked_child: bool,
) -> Result<Outcome, Error> {
    let mut runner = Runner::new(tool, plan, caller)?;
    runner.forked_child = forked_child;
    let steps = plan.steps();
    for (i, step) in steps.iter().enumerate().skip(from) {
        match runner.step(step, &steps[i + 1..]) {
            Ok(Some(outcome)) => return Ok(outcome),
            Ok(None) => {}
            Err(e) => {
                // A failed run leaves no namespace bound (the exec that did not happen would
                // have kept them).
                if runner.bound {
                    if let Some(h) = runner.bind_helper.as_mut() {
                        h.undo();
                    }
                }
                if let Some(p) = &runner.report_created {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        }
    }
    Err(Error::Failed(
        "the plan ended without running the program".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_is_one_json_line() {
        let kinds = [ns::ALL[0], ns::ALL[6]];
        let text = report_json(42, &[(kinds[0], 4026531837), (kinds[1], 4026531841)]);
        assert_eq!(
            text,
            "{\"namespaces\":{\"mnt\":4026531841,\"user\":4026531837},\"pid\":42}\n"
        );
    }
}
