//! A newc ("070701") cpio writer, the format the kernel unpacks as an initramfs: small enough to
//! own, so building the guest-kernel lane's initramfs needs neither cpio nor root.

use std::collections::BTreeSet;
use std::io::{self, Write};

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

#[derive(Debug)]
struct Entry {
    path: String,
    mode: u32,
    rdev: (u32, u32),
    data: Vec<u8>,
}

/// An archive built in memory, written in one go. Paths are absolute-looking (`/bin/sh`) or
/// relative; they are stored without the leading `/`. Parent directories are added on demand,
/// and the first entry for a path wins (later duplicates are ignored), so callers can add
/// overlapping trees.
#[derive(Debug, Default)]
pub struct Archive {
    entries: Vec<Entry>,
    seen: BTreeSet<String>,
}

fn clean(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Archive {
        Archive::default()
    }

    fn push(&mut self, path: &str, mode: u32, rdev: (u32, u32), data: Vec<u8>) {
        let path = clean(path);
        if path.is_empty() || path.split('/').any(|c| c == "..") || self.seen.contains(&path) {
            return;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            let parent = parent.to_string();
            self.dir(&parent, 0o755);
        }
        self.seen.insert(path.clone());
        self.entries.push(Entry {
            path,
            mode,
            rdev,
            data,
        });
    }

    /// A directory with permission bits `perm` (and its parents, 0755).
    pub fn dir(&mut self, path: &str, perm: u32) {
        self.push(path, S_IFDIR | (perm & 0o7777), (0, 0), Vec::new());
    }

    /// A regular file.
    pub fn file(&mut self, path: &str, perm: u32, data: Vec<u8>) {
        self.push(path, S_IFREG | (perm & 0o7777), (0, 0), data);
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.push(path, S_IFLNK | 0o777, (0, 0), target.as_bytes().to_vec());
    }

    /// A character device node, e.g. `/dev/console` (5, 1), which the kernel opens for init's
    /// stdio before devtmpfs is mounted.
    pub fn chardev(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        self.push(path, S_IFCHR | (perm & 0o7777), (major, minor), Vec::new());
    }

    /// Writes every entry, then the `TRAILER!!!` record. Owner is root, mtime 0, so the same
    /// inputs give the same bytes.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        for (i, e) in self.entries.iter().enumerate() {
            let nlink = if e.mode & S_IFMT == S_IFDIR { 2 } else { 1 };
            write_record(w, i as u32 + 1, e.mode, nlink, e.rdev, &e.path, &e.data)?;
        }
        write_record(w, 0, 0, 1, (0, 0), "TRAILER!!!", &[])
    }

    /// The whole archive as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut v);
        v
    }
}

fn pad4(w: &mut impl Write, len: usize) -> io::Result<()> {
    let pad = (4 - len % 4) % 4;
    w.write_all(&[0u8; 3][..pad])
}

fn write_record(
    w: &mut impl Write,
    ino: u32,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    name: &str,
    data: &[u8],
) -> io::Result<()> {
    let size = u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cpio entry over 4 GiB"))?;
    let namesize = name.len() as u32 + 1;
    let header = format!(
        "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{namesize:08x}{:08x}",
        0, 0, 0, 0, 0, rdev.0, rdev.1, 0
    );
    w.write_all(header.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    pad4(w, header.len() + namesize as usize)?;
    w.write_all(data)?;
    pad4(w, data.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::process::{Command, Stdio};

    #[test]
    fn header_layout_is_newc() {
        let mut a = Archive::new();
        a.file("/x", 0o644, b"hello".to_vec());
        let b = a.to_bytes();
        assert_eq!(&b[..6], b"070701");
        // 110-byte header + "x\0" = 112, already aligned; then 5 data bytes padded to 8.
        assert_eq!(&b[110..112], b"x\0");
        assert_eq!(&b[112..117], b"hello");
        assert_eq!(&b[117..120], &[0, 0, 0]);
        assert_eq!(&b[120..126], b"070701");
        assert_eq!(b.len() % 4, 0);
        let text = String::from_utf8_lossy(&b);
        assert!(text.contains("TRAILER!!!"));
        // mode field of the first record
        assert_eq!(&b[14..22], b"000081a4");
    }

    #[test]
    fn parents_are_implicit_and_duplicates_ignored() {
        let mut a = Archive::new();
        a.file("/a/b/c", 0o600, b"1".to_vec());
        a.file("a/b/c", 0o600, b"2".to_vec());
        a.file("/../etc/passwd", 0o600, b"no".to_vec());
        assert!(!a.seen.contains("etc/passwd"));
        let names: Vec<&str> = a.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c"]);
        assert_eq!(a.entries[2].data, b"1");
    }

    /// The real check: cpio (or busybox cpio) unpacks what we wrote, with modes and link targets.
    #[test]
    fn cpio_unpacks_it() {
        let mut a = Archive::new();
        a.dir("/tmp", 0o1777);
        a.file("/bin/tool", 0o755, b"#!/bin/sh\necho hi\n".to_vec());
        a.file("/etc/odd-length", 0o640, b"abc".to_vec());
        a.file("/empty", 0o644, Vec::new());
        a.symlink("/bin/sh", "tool");
        a.chardev("/dev/null-ish", 0o600, 1, 3);
        struct Cleanup(std::path::PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = std::env::temp_dir().join(format!("xtask-cpio-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let _cleanup = Cleanup(dir.clone());
        let tool = if Command::new("cpio").arg("--version").output().is_ok() {
            vec!["cpio", "--quiet"]
        } else {
            vec!["busybox", "cpio"]
        };
        let mut child = Command::new(tool[0])
            .args(&tool[1..])
            .arg("-idm")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run cpio (cargo xtask deps installs it)");
        let mut stdin = child.stdin.take().unwrap();
        a.write_to(&mut stdin).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read_to_string(dir.join("bin/tool")).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        let mode = |p: &str| {
            std::fs::symlink_metadata(dir.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("bin/tool"), 0o755);
        assert_eq!(mode("etc/odd-length"), 0o640);
        assert_eq!(mode("tmp"), 0o1777);
        assert_eq!(
            std::fs::read_to_string(dir.join("etc/odd-length")).unwrap(),
            "abc"
        );
        assert_eq!(std::fs::read(dir.join("empty")).unwrap().len(), 0);
        assert_eq!(
            std::fs::read_link(dir.join("bin/sh")).unwrap(),
            std::path::PathBuf::from("tool")
        );
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let meta = std::fs::symlink_metadata(dir.join("dev/null-ish")).unwrap();
            assert!(meta.file_type().is_char_device());
        }
    }
}
