//! `events`: the container's cgroup counters as runc prints them (one JSON object a line,
//! `{"type":"stats","id":...,"data":{"cpu","memory","pids","blkio",...}}`), read through cgctl's
//! [`cgctl::detail`] on v1, v2 and hybrid hosts; once with `--stats`, else every interval
//! until the container stops, with an `{"type":"oom"}` line when the OOM killer struck.

use std::path::Path;
use std::time::Duration;

use cgctl::detail::{Detail, IoEntry, MemEntry};
use cgctl::group::Group;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::state::{self, Status};

fn mem(e: &MemEntry) -> Value {
    json!({
        "usage": e.usage.unwrap_or(0),
        "max": e.max.unwrap_or(0),
        "limit": e.limit.unwrap_or(u64::MAX),
        "failcnt": e.failcnt.unwrap_or(0),
    })
}

fn io(list: &[IoEntry]) -> Value {
    list.iter()
        .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
        .collect()
}

/// runc's stats event of one reading (pure).
pub fn stats_json(id: &str, d: &Detail) -> Value {
    json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": {
                "usage": {
                    "total": d.cpu_total_ns.unwrap_or(0),
                    "percpu": d.cpu_percpu_ns,
                    "kernel": d.cpu_system_ns.unwrap_or(0),
                    "user": d.cpu_user_ns.unwrap_or(0),
                },
                "throttling": {
                    "periods": d.cpu_periods.unwrap_or(0),
                    "throttledPeriods": d.cpu_throttled_periods.unwrap_or(0),
                    "throttledTime": d.cpu_throttled_ns.unwrap_or(0),
                },
            },
            "memory": {
                "cache": d.memory_stat.get("cache").or(d.memory_stat.get("file")).copied()
                    .unwrap_or(0),
                "usage": mem(&d.memory),
                "swap": mem(&d.swap),
                "raw": d.memory_stat,
            },
            "pids": {
                "current": d.pids_current.unwrap_or(0),
                "limit": d.pids_limit.unwrap_or(0),
            },
            "blkio": {
                "ioServiceBytesRecursive": io(&d.io_bytes),
                "ioServicedRecursive": io(&d.io_ops),
            },
            "hugetlb": {},
        }
    })
}

/// Reads a `--interval` value: `5s`, `500ms`, `1m`, or plain seconds.
pub fn parse_interval(s: &str) -> Result<Duration> {
    let bad = || {
        Error::Usage(format!(
            "--interval '{s}': give a positive duration such as 5s, 500ms or 1m"
        ))
    };
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !(secs > 0.0 && secs < 86_400.0) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `events [--stats] [--interval D] ID`.
pub fn events(root: &Path, id: &str, once: bool, interval: Duration) -> Result<()> {
    use std::io::Write;
    state::check_id(id)?;
    let r = state::require(root, id)?;
    if crate::lifecycle::status_of(root, &r) == Status::Stopped {
        return Err(Error::state(id, "is stopped: it has no cgroup to report"));
    }
    let layout = crate::lifecycle::host_layout()?;
    let g = Group::new(layout, None, &r.cgroup)?;
    let out = std::io::stdout();
    let print = |v: Value| -> Result<()> {
        let mut o = out.lock();
        writeln!(o, "{v}")
            .and_then(|()| o.flush())
            .map_err(|e| Error::sys("writing to stdout", e))
    };
    let mut d = Detail::read(&g);
    if once {
        return print(stats_json(id, &d));
    }
    // The init's pidfd ends the wait early when the container stops.
    let pidfd = nsenter_rs::sys::pidfd_open(r.pid).ok();
    let mut ooms = d.oom_kills.unwrap_or(0);
    let ms = interval.as_millis().min(i32::MAX as u128) as i32;
    loop {
        print(stats_json(id, &d))?;
        let stopped = match &pidfd {
            Some(fd) => crate::sys::poll_in(&[fd], ms)
                .map(|r| r.is_some_and(|v| v.first().is_some_and(|e| e & libc::POLLIN != 0)))
                .unwrap_or(true),
            None => {
                std::thread::sleep(interval);
                false
            }
        };
        if stopped || crate::lifecycle::status_of(root, &r) == Status::Stopped {
            return Ok(());
        }
        d = Detail::read(&g);
        let now = d.oom_kills.unwrap_or(0);
        if now > ooms {
            print(json!({"type": "oom", "id": id}))?;
            ooms = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_shape() {
        let d = Detail {
            cpu_total_ns: Some(5_000),
            cpu_percpu_ns: vec![2_000, 3_000],
            memory: MemEntry {
                usage: Some(4096),
                limit: None,
                ..MemEntry::default()
            },
            pids_current: Some(1),
            pids_limit: Some(20),
            io_bytes: vec![IoEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 512,
            }],
            memory_stat: [("cache".to_string(), 7u64)].into_iter().collect(),
            ..Detail::default()
        };
        let j = stats_json("c1", &d);
        assert_eq!(j["type"], "stats");
        assert_eq!(j["id"], "c1");
        assert_eq!(j["data"]["cpu"]["usage"]["total"], 5000);
        assert_eq!(j["data"]["cpu"]["usage"]["percpu"], json!([2000, 3000]));
        assert_eq!(j["data"]["memory"]["usage"]["usage"], 4096);
        assert_eq!(j["data"]["memory"]["usage"]["limit"], u64::MAX);
        assert_eq!(j["data"]["memory"]["cache"], 7);
        assert_eq!(j["data"]["pids"], json!({"current": 1, "limit": 20}));
        assert_eq!(
            j["data"]["blkio"]["ioServiceBytesRecursive"],
            json!([{"major": 8, "minor": 0, "op": "Read", "value": 512}])
        );
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_interval("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_interval("1m").unwrap(), Duration::from_secs(60));
        for bad in ["", "0s", "-1s", "5h", "x", "1e9"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
