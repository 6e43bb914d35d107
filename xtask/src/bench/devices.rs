//! `cargo xtask bench`'s VM-device group: virtio disk and network throughput and latency of a
//! Linux guest under tinyvmm against QEMU `-M microvm`'s virtio-mmio devices, and a VM's network
//! paths to a container and to another VM on one netwire bridge, beside container to container
//! and loopback, all in the same level-1 guest of the hardware-KVM lane (this host's PVM cannot
//! boot Linux). Level 1 runs one script per measurement ([`script`]) and reports through the
//! lane's console protocol; this module builds the images, reads the `dev.` lines and writes the
//! section of BENCHMARKS.md and the bars of the networking chart.

use super::boot;
use super::chart::Bar;
use crate::cpio::Archive;
use crate::{nested, vmtest};
use std::fmt::Write as _;
use std::path::Path;

/// The VMMs compared, as the section names them.
pub const VMMS: [&str; 2] = ["tinyvmm", "qemu -M microvm"];

/// Disk transfer of each sequential pass, MiB (the image lives in level 1's RAM).
const DISK_MIB: u32 = 64;
/// 4 KiB direct reads of the latency pass.
const LAT_READS: u32 = 1000;
/// Pings per network path, and iperf3's seconds.
const PINGS: u32 = 50;
const TCP_SECS: u32 = 3;
/// The bound of each ping and iperf3 step (busybox `timeout`), s: far above the 1 s of 50 pings
/// and iperf3's 3 s, so that a path that does not answer ends its step, not the script.
const STEP_SECS: u32 = 30;
/// The bound of the waits for the server guest's @@DEV-READY and for its first ping, and of the
/// client guest's whole run, s (a Linux boot under nested KVM took 10-30 s).
const GUEST_SECS: u32 = 150;
/// What level 1 allows one script, s: the disk script one guest run; the network script under
/// tinyvmm its bounded steps (the server's start, four pings and iperf3s, the client guest).
const DISK_SCRIPT_SECS: u64 = 120;
const NET_SCRIPT_SECS: u64 = 360;

/// PID 1 of the level-2 guest: the virtio modules, then the role the command line gives:
/// `dev.role=disk` times direct sequential reads and writes of /dev/vda and 4 KiB reads by the
/// kernel's clock (/proc/timer_list, ns) and powers off; `server` gives eth0 `dev.ip=`, starts
/// an iperf3 server and waits to be ended; `client` also pings `dev.peer=` and runs iperf3
/// against it (the VM-VM path), then powers off.
const GUEST_INIT: &str = r#"#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp
for m in virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net; do
    insmod /virtio/$m.ko 2>/dev/null || echo "insmod $m failed"
done
role=none
for w in $(cat /proc/cmdline); do
    case "$w" in
    dev.role=*) role=${w#dev.role=} ;;
    dev.ip=*) ip=${w#dev.ip=} ;;
    dev.peer=*) peer=${w#dev.peer=} ;;
    esac
done
now() { awk '/^now at/ { print $3; exit }' /proc/timer_list; }
appear() { n=0; while [ ! -e "$1" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done; }
# What TCP resent and found corrupt, which tells a slow path from a lossy one.
tcp_counts() {
    awk '/^Tcp:/ { if (!h) { for (i = 2; i <= NF; i++) n[i] = $i; h = 1 }
        else for (i = 2; i <= NF; i++) if (n[i] ~ /^(OutSegs|RetransSegs|InCsumErrors)$/) printf "%s %s ", n[i], $i }' /proc/net/snmp
}
case "$role" in
disk)
    appear /sys/block/vda
    a=$(now); dd if=/dev/vda of=/dev/null bs=1M count={MIB} iflag=direct 2>/dev/null; b=$(now)
    echo "dev.disk read_ns $((b - a))"
    a=$(now); dd if=/dev/zero of=/dev/vda bs=1M count={MIB} oflag=direct conv=fsync 2>/dev/null; b=$(now)
    echo "dev.disk write_ns $((b - a))"
    a=$(now); dd if=/dev/vda of=/dev/null bs=4k count={READS} iflag=direct 2>/dev/null; b=$(now)
    echo "dev.disk lat_ns $(((b - a) / {READS}))"
    ;;
server | client)
    appear /sys/class/net/eth0
    ip link set lo up
    ip addr add "$ip" dev eth0 && ip link set eth0 up
    iperf3 -s -D
    echo "@@DEV-READY"
    if [ "$role" = client ]; then
        n=0
        until ping -c 1 -W 1 "$peer" >/dev/null 2>&1 || [ $n -ge 60 ]; do n=$((n + 1)); done
        echo "dev.ping vm-vm $(timeout {BOUND} ping -c {PINGS} -i 0.02 -q "$peer" | grep min/avg/max)"
        echo "dev.tcp vm-vm $(timeout {BOUND} iperf3 -c "$peer" -t {SECS} -f m | grep receiver)"
        echo "dev.note client: $(tcp_counts)"
    else
        sleep 600
    fi
    ;;
esac
poweroff -f
"#;

/// The guest's initramfs: [`GUEST_INIT`], the virtio modules, iperf3 with its libraries and the
/// busybox rootfs.
fn guest_initramfs(root: &Path, iperf3: &Path) -> Result<Archive, String> {
    let mut g = Archive::new();
    g.chardev("/dev/console", 0o600, 5, 1);
    let init = GUEST_INIT
        .replace("{MIB}", &DISK_MIB.to_string())
        .replace("{READS}", &LAT_READS.to_string())
        .replace("{PINGS}", &PINGS.to_string())
        .replace("{SECS}", &TCP_SECS.to_string())
        .replace("{BOUND}", &STEP_SECS.to_string());
    g.file("/init", 0o755, init.into_bytes());
    for (name, data) in nested::virtio_modules()? {
        g.file(&format!("/virtio/{name}"), 0o644, data);
    }
    boot::add_with_libraries(&mut g, iperf3)?;
    vmtest::add_tree(&mut g, root, "").map_err(|e| format!("adding {}: {e}", root.display()))?;
    Ok(g)
}

/// How each VMM boots the guest with a disk (`$D`) or a NIC on a tap (`$TAP`, `$MAC`), the
/// guest's words in `$W`.
fn vmm_command(vmm: usize, disk: bool) -> String {
    let dev = match (vmm, disk) {
        (0, true) => "--disk $D",
        (0, false) => "--net tap=$TAP,mac=$MAC",
        (_, true) => "-drive id=d0,file=$D,format=raw,if=none -device virtio-blk-device,drive=d0",
        (_, false) => {
            "-netdev tap,id=n0,ifname=$TAP,script=no,downscript=no \
             -device virtio-net-device,netdev=n0,mac=$MAC"
        }
    };
    if vmm == 0 {
        format!(
            "/lane/bin/tinyvmm run --mem 256M --timeout 400 --kernel $K --initrd $I {dev} \
             --append \"quiet $W\""
        )
    } else {
        format!(
            "qemu-system-x86_64 -M microvm -accel kvm -cpu host -m 256M -smp 1 -nodefaults \
             -no-user-config -display none -serial stdio -monitor none -no-reboot \
             -kernel $K -initrd $I -append \"console=ttyS0 reboot=k panic=-1 quiet $W\" {dev}"
        )
    }
}

/// The measurements in level-1 order, VMMs taken in turn for `runs` rounds: (script name, script).
pub fn plan(runs: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in 0..runs {
        for v in 0..VMMS.len() {
            out.push((format!("{:02}-disk_{v}_{r}", out.len()), script(v, true)));
            out.push((format!("{:02}-net_{v}_{r}", out.len()), script(v, false)));
        }
    }
    out
}

/// Level 1's script for one measurement: the disk pass (the guest's own lines), or the network
/// passes with a server guest on a tap on bridge br0 (10.0.2.1/24): from level 1 (guest-host,
/// TCP both ways), from a container (unshare-rs -n, `netwire attach`) and from a second guest
/// of the same VMM on its own tap (VM-VM). Level 1 ends the server guest with SIGTERM (SIGKILL
/// 10 s later). `dev.note` lines (TCP's resent segments, the taps' drops) are for reading
/// (`-v`), not the table. Every wait and step is bounded, and `step` lines (level 1's uptime) and the
/// tails of the guests' consoles show where a run spent its time or stopped.
pub fn script(vmm: usize, disk: bool) -> String {
    let head = "# bench devices\n. /lane/env\nK=/lane/kernels/cloud/vmlinuz\n\
                I=/lane/initrd/devices-bench.cpio\nexport K I\n\
                step() { read -r t _ </proc/uptime; echo \"step $1 $t\"; }\n\
                tail_of() { grep -v '^dev\\.' \"$2\" | tail -n 8 | sed \"s/^/$1: /\"; }\n\
                tap_note() { d=/sys/class/net/$1/statistics; echo \"dev.note $1: frames to the guest \
                $(cat $d/tx_packets), dropped $(cat $d/tx_dropped), from it $(cat $d/rx_packets)\"; }\n";
    if disk {
        return format!(
            "{head}D=/tmp/bench-disk.img\nW=dev.role=disk\nexport D W\n\
             dd if=/dev/zero of=$D bs=1M count={DISK_MIB} 2>/dev/null\nstep disk\n\
             timeout -s KILL {GUEST_SECS} {cmd} >/tmp/disk.out 2>&1\necho \"vmm-status $?\"\n\
             step end\ngrep '^dev\\.' /tmp/disk.out\ntail_of guest /tmp/disk.out\n\
             rm -f $D /tmp/disk.out\n",
            cmd = vmm_command(vmm, true)
        );
    }
    let server = vmm_command(vmm, false);
    let client = vmm_command(vmm, false);
    // The paths without a VM, once per round (beside tinyvmm's): container to container on the
    // same bridge, and level 1's loopback, for the table of every path in one environment.
    // Level 1's init leaves lo down, so the loopback step brings it up.
    let peers = if vmm == 0 {
        format!(
            "step containers\nunshare-rs -n -- sleep 600 &\nd=$!\n\
             n=0\nwhile [ \"$(readlink /proc/$d/ns/net)\" = \"$(readlink /proc/self/ns/net)\" ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n + 1)); done\n\
             netwire attach br0 --to $d --addr 10.0.2.11/24 >/dev/null\n\
             nsenter-rs -t $d -n -- timeout {STEP_SECS} iperf3 -s -1 -B 10.0.2.11 >/dev/null &\n\
             n=0\nuntil nsenter-rs -t $d -n -- grep -q ':1451 ' /proc/net/tcp || [ $n -ge 100 ]; do sleep 0.05; n=$((n + 1)); done\n\
             echo \"dev.ping container-container $(nsenter-rs -t $c -n -- timeout {STEP_SECS} ping -c {PINGS} -i 0.02 -q 10.0.2.11 | grep min/avg/max)\"\n\
             echo \"dev.tcp container-container $(nsenter-rs -t $c -n -- timeout {STEP_SECS} iperf3 -c 10.0.2.11 -t {TCP_SECS} -f m | grep receiver)\"\n\
             kill $d; wait $d\n\
             step loopback\nip link set lo up\ntimeout {STEP_SECS} iperf3 -s -1 -B 127.0.0.1 -p 5202 >/dev/null &\n\
             n=0\nuntil grep -q ':1452 ' /proc/net/tcp || [ $n -ge 100 ]; do sleep 0.05; n=$((n + 1)); done\n\
             echo \"dev.ping loopback $(timeout {STEP_SECS} ping -c {PINGS} -i 0.02 -q 127.0.0.1 | grep min/avg/max)\"\n\
             echo \"dev.tcp loopback $(timeout {STEP_SECS} iperf3 -c 127.0.0.1 -p 5202 -t {TCP_SECS} -f m | grep receiver)\"\n"
        )
    } else {
        String::new()
    };
    let extra = format!(
            "step container\nunshare-rs -n -- sleep 600 &\nc=$!\n\
             n=0\nwhile [ \"$(readlink /proc/$c/ns/net)\" = \"$(readlink /proc/self/ns/net)\" ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n + 1)); done\n\
             netwire attach br0 --to $c --addr 10.0.2.10/24 >/dev/null\n\
             echo \"dev.ping vm-container $(nsenter-rs -t $c -n -- timeout {STEP_SECS} ping -c {PINGS} -i 0.02 -q 10.0.2.2 | grep min/avg/max)\"\n\
             echo \"dev.tcp vm-container $(nsenter-rs -t $c -n -- timeout {STEP_SECS} iperf3 -c 10.0.2.2 -t {TCP_SECS} -f m | grep receiver)\"\n\
             {peers}kill $c; wait $c\n\
             step client\nnetwire tap tap9 --master br0 >/dev/null\n\
             TAP=tap9 MAC=02:00:00:00:00:03 W='dev.role=client dev.ip=10.0.2.3/24 dev.peer=10.0.2.2' \
             timeout -s KILL {GUEST_SECS} sh -c 'exec {client}' >/tmp/client.out 2>&1\n\
             echo \"client-status $?\"\ngrep '^dev\\.' /tmp/client.out\ntail_of client /tmp/client.out\n\
             tap_note tap9\nnetwire del tap9 >/dev/null\n"
    );
    format!(
        "{head}netwire bridge br0 --addr 10.0.2.1/24 >/dev/null\n\
         netwire tap tap0 --master br0 >/dev/null\n\
         step server\n\
         TAP=tap0 MAC=02:00:00:00:00:02 W='dev.role=server dev.ip=10.0.2.2/24' \
         sh -c 'exec {server}' >/tmp/server.out 2>&1 &\nvm=$!\n\
         n=0\nuntil grep -q @@DEV-READY /tmp/server.out || [ $n -ge {ready} ]; do sleep 0.1; n=$((n + 1)); done\n\
         step ready\n\
         n=0\nuntil ping -c 1 -W 1 10.0.2.2 >/dev/null 2>&1 || [ $n -ge 60 ]; do n=$((n + 1)); done\n\
         step guest-host\n\
         echo \"dev.ping guest-host $(timeout {STEP_SECS} ping -c {PINGS} -i 0.02 -q 10.0.2.2 | grep min/avg/max)\"\n\
         echo \"dev.tcp guest-host $(timeout {STEP_SECS} iperf3 -c 10.0.2.2 -t {TCP_SECS} -f m | grep receiver)\"\n\
         echo \"dev.tcp guest-to-host $(timeout {STEP_SECS} iperf3 -R -c 10.0.2.2 -t {TCP_SECS} -f m | grep receiver)\"\n\
         {extra}tap_note tap0\nstep stop\nkill -TERM $vm\n(sleep 10; kill -KILL $vm 2>/dev/null) &\nk=$!\nwait $vm\n\
         echo \"server-status $?\"\nkill $k 2>/dev/null\nstep end\ntail_of server /tmp/server.out\n\
         netwire del tap0 br0 >/dev/null\nrm -f /tmp/server.out /tmp/client.out\n",
        ready = GUEST_SECS * 10
    )
}

/// One measurement as level 1 reported it: which VMM, and the values it printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// [`VMMS`] index.
    pub vmm: usize,
    /// Sequential direct read and write, MB/s; 4 KiB direct read latency, us.
    pub read_mb_s: Option<f64>,
    pub write_mb_s: Option<f64>,
    pub lat_us: Option<f64>,
    /// (path, average round trip ms).
    pub rtt_ms: Vec<(String, f64)>,
    /// (path, received Mbit/s).
    pub tcp_mbit_s: Vec<(String, f64)>,
}

/// Reads one report's `dev.` lines.
pub fn parse(vmm: usize, output: &[String]) -> Measured {
    let mut m = Measured {
        vmm,
        ..Measured::default()
    };
    let mib = f64::from(DISK_MIB) * 1024.0 * 1024.0;
    for line in output {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["dev.disk", "read_ns", ns] => m.read_mb_s = rate(mib, ns),
            ["dev.disk", "write_ns", ns] => m.write_mb_s = rate(mib, ns),
            ["dev.disk", "lat_ns", ns] => m.lat_us = ns.parse::<f64>().ok().map(|n| n / 1e3),
            ["dev.ping", path, ..] => {
                if let Some(v) = super::net::parse_ping(line) {
                    m.rtt_ms.push((path.to_string(), v));
                }
            }
            ["dev.tcp", path, rest @ ..] => {
                let at = rest.iter().position(|t| *t == "Mbits/sec");
                if let Some(v) = at.and_then(|i| rest.get(i.checked_sub(1)?)?.parse().ok()) {
                    m.tcp_mbit_s.push((path.to_string(), v));
                }
            }
            _ => {}
        }
    }
    m
}

/// MB/s (10^6 bytes) of `bytes` in `ns` nanoseconds.
fn rate(bytes: f64, ns: &str) -> Option<f64> {
    let ns: f64 = ns.parse().ok()?;
    (ns > 0.0).then(|| bytes / 1e6 / (ns / 1e9))
}

/// Boots level 1 once and runs [`plan`]; the measurements in the order they ran.
pub fn run(bin_dir: &Path, runs: usize, verbose: bool) -> Result<Vec<Measured>, String> {
    let iperf3 = conventions::exec::find_in_path("iperf3")
        .ok_or("iperf3 is not installed (cargo xtask deps)")?;
    let a = boot::level1_group(bin_dir, |a, root| {
        for t in ["netwire", "unshare-rs", "nsenter-rs"] {
            let p = bin_dir.join(t);
            let data = std::fs::read(&p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            a.file(&format!("/lane/bin/{t}"), 0o755, data);
        }
        boot::add_with_libraries(a, &iperf3)?;
        a.file(
            "/lane/initrd/devices-bench.cpio",
            0o644,
            guest_initramfs(root, &iperf3)?.to_bytes(),
        );
        Ok(())
    })?;
    eprintln!("xtask bench: booting level 1 for {runs} round(s) of VM device measurements");
    let reported = boot::run_scripts(
        &a,
        &plan(runs),
        allowance,
        "devices",
        crate::nested::LEVEL1_MEM_MIB,
        verbose,
    )?;
    Ok(reported
        .iter()
        .filter_map(|r| {
            let v: usize = r.name.split('_').nth(1)?.parse().ok()?;
            (v < VMMS.len()).then(|| parse(v, &r.output))
        })
        .collect())
}

/// The seconds level 1 allows the script `name` of [`plan`].
fn allowance(name: &str) -> u64 {
    if name.contains("-disk_") {
        DISK_SCRIPT_SECS
    } else {
        NET_SCRIPT_SECS
    }
}

/// The seconds level 1 allows the scripts of `plan` together.
#[cfg(test)]
fn script_allowance(plan: &[(String, String)]) -> u64 {
    plan.iter().map(|(name, _)| allowance(name)).sum()
}

/// The median of `pick` over `vmm`'s measurements.
fn med(ms: &[Measured], vmm: usize, pick: impl Fn(&Measured) -> Option<f64>) -> Option<f64> {
    boot::median(
        ms.iter()
            .filter(|m| m.vmm == vmm)
            .filter_map(pick)
            .collect(),
    )
}

fn on_path(list: &[(String, f64)], path: &str) -> Option<f64> {
    list.iter().find(|(p, _)| p == path).map(|(_, v)| *v)
}

/// Which value of a measurement a table row shows.
type Pick = fn(&Measured) -> Option<f64>;

/// The devices section's heading: `cargo xtask bench --devices-only` finds it to replace the
/// section in BENCHMARKS.md.
pub const HEADING: &str = "## VM devices and VM networking (nested lane, level 1)";

/// `md` with its section under `heading` (the devices' [`HEADING`], the one-shot root's; to
/// the next `## ` heading or the scale section's marker) replaced by `section`, or `section`
/// appended when `md` has none.
pub fn splice_at(md: &str, heading: &str, section: &str) -> String {
    let section = section.trim_matches('\n');
    let Some(b) = md.find(heading) else {
        return format!("{}\n\n{section}\n", md.trim_end());
    };
    let rest = &md[b + heading.len()..];
    let end = [
        rest.find("\n## "),
        rest.find(&format!("\n{}", super::scale::render::BEGIN)),
    ]
    .into_iter()
    .flatten()
    .min()
    .map_or(md.len(), |e| b + heading.len() + e);
    let tail = md[end..].trim_start_matches('\n');
    if tail.is_empty() {
        format!("{}{section}\n", &md[..b])
    } else {
        format!("{}{section}\n\n{tail}", &md[..b])
    }
}

/// The BENCHMARKS.md section.
pub fn markdown(ms: &[Measured], runs: usize, why_not: Option<&str>) -> String {
    let mut s = match super::report::section_head(HEADING, why_not) {
        Ok(s) => s,
        Err(not) => return not,
    };
    let _ = writeln!(
        s,
        "Debian's cloud kernel with a busybox initramfs, 256 MiB, one vCPU, under tinyvmm and \
         under QEMU `-M microvm` (virtio-mmio `virtio-blk-device` and `virtio-net-device` on a \
         tap, userspace backends: level 1 has no vhost), one after another, {runs} round(s), in \
         the level-1 guest of `cargo xtask nested` (QEMU TCG with nested AMD-V: every exit is \
         emulated, so only the ratios carry over). Disk: a raw image in level 1's RAM, busybox \
         `dd` with O_DIRECT in the guest, {DISK_MIB} MiB in 1 MiB requests each way and \
         {LAT_READS} 4 KiB reads, timed by the guest kernel's clock. Network: busybox ping \
         ({PINGS} at 20 ms) and iperf3 ({TCP_SECS} s, received rate) to a guest on a tap on a \
         netwire bridge in level 1, from level 1 (guest-host, TCP both ways), from a container \
         on the bridge (unshare-rs -n + `netwire attach`) and from a second guest of the same \
         VMM on its own tap (VM-VM). Medians.\n"
    );
    let f = |v: Option<f64>, d: usize| v.map(|x| format!("{x:.d$}")).unwrap_or("-".into());
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    };
    let disk: [(&str, Pick); 3] = [
        ("sequential read, MB/s", |m| m.read_mb_s),
        ("sequential write, MB/s", |m| m.write_mb_s),
        ("4 KiB read latency, us", |m| m.lat_us),
    ];
    let _ = writeln!(
        s,
        "| measure | tinyvmm | qemu -M microvm | tinyvmm / QEMU |\n|---|---|---|---|"
    );
    for (name, pick) in disk {
        let (a, b) = (med(ms, 0, pick), med(ms, 1, pick));
        let _ = writeln!(
            s,
            "| disk: {name} | {} | {} | {} |",
            f(a, 1),
            f(b, 1),
            ratio(a, b)
        );
    }
    // (row, path, a round trip rather than a rate)
    for (label, path, rtt) in [
        ("guest-host: round trip, ms", "guest-host", true),
        ("host to guest: TCP, Mbit/s", "guest-host", false),
        ("guest to host: TCP, Mbit/s", "guest-to-host", false),
        (
            "VM-container (bridge): round trip, ms",
            "vm-container",
            true,
        ),
        (
            "container to VM (bridge): TCP, Mbit/s",
            "vm-container",
            false,
        ),
        ("VM-VM (bridge): round trip, ms", "vm-vm", true),
        ("VM to VM (bridge): TCP, Mbit/s", "vm-vm", false),
    ] {
        let v = |vmm| {
            med(ms, vmm, |m| {
                on_path(if rtt { &m.rtt_ms } else { &m.tcp_mbit_s }, path)
            })
        };
        let d = if rtt { 3 } else { 0 };
        let _ = writeln!(
            s,
            "| net {label} | {} | {} | {} |",
            f(v(0), d),
            f(v(1), d),
            ratio(v(0), v(1))
        );
    }
    let _ = writeln!(
        s,
        "\nFor rates a ratio above 1 favours tinyvmm, for round trips and latency below 1. \
         The VM-VM rows are two guests of the same VMM, both on level 1's one vCPU."
    );
    let _ = writeln!(
        s,
        "\n### Every network path in level 1, one run\n\n\
         Containers and VMs side by side in the same level-1 guest and the same rounds: \
         tinyvmm's guests, two containers (unshare-rs -n) on the same netwire bridge, and level \
         1's loopback, with the same ping and iperf3. The container rows of the section \
         above are the host's, where no Linux guest boots; these are all in the nested lane.\n"
    );
    if net_bars(ms).is_empty() {
        let _ = writeln!(s, "No path was measured.");
        return s;
    }
    let _ = writeln!(
        s,
        "![TCP throughput per path in level 1](docs/net.svg)\n\n\
         | path | round trip, ms | TCP, Mbit/s | TCP vs loopback |\n|---|---|---|---|"
    );
    let lo = med(ms, 0, |m| on_path(&m.tcp_mbit_s, "loopback"));
    for (path, rtt_path, label, _) in LEVEL1_PATHS {
        let tcp = med(ms, 0, |m| on_path(&m.tcp_mbit_s, path));
        let rtt = med(ms, 0, |m| on_path(&m.rtt_ms, rtt_path));
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {} |",
            f(rtt, 3),
            f(tcp, 0),
            ratio(tcp, lo)
        );
    }
    s
}

/// The level-1 network paths in table order: (TCP path, round-trip path, label, approach).
/// The guest's transmit direction has no round trip of its own: it is the guest-host ping.
const LEVEL1_PATHS: [(&str, &str, &str, &str); 6] = [
    (
        "loopback",
        "loopback",
        "loopback (level 1, one namespace)",
        "process",
    ),
    (
        "container-container",
        "container-container",
        "container to container, veth + bridge",
        "container",
    ),
    (
        "vm-container",
        "vm-container",
        "container to VM, veth + bridge + tap",
        "vm",
    ),
    ("guest-host", "guest-host", "level 1 to VM, tap", "vm"),
    ("guest-to-host", "guest-host", "VM to level 1, tap", "vm"),
    ("vm-vm", "vm-vm", "VM to VM, two taps on the bridge", "vm"),
];

/// The networking chart's bars: each level-1 path's median TCP throughput (tinyvmm's guests).
pub fn net_bars(ms: &[Measured]) -> Vec<Bar> {
    LEVEL1_PATHS
        .iter()
        .filter_map(|&(path, _, label, approach)| {
            Some(Bar {
                label: label.to_string(),
                approach,
                ms: med(ms, 0, |m| on_path(&m.tcp_mbit_s, path))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn splice_replaces_only_the_devices_section() {
        let scale = crate::bench::scale::render::BEGIN;
        let old = format!(
            "# Benchmarks\n\n## Boots\n\nb\n\n{HEADING}\n\nold\n\n### Every path\n\nold too\n\n{scale}\nkept\n"
        );
        let new = format!("\n{HEADING}\n\nnew\n\n### Every path\n\nnew too\n");
        assert_eq!(
            splice_at(&old, HEADING, &new),
            format!("# Benchmarks\n\n## Boots\n\nb\n\n{HEADING}\n\nnew\n\n### Every path\n\nnew too\n\n{scale}\nkept\n")
        );
        let last = format!("# B\n\n{HEADING}\n\nold\n");
        assert_eq!(
            splice_at(&last, HEADING, &new),
            format!("# B\n\n{HEADING}\n\nnew\n\n### Every path\n\nnew too\n")
        );
        let next = format!("{HEADING}\n\nold\n## Scale\n\ns\n");
        assert_eq!(splice_at(&next, HEADING, "x"), "x\n\n## Scale\n\ns\n");
        assert_eq!(
            splice_at("# B\n", HEADING, &new),
            format!("# B\n\n{HEADING}\n\nnew\n\n### Every path\n\nnew too\n")
        );
    }

    #[test]
    fn reports_parse() {
        let m = parse(
            0,
            &s(&[
                "dev.disk read_ns 500000000",
                "dev.disk write_ns 1000000000",
                "dev.disk lat_ns 45000",
                "dev.ping guest-host round-trip min/avg/max = 0.100/0.250/0.900 ms",
                "dev.tcp guest-host [  5]   0.00-3.00   sec   300 MBytes   838 Mbits/sec                  receiver",
                "dev.tcp vm-vm",
                "noise",
            ]),
        );
        let mib = f64::from(DISK_MIB) * 1048576.0 / 1e6;
        assert_eq!(m.read_mb_s, Some(mib * 2.0));
        assert_eq!(m.write_mb_s, Some(mib));
        assert_eq!(m.lat_us, Some(45.0));
        assert_eq!(m.rtt_ms, vec![("guest-host".to_string(), 0.25)]);
        assert_eq!(m.tcp_mbit_s, vec![("guest-host".to_string(), 838.0)]);
    }

    #[test]
    fn the_plan_alternates_vmms_and_both_get_the_bridge_peers() {
        let p = plan(2);
        let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "00-disk_0_0",
                "01-net_0_0",
                "02-disk_1_0",
                "03-net_1_0",
                "04-disk_0_1",
                "05-net_0_1",
                "06-disk_1_1",
                "07-net_1_1"
            ]
        );
        for net in [&p[1].1, &p[3].1] {
            assert!(net.contains("vm-container") && net.contains("tap9") && net.contains("-R -c"));
        }
        assert!(p[1].1.contains("--net tap=$TAP") && !p[1].1.contains("virtio-net-device"));
        assert!(p[3].1.contains("virtio-net-device") && !p[3].1.contains("--net tap"));
        assert!(p[2].1.contains("virtio-blk-device") && p[0].1.contains("--disk $D"));
    }

    #[test]
    fn every_script_is_valid_shell_and_level_1_allows_each_its_time() {
        let p = plan(1);
        let init = ("guest init".to_string(), GUEST_INIT.to_string());
        for (name, text) in p.iter().chain([&init]) {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", text])
                .output()
                .expect("run sh -n");
            assert!(out.status.success(), "{name}: {out:?}\n{text}");
            assert!(text.contains("timeout "), "{name} has an unbounded step");
        }
        assert_eq!(
            script_allowance(&p),
            2 * DISK_SCRIPT_SECS + 2 * NET_SCRIPT_SECS
        );
        assert_eq!(
            boot::level1_limit(script_allowance(&p)).as_secs(),
            180 + 2 * DISK_SCRIPT_SECS + 2 * NET_SCRIPT_SECS
        );
    }

    #[test]
    fn the_section_gives_ratios_and_says_why_not() {
        let a = Measured {
            vmm: 0,
            read_mb_s: Some(200.0),
            tcp_mbit_s: vec![("guest-host".into(), 900.0)],
            ..Measured::default()
        };
        let b = Measured {
            vmm: 1,
            read_mb_s: Some(100.0),
            tcp_mbit_s: vec![("guest-host".into(), 600.0)],
            ..Measured::default()
        };
        let md = markdown(&[a, b], 1, None);
        assert!(
            md.contains("| disk: sequential read, MB/s | 200.0 | 100.0 | 2.00x |"),
            "{md}"
        );
        assert!(
            md.contains("| net host to guest: TCP, Mbit/s | 900 | 600 | 1.50x |"),
            "{md}"
        );
        assert!(markdown(&[], 1, Some("no kvm")).contains("Not measured: no kvm."));
        assert!(!md.contains("No path was measured."), "{md}");
        assert!(markdown(&[Measured::default()], 1, None).contains("No path was measured."));
    }

    #[test]
    fn every_level_1_path_is_a_row_and_a_bar_of_tinyvmms_medians() {
        let m = |vmm, tcp: &[(&str, f64)]| Measured {
            vmm,
            rtt_ms: vec![("guest-host".into(), 2.0), ("loopback".into(), 0.1)],
            tcp_mbit_s: tcp.iter().map(|(p, v)| (p.to_string(), *v)).collect(),
            ..Measured::default()
        };
        let ms = [
            m(0, &[("loopback", 1000.0), ("guest-to-host", 100.0)]),
            m(0, &[("loopback", 3000.0), ("guest-to-host", 300.0)]),
            // QEMU's guests are not in the level-1 table or the chart.
            m(1, &[("guest-to-host", 5.0)]),
        ];
        let md = markdown(&ms, 2, None);
        assert!(md.contains("![TCP throughput per path in level 1](docs/net.svg)"));
        assert!(
            md.contains("| loopback (level 1, one namespace) | 0.100 | 2000 | 1.00x |"),
            "{md}"
        );
        assert!(
            md.contains("| VM to level 1, tap | 2.000 | 200 | 0.10x |"),
            "{md}"
        );
        assert!(md.contains("| VM to VM, two taps on the bridge | - | - | - |"));
        let bars = net_bars(&ms);
        let got: Vec<(&str, &str, f64)> = bars
            .iter()
            .map(|b| (b.label.as_str(), b.approach, b.ms))
            .collect();
        assert_eq!(
            got,
            [
                ("loopback (level 1, one namespace)", "process", 2000.0),
                ("VM to level 1, tap", "vm", 200.0)
            ]
        );
        // Only tinyvmm's rounds measure the paths without a VM, once each.
        let p = plan(1);
        assert!(
            p[1].1.contains("dev.tcp container-container") && p[1].1.contains("dev.tcp loopback")
        );
        assert!(!p[3].1.contains("container-container") && !p[3].1.contains("loopback"));
    }
}
