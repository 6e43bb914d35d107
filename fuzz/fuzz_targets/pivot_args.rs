//! Fuzzes pivot's command line and its `--bind SRC:DST` parser: no panic, every accepted
//! destination absolute, and a parsed spec written back with `bind_spec` reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pivot::plan::{bind_spec, parse_bind, UserMount};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((src, dst)) = parse_bind(&text) {
        assert!(dst.is_absolute(), "{text:?}");
        let (s, d) = (src.to_string_lossy(), dst.to_string_lossy());
        assert_eq!(
            parse_bind(&bind_spec(&s, &d)),
            Ok((src.clone(), dst.clone()))
        );
    }
    // The same bytes as a whole command line, one argument per NUL-separated piece.
    let args = std::iter::once("pivot").chain(text.split('\0'));
    if let conventions::cli::Parsed::Run(inv) = pivot::parse("pivot", args) {
        for m in &inv.mounts {
            match m {
                UserMount::Bind { dst, .. } | UserMount::Tmpfs { dst } => {
                    assert!(dst.is_absolute(), "{text:?}: {m:?}")
                }
            }
        }
    }
});
