//! Issue #25's item (d): Linux under tinyvmm at scale, in the nested lane's level 1 (this host's
//! PVM cannot boot Linux), beside QEMU `-M microvm` in the same run: N guests whose /init
//! powers off at once, one after another and in waves of P at a time; instances per second and
//! p50/p99 start to exit; and [`HELD`] guests that wait, held at once for their memory.

use std::fmt::Write as _;
use std::path::Path;

use super::boot;

/// The section's heading in BENCHMARKS.md.
pub const HEADING: &str = "## Linux guests at scale (nested lane, level 1)";

/// The VMMs: [`boot::VMMS`]' first two rows (tinyvmm, QEMU microvm).
pub const VMMS: usize = 2;

/// (N, at a time) in [`plan`]'s order.
pub const RUNS: [(usize, usize); 3] = [(1, 1), (10, 1), (10, 10)];

/// Level 1's memory: ten 256 MiB guests at once, each touching part of it.
const LEVEL1_MEM_MIB: u64 = 6144;

/// What one script may take in level 1 (ten boots one after another took about a minute).
const SCRIPT_SECS: u64 = 300;

/// The guest's /init: power off at once.
const GUEST_INIT: &str = "#!/bin/sh\npoweroff -f\n";

/// Guests of each VMM held at once for their memory: fewer than the waves' 10, since QEMU's
/// wave of 10 stalls level 1.
pub const HELD: usize = 5;

/// The held guests' /init: a mark on the console, then wait to be killed.
const HELD_INIT: &str = "#!/bin/sh\necho scale.ready\nexec sleep 3600\n";

/// One script holding [`HELD`] guests of VMM `v` at once, each VMM in a cgroup of its own (level
/// 1 is cgroup v2): once every console has the mark (or the guard is up), one `scale.mem` line
/// per VMM (VmRSS, VmPTE, Pss, the RSS of the guest RAM mapping, KiB; the cgroup's
/// memory.current and the kernel's part of it in memory.stat, KiB), then all are killed and
/// their cgroups removed.
pub fn held_script(v: usize) -> String {
    let (name, _, command) = boot::VMMS[v];
    format!(
        "# bench Linux at scale: {name}, {HELD} held at once for their memory\n. /lane/env\n\
         K=/lane/kernels/cloud/vmlinuz\nI=/lane/initrd/held.cpio\nAPPEND='{append}'\n\
         d=/tmp/held.$$\ncg=/sys/fs/cgroup/held.$$\nmkdir -p $d\n\
         echo +memory >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null\n\
         pids=\ni=0\nwhile [ $i -lt {HELD} ]; do\n\
         \x20   mkdir $cg.$i\n\
         \x20   (read -r self _ </proc/self/stat; echo $self >$cg.$i/cgroup.procs; exec {command}) </dev/null >$d/$i 2>&1 &\n\
         \x20   pids=\"$pids $!\"; i=$((i + 1))\n\
         done\n\
         t=0; n=0\n\
         while [ $t -lt {guard} ]; do\n\
         \x20   n=$(grep -l scale.ready $d/* 2>/dev/null | wc -l)\n\
         \x20   [ $n -ge {HELD} ] && break\n\
         \x20   sleep 1; t=$((t + 1))\n\
         done\n\
         echo \"scale.ready $n\"\n\
         i=0\nfor p in $pids; do\n\
         \x20   echo \"scale.mem $(awk '/^VmRSS:/ {{r = $2}} /^VmPTE:/ {{t = $2}} END {{print r + 0, t + 0}}' /proc/$p/status) \
         $(awk '/^Pss:/ {{print $2 + 0}}' /proc/$p/smaps_rollup) \
         $(awk '/^Size:/ {{s = $2}} /^Rss:/ {{if (s >= {kib} && $2 > g) g = $2}} END {{print g + 0}}' /proc/$p/smaps) \
         $(awk '{{print int($1 / 1024)}}' $cg.$i/memory.current) \
         $(awk '/^kernel / {{print int($2 / 1024)}}' $cg.$i/memory.stat)\"\n\
         \x20   i=$((i + 1))\n\
         done\n\
         kill -KILL $pids 2>/dev/null; wait\n\
         i=0; while [ $i -lt {HELD} ]; do rmdir $cg.$i; i=$((i + 1)); done\nrm -rf $d\n",
        append = boot::QEMU_APPEND,
        guard = SCRIPT_SECS / 2,
        kib = boot::GUEST_MIB * 1024,
    )
}

/// One script: `n` boots of VMM `v`, `p` at a time (waves: the next starts when the last of
/// one has ended), each timed by level 1's /proc/uptime.
pub fn script(v: usize, n: usize, p: usize) -> String {
    let (name, _, command) = boot::VMMS[v];
    format!(
        "# bench Linux at scale: {name}, {n} guests, {p} at a time\n. /lane/env\n\
         K=/lane/kernels/cloud/vmlinuz\nI=/lane/initrd/scale.cpio\nAPPEND='{append}'\n\
         one() {{ read -r a _ </proc/uptime; timeout -s KILL {guard} {command} </dev/null >/dev/null 2>&1; rc=$?; \
         read -r b _ </proc/uptime; echo \"scale.vm $a $b $rc\"; }}\n\
         read -r t0 _ </proc/uptime\n\
         i=0\nwhile [ $i -lt {n} ]; do\n\
         \x20   j=0\n\
         \x20   while [ $j -lt {p} ] && [ $i -lt {n} ]; do one & j=$((j + 1)); i=$((i + 1)); done\n\
         \x20   wait\n\
         done\n\
         read -r t1 _ </proc/uptime\n\
         echo \"scale.all $t0 $t1\"\n",
        append = boot::QEMU_APPEND,
        guard = SCRIPT_SECS / 2,
    )
}

/// The scripts, `NN-vmscale_V_R`: each [`RUNS`] row with the two VMMs in turn; then
/// `NN-vmheld_V`, [`held_script`] for each VMM.
pub fn plan() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (r, &(n, p)) in RUNS.iter().enumerate() {
        for v in 0..VMMS {
            out.push((format!("{:02}-vmscale_{v}_{r}", out.len()), script(v, n, p)));
        }
    }
    for v in 0..VMMS {
        out.push((format!("{:02}-vmheld_{v}", out.len()), held_script(v)));
    }
    out
}

/// One script's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// [`boot::VMMS`] index.
    pub vmm: usize,
    /// [`RUNS`] index.
    pub row: usize,
    /// Wall time of the whole script's boots, s.
    pub wall: f64,
    /// Each guest's start to exit, s, of those that ended with status 0.
    pub each: Vec<f64>,
    /// Guests that ended otherwise.
    pub failed: usize,
}

/// Reads a script's name and output.
pub fn parse(name: &str, output: &[String]) -> Option<Run> {
    // Level 1 reports a script by its name without the order prefix ("vmscale_0_1").
    let mut w = name
        .rsplit('-')
        .next()?
        .strip_prefix("vmscale_")?
        .split('_');
    let vmm: usize = w.next()?.parse().ok()?;
    let row: usize = w.next()?.parse().ok()?;
    let span = |v: &[&str]| -> Option<f64> {
        Some(v.get(1)?.parse::<f64>().ok()? - v.first()?.parse::<f64>().ok()?)
    };
    let mut run = Run {
        vmm,
        row,
        wall: 0.0,
        each: Vec::new(),
        failed: 0,
    };
    let mut all = None;
    for line in output {
        let v: Vec<&str> = line.split_whitespace().collect();
        match v.split_first() {
            Some((&"scale.vm", rest)) => match (span(rest), rest.get(2)) {
                (Some(t), Some(&"0")) => run.each.push(t),
                _ => run.failed += 1,
            },
            Some((&"scale.all", rest)) => all = span(rest),
            _ => {}
        }
    }
    run.wall = all?;
    Some(run)
}

/// One VMM's held guests.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// [`boot::VMMS`] index.
    pub vmm: usize,
    /// Guests whose console had the mark when memory was read.
    pub ready: usize,
    /// Per VMM process: VmRSS, VmPTE, Pss, guest RAM's RSS, cgroup charge, of it kernel (KiB).
    pub each: Vec<[u64; 6]>,
}

impl Held {
    /// The median over the VMMs of `f` of each one's [`Held::each`] row.
    pub fn median(&self, f: impl Fn(&[u64; 6]) -> u64) -> Option<u64> {
        let mut v: Vec<u64> = self.each.iter().map(f).collect();
        v.sort_unstable();
        v.get(v.len().checked_sub(1)? / 2).copied()
    }
}

/// Reads a held script's name and output; None for another script or one that ended early.
pub fn parse_held(name: &str, output: &[String]) -> Option<Held> {
    let vmm: usize = name
        .rsplit('-')
        .next()?
        .strip_prefix("vmheld_")?
        .parse()
        .ok()?;
    let mut h = Held {
        vmm,
        ready: 0,
        each: Vec::new(),
    };
    let mut seen = false;
    for line in output {
        let v: Vec<&str> = line.split_whitespace().collect();
        match v.split_first() {
            Some((&"scale.ready", [n])) => {
                h.ready = n.parse().ok()?;
                seen = true;
            }
            Some((&"scale.mem", rest)) if rest.len() == 6 => {
                let mut m = [0u64; 6];
                for (slot, w) in m.iter_mut().zip(rest) {
                    *slot = w.parse().ok()?;
                }
                h.each.push(m);
            }
            _ => {}
        }
    }
    seen.then_some(h)
}

/// The `q` quantile (nearest rank) of `v`.
fn quantile(v: &[f64], q: f64) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len().max(1)) - 1;
    s.get(i).copied()
}

/// Boots level 1 with the VMMs and the guests, and runs [`plan`] once.
pub fn run(bin_dir: &Path, verbose: bool) -> Result<(Vec<Run>, Vec<Held>), String> {
    let a = boot::level1_group(bin_dir, |a, root| {
        let guest = boot::guest_initramfs(root, GUEST_INIT)?;
        a.file("/lane/initrd/scale.cpio", 0o644, guest.to_bytes());
        let held = boot::guest_initramfs(root, HELD_INIT)?;
        a.file("/lane/initrd/held.cpio", 0o644, held.to_bytes());
        Ok(())
    })?;
    eprintln!("xtask bench: booting level 1 for Linux guests at scale");
    let reported = boot::run_scripts(
        &a,
        &plan(),
        |_| SCRIPT_SECS,
        "vmscale",
        LEVEL1_MEM_MIB,
        verbose,
    )?;
    Ok((
        reported
            .iter()
            .filter_map(|r| parse(&r.name, &r.output))
            .collect(),
        reported
            .iter()
            .filter_map(|r| parse_held(&r.name, &r.output))
            .collect(),
    ))
}

/// The BENCHMARKS.md section.
pub fn markdown(runs: &[Run], held: &[Held], why_not: Option<&str>) -> String {
    let mut s = match super::report::section_head(HEADING, why_not) {
        Ok(s) => s,
        Err(not) => return not,
    };
    let _ = writeln!(
        s,
        "Debian's cloud kernel with a busybox initramfs whose /init powers off at once, 256 MiB, \
         one vCPU, command line `{}`, under tinyvmm and QEMU `-M microvm` (KVM) inside the \
         level-1 guest of `cargo xtask nested` (one vCPU, {LEVEL1_MEM_MIB} MiB; QEMU TCG with \
         nested AMD-V, so every guest exit is emulated and only the ratios carry over). N \
         guests one after another, or in waves of P (the next wave starts when the last guest \
         of one has ended); each guest's start to exit by level 1's /proc/uptime (10 ms). One \
         round, the VMMs in turn. A row of dashes is a script left out: it \
         stopped level 1 twice (its console went silent, the nested-SVM stall of \
         xtask/vmtest/README.md).\n",
        boot::QEMU_APPEND
    );
    let _ = writeln!(
        s,
        "| N, at a time | VMM | guests/s | p50 | p99 | failed | guests/s, tinyvmm / QEMU |\n\
         |---|---|---|---|---|---|---|"
    );
    for (r, &(n, p)) in RUNS.iter().enumerate() {
        let rate = |v: usize| {
            runs.iter()
                .find(|x| x.vmm == v && x.row == r && x.wall > 0.0)
                .map(|x| x.each.len() as f64 / x.wall)
        };
        for v in 0..VMMS {
            let Some(x) = runs.iter().find(|x| x.vmm == v && x.row == r) else {
                let _ = writeln!(s, "| {n}, {p} | {} | - | - | - | - | - |", boot::VMMS[v].0);
                continue;
            };
            let secs = |q| quantile(&x.each, q).map_or("-".to_string(), |t| format!("{t:.2} s"));
            let ratio = match (v, rate(0), rate(1)) {
                (0, Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "| {n}, {p} | {} | {} | {} | {} | {} | {ratio} |",
                boot::VMMS[v].0,
                rate(v).map_or("-".to_string(), |g| format!("{g:.2}")),
                secs(0.5),
                secs(0.99),
                x.failed
            );
        }
    }
    let _ = writeln!(
        s,
        "\n{HELD} guests of each VMM held at once, the same kernel and memory with an /init that \
         prints a mark and waits; each VMM in a cgroup of its own in level 1, read once every \
         console has the mark, then killed. Medians over the {HELD}, KiB: the VMM's RSS, of it \
         the guest RAM mapping's, the rest beyond guest RAM, its Pss, its page tables \
         (VmPTE), and the cgroup's charge (memory.current) with the kernel's part of it \
         (memory.stat `kernel`: page tables, KVM's and the VMM's kernel objects).\n\n\
         | VMM | ready | RSS | guest RAM | beyond guest RAM | Pss | page tables | charged | of it kernel |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    for v in 0..VMMS {
        let Some(h) = held.iter().find(|h| h.vmm == v && !h.each.is_empty()) else {
            let _ = writeln!(s, "| {} | - | - | - | - | - | - | - | - |", boot::VMMS[v].0);
            continue;
        };
        let kib = |c: usize| {
            h.median(|m| m[c])
                .map_or("-".to_string(), |k| k.to_string())
        };
        let beyond = h
            .median(|m| m[0].saturating_sub(m[3]))
            .map_or("-".to_string(), |k| k.to_string());
        let _ = writeln!(
            s,
            "| {} | {}/{HELD} | {} | {} | {beyond} | {} | {} | {} | {} |",
            boot::VMMS[v].0,
            h.ready,
            kib(0),
            kib(3),
            kib(2),
            kib(1),
            kib(4),
            kib(5)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_takes_the_vmms_in_turn_and_its_scripts_are_shell() {
        let p = plan();
        assert_eq!(p.len(), RUNS.len() * VMMS + VMMS);
        assert_eq!(p[6].0, "06-vmheld_0");
        assert!(p[7].1.contains("-M microvm") && p[7].1.contains("held.cpio"));
        assert_eq!(p[0].0, "00-vmscale_0_0");
        assert_eq!(p[5].0, "05-vmscale_1_2");
        assert!(p[0].1.contains("/lane/bin/tinyvmm run"));
        assert!(p[1].1.contains("-M microvm"));
        for (name, text) in &p {
            let check = std::process::Command::new("sh")
                .args(["-n", "-c", text])
                .output()
                .unwrap();
            assert!(check.status.success(), "{name}: {check:?}");
        }
    }

    #[test]
    fn runs_parse_and_the_table_gives_rates_quantiles_and_the_ratio() {
        let out: Vec<String> = [
            "scale.vm 1.00 3.00 0",
            "scale.vm 1.00 5.00 0",
            "scale.vm 1.00 9.00 137",
            "scale.all 1.00 11.00",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = parse("02-vmscale_0_1", &out).unwrap();
        assert_eq!(parse("vmscale_0_1", &out), Some(r.clone()));
        assert_eq!((r.vmm, r.row, r.wall, r.failed), (0, 1, 10.0, 1));
        assert_eq!(r.each, [2.0, 4.0]);
        assert_eq!(parse("02-vmscale_0_1", &out[..1]), None);
        let q = Run {
            vmm: 1,
            row: 1,
            wall: 20.0,
            each: vec![4.0, 4.0],
            failed: 0,
        };
        assert_eq!(parse("06-vmheld_0", &out), None);
        let md = markdown(&[r, q], &[], None);
        assert!(
            md.contains("| 10, 1 | tinyvmm | 0.20 | 2.00 s | 4.00 s | 1 | 2.00x |"),
            "{md}"
        );
        assert!(
            md.contains("| 10, 1 | qemu -M microvm | 0.10 | 4.00 s | 4.00 s | 0 |  |"),
            "{md}"
        );
        assert!(
            md.contains("| 1, 1 | tinyvmm | - | - | - | - | - |"),
            "{md}"
        );
        assert!(
            md.contains("| tinyvmm | - | - | - | - | - | - | - | - |"),
            "{md}"
        );
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn held_guests_parse_and_their_medians_fill_the_memory_table() {
        let out: Vec<String> = [
            "scale.ready 3",
            "scale.mem 90000 300 60000 80000 85000 2000",
            "scale.mem 70000 200 50000 60000 65000 1000",
            "scale.mem 80000 250 55000 70000 75000 1500",
            "scale.mem 1 2 3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            parse_held("vmheld_1", &out),
            parse_held("07-vmheld_1", &out)
        );
        let h = parse_held("07-vmheld_1", &out).unwrap();
        assert_eq!((h.vmm, h.ready, h.each.len()), (1, 3, 3));
        assert_eq!(h.median(|m| m[0]), Some(80000));
        assert_eq!(parse_held("07-vmheld_1", &out[1..]), None);
        assert_eq!(parse_held("02-vmscale_0_1", &out), None);
        let md = markdown(&[], &[h], None);
        assert!(
            md.contains(
                "| qemu -M microvm | 3/5 | 80000 | 70000 | 10000 | 55000 | 250 | 75000 | 1500 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| tinyvmm | - | - | - | - | - | - | - | - |"),
            "{md}"
        );
    }
}
