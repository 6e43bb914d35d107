//! Fuzzes what `cgctl gc` reads from files: a run's record and /proc/PID/stat. Any input gives a
//! value or `None`, never a panic; a record that parses formats back to itself and names a
//! group that `check_name` accepts.
#![no_main]

use cgctl::owner::{parse_stat, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_stat(&text);
    if let Some(r) = Record::parse(&text) {
        assert_eq!(Record::parse(&r.format()), Some(r.clone()));
        assert!(cgctl::group::check_name(&r.group).is_ok());
        assert!(!r.group.is_empty() && r.pid > 0);
    }
});
