//! Input files a guest cannot hold (issue #22 item 9): devices, FIFOs, sparse files past --mem
//! and a --rootfs tree past --mem must each be refused from their size and type, before tinyvmm
//! reads them, with exit 125 and one line naming the file. Each run has an address-space limit
//! far below the inputs' sizes, so a tool that read them whole would die of it instead.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testcaps::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_tinyvmm");

/// The address space each run may use: far more than tinyvmm needs before it creates a VM, far
/// less than the inputs below.
const AS_LIMIT: u64 = 512 << 20;

/// Larger than the default --mem (64M) and than [`AS_LIMIT`]; sparse, so it costs no disk.
const SPARSE: u64 = 6 << 30;

/// A fresh directory under target/tmp, removed when dropped.
fn temp_dir(name: &str) -> TempDir {
    TempDir::new_in(testcaps::target_dir().join("tmp"), name).expect("create the temp dir")
}

/// `dir/name` as the string the command lines take.
fn path_in(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().expect("utf-8 path").to_string()
}

fn sparse(dir: &Path, name: &str) -> String {
    let path = path_in(dir, name);
    let f = std::fs::File::create(&path).expect("create the sparse file");
    f.set_len(SPARSE).expect("size the sparse file");
    path
}

fn fifo(dir: &Path, name: &str) -> String {
    let path = path_in(dir, name);
    let out = testcaps::run(
        Command::new("mkfifo").arg(&path),
        std::time::Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "mkfifo {path}: {out:?}");
    path
}

/// Runs tinyvmm under [`AS_LIMIT`]; the time limit is only a hang guard (a FIFO that blocks).
fn run_bounded(args: &[&str]) -> testcaps::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    // SAFETY: setrlimit is async-signal-safe and touches only the child about to exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: AS_LIMIT,
                rlim_max: AS_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    testcaps::run(&mut cmd, Duration::from_secs(60))
}

/// The run ended with 125 and one line on stderr naming `file` and containing `why`.
fn refused(args: &[&str], file: &str, why: &str) {
    let out = run_bounded(args);
    assert_eq!(out.code, Some(125), "{args:?}: {out:?}");
    assert_eq!(out.stdout, "", "{args:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
    assert!(out.stderr.starts_with("tinyvmm: "), "{args:?}: {out:?}");
    assert!(out.stderr.contains(file), "{args:?} names {file}: {out:?}");
    assert!(out.stderr.contains(why), "{args:?} says {why:?}: {out:?}");
}

const NOT_REGULAR: &str = "not a regular file";

#[test]
fn devices_are_refused_without_reading_them() {
    let kernel = tinyvmm::guest_path("testkernel-bz.bin");
    refused(
        &["run", "/dev/zero"],
        "image /dev/zero",
        "not a regular file (a character device)",
    );
    refused(
        &["run", "--kernel", "/dev/zero"],
        "kernel /dev/zero",
        NOT_REGULAR,
    );
    refused(
        &["run", "--kernel", &kernel, "--initrd", "/dev/zero"],
        "initrd /dev/zero",
        NOT_REGULAR,
    );
}

#[test]
fn fifos_are_refused_without_blocking() {
    let dir = temp_dir("tinyvmm-fifo");
    let fifo = fifo(dir.path(), "fifo");
    let kernel = tinyvmm::guest_path("testkernel-bz.bin");
    for args in [
        &["run", &fifo][..],
        &["run", "--kernel", &fifo],
        &["run", "--kernel", &kernel, "--initrd", &fifo],
    ] {
        refused(args, &fifo, "not a regular file (a FIFO)");
    }
}

#[test]
fn files_larger_than_guest_memory_are_refused_before_reading() {
    let dir = temp_dir("tinyvmm-sparse");
    let big = sparse(dir.path(), "big");
    let kernel = tinyvmm::guest_path("testkernel-bz.bin");
    let limit = "6G (6442450944 bytes), more than the 64M of guest memory (--mem)";
    refused(&["run", &big], &format!("image {big}"), limit);
    refused(&["run", "--kernel", &big], &format!("kernel {big}"), limit);
    refused(
        &["run", "--kernel", &kernel, "--initrd", &big],
        &format!("initrd {big}"),
        limit,
    );
    refused(
        &["run", "--mem", "16M", &big],
        &big,
        "more than the 16M of guest memory (--mem)",
    );
}

#[test]
fn a_rootfs_larger_than_guest_memory_is_refused_before_building() {
    let dir = temp_dir("tinyvmm-rootfs");
    std::fs::create_dir_all(path_in(dir.path(), "root/bin")).expect("mkdir");
    std::fs::write(path_in(dir.path(), "root/bin/small"), b"small").expect("write");
    let big = dir.path().join("root/big");
    std::fs::create_dir_all(&big).expect("mkdir");
    let file = sparse(&big, "disk.img");
    let root = path_in(dir.path(), "root");
    let kernel = tinyvmm::guest_path("testkernel-bz.bin");
    refused(
        &["run", "--kernel", &kernel, "--rootfs", &root, "--", "true"],
        &file,
        "more than the 64M of guest memory (--mem)",
    );
}

/// Issue #17's bad kernels: each a one-line error and 125 before any KVM call (the synthetic
/// kernel cut short, a --cpus count out of range, Debian's kernel in less memory than its
/// bzImage header asks for, though the file fits).
#[test]
fn bad_kernels_and_cpu_counts_are_refused() {
    let dir = temp_dir("tinyvmm-badkernel");
    let whole =
        std::fs::read(tinyvmm::guest_path("testkernel-bz.bin")).expect("testkernel-bz is built");
    let cut = path_in(dir.path(), "cut.bin");
    std::fs::write(&cut, &whole[..0x400]).expect("write");
    let header_only = path_in(dir.path(), "header.bin");
    std::fs::write(&header_only, &whole[..0x220]).expect("write");
    let kernel = tinyvmm::guest_path("testkernel-bz.bin");
    refused(
        &["run", "--kernel", &cut],
        "bad image",
        "truncated bzImage: nothing after the setup sectors",
    );
    refused(
        &["run", "--kernel", &header_only],
        "bad image",
        "neither an ELF vmlinux nor a bzImage",
    );
    // The PVH ELF vmlinux cut inside its program headers, and inside its one segment.
    let elf =
        std::fs::read(tinyvmm::guest_path("testkernel-pvh.elf")).expect("testkernel-pvh is built");
    let elf_headers = path_in(dir.path(), "headers.elf");
    std::fs::write(&elf_headers, &elf[..100]).expect("write");
    let elf_segment = path_in(dir.path(), "segment.elf");
    // The segment is [0x1000, 0x1214) of the file (symbols and section headers follow it).
    std::fs::write(&elf_segment, &elf[..0x1100]).expect("write");
    refused(
        &["run", "--kernel", &elf_headers],
        "bad image",
        "truncated ELF: the program header table is cut off",
    );
    refused(
        &["run", "--kernel", &elf_segment],
        "bad image",
        "truncated ELF: segment 0 (offset ",
    );
    for n in ["0", "33", "1000"] {
        refused(&["run", "--kernel", &kernel, "--cpus", n], "--cpus", n);
    }
    refused(
        &["run", "--kernel", &kernel, "--mem", "1M"],
        "--mem",
        "a kernel needs at least 2M",
    );
    testcaps::require!(testcaps::Cap::Kernel);
    let debian = testcaps::kernel_image();
    let debian = debian.to_str().expect("utf-8 path");
    refused(
        &["run", "--kernel", debian, "--mem", "16M"],
        debian,
        "the kernel needs [0x100000, 0x",
    );
}
