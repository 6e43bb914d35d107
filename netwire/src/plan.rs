//! The pure plan: a command line becomes the ordered list of kernel changes, checked for what
//! can be known without the kernel (names, address families, gateways off-link, duplicates),
//! so that bad input changes nothing.

use crate::cli::{AttachArgs, Cmd, Common};
use crate::parse::{Cidr, Mac, NsRef};
use std::net::IpAddr;

/// One change, in the namespace `ns` (None: the one the tool acts in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create a bridge; with `exist_ok` a bridge of that name already there is used.
    Bridge {
        name: String,
        exist_ok: bool,
    },
    /// Create a veth pair, the peer made in `peer_ns`.
    Veth {
        name: String,
        peer: String,
        peer_ns: Option<NsRef>,
    },
    /// Create a persistent tap.
    Tap {
        name: String,
        owner: Option<u32>,
        group: Option<u32>,
    },
    /// Move a link to another namespace, renamed there.
    Move {
        dev: String,
        to: NsRef,
        name: Option<String>,
    },
    Master {
        dev: String,
        master: String,
    },
    Mtu {
        dev: String,
        ns: Option<NsRef>,
        mtu: u32,
    },
    Mac {
        dev: String,
        ns: Option<NsRef>,
        mac: Mac,
    },
    Up {
        dev: String,
        ns: Option<NsRef>,
        up: bool,
    },
    Addr {
        dev: String,
        ns: Option<NsRef>,
        cidr: Cidr,
    },
    /// An address that several runs share (a CNI network's gateway on its bridge): added when
    /// missing, never undone.
    AddrIfMissing {
        dev: String,
        cidr: Cidr,
    },
    /// A check, no change: `cidr`, meant for `dev` in `ns`, is not on `bridge`'s side already
    /// (the kernel allows one address in two namespaces; on one bridge it is a conflict).
    Unclaimed {
        bridge: String,
        dev: String,
        ns: Option<NsRef>,
        cidr: Cidr,
    },
    /// A default route.
    Route {
        ns: Option<NsRef>,
        via: IpAddr,
        dev: Option<String>,
    },
    /// Remove a link if it is there.
    Del {
        dev: String,
    },
    /// Read the links and addresses.
    Show,
}

/// The host end's name for `attach` without --host-name: `nw` and a hash of the namespace and
/// the interface name, so that a later removal finds it from the same two facts.
pub fn host_name(ns: &NsRef, ifname: &str) -> String {
    format!(
        "nw{:08x}",
        fnv1a(&format!("{}\0{ifname}", ns.path().display())) as u32
    )
}

/// FNV-1a, 64 bits: stable across builds (std's hasher is not).
pub fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn check_addrs(addrs: &[Cidr], gateway: Option<IpAddr>, dev: &str) -> Result<(), String> {
    for (i, a) in addrs.iter().enumerate() {
        if addrs[..i].iter().any(|b| b.addr == a.addr) {
            return Err(format!("address {} is given twice for {dev}", a.addr));
        }
        if a.addr.is_unspecified() || a.addr.is_multicast() {
            return Err(format!("{a} cannot be a link's address"));
        }
    }
    if let Some(gw) = gateway {
        if addrs.iter().any(|a| a.addr == gw) {
            return Err(format!(
                "gateway {gw} is {dev}'s own address (give the bridge's or router's address)"
            ));
        }
        if !addrs.iter().any(|a| a.contains(&gw)) {
            let fam = if gw.is_ipv4() { "IPv4" } else { "IPv6" };
            return Err(format!(
                "gateway {gw} is not in a subnet of {dev}'s {fam} addresses, so the kernel could not reach it (add an address in its subnet)"
            ));
        }
    }
    Ok(())
}

fn common_steps(dev: &str, c: &Common, out: &mut Vec<Step>) {
    if let Some(mtu) = c.mtu {
        out.push(Step::Mtu {
            dev: dev.into(),
            ns: None,
            mtu,
        });
    }
    if let Some(mac) = c.mac {
        out.push(Step::Mac {
            dev: dev.into(),
            ns: None,
            mac,
        });
    }
    if let Some(m) = &c.master {
        out.push(Step::Master {
            dev: dev.into(),
            master: m.clone(),
        });
    }
}

fn addr_steps(dev: &str, ns: &Option<NsRef>, addrs: &[Cidr], out: &mut Vec<Step>) {
    for a in addrs {
        out.push(Step::Addr {
            dev: dev.into(),
            ns: ns.clone(),
            cidr: *a,
        });
    }
}

fn check_mtu(mtu: Option<u32>) -> Result<(), String> {
    match mtu {
        Some(m) if !(68..=65535).contains(&m) => Err(format!(
            "MTU {m} is outside 68-65535, the range of Ethernet-like links"
        )),
        _ => Ok(()),
    }
}

/// The steps of `attach`, which the CNI plugin's ADD runs too.
pub fn attach(a: &AttachArgs) -> Result<Vec<Step>, String> {
    check_mtu(a.mtu)?;
    check_addrs(&a.addr, a.gateway, &a.ifname)?;
    check_addrs(&a.bridge_addr, None, &a.bridge)?;
    let host = a
        .host_name
        .clone()
        .unwrap_or_else(|| host_name(&a.to, &a.ifname));
    if host == a.bridge {
        return Err(format!(
            "the host end '{host}' cannot have the bridge's name"
        ));
    }
    let ns = Some(a.to.clone());
    let mut out = vec![Step::Bridge {
        name: a.bridge.clone(),
        exist_ok: true,
    }];
    addr_steps(&a.bridge, &None, &a.bridge_addr, &mut out);
    out.push(Step::Up {
        dev: a.bridge.clone(),
        ns: None,
        up: true,
    });
    for c in &a.addr {
        out.push(Step::Unclaimed {
            bridge: a.bridge.clone(),
            dev: a.ifname.clone(),
            ns: ns.clone(),
            cidr: *c,
        });
    }
    out.push(Step::Veth {
        name: host.clone(),
        peer: a.ifname.clone(),
        peer_ns: ns.clone(),
    });
    if let Some(mtu) = a.mtu {
        out.push(Step::Mtu {
            dev: host.clone(),
            ns: None,
            mtu,
        });
        out.push(Step::Mtu {
            dev: a.ifname.clone(),
            ns: ns.clone(),
            mtu,
        });
    }
    if let Some(mac) = a.mac {
        out.push(Step::Mac {
            dev: a.ifname.clone(),
            ns: ns.clone(),
            mac,
        });
    }
    out.push(Step::Master {
        dev: host.clone(),
        master: a.bridge.clone(),
    });
    out.push(Step::Up {
        dev: host,
        ns: None,
        up: true,
    });
    out.push(Step::Up {
        dev: "lo".into(),
        ns: ns.clone(),
        up: true,
    });
    addr_steps(&a.ifname, &ns, &a.addr, &mut out);
    out.push(Step::Up {
        dev: a.ifname.clone(),
        ns: ns.clone(),
        up: true,
    });
    if let Some(gw) = a.gateway {
        out.push(Step::Route {
            ns,
            via: gw,
            dev: Some(a.ifname.clone()),
        });
    }
    Ok(out)
}

/// The steps of a command line.
pub fn plan(cmd: &Cmd) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    match cmd {
        Cmd::Bridge(b) => {
            check_mtu(b.mtu)?;
            check_addrs(&b.addr, None, &b.name)?;
            out.push(Step::Bridge {
                name: b.name.clone(),
                exist_ok: b.exist_ok,
            });
            let c = Common {
                mtu: b.mtu,
                mac: b.mac,
                master: None,
                down: b.down,
            };
            common_steps(&b.name, &c, &mut out);
            addr_steps(&b.name, &None, &b.addr, &mut out);
            if !b.down {
                out.push(Step::Up {
                    dev: b.name.clone(),
                    ns: None,
                    up: true,
                });
            }
        }
        Cmd::Veth(v) => {
            check_mtu(v.common.mtu)?;
            check_addrs(&v.addr, None, &v.name)?;
            check_addrs(&v.peer_addr, v.peer_gateway, &v.peer)?;
            if v.peer == v.name && v.peer_netns.is_none() {
                return Err(format!(
                    "the peer cannot have the same name '{}' in the same namespace (give --peer-netns or another --peer)",
                    v.name
                ));
            }
            if v.common.master.as_deref() == Some(v.name.as_str()) {
                return Err(format!("{} cannot be its own bridge", v.name));
            }
            let pns = v.peer_netns.clone();
            out.push(Step::Veth {
                name: v.name.clone(),
                peer: v.peer.clone(),
                peer_ns: pns.clone(),
            });
            common_steps(&v.name, &v.common, &mut out);
            if let Some(mtu) = v.common.mtu {
                out.push(Step::Mtu {
                    dev: v.peer.clone(),
                    ns: pns.clone(),
                    mtu,
                });
            }
            if let Some(mac) = v.peer_mac {
                out.push(Step::Mac {
                    dev: v.peer.clone(),
                    ns: pns.clone(),
                    mac,
                });
            }
            addr_steps(&v.name, &None, &v.addr, &mut out);
            addr_steps(&v.peer, &pns, &v.peer_addr, &mut out);
            if !v.common.down {
                out.push(Step::Up {
                    dev: v.name.clone(),
                    ns: None,
                    up: true,
                });
                out.push(Step::Up {
                    dev: v.peer.clone(),
                    ns: pns.clone(),
                    up: true,
                });
            }
            if let Some(gw) = v.peer_gateway {
                if v.common.down {
                    return Err("--peer-gateway needs the peer up (drop --down)".into());
                }
                out.push(Step::Route {
                    ns: pns,
                    via: gw,
                    dev: Some(v.peer.clone()),
                });
            }
        }
        Cmd::Tap(t) => {
            check_mtu(t.common.mtu)?;
            check_addrs(&t.addr, None, &t.name)?;
            out.push(Step::Tap {
                name: t.name.clone(),
                owner: t.owner,
                group: t.group,
            });
            common_steps(&t.name, &t.common, &mut out);
            addr_steps(&t.name, &None, &t.addr, &mut out);
            if !t.common.down {
                out.push(Step::Up {
                    dev: t.name.clone(),
                    ns: None,
                    up: true,
                });
            }
        }
        Cmd::Attach(a) => return attach(a),
        Cmd::Move { dev, to, name } => out.push(Step::Move {
            dev: dev.clone(),
            to: to.clone(),
            name: name.clone(),
        }),
        Cmd::Addr { dev, addrs } => {
            check_addrs(addrs, None, dev)?;
            addr_steps(dev, &None, addrs, &mut out);
        }
        Cmd::Route { via, dev } => out.push(Step::Route {
            ns: None,
            via: *via,
            dev: dev.clone(),
        }),
        Cmd::Link(l) => {
            check_mtu(l.mtu)?;
            if !l.up && !l.down && l.mtu.is_none() && l.mac.is_none() && l.master.is_none() {
                return Err(format!(
                    "nothing to change on {} (give --up, --down, --mtu, --mac or --master)",
                    l.dev
                ));
            }
            let c = Common {
                mtu: l.mtu,
                mac: l.mac,
                master: l.master.clone(),
                down: l.down,
            };
            common_steps(&l.dev, &c, &mut out);
            if l.up || l.down {
                out.push(Step::Up {
                    dev: l.dev.clone(),
                    ns: None,
                    up: l.up,
                });
            }
        }
        Cmd::Del { names } => {
            for n in names {
                out.push(Step::Del { dev: n.clone() });
            }
        }
        Cmd::Show => out.push(Step::Show),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn steps(args: &[&str]) -> Result<Vec<Step>, String> {
        let cli = Cli::try_parse_from(std::iter::once("netwire").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        plan(&cli.cmd)
    }

    fn c(s: &str) -> Cidr {
        crate::parse::cidr(s).unwrap()
    }

    #[test]
    fn bridge_with_address() {
        assert_eq!(
            steps(&["bridge", "br0", "--addr", "10.0.0.1/24", "--mtu", "1400"]).unwrap(),
            vec![
                Step::Bridge {
                    name: "br0".into(),
                    exist_ok: false
                },
                Step::Mtu {
                    dev: "br0".into(),
                    ns: None,
                    mtu: 1400
                },
                Step::Addr {
                    dev: "br0".into(),
                    ns: None,
                    cidr: c("10.0.0.1/24")
                },
                Step::Up {
                    dev: "br0".into(),
                    ns: None,
                    up: true
                },
            ]
        );
        assert_eq!(steps(&["bridge", "br0", "--down"]).unwrap().len(), 1);
    }

    #[test]
    fn attach_order() {
        let s = steps(&[
            "attach",
            "br0",
            "--to",
            "42",
            "--addr",
            "10.0.0.2/24",
            "--gateway",
            "10.0.0.1",
        ])
        .unwrap();
        let ns = Some(NsRef::Pid(42));
        let host = host_name(&NsRef::Pid(42), "eth0");
        assert!(host.len() < 16 && host.starts_with("nw"));
        assert_eq!(
            s,
            vec![
                Step::Bridge {
                    name: "br0".into(),
                    exist_ok: true
                },
                Step::Up {
                    dev: "br0".into(),
                    ns: None,
                    up: true
                },
                Step::Unclaimed {
                    bridge: "br0".into(),
                    dev: "eth0".into(),
                    ns: ns.clone(),
                    cidr: c("10.0.0.2/24")
                },
                Step::Veth {
                    name: host.clone(),
                    peer: "eth0".into(),
                    peer_ns: ns.clone()
                },
                Step::Master {
                    dev: host.clone(),
                    master: "br0".into()
                },
                Step::Up {
                    dev: host,
                    ns: None,
                    up: true
                },
                Step::Up {
                    dev: "lo".into(),
                    ns: ns.clone(),
                    up: true
                },
                Step::Addr {
                    dev: "eth0".into(),
                    ns: ns.clone(),
                    cidr: c("10.0.0.2/24")
                },
                Step::Up {
                    dev: "eth0".into(),
                    ns: ns.clone(),
                    up: true
                },
                Step::Route {
                    ns,
                    via: "10.0.0.1".parse().unwrap(),
                    dev: Some("eth0".into())
                },
            ]
        );
    }

    #[test]
    fn host_names_are_stable_and_distinct() {
        let a = host_name(&NsRef::Pid(42), "eth0");
        assert_eq!(a, host_name(&NsRef::File("/proc/42/ns/net".into()), "eth0"));
        assert_ne!(a, host_name(&NsRef::Pid(43), "eth0"));
        assert_ne!(a, host_name(&NsRef::Pid(42), "eth1"));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            steps(&["veth", "v0", "--peer", "v0"]).unwrap_err(),
            "the peer cannot have the same name 'v0' in the same namespace (give --peer-netns or another --peer)"
        );
        assert_eq!(
            steps(&[
                "veth", "v0", "--peer", "p0", "--peer-addr", "10.0.0.2/24", "--peer-gateway", "10.1.0.1"
            ])
            .unwrap_err(),
            "gateway 10.1.0.1 is not in a subnet of p0's IPv4 addresses, so the kernel could not reach it (add an address in its subnet)"
        );
        assert!(steps(&[
            "veth",
            "v0",
            "--peer",
            "p0",
            "--peer-addr",
            "fd00::2/64",
            "--peer-gateway",
            "10.0.0.1"
        ])
        .unwrap_err()
        .contains("IPv4"));
        assert_eq!(
            steps(&["addr", "v0", "10.0.0.2/24", "10.0.0.2/16"]).unwrap_err(),
            "address 10.0.0.2 is given twice for v0"
        );
        assert!(steps(&["bridge", "b", "--mtu", "20"])
            .unwrap_err()
            .contains("MTU 20"));
        assert!(steps(&["link", "v0"])
            .unwrap_err()
            .starts_with("nothing to change"));
        assert!(steps(&["attach", "br0", "--to", "1", "--host-name", "br0"]).is_err());
        assert!(steps(&["addr", "v0", "224.0.0.1/4"]).is_err());
        // The parsers refuse before the plan.
        assert!(steps(&["bridge", "a234567890123456"])
            .unwrap_err()
            .contains("longer than 15 (IFNAMSIZ)"));
    }

    #[test]
    fn veth_with_peer_elsewhere() {
        let s = steps(&[
            "veth",
            "v0",
            "--peer",
            "eth0",
            "--peer-netns",
            "/run/netns/x",
            "--peer-addr",
            "fd00::2/64",
            "--master",
            "br0",
        ])
        .unwrap();
        let ns = Some(NsRef::File("/run/netns/x".into()));
        assert_eq!(
            s[0],
            Step::Veth {
                name: "v0".into(),
                peer: "eth0".into(),
                peer_ns: ns.clone()
            }
        );
        assert!(s.contains(&Step::Master {
            dev: "v0".into(),
            master: "br0".into()
        }));
        assert!(s.contains(&Step::Addr {
            dev: "eth0".into(),
            ns: ns.clone(),
            cidr: c("fd00::2/64")
        }));
        assert_eq!(
            s.last(),
            Some(&Step::Up {
                dev: "eth0".into(),
                ns,
                up: true
            })
        );
    }

    #[test]
    fn del_and_tap() {
        assert_eq!(
            steps(&["del", "a", "b"]).unwrap(),
            vec![Step::Del { dev: "a".into() }, Step::Del { dev: "b".into() }]
        );
        assert_eq!(
            steps(&["tap", "t0", "--owner", "1000", "--down"]).unwrap(),
            vec![Step::Tap {
                name: "t0".into(),
                owner: Some(1000),
                group: None
            }]
        );
    }
}
