//! The one-shot mode's root both ways, in the nested lane's level 1 (tinyvmm boots Linux only
//! there): `--rootfs DIR` packed into an initramfs at every start against `--share-rootfs`,
//! DIR over virtio-fs, for the busybox rootfs and for trees of 256 MiB and 1 GiB, start to exit
//! of `-- true`.

use std::fmt::Write as _;
use std::path::Path;

use super::boot;
use crate::{nested, vmtest};

/// The section's heading in BENCHMARKS.md.
pub const HEADING: &str = "## One-shot root: initramfs against virtio-fs (nested lane, level 1)";

/// The trees: (name, MiB of file data added to the busybox rootfs).
pub const SIZES: [(&str, u64); 3] = [("busybox rootfs", 0), ("+ 256 MiB", 256), ("+ 1 GiB", 1024)];

/// The two ways, in [`plan`]'s order.
pub const MODES: [&str; 2] = ["initramfs (--rootfs)", "virtio-fs (--share-rootfs)"];

/// Level 1's memory for this group: a packed tree is in level 1's tmpfs, in tinyvmm's heap
/// and twice in guest memory (the archive and the files unpacked from it), so 1 GiB packed needs
/// about 4.5 GiB, more than the lane's 3 GiB.
pub const LEVEL1_MEM_MIB: u64 = 6144;

/// tinyvmm's largest guest memory (one region below the 3 GiB MMIO hole).
const GUEST_MAX_MIB: u64 = 3072;

/// What one script may take in level 1 (writing 1 GiB under TCG is most of it).
const SCRIPT_SECS: u64 = 240;

/// Guest memory for a run: what the packed tree needs (the archive and its files unpacked, and
/// room), or 256 MiB.
pub fn mem_mib(mode: usize, mib: u64) -> u64 {
    if mode == 0 && mib > 0 {
        (1024 + 2 * mib).min(GUEST_MAX_MIB)
    } else {
        256
    }
}

/// One script: makes the tree `/tmp/osr-MIB` if absent (dropping the other sizes' trees), then
/// times one run from level 1's /proc/uptime.
pub fn script(size: usize, mode: usize) -> String {
    let mib = SIZES[size].1;
    // A packed tree is unpacked into the initramfs, a tmpfs of at most half the RAM not
    // reserved, and the 1 GiB archive holds its share of RAM reserved while it unpacks: the
    // kernel's unpacking failed with a write error. A ramfs has no limit.
    let (share, append) = if mode == 1 {
        (" --share-rootfs", "")
    } else {
        ("", " rootfstype=ramfs")
    };
    format!(
        "# bench one-shot root: {tree}, {way}\n. /lane/env\n\
         D=/tmp/osr-{mib}\n\
         for o in /tmp/osr-*; do [ \"$o\" = $D ] || rm -rf \"$o\"; done\n\
         if [ ! -d $D ]; then\n\
         \x20   cp -a /lane/oneshot $D\n\
         \x20   mkdir -p $D/data\n\
         \x20   i=0; while [ $i -lt {chunks} ]; do dd if=/dev/zero of=$D/data/f$i bs=1M count=64 2>/dev/null; i=$((i + 1)); done\n\
         fi\n\
         sync\n\
         read -r t0 _ </proc/uptime\n\
         timeout -s KILL {guard} /lane/bin/tinyvmm run --kernel /lane/kernels/cloud/vmlinuz \
         --mem {mem}M --append \"quiet $FAST{append}\" --rootfs $D{share} -- true >/tmp/osr.out 2>/tmp/osr.err\n\
         rc=$?\n\
         read -r t _ </proc/uptime\n\
         echo \"bench.oneshot $t0 $t $rc\"\n\
         grep -E 'Kernel panic|Out of memory|Initramfs|Killed process|rootfs-init' /tmp/osr.err | head -n 5 | sed 's/^/err: /'\n",
        tree = SIZES[size].0,
        way = MODES[mode],
        chunks = mib / 64,
        guard = SCRIPT_SECS - 30,
        mem = mem_mib(mode, mib),
    )
}

/// The scripts in level-1 order, `NN-oneshot_S_M_R`: by size (each tree made once), rounds,
/// then the two ways in turn.
pub fn plan(runs: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in 0..SIZES.len() {
        for r in 0..runs {
            for m in 0..MODES.len() {
                let name = format!("{:02}-oneshot_{s}_{m}_{r}", out.len());
                out.push((name, script(s, m)));
            }
        }
    }
    out
}

/// One run: (size, mode, seconds, status) from a script's name and output.
pub fn parse(name: &str, output: &[String]) -> Option<(usize, usize, f64, i32)> {
    let mut w = name.split('_').skip(1);
    let s: usize = w.next()?.parse().ok()?;
    let m: usize = w.next()?.parse().ok()?;
    let line = output.iter().find(|l| l.starts_with("bench.oneshot "))?;
    let v: Vec<&str> = line.split_whitespace().collect();
    let t0: f64 = v.get(1)?.parse().ok()?;
    let t: f64 = v.get(2)?.parse().ok()?;
    let rc: i32 = v.get(3)?.parse().ok()?;
    Some((s, m, t - t0, rc))
}

/// Boots level 1 with tinyvmm, virtiofsd and the busybox rootfs with the modules a one-shot
/// guest needs (virtio console, virtio-fs), and runs [`plan`].
pub fn run(
    bin_dir: &Path,
    runs: usize,
    verbose: bool,
) -> Result<Vec<(usize, usize, f64, i32)>, String> {
    let a = boot::level1_group(bin_dir, |a, root| {
        let virtiofsd = tinyvmm::virtio::fs::find_virtiofsd()
            .ok_or("virtiofsd is not installed (cargo xtask deps: qemu-system-common)")?;
        boot::add_with_libraries(a, &virtiofsd)?;
        let release = nested::cloud_release()?;
        vmtest::add_tree(a, root, "/lane/oneshot")
            .map_err(|e| format!("adding {}: {e}", root.display()))?;
        for (name, data) in nested::virtio_modules()? {
            a.file(
                &format!("/lane/oneshot/lib/modules/{release}/kernel/{name}"),
                0o644,
                data,
            );
        }
        Ok(())
    })?;
    eprintln!("xtask bench: booting level 1 for {runs} round(s) of one-shot roots");
    let reported = boot::run_scripts(
        &a,
        &plan(runs),
        |_| SCRIPT_SECS,
        "oneshot",
        LEVEL1_MEM_MIB,
        verbose,
    )?;
    Ok(reported
        .iter()
        .filter_map(|r| parse(&r.name, &r.output))
        .collect())
}

/// The BENCHMARKS.md section: medians of the runs that ended with status 0.
pub fn markdown(
    runs_done: &[(usize, usize, f64, i32)],
    runs: usize,
    why_not: Option<&str>,
) -> String {
    let mut s = match super::report::section_head(HEADING, why_not) {
        Ok(s) => s,
        Err(not) => return not,
    };
    let _ = writeln!(
        s,
        "`tinyvmm run --kernel <cloud bzImage> --rootfs DIR -- true`, start to exit by level 1's \
         /proc/uptime (10 ms), {runs} round(s), the two ways in turn: DIR packed into an \
         initramfs at every start (guest memory 256 MiB for the rootfs alone, else 1 GiB + \
         twice the added data, the archive and its unpacked files, at most tinyvmm's 3 GiB, and \
         `rootfstype=ramfs`: a tmpfs initramfs is limited to half the RAM not reserved, which \
         the 1 GiB archive itself holds while it unpacks, and the kernel's unpacking failed) against `--share-rootfs`, \
         DIR over virtio-fs with QEMU 7.2's virtiofsd (256 MiB). DIR is the busybox rootfs with \
         the virtio-console and virtio-fs modules, plus 64 MiB files of zeros. Level 1 has \
         {LEVEL1_MEM_MIB} MiB here (a packed tree is in its tmpfs, in tinyvmm's heap and twice in \
         guest memory). Every guest exit is emulated (QEMU TCG with nested AMD-V), so only the \
         ratios carry over.\n"
    );
    let _ = writeln!(
        s,
        "| DIR | {} | {} | virtio-fs / initramfs | runs ok |\n|---|---|---|---|---|",
        MODES[0], MODES[1]
    );
    for (i, (name, _)) in SIZES.iter().enumerate() {
        let med = |m: usize| {
            boot::median(
                runs_done
                    .iter()
                    .filter(|r| r.0 == i && r.1 == m && r.3 == 0)
                    .map(|r| r.2)
                    .collect(),
            )
        };
        let ok = |m: usize| {
            runs_done
                .iter()
                .filter(|r| r.0 == i && r.1 == m && r.3 == 0)
                .count()
        };
        let (a, b) = (med(0), med(1));
        let secs = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2} s"));
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {ratio} | {}/{} |",
            secs(a),
            secs(b),
            ok(0) + ok(1),
            runs_done.iter().filter(|r| r.0 == i).count()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_runs_both_ways_at_every_size_and_scripts_are_shell() {
        let p = plan(2);
        assert_eq!(p.len(), 3 * 2 * 2);
        assert!(p[0].0.starts_with("00-oneshot_0_0_0"));
        assert!(p[8].1.contains("--mem 3072M"), "{}", p[8].1);
        for (name, text) in &p {
            let check = std::process::Command::new("sh")
                .args(["-n", "-c", text])
                .output()
                .unwrap();
            assert!(check.status.success(), "{name}: {check:?}");
        }
        assert!(p.last().unwrap().1.contains("--share-rootfs -- true"));
        assert!(p[0].1.contains("--mem 256M"));
        assert_eq!((mem_mib(0, 256), mem_mib(1, 256)), (1536, 256));
    }

    #[test]
    fn runs_parse_and_the_table_gives_medians_and_ratios() {
        let out = vec!["x".to_string(), "bench.oneshot 10.00 12.50 0".to_string()];
        assert_eq!(parse("03-oneshot_1_1_0", &out), Some((1, 1, 2.5, 0)));
        assert_eq!(parse("03-oneshot_1_1_0", &["nothing".to_string()]), None);
        let md = markdown(&[(0, 0, 4.0, 0), (0, 1, 2.0, 0), (2, 1, 3.0, 0)], 1, None);
        assert!(
            md.contains("| busybox rootfs | 4.00 s | 2.00 s | 0.50x | 2/2 |"),
            "{md}"
        );
        assert!(md.contains("| + 1 GiB | - | 3.00 s | - | 1/1 |"), "{md}");
        assert!(markdown(&[], 1, Some("skipped")).contains("Not measured: skipped."));
    }
}
