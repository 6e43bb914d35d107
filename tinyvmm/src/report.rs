//! The run report (`--json`, `--report`): one JSON object saying how the run ended, the exits by
//! kind and the time each phase took, for scripts and for `cargo xtask bench`.

use serde_json::{json, Map, Value};

use crate::vm::{End, Outcome};

/// The report as one JSON object.
pub fn json(format: &str, mem: u64, o: &Outcome) -> Value {
    let exits: Map<String, Value> = o
        .exits
        .pairs()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let (crash, rip) = match &o.end {
        End::Crash { what, rip } => (json!(what), json!(rip)),
        _ => (Value::Null, Value::Null),
    };
    json!({
        "reason": o.end.reason(),
        "status": o.end.status(),
        "crash": crash,
        "rip": rip,
        "format": format,
        "mem": mem,
        "exits": exits,
        "exits_total": o.exits.total(),
        "create_us": o.timings.create.as_micros() as u64,
        "load_us": o.timings.load.as_micros() as u64,
        "run_us": o.timings.run.as_micros() as u64,
        "teardown_us": o.timings.teardown.as_micros() as u64,
    })
}
