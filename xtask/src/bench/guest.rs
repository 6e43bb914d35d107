//! The tiny guest both VMMs boot in the benchmark: a PVH ELF (the entry note QEMU's `-M microvm`
//! and tinyvmm's `pvh` format both take) that writes 0 to I/O port 0xf4 and halts. tinyvmm's
//! status port ends the run with status 0; QEMU's isa-debug-exit device at the same port ends it
//! with (0 << 1) | 1 = 1. Built from source with binutils, like tinyvmm's own example guests.

use crate::util;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest: the Xen PVH entry note (type 18, XEN_ELFNOTE_PHYS32_ENTRY) pointing at 32-bit code.
const SOURCE: &str = r#"
        .section .note.Xen, "a", @note
        .balign 4
        .long 4
        .long 4
        .long 18
        .asciz "Xen"
        .long _start
        .text
        .code32
        .globl _start
_start:
        xor %eax, %eax
        outb %al, $0xf4
1:      hlt
        jmp 1b
"#;

/// The waiting guest of the scale bench: interrupts off, then HLT for ever. It runs where a
/// VMM has an in-kernel interrupt controller (tinyvmm's `--kernel` path, QEMU with KVM), so that
/// KVM parks the vCPU in the host kernel and the guest costs memory but no CPU until killed.
const WAIT_SOURCE: &str = r#"
        .section .note.Xen, "a", @note
        .balign 4
        .long 4
        .long 4
        .long 18
        .asciz "Xen"
        .long _start
        .text
        .code32
        .globl _start
_start:
        cli
1:      hlt
        jmp 1b
"#;

/// Exit status QEMU gives for the guest's write of 0 to isa-debug-exit.
pub const QEMU_STATUS: i32 = 1;

/// Assembles and links the guest into `dir/pvh-exit.elf`.
pub fn build(dir: &Path) -> Result<PathBuf, String> {
    assemble(dir, "pvh-exit", SOURCE, "0x100000")
}

/// Assembles and links the waiting guest into `dir/pvh-wait.elf`, its code at 2 MiB: tinyvmm's
/// `--kernel` path keeps the first megabyte for boot structures, and ld puts the note segment
/// a page below the code.
pub fn build_waiting(dir: &Path) -> Result<PathBuf, String> {
    assemble(dir, "pvh-wait", WAIT_SOURCE, "0x200000")
}

fn assemble(dir: &Path, name: &str, source: &str, text: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let src = dir.join(format!("{name}.s"));
    let obj = dir.join(format!("{name}.o"));
    let elf = dir.join(format!("{name}.elf"));
    std::fs::write(&src, source).map_err(|e| format!("writing {}: {e}", src.display()))?;
    util::output(Command::new("as").arg("--64").arg("-o").arg(&obj).arg(&src))
        .map_err(|e| format!("{e} (binutils' as is needed: cargo xtask deps)"))?;
    util::output(
        Command::new("ld")
            .args(["-m", "elf_x86_64"])
            .arg(format!("-Ttext={text}"))
            .args(["-e", "_start", "-o"])
            .arg(&elf)
            .arg(&obj),
    )?;
    Ok(elf)
}

/// The QEMU command line that boots `elf` as a PVH guest on `-M microvm` with KVM, nothing else
/// attached: the cheapest QEMU start there is.
pub fn qemu_argv(elf: &Path, mem: &str) -> Vec<String> {
    [
        "qemu-system-x86_64",
        "-M",
        "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=off",
        "-accel",
        "kvm",
        "-cpu",
        "qemu64,pni=off",
        "-m",
        mem,
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=1",
        "-kernel",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([elf.display().to_string()])
    .collect()
}
