//! Fuzzes setpriv-rs's command line and its plan step; NUL bytes split arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data
        .split(|b| *b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    if let Ok(setpriv_rs::args::Parsed::Run(o)) = setpriv_rs::args::parse(args) {
        let _ = setpriv_rs::plan::plan(o);
    }
});
