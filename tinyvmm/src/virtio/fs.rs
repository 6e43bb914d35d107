//! virtio-fs (`--share`): a host directory the guest mounts live (`mount -t virtiofs TAG DIR`),
//! served by virtiofsd over vhost-user. tinyvmm offers the device and its configuration (the
//! tag), hands virtiofsd the guest's memory (a memfd) and the rings once the driver starts the
//! device, and then only forwards the driver's notifications to virtiofsd and virtiofsd's
//! interrupts to the guest: the FUSE requests never pass through tinyvmm.
//!
//! virtiofsd is started on a listening socket in the abstract namespace that tinyvmm makes and
//! hands over as `--fd=3`, so there is no socket file to leave behind, and with
//! PR_SET_PDEATHSIG, so it ends with tinyvmm however tinyvmm ends (it also ends on its own
//! when its connection closes).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ids::VIRTIO_ID_FS;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::{Buf, Device, Fault, QueueSetup};

/// The longest tag: the configuration space's `tag` field.
pub const TAG_MAX: usize = 36;
/// Queue 0 is the high-priority queue (FORGET, INTERRUPT), queue 1 the one request queue.
pub const QUEUES: usize = 2;
/// vhost-user's feature bit saying the backend speaks protocol features.
const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;
/// The ring features the driver may use: virtiofsd runs the rings, and these are the ones it
/// implements (the transport itself only forwards notifications).
const OFFERED: u64 =
    1 << VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_INDIRECT_DESC | 1 << VIRTIO_RING_F_EVENT_IDX;
/// How long a vhost-user request may wait for virtiofsd's answer before the device fails:
/// a backend that hangs must not hang the vCPU that started the device.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Where virtiofsd is looked for before PATH: Debian's virtiofsd package (the Rust one), then
/// QEMU's (7.2 still ships the C one in qemu-system-common).
pub const VIRTIOFSD: [&str; 2] = ["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"];

/// Where the file system comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A host directory, served by a virtiofsd that tinyvmm starts and stops.
    Dir(PathBuf),
    /// The vhost-user socket of a virtiofsd someone else runs.
    Socket(PathBuf),
}

/// One `--share` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareArg {
    /// The directory or the socket.
    pub source: Source,
    /// What the guest mounts (`mount -t virtiofs TAG DIR`).
    pub tag: String,
    /// The directory is shared read-only (a read-only bind mount in virtiofsd's own mount
    /// namespace, so that the kernel refuses every write).
    pub read_only: bool,
}

impl ShareArg {
    /// The directory or socket, for messages.
    pub fn path(&self) -> &Path {
        match &self.source {
            Source::Dir(p) | Source::Socket(p) => p,
        }
    }
}

/// Parses `HOSTDIR:TAG[,ro]` or `socket=PATH:TAG`. The tag is what follows the last `:`, so a
/// directory may contain colons; neither may contain a comma (virtiofsd's `-o` options are
/// comma-separated).
pub fn parse_share(s: &str) -> Result<ShareArg, String> {
    let usage = "HOSTDIR:TAG[,ro] or socket=PATH:TAG, a tag of 1 to 36 bytes";
    let (head, tail) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("no tag in '{s}' ({usage})"))?;
    let mut parts = tail.split(',');
    let tag = parts.next().unwrap_or_default();
    if tag.is_empty() || tag.len() > TAG_MAX {
        return Err(format!(
            "bad tag '{tag}' in '{s}': {} bytes ({usage})",
            tag.len()
        ));
    }
    let mut read_only = false;
    for part in parts {
        match part {
            "ro" => read_only = true,
            _ => return Err(format!("unknown share option '{part}' in '{s}' ({usage})")),
        }
    }
    let source = match head.strip_prefix("socket=") {
        Some(path) if !path.is_empty() => {
            if read_only {
                return Err(format!(
                    "'{s}': ro applies to a directory tinyvmm serves; a virtiofsd of your own \
                     decides itself what it allows"
                ));
            }
            Source::Socket(PathBuf::from(path))
        }
        _ if head.is_empty() || head == "socket=" => {
            return Err(format!("no directory in '{s}' ({usage})"))
        }
        _ if head.contains(',') => {
            return Err(format!(
                "directory '{head}' contains a comma, which virtiofsd's options cannot carry"
            ))
        }
        _ => Source::Dir(PathBuf::from(head)),
    };
    Ok(ShareArg {
        source,
        tag: tag.to_string(),
        read_only,
    })
}

/// The device's configuration space: the tag, NUL-padded to 36 bytes, and one request queue.
pub fn config(tag: &str) -> Vec<u8> {
    let mut c = vec![0u8; TAG_MAX];
    let n = tag.len().min(TAG_MAX);
    c[..n].copy_from_slice(&tag.as_bytes()[..n]);
    c.extend_from_slice(&(QUEUES as u32 - 1).to_le_bytes());
    c
}

/// The virtiofsd to run: the first of [`VIRTIOFSD`] that exists, else `virtiofsd` in PATH.
pub fn find_virtiofsd() -> Option<PathBuf> {
    VIRTIOFSD
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| conventions::exec::find_in_path("virtiofsd"))
}

/// virtiofsd's arguments for serving `dir` on descriptor 3: it chroots into `dir` (its
/// namespace sandbox pivot_roots, which a root on the initramfs, as in the lane's level 1,
/// refuses) inside the mount namespace tinyvmm gives it.
pub fn virtiofsd_args(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut source = std::ffi::OsString::from("source=");
    source.push(dir);
    ["--fd=3", "-o"]
        .iter()
        .map(Into::into)
        .chain([source])
        .chain(
            [
                "-o",
                "sandbox=chroot",
                "-o",
                "cache=auto",
                "-o",
                "log_level=err",
            ]
            .iter()
            .map(Into::into),
        )
        .collect()
}

/// The virtio-fs device: the vhost-user connection to virtiofsd and the eventfds of the rings.
pub struct Fs {
    tag: String,
    frontend: Frontend,
    /// What virtiofsd offers, VHOST_USER_F_PROTOCOL_FEATURES included.
    backend_features: u64,
    /// The driver's notification of each queue, which virtiofsd waits on.
    kick: Vec<EventFd>,
    /// virtiofsd's "used buffers" signal, one for both queues (the MMIO transport's interrupt
    /// says only that some queue has them).
    call: EventFd,
    /// The rings were handed to virtiofsd and not taken back.
    active: Vec<usize>,
    /// The virtiofsd tinyvmm started, and a pidfd of it: the seccomp filter lets a signal go
    /// only through a pidfd (kill(2) could name any process).
    child: Option<(Child, Option<OwnedFd>)>,
}

impl std::fmt::Debug for Fs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fs").field("tag", &self.tag).finish()
    }
}

fn eventfd() -> io::Result<EventFd> {
    EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)
}

fn vhost_err(what: &str) -> impl Fn(vhost::Error) -> String + '_ {
    move |e| format!("vhost-user {what}: {e}")
}

/// The words for a virtiofsd that answered nothing: its exit status when it is gone.
fn why_gone(child: &mut Option<(Child, Option<OwnedFd>)>, e: String) -> String {
    match child.as_mut().map(|(c, _)| c.try_wait()) {
        // SAFETY: geteuid has no preconditions and cannot fail.
        Some(Ok(Some(status))) => ended_words(&status.to_string(), unsafe { libc::geteuid() }),
        _ => e,
    }
}

/// A virtiofsd that ended before it answered, and the likely cause when tinyvmm is not root:
/// virtiofsd chroots into the directory it serves, which only root may do.
fn ended_words(status: &str, euid: libc::uid_t) -> String {
    let mut words = format!("virtiofsd ended ({status}) before it answered");
    if euid != 0 {
        words.push_str(
            " (virtiofsd chroots into the directory, which needs root: run tinyvmm as root, or \
             start a virtiofsd of your own and give --share socket=PATH:TAG)",
        );
    }
    words
}

/// A pidfd of `child` (None on kernels before 5.3).
fn pidfd(child: &Child) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    // SAFETY: a non-negative result is a new descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Kills and reaps virtiofsd: through its pidfd, else (no pidfd) by kill(2), which only an
/// unconfined tinyvmm may call; a confined one then leaves it to PR_SET_PDEATHSIG and to
/// virtiofsd ending when its connection closes.
fn stop((mut child, pidfd): (Child, Option<OwnedFd>)) {
    match pidfd {
        Some(fd) => {
            // SAFETY: signals the process the pidfd names; no pointer is passed.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if r == 0 {
                let _ = child.wait();
            }
        }
        None => {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts virtiofsd on `dir` (see the module's notes) and returns it with the socket to talk
/// to it on.
fn start_virtiofsd(
    dir: &Path,
    read_only: bool,
) -> Result<((Child, Option<OwnedFd>), UnixStream), String> {
    let hint = "(HOSTDIR must be an existing directory)";
    let meta = std::fs::metadata(dir)
        .map_err(|e| format!("{} {hint}", conventions::output::errtext(&e)))?;
    if !meta.is_dir() {
        return Err(format!("not a directory {hint}"));
    }
    let exe = find_virtiofsd().ok_or(
        "virtiofsd not found (in /usr/libexec, /usr/lib/qemu or PATH): install Debian's \
         virtiofsd or qemu-system-common",
    )?;
    let dir = std::fs::canonicalize(dir).map_err(|e| conventions::output::errtext(&e))?;
    // Checked here too, on the path virtiofsd gets: --share-rootfs's DIR is not parsed by
    // parse_share, and a symlink can lead to a name with a comma.
    if dir.as_os_str().as_bytes().contains(&b',') {
        return Err(format!(
            "{} contains a comma, which virtiofsd's -o options cannot carry",
            dir.display()
        ));
    }
    // Unique per process and device; the abstract namespace leaves no file.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "tinyvmm-{}-fs{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let addr = SocketAddr::from_abstract_name(name.as_bytes())
        .map_err(|e| format!("socket address: {e}"))?;
    let listener = UnixListener::bind_addr(&addr)
        .map_err(|e| format!("listening on a socket for virtiofsd: {e}"))?;
    let fd = listener.as_raw_fd();
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| "the directory's name holds a NUL".to_string())?;
    let mut cmd = Command::new(&exe);
    cmd.args(virtiofsd_args(&dir))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and makes only async-signal-
    // safe system calls on memory prepared before the fork (c_dir).
    unsafe {
        cmd.pre_exec(move || child_setup(fd, &c_dir, read_only));
    }
    let child = cmd.spawn().map_err(|e| {
        format!(
            "starting {}: {}",
            exe.display(),
            conventions::output::errtext(&e)
        )
    })?;
    drop(listener);
    let stream = UnixStream::connect_addr(&addr).and_then(|s| {
        s.set_read_timeout(Some(REPLY_TIMEOUT))?;
        s.set_write_timeout(Some(REPLY_TIMEOUT))?;
        Ok(s)
    });
    let pidfd = pidfd(&child);
    match stream {
        Ok(s) => Ok(((child, pidfd), s)),
        Err(e) => {
            stop((child, pidfd));
            Err(format!("connecting to virtiofsd: {e}"))
        }
    }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// In virtiofsd's process before exec: the listener on descriptor 3, death with tinyvmm, and
/// for a read-only share a mount namespace of its own where `dir` is a read-only bind mount.
fn child_setup(fd: RawFd, dir: &std::ffi::CStr, read_only: bool) -> io::Result<()> {
    // SAFETY: plain system calls on descriptors and NUL-terminated strings this process owns.
    unsafe {
        if fd == 3 {
            check(libc::fcntl(3, libc::F_SETFD, 0))?;
        } else {
            check(libc::dup2(fd, 3))?;
        }
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        if read_only {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                dir.as_ptr(),
                dir.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                std::ptr::null(),
                dir.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                std::ptr::null(),
            ))?;
        }
    }
    Ok(())
}

/// Sets the device up for `arg`: starts virtiofsd (or connects to the given socket) and asks
/// it what it offers. The error is the message after `--share SOURCE: `.
pub fn open(arg: &ShareArg) -> Result<Fs, String> {
    let (mut child, stream) = match &arg.source {
        Source::Dir(dir) => {
            let (c, s) = start_virtiofsd(dir, arg.read_only)?;
            (Some(c), s)
        }
        Source::Socket(path) => {
            let s = UnixStream::connect(path)
                .and_then(|s| {
                    s.set_read_timeout(Some(REPLY_TIMEOUT))?;
                    s.set_write_timeout(Some(REPLY_TIMEOUT))?;
                    Ok(s)
                })
                .map_err(|e| {
                    format!(
                        "connecting: {} (is virtiofsd listening there?)",
                        conventions::output::errtext(&e)
                    )
                })?;
            (None, s)
        }
    };
    let result = (|| {
        let mut frontend = Frontend::from_stream(stream, QUEUES as u64);
        frontend.set_owner().map_err(vhost_err("SET_OWNER"))?;
        let backend_features = frontend.get_features().map_err(vhost_err("GET_FEATURES"))?;
        if backend_features & (1 << VIRTIO_F_VERSION_1) == 0 {
            return Err("virtiofsd does not offer virtio 1.x (VIRTIO_F_VERSION_1)".to_string());
        }
        if backend_features & VHOST_USER_F_PROTOCOL_FEATURES != 0 {
            let offered = frontend
                .get_protocol_features()
                .map_err(vhost_err("GET_PROTOCOL_FEATURES"))?;
            // REPLY_ACK: every request is answered, so a refusal is seen where it happens.
            frontend
                .set_protocol_features(offered & VhostUserProtocolFeatures::REPLY_ACK)
                .map_err(vhost_err("SET_PROTOCOL_FEATURES"))?;
        }
        let kick = (0..QUEUES)
            .map(|_| eventfd())
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| format!("eventfd: {e}"))?;
        let call = eventfd().map_err(|e| format!("eventfd: {e}"))?;
        Ok((frontend, backend_features, kick, call))
    })();
    match result {
        Ok((frontend, backend_features, kick, call)) => Ok(Fs {
            tag: arg.tag.clone(),
            frontend,
            backend_features,
            kick,
            call,
            active: Vec::new(),
            child,
        }),
        Err(e) => {
            let e = why_gone(&mut child, e);
            if let Some(c) = child {
                stop(c);
            }
            Err(e)
        }
    }
}

impl Fs {
    fn start(
        &mut self,
        mem: &GuestMemoryMmap,
        features: u64,
        queues: &[QueueSetup],
    ) -> Result<(), String> {
        let fe = &mut self.frontend;
        fe.set_features(features | (self.backend_features & VHOST_USER_F_PROTOCOL_FEATURES))
            .map_err(vhost_err("SET_FEATURES"))?;
        let regions = mem
            .iter()
            .map(VhostUserMemoryRegionInfo::from_guest_region)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("guest memory is not shareable: {e}"))?;
        fe.set_mem_table(&regions)
            .map_err(vhost_err("SET_MEM_TABLE"))?;
        let host = |gpa: u64| {
            mem.get_host_address(GuestAddress(gpa))
                .map(|p| p as u64)
                .map_err(|_| format!("a ring at 0x{gpa:x} is outside guest RAM"))
        };
        for (i, q) in queues.iter().enumerate().filter(|(_, q)| q.ready) {
            let ring = VringConfigData {
                queue_max_size: super::mmio::QUEUE_MAX,
                queue_size: q.size,
                flags: 0,
                desc_table_addr: host(q.desc)?,
                used_ring_addr: host(q.used)?,
                avail_ring_addr: host(q.avail)?,
                log_addr: None,
            };
            fe.set_vring_num(i, q.size)
                .map_err(vhost_err("SET_VRING_NUM"))?;
            fe.set_vring_base(i, 0)
                .map_err(vhost_err("SET_VRING_BASE"))?;
            fe.set_vring_addr(i, &ring)
                .map_err(vhost_err("SET_VRING_ADDR"))?;
            fe.set_vring_call(i, &self.call)
                .map_err(vhost_err("SET_VRING_CALL"))?;
            fe.set_vring_kick(i, &self.kick[i])
                .map_err(vhost_err("SET_VRING_KICK"))?;
            if self.backend_features & VHOST_USER_F_PROTOCOL_FEATURES != 0 {
                fe.set_vring_enable(i, true)
                    .map_err(vhost_err("SET_VRING_ENABLE"))?;
            }
            self.active.push(i);
        }
        Ok(())
    }
}

impl Device for Fs {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_FS
    }

    fn features(&self) -> u64 {
        self.backend_features & OFFERED
    }

    fn queues(&self) -> usize {
        QUEUES
    }

    fn config(&self) -> Vec<u8> {
        config(&self.tag)
    }

    fn serve(
        &mut self,
        _queue: usize,
        _mem: &GuestMemoryMmap,
        _bufs: &[Buf],
    ) -> Result<u32, Fault> {
        // Not reached: virtiofsd runs the queues (the transport forwards notifications).
        Err(Fault::Layout("virtio-fs requests are virtiofsd's"))
    }

    fn input(&self) -> Option<(RawFd, usize)> {
        Some((self.call.as_raw_fd(), 0))
    }

    fn external(&self) -> bool {
        true
    }

    fn shares_memory(&self) -> bool {
        true
    }

    fn activate(
        &mut self,
        mem: &GuestMemoryMmap,
        features: u64,
        queues: &[QueueSetup],
    ) -> Result<(), Fault> {
        self.start(mem, features, queues).map_err(Fault::Backend)
    }

    fn kick(&mut self, queue: usize) {
        if let Some(fd) = self.kick.get(queue) {
            // A full counter is still a pending notification.
            let _ = fd.write(1);
        }
    }

    fn signalled(&mut self) -> bool {
        self.call.read().is_ok()
    }

    fn reset(&mut self) {
        // GET_VRING_BASE stops a ring; virtiofsd forgets it until it is set up again.
        for i in std::mem::take(&mut self.active) {
            let _ = self.frontend.get_vring_base(i);
        }
    }
}

impl Drop for Fs {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_takes_a_directory_a_tag_and_ro() {
        assert_eq!(
            parse_share("/srv/data:data").unwrap(),
            ShareArg {
                source: Source::Dir("/srv/data".into()),
                tag: "data".into(),
                read_only: false
            }
        );
        let a = parse_share("/a:b/c:t,ro").unwrap();
        assert_eq!(a.source, Source::Dir("/a:b/c".into()));
        assert_eq!(a.tag, "t");
        assert!(a.read_only);
        let s = parse_share("socket=/run/fs.sock:root").unwrap();
        assert_eq!(s.source, Source::Socket("/run/fs.sock".into()));
        assert_eq!(s.path(), Path::new("/run/fs.sock"));
    }

    #[test]
    fn a_virtiofsd_that_ended_says_why_when_tinyvmm_is_not_root() {
        assert_eq!(
            ended_words("exit status: 1", 0),
            "virtiofsd ended (exit status: 1) before it answered"
        );
        assert_eq!(
            ended_words("exit status: 1", 65534),
            "virtiofsd ended (exit status: 1) before it answered (virtiofsd chroots into the \
             directory, which needs root: run tinyvmm as root, or start a virtiofsd of your own \
             and give --share socket=PATH:TAG)"
        );
    }

    #[test]
    fn share_refuses_what_cannot_work() {
        for (bad, says) in [
            ("/srv", "no tag"),
            ("/srv:", "bad tag ''"),
            (":t", "no directory"),
            ("socket=:t", "no directory"),
            ("/srv:t,rw", "unknown share option 'rw'"),
            ("/srv:t,ro,x", "unknown share option 'x'"),
            ("/a,b:t", "contains a comma"),
            ("socket=/s:t,ro", "ro applies to a directory"),
        ] {
            let e = parse_share(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let long = format!("/srv:{}", "x".repeat(37));
        assert!(parse_share(&long).unwrap_err().contains("37 bytes"));
        assert!(parse_share(&format!("/srv:{}", "x".repeat(36))).is_ok());
    }

    #[test]
    fn config_is_the_padded_tag_and_one_request_queue() {
        let c = config("hostfs");
        assert_eq!(c.len(), 40);
        assert_eq!(&c[..6], b"hostfs");
        assert!(c[6..36].iter().all(|&b| b == 0));
        assert_eq!(&c[36..], &1u32.to_le_bytes());
    }

    #[test]
    fn virtiofsd_is_told_the_descriptor_the_directory_and_the_sandbox() {
        let args: Vec<String> = virtiofsd_args(Path::new("/srv/x"))
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--fd=3",
                "-o",
                "source=/srv/x",
                "-o",
                "sandbox=chroot",
                "-o",
                "cache=auto",
                "-o",
                "log_level=err"
            ]
        );
    }
}
