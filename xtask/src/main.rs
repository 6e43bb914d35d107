//! `cargo xtask`: the project's recipes, so that CI, the README and a developer run the same steps.

mod bench;
mod ci;
mod conformance;
mod cpio;
mod demo;
mod deps;
mod early;
mod engines;
mod install;
mod kernel;
mod man;
mod measure;
mod nested;
mod release;
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
  bench --boot-only | --devices-only | --oneshot-only | --vmscale-only [--quick] [--rounds N] [-v]
                only the Linux boots, or only the VM disk and network measurements (tinyvmm
                against QEMU microvm, VM-container, VM-VM), or only the one-shot root packed
                against --share-rootfs (virtio-fs), in the hardware-KVM lane's level 1;
                --boot-only prints its section and writes nothing, --devices-only replaces
                BENCHMARKS.md's devices section and docs/net.svg, --oneshot-only its one-shot
                root section, --vmscale-only its section of Linux guests at scale (N = 1 and
                10, one after another and 10 at a time, tinyvmm beside QEMU microvm); N rounds (default 3, 1 with --quick), -v prints each level-1
                script's output as it is reported
  bench --scale [--scale-max N] [--out DIR]
                only the scale section: N = 1..1000 containers, OCI runs and tiny VMs, one
                after another and 20 at a time, beside bwrap, crun and QEMU; memory of up to 200
                held at once; fails if anything is left; BENCHMARKS.md's section, docs/scale.svg
  build [TOOL...]
                the shipped builds (static, not position independent; the command with its
                RUSTFLAGS is printed) into target/x86_64-unknown-linux-gnu/release, printed
  ci            deps, rootfs, kernel; fmt check, clippy -D warnings, build, cargo test
                --workspace, conformance --ci, cargo doc, fuzz targets check, vmtest, nested
  conformance [FILTER] [--timeout SECS] [--ocirun-only | --ci] [-v]
                the OCI runtime-tools suite against ocirun (and crun, runc where installed)
  deb [--out DIR] [--bin-dir DIR] [--compress none|gzip|xz]
                a .deb of the shipped builds, pages and completions under /usr (dpkg-deb;
                default target/deb); prints its path
  demo [--json] a container, a VM and a plain process on this machine, measured side by side,
                and the network between containers
  engines [podman] [containerd] [cri]
                podman and containerd driving ocirun (crun as the reference), and
                containerd's CRI plugin with ocirun as a runtime handler; N passed, N failed
  deps          install (idempotently) the Debian packages tests and benchmarks need
  install [--prefix DIR] [--drop-in] [--bin-dir DIR]
                the shipped builds into DIR/bin (default /usr/local), man pages, bash, zsh and
                fish completions; --drop-in adds unshare, nsenter, pivot_root, switch_root
  kernel        fetch Debian's cloud and generic kernels into target/kernel (cached), print
                their paths
  man [--out DIR] [--drop-in]
                the tools' man pages and bash, zsh and fish completions, rendered from
                their option definitions (default target/man); prints the directory
  nested [FILTER] [--jobs N] [--timeout SECS] [--no-build] [--list] [-v]
                the hardware-KVM lane: Linux under tinyvmm inside QEMU (TCG) guests with
                nested KVM (--jobs of them at once, one CPU each, default 2), every case
                with its exact status; N passed, N failed. e.g. cargo xtask nested cpus32
  rootfs [DIR]  build the busybox root filesystem (default target/rootfs)
  soak [--containers N] [--vms N] [--parallel N] [--time-limit SECS] [--bin-dir DIR]
                1,000 containers and 1,000 tiny VMs, 20 at a time; fails if anything is left
  vmtest [FILTER] [--vmm qemu|tinyvmm] [--timeout SECS] [-v]
                boot the guest kernel with xtask/vmtest/cases in an initramfs; N passed, N failed

Examples:
  cargo xtask install --prefix ~/.local --drop-in
  cargo xtask deb && apt-get install ./target/deb/microtools_0.1.0_amd64.deb
  cargo xtask demo --json > demo.json
  cargo xtask bench --quick --out /tmp/bench
  cargo xtask bench --devices-only --rounds 1 -v
  cargo xtask ci
  MICROTOOLS_REQUIRE=root,userns,kvm,rootfs cargo xtask ci
  cargo xtask rootfs /tmp/rootfs && chroot /tmp/rootfs /bin/sh -c 'echo ok'
";

/// `cargo xtask build [TOOL...]`: the shipped builds of TOOLs (default: every tool); prints
/// their directory.
fn build(args: &[String]) -> Result<(), String> {
    let pkgs: Vec<&str> = if args.is_empty() {
        release::SHIPPED_TOOLS.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    release::build_release_of(&pkgs)?;
    println!("{}", release::release_dir().display());
    Ok(())
}

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
        "build" => build(rest),
        "ci" => ci::run(rest),
        "conformance" => conformance::run(rest),
        "deb" => install::deb(rest),
        "demo" => demo::run(rest),
        "engines" => engines::run(rest),
        "install" => install::run(rest),
        "deps" => deps::run(rest).map(|_| ()),
        "kernel" => kernel::run(rest),
        "man" => man::run(rest),
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
            // Most recipe errors end in an io::Error's text: the one place that strips std's
            // " (os error N)" does it here too.
            eprintln!("xtask: {}", conventions::output::without_os_error(&msg));
            ExitCode::from(1)
        }
    }
}
