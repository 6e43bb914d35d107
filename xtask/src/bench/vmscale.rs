//! Issue #25's item (d): Linux under tinyvmm at scale, in the nested lane's level 1 (this host's
//! PVM cannot boot Linux), beside QEMU `-M microvm` in the same run: N guests whose /init
//! powers off at once, one after another and in waves of P at a time; instances per second and
//! p50/p99 start to exit.

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

/// The scripts, `NN-vmscale_V_R`: each [`RUNS`] row with the two VMMs in turn.
pub fn plan() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (r, &(n, p)) in RUNS.iter().enumerate() {
        for v in 0..VMMS {
            out.push((format!("{:02}-vmscale_{v}_{r}", out.len()), script(v, n, p)));
        }
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
    let mut w = name.split('_').skip(1);
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

/// The `q` quantile (nearest rank) of `v`.
fn quantile(v: &[f64], q: f64) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len().max(1)) - 1;
    s.get(i).copied()
}

/// Boots level 1 with the VMMs and the guest, and runs [`plan`] once.
pub fn run(bin_dir: &Path, verbose: bool) -> Result<Vec<Run>, String> {
    let a = boot::level1_group(bin_dir, |a, root| {
        let guest = boot::guest_initramfs(root, GUEST_INIT)?;
        a.file("/lane/initrd/scale.cpio", 0o644, guest.to_bytes());
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
    Ok(reported
        .iter()
        .filter_map(|r| parse(&r.name, &r.output))
        .collect())
}

/// The BENCHMARKS.md section.
pub fn markdown(runs: &[Run], why_not: Option<&str>) -> String {
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
         round, the VMMs in turn. Per-instance memory is not measured here (the boot section \
         has each VMM's RSS beyond guest RAM). A row of dashes is a script left out: it \
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
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_takes_the_vmms_in_turn_and_its_scripts_are_shell() {
        let p = plan();
        assert_eq!(p.len(), RUNS.len() * VMMS);
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
        let md = markdown(&[r, q], None);
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
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
