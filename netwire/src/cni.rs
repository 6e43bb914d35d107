//! netwire as a CNI plugin (spec 1.0): ADD joins the container's namespace to a bridge with an
//! address from the host-local allocator, DEL undoes it (also after a killed ADD), CHECK
//! verifies it, VERSION says which spec versions it speaks. Errors are the spec's JSON object.

use crate::cli::AttachArgs;
use crate::error::Error;
use crate::exec::Wire;
use crate::ipam::{self, Store};
use crate::parse::{self, Cidr, NsRef};
use crate::plan::{self, Step};
use conventions::outln;
use serde_json::{json, Value};
use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;

pub const SUPPORTED: [&str; 4] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];
const DEFAULT_DATA_DIR: &str = "/var/lib/cni/netwire";

/// A failure as the spec reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    fn new(code: u32, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn to_json(&self, version: &str) -> Value {
        let mut v = json!({"cniVersion": version, "code": self.code, "msg": self.msg});
        if !self.details.is_empty() {
            v["details"] = json!(self.details);
        }
        v
    }
}

// The spec's well-known codes.
pub const E_VERSION: u32 = 1;
pub const E_ENV: u32 = 4;
pub const E_IO: u32 = 5;
pub const E_DECODE: u32 = 6;
pub const E_CONFIG: u32 = 7;
/// Plugin-specific (100 and up): the kernel refused a change, or CHECK found a difference.
pub const E_NETLINK: u32 = 100;
pub const E_CHECK: u32 = 101;

impl From<Error> for CniError {
    fn from(e: Error) -> CniError {
        let code = match &e {
            Error::Store { .. } => E_IO,
            Error::Namespace { .. } => E_ENV,
            _ => E_NETLINK,
        };
        CniError::new(code, e.to_string())
    }
}

/// The network config, with what netwire reads of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub version: String,
    pub name: String,
    pub bridge: String,
    pub subnet: Cidr,
    pub gateway: IpAddr,
    pub default_route: bool,
    pub mtu: Option<u32>,
    pub data_dir: PathBuf,
    pub prev_result: Option<Value>,
}

fn field<'a>(v: &'a Value, k: &str) -> Result<&'a str, CniError> {
    match v.get(k) {
        None => Err(CniError::new(
            E_CONFIG,
            format!("network config has no \"{k}\" (it is required)"),
        )),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(CniError::new(
            E_CONFIG,
            format!("network config's \"{k}\" must be a non-empty string"),
        )),
    }
}

/// Reads the version out of a config, if it is there, for the error object.
pub fn version_of(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(|x| x.as_str())
                .map(String::from)
        })
        .filter(|v| SUPPORTED.contains(&v.as_str()))
        .unwrap_or_else(|| "1.0.0".into())
}

/// Parses and checks the config (pure).
pub fn parse_config(text: &str) -> Result<Config, CniError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| CniError::new(E_DECODE, format!("network config is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(CniError::new(
            E_DECODE,
            "network config is not a JSON object",
        ));
    }
    let version = field(&v, "cniVersion")?.to_string();
    if !SUPPORTED.contains(&version.as_str()) {
        let mut e = CniError::new(E_VERSION, format!("cniVersion {version} is not supported"));
        e.details = format!("netwire speaks {}", SUPPORTED.join(", "));
        return Err(e);
    }
    let name = field(&v, "name")?.to_string();
    field(&v, "type")?;
    let bridge = match v.get("bridge") {
        None => "netwire0".to_string(),
        Some(_) => field(&v, "bridge")?.to_string(),
    };
    parse::ifname(&bridge)
        .map_err(|e| CniError::new(E_CONFIG, format!("network config's \"bridge\": {e}")))?;
    let subnet = parse::cidr(field(&v, "subnet")?)
        .map_err(|e| CniError::new(E_CONFIG, format!("network config's \"subnet\": {e}")))?;
    let subnet = Cidr {
        addr: subnet.network(),
        prefix: subnet.prefix,
    };
    let gateway = match v.get("gateway") {
        None => ipam::default_gateway(&subnet),
        Some(_) => parse::ip(field(&v, "gateway")?)
            .map_err(|e| CniError::new(E_CONFIG, format!("network config's \"gateway\": {e}")))?,
    };
    if !subnet.contains(&gateway) {
        return Err(CniError::new(
            E_CONFIG,
            format!("gateway {gateway} is not in subnet {subnet}"),
        ));
    }
    let default_route = match v.get("isDefaultGateway") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(CniError::new(
                E_CONFIG,
                "network config's \"isDefaultGateway\" must be true or false",
            ))
        }
    };
    let mtu = match v.get("mtu") {
        None => None,
        Some(m) => Some(
            m.as_u64()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| {
                    CniError::new(E_CONFIG, "network config's \"mtu\" must be 68-65535")
                })? as u32,
        ),
    };
    let data_dir = match v.get("dataDir") {
        None => PathBuf::from(DEFAULT_DATA_DIR),
        Some(_) => PathBuf::from(field(&v, "dataDir")?),
    };
    Ok(Config {
        version,
        name,
        bridge,
        subnet,
        gateway,
        default_route,
        mtu,
        data_dir,
        prev_result: v.get("prevResult").cloned(),
    })
}

/// The runtime's environment for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Env {
    pub command: String,
    pub id: String,
    pub netns: Option<String>,
    pub ifname: String,
}

pub fn env_from(get: impl Fn(&str) -> Option<String>) -> Result<Env, CniError> {
    let command = get("CNI_COMMAND").unwrap_or_default();
    if !["ADD", "DEL", "CHECK", "VERSION"].contains(&command.as_str()) {
        return Err(CniError::new(
            E_ENV,
            format!("unknown CNI_COMMAND '{command}' (ADD, DEL, CHECK or VERSION)"),
        ));
    }
    let need = |k: &str| -> Result<String, CniError> {
        get(k).filter(|v| !v.is_empty()).ok_or_else(|| {
            CniError::new(
                E_ENV,
                format!("{k} is not set (the runtime must set it for {command})"),
            )
        })
    };
    if command == "VERSION" {
        return Ok(Env {
            command,
            id: String::new(),
            netns: None,
            ifname: String::new(),
        });
    }
    let id = need("CNI_CONTAINERID")?;
    if id.contains(char::is_whitespace) || id.contains('/') {
        return Err(CniError::new(
            E_ENV,
            "CNI_CONTAINERID must have no white space or '/'",
        ));
    }
    let ifname = need("CNI_IFNAME")?;
    parse::ifname(&ifname).map_err(|e| CniError::new(E_ENV, format!("CNI_IFNAME: {e}")))?;
    // DEL may come without a namespace (it is gone); ADD and CHECK need one.
    let netns = if command == "DEL" {
        get("CNI_NETNS").filter(|v| !v.is_empty())
    } else {
        Some(need("CNI_NETNS")?)
    };
    Ok(Env {
        command,
        id,
        netns,
        ifname,
    })
}

/// The host end's name: from the container id and ifname alone, so that DEL finds it even
/// when the namespace is gone.
pub fn host_veth(id: &str, ifname: &str) -> String {
    format!("nw{:08x}", plan::fnv1a(&format!("{id}\0{ifname}")) as u32)
}

/// The steps of ADD (pure).
pub fn add_steps(c: &Config, e: &Env, ip: IpAddr) -> Result<Vec<Step>, CniError> {
    let netns = e.netns.clone().unwrap_or_default();
    let a = AttachArgs {
        bridge: c.bridge.clone(),
        to: NsRef::File(netns.into()),
        ifname: e.ifname.clone(),
        host_name: Some(host_veth(&e.id, &e.ifname)),
        addr: vec![Cidr {
            addr: ip,
            prefix: c.subnet.prefix,
        }],
        gateway: if c.default_route {
            Some(c.gateway)
        } else {
            None
        },
        bridge_addr: vec![],
        mtu: c.mtu,
        mac: None,
    };
    let mut steps = plan::attach(&a).map_err(|m| CniError::new(E_CONFIG, m))?;
    // The gateway's address on the bridge is shared by every container: added once, kept.
    steps.insert(
        1,
        Step::AddrIfMissing {
            dev: c.bridge.clone(),
            cidr: Cidr {
                addr: c.gateway,
                prefix: c.subnet.prefix,
            },
        },
    );
    Ok(steps)
}

fn result_json(c: &Config, e: &Env, ip: IpAddr, report: &[Value]) -> Value {
    let mac_of = |dev: &str| {
        report
            .iter()
            .find(|s| s["dev"] == dev && s.get("mac").is_some())
            .and_then(|s| s["mac"].as_str().map(String::from))
    };
    let host = host_veth(&e.id, &e.ifname);
    let peer_mac = report
        .iter()
        .find(|s| s["step"] == "veth")
        .and_then(|s| s["peer"]["mac"].as_str().map(String::from));
    let mut ifaces = vec![
        json!({"name": c.bridge, "mac": mac_of(&c.bridge)}),
        json!({"name": host, "mac": mac_of(&host)}),
    ];
    ifaces.push(json!({"name": e.ifname, "mac": peer_mac, "sandbox": e.netns}));
    let mut ipj = json!({"address": format!("{ip}/{}", c.subnet.prefix), "gateway": c.gateway.to_string(), "interface": 2});
    if c.version.starts_with("0.3") {
        ipj["version"] = json!(if ip.is_ipv4() { "4" } else { "6" });
    }
    let mut routes = vec![];
    if c.default_route {
        let dst = if ip.is_ipv4() { "0.0.0.0/0" } else { "::/0" };
        routes.push(json!({"dst": dst, "gw": c.gateway.to_string()}));
    }
    for i in &mut ifaces {
        if i["mac"].is_null() {
            if let Some(m) = i.as_object_mut() {
                m.remove("mac");
            }
        }
    }
    json!({"cniVersion": c.version, "interfaces": ifaces, "ips": [ipj], "routes": routes, "dns": {}})
}

fn add(c: &Config, e: &Env) -> Result<Value, CniError> {
    let netns = e.netns.clone().unwrap_or_default();
    crate::ns::open_file(&NsRef::File(netns.clone().into()))
        .map_err(|err| CniError::new(3, format!("container network namespace {netns}: {err}")))?;
    let mut store = Store::open(&c.data_dir, &c.name)?;
    let fresh = store.find(&e.id, &e.ifname).is_none();
    let ip = store.allocate(&c.subnet, &c.gateway, &e.id, &e.ifname)?;
    let steps = add_steps(c, e, ip)?;
    let mut w = Wire::new()?;
    if let Err(err) = w.run(&steps) {
        if fresh {
            let _ = store.release(&e.id, &e.ifname);
        }
        return Err(err.into());
    }
    w.commit();
    Ok(result_json(c, e, ip, &w.report))
}

fn del(c: &Config, e: &Env) -> Result<(), CniError> {
    let mut w = Wire::new()?;
    // The host end first: removing it removes the container end with it.
    w.run(&[Step::Del {
        dev: host_veth(&e.id, &e.ifname),
    }])?;
    let mut store = Store::open(&c.data_dir, &c.name)?;
    store.release(&e.id, &e.ifname)?;
    Ok(())
}

fn check(c: &Config, e: &Env) -> Result<(), CniError> {
    let fail = |m: String| CniError::new(E_CHECK, m);
    if c.prev_result.is_none() {
        return Err(CniError::new(
            E_CONFIG,
            "CHECK needs the prevResult of ADD in the config",
        ));
    }
    let store = Store::open(&c.data_dir, &c.name)?;
    let ip = store
        .find(&e.id, &e.ifname)
        .ok_or_else(|| fail(format!("no address is leased to {} {}", e.id, e.ifname)))?;
    drop(store);
    let netns = NsRef::File(e.netns.clone().unwrap_or_default().into());
    let mut here = crate::ns::Netns::current()?;
    let br = here.nl.link(&c.bridge).ok().flatten();
    let br = br.ok_or_else(|| fail(format!("bridge {} is missing", c.bridge)))?;
    let host = host_veth(&e.id, &e.ifname);
    let h = here.nl.link(&host).ok().flatten();
    let h = h.ok_or_else(|| fail(format!("host end {host} is missing")))?;
    if h.master != Some(br.index) {
        return Err(fail(format!("{host} is not on bridge {}", c.bridge)));
    }
    let mut there = crate::ns::Netns::open(&netns)?;
    let l = there.nl.link(&e.ifname).ok().flatten();
    let l = l.ok_or_else(|| fail(format!("{} is missing in {netns}", e.ifname)))?;
    if !l.up {
        return Err(fail(format!("{} is down in {netns}", e.ifname)));
    }
    let addrs = there.nl.addresses().unwrap_or_default();
    if !addrs.iter().any(|(i, a)| *i == l.index && a.addr == ip) {
        return Err(fail(format!(
            "{} in {netns} lacks its address {ip}",
            e.ifname
        )));
    }
    if c.default_route {
        let gws = there.nl.default_gateways().unwrap_or_default();
        if !gws.contains(&c.gateway) {
            return Err(fail(format!(
                "{netns} has no default route via {}",
                c.gateway
            )));
        }
    }
    Ok(())
}

/// Runs one CNI call with `stdin` and the environment; returns (stdout JSON, exit code).
pub fn call(env: &Env, stdin: &str) -> (Option<Value>, i32) {
    if env.command == "VERSION" {
        let v = json!({"cniVersion": version_of(stdin), "supportedVersions": SUPPORTED});
        return (Some(v), 0);
    }
    let version = version_of(stdin);
    let c = match parse_config(stdin) {
        Ok(c) => c,
        Err(e) => return (Some(e.to_json(&version)), 1),
    };
    let r = match env.command.as_str() {
        "ADD" => add(&c, env).map(Some),
        "DEL" => del(&c, env).map(|_| None),
        _ => check(&c, env).map(|_| None),
    };
    match r {
        Ok(v) => (v, 0),
        Err(e) => (Some(e.to_json(&version)), 1),
    }
}

/// The plugin's entry, when CNI_COMMAND is set.
pub fn main() -> i32 {
    let mut stdin = String::new();
    // A read error leaves stdin empty, which the config parser reports.
    let _ = std::io::stdin().take(1 << 20).read_to_string(&mut stdin);
    let (out, code) = match env_from(|k| std::env::var(k).ok()) {
        Ok(env) => call(&env, &stdin),
        Err(e) => (Some(e.to_json(&version_of(&stdin))), 1),
    };
    if let Some(v) = out {
        outln!("{v}");
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"{"cniVersion":"1.0.0","name":"n","type":"netwire","bridge":"cni9","subnet":"10.9.0.7/24"}"#;

    #[test]
    fn config() {
        let c = parse_config(CONF).unwrap();
        assert_eq!(c.subnet.to_string(), "10.9.0.0/24");
        assert_eq!(c.gateway.to_string(), "10.9.0.1");
        assert!(c.default_route);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        let e = parse_config(r#"{"cniVersion":"1.0.0","name":"n","type":"netwire"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (7, "network config has no \"subnet\" (it is required)")
        );
        let e = parse_config(r#"{"name":"n"}"#).unwrap_err();
        assert_eq!(
            e.msg,
            "network config has no \"cniVersion\" (it is required)"
        );
        let e =
            parse_config(r#"{"cniVersion":"9.9.9","name":"n","type":"t","subnet":"10.0.0.0/8"}"#)
                .unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(parse_config("{").unwrap_err().code, 6);
        assert_eq!(parse_config("[]").unwrap_err().code, 6);
        let e = parse_config(r#"{"cniVersion":"1.0.0","name":"n","type":"t","subnet":"10.0.0.0/8","gateway":"11.0.0.1"}"#).unwrap_err();
        assert_eq!(e.msg, "gateway 11.0.0.1 is not in subnet 10.0.0.0/8");
        let e = parse_config(r#"{"cniVersion":"1.0.0","name":"n","type":"t","subnet":"10.0.0.0/8","bridge":"a234567890123456"}"#).unwrap_err();
        assert!(e.msg.contains("IFNAMSIZ"), "{}", e.msg);
    }

    fn env(pairs: &[(&str, &str)]) -> Result<Env, CniError> {
        let m: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        env_from(|k| m.get(k).cloned())
    }

    #[test]
    fn environment() {
        let e = env(&[("CNI_COMMAND", "FROB")]).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (4, "unknown CNI_COMMAND 'FROB' (ADD, DEL, CHECK or VERSION)")
        );
        let e = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "x"),
            ("CNI_IFNAME", "eth0"),
        ])
        .unwrap_err();
        assert_eq!(
            e.msg,
            "CNI_NETNS is not set (the runtime must set it for ADD)"
        );
        let d = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "x"),
            ("CNI_IFNAME", "eth0"),
        ])
        .unwrap();
        assert_eq!(d.netns, None);
        assert!(env(&[("CNI_COMMAND", "VERSION")]).is_ok());
    }

    #[test]
    fn add_plan_and_names() {
        let c = parse_config(CONF).unwrap();
        let e = Env {
            command: "ADD".into(),
            id: "abc".into(),
            netns: Some("/run/netns/x".into()),
            ifname: "eth0".into(),
        };
        let s = add_steps(&c, &e, "10.9.0.2".parse().unwrap()).unwrap();
        assert_eq!(
            s[..2],
            [
                Step::Bridge {
                    name: "cni9".into(),
                    exist_ok: true
                },
                Step::AddrIfMissing {
                    dev: "cni9".into(),
                    cidr: parse::cidr("10.9.0.1/24").unwrap()
                }
            ]
        );
        assert!(matches!(s.last(), Some(Step::Route { .. })));
        assert_eq!(host_veth("abc", "eth0"), host_veth("abc", "eth0"));
        assert_ne!(host_veth("abc", "eth0"), host_veth("abd", "eth0"));
        assert!(host_veth("abc", "eth0").len() <= 15);
    }

    #[test]
    fn version_and_errors() {
        let e = Env {
            command: "VERSION".into(),
            id: String::new(),
            netns: None,
            ifname: String::new(),
        };
        let (v, code) = call(&e, r#"{"cniVersion":"0.4.0"}"#);
        assert_eq!(code, 0);
        assert_eq!(
            v.unwrap(),
            json!({"cniVersion":"0.4.0","supportedVersions":SUPPORTED})
        );
        let err = CniError::new(7, "bad").to_json("1.0.0");
        assert_eq!(
            err.to_string(),
            r#"{"cniVersion":"1.0.0","code":7,"msg":"bad"}"#
        );
    }
}
