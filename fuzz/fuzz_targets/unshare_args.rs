//! Fuzzes unshare-rs's command line (getopt rules, plan checks) and its id-map parser: NUL bytes
//! split the input into arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data.split(|b| *b == 0).map(|a| OsString::from_vec(a.to_vec())).collect();
    let caller = unshare_rs::plan::Caller { euid: 1000, egid: 1000 };
    let lookup = |s: &str| s.parse::<u32>().map_err(|e| e.to_string());
    if let Ok(unshare_rs::plan::Command::Run(mut p)) =
        unshare_rs::plan::parse(&args, caller, &lookup, &lookup)
    {
        // The -try namespaces resolved as on a kernel with every kind, then the step order.
        if p.resolve_try(caller, &|_| true).is_ok() {
            let _ = p.steps();
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = unshare_rs::idmap::parse_spec(s);
        let _ = unshare_rs::idmap::parse_proc_map(s);
    }
});
