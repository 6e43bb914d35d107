//! Fuzzes cgctl's readers of cgroupfs text (cgroup.procs pid lists, keyed files such as
//! cgroup.events and memory.events): any input gives values or nothing, never a panic, and a
//! pid list holds only positive pids.
#![no_main]

use cgctl::cgroupfs::{keyed, parse_pids};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    assert!(parse_pids(&text).iter().all(|p| *p > 0));
    for key in ["populated", "frozen", "oom_kill", "max", ""] {
        let _ = keyed(&text, key);
    }
});
