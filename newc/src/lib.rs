//! The newc ("070701") cpio format, the one the kernel unpacks as an initramfs: written once here
//! for tinyvmm's one-shot mode and for xtask's guest lanes, which both build archives in memory
//! (so neither needs cpio nor root), and read back by [`entries`] for their tests.

use std::collections::BTreeSet;
use std::io::{self, Write};

/// The type bits of `mode`.
pub const S_IFMT: u32 = 0o170000;
/// A directory.
pub const S_IFDIR: u32 = 0o040000;
/// A regular file.
pub const S_IFREG: u32 = 0o100000;
/// A symbolic link (its body is the target).
pub const S_IFLNK: u32 = 0o120000;
/// A character device.
pub const S_IFCHR: u32 = 0o020000;

/// The fixed header: the magic and thirteen 8-digit hex fields.
pub const HEADER_LEN: usize = 110;
const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";

/// An archive written into memory as entries are added. Paths may start with `/` or not; they are
/// stored without it and without `.` components. A path with a `..` component is dropped (an
/// archive never writes outside the directory it is unpacked in). Missing parent directories
/// are added (0755) before a child, and the first entry for a path wins: later ones are
/// ignored, so callers can add overlapping trees and defaults after them.
#[derive(Debug, Default, Clone)]
pub struct Archive {
    data: Vec<u8>,
    seen: BTreeSet<String>,
    ino: u32,
}

fn clean(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// The bytes one entry takes: the header and the name with its NUL padded to 4, then the body
/// padded to 4 (what [`Archive::len`] grows by), so that a caller can bound an archive before
/// reading what goes in it.
pub fn entry_len(name: &str, body: u64) -> u64 {
    (HEADER_LEN as u64 + name.len() as u64 + 1).next_multiple_of(4) + body.next_multiple_of(4)
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Archive {
        Archive::default()
    }

    /// The bytes written so far (without the trailer that [`Archive::finish`] adds).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether no entry was added.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn push(&mut self, path: &str, mode: u32, rdev: (u32, u32), body: &[u8]) {
        let path = clean(path);
        if path.is_empty() || path.split('/').any(|c| c == "..") || self.seen.contains(&path) {
            return;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            let parent = parent.to_string();
            self.dir(&parent, 0o755);
        }
        self.ino += 1;
        record(&mut self.data, self.ino, mode, rdev, &path, body);
        self.seen.insert(path);
    }

    /// A directory with permission bits `perm`.
    pub fn dir(&mut self, path: &str, perm: u32) {
        self.push(path, S_IFDIR | (perm & 0o7777), (0, 0), b"");
    }

    /// A regular file.
    pub fn file(&mut self, path: &str, perm: u32, body: impl Into<Vec<u8>>) {
        self.push(path, S_IFREG | (perm & 0o7777), (0, 0), &body.into());
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.push(path, S_IFLNK | 0o777, (0, 0), target.as_bytes());
    }

    /// A character device node, e.g. `/dev/console` (5, 1), which the kernel opens for init's
    /// stdio before devtmpfs is mounted.
    pub fn chardev(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        self.push(path, S_IFCHR | (perm & 0o7777), (major, minor), b"");
    }

    /// The archive's bytes: the entries, the `TRAILER!!!` record, zeros to a 512-byte block (as
    /// cpio(1) writes it). Owner root and mtime 0, so the same inputs give the same bytes.
    pub fn finish(mut self) -> Vec<u8> {
        record(&mut self.data, 0, 0, (0, 0), TRAILER, b"");
        self.data.resize(self.data.len().next_multiple_of(512), 0);
        self.data
    }

    /// [`Archive::finish`] of a copy, for callers that keep adding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.clone().finish()
    }

    /// Writes [`Archive::to_bytes`] to `w`.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.to_bytes())
    }
}

fn pad4(data: &mut Vec<u8>) {
    data.resize(data.len().next_multiple_of(4), 0);
}

/// Appends one record. A body over 4 GiB cannot be described by the format; nothing here holds
/// one in memory (guest memory bounds tinyvmm's, and xtask's are its own binaries).
fn record(data: &mut Vec<u8>, ino: u32, mode: u32, rdev: (u32, u32), name: &str, body: &[u8]) {
    let nlink = if mode & S_IFMT == S_IFDIR { 2 } else { 1 };
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        body.len() as u32,
        0, // dev major
        0, // dev minor
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0, // check
    ];
    data.extend_from_slice(MAGIC);
    for f in fields {
        data.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    data.extend_from_slice(name.as_bytes());
    data.push(0);
    pad4(data);
    data.extend_from_slice(body);
    pad4(data);
}

/// One entry read back by [`entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stored name (no leading `/`).
    pub name: String,
    /// Type and permission bits.
    pub mode: u32,
    /// Device major and minor (character devices).
    pub rdev: (u32, u32),
    /// The file's bytes, a symlink's target.
    pub body: Vec<u8>,
}

/// Why bytes are not a newc archive: what is wrong, at which offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// Byte offset of the record at fault.
    pub offset: usize,
    /// What is wrong there.
    pub why: &'static str,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "newc archive at byte {}: {}", self.offset, self.why)
    }
}

impl std::error::Error for ReadError {}

/// Reads an archive up to its `TRAILER!!!` record, checking the magic, the hex fields and the
/// 4-byte alignment the kernel's unpacker needs; what follows the trailer is not read.
pub fn entries(bytes: &[u8]) -> Result<Vec<Entry>, ReadError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    loop {
        let err = |why| ReadError { offset: at, why };
        let header = bytes
            .get(at..at + HEADER_LEN)
            .ok_or(err("ends inside a header (no TRAILER!!!)"))?;
        if &header[..6] != MAGIC {
            return Err(err("not the newc magic 070701"));
        }
        let mut fields = [0u32; 13];
        for (i, f) in fields.iter_mut().enumerate() {
            let hex = std::str::from_utf8(&header[6 + i * 8..14 + i * 8])
                .map_err(|_| err("a header field is not hex"))?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err("a header field is not hex"));
            }
            *f = u32::from_str_radix(hex, 16).map_err(|_| err("a header field is not hex"))?;
        }
        let (mode, size, namesize) = (fields[1], fields[6] as usize, fields[11] as usize);
        let name_end = (at + HEADER_LEN)
            .checked_add(namesize)
            .ok_or(err("the name size is too large"))?;
        let name = bytes
            .get(at + HEADER_LEN..name_end)
            .ok_or(err("ends inside a name"))?;
        let Some((&0, name)) = name.split_last() else {
            return Err(err("the name is not NUL-terminated"));
        };
        let name = std::str::from_utf8(name)
            .map_err(|_| err("the name is not UTF-8"))?
            .to_string();
        let body_at = name_end.next_multiple_of(4);
        let body_end = body_at
            .checked_add(size)
            .ok_or(err("the size is too large"))?;
        let body = bytes
            .get(body_at..body_end)
            .ok_or(err("ends inside a body"))?;
        if name == TRAILER {
            return Ok(out);
        }
        out.push(Entry {
            name,
            mode,
            rdev: (fields[9], fields[10]),
            body: body.to_vec(),
        });
        at = body_end.next_multiple_of(4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_newc() {
        let mut a = Archive::new();
        a.file("/x", 0o644, b"hello");
        let b = a.to_bytes();
        assert_eq!(&b[..6], b"070701");
        // 110-byte header + "x\0" = 112, already aligned; then 5 data bytes padded to 8.
        assert_eq!(&b[110..112], b"x\0");
        assert_eq!(&b[112..117], b"hello");
        assert_eq!(&b[117..120], &[0, 0, 0]);
        assert_eq!(&b[120..126], b"070701");
        // ino 1, then the mode field of the first record, then uid, gid, nlink.
        assert_eq!(&b[6..14], b"00000001");
        assert_eq!(&b[14..22], b"000081a4");
        assert_eq!(&b[38..46], b"00000001");
        assert_eq!(b.len(), 512);
        assert_eq!(a.len() as u64, entry_len("x", 5));
        let trailer = &b[120..120 + HEADER_LEN + 11];
        assert!(trailer.ends_with(b"TRAILER!!!\0"));
    }

    #[test]
    fn parents_are_implicit_duplicates_and_escapes_ignored() {
        let mut a = Archive::new();
        a.file("/a/b/c", 0o600, b"1");
        a.file("a/b/c", 0o600, b"2");
        a.file("./a//b/./c", 0o600, b"3");
        a.file("/../etc/passwd", 0o600, b"no");
        a.dir("/", 0o755);
        let e = entries(&a.to_bytes()).unwrap();
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c"]);
        assert_eq!((e[0].mode, e[1].mode), (0o040755, 0o040755));
        assert_eq!(e[2].body, b"1");
    }

    #[test]
    fn every_kind_reads_back() {
        let mut a = Archive::new();
        a.dir("bin", 0o755);
        a.file("bin/hello", 0o4755, b"#!/bin/sh\necho hi\n".to_vec());
        a.symlink("bin/sh", "busybox");
        a.chardev("dev/console", 0o600, 5, 1);
        a.dir("tmp", 0o1777);
        a.file("empty", 0o644, b"");
        let bytes = a.finish();
        assert!(bytes.len().is_multiple_of(512));
        let e = entries(&bytes).unwrap();
        type Row<'a> = (&'a str, u32, (u32, u32), &'a [u8]);
        let got: Vec<Row> = e
            .iter()
            .map(|e| (e.name.as_str(), e.mode, e.rdev, e.body.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("bin", 0o040755, (0, 0), &b""[..]),
                ("bin/hello", 0o104755, (0, 0), b"#!/bin/sh\necho hi\n"),
                ("bin/sh", 0o120777, (0, 0), b"busybox"),
                ("dev", 0o040755, (0, 0), b""),
                ("dev/console", 0o020600, (5, 1), b""),
                ("tmp", 0o041777, (0, 0), b""),
                ("empty", 0o100644, (0, 0), b""),
            ]
        );
    }

    #[test]
    fn entry_len_is_what_the_archive_grows_by() {
        let mut a = Archive::new();
        let mut want = 0;
        for (name, body) in [("a", 0), ("ab", 1), ("abc", 2), ("abcd", 3), ("abcde", 4)] {
            a.file(name, 0o644, vec![7u8; body]);
            want += entry_len(name, body as u64);
            assert_eq!(a.len() as u64, want, "{name}");
        }
        assert_eq!(entry_len("ab", 5), 116 + 8);
    }

    #[test]
    fn the_reader_refuses_what_is_not_an_archive() {
        let good = {
            let mut a = Archive::new();
            a.file("f", 0o644, b"abc");
            a.finish()
        };
        let why = |b: &[u8]| entries(b).unwrap_err().why;
        assert_eq!(why(b""), "ends inside a header (no TRAILER!!!)");
        assert_eq!(why(&good[..200]), "ends inside a header (no TRAILER!!!)");
        let mut bad = good.clone();
        bad[0] = b'1';
        assert_eq!(why(&bad), "not the newc magic 070701");
        let mut bad = good.clone();
        bad[10] = b'g';
        assert_eq!(why(&bad), "a header field is not hex");
        let mut bad = good.clone();
        bad[110 + 1] = b'x'; // the name's NUL
        assert_eq!(why(&bad), "the name is not NUL-terminated");
        let mut bad = good.clone();
        bad[54..62].copy_from_slice(b"ffffffff"); // the file size
        assert_eq!(why(&bad), "ends inside a body");
    }

    /// A small deterministic generator, so that the round trip is checked over many archives
    /// without a dependency (the fuzz target `newc_roundtrip` explores further).
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let mut seed = 1;
        for _ in 0..300 {
            let mut a = Archive::new();
            let mut want: Vec<Entry> = Vec::new();
            for _ in 0..lcg(&mut seed) % 8 {
                let name = format!("n{}", lcg(&mut seed) % 50);
                let body: Vec<u8> = (0..lcg(&mut seed) % 9).map(|i| i as u8).collect();
                let perm = (lcg(&mut seed) % 0o10000) as u32;
                let before = a.len();
                a.file(&name, perm, body.clone());
                if a.len() != before {
                    want.push(Entry {
                        name,
                        mode: S_IFREG | perm,
                        rdev: (0, 0),
                        body,
                    });
                }
            }
            assert_eq!(entries(&a.finish()).unwrap(), want);
        }
    }
}
