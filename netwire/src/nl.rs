//! A blocking rtnetlink socket: one request, its answers and its ack, in order. The tool sends a
//! handful of requests per run, so an async stack would only add start-up and size.

use crate::parse::{Cidr, Mac};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::net::IpAddr;
use std::os::fd::RawFd;

/// What a failed request returns: the errno the kernel acked with (or of the socket call).
pub type NlResult<T> = Result<T, i32>;

/// What the tool reads back about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub master: Option<u32>,
}

/// An rtnetlink socket in the network namespace that was current when it was opened.
pub struct Nl {
    sock: Socket,
    seq: u32,
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl Nl {
    pub fn open() -> NlResult<Nl> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| errno_of(&e))?;
        sock.bind_auto().map_err(|e| errno_of(&e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| errno_of(&e))?;
        Ok(Nl { sock, seq: 0 })
    }

    /// Sends one request and collects the messages answered to it until its ack (or, for a
    /// dump, its DONE).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> NlResult<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(|e| errno_of(&e))?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full().map_err(|e| errno_of(&e))?;
            let mut off = 0;
            while off < data.len() {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|_| libc::EBADMSG)?;
                let len = m.header.length as usize;
                if m.header.sequence_number == self.seq {
                    match m.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(out),
                                Some(_) => Err(-e.raw_code()),
                            }
                        }
                        NetlinkPayload::Done(_) => return Ok(out),
                        NetlinkPayload::InnerMessage(inner) => out.push(inner),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }

    fn ack(&mut self, msg: RouteNetlinkMessage, flags: u16) -> NlResult<()> {
        self.request(msg, NLM_F_ACK | flags).map(|_| ())
    }

    /// The link named `name`, or None.
    pub fn link(&mut self, name: &str) -> NlResult<Option<Link>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), NLM_F_ACK) {
            Ok(v) => Ok(v.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(link_of(&l)),
                _ => None,
            })),
            Err(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> NlResult<Vec<Link>> {
        let v = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(v.iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(link_of(l)),
                _ => None,
            })
            .collect())
    }

    /// The addresses of the namespace, as (link index, address).
    pub fn addresses(&mut self) -> NlResult<Vec<(u32, Cidr)>> {
        let v = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for r in v {
            if let RouteNetlinkMessage::NewAddress(a) = r {
                let addr = a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                });
                let local = a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Local(ip) => Some(*ip),
                    _ => None,
                });
                if let Some(ip) = local.or(addr) {
                    out.push((
                        a.header.index,
                        Cidr {
                            addr: ip,
                            prefix: a.header.prefix_len,
                        },
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Creates a bridge.
    pub fn new_bridge(&mut self, name: &str) -> NlResult<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Creates a veth pair; the peer is made straight in the namespace `peer_ns` (a descriptor
    /// of it) under `peer`, so that it never exists under a temporary name anywhere.
    pub fn new_veth(&mut self, name: &str, peer: &str, peer_ns: Option<RawFd>) -> NlResult<()> {
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.to_string()));
        if let Some(fd) = peer_ns {
            p.attributes.push(LinkAttribute::NetNsFd(fd));
        }
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    fn set(&mut self, index: u32, attrs: Vec<LinkAttribute>, up: Option<bool>) -> NlResult<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if let Some(up) = up {
            m.header.change_mask = LinkFlags::Up;
            if up {
                m.header.flags = LinkFlags::Up;
            }
        }
        m.attributes = attrs;
        self.ack(RouteNetlinkMessage::SetLink(m), 0)
    }

    pub fn set_up(&mut self, index: u32, up: bool) -> NlResult<()> {
        self.set(index, vec![], Some(up))
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> NlResult<()> {
        self.set(index, vec![LinkAttribute::Mtu(mtu)], None)
    }

    pub fn set_mac(&mut self, index: u32, mac: Mac) -> NlResult<()> {
        self.set(index, vec![LinkAttribute::Address(mac.0.to_vec())], None)
    }

    pub fn set_master(&mut self, index: u32, master: u32) -> NlResult<()> {
        self.set(index, vec![LinkAttribute::Controller(master)], None)
    }

    /// Moves a link into the namespace `fd`, renamed to `name` there when given.
    pub fn move_to(&mut self, index: u32, fd: RawFd, name: Option<&str>) -> NlResult<()> {
        let mut attrs = vec![LinkAttribute::NetNsFd(fd)];
        if let Some(n) = name {
            attrs.push(LinkAttribute::IfName(n.to_string()));
        }
        self.set(index, attrs, None)
    }

    pub fn del_link(&mut self, index: u32) -> NlResult<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.ack(RouteNetlinkMessage::DelLink(m), 0)
    }

    fn addr_msg(index: u32, c: &Cidr) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = family(&c.addr);
        m.header.prefix_len = c.prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(c.addr));
        m.attributes.push(AddressAttribute::Address(c.addr));
        m
    }

    pub fn add_addr(&mut self, index: u32, c: &Cidr) -> NlResult<()> {
        self.ack(
            RouteNetlinkMessage::NewAddress(Self::addr_msg(index, c)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    pub fn del_addr(&mut self, index: u32, c: &Cidr) -> NlResult<()> {
        self.ack(RouteNetlinkMessage::DelAddress(Self::addr_msg(index, c)), 0)
    }

    fn default_route(gw: IpAddr, oif: Option<u32>) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header = RouteHeader {
            address_family: family(&gw),
            table: RouteHeader::RT_TABLE_MAIN,
            protocol: RouteProtocol::Boot,
            scope: RouteScope::Universe,
            kind: RouteType::Unicast,
            ..Default::default()
        };
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
        if let Some(i) = oif {
            m.attributes.push(RouteAttribute::Oif(i));
        }
        m
    }

    pub fn add_default_route(&mut self, gw: IpAddr, oif: Option<u32>) -> NlResult<()> {
        self.ack(
            RouteNetlinkMessage::NewRoute(Self::default_route(gw, oif)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    pub fn del_default_route(&mut self, gw: IpAddr, oif: Option<u32>) -> NlResult<()> {
        self.ack(
            RouteNetlinkMessage::DelRoute(Self::default_route(gw, oif)),
            0,
        )
    }

    /// The gateways of the namespace's default routes.
    pub fn default_gateways(&mut self) -> NlResult<Vec<IpAddr>> {
        let mut out = Vec::new();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut m = RouteMessage::default();
            m.header.address_family = fam;
            for r in self.request(RouteNetlinkMessage::GetRoute(m), NLM_F_DUMP)? {
                if let RouteNetlinkMessage::NewRoute(r) = r {
                    if r.header.destination_prefix_length != 0
                        || r.header.table != RouteHeader::RT_TABLE_MAIN
                    {
                        continue;
                    }
                    for a in &r.attributes {
                        match a {
                            RouteAttribute::Gateway(RouteAddress::Inet(g)) => {
                                out.push(IpAddr::V4(*g))
                            }
                            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => {
                                out.push(IpAddr::V6(*g))
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn family(ip: &IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn link_of(l: &LinkMessage) -> Link {
    let mut out = Link {
        index: l.header.index,
        name: String::new(),
        kind: None,
        mac: None,
        mtu: None,
        up: l.header.flags.contains(LinkFlags::Up),
        master: None,
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => out.name = n.clone(),
            LinkAttribute::Mtu(m) => out.mtu = Some(*m),
            LinkAttribute::Controller(m) => out.master = Some(*m),
            LinkAttribute::Address(b) if b.len() == 6 => {
                let mut m = [0u8; 6];
                m.copy_from_slice(b);
                out.mac = Some(Mac(m).to_string());
            }
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        out.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    out
}
