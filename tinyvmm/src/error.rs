//! The one error type of tinyvmm: every failure of the VMM itself (not of the guest), worded as
//! `what failed: why (hint)`, naming the ioctl or the path; main.rs prints it once and exits 125.

use std::path::PathBuf;

/// A failure of tinyvmm itself; the guest's own endings are [`crate::vm::End`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// /dev/kvm could not be opened.
    #[error("open(/dev/kvm) failed: {} ({hint})", conventions::output::strerror(source.errno()))]
    KvmOpen {
        /// The errno.
        source: vmm_sys_util::errno::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The KVM API version is not the stable one.
    #[error("KVM_GET_API_VERSION answered {0}, not 12 (this kernel's KVM is not supported)")]
    ApiVersion(i32),
    /// A KVM ioctl failed.
    #[error("{ioctl} failed: {}", conventions::output::strerror(source.errno()))]
    Ioctl {
        /// The ioctl's name, e.g. `KVM_CREATE_VM`.
        ioctl: &'static str,
        /// The errno.
        source: vmm_sys_util::errno::Error,
    },
    /// An input file (image, kernel, initrd) could not be read, or is not a regular file or
    /// larger than guest memory (checked before reading it).
    #[error("cannot read {what} {}: {why}", path.display())]
    ReadImage {
        /// Which input: `image`, `kernel` or `initrd`.
        what: &'static str,
        /// The file's path.
        path: PathBuf,
        /// What is wrong.
        why: crate::input::InputError,
    },
    /// The image is unusable: empty, truncated, wrong machine, does not fit...
    #[error("bad image {}: {why}", path.display())]
    BadImage {
        /// The image's path (`<embedded>` for the built-in guest).
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A `--disk` image could not be opened or locked.
    #[error("--disk {}: {why}", path.display())]
    Disk {
        /// The image's path.
        path: PathBuf,
        /// What failed, with the hint.
        why: String,
    },
    /// A `--net` tap could not be opened or created (netwire's message: the call, the tap,
    /// the kernel's words and a hint).
    #[error("--net: {why}")]
    Net {
        /// The tap's name.
        tap: String,
        /// What failed, with the hint.
        why: String,
    },
    /// The `--vsock` device could not be set up (its listener at PATH, mostly).
    #[error("--vsock: cannot listen at {path}: {why}")]
    Vsock {
        /// The listener's path.
        path: String,
        /// What failed.
        why: String,
    },
    /// A `--share` directory could not be served (virtiofsd missing or refusing, a directory
    /// that is not one).
    #[error("--share {}: {why}", path.display())]
    Share {
        /// The directory or socket.
        path: PathBuf,
        /// What failed, with the hint.
        why: String,
    },
    /// Options that parse but cannot work together or with this host.
    #[error("{0}")]
    BadOption(String),
    /// Guest memory could not be set up.
    #[error("guest memory of {size} bytes: {why}")]
    Memory {
        /// The requested size.
        size: u64,
        /// What failed.
        why: String,
    },
    /// A helper thread or signal could not be set up.
    #[error("{what} failed: {}", conventions::output::errtext(source))]
    Setup {
        /// What failed (a syscall name).
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The seccomp filter could not be built or installed (`--no-seccomp` runs without it).
    #[error("seccomp: {0} (--no-seccomp runs without the filter)")]
    Seccomp(String),
    /// `tinyvmm guests DIR` could not create DIR or write a guest into it.
    #[error("cannot write {}: {} (choose a directory you can write)", path.display(), conventions::output::errtext(source))]
    Guests {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The report file could not be written.
    #[error("cannot write report {}: {}", path.display(), conventions::output::errtext(source))]
    Report {
        /// The report's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps a failed KVM ioctl.
    pub fn ioctl(ioctl: &'static str) -> impl FnOnce(vmm_sys_util::errno::Error) -> Error {
        move |source| Error::Ioctl { ioctl, source }
    }

    /// The failure of opening /dev/kvm, with a hint chosen by errno.
    pub fn kvm_open(source: vmm_sys_util::errno::Error) -> Error {
        let hint = match source.errno() {
            libc::ENOENT | libc::ENXIO | libc::ENODEV => {
                "no KVM here: load the kvm module (kvm_intel/kvm_amd) or enable virtualization"
            }
            libc::EACCES | libc::EPERM => {
                "add the user to the kvm group or grant access: setfacl -m u:$USER:rw /dev/kvm"
            }
            _ => "check that /dev/kvm is the KVM device",
        };
        Error::KvmOpen { source, hint }
    }
}
