//! Starting a child that borrows our memory until it execs (vfork semantics, as glibc's
//! posix_spawn does), for the tools that fork only to exec: fork copies the parent's page
//! tables and then pays a copy-on-write fault for every page either side writes, which on hosts
//! where a page fault is expensive (a VM, nested paging) costs a tenth of a tool's whole run.
//!
//! The child runs a closure on a stack of its own while the parent is suspended in the kernel;
//! the parent resumes when the child has called execve or exited. Memory is shared: whatever
//! the closure writes, the parent sees, exactly as if the closure had been called in-process.
//! Kernel state is the child's own: its descriptor table, signal handlers, credentials, working
//! directory and root, so the closure may change those freely before it execs.
//!
//! Beside it, [`fork_into_cgroup`]: a plain fork (a copy, for a child that goes on running our
//! code, as a container runtime's init does) that starts inside a v2 group.

use std::convert::Infallible;
use std::os::fd::RawFd;

/// `CLONE_INTO_CGROUP` (Linux 5.7), not in every libc crate version.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Stack for the child: it runs the tools' set-up steps (mounts, id switches, error messages),
/// which stay far below this.
const STACK_SIZE: usize = 256 * 1024;
/// One inaccessible page below the stack, so that an overflow faults instead of writing into
/// whatever mapping lies below.
const GUARD: usize = 4096;

/// `struct clone_args` of clone3(2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A started child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spawned {
    /// Its pid.
    pub pid: libc::pid_t,
    /// Whether it started inside the v2 group that was asked for (clone3 with
    /// CLONE_INTO_CGROUP); when false it must join by itself.
    pub in_cgroup: bool,
}

/// The child's stack, unmapped when the parent resumes (the child no longer uses it by then).
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    fn new() -> std::io::Result<Stack> {
        let len = STACK_SIZE + GUARD;
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let stack = Stack { base, len };
        // SAFETY: the lowest page of the mapping made above.
        if unsafe { libc::mprotect(base, GUARD, libc::PROT_NONE) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The lowest usable address (above the guard page).
    fn low(&self) -> u64 {
        self.base as u64 + GUARD as u64
    }

    /// The initial stack pointer: the top, 16-byte aligned as the ABI wants before a call.
    fn top(&self) -> *mut libc::c_void {
        (self.base as usize + self.len) as *mut libc::c_void
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// The child's work, told whether it started inside the group; `Infallible` because it never
/// returns (it execs or `_exit`s).
type Body<'a> = &'a mut dyn FnMut(bool) -> Infallible;

/// What the child's entry point receives.
struct Call<'a> {
    body: Body<'a>,
    in_cgroup: bool,
}

/// Entry point of the child: calls the closure whose address the parent passed.
extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points at a `Call` on the parent's stack, which stays alive and untouched
    // while the parent is suspended (CLONE_VFORK) until this child execs or exits.
    let call = unsafe { &mut *(arg as *mut Call) };
    // The closure's type says it cannot return; `match` turns that into this function's value.
    #[allow(unreachable_code)]
    match (call.body)(call.in_cgroup) {}
}

/// clone3 with CLONE_VM: the child starts on a new stack, so it cannot return into Rust code;
/// this enters `trampoline(arg)` there directly. Returns the raw result (pid or -errno).
///
/// # Safety
/// `args` must describe a valid, 16-byte aligned stack top (stack + stack_size) that stays
/// mapped until the child execs or exits, and `arg` must be valid for `trampoline`.
unsafe fn clone3_vm(args: &CloneArgs, arg: *mut libc::c_void) -> i64 {
    let ret: i64;
    // SAFETY: the caller's contract. The parent's side is a plain syscall (rcx and r11
    // clobbered, r12/r13 preserved). The child starts at the next instruction with rax = 0 and
    // rsp at the new stack's top, calls the trampoline, and ends with exit(2) if that ever
    // returned (it cannot: its closure diverges).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r13",
            "call r12",
            "mov edi, eax",
            "mov eax, 60",
            "syscall",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") trampoline as extern "C" fn(*mut libc::c_void) -> libc::c_int,
            in("r13") arg,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// fork(2) as clone3 (Linux 5.7), with the new namespaces of `flags` (`CLONE_NEW*`), SIGCHLD
/// as the exit signal, and the child started inside the v2 group whose directory `cgroup` is
/// open (CLONE_INTO_CGROUP): the kernel takes its threadgroup lock only for reading then, where
/// a parent's write of the child's pid to cgroup.procs takes it for writing, and the first
/// writer after a quiet spell waits for an RCU grace period (10-30 ms measured here). The child
/// continues on a copy of the stack, as after fork; 0 is returned there. An error (ENOSYS and
/// E2BIG on older kernels, or a group the kernel will not start a process in) means no child.
///
/// # Safety
/// The calling process must be single-threaded: only the calling thread is copied, and locks
/// another thread held would stay held in the child.
pub unsafe fn fork_into_cgroup(flags: libc::c_int, cgroup: RawFd) -> std::io::Result<libc::pid_t> {
    let args = CloneArgs {
        flags: u64::from(flags as u32) | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..CloneArgs::default()
    };
    // SAFETY: without CLONE_VM and with no stack the child gets a copy of this address space
    // and returns from the call on its copy of the stack, as from fork; `args` outlives the
    // call; the caller is single-threaded.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r as libc::pid_t)
    }
}

/// Starts `child` in a new process that shares this one's memory until it execs, with
/// SIGCHLD as its exit signal; with `cgroup` (a v2 group's directory fd) it starts inside that
/// group when the kernel can do that (clone3, Linux 5.7), else outside it. The child is told
/// which, as is the caller (`in_cgroup`).
///
/// # Safety
/// The calling process must be single-threaded: the child may take locks (malloc, stdio) that
/// another thread of ours could hold forever. `child` must end in execve or `_exit` (never
/// `std::process::exit`, whose atexit handlers and buffer flushes would run on our behalf).
pub unsafe fn spawn(
    cgroup: Option<RawFd>,
    child: &mut dyn FnMut(bool) -> Infallible,
) -> std::io::Result<Spawned> {
    let stack = Stack::new()?;
    let mut call = Call {
        body: child,
        in_cgroup: cgroup.is_some(),
    };
    let call_ptr: *mut Call = &mut call;
    let arg = call_ptr as *mut libc::c_void;
    if let Some(fd) = cgroup {
        let args = CloneArgs {
            flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            stack: stack.low(),
            stack_size: stack.top() as u64 - stack.low(),
            cgroup: fd as u64,
            ..CloneArgs::default()
        };
        // SAFETY: the stack is mapped until `stack` drops after the parent resumes; `arg`
        // points at `call`, alive for the same time.
        let r = unsafe { clone3_vm(&args, arg) };
        if r > 0 {
            return Ok(Spawned {
                pid: r as libc::pid_t,
                in_cgroup: true,
            });
        }
        // Old kernels (ENOSYS, E2BIG) or a group that cannot be entered this way: start
        // outside it, and the child joins by writing cgroup.procs.
        // SAFETY: `call_ptr` points at `call`, alive; no child runs now.
        unsafe { (*call_ptr).in_cgroup = false };
    }
    // SAFETY: as above, through glibc's clone wrapper, which calls `trampoline(arg)` on the
    // new stack and exits with its result.
    let pid = unsafe {
        libc::clone(
            trampoline,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            arg,
        )
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Spawned {
        pid,
        in_cgroup: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test harness is multi-threaded, so these children do only async-signal-safe things
    // (write, _exit): no allocation, no locks.

    fn pipe() -> (RawFd, RawFd) {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        (fds[0], fds[1])
    }

    #[test]
    fn child_runs_with_our_memory_and_its_status_comes_back() {
        let (r, w) = pipe();
        let mut seen: u8 = 0;
        let seen_ptr = &mut seen as *mut u8;
        let mut body = |_in_cgroup: bool| -> Infallible {
            // SAFETY: the parent is suspended; the write lands in its memory (CLONE_VM).
            unsafe {
                *seen_ptr = 42;
                libc::write(w, b"x".as_ptr().cast(), 1);
                libc::_exit(7)
            }
        };
        // SAFETY: the child only writes and _exits.
        let s = unsafe { spawn(None, &mut body) }.expect("spawn");
        assert!(s.pid > 0);
        assert!(!s.in_cgroup);
        // CLONE_VFORK: by now the child has exited, and its store is ours.
        assert_eq!(seen, 42);
        let mut status = 0;
        // SAFETY: our own child.
        assert_eq!(unsafe { libc::waitpid(s.pid, &mut status, 0) }, s.pid);
        assert!(libc::WIFEXITED(status));
        assert_eq!(libc::WEXITSTATUS(status), 7);
        let mut b = [0u8; 1];
        // SAFETY: reads into a local buffer; closes our own fds.
        unsafe {
            assert_eq!(libc::read(r, b.as_mut_ptr().cast(), 1), 1);
            libc::close(r);
            libc::close(w);
        }
        assert_eq!(&b, b"x");
    }

    #[test]
    fn a_descriptor_that_is_no_cgroup_falls_back_to_a_plain_start() {
        // /dev/null is no cgroup directory: clone3 refuses it, and the plain clone still runs
        // the child (outside any group).
        // SAFETY: opening a fixed path.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        assert!(fd >= 0);
        let mut body = |_in_cgroup: bool| -> Infallible {
            // SAFETY: _exit is always safe.
            unsafe { libc::_exit(3) }
        };
        // SAFETY: the child only _exits.
        let s = unsafe { spawn(Some(fd), &mut body) }.expect("spawn");
        assert!(!s.in_cgroup);
        let mut status = 0;
        // SAFETY: our own child; our own fd.
        unsafe {
            assert_eq!(libc::waitpid(s.pid, &mut status, 0), s.pid);
            libc::close(fd);
        }
        assert_eq!(libc::WEXITSTATUS(status), 3);
    }
}
