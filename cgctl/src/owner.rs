//! Which `cgctl run` owns which group: a run records itself (pid, time, group) in /run/cgctl
//! before it makes its group, so that when it is SIGKILLed and cannot clean up, `cgctl gc`
//! finds the group of the dead run, and only that, and removes it.
//!
//! A cgroup directory cannot hold a file of ours, and a name that carried the pid would not cover
//! `--name`: hence a small state file per run. A pid alone could be reused: the record's time
//! (CLOCK_BOOTTIME, read without a syscall) tells the recorded cgctl, which started before it,
//! from a later process with the same pid, which started after cgctl died (its start time in
//! /proc/PID/stat, in clock ticks since boot, is later).

use crate::group::Group;
use crate::layout::Layout;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Where runs record themselves (a tmpfs: records go at reboot, as the groups do).
pub const STATE_DIR: &str = "/run/cgctl";

/// What a run records about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// cgctl's pid.
    pub pid: i32,
    /// When the record was written: CLOCK_BOOTTIME in nanoseconds (the clock of the start
    /// times in /proc/PID/stat).
    pub recorded: u64,
    /// The run's group, relative to each hierarchy's root (`--parent` included).
    pub group: String,
}

impl Record {
    /// The file's text: `pid N`, `recorded NS`, `group NAME`, one a line.
    pub fn format(&self) -> String {
        format!(
            "pid {}\nrecorded {}\ngroup {}\n",
            self.pid, self.recorded, self.group
        )
    }

    /// Parses [`Record::format`]'s text; `None` for anything else (such a file is left alone).
    pub fn parse(text: &str) -> Option<Record> {
        let (mut pid, mut recorded, mut group) = (None, None, None);
        for line in text.lines() {
            let (k, v) = line.split_once(' ')?;
            match k {
                "pid" if pid.is_none() => pid = Some(v.parse::<i32>().ok().filter(|&p| p > 0)?),
                "recorded" if recorded.is_none() => recorded = Some(v.parse::<u64>().ok()?),
                "group" if group.is_none() => {
                    // A record never names a root or a path that climbs out of one.
                    crate::group::check_name(v).ok()?;
                    if v.is_empty() {
                        return None;
                    }
                    group = Some(v.to_string());
                }
                _ => return None,
            }
        }
        Some(Record {
            pid: pid?,
            recorded: recorded?,
            group: group?,
        })
    }

    /// The record's file name in [`STATE_DIR`]: `run-PID-RECORDED`, one per run.
    pub fn file_name(&self) -> String {
        format!("run-{}-{}", self.pid, self.recorded)
    }
}

/// The start time (field 22) of a /proc/PID/stat text, and whether the process is a zombie.
/// The command name (field 2) may hold spaces and parentheses: fields are counted after the
/// last `)`.
pub fn parse_stat(stat: &str) -> Option<(u64, bool)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    // Fields 4..=21 come between the state (3) and the start time (22).
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state == "Z" || state == "X"))
}

/// The start time of process `pid` in clock ticks since boot (`None`: it does not exist, or is
/// a zombie that runs nothing).
fn start_of(pid: i32) -> Option<u64> {
    let stat = crate::cgroupfs::read_small(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    match parse_stat(&stat)? {
        (start, false) => Some(start),
        (_, true) => None,
    }
}

/// Whether a process that started at `start_ticks` (clock ticks of `hz` per second since boot)
/// can be the one that wrote a record at `recorded` ns since boot: it started before. A later
/// process with a reused pid started after the recorded cgctl died; one that started within
/// the same tick counts as alive, which only keeps a leftover for a later gc.
pub fn started_before(start_ticks: u64, hz: u64, recorded: u64) -> bool {
    let ns_per_tick = 1_000_000_000 / hz.max(1);
    u128::from(start_ticks) * u128::from(ns_per_tick) <= u128::from(recorded)
}

/// Whether the cgctl of `rec` still runs (a later process with its pid does not count).
pub fn alive(rec: &Record) -> bool {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    start_of(rec.pid).is_some_and(|s| started_before(s, hz, rec.recorded))
}

/// CLOCK_BOOTTIME in nanoseconds (the vDSO answers it: no syscall).
fn boot_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a valid timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return None;
    }
    Some(u64::try_from(ts.tv_sec).ok()? * 1_000_000_000 + u64::try_from(ts.tv_nsec).ok()?)
}

/// A run's record while it lasts; [`Claim::release`] removes it once the group is gone.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
}

impl Claim {
    /// Records that this process owns `group`. `None` when the state directory cannot be
    /// written (not root, /run read-only): the run goes on, without a record for `gc`.
    pub fn record(group: &str) -> Option<Claim> {
        let rec = Record {
            pid: std::process::id() as i32,
            recorded: boot_ns()?,
            group: group.to_string(),
        };
        let path = Path::new(STATE_DIR).join(rec.file_name());
        let write = || std::fs::write(&path, rec.format());
        match write() {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(STATE_DIR).ok()?;
                write().ok()?;
            }
            Err(_) => return None,
        }
        Some(Claim { path })
    }

    /// Removes the record: the run's group is gone.
    pub fn release(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The records in [`STATE_DIR`] that parse, with their files.
fn records() -> Vec<(PathBuf, Record)> {
    let Ok(dir) = std::fs::read_dir(STATE_DIR) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Record)> = dir
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("run-"))
        .filter_map(|e| {
            let rec = Record::parse(&crate::cgroupfs::read_small(&e.path()).ok()?)?;
            // The file is the run's own: its name says the same pid and time.
            (e.file_name().to_string_lossy() == rec.file_name()).then_some((e.path(), rec))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// What `gc` does with a record, decided from what is alive: a pure step, unit-tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its cgctl runs: leave it.
    Alive,
    /// Its cgctl is dead, but a live run records the same group now (the name was reused after
    /// the old group went): forget the record, leave the group to its new owner.
    Reused,
    /// Its cgctl is dead: the group is a leftover; remove it, then the record.
    Dead,
}

/// The verdict for each record, given which are alive.
pub fn verdicts(recs: &[Record], alive: &dyn Fn(&Record) -> bool) -> Vec<Verdict> {
    let live: Vec<bool> = recs.iter().map(alive).collect();
    recs.iter()
        .zip(&live)
        .map(|(r, &l)| {
            if l {
                Verdict::Alive
            } else if recs
                .iter()
                .zip(&live)
                .any(|(o, &ol)| ol && o.group == r.group)
            {
                Verdict::Reused
            } else {
                Verdict::Dead
            }
        })
        .collect()
}

/// `cgctl gc`: removes the groups of dead runs (killing what is left in them, in every
/// hierarchy) and their records, for the groups below `under` (empty: all); returns the names
/// removed and the first failure (every record is tried). Groups of live runs, and groups no
/// record names, are never touched.
pub fn gc(layout: &Layout, under: &Path) -> (Vec<String>, Result<()>) {
    let found: Vec<(PathBuf, Record)> = records()
        .into_iter()
        .filter(|(_, r)| Path::new(&r.group).starts_with(under))
        .collect();
    let recs: Vec<Record> = found.iter().map(|(_, r)| r.clone()).collect();
    let mut removed = Vec::new();
    let mut first_err: Option<Error> = None;
    for ((path, rec), verdict) in found.iter().zip(verdicts(&recs, &alive)) {
        match verdict {
            Verdict::Alive => continue,
            Verdict::Reused => {
                let _ = std::fs::remove_file(path);
                continue;
            }
            Verdict::Dead => {}
        }
        let result = Group::new(layout, None, &rec.group).and_then(|g| {
            if g.existing().is_empty() {
                Ok(())
            } else {
                g.kill(libc::SIGKILL).and_then(|()| g.delete(true))
            }
        });
        match result {
            Ok(()) => {
                let _ = std::fs::remove_file(path);
                removed.push(rec.group.clone());
            }
            Err(e) => {
                first_err.get_or_insert(Error::Other(format!(
                    "gc: cannot remove cgroup '{}' of dead cgctl pid {}: {e}",
                    rec.group, rec.pid
                )));
            }
        }
    }
    (removed, first_err.map_or(Ok(()), Err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pid: i32, group: &str) -> Record {
        Record {
            pid,
            recorded: 100,
            group: group.into(),
        }
    }

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let r = rec(42, "demo/cgctl-run-42-1");
        assert_eq!(Record::parse(&r.format()), Some(r.clone()));
        assert_eq!(r.file_name(), "run-42-100");
        for bad in [
            "",
            "pid 42\nrecorded 100\n",
            "pid 42\nrecorded 100\ngroup \n",
            "pid 0\nrecorded 100\ngroup g\n",
            "pid -3\nrecorded 100\ngroup g\n",
            "pid 42\nrecorded x\ngroup g\n",
            "pid 42\nrecorded 100\ngroup ../etc\n",
            "pid 42\nrecorded 100\ngroup /sys\n",
            "pid 42\nrecorded 100\ngroup a\tb\n",
            "pid 42\npid 43\nrecorded 100\ngroup g\n",
            "pid 42\nrecorded 100\ngroup g\nextra 1\n",
            "pid42\nrecorded 100\ngroup g\n",
        ] {
            assert_eq!(Record::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn stat_start_time_after_the_last_parenthesis() {
        let stat = "1234 (a) b) (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 \
                    2363392 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        assert_eq!(parse_stat(stat), Some((98765, false)));
        let zombie = stat.replace(") S ", ") Z ");
        assert_eq!(parse_stat(&zombie), Some((98765, true)));
        assert_eq!(parse_stat("1234 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn a_reused_pid_started_after_the_record() {
        // 100 Hz: tick 150 is 1.5 s after boot.
        assert!(started_before(150, 100, 1_500_000_000));
        assert!(started_before(150, 100, 1_509_999_999));
        assert!(!started_before(151, 100, 1_509_999_999));
        assert!(!started_before(u64::MAX, 100, 0));
        assert!(started_before(0, 0, 0));
    }

    #[test]
    fn gc_touches_only_dead_runs_and_not_a_reused_name() {
        let recs = [rec(1, "a"), rec(2, "b"), rec(3, "a"), rec(4, "c")];
        let alive = |r: &Record| r.pid == 1 || r.pid == 2;
        assert_eq!(
            verdicts(&recs, &alive),
            [
                Verdict::Alive,
                Verdict::Alive,
                Verdict::Reused,
                Verdict::Dead
            ]
        );
    }
}
