//! A root filesystem described as data (mounts of any type with their flags, devices, masked and
//! read-only paths), the way an OCI runtime's config.json lists it, set up with pivot's resolver
//! and steps; for `ocirun`, which gets its mounts from a config rather than a command line.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::apply::{self, Ctx};
use crate::error::Error;
use crate::plan::{self, Propagation, Step};
use crate::resolve::{self, Create, ResolveError};
use crate::sys::{self, fd_path};
use nix::unistd::{Gid, Uid};

/// One mount, in the order it is made. Flags and data are the kernel's, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecMount {
    /// Where it is reported from, for errors (e.g. `mounts[3]`).
    pub label: String,
    /// Path inside the new root.
    pub destination: PathBuf,
    /// Filesystem type (`None` for a bind mount).
    pub fstype: Option<String>,
    /// Source: a host path (absolute) for a bind mount, a device or a name otherwise.
    pub source: Option<PathBuf>,
    /// `MS_*` flags (`MS_BIND`, `MS_REC`, `MS_RDONLY`, ...), without propagation flags.
    pub flags: libc::c_ulong,
    /// Filesystem-specific options (`mode=755,size=65536k`), empty for none.
    pub data: String,
    /// `MS_SHARED`/`MS_SLAVE`/`MS_PRIVATE`/`MS_UNBINDABLE` (with `MS_REC`) applied afterwards; 0
    /// for none.
    pub propagation: libc::c_ulong,
    /// A tmpfs that gets a copy of what the directory held before (OCI `tmpcopyup`).
    pub copy_up: bool,
}

/// A device node to create (or, in a user namespace, to bind from the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecDevice {
    /// Path inside the new root, e.g. `/dev/fuse`.
    pub path: PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    pub kind: libc::mode_t,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The whole root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecRoot {
    /// The directory that becomes `/` (absolute).
    pub newroot: PathBuf,
    /// Mounts in order.
    pub mounts: Vec<SpecMount>,
    /// Create pivot's standard devices (null, zero, full, random, urandom, tty) and the /dev
    /// symlinks where missing.
    pub default_devices: bool,
    /// More devices.
    pub devices: Vec<SpecDevice>,
    /// Paths hidden (an empty read-only tmpfs over a directory, /dev/null over a file).
    pub masked: Vec<PathBuf>,
    /// Paths made read-only.
    pub readonly: Vec<PathBuf>,
    /// Make the new root's own mount read-only at the end.
    pub root_readonly: bool,
    /// Propagation of `/` after the pivot (`MS_SHARED|MS_REC`, ...); `None`: left private.
    pub rootfs_propagation: Option<libc::c_ulong>,
    /// MS_MOVE and chroot instead of pivot_root (a ramfs root, `--no-pivot`).
    pub no_pivot: bool,
    /// The mount namespace is the caller's own (an OCI config without a mount namespace, run
    /// by a runtime that is itself in a namespace of its own): only chroot into the new root,
    /// since pivot_root or MS_MOVE would move the root of every process sharing it. The mounts
    /// stay in that namespace after the container is gone, as with runc.
    pub shared_mount_ns: bool,
    /// Running in a user namespace: device nodes are bound from the host instead of created.
    pub in_userns: bool,
    /// Print each step on stderr.
    pub verbose: bool,
}

/// Sets up `spec` in the current mount namespace, which must not be the host's, and switches
/// into it; the process's cwd is `/` of the new root afterwards.
pub fn setup(tool: &str, spec: &SpecRoot) -> Result<(), Error> {
    crate::refuse_host_namespace(false)?;
    let shown = spec.newroot.display().to_string();
    let newroot = std::fs::canonicalize(&spec.newroot).map_err(|e| {
        Error::input(
            format!("root.path {shown}"),
            conventions::output::errtext(&e),
            "the bundle's rootfs directory must exist",
        )
    })?;
    if !newroot.is_dir() {
        return Err(Error::input(
            format!("root.path {shown}"),
            "not a directory",
            "give the directory that is to become /",
        ));
    }
    let mut ctx = Ctx::new(tool, newroot.clone(), spec.verbose);
    let slave = spec
        .rootfs_propagation
        .is_some_and(|p| p & libc::MS_SLAVE != 0);
    ctx.run(&Step::Propagation(if slave {
        Propagation::Slave
    } else {
        Propagation::Private
    }))?;
    ctx.run(&Step::BindRoot)?;
    let result = before_pivot(&mut ctx, &newroot, spec);
    if let Err(e) = result {
        ctx.cleanup();
        return Err(e);
    }
    if spec.shared_mount_ns {
        nix::unistd::chroot(&newroot)
            .map_err(|e| Error::sys(format!("chroot({})", newroot.display()), e))?;
        nix::unistd::chdir("/").map_err(|e| Error::sys("chdir(/) in the new root", e))?;
        ctx.say("chroot into the new root (a mount namespace shared with the caller)");
    } else if spec.no_pivot {
        let root = sys::open(&newroot, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| Error::sys(format!("open({})", newroot.display()), e))?;
        sys::fchdir(&root).map_err(|e| Error::sys(format!("fchdir({})", newroot.display()), e))?;
        ctx.say("MS_MOVE of the new root onto / and chroot (no pivot_root)");
        apply::move_and_chroot(&newroot)?;
    } else {
        ctx.run(&Step::Pivot { put_old: None })?;
    }
    if let Some(p) = spec.rootfs_propagation {
        sys::mount(None, Path::new("/"), None, p, None)
            .map_err(|e| Error::sys("mount(rootfsPropagation) on / (the new root)", e))?;
    }
    if spec.root_readonly {
        ctx.run(&Step::RootReadOnly)?;
    }
    Ok(())
}

fn before_pivot(ctx: &mut Ctx<'_>, newroot: &Path, spec: &SpecRoot) -> Result<(), Error> {
    let root = sys::open(newroot, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| Error::sys(format!("open({})", newroot.display()), e))?;
    let at = Inside {
        root: &root,
        newroot,
    };
    for m in &spec.mounts {
        ctx.say(format!(
            "{}: mount {} on {}",
            m.label,
            m.fstype.as_deref().unwrap_or("bind"),
            m.destination.display()
        ));
        at.mount(m)?;
    }
    if spec.default_devices {
        ctx.adopt_dev()?;
        for (name, major, minor) in plan::DEVICES {
            if at.exists(&Path::new("/dev").join(name)) {
                continue;
            }
            ctx.run(&if spec.in_userns {
                Step::DevBind { name }
            } else {
                Step::DevNode { name, major, minor }
            })?;
        }
        for (name, target) in plan::DEV_LINKS {
            let p = Path::new("/dev").join(name);
            if at.exists(&p) || at.is_symlink(&p) {
                continue;
            }
            ctx.run(&Step::DevLink { name, target })?;
        }
    }
    for d in &spec.devices {
        ctx.say(format!("device {}", d.path.display()));
        at.device(d, spec.in_userns)?;
    }
    for p in &spec.masked {
        ctx.say(format!("mask {}", p.display()));
        at.mask(p)?;
    }
    for p in &spec.readonly {
        ctx.say(format!("make {} read-only", p.display()));
        at.readonly(p)?;
    }
    Ok(())
}

struct Inside<'a> {
    root: &'a OwnedFd,
    newroot: &'a Path,
}

impl Inside<'_> {
    fn show(&self, inside: &Path) -> String {
        let rel = inside.strip_prefix("/").unwrap_or(inside);
        self.newroot.join(rel).display().to_string()
    }

    fn resolve(&self, inside: &Path, create: Create) -> Result<resolve::Resolved, Error> {
        resolve::resolve(self.root, inside, create).map_err(|e| self.resolve_error(inside, e))
    }

    fn resolve_error(&self, inside: &Path, e: ResolveError) -> Error {
        let hint = match e {
            ResolveError::Escapes(_) => "paths are resolved inside the root and may not leave it",
            _ => "check the path inside the root",
        };
        crate::error::resolving(self.newroot, inside, &e, hint)
    }

    fn existing(&self, inside: &Path) -> Result<Option<resolve::Resolved>, Error> {
        match resolve::resolve(self.root, inside, Create::No) {
            Ok(t) => Ok(Some(t)),
            Err(ResolveError::Io(_, e)) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(self.resolve_error(inside, e)),
        }
    }

    fn exists(&self, inside: &Path) -> bool {
        resolve::resolve(self.root, inside, Create::No).is_ok()
    }

    fn is_symlink(&self, inside: &Path) -> bool {
        let (Some(parent), Some(name)) = (inside.parent(), inside.file_name()) else {
            return false;
        };
        let Ok(dir) = resolve::resolve(self.root, parent, Create::No) else {
            return false;
        };
        sys::lstatat(&dir.fd, name).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
    }

    fn mount(&self, m: &SpecMount) -> Result<(), Error> {
        let bind = m.flags & libc::MS_BIND != 0;
        let create = match (&m.source, bind) {
            (Some(src), true) if !src.is_dir() => Create::File,
            _ => Create::Dir,
        };
        let t = self.resolve(&m.destination, create)?;
        let shown = self.show(&Path::new("/").join(&t.rel));
        let what = m.fstype.as_deref().unwrap_or("bind");
        let fail = |e: io::Error, call: &str| {
            let hint = match e.raw_os_error() {
                Some(libc::ENOENT) if bind => "the source does not exist".to_string(),
                Some(libc::ENODEV) => format!("the kernel has no filesystem type '{what}'"),
                _ => crate::error::hint_for(&e).to_string(),
            };
            Error::sys_hint(format!("{}: {call} on {shown}", m.label), e, hint)
        };
        let data = (!m.data.is_empty()).then_some(m.data.as_str());
        if bind {
            let src = m.source.as_deref().unwrap_or(Path::new(""));
            sys::mount(
                Some(src),
                &fd_path(&t.fd),
                None,
                libc::MS_BIND | (m.flags & libc::MS_REC),
                None,
            )
            .map_err(|e| fail(e, &format!("mount(MS_BIND) of {}", src.display())))?;
            let extra = m.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
            if extra != 0 {
                // Flags of a bind mount take a remount; a user namespace locks the flags the
                // source mount already has, so they are kept.
                let top = self.resolve(&m.destination, Create::No)?;
                let locked = locked_flags(&top.fd);
                sys::mount(
                    None,
                    &fd_path(&top.fd),
                    None,
                    libc::MS_REMOUNT | libc::MS_BIND | extra | locked,
                    None,
                )
                .map_err(|e| fail(e, "mount(MS_REMOUNT|MS_BIND)"))?;
            }
        } else {
            let src = m
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from(m.fstype.as_deref().unwrap_or("none")));
            // The covered directory stays reachable through this descriptor once the tmpfs is
            // on top.
            let below = if m.copy_up {
                Some(
                    sys::open(&fd_path(&t.fd), libc::O_RDONLY | libc::O_DIRECTORY)
                        .map_err(|e| fail(e, "open (tmpcopyup)"))?,
                )
            } else {
                None
            };
            sys::mount(
                Some(&src),
                &fd_path(&t.fd),
                m.fstype.as_deref(),
                m.flags,
                data,
            )
            .map_err(|e| fail(e, &format!("mount({what})")))?;
            if let Some(below) = below {
                let top = self.resolve(&m.destination, Create::No)?;
                crate::copyup::copy_tree(&fd_path(&below), &fd_path(&top.fd))
                    .map_err(|e| fail(e, "copying the directory's files up (tmpcopyup)"))?;
            }
        }
        if m.propagation != 0 {
            let top = self.resolve(&m.destination, Create::No)?;
            sys::mount(None, &fd_path(&top.fd), None, m.propagation, None)
                .map_err(|e| fail(e, "mount(propagation)"))?;
        }
        Ok(())
    }

    fn device(&self, d: &SpecDevice, in_userns: bool) -> Result<(), Error> {
        let (Some(parent), Some(name)) = (d.path.parent(), d.path.file_name()) else {
            return Err(Error::input(
                format!("device {}", d.path.display()),
                "not a file path",
                "give an absolute path such as /dev/fuse",
            ));
        };
        let dir = self.resolve(parent, Create::Dir)?;
        let shown = self.show(&d.path);
        if in_userns {
            let host = Path::new("/").join(d.path.strip_prefix("/").unwrap_or(&d.path));
            let t = self.resolve(&d.path, Create::File)?;
            return sys::mount(Some(&host), &fd_path(&t.fd), None, libc::MS_BIND, None).map_err(
                |e| {
                    Error::sys_hint(
                        format!("mount(MS_BIND) of the host's {} on {shown}", host.display()),
                        e,
                        "a user namespace cannot create device nodes; the host's is bound",
                    )
                },
            );
        }
        // A node the rootfs already has is replaced: its numbers may differ.
        if sys::lstatat(&dir.fd, name).is_ok() {
            let _ = sys::unlinkat(&dir.fd, name, false);
        }
        let dev = libc::makedev(d.major, d.minor);
        sys::mknodat(&dir.fd, name, d.kind, d.mode & 0o7777, dev)
            .map_err(|e| Error::sys(format!("mknod({shown})"), e))?;
        let (uid, gid) = (Uid::from_raw(d.uid), Gid::from_raw(d.gid));
        let nofollow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        nix::unistd::fchownat(
            Some(dir.fd.as_raw_fd()),
            name,
            Some(uid),
            Some(gid),
            nofollow,
        )
        .map_err(|e| Error::sys(format!("fchownat({shown})"), e))?;
        // The umask narrowed mknod's mode.
        sys::fchmodat(&dir.fd, name, d.mode & 0o7777)
            .map_err(|e| Error::sys(format!("fchmodat({shown})"), e))
    }

    fn mask(&self, inside: &Path) -> Result<(), Error> {
        match self.existing(inside)? {
            Some(t) => apply::mask(self.root, &t, &self.show(inside), " (maskedPaths)"),
            None => Ok(()),
        }
    }

    fn readonly(&self, inside: &Path) -> Result<(), Error> {
        let Some(t) = self.existing(inside)? else {
            return Ok(());
        };
        let p = fd_path(&t.fd);
        sys::mount(Some(&p), &p, None, libc::MS_BIND | libc::MS_REC, None).map_err(|e| {
            Error::sys(
                format!("mount(MS_BIND) on {} (readonlyPaths)", self.show(inside)),
                e,
            )
        })?;
        let top = self.resolve(inside, Create::No)?;
        sys::make_readonly(&top.fd, true).map_err(|e| {
            Error::sys(
                format!(
                    "mount_setattr(MOUNT_ATTR_RDONLY) on {} (readonlyPaths)",
                    self.show(inside)
                ),
                e,
            )
        })
    }
}

/// The flags of the mount `fd` is on that a user namespace locks (nosuid, nodev, noexec), as
/// `MS_*` flags.
fn locked_flags(fd: &OwnedFd) -> libc::c_ulong {
    let locked = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    nix::sys::statvfs::fstatvfs(fd).map_or(0, |st| sys::statvfs_flags(&st) & locked)
}
