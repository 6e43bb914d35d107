//! Fuzzes the size and limit parsers: any input gives a value or an error, never a panic, and a
//! parsed size formats back to a string that parses to the same or a rounded value.
#![no_main]

use conventions::size::{format_size, parse_limit, parse_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_limit(s);
        if let Ok(n) = parse_size(s) {
            let text = format_size(n);
            let back = parse_size(&text).expect("formatted size parses");
            assert!(back <= n, "{s:?} -> {n} -> {text} -> {back}");
        }
    }
});
