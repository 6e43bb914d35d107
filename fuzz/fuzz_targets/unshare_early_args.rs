//! Fuzzes unshare-rs's fast path against its ordinary parser: whatever command line the fast path
//! takes, the plan must read the same way, with the same steps. NUL bytes split the input into
//! arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data.split(|b| *b == 0).map(|a| OsString::from_vec(a.to_vec())).collect();
    if let Err(e) = unshare_rs::early::agrees_with_plan(&args) {
        panic!("{e}");
    }
});
