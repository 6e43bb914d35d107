//! Fuzzes signal-name parsing: any input gives a valid signal number or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(sig) = conventions::signal::parse(s) {
            assert!((1..=libc_sigrtmax()).contains(&sig));
        }
    }
});

fn libc_sigrtmax() -> i32 {
    64
}
