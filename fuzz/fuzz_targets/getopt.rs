//! Fuzzes the drop-ins' shared getopt_long (`conventions::getopt`): NUL bytes split the input
//! into arguments; the table mixes every kind of option and prefixes of one another. Whatever
//! it reads, the operands are the tail of the line, and reading it twice gives the same.
#![no_main]

use conventions::getopt::{self, HasArg, Spec};
use libfuzzer_sys::fuzz_target;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

const TABLE: [Spec<u8>; 8] = [
    Spec::new("mount", Some('m'), HasArg::Optional, 0).short_flag(),
    Spec::new("mount-proc", None, HasArg::Optional, 1),
    Spec::new("net", Some('n'), HasArg::Optional, 2),
    Spec::new("target", Some('t'), HasArg::Required, 3),
    Spec::new("fork", Some('f'), HasArg::No, 4),
    Spec::new("fork-alias", None, HasArg::No, 4),
    Spec::new("map-user", None, HasArg::Required, 5),
    Spec::new("map-users", None, HasArg::Required, 6),
];

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data.split(|b| *b == 0).map(|a| OsString::from_vec(a.to_vec())).collect();
    let first = getopt::parse(&TABLE, &args);
    if let Ok((_, rest)) = &first {
        assert!(args.ends_with(rest));
    }
    assert_eq!(first, getopt::parse(&TABLE, &args));
});
