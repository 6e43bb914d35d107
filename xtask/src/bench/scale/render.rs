//! The scale section of BENCHMARKS.md and the lines of docs/scale.svg from what was measured:
//! pure formatting, so that the goals' verdicts and the splicing into the file are unit-tested.

use super::drive::{HoldResult, Measured, StepResult};
use super::{Family, BUDGET_BYTES};
use crate::bench::chart::Line;
use std::fmt::Write as _;

/// The section's first line: `cargo xtask bench --scale` replaces what lies between it and
/// [`END`], and the full bench keeps it.
pub const BEGIN: &str =
    "<!-- scale:begin (written by cargo xtask bench --scale; kept by cargo xtask bench) -->";
/// The section's last line.
pub const END: &str = "<!-- scale:end -->";

/// Cost per instance at the largest N over that at N = 10 above which the cost is not flat:
/// a machine shared with three other sessions moves single runs by this much.
pub const FLAT: f64 = 1.3;

/// What the stepped searches found (strace -c, perf) where a cost grows with N.
pub const FINDINGS: &str = "The containers' costs per instance (ours and the peers') stay flat from N = 10 to N = 1,000: no step from cgroup or mount-table growth or directory scans. cgctl's groups are made and removed per container, so /sys/fs/cgroup never grows, and the leftover check finds nothing after 1,000 of each. The one cost that moves is tinyvmm's when many run at once, and it is not a function of N. Its cause, and where the other rates stop, comes from `strace`, `perf stat` and `perf record` of runs on this machine:

- **tinyvmm, with VMs running at once (2026-12-07).**
  - The rate depends on how many VMs run at once, not on N. In the table, N = 10 runs 10 at a time and the larger N run 20 at a time. 1,000 VMs of the same guest under `xargs -P` took 1.83 s one at a time, 1.26 s two at a time, 2.17 s at 5, 1.50 s at 10, 0.88 s at 20 and 0.77 s at 40, for the same CPU time (user 1.0-1.2 s, sys 0.2-0.6 s): where more at once take longer, the VMs wait.
  - `perf record -e sched:sched_switch -g` shows where they wait: SRCU grace periods (`__synchronize_srcu`). The first is under `kvm_swap_active_memslots`, under `KVM_SET_USER_MEMORY_REGION`: KVM waits out a grace period of the VM's own SRCU when its first memory slot is set. The others are in the VM's teardown, on the one SRCU that all of the kernel's MMU notifiers share (mm/mmu_notifier.c): `kvm_destroy_vm` -> `mmu_notifier_unregister` and, when the VM is left to the process exit, `exit_mmap` -> `__mmu_notifier_release` too, both in the exit of KVM's `kvm-nx-lpage-recovery` thread (a vhost task in the VM's thread group, so the process cannot be reaped before it ends). With many VMs at once that SRCU is never idle, and each of its grace periods takes longer.
  - tinyvmm left the VM and its memory to the process exit until 2026-12-07 (0.15 ms faster one at a time when that was chosen). It now closes them before it exits: `kvm_destroy_vm` then runs while the process lives and unregisters the notifier, and `exit_mmap` finds none left, so the teardown waits once on the shared SRCU instead of twice. One at a time the two measure the same (1.6 ms, hyperfine). 20 at a time, 1,000 VMs took 0.88 s instead of 1.22 s under `xargs` (2,000: 1.76-1.88 s instead of 2.41-2.55 s, three rounds), and the 1,000 at a time of this section went from 796/s (2026-12-07 02:27) to 1,136/s and 1,166/s (two runs, 09:37 and 09:44).
  - The goal of 1,000/s is an absolute rate on two cores shared with other sessions. This section made 1,136/s and 1,166/s at 09:37 and 09:44, and 937-971/s in four runs between 12:15 and 13:25 (2026-12-07), when the peers were slower by as much: bwrap 380-430/s against 472/s, crun 166-196/s against 259/s. The tinyvmm of the morning's runs (e4ab6c0) and today's, 1,000 VMs each under `xargs -P20` in turn, made 941-943/s and 890-946/s in the same minutes (13:30): the machine, not the code. From 15:25 the bench ran on another host, an AMD EPYC (the machine line above; a static C `return 0` takes 0.32 ms of CPU there against 0.58 ms on the Intel Xeon of the earlier runs), and the section made 1,153/s and 1,260/s (15:25, 15:36), and 1,006/s at 16:06 with the host busier (that run's other rates fell too: ocirun 210/s, crun 170/s, bwrap 350/s). The run recorded here, the first with memory per N, is of 23:35 on the same host, whose load rose from 1.6 to 11.6 during it: tinyvmm 1,052/s, with the peers slower than at 15:36 by more (crun 143/s against 193/s, bwrap 266/s against 415/s).
  - Setting the memory slot from a second thread while the vCPU is created gained nothing (668-721/s against 733-750/s in the same run, 20 at a time under `xargs`): the slot's wait is not on the path the thread shortens.
  - The CPU per VM: 1.74 ms (`perf stat -r 30`, task-clock, 2026-12-03) in 38 system calls. The largest are `execve` 0.35 ms, `KVM_CREATE_VM` 0.28 ms and `KVM_CREATE_VCPU` 0.30 ms; the rest is the teardown of the VM and its memory.
  - One VM at a time, about a third of tinyvmm's CPU is the kernel rewriting its own code (2026-12-07, the AMD EPYC host). A vCPU made without an in-kernel LAPIC (tinyvmm makes none for a tiny guest, so that the guest's HLT ends its run) counts up KVM's static key `kvm_has_noapic_vcpu` (`kvm_create_lapic`), and its destroy counts it down (`kvm_arch_vcpu_destroy`). When the count goes from 0 to 1 or back, the kernel patches every place that tests the key (`arch_jump_label_transform_apply`: `__text_poke` and an IPI to each CPU): 18% of tinyvmm's samples in `perf record` of 1,000 runs. With one more such VM alive (a spinning guest at nice 19) the patching fell to 0.13% of the samples, and the CPU per VM from 1.43-2.04 ms to 0.98-1.45 ms (4 interleaved rounds of `perf stat -r 200`). 20 at a time the count seldom gets back to 0, which is part of why tinyvmm's cost per VM 20 at a time is less than half of its cost one at a time, on two cores. KVM's debugfs directory per VM (made at KVM_CREATE_VM, removed at the destroy) is another 13% of the samples. User space cannot avoid the debugfs directory, and the patching only with an in-kernel interrupt controller, which would take the guest's HLT away from tinyvmm.
  - Of that CPU, glibc's own start took about 0.6 ms on the Intel Xeon host of the morning's runs (2026-12-07, `perf stat -r 500`; 0.32 ms on the AMD EPYC host of 15:25, where glibc takes its AMD branch, `handle_amd`): a static Rust program that does nothing costs 0.62 ms with glibc and 0.06 ms with musl, and a static C `return 0` 0.58 ms. `perf record` puts it in glibc's cache-size probe (`intel_check_word`, `handle_intel`: loops of CPUID leaves 2 and 4, each CPUID trapped by this VM's hypervisor). A trial musl build of tinyvmm (not landed, before the teardown change) took 0.82 ms of CPU per VM against 1.25 ms for the shipped glibc build, and ran 832-890 VMs/s against 733-822/s, 20 at a time, in the same run. Landing it would need tinyvmm built for a second target (x86_64-unknown-linux-musl) and privs' libseccomp out of tinyvmm's link (the static libseccomp.a is built against glibc).
- **ocirun and crun.**
  - Going from one at a time to 20 at a time, N = 1,000, both gain about 1.6-1.9x: on two cores they are bound by CPU. One `ocirun run` of this bundle makes 34 mounts (masked and read-only paths, /proc, /dev, the root) and 10 cgroup directories, in about 1,100 system calls. There is no sleep, poll or lock file on its path (`strace -f -T`), and `perf record -a -g` over 400 runs 20 at a time (2026-12-03) shows no lock or spin.
  - So the rate ratio is about the ratio of CPU per run. `perf stat -r 100` (task-clock, one at a time, the cgroup2 mount hidden as here; 2026-12-07), ocirun against crun: this bundle 4.2 ms against 6.1 ms; without its seccomp profile 3.4 against 5.6; without the network namespace 3.9 against 5.5; without masked and read-only paths 3.8 against 5.9; without cgroups 4.4 against 5.8; without all four 3.2 against 4.6. Twice crun's rate needs ocirun at about 3 ms for the whole bundle, below what ocirun takes with none of the four. Part of every run is the same for both: /bin/true itself (busybox, static glibc) and glibc's start (0.5-0.6 ms each, see above).
  - Of the 0.5-0.8 ms the seccomp profile adds to ocirun (two runs), `perf record` puts most in libseccomp compiling it (`_gen_bpf_build_jmp`, `gen_bpf_generate`, `syscall_resolve_num`, `db_rule_add`), with malloc and the page faults of its memory; crun compiles it with the same libseccomp, 2.5.4. Since 2026-12-07 ocirun keeps the compiled filter under its `--root` (`.seccomp/`, keyed by the profile, the ocirun binary and the kernel) and the next container with the same profile reads it: 5.38 ms -> 4.77 ms of CPU against crun's 8.50 ms (8 interleaved rounds of `perf stat -r 20` on a busier machine than the figures above), and 1.42-1.52x crun's rate at N = 1,000, 20 at a time, in four runs (1.34x before it); 1.39x and 1.43x (244/s against 176/s, 275/s against 193/s) on the AMD EPYC host at 15:25 and 15:36, 1.24x at 16:06 on a busier host, 1.44x (206/s against 143/s) at 23:35, the run recorded here.
  - What is left of ocirun's CPU (`perf record`, 200 runs after the cache): 68% in the kernel (`clone` of the five namespaces 12%, page faults 11%, `openat` 11% (kernfs lookups of the new cgroups' files, the state files), cgroup `mkdir` 6%, `mount` 5%) and 13% in glibc's CPUID start; Rust code, serde and clap together under 15%. Two trials did not pay: a musl build (no CPUID start, but musl's malloc and memcpy) took 5.16 ms against 4.87 ms for glibc, and resolving plain paths in the rootfs with one `openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)` each cut 1,044 system calls to 915 and measured within the noise (4.97 against 5.07 ms).
  - The network namespace narrows the rate ratio: 20 at a time, 400 runs, without it ocirun makes 329-345/s and crun 210-215/s (1.6x), with it 263-274/s and 186-188/s (1.42-1.46x): both pay about 0.6-0.8 ms of rate per namespace that is not in either runtime's CPU (its teardown runs in the kernel's `cleanup_net` worker).
- **The composed container (cgctl + unshare-rs + pivot).** Three programs before /bin/true, so three glibc starts (0.3-0.6 ms each, by host, above). On the AMD EPYC host it made 2.07x and 2.15x crun's rate (15:25, 15:36), 1.72x at 16:06 on a busier host, 1.85x at 23:35 (the run recorded here). A trial musl build of the three (2026-12-07, not landed: two libc constants and the arguments patched) took 3.35 ms of CPU against 4.08 ms for the shipped glibc builds (medians of 6 interleaved rounds of `perf stat -r 30`), and made 379-388 containers/s against 315-346/s, 20 at a time (400 each, two rounds), in the same half hour as crun's 185-196/s in this section. Landing it needs the shipped builds on a second target (ocirun, tinyvmm and setpriv-rs link the glibc-built libseccomp) and the C mains handing argv to conventions (musl's std does not see it in a `no_main` program).
- **Memory per N (the run of 23:35).** One at a time the figure is the highest of the instances' own peaks, each an instance's whole working set: tinyvmm 984-1,024 KiB (about 500 KiB of it kernel: the VM, its vCPU, page tables), the composed container 1.1-1.3 MiB, ocirun 1.2-1.5 MiB against crun's 1.4-1.7 MiB (N = 10 to 1,000). 20 at a time it is the group's peak over the instances running at once, and less, because instances are at different points of their lives: tinyvmm 170-524 KiB, so under the goal's 2 MiB per VM at every N, as is the 742 KiB per waiting guest held 200 at once. What is left charged per instance falls with N (tinyvmm 112 KiB at N = 10, 0.6 KiB at N = 1,000; crun and ocirun alike): the kernel's caches (dentries, the removed groups' charges) settle, they do not grow with N. Two N = 1 rows read 0 KiB (bwrap and tinyvmm, a single instance each) while the same instances read 748-1,024 KiB at N = 10. The cause is v1's charging in batches: a CPU takes 64 pages (256 KiB) of charge ahead into a stock of its own, and the group's counter (and so its mark) moves only when a stock is refilled. The same tiny VM, spawned and moved into a fresh group five times in turn with the mark reset before each (a probe, 2026-12-08), read 256, 508, 736, 0 and 512 KiB. So one at a time a figure is one instance's use to within about 256 KiB per CPU, and the highest of a batch (the figure given) leans high; 20 at a time the error is shared by 20.
- **QEMU microvm.** About 40-60 ms of a core per start here, and about 19 MiB charged and 40 MiB RSS per waiting guest. So the 2 GiB budget holds about 108 of them, against 200 (the cap) of tinyvmm's at 0.7 MiB each.";

/// The section as it stands in `md`, markers included.
pub fn extract(md: &str) -> Option<&str> {
    let b = md.find(BEGIN)?;
    let e = md[b..].find(END)? + b + END.len();
    Some(&md[b..e])
}

/// `md` with its scale section replaced by `section` (or `section` appended when it has none).
pub fn splice(md: &str, section: &str) -> String {
    let section = section.trim_end();
    match (md.find(BEGIN), extract(md)) {
        (Some(b), Some(old)) => format!("{}{section}{}", &md[..b], &md[b + old.len()..]),
        _ if md.trim().is_empty() => format!("{section}\n"),
        _ => format!("{}\n\n{section}\n", md.trim_end()),
    }
}

/// The full bench's freshly written `new` file with the scale section of the `old` one kept.
pub fn keep(old: &str, new: String) -> String {
    match extract(old) {
        Some(s) => splice(&new, s),
        None => new,
    }
}

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0} ms")
    } else if x >= 1.0 {
        format!("{x:.2} ms")
    } else {
        format!("{x:.3} ms")
    }
}

fn kib(bytes: f64) -> String {
    if bytes >= 10.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", bytes / 1048576.0)
    } else {
        format!("{:.0} KiB", bytes / 1024.0)
    }
}

fn mode(parallel: usize) -> &'static str {
    if parallel == 1 {
        "one after another"
    } else {
        "at a time"
    }
}

impl Measured {
    fn step(&self, key: &str, n: usize, parallel: usize) -> Option<&StepResult> {
        self.steps
            .iter()
            .find(|s| self.cases[s.case].key == key && s.step.n == n && s.step.parallel == parallel)
    }

    fn held(&self, key: &str) -> Option<&HoldResult> {
        self.holds.iter().find(|h| self.cases[h.case].key == key)
    }

    /// The peer's key of each of ours.
    fn peer_of(&self, key: &str) -> Option<&'static str> {
        let fam = self.cases.iter().find(|c| c.key == key)?.family;
        self.cases
            .iter()
            .find(|c| c.family == fam && !c.ours)
            .map(|c| c.key)
            .filter(|p| *p != key)
    }

    /// The largest N measured.
    fn top(&self) -> usize {
        self.steps.iter().map(|s| s.step.n).max().unwrap_or(0)
    }

    /// Cost per instance at the largest N over that at N = 10, in the concurrent mode
    /// (`parallel` > 1) or the serial one.
    pub fn growth(&self, key: &str, concurrent: bool) -> Option<(f64, f64, f64)> {
        let top = self.top();
        if top <= 10 {
            return None;
        }
        let p = |n: usize| {
            if concurrent {
                super::PARALLEL.min(n)
            } else {
                1
            }
        };
        let a = self.step(key, 10, p(10))?.cost_ms();
        let b = self.step(key, top, p(top))?.cost_ms();
        Some((a, b, b / a))
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "**met**"
    } else {
        "**missed**"
    }
}

/// The goals of issue #25, each with its numbers.
pub fn goals(m: &Measured) -> Vec<String> {
    let top = m.top();
    let par = super::PARALLEL.min(top);
    let mut v = Vec::new();
    match m.step("tinyvmm", top, par) {
        Some(t) => {
            let q = m
                .step("qemu", top, par)
                .map(|q| format!(" (QEMU microvm: {:.0}/s)", q.rate()))
                .unwrap_or_default();
            v.push(format!(
                "At least 1,000 tiny VMs per second created, run and ended, {par} at a time: {} — tinyvmm {:.0}/s at N = {top}{q}.",
                verdict(t.rate() >= 1000.0 && top >= 1000),
                t.rate()
            ));
        }
        None => v.push("At least 1,000 tiny VMs per second: not measured.".into()),
    }
    match (m.step("ocirun", top, par), m.step("crun", top, par)) {
        (Some(o), Some(c)) => {
            let composed = m
                .step("container", top, par)
                .map(|k| {
                    format!(
                        "; the composed container (cgctl + unshare-rs + pivot) {:.0}/s, {:.2}x crun's",
                        k.rate(),
                        k.rate() / c.rate()
                    )
                })
                .unwrap_or_default();
            v.push(format!(
                "A container creation rate at least 2x crun's ({par} at a time, N = {top}): {} — `ocirun run` {:.0}/s against crun's {:.0}/s, {:.2}x{composed}.",
                verdict(o.rate() >= 2.0 * c.rate()),
                o.rate(),
                c.rate(),
                o.rate() / c.rate()
            ));
        }
        _ => v.push("A container creation rate at least 2x crun's: not measured (no crun or no ocirun run).".into()),
    }
    match m
        .held("tinyvmm")
        .and_then(|h| h.cgroup_bytes.map(|b| (h, b)))
    {
        Some((h, b)) => {
            let q = m
                .held("qemu")
                .and_then(|q| q.cgroup_bytes)
                .map(|x| format!(" (QEMU microvm: {})", kib(x)))
                .unwrap_or_default();
            v.push(format!(
                "Per-VM memory overhead under 2 MiB: {} — {} charged per waiting tinyvmm guest with {} at once (RSS {:.0} KiB, page tables {:.0} KiB, kernel {}){q}.",
                verdict(b < 2.0 * 1048576.0),
                kib(b),
                h.count,
                h.rss_kib,
                h.pte_kib,
                h.kmem_bytes.map(kib).unwrap_or_else(|| "not readable".into())
            ));
        }
        None => v.push("Per-VM memory overhead under 2 MiB: not measured.".into()),
    }
    let mut flat = Vec::new();
    let mut all = true;
    for c in m.cases.iter().filter(|c| c.ours) {
        for concurrent in [false, true] {
            if let Some((a, b, g)) = m.growth(c.key, concurrent) {
                all &= g <= FLAT;
                flat.push(format!(
                    "{} {}: {} -> {} ({g:.2}x)",
                    c.key,
                    if concurrent { "concurrent" } else { "serial" },
                    ms(a),
                    ms(b)
                ));
            }
        }
    }
    if flat.is_empty() {
        v.push(
            "Cost per instance flat from N = 10 to N = 1,000: not measured (N up to 10 only)."
                .into(),
        );
    } else {
        v.push(format!(
            "Cost per instance flat from N = 10 to N = {top} (at most {FLAT}x): {} — {}.",
            verdict(all && top >= 1000),
            flat.join("; ")
        ));
    }
    v
}

/// The section, markers included.
pub fn section(m: &Measured) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(
        s,
        "## Scale: many instances, one after another and {} at a time\n",
        super::PARALLEL
    );
    let _ = writeln!(
        s,
        "Written by `cargo xtask bench --scale` on {} (N up to {}). Machine: {}. Load average \
         (1 min) at the start and the end of the section: {} and {}; the 2 cores are shared with \
         other sessions, so absolute numbers are noisy: the ratios to the peer in the same run are \
         what counts. Each family runs ours and its peer alternately at each N (ours first, then \
         the peer first at the next N).\n",
        m.date, m.max, m.machine, m.load.0, m.load.1
    );
    let _ = writeln!(s, "![cost per instance against N](docs/scale.svg)\n");
    let _ = writeln!(s, "### Goals (issue #25)\n");
    for g in goals(m) {
        let _ = writeln!(s, "- {g}");
    }
    if !FINDINGS.is_empty() {
        let _ = writeln!(s, "\n### Where the cost grows\n\n{FINDINGS}");
    }
    let _ = writeln!(s, "\n### Per N\n");
    let _ = writeln!(
        s,
        "Instances per second = N / (first spawn to last reaped exit); p50 and p99 of each \
         instance's spawn to reaped exit (nearest rank); ms per instance = wall time / N, the \
         line of the chart. Ratio = our rate / the peer's (above 1: ours starts more per second). \
         Peak memory per instance, from a second batch of the same N right after the timed one \
         (untimed: joining a group costs the driver about 0.12 ms per instance): each instance \
         joins the case's cgroup as soon as it has exec'd (the driver writes its PID to the v1 \
         memory hierarchy's cgroup.procs; an OCI runtime puts its container in a group under \
         it), and the group's high-water mark over the batch \
         (memory.max_usage_in_bytes, reset before it) over its usage before the batch, divided by \
         the instances running at once; one at a time, the mark is reset before each instance \
         and the highest instance's peak over its own base is given, so that what the earlier \
         ones left is not counted as the instance's. Of it the kernel's \
         (memory.kmem.max_usage_in_bytes: page tables, KVM's objects, namespaces, mounts, \
         dentries). Left charged per instance: the group's usage after the batch over its usage \
         before, divided by N: what ended instances leave in the kernel's caches (page cache, \
         dentries, the charges of removed cgroups), which the kernel reclaims only under \
         pressure. Many at a time it adds up over the batch inside the peak: the left per \
         instance times N over the instances at once.\n"
    );
    let _ = writeln!(
        s,
        "| family | N | running at once | command | instances/s | p50 | p99 | ms per instance | rate vs peer | peak memory per instance | of it kernel | left charged per instance |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for fam in [Family::Container, Family::Oci, Family::Vm] {
        let mut first = true;
        for st in super::schedule(m.max) {
            for c in m.cases.iter().filter(|c| c.family == fam) {
                let Some(r) = m.step(c.key, st.n, st.parallel) else {
                    continue;
                };
                let vs = match m.peer_of(c.key).and_then(|p| m.step(p, st.n, st.parallel)) {
                    Some(p) if c.ours => format!("{:.2}x", r.rate() / p.rate()),
                    _ => String::new(),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} ({}) | {}{} | {:.0} | {} | {} | {} | {vs} | {} | {} | {} |",
                    if first { fam.title() } else { "" },
                    st.n,
                    st.parallel,
                    mode(st.parallel),
                    if c.ours { "**ours**: " } else { "peer: " },
                    c.key,
                    r.rate(),
                    ms(super::percentile(&r.times_ms, 0.5)),
                    ms(super::percentile(&r.times_ms, 0.99)),
                    ms(r.cost_ms()),
                    r.peak_bytes.map(kib).unwrap_or_else(|| "?".into()),
                    r.peak_kmem_bytes.map(kib).unwrap_or_else(|| "?".into()),
                    r.left_bytes
                        .map(|b| format!("{:.1} KiB", b / 1024.0))
                        .unwrap_or_else(|| "?".into()),
                );
                first = false;
            }
        }
    }
    let late: Vec<String> = m
        .cases
        .iter()
        .filter_map(|c| {
            let n: usize = m
                .steps
                .iter()
                .filter(|s| m.cases[s.case].key == c.key)
                .map(|s| s.late)
                .sum::<usize>()
                + m.held(c.key).map_or(0, |h| h.late);
            (n > 0).then(|| format!("{} {n}", c.key))
        })
        .collect();
    if !late.is_empty() {
        let _ = writeln!(
            s,
            "\nProcesses that outlived their instance's first process and were reaped by the \
             driver (its subreaper) within {} s, so not left behind: {}. bwrap's outer process \
             exits as soon as it has the status of its namespace, before that namespace's PID 1 \
             has been reaped.",
            super::drive::GRACE.as_secs(),
            late.join(", ")
        );
    }
    let _ = writeln!(s, "\n### Long-running instances held at once\n");
    let _ = writeln!(
        s,
        "A container that sleeps (`/bin/sleep 3600`) and a guest that waits (interrupts off, HLT: \
         KVM parks the vCPU in the host kernel), started one by one into a cgroup of their own \
         until {} run, the next would pass a budget of {} GiB charged, or the machine's \
         MemAvailable would fall under {} GiB. Per instance: the cgroup's memory usage \
         (memory.usage_in_bytes: user pages, page cache, kernel objects), of it the kernel's share \
         (memory.kmem.usage_in_bytes: page tables, KVM's VM and vCPU objects, namespaces, \
         mounts), and over the instance's processes RSS, PSS (shared pages divided among their \
         users) and page tables (VmPTE). Fit = budget / charged per instance.\n",
        super::HOLD_CAP.min(m.max),
        BUDGET_BYTES >> 30,
        super::FLOOR_BYTES >> 30
    );
    let _ = writeln!(
        s,
        "| command | running at once | limited by | charged per instance | of it kernel | RSS | PSS | page tables | fit in {} GiB | charged vs peer |",
        BUDGET_BYTES >> 30
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for c in &m.cases {
        let Some(h) = m.held(c.key) else { continue };
        let fit = h
            .cgroup_bytes
            .filter(|b| *b > 0.0)
            .map(|b| format!("{:.0}", BUDGET_BYTES as f64 / b))
            .unwrap_or_default();
        let vs = match (
            c.ours,
            h.cgroup_bytes,
            m.peer_of(c.key)
                .and_then(|p| m.held(p))
                .and_then(|p| p.cgroup_bytes),
        ) {
            (true, Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "| {}{} | {} | {} | {} | {} | {:.0} KiB | {:.0} KiB | {:.0} KiB | {fit} | {vs} |",
            if c.ours { "**ours**: " } else { "peer: " },
            c.key,
            h.count,
            h.limited_by,
            h.cgroup_bytes.map(kib).unwrap_or_else(|| "?".into()),
            h.kmem_bytes.map(kib).unwrap_or_else(|| "?".into()),
            h.rss_kib,
            h.pss_kib,
            h.pte_kib
        );
    }
    let _ = writeln!(s, "\n### Not measured\n");
    let _ = writeln!(
        s,
        "- (d) Linux under tinyvmm is not in this section, because this host's /dev/kvm (PVM) \
         cannot boot Linux: it runs in the hardware-virtualization lane's level-1 guest, with \
         smaller N (1 and 10, one after another and 10 at a time, and 5 held), beside QEMU \
         microvm, in the section \"Linux guests at scale\" (`cargo xtask bench \
         --vmscale-only`).\n- `ocirun run` and crun are measured start to exit only: no \
         long-running OCI container is held."
    );
    let _ = writeln!(s, "\n### Commands\n");
    let _ = writeln!(
        s,
        "`{{i}}` is the instance's number, `{{slot}}` which of the running places it took (each \
         has its own OCI bundle, whose cgroup is `/<tag>-<runtime>/s<slot>`). Nothing may be left \
         after a family: the bench compares the mount tables (its own namespace and the host's \
         init), its descriptors and /run/cgctl before and after, and looks for cgroups with the \
         run's tag, processes still parented to it (it is their subreaper), KVM VMs of the \
         instances, runtime state and temp files; any of them fails the run.\n\n```sh"
    );
    for c in &m.cases {
        let _ = writeln!(s, "{}", c.argv.shown());
        if let Some(h) = &c.hold {
            let _ = writeln!(s, "{}   # held", h.argv.shown());
        }
    }
    let _ = writeln!(s, "```\n");
    let problems = m.problems();
    if !problems.is_empty() {
        let _ = writeln!(s, "### Problems in this run\n");
        for p in problems.iter().take(20) {
            let _ = writeln!(s, "- {}", p.replace('|', "/"));
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "{END}");
    s
}

/// The chart's lines: per case, its cost per instance against N, one after another (thin) and
/// concurrently (thick).
pub fn lines(m: &Measured) -> Vec<Line> {
    let colour = |key: &str| match key {
        "container" => 0,
        "bwrap" => 1,
        "tinyvmm" => 2,
        "qemu" => 3,
        "ocirun" => 4,
        _ => 5,
    };
    let mut out = Vec::new();
    for c in &m.cases {
        for concurrent in [false, true] {
            let points: Vec<(f64, f64)> = m
                .steps
                .iter()
                .filter(|s| m.cases[s.case].key == c.key && (s.step.parallel > 1) == concurrent)
                .map(|s| (s.step.n as f64, s.cost_ms()))
                .collect();
            if points.is_empty() {
                continue;
            }
            out.push(Line {
                label: format!(
                    "{}{}, {}",
                    c.key,
                    if c.ours { " (ours)" } else { "" },
                    if concurrent {
                        format!("{} at a time", super::PARALLEL)
                    } else {
                        "one after another".into()
                    }
                ),
                colour: colour(c.key),
                thin: !concurrent,
                points,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{plan, Inputs, Step};
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn measured() -> Measured {
        let cases = plan(&Inputs {
            bin: Path::new("/b"),
            rootfs: Path::new("/r"),
            work: Path::new("/w"),
            exit_guest: Path::new("/w/e.elf"),
            wait_guest: Path::new("/w/w.elf"),
            crun: Some(Path::new("/usr/bin/crun")),
            qemu: Some(Path::new("/usr/bin/qemu")),
            tag: "mtscale-1",
        });
        let key = |k: &str| cases.iter().position(|c| c.key == k).unwrap();
        let step = |k: &str, n: usize, parallel: usize, wall_ms: u64| StepResult {
            case: key(k),
            step: Step { n, parallel },
            wall: Duration::from_millis(wall_ms),
            times_ms: vec![1.0; n],
            failed: vec![],
            late: 0,
            peak_bytes: None,
            peak_kmem_bytes: None,
            left_bytes: None,
        };
        let mut top = step("tinyvmm", 1000, 20, 800);
        (top.peak_bytes, top.peak_kmem_bytes, top.left_bytes) = (
            Some(900.0 * 1024.0),
            Some(350.0 * 1024.0),
            Some(1.5 * 1024.0),
        );
        let steps = vec![
            step("tinyvmm", 10, 10, 10),
            top,
            step("qemu", 1000, 20, 100_000),
            step("ocirun", 10, 10, 30),
            step("ocirun", 1000, 20, 6000),
            step("crun", 1000, 20, 9000),
            step("container", 1000, 20, 4000),
        ];
        Measured {
            holds: vec![HoldResult {
                case: key("tinyvmm"),
                count: 200,
                limited_by: "the cap of 200".into(),
                cgroup_bytes: Some(600.0 * 1024.0),
                kmem_bytes: Some(300.0 * 1024.0),
                rss_kib: 250.0,
                pss_kib: 100.0,
                pte_kib: 40.0,
                failed: vec![],
                late: 0,
            }],
            cases,
            steps,
            max: 1000,
            load: ("2.50".into(), "3.00".into()),
            date: "2026-12-03 15:00 UTC".into(),
            ..Measured::default()
        }
    }

    #[test]
    fn goals_state_the_numbers_and_the_verdict() {
        let g = goals(&measured());
        assert_eq!(
            g[0],
            "At least 1,000 tiny VMs per second created, run and ended, 20 at a time: **met** — tinyvmm 1250/s at N = 1000 (QEMU microvm: 10/s)."
        );
        assert!(
            g[1].contains("**missed** — `ocirun run` 167/s against crun's 111/s, 1.50x"),
            "{}",
            g[1]
        );
        assert!(g[1].contains("composed container (cgctl + unshare-rs + pivot) 250/s, 2.25x"));
        assert!(
            g[2].starts_with("Per-VM memory overhead under 2 MiB: **met** — 600 KiB charged"),
            "{}",
            g[2]
        );
        // tinyvmm: 1.0 -> 0.8 ms per instance; ocirun 3.0 -> 6.0: a step.
        assert!(g[3].contains("**missed**"), "{}", g[3]);
        assert!(
            g[3].contains("tinyvmm concurrent: 1.00 ms -> 0.800 ms (0.80x)"),
            "{}",
            g[3]
        );
        assert!(
            g[3].contains("ocirun concurrent: 3.00 ms -> 6.00 ms (2.00x)"),
            "{}",
            g[3]
        );
    }

    #[test]
    fn the_section_has_rows_ratios_and_markers() {
        let s = section(&measured());
        assert!(s.starts_with(BEGIN) && s.trim_end().ends_with(END));
        assert!(
            s.contains("| 1000 | 20 (at a time) | **ours**: tinyvmm | 1250 |"),
            "{s}"
        );
        assert!(
            s.contains("| 125.00x | 900 KiB | 350 KiB | 1.5 KiB |"),
            "{s}"
        );
        assert!(s.contains("| 10 | 10 (at a time) | **ours**: tinyvmm | 1000 | 1.00 ms | 1.00 ms | 1.00 ms |  | ? | ? | ? |"), "{s}");
        assert!(s.contains("| **ours**: tinyvmm | 200 | the cap of 200 | 600 KiB | 300 KiB | 250 KiB | 100 KiB | 40 KiB | 3495 |"), "{s}");
        assert!(s.contains(
            "Load average (1 min) at the start and the end of the section: 2.50 and 3.00"
        ));
        let l = lines(&measured());
        let t = l
            .iter()
            .find(|l| l.label == "tinyvmm (ours), 20 at a time")
            .expect("line");
        assert_eq!(t.points, [(10.0, 1.0), (1000.0, 0.8)]);
    }

    #[test]
    fn splicing_replaces_only_the_section() {
        let sec = format!("{BEGIN}\nnew\n{END}\n");
        let md = format!("# B\n\nbefore\n\n{BEGIN}\nold\n{END}\n\n## After\n");
        assert_eq!(
            splice(&md, &sec),
            format!("# B\n\nbefore\n\n{BEGIN}\nnew\n{END}\n\n## After\n")
        );
        assert_eq!(
            splice("# B\n", &sec),
            format!("# B\n\n{BEGIN}\nnew\n{END}\n")
        );
        assert_eq!(splice("", &sec), sec);
        assert_eq!(
            keep(&md, "# fresh\n".into()),
            format!("# fresh\n\n{BEGIN}\nold\n{END}\n")
        );
        assert_eq!(keep("# no section", "# fresh\n".into()), "# fresh\n");
        assert_eq!(extract(&format!("{BEGIN} no end")), None);
    }
}
