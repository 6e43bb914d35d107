//! Fuzzes nsenter-rs's command line and its PID[:INODE] target parser; NUL bytes split arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fuzz_target!(|data: &[u8]| {
    let mut args: Vec<OsString> = vec![OsString::from("nsenter-rs")];
    args.extend(data.split(|b| *b == 0).map(|a| OsString::from_vec(a.to_vec())));
    let _ = nsenter_rs::args::parse(args);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = nsenter_rs::args::parse_target(s);
    }
});
