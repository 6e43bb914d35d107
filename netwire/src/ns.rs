//! Network namespaces by PID or file: a descriptor to hand the kernel (a veth peer's or a moved
//! link's destination), and an rtnetlink socket opened inside it. The tool is single-threaded,
//! so it may setns into a namespace to open the socket and come back.

use crate::error::Error;
use crate::nl::Nl;
use crate::parse::NsRef;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};

/// An opened network namespace.
pub struct Netns {
    /// Who asked for it; None is the namespace the tool runs in.
    pub what: Option<NsRef>,
    file: Option<File>,
    pub nl: Nl,
}

impl Netns {
    /// The namespace the tool runs in.
    pub fn current() -> Result<Netns, Error> {
        let nl = Nl::open().map_err(|e| Error::socket(None, e))?;
        let file = File::open("/proc/self/ns/net").ok();
        Ok(Netns {
            what: None,
            file,
            nl,
        })
    }

    /// Opens `what`'s namespace and a socket in it (entering it and coming back).
    pub fn open(what: &NsRef) -> Result<Netns, Error> {
        let file = open_file(what)?;
        let home = File::open("/proc/self/ns/net").map_err(|e| Error::Namespace {
            what: "the tool's own".into(),
            path: "/proc/self/ns/net".into(),
            why: conventions::output::errtext(&e),
            hint: "is /proc mounted?".into(),
        })?;
        enter(&file, what)?;
        let nl = Nl::open();
        // Back home before anything else, also when the socket failed.
        enter(&home, &NsRef::File("/proc/self/ns/net".into()))?;
        let nl = nl.map_err(|e| Error::socket(Some(what), e))?;
        Ok(Netns {
            what: Some(what.clone()),
            file: Some(file),
            nl,
        })
    }

    pub fn fd(&self) -> Option<RawFd> {
        self.file.as_ref().map(|f| f.as_raw_fd())
    }

    /// How reports and messages name it.
    pub fn label(&self) -> String {
        match &self.what {
            None => "current".into(),
            Some(w) => w.to_string(),
        }
    }
}

/// Opens a namespace file and checks that it is a network namespace.
pub fn open_file(what: &NsRef) -> Result<File, Error> {
    let path = what.path();
    let hint = match what {
        NsRef::Pid(_) => "is the process running? give the PID of a process in the namespace",
        NsRef::File(_) => "give a PID, /proc/PID/ns/net or a file a namespace is bound to",
    };
    let file = File::open(&path).map_err(|e| Error::Namespace {
        what: what.to_string(),
        path: path.display().to_string(),
        why: conventions::output::errtext(&e),
        hint: hint.into(),
    })?;
    // SAFETY: ioctl NS_GET_NSTYPE on a descriptor we own takes no argument.
    let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
    if kind != libc::CLONE_NEWNET {
        return Err(Error::Namespace {
            what: what.to_string(),
            path: path.display().to_string(),
            why: "not a network namespace".into(),
            hint: hint.into(),
        });
    }
    Ok(file)
}

/// `_IO(0xb7, 0x3)` from linux/nsfs.h.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

fn enter(file: &File, what: &NsRef) -> Result<(), Error> {
    // SAFETY: setns on a namespace descriptor we own; the process has one thread.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::Namespace {
            what: what.to_string(),
            path: what.path().display().to_string(),
            why: format!(
                "setns(CLONE_NEWNET) failed: {}",
                conventions::output::errtext(&e)
            ),
            hint: "joining a network namespace needs CAP_SYS_ADMIN".into(),
        });
    }
    Ok(())
}
