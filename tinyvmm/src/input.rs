//! Reading tinyvmm's input files (image, kernel, initrd, the --rootfs tree's files) with a bound:
//! each must be a regular file no larger than the guest can hold, which is checked from its
//! metadata before a byte is read, so that `/dev/zero`, a FIFO or a huge sparse file is refused
//! at once instead of filling the host's memory or blocking (issue #22).

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why an input file cannot be used; worded to follow `cannot read image PATH: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// open or read failed.
    Io(String),
    /// Not a regular file: the name of what it is.
    NotRegular(&'static str),
    /// Larger than the limit: (size, limit, what the limit is).
    TooBig(u64, u64, &'static str),
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = conventions::size::format_size;
        match self {
            InputError::Io(why) => f.write_str(why),
            InputError::NotRegular(kind) => write!(f, "not a regular file (a {kind})"),
            InputError::TooBig(size, limit, of) => write!(
                f,
                "{} ({size} bytes), more than the {} of {of}",
                show(*size),
                show(*limit)
            ),
        }
    }
}

/// The limit every input is checked against: what `--mem` can hold.
pub const GUEST_MEMORY: &str = "guest memory (--mem)";

/// The name of a file type that is not a regular file.
pub fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "directory"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

/// Checks a file's type and size against `limit` (pure: the metadata decides).
pub fn check(
    t: std::fs::FileType,
    size: u64,
    limit: u64,
    of: &'static str,
) -> Result<(), InputError> {
    if !t.is_file() {
        return Err(InputError::NotRegular(kind_name(t)));
    }
    if size > limit {
        return Err(InputError::TooBig(size, limit, of));
    }
    Ok(())
}

/// Reads the regular file at `path`, of at most `limit` bytes. The open does not block (a FIFO
/// or a device that would is refused by its type right after) and the read stops one byte past
/// the limit, so a file that grows after the check is refused too, without being read whole.
pub fn read(path: &Path, limit: u64, of: &'static str) -> Result<Vec<u8>, InputError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| InputError::Io(conventions::output::errtext(&e)))?;
    let meta = file
        .metadata()
        .map_err(|e| InputError::Io(conventions::output::errtext(&e)))?;
    check(meta.file_type(), meta.len(), limit, of)?;
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(meta.len() as usize)
        .map_err(|e| InputError::Io(e.to_string()))?;
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| InputError::Io(conventions::output::errtext(&e)))?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooBig(bytes.len() as u64, limit, of));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("tinyvmm-input-{}-{name}", std::process::id()))
    }

    #[test]
    fn types_and_sizes_are_checked() {
        let file = std::fs::metadata("/proc/self/exe").unwrap().file_type();
        let dir = std::fs::metadata("/").unwrap().file_type();
        let chr = std::fs::metadata("/dev/null").unwrap().file_type();
        assert_eq!(check(file, 10, 10, GUEST_MEMORY), Ok(()));
        assert_eq!(
            check(file, 11, 10, GUEST_MEMORY),
            Err(InputError::TooBig(11, 10, GUEST_MEMORY))
        );
        assert_eq!(
            check(dir, 0, 10, GUEST_MEMORY),
            Err(InputError::NotRegular("directory"))
        );
        assert_eq!(
            check(chr, 0, 10, GUEST_MEMORY).unwrap_err().to_string(),
            "not a regular file (a character device)"
        );
        assert_eq!(
            InputError::TooBig(6 << 30, 64 << 20, GUEST_MEMORY).to_string(),
            "6G (6442450944 bytes), more than the 64M of guest memory (--mem)"
        );
    }

    #[test]
    fn reads_are_bounded() {
        let p = tmp("small");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read(&p, 5, GUEST_MEMORY).unwrap(), b"12345");
        assert_eq!(
            read(&p, 4, GUEST_MEMORY),
            Err(InputError::TooBig(5, 4, GUEST_MEMORY))
        );
        let _ = std::fs::remove_file(&p);
        assert!(matches!(
            read(Path::new("/dev/zero"), 1 << 20, GUEST_MEMORY),
            Err(InputError::NotRegular("character device"))
        ));
        assert!(matches!(
            read(&tmp("missing"), 1, GUEST_MEMORY),
            Err(InputError::Io(_))
        ));
    }
}
