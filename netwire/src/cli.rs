//! The command line (clap): one subcommand per kind of wiring.

use crate::parse::{self, Cidr, Mac, NsRef};
use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;

const EXAMPLES: &str = "\
Examples:
  netwire bridge br0 --addr 10.200.1.1/24            a bridge with an address, up
  netwire attach br0 --to 4242 --addr 10.200.1.2/24 --gateway 10.200.1.1
                                                     a container (PID 4242) on br0 as eth0
  netwire veth v0 --peer eth0 --peer-netns /run/netns/blue --peer-addr fd00::2/64
  netwire tap tap0 --owner 1000 --master br0         a persistent tap for a VM
  netwire --json show                                the links, as JSON
  netwire del br0 v0 tap0                            removal; a missing link is not an error
  netwire --netns 4242 addr eth0 10.0.0.2/24         act inside another network namespace

As a CNI plugin (CNI_COMMAND set): config JSON on stdin, result JSON on stdout, e.g.
  {\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"netwire\",\"bridge\":\"cni0\",\"subnet\":\"10.88.0.0/24\"}

Exit status: 0 done, 1 failed (nothing it made is left behind).";

#[derive(Parser, Debug)]
#[command(
    name = "netwire",
    version = conventions::VERSION,
    about = "Create and remove network wiring through netlink: bridges, veth pairs, taps, addresses, routes",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Act inside this network namespace: a PID, a namespace file, or a name under /run/netns.
    #[arg(long, global = true, value_name = "NS", value_parser = parse::nsref)]
    pub netns: Option<NsRef>,
    /// Print what was done (or shown) as one JSON object.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Cmd {
    /// Create a bridge (up unless --down).
    Bridge(BridgeArgs),
    /// Create a veth pair; the peer may be made straight in another namespace.
    Veth(VethArgs),
    /// Create a persistent tap device (TUNSETIFF), e.g. for a VM's NIC.
    Tap(TapArgs),
    /// Join a network namespace to a bridge: the bridge (if missing), a veth pair with the
    /// host end on the bridge, the other end in the namespace, addresses, default route.
    Attach(AttachArgs),
    /// Move a link into another namespace, renamed there with --name.
    Move {
        #[arg(value_parser = parse::ifname)]
        dev: String,
        #[arg(long, value_name = "NS", value_parser = parse::nsref)]
        to: NsRef,
        #[arg(long, value_parser = parse::ifname)]
        name: Option<String>,
    },
    /// Add addresses (ADDR/PREFIX, v4 or v6) to a link.
    Addr {
        #[arg(value_parser = parse::ifname)]
        dev: String,
        #[arg(required = true, value_parser = parse::cidr)]
        addrs: Vec<Cidr>,
    },
    /// Add a default route via a gateway.
    Route {
        #[arg(long, value_parser = parse::ip)]
        via: IpAddr,
        #[arg(long, value_parser = parse::ifname)]
        dev: Option<String>,
    },
    /// Change a link: up or down, MTU, MAC, bridge.
    Link(LinkArgs),
    /// Remove links (a veth's peer goes with it); a link that is not there is not an error.
    Del {
        #[arg(required = true, value_parser = parse::ifname)]
        names: Vec<String>,
    },
    /// Show the links and their addresses.
    Show,
}

#[derive(Args, Debug, Clone, PartialEq, Default)]
pub struct Common {
    #[arg(long)]
    pub mtu: Option<u32>,
    #[arg(long, value_parser = parse::mac)]
    pub mac: Option<Mac>,
    /// Enslave the link to this bridge.
    #[arg(long, value_parser = parse::ifname)]
    pub master: Option<String>,
    /// Leave the link down.
    #[arg(long)]
    pub down: bool,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct BridgeArgs {
    #[arg(value_parser = parse::ifname)]
    pub name: String,
    #[arg(long, value_parser = parse::cidr)]
    pub addr: Vec<Cidr>,
    #[arg(long)]
    pub mtu: Option<u32>,
    #[arg(long, value_parser = parse::mac)]
    pub mac: Option<Mac>,
    #[arg(long)]
    pub down: bool,
    /// A bridge of that name already there is fine (its addresses are added if missing).
    #[arg(long)]
    pub exist_ok: bool,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct VethArgs {
    #[arg(value_parser = parse::ifname)]
    pub name: String,
    #[arg(long, value_parser = parse::ifname)]
    pub peer: String,
    /// Make the peer in this namespace (PID or file).
    #[arg(long, value_name = "NS", value_parser = parse::nsref)]
    pub peer_netns: Option<NsRef>,
    #[arg(long, value_parser = parse::mac)]
    pub peer_mac: Option<Mac>,
    #[arg(long, value_parser = parse::cidr)]
    pub peer_addr: Vec<Cidr>,
    /// Default route of the peer's namespace.
    #[arg(long, value_parser = parse::ip)]
    pub peer_gateway: Option<IpAddr>,
    #[arg(long, value_parser = parse::cidr)]
    pub addr: Vec<Cidr>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct TapArgs {
    #[arg(value_parser = parse::ifname)]
    pub name: String,
    /// The uid that may open it without CAP_NET_ADMIN.
    #[arg(long)]
    pub owner: Option<u32>,
    #[arg(long)]
    pub group: Option<u32>,
    #[arg(long, value_parser = parse::cidr)]
    pub addr: Vec<Cidr>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct AttachArgs {
    #[arg(value_parser = parse::ifname)]
    pub bridge: String,
    /// The namespace to attach (PID or file).
    #[arg(long = "to", value_name = "NS", value_parser = parse::nsref)]
    pub to: NsRef,
    /// The interface's name inside the namespace.
    #[arg(long, default_value = "eth0", value_parser = parse::ifname)]
    pub ifname: String,
    /// The host end's name (default: derived from the namespace and --ifname).
    #[arg(long, value_parser = parse::ifname)]
    pub host_name: Option<String>,
    #[arg(long, value_parser = parse::cidr)]
    pub addr: Vec<Cidr>,
    #[arg(long, value_parser = parse::ip)]
    pub gateway: Option<IpAddr>,
    /// Addresses of the bridge when it is created.
    #[arg(long, value_parser = parse::cidr)]
    pub bridge_addr: Vec<Cidr>,
    #[arg(long)]
    pub mtu: Option<u32>,
    #[arg(long, value_parser = parse::mac)]
    pub mac: Option<Mac>,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct LinkArgs {
    #[arg(value_parser = parse::ifname)]
    pub dev: String,
    #[arg(long, conflicts_with = "down")]
    pub up: bool,
    #[arg(long)]
    pub down: bool,
    #[arg(long)]
    pub mtu: Option<u32>,
    #[arg(long, value_parser = parse::mac)]
    pub mac: Option<Mac>,
    #[arg(long, value_parser = parse::ifname)]
    pub master: Option<String>,
}
