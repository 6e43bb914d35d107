//! Carrying out the planned steps with real syscalls, every target inside the new root resolved
//! with [`crate::resolve`] and mounted through its fd, and the pivot itself with its initramfs
//! fallback.

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::error::{self, Error};
use crate::mountinfo::{self, RootKind};
use crate::plan::{Propagation, Step, UserMount};
use crate::resolve::{self, Create, ResolveError};
use crate::sys::{self, fd_path};
use nix::mount::MntFlags;

/// State shared by the steps.
pub struct Ctx<'a> {
    /// Tool name for verbose lines.
    pub tool: &'a str,
    /// NEWROOT as an absolute host path.
    pub newroot: PathBuf,
    /// Print each step.
    pub verbose: bool,
    /// The new root's own mount, once [`Step::BindRoot`] ran.
    root: Option<OwnedFd>,
    /// The root of pivot's own tmpfs on /dev, once [`Step::DevTmpfs`] ran: everything of /dev is
    /// made through it, so nothing lands in the rootfs on disk.
    dev: Option<OwnedFd>,
    /// pivot_root (or its fallback) succeeded: nothing to clean up any more.
    pivoted: bool,
    /// NEWROOT on disk under the tmpfs root, once [`Step::TmpfsRoot`] ran.
    rootfs: Option<OwnedFd>,
    /// With a tmpfs root: the filesystems (`st_dev`) of pivot's own tmpfs mounts, the only ones
    /// anything is created or changed on. `None` without one (NEWROOT itself is written then).
    own: Option<Vec<u64>>,
}

impl<'a> Ctx<'a> {
    /// A context for `newroot` (absolute, canonical).
    pub fn new(tool: &'a str, newroot: PathBuf, verbose: bool) -> Ctx<'a> {
        Ctx {
            tool,
            newroot,
            verbose,
            root: None,
            dev: None,
            pivoted: false,
            rootfs: None,
            own: None,
        }
    }

    /// Prints a verbose line.
    pub fn say(&self, msg: impl std::fmt::Display) {
        if self.verbose {
            conventions::errln!("{}: {msg}", self.tool);
        }
    }

    fn show(&self, inside: &Path) -> String {
        let rel = inside.strip_prefix("/").unwrap_or(inside);
        self.newroot.join(rel).display().to_string()
    }

    fn root(&self) -> Result<&OwnedFd, Error> {
        self.root.as_ref().ok_or_else(|| {
            Error::input(
                "plan",
                "a step inside the new root ran before it was bound",
                "this is a bug in pivot",
            )
        })
    }

    fn dev(&self) -> Result<&OwnedFd, Error> {
        self.dev.as_ref().ok_or_else(|| {
            Error::input(
                "plan",
                "a step inside /dev ran before its tmpfs was mounted",
                "this is a bug in pivot",
            )
        })
    }

    /// Resolves `inside` within the new root (with a tmpfs root creating only on pivot's own
    /// tmpfs mounts).
    fn resolve(&self, inside: &Path, create: Create) -> Result<resolve::Resolved, Error> {
        resolve::resolve_creating_on(self.root()?, inside, create, self.own.as_deref())
            .map_err(|e| self.resolve_error(inside, e))
    }

    /// With a tmpfs root, refuses to change `t` unless it is on one of pivot's own tmpfs mounts
    /// (it would be NEWROOT on disk, or a host path bound in).
    fn writable(&self, t: &resolve::Resolved, opt: &str, inside: &Path) -> Result<(), Error> {
        let Some(own) = &self.own else {
            return Ok(());
        };
        let st = sys::fstat(&t.fd)
            .map_err(|e| Error::sys(format!("fstat({})", self.show(inside)), e))?;
        if own.contains(&st.st_dev) {
            return Ok(());
        }
        Err(Error::input(
            format!("{opt} {}", inside.display()),
            format!(
                "/{} is not on pivot's tmpfs (it is part of NEWROOT or of a bind)",
                t.rel.display()
            ),
            "--tmpfs-root changes nothing in NEWROOT on disk: use a path on the tmpfs root, a \
             --tmpfs or a --dir below it",
        ))
    }

    /// Records the filesystem now mounted on `inside` as one of pivot's own (tmpfs root only).
    fn own_mount(&mut self, inside: &Path) -> Result<(), Error> {
        if self.own.is_none() {
            return Ok(());
        }
        let t = self.resolve(inside, Create::No)?;
        let st = sys::fstat(&t.fd)
            .map_err(|e| Error::sys(format!("fstat({})", self.show(inside)), e))?;
        if let Some(own) = &mut self.own {
            own.push(st.st_dev);
        }
        Ok(())
    }

    /// The directory that is to hold `inside` (created as needed) and the name in it.
    fn parent_of(
        &self,
        inside: &Path,
        opt: &str,
    ) -> Result<(resolve::Resolved, std::ffi::OsString), Error> {
        let name = match inside.components().next_back() {
            Some(std::path::Component::Normal(n)) => n.to_os_string(),
            _ => {
                return Err(Error::input(
                    format!("{opt} {}", inside.display()),
                    "does not end in a name",
                    "give the path of the file to create",
                ))
            }
        };
        let parent = inside.parent().unwrap_or(Path::new("/"));
        let dir = self.resolve(parent, Create::Dir)?;
        self.writable(&dir, opt, inside)?;
        Ok((dir, name))
    }

    /// Resolves `name` within pivot's /dev tmpfs.
    fn resolve_dev(&self, name: &str, create: Create) -> Result<resolve::Resolved, Error> {
        let inside = Path::new("/dev").join(name);
        let mut t = resolve::resolve(self.dev()?, Path::new(name), create)
            .map_err(|e| self.resolve_error(&inside, e))?;
        t.rel = Path::new("dev").join(&t.rel);
        Ok(t)
    }

    /// The real directory `/NAME` of the new root (proc, dev, sys), created when missing.
    /// Takes the new root's /dev, as it stands, as the directory the /dev steps create in: for
    /// a caller that mounted /dev itself (ocirun mounts config.json's mounts, /dev among them,
    /// before the default devices). It must be a real directory of the new root.
    pub fn adopt_dev(&mut self) -> Result<(), Error> {
        let dir = self.real_dir("dev")?;
        self.dev = Some(dir.fd);
        Ok(())
    }

    fn real_dir(&self, name: &str) -> Result<resolve::Resolved, Error> {
        match resolve::real_dir(self.root()?, OsStr::new(name), true) {
            Ok(Some(fd)) => Ok(resolve::Resolved {
                fd,
                rel: PathBuf::from(name),
            }),
            Ok(None) => Err(error::not_real_dir(
                &self.newroot,
                name,
                resolve::RealDirError::Io(io::Error::from_raw_os_error(libc::ENOENT)),
            )),
            Err(e) => Err(error::not_real_dir(&self.newroot, name, e)),
        }
    }

    fn resolve_error(&self, inside: &Path, e: ResolveError) -> Error {
        let hint = match &e {
            ResolveError::Escapes(_) => "paths are resolved inside NEWROOT and may not leave it",
            ResolveError::NotOwn(_) => {
                "--tmpfs-root creates nothing in NEWROOT on disk: mount a --tmpfs or make a \
                 --dir for it on the tmpfs root, or use a path NEWROOT has"
            }
            ResolveError::Io(_, io)
                if matches!(io.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) =>
            {
                crate::error::hint_for(io)
            }
            _ => "check the path inside NEWROOT",
        };
        error::resolving(&self.newroot, inside, &e, hint)
    }

    fn mount_at(
        &self,
        inside: &Path,
        create: Create,
        src: Option<&Path>,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> Result<(), Error> {
        let t = self.resolve(inside, create)?;
        self.mount_on(&t, src, fstype, flags, data)
    }

    /// Mounts onto a resolved target, never onto the new root itself: a mount there would sit on
    /// top of the bind that pivot_root uses and be lost (or, for proc, be reachable as `/..`).
    fn mount_on(
        &self,
        t: &resolve::Resolved,
        src: Option<&Path>,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> Result<(), Error> {
        let what = fstype.unwrap_or("MS_BIND");
        if t.rel.as_os_str().is_empty() {
            return Err(Error::input(
                format!("mount({what}) inside {}", self.newroot.display()),
                "the target resolves to the new root itself",
                "mount onto a directory below it",
            ));
        }
        sys::mount(src, &fd_path(&t.fd), fstype, flags, data).map_err(|e| {
            let hint = mount_hint(fstype, &e);
            Error::sys_hint(
                format!(
                    "mount({what}) on {}",
                    self.show(&Path::new("/").join(&t.rel))
                ),
                e,
                hint,
            )
        })
    }

    /// Makes the mount now on top of `inside` read-only.
    fn readonly_at(&self, inside: &Path, recursive: bool) -> Result<(), Error> {
        let t = self.resolve(inside, Create::No)?;
        sys::make_readonly(&t.fd, recursive).map_err(|e| {
            Error::sys(
                format!("mount_setattr(MOUNT_ATTR_RDONLY) on {}", self.show(inside)),
                e,
            )
        })
    }

    /// Sets `MOUNT_ATTR_*` bits on the mount now on top of `inside` (nothing when `attrs` is 0).
    fn attrs_at(&self, inside: &Path, attrs: u64, recursive: bool) -> Result<(), Error> {
        if attrs == 0 {
            return Ok(());
        }
        let t = self.resolve(inside, Create::No)?;
        sys::set_mount_attrs(&t.fd, attrs, recursive).map_err(|e| {
            Error::sys(
                format!(
                    "mount_setattr({}) on {}",
                    attr_names(attrs),
                    self.show(inside)
                ),
                e,
            )
        })
    }

    /// Runs one step before the pivot, or the pivot itself.
    pub fn run(&mut self, step: &Step) -> Result<(), Error> {
        self.say(step);
        let nosuid_nodev_noexec = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        match step {
            Step::Propagation(p) => {
                let flag = match p {
                    Propagation::Private => libc::MS_PRIVATE,
                    Propagation::Slave => libc::MS_SLAVE,
                };
                match sys::mount(None, Path::new("/"), None, libc::MS_REC | flag, None) {
                    Ok(()) => Ok(()),
                    Err(e)
                        if e.raw_os_error() == Some(libc::EINVAL)
                            && mountinfo::root_kind(&mountinfo::read())
                                == RootKind::NotMountPoint =>
                    {
                        // In a chroot / is no mount point and has no propagation of its own;
                        // the mount above it keeps the namespace's.
                        self.say("/ is not a mount point (chroot): propagation left as it is");
                        Ok(())
                    }
                    Err(e) => Err(Error::sys("mount(MS_REC|MS_PRIVATE) on /", e)),
                }
            }
            Step::BindRoot => {
                sys::mount(
                    Some(&self.newroot),
                    &self.newroot,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )
                .map_err(|e| {
                    Error::sys(
                        format!("mount(MS_BIND) of {0} on {0}", self.newroot.display()),
                        e,
                    )
                })?;
                let fd = sys::open(&self.newroot, libc::O_PATH | libc::O_DIRECTORY)
                    .map_err(|e| Error::sys(format!("open({})", self.newroot.display()), e))?;
                self.root = Some(fd);
                Ok(())
            }
            Step::TmpfsRoot => self.tmpfs_root(),
            Step::OverlayRoot => self.overlay_root(),
            Step::RootfsEntries { ro, fresh } => self.rootfs_entries(*ro, fresh),
            Step::Proc => self.mount_on(
                &self.real_dir("proc")?,
                Some(Path::new("proc")),
                Some("proc"),
                nosuid_nodev_noexec,
                None,
            ),
            Step::DevTmpfs => {
                let dir = self.real_dir("dev")?;
                self.mount_on(
                    &dir,
                    Some(Path::new("tmpfs")),
                    Some("tmpfs"),
                    libc::MS_NOSUID | libc::MS_STRICTATIME,
                    Some("mode=755,size=65536k"),
                )?;
                let dev = self.mounted_dev(&dir)?;
                if let Some(own) = &mut self.own {
                    own.push(
                        sys::fstat(&dev)
                            .map_err(|e| Error::sys("fstat(/dev)", e))?
                            .st_dev,
                    );
                }
                self.dev = Some(dev);
                Ok(())
            }
            Step::DevNode { name, major, minor } => {
                let (dev, name) = (self.dev()?, OsStr::new(name));
                sys::mknodat(
                    dev,
                    name,
                    libc::S_IFCHR,
                    0o666,
                    libc::makedev(*major, *minor),
                )
                .and_then(|()| sys::fchmodat(dev, name, 0o666))
                .map_err(|e| {
                    Error::sys_hint(
                        format!("mknod({})", self.show(&Path::new("/dev").join(name))),
                        e,
                        "device nodes need real root; in a user namespace they are bind-mounted",
                    )
                })
            }
            Step::DevBind { name } => {
                let host = Path::new("/dev").join(name);
                if !host.exists() {
                    self.say(format!("the host has no {}: skipped", host.display()));
                    return Ok(());
                }
                let t = self.resolve_dev(name, Create::File)?;
                self.mount_on(&t, Some(&host), None, libc::MS_BIND, None)
            }
            Step::DevLink { name, target } => {
                sys::symlinkat(OsStr::new(target), self.dev()?, OsStr::new(name)).map_err(|e| {
                    Error::sys(
                        format!("symlink({})", self.show(&Path::new("/dev").join(name))),
                        e,
                    )
                })
            }
            Step::Devpts => self.mount_on(
                &self.resolve_dev("pts", Create::Dir)?,
                Some(Path::new("devpts")),
                Some("devpts"),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                Some("newinstance,ptmxmode=0666,mode=620"),
            ),
            Step::DevShm => self.mount_on(
                &self.resolve_dev("shm", Create::Dir)?,
                Some(Path::new("shm")),
                Some("tmpfs"),
                nosuid_nodev_noexec,
                Some("mode=1777,size=65536k"),
            ),
            Step::Sys => self.sys(),
            Step::User(UserMount::Bind {
                src, dst, ro, dev, ..
            }) => {
                let create = if src.is_dir() {
                    Create::Dir
                } else {
                    Create::File
                };
                self.mount_at(
                    dst,
                    create,
                    Some(src),
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )?;
                self.attrs_at(dst, crate::plan::bind_attrs(*ro, *dev), true)
            }
            Step::User(UserMount::Tmpfs { dst, size, mode }) => {
                let mut data = format!("mode={:o}", mode.unwrap_or(0o755));
                if let Some(size) = size {
                    data.push_str(&format!(",size={size}"));
                }
                self.mount_at(
                    dst,
                    Create::Dir,
                    Some(Path::new("tmpfs")),
                    Some("tmpfs"),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    Some(&data),
                )?;
                self.own_mount(dst)
            }
            Step::User(UserMount::Dir { dst, mode }) => {
                let t = self.resolve(dst, Create::Dir)?;
                if !sys::fstat(&t.fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR) {
                    return Err(Error::input(
                        format!("--dir {}", dst.display()),
                        "exists and is not a directory",
                        "give a path that is free or a directory",
                    ));
                }
                match mode {
                    Some(mode) => self.chmod(&t, *mode, "--perms", dst),
                    None => Ok(()),
                }
            }
            Step::User(UserMount::File { fd, dst, mode }) => {
                self.write_file(*fd, dst, mode.unwrap_or(0o666))
            }
            Step::User(UserMount::BindData { fd, dst, ro, mode }) => {
                self.bind_data(*fd, dst, *ro, mode.unwrap_or(0o600))
            }
            Step::User(UserMount::Symlink { target, dst }) => self.symlink(target, dst),
            Step::User(UserMount::Chmod { mode, path }) => {
                let t = self.resolve(path, Create::No)?;
                self.chmod(&t, *mode, "--chmod", path)
            }
            Step::User(UserMount::Mqueue { dst }) => self.mount_at(
                dst,
                Create::Dir,
                Some(Path::new("mqueue")),
                Some("mqueue"),
                nosuid_nodev_noexec,
                None,
            ),
            Step::User(UserMount::Overlay { lower, upper, dst }) => {
                self.overlay(lower, upper, dst)?;
                if *upper == crate::plan::OverlayUpper::Tmp {
                    self.own_mount(dst)?;
                }
                Ok(())
            }
            Step::User(UserMount::RemountRo { dst }) => {
                let t = self.resolve(dst, Create::No)?;
                let root = sys::fd_is_mount_root(&t.fd)
                    .map_err(|e| Error::sys(format!("statx({})", self.show(dst)), e))?;
                if !root {
                    return Err(Error::input(
                        format!("--remount-ro {}", dst.display()),
                        "is not a mount point",
                        "name a --bind, --tmpfs or other mount, or / for the root",
                    ));
                }
                sys::set_mount_attrs(&t.fd, sys::MOUNT_ATTR_RDONLY, false).map_err(|e| {
                    Error::sys(
                        format!("mount_setattr(MOUNT_ATTR_RDONLY) on {}", self.show(dst)),
                        e,
                    )
                })
            }
            Step::Mask(path) => self.mask(Path::new(path)),
            Step::ReadOnly(path) => {
                let inside = Path::new(path);
                let t = match self.existing(inside)? {
                    Some(t) => t,
                    None => return Ok(()),
                };
                let p = fd_path(&t.fd);
                sys::mount(Some(&p), &p, None, libc::MS_BIND | libc::MS_REC, None).map_err(
                    |e| Error::sys(format!("mount(MS_BIND) on {}", self.show(inside)), e),
                )?;
                self.readonly_at(inside, true)
            }
            Step::RootReadOnly => {
                let root = sys::open(Path::new("/"), libc::O_PATH | libc::O_DIRECTORY)
                    .map_err(|e| Error::sys("open(/) after the pivot", e))?;
                sys::make_readonly(&root, false).map_err(|e| {
                    Error::sys("mount_setattr(MOUNT_ATTR_RDONLY) on / (the new root)", e)
                })
            }
            Step::Pivot { put_old } => self.pivot(put_old.as_deref()),
        }
    }

    /// `--tmpfs-root`: a tmpfs over NEWROOT becomes the new root; NEWROOT stays reachable through
    /// a descriptor opened before, for [`Step::RootfsEntries`].
    fn tmpfs_root(&mut self) -> Result<(), Error> {
        let shown = self.newroot.display().to_string();
        let lower = sys::open(&self.newroot, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| Error::sys(format!("open({shown})"), e))?;
        sys::mount(
            Some(Path::new("tmpfs")),
            &self.newroot,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("mode=755"),
        )
        .map_err(|e| Error::sys(format!("mount(tmpfs) on {shown}"), e))?;
        // From here on cleanup() detaches it.
        let fd = sys::open(&self.newroot, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| Error::sys(format!("open({shown}) after mounting tmpfs"), e))?;
        self.root = Some(fd);
        let top = sys::fstat(self.root()?).map_err(|e| Error::sys(format!("fstat({shown})"), e))?;
        let below = sys::fstat(&lower).map_err(|e| Error::sys(format!("fstat({shown})"), e))?;
        if top.st_dev == below.st_dev {
            return Err(Error::input(
                format!("{shown} after mounting tmpfs"),
                "is not the new tmpfs",
                "something else mounted over NEWROOT meanwhile",
            ));
        }
        self.rootfs = Some(lower);
        self.own = Some(vec![top.st_dev]);
        Ok(())
    }

    /// Mounts a staging tmpfs over the NEWROOT path for the moment (every step works through the
    /// root descriptor, which still reaches the tree below) and returns its root.
    fn mount_staging(&self, why: &str) -> Result<OwnedFd, Error> {
        let shown = self.newroot.display().to_string();
        sys::mount(
            Some(Path::new("tmpfs")),
            &self.newroot,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("mode=700"),
        )
        .map_err(|e| Error::sys(format!("mount(tmpfs) for {why} on {shown}"), e))?;
        let opened = sys::open(&self.newroot, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| Error::sys(format!("open({shown}) (staging tmpfs)"), e));
        let checked = opened.and_then(|staging| {
            let below = match &self.root {
                Some(r) => sys::fstat(r).map(|st| st.st_dev).ok(),
                None => None,
            };
            let here = sys::fstat(&staging).map(|st| st.st_dev).ok();
            if here.is_none() || here == below {
                return Err(Error::input(
                    format!("{shown} (staging tmpfs)"),
                    "is not the new tmpfs",
                    "something else mounted over NEWROOT meanwhile",
                ));
            }
            Ok(staging)
        });
        if checked.is_err() {
            let _ = nix::mount::umount2(&self.newroot, MntFlags::MNT_DETACH);
        }
        checked
    }

    /// `--tmp-overlay-root`: a staging tmpfs over NEWROOT holds the overlay's upper and work
    /// directories and, at `root`, the overlay itself (NEWROOT, reached through a descriptor
    /// opened before, its one lower layer), which becomes the new root. Nothing is written to
    /// NEWROOT: the overlay writes only to the tmpfs.
    fn overlay_root(&mut self) -> Result<(), Error> {
        let shown = self.newroot.display().to_string();
        let lower = sys::open(&self.newroot, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| Error::sys(format!("open({shown})"), e))?;
        let staging = self.mount_staging("--tmp-overlay-root")?;
        // From here on cleanup() detaches the staging tmpfs and the overlay on it.
        self.root = Some(
            sys::open(&self.newroot, libc::O_PATH | libc::O_DIRECTORY)
                .map_err(|e| Error::sys(format!("open({shown}) (staging tmpfs)"), e))?,
        );
        for name in ["upper", "work", "root"] {
            sys::mkdirat(&staging, OsStr::new(name), 0o755)
                .map_err(|e| Error::sys(format!("mkdir({shown}/{name}) (staging tmpfs)"), e))?;
        }
        let data = crate::plan::overlay_options(
            &[fd_path(&lower)],
            Some((&self.newroot.join("upper"), &self.newroot.join("work"))),
            crate::in_user_namespace(),
        );
        let target = self.newroot.join("root");
        sys::mount(
            Some(Path::new("overlay")),
            &target,
            Some("overlay"),
            0,
            Some(&data),
        )
        .map_err(|e| {
            let hint = overlay_hint(&e);
            Error::sys_hint(
                format!("mount(overlay) of {shown} as the new root"),
                e,
                hint,
            )
        })?;
        let root = sys::open(&target, libc::O_PATH | libc::O_DIRECTORY).map_err(|e| {
            Error::sys(
                format!("open({}) after mounting overlay", target.display()),
                e,
            )
        })?;
        // The root of the overlay is below the staging tmpfs, which cleanup() detaches.
        self.root = Some(root);
        self.rootfs = Some(lower);
        Ok(())
    }

    /// `--overlay`, `--tmp-overlay`, `--ro-overlay` at `dst` (nosuid,nodev).
    fn overlay(
        &self,
        lower: &[PathBuf],
        upper: &crate::plan::OverlayUpper,
        dst: &Path,
    ) -> Result<(), Error> {
        use crate::plan::OverlayUpper;
        let t = self.resolve(dst, Create::Dir)?;
        let userxattr = crate::in_user_namespace();
        let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
        let mount = |data: &str, flags: libc::c_ulong| {
            self.mount_on(
                &t,
                Some(Path::new("overlay")),
                Some("overlay"),
                flags,
                Some(data),
            )
            .map_err(|e| match e {
                Error::Sys { what, source, .. } => {
                    let hint = overlay_hint(&source);
                    Error::sys_hint(what, source, hint)
                }
                other => other,
            })
        };
        match upper {
            OverlayUpper::Dir { upper, work } => mount(
                &crate::plan::overlay_options(lower, Some((upper, work)), userxattr),
                flags,
            ),
            OverlayUpper::ReadOnly => {
                flags |= libc::MS_RDONLY;
                mount(&crate::plan::overlay_options(lower, None, userxattr), flags)
            }
            OverlayUpper::Tmp => {
                let staging = self.mount_staging("--tmp-overlay")?;
                let made = ["upper", "work"].into_iter().try_for_each(|name| {
                    sys::mkdirat(&staging, OsStr::new(name), 0o755)
                        .map_err(|e| Error::sys(format!("mkdir({name}) on the staging tmpfs"), e))
                });
                let mounted = made.and_then(|()| {
                    let data = crate::plan::overlay_options(
                        lower,
                        Some((&self.newroot.join("upper"), &self.newroot.join("work"))),
                        userxattr,
                    );
                    mount(&data, flags)
                });
                let detached =
                    nix::mount::umount2(&self.newroot, MntFlags::MNT_DETACH).map_err(|e| {
                        Error::sys(
                            format!(
                                "umount2({}) of the --tmp-overlay staging tmpfs",
                                self.newroot.display()
                            ),
                            e,
                        )
                    });
                mounted?;
                detached
            }
        }
    }

    /// NEWROOT's top-level entries into the tmpfs root: a mount point of the tmpfs and a bind
    /// for each directory and file, a copy of each symlink, and a fresh directory for each name
    /// in `fresh`. Nothing is written to NEWROOT.
    fn rootfs_entries(&self, ro: bool, fresh: &[&str]) -> Result<(), Error> {
        let root = self.root()?;
        let lower = self.rootfs.as_ref().ok_or_else(|| {
            Error::input(
                "plan",
                "the rootfs entries were bound before the tmpfs root was mounted",
                "this is a bug in pivot",
            )
        })?;
        let shown = self.newroot.display();
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(fd_path(lower))
            .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(|e| Error::sys(format!("reading the directory {shown}"), e))?;
        names.sort();
        for name in fresh {
            if !names.iter().any(|n| n == name) {
                names.push(name.into());
            }
        }
        for name in &names {
            let inside = Path::new("/").join(name);
            let fail = |what: &str, e: io::Error| {
                Error::sys(
                    format!("{what} {} on the tmpfs root", self.show(&inside)),
                    e,
                )
            };
            if fresh.iter().any(|f| f == name) {
                sys::mkdirat(root, name, 0o755).map_err(|e| fail("mkdir", e))?;
                continue;
            }
            let st = sys::lstatat(lower, name)
                .map_err(|e| Error::sys(format!("lstat({shown}/{})", inside.display()), e))?;
            match st.st_mode & libc::S_IFMT {
                libc::S_IFLNK => {
                    let target = sys::readlinkat(lower, name).map_err(|e| {
                        Error::sys(format!("readlink({shown}/{})", inside.display()), e)
                    })?;
                    sys::symlinkat(&target, root, name).map_err(|e| fail("symlink", e))?;
                    continue;
                }
                libc::S_IFDIR => sys::mkdirat(root, name, 0o755).map_err(|e| fail("mkdir", e))?,
                _ => {
                    sys::openat(
                        root,
                        name,
                        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW,
                        0o644,
                    )
                    .map_err(|e| fail("create", e))?;
                }
            }
            let src = sys::openat(lower, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
                .map_err(|e| Error::sys(format!("open({shown}/{})", inside.display()), e))?;
            let dst = sys::openat(root, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
                .map_err(|e| fail("open", e))?;
            sys::mount(
                Some(&fd_path(&src)),
                &fd_path(&dst),
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )
            .map_err(|e| {
                fail(
                    &format!("mount(MS_BIND) of {shown}/{}", inside.display()),
                    e,
                )
            })?;
            if ro {
                self.readonly_at(&inside, true)?;
            }
        }
        Ok(())
    }

    /// `--chmod` and `--perms`: with a tmpfs root only on pivot's own tmpfs.
    fn chmod(
        &self,
        t: &resolve::Resolved,
        mode: u32,
        opt: &str,
        inside: &Path,
    ) -> Result<(), Error> {
        self.writable(t, opt, inside)?;
        sys::chmod_fd(&t.fd, mode)
            .map_err(|e| Error::sys(format!("chmod({mode:o}, {})", self.show(inside)), e))
    }

    /// `--file FD DST`: a regular file with FD's contents, its mode exactly `mode`.
    fn write_file(&self, fd: i32, dst: &Path, mode: u32) -> Result<(), Error> {
        let (dir, name) = self.parent_of(dst, "--file")?;
        if let Ok(existing) = sys::openat(&dir.fd, &name, libc::O_PATH | libc::O_NOFOLLOW, 0) {
            let t = resolve::Resolved {
                fd: existing,
                rel: dir.rel.join(&name),
            };
            self.writable(&t, "--file", dst)?;
        }
        let file = sys::openat(
            &dir.fd,
            &name,
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_NOFOLLOW,
            mode,
        )
        .map_err(|e| Error::sys(format!("open({}, O_CREAT)", self.show(dst)), e))?;
        sys::fchmod(&file, mode)
            .map_err(|e| Error::sys(format!("fchmod({})", self.show(dst)), e))?;
        self.copy_in(fd, &file, dst)
    }

    /// Copies descriptor `fd` into `file`, then closes `fd` (unless it is 0, 1 or 2) so that the
    /// command does not inherit it.
    fn copy_in(&self, fd: i32, file: &OwnedFd, dst: &Path) -> Result<(), Error> {
        let n = sys::copy_fd(fd, file)
            .map_err(|e| Error::sys(format!("copying descriptor {fd} to {}", self.show(dst)), e))?;
        self.say(format!("{n} bytes from descriptor {fd}"));
        if fd > 2 {
            sys::close_fd(fd);
        }
        Ok(())
    }

    /// `--bind-data FD DST`: FD's contents in a file of a staging tmpfs, bound at DST. The
    /// staging tmpfs is mounted over the NEWROOT path for the moment (every step works through
    /// the root descriptor, which still reaches the tree below) and detached again at once: the
    /// bind keeps the file, which has no name left anywhere.
    fn bind_data(&mut self, fd: i32, dst: &Path, ro: bool, mode: u32) -> Result<(), Error> {
        let opt = if ro { "--ro-bind-data" } else { "--bind-data" };
        let t = self.resolve(dst, Create::File)?;
        if t.rel.as_os_str().is_empty() {
            return Err(Error::input(
                format!("{opt} {}", dst.display()),
                "is the new root itself",
                "bind onto a path below it",
            ));
        }
        let shown = self.newroot.display().to_string();
        let staging = self.mount_staging(opt)?;
        let staged = self.stage(fd, dst, mode, &t, &staging);
        // The file is pivot's own (a --chmod of it changes nothing on disk).
        if let (Some(own), Ok(st)) = (&mut self.own, sys::fstat(&staging)) {
            own.push(st.st_dev);
        }
        let detached = nix::mount::umount2(&self.newroot, MntFlags::MNT_DETACH)
            .map_err(|e| Error::sys(format!("umount2({shown}) of the {opt} staging tmpfs"), e));
        staged?;
        detached?;
        self.attrs_at(dst, crate::plan::bind_attrs(ro, false), false)
    }

    fn stage(
        &self,
        fd: i32,
        dst: &Path,
        mode: u32,
        t: &resolve::Resolved,
        staging: &OwnedFd,
    ) -> Result<(), Error> {
        let name = OsStr::new("data");
        let file = sys::openat(
            staging,
            name,
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW,
            mode,
        )
        .map_err(|e| Error::sys("open(data, O_CREAT) on the staging tmpfs", e))?;
        sys::fchmod(&file, mode).map_err(|e| Error::sys("fchmod(data)", e))?;
        self.copy_in(fd, &file, dst)?;
        let src = sys::openat(staging, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
            .map_err(|e| Error::sys("open(data) on the staging tmpfs", e))?;
        self.mount_on(t, Some(&fd_path(&src)), None, libc::MS_BIND, None)?;
        // The bind holds the file; its name in the staging tmpfs is not needed.
        let _ = sys::unlinkat(staging, name, false);
        Ok(())
    }

    /// `--symlink TARGET DST`; an existing symlink with the same target is fine.
    fn symlink(&self, target: &Path, dst: &Path) -> Result<(), Error> {
        let (dir, name) = self.parent_of(dst, "--symlink")?;
        match sys::symlinkat(target.as_os_str(), &dir.fd, &name) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                match sys::readlinkat(&dir.fd, &name) {
                    Ok(t) if t == target.as_os_str() => Ok(()),
                    _ => Err(Error::input(
                        format!("--symlink {} {}", target.display(), dst.display()),
                        "something else exists there",
                        "give a free path, or a symlink with the same target",
                    )),
                }
            }
            Err(e) => Err(Error::sys(
                format!("symlink({}, {})", target.display(), self.show(dst)),
                e,
            )),
        }
    }

    /// The root of the tmpfs just mounted on the real directory `dir` (`/dev`): opened again by
    /// name, which crosses into the mount on top, and checked to be a filesystem of its own.
    fn mounted_dev(&self, dir: &resolve::Resolved) -> Result<OwnedFd, Error> {
        let shown = self.show(Path::new("/dev"));
        let fd = sys::openat(
            self.root()?,
            dir.rel.as_os_str(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY,
            0,
        )
        .map_err(|e| Error::sys(format!("open({shown}) after mounting tmpfs"), e))?;
        let below = sys::fstat(&dir.fd).map_err(|e| Error::sys(format!("fstat({shown})"), e))?;
        let on_top = sys::fstat(&fd).map_err(|e| Error::sys(format!("fstat({shown})"), e))?;
        if on_top.st_dev == below.st_dev {
            return Err(Error::input(
                format!("{shown} after mounting tmpfs"),
                "is not the new tmpfs",
                "something else changed the new root's /dev meanwhile",
            ));
        }
        Ok(fd)
    }

    /// Resolves an existing path, `None` (with a verbose note) when it does not exist. A masked
    /// or read-only path must be where the kernel puts it, reached through no symlink: one would
    /// make the mask land elsewhere and leave the real path open.
    fn existing(&self, inside: &Path) -> Result<Option<resolve::Resolved>, Error> {
        match resolve::resolve(self.root()?, inside, Create::No) {
            Ok(t) if t.rel != inside.strip_prefix("/").unwrap_or(inside) => Err(Error::input(
                format!("{} inside {}", inside.display(), self.newroot.display()),
                format!("resolves to /{} through a symlink", t.rel.display()),
                "masked and read-only paths must be real, as proc and sys make them",
            )),
            Ok(t) => Ok(Some(t)),
            Err(ResolveError::Io(_, e)) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.say(format!("{} does not exist: skipped", inside.display()));
                Ok(None)
            }
            Err(e) => Err(self.resolve_error(inside, e)),
        }
    }

    fn mask(&self, inside: &Path) -> Result<(), Error> {
        match self.existing(inside)? {
            Some(t) => mask(self.root()?, &t, &self.show(inside), ""),
            None => Ok(()),
        }
    }

    fn sys(&self) -> Result<(), Error> {
        let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        let inside = Path::new("sys");
        let t = self.real_dir("sys")?;
        let target = fd_path(&t.fd);
        match sys::mount(
            Some(Path::new("sysfs")),
            &target,
            Some("sysfs"),
            flags,
            None,
        ) {
            Ok(()) => return Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) => {
                // A user namespace may mount sysfs only together with its own network
                // namespace; the host's /sys, bound read-only, is the next best thing.
                self.say(format!(
                    "mount(sysfs) refused ({}): binding the host's /sys read-only instead",
                    conventions::output::errtext(&e)
                ));
            }
            Err(e) => {
                return Err(Error::sys(
                    format!("mount(sysfs) on {}", self.show(inside)),
                    e,
                ))
            }
        }
        let bound = sys::mount(
            Some(Path::new("/sys")),
            &target,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        );
        match bound {
            Ok(()) => self.readonly_at(inside, true),
            Err(e) => {
                self.say(format!(
                    "mount(MS_BIND) of /sys failed too ({}): /sys left empty",
                    conventions::output::errtext(&e)
                ));
                Ok(())
            }
        }
    }

    fn pivot(&mut self, put_old: Option<&Path>) -> Result<(), Error> {
        let root = self.root()?;
        let dot = Path::new(".");
        let old = sys::open(Path::new("/"), libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| Error::sys("open(/)", e))?;
        let put_old_rel = match put_old {
            Some(dir) => Some(self.resolve(dir, Create::Dir)?.rel),
            None => None,
        };
        sys::fchdir(root)
            .map_err(|e| Error::sys(format!("fchdir({})", self.newroot.display()), e))?;
        let target = put_old_rel.as_deref().unwrap_or(dot);
        if let Err(e) = nix::unistd::pivot_root(dot, target).map_err(io::Error::from) {
            let kind = mountinfo::root_kind(&mountinfo::read());
            if e.raw_os_error() == Some(libc::EINVAL) && put_old.is_none() {
                if let Some(why) = fallback_reason(&kind) {
                    self.say(format!(
                        "pivot_root(\".\", \".\") failed: {} because {why}: falling back to \
                         MS_MOVE of {} onto / and chroot(\".\")",
                        conventions::output::errtext(&e),
                        self.newroot.display()
                    ));
                    move_and_chroot(&self.newroot)?;
                    self.pivoted = true;
                    return Ok(());
                }
            }
            // Leave the caller where it was; the rbind is removed by the caller's cleanup.
            let _ = sys::fchdir(&old);
            return Err(Error::sys_hint(
                format!(
                    "pivot_root(\"{}\", \"{}\")",
                    self.newroot.display(),
                    self.newroot.join(target).display()
                ),
                e,
                "NEWROOT and the mount above / must not be shared: run under unshare -m \
                 --propagation private",
            ));
        }
        self.pivoted = true;
        if put_old.is_none() {
            // The old root now sits on top of "/"; take it away without touching the host.
            sys::fchdir(&old).map_err(|e| Error::sys("fchdir(old root)", e))?;
            sys::mount(None, dot, None, libc::MS_SLAVE | libc::MS_REC, None)
                .map_err(|e| Error::sys("mount(MS_REC|MS_SLAVE) on the old root", e))?;
            nix::mount::umount2(dot, MntFlags::MNT_DETACH)
                .map_err(|e| Error::sys("umount2(old root, MNT_DETACH)", e))?;
        }
        nix::unistd::chdir(Path::new("/")).map_err(|e| Error::sys("chdir(/)", e))
    }

    /// Undoes what was mounted before a failure: the rbind of NEWROOT carries every mount made
    /// inside it, so one lazy unmount removes them all.
    pub fn cleanup(&self) {
        if self.root.is_some() && !self.pivoted {
            if let Err(e) =
                nix::mount::umount2(&self.newroot, MntFlags::MNT_DETACH).map_err(io::Error::from)
            {
                self.say(format!(
                    "cleanup: umount2({}) failed: {}",
                    self.newroot.display(),
                    conventions::output::errtext(&e)
                ));
            }
        }
    }
}

/// Masks `t` inside `root` (`shown` in messages, `list` appended: the OCI list that asked):
/// a directory gets an empty read-only tmpfs, anything else a bind of /dev/null, the new root's
/// own when it has one (an initramfs chroot may have no /dev of its own), else the host's.
pub(crate) fn mask(
    root: &OwnedFd,
    t: &resolve::Resolved,
    shown: &str,
    list: &str,
) -> Result<(), Error> {
    let st = sys::fstat(&t.fd).map_err(|e| Error::sys(format!("fstat({shown})"), e))?;
    let target = fd_path(&t.fd);
    let r = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        sys::mount(
            Some(Path::new("tmpfs")),
            &target,
            Some("tmpfs"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some("mode=555,size=4k"),
        )
        .map_err(|e| (e, "mount(tmpfs)".to_string()))
    } else {
        let null = resolve::resolve(root, Path::new("dev/null"), Create::No)
            .ok()
            .filter(|n| {
                sys::fstat(&n.fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFCHR)
            });
        let src = null
            .as_ref()
            .map_or(PathBuf::from("/dev/null"), |n| fd_path(&n.fd));
        sys::mount(Some(&src), &target, None, libc::MS_BIND, None)
            .map_err(|e| (e, format!("mount(MS_BIND) of {}", src.display())))
    };
    r.map_err(|(e, what)| Error::sys(format!("{what} over {shown} to mask it{list}"), e))
}

/// Why pivot_root's EINVAL may be answered with MS_MOVE + chroot, or `None` when it may not.
pub fn fallback_reason(kind: &RootKind) -> Option<&'static str> {
    match kind {
        RootKind::Rootfs => Some("/ is the initramfs (rootfs)"),
        RootKind::NotMountPoint => Some("/ is not a mount point (chroot)"),
        RootKind::Mounted(_) => None,
    }
}

/// The initramfs way into a new root: move its mount onto `/`, chroot into it, chdir `/`. The
/// caller's cwd must be the new root's mount.
pub fn move_and_chroot(newroot: &Path) -> Result<(), Error> {
    let dot = Path::new(".");
    sys::mount(Some(dot), Path::new("/"), None, libc::MS_MOVE, None).map_err(|e| {
        Error::sys_hint(
            format!("mount(MS_MOVE) of {} onto /", newroot.display()),
            e,
            "NEWROOT must be a mount point and its parent mount not shared",
        )
    })?;
    nix::unistd::chroot(dot)
        .map_err(|e| Error::sys(format!("chroot({})", newroot.display()), e))?;
    nix::unistd::chdir(Path::new("/")).map_err(|e| Error::sys("chdir(/)", e))
}

/// `MOUNT_ATTR_*` names for messages.
fn attr_names(attrs: u64) -> String {
    let names: Vec<&str> = [
        (sys::MOUNT_ATTR_RDONLY, "MOUNT_ATTR_RDONLY"),
        (sys::MOUNT_ATTR_NOSUID, "MOUNT_ATTR_NOSUID"),
        (sys::MOUNT_ATTR_NODEV, "MOUNT_ATTR_NODEV"),
    ]
    .into_iter()
    .filter(|(bit, _)| attrs & bit != 0)
    .map(|(_, name)| name)
    .collect();
    names.join("|")
}

fn overlay_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) => {
            "overlayfs in a user namespace needs Linux 5.11 or newer and a filesystem that allows \
             it for the layers"
        }
        Some(libc::EINVAL) => {
            "the kernel refused the layers: --ro-overlay needs two --overlay-src on older \
             kernels; WORKDIR must be an empty directory on RWSRC's filesystem; layers must not \
             overlap"
        }
        Some(libc::ELOOP) => "overlay layers must not overlap",
        Some(libc::ENODEV) => "the kernel has no overlayfs (modprobe overlay)",
        _ => crate::error::hint_for(e),
    }
}

fn mount_hint(fstype: Option<&str>, e: &io::Error) -> &'static str {
    match (fstype, e.raw_os_error()) {
        (Some("proc"), Some(libc::EPERM)) => {
            "a user namespace may mount proc only with a PID namespace of its own (unshare -p -f) \
             and a fully visible /proc; or use --no-proc"
        }
        (Some("sysfs"), Some(libc::EPERM)) => "use --no-sys",
        (None, Some(libc::ENOENT)) => "the source does not exist",
        _ => crate::error::hint_for(e),
    }
}
