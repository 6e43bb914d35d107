//! The one-shot mode's initramfs (`run --kernel K --rootfs DIR -- CMD`): a newc cpio archive
//! built in memory from DIR plus an /init that runs CMD and reports its exit status through the
//! status port, so that tinyvmm exits with the status of the command run inside the VM.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Why the archive could not be built.
#[derive(Debug)]
pub struct ArchiveError(pub String);

/// A newc ("070701") cpio archive being written.
#[derive(Debug, Default)]
pub struct Cpio {
    data: Vec<u8>,
    ino: u32,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

impl Cpio {
    /// An empty archive.
    pub fn new() -> Cpio {
        Cpio::default()
    }

    fn pad4(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), body: &[u8]) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            if mode & 0o170000 == S_IFDIR { 2 } else { 1 },
            0, // mtime
            body.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.data.extend_from_slice(b"070701");
        for f in fields {
            self.data.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad4();
        self.data.extend_from_slice(body);
        self.pad4();
    }

    /// A directory.
    pub fn dir(&mut self, name: &str, perm: u32) {
        self.entry(name, S_IFDIR | (perm & 0o7777), (0, 0), b"");
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, perm: u32, body: &[u8]) {
        self.entry(name, S_IFREG | (perm & 0o7777), (0, 0), body);
    }

    /// A symbolic link.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, S_IFLNK | 0o777, (0, 0), target.as_bytes());
    }

    /// A character device.
    pub fn chardev(&mut self, name: &str, perm: u32, major: u32, minor: u32) {
        self.entry(name, S_IFCHR | (perm & 0o7777), (major, minor), b"");
    }

    /// Ends the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), b"");
        while !self.data.len().is_multiple_of(512) {
            self.data.push(0);
        }
        self.data
    }
}

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

/// The /init script: mount the kernel filesystems, run `command` on the console, write its exit
/// status to I/O port 0xf4 (with the helper) and power off.
pub fn init_script(command: &[String]) -> String {
    let cmd: Vec<String> = command.iter().map(|w| sh_quote(w)).collect();
    format!(
        "#!/bin/sh\n\
         # Written by tinyvmm: runs the command, then reports its status on I/O port 0xf4.\n\
         export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
         mount -t proc proc /proc 2>/dev/null\n\
         mount -t sysfs sysfs /sys 2>/dev/null\n\
         mount -t devtmpfs devtmpfs /dev 2>/dev/null\n\
         {}\n\
         s=$?\n\
         /tinyvmm-exit \"$s\"\n\
         poweroff -f\n",
        cmd.join(" ")
    )
}

/// Builds the initramfs: `root`'s tree (owned by root in the archive, device nodes left to
/// devtmpfs), /dev/console, the mount points, and the /init for `command`.
pub fn build(root: &Path, command: &[String]) -> Result<Vec<u8>, ArchiveError> {
    let meta =
        std::fs::metadata(root).map_err(|e| ArchiveError(format!("{}: {e}", root.display())))?;
    if !meta.is_dir() {
        return Err(ArchiveError(format!("{}: not a directory", root.display())));
    }
    let mut cpio = Cpio::new();
    let mut seen = std::collections::BTreeSet::new();
    add_tree(&mut cpio, root, "", &mut seen)?;
    for d in ["dev", "proc", "sys"] {
        if !seen.contains(d) {
            cpio.dir(d, 0o755);
        }
    }
    cpio.chardev("dev/console", 0o600, 5, 1);
    cpio.file(EXIT_HELPER_PATH, 0o755, EXIT_HELPER);
    cpio.file("init", 0o755, init_script(command).as_bytes());
    Ok(cpio.finish())
}

fn add_tree(
    cpio: &mut Cpio,
    dir: &Path,
    prefix: &str,
    seen: &mut std::collections::BTreeSet<String>,
) -> Result<(), ArchiveError> {
    let err = |p: &Path, e: std::io::Error| ArchiveError(format!("{}: {e}", p.display()));
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| err(dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
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
        if rel == "init" || rel == "dev/console" || rel == EXIT_HELPER_PATH {
            continue; // ours
        }
        let meta = std::fs::symlink_metadata(&path).map_err(|e| err(&path, e))?;
        let perm = meta.permissions().mode() & 0o7777;
        let kind = meta.file_type();
        if kind.is_dir() {
            cpio.dir(&rel, perm);
            seen.insert(rel.clone());
            add_tree(cpio, &path, &rel, seen)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| err(&path, e))?;
            cpio.symlink(&rel, &target.to_string_lossy());
        } else if kind.is_file() {
            let body = std::fs::read(&path).map_err(|e| err(&path, e))?;
            cpio.file(&rel, perm, &body);
        }
        // Device nodes, fifos and sockets are left out: devtmpfs and the command make their own.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a newc archive back into (name, mode, rdev major, minor, body).
    fn parse(mut a: &[u8]) -> Vec<(String, u32, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let field = |h: &[u8], i: usize| {
            u32::from_str_radix(std::str::from_utf8(&h[6 + i * 8..14 + i * 8]).unwrap(), 16)
                .unwrap()
        };
        let total = a.len();
        loop {
            assert_eq!(&a[..6], b"070701");
            let mode = field(a, 1);
            let size = field(a, 6) as usize;
            let (major, minor) = (field(a, 9), field(a, 10));
            let namesize = field(a, 11) as usize;
            let name = String::from_utf8(a[110..110 + namesize - 1].to_vec()).unwrap();
            let body_at = (110 + namesize).next_multiple_of(4);
            let body = a[body_at..body_at + size].to_vec();
            let next = (body_at + size).next_multiple_of(4);
            let offset = total - a.len();
            assert!((offset + next).is_multiple_of(4));
            a = &a[next..];
            if name == "TRAILER!!!" {
                break;
            }
            out.push((name, mode, major, minor, body));
        }
        out
    }

    #[test]
    fn archive_round_trips() {
        let mut c = Cpio::new();
        c.dir("bin", 0o755);
        c.file("bin/hello", 0o755, b"#!/bin/sh\necho hi\n");
        c.symlink("bin/sh", "busybox");
        c.chardev("dev/console", 0o600, 5, 1);
        let bytes = c.finish();
        assert!(bytes.len().is_multiple_of(512));
        let entries = parse(&bytes);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].0, "bin");
        assert_eq!(entries[0].1, 0o040755);
        assert_eq!(entries[1].4, b"#!/bin/sh\necho hi\n");
        assert_eq!(entries[2].1, 0o120777);
        assert_eq!(entries[2].4, b"busybox");
        assert_eq!((entries[3].1, entries[3].2, entries[3].3), (0o020600, 5, 1));
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
        assert!(init.contains("\nsh -c 'exit 3'\ns=$?\n"), "{init}");
        assert!(init.contains("\n/tinyvmm-exit \"$s\"\n"), "{init}");
        assert!(init.ends_with("poweroff -f\n"));
    }

    #[test]
    fn builds_from_a_tree() {
        let dir = std::env::temp_dir().join(format!("tinyvmm-cpio-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/busybox"), b"ELF...").unwrap();
        std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
        std::fs::write(dir.join("init"), b"theirs").unwrap();
        let bytes = build(&dir, &["true".into()]).unwrap();
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
        assert!(String::from_utf8_lossy(&init.4).contains("\ntrue\n"));
        assert!(build(Path::new("/nonexistent"), &[]).is_err());
    }
}
