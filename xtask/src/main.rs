//! `cargo xtask`: the project's recipes, so that CI, the README and a developer run the same steps.

mod bench;
mod ci;
mod conformance;
mod cpio;
mod demo;
mod deps;
mod early;
mod engines;
mod kernel;
mod nested;
mod rootfs;
mod soak;
mod util;
mod vmtest;

use std::process::ExitCode;

const USAGE: &str = "\
Usage: cargo xtask <COMMAND> [ARGS]

Commands:
  bench [--quick] [--out DIR] [--only TOOL]
                each tool against its peer (hyperfine); writes BENCHMARKS.md, docs/bench.svg
  bench --scale [--scale-max N] [--out DIR]
                only the scale section: N = 1..1000 containers, OCI runs and tiny VMs, one
                after another and 20 at a time, beside bwrap, crun and QEMU; memory of up to 200
                held at once; fails if anything is left; BENCHMARKS.md's section, docs/scale.svg
  ci            deps, rootfs, kernel; fmt check, clippy -D warnings, build, cargo test
                --workspace, conformance --ci, cargo doc, fuzz targets check, vmtest, nested
  conformance [FILTER] [--timeout SECS] [--ocirun-only | --ci] [-v]
                the OCI runtime-tools suite against ocirun (and crun, runc where installed)
  demo [--json] a container, a VM and a plain process on this machine, measured side by side
  engines [podman] [containerd] [cri]
                podman and containerd driving ocirun (crun as the reference), and
                containerd's CRI plugin with ocirun as a runtime handler; N passed, N failed
  deps          install (idempotently) the Debian packages tests and benchmarks need
  kernel        fetch Debian's cloud and generic kernels into target/kernel (cached), print
                their paths
  nested [FILTER] [--jobs N] [--timeout SECS] [--no-build] [--list] [-v]
                the hardware-KVM lane: Linux under tinyvmm inside a QEMU (TCG) guest with
                nested KVM, every case with its exact status; N passed, N failed
  rootfs [DIR]  build the busybox root filesystem (default target/rootfs)
  soak [--containers N] [--vms N] [--parallel N] [--time-limit SECS] [--bin-dir DIR]
                1,000 containers and 1,000 tiny VMs, 20 at a time; fails if anything is left
  vmtest [FILTER] [--vmm qemu|tinyvmm] [--timeout SECS] [-v]
                boot the guest kernel with xtask/vmtest/cases in an initramfs; N passed, N failed

Examples:
  cargo xtask demo --json > demo.json
  cargo xtask bench --quick --out /tmp/bench
  cargo xtask ci
  MICROTOOLS_REQUIRE=root,userns,kvm,rootfs cargo xtask ci
  cargo xtask rootfs /tmp/rootfs && chroot /tmp/rootfs /bin/sh -c 'echo ok'
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => {
            eprint!("{USAGE}");
            return ExitCode::from(1);
        }
    };
    let result = match cmd {
        "bench" => bench::run(rest),
        "ci" => ci::run(rest),
        "conformance" => conformance::run(rest),
        "demo" => demo::run(rest),
        "engines" => engines::run(rest),
        "deps" => deps::run(rest).map(|_| ()),
        "kernel" => kernel::run(rest),
        "nested" => nested::run(rest),
        "rootfs" => rootfs::run(rest),
        "soak" => soak::run(rest),
        "vmtest" => vmtest::run(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!(
            "unknown command '{other}' (try 'cargo xtask --help')"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xtask: {msg}");
            ExitCode::from(1)
        }
    }
}
