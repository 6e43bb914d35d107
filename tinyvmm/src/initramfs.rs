//! The one-shot mode's initramfs (`run --kernel K --rootfs DIR -- CMD`): a newc cpio archive
//! built in memory from DIR plus an /init that runs CMD and reports its exit status through the
//! status port, so that tinyvmm exits with the status of the command run inside the VM. With
//! `--share-rootfs` DIR is not packed: the guest mounts it over virtio-fs, and the archive
//! holds only [`ROOTFS_INIT`], the modules virtio-fs needs (from DIR/lib/modules) and the same
//! script, run from DIR. The archive is written by the workspace's one newc writer (the `newc`
//! crate).

use conventions::output::errtext;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use newc::{entry_len, Archive};

/// Why the archive could not be built.
#[derive(Debug)]
pub struct ArchiveError(pub String);

/// Quotes one word for /bin/sh.
pub fn sh_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The program /init uses to write the status byte to I/O port 0xf4 (built from
/// guests/exit-helper.s; kernels without /dev/port are common).
pub const EXIT_HELPER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/exit-helper"));

/// Where the helper goes in the initramfs.
pub const EXIT_HELPER_PATH: &str = "tinyvmm-exit";

/// PID 1 of the `--share-rootfs` initramfs (built from guests/rootfs-init.s): loads
/// /modules/a.ko, b.ko..., mounts the virtio-fs tag `rootfs` as the new root, keeps the exit
/// helper open as descriptor 9 and runs /stage2 (the one-shot script) with DIR's /bin/sh.
pub const ROOTFS_INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rootfs-init"));

/// The virtio-fs tag of `--share-rootfs`'s root (ROOTFS_INIT mounts this one).
pub const ROOTFS_TAG: &str = "rootfs";

/// The modules a virtio-fs root needs before it is mounted, in load order, as Debian builds
/// them (`virtiofs` depends on `fuse`, `virtio` and `virtio_ring`).
pub const ROOTFS_MODULES: [&str; 5] = ["virtio_ring", "virtio", "virtio_mmio", "fuse", "virtiofs"];

/// The exit helper as the `--share-rootfs` script reaches it once the initramfs is out of
/// sight: ROOTFS_INIT's descriptor 9.
pub const SHARED_EXIT_HELPER: &str = "/proc/self/fd/9";

/// The /init script: mount the kernel filesystems, run `command` with its stdout on the virtio
/// console (/dev/hvc0, tinyvmm's stdout) and its stdin and stderr on the serial console, write
/// its exit status to I/O port 0xf4 (with the helper) and power off. The console's driver is the
/// kernel's own or, as Debian builds it, modules of the tree for the running kernel
/// (/lib/modules/VERSION, found by name: the package ships no modules.dep). Without either the
/// command writes to the serial console, after a note saying why.
pub fn init_script(command: &[String]) -> String {
    script(command, &format!("/{EXIT_HELPER_PATH}"))
}

/// [`init_script`] writing the status with the exit helper at `exit_helper`.
fn script(command: &[String], exit_helper: &str) -> String {
    let cmd: Vec<String> = command.iter().map(|w| sh_quote(w)).collect();
    let cmd = cmd.join(" ");
    format!(
        "#!/bin/sh\n\
         # Written by tinyvmm: runs the command with its output on the virtio console, then\n\
         # reports its status on I/O port 0xf4.\n\
         export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
         mount -t proc proc /proc 2>/dev/null\n\
         mount -t sysfs sysfs /sys 2>/dev/null\n\
         mount -t devtmpfs devtmpfs /dev 2>/dev/null\n\
         drv=/sys/bus/virtio/drivers/virtio_console\n\
         if [ ! -d $drv ]; then\n\
         \x20   for m in {CONSOLE_MODULES}; do\n\
         \x20       f=$(find /lib/modules/\"$(uname -r)\" -name \"$m.ko*\" 2>/dev/null | head -n 1)\n\
         \x20       [ -n \"$f\" ] && insmod \"$f\" 2>/dev/null\n\
         \x20   done\n\
         fi\n\
         # A subshell, since a failed redirection of exec would end init.\n\
         hvc() {{ [ -c /dev/hvc0 ] && (: <>/dev/hvc0) 2>/dev/null; }}\n\
         n=0\n\
         while [ -d $drv ] && ! hvc && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done\n\
         if hvc; then\n\
         \x20   exec 3<>/dev/hvc0\n\
         \x20   stty raw -echo <&3 2>/dev/null\n\
         \x20   {cmd} >&3 3>&-\n\
         \x20   s=$?\n\
         else\n\
         \x20   echo \"tinyvmm: {NO_CONSOLE} /lib/modules/$(uname -r)): the command's output goes to the serial console\" >&2\n\
         \x20   {cmd}\n\
         \x20   s=$?\n\
         fi\n\
         {exit_helper} \"$s\"\n\
         poweroff -f\n"
    )
}

/// The virtio console's modules in load order, as Debian's kernels build them.
pub const CONSOLE_MODULES: &str = "virtio_ring virtio virtio_mmio virtio_console";

/// The start of init's note when the guest has no virtio console.
pub const NO_CONSOLE: &str =
    "no virtio console in the guest (virtio_console is neither in the kernel nor under";

/// The `--share-rootfs` initramfs for `command`: [`ROOTFS_INIT`] as /init, the exit helper,
/// /stage2 (the one-shot script, run from DIR once DIR is the root), and as /modules/a.ko,
/// b.ko... every uncompressed [`ROOTFS_MODULES`] file found under `root`/lib/modules, each
/// module's files (one per kernel version there) before the next module's: the guest's kernel
/// refuses the other versions' and loads its own.
pub fn build_shared(root: &Path, command: &[String]) -> Result<Vec<u8>, ArchiveError> {
    let meta = std::fs::metadata(root)
        .map_err(|e| ArchiveError(format!("{}: {}", root.display(), errtext(&e))))?;
    if !meta.is_dir() {
        return Err(ArchiveError(format!("{}: not a directory", root.display())));
    }
    let mut found = Vec::new();
    let modules = root.join("lib/modules");
    let mut versions: Vec<_> = std::fs::read_dir(&modules)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.sort();
    for name in ROOTFS_MODULES {
        for v in &versions {
            if let Some(p) = find_file(v, &format!("{name}.ko"), 8) {
                found.push(p);
            }
        }
    }
    // /modules/a.ko to z.ko: ROOTFS_INIT counts in letters.
    if found.len() > 26 {
        found.truncate(26);
    }
    let mut cpio = Archive::new();
    for d in ["dev", "newroot", "modules"] {
        cpio.dir(d, 0o755);
    }
    cpio.chardev("dev/console", 0o600, 5, 1);
    for (i, p) in found.iter().enumerate() {
        let body = crate::input::read(p, 64 << 20, crate::input::GUEST_MEMORY)
            .map_err(|e| ArchiveError(format!("{}: {e}", p.display())))?;
        cpio.file(
            &format!("modules/{}.ko", (b'a' + i as u8) as char),
            0o644,
            body,
        );
    }
    cpio.file(EXIT_HELPER_PATH, 0o755, EXIT_HELPER);
    cpio.file(
        "stage2",
        0o644,
        script(command, SHARED_EXIT_HELPER).as_bytes(),
    );
    cpio.file("init", 0o755, ROOTFS_INIT);
    Ok(cpio.finish())
}

/// The first file named `name` under `dir` (depth-first in name order, at most `depth` levels).
fn find_file(dir: &Path, name: &str, depth: u32) -> Option<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in &entries {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_file() && e.file_name() == name {
            return Some(e.path());
        }
    }
    if depth == 0 {
        return None;
    }
    entries
        .iter()
        .filter(|e| e.file_type().is_ok_and(|k| k.is_dir()))
        .find_map(|e| find_file(&e.path(), name, depth - 1))
}

/// One entry of the tree, found by the walk and written after it.
enum Item {
    Dir(String, u32),
    Symlink(String, String),
    File(String, u32, std::path::PathBuf),
}

/// Builds the initramfs: `root`'s tree (owned by root in the archive, device nodes left to
/// devtmpfs), /dev/console, the mount points, and the /init for `command`. The archive may be at
/// most `limit` bytes (what guest memory holds): the walk adds up the archive's size from each
/// entry's metadata and refuses the tree as soon as it passes the limit, before a file is read,
/// and each file is then read bounded by what is left.
pub fn build(root: &Path, command: &[String], limit: u64) -> Result<Vec<u8>, ArchiveError> {
    let meta = std::fs::metadata(root)
        .map_err(|e| ArchiveError(format!("{}: {}", root.display(), errtext(&e))))?;
    if !meta.is_dir() {
        return Err(ArchiveError(format!("{}: not a directory", root.display())));
    }
    let init = init_script(command);
    let ours = [
        ("dev/console", 0),
        (EXIT_HELPER_PATH, EXIT_HELPER.len()),
        ("init", init.len()),
        ("dev", 0),
        ("proc", 0),
        ("sys", 0),
        ("TRAILER!!!", 0),
    ];
    let mut walk = Walk {
        items: Vec::new(),
        size: ours
            .iter()
            .map(|(n, len)| entry_len(n, *len as u64))
            .sum::<u64>(),
        limit,
    };
    walk.tree(root, "")?;
    let mut cpio = Archive::new();
    for item in walk.items {
        match item {
            Item::Dir(rel, perm) => cpio.dir(&rel, perm),
            Item::Symlink(rel, target) => cpio.symlink(&rel, &target),
            Item::File(rel, perm, path) => {
                let left = limit.saturating_sub(cpio.len() as u64);
                let body = crate::input::read(&path, left, crate::input::GUEST_MEMORY)
                    .map_err(|e| ArchiveError(format!("{}: {e}", path.display())))?;
                cpio.file(&rel, perm, body);
            }
        }
    }
    // Where the tree has them already, the tree's stand (the first entry for a path wins).
    for d in ["dev", "proc", "sys"] {
        cpio.dir(d, 0o755);
    }
    cpio.chardev("dev/console", 0o600, 5, 1);
    cpio.file(EXIT_HELPER_PATH, 0o755, EXIT_HELPER);
    cpio.file("init", 0o755, init.as_bytes());
    let bytes = cpio.finish();
    if bytes.len() as u64 > limit {
        return Err(ArchiveError(format!(
            "{}: the archive comes to {}",
            root.display(),
            crate::input::InputError::TooBig(bytes.len() as u64, limit, crate::input::GUEST_MEMORY)
        )));
    }
    Ok(bytes)
}

/// The walk of the tree: what to write, and the archive's size so far.
struct Walk {
    items: Vec<Item>,
    size: u64,
    limit: u64,
}

impl Walk {
    /// Counts `bytes` more of the archive for `path`, refusing it when the archive would pass
    /// the limit.
    fn add(&mut self, path: &Path, bytes: u64) -> Result<(), ArchiveError> {
        self.size = self.size.saturating_add(bytes);
        if self.size > self.limit {
            return Err(ArchiveError(format!(
                "{}: with it the archive comes to {}",
                path.display(),
                crate::input::InputError::TooBig(self.size, self.limit, crate::input::GUEST_MEMORY)
            )));
        }
        Ok(())
    }

    fn tree(&mut self, dir: &Path, prefix: &str) -> Result<(), ArchiveError> {
        let err =
            |p: &Path, e: std::io::Error| ArchiveError(format!("{}: {}", p.display(), errtext(&e)));
        let mut entries = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| err(dir, e))? {
            let e = e.map_err(|e| err(dir, e))?;
            let path = e.path();
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                return Err(ArchiveError(format!(
                    "{}: the name is not UTF-8",
                    path.display()
                )));
            };
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            // Each entry's header is counted as the directory is listed, which bounds the
            // listing of a huge directory too; its body once its type is known.
            self.add(&path, entry_len(&rel, 0))?;
            entries.push((rel, path));
        }
        entries.sort();
        for (rel, path) in entries {
            if rel == "init" || rel == "dev/console" || rel == EXIT_HELPER_PATH {
                continue; // ours
            }
            let meta = std::fs::symlink_metadata(&path).map_err(|e| err(&path, e))?;
            let perm = meta.permissions().mode() & 0o7777;
            let kind = meta.file_type();
            if kind.is_dir() {
                self.items.push(Item::Dir(rel.clone(), perm));
                self.tree(&path, &rel)?;
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).map_err(|e| err(&path, e))?;
                let target = target.to_string_lossy().into_owned();
                self.add(&path, (target.len() as u64).next_multiple_of(4))?;
                self.items.push(Item::Symlink(rel, target));
            } else if kind.is_file() {
                self.add(&path, meta.len().next_multiple_of(4))?;
                self.items.push(Item::File(rel, perm, path));
            }
            // Device nodes, fifos and sockets are left out (and never opened): devtmpfs and the
            // command make their own.
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The archive's entries as (name, mode, rdev major, minor, body), read by newc's reader.
    fn parse(a: &[u8]) -> Vec<(String, u32, u32, u32, Vec<u8>)> {
        newc::entries(a)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.mode, e.rdev.0, e.rdev.1, e.body))
            .collect()
    }

    #[test]
    fn quoting_and_init() {
        assert_eq!(sh_quote("echo"), "echo");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("$HOME"), "'$HOME'");
        let init = init_script(&["sh".into(), "-c".into(), "exit 3".into()]);
        assert!(init.starts_with("#!/bin/sh\n"));
        assert!(
            init.contains("\n    sh -c 'exit 3' >&3 3>&-\n    s=$?\n"),
            "{init}"
        );
        assert!(init.contains("\n    sh -c 'exit 3'\n    s=$?\n"), "{init}");
        assert!(init.contains("\n    exec 3<>/dev/hvc0\n"), "{init}");
        assert!(init.contains("\n/tinyvmm-exit \"$s\"\n"), "{init}");
        assert!(init.ends_with("poweroff -f\n"));
        let check = std::process::Command::new("sh")
            .args(["-n", "-c", &init])
            .output()
            .unwrap();
        assert!(check.status.success(), "{init}\n{check:?}");
    }

    #[test]
    fn builds_from_a_tree() {
        let dir = std::env::temp_dir().join(format!("tinyvmm-cpio-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/busybox"), b"ELF...").unwrap();
        std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
        std::fs::write(dir.join("init"), b"theirs").unwrap();
        let bytes = build(&dir, &["true".into()], 64 << 20).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let names: Vec<String> = parse(&bytes).into_iter().map(|e| e.0).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "dev",
                "proc",
                "sys",
                "dev/console",
                "tinyvmm-exit",
                "init"
            ]
        );
        let init = parse(&bytes).into_iter().find(|e| e.0 == "init").unwrap();
        assert!(String::from_utf8_lossy(&init.4).contains("\n    true >&3 3>&-\n"));
        assert!(build(Path::new("/nonexistent"), &[], 64 << 20).is_err());
    }

    #[test]
    fn the_shared_root_archive_holds_the_stage_one_init_the_modules_and_the_script() {
        let dir = std::env::temp_dir().join(format!("tinyvmm-cpio-shared-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for v in ["6.1.0-a", "6.1.0-b"] {
            let k = dir.join("lib/modules").join(v).join("kernel/fs/fuse");
            std::fs::create_dir_all(&k).unwrap();
            std::fs::write(k.join("fuse.ko"), format!("fuse {v}")).unwrap();
            std::fs::write(k.join("virtiofs.ko"), format!("virtiofs {v}")).unwrap();
            // Compressed modules are left out: finit_module is given plain ELF.
            std::fs::write(k.join("cuse.ko.xz"), "x").unwrap();
        }
        let d = dir.join("lib/modules/6.1.0-a/kernel/drivers/virtio");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("virtio_ring.ko"), "ring").unwrap();
        std::fs::write(dir.join("big"), vec![0u8; 1 << 20]).unwrap();
        let bytes = build_shared(&dir, &["true".into()]).unwrap();
        assert!(build_shared(&dir.join("nope"), &[]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
        let entries = parse(&bytes);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "dev",
                "newroot",
                "modules",
                "dev/console",
                "modules/a.ko",
                "modules/b.ko",
                "modules/c.ko",
                "modules/d.ko",
                "modules/e.ko",
                "tinyvmm-exit",
                "stage2",
                "init"
            ]
        );
        let body = |n: &str| {
            let e = entries.iter().find(|e| e.0 == n).unwrap();
            String::from_utf8_lossy(&e.4).into_owned()
        };
        // In load order, each module's versions together; DIR's other files stay out.
        assert_eq!(body("modules/a.ko"), "ring");
        assert_eq!(body("modules/b.ko"), "fuse 6.1.0-a");
        assert_eq!(body("modules/c.ko"), "fuse 6.1.0-b");
        assert_eq!(body("modules/d.ko"), "virtiofs 6.1.0-a");
        assert_eq!(body("modules/e.ko"), "virtiofs 6.1.0-b");
        assert!(bytes.len() < 64 << 10, "{}", bytes.len());
        let stage2 = body("stage2");
        assert!(stage2.contains("\n/proc/self/fd/9 \"$s\"\n"), "{stage2}");
        assert!(stage2.contains("\n    true >&3 3>&-\n"), "{stage2}");
        let init = entries.iter().find(|e| e.0 == "init").unwrap();
        assert!(init.4.starts_with(b"\x7fELF"));
        assert_eq!(init.1 & 0o777, 0o755);
    }

    #[test]
    fn the_walk_counts_the_archive_exactly_and_refuses_past_the_limit() {
        let dir = std::env::temp_dir().join(format!("tinyvmm-cpio-limit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("d")).unwrap();
        std::fs::write(dir.join("d/f"), b"12345").unwrap();
        std::os::unix::fs::symlink("f", dir.join("d/l")).unwrap();
        let exact = build(&dir, &["true".into()], 64 << 20).unwrap();
        // The walk's count is the archive's size before its padding to 512: the exact size fits.
        let at = build(&dir, &["true".into()], exact.len() as u64);
        assert_eq!(at.as_ref().map(Vec::len).ok(), Some(exact.len()));
        let err = build(&dir, &["true".into()], 1024).unwrap_err().0;
        assert!(
            err.contains("more than the 1K of guest memory (--mem)"),
            "{err}"
        );
        // A file too big for the limit is named, from its size alone (it is sparse).
        let big = std::fs::File::create(dir.join("d/big")).unwrap();
        big.set_len(1 << 40).unwrap();
        let err = build(&dir, &["true".into()], 64 << 20).unwrap_err().0;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            err.contains("d/big: with it the archive comes to 1.0T"),
            "{err}"
        );
        assert_eq!(entry_len("ab", 5), 116 + 8);
    }
}
