//! `cargo xtask rootfs [DIR]`: a minimal busybox root filesystem for container tests and demos.

use crate::util;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the rootfs at `args[0]` or `target/rootfs` and prints its path.
pub fn run(args: &[String]) -> Result<(), String> {
    let dir = match args {
        [] => default_dir(),
        [d] => PathBuf::from(d),
        _ => return Err("usage: cargo xtask rootfs [DIR]".to_string()),
    };
    ensure(&dir)?;
    println!("{}", dir.display());
    Ok(())
}

/// Where the rootfs lives unless told otherwise.
pub fn default_dir() -> PathBuf {
    util::target_dir().join("rootfs")
}

/// Builds the rootfs at `dir` unless an up-to-date one is there.
pub fn ensure(dir: &Path) -> Result<(), String> {
    let busybox = static_busybox()?;
    let stamp = format!("{}\n", busybox.display());
    let stamp_path = dir.join(".microtools-rootfs");
    if std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str())
        && dir.join("bin/busybox").is_file()
    {
        eprintln!("xtask rootfs: {} is up to date", dir.display());
        return Ok(());
    }
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    build(&tmp, &busybox).map_err(|e| format!("building {}: {e}", tmp.display()))?;
    std::fs::write(tmp.join(".microtools-rootfs"), stamp).map_err(|e| e.to_string())?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("removing old {}: {e}", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| format!("renaming to {}: {e}", dir.display()))?;
    eprintln!(
        "xtask rootfs: built {} from {}",
        dir.display(),
        busybox.display()
    );
    Ok(())
}

fn build(root: &Path, busybox: &Path) -> std::io::Result<()> {
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run",
        "var/tmp", "mnt", "home",
    ] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    std::fs::copy(busybox, root.join("bin/busybox"))?;
    std::fs::set_permissions(
        root.join("bin/busybox"),
        std::fs::Permissions::from_mode(0o755),
    )?;
    let list = Command::new(busybox).arg("--list-full").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" || applet.contains("..") {
            continue;
        }
        let link = root.join(applet);
        if link.exists() {
            continue;
        }
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        symlink("/bin/busybox", &link)?;
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    std::fs::write(root.join("etc/hostname"), "microtools\n")?;
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost\n::1 localhost\n",
    )?;
    Ok(())
}

/// A statically linked busybox: the host's if it is static, else the busybox-static package
/// fetched with `apt-get download` and unpacked with `dpkg -x` under target/ (no install).
fn static_busybox() -> Result<PathBuf, String> {
    for candidate in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = Path::new(candidate);
        if p.is_file() && is_static_elf(p) {
            return Ok(p.to_path_buf());
        }
    }
    let debs = util::target_dir().join("debs");
    let unpacked = debs.join("busybox-static");
    let bin = unpacked.join("bin/busybox");
    if bin.is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&debs).map_err(|e| format!("creating {}: {e}", debs.display()))?;
    util::run(
        Command::new("apt-get")
            .args(["download", "busybox-static"])
            .current_dir(&debs),
    )?;
    let deb = std::fs::read_dir(&debs)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().starts_with("busybox-static_"))
                .unwrap_or(false)
        })
        .ok_or("apt-get download busybox-static left no .deb (run apt-get update first)")?;
    util::run(Command::new("dpkg").arg("-x").arg(&deb).arg(&unpacked))?;
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} has no bin/busybox", deb.display()))
    }
}

/// True for an ELF64 executable without a PT_INTERP program header.
fn is_static_elf(path: &Path) -> bool {
    let Ok(data) = std::fs::read(path) else {
        return false;
    };
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| {
        data.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |o: usize| {
        data.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).all(|i| {
        // Checked: a malformed header must read as "not static", not overflow.
        usize::try_from(phoff)
            .ok()
            .and_then(|p| p.checked_add(i * phentsize))
            .and_then(|off| data.get(off..off.checked_add(4)?))
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != 3)
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 header with `phnum` program headers of 56 bytes at `phoff`, each of type `ty`.
    fn elf(phoff: u64, phnum: u16, ty: u32) -> Vec<u8> {
        let mut d = vec![0u8; 64];
        d[..5].copy_from_slice(b"\x7fELF\x02");
        d[0x20..0x28].copy_from_slice(&phoff.to_le_bytes());
        d[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        d[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
        for _ in 0..phnum {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&ty.to_le_bytes());
            d.extend(ph);
        }
        d
    }

    #[test]
    fn static_means_no_interpreter_and_bad_headers_are_not_static() {
        let dir = std::env::temp_dir().join(format!("xtask-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let check = |name: &str, data: Vec<u8>| {
            let p = dir.join(name);
            std::fs::write(&p, data).unwrap();
            is_static_elf(&p)
        };
        assert!(check("static", elf(64, 2, 1)), "PT_LOAD only");
        assert!(!check("dynamic", elf(64, 2, 3)), "PT_INTERP");
        assert!(!check("far", elf(u64::MAX - 2, 1, 1)), "phoff past the end");
        assert!(!check("short", b"\x7fELF\x02".to_vec()));
        assert!(!check("script", b"#!/bin/sh\n".to_vec()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
