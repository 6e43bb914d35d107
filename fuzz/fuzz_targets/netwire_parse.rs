//! Fuzzes netwire's parsers and its CNI config reader: names, addresses with prefixes, MACs,
//! namespace references and network configs give a value or an error, never a panic; what
//! parses formats back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netwire::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(n) = parse::ifname(s) {
            assert!(n.len() < parse::IFNAMSIZ && !n.contains('/'));
        }
        if let Ok(c) = parse::cidr(s) {
            assert_eq!(parse::cidr(&c.to_string()), Ok(c));
            assert!(c.contains(&c.addr));
        }
        if let Ok(m) = parse::mac(s) {
            assert_eq!(parse::mac(&m.to_string()), Ok(m));
        }
        let _ = parse::nsref(s);
        if let Ok(c) = netwire::cni::parse_config(s) {
            assert!(c.subnet.contains(&c.gateway));
        }
        let _ = netwire::ipam::parse_leases(s);
    }
});
