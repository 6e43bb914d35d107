//! Fuzzes the mountinfo and /proc/PID/cgroup parsers (shared, and cgctl's views of them).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mounts = conventions::mountinfo::parse(&text);
    let _ = conventions::mountinfo::mount_of(&mounts, std::path::Path::new("/a/b"));
    let _ = cgctl::layout::parse_mountinfo(&text);
    let _ = cgctl::layout::parse_proc_cgroup(&text);
});
