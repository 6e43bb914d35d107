//! Limits as the user types them, checked and turned into a plan of interface-file writes for
//! v1 or v2, as a pure step that is unit-tested apart from cgroupfs.

use crate::layout::{native_name, Version};
use crate::{Error, Result};
use conventions::size::{parse_limit, Limit};

/// The limit options shared by `create`, `set` and `run`.
#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct LimitArgs {
    /// Hard memory limit: bytes with K/M/G/T (binary), or max.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Memory throttling threshold (v2 memory.high).
    #[arg(long, value_name = "SIZE")]
    pub memory_high: Option<String>,
    /// Swap allowed on top of --memory (v1: memory+swap limit).
    #[arg(long, value_name = "SIZE")]
    pub swap: Option<String>,
    /// CPU bandwidth in cores, e.g. 0.5 or 2 (quota/period), or max.
    #[arg(long, value_name = "FLOAT")]
    pub cpus: Option<String>,
    /// Relative CPU weight 1..10000, default 100 (cpu.shares = weight*1024/100 on v1).
    #[arg(long, value_name = "N")]
    pub cpu_weight: Option<String>,
    /// Maximum number of tasks (>0), or max.
    #[arg(long, value_name = "N")]
    pub pids: Option<String>,
    /// CPUs the group may run on, e.g. 0-1,3.
    #[arg(long, value_name = "LIST")]
    pub cpuset: Option<String>,
    /// Memory nodes the group may allocate from, e.g. 0.
    #[arg(long, value_name = "LIST")]
    pub mems: Option<String>,
    /// Read bandwidth limit for a block device: /dev/vda=10M (bytes per second).
    #[arg(long, value_name = "DEV=RATE")]
    pub io_read_bps: Vec<String>,
    /// Write bandwidth limit for a block device: /dev/vda=10M (bytes per second).
    #[arg(long, value_name = "DEV=RATE")]
    pub io_write_bps: Vec<String>,
    /// Write VALUE to the interface file FILE, e.g. memory.swappiness=0 (repeatable).
    #[arg(long = "set", value_name = "FILE=VALUE")]
    pub raw: Vec<String>,
}

/// CPU bandwidth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cpus {
    /// No quota.
    Max,
    /// Quota in microseconds per [`PERIOD_US`].
    Quota(u64),
}

/// The CFS period cgctl uses (the kernel default).
pub const PERIOD_US: u64 = 100_000;

/// A bandwidth limit on one block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoLimit {
    /// The path the user gave.
    pub device: String,
    /// Its major number.
    pub major: u32,
    /// Its minor number.
    pub minor: u32,
    /// Read bytes per second.
    pub read: Option<Limit>,
    /// Written bytes per second.
    pub write: Option<Limit>,
}

/// Limits checked for syntax and range, independent of the host's layout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Hard memory limit.
    pub memory: Option<Limit>,
    /// Throttle threshold.
    pub memory_high: Option<Limit>,
    /// Swap on top of memory.
    pub swap: Option<Limit>,
    /// CPU bandwidth.
    pub cpus: Option<Cpus>,
    /// The `--cpus` value as given, for the report.
    pub cpus_given: Option<f64>,
    /// Weight 1..10000.
    pub cpu_weight: Option<u32>,
    /// Task limit.
    pub pids: Option<Limit>,
    /// CPU list.
    pub cpuset: Option<String>,
    /// Memory node list.
    pub mems: Option<String>,
    /// Per-device bandwidth.
    pub io: Vec<IoLimit>,
    /// Raw file writes.
    pub raw: Vec<(String, String)>,
}

/// One write of the plan: `value` into `file` of the hierarchy carrying `controller`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Logical controller name (`io`, not `blkio`), or `cgroup` for v2 core files.
    pub controller: String,
    /// Interface file name.
    pub file: String,
    /// What to write.
    pub value: String,
}

fn usage(msg: String) -> Error {
    Error::Usage(msg)
}

fn size_opt(opt: &str, v: &Option<String>) -> Result<Option<Limit>> {
    v.as_deref().map(|s| limit(opt, s)).transpose()
}

/// A size or rate of option `--opt`: bytes with K/M/G/T, or `max`. Negative numbers are refused,
/// `-1` too: cgroup v1 files take it for "unlimited", but as a size it reads as a mistake, and
/// passing it on as max would hide that.
fn limit(opt: &str, s: &str) -> Result<Limit> {
    if s.trim_start().starts_with('-') {
        return Err(usage(format!(
            "--{opt}: invalid size '{s}' (a size such as 64M or 1G, or max for no limit)"
        )));
    }
    parse_limit(s).map_err(|e| usage(format!("--{opt}: {e}")))
}

/// Parses a `--cpus` value: `max` or a positive number of cores (at least 0.01, the kernel's
/// 1 ms minimum quota per 100 ms period).
pub fn parse_cpus(s: &str) -> Result<(Cpus, Option<f64>)> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok((Cpus::Max, None));
    }
    let bad = || {
        usage(format!(
            "--cpus: invalid value '{s}' (a number of cores from 0.01 to 4096, e.g. 0.5, or max)"
        ))
    };
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let f: f64 = t.parse().map_err(|_| bad())?;
    if !f.is_finite() || !(0.01..=4096.0).contains(&f) {
        return Err(bad());
    }
    let quota = (f * PERIOD_US as f64).round() as u64;
    Ok((Cpus::Quota(quota.max(1000)), Some(f)))
}

/// Parses a task limit: `max` or a positive integer.
pub fn parse_pids(s: &str) -> Result<Limit> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok(Limit::Max);
    }
    match t.parse::<u64>() {
        Ok(n) if n > 0 && t.bytes().all(|b| b.is_ascii_digit()) && n <= i32::MAX as u64 => {
            Ok(Limit::Bytes(n))
        }
        _ => Err(usage(format!(
            "--pids: invalid value '{s}' (a task count greater than 0, or max)"
        ))),
    }
}

/// Checks a CPU or memory-node list such as `0-3,5`.
pub fn parse_list(opt: &str, s: &str) -> Result<String> {
    let bad = || {
        usage(format!(
            "--{opt}: invalid list '{s}' (e.g. 0, 0-3 or 0-1,4)"
        ))
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    for part in t.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u32 = a.parse().map_err(|_| bad())?;
        let b: u32 = b.parse().map_err(|_| bad())?;
        if a > b || part.starts_with('+') || part.contains(' ') {
            return Err(bad());
        }
    }
    Ok(t.to_string())
}

/// Parses a `--cpu-weight`.
pub fn parse_weight(s: &str) -> Result<u32> {
    match s.trim().parse::<u32>() {
        Ok(w) if (1..=10000).contains(&w) => Ok(w),
        _ => Err(usage(format!(
            "--cpu-weight: invalid value '{s}' (an integer from 1 to 10000; 100 is the default)"
        ))),
    }
}

/// v1 cpu.shares for a v2 weight: proportional (100 -> 1024), within the kernel's 2..262144.
pub fn weight_to_shares(weight: u32) -> u64 {
    (u64::from(weight) * 1024 / 100).clamp(2, 262_144)
}

/// Checks an interface file name given by the user: one plain file name, `controller.key`.
pub fn check_file_name(file: &str) -> Result<()> {
    if file.is_empty()
        || file.contains('/')
        || file.contains('\0')
        || file.starts_with('.')
        || !file.contains('.')
    {
        return Err(usage(format!(
            "invalid interface file '{file}' (a file name such as memory.max or pids.max)"
        )));
    }
    Ok(())
}

/// Resolves a block device path to its major and minor numbers.
pub fn block_device(path: &str) -> Result<(u32, u32)> {
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        usage(format!(
            "unknown device '{path}': {} (give a block device such as /dev/vda)",
            conventions::output::errtext(&e)
        ))
    })?;
    if !meta.file_type().is_block_device() {
        return Err(usage(format!(
            "'{path}' is not a block device (give one such as /dev/vda)"
        )));
    }
    let rdev = meta.rdev();
    Ok((libc::major(rdev), libc::minor(rdev)))
}

impl Limits {
    /// Checks every option; `device` turns a device path into MAJ:MIN (a parameter so that the
    /// parsing can be tested without devices).
    pub fn parse(a: &LimitArgs, device: &dyn Fn(&str) -> Result<(u32, u32)>) -> Result<Limits> {
        let mut l = Limits {
            memory: size_opt("memory", &a.memory)?,
            memory_high: size_opt("memory-high", &a.memory_high)?,
            swap: size_opt("swap", &a.swap)?,
            ..Limits::default()
        };
        if let Some(c) = &a.cpus {
            let (cpus, given) = parse_cpus(c)?;
            l.cpus = Some(cpus);
            l.cpus_given = given;
        }
        l.cpu_weight = a.cpu_weight.as_deref().map(parse_weight).transpose()?;
        l.pids = a.pids.as_deref().map(parse_pids).transpose()?;
        l.cpuset = a
            .cpuset
            .as_deref()
            .map(|s| parse_list("cpuset", s))
            .transpose()?;
        l.mems = a
            .mems
            .as_deref()
            .map(|s| parse_list("mems", s))
            .transpose()?;
        for (opt, list, read) in [
            ("io-read-bps", &a.io_read_bps, true),
            ("io-write-bps", &a.io_write_bps, false),
        ] {
            for item in list {
                let Some((dev, rate)) = item.rsplit_once('=') else {
                    return Err(usage(format!(
                        "--{opt}: invalid value '{item}' (expected DEV=RATE, e.g. /dev/vda=10M)"
                    )));
                };
                let rate = limit(opt, rate)?;
                let (major, minor) = device(dev)?;
                let entry = match l
                    .io
                    .iter_mut()
                    .position(|e| e.major == major && e.minor == minor)
                {
                    Some(i) => &mut l.io[i],
                    None => {
                        l.io.push(IoLimit {
                            device: dev.to_string(),
                            major,
                            minor,
                            read: None,
                            write: None,
                        });
                        let last = l.io.len() - 1;
                        &mut l.io[last]
                    }
                };
                if read {
                    entry.read = Some(rate);
                } else {
                    entry.write = Some(rate);
                }
            }
        }
        for item in &a.raw {
            let Some((file, value)) = item.split_once('=') else {
                return Err(usage(format!(
                    "--set: invalid value '{item}' (expected FILE=VALUE, e.g. pids.max=10)"
                )));
            };
            check_file_name(file)?;
            if value.trim().is_empty() {
                // An empty write(2) changes nothing, yet would report success.
                return Err(usage(format!(
                    "--set: empty value for {file} (give FILE=VALUE, e.g. {file}=max)"
                )));
            }
            if value.contains('\n') {
                return Err(usage(format!("--set: value for {file} contains a newline")));
            }
            l.raw.push((file.to_string(), value.to_string()));
        }
        Ok(l)
    }

    /// Whether no limit was given.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The controllers these limits need (logical names).
    pub fn controllers(&self) -> Vec<String> {
        let mut c: Vec<String> = Vec::new();
        let mut add = |n: &str| {
            if !c.iter().any(|x| x == n) {
                c.push(n.to_string());
            }
        };
        if self.memory.is_some() || self.memory_high.is_some() || self.swap.is_some() {
            add("memory");
        }
        if self.cpus.is_some() || self.cpu_weight.is_some() {
            add("cpu");
        }
        if self.pids.is_some() {
            add("pids");
        }
        if self.cpuset.is_some() || self.mems.is_some() {
            add("cpuset");
        }
        if !self.io.is_empty() {
            add("io");
        }
        for (file, _) in &self.raw {
            let prefix = file.split('.').next().unwrap_or("");
            if prefix != "cgroup" {
                add(if prefix == "blkio" { "io" } else { prefix });
            }
        }
        c
    }

    /// The JSON form used in reports: the limits as applied, by name.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        let lim = |l: &Limit| match l {
            Limit::Max => Value::from("max"),
            Limit::Bytes(n) => Value::from(*n),
        };
        let mut m = Map::new();
        if let Some(v) = &self.memory {
            m.insert("memory_bytes".into(), lim(v));
        }
        if let Some(v) = &self.memory_high {
            m.insert("memory_high_bytes".into(), lim(v));
        }
        if let Some(v) = &self.swap {
            m.insert("swap_bytes".into(), lim(v));
        }
        match (self.cpus, self.cpus_given) {
            (Some(Cpus::Quota(q)), Some(f)) => {
                m.insert("cpus".into(), json!(f));
                m.insert("cpu_quota_usec".into(), json!(q));
                m.insert("cpu_period_usec".into(), json!(PERIOD_US));
            }
            (Some(_), _) => {
                m.insert("cpus".into(), json!("max"));
            }
            _ => {}
        }
        if let Some(w) = self.cpu_weight {
            m.insert("cpu_weight".into(), json!(w));
        }
        if let Some(v) = &self.pids {
            m.insert("pids".into(), lim(v));
        }
        if let Some(v) = &self.cpuset {
            m.insert("cpuset".into(), json!(v));
        }
        if let Some(v) = &self.mems {
            m.insert("mems".into(), json!(v));
        }
        if !self.io.is_empty() {
            let io: Vec<Value> = self
                .io
                .iter()
                .map(|d| {
                    json!({
                        "device": d.device,
                        "major": d.major,
                        "minor": d.minor,
                        "read_bps": d.read.as_ref().map(lim),
                        "write_bps": d.write.as_ref().map(lim),
                    })
                })
                .collect();
            m.insert("io".into(), Value::Array(io));
        }
        if !self.raw.is_empty() {
            let raw: Map<String, Value> = self
                .raw
                .iter()
                .map(|(f, v)| (f.clone(), Value::from(v.as_str())))
                .collect();
            m.insert("set".into(), Value::Object(raw));
        }
        Value::Object(m)
    }
}

fn v1_limit(l: &Limit) -> String {
    match l {
        Limit::Max => "-1".to_string(),
        Limit::Bytes(n) => n.to_string(),
    }
}

/// The keys `cgctl get` reads in the units `create`/`set` take: their option names without `--`.
pub const PORTABLE_KEYS: [&str; 8] = [
    "memory",
    "memory-high",
    "swap",
    "cpus",
    "cpu-weight",
    "pids",
    "cpuset",
    "mems",
];

/// The controller a portable key belongs to, or None when `key` is not one.
pub fn key_controller(key: &str) -> Option<&'static str> {
    Some(match key {
        "memory" | "memory-high" | "swap" => "memory",
        "cpus" | "cpu-weight" => "cpu",
        "pids" => "pids",
        "cpuset" | "mems" => "cpuset",
        _ => return None,
    })
}

/// The interface files a portable key is read from on `version`, in the order [`key_value`]
/// takes their contents.
pub fn key_files(key: &str, version: Version) -> Result<&'static [&'static str]> {
    Ok(match (key, version) {
        ("memory", Version::V2) => &["memory.max"],
        ("memory", Version::V1) => &["memory.limit_in_bytes"],
        ("memory-high", Version::V2) => &["memory.high"],
        ("memory-high", Version::V1) => {
            return Err(Error::Controller {
                what: "memory-high".into(),
                controller: "memory".into(),
                why: "is cgroup v1 here, and v1 has no memory.high".into(),
            })
        }
        ("swap", Version::V2) => &["memory.swap.max"],
        ("swap", Version::V1) => &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
        ("cpus", Version::V2) => &["cpu.max"],
        ("cpus", Version::V1) => &["cpu.cfs_quota_us", "cpu.cfs_period_us"],
        ("cpu-weight", Version::V2) => &["cpu.weight"],
        ("cpu-weight", Version::V1) => &["cpu.shares"],
        ("pids", _) => &["pids.max"],
        ("cpuset", _) => &["cpuset.cpus"],
        ("mems", _) => &["cpuset.mems"],
        _ => {
            return Err(usage(format!(
                "get: unknown key '{key}' (an interface file such as pids.max, or one of: {})",
                PORTABLE_KEYS.join(", ")
            )))
        }
    })
}

/// v1 reports "no limit" as the largest page-aligned counter, not as "max".
fn v1_bytes(raw: &str) -> Result<Limit> {
    let n: u64 = raw
        .trim()
        .parse()
        .map_err(|_| Error::Other(format!("unexpected memory limit '{}'", raw.trim())))?;
    Ok(if n >= 1 << 62 {
        Limit::Max
    } else {
        Limit::Bytes(n)
    })
}

fn number(raw: &str) -> Result<u64> {
    raw.trim().parse().map_err(|_| {
        Error::Other(format!(
            "unexpected value '{}' in a cgroup file",
            raw.trim()
        ))
    })
}

/// A portable key's value in `set`'s units (bytes or max, cores or max, a weight, a list), from
/// the contents of its [`key_files`].
pub fn key_value(key: &str, version: Version, contents: &[String]) -> Result<String> {
    let c = |i: usize| contents.get(i).map(|s| s.trim()).unwrap_or("");
    Ok(match (key, version) {
        ("memory", Version::V1) => v1_bytes(c(0))?.to_string(),
        ("swap", Version::V1) => match (v1_bytes(c(0))?, v1_bytes(c(1))?) {
            (Limit::Bytes(m), Limit::Bytes(t)) => Limit::Bytes(t.saturating_sub(m)).to_string(),
            _ => Limit::Max.to_string(),
        },
        ("cpus", Version::V2) => {
            let mut f = c(0).split_whitespace();
            let (q, p) = (f.next().unwrap_or("max"), f.next().unwrap_or("100000"));
            if q == "max" {
                "max".to_string()
            } else {
                cores(number(q)?, number(p)?)
            }
        }
        ("cpus", Version::V1) => {
            if c(0).starts_with('-') {
                "max".to_string()
            } else {
                cores(number(c(0))?, number(c(1))?)
            }
        }
        ("cpu-weight", Version::V1) => {
            // The inverse of weight_to_shares, rounded: 1024 shares read back as weight 100.
            ((number(c(0))? * 100 + 512) / 1024)
                .clamp(1, 10_000)
                .to_string()
        }
        _ => c(0).to_string(),
    })
}

fn cores(quota: u64, period: u64) -> String {
    if period == 0 {
        return "max".to_string();
    }
    let v = quota as f64 / period as f64;
    // Two decimals are what --cpus takes in practice; trailing zeros dropped (0.5, 2).
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Turns limits into interface-file writes for the host's layout; `route` tells which version
/// carries a controller (None: absent, which is an error naming the controller).
pub fn plan(l: &Limits, route: &dyn Fn(&str) -> Option<Version>) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    let need = |what: &str, controller: &str| -> Result<Version> {
        route(controller).ok_or_else(|| Error::Controller {
            what: what.to_string(),
            controller: controller.to_string(),
            why: "is not available on this host (not mounted or not enabled)".to_string(),
        })
    };
    let mut push = |controller: &str, file: &str, value: String| {
        out.push(Write {
            controller: controller.to_string(),
            file: file.to_string(),
            value,
        })
    };
    if let Some(m) = &l.memory {
        match need("--memory", "memory")? {
            Version::V2 => push("memory", "memory.max", m.to_string()),
            Version::V1 => push("memory", "memory.limit_in_bytes", v1_limit(m)),
        }
    }
    if let Some(h) = &l.memory_high {
        match need("--memory-high", "memory")? {
            Version::V2 => push("memory", "memory.high", h.to_string()),
            Version::V1 => {
                return Err(Error::Controller {
                    what: "--memory-high".into(),
                    controller: "memory".into(),
                    why: "is cgroup v1 here, and v1 has no memory.high (use --memory)".into(),
                })
            }
        }
    }
    if let Some(s) = &l.swap {
        match need("--swap", "memory")? {
            Version::V2 => push("memory", "memory.swap.max", s.to_string()),
            Version::V1 => {
                // v1 limits memory+swap together, so the swap allowance sits on top of --memory.
                let total = match (&l.memory, s) {
                    (Some(Limit::Bytes(m)), Limit::Bytes(s)) => {
                        Limit::Bytes(m.checked_add(*s).ok_or_else(|| {
                            usage("--swap: memory plus swap is too large".to_string())
                        })?)
                    }
                    (Some(_), _) => Limit::Max,
                    (None, _) => {
                        return Err(usage(
                            "--swap needs --memory on cgroup v1 (memory.memsw.limit_in_bytes limits memory plus swap)"
                                .to_string(),
                        ))
                    }
                };
                push("memory", "memory.memsw.limit_in_bytes", v1_limit(&total));
            }
        }
    }
    if let Some(c) = &l.cpus {
        match need("--cpus", "cpu")? {
            Version::V2 => push(
                "cpu",
                "cpu.max",
                match c {
                    Cpus::Max => format!("max {PERIOD_US}"),
                    Cpus::Quota(q) => format!("{q} {PERIOD_US}"),
                },
            ),
            Version::V1 => {
                push("cpu", "cpu.cfs_period_us", PERIOD_US.to_string());
                push(
                    "cpu",
                    "cpu.cfs_quota_us",
                    match c {
                        Cpus::Max => "-1".to_string(),
                        Cpus::Quota(q) => q.to_string(),
                    },
                );
            }
        }
    }
    if let Some(w) = l.cpu_weight {
        match need("--cpu-weight", "cpu")? {
            Version::V2 => push("cpu", "cpu.weight", w.to_string()),
            Version::V1 => push("cpu", "cpu.shares", weight_to_shares(w).to_string()),
        }
    }
    if let Some(p) = &l.pids {
        need("--pids", "pids")?;
        push("pids", "pids.max", p.to_string());
    }
    if let Some(c) = &l.cpuset {
        need("--cpuset", "cpuset")?;
        push("cpuset", "cpuset.cpus", c.clone());
    }
    if let Some(m) = &l.mems {
        need("--mems", "cpuset")?;
        push("cpuset", "cpuset.mems", m.clone());
    }
    for d in &l.io {
        let opt = if d.read.is_some() {
            "--io-read-bps"
        } else {
            "--io-write-bps"
        };
        match need(opt, "io")? {
            Version::V2 => {
                let mut v = format!("{}:{}", d.major, d.minor);
                if let Some(r) = &d.read {
                    v.push_str(&format!(" rbps={r}"));
                }
                if let Some(w) = &d.write {
                    v.push_str(&format!(" wbps={w}"));
                }
                push("io", "io.max", v);
            }
            Version::V1 => {
                // v1 has no "max": 0 removes the rule.
                let v1 = |l: &Limit| match l {
                    Limit::Max => "0".to_string(),
                    Limit::Bytes(n) => n.to_string(),
                };
                if let Some(r) = &d.read {
                    push(
                        "io",
                        "blkio.throttle.read_bps_device",
                        format!("{}:{} {}", d.major, d.minor, v1(r)),
                    );
                }
                if let Some(w) = &d.write {
                    push(
                        "io",
                        "blkio.throttle.write_bps_device",
                        format!("{}:{} {}", d.major, d.minor, v1(w)),
                    );
                }
            }
        }
    }
    for (file, value) in &l.raw {
        let prefix = file.split('.').next().unwrap_or("");
        if prefix == "cgroup" {
            if route("cgroup") != Some(Version::V2) {
                return Err(usage(format!(
                    "--set {file}: cgroup.* files can only be set on cgroup v2"
                )));
            }
            push("cgroup", file, value.clone());
            continue;
        }
        let logical = if prefix == "blkio" { "io" } else { prefix };
        let v = route(logical).ok_or_else(|| Error::Controller {
            what: format!("--set {file}"),
            controller: prefix.to_string(),
            why: "is unknown or not available on this host".to_string(),
        })?;
        if native_name(logical, v) != prefix {
            return Err(usage(format!(
                "--set {file}: the {logical} controller is cgroup v{} here, name the file as {} does",
                v.number(),
                native_name(logical, v)
            )));
        }
        push(logical, file, value.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_keys_read_back_in_the_units_set_takes() {
        let v = |k: &str, ver: Version, c: &[&str]| {
            let c: Vec<String> = c.iter().map(|s| format!("{s}\n")).collect();
            key_value(k, ver, &c).map_err(|e| e.to_string())
        };
        assert_eq!(
            v("memory", Version::V2, &["67108864"]),
            Ok("67108864".into())
        );
        assert_eq!(v("memory", Version::V2, &["max"]), Ok("max".into()));
        assert_eq!(
            v("memory", Version::V1, &["9223372036854771712"]),
            Ok("max".into())
        );
        assert_eq!(
            v("memory", Version::V1, &["67108864"]),
            Ok("67108864".into())
        );
        assert_eq!(
            v("swap", Version::V1, &["67108864", "100663296"]),
            Ok("33554432".into())
        );
        assert_eq!(
            v("swap", Version::V1, &["67108864", "9223372036854771712"]),
            Ok("max".into())
        );
        assert_eq!(v("cpus", Version::V2, &["50000 100000"]), Ok("0.5".into()));
        assert_eq!(v("cpus", Version::V2, &["200000 100000"]), Ok("2".into()));
        assert_eq!(v("cpus", Version::V2, &["max 100000"]), Ok("max".into()));
        assert_eq!(v("cpus", Version::V1, &["-1", "100000"]), Ok("max".into()));
        assert_eq!(
            v("cpus", Version::V1, &["25000", "100000"]),
            Ok("0.25".into())
        );
        assert_eq!(v("cpu-weight", Version::V1, &["1024"]), Ok("100".into()));
        for w in [1, 50, 100, 333, 10_000] {
            let shares = weight_to_shares(w).to_string();
            assert_eq!(v("cpu-weight", Version::V1, &[&shares]), Ok(w.to_string()));
        }
        assert_eq!(v("cpu-weight", Version::V2, &["50"]), Ok("50".into()));
        assert!(v("memory", Version::V1, &["lots"]).is_err());
        assert!(v("cpus", Version::V1, &["", ""]).is_err());
    }

    #[test]
    fn every_portable_key_has_files_on_both_versions_but_memory_high() {
        for k in PORTABLE_KEYS {
            assert!(key_controller(k).is_some(), "{k}");
            assert!(key_files(k, Version::V2).is_ok(), "{k}");
            assert_eq!(key_files(k, Version::V1).is_ok(), k != "memory-high", "{k}");
        }
        assert_eq!(key_controller("memory.max"), None);
        let e = key_files("memroy", Version::V2).unwrap_err().to_string();
        assert_eq!(
            e,
            "get: unknown key 'memroy' (an interface file such as pids.max, or one of: memory, memory-high, swap, cpus, cpu-weight, pids, cpuset, mems)"
        );
    }

    fn no_dev(d: &str) -> Result<(u32, u32)> {
        if d == "/dev/vda" {
            Ok((254, 0))
        } else {
            Err(Error::Usage(format!("unknown device '{d}'")))
        }
    }

    fn args(f: impl FnOnce(&mut LimitArgs)) -> LimitArgs {
        let mut a = LimitArgs::default();
        f(&mut a);
        a
    }

    fn v1(c: &str) -> Option<Version> {
        ["memory", "cpu", "pids", "cpuset", "io"]
            .contains(&c)
            .then_some(Version::V1)
    }

    fn v2(c: &str) -> Option<Version> {
        ["memory", "cpu", "pids", "cpuset", "io", "cgroup"]
            .contains(&c)
            .then_some(Version::V2)
    }

    fn files(w: &[Write]) -> Vec<(String, String)> {
        w.iter()
            .map(|w| (w.file.clone(), w.value.clone()))
            .collect()
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn plans_for_v1_and_v2() {
        let a = args(|a| {
            a.memory = Some("32M".into());
            a.swap = Some("16M".into());
            a.cpus = Some("0.2".into());
            a.cpu_weight = Some("200".into());
            a.pids = Some("5".into());
            a.cpuset = Some("0-1".into());
            a.io_read_bps = vec!["/dev/vda=1M".into()];
            a.io_write_bps = vec!["/dev/vda=max".into()];
        });
        let l = Limits::parse(&a, &no_dev).unwrap();
        assert_eq!(
            files(&plan(&l, &v1).unwrap()),
            vec![
                pair("memory.limit_in_bytes", "33554432"),
                pair("memory.memsw.limit_in_bytes", "50331648"),
                pair("cpu.cfs_period_us", "100000"),
                pair("cpu.cfs_quota_us", "20000"),
                pair("cpu.shares", "2048"),
                pair("pids.max", "5"),
                pair("cpuset.cpus", "0-1"),
                pair("blkio.throttle.read_bps_device", "254:0 1048576"),
                pair("blkio.throttle.write_bps_device", "254:0 0"),
            ]
        );
        assert_eq!(
            files(&plan(&l, &v2).unwrap()),
            vec![
                pair("memory.max", "33554432"),
                pair("memory.swap.max", "16777216"),
                pair("cpu.max", "20000 100000"),
                pair("cpu.weight", "200"),
                pair("pids.max", "5"),
                pair("cpuset.cpus", "0-1"),
                pair("io.max", "254:0 rbps=1048576 wbps=max"),
            ]
        );
        assert_eq!(
            l.controllers(),
            vec!["memory", "cpu", "pids", "cpuset", "io"]
        );
        let j = l.to_json();
        assert_eq!(j["memory_bytes"], 33554432);
        assert_eq!(j["pids"], 5);
        assert_eq!(j["cpu_quota_usec"], 20000);
    }

    #[test]
    fn max_values() {
        let a = args(|a| {
            a.memory = Some("max".into());
            a.cpus = Some("max".into());
            a.pids = Some("max".into());
        });
        let l = Limits::parse(&a, &no_dev).unwrap();
        assert_eq!(
            files(&plan(&l, &v1).unwrap()),
            vec![
                pair("memory.limit_in_bytes", "-1"),
                pair("cpu.cfs_period_us", "100000"),
                pair("cpu.cfs_quota_us", "-1"),
                pair("pids.max", "max"),
            ]
        );
        assert_eq!(
            files(&plan(&l, &v2).unwrap())[..2],
            [pair("memory.max", "max"), pair("cpu.max", "max 100000")]
        );
    }

    #[test]
    fn missing_controllers_are_named() {
        let a = args(|a| a.pids = Some("5".into()));
        let l = Limits::parse(&a, &no_dev).unwrap();
        let e = plan(&l, &|_| None).unwrap_err().to_string();
        assert!(e.contains("--pids needs the pids controller"), "{e}");
        let a = args(|a| a.memory_high = Some("1G".into()));
        let l = Limits::parse(&a, &no_dev).unwrap();
        let e = plan(&l, &v1).unwrap_err().to_string();
        assert!(e.contains("memory.high"), "{e}");
        let a = args(|a| a.raw = vec!["bogus.file=1".into()]);
        let l = Limits::parse(&a, &no_dev).unwrap();
        let e = plan(&l, &v2).unwrap_err().to_string();
        assert!(e.contains("bogus controller"), "{e}");
        let a = args(|a| a.raw = vec!["blkio.weight=100".into()]);
        let l = Limits::parse(&a, &no_dev).unwrap();
        assert!(plan(&l, &v2).is_err());
        assert_eq!(
            files(&plan(&l, &v1).unwrap()),
            vec![pair("blkio.weight", "100")]
        );
        let a = args(|a| a.swap = Some("1G".into()));
        let l = Limits::parse(&a, &no_dev).unwrap();
        assert!(plan(&l, &v1).is_err());
        let a = args(|a| a.raw = vec!["cgroup.max.depth=3".into()]);
        let l = Limits::parse(&a, &no_dev).unwrap();
        assert!(plan(&l, &v1).is_err());
        assert_eq!(plan(&l, &v2).unwrap().len(), 1);
    }

    #[test]
    fn bad_values_are_rejected() {
        let cases: Vec<LimitArgs> = vec![
            args(|a| a.memory = Some("12Q".into())),
            args(|a| a.memory = Some("".into())),
            args(|a| a.memory = Some("-5M".into())),
            args(|a| a.pids = Some("0".into())),
            args(|a| a.pids = Some("-1".into())),
            args(|a| a.pids = Some("five".into())),
            args(|a| a.pids = Some("+5".into())),
            args(|a| a.cpus = Some("0".into())),
            args(|a| a.cpus = Some("-1".into())),
            args(|a| a.cpus = Some("nan".into())),
            args(|a| a.cpus = Some("inf".into())),
            args(|a| a.cpus = Some("0.001".into())),
            args(|a| a.cpu_weight = Some("0".into())),
            args(|a| a.cpu_weight = Some("10001".into())),
            args(|a| a.cpuset = Some("3-1".into())),
            args(|a| a.cpuset = Some("a".into())),
            args(|a| a.mems = Some("".into())),
            args(|a| a.io_read_bps = vec!["/dev/vda".into()]),
            args(|a| a.io_read_bps = vec!["/dev/nope=1M".into()]),
            args(|a| a.io_write_bps = vec!["/dev/vda=fast".into()]),
            args(|a| a.raw = vec!["nofile".into()]),
            args(|a| a.raw = vec!["../x.y=1".into()]),
            args(|a| a.raw = vec!["noprefix=1".into()]),
            args(|a| a.memory = Some("-1".into())),
            args(|a| a.memory = Some(" -1".into())),
            args(|a| a.swap = Some("-1".into())),
            args(|a| a.memory_high = Some("-1".into())),
            args(|a| a.io_read_bps = vec!["/dev/vda=-1".into()]),
            args(|a| a.raw = vec!["pids.max=".into()]),
            args(|a| a.raw = vec!["pids.max= ".into()]),
        ];
        for a in cases {
            let r = Limits::parse(&a, &no_dev);
            assert!(r.is_err(), "{a:?} should fail");
            let msg = r.unwrap_err().to_string();
            assert!(!msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_cpus("1.5").unwrap().0, Cpus::Quota(150_000));
        assert_eq!(parse_cpus("0.01").unwrap().0, Cpus::Quota(1000));
        assert_eq!(parse_pids("10").unwrap(), Limit::Bytes(10));
        assert_eq!(weight_to_shares(100), 1024);
        assert_eq!(weight_to_shares(1), 10);
        assert_eq!(weight_to_shares(10000), 102_400);
        assert_eq!(parse_list("cpuset", "0-1,3").unwrap(), "0-1,3");
        assert!(Limits::parse(&LimitArgs::default(), &no_dev)
            .unwrap()
            .is_empty());
    }
}
