//! `cargo xtask bench`: each tool against its peer on this machine, in the same run, with
//! hyperfine; writes BENCHMARKS.md and an SVG chart of start latency per approach.

pub mod measure;

/// Runs the benchmarks.
pub fn run(_args: &[String]) -> Result<(), String> {
    Err("bench: not implemented yet".to_string())
}
