//! Fuzzes tinyvmm's device option parsers: `--share` (`virtio::fs::parse_share`), `--vsock`,
//! `--disk` and `--net` give a value or an error, never a panic; an accepted share has a tag of
//! 1 to 36 bytes and a directory without a comma, and its configuration space is 40 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyvmm::virtio::{blk, fs, net, vsock};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(a) = fs::parse_share(s) {
            assert!(!a.tag.is_empty() && a.tag.len() <= fs::TAG_MAX, "{a:?}");
            if let fs::Source::Dir(d) = &a.source {
                assert!(!d.as_os_str().is_empty() && !d.to_string_lossy().contains(','));
            } else {
                assert!(!a.read_only);
            }
            assert_eq!(fs::config(&a.tag).len(), fs::TAG_MAX + 4);
        }
        if let Ok(v) = vsock::parse_vsock(s) {
            assert!(v.cid >= 3 && v.cid < u32::MAX);
        }
        let _ = blk::parse_disk(s);
        let _ = net::parse_net(s);
    }
});
