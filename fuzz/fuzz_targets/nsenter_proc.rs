//! Fuzzes what nsenter-rs reads of the target process from /proc, which that process (another
//! user's, with --preserve-credentials or -e) may shape: environ, status, stat, cgroup, and the
//! mountinfo line it finds cgroup2 by. Any input gives a value or nothing, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsenter_rs::enter::{
    parse_cgroup2_mount, parse_cgroup_lines, parse_environ, parse_status_ids, parse_v2_cgroup,
};

fuzz_target!(|data: &[u8]| {
    for (k, _) in parse_environ(data) {
        assert!(!k.is_empty());
    }
    let text = String::from_utf8_lossy(data);
    let _ = parse_status_ids(&text);
    let _ = nsenter_rs::error::parse_stat_state(&text);
    let _ = parse_v2_cgroup(&text);
    let _ = parse_cgroup2_mount(&text);
    for (id, _, _) in parse_cgroup_lines(&text) {
        assert!(!id.contains(':'));
    }
});
