//! What a group used and what struck it, read from v1 or v2 files into one shape, so `stat` and
//! the `run` report read the same on every host.

use crate::cgroupfs::{keyed, Ahead};
use crate::group::Group;
use crate::layout::Version;
use serde_json::{json, Value};

/// Usage counters; `None` where the host has no such file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Memory charged now.
    pub memory_current_bytes: Option<u64>,
    /// Highest memory charged.
    pub memory_peak_bytes: Option<u64>,
    /// Times the memory limit was hit (v2 memory.events max, v1 memory.failcnt).
    pub memory_limit_hits: Option<u64>,
    /// Processes the OOM killer killed in the group.
    pub oom_kills: Option<u64>,
    /// CPU time in microseconds.
    pub cpu_usage_usec: Option<u64>,
    /// User CPU time.
    pub cpu_user_usec: Option<u64>,
    /// System CPU time.
    pub cpu_system_usec: Option<u64>,
    /// Periods in which the quota throttled the group.
    pub cpu_nr_throttled: Option<u64>,
    /// Time spent throttled.
    pub cpu_throttled_usec: Option<u64>,
    /// Tasks now.
    pub pids_current: Option<u64>,
    /// Most tasks at once.
    pub pids_peak: Option<u64>,
    /// Forks refused by pids.max.
    pub pids_limit_hits: Option<u64>,
}

fn num(text: Option<String>) -> Option<u64> {
    text.and_then(|t| t.trim().parse().ok())
}

/// The v1 counters that tell how often a group hit its memory limits.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct V1Hits {
    /// memory.failcnt: charges refused by memory.limit_in_bytes.
    pub failcnt: Option<u64>,
    /// memory.memsw.failcnt: charges refused by memory.memsw.limit_in_bytes.
    pub memsw_failcnt: Option<u64>,
    /// memory.memsw.max_usage_in_bytes.
    pub memsw_peak: Option<u64>,
    /// memory.memsw.limit_in_bytes.
    pub memsw_limit: Option<u64>,
    /// OOM kills in the group.
    pub oom_kills: Option<u64>,
}

/// `memory_limit_hits` on v1. The memory+swap limit (`--swap`) is checked before the memory one,
/// so with `--swap 0` (both equal) every refused charge is a memsw one: counted in
/// memory.memsw.failcnt on older kernels, and nowhere on recent ones (seen on 6.18: only the
/// memory counter tracks its failures). What is known then is a lower bound: an OOM kill in the group means its limit
/// was hit at least that often, and a memsw peak at the limit means it was hit at least once.
pub fn v1_limit_hits(h: &V1Hits) -> Option<u64> {
    let counted = h.failcnt? + h.memsw_failcnt.unwrap_or(0);
    let at_limit = matches!((h.memsw_peak, h.memsw_limit), (Some(p), Some(l)) if p >= l);
    Some(
        counted
            .max(h.oom_kills.unwrap_or(0))
            .max(u64::from(at_limit)),
    )
}

/// Parses a v1 cpuacct value in nanoseconds into microseconds.
pub fn ns_to_us(text: Option<String>) -> Option<u64> {
    num(text).map(|n| n / 1000)
}

impl Stats {
    /// Reads the counters of `g` from whichever hierarchy carries each controller.
    pub fn read(g: &Group) -> Stats {
        Stats::read_some(g, true, &mut |p| crate::cgroupfs::read_small(p).ok())
    }

    /// What the `run` report shows: [`Stats::read`] without the current values (memory and
    /// pids in use), which are zero once the command is reaped and are not reported, read
    /// through the files [`Stats::open_ahead`] opened.
    pub fn read_for_report(g: &Group, ahead: &mut Ahead) -> Stats {
        Stats::read_some(g, false, &mut |p| ahead.read(p).ok())
    }

    /// Opens the files [`Stats::read_for_report`] reads (the same walk, reading nothing).
    pub fn open_ahead(g: &Group, ahead: &mut Ahead) {
        Stats::read_some(g, false, &mut |p| {
            ahead.open(p);
            None
        });
    }

    /// The walk over the counter files; `read` gives a file's text (the walk never depends on
    /// it, so opening ahead sees the same files as reading).
    fn read_some(
        g: &Group,
        current: bool,
        read: &mut dyn FnMut(&std::path::Path) -> Option<String>,
    ) -> Stats {
        let mut s = Stats::default();
        let mut rd = |dir: &std::path::Path, f: &str| read(&dir.join(f));
        let v2dir = g.layout.v2().filter(|&h| g.in_scope(h)).map(|h| g.dir(h));
        if let Some(d) = g.controller_dir("memory") {
            match g.layout.route_version("memory") {
                Some(Version::V2) => {
                    if current {
                        s.memory_current_bytes = num(rd(&d, "memory.current"));
                    }
                    s.memory_peak_bytes = num(rd(&d, "memory.peak"));
                    let ev = rd(&d, "memory.events").unwrap_or_default();
                    s.memory_limit_hits = keyed(&ev, "max");
                    s.oom_kills = keyed(&ev, "oom_kill");
                }
                _ => {
                    if current {
                        s.memory_current_bytes = num(rd(&d, "memory.usage_in_bytes"));
                    }
                    s.memory_peak_bytes = num(rd(&d, "memory.max_usage_in_bytes"));
                    s.oom_kills = keyed(
                        &rd(&d, "memory.oom_control").unwrap_or_default(),
                        "oom_kill",
                    );
                    s.memory_limit_hits = v1_limit_hits(&V1Hits {
                        failcnt: num(rd(&d, "memory.failcnt")),
                        memsw_failcnt: num(rd(&d, "memory.memsw.failcnt")),
                        memsw_peak: num(rd(&d, "memory.memsw.max_usage_in_bytes")),
                        memsw_limit: num(rd(&d, "memory.memsw.limit_in_bytes")),
                        oom_kills: s.oom_kills,
                    });
                }
            }
        }
        if let (Some(d), Some(Version::V1)) = (
            g.controller_dir("cpuacct"),
            g.layout.route_version("cpuacct"),
        ) {
            s.cpu_usage_usec = ns_to_us(rd(&d, "cpuacct.usage"));
            s.cpu_user_usec = ns_to_us(rd(&d, "cpuacct.usage_user"));
            s.cpu_system_usec = ns_to_us(rd(&d, "cpuacct.usage_sys"));
        } else if let Some(d) = &v2dir {
            // v2 cpu.stat's usage lines exist even without the cpu controller.
            let st = rd(d, "cpu.stat").unwrap_or_default();
            s.cpu_usage_usec = keyed(&st, "usage_usec");
            s.cpu_user_usec = keyed(&st, "user_usec");
            s.cpu_system_usec = keyed(&st, "system_usec");
        }
        if let Some(d) = g.controller_dir("cpu") {
            let st = rd(&d, "cpu.stat").unwrap_or_default();
            s.cpu_nr_throttled = keyed(&st, "nr_throttled");
            s.cpu_throttled_usec = match g.layout.route_version("cpu") {
                Some(Version::V2) => keyed(&st, "throttled_usec"),
                _ => keyed(&st, "throttled_time").map(|n| n / 1000),
            };
        }
        if let Some(d) = g.controller_dir("pids") {
            if current {
                s.pids_current = num(rd(&d, "pids.current"));
            }
            s.pids_peak = num(rd(&d, "pids.peak"));
            s.pids_limit_hits = keyed(&rd(&d, "pids.events").unwrap_or_default(), "max");
        }
        s
    }

    /// The JSON object of `stat --json` (and the usage part of the run report).
    pub fn to_json(&self) -> Value {
        json!({
            "memory_current_bytes": self.memory_current_bytes,
            "memory_peak_bytes": self.memory_peak_bytes,
            "memory_limit_hits": self.memory_limit_hits,
            "oom_kills": self.oom_kills,
            "cpu_usage_usec": self.cpu_usage_usec,
            "cpu_user_usec": self.cpu_user_usec,
            "cpu_system_usec": self.cpu_system_usec,
            "cpu_nr_throttled": self.cpu_nr_throttled,
            "cpu_throttled_usec": self.cpu_throttled_usec,
            "pids_current": self.pids_current,
            "pids_peak": self.pids_peak,
            "pids_limit_hits": self.pids_limit_hits,
        })
    }

    /// `key value` lines for `stat` without `--json` (`-` where unknown).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Value::Object(m) = self.to_json() {
            for (k, v) in m {
                let v = if v.is_null() {
                    "-".to_string()
                } else {
                    v.to_string()
                };
                out.push_str(&format!("{k} {v}\n"));
            }
        }
        out
    }
}

/// What `run` reports about one command.
#[derive(Debug, Clone)]
pub struct Report {
    /// Exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Fatal signal, if it was killed.
    pub signal: Option<i32>,
    /// Usage counters read before the group was removed.
    pub stats: Stats,
    /// OOM-killer kills counted at the start (0 for a fresh group).
    pub oom_kills_before: u64,
    /// Wall time from spawn to reap.
    pub wall_time_usec: u64,
    /// The limits as applied.
    pub limits: Value,
    /// The group's name.
    pub group: String,
}

impl Report {
    /// The one JSON object of `--report` and `--json`.
    pub fn to_json(&self) -> Value {
        let oom_kills = self
            .stats
            .oom_kills
            .map(|n| n.saturating_sub(self.oom_kills_before));
        json!({
            "exit_code": self.exit_code,
            "signal": self.signal,
            "oom_killed": oom_kills.unwrap_or(0) > 0,
            "oom_kills": oom_kills,
            "memory_peak_bytes": self.stats.memory_peak_bytes,
            "memory_limit_hits": self.stats.memory_limit_hits,
            "cpu_usage_usec": self.stats.cpu_usage_usec,
            "cpu_user_usec": self.stats.cpu_user_usec,
            "cpu_system_usec": self.stats.cpu_system_usec,
            "cpu_nr_throttled": self.stats.cpu_nr_throttled,
            "pids_peak": self.stats.pids_peak,
            "pids_limit_hits": self.stats.pids_limit_hits,
            "wall_time_usec": self.wall_time_usec,
            "cgroup": self.group,
            "limits": self.limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_limit_hits_count_memsw_and_oom_kills() {
        let none = V1Hits::default();
        assert_eq!(v1_limit_hits(&none), None);
        let mem = V1Hits {
            failcnt: Some(51),
            ..none
        };
        assert_eq!(v1_limit_hits(&mem), Some(51));
        // Older kernels count memsw refusals.
        let old = V1Hits {
            failcnt: Some(0),
            memsw_failcnt: Some(7),
            ..none
        };
        assert_eq!(v1_limit_hits(&old), Some(7));
        // Recent kernels: memsw.failcnt stays 0; the OOM kill and the peak at the limit still tell.
        let new = V1Hits {
            failcnt: Some(0),
            memsw_failcnt: Some(0),
            memsw_peak: Some(32 << 20),
            memsw_limit: Some(32 << 20),
            oom_kills: Some(2),
        };
        assert_eq!(v1_limit_hits(&new), Some(2));
        let peak_only = V1Hits {
            oom_kills: Some(0),
            ..new
        };
        assert_eq!(v1_limit_hits(&peak_only), Some(1));
        let below = V1Hits {
            memsw_peak: Some(1 << 20),
            ..peak_only
        };
        assert_eq!(v1_limit_hits(&below), Some(0));
    }

    #[test]
    fn report_shape() {
        let r = Report {
            exit_code: None,
            signal: Some(9),
            stats: Stats {
                oom_kills: Some(1),
                memory_peak_bytes: Some(33_554_432),
                ..Stats::default()
            },
            oom_kills_before: 0,
            wall_time_usec: 5,
            limits: json!({"memory_bytes": 33554432}),
            group: "g".into(),
        };
        let j = r.to_json();
        assert_eq!(j["exit_code"], Value::Null);
        assert_eq!(j["signal"], 9);
        assert_eq!(j["oom_killed"], true);
        assert_eq!(j["oom_kills"], 1);
        assert_eq!(j["pids_peak"], Value::Null);
        assert_eq!(j["limits"]["memory_bytes"], 33554432);
        assert_eq!(ns_to_us(Some("1500\n".into())), Some(1));
        let t = Stats::default().to_text();
        assert!(t.contains("pids_peak -\n"), "{t}");
    }
}
