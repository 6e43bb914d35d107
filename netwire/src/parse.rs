//! The pure parsers of what a user types: interface names, addresses with prefixes, MACs, and
//! namespace references. Kept apart from netlink so that they are unit-tested and fuzzed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// The kernel's IFNAMSIZ, the terminating NUL included: a name has at most 15 bytes.
pub const IFNAMSIZ: usize = 16;

/// Checks an interface name as the kernel's `dev_valid_name` does: 1 to 15 bytes, not `.` or
/// `..`, no `/`, `:` or white space. The error is the reason, for the one-line message.
pub fn ifname(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("an interface name cannot be empty".into());
    }
    if s.len() >= IFNAMSIZ {
        return Err(format!(
            "interface name '{s}' is {} bytes, longer than {} (IFNAMSIZ)",
            s.len(),
            IFNAMSIZ - 1
        ));
    }
    if s == "." || s == ".." {
        return Err(format!("'{s}' is not a valid interface name"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "interface name '{s}' contains {c:?}, which the kernel refuses"
        ));
    }
    Ok(s.to_string())
}

/// An address with its prefix length: `10.0.0.1/24`, `fd00::1/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// The largest prefix for the address's family.
    pub fn max_prefix(addr: &IpAddr) -> u8 {
        if addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = mask32(self.prefix);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = mask128(self.prefix);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        }
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let other = Cidr {
            addr: *ip,
            prefix: self.prefix,
        };
        ip.is_ipv4() == self.addr.is_ipv4() && other.network() == self.network()
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parses `ADDR/PREFIX`; the prefix is required (an address on a link needs one).
pub fn cidr(s: &str) -> Result<Cidr, String> {
    let (a, p) = s.split_once('/').ok_or_else(|| {
        format!("'{s}' has no prefix length (write it as ADDR/PREFIX, e.g. 10.0.0.1/24)")
    })?;
    let addr: IpAddr = a
        .parse()
        .map_err(|_| format!("'{a}' is not an IPv4 or IPv6 address"))?;
    let max = Cidr::max_prefix(&addr);
    let prefix: u8 = match p.parse::<u8>() {
        Ok(n) if n <= max && !p.starts_with('+') => n,
        _ => {
            return Err(format!(
                "prefix length '{p}' of '{s}' is not a number from 0 to {max}"
            ))
        }
    };
    Ok(Cidr { addr, prefix })
}

/// Parses a plain address (a gateway).
pub fn ip(s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not an IPv4 or IPv6 address"))
}

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`); a multicast address is refused, since the kernel
/// refuses it for a link's own address.
pub fn mac(s: &str) -> Result<Mac, String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bad = || format!("'{s}' is not a MAC address (six hex bytes, e.g. 02:00:00:00:00:01)");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if out[0] & 1 == 1 {
        return Err(format!(
            "'{s}' is a multicast address, which a link cannot have (the first byte must be even)"
        ));
    }
    Ok(Mac(out))
}

/// Which network namespace: a process's, or a namespace file (`/run/netns/x`, `/proc/N/ns/net`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NsRef {
    Pid(u32),
    File(PathBuf),
}

impl NsRef {
    /// The file to open.
    pub fn path(&self) -> PathBuf {
        match self {
            NsRef::Pid(p) => PathBuf::from(format!("/proc/{p}/ns/net")),
            NsRef::File(f) => f.clone(),
        }
    }
}

impl fmt::Display for NsRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NsRef::Pid(p) => write!(f, "pid {p}"),
            NsRef::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A number is a PID; anything else is a path (a bare name means `/run/netns/NAME`, as `ip netns`
/// names them).
pub fn nsref(s: &str) -> Result<NsRef, String> {
    if s.is_empty() {
        return Err("a namespace cannot be empty (give a PID or a namespace file)".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u32>() {
            Ok(p) if p > 0 => Ok(NsRef::Pid(p)),
            _ => Err(format!("'{s}' is not a valid PID")),
        };
    }
    if s.contains('/') {
        Ok(NsRef::File(PathBuf::from(s)))
    } else {
        Ok(NsRef::File(PathBuf::from("/run/netns").join(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ifname("eth0").unwrap(), "eth0");
        assert_eq!(ifname("a23456789012345").unwrap(), "a23456789012345");
        assert_eq!(
            ifname("a234567890123456").unwrap_err(),
            "interface name 'a234567890123456' is 16 bytes, longer than 15 (IFNAMSIZ)"
        );
        assert!(ifname("").is_err());
        assert!(ifname(".").is_err());
        assert!(ifname("a/b").is_err());
        assert!(ifname("a:b").is_err());
        assert!(ifname("a b").is_err());
        // Multibyte names count bytes, as the kernel does.
        assert!(ifname("ééééééééé").is_err());
    }

    #[test]
    fn cidrs() {
        let c = cidr("10.1.2.3/24").unwrap();
        assert_eq!(c.to_string(), "10.1.2.3/24");
        assert_eq!(c.network().to_string(), "10.1.2.0");
        assert!(c.contains(&"10.1.2.200".parse().unwrap()));
        assert!(!c.contains(&"10.1.3.1".parse().unwrap()));
        assert!(!c.contains(&"::1".parse().unwrap()));
        let v6 = cidr("fd00::5/64").unwrap();
        assert_eq!(v6.network().to_string(), "fd00::");
        assert_eq!(cidr("0.0.0.0/0").unwrap().network().to_string(), "0.0.0.0");
        assert_eq!(
            cidr("10.0.0.1").unwrap_err(),
            "'10.0.0.1' has no prefix length (write it as ADDR/PREFIX, e.g. 10.0.0.1/24)"
        );
        assert_eq!(
            cidr("10.0.0.1/33").unwrap_err(),
            "prefix length '33' of '10.0.0.1/33' is not a number from 0 to 32"
        );
        assert!(cidr("fd00::1/129").is_err());
        assert!(cidr("fd00::1/128").is_ok());
        assert!(cidr("10.0.0.1/+3").is_err());
        assert!(cidr("10.0.0/8").is_err());
        assert!(cidr("/8").is_err());
    }

    #[test]
    fn macs() {
        assert_eq!(
            mac("02:00:0A:0b:0c:0d").unwrap().to_string(),
            "02:00:0a:0b:0c:0d"
        );
        assert_eq!(mac("02-00-00-00-00-01").unwrap().0[5], 1);
        assert!(mac("01:00:00:00:00:00").unwrap_err().contains("multicast"));
        assert!(mac("02:00:00:00:00").is_err());
        assert!(mac("02:00:00:00:00:000").is_err());
        assert!(mac("02:00:00:00:00:0g").is_err());
        assert!(mac("02:00:00:00::01").is_err());
    }

    #[test]
    fn namespaces() {
        assert_eq!(nsref("42").unwrap(), NsRef::Pid(42));
        assert_eq!(
            nsref("42").unwrap().path(),
            PathBuf::from("/proc/42/ns/net")
        );
        assert!(nsref("0").is_err());
        assert!(nsref("99999999999").is_err());
        assert_eq!(
            nsref("blue").unwrap().path(),
            PathBuf::from("/run/netns/blue")
        );
        assert_eq!(
            nsref("/proc/1/ns/net").unwrap(),
            NsRef::File("/proc/1/ns/net".into())
        );
        assert!(nsref("").is_err());
    }
}
