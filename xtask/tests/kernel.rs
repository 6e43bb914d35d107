//! `cargo xtask kernel` leaves Debian's cloud bzImage at the path testcaps expects and an
//! uncompressed ELF vmlinux beside it that tinyvmm's PVH path can boot, and Debian's generic
//! bzImage under target/kernel/generic; a second run changes nothing.

use std::process::Command;
use testcaps::{require, Cap};

fn u16_at(d: &[u8], o: usize) -> usize {
    u16::from_le_bytes([d[o], d[o + 1]]) as usize
}
fn u32_at(d: &[u8], o: usize) -> usize {
    u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]) as usize
}
fn u64_at(d: &[u8], o: usize) -> usize {
    u64::from_le_bytes(d[o..o + 8].try_into().unwrap()) as usize
}

/// The types of the ELF notes named "Xen" in PT_NOTE segments.
fn xen_note_types(elf: &[u8]) -> Vec<usize> {
    let (phoff, phentsize, phnum) = (u64_at(elf, 0x20), u16_at(elf, 0x36), u16_at(elf, 0x38));
    let mut types = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(elf, ph) != 4 {
            continue; // not PT_NOTE
        }
        let (off, size) = (u64_at(elf, ph + 8), u64_at(elf, ph + 32));
        let mut p = off;
        while p + 12 <= off + size {
            let (namesz, descsz, ty) = (u32_at(elf, p), u32_at(elf, p + 4), u32_at(elf, p + 8));
            let name = &elf[p + 12..p + 12 + namesz];
            if name == b"Xen\0" {
                types.push(ty);
            }
            p += 12 + namesz.div_ceil(4) * 4 + descsz.div_ceil(4) * 4;
        }
    }
    types
}

#[test]
fn kernel_is_cached_and_has_a_pvh_vmlinux() {
    require!(Cap::Kernel);
    // `cargo xtask kernel`'s own files, whatever MICROTOOLS_KERNEL names (CI sets it to these).
    let image = testcaps::target_dir().join("kernel/vmlinuz");
    let vmlinux = image.with_file_name("vmlinux");
    let before = std::fs::metadata(&vmlinux).and_then(|m| m.modified()).ok();
    let out = testcaps::run(
        Command::new(env!("CARGO_BIN_EXE_xtask")).arg("kernel"),
        testcaps::HANG_GUARD,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let generic = testcaps::target_dir().join("kernel/generic/vmlinuz");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [image.display().to_string(), generic.display().to_string()]
    );
    let out = testcaps::run(
        Command::new(env!("CARGO_BIN_EXE_xtask")).arg("kernel"),
        testcaps::HANG_GUARD,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("is cached"), "{}", out.stderr);
    assert!(!out.stderr.contains("apt-get"), "{}", out.stderr);
    if before.is_some() {
        let after = std::fs::metadata(&vmlinux).and_then(|m| m.modified()).ok();
        assert_eq!(before, after, "vmlinux was rewritten");
    }

    let generic_bz = std::fs::read(&generic).unwrap();
    assert_eq!(&generic_bz[0x202..0x206], b"HdrS", "{}", generic.display());
    assert_ne!(generic_bz, std::fs::read(&image).unwrap());

    let bz = std::fs::read(&image).unwrap();
    assert_eq!(
        &bz[0x202..0x206],
        b"HdrS",
        "{} is not a bzImage",
        image.display()
    );
    let elf = std::fs::read(&vmlinux).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "ELF64");
    assert_eq!(u16_at(&elf, 0x12), 62, "e_machine x86-64");
    // XEN_ELFNOTE_PHYS32_ENTRY (18) is the PVH entry point.
    assert!(
        xen_note_types(&elf).contains(&18),
        "no PVH note in {}",
        vmlinux.display()
    );
    // The build appends the uncompressed size to the compressed payload.
    let setup_sects = if bz[0x1f1] == 0 {
        4
    } else {
        bz[0x1f1] as usize
    };
    let end = (setup_sects + 1) * 512 + u32_at(&bz, 0x248) + u32_at(&bz, 0x24c);
    assert_eq!(u32_at(&bz, end - 4), elf.len());
}
