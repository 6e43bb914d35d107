//! The CNI plugin's host-local address allocator: one lease file per network, one line per
//! lease (`ADDRESS CONTAINER-ID IFNAME`), read and rewritten under an flock so that plugins
//! running at once never hand out one address twice.

use crate::error::Error;
use crate::parse::Cidr;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// One lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: IpAddr,
    pub id: String,
    pub ifname: String,
}

/// Reads the lease lines; a line that does not parse is dropped (a torn write cannot happen,
/// since the file is replaced by rename, but a hand edit can).
pub fn parse_leases(text: &str) -> Vec<Lease> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let ip = it.next()?.parse().ok()?;
            let id = it.next()?.to_string();
            let ifname = it.next()?.to_string();
            if it.next().is_some() {
                return None;
            }
            Some(Lease { ip, id, ifname })
        })
        .collect()
}

pub fn format_leases(leases: &[Lease]) -> String {
    leases
        .iter()
        .map(|l| format!("{} {} {}\n", l.ip, l.id, l.ifname))
        .collect()
}

fn to_u128(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    }
}

fn from_u128(v4: bool, n: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    }
}

/// The gateway a subnet gets when the config names none: its first host address.
pub fn default_gateway(subnet: &Cidr) -> IpAddr {
    from_u128(subnet.addr.is_ipv4(), to_u128(&subnet.network()) + 1)
}

/// The first address of `subnet` that is not the network, the v4 broadcast, the gateway or
/// leased; None when the subnet is full (only the first 65536 hosts are tried).
pub fn next_free(subnet: &Cidr, gateway: &IpAddr, used: &[IpAddr]) -> Option<IpAddr> {
    let v4 = subnet.addr.is_ipv4();
    let bits = if v4 { 32 } else { 128 } - u32::from(subnet.prefix);
    let size: u128 = if bits >= 127 {
        u128::MAX
    } else {
        1u128 << bits
    };
    let base = to_u128(&subnet.network());
    let last = if v4 && size > 2 { size - 1 } else { size };
    (1..last.min(65537))
        .map(|off| from_u128(v4, base + off))
        .find(|ip| ip != gateway && !used.contains(ip))
}

/// A network's lease store, locked while it lives.
pub struct Store {
    path: PathBuf,
    _lock: File,
    pub leases: Vec<Lease>,
}

fn store_err(op: &'static str, path: &Path, e: &std::io::Error) -> Error {
    Error::Store {
        op,
        path: path.display().to_string(),
        why: conventions::output::errtext(e),
        hint: "the CNI plugin keeps its leases there (dataDir in the network config)".into(),
    }
}

impl Store {
    /// Opens (creating) `dir/NETWORK/` and takes its lock.
    pub fn open(dir: &Path, network: &str) -> Result<Store, Error> {
        let d = dir.join(network);
        fs::create_dir_all(&d).map_err(|e| store_err("mkdir", &d, &e))?;
        let lp = d.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lp)
            .map_err(|e| store_err("open", &lp, &e))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(store_err("flock", &lp, &std::io::Error::last_os_error()));
        }
        let path = d.join("leases");
        let leases = match fs::read_to_string(&path) {
            Ok(t) => parse_leases(&t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(store_err("read", &path, &e)),
        };
        Ok(Store {
            path,
            _lock: lock,
            leases,
        })
    }

    pub fn find(&self, id: &str, ifname: &str) -> Option<IpAddr> {
        self.leases
            .iter()
            .find(|l| l.id == id && l.ifname == ifname)
            .map(|l| l.ip)
    }

    /// Writes the leases back (a new file renamed over the old one).
    pub fn save(&self) -> Result<(), Error> {
        let tmp = self.path.with_extension("tmp");
        let mut f = File::create(&tmp).map_err(|e| store_err("create", &tmp, &e))?;
        f.write_all(format_leases(&self.leases).as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| store_err("write", &tmp, &e))?;
        fs::rename(&tmp, &self.path).map_err(|e| store_err("rename", &self.path, &e))
    }

    /// The address of (id, ifname): the one it has, or a new one recorded at once.
    pub fn allocate(
        &mut self,
        subnet: &Cidr,
        gateway: &IpAddr,
        id: &str,
        ifname: &str,
    ) -> Result<IpAddr, Error> {
        if let Some(ip) = self.find(id, ifname) {
            return Ok(ip);
        }
        let used: Vec<IpAddr> = self.leases.iter().map(|l| l.ip).collect();
        let ip = next_free(subnet, gateway, &used).ok_or_else(|| {
            Error::Invalid(format!(
                "no free address left in {subnet} (every one is leased)"
            ))
        })?;
        self.leases.push(Lease {
            ip,
            id: id.into(),
            ifname: ifname.into(),
        });
        self.save()?;
        Ok(ip)
    }

    /// Drops the lease of (id, ifname), if any.
    pub fn release(&mut self, id: &str, ifname: &str) -> Result<Option<IpAddr>, Error> {
        let found = self.find(id, ifname);
        if found.is_some() {
            self.leases.retain(|l| !(l.id == id && l.ifname == ifname));
            self.save()?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        crate::parse::cidr(s).unwrap()
    }

    #[test]
    fn allocation_order() {
        let s = c("10.9.0.0/29");
        let gw = default_gateway(&s);
        assert_eq!(gw.to_string(), "10.9.0.1");
        let mut used = vec![];
        let mut got = vec![];
        while let Some(ip) = next_free(&s, &gw, &used) {
            used.push(ip);
            got.push(ip.to_string());
        }
        // .0 network, .1 gateway, .7 broadcast are never handed out.
        assert_eq!(
            got,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
        );
        let s6 = c("fd00:9::/120");
        let gw6 = default_gateway(&s6);
        assert_eq!(next_free(&s6, &gw6, &[]).unwrap().to_string(), "fd00:9::2");
        // A /31 and /32 have nothing beyond the gateway.
        let one = c("10.9.0.0/32");
        assert_eq!(next_free(&one, &default_gateway(&one), &[]), None);
    }

    #[test]
    fn lease_lines_round_trip() {
        let l = vec![
            Lease {
                ip: "10.0.0.2".parse().unwrap(),
                id: "abc".into(),
                ifname: "eth0".into(),
            },
            Lease {
                ip: "fd00::2".parse().unwrap(),
                id: "def".into(),
                ifname: "eth1".into(),
            },
        ];
        assert_eq!(parse_leases(&format_leases(&l)), l);
        assert_eq!(parse_leases("junk\n10.0.0.3 a\n10.0.0.4 a b c\n"), vec![]);
    }

    #[test]
    fn store_allocates_once_and_releases() {
        let dir = std::env::temp_dir().join(format!("netwire-ipam-{}", std::process::id()));
        let s = c("10.9.1.0/24");
        let gw = default_gateway(&s);
        {
            let mut st = Store::open(&dir, "n").unwrap();
            let a = st.allocate(&s, &gw, "c1", "eth0").unwrap();
            assert_eq!(a.to_string(), "10.9.1.2");
            assert_eq!(st.allocate(&s, &gw, "c1", "eth0").unwrap(), a);
            assert_eq!(
                st.allocate(&s, &gw, "c2", "eth0").unwrap().to_string(),
                "10.9.1.3"
            );
        }
        {
            let mut st = Store::open(&dir, "n").unwrap();
            assert_eq!(st.leases.len(), 2);
            assert_eq!(
                st.release("c1", "eth0").unwrap().unwrap().to_string(),
                "10.9.1.2"
            );
            assert_eq!(st.release("c1", "eth0").unwrap(), None);
            assert_eq!(
                st.allocate(&s, &gw, "c3", "eth0").unwrap().to_string(),
                "10.9.1.2"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
