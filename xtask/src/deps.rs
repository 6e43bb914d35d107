//! `cargo xtask deps`: installs the Debian packages the tests and benchmarks use, only if missing.

use crate::util;
use std::process::Command;

/// Packages and why each is needed.
pub const PACKAGES: &[(&str, &str)] = &[
    (
        "busybox-static",
        "the container rootfs (cargo xtask rootfs)",
    ),
    ("bubblewrap", "the peer of pivot in benchmarks"),
    ("hyperfine", "cargo xtask bench"),
    ("libseccomp-dev", "seccomp filters (privs, setpriv-rs)"),
    ("cgroup-tools", "libcgroup's tools, the peer of cgctl"),
    (
        "iproute2",
        "veth pairs in the composition scripts, the peer of netwire in benchmarks",
    ),
    (
        "podman",
        "the real CNI client netwire's plugin is tested through (network_backend cni)",
    ),
    (
        "containernetworking-plugins",
        "Debian's CNI bridge plugin, the reference beside netwire's",
    ),
    (
        "socat",
        "both ends of tinyvmm --vsock in cargo xtask nested (VSOCK in level 2, Unix sockets in level 1)",
    ),
    (
        "iperf3",
        "TCP throughput in cargo xtask bench's networking rows",
    ),
    (
        "qemu-system-x86",
        "the guest-kernel test lane and the peer of tinyvmm",
    ),
    (
        "qemu-system-common",
        "virtiofsd (/usr/lib/qemu/virtiofsd), the backend of tinyvmm --share",
    ),
    ("binutils", "as/ld for tinyvmm's example guests"),
    (
        "e2fsprogs",
        "mkfs.ext4 -d: the ext4 root disk tinyvmm boots from in cargo xtask nested",
    ),
    (
        "util-linux",
        "unshare and nsenter, the peers of unshare-rs and nsenter-rs",
    ),
    ("cpio", "initramfs checks"),
    ("podman", "cargo xtask engines: podman drives ocirun"),
    ("conmon", "cargo xtask engines: podman's container monitor"),
    (
        "crun",
        "cargo xtask engines and conformance: the reference OCI runtime",
    ),
    (
        "containerd",
        "cargo xtask engines: containerd's runc shim drives ocirun",
    ),
    (
        "golang-go",
        "builds the OCI conformance suite offline (cargo xtask conformance)",
    ),
    (
        "crun",
        "the peer of ocirun in the conformance recipe and benchmarks",
    ),
    (
        "runc",
        "the peer of ocirun in the conformance recipe and benchmarks",
    ),
    (
        "man-db",
        "man -l renders every generated man page in xtask's man test",
    ),
    ("groff-base", "the roff formatter man runs"),
    (
        "strace",
        "tests that check how the tools start (no std runtime start-up, vfork-style children)",
    ),
];

fn installed(pkg: &str) -> bool {
    util::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
        .map(|s| s.contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs what is missing; returns the names it installed.
pub fn run(args: &[String]) -> Result<Vec<String>, String> {
    if !args.is_empty() {
        return Err("deps takes no arguments".to_string());
    }
    let missing: Vec<String> = PACKAGES
        .iter()
        .filter(|(p, _)| !installed(p))
        .map(|(p, _)| p.to_string())
        .collect();
    if missing.is_empty() {
        eprintln!(
            "xtask deps: all {} packages already installed",
            PACKAGES.len()
        );
        return Ok(missing);
    }
    for (p, why) in PACKAGES
        .iter()
        .filter(|(p, _)| missing.iter().any(|m| m == p))
    {
        eprintln!("xtask deps: installing {p}: {why}");
    }
    util::run(&mut util::apt_get(&["update", "-qq"]))?;
    util::run(util::apt_get(&["install", "-y", "-qq", "--no-install-recommends"]).args(&missing))?;
    Ok(missing)
}
