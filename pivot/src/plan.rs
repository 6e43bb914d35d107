//! The pure part of pivot: options in, the ordered list of mount steps out. No syscalls here, so
//! the order (which is what runtimes get wrong) is unit-tested on its own.

use std::ffi::OsString;
use std::path::PathBuf;

/// How the mount tree is cut off from the host's before anything is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Nothing propagates either way (crun, unshare's default).
    Private,
    /// Host mounts still propagate in, ours never out (runc, youki).
    Slave,
}

/// A user-requested mount, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserMount {
    /// `--bind SRC:DST` (`ro` for `--ro-bind`, `dev` for `--dev-bind`, `skip_missing` for the
    /// `-try` forms).
    Bind {
        /// Host path.
        src: PathBuf,
        /// Path inside the new root.
        dst: PathBuf,
        /// Read-only.
        ro: bool,
        /// Device nodes and set-uid bits keep working (`--dev-bind`); without it the bind is
        /// nodev,nosuid, as bubblewrap's `--bind` is.
        dev: bool,
        /// A missing source skips the bind instead of failing (`--bind-try` and the like).
        skip_missing: bool,
    },
    /// `--tmpfs DST`.
    Tmpfs {
        /// Path inside the new root.
        dst: PathBuf,
        /// `--size BYTES` given before it.
        size: Option<u64>,
        /// `--perms OCTAL` given before it (default 0755).
        mode: Option<u32>,
    },
    /// `--dir DST`: a directory (parents made 0755 as needed).
    Dir {
        /// Path inside the new root.
        dst: PathBuf,
        /// `--perms OCTAL` given before it (default 0755).
        mode: Option<u32>,
    },
    /// `--file FD DST`: a regular file with the contents read from FD.
    File {
        /// Descriptor to read (closed after reading unless it is 0, 1 or 2).
        fd: i32,
        /// Path inside the new root.
        dst: PathBuf,
        /// `--perms OCTAL` given before it (default 0666, as bubblewrap's).
        mode: Option<u32>,
    },
    /// `--bind-data FD DST`, `--ro-bind-data FD DST`: the contents of FD in a file of pivot's own
    /// tmpfs, bound at DST (nosuid,nodev); nothing is written at DST itself beyond a mount point.
    BindData {
        /// Descriptor to read (closed after reading unless it is 0, 1 or 2).
        fd: i32,
        /// Path inside the new root.
        dst: PathBuf,
        /// Read-only.
        ro: bool,
        /// `--perms OCTAL` given before it (default 0600, as bubblewrap's).
        mode: Option<u32>,
    },
    /// `--symlink TARGET DST`.
    Symlink {
        /// What the link says.
        target: PathBuf,
        /// Path inside the new root.
        dst: PathBuf,
    },
    /// `--chmod OCTAL PATH`.
    Chmod {
        /// The new mode bits.
        mode: u32,
        /// Path inside the new root.
        path: PathBuf,
    },
    /// `--mqueue DST`: a POSIX message queue filesystem.
    Mqueue {
        /// Path inside the new root.
        dst: PathBuf,
    },
    /// `--remount-ro DST`: the mount at DST (only that one, not those below it) read-only.
    RemountRo {
        /// Path inside the new root: a mount point.
        dst: PathBuf,
    },
    /// `--overlay-src SRC`... then `--overlay RWSRC WORKDIR DST`, `--tmp-overlay DST` or
    /// `--ro-overlay DST`: an overlayfs (nosuid,nodev) of host directories.
    Overlay {
        /// The `--overlay-src` directories in the order given: the first is the top-most lower
        /// layer, as in overlayfs's `lowerdir` and bubblewrap.
        lower: Vec<PathBuf>,
        /// Where writes go.
        upper: OverlayUpper,
        /// Path inside the new root.
        dst: PathBuf,
    },
}

/// Where an overlay's writes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayUpper {
    /// `--overlay RWSRC WORKDIR DST`: into the host directory RWSRC (WORKDIR an empty directory
    /// on the same filesystem).
    Dir {
        /// The upper directory.
        upper: PathBuf,
        /// The work directory.
        work: PathBuf,
    },
    /// `--tmp-overlay`: into a tmpfs nobody can reach, gone with the mount.
    Tmp,
    /// `--ro-overlay`: nowhere, the overlay is read-only.
    ReadOnly,
}

impl UserMount {
    /// The path inside the new root this operation works on.
    pub fn dst(&self) -> &std::path::Path {
        match self {
            UserMount::Bind { dst, .. }
            | UserMount::Tmpfs { dst, .. }
            | UserMount::Dir { dst, .. }
            | UserMount::File { dst, .. }
            | UserMount::BindData { dst, .. }
            | UserMount::Symlink { dst, .. }
            | UserMount::Mqueue { dst }
            | UserMount::RemountRo { dst }
            | UserMount::Overlay { dst, .. } => dst,
            UserMount::Chmod { path, .. } => path,
        }
    }

    /// The option that asks for it, for messages.
    pub fn option(&self) -> &'static str {
        match self {
            UserMount::Bind {
                ro,
                dev,
                skip_missing,
                ..
            } => bind_option(*ro, *dev, *skip_missing),
            UserMount::Tmpfs { .. } => "--tmpfs",
            UserMount::Dir { .. } => "--dir",
            UserMount::File { .. } => "--file",
            UserMount::BindData { ro: false, .. } => "--bind-data",
            UserMount::BindData { ro: true, .. } => "--ro-bind-data",
            UserMount::Symlink { .. } => "--symlink",
            UserMount::Chmod { .. } => "--chmod",
            UserMount::Mqueue { .. } => "--mqueue",
            UserMount::RemountRo { .. } => "--remount-ro",
            UserMount::Overlay { upper, .. } => match upper {
                OverlayUpper::Dir { .. } => "--overlay",
                OverlayUpper::Tmp => "--tmp-overlay",
                OverlayUpper::ReadOnly => "--ro-overlay",
            },
        }
    }

    /// Whether it may name the new root itself (`--chmod 0755 /`, `--remount-ro /`, `--dir /`):
    /// every other operation would put something on the root and be lost under the pivot.
    pub fn may_be_root(&self) -> bool {
        matches!(
            self,
            UserMount::Chmod { .. } | UserMount::RemountRo { .. } | UserMount::Dir { .. }
        )
    }

    /// The descriptor it reads, if any.
    pub fn fd(&self) -> Option<i32> {
        match self {
            UserMount::File { fd, .. } | UserMount::BindData { fd, .. } => Some(*fd),
            _ => None,
        }
    }
}

/// A change to the command's environment, applied in command-line order just before the exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvOp {
    /// `--setenv VAR VALUE`.
    Set(OsString, OsString),
    /// `--unsetenv VAR`.
    Unset(OsString),
    /// `--clear-env`: every variable set so far is removed.
    Clear,
}

/// Checks a variable name of `--setenv`/`--unsetenv`: not empty, no `=` (it would end the name)
/// and no NUL.
pub fn check_env_name(name: &std::ffi::OsStr) -> Result<(), String> {
    let b = name.as_encoded_bytes();
    if b.is_empty() || b.contains(&b'=') || b.contains(&0) {
        return Err(format!(
            "'{}' is not a variable name (not empty, no '=')",
            name.to_string_lossy()
        ));
    }
    Ok(())
}

/// The environment `start` becomes after `ops`, in order.
pub fn environment(
    start: impl IntoIterator<Item = (OsString, OsString)>,
    ops: &[EnvOp],
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = start.into_iter().collect();
    for op in ops {
        match op {
            EnvOp::Set(k, v) => match env.iter_mut().find(|(name, _)| name == k) {
                Some(slot) => slot.1 = v.clone(),
                None => env.push((k.clone(), v.clone())),
            },
            EnvOp::Unset(k) => env.retain(|(name, _)| name != k),
            EnvOp::Clear => env.clear(),
        }
    }
    env
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The directory that becomes `/`.
    pub newroot: PathBuf,
    /// Program and arguments (never empty: `/bin/sh` by default).
    pub argv: Vec<OsString>,
    /// Propagation applied to `/` first.
    pub propagation: Propagation,
    /// Mount a fresh /proc.
    pub proc: bool,
    /// Mount a minimal /dev.
    pub dev: bool,
    /// Mount a read-only /sys.
    pub sys: bool,
    /// Apply the masked and read-only paths.
    pub mask: bool,
    /// Make the root read-only at the end.
    pub ro: bool,
    /// Build the new root on a fresh tmpfs and bind NEWROOT's top-level entries into it, so that
    /// nothing pivot creates lands in NEWROOT on disk.
    pub tmpfs_root: bool,
    /// Make the new root an overlay with NEWROOT as its only lower layer and its writes in an
    /// invisible tmpfs: NEWROOT is shared unchanged, the writes are thrown away.
    pub overlay_root: bool,
    /// User mounts in order.
    pub mounts: Vec<UserMount>,
    /// Keep the old root here (inside the new root) instead of detaching it.
    pub put_old: Option<PathBuf>,
    /// Working directory after the pivot.
    pub wd: Option<PathBuf>,
    /// Hostname to set.
    pub hostname: Option<String>,
    /// Changes to the command's environment, in order.
    pub env: Vec<EnvOp>,
    /// Fork the command and stay as its reaping parent instead of exec'ing it.
    pub reaper: bool,
    /// Run the command in a new session.
    pub new_session: bool,
    /// SIGKILL when the parent dies.
    pub die_with_parent: bool,
    /// `--info-fd`.
    pub info_fd: Option<i32>,
    /// `--json-status-fd`.
    pub json_status_fd: Option<i32>,
    /// `--block-fd`.
    pub block_fd: Option<i32>,
    /// `--sync-fd`.
    pub sync_fd: Option<i32>,
    /// Print each step.
    pub verbose: bool,
}

/// Facts about the running process that change the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// Inside a user namespace that is not the initial one: device nodes cannot be created, so
    /// they are bind-mounted from the host's /dev.
    pub in_userns: bool,
}

/// The character devices of the minimal /dev: name, major, minor.
pub const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The symlinks of the minimal /dev: name, target.
pub const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Paths hidden from the container (runc's defaults): a file gets /dev/null bound over it, a
/// directory an empty read-only tmpfs.
pub const MASKED: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only (runc's defaults).
pub const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// One step, in the order it runs. Paths of steps before [`Step::Pivot`] are inside the new root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `mount(NULL, "/", MS_REC|MS_PRIVATE or MS_SLAVE)`.
    Propagation(Propagation),
    /// Recursive bind of NEWROOT onto itself: pivot_root needs a mount point.
    BindRoot,
    /// A fresh tmpfs (mode 755, nosuid, nodev) mounted over NEWROOT becomes the new root
    /// (`--tmpfs-root`); NEWROOT itself stays reachable through a descriptor opened before.
    TmpfsRoot,
    /// The new root is an overlay of NEWROOT with an invisible tmpfs as upper layer
    /// (`--tmp-overlay-root`).
    OverlayRoot,
    /// NEWROOT's top-level entries into the tmpfs root: directories and files bound (recursively,
    /// read-only with `--ro`), symlinks copied; the names in `fresh` (proc, dev, sys when pivot
    /// mounts them) get empty directories of the tmpfs instead.
    RootfsEntries {
        /// Bind them read-only.
        ro: bool,
        /// Entries made fresh instead of bound.
        fresh: Vec<&'static str>,
    },
    /// Fresh procfs at /proc (nosuid, nodev, noexec).
    Proc,
    /// tmpfs at /dev (mode 755, nosuid).
    DevTmpfs,
    /// `mknod` of a character device in /dev (real root only).
    DevNode {
        /// Name in /dev.
        name: &'static str,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// Bind of the host's /dev/NAME (inside a user namespace).
    DevBind {
        /// Name in /dev.
        name: &'static str,
    },
    /// Symlink in /dev.
    DevLink {
        /// Name in /dev.
        name: &'static str,
        /// Target.
        target: &'static str,
    },
    /// devpts (newinstance, ptmxmode=0666) at /dev/pts.
    Devpts,
    /// tmpfs at /dev/shm (mode 1777).
    DevShm,
    /// Read-only sysfs at /sys (read-only rbind of the host's /sys where sysfs is refused).
    Sys,
    /// A user mount.
    User(UserMount),
    /// Hide a path (skipped when it does not exist).
    Mask(&'static str),
    /// Make a path read-only (skipped when it does not exist).
    ReadOnly(&'static str),
    /// Make the new root's own mount read-only (runs after the pivot, on `/`).
    RootReadOnly,
    /// pivot_root, then detach the old root (or keep it at `put_old`), chdir `/`.
    Pivot {
        /// Where to keep the old root.
        put_old: Option<PathBuf>,
    },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Propagation(Propagation::Private) => write!(f, "make / recursively private"),
            Step::Propagation(Propagation::Slave) => write!(f, "make / recursively slave"),
            Step::BindRoot => write!(f, "bind NEWROOT onto itself (recursive)"),
            Step::TmpfsRoot => write!(f, "mount tmpfs over NEWROOT as the new root"),
            Step::OverlayRoot => write!(
                f,
                "mount an overlay of NEWROOT with a tmpfs upper layer as the new root"
            ),
            Step::RootfsEntries { ro, fresh } => write!(
                f,
                "bind NEWROOT's entries into the tmpfs root{}{}",
                if *ro { " read-only" } else { "" },
                if fresh.is_empty() {
                    String::new()
                } else {
                    format!(" (fresh {})", fresh.join(", "))
                }
            ),
            Step::Proc => write!(f, "mount proc on /proc"),
            Step::DevTmpfs => write!(f, "mount tmpfs on /dev"),
            Step::DevNode { name, major, minor } => {
                write!(f, "mknod /dev/{name} c {major} {minor}")
            }
            Step::DevBind { name } => write!(f, "bind the host's /dev/{name} on /dev/{name}"),
            Step::DevLink { name, target } => write!(f, "symlink /dev/{name} -> {target}"),
            Step::Devpts => write!(f, "mount devpts (newinstance) on /dev/pts"),
            Step::DevShm => write!(f, "mount tmpfs on /dev/shm"),
            Step::Sys => write!(f, "mount sysfs read-only on /sys"),
            Step::User(UserMount::Bind {
                src, dst, ro, dev, ..
            }) => write!(
                f,
                "bind {} on {} ({})",
                src.display(),
                dst.display(),
                bind_flags(*ro, *dev)
            ),
            Step::User(UserMount::Tmpfs { dst, size, mode }) => {
                write!(f, "mount tmpfs on {}", dst.display())?;
                write!(f, " (mode {:o}", mode.unwrap_or(0o755))?;
                if let Some(size) = size {
                    write!(f, ", size {size}")?;
                }
                write!(f, ")")
            }
            Step::User(UserMount::Dir { dst, mode }) => {
                write!(
                    f,
                    "mkdir {} (mode {:o})",
                    dst.display(),
                    mode.unwrap_or(0o755)
                )
            }
            Step::User(UserMount::File { fd, dst, mode }) => write!(
                f,
                "write fd {fd} to {} (mode {:o})",
                dst.display(),
                mode.unwrap_or(0o666)
            ),
            Step::User(UserMount::BindData { fd, dst, ro, mode }) => write!(
                f,
                "bind{} the data of fd {fd} on {} (mode {:o})",
                if *ro { " read-only" } else { "" },
                dst.display(),
                mode.unwrap_or(0o600)
            ),
            Step::User(UserMount::Symlink { target, dst }) => {
                write!(f, "symlink {} -> {}", dst.display(), target.display())
            }
            Step::User(UserMount::Chmod { mode, path }) => {
                write!(f, "chmod {mode:o} {}", path.display())
            }
            Step::User(UserMount::Mqueue { dst }) => write!(f, "mount mqueue on {}", dst.display()),
            Step::User(UserMount::RemountRo { dst }) => {
                write!(f, "remount {} read-only", dst.display())
            }
            Step::User(UserMount::Overlay { lower, upper, dst }) => {
                let layers: Vec<String> = lower.iter().map(|l| l.display().to_string()).collect();
                write!(
                    f,
                    "mount overlay of {} on {}",
                    layers.join(":"),
                    dst.display()
                )?;
                match upper {
                    OverlayUpper::Dir { upper, work } => write!(
                        f,
                        " (writes to {}, work {})",
                        upper.display(),
                        work.display()
                    ),
                    OverlayUpper::Tmp => write!(f, " (writes to a tmpfs)"),
                    OverlayUpper::ReadOnly => write!(f, " (read-only)"),
                }
            }
            Step::Mask(p) => write!(f, "mask {p}"),
            Step::ReadOnly(p) => write!(f, "make {p} read-only"),
            Step::RootReadOnly => write!(f, "make / read-only"),
            Step::Pivot { put_old: None } => write!(f, "pivot_root and detach the old root"),
            Step::Pivot { put_old: Some(d) } => {
                write!(f, "pivot_root, keeping the old root at {}", d.display())
            }
        }
    }
}

/// Orders the steps: cut propagation, make the root a mount point, mount what a program expects
/// while host paths are still reachable, then user mounts (so they may cover a standard one), then
/// masks (so no user mount uncovers them), the pivot, and the read-only root last.
pub fn plan(opts: &Options, facts: Facts) -> Vec<Step> {
    let mut steps = vec![Step::Propagation(opts.propagation)];
    if opts.tmpfs_root {
        let fresh = [(opts.proc, "proc"), (opts.dev, "dev"), (opts.sys, "sys")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| name)
            .collect();
        steps.push(Step::TmpfsRoot);
        steps.push(Step::RootfsEntries { ro: opts.ro, fresh });
    } else if opts.overlay_root {
        steps.push(Step::OverlayRoot);
    } else {
        steps.push(Step::BindRoot);
    }
    if opts.proc {
        steps.push(Step::Proc);
    }
    if opts.dev {
        steps.push(Step::DevTmpfs);
        for (name, major, minor) in DEVICES {
            steps.push(if facts.in_userns {
                Step::DevBind { name }
            } else {
                Step::DevNode { name, major, minor }
            });
        }
        for (name, target) in DEV_LINKS {
            steps.push(Step::DevLink { name, target });
        }
        steps.push(Step::Devpts);
        steps.push(Step::DevShm);
    }
    if opts.sys {
        steps.push(Step::Sys);
    }
    steps.extend(opts.mounts.iter().cloned().map(Step::User));
    if opts.mask {
        let mounted = |p: &str| {
            (opts.proc && p.starts_with("/proc/")) || (opts.sys && p.starts_with("/sys/"))
        };
        steps.extend(MASKED.into_iter().filter(|p| mounted(p)).map(Step::Mask));
        steps.extend(
            READ_ONLY
                .into_iter()
                .filter(|p| mounted(p))
                .map(Step::ReadOnly),
        );
    }
    steps.push(Step::Pivot {
        put_old: opts.put_old.clone(),
    });
    // Last, so that the pivot may still create --put-old's directory.
    if opts.ro {
        steps.push(Step::RootReadOnly);
    }
    steps
}

/// The mount flags a bind gets, as mountinfo shows them.
pub fn bind_flags(ro: bool, dev: bool) -> &'static str {
    match (ro, dev) {
        (false, false) => "nosuid,nodev",
        (true, false) => "ro,nosuid,nodev",
        (false, true) => "devices and set-uid allowed",
        (true, true) => "ro, devices and set-uid allowed",
    }
}

/// The option that asks for such a bind, for messages.
pub fn bind_option(ro: bool, dev: bool, skip_missing: bool) -> &'static str {
    match (ro, dev, skip_missing) {
        (false, false, false) => "--bind",
        (true, false, false) => "--ro-bind",
        (_, true, false) => "--dev-bind",
        (false, false, true) => "--bind-try",
        (true, false, true) => "--ro-bind-try",
        (_, true, true) => "--dev-bind-try",
    }
}

/// The `MOUNT_ATTR_*` bits a bind gets after it is made (see [`bind_flags`]).
pub fn bind_attrs(ro: bool, dev: bool) -> u64 {
    let mut attrs = 0;
    if ro {
        attrs |= crate::sys::MOUNT_ATTR_RDONLY;
    }
    if !dev {
        attrs |= crate::sys::MOUNT_ATTR_NOSUID | crate::sys::MOUNT_ATTR_NODEV;
    }
    attrs
}

/// Escapes a path for overlayfs's option string: `,` ends an option, `:` separates layers, and
/// `\` escapes either.
pub fn escape_overlay_path(p: &std::path::Path) -> String {
    let mut out = String::new();
    for c in p.to_string_lossy().chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The option string of an overlay mount: layers (top-most first), the upper and work
/// directories if any, `userxattr` inside a user namespace (overlayfs there may only use
/// `user.*` extended attributes).
pub fn overlay_options(
    lower: &[PathBuf],
    upper: Option<(&std::path::Path, &std::path::Path)>,
    userxattr: bool,
) -> String {
    let layers: Vec<String> = lower.iter().map(|l| escape_overlay_path(l)).collect();
    let mut data = format!("lowerdir={}", layers.join(":"));
    if let Some((u, w)) = upper {
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            escape_overlay_path(u),
            escape_overlay_path(w)
        ));
    }
    if userxattr {
        data.push_str(",userxattr");
    }
    data
}

/// Parses an `--chmod`/`--perms` mode: octal digits, at most 07777.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 && !digits.is_empty() && !digits.starts_with('+') => Ok(m),
        _ => Err(format!("'{s}' is not an octal mode (0 to 7777)")),
    }
}

/// Parses a descriptor number of `--file`/`--bind-data`.
pub fn parse_fd(s: &str) -> Result<i32, String> {
    match s.parse::<i32>() {
        Ok(fd) if fd >= 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(fd),
        _ => Err(format!("'{s}' is not a file descriptor number")),
    }
}

/// Why a destination must be absolute, for the usage errors.
pub const DST_ABSOLUTE: &str = "DST is a path inside the new root, starting with /";

/// Parses `--bind SRC:DST` (or `SRC` alone, bound to the same path inside). Exactly one `:`
/// separates the two; a colon that is part of a path is written `\:`, a backslash `\\`. A second
/// `:`, a relative DST, or a relative lone SRC (it would name a different place inside) is an
/// error rather than a guess.
pub fn parse_bind(spec: &str) -> Result<(PathBuf, PathBuf), String> {
    let mut parts = vec![String::new()];
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        let part = match parts.last_mut() {
            Some(p) => p,
            None => return Err(format!("'{spec}' is not SRC:DST")),
        };
        match c {
            '\\' => match chars.next() {
                Some(e @ (':' | '\\')) => part.push(e),
                Some(other) => {
                    return Err(format!(
                        "'{spec}' has '\\{other}', which is no escape (only \\: and \\\\ are)"
                    ))
                }
                None => {
                    return Err(format!(
                        "'{spec}' ends in a lone '\\' (write \\\\ for a backslash)"
                    ))
                }
            },
            ':' => parts.push(String::new()),
            c => part.push(c),
        }
    }
    let (src, dst, lone) = match parts.as_slice() {
        [src] => (src.clone(), src.clone(), true),
        [src, dst] => (src.clone(), dst.clone(), false),
        _ => {
            return Err(format!(
                "'{spec}' has more than one ':' (write \\: for a colon that is part of a path)"
            ))
        }
    };
    if src.is_empty() || dst.is_empty() {
        return Err(format!("'{spec}' is not SRC:DST"));
    }
    if !dst.starts_with('/') {
        return Err(if lone {
            format!(
                "'{src}' is not an absolute path (SRC alone is also the destination inside the \
                 new root; give SRC:DST)"
            )
        } else {
            format!("'{dst}' is not an absolute path ({DST_ABSOLUTE})")
        });
    }
    Ok((PathBuf::from(src), PathBuf::from(dst)))
}

/// The `--bind` spec that [`parse_bind`] reads back as `src` and `dst`.
pub fn bind_spec(src: &str, dst: &str) -> String {
    let esc = |p: &str| p.replace('\\', "\\\\").replace(':', "\\:");
    format!("{}:{}", esc(src), esc(dst))
}

/// Whether `/proc/self/uid_map` shows the initial user namespace (the identity map of all ids).
pub fn is_initial_uid_map(map: &str) -> bool {
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn opts() -> Options {
        Options {
            newroot: PathBuf::from("/r"),
            argv: vec![OsString::from("/bin/sh")],
            propagation: Propagation::Private,
            proc: true,
            dev: true,
            sys: true,
            mask: true,
            ro: false,
            tmpfs_root: false,
            overlay_root: false,
            mounts: vec![],
            put_old: None,
            wd: None,
            hostname: None,
            env: vec![],
            reaper: false,
            new_session: false,
            die_with_parent: false,
            info_fd: None,
            json_status_fd: None,
            block_fd: None,
            sync_fd: None,
            verbose: false,
        }
    }

    const ROOT: Facts = Facts { in_userns: false };
    const USERNS: Facts = Facts { in_userns: true };

    #[test]
    fn full_plan_order() {
        let s = plan(&opts(), ROOT);
        assert_eq!(s[0], Step::Propagation(Propagation::Private));
        assert_eq!(s[1], Step::BindRoot);
        assert_eq!(s[2], Step::Proc);
        assert_eq!(s[3], Step::DevTmpfs);
        assert_eq!(
            s[4],
            Step::DevNode {
                name: "null",
                major: 1,
                minor: 3
            }
        );
        let pos = |step: &Step| s.iter().position(|x| x == step).unwrap();
        assert!(pos(&Step::Devpts) < pos(&Step::DevShm));
        assert!(pos(&Step::DevShm) < pos(&Step::Sys));
        assert!(pos(&Step::Sys) < pos(&Step::Mask("/proc/kcore")));
        assert!(pos(&Step::Mask("/sys/firmware")) < pos(&Step::ReadOnly("/proc/sys")));
        assert_eq!(s.last(), Some(&Step::Pivot { put_old: None }));
        assert_eq!(
            s.iter().filter(|x| matches!(x, Step::Mask(_))).count(),
            MASKED.len()
        );
        assert!(!s.contains(&Step::RootReadOnly));
        assert!(!s.iter().any(|x| matches!(x, Step::DevBind { .. })));
    }

    #[test]
    fn user_namespace_binds_devices() {
        let s = plan(&opts(), USERNS);
        let binds: Vec<_> = s
            .iter()
            .filter_map(|x| match x {
                Step::DevBind { name } => Some(*name),
                _ => None,
            })
            .collect();
        assert_eq!(binds, ["null", "zero", "full", "random", "urandom", "tty"]);
        assert!(!s.iter().any(|x| matches!(x, Step::DevNode { .. })));
    }

    #[test]
    fn user_mounts_keep_order_and_precede_masks_and_ro() {
        let mut o = opts();
        o.ro = true;
        o.propagation = Propagation::Slave;
        o.put_old = Some(PathBuf::from("/old"));
        o.mounts = vec![
            UserMount::Tmpfs {
                dst: PathBuf::from("/tmp"),
                size: None,
                mode: None,
            },
            UserMount::Bind {
                src: PathBuf::from("/a"),
                dst: PathBuf::from("/tmp/a"),
                ro: true,
                dev: false,
                skip_missing: false,
            },
        ];
        let s = plan(&o, ROOT);
        assert_eq!(s[0], Step::Propagation(Propagation::Slave));
        let i = s
            .iter()
            .position(|x| matches!(x, Step::User(UserMount::Tmpfs { .. })))
            .unwrap();
        assert!(matches!(
            &s[i + 1],
            Step::User(UserMount::Bind { ro: true, .. })
        ));
        assert_eq!(s[i + 2], Step::Mask(MASKED[0]));
        let n = s.len();
        assert_eq!(
            s[n - 2],
            Step::Pivot {
                put_old: Some(PathBuf::from("/old"))
            }
        );
        assert_eq!(s[n - 1], Step::RootReadOnly);
    }

    #[test]
    fn bare_plan_is_only_the_pivot() {
        let mut o = opts();
        o.proc = false;
        o.dev = false;
        o.sys = false;
        o.mask = false;
        assert_eq!(
            plan(&o, ROOT),
            vec![
                Step::Propagation(Propagation::Private),
                Step::BindRoot,
                Step::Pivot { put_old: None }
            ]
        );
    }

    #[test]
    fn masks_follow_what_is_mounted() {
        let mut o = opts();
        o.proc = false;
        let s = plan(&o, ROOT);
        assert!(s.contains(&Step::Mask("/sys/firmware")));
        assert!(!s
            .iter()
            .any(|x| matches!(x, Step::Mask(p) | Step::ReadOnly(p) if p.starts_with("/proc"))));
        o.mask = false;
        assert!(!plan(&o, ROOT).iter().any(|x| matches!(x, Step::Mask(_))));
    }

    #[test]
    fn bind_specs() {
        assert_eq!(
            parse_bind("/a:/b"),
            Ok((PathBuf::from("/a"), PathBuf::from("/b")))
        );
        assert_eq!(
            parse_bind("/a"),
            Ok((PathBuf::from("/a"), PathBuf::from("/a")))
        );
        assert!(parse_bind(":/b").is_err());
        assert!(parse_bind("/a:").is_err());
        assert!(parse_bind("").is_err());
        assert!(parse_bind(":").is_err());
        // Relative SRC is a host path (made absolute later); DST never is.
        assert_eq!(
            parse_bind("a:/b"),
            Ok((PathBuf::from("a"), PathBuf::from("/b")))
        );
        assert!(parse_bind("/a:b")
            .unwrap_err()
            .contains("'b' is not an absolute path"));
        assert!(parse_bind("a").unwrap_err().contains("SRC alone"));
        assert!(parse_bind("/a:/b:/c")
            .unwrap_err()
            .contains("more than one ':'"));
        // Escapes: a colon or a backslash that is part of a path.
        assert_eq!(
            parse_bind(r"/a\:b:/c\\d"),
            Ok((PathBuf::from("/a:b"), PathBuf::from(r"/c\d")))
        );
        assert_eq!(
            parse_bind(r"/x\:y"),
            Ok((PathBuf::from("/x:y"), PathBuf::from("/x:y")))
        );
        assert!(parse_bind(r"/a\n:/b").unwrap_err().contains("no escape"));
        assert!(parse_bind(r"/a:/b\").unwrap_err().contains("lone"));
        for (src, dst) in [("/a:b", r"/c\:"), (r"\", "/"), ("/::", "/:")] {
            assert_eq!(
                parse_bind(&bind_spec(src, dst)),
                Ok((PathBuf::from(src), PathBuf::from(dst))),
                "{src} {dst}"
            );
        }
    }

    #[test]
    fn binds_are_nosuid_nodev_unless_dev() {
        use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
        assert_eq!(
            bind_attrs(false, false),
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
        );
        assert_eq!(
            bind_attrs(true, false),
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
        );
        assert_eq!(bind_attrs(false, true), 0);
        assert_eq!(bind_attrs(true, true), MOUNT_ATTR_RDONLY);
        let step = Step::User(UserMount::Bind {
            src: "/a".into(),
            dst: "/b".into(),
            ro: true,
            dev: false,
            skip_missing: true,
        });
        assert_eq!(step.to_string(), "bind /a on /b (ro,nosuid,nodev)");
    }

    #[test]
    fn tmpfs_root_replaces_the_bind_and_keeps_user_operations_in_order() {
        let mut o = opts();
        o.tmpfs_root = true;
        o.ro = true;
        o.sys = false;
        o.mounts = vec![
            UserMount::Dir {
                dst: "/data".into(),
                mode: Some(0o700),
            },
            UserMount::File {
                fd: 3,
                dst: "/data/f".into(),
                mode: None,
            },
            UserMount::BindData {
                fd: 4,
                dst: "/data/b".into(),
                ro: true,
                mode: None,
            },
            UserMount::Symlink {
                target: "data/f".into(),
                dst: "/link".into(),
            },
            UserMount::Tmpfs {
                dst: "/scratch".into(),
                size: Some(1 << 20),
                mode: Some(0o1777),
            },
            UserMount::Chmod {
                mode: 0o755,
                path: "/data".into(),
            },
            UserMount::Mqueue { dst: "/mq".into() },
            UserMount::RemountRo {
                dst: "/scratch".into(),
            },
        ];
        let s = plan(&o, ROOT);
        assert_eq!(s[1], Step::TmpfsRoot);
        assert_eq!(
            s[2],
            Step::RootfsEntries {
                ro: true,
                fresh: vec!["proc", "dev"]
            }
        );
        assert!(!s.contains(&Step::BindRoot));
        let user: Vec<UserMount> = s
            .iter()
            .filter_map(|x| match x {
                Step::User(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(user, o.mounts);
        let first = s.iter().position(|x| matches!(x, Step::User(_))).unwrap();
        assert!(s[..first].contains(&Step::DevShm));
        assert_eq!(s[first + user.len()], Step::Mask(MASKED[0]));
        assert_eq!(s.last(), Some(&Step::RootReadOnly));
        let shown: Vec<String> = user
            .iter()
            .map(|m| Step::User(m.clone()).to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "mkdir /data (mode 700)",
                "write fd 3 to /data/f (mode 666)",
                "bind read-only the data of fd 4 on /data/b (mode 600)",
                "symlink /link -> data/f",
                "mount tmpfs on /scratch (mode 1777, size 1048576)",
                "chmod 755 /data",
                "mount mqueue on /mq",
                "remount /scratch read-only",
            ]
        );
        let opts_shown: Vec<&str> = user.iter().map(UserMount::option).collect();
        assert_eq!(
            opts_shown,
            [
                "--dir",
                "--file",
                "--ro-bind-data",
                "--symlink",
                "--tmpfs",
                "--chmod",
                "--mqueue",
                "--remount-ro"
            ]
        );
        assert_eq!(user[1].fd(), Some(3));
        assert_eq!(user[0].fd(), None);
        assert!(user[5].may_be_root() && !user[4].may_be_root());
    }

    #[test]
    fn overlay_root_and_overlay_options() {
        let mut o = opts();
        o.overlay_root = true;
        let s = plan(&o, ROOT);
        assert_eq!(s[1], Step::OverlayRoot);
        assert!(!s.contains(&Step::BindRoot) && !s.contains(&Step::TmpfsRoot));
        assert_eq!(
            overlay_options(&["/a".into(), "/b,c:d\\e".into()], None, false),
            "lowerdir=/a:/b\\,c\\:d\\\\e"
        );
        assert_eq!(
            overlay_options(
                &["/l".into()],
                Some((Path::new("/u"), Path::new("/w"))),
                true
            ),
            "lowerdir=/l,upperdir=/u,workdir=/w,userxattr"
        );
        let m = UserMount::Overlay {
            lower: vec!["/l1".into(), "/l2".into()],
            upper: OverlayUpper::Tmp,
            dst: "/o".into(),
        };
        assert_eq!(m.option(), "--tmp-overlay");
        assert_eq!(
            Step::User(m).to_string(),
            "mount overlay of /l1:/l2 on /o (writes to a tmpfs)"
        );
    }

    #[test]
    fn modes_and_fds() {
        assert_eq!(parse_mode("0755"), Ok(0o755));
        assert_eq!(parse_mode("1777"), Ok(0o1777));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        for bad in ["", "8", "10000", "-1", "+7", "rwx", "0o"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_fd("3"), Ok(3));
        assert_eq!(parse_fd("0"), Ok(0));
        for bad in ["", "-1", "+3", "x", "99999999999"] {
            assert!(parse_fd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_changes_apply_in_order() {
        let os = |s: &str| OsString::from(s);
        let start = [(os("HOME"), os("/root")), (os("PATH"), os("/bin"))];
        let ops = [
            EnvOp::Set(os("A"), os("1")),
            EnvOp::Set(os("PATH"), os("/sbin")),
            EnvOp::Unset(os("HOME")),
            EnvOp::Unset(os("NOT_SET")),
        ];
        assert_eq!(
            environment(start.clone(), &ops),
            [(os("PATH"), os("/sbin")), (os("A"), os("1"))]
        );
        // --clear-env removes what came before it, not what comes after.
        let ops = [
            EnvOp::Set(os("A"), os("1")),
            EnvOp::Clear,
            EnvOp::Set(os("B"), os("2")),
        ];
        assert_eq!(environment(start, &ops), [(os("B"), os("2"))]);
        assert!(check_env_name(std::ffi::OsStr::new("A_1")).is_ok());
        for bad in ["", "A=B", "=", "A\0"] {
            assert!(
                check_env_name(std::ffi::OsStr::new(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn uid_maps() {
        assert!(is_initial_uid_map("         0          0 4294967295\n"));
        assert!(!is_initial_uid_map("         0       1000          1\n"));
        assert!(!is_initial_uid_map(""));
    }
}
