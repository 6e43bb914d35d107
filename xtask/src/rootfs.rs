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

/// True for an x86-64 ELF executable without a PT_INTERP program header, read by tinyvmm's
/// ELF reader (the workspace's one).
fn is_static_elf(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|data| tinyvmm::plan::parse_elf(&data).ok())
        .is_some_and(|elf| !elf.interpreter)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An x86-64 ELF64 executable whose program headers have these types, each covering the
    /// file's first 64 bytes.
    fn elf(types: &[u32]) -> Vec<u8> {
        let mut d = vec![0u8; 64];
        d[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        d[0x12..0x14].copy_from_slice(&62u16.to_le_bytes());
        d[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        d[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        d[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for ty in types {
            let mut ph = [0u8; 56];
            ph[..4].copy_from_slice(&ty.to_le_bytes());
            ph[0x18..0x20].copy_from_slice(&0x40_0000u64.to_le_bytes());
            ph[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
            ph[0x28..0x30].copy_from_slice(&64u64.to_le_bytes());
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
        let results = [
            check("static", elf(&[1])),
            check("dynamic", elf(&[1, 3])),
            check("short", b"\x7fELF\x02".to_vec()),
            check("script", b"#!/bin/sh\n".to_vec()),
        ];
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(results, [true, false, false, false]);
        // This test program is linked dynamically.
        assert!(!is_static_elf(Path::new("/proc/self/exe")));
    }
}
