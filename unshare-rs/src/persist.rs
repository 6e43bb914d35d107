//! Persistence targets (`--uts=FILE`): checked before anything else happens, bound by a helper
//! that stays in the old namespaces, and undone when a bind fails halfway or the run fails
//! later (see `run::BindHelper`).

use crate::error::Error;
use crate::plan::Persist;
use conventions::mountinfo::{self, Mount};
use conventions::ns::Proc;
use std::path::{Path, PathBuf};

/// A bind target, checked.
#[derive(Debug, Clone)]
pub struct Target {
    /// What to bind where.
    pub what: Persist,
}

/// The mount that holds `dir` (an absolute, canonical path) if it is shared: a mount namespace
/// bound there would propagate into itself.
pub fn shared_mount_of<'a>(mounts: &'a [Mount], dir: &Path) -> Option<&'a Mount> {
    mountinfo::mount_of(mounts, dir).filter(|m| m.is_shared())
}

fn describe(p: &Persist) -> String {
    format!(
        "cannot persist the {} namespace on '{}'",
        p.kind.proc_name,
        p.path.display()
    )
}

/// Checks every target: its file must exist, as util-linux requires (a bind needs a mount
/// point), and not be a directory. A mount namespace must not be bound on a shared mount: the
/// bind would propagate into the namespace it refers to, which the kernel refuses.
pub fn prepare(persist: &[Persist]) -> Result<Vec<Target>, Error> {
    let mut targets: Vec<Target> = Vec::new();
    for p in persist {
        let parent = match p.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = match std::fs::canonicalize(&parent) {
            Ok(d) => d,
            Err(e) => {
                return Err(Error::io(
                    describe(p),
                    e,
                    format!("create the directory {}", parent.display()),
                ))
            }
        };
        if p.kind.proc_name == "mnt" {
            // Unreadable mountinfo skips the check; the kernel still refuses the bind.
            let mounts = mountinfo::read_self().unwrap_or_default();
            if let Some(shared) = shared_mount_of(&mounts, &dir) {
                return Err(Error::Failed(format!(
                    "{}: {} is on a shared mount ({}) (make it private first, e.g. \
                         mount --bind {} {} && mount --make-private {})",
                    describe(p),
                    p.path.display(),
                    shared.mount_point,
                    dir.display(),
                    dir.display(),
                    dir.display()
                )));
            }
        }
        match std::fs::metadata(&p.path) {
            Ok(m) if m.is_dir() => {
                return Err(Error::Failed(format!(
                    "{}: it is a directory (give a file)",
                    describe(p)
                )))
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Error::io(
                    describe(p),
                    e,
                    format!(
                        "the file must exist, as a mount point for the bind: touch {}",
                        p.path.display()
                    ),
                ))
            }
        }
        targets.push(Target { what: p.clone() });
    }
    Ok(targets)
}

/// Unmounts the binds of `targets` (MNT_DETACH), in reverse order: a run that failed after
/// persisting leaves nothing behind.
pub fn unbind_all(targets: &[Target]) {
    for t in targets.iter().rev() {
        let _ = nix::mount::umount2(&t.what.path, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Bind-mounts the namespace files of `pid` (the `*_for_children` ones for pid and time) on the
/// targets; on a failure, unmounts the ones already made and returns the error.
pub fn bind_all(pid: i32, targets: &[Target]) -> Result<(), Error> {
    let mut done: Vec<&Path> = Vec::new();
    for t in targets {
        let src = t.what.kind.children_path(Proc::Pid(pid));
        let r = nix::mount::mount(
            Some(&src),
            &t.what.path,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        );
        if let Err(errno) = r {
            for p in done.iter().rev() {
                let _ = nix::mount::umount2(*p, nix::mount::MntFlags::MNT_DETACH);
            }
            let hint = match errno {
                nix::errno::Errno::EINVAL if t.what.kind.proc_name == "mnt" => {
                    "the target must be on a private mount of an older mount namespace; a shared \
                     mount or a mount namespace loop is refused"
                }
                nix::errno::Errno::EPERM => "binding namespace files needs CAP_SYS_ADMIN",
                nix::errno::Errno::ENOENT if t.what.kind.proc_name == "pid" => {
                    "a pid namespace exists only once a child runs in it: add --fork"
                }
                _ => "",
            };
            return Err(Error::io(
                format!(
                    "mount {} on {} failed",
                    src.display(),
                    t.what.path.display()
                ),
                std::io::Error::from_raw_os_error(errno as i32),
                hint,
            ));
        }
        done.push(&t.what.path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:25 / /run rw,nosuid - tmpfs tmpfs rw
31 30 0:26 / /run/with\\040space rw - tmpfs tmpfs rw
32 22 0:27 / /tmp rw shared:5 master:2 - tmpfs tmpfs rw
";

    #[test]
    fn refuses_only_shared_holders() {
        let m = mountinfo::parse(INFO);
        let shared = |p: &str| shared_mount_of(&m, Path::new(p)).map(|m| m.mount_point.as_str());
        assert_eq!(shared("/run/x"), None);
        assert_eq!(shared("/var/lib"), Some("/"));
        assert_eq!(shared("/tmp"), Some("/tmp"));
        assert_eq!(shared("/run/with space/f"), None);
        let spaced = mountinfo::mount_of(&m, Path::new("/run/with space/f"));
        assert_eq!(spaced.map(|m| m.id), Some(31));
        // /running is not under /run.
        assert_eq!(shared("/running"), Some("/"));
        assert_eq!(shared_mount_of(&[], Path::new("/")), None);
        assert_eq!(
            shared_mount_of(&mountinfo::parse("garbage\n1 2 3\n"), Path::new("/")),
            None
        );
    }
}
