//! cgroupfs interface files, read and written the way cgroupfs wants them (one write(2) per
//! value, no size hint), apart from what they mean: every other module reads through here.

use crate::{Error, Result};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Reads an interface file: open, read, close. (`fs::read_to_string` would add a statx for a
/// size hint that cgroupfs answers with 0 anyway, and start with a 32-byte buffer.)
pub fn read(path: &Path) -> Result<String> {
    read_small(path).map_err(|e| Error::sys("read", path, e))
}

/// [`read`] without the error wrapping, for counters that may be absent.
pub fn read_small(path: &Path) -> std::io::Result<String> {
    read_all(std::fs::File::open(path)?)
}

/// Reads an open interface file to its end.
fn read_all(mut f: std::fs::File) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Interface files opened ahead of reading them: `cgctl run` opens the counters while the
/// command runs (on the other CPU), so that once it has ended only the reads stand between it
/// and the report. A cgroup file's content is made when it is read, not when it is opened.
#[derive(Debug, Default)]
pub struct Ahead {
    files: Vec<(PathBuf, std::fs::File)>,
}

impl Ahead {
    /// Opens `path` for a later [`Ahead::read`]; a file that cannot be opened now is left to it.
    pub fn open(&mut self, path: &Path) {
        if let Ok(f) = std::fs::File::open(path) {
            self.files.push((path.to_path_buf(), f));
        }
    }

    /// Reads `path` through the descriptor opened ahead (used once), else opens it now.
    pub fn read(&mut self, path: &Path) -> std::io::Result<String> {
        match self.files.iter().position(|(p, _)| p == path) {
            Some(i) => read_all(self.files.swap_remove(i).1),
            None => read_small(path),
        }
    }
}

/// Writes `value` to an interface file in one write(2), as cgroupfs wants.
pub fn write(path: &Path, value: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::sys("open", path, e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| Error::sys(&format!("write '{value}' to"), path, e))
}

/// Parses a pid list as cgroup.procs holds it.
pub fn parse_pids(text: &str) -> Vec<i32> {
    text.lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
        .collect()
}

/// Keyed lines `key value` (cgroup.events, memory.events, cpu.stat, ...).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_pids("12\n7\nx\n\n0\n"), vec![12, 7]);
        let ev = "populated 1\nfrozen 0\n";
        assert_eq!(keyed(ev, "frozen"), Some(0));
        assert_eq!(keyed(ev, "populated"), Some(1));
        assert_eq!(keyed(ev, "nope"), None);
        assert_eq!(keyed("max 3", "max"), Some(3));
    }
}
