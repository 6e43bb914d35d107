//! The one "temporary directory removed when dropped" that tests (and xtask's recipes) share,
//! instead of each file keeping its own copy of the guard; named by [`crate::unique_name`].

use std::io;
use std::path::{Path, PathBuf};

/// A fresh directory, `PREFIX-PID-N`, removed with everything in it when dropped, also when the
/// test that made it fails.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Makes a fresh directory under [`std::env::temp_dir`].
    pub fn new(prefix: &str) -> io::Result<TempDir> {
        TempDir::new_in(std::env::temp_dir(), prefix)
    }

    /// Makes a fresh directory under `parent`, creating `parent` first if it is missing.
    pub fn new_in(parent: impl AsRef<Path>, prefix: &str) -> io::Result<TempDir> {
        let parent = parent.as_ref();
        std::fs::create_dir_all(parent)?;
        loop {
            let path = parent.join(crate::unique_name(prefix));
            // create_dir, not create_dir_all: a directory left by an earlier process that had
            // the same pid is never taken over (and later removed) as if it were ours.
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Nothing to do about a failure here: a drop, often during a failing test's unwind,
        // must not panic.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_created_empty_and_named_by_prefix_and_pid() {
        let t = TempDir::new("testcaps-tempdir").expect("temp dir");
        assert!(t.path().is_dir(), "{}", t.path().display());
        assert_eq!(
            std::fs::read_dir(t.path()).expect("read_dir").count(),
            0,
            "not empty"
        );
        assert_eq!(t.path().parent(), Some(std::env::temp_dir().as_path()));
        let name = t.path().file_name().expect("a name").to_string_lossy();
        let pid = format!("testcaps-tempdir-{}-", std::process::id());
        assert!(name.starts_with(&pid), "{name}");
    }

    #[test]
    fn each_one_is_unique_also_across_threads() {
        let dirs: Vec<TempDir> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..8)
                            .map(|_| TempDir::new("testcaps-unique").expect("temp dir"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().expect("thread"))
                .collect()
        });
        let mut paths: Vec<&Path> = dirs.iter().map(TempDir::path).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), 32);
        assert!(paths.iter().all(|p| p.is_dir()));
    }

    #[test]
    fn drop_removes_it_with_its_contents() {
        let outside = TempDir::new("testcaps-outside").expect("temp dir");
        std::fs::write(outside.path().join("kept"), b"x").expect("write");
        let t = TempDir::new("testcaps-drop").expect("temp dir");
        let path = t.path().to_path_buf();
        std::fs::create_dir_all(path.join("a/b")).expect("mkdir");
        std::fs::write(path.join("a/b/file"), b"x").expect("write");
        std::os::unix::fs::symlink(outside.path(), path.join("a/link")).expect("symlink");
        drop(t);
        assert!(!path.exists(), "{} is still there", path.display());
        // A symlink inside is removed, not followed.
        assert!(outside.path().join("kept").is_file());
    }

    #[test]
    fn new_in_creates_a_missing_parent_and_leaves_its_siblings() {
        let outer = TempDir::new("testcaps-parent").expect("temp dir");
        let parent = outer.path().join("not/yet");
        let first = TempDir::new_in(&parent, "x").expect("temp dir");
        assert_eq!(first.path().parent(), Some(parent.as_path()));
        let theirs = parent.join("theirs");
        std::fs::create_dir(&theirs).expect("mkdir");
        let second = TempDir::new_in(&parent, "x").expect("temp dir");
        assert_ne!(first.path(), second.path());
        drop(first);
        drop(second);
        assert!(theirs.is_dir(), "a sibling was removed");
        assert_eq!(std::fs::read_dir(&parent).expect("read").count(), 1);
    }
}
