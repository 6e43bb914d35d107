//! tinyvmm confines itself as Firecracker does: once the VM is set up (guest memory mapped,
//! devices and vCPU fds made, the guest loaded, every file opened), a seccomp filter allows only
//! the system calls its run loop and its exit need, so that a guest that found a bug in a device
//! model could not open files, exec, make sockets (but the Unix ones `--vsock` connects to its
//! host side) or new processes, or issue any KVM ioctl but
//! the two the run loop uses. [`ALLOW`] is the table, call by call, with why each is needed;
//! it is compiled with the project's one seccomp implementation (`privs`, libseccomp), at build
//! time ([`table`]).
//!
//! Any other call traps (SECCOMP_RET_TRAP): a SIGSYS handler prints one line naming the call's
//! number and exits 125, tinyvmm's own failure, as Firecracker's SIGSYS handler logs the call
//! and exits with its own status. That is more diagnosable than SECCOMP_RET_KILL_PROCESS (a bare
//! SIGSYS death, the call only in the kernel log, if audit logs it) and safer than an errno that
//! code not written to expect it would carry on past. The handler itself only calls write(2) and
//! exit_group(2), both allowed.
//!
//! The filter is installed once, from the main thread, with SECCOMP_FILTER_FLAG_TSYNC: the
//! threads already running (the UART's stdin reader for a kernel, the virtio device thread)
//! take it at the same moment, and the threads started afterwards (the other vCPUs, the
//! watchdog, an image's stdin reader, started when the guest first reads the UART) inherit it
//! when they are cloned. Thread creation is therefore allowed, but only as a thread: clone(2)
//! with CLONE_THREAD and no CLONE_NEW* flag (a new process or namespace is refused) and clone3(2)
//! answers ENOSYS (its flags are behind a pointer a filter cannot read), on which glibc falls
//! back to clone(2), as Docker's profile does.

pub mod table;

use privs::seccomp::Bpf;
pub use table::{Allowed, Only, Verdict, ALLOW, KVM_GET_REGS, KVM_RUN, TUNSETOFFLOAD};

use crate::Error;

/// The filter as build.rs compiled it from [`table::profile`] (classic BPF, 8 bytes an
/// instruction).
pub const COMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/seccomp.bpf"));

/// The compiled filter, ready to install with TSYNC.
pub fn compile() -> Result<Bpf, Error> {
    Bpf::from_bytes(COMPILED, libc::SECCOMP_FILTER_FLAG_TSYNC)
        .map_err(|e| Error::Seccomp(format!("the built-in filter: {e}")))
}

/// The SIGSYS handler: one line naming the refused call, then exit 125. Only write(2) and
/// exit_group(2), which the filter allows, and no allocation or lock: it runs in a signal.
extern "C" fn refused(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // The kernel's siginfo for SIGSYS: after si_signo, si_errno, si_code and padding (16
    // bytes), _sigsys is { void *call_addr; int syscall; unsigned int arch; }.
    // SAFETY: `info` is the kernel's siginfo for this signal (SA_SIGINFO), 128 bytes long.
    let nr = unsafe { info.cast::<u8>().add(24).cast::<i32>().read_unaligned() };
    let mut line = [0u8; 160];
    let mut len = 0;
    let mut put = |s: &[u8]| {
        let n = s.len().min(line.len() - len);
        line[len..len + n].copy_from_slice(&s[..n]);
        len += n;
    };
    put(b"tinyvmm: seccomp: system call ");
    let mut digits = [0u8; 12];
    let mut at = digits.len();
    let mut v = nr.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if nr < 0 {
        put(b"-");
    }
    put(&digits[at..]);
    put(b" is not in tinyvmm's allow-list (ausyscall names it; --no-seccomp turns the filter off)\n");
    // SAFETY: writes from a live buffer to stderr, then ends the process; both are
    // async-signal-safe.
    unsafe {
        libc::write(2, line.as_ptr().cast(), len);
        libc::_exit(crate::EXIT_FAILURE);
    }
}

/// glibc's own limit on malloc arenas for a 64-bit process of one CPU (8 x cores); the vCPU
/// threads rarely allocate, so more would only cost memory.
const MALLOC_ARENAS: libc::c_int = 8;

/// Installs `filter` on every thread of the process (TSYNC), with no_new_privs (which the kernel
/// demands of a caller without CAP_SYS_ADMIN, and which costs nothing: tinyvmm never execs) and
/// the SIGSYS handler that reports a refused call.
pub fn install(filter: &Bpf) -> Result<(), Error> {
    let sys = |what: &str| {
        Error::Seccomp(format!(
            "{what} failed: {}",
            conventions::output::errtext(&std::io::Error::last_os_error())
        ))
    };
    // glibc's malloc reads /sys/devices/system/cpu/online (an open) the first time more than
    // eight threads have arenas, unless the number of arenas is fixed: a VM of 32 vCPUs did.
    // SAFETY: mallopt only sets a malloc parameter.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
    // SAFETY: a zeroed sigaction is valid; the handler is an extern "C" fn of the SA_SIGINFO
    // signature that only writes and exits.
    let r = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = refused as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut())
    };
    if r != 0 {
        return Err(sys("sigaction(SIGSYS)"));
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(sys("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    filter.install().map_err(|e| {
        Error::Seccomp(format!(
            "seccomp(SECCOMP_SET_MODE_FILTER, TSYNC) failed: {}",
            conventions::output::errtext(&e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(call: &str) -> Option<&'static Allowed> {
        ALLOW.iter().find(|a| a.call == call)
    }

    #[test]
    fn the_ioctl_numbers_are_kvms() {
        use vmm_sys_util::ioctl::{ioctl_expr, _IOC_NONE, _IOC_READ};
        // linux/kvm.h: _IO(KVMIO, 0x80) and _IOR(KVMIO, 0x81, struct kvm_regs).
        let regs = std::mem::size_of::<kvm_bindings::kvm_regs>() as u32;
        assert_eq!(KVM_RUN, ioctl_expr(_IOC_NONE, 0xae, 0x80, 0) as u64);
        assert_eq!(KVM_GET_REGS, ioctl_expr(_IOC_READ, 0xae, 0x81, regs) as u64);
        // linux/if_tun.h: _IOW('T', 208, unsigned int).
        let uint = std::mem::size_of::<libc::c_uint>() as u32;
        assert_eq!(
            TUNSETOFFLOAD,
            ioctl_expr(vmm_sys_util::ioctl::_IOC_WRITE, u32::from(b'T'), 208, uint) as u64
        );
    }

    #[test]
    fn the_allow_list_is_the_run_loops_and_no_more() {
        let mut names: Vec<&str> = ALLOW.iter().map(|a| a.call).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a call listed twice");
        assert!(ALLOW.iter().all(|a| !a.why.is_empty()));
        // What a guest escaping into tinyvmm would want first is not there.
        for forbidden in [
            "execve",
            "execveat",
            "open",
            "openat",
            "openat2",
            "bind",
            "listen",
            "fork",
            "vfork",
            "ptrace",
            "mount",
            "unshare",
            "setns",
            "kill",
            "mknodat",
            "unlinkat",
            "chmod",
            "bpf",
            "process_vm_writev",
            "memfd_create",
            "seccomp",
        ] {
            assert!(row(forbidden).is_none(), "{forbidden} is allowed");
        }
        assert_eq!(
            row("ioctl").map(|a| a.only),
            Some(Only::OneOf(1, &[KVM_RUN, KVM_GET_REGS, TUNSETOFFLOAD]))
        );
        assert_eq!(
            row("clone").map(|a| a.only),
            Some(Only::Masked(
                0,
                table::CLONE_THREAD_NO_NAMESPACE,
                libc::CLONE_THREAD as u64
            ))
        );
        // Sockets only of the Unix family (--vsock's host side), sent to without SIGPIPE.
        assert_eq!(
            row("socket").map(|a| a.only),
            Some(Only::OneOf(0, &[libc::AF_UNIX as u64]))
        );
        assert_eq!(
            row("sendto").map(|a| a.only),
            Some(Only::OneOf(3, &[libc::MSG_NOSIGNAL as u64]))
        );
        assert_eq!(
            row("clone3").map(|a| a.verdict),
            Some(Verdict::Errno(libc::ENOSYS))
        );
        for call in ["mmap", "mprotect"] {
            assert_eq!(
                row(call).map(|a| a.only),
                Some(Only::NoneOf(2, libc::PROT_EXEC as u64))
            );
        }
    }

    #[test]
    fn the_profile_traps_the_rest_on_every_thread() {
        let p = table::profile().unwrap();
        assert_eq!(p.default_action, privs::seccomp::ScmpAction::Trap);
        assert!(p.tsync);
        // One rule a row, ioctl's three requests and epoll_ctl's three operations as three.
        assert_eq!(p.rules.len(), ALLOW.len() + 4);
        let ioctl: Vec<_> = p
            .rules
            .iter()
            .filter(|r| r.calls[0].0 == "ioctl")
            .flat_map(|r| r.args.iter().map(|a| (a.index, a.datum)))
            .collect();
        assert_eq!(ioctl, [(1, KVM_RUN), (1, KVM_GET_REGS), (1, TUNSETOFFLOAD)]);
        let bpf = compile().unwrap();
        assert_eq!(bpf.flags(), libc::SECCOMP_FILTER_FLAG_TSYNC);
        assert!(bpf.len() > ALLOW.len(), "{bpf:?}");
        // What build.rs embedded is this table's program, compiled now.
        assert_eq!(p.to_bpf().unwrap(), bpf);
    }

    #[test]
    fn the_readme_lists_the_same_calls() {
        let readme = include_str!("../../README.md");
        let table: Vec<&str> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| call | allowed with | why |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| l.split('`').nth(1))
            .collect();
        let calls: Vec<&str> = ALLOW.iter().map(|a| a.call).collect();
        assert_eq!(table, calls, "tinyvmm/README.md's seccomp table");
    }
}
