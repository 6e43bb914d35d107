//! A group's full counters with their limits (CPU per kind and per CPU, memory and swap with
//! limits and failure counts, memory.stat, pids with their limit, block I/O per device), read
//! from v1, v2 or a hybrid layout into one shape: what an OCI runtime's `events --stats`
//! reports, kept here with the other cgroupfs readers.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cgroupfs::{keyed, read_small};
use crate::group::Group;
use crate::layout::Version;

/// One block I/O counter of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard` or `Total` (v1's names; v2's rbytes and
    /// wbytes become Read and Write).
    pub op: String,
    /// Bytes (or operations, for the serviced counters).
    pub value: u64,
}

/// A memory counter with its limit; `None` where the host has no such file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemEntry {
    /// Charged now.
    pub usage: Option<u64>,
    /// Highest charge.
    pub max: Option<u64>,
    /// The limit (`None`: unlimited or no file).
    pub limit: Option<u64>,
    /// Charges refused by the limit.
    pub failcnt: Option<u64>,
}

/// Everything [`Detail::read`] finds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// CPU time, nanoseconds.
    pub cpu_total_ns: Option<u64>,
    /// User CPU time, nanoseconds.
    pub cpu_user_ns: Option<u64>,
    /// System CPU time, nanoseconds.
    pub cpu_system_ns: Option<u64>,
    /// CPU time per CPU, nanoseconds (v1 cpuacct only).
    pub cpu_percpu_ns: Vec<u64>,
    /// Enforcement periods of the quota.
    pub cpu_periods: Option<u64>,
    /// Periods in which the group was throttled.
    pub cpu_throttled_periods: Option<u64>,
    /// Time throttled, nanoseconds.
    pub cpu_throttled_ns: Option<u64>,
    /// Memory.
    pub memory: MemEntry,
    /// Memory and swap together (v1 memsw; v2: memory.current + memory.swap.current).
    pub swap: MemEntry,
    /// memory.stat, every line.
    pub memory_stat: BTreeMap<String, u64>,
    /// OOM kills in the group.
    pub oom_kills: Option<u64>,
    /// Tasks now.
    pub pids_current: Option<u64>,
    /// pids.max (`None`: max).
    pub pids_limit: Option<u64>,
    /// Bytes moved per device and direction.
    pub io_bytes: Vec<IoEntry>,
    /// Operations per device and direction.
    pub io_ops: Vec<IoEntry>,
}

fn num(text: Option<String>) -> Option<u64> {
    text.and_then(|t| t.trim().parse().ok())
}

/// A limit file's value: `max` (v2) and v1's huge "unlimited" page-rounded value are `None`.
pub fn limit(text: Option<String>) -> Option<u64> {
    let n: u64 = text?.trim().parse().ok()?;
    // v1 writes LONG_MAX rounded down to a page for "no limit".
    (n < (i64::MAX as u64) & !0xfff).then_some(n)
}

/// `key value` lines (memory.stat) into a map.
pub fn keyed_all(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// v1 blkio files: `MAJ:MIN Op value` lines (the `Total N` line without a device is left out).
pub fn parse_blkio_v1(text: &str) -> Vec<IoEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(IoEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// v2 io.stat: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...` lines, as (bytes, operations)
/// entries named Read and Write.
pub fn parse_io_stat(text: &str) -> (Vec<IoEntry>, Vec<IoEntry>) {
    let (mut bytes, mut ops) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ops, "Read"),
                "wios" => (&mut ops, "Write"),
                _ => continue,
            };
            list.push(IoEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ops)
}

impl Detail {
    /// Reads the counters of `g` from whichever hierarchy carries each controller.
    pub fn read(g: &Group) -> Detail {
        let rd = |dir: &Path, f: &str| read_small(&dir.join(f)).ok();
        let mut d = Detail::default();
        let v2dir = g.layout.v2().filter(|&h| g.in_scope(h)).map(|h| g.dir(h));
        if let (Some(dir), Some(Version::V1)) = (
            g.controller_dir("cpuacct"),
            g.layout.route_version("cpuacct"),
        ) {
            d.cpu_total_ns = num(rd(&dir, "cpuacct.usage"));
            d.cpu_user_ns = num(rd(&dir, "cpuacct.usage_user"));
            d.cpu_system_ns = num(rd(&dir, "cpuacct.usage_sys"));
            d.cpu_percpu_ns = rd(&dir, "cpuacct.usage_percpu")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
        } else if let Some(dir) = &v2dir {
            let st = rd(dir, "cpu.stat").unwrap_or_default();
            let ns = |k| keyed(&st, k).map(|us| us * 1000);
            d.cpu_total_ns = ns("usage_usec");
            d.cpu_user_ns = ns("user_usec");
            d.cpu_system_ns = ns("system_usec");
        }
        if let Some(dir) = g.controller_dir("cpu") {
            let st = rd(&dir, "cpu.stat").unwrap_or_default();
            d.cpu_periods = keyed(&st, "nr_periods");
            d.cpu_throttled_periods = keyed(&st, "nr_throttled");
            d.cpu_throttled_ns = match g.layout.route_version("cpu") {
                Some(Version::V2) => keyed(&st, "throttled_usec").map(|us| us * 1000),
                _ => keyed(&st, "throttled_time"),
            };
        }
        if let Some(dir) = g.controller_dir("memory") {
            match g.layout.route_version("memory") {
                Some(Version::V2) => {
                    d.memory = MemEntry {
                        usage: num(rd(&dir, "memory.current")),
                        max: num(rd(&dir, "memory.peak")),
                        limit: limit(rd(&dir, "memory.max")),
                        failcnt: keyed(&rd(&dir, "memory.events").unwrap_or_default(), "max"),
                    };
                    let swap = num(rd(&dir, "memory.swap.current"));
                    d.swap = MemEntry {
                        usage: swap.zip(d.memory.usage).map(|(s, m)| s + m),
                        max: None,
                        limit: limit(rd(&dir, "memory.swap.max"))
                            .zip(d.memory.limit)
                            .map(|(s, m)| s + m),
                        failcnt: keyed(&rd(&dir, "memory.swap.events").unwrap_or_default(), "max"),
                    };
                    d.oom_kills = keyed(&rd(&dir, "memory.events").unwrap_or_default(), "oom_kill");
                }
                _ => {
                    let entry = |prefix: &str| MemEntry {
                        usage: num(rd(&dir, &format!("{prefix}usage_in_bytes"))),
                        max: num(rd(&dir, &format!("{prefix}max_usage_in_bytes"))),
                        limit: limit(rd(&dir, &format!("{prefix}limit_in_bytes"))),
                        failcnt: num(rd(&dir, &format!("{prefix}failcnt"))),
                    };
                    d.memory = entry("memory.");
                    d.swap = entry("memory.memsw.");
                    d.oom_kills = keyed(
                        &rd(&dir, "memory.oom_control").unwrap_or_default(),
                        "oom_kill",
                    );
                }
            }
            d.memory_stat = keyed_all(&rd(&dir, "memory.stat").unwrap_or_default());
        }
        if let Some(dir) = g.controller_dir("pids") {
            d.pids_current = num(rd(&dir, "pids.current"));
            d.pids_limit = limit(rd(&dir, "pids.max"));
        }
        match (
            g.layout.route_version("blkio"),
            g.layout.route_version("io"),
        ) {
            (Some(Version::V1), _) => {
                if let Some(dir) = g.controller_dir("blkio") {
                    let first = |names: [&str; 2]| {
                        names
                            .iter()
                            .map(|n| parse_blkio_v1(&rd(&dir, n).unwrap_or_default()))
                            .find(|l| !l.is_empty())
                            .unwrap_or_default()
                    };
                    // The CFQ/BFQ counters where a scheduler keeps them, the throttle
                    // layer's (which counts every bio) otherwise.
                    d.io_bytes = first([
                        "blkio.io_service_bytes_recursive",
                        "blkio.throttle.io_service_bytes_recursive",
                    ]);
                    d.io_ops = first([
                        "blkio.io_serviced_recursive",
                        "blkio.throttle.io_serviced_recursive",
                    ]);
                }
            }
            (_, Some(Version::V2)) => {
                if let Some(dir) = g.controller_dir("io") {
                    (d.io_bytes, d.io_ops) =
                        parse_io_stat(&rd(&dir, "io.stat").unwrap_or_default());
                }
            }
            _ => {}
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(limit(Some("max\n".into())), None);
        assert_eq!(limit(Some("9223372036854771712\n".into())), None);
        assert_eq!(limit(Some("33554432\n".into())), Some(33_554_432));
        let m = keyed_all("cache 4096\nrss 8192\nbogus\n");
        assert_eq!(m.get("rss"), Some(&8192));
        assert_eq!(m.len(), 2);
        let v1 = parse_blkio_v1("8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n");
        assert_eq!(v1.len(), 3);
        assert_eq!(
            v1[1],
            IoEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 512
            }
        );
        let (b, o) =
            parse_io_stat("259:0 rbytes=1048576 wbytes=4096 rios=3 wios=1 dbytes=0 dios=0\n");
        assert_eq!(
            b.iter().map(|e| e.value).collect::<Vec<_>>(),
            [1048576, 4096]
        );
        assert_eq!(o[0].op, "Read");
        assert_eq!(o[1].value, 1);
    }
}
