//! Fuzzes ocirun's config.json reading: any bytes go through parse, the refusals, oci-spec's
//! typing and the plan (on a v1 and a v2 host) without a panic, and every error is one line.
#![no_main]

use cgctl::layout::Version;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let one_line = |e: ocirun::Error| assert!(!e.to_string().contains('\n'), "{e}");
    let v = match ocirun::config::parse(text) {
        Ok(v) => v,
        Err(e) => return one_line(e),
    };
    if let Err(e) = ocirun::config::check(&v) {
        return one_line(e);
    }
    let spec = match ocirun::config::typed(v) {
        Ok(s) => s,
        Err(e) => return one_line(e),
    };
    for version in [Version::V1, Version::V2] {
        let route = |_: &str| Some(version);
        let seccomp = &ocirun::seccomp::compile;
        if let Err(e) = ocirun::config::plan(&spec, "fuzz", Path::new("/bundle"), &route, seccomp) {
            one_line(e);
        }
    }
});
