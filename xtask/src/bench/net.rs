//! The network part of `cargo xtask bench`: round-trip time (busybox ping) and TCP throughput
//! (iperf3) container to container over veth pairs on a netwire bridge, over a bare veth pair,
//! and over loopback, in one run; and netwire's wiring timed against iproute2's `ip`.
//!
//! Everything runs inside a sandbox of new network and PID namespaces (unshare-rs -nfp), so
//! that the traffic never leaves namespaces the bench made and an iperf3 server left behind dies
//! with the sandbox.

use super::report::Goal;
use super::{Case, Group};
use crate::util;
use std::path::Path;
use std::process::Command;

/// One path measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub path: &'static str,
    /// Median-free ping summary: average round trip in ms.
    pub rtt_ms: Option<f64>,
    /// Received TCP throughput in Gbit/s.
    pub gbit_s: Option<f64>,
}

/// The paths, in table order, with the file stem the script writes for each.
pub const PATHS: [(&str, &str); 3] = [
    ("container-container, veth + bridge", "bridge"),
    ("container-container, one veth pair", "veth"),
    ("loopback (one namespace)", "lo"),
];

/// The sandbox script: `$OUT/STEM.ping` and `$OUT/STEM.json` per path.
const SCRIPT: &str = r#"
set -eu
"$NW" link lo --up
holder() {
    "$UNS" -n -- sleep 600 &
    p=$!
    while [ "$(readlink /proc/$p/ns/net 2>/dev/null)" = "$(readlink /proc/self/ns/net)" ]; do sleep 0.01; done
    eval "$1=$p"
}
holder a; holder b; holder c; holder d
"$NW" bridge br0 --addr 10.210.0.1/24
"$NW" attach br0 --to $a --addr 10.210.0.2/24
"$NW" attach br0 --to $b --addr 10.210.0.3/24
"$NSE" -t $c -n -- "$NW" veth eth0 --peer eth0 --peer-netns $d --addr 10.211.0.1/30 --peer-addr 10.211.0.2/30
"$NSE" -t $c -n -- "$NW" link lo --up
measure() { # STEM CLIENT_PID SERVER_PID ADDRESS
    "$NSE" -t $2 -n -- busybox ping -c "$PINGS" -i 0.01 -q "$4" > "$OUT/$1.ping"
    "$NSE" -t $3 -n -- iperf3 -s -1 -D -p 5201 -B "$4"
    i=0
    until "$NSE" -t $2 -n -- iperf3 -c "$4" -p 5201 -t "$SECS" -J > "$OUT/$1.json" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.05
    done
}
measure bridge $a $b 10.210.0.3
measure veth $c $d 10.211.0.2
measure lo $$ $$ 127.0.0.1
"#;

/// The average of busybox ping's summary line `round-trip min/avg/max = A/B/C ms`.
pub fn parse_ping(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains("min/avg/max"))?;
    let nums = line.split('=').nth(1)?.trim().trim_end_matches("ms").trim();
    nums.split('/').nth(1)?.parse().ok()
}

/// Received bits per second of an iperf3 -J report, in Gbit/s.
pub fn parse_iperf(json: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 1e9)
}

/// Runs the sandbox once and reads what it wrote.
pub fn measure(bin: &Path, work: &Path, quick: bool) -> Result<Vec<Row>, String> {
    let out = work.join("net");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let status = util::run(
        Command::new(bin.join("unshare-rs"))
            .args(["-nfp", "--mount-proc", "--", "sh", "-c", SCRIPT])
            .env("NW", bin.join("netwire"))
            .env("UNS", bin.join("unshare-rs"))
            .env("NSE", bin.join("nsenter-rs"))
            .env("OUT", &out)
            .env("PINGS", if quick { "20" } else { "200" })
            .env("SECS", if quick { "1" } else { "3" }),
    );
    let read = |f: String| std::fs::read_to_string(out.join(f)).unwrap_or_default();
    let rows = PATHS
        .iter()
        .map(|(path, stem)| Row {
            path,
            rtt_ms: parse_ping(&read(format!("{stem}.ping"))),
            gbit_s: parse_iperf(&read(format!("{stem}.json"))),
        })
        .collect();
    let _ = std::fs::remove_dir_all(&out);
    status.map(|_| rows)
}

/// The BENCHMARKS.md section.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "\n## Networking: container to container and loopback\n\n\
         Measured in one run inside a sandbox of new network and PID namespaces (nothing reaches \
         the host's): busybox `ping -i 0.01` (average round trip) and one iperf3 TCP stream \
         (received throughput), between two container namespaces joined by netwire (veth pairs \
         on a bridge, and one bare veth pair) and over loopback. The VM paths (a tap and \
         virtio-net) need a Linux guest, which this host's KVM does not boot: they are in the \
         nested lane's section below, with container to container and loopback measured again \
         there beside them.\n\n\
         | path | round trip | TCP throughput | vs loopback |\n|---|---|---|---|\n",
    );
    let lo = rows.iter().find(|r| r.path.starts_with("loopback"));
    for r in rows {
        let rtt = r.rtt_ms.map_or("n/a".into(), |v| format!("{v:.3} ms"));
        let tcp = r.gbit_s.map_or("n/a".into(), |v| format!("{v:.2} Gbit/s"));
        let ratio = match (r.gbit_s, lo.and_then(|l| l.gbit_s)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x throughput", a / b),
            _ => "n/a".into(),
        };
        s.push_str(&format!("| {} | {rtt} | {tcp} | {ratio} |\n", r.path));
    }
    s
}

/// netwire's wiring against `ip`'s, each in a fresh network namespace (the unshare-rs start is
/// common to both sides).
pub fn wiring_group(ours: &dyn Fn(&str) -> String) -> Group {
    let uns = ours("unshare-rs");
    let nw = ours("netwire");
    Group {
        title: "a veth pair in a new network namespace".into(),
        tool: "netwire",
        reference: false,
        slow: false,
        prepare: None,
        ours: Case::new(
            "unshare-rs -n -- netwire veth v0 --peer v1 --down",
            &[
                &uns, "-n", "--", &nw, "veth", "v0", "--peer", "v1", "--down",
            ],
        ),
        peers: vec![(
            Case::new(
                "unshare-rs -n -- ip link add v0 type veth peer name v1",
                &[
                    &uns, "-n", "--", "ip", "link", "add", "v0", "type", "veth", "peer", "name",
                    "v1",
                ],
            ),
            Goal::Ratio(1.0),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        let ping = "--- 10.0.0.3 ping statistics ---\n20 packets transmitted, 20 packets received, 0% packet loss\nround-trip min/avg/max = 0.046/0.063/0.187 ms\n";
        assert_eq!(parse_ping(ping), Some(0.063));
        assert_eq!(parse_ping("nothing"), None);
        let json = r#"{"end":{"sum_received":{"bits_per_second":7.5e9}}}"#;
        assert_eq!(parse_iperf(json), Some(7.5));
        assert_eq!(parse_iperf(r#"{"error":"unable to connect"}"#), None);
    }

    #[test]
    fn table() {
        let rows = vec![
            Row {
                path: PATHS[0].0,
                rtt_ms: Some(0.05),
                gbit_s: Some(5.0),
            },
            Row {
                path: PATHS[2].0,
                rtt_ms: Some(0.02),
                gbit_s: Some(10.0),
            },
        ];
        let md = markdown(&rows);
        assert!(md.contains(
            "| container-container, veth + bridge | 0.050 ms | 5.00 Gbit/s | 0.50x throughput |"
        ));
        assert!(md
            .contains("| loopback (one namespace) | 0.020 ms | 10.00 Gbit/s | 1.00x throughput |"));
    }
}
