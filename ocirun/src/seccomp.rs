//! linux.seccomp through privs (libseccomp, the same reading and compiler as setpriv-rs's
//! `--seccomp`): compiled to BPF in the runtime before fork, so a bad profile is create's error,
//! and installed by the init or exec'd process with one system call.
//!
//! As runc and crun do, a system call name libseccomp does not know is left out of its rule
//! (said on stderr with `--debug`); every other field is carried out or refused by name.
//!
//! A compiled profile is kept under the runtime's `--root`, in `.seccomp/` (a container id
//! cannot start with a dot), and the next container with the same profile reads it instead of
//! compiling again: libseccomp takes 0.5-0.8 ms for Docker's default profile, a seventh of an
//! `ocirun run` (BENCHMARKS.md, the scale section). The cost: one file of a few KiB per
//! distinct profile (at most [`CACHE_ENTRIES`], then the directory starts over), written only
//! by a successful compile, and trusted as the root's state files are: a file not owned by us
//! or writable by others is not read.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use privs::seccomp::{Bpf, Profile};

use crate::error::{Error, Result};

/// The `linux.seccomp.` error of privs's `FIELD: why`.
fn config_error(e: privs::Error) -> Error {
    match e {
        privs::Error::Invalid(text) => match text.split_once(": ") {
            Some((field, why)) if !field.contains(' ') || field == "(top level)" => {
                let field = if field == "(top level)" {
                    "linux.seccomp".to_string()
                } else {
                    format!("linux.seccomp.{field}")
                };
                Error::config(field, why)
            }
            _ => Error::config("linux.seccomp", text),
        },
        other => Error::config("linux.seccomp", format!("cannot compile: {other}")),
    }
}

/// Reads a typed profile into privs's, with the names libseccomp lacks.
pub fn profile(s: &LinuxSeccomp) -> Result<(Profile, Vec<String>)> {
    let v = serde_json::to_value(s)
        .map_err(|e| Error::config("linux.seccomp", format!("cannot re-read: {e}")))?;
    Profile::from_value_skipping_unknown(&v).map_err(config_error)
}

/// Compiles a profile; `None` when it lets everything through. The second value lists the
/// system call names left out.
pub fn compile(s: &LinuxSeccomp) -> Result<Compiled> {
    let (p, skipped) = profile(s)?;
    if p.allows_everything() {
        return Ok((None, skipped));
    }
    let bpf = p.to_bpf().map_err(config_error)?;
    Ok((Some(bpf), skipped))
}

/// What compiling a profile gives: the filter (`None` when it lets everything through) and the
/// system call names left out.
pub type Compiled = (Option<Bpf>, Vec<String>);

/// The most compiled profiles kept under one root.
pub const CACHE_ENTRIES: usize = 64;

/// The first line of a cache file: the format.
const MAGIC: &[u8] = b"ocirun seccomp cache 1\n";

/// The directory of compiled profiles under `root`.
pub fn cache_dir(root: &Path) -> PathBuf {
    root.join(".seccomp")
}

/// What a cached filter is valid for: this build of ocirun (its file's identity, since a debug
/// build records no commit), the running kernel (libseccomp asks it which actions exist) and the
/// profile itself, in the canonical form its typed value serializes to. `None` when the binary
/// cannot be told (no /proc): then there is no cache.
pub fn cache_key(s: &LinuxSeccomp) -> Result<Option<Vec<u8>>> {
    let Ok(m) = std::fs::metadata("/proc/self/exe") else {
        return Ok(None);
    };
    let exe = format!(
        "{}:{}:{}.{}:{}",
        m.dev(),
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        m.size()
    );
    let kernel = nix::sys::utsname::uname()
        .map(|u| {
            format!(
                "{} {}",
                u.release().to_string_lossy(),
                u.version().to_string_lossy()
            )
        })
        .unwrap_or_default();
    let mut key = format!(
        "ocirun {} {} exe {exe} kernel {kernel}\n",
        env!("CARGO_PKG_VERSION"),
        conventions::COMMIT
    )
    .into_bytes();
    serde_json::to_writer(&mut key, s)
        .map_err(|e| Error::config("linux.seccomp", format!("cannot re-read: {e}")))?;
    Ok(Some(key))
}

/// The file name of `key`: its hash (the key itself is in the file and compared whole, so a
/// collision is a miss, never another profile's filter).
fn cache_name(key: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// A cache file's bytes: its first line (the format), then `key`, the names left out (one per
/// line) and the program, each after its length (u32, little-endian), then the flags (u64,
/// little-endian). A profile that lets everything through has a program of 0 bytes.
pub fn encode(key: &[u8], c: &Compiled) -> Vec<u8> {
    let names = c.1.join("\n");
    let (prog, flags) = match &c.0 {
        Some(b) => (b.to_bytes(), b.flags()),
        None => (Vec::new(), 0),
    };
    let mut out = MAGIC.to_vec();
    for part in [key, names.as_bytes(), &prog] {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&flags.to_le_bytes());
    out
}

/// Reads a cache file's bytes back: `None` unless they are whole, of this format and of `key`.
pub fn decode(bytes: &[u8], key: &[u8]) -> Option<Compiled> {
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let mut part = || -> Option<&[u8]> {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        let (p, tail) = (tail.get(..len)?, tail.get(len..)?);
        rest = tail;
        Some(p)
    };
    let (k, names, prog) = (part()?, part()?, part()?);
    if k != key {
        return None;
    }
    let names = std::str::from_utf8(names).ok()?;
    let names: Vec<String> = if names.is_empty() {
        Vec::new()
    } else {
        names.split('\n').map(str::to_string).collect()
    };
    let flags: [u8; 8] = rest.try_into().ok()?;
    let flags = libc::c_ulong::try_from(u64::from_le_bytes(flags)).ok()?;
    let bpf = if prog.is_empty() {
        None
    } else {
        Some(Bpf::from_bytes(prog, flags).ok()?)
    };
    Some((bpf, names))
}

/// The cached compile of `key` in `dir`, if there is a good one.
fn cache_read(dir: &Path, key: &[u8]) -> Option<Compiled> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(cache_name(key)))
        .ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || m.uid() != nix::unistd::geteuid().as_raw() || m.mode() & 0o022 != 0 {
        return None;
    }
    let mut bytes = Vec::with_capacity(m.len() as usize);
    f.read_to_end(&mut bytes).ok()?;
    decode(&bytes, key)
}

/// Keeps a compile for the next container, best effort: a root that cannot take it (read-only,
/// full, or not there yet: the first container makes it, after its plan) only means compiling
/// again. Written to a temporary name and renamed, so a reader never
/// sees half a file.
fn cache_write(dir: &Path, key: &[u8], c: &Compiled) {
    if std::fs::DirBuilder::new().mode(0o700).create(dir).is_err() {
        if let Ok(entries) = std::fs::read_dir(dir) {
            if entries.count() >= CACHE_ENTRIES {
                let _ = std::fs::remove_dir_all(dir);
                let _ = std::fs::DirBuilder::new().mode(0o700).create(dir);
            }
        }
    }
    let name = cache_name(key);
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&encode(key, c)))
        .and_then(|()| std::fs::rename(&tmp, dir.join(&name)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// [`compile`], through the cache under `root` (see the module's comment).
pub fn compile_cached(root: &Path, s: &LinuxSeccomp) -> Result<Compiled> {
    let Some(key) = cache_key(s)? else {
        return compile(s);
    };
    let dir = cache_dir(root);
    if let Some(c) = cache_read(&dir, &key) {
        return Ok(c);
    }
    let c = compile(s)?;
    cache_write(&dir, &key, &c);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn typed(v: Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn allow_list_with_conditions_and_other_architectures() {
        let s = typed(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["read", "write", "chown32"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["umount2"], "action": "SCMP_ACT_KILL"},
                {"names": ["fchmodat_of_the_future"], "action": "SCMP_ACT_ALLOW"}
            ]
        }));
        let (bpf, skipped) = compile(&s).unwrap();
        assert!(bpf.is_some_and(|b| b.len() > 10));
        assert_eq!(skipped, ["fchmodat_of_the_future"]);
    }

    fn profile_with_unknown() -> LinuxSeccomp {
        typed(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["fchmodat_of_the_future"], "action": "SCMP_ACT_ALLOW"}
            ]
        }))
    }

    #[test]
    fn cache_files_read_back_only_whole_and_for_their_key() {
        let c = compile(&profile_with_unknown()).unwrap();
        let bytes = encode(b"key", &c);
        assert_eq!(decode(&bytes, b"key"), Some(c.clone()));
        assert_eq!(decode(&bytes, b"kez"), None);
        assert_eq!(decode(&bytes, b"ke"), None);
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut], b"key"), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer, b"key"), None);
        let mut other_format = bytes.clone();
        other_format[MAGIC.len() - 2] = b'2';
        assert_eq!(decode(&other_format, b"key"), None);
        // A profile that lets everything through, and no names left out.
        let none = (None, Vec::new());
        assert_eq!(decode(&encode(b"k", &none), b"k"), Some(none));
    }

    #[test]
    fn the_key_is_the_profile_and_this_build() {
        let a = cache_key(&profile_with_unknown()).unwrap().unwrap();
        assert_eq!(a, cache_key(&profile_with_unknown()).unwrap().unwrap());
        let first = a.split(|b| *b == b'\n').next().unwrap();
        let first = String::from_utf8_lossy(first);
        assert!(
            first.starts_with("ocirun ") && first.contains(" exe ") && first.contains(" kernel ")
        );
        let b = cache_key(&typed(json!({"defaultAction": "SCMP_ACT_KILL"})))
            .unwrap()
            .unwrap();
        assert_ne!(a, b);
        assert_ne!(cache_name(&a), cache_name(&b));
    }

    #[test]
    fn compile_cached_writes_once_then_reads_and_never_trusts_a_foreign_file() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = testcaps::TempDir::new("ocirun-seccomp").expect("temp dir");
        let root = tmp.path().to_path_buf();
        let s = profile_with_unknown();
        let want = compile(&s).unwrap();
        assert_eq!(compile_cached(&root, &s).unwrap(), want);
        let file = cache_dir(&root).join(cache_name(&cache_key(&s).unwrap().unwrap()));
        let written = std::fs::read(&file).unwrap();
        assert_eq!(written, encode(&cache_key(&s).unwrap().unwrap(), &want));
        assert_eq!(std::fs::read_dir(cache_dir(&root)).unwrap().count(), 1);
        // A hit: the file's filter, even when it is not what the profile compiles to.
        let planted = (None, vec!["planted".to_string()]);
        std::fs::write(&file, encode(&cache_key(&s).unwrap().unwrap(), &planted)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(compile_cached(&root, &s).unwrap(), planted);
        // Writable by others: not read, compiled again and replaced.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(compile_cached(&root, &s).unwrap(), want);
        assert_eq!(std::fs::read(&file).unwrap(), written);
        // Garbage: a miss, then replaced.
        std::fs::write(&file, b"not a cache file").unwrap();
        assert_eq!(compile_cached(&root, &s).unwrap(), want);
        assert_eq!(std::fs::read(&file).unwrap(), written);
        // Full: the directory starts over.
        for i in 0..CACHE_ENTRIES {
            std::fs::write(cache_dir(&root).join(format!("{i}")), b"").unwrap();
        }
        assert_eq!(
            compile_cached(&root, &typed(json!({"defaultAction": "SCMP_ACT_KILL"})))
                .unwrap()
                .1
                .len(),
            0
        );
        assert_eq!(std::fs::read_dir(cache_dir(&root)).unwrap().count(), 1);
        // A root that cannot take the cache: compiled all the same.
        let missing = root.join("no/such/dir");
        assert_eq!(compile_cached(&missing, &s).unwrap(), want);
        assert!(!missing.exists());
    }

    #[test]
    fn errors_name_the_field_under_linux_seccomp() {
        let s = typed(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]
        }));
        let e = compile(&s).unwrap_err().to_string();
        assert_eq!(
            e,
            "config.json: linux.seccomp.syscalls[0].args[0].index: must be 0 to 5 (a system \
             call has six arguments)"
        );
        let s = typed(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert!(compile(&s)
            .unwrap_err()
            .to_string()
            .starts_with("config.json: linux.seccomp.defaultAction: "));
        let s = typed(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        assert!(compile(&s).unwrap().0.is_none());
    }
}
