//! Fuzzes the OCI seccomp profile reader of privs (JSON checked field by field) and, for the
//! profiles it accepts, libseccomp's compilation (nothing is loaded).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = privs::seccomp::Profile::from_json(text) {
            let _ = p.compile();
        }
    }
});
