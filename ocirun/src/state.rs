//! A container's state directory under --root: its record (state.json, written atomically), the
//! exec fifo, and the status derived from the init's liveness, as `state` and `list` print it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// The record's file name inside the state directory.
pub const RECORD: &str = "state.json";
/// The file naming the container's cgroup, written as soon as the group exists.
pub const CGROUP: &str = "cgroup";
/// The exec fifo's file name.
pub const FIFO: &str = "exec.fifo";

/// A container's status, as the runtime spec names it (runc adds paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The state directory exists, the init is not ready yet.
    Creating,
    /// The init waits on the exec fifo.
    Created,
    /// The user's program runs.
    Running,
    /// Frozen.
    Paused,
    /// The init has exited.
    Stopped,
}

impl Status {
    /// The spec's name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What ocirun keeps about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The id.
    pub id: String,
    /// The init's pid on the host.
    pub pid: i32,
    /// The init's start time (/proc/PID/stat field 22), so that a reused pid is not taken for it.
    pub start_time: u64,
    /// The bundle directory (absolute).
    pub bundle: PathBuf,
    /// The rootfs (absolute).
    pub rootfs: PathBuf,
    /// When create ran (RFC 3339).
    pub created: String,
    /// The cgroup's name (relative to each hierarchy's root).
    pub cgroup: String,
    /// The config's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The uid that created it.
    pub owner: u32,
    /// The config's hooks (JSON), for start and delete.
    pub hooks: Value,
}

/// Checks a container id: 1 to 1024 bytes of letters, digits and `_ + - .`, not `.`/`..`.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid container id '{id}' (letters, digits and _ + - . only, not starting with .)"
        )))
    }
}

/// The state directory of `id` under `root`.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Record {
    /// The record as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "pid": self.pid,
            "startTime": self.start_time,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "cgroup": self.cgroup,
            "annotations": self.annotations,
            "owner": self.owner,
            "hooks": self.hooks,
        })
    }

    /// The record from its JSON, `None` when a field is missing or of the wrong type.
    pub fn from_json(v: &Value) -> Option<Record> {
        Some(Record {
            id: v.get("id")?.as_str()?.to_string(),
            pid: i32::try_from(v.get("pid")?.as_i64()?).ok()?,
            start_time: v.get("startTime")?.as_u64()?,
            bundle: PathBuf::from(v.get("bundle")?.as_str()?),
            rootfs: PathBuf::from(v.get("rootfs")?.as_str()?),
            created: v.get("created")?.as_str()?.to_string(),
            cgroup: v.get("cgroup")?.as_str()?.to_string(),
            annotations: v
                .get("annotations")?
                .as_object()?
                .iter()
                .map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect::<Option<_>>()?,
            owner: u32::try_from(v.get("owner")?.as_u64()?).ok()?,
            hooks: v.get("hooks").cloned().unwrap_or(Value::Null),
        })
    }

    /// Writes the record into `dir` atomically (a temp file renamed over it).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".state.json.tmp");
        let text = self.to_json().to_string();
        std::fs::write(&tmp, text)
            .map_err(|e| Error::sys(format!("writing {}", tmp.display()), e))?;
        let file = dir.join(RECORD);
        std::fs::rename(&tmp, &file)
            .map_err(|e| Error::sys(format!("rename({}, {})", tmp.display(), file.display()), e))
    }
}

/// What the state directory of a container holds.
#[derive(Debug)]
pub enum Loaded {
    /// No state directory: no such container.
    Missing,
    /// The directory without a record: create has not finished (or died).
    Creating,
    /// The record.
    Ready(Record),
    /// A record that cannot be read: why.
    Corrupt(String),
}

/// Reads the state of `id`.
pub fn load(root: &Path, id: &str) -> Loaded {
    let d = dir(root, id);
    if !d.is_dir() {
        return Loaded::Missing;
    }
    let file = d.join(RECORD);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Creating,
        Err(e) => {
            return Loaded::Corrupt(format!(
                "reading {}: {}",
                file.display(),
                conventions::output::errtext(&e)
            ))
        }
    };
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return Loaded::Corrupt(format!("{} is not JSON: {e}", file.display())),
    };
    match Record::from_json(&v) {
        Some(r) if r.id == id => Loaded::Ready(r),
        Some(r) => Loaded::Corrupt(format!(
            "{} belongs to container '{}', not '{id}'",
            file.display(),
            r.id
        )),
        None => Loaded::Corrupt(format!("{} is not an ocirun record", file.display())),
    }
}

/// Reads the record of `id`, an error unless it is complete.
pub fn require(root: &Path, id: &str) -> Result<Record> {
    match load(root, id) {
        Loaded::Ready(r) => Ok(r),
        Loaded::Missing => Err(Error::state(
            id,
            format!("does not exist (no {})", dir(root, id).display()),
        )),
        Loaded::Creating => Err(Error::state(
            id,
            "is still being created (or its create failed: ocirun delete --force removes it)",
        )),
        Loaded::Corrupt(why) => Err(Error::state(
            id,
            format!("its state is corrupt: {why} (ocirun delete --force removes it)"),
        )),
    }
}

/// Whether the init of `r` is alive (not exited, not a zombie, not a reused pid).
pub fn alive(r: &Record) -> bool {
    match crate::sys::proc_stat(r.pid) {
        Some((start, state)) => start == r.start_time && state != 'Z' && state != 'X',
        None => false,
    }
}

/// The status of a container from its record, the fifo and the freezer.
pub fn status(root: &Path, r: &Record, frozen: bool) -> Status {
    if !alive(r) {
        return Status::Stopped;
    }
    if frozen {
        return Status::Paused;
    }
    if dir(root, &r.id).join(FIFO).exists() {
        Status::Created
    } else {
        Status::Running
    }
}

/// The JSON `state` prints: the spec's fields and runc's extra ones.
pub fn state_json(r: &Record, status: Status) -> Value {
    json!({
        "ociVersion": crate::defaults::SPEC_VERSION,
        "id": r.id,
        "pid": if status == Status::Stopped { 0 } else { r.pid },
        "status": status.name(),
        "bundle": r.bundle,
        "rootfs": r.rootfs,
        "created": r.created,
        "owner": if r.owner == 0 { String::new() } else { r.owner.to_string() },
        "annotations": r.annotations,
    })
}

/// The JSON of a container still being created.
pub fn creating_json(id: &str) -> Value {
    json!({
        "ociVersion": crate::defaults::SPEC_VERSION,
        "id": id,
        "pid": 0,
        "status": Status::Creating.name(),
        "bundle": "",
        "annotations": {},
    })
}

/// `time` as RFC 3339 in UTC with nanoseconds (`2026-12-03T07:32:10.123456789Z`).
pub fn rfc3339(time: SystemTime) -> String {
    let d = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids() {
        for ok in ["a", "c-1_2.3+x", "A9"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "ä"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_796_283_130, 5);
        assert_eq!(rfc3339(t), "2026-12-03T07:32:10.000000005Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn record_round_trip() {
        let r = Record {
            id: "c1".into(),
            pid: 42,
            start_time: 7,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-12-03T07:32:10.000000005Z".into(),
            cgroup: "ocirun/c1".into(),
            annotations: [("k".to_string(), "v".to_string())].into(),
            owner: 0,
            hooks: json!({"poststop": [{"path": "/bin/true"}]}),
        };
        assert_eq!(Record::from_json(&r.to_json()), Some(r.clone()));
        assert_eq!(Record::from_json(&json!({"id": "c1"})), None);
        let s = state_json(&r, Status::Stopped);
        assert_eq!(s["pid"], 0);
        assert_eq!(s["status"], "stopped");
        assert_eq!(state_json(&r, Status::Running)["pid"], 42);
    }
}
