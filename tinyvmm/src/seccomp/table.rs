//! The allow-list of tinyvmm's seccomp filter, call by call, and the profile built from it:
//! shared by the library ([`super`]) and build.rs, which compiles it to the kernel's BPF once,
//! at build time, as Firecracker's build does (compiling it with libseccomp at each start cost
//! about a millisecond here, most of a tiny guest's start to exit).

use privs::seccomp::{Arg, Profile, Rule, ScmpAction, ScmpCompareOp};

/// `KVM_RUN`, `_IO(KVMIO, 0x80)`: the run loop's one call into the guest.
pub const KVM_RUN: u64 = 0xae80;
/// `KVM_GET_REGS`, `_IOR(KVMIO, 0x81, struct kvm_regs)`: the guest's RIP for a crash's line and
/// `--verbose`. (Numbers, not kvm-ioctls' functions: build.rs compiles this file with privs
/// and libc only; a unit test checks them against the headers' definitions.)
pub const KVM_GET_REGS: u64 = 0x8090_ae81;

/// `TUNSETOFFLOAD`, `_IOW('T', 208, unsigned int)`: a --net tap told which offloads the guest's
/// driver accepted, which it does when it sets the device up, long after the filter is in.
pub const TUNSETOFFLOAD: u64 = 0x4004_54d0;

/// glibc's internal signal for set*id(2) across threads (SIGRTMIN - 1 to applications).
pub const GLIBC_SIGSETXID: u64 = 33;

/// clone(2)'s flags that must read CLONE_THREAD alone: a thread, in no new namespace.
pub const CLONE_THREAD_NO_NAMESPACE: u64 = (libc::CLONE_THREAD
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// What a call may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// Anything.
    Any,
    /// Argument `.0` (its low 32 bits, as the kernel reads an `unsigned int`) is one of these.
    OneOf(u32, &'static [u64]),
    /// Argument `.0` masked with `.1` is `.2`.
    Masked(u32, u64, u64),
    /// Argument `.0` has no bit of the mask set.
    NoneOf(u32, u64),
}

/// What the filter does with the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through (with [`Only`]'s condition).
    Allow,
    /// Fail it with this errno instead of trapping.
    Errno(i32),
}

/// One row of the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// The system call's name (x86_64).
    pub call: &'static str,
    /// Its condition.
    pub only: Only,
    /// Allowed, or failed with an errno.
    pub verdict: Verdict,
    /// Why tinyvmm needs it after set-up.
    pub why: &'static str,
}

const fn allow(call: &'static str, only: Only, why: &'static str) -> Allowed {
    Allowed {
        call,
        only,
        verdict: Verdict::Allow,
        why,
    }
}

/// The allow-list, in the order of tinyvmm/README.md's table (a unit test keeps the two equal).
pub const ALLOW: &[Allowed] = &[
    allow(
        "ioctl",
        Only::OneOf(1, &[KVM_RUN, KVM_GET_REGS, TUNSETOFFLOAD]),
        "KVM_RUN on each vCPU fd; KVM_GET_REGS for the RIP of a crash or of `--verbose`; TUNSETOFFLOAD on a --net tap when the guest's driver accepts its offloads. No other request: not on /dev/kvm, the VM fd or a terminal",
    ),
    allow("read", Only::Any, "stdin for the UART; eventfds (virtio notifications, the device thread's stop)"),
    allow("write", Only::Any, "the guest's console to stdout (the one-shot mode: its virtio console to stdout, the serial console to stderr), errors to stderr, the report to the file opened before the run, eventfds (interrupts through irqfds, the device thread's stop)"),
    allow("pread64", Only::Any, "virtio-blk reads of the image"),
    allow("pwrite64", Only::Any, "virtio-blk writes to the image"),
    allow("fdatasync", Only::Any, "virtio-blk flush"),
    allow("getrandom", Only::Any, "virtio-rng's entropy"),
    allow("epoll_wait", Only::Any, "the virtio device thread waits on the queues' ioeventfds"),
    allow(
        "epoll_ctl",
        Only::OneOf(1, &[libc::EPOLL_CTL_ADD as u64, libc::EPOLL_CTL_MOD as u64, libc::EPOLL_CTL_DEL as u64]),
        "the device thread re-arms its one-shot watch of a --net tap or of --vsock's epoll when the guest gives receive buffers; --vsock adds and removes its host sockets in its own epoll",
    ),
    allow(
        "socket",
        Only::OneOf(0, &[libc::AF_UNIX as u64]),
        "--vsock: a guest connection to the host's port P is a Unix socket connected to PATH_P; no other address family",
    ),
    allow("connect", Only::Any, "--vsock: the connection to PATH_P (socket allows only AF_UNIX sockets)"),
    allow("accept4", Only::Any, "--vsock: a host program connecting to the listener at PATH"),
    allow(
        "sendmsg",
        Only::OneOf(2, &[libc::MSG_NOSIGNAL as u64]),
        "--share: vhost-user requests to virtiofsd when the guest's driver starts or resets the device (with descriptors: the memfd of guest memory, the rings' eventfds), with MSG_NOSIGNAL",
    ),
    allow("recvmsg", Only::Any, "--share: virtiofsd's answers to vhost-user requests"),
    allow(
        "pidfd_send_signal",
        Only::OneOf(1, &[libc::SIGKILL as u64]),
        "--share: the virtiofsd tinyvmm started is killed when the device goes at the run's end, through the pidfd opened when it was started (no pidfd_open, and no kill(2), which could name any process)",
    ),
    allow("wait4", Only::Any, "--share: reaping the virtiofsd tinyvmm started (wait4 reaps only children)"),
    allow(
        "sendto",
        Only::OneOf(3, &[libc::MSG_NOSIGNAL as u64]),
        "--vsock: the guest's bytes to a host socket, with MSG_NOSIGNAL (a closed peer is EPIPE, not SIGPIPE)",
    ),
    allow(
        "shutdown",
        Only::OneOf(1, &[libc::SHUT_WR as u64]),
        "--vsock: the guest shut its sending side, so the host socket's write side goes",
    ),
    allow("unlink", Only::Any, "--vsock: the listener's PATH removed at the end, and by the SIGTERM, SIGINT and SIGHUP handler"),
    allow("gettid", Only::Any, "--vsock's SIGTERM, SIGINT and SIGHUP handler re-raises the signal with raise(3), which names the thread"),
    allow("futex", Only::Any, "locks, condition variables and thread joins between the vCPUs, the watchdog, the device and stdin threads"),
    allow("clock_gettime", Only::Any, "the timeout's deadline and the report's timings (when the vDSO falls back to the call)"),
    allow("clock_nanosleep", Only::Any, "the stdin thread's pause while the guest's input buffer is full"),
    allow("tgkill", Only::Any, "the watchdog's kick that takes a vCPU thread out of KVM_RUN"),
    allow("getpid", Only::Any, "glibc's pthread_kill names the process to tgkill"),
    allow("rt_sigreturn", Only::Any, "return from the kick's handler"),
    allow("rt_sigprocmask", Only::Any, "glibc blocks signals around thread creation and exit"),
    allow(
        "clone",
        Only::Masked(0, CLONE_THREAD_NO_NAMESPACE, libc::CLONE_THREAD as u64),
        "a thread (the other vCPUs, the watchdog, an image's stdin reader), which inherits this filter; never a process, never a new namespace",
    ),
    Allowed {
        call: "clone3",
        only: Only::Any,
        verdict: Verdict::Errno(libc::ENOSYS),
        why: "refused with ENOSYS, not trapped: its flags are out of the filter's reach, and glibc then falls back to clone",
    },
    allow(
        "rt_sigaction",
        Only::OneOf(0, &[GLIBC_SIGSETXID]),
        "glibc's first pthread_create installs the handler of its internal signal 33 (SIGSETXID); no other signal's handler can change",
    ),
    allow("set_robust_list", Only::Any, "a new thread's start in glibc"),
    allow("rseq", Only::Any, "a new thread's start in glibc"),
    allow("prctl", Only::OneOf(0, &[libc::PR_SET_NAME as u64]), "a new thread's name (vcpu1, watchdog...), nothing else of prctl"),
    allow(
        "mmap",
        Only::NoneOf(2, libc::PROT_EXEC as u64),
        "thread stacks and malloc's arenas and large blocks; never executable",
    ),
    allow(
        "mprotect",
        Only::NoneOf(2, libc::PROT_EXEC as u64),
        "thread stacks' guard pages and malloc's arenas growing; never executable",
    ),
    allow("munmap", Only::Any, "freed blocks, thread stacks, and guest memory at the end"),
    allow("mremap", Only::Any, "large blocks growing"),
    allow("madvise", Only::Any, "malloc and thread exit give memory back"),
    allow("brk", Only::Any, "malloc's main heap"),
    allow(
        "close",
        Only::Any,
        "the device thread's descriptors when it ends, and the vCPUs' and the VM's at the end",
    ),
    allow(
        "fcntl",
        Only::OneOf(1, &[libc::F_GETFD as u64]),
        "Rust's check, in debug builds, that a descriptor it closes is open; no other command",
    ),
    allow("exit", Only::Any, "a thread's end"),
    allow(
        "exit_group",
        Only::Any,
        "tinyvmm's end, once the VM is closed and its memory unmapped",
    ),
];

/// The filter's profile: [`ALLOW`] over a trapping default, to be installed with TSYNC.
pub fn profile() -> Result<Profile, String> {
    let mut rules = Vec::new();
    for a in ALLOW {
        let action = match a.verdict {
            Verdict::Allow => ScmpAction::Allow,
            Verdict::Errno(e) => ScmpAction::Errno(e),
        };
        let mut rule = |args: Vec<Arg>| {
            Rule::new(&[a.call], action, args)
                .map(|r| rules.push(r))
                .map_err(|e| format!("the allow-list: {e}"))
        };
        match a.only {
            Only::Any => rule(Vec::new())?,
            // One rule per value: the rules of a call are ORed.
            Only::OneOf(index, values) => {
                for &v in values {
                    rule(vec![Arg {
                        index,
                        op: ScmpCompareOp::MaskedEqual(0xffff_ffff),
                        datum: v & 0xffff_ffff,
                    }])?;
                }
            }
            Only::Masked(index, mask, value) => rule(vec![Arg {
                index,
                op: ScmpCompareOp::MaskedEqual(mask),
                datum: value,
            }])?,
            Only::NoneOf(index, mask) => rule(vec![Arg {
                index,
                op: ScmpCompareOp::MaskedEqual(mask),
                datum: 0,
            }])?,
        }
    }
    Ok(Profile {
        default_action: ScmpAction::Trap,
        architectures: Vec::new(),
        log: false,
        spec_allow: false,
        tsync: true,
        rules,
    })
}
