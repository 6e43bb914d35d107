//! Fuzzes tinyvmm's two argument-parsing stages against each other: whatever the fast `run`
//! stage accepts, clap must parse to the same command line. NUL bytes split the input into
//! arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data.split(|b| *b == 0).map(|a| OsString::from_vec(a.to_vec())).collect();
    assert!(tinyvmm::fastargs::agrees_with_clap(&args), "{args:?}");
});
