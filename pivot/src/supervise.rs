//! The descriptors a supervisor hands pivot, as bubblewrap's: `--info-fd` and `--json-status-fd`
//! say which process the container is and in which namespaces (the latter also how the command
//! ended, with `--reaper`), `--block-fd` holds the start until the supervisor writes or closes,
//! `--sync-fd` stays open as long as the container runs.

use std::io;
use std::os::fd::RawFd;

/// The namespaces reported, with bubblewrap's key names.
pub const NAMESPACES: [(&str, &str); 6] = [
    ("cgroup-namespace", "cgroup"),
    ("ipc-namespace", "ipc"),
    ("mnt-namespace", "mnt"),
    ("net-namespace", "net"),
    ("pid-namespace", "pid"),
    ("uts-namespace", "uts"),
];

/// Who the container is, read before the pivot (while `/proc` is still the host's, so the pid is
/// the one the host and `nsenter -t` know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// pivot's pid in the host's PID namespace (the command's too: pivot execs it, or is its
    /// parent with `--reaper`).
    pub pid: i64,
    /// Namespace key and inode, in [`NAMESPACES`] order; one that cannot be read is left out.
    pub namespaces: Vec<(&'static str, u64)>,
}

impl Info {
    /// Reads pivot's host pid and namespace inodes from the host's `/proc`.
    pub fn read() -> io::Result<Info> {
        let pid = std::fs::read_link("/proc/self")?
            .to_string_lossy()
            .parse::<i64>()
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let namespaces = NAMESPACES
            .iter()
            .filter_map(|(key, ns)| {
                let p = format!("/proc/self/ns/{ns}");
                crate::sys::dev_ino(std::path::Path::new(&p))
                    .ok()
                    .map(|(_, ino)| (*key, ino))
            })
            .collect();
        Ok(Info { pid, namespaces })
    }

    /// The JSON object written first (one line), bubblewrap's keys.
    pub fn json(&self) -> String {
        let mut out = format!("{{ \"child-pid\": {}", self.pid);
        for (key, ino) in &self.namespaces {
            out.push_str(&format!(", \"{key}\": {ino}"));
        }
        out.push_str(" }\n");
        out
    }
}

/// The JSON object written at the end (one line): the command's exit code, 128+N for a signal.
pub fn exit_json(code: i32) -> String {
    format!("{{ \"exit-code\": {code} }}\n")
}

/// Writes all of `text` to `fd`.
pub fn write_all(fd: RawFd, text: &str) -> io::Result<()> {
    // SAFETY: `fd` is the descriptor the user named (`--info-fd`, `--json-status-fd`), checked
    // open for writing by [`crate::sys::fd_writable`] and not closed while this borrow lives.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        match nix::unistd::write(fd, rest) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(n) => rest = &rest[n..],
        }
    }
    Ok(())
}

/// `--block-fd`: waits until one byte can be read from `fd` or it reaches its end.
pub fn block_on(fd: RawFd) -> io::Result<()> {
    let mut byte = [0u8];
    loop {
        match nix::unistd::read(fd, &mut byte) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_bwraps_keys() {
        let info = Info {
            pid: 42,
            namespaces: vec![("mnt-namespace", 4026531841), ("pid-namespace", 7)],
        };
        assert_eq!(
            info.json(),
            "{ \"child-pid\": 42, \"mnt-namespace\": 4026531841, \"pid-namespace\": 7 }\n"
        );
        assert_eq!(exit_json(143), "{ \"exit-code\": 143 }\n");
        let me = Info::read().expect("read /proc/self");
        assert_eq!(me.pid, i64::from(std::process::id()));
        assert_eq!(me.namespaces.len(), NAMESPACES.len());
    }
}
