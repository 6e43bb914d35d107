//! The util-linux behaviours under their names, so scripts and initramfs `init`s can use pivot
//! in place of `pivot_root(8)` and `switch_root(8)`: invoked through a symlink of that name, or
//! as `pivot root-compat ...` / `pivot switch-root ...`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser};

use crate::error::Error;
use crate::mountinfo::{self, RootKind};
use crate::resolve::{self, Create, ResolveError};
use crate::sys;
use nix::mount::MntFlags;
use nix::sys::stat::Mode;

/// ramfs's `statfs` magic.
pub const RAMFS_MAGIC: i64 = 0x8584_58f6;
/// tmpfs's `statfs` magic.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The API filesystems switch_root carries into the new root.
pub const MOVED: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];

/// `pivot_root NEW_ROOT PUT_OLD`.
#[derive(Parser, Debug)]
#[command(
    name = "pivot_root",
    version = conventions::VERSION,
    about = "Change the root mount (pivot_root(2)): NEW_ROOT becomes /, the old root moves to PUT_OLD",
    after_help = "Examples:\n  cd /new && pivot_root . old && exec chroot . /sbin/init\n  \
                  unshare-rs -m sh -c 'mount --bind /r /r; pivot root-compat /r /r/old; ls /old'\n\n\
                  Refuses the host's initial mount namespace unless \
                  --i-know-this-is-the-host-namespace is given."
)]
pub struct PivotRootCli {
    /// The mount that becomes /.
    #[arg(value_name = "NEW_ROOT")]
    pub new_root: PathBuf,
    /// Where the old root goes (at or under NEW_ROOT).
    #[arg(value_name = "PUT_OLD")]
    pub put_old: PathBuf,
    /// Allow running in the host's initial mount namespace.
    #[arg(long = "i-know-this-is-the-host-namespace")]
    pub host_namespace: bool,
}

/// `switch_root NEWROOT INIT [ARGS...]`.
#[derive(Parser, Debug)]
#[command(
    name = "switch_root",
    version = conventions::VERSION,
    about = "Leave the initramfs: move /dev /proc /sys /run into NEWROOT, make it /, delete the \
             initramfs's files and exec INIT",
    after_help = "Examples:\n  exec switch_root /sysroot /sbin/init\n  \
                  exec pivot switch-root -v /newroot /bin/sh -c 'mount'\n\n\
                  Only files on the old root's own device are deleted, and only when it is a \
                  ramfs or tmpfs; mounts are never crossed. Outside an initramfs, refuses the \
                  host's initial mount namespace unless --i-know-this-is-the-host-namespace."
)]
pub struct SwitchRootCli {
    /// Print each step on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Allow running in the host's initial mount namespace when / is not an initramfs.
    #[arg(long = "i-know-this-is-the-host-namespace")]
    pub host_namespace: bool,
    /// The mount point of the new root.
    #[arg(value_name = "NEWROOT")]
    pub newroot: PathBuf,
    /// The program to exec inside it.
    #[arg(value_name = "INIT")]
    pub init: OsString,
    /// Its arguments.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<OsString>,
}

fn parse_with<P: Parser + CommandFactory + FromArgMatches, I, A>(
    tool: &str,
    args: I,
) -> conventions::cli::Parsed<P>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    let parsed = P::command()
        .bin_name(tool)
        .try_get_matches_from(args)
        .and_then(|m| P::from_arg_matches(&m));
    match parsed {
        Ok(p) => conventions::cli::Parsed::Run(p),
        Err(e) => crate::clap_error(tool, e),
    }
}

/// Parses the pivot_root command line.
pub fn parse_pivot_root<I, A>(tool: &str, args: I) -> conventions::cli::Parsed<PivotRootCli>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    parse_with(tool, args)
}

/// Parses the switch_root command line.
pub fn parse_switch_root<I, A>(tool: &str, args: I) -> conventions::cli::Parsed<SwitchRootCli>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    parse_with(tool, args)
}

/// pivot_root(8): one pivot_root(2), exit 0.
pub fn pivot_root(c: &PivotRootCli) -> Result<i32, Error> {
    crate::refuse_host_namespace(c.host_namespace)?;
    nix::unistd::pivot_root(&c.new_root, &c.put_old).map_err(|e| {
        Error::sys_hint(
            format!(
                "pivot_root(\"{}\", \"{}\")",
                c.new_root.display(),
                c.put_old.display()
            ),
            e,
            "NEW_ROOT must be a mount point, PUT_OLD under it, neither shared (run under \
             unshare -m), and / no initramfs (use switch_root there)",
        )
    })?;
    Ok(0)
}

fn is_initramfs() -> bool {
    if mountinfo::root_kind(&mountinfo::read()) == RootKind::Rootfs {
        return true;
    }
    sys::open(Path::new("/"), libc::O_PATH | libc::O_DIRECTORY)
        .and_then(|fd| sys::fs_magic(&fd))
        .is_ok_and(|m| m == RAMFS_MAGIC || m == TMPFS_MAGIC)
}

/// switch_root(8); returns only on failure.
pub fn switch_root(tool: &str, c: &SwitchRootCli) -> Result<i32, Error> {
    let say = |msg: String| {
        if c.verbose {
            conventions::errln!("{tool}: {msg}");
        }
    };
    if !is_initramfs() {
        crate::refuse_host_namespace(c.host_namespace)?;
    }
    let shown = c.newroot.display().to_string();
    let newroot = std::fs::canonicalize(&c.newroot).map_err(|e| {
        Error::input(
            format!("NEWROOT {shown}"),
            conventions::output::errtext(&e),
            "give the mount point of the real root",
        )
    })?;
    if !newroot.is_dir() || !is_mount_point(&newroot).unwrap_or(false) {
        return Err(Error::input(
            format!("NEWROOT {shown}"),
            "not a mount point",
            "mount the real root there first",
        ));
    }
    check_init(&newroot, &c.init)?;
    let newroot_fd = sys::open(&newroot, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| Error::sys(format!("open({})", newroot.display()), e))?;
    let old_root = sys::open(Path::new("/"), libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| Error::sys("open(/)", e))?;
    for dir in MOVED {
        if !is_mount_point(Path::new(dir)).unwrap_or(false) {
            continue;
        }
        let name = &dir[1..];
        let target = newroot.join(name);
        // Only onto a real directory of NEWROOT: through a symlink (`run -> /`) the mount would
        // land on whatever the link names in the old root, not in the new one.
        let moved = match resolve::real_dir(&newroot_fd, OsStr::new(name), false) {
            Ok(Some(_)) => sys::mount(Some(Path::new(dir)), &target, None, libc::MS_MOVE, None),
            Ok(None) => Err(io::Error::from_raw_os_error(libc::ENOENT)),
            Err(resolve::RealDirError::Io(e)) => Err(e),
            Err(why) => {
                let what = match why {
                    resolve::RealDirError::Symlink(to) => {
                        format!(
                            "is a symlink (to {}), not a directory",
                            Path::new(&to).display()
                        )
                    }
                    _ => "is not a directory".to_string(),
                };
                conventions::errln!(
                    "{tool}: {} {what}: unmounting {dir} instead of moving it",
                    target.display()
                );
                let _ = nix::mount::umount2(Path::new(dir), MntFlags::MNT_DETACH);
                continue;
            }
        };
        match moved {
            Ok(()) => say(format!("moved {dir} to {}", target.display())),
            Err(e) => {
                // As util-linux does: what cannot be carried over is let go.
                conventions::errln!(
                    "{tool}: mount(MS_MOVE) of {dir} to {} failed: {}; unmounting it",
                    target.display(),
                    conventions::output::errtext(&e)
                );
                let _ = nix::mount::umount2(Path::new(dir), MntFlags::MNT_DETACH);
            }
        }
    }
    nix::unistd::chdir(&newroot)
        .map_err(|e| Error::sys(format!("chdir({})", newroot.display()), e))?;
    crate::apply::move_and_chroot(&newroot)?;
    say(format!("{} is now /", newroot.display()));
    let magic = sys::fs_magic(&old_root).unwrap_or(0);
    if magic == RAMFS_MAGIC || magic == TMPFS_MAGIC {
        let dev = sys::fstat(&old_root)
            .map_err(|e| Error::sys("fstat(old root)", e))?
            .st_dev;
        let mut errors = Vec::new();
        let removed = remove_contents(&old_root, dev, &mut errors);
        say(format!("deleted {removed} entries of the old root"));
        for e in errors.iter().take(3) {
            conventions::errln!("{tool}: warning: {e}");
        }
    } else {
        say("the old root is not a ramfs or tmpfs: nothing deleted".to_string());
    }
    drop(old_root);
    let mut argv = vec![c.init.clone()];
    argv.extend(c.args.iter().cloned());
    crate::exec(&argv).map(|never| match never {})
}

/// Checks that INIT exists inside NEWROOT and is executable, before anything moves.
fn check_init(newroot: &Path, init: &OsStr) -> Result<(), Error> {
    let root = sys::open(newroot, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| Error::sys(format!("open({})", newroot.display()), e))?;
    let shown = Path::new(init).display().to_string();
    let t = match resolve::resolve(&root, Path::new(init), Create::No) {
        Ok(t) => t,
        Err(ResolveError::Io(_, e)) => {
            return Err(Error::Exec {
                msg: format!(
                    "INIT {shown} inside {}: {}",
                    newroot.display(),
                    conventions::output::errtext(&e)
                ),
                code: conventions::exit::exec_failure_code(e.raw_os_error().unwrap_or(0)),
            })
        }
        Err(e) => {
            return Err(Error::Exec {
                msg: format!("INIT {shown} inside {}: {e}", newroot.display()),
                code: conventions::exit::NOT_FOUND,
            })
        }
    };
    let st = sys::fstat(&t.fd).map_err(|e| Error::sys(format!("fstat({shown})"), e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_mode & 0o111 == 0 {
        return Err(Error::Exec {
            msg: format!(
                "INIT {shown} inside {} is not an executable file",
                newroot.display()
            ),
            code: conventions::exit::NOT_EXECUTABLE,
        });
    }
    Ok(())
}

/// The names in a directory, without `.` and `..`.
fn list(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut d = nix::dir::Dir::openat(Some(dir.as_raw_fd()), ".", flags, Mode::empty())?;
    let mut names = Vec::new();
    for ent in d.iter() {
        let bytes = ent?.file_name().to_bytes().to_vec();
        if bytes != b"." && bytes != b".." {
            names.push(OsString::from_vec(bytes));
        }
    }
    Ok(names)
}

/// One directory on the way down of [`remove_contents`].
struct Level {
    /// Entries still to look at.
    names: Vec<OsString>,
    /// Its inode, to check that `..` leads back to it.
    ino: u64,
    /// Its name in the level above (`None` for the top, which stays).
    name: Option<OsString>,
    /// Kept for the top only: its `..` is not the way back (see below).
    fd: Option<OwnedFd>,
}

/// Deletes everything under `top` that lives on device `dev`, never descending into another
/// filesystem or a mount point, never following a symlink. Returns how many entries were
/// removed; failures are collected in `errors` (the rest goes on, as util-linux does).
///
/// The walk is a loop, not a recursion, and holds one directory fd at a time: an initramfs may
/// hold a chain of directories deeper than any stack or limit of open files, and this runs after
/// the root was switched, where a crash would take the system's init with it. It climbs back up
/// through `..`, checked against the inode it came from; if that ever differs (the tree was
/// moved under us) it stops rather than delete anywhere else. The top's fd is kept: the old root
/// is covered by the new one, so a lookup of `..` that reaches it lands on the mount above.
pub fn remove_contents(top: &OwnedFd, dev: u64, errors: &mut Vec<String>) -> usize {
    let mut removed = 0;
    let first = sys::openat(top, OsStr::new("."), libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .and_then(|fd| Ok((sys::fstat(&fd)?, list(&fd)?, fd)));
    let (st, names, mut cur) = match first {
        Ok(x) => x,
        Err(e) => {
            errors.push(format!("readdir: {}", conventions::output::errtext(&e)));
            return 0;
        }
    };
    let top_fd = match cur.try_clone() {
        Ok(fd) => fd,
        Err(e) => {
            errors.push(format!("dup: {}", conventions::output::errtext(&e)));
            return 0;
        }
    };
    let mut levels = vec![Level {
        names,
        ino: st.st_ino,
        name: None,
        fd: Some(top_fd),
    }];
    while let Some(level) = levels.last_mut() {
        let Some(name) = level.names.pop() else {
            // This directory is done: back to its parent, and remove it there.
            let Some(done) = levels.pop().and_then(|l| l.name) else {
                break;
            };
            let Some(above) = levels.last() else {
                break;
            };
            let expected = above.ino;
            let parent = match &above.fd {
                Some(fd) => fd.try_clone(),
                None => sys::openat(
                    &cur,
                    OsStr::new(".."),
                    libc::O_RDONLY | libc::O_DIRECTORY,
                    0,
                ),
            };
            let parent = match parent {
                Ok(p) => p,
                Err(e) => {
                    errors.push(format!(
                        "open ..: {}: deletion stopped",
                        conventions::output::errtext(&e)
                    ));
                    break;
                }
            };
            match sys::fstat(&parent) {
                Ok(st) if st.st_ino == expected && st.st_dev == dev => {}
                _ => {
                    errors.push(format!(
                        "the parent of {} changed during the deletion: stopped",
                        Path::new(&done).display()
                    ));
                    break;
                }
            }
            cur = parent;
            match sys::unlinkat(&cur, &done, true) {
                Ok(()) => removed += 1,
                Err(e) => errors.push(format!(
                    "rmdir {}: {}",
                    Path::new(&done).display(),
                    conventions::output::errtext(&e)
                )),
            }
            continue;
        };
        let shown = Path::new(&name).display().to_string();
        let st = match sys::lstatat(&cur, &name) {
            Ok(st) => st,
            Err(e) => {
                errors.push(format!(
                    "stat {shown}: {}",
                    conventions::output::errtext(&e)
                ));
                continue;
            }
        };
        if st.st_dev != dev {
            continue;
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            match sys::unlinkat(&cur, &name, false) {
                Ok(()) => removed += 1,
                Err(e) => errors.push(format!(
                    "unlink {shown}: {}",
                    conventions::output::errtext(&e)
                )),
            }
            continue;
        }
        if sys::is_mount_root(&cur, &name).unwrap_or(false) {
            continue;
        }
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let entered = sys::openat(&cur, &name, flags, 0).and_then(|sub| {
            let sub_st = sys::fstat(&sub)?;
            if sub_st.st_ino != st.st_ino || sub_st.st_dev != dev {
                // Replaced since the stat: not the directory that was checked.
                return Err(io::Error::from_raw_os_error(libc::ESTALE));
            }
            Ok((list(&sub)?, sub))
        });
        match entered {
            Ok((names, sub)) => {
                levels.push(Level {
                    names,
                    ino: st.st_ino,
                    name: Some(name),
                    fd: None,
                });
                cur = sub;
            }
            Err(e) => errors.push(format!(
                "open {shown}: {}",
                conventions::output::errtext(&e)
            )),
        }
    }
    removed
}

/// Whether `path` is a mount point, without /proc (an initramfs may not have mounted it yet):
/// statx's `STATX_ATTR_MOUNT_ROOT`, or where the kernel lacks it, a device different from its
/// parent's (what util-linux's switch_root checks).
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => (p, n),
        // `/` is always a mount point.
        _ => return Ok(true),
    };
    let dir = sys::open(parent, libc::O_PATH | libc::O_DIRECTORY)?;
    match sys::is_mount_root(&dir, name) {
        Ok(yes) => Ok(yes),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            let st = sys::lstatat(&dir, name)?;
            Ok(st.st_dev != sys::fstat(&dir)?.st_dev)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};

    fn temp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("pivot-compat-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn tree(root: &Path, outside: &Path) {
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::write(root.join("a/b/c/f"), "x").unwrap();
        std::fs::write(root.join("top"), "x").unwrap();
        symlink(outside, root.join("link-out")).unwrap();
        symlink(outside, root.join("a/link-out")).unwrap();
    }

    #[test]
    fn removes_same_device_and_never_follows_symlinks() {
        let base = temp("same");
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        tree(&root, &outside);
        let fd = sys::open(&root, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        let dev = std::fs::metadata(&root).unwrap().dev();
        let mut errors = Vec::new();
        let n = remove_contents(&fd, dev, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(n, 7, "a, b, c, f, top and two symlinks");
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        // The symlinks' target survives.
        assert!(outside.join("keep").is_file());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn other_devices_are_left_alone() {
        let base = temp("other");
        let root = base.join("root");
        tree(&root, &base);
        let fd = sys::open(&root, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        let dev = std::fs::metadata(&root).unwrap().dev();
        // Everything looks as if it were on another filesystem (a mount): nothing is deleted.
        let mut errors = Vec::new();
        assert_eq!(remove_contents(&fd, dev.wrapping_add(1), &mut errors), 0);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(root.join("a/b/c/f").is_file());
        assert!(root.join("top").is_file());
        // A directory that is a mount point on this machine is never entered: /proc holds one
        // (it is a mount root), seen from / it is another device anyway, and from its own
        // device it is a mount root.
        let slash = sys::open(Path::new("/"), libc::O_PATH | libc::O_DIRECTORY).unwrap();
        assert_eq!(
            sys::is_mount_root(&slash, OsStr::new("proc")).ok(),
            Some(true)
        );
        assert_eq!(sys::is_mount_root(&fd, OsStr::new("a")).ok(), Some(false));
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_chain_deeper_than_the_stack_and_the_fd_limit_is_removed() {
        // In memory where there is a /dev/shm: 30,000 directory operations on a disk take long.
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            let p = shm.join(format!("pivot-compat-deep-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            p
        } else {
            temp("deep")
        };
        let root = base.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let top = sys::open(&root, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        let mut cur = top.try_clone().unwrap();
        let depth = 15_000;
        for _ in 0..depth {
            sys::mkdirat(&cur, OsStr::new("d"), 0o755).unwrap();
            cur = sys::openat(&cur, OsStr::new("d"), libc::O_PATH | libc::O_DIRECTORY, 0).unwrap();
        }
        drop(cur);
        std::fs::write(root.join("side"), "x").unwrap();
        let dev = std::fs::metadata(&root).unwrap().dev();
        let mut errors = Vec::new();
        assert_eq!(remove_contents(&top, dev, &mut errors), depth + 1);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn mount_points_are_found_without_proc() {
        // statx (or the device check) alone: / and /proc are mount points, /etc is not.
        assert!(is_mount_point(Path::new("/")).unwrap());
        assert!(is_mount_point(Path::new("/proc")).unwrap());
        assert!(!is_mount_point(Path::new("/etc")).unwrap());
        assert!(is_mount_point(Path::new("/nonexistent-dir")).is_err());
    }

    #[test]
    fn compat_command_lines() {
        use conventions::cli::Parsed;
        match parse_switch_root("switch_root", ["switch_root", "/new", "/sbin/init", "-x"]) {
            Parsed::Run(c) => {
                assert_eq!(c.newroot, PathBuf::from("/new"));
                assert_eq!(c.init, "/sbin/init");
                assert_eq!(c.args, ["-x"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_switch_root("switch_root", ["switch_root", "/new"]),
            Parsed::Usage(l) if l.starts_with("switch_root: ") && !l.contains('\n')
        ));
        match parse_pivot_root("pivot_root", ["pivot_root", "/n", "/n/o"]) {
            Parsed::Run(c) => assert!(!c.host_namespace && c.put_old == Path::new("/n/o")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_pivot_root("pivot_root", ["pivot_root", "/n"]),
            Parsed::Usage(_)
        ));
    }
}
