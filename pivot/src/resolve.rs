//! Resolving a path inside the new root without ever leaving it: a rootfs is untrusted input, and
//! a symlink such as `proc -> /` or `etc -> ../../..` must not make us mount over the host.
//!
//! The walk opens one component at a time with `O_PATH|O_NOFOLLOW` from a directory fd, reads
//! symlinks itself and interprets them against the new root (an absolute target restarts at the
//! new root, as it will after the pivot). A `..` that would climb above the new root, written in
//! the path or in a symlink, is an error rather than being clamped (which `openat2`'s
//! `RESOLVE_IN_ROOT` would do silently): a destination that names a place outside the root is a
//! mistake the user should hear about.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use crate::sys;

/// Most symlinks followed in one resolution (the kernel's own limit).
const MAX_SYMLINKS: u32 = 40;

/// What to do with a missing component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Fail with ENOENT.
    No,
    /// Create missing components as directories.
    Dir,
    /// Create missing parents as directories and the last component as an empty file (a mount
    /// point for a file).
    File,
}

/// Why a path could not be resolved inside the root.
#[derive(Debug)]
pub enum ResolveError {
    /// A `..` (in the path or in a symlink, named here) would leave the root.
    Escapes(String),
    /// Too many symlinks.
    Loop,
    /// A component is not a directory but more components follow.
    NotDir(PathBuf),
    /// A syscall failed on this path (relative to the root).
    Io(PathBuf, io::Error),
    /// This missing path would have to be created in a directory that is not on one of the
    /// filesystems creation is limited to ([`resolve_creating_on`]).
    NotOwn(PathBuf),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Escapes(via) => write!(f, "it leaves the new root through {via}"),
            ResolveError::Loop => write!(f, "too many levels of symbolic links"),
            ResolveError::NotDir(p) => write!(f, "/{} is not a directory", p.display()),
            ResolveError::Io(p, e) => {
                write!(f, "/{}: {}", p.display(), conventions::output::errtext(e))
            }
            ResolveError::NotOwn(p) => write!(
                f,
                "/{} is missing and would be created in NEWROOT on disk",
                p.display()
            ),
        }
    }
}

/// A path resolved inside the root: an `O_PATH` fd of the object and its symlink-free path
/// relative to the root.
#[derive(Debug)]
pub struct Resolved {
    /// `O_PATH` fd of the final object.
    pub fd: OwnedFd,
    /// The path from the root with every symlink replaced, no `.` or `..`.
    pub rel: PathBuf,
}

fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

fn rel_of(stack: &[(OwnedFd, OsString)]) -> PathBuf {
    stack.iter().map(|(_, n)| n.as_os_str()).collect()
}

fn is_type(st: &libc::stat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

/// Resolves `path` (absolute or relative, both taken from `root`) inside the directory `root`.
/// Missing components are created as `create` says; `Create::No` reports ENOENT as an error.
pub fn resolve(root: &OwnedFd, path: &Path, create: Create) -> Result<Resolved, ResolveError> {
    resolve_creating_on(root, path, create, None)
}

/// As [`resolve`], but when `devices` is given a missing component is created only in a
/// directory whose filesystem (`st_dev`) is one of them, else [`ResolveError::NotOwn`]: with
/// `--tmpfs-root` pivot writes only on its own tmpfs mounts, never into NEWROOT on disk.
pub fn resolve_creating_on(
    root: &OwnedFd,
    path: &Path,
    create: Create,
    devices: Option<&[u64]>,
) -> Result<Resolved, ResolveError> {
    match walk(root, path, Mode::Resolve(create), devices)? {
        Walked::Found(r) => Ok(r),
        // Only Mode::Check stops early without a result.
        Walked::Missing { .. } => Err(ResolveError::Loop),
    }
}

/// The end of a walk.
enum Walked {
    /// Everything exists.
    Found(Resolved),
    /// A component is missing ([`Mode::Check`]); the rest, taken lexically, ends at the root
    /// itself or below it.
    Missing { root_itself: bool },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Resolve(Create),
    Check,
}

fn walk(
    root: &OwnedFd,
    path: &Path,
    mode: Mode,
    devices: Option<&[u64]>,
) -> Result<Walked, ResolveError> {
    let create = match mode {
        Mode::Resolve(c) => c,
        Mode::Check => Create::No,
    };
    let mut todo = components(path);
    // Directories entered so far, each with its name; the root itself is not on the stack.
    let mut stack: Vec<(OwnedFd, OsString)> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            if stack.pop().is_none() {
                return Err(ResolveError::Escapes(format!("'..' in {}", path.display())));
            }
            continue;
        }
        let dir = stack.last().map(|(fd, _)| fd).unwrap_or(root);
        let here_path = rel_of(&stack).join(&name);
        let here = || here_path.clone();
        let fd = match sys::openat(dir, &name, libc::O_PATH | libc::O_NOFOLLOW, 0) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && mode == Mode::Check => {
                let mut depth = stack.len() as isize;
                for c in std::iter::once(name).chain(todo) {
                    depth += if c == ".." { -1 } else { 1 };
                    if depth < 0 {
                        return Err(ResolveError::Escapes(format!("'..' in {}", path.display())));
                    }
                }
                return Ok(Walked::Missing {
                    root_itself: depth == 0,
                });
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create != Create::No => {
                if let Some(devs) = devices {
                    let st = sys::fstat(dir).map_err(|e| ResolveError::Io(here(), e))?;
                    if !devs.contains(&st.st_dev) {
                        return Err(ResolveError::NotOwn(here()));
                    }
                }
                let last = todo.is_empty();
                if last && create == Create::File {
                    let made = sys::openat(
                        dir,
                        &name,
                        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW,
                        0o644,
                    );
                    match made {
                        Ok(_) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(ResolveError::Io(here(), e)),
                    }
                } else {
                    match sys::mkdirat(dir, &name, 0o755) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(ResolveError::Io(here(), e)),
                    }
                }
                // Look again: a racing creator may have put a symlink there.
                todo.push_front(name);
                continue;
            }
            Err(e) => return Err(ResolveError::Io(here(), e)),
        };
        let st = sys::fstat(&fd).map_err(|e| ResolveError::Io(here(), e))?;
        if is_type(&st, libc::S_IFLNK) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(ResolveError::Loop);
            }
            let target = sys::readlinkat(dir, &name).map_err(|e| ResolveError::Io(here(), e))?;
            let target_path = Path::new(&target);
            if target_path.is_absolute() {
                stack.clear();
            }
            // A `..` climbing out through a symlink is reported with the link's name.
            let mut depth = stack.len() as isize;
            for c in components(target_path) {
                depth += if c == ".." { -1 } else { 1 };
                if depth < 0 {
                    return Err(ResolveError::Escapes(format!(
                        "the symlink /{} -> {}",
                        here().display(),
                        target_path.display()
                    )));
                }
            }
            for c in components(target_path).into_iter().rev() {
                todo.push_front(c);
            }
            continue;
        }
        if !todo.is_empty() && !is_type(&st, libc::S_IFDIR) {
            return Err(ResolveError::NotDir(here()));
        }
        stack.push((fd, name));
    }
    let rel = rel_of(&stack);
    let fd = match stack.pop() {
        Some((fd, _)) => fd,
        None => sys::openat(root, OsStr::new("."), libc::O_PATH, 0)
            .map_err(|e| ResolveError::Io(PathBuf::new(), e))?,
    };
    Ok(Walked::Found(Resolved { fd, rel }))
}

/// Why a directory of the root that pivot mounts proc, dev or sys on cannot take that mount.
#[derive(Debug)]
pub enum RealDirError {
    /// It is a symlink (to this target): even one that stays inside the root would put the
    /// mount somewhere else (`proc -> /` over the root itself, `proc -> /etc` over /etc).
    Symlink(OsString),
    /// It exists but is no directory.
    NotDir,
    /// A syscall failed.
    Io(io::Error),
}

/// Opens (`O_PATH`) the directory `name` directly in `root`, which must be a real directory, not a
/// symlink, as runc requires of /proc; a missing one is created when `create`, else `Ok(None)`.
pub fn real_dir(
    root: &OwnedFd,
    name: &OsStr,
    create: bool,
) -> Result<Option<OwnedFd>, RealDirError> {
    let flags = libc::O_PATH | libc::O_NOFOLLOW;
    let fd = match sys::openat(root, name, flags, 0) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && !create => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            match sys::mkdirat(root, name, 0o755) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(RealDirError::Io(e)),
            }
            sys::openat(root, name, flags, 0).map_err(RealDirError::Io)?
        }
        Err(e) => return Err(RealDirError::Io(e)),
    };
    let st = sys::fstat(&fd).map_err(RealDirError::Io)?;
    if is_type(&st, libc::S_IFLNK) {
        let target = sys::readlinkat(root, name).map_err(RealDirError::Io)?;
        return Err(RealDirError::Symlink(target));
    }
    if !is_type(&st, libc::S_IFDIR) {
        return Err(RealDirError::NotDir);
    }
    Ok(Some(fd))
}

/// Checks, without creating anything, that `path` stays inside `root`: resolves the existing
/// prefix, then the missing rest lexically (it cannot hold symlinks, only `..`). `Ok(true)` when
/// it names the root itself (`/`, `/etc/..`, a symlink to `/`), where no mount may go.
pub fn check(root: &OwnedFd, path: &Path) -> Result<bool, ResolveError> {
    Ok(match walk(root, path, Mode::Check, None)? {
        Walked::Found(r) => r.rel.as_os_str().is_empty(),
        Walked::Missing { root_itself } => root_itself,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use testcaps::TempDir;

    fn root_fd(p: &Path) -> OwnedFd {
        sys::open(p, libc::O_PATH | libc::O_DIRECTORY).expect("open root")
    }

    /// A fake rootfs with a room inside and traps that point outside.
    fn fixture(tag: &str) -> (TempDir, PathBuf) {
        let t = TempDir::new(&format!("pivot-resolve-{tag}")).expect("temp dir");
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("etc/hosts"), "x").unwrap();
        std::fs::create_dir_all(t.path().join("outside")).unwrap();
        symlink("/usr/lib", root.join("lib")).unwrap();
        symlink("usr/lib", root.join("lib-rel")).unwrap();
        symlink("../outside", root.join("up")).unwrap();
        symlink("/", root.join("slash")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        symlink("etc/hosts/x", root.join("through-file")).unwrap();
        (t, root)
    }

    #[test]
    fn plain_and_symlinked_paths_resolve_inside() {
        let (_t, root) = fixture("inside");
        let fd = root_fd(&root);
        let r = resolve(&fd, Path::new("/etc/hosts"), Create::No).unwrap();
        assert_eq!(r.rel, PathBuf::from("etc/hosts"));
        // An absolute symlink is taken from the new root, not from the host's /.
        let r = resolve(&fd, Path::new("/lib"), Create::No).unwrap();
        assert_eq!(r.rel, PathBuf::from("usr/lib"));
        let r = resolve(&fd, Path::new("lib-rel/../../etc"), Create::No).unwrap();
        assert_eq!(r.rel, PathBuf::from("etc"));
        let r = resolve(&fd, Path::new("/slash/slash/etc"), Create::No).unwrap();
        assert_eq!(r.rel, PathBuf::from("etc"));
        let r = resolve(&fd, Path::new("/"), Create::No).unwrap();
        assert_eq!(r.rel, PathBuf::new());
    }

    #[test]
    fn escapes_are_errors() {
        let (_t, root) = fixture("escape");
        let fd = root_fd(&root);
        for p in ["/..", "/etc/../../outside", "/up", "/up/x", "../x"] {
            match resolve(&fd, Path::new(p), Create::Dir) {
                Err(ResolveError::Escapes(_)) => {}
                other => panic!("{p}: expected an escape, got {other:?}"),
            }
        }
        // Nothing was created outside.
        assert!(!root.parent().unwrap().join("x").exists());
        assert_eq!(
            std::fs::read_dir(root.parent().unwrap().join("outside"))
                .unwrap()
                .count(),
            0
        );
        assert!(matches!(
            resolve(&fd, Path::new("/loop1"), Create::No),
            Err(ResolveError::Loop)
        ));
        assert!(matches!(
            resolve(&fd, Path::new("/through-file"), Create::No),
            Err(ResolveError::NotDir(_))
        ));
        assert!(matches!(
            resolve(&fd, Path::new("/etc/hosts/x"), Create::Dir),
            Err(ResolveError::NotDir(_))
        ));
    }

    #[test]
    fn missing_components_are_created_inside() {
        let (_t, root) = fixture("create");
        let fd = root_fd(&root);
        let r = resolve(&fd, Path::new("/lib/new/dir"), Create::Dir).unwrap();
        assert_eq!(r.rel, PathBuf::from("usr/lib/new/dir"));
        assert!(root.join("usr/lib/new/dir").is_dir());
        let r = resolve(&fd, Path::new("/etc/a/file"), Create::File).unwrap();
        assert_eq!(r.rel, PathBuf::from("etc/a/file"));
        assert!(root.join("etc/a/file").is_file());
        match resolve(&fd, Path::new("/nope"), Create::No) {
            Err(ResolveError::Io(p, e)) => {
                assert_eq!(p, PathBuf::from("nope"));
                assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
            }
            other => panic!("expected ENOENT, got {other:?}"),
        }
    }

    #[test]
    fn creation_can_be_limited_to_some_filesystems() {
        let (_t, root) = fixture("own");
        let fd = root_fd(&root);
        let here = sys::fstat(&fd).unwrap().st_dev;
        // Not this filesystem: nothing is created, the error names the first missing component.
        match resolve_creating_on(
            &fd,
            Path::new("/lib/new/dir"),
            Create::Dir,
            Some(&[here + 1]),
        ) {
            Err(ResolveError::NotOwn(p)) => assert_eq!(p, PathBuf::from("usr/lib/new")),
            other => panic!("expected NotOwn, got {other:?}"),
        }
        assert!(!root.join("usr/lib/new").exists());
        // Existing paths resolve whatever the limit.
        let r = resolve_creating_on(&fd, Path::new("/etc/hosts"), Create::File, Some(&[])).unwrap();
        assert_eq!(r.rel, PathBuf::from("etc/hosts"));
        let r =
            resolve_creating_on(&fd, Path::new("/lib/new"), Create::Dir, Some(&[here])).unwrap();
        assert_eq!(r.rel, PathBuf::from("usr/lib/new"));
        assert!(root.join("usr/lib/new").is_dir());
    }

    #[test]
    fn real_dirs_refuse_symlinks_and_files() {
        let (_t, root) = fixture("realdir");
        let fd = root_fd(&root);
        assert!(real_dir(&fd, OsStr::new("etc"), false).unwrap().is_some());
        assert!(real_dir(&fd, OsStr::new("proc"), false).unwrap().is_none());
        assert!(!root.join("proc").exists());
        assert!(real_dir(&fd, OsStr::new("proc"), true).unwrap().is_some());
        assert!(root.join("proc").is_dir());
        match real_dir(&fd, OsStr::new("slash"), true) {
            Err(RealDirError::Symlink(t)) => assert_eq!(t, "/"),
            other => panic!("expected a symlink, got {other:?}"),
        }
        assert!(matches!(
            real_dir(&fd, OsStr::new("lib-rel"), true),
            Err(RealDirError::Symlink(_))
        ));
        std::fs::write(root.join("file"), "").unwrap();
        assert!(matches!(
            real_dir(&fd, OsStr::new("file"), true),
            Err(RealDirError::NotDir)
        ));
    }

    #[test]
    fn check_creates_nothing_and_finds_escapes() {
        let (_t, root) = fixture("check");
        let fd = root_fd(&root);
        assert!(!check(&fd, Path::new("/etc/hosts")).unwrap());
        assert!(!check(&fd, Path::new("/new/a/b")).unwrap());
        assert!(!check(&fd, Path::new("/new/../etc")).unwrap());
        // The root itself, however it is named.
        for p in [
            "/",
            "",
            "/etc/..",
            "/new/..",
            "/new/a/../..",
            "/slash",
            "/lib/../..",
        ] {
            assert!(check(&fd, Path::new(p)).unwrap(), "{p}");
        }
        assert!(!root.join("new").exists());
        assert!(matches!(
            check(&fd, Path::new("/new/../../x")),
            Err(ResolveError::Escapes(_))
        ));
        assert!(matches!(
            check(&fd, Path::new("/up/new")),
            Err(ResolveError::Escapes(_))
        ));
        assert!(matches!(
            check(&fd, Path::new("/etc/missing/../../..")),
            Err(ResolveError::Escapes(_))
        ));
    }
}
