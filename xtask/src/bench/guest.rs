//! The tiny guest both VMMs boot in the benchmark: a PVH ELF (the entry note QEMU's `-M microvm`
//! and tinyvmm's `pvh` format both take) that writes 0 to I/O port 0xf4 and halts. tinyvmm's
//! status port ends the run with status 0; QEMU's isa-debug-exit device at the same port ends it
//! with (0 << 1) | 1 = 1. Built from source with binutils, like tinyvmm's own example guests.

use crate::util;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What both guests start with: the Xen PVH entry note (type 18, XEN_ELFNOTE_PHYS32_ENTRY)
/// pointing at 32-bit code at `_start`.
const PVH_HEADER: &str = r#"
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
"#;

/// The guest's code: status 0 to the exit port, then halt.
const EXIT_BODY: &str = r#"
        xor %eax, %eax
        outb %al, $0xf4
1:      hlt
        jmp 1b
"#;

/// The waiting guest of the scale bench: interrupts off, then HLT for ever. It runs where a
/// VMM has an in-kernel interrupt controller (tinyvmm's `--kernel` path, QEMU with KVM), so that
/// KVM parks the vCPU in the host kernel and the guest costs memory but no CPU until killed.
const WAIT_BODY: &str = r#"
        cli
1:      hlt
        jmp 1b
"#;

/// Exit status QEMU gives for the guest's write of 0 to isa-debug-exit.
pub const QEMU_STATUS: i32 = 1;

/// Assembles and links the guest into `dir/pvh-exit.elf`.
pub fn build(dir: &Path) -> Result<PathBuf, String> {
    assemble(dir, "pvh-exit", EXIT_BODY, "0x100000")
}

/// Assembles and links the waiting guest into `dir/pvh-wait.elf`, its code at 2 MiB: tinyvmm's
/// `--kernel` path keeps the first megabyte for boot structures, and ld puts the note segment
/// a page below the code.
pub fn build_waiting(dir: &Path) -> Result<PathBuf, String> {
    assemble(dir, "pvh-wait", WAIT_BODY, "0x200000")
}

/// Assembles `PVH_HEADER` followed by `body` and links it with its code at `text`.
fn assemble(dir: &Path, name: &str, body: &str, text: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let src = dir.join(format!("{name}.s"));
    let obj = dir.join(format!("{name}.o"));
    let elf = dir.join(format!("{name}.elf"));
    std::fs::write(&src, format!("{PVH_HEADER}{body}"))
        .map_err(|e| format!("writing {}: {e}", src.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Both guests carry the one PVH note and their own code at their own address.
    #[test]
    fn both_guests_assemble_with_the_pvh_note() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-guest-{}", std::process::id()));
        let exit = build(&dir);
        let wait = build_waiting(&dir);
        let read = |p: &Result<PathBuf, String>| {
            std::fs::read(p.as_ref().expect("assembled")).expect("readable")
        };
        let (exit_elf, wait_elf) = (read(&exit), read(&wait));
        let _ = std::fs::remove_dir_all(&dir);
        for elf in [&exit_elf, &wait_elf] {
            assert_eq!(&elf[..4], b"\x7fELF");
            assert!(elf.windows(4).any(|w| w == b"Xen\0"), "no PVH note");
        }
        // xor %eax,%eax; out %al,$0xf4 in one, cli; hlt in the other.
        assert!(exit_elf.windows(4).any(|w| w == [0x31, 0xc0, 0xe6, 0xf4]));
        assert!(wait_elf.windows(2).any(|w| w == [0xfa, 0xf4]));
        assert!(!wait_elf.windows(2).any(|w| w == [0xe6, 0xf4]));
    }
}
