//! Persistence targets (`--uts=FILE`): checked and created before anything else happens, bound
//! by a helper that stays in the old namespaces, and undone when a bind fails halfway.

use crate::error::Error;
use crate::plan::Persist;
use conventions::ns::Proc;
use std::path::{Path, PathBuf};

/// A bind target, and whether we created the file (so that a failure removes it again).
#[derive(Debug, Clone)]
pub struct Target {
    /// What to bind where.
    pub what: Persist,
    /// We created the file.
    pub created: bool,
}

/// Decodes the octal escapes (`\040` for a space) of a mountinfo field.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount that holds `dir` (an absolute, canonical path) according to `mountinfo` text: its
/// mount point and whether it is shared. The last, longest match wins, as the kernel stacks them.
pub fn mount_of(mountinfo: &str, dir: &Path) -> Option<(PathBuf, bool)> {
    let mut best: Option<(PathBuf, bool)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 7 {
            continue;
        }
        let point = PathBuf::from(unescape(fields[4]));
        if !dir.starts_with(&point) {
            continue;
        }
        let optional = fields[6..].iter().take_while(|f| **f != "-");
        let shared = optional.clone().any(|f| f.starts_with("shared:"));
        let longer = best
            .as_ref()
            .map(|(b, _)| point.as_os_str().len() >= b.as_os_str().len())
            .unwrap_or(true);
        if longer {
            best = Some((point, shared));
        }
    }
    best
}

fn describe(p: &Persist) -> String {
    format!(
        "cannot persist the {} namespace on '{}'",
        p.kind.proc_name,
        p.path.display()
    )
}

/// Checks every target and creates the missing files (removed again by [`remove_created`] when
/// the run fails). A mount namespace must not be bound on a shared mount: the bind would
/// propagate into the namespace it refers to, which the kernel refuses.
pub fn prepare(persist: &[Persist]) -> Result<Vec<Target>, Error> {
    let mut targets: Vec<Target> = Vec::new();
    let fail = |targets: &[Target], e: Error| {
        remove_created(targets);
        e
    };
    for p in persist {
        let parent = match p.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = match std::fs::canonicalize(&parent) {
            Ok(d) => d,
            Err(e) => {
                return Err(fail(
                    &targets,
                    Error::io(
                        describe(p),
                        e,
                        format!("create the directory {}", parent.display()),
                    ),
                ))
            }
        };
        if p.kind.proc_name == "mnt" {
            let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            if let Some((point, true)) = mount_of(&info, &dir) {
                return Err(fail(
                    &targets,
                    Error::Failed(format!(
                        "{}: {} is on a shared mount ({}) (make it private first, e.g. \
                         mount --bind {} {} && mount --make-private {})",
                        describe(p),
                        p.path.display(),
                        point.display(),
                        dir.display(),
                        dir.display(),
                        dir.display()
                    )),
                ));
            }
        }
        let created = match std::fs::symlink_metadata(&p.path) {
            Ok(m) if m.is_dir() => {
                return Err(fail(
                    &targets,
                    Error::Failed(format!("{}: it is a directory (give a file)", describe(p))),
                ))
            }
            Ok(_) => false,
            Err(_) => {
                use std::os::unix::fs::OpenOptionsExt;
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o444)
                    .open(&p.path)
                {
                    Ok(_) => true,
                    Err(e) => {
                        return Err(fail(
                            &targets,
                            Error::io(format!("{}: cannot create it", describe(p)), e, ""),
                        ))
                    }
                }
            }
        };
        targets.push(Target {
            what: p.clone(),
            created,
        });
    }
    Ok(targets)
}

/// Removes the files [`prepare`] created.
pub fn remove_created(targets: &[Target]) {
    for t in targets.iter().filter(|t| t.created) {
        let _ = std::fs::remove_file(&t.what.path);
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
    fn finds_the_holding_mount() {
        assert_eq!(
            mount_of(INFO, Path::new("/run/x")),
            Some((PathBuf::from("/run"), false))
        );
        assert_eq!(
            mount_of(INFO, Path::new("/var/lib")),
            Some((PathBuf::from("/"), true))
        );
        assert_eq!(
            mount_of(INFO, Path::new("/tmp")),
            Some((PathBuf::from("/tmp"), true))
        );
        assert_eq!(
            mount_of(INFO, Path::new("/run/with space/f")),
            Some((PathBuf::from("/run/with space"), false))
        );
        // /running is not under /run.
        assert_eq!(
            mount_of(INFO, Path::new("/running")),
            Some((PathBuf::from("/"), true))
        );
        assert_eq!(mount_of("", Path::new("/")), None);
        assert_eq!(mount_of("garbage\n1 2 3\n", Path::new("/")), None);
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape("a\\040b"), "a b");
        assert_eq!(unescape("a\\04"), "a\\04");
        assert_eq!(unescape("\\"), "\\");
    }
}
