//! `--ls`: the lsns view of one process, as a table or one JSON object per line, so scripts can
//! see which namespaces a process shares with PID 1 before entering them.

use crate::args::TargetSpec;
use crate::enter::Target;
use crate::error::Error;
use crate::sys;
use conventions::ns::{self, NsKind};

/// One namespace of the listed process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its kind.
    pub kind: NsKind,
    /// Its inode.
    pub inode: u64,
    /// Whether PID 1's namespace of this kind is another one; None when PID 1's cannot be read.
    pub differs_from_pid1: Option<bool>,
}

/// Formats the rows as an aligned table with a header, after a line naming the process and its
/// pidfs inode (what `-t PID:INODE` takes) when the kernel has pidfs.
pub fn table(pid: i32, pidfs_inode: Option<u64>, rows: &[Row]) -> String {
    let mut out = match pidfs_inode {
        Some(i) => format!("process {pid}, pidfs inode {i} (-t {pid}:{i})\n"),
        None => format!("process {pid} (no pidfs inode: the kernel has no pidfs)\n"),
    };
    out.push_str(&format!("{:<7} {:>11} {}\n", "TYPE", "INODE", "PID1"));
    for r in rows {
        let pid1 = match r.differs_from_pid1 {
            Some(true) => "differs",
            Some(false) => "same",
            None => "unknown",
        };
        out.push_str(&format!(
            "{:<7} {:>11} {}\n",
            r.kind.proc_name, r.inode, pid1
        ));
    }
    out
}

/// Formats the rows as JSON, one object per line.
pub fn json(pid: i32, pidfs_inode: Option<u64>, rows: &[Row]) -> String {
    rows.iter()
        .map(|r| {
            let v = serde_json::json!({
                "pid": pid,
                "pidfs_inode": pidfs_inode,
                "type": r.kind.proc_name,
                "inode": r.inode,
                "differs_from_pid1": r.differs_from_pid1,
            });
            format!("{v}\n")
        })
        .collect()
}

/// Reads the namespaces of `target` (None: ourselves) and prints them.
pub fn run(target: Option<TargetSpec>, as_json: bool) -> Result<(), Error> {
    let (pid, t) = match target {
        Some(spec) => (spec.pid, Some(Target::open(spec)?)),
        None => (std::process::id() as i32, None),
    };
    let own_pidfd;
    let pidfd = match &t {
        Some(t) => t.pidfd.as_ref(),
        None => {
            own_pidfd = sys::pidfd_open(pid).ok();
            own_pidfd.as_ref()
        }
    };
    let pidfs_inode = pidfd
        .filter(|fd| sys::fs_type(fd).ok() == Some(sys::PIDFS_MAGIC))
        .and_then(|fd| sys::inode(fd).ok());
    let mut rows = Vec::new();
    for kind in ns::ALL {
        if !kind.supported() {
            continue;
        }
        let inode = match &t {
            Some(t) => t.ns_inode(kind)?,
            None => kind.inode(ns::Proc::Current).map_err(|e| {
                Error::sys(format!("stat(/proc/self/ns/{})", kind.proc_name), e, "")
            })?,
        };
        let pid1 = kind.inode(ns::Proc::Pid(1)).ok();
        rows.push(Row {
            kind,
            inode,
            differs_from_pid1: pid1.map(|p| p != inode),
        });
    }
    if let Some(t) = &t {
        t.still_alive()?;
    }
    let text = if as_json {
        json(pid, pidfs_inode, &rows)
    } else {
        table(pid, pidfs_inode, &rows)
    };
    conventions::out!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                kind: ns::ALL[0],
                inode: 4026531837,
                differs_from_pid1: Some(false),
            },
            Row {
                kind: ns::ALL[6],
                inode: 4026532200,
                differs_from_pid1: None,
            },
        ]
    }

    #[test]
    fn table_is_aligned() {
        assert_eq!(
            table(7, Some(99), &rows()),
            "process 7, pidfs inode 99 (-t 7:99)\n\
             TYPE          INODE PID1\nuser     4026531837 same\nmnt      4026532200 unknown\n"
        );
        assert!(table(7, None, &[]).starts_with("process 7 (no pidfs inode"));
    }

    #[test]
    fn json_is_one_object_per_line() {
        let j = json(7, Some(99), &rows());
        let lines: Vec<&str> = j.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["type"], "mnt");
        assert_eq!(v["pid"], 7);
        assert_eq!(v["pidfs_inode"], 99);
        assert_eq!(v["inode"], 4026532200u64);
        assert!(v["differs_from_pid1"].is_null());
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["differs_from_pid1"], false);
    }
}
