//! Helpers shared by cgctl's integration test files (each file includes this as `mod common`).

/// The first block device under /dev (sorted by path), as (path, "major:minor"), if any.
pub fn block_device() -> Option<(String, String)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut devs: Vec<_> = std::fs::read_dir("/dev").ok()?.flatten().collect();
    devs.sort_by_key(|e| e.path());
    devs.into_iter().find_map(|e| {
        let m = std::fs::metadata(e.path()).ok()?;
        m.file_type().is_block_device().then(|| {
            (
                e.path().display().to_string(),
                format!("{}:{}", libc::major(m.rdev()), libc::minor(m.rdev())),
            )
        })
    })
}
