//! The OCI mount option `tmpcopyup` (podman's `--read-only` tmpfs mounts): what the directory
//! held before a tmpfs covered it is copied into the tmpfs, so that /run or /tmp keep their
//! files while becoming writable.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Copies the tree under `from` into `to` (an empty directory): directories, regular files
/// and symlinks with their modes and owners; device nodes, fifos and sockets are refused, as a
/// tmpfs over them would hide what they are.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let top = std::fs::metadata(from)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(top.mode() & 0o7777))?;
    std::os::unix::fs::lchown(to, Some(top.uid()), Some(top.gid()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let md = std::fs::symlink_metadata(&src)?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
            continue;
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
        } else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{} is not a file, directory or symlink", src.display()),
            ));
        }
        std::os::unix::fs::lchown(&dst, Some(md.uid()), Some(md.gid()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_copied_with_modes_and_links() {
        let base = std::env::temp_dir().join(format!("pivot-copyup-{}", std::process::id()));
        let (from, to) = (base.join("from"), base.join("to"));
        std::fs::create_dir_all(from.join("sub")).unwrap();
        std::fs::create_dir_all(&to).unwrap();
        std::fs::write(from.join("sub/f"), "data").unwrap();
        std::fs::set_permissions(from.join("sub/f"), PermissionsExt::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&from, PermissionsExt::from_mode(0o1777)).unwrap();
        std::os::unix::fs::symlink("sub/f", from.join("l")).unwrap();
        copy_tree(&from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(to.join("l")).unwrap(), "data");
        assert_eq!(
            std::fs::read_link(to.join("l")).unwrap(),
            Path::new("sub/f")
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&to.join("sub/f")), 0o640);
        assert_eq!(mode(&to), 0o1777);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
