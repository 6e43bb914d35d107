//! Carries out a plan's steps over rtnetlink, one namespace socket per namespace, and undoes
//! what it made when a later step fails, so that a failure leaves nothing half-made.

use crate::error::Error;
use crate::nl::Link;
use crate::ns::Netns;
use crate::parse::{Cidr, NsRef};
use crate::plan::Step;
use crate::tap;
use serde_json::{json, Value};
use std::net::IpAddr;

enum Undo {
    Link(Option<NsRef>, u32),
    Addr(Option<NsRef>, u32, Cidr),
    Route(Option<NsRef>, IpAddr, Option<u32>),
}

/// The state of one run: open namespaces, what to undo, what to report.
pub struct Wire {
    spaces: Vec<Netns>,
    undo: Vec<Undo>,
    /// One JSON object per step.
    pub report: Vec<Value>,
    /// Fault injection for the tests: stop (SIGSTOP) after this many steps, so that a test can
    /// SIGKILL the tool half way without timing anything.
    pub stop_after: Option<usize>,
}

fn where_(ns: &Option<NsRef>) -> String {
    match ns {
        None => String::new(),
        Some(n) => format!(" in {n}"),
    }
}

impl Wire {
    pub fn new() -> Result<Wire, Error> {
        Ok(Wire {
            spaces: vec![Netns::current()?],
            undo: Vec::new(),
            report: Vec::new(),
            stop_after: std::env::var("NETWIRE_STOP_AFTER")
                .ok()
                .and_then(|s| s.parse().ok()),
        })
    }

    fn ns(&mut self, which: &Option<NsRef>) -> Result<&mut Netns, Error> {
        let pos = match self.spaces.iter().position(|n| &n.what == which) {
            Some(p) => p,
            None => {
                let Some(w) = which else {
                    return Ok(&mut self.spaces[0]);
                };
                self.spaces.push(Netns::open(w)?);
                self.spaces.len() - 1
            }
        };
        Ok(&mut self.spaces[pos])
    }

    fn find(&mut self, ns: &Option<NsRef>, dev: &str) -> Result<Option<Link>, Error> {
        let n = self.ns(ns)?;
        n.nl.link(dev).map_err(|e| {
            Error::netlink(
                format!("RTM_GETLINK {dev}{}", where_(ns)),
                e,
                "see rtnetlink(7)",
            )
        })
    }

    fn need(&mut self, ns: &Option<NsRef>, dev: &str, op: &str) -> Result<Link, Error> {
        match self.find(ns, dev)? {
            Some(l) => Ok(l),
            None => Err(Error::netlink(
                format!("{op} {dev}{}", where_(ns)),
                libc::ENODEV,
                format!(
                    "there is no link named {dev}{}; netwire show lists them",
                    where_(ns)
                ),
            )),
        }
    }

    fn free(&mut self, ns: &Option<NsRef>, dev: &str, op: &str) -> Result<(), Error> {
        if let Some(l) = self.find(ns, dev)? {
            return Err(Error::netlink(
                format!("{op} {dev}{}", where_(ns)),
                libc::EEXIST,
                format!(
                    "a {} link named {dev} is there already; remove it first: netwire del {dev}",
                    l.kind.as_deref().unwrap_or("plain")
                ),
            ));
        }
        Ok(())
    }

    /// Runs every step; on a failure undoes what this run made and returns the error.
    pub fn run(&mut self, steps: &[Step]) -> Result<(), Error> {
        for (i, s) in steps.iter().enumerate() {
            if let Err(e) = self.step(s) {
                self.rollback();
                return Err(e);
            }
            if self.stop_after == Some(i + 1) {
                // SAFETY: raise has no memory-safety preconditions.
                unsafe { libc::raise(libc::SIGSTOP) };
            }
        }
        Ok(())
    }

    /// Undoes this run's changes, newest first; what is already gone is fine.
    pub fn rollback(&mut self) {
        while let Some(u) = self.undo.pop() {
            let _ = match u {
                Undo::Link(ns, i) => self.ns(&ns).map(|n| n.nl.del_link(i)),
                Undo::Addr(ns, i, c) => self.ns(&ns).map(|n| n.nl.del_addr(i, &c)),
                Undo::Route(ns, gw, oif) => self.ns(&ns).map(|n| n.nl.del_default_route(gw, oif)),
            };
        }
    }

    /// Forgets the undo list: what was made stays.
    pub fn commit(&mut self) {
        self.undo.clear();
    }

    fn done(&mut self, step: &str, dev: &str, ns: &Option<NsRef>, extra: Value) {
        let mut v = json!({"step": step, "dev": dev, "netns": ns.as_ref().map(|n| n.to_string())});
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
        }
        self.report.push(v);
    }

    fn step(&mut self, s: &Step) -> Result<(), Error> {
        let here: Option<NsRef> = None;
        match s {
            Step::Bridge { name, exist_ok } => {
                let op = format!("RTM_NEWLINK bridge {name}");
                if let Some(l) = self.find(&here, name)? {
                    if *exist_ok && l.kind.as_deref() == Some("bridge") {
                        self.done(
                            "bridge",
                            name,
                            &here,
                            json!({"ifindex": l.index, "created": false}),
                        );
                        return Ok(());
                    }
                    return Err(Error::netlink(
                        op,
                        libc::EEXIST,
                        if *exist_ok {
                            format!(
                                "{name} is a {} link, not a bridge",
                                l.kind.as_deref().unwrap_or("plain")
                            )
                        } else {
                            format!("it is there already; remove it (netwire del {name}) or give --exist-ok")
                        },
                    ));
                }
                self.ns(&here)?.nl.new_bridge(name).map_err(|e| {
                    Error::netlink(op.clone(), e, "is the bridge module available?")
                })?;
                let l = self.need(&here, name, "RTM_GETLINK")?;
                self.undo.push(Undo::Link(None, l.index));
                self.done(
                    "bridge",
                    name,
                    &here,
                    json!({"ifindex": l.index, "created": true, "mac": l.mac}),
                );
            }
            Step::Veth {
                name,
                peer,
                peer_ns,
            } => {
                let op = format!("RTM_NEWLINK veth {name} peer {peer}{}", where_(peer_ns));
                self.free(&here, name, "RTM_NEWLINK veth")?;
                if peer_ns.is_some() {
                    self.free(peer_ns, peer, "RTM_NEWLINK veth peer")?;
                } else {
                    self.free(&here, peer, "RTM_NEWLINK veth peer")?;
                }
                let fd = match peer_ns {
                    Some(_) => self.ns(peer_ns)?.fd(),
                    None => None,
                };
                self.ns(&here)?
                    .nl
                    .new_veth(name, peer, fd)
                    .map_err(|e| Error::netlink(op, e, "is the veth module available?"))?;
                let l = self.need(&here, name, "RTM_GETLINK")?;
                self.undo.push(Undo::Link(None, l.index));
                let p = self.need(peer_ns, peer, "RTM_GETLINK")?;
                self.done(
                    "veth",
                    name,
                    &here,
                    json!({"ifindex": l.index, "mac": l.mac, "created": true,
                           "peer": {"dev": peer, "ifindex": p.index, "mac": p.mac,
                                    "netns": peer_ns.as_ref().map(|n| n.to_string())}}),
                );
            }
            Step::Tap { name, owner, group } => {
                self.free(&here, name, "ioctl(TUNSETIFF) tap")?;
                tap::create(name, *owner, *group)?;
                let l = self.need(&here, name, "RTM_GETLINK")?;
                self.undo.push(Undo::Link(None, l.index));
                self.done(
                    "tap",
                    name,
                    &here,
                    json!({"ifindex": l.index, "mac": l.mac, "created": true,
                    "owner": owner, "group": group}),
                );
            }
            Step::Move { dev, to, name } => {
                let l = self.need(&here, dev, "RTM_SETLINK netns")?;
                let target = Some(to.clone());
                let newname = name.clone().unwrap_or_else(|| dev.clone());
                self.free(&target, &newname, "RTM_SETLINK netns")?;
                let fd = self.ns(&target)?.fd();
                let fd = fd.ok_or_else(|| Error::Invalid(format!("no descriptor for {to}")))?;
                self.ns(&here)?
                    .nl
                    .move_to(l.index, fd, name.as_deref())
                    .map_err(|e| {
                        Error::netlink(
                            format!("RTM_SETLINK {dev} netns {to}"),
                            e,
                            "a bridge or loopback cannot move; a veth or tap can",
                        )
                    })?;
                let m = self.need(&target, &newname, "RTM_GETLINK")?;
                self.done(
                    "move",
                    dev,
                    &here,
                    json!({"to": to.to_string(), "name": newname, "ifindex": m.index}),
                );
            }
            Step::Master { dev, master } => {
                let l = self.need(&here, dev, "RTM_SETLINK master")?;
                let m = self.need(&here, master, "RTM_SETLINK master")?;
                if m.kind.as_deref() != Some("bridge") {
                    return Err(Error::netlink(
                        format!("RTM_SETLINK {dev} master {master}"),
                        libc::EINVAL,
                        format!("{master} is not a bridge (make one: netwire bridge {master})"),
                    ));
                }
                self.ns(&here)?
                    .nl
                    .set_master(l.index, m.index)
                    .map_err(|e| {
                        Error::netlink(
                            format!("RTM_SETLINK {dev} master {master}"),
                            e,
                            "see bridge(8)",
                        )
                    })?;
                self.done("master", dev, &here, json!({"master": master}));
            }
            Step::Mtu { dev, ns, mtu } => {
                let l = self.need(ns, dev, "RTM_SETLINK mtu")?;
                self.ns(ns)?.nl.set_mtu(l.index, *mtu).map_err(|e| {
                    Error::netlink(
                        format!("RTM_SETLINK {dev}{} mtu {mtu}", where_(ns)),
                        e,
                        "the link's driver refuses that MTU",
                    )
                })?;
                self.done("mtu", dev, ns, json!({"mtu": mtu}));
            }
            Step::Mac { dev, ns, mac } => {
                let l = self.need(ns, dev, "RTM_SETLINK address")?;
                self.ns(ns)?.nl.set_mac(l.index, *mac).map_err(|e| {
                    Error::netlink(
                        format!("RTM_SETLINK {dev}{} address {mac}", where_(ns)),
                        e,
                        "some drivers change the MAC only while the link is down",
                    )
                })?;
                self.done("mac", dev, ns, json!({"mac": mac.to_string()}));
            }
            Step::Up { dev, ns, up } => {
                let l = self.need(ns, dev, "RTM_SETLINK up")?;
                let word = if *up { "up" } else { "down" };
                self.ns(ns)?.nl.set_up(l.index, *up).map_err(|e| {
                    Error::netlink(
                        format!("RTM_SETLINK {dev}{} {word}", where_(ns)),
                        e,
                        "see rtnetlink(7)",
                    )
                })?;
                self.done(word, dev, ns, json!({}));
            }
            Step::Addr { dev, ns, cidr } => {
                let l = self.need(ns, dev, "RTM_NEWADDR")?;
                let op = format!("RTM_NEWADDR {cidr} on {dev}{}", where_(ns));
                let n = self.ns(ns)?;
                let all =
                    n.nl.addresses()
                        .map_err(|e| Error::netlink(op.clone(), e, "see rtnetlink(7)"))?;
                if let Some((idx, _)) = all.iter().find(|(_, a)| a.addr == cidr.addr) {
                    let owner =
                        n.nl.links()
                            .ok()
                            .and_then(|v| v.into_iter().find(|x| x.index == *idx))
                            .map(|x| x.name)
                            .unwrap_or_else(|| format!("link {idx}"));
                    return Err(Error::netlink(
                        op,
                        libc::EADDRINUSE,
                        format!(
                            "{} is already on {owner}{}; choose another address",
                            cidr.addr,
                            where_(ns)
                        ),
                    ));
                }
                n.nl.add_addr(l.index, cidr)
                    .map_err(|e| Error::netlink(op, e, "see ip-address(8)"))?;
                self.undo.push(Undo::Addr(ns.clone(), l.index, *cidr));
                self.done("addr", dev, ns, json!({"address": cidr.to_string()}));
            }
            Step::Unclaimed {
                bridge,
                dev,
                ns,
                cidr,
            } => {
                let n = self.ns(&here)?;
                let op = format!("RTM_NEWADDR {cidr} on {dev}{}", where_(ns));
                let all =
                    n.nl.addresses()
                        .map_err(|e| Error::netlink(op.clone(), e, "see rtnetlink(7)"))?;
                if let Some((idx, _)) = all.iter().find(|(_, a)| a.addr == cidr.addr) {
                    let owner =
                        n.nl.links()
                            .ok()
                            .and_then(|v| v.into_iter().find(|x| x.index == *idx))
                            .map(|x| x.name)
                            .unwrap_or_else(|| format!("link {idx}"));
                    return Err(Error::netlink(
                        op,
                        libc::EADDRINUSE,
                        if &owner == bridge {
                            format!(
                                "{} is {bridge}'s own address; choose another address",
                                cidr.addr
                            )
                        } else {
                            format!("{} is on {owner}, on {bridge}'s side, already; choose another address", cidr.addr)
                        },
                    ));
                }
            }
            Step::AddrIfMissing { dev, cidr } => {
                let l = self.need(&here, dev, "RTM_NEWADDR")?;
                let op = format!("RTM_NEWADDR {cidr} on {dev}");
                let n = self.ns(&here)?;
                let all =
                    n.nl.addresses()
                        .map_err(|e| Error::netlink(op.clone(), e, "see rtnetlink(7)"))?;
                let present = all.iter().any(|(i, a)| *i == l.index && a == cidr);
                if !present {
                    n.nl.add_addr(l.index, cidr).map_err(|e| {
                        let hint = if e == libc::EEXIST {
                            "the address is on the bridge with another prefix"
                        } else {
                            "see ip-address(8)"
                        };
                        Error::netlink(op, e, hint)
                    })?;
                }
                self.done(
                    "addr",
                    dev,
                    &here,
                    json!({"address": cidr.to_string(), "created": !present}),
                );
            }
            Step::Route { ns, via, dev } => {
                let oif = match dev {
                    Some(d) => Some(self.need(ns, d, "RTM_NEWROUTE")?.index),
                    None => None,
                };
                let op = format!("RTM_NEWROUTE default via {via}{}", where_(ns));
                self.ns(ns)?.nl.add_default_route(*via, oif).map_err(|e| {
                    let hint = match e {
                        libc::EEXIST => "there is a default route already; remove it first",
                        libc::ENETUNREACH => {
                            "no address of the link is in the gateway's subnet, or the link is down"
                        }
                        _ => "see ip-route(8)",
                    };
                    Error::netlink(op, e, hint)
                })?;
                self.undo.push(Undo::Route(ns.clone(), *via, oif));
                self.done(
                    "route",
                    dev.as_deref().unwrap_or(""),
                    ns,
                    json!({"dst": "default", "via": via.to_string()}),
                );
            }
            Step::Del { dev } => {
                let removed = match self.find(&here, dev)? {
                    None => false,
                    Some(l) => match self.ns(&here)?.nl.del_link(l.index) {
                        Ok(()) => true,
                        // Gone in between (its veth peer was removed): the outcome asked for.
                        Err(libc::ENODEV) => false,
                        Err(e) => {
                            return Err(Error::netlink(
                                format!("RTM_DELLINK {dev}"),
                                e,
                                "loopback and some virtual links cannot be removed",
                            ))
                        }
                    },
                };
                self.done("del", dev, &here, json!({"removed": removed}));
            }
            Step::Show => {
                let n = self.ns(&here)?;
                let links =
                    n.nl.links()
                        .map_err(|e| Error::netlink("RTM_GETLINK dump", e, "see rtnetlink(7)"))?;
                let addrs =
                    n.nl.addresses()
                        .map_err(|e| Error::netlink("RTM_GETADDR dump", e, "see rtnetlink(7)"))?;
                for l in links {
                    let mine: Vec<String> = addrs
                        .iter()
                        .filter(|(i, _)| *i == l.index)
                        .map(|(_, a)| a.to_string())
                        .collect();
                    self.report.push(json!({"ifindex": l.index, "dev": l.name, "kind": l.kind,
                        "mac": l.mac, "mtu": l.mtu, "up": l.up, "master": l.master, "addresses": mine}));
                }
            }
        }
        Ok(())
    }
}
