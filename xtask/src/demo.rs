//! `cargo xtask demo [--json]`: the project's front door. It runs a container (cgctl + unshare-rs +
//! pivot), a tinyvmm guest, a Linux kernel under QEMU (when `cargo xtask kernel` fetched one) and a
//! plain process on this machine, shows what each sees from inside, and measures them side by
//! side, so that "a container is a process in namespaces, a VM divides the hardware" comes with
//! numbers instead of words; last, the network between containers (round trip and TCP, as the
//! bench measures it).

use crate::measure::{self, Run};
use crate::release::{build_release, DEMO_TOOLS};
use crate::{deps, rootfs, util};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Measured repetitions per row, after the live run that prints.
const REPS: usize = 7;
/// A hang guard for each run, not a timing: a loaded machine must not fail the demo (a Linux
/// boot under TCG takes seconds idle, several times that with two cores busy).
const LIMIT: Duration = testcaps::HANG_GUARD;
/// The container's memory limit and the VM's guest memory: the same 64 MiB, two meanings.
const MEMORY: &str = "64M";
const MEMORY_BYTES: u64 = 64 << 20;
const PIDS: &str = "64";
const HOSTNAME: &str = "microtools-demo";
/// What runs inside the container and the plain process: the same questions, asked from inside.
/// `$1` is the directory holding the memory cgroup's interface files as this process sees them.
const PROBE: &str = r#"echo "pid: $$"
echo "hostname: $(hostname)"
echo "mounts: $(wc -l < /proc/self/mountinfo)"
echo "memory limit: $(cat "$1/memory.limit_in_bytes" 2>/dev/null || cat "$1/memory.max" 2>/dev/null || echo unknown)"
echo "kernel: $(uname -r)"
awk '/^(CapEff|CapBnd|NoNewPrivs|Seccomp):/ { print $1 " " $2 }' /proc/self/status
"#;

/// Where the container's setpriv-rs is bound inside the rootfs (as scripts/container.sh does).
const SETPRIV_INSIDE: &str = "/.microtools/setpriv-rs";

/// Parsed command line.
#[derive(Debug, Default)]
struct Options {
    json: bool,
    /// Use tools already built here instead of building release binaries (tests use target/debug).
    bin_dir: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => o.json = true,
            "--bin-dir" => {
                o.bin_dir = Some(PathBuf::from(
                    it.next().ok_or("--bin-dir needs a directory")?,
                ))
            }
            s if s.starts_with("--bin-dir=") => {
                o.bin_dir = Some(PathBuf::from(&s["--bin-dir=".len()..]))
            }
            other => {
                return Err(format!(
                    "demo: unexpected argument '{other}' (usage: cargo xtask demo [--json] [--bin-dir DIR])"
                ))
            }
        }
    }
    Ok(o)
}

/// One approach's line in the table.
#[derive(Debug)]
struct Row {
    name: &'static str,
    label: String,
    command: String,
    measured_command: String,
    unavailable: Option<String>,
    inside: Vec<(String, String)>,
    live_output: String,
    times_ms: Vec<f64>,
    rss_kib: Vec<u64>,
    reserved_bytes: u64,
    reserved: String,
    kernel: &'static str,
    kernel_detail: String,
    isolation: Vec<String>,
    exit_code: Option<i32>,
    exit: String,
    extra: Value,
    /// Why an optional row did not run (not a failure): the Linux VM without a guest kernel.
    skipped: Option<String>,
    /// Measured repetitions after the live run.
    reps: usize,
}

impl Row {
    fn new(name: &'static str, label: &str) -> Row {
        Row {
            name,
            label: label.to_string(),
            command: String::new(),
            measured_command: String::new(),
            unavailable: None,
            inside: Vec::new(),
            live_output: String::new(),
            times_ms: Vec::new(),
            rss_kib: Vec::new(),
            reserved_bytes: 0,
            reserved: String::new(),
            kernel: "shared",
            kernel_detail: String::new(),
            isolation: Vec::new(),
            exit_code: None,
            exit: String::new(),
            extra: Value::Null,
            skipped: None,
            reps: REPS,
        }
    }

    fn ran(&self) -> bool {
        self.unavailable.is_none()
    }

    fn median_ms(&self) -> f64 {
        measure::stats(&self.times_ms).0
    }

    fn peak_rss_kib(&self) -> u64 {
        self.rss_kib.iter().copied().max().unwrap_or(0)
    }

    fn to_json(&self) -> Value {
        let (median, min, max) = measure::stats(&self.times_ms);
        let inside: serde_json::Map<String, Value> = self
            .inside
            .iter()
            .map(|(k, v)| (k.replace(' ', "_"), Value::String(v.clone())))
            .collect();
        json!({
            "name": self.name,
            "label": self.label,
            "ran": self.ran(),
            "unavailable": self.unavailable,
            "skipped": self.skipped,
            "command": self.command,
            "measured_command": self.measured_command,
            "inside": inside,
            "output": self.live_output,
            "repetitions": self.times_ms.len(),
            "start_to_exit_ms": {"median": median, "min": min, "max": max},
            "peak_rss_kib": self.peak_rss_kib(),
            "reserved_bytes": self.reserved_bytes,
            "reserved": self.reserved,
            "kernel": self.kernel,
            "kernel_detail": self.kernel_detail,
            "isolation": self.isolation,
            "exit_status": self.exit_code,
            "exit": self.exit,
            "details": self.extra,
        })
    }
}

/// Runs the demo; an error only for a broken set-up, otherwise rows say what did not run.
pub fn run(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("xtask demo: not root: the container and its cgroup need root; those rows will say why they failed");
    }
    let rootfs = match std::env::var_os("MICROTOOLS_ROOTFS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => rootfs::default_dir(),
    };
    // With --json, stdout carries the one JSON object only: what set-up's programs print
    // (apt-get, cargo, the kernel fetch) goes to stderr.
    let saved = if opts.json { stdout_to_stderr() } else { None };
    let setup = setup(&opts, &rootfs);
    if let Some(fd) = saved {
        restore_stdout(fd);
    }
    let (bin_dir, missing) = setup?;
    let say = |line: &str| {
        if opts.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };

    say("\n== 1. a container: cgroup limits + namespaces + its own root filesystem");
    let container = container_row(&bin_dir, &rootfs, &missing, &say);
    say("\n== 2. a virtual machine: tinyvmm's embedded guest on KVM");
    let vm = vm_row(&bin_dir, &missing, &say);
    say("\n== 3. a virtual machine with its own Linux kernel: QEMU, CPU emulated in software");
    let linux = linux_row(&rootfs, &say);
    say("\n== 4. a virtual machine with its own Linux kernel: tinyvmm on KVM");
    let linux_tinyvmm = linux_tinyvmm_row(&bin_dir, &rootfs, &missing, &say);
    say("\n== 5. a plain process, the baseline");
    let process = process_row(&say);
    say("\n== 6. the network between containers: netwire's veth pairs and bridge, loopback");
    let network = network(&bin_dir, &say);
    let rows = [process, container, vm, linux, linux_tinyvmm];
    let verdict = verdict(&rows);

    if opts.json {
        let out = json!({
            "machine": machine(),
            "repetitions": REPS,
            "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
            "network": network,
            "verdict": verdict,
        });
        println!("{out}");
    } else {
        println!(
            "\n== side by side, measured on this run: start to exit of /bin/true in the process and the container, of the whole guest in the VMs; median of {REPS} (the Linux VM: 2), min-max\n"
        );
        print!("{}", table(&rows));
        println!("\n{verdict}");
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.skipped.is_none() && (!r.ran() || r.exit_code != Some(0)))
        .map(|r| {
            format!(
                "{}: {}",
                r.name,
                r.unavailable
                    .clone()
                    .unwrap_or_else(|| format!("exit {}", r.exit))
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("demo: not every row ran: {}", failed.join("; ")))
    }
}

/// Round trip (busybox ping) and TCP throughput (iperf3) container to container and over
/// loopback, measured as `cargo xtask bench` does (its quick settings), in a sandbox of new
/// namespaces: a JSON array of the paths, or an object saying why not. The VM paths need a
/// Linux guest, which this host's KVM cannot boot: the bench measures them in the nested lane.
fn network(bin: &Path, say: &dyn Fn(&str)) -> Value {
    let work = util::target_dir().join("demo");
    match crate::bench::net::measure(bin, &work, true) {
        Ok(rows) => {
            for r in &rows {
                let f = |v: Option<f64>, unit: &str| {
                    v.map_or("not measured".to_string(), |x| format!("{x:.3} {unit}"))
                };
                say(&format!(
                    "{}: round trip {}, TCP {}",
                    r.path,
                    f(r.rtt_ms, "ms"),
                    f(r.gbit_s, "Gbit/s")
                ));
            }
            say("VM to VM and VM to container (a tap and virtio-net) need a Linux guest: `cargo xtask bench` measures them in the hardware-KVM lane, beside these (BENCHMARKS.md, docs/net.svg)");
            Value::Array(
                rows.iter()
                    .map(|r| json!({"path": r.path, "rtt_ms": r.rtt_ms, "tcp_gbit_s": r.gbit_s}))
                    .collect(),
            )
        }
        Err(e) => {
            say(&format!("network not measured: {e}"));
            json!({ "unavailable": e })
        }
    }
}

/// Points fd 1 at stderr; returns a copy of the old stdout to restore.
fn stdout_to_stderr() -> Option<i32> {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: dup and dup2 on the process's own standard descriptors; no Rust object owns fd 1.
    unsafe {
        let saved = libc::dup(1);
        if saved < 0 || libc::dup2(2, 1) < 0 {
            if saved >= 0 {
                libc::close(saved);
            }
            return None;
        }
        Some(saved)
    }
}

/// Undoes [`stdout_to_stderr`].
fn restore_stdout(saved: i32) {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: `saved` is the descriptor stdout_to_stderr duplicated and nothing else closed.
    unsafe {
        libc::dup2(saved, 1);
        libc::close(saved);
    }
}

/// Packages, rootfs and release builds of the tools; returns where the binaries are and which
/// tools are missing with why.
fn setup(opts: &Options, rootfs: &Path) -> Result<(PathBuf, Vec<(String, String)>), String> {
    if opts.bin_dir.is_none() {
        if let Err(e) = deps::run(&[]) {
            eprintln!("xtask demo: warning: installing packages failed: {e}");
        }
    }
    rootfs::ensure(rootfs)?;
    // The Linux VM row boots Debian's kernel; without it that row says why and the rest runs.
    if let Err(e) = crate::kernel::ensure() {
        eprintln!("xtask demo: warning: fetching the guest kernel failed: {e}");
    }
    let bin_dir = match &opts.bin_dir {
        Some(d) => d.clone(),
        None => {
            let bin = build_release();
            // The network step wires with netwire, which is not among the demo's rows' tools.
            if let Err(e) = crate::release::build_release_of(&["netwire"]) {
                eprintln!("xtask demo: warning: netwire does not build now: {e}");
            }
            bin
        }
    };
    let missing = DEMO_TOOLS
        .iter()
        .filter(|t| !bin_dir.join(t).is_file())
        .map(|t| {
            (
                t.to_string(),
                format!("{} is not built", bin_dir.join(t).display()),
            )
        })
        .collect();
    Ok((bin_dir, missing))
}

fn unavailable_tool(missing: &[(String, String)], needed: &[&str]) -> Option<String> {
    missing
        .iter()
        .find(|(t, _)| needed.contains(&t.as_str()))
        .map(|(_, why)| why.clone())
}

/// The live run (number 0, which prints what it sees), then `REPS` measured ones; `make` builds
/// the command for run number `i`: the measured runs start the same thing with `/bin/true` as the
/// payload (the VM its embedded guest), so the numbers are the cost of starting and finishing,
/// not of the probe's own processes. The container needs a fresh cgroup name each time.
fn repeat(
    row: &mut Row,
    make: &mut dyn FnMut(usize) -> Command,
    after: &mut dyn FnMut(usize),
    say: &dyn Fn(&str),
) -> Option<Run> {
    let mut first = make(0);
    row.command = util::describe(&first);
    let live = measure::run(&mut first, LIMIT);
    after(0);
    let live = match live {
        Ok(r) => r,
        Err(e) => {
            row.unavailable = Some(e);
            return None;
        }
    };
    row.exit_code = live.code;
    row.exit = live.status_text();
    row.live_output = util::strip_escapes(&live.stdout);
    for line in row.live_output.lines().filter(|l| !l.trim().is_empty()) {
        match line.split_once("memory limit: ") {
            Some((_, v)) => say(&format!("   | memory limit: {}", pretty_limit(v.trim()))),
            None => say(&format!("   | {line}")),
        }
    }
    if !live.ok() {
        row.unavailable = Some(format!("exit {}: {}", live.status_text(), live.why()));
        say(&format!(
            "   unavailable: {}",
            row.unavailable.as_deref().unwrap_or("")
        ));
        return Some(live);
    }
    row.inside = parse_inside(&row.live_output);
    for i in 1..=row.reps {
        let mut cmd = make(i);
        row.measured_command = util::describe(&cmd);
        match measure::run(&mut cmd, LIMIT) {
            Ok(r) if r.ok() => {
                row.times_ms.push(r.wall.as_secs_f64() * 1e3);
            }
            Ok(r) => {
                row.exit = r.status_text();
                row.exit_code = r.code;
                row.unavailable = Some(format!(
                    "repetition {i} ended with {}: {}",
                    r.status_text(),
                    r.why()
                ));
            }
            Err(e) => row.unavailable = Some(e),
        }
        after(i);
        if row.unavailable.is_some() {
            return Some(live);
        }
    }
    // One more start of the measured command, under GNU time, for its peak RSS.
    let rss = measure::peak_rss_kib(&make(row.reps + 1), LIMIT);
    after(row.reps + 1);
    row.rss_kib.extend(rss);
    Some(live)
}

/// `key: value` lines printed from inside.
fn parse_inside(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| {
            let v = v.trim();
            let v = if k == "memory limit" {
                pretty_limit(v)
            } else {
                v.to_string()
            };
            (k.trim().to_string(), v)
        })
        .collect()
}

/// A cgroup memory limit as a person reads it: `64 MiB`, or `none` for the kernel's "max".
fn pretty_limit(v: &str) -> String {
    match v.parse::<u64>() {
        Ok(b) if b >= 1 << 60 => "none".to_string(),
        Ok(b) => mib(b),
        Err(_) if v == "max" => "none".to_string(),
        Err(_) => v.to_string(),
    }
}

fn mib(bytes: u64) -> String {
    let m = bytes as f64 / (1u64 << 20) as f64;
    if m.fract() == 0.0 {
        format!("{m:.0} MiB")
    } else {
        format!("{m:.1} MiB")
    }
}

fn container_row(
    bin: &Path,
    rootfs: &Path,
    missing: &[(String, String)],
    say: &dyn Fn(&str),
) -> Row {
    let mut row = Row::new("container", "container");
    row.kernel = "shared";
    row.reserved = format!(
        "nothing ({} MiB is a limit, charged as used)",
        MEMORY_BYTES >> 20
    );
    row.isolation = [
        "namespaces: pid mnt uts ipc net cgroup",
        "cgroup limits: memory 64M, pids 64",
        "own root filesystem (pivot_root)",
    ]
    .map(String::from)
    .to_vec();
    if let Some(why) = unavailable_tool(missing, &["cgctl", "unshare-rs", "pivot", "setpriv-rs"]) {
        row.unavailable = Some(why);
        say(&format!(
            "   unavailable: {}",
            row.unavailable.as_deref().unwrap_or("")
        ));
        return row;
    }
    let memcg = memory_cgroup_root();
    let base = format!("microtools-demo-{}", std::process::id());
    let group = |i: usize| format!("{base}-{i}");
    let mut make = |i: usize| {
        let name = group(i);
        let mut c = Command::new(bin.join("cgctl"));
        c.args([
            "run", "--name", &name, "--memory", MEMORY, "--pids", PIDS, "--",
        ]);
        // The README's composition as written; --mount-proc is redundant under pivot (which
        // mounts the container's own /proc in the new root) but is what a user types.
        c.arg(bin.join("unshare-rs"))
            .args(["-fpmuinC", "--mount-proc", "--"]);
        c.arg(bin.join("pivot"))
            .args(["--reaper", "--hostname", HOSTNAME]);
        // setpriv-rs, bound in read-only (with its libraries when it is not the static build),
        // drops what an engine drops before the probe runs.
        let setpriv = bin.join("setpriv-rs");
        c.arg("--ro-bind")
            .arg(format!("{}:{SETPRIV_INSIDE}", setpriv.display()));
        for lib in shared_libraries(&setpriv) {
            c.arg("--ro-bind").arg(lib);
        }
        // The container's own memory cgroup, read-only at /mnt, so that it can read its limit
        // without mounting a cgroup filesystem.
        if let Some(root) = &memcg {
            c.arg("--ro-bind")
                .arg(format!("{}:/mnt", root.join(&name).display()));
        }
        c.arg(rootfs)
            .args([SETPRIV_INSIDE, "--default-container", "--"]);
        if i == 0 {
            c.args(["/bin/sh", "-c", PROBE, "sh", "/mnt"]);
        } else {
            c.arg("/bin/true");
        }
        c
    };
    let mut after = |i: usize| {
        let name = group(i);
        if remove_group(&name) {
            eprintln!("xtask demo: warning: cgroup {name} was left behind by cgctl; removed it");
        }
    };
    repeat(&mut row, &mut make, &mut after, say);
    if let Some(p) = privileges(&row.inside) {
        say(&format!("   privileges inside: {p}"));
        row.isolation.push(p);
    }
    row.kernel_detail = format!(
        "shared: the host's {}",
        row.inside
            .iter()
            .find(|(k, _)| k == "kernel")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(host_kernel)
    );
    row
}

/// The libraries `ldd` lists for a dynamically linked binary (none for the static build).
fn shared_libraries(bin: &Path) -> Vec<String> {
    let Ok(out) = Command::new("ldd").arg(bin).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| match l.split_once("=> ") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => l.split_whitespace().next(),
        })
        .filter(|p| p.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// The capability names of a `/proc/PID/status` mask (`CapEff: 00000000800405fb`), lower case
/// without `cap_`, or None when it is not hex.
pub fn cap_names(mask: &str) -> Option<Vec<String>> {
    let bits = u64::from_str_radix(mask.trim(), 16).ok()?;
    let mut names: Vec<(u8, String)> = caps::all()
        .into_iter()
        .filter(|c| c.index() < 64 && bits & (1u64 << c.index()) != 0)
        .map(|c| {
            let n = c.to_string().to_lowercase();
            (c.index(), n.trim_start_matches("cap_").to_string())
        })
        .collect();
    names.sort();
    let known: u64 = names.iter().map(|(i, _)| 1u64 << i).sum();
    if known != bits {
        names.push((64, format!("unnamed bits {:#x}", bits & !known)));
    }
    Some(names.into_iter().map(|(_, n)| n).collect())
}

/// What the probe read from `/proc/self/status` inside, as one line: the effective and bounding
/// capabilities, no_new_privs and the seccomp mode.
pub fn privileges(inside: &[(String, String)]) -> Option<String> {
    let get = |k: &str| {
        inside
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let (eff, bnd) = (cap_names(get("CapEff")?)?, cap_names(get("CapBnd")?)?);
    let list = |v: &[String]| match v.len() {
        0 => "none".to_string(),
        n if n == caps::all().len() => format!("all {n}"),
        n => format!("{n}: {}", v.join(" ")),
    };
    let bounding = if bnd == eff {
        "the same".to_string()
    } else {
        list(&bnd)
    };
    let nnp = match get("NoNewPrivs") {
        Some("1") => "no_new_privs",
        _ => "no no_new_privs",
    };
    let seccomp = match get("Seccomp") {
        Some("2") => "a seccomp filter",
        Some("1") => "seccomp strict mode",
        _ => "no seccomp filter",
    };
    Some(format!(
        "capabilities {} (bounding set {bounding}), {nnp}, {seccomp}",
        list(&eff)
    ))
}

fn vm_row(bin: &Path, missing: &[(String, String)], say: &dyn Fn(&str)) -> Row {
    let mut row = Row::new("vm", "VM (embedded guest)");
    row.kernel = "own";
    row.reserved_bytes = MEMORY_BYTES;
    row.reserved = format!(
        "{} MiB of guest RAM carved out (mapped lazily)",
        MEMORY_BYTES >> 20
    );
    row.isolation = [
        "hardware virtualization (KVM)",
        "own guest physical memory",
        "own virtual CPU",
        "devices emulated by the VMM (UART, status port)",
    ]
    .map(String::from)
    .to_vec();
    row.kernel_detail = format!(
        "own: tinyvmm's embedded guest, not Linux ({})",
        no_kernel_reason()
    );
    if let Some(why) = unavailable_tool(missing, &["tinyvmm"]) {
        row.unavailable = Some(why);
        say(&format!(
            "   unavailable: {}",
            row.unavailable.as_deref().unwrap_or("")
        ));
        return row;
    }
    say(&format!(
        "   the embedded guest, not a Linux kernel: {}",
        no_kernel_reason()
    ));
    let report =
        std::env::temp_dir().join(format!("microtools-demo-{}-vm.json", std::process::id()));
    let mut make = |_| {
        let mut c = Command::new(bin.join("tinyvmm"));
        c.args(["run", "--mem", MEMORY, "--report"]).arg(&report);
        c
    };
    repeat(&mut row, &mut make, &mut |_| {}, say);
    // The last measured run's report: how the VM's time splits into create, load, run, teardown.
    if let Some(v) = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    {
        // The guest memory tinyvmm says it gave the guest, rather than what we asked for.
        if let Some(mem) = v["mem"].as_u64().filter(|m| *m > 0) {
            row.reserved_bytes = mem;
            row.reserved = format!("{} of guest RAM carved out (mapped lazily)", mib(mem));
        }
        row.extra = json!({ "report": v });
    }
    let _ = std::fs::remove_file(&report);
    row
}

/// Guest memory of the Linux VM.
const LINUX_MEM_MIB: u64 = 256;

/// PID 1 of the Linux guest: the same questions as the container's probe, then power off.
const LINUX_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo
echo "pid: $$"
echo "hostname: $(/bin/busybox hostname)"
echo "mounts: $(/bin/busybox wc -l < /proc/self/mountinfo)"
echo "memory: $(/bin/busybox awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo) (MemTotal)"
echo "cpus: $(/bin/busybox nproc)"
echo "kernel: $(/bin/busybox uname -r)"
/bin/busybox poweroff -f
"#;

/// A VM that boots a real Linux kernel (the one `cargo xtask kernel` fetches) with a busybox
/// initramfs under QEMU's software CPU emulation: KVM on this kind of host cannot run a stock
/// kernel, and TCG can. Optional: without a kernel the row says so and is not a failure.
fn linux_row(rootfs: &Path, say: &dyn Fn(&str)) -> Row {
    let mut row = Row::new("linux-vm", "VM (Linux, QEMU TCG)");
    row.kernel = "own";
    row.reps = 2;
    row.reserved_bytes = LINUX_MEM_MIB << 20;
    row.reserved = format!("{LINUX_MEM_MIB} MiB of guest RAM (QEMU -m {LINUX_MEM_MIB})");
    row.isolation = [
        "a whole machine emulated by QEMU (TCG): CPU, memory, devices",
        "own Linux kernel",
    ]
    .map(String::from)
    .to_vec();
    let kernel = crate::kernel::image();
    let skip = |row: &mut Row, why: String| {
        say(&format!("   skipped: {why}"));
        row.unavailable = Some(why.clone());
        row.skipped = Some(why);
    };
    if !kernel.is_file() {
        skip(
            &mut row,
            format!(
                "no guest kernel at {} (`cargo xtask kernel` fetches Debian's)",
                kernel.display()
            ),
        );
        return row;
    }
    let Some(qemu) = conventions::exec::find_in_path("qemu-system-x86_64") else {
        skip(
            &mut row,
            "qemu-system-x86_64 is not installed (cargo xtask deps)".into(),
        );
        return row;
    };
    let initrd = std::env::temp_dir().join(format!("microtools-demo-{}.cpio", std::process::id()));
    if let Err(e) = write_linux_initramfs(rootfs, &initrd) {
        row.unavailable = Some(e);
        return row;
    }
    row.kernel_detail = format!(
        "own: {} booted by QEMU with the CPU emulated in software (TCG)",
        kernel.display()
    );
    let mut make = |_| linux_qemu(&qemu, &kernel, &initrd);
    repeat(&mut row, &mut make, &mut |_| {}, say);
    let _ = std::fs::remove_file(&initrd);
    if let Some((_, k)) = row.inside.iter().find(|(k, _)| k == "kernel") {
        row.kernel_detail = format!(
            "own: Linux {k} (the host runs {}), CPU emulated by QEMU (TCG)",
            host_kernel()
        );
    }
    row
}

/// Linux booted by tinyvmm. On a host whose KVM can boot Linux, right here; on this project's
/// PVM host (software virtualization, which cannot), inside the hardware-KVM lane's level 1: a
/// QEMU TCG guest with nested kvm_amd, where the row's times are measured (and which it says).
fn linux_tinyvmm_row(
    bin: &Path,
    rootfs: &Path,
    missing: &[(String, String)],
    say: &dyn Fn(&str),
) -> Row {
    let mut row = Row::new("linux-tinyvmm", "VM (Linux, tinyvmm)");
    row.kernel = "own";
    row.reps = 2;
    row.reserved_bytes = 256 << 20;
    row.reserved = "256 MiB of guest RAM (tinyvmm --mem 256M, mapped lazily)".to_string();
    row.isolation = [
        "hardware virtualization (KVM)",
        "own Linux kernel",
        "devices emulated by tinyvmm (UART, status port, PIT, interrupt controllers)",
    ]
    .map(String::from)
    .to_vec();
    let skip = |row: &mut Row, why: String| {
        say(&format!("   skipped: {why}"));
        row.unavailable = Some(why.clone());
        row.skipped = Some(why);
    };
    if let Some(why) = unavailable_tool(missing, &["tinyvmm"]) {
        row.unavailable = Some(why);
        return row;
    }
    if !crate::kernel::image().is_file() {
        skip(
            &mut row,
            format!("no guest kernel at {}", crate::kernel::image().display()),
        );
        return row;
    }
    if testcaps::check(testcaps::Cap::HwKvm).is_ok() {
        let initrd =
            std::env::temp_dir().join(format!("microtools-demo-{}-tvmm.cpio", std::process::id()));
        let image = crate::nested::exit_helper_near(bin)
            .and_then(|h| std::fs::read(&h).map_err(|e| format!("reading {}: {e}", h.display())))
            .and_then(|h| crate::nested::probe_initramfs(rootfs, h));
        match image.and_then(|a| {
            std::fs::write(&initrd, a.to_bytes()).map_err(|e| format!("writing initrd: {e}"))
        }) {
            Ok(()) => {}
            Err(e) => {
                row.unavailable = Some(e);
                return row;
            }
        }
        row.kernel_detail = "own: Linux booted by tinyvmm on this host's KVM".to_string();
        let kernel = crate::kernel::image();
        let mut make = |_| {
            let mut c = Command::new(bin.join("tinyvmm"));
            c.args(["run", "--mem", "256M", "--kernel"])
                .arg(&kernel)
                .arg("--initrd")
                .arg(&initrd)
                .args(["--append", "quiet lane.status=0"]);
            c
        };
        repeat(&mut row, &mut make, &mut |_| {}, say);
        let _ = std::fs::remove_file(&initrd);
        return row;
    }
    if conventions::exec::find_in_path("qemu-system-x86_64").is_none() {
        skip(
            &mut row,
            "this host's KVM cannot boot Linux and qemu-system-x86_64 (for the nested lane) is not installed".into(),
        );
        return row;
    }
    say("   this host's KVM is PVM (software), which cannot boot Linux: tinyvmm runs inside a QEMU (TCG) guest with nested KVM, the hardware-KVM lane's level 1, and is timed there");
    row.label = "VM (Linux, tinyvmm in nested KVM)".to_string();
    row.command = format!(
        "inside cargo xtask nested's level 1: {} run --mem 256M --kernel vmlinuz --initrd probe.cpio",
        bin.join("tinyvmm").display()
    );
    row.measured_command = row.command.clone();
    match crate::nested::demo_boots(rootfs, bin, row.reps + 1) {
        Err(e) => {
            row.unavailable = Some(e);
            say(&format!(
                "   unavailable: {}",
                row.unavailable.as_deref().unwrap_or("")
            ));
        }
        Ok(runs) => {
            let Some(first) = runs.first() else {
                row.unavailable = Some("level 1 reported no run".to_string());
                return row;
            };
            row.exit_code = first.status;
            row.exit = first
                .status
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into());
            row.live_output = util::strip_escapes(&first.output.join("\n"));
            for line in row
                .live_output
                .lines()
                .filter(|l| l.contains(": ") && !l.starts_with('['))
            {
                say(&format!("   | {line}"));
            }
            row.inside = parse_inside(&row.live_output);
            for r in &runs[1..] {
                match (
                    r.status,
                    r.took.as_deref().and_then(|t| t.strip_suffix('s')),
                ) {
                    (Some(0), Some(t)) => {
                        row.times_ms.extend(t.parse::<f64>().ok().map(|s| s * 1e3))
                    }
                    _ => {
                        row.unavailable = Some(format!("a measured run ended with {:?}", r.status));
                    }
                }
            }
            if row.exit_code != Some(0) {
                row.unavailable = Some(format!("exit {}", row.exit));
            }
            row.kernel_detail = format!(
                "own: Linux {} booted by tinyvmm inside QEMU (TCG) with nested KVM, because this host's KVM (PVM) cannot boot Linux; times measured in that guest",
                row.inside.iter().find(|(k, _)| k == "kernel").map(|(_, v)| v.as_str()).unwrap_or("?")
            );
            row.extra = json!({ "where": "nested: level 1 of cargo xtask nested (QEMU TCG, kvm_amd nested=1)" });
        }
    }
    row
}

/// Writes the Linux guest's initramfs: the rootfs's static busybox and [`LINUX_INIT`].
pub fn write_linux_initramfs(rootfs: &Path, path: &Path) -> Result<(), String> {
    let mut a = crate::cpio::Archive::new();
    a.dir("/proc", 0o755);
    a.dir("/dev", 0o755);
    a.chardev("/dev/console", 0o600, 5, 1);
    let bb = std::fs::read(rootfs.join("bin/busybox"))
        .map_err(|e| format!("reading {}: {e}", rootfs.join("bin/busybox").display()))?;
    a.file("/bin/busybox", 0o755, bb);
    a.file("/init", 0o755, LINUX_INIT.as_bytes().to_vec());
    std::fs::write(path, a.to_bytes()).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// QEMU booting `kernel` with `initrd`, the CPU emulated in software, exiting at power-off.
pub fn linux_qemu(qemu: &Path, kernel: &Path, initrd: &Path) -> Command {
    crate::vmtest::qemu_tcg(
        qemu,
        kernel,
        initrd,
        LINUX_MEM_MIB,
        "console=ttyS0 reboot=k panic=-1 quiet loglevel=0",
    )
}

fn process_row(say: &dyn Fn(&str)) -> Row {
    let mut row = Row::new("process", "plain process");
    row.kernel = "shared";
    row.kernel_detail = format!("the host's {}", host_kernel());
    row.reserved = "nothing".to_string();
    row.isolation = vec!["none (the host's namespaces, cgroup and filesystem)".to_string()];
    let memdir = own_memory_cgroup()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/nonexistent".to_string());
    let mut make = |i| {
        if i == 0 {
            let mut c = Command::new("/bin/sh");
            c.args(["-c", PROBE, "sh", &memdir]);
            c
        } else {
            Command::new("/bin/true")
        }
    };
    repeat(&mut row, &mut make, &mut |_| {}, say);
    if let Some(p) = privileges(&row.inside) {
        row.isolation.push(p);
    }
    row
}

/// Why the VM row runs the embedded guest rather than a Linux kernel.
fn no_kernel_reason() -> String {
    let kernel = match std::env::var_os("MICROTOOLS_KERNEL") {
        Some(k) if !k.is_empty() => PathBuf::from(k),
        _ => util::target_dir().join("kernel/vmlinuz"),
    };
    if kernel.is_file() {
        "tinyvmm cannot boot a stock Linux kernel on this host's KVM, which emulates guest kernel code and lacks some instructions; row 3 boots it under QEMU instead".to_string()
    } else {
        format!("no guest kernel at {}", kernel.display())
    }
}

/// The one line under the table: what the numbers say about "a container starts in seconds, a
/// VM in minutes".
fn verdict(rows: &[Row]) -> String {
    let get = |n: &str| {
        rows.iter()
            .find(|r| r.name == n && r.ran() && !r.times_ms.is_empty())
    };
    let p = get("process").map(Row::median_ms);
    let c = get("container").map(Row::median_ms);
    let v = get("vm").map(Row::median_ms);
    let linux = get("linux-vm").map(Row::median_ms);
    match (p, c, v) {
        (Some(p), Some(c), Some(v)) => {
            let kernel = match linux {
                Some(l) => format!(
                    "a whole Linux kernel booted to its init and powered off in {:.1} s even with its CPU emulated in software",
                    l / 1e3
                ),
                None => "this VM ran a tiny guest, not a kernel".to_string(),
            };
            format!(
                "Measured here: a container starts and exits in {c:.1} ms ({:.1}x a plain process), a VM in {v:.1} ms ({:.1}x), and {kernel}: not minutes; what takes seconds to minutes is booting a distribution's services (or firmware on real hardware), not namespaces or KVM.",
                c / p,
                v / p
            )
        }
        _ => {
            let missing: Vec<&str> = rows.iter().filter(|r| !r.ran()).map(|r| r.name).collect();
            format!(
                "Not measured in full ({} did not run), so this run says nothing yet about \"a container starts in seconds, a VM in minutes\".",
                missing.join(" and ")
            )
        }
    }
}

fn table(rows: &[Row]) -> String {
    let header = [
        "approach",
        "start to exit",
        "peak RSS",
        "reserved up front",
        "kernel",
        "isolation",
        "exit",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        if let Some(why) = &r.unavailable {
            let what = if r.skipped.is_some() {
                "skipped"
            } else {
                "unavailable"
            };
            lines.push(vec![
                r.label.clone(),
                format!("{what}: {why}"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                r.exit.clone(),
            ]);
            continue;
        }
        let (m, lo, hi) = measure::stats(&r.times_ms);
        lines.push(vec![
            r.label.clone(),
            if m >= 1000.0 {
                format!("{:.2} s ({:.2}-{:.2})", m / 1e3, lo / 1e3, hi / 1e3)
            } else {
                format!("{m:.2} ms ({lo:.2}-{hi:.2})")
            },
            // tinyvmm timed inside the nested lane's guest: GNU time cannot reach it there.
            if r.peak_rss_kib() == 0 {
                "n/a".to_string()
            } else {
                format!("{:.1} MiB", r.peak_rss_kib() as f64 / 1024.0)
            },
            short_reserved(r),
            format!("{} ({})", r.kernel, kernel_release_of(r)),
            short_isolation(r),
            r.exit.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            lines
                .iter()
                .filter(|l| {
                    !(l.len() > 1
                        && (l[1].starts_with("unavailable") || l[1].starts_with("skipped")))
                        || i == 0
                })
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        if l[1].starts_with("unavailable") || l[1].starts_with("skipped") {
            out.push_str(&format!("{:w$}  {}\n", l[0], l[1], w = widths[0]));
            continue;
        }
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn short_reserved(r: &Row) -> String {
    match r.name {
        "vm" | "linux-vm" | "linux-tinyvmm" => format!("{} guest RAM", mib(r.reserved_bytes)),
        "container" => "none (64 MiB limit)".to_string(),
        _ => "none".to_string(),
    }
}

fn short_isolation(r: &Row) -> String {
    match r.name {
        "container" => {
            let nnp = r.inside.iter().any(|(k, v)| k == "NoNewPrivs" && v == "1");
            let filter = r.inside.iter().any(|(k, v)| k == "Seccomp" && v == "2");
            let caps = r
                .inside
                .iter()
                .find(|(k, _)| k == "CapEff")
                .and_then(|(_, v)| cap_names(v))
                .map(|n| format!(", {} caps", n.len()))
                .unwrap_or_default();
            format!(
                "6 namespaces, cgroup, pivot_root{caps}{}",
                match (nnp, filter) {
                    (true, true) => ", nnp, seccomp",
                    (false, true) => ", seccomp",
                    (true, false) => ", nnp",
                    _ => "",
                }
            )
        }
        "vm" => "KVM: own memory, vCPU, devices".to_string(),
        "linux-vm" => "emulated machine, own kernel".to_string(),
        "linux-tinyvmm" => "KVM: own kernel, memory, vCPU".to_string(),
        _ => "none".to_string(),
    }
}

fn kernel_release_of(r: &Row) -> String {
    match r.name {
        "vm" => "embedded guest".to_string(),
        _ => r
            .inside
            .iter()
            .find(|(k, _)| k == "kernel")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(host_kernel),
    }
}

fn host_kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".to_string())
}

fn machine() -> Value {
    let cpu = util::cpu_model();
    let date = util::output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    json!({
        "kernel": host_kernel(),
        "cpu": cpu,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "date": date,
    })
}

/// Cgroup hierarchies mounted here: (mount point, fstype, super options), from the shared
/// mountinfo parser.
pub fn cgroup_mounts() -> Vec<(PathBuf, String, String)> {
    conventions::mountinfo::cgroup_mounts()
        .into_iter()
        .map(|m| (PathBuf::from(m.mount_point), m.fstype, m.super_options))
        .collect()
}

/// Where the memory controller's hierarchy is mounted: the v1 `memory` hierarchy, else a cgroup2
/// mount that offers `memory`.
fn memory_cgroup_root() -> Option<PathBuf> {
    let mounts = cgroup_mounts();
    mounts
        .iter()
        .find(|(_, t, o)| t == "cgroup" && o.split(',').any(|x| x == "memory"))
        .or_else(|| {
            mounts.iter().find(|(m, t, _)| {
                t == "cgroup2"
                    && std::fs::read_to_string(m.join("cgroup.controllers"))
                        .map(|c| c.split_whitespace().any(|x| x == "memory"))
                        .unwrap_or(false)
            })
        })
        .map(|(m, _, _)| m.clone())
}

/// Our own memory cgroup's directory (the plain process inherits it).
fn own_memory_cgroup() -> Option<PathBuf> {
    let root = memory_cgroup_root()?;
    let v1 = cgroup_mounts()
        .iter()
        .any(|(m, t, _)| *m == root && t == "cgroup");
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let wanted = if v1 {
            ctrls.split(',').any(|c| c == "memory")
        } else {
            ctrls.is_empty()
        };
        wanted.then(|| root.join(path.trim_start_matches('/')))
    })
}

/// Removes the cgroup `name` (ours: the demo made the name) from every hierarchy where it is
/// left, killing what is left in it by PID; true if anything was there.
pub fn remove_group(name: &str) -> bool {
    let mut found = false;
    for (mnt, _, _) in cgroup_mounts() {
        let dir = mnt.join(name);
        if !dir.is_dir() {
            continue;
        }
        found = true;
        for _ in 0..50 {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill with a PID read from a cgroup this demo created.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn privileges_name_the_capabilities_nnp_and_the_filter() {
        let inside = |eff: &str, bnd: &str, nnp: &str, sc: &str| {
            [
                ("CapEff", eff),
                ("CapBnd", bnd),
                ("NoNewPrivs", nnp),
                ("Seccomp", sc),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec()
        };
        assert_eq!(
            privileges(&inside("00000000800405fb", "00000000800405fb", "1", "2")).as_deref(),
            Some(
                "capabilities 11: chown dac_override fowner fsetid kill setgid setuid setpcap \
                 net_bind_service sys_chroot setfcap (bounding set the same), no_new_privs, \
                 a seccomp filter"
            )
        );
        let all = format!("{:016x}", (1u64 << caps::all().len()) - 1);
        assert_eq!(
            privileges(&inside(&all, &all, "0", "0")).as_deref(),
            Some(
                format!(
                    "capabilities all {} (bounding set the same), no no_new_privs, no seccomp filter",
                    caps::all().len()
                )
                .as_str()
            )
        );
        assert_eq!(
            privileges(&inside("0", "0000000000000001", "0", "0")).as_deref(),
            Some("capabilities none (bounding set 1: chown), no no_new_privs, no seccomp filter")
        );
        assert_eq!(privileges(&inside("zz", "0", "0", "0")), None);
        assert_eq!(privileges(&[]), None);
    }

    use super::*;

    #[test]
    fn options() {
        let o = parse(&["--json".into(), "--bin-dir".into(), "/x".into()]).expect("parse");
        assert!(o.json);
        assert_eq!(o.bin_dir, Some(PathBuf::from("/x")));
        assert!(parse(&["--bogus".into()]).is_err());
        assert!(parse(&["--bin-dir".into()]).is_err());
    }

    #[test]
    fn inside_lines() {
        let v = parse_inside("pid: 1\nhostname: h\nmemory limit: 67108864\nnoise\n");
        assert_eq!(
            v,
            vec![
                ("pid".to_string(), "1".to_string()),
                ("hostname".to_string(), "h".to_string()),
                ("memory limit".to_string(), "64 MiB".to_string()),
            ]
        );
        assert_eq!(pretty_limit("9223372036854771712"), "none");
        assert_eq!(pretty_limit("max"), "none");
    }

    #[test]
    fn verdict_names_what_did_not_run() {
        let mut p = Row::new("process", "p");
        p.times_ms = vec![1.0];
        let mut c = Row::new("container", "c");
        c.times_ms = vec![5.0];
        let mut v = Row::new("vm", "v");
        v.unavailable = Some("x".into());
        let rows = [p, c, v];
        assert!(verdict(&rows).contains("vm did not run"));
        let mut v = Row::new("vm", "v");
        v.times_ms = vec![10.0];
        let [p, c, _] = rows;
        let line = verdict(&[p, c, v]);
        assert!(line.contains("5.0 ms (5.0x"), "{line}");
        assert!(line.contains("10.0 ms (10.0x"), "{line}");
    }
}
