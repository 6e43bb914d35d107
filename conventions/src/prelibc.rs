//! Running before glibc has started: an entry point that lets a tool finish an everyday command
//! line with raw syscalls, and hand anything else to glibc's own start-up as if nothing had run.
//!
//! glibc's start-up costs a static binary about 0.27 ms here (of a tool's 0.6 ms): it probes the
//! CPU with some 43 CPUID instructions, each a trap to the hypervisor on a VM, sets up TLS and
//! resolves its string functions. A tool that only makes a few syscalls and execs needs none of
//! that. [`early_entry!`](crate::early_entry) makes the binary start in a tool's function, which
//! gets the initial stack (argc, argv, envp) and either never returns (it exec'd or exited) or
//! returns, and then glibc's `_start` runs with the registers and stack the kernel (or the
//! dynamic loader) gave.
//!
//! What such a function may do is narrow, because nothing of the C runtime exists yet:
//! - no TLS (`%fs` is 0 in a static binary): no `errno`, no `thread_local!`, no panics (std's
//!   panic handler counts panics in TLS), so no indexing that may panic;
//! - no libc call: in a static binary glibc's `memcpy`, `memset`, `strlen` are IFUNCs resolved
//!   only by its start-up, so a call to one jumps nowhere; only the syscalls in [`sys`];
//! - no heap.
//!
//! Its code goes in the `early_text` section ([`SECTION`]), so that a test can check in the
//! shipped binary that it calls nothing outside that section and never reads `%fs`
//! (`cargo xtask ci` does, see `xtask::early`). The linker is told to start there by the tool's
//! build script (`build/early_entry.rs`); a binary built without that flag starts at `_start` as
//! usual and the function is never called.

/// The section that holds the entry point and everything it runs (the audit in xtask reads it;
/// `#[link_section]` needs the literal). The entry symbol is `microtools_early_entry`, which
/// `build/early_entry.rs` names to the linker.
pub const SECTION: &str = "early_text";

/// Defines the binary's entry point: `$f`, an `extern "C" fn(*const usize)` placed in
/// `early_text`, is called with the initial stack pointer; if it returns, glibc's `_start` runs.
///
/// The kernel starts a static binary with `%rsp` 16-byte aligned and `%rdx` 0; the dynamic
/// loader passes its finalizer in `%rdx`. Both are handed to `_start` unchanged.
#[macro_export]
macro_rules! early_entry {
    ($f:path) => {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        ::core::arch::global_asm!(
            ".pushsection early_text,\"ax\",@progbits",
            ".globl microtools_early_entry",
            ".type microtools_early_entry,@function",
            "microtools_early_entry:",
            "mov %rsp, %rdi",
            "push %rdx",
            "sub $8, %rsp",
            "call {f}",
            "add $8, %rsp",
            "pop %rdx",
            "jmp _start",
            ".size microtools_early_entry, . - microtools_early_entry",
            ".popsection",
            f = sym $f,
            options(att_syntax)
        );
    };
}

/// The process's arguments and environment as the kernel laid them out on the initial stack.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    argc: usize,
    argv: *const *const u8,
    envp: *const *const u8,
}

impl Start {
    /// Reads the initial stack.
    ///
    /// # Safety
    /// `sp` must be the stack pointer the process started with (argc, then argv, NULL, envp,
    /// NULL), and the strings must stay untouched while the returned value is used.
    #[inline(always)]
    pub unsafe fn from_stack(sp: *const usize) -> Start {
        // SAFETY: the caller passes the initial stack, whose first word is argc and whose argv
        // array of argc pointers is followed by a NULL and then envp.
        unsafe {
            let argc = *sp;
            let argv = sp.add(1) as *const *const u8;
            let envp = argv.add(argc + 1);
            Start { argc, argv, envp }
        }
    }

    /// argc.
    #[inline(always)]
    pub fn argc(&self) -> usize {
        self.argc
    }

    /// argv, NULL-terminated, for execve.
    #[inline(always)]
    pub fn argv(&self) -> *const *const u8 {
        self.argv
    }

    /// envp, NULL-terminated, for execve.
    #[inline(always)]
    pub fn envp(&self) -> *const *const u8 {
        self.envp
    }

    /// argv\[i\] without its NUL, or None past the end.
    #[inline(always)]
    pub fn arg(&self, i: usize) -> Option<&'static [u8]> {
        if i >= self.argc {
            return None;
        }
        // SAFETY: i < argc, so argv[i] is a valid NUL-terminated string (from_stack's contract).
        unsafe { Some(cstr(*self.argv.add(i))) }
    }

    /// Whether the kernel started us in secure-execution mode (AT_SECURE: set-uid, set-gid or
    /// file capabilities), in which glibc cleans the environment before anything runs; early
    /// code should then leave everything to the ordinary path.
    #[inline(always)]
    pub fn secure(&self) -> bool {
        // SAFETY: the auxiliary vector (type, value pairs ending in AT_NULL) follows envp's NULL.
        unsafe {
            let mut p = self.envp;
            while !(*p).is_null() {
                p = p.add(1);
            }
            let mut aux = p.add(1) as *const usize;
            while *aux != libc::AT_NULL as usize {
                if *aux == libc::AT_SECURE as usize {
                    return *aux.add(1) != 0;
                }
                aux = aux.add(2);
            }
        }
        // No AT_SECURE entry: a kernel that predates it, which did not start us set-uid either
        // as far as glibc could tell; be safe.
        true
    }

    /// The value of environment variable `name` (given with its `=`, e.g. `b"PATH="`).
    #[inline(always)]
    pub fn env(&self, name: &[u8]) -> Option<&'static [u8]> {
        let mut p = self.envp;
        // SAFETY: envp is a NULL-terminated array of NUL-terminated strings.
        unsafe {
            while !(*p).is_null() {
                let s = cstr(*p);
                if starts_with(s, name) {
                    return s.get(name.len()..);
                }
                p = p.add(1);
            }
        }
        None
    }
}

/// The bytes of a NUL-terminated string. The volatile read keeps the compiler from turning the
/// loop into a call to `strlen`, which does not work yet (see the module comment).
///
/// # Safety
/// `p` must point to a NUL-terminated string that lives as long as the program.
#[inline(always)]
pub unsafe fn cstr(p: *const u8) -> &'static [u8] {
    let mut n = 0;
    // SAFETY: reads up to and including the NUL the caller promises.
    unsafe {
        while core::ptr::read_volatile(p.add(n)) != 0 {
            n += 1;
        }
        core::slice::from_raw_parts(p, n)
    }
}

/// Whether `a` equals `b`, in a loop of our own: slice equality calls `memcmp`.
#[inline(always)]
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && starts_with(a, b)
}

/// Whether `a` starts with `b` (see [`eq`]).
#[inline(always)]
pub fn starts_with(a: &[u8], b: &[u8]) -> bool {
    if a.len() < b.len() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        // SAFETY: i < b.len() <= a.len(). Volatile, so the loop stays a loop (not `bcmp`).
        if unsafe { core::ptr::read_volatile(a.as_ptr().add(i)) != *b.as_ptr().add(i) } {
            return false;
        }
        i += 1;
    }
    true
}

/// Raw Linux syscalls (x86_64), returning `-errno` on failure as the kernel does. The ordinary
/// paths use the ones that must behave the same before and after glibc starts ([`sys::wait`],
/// [`sys::reraise`]), so there is one implementation of each. This module uses nothing else of
/// the crate: [`crate::exit`] builds on it, not the other way round.
pub mod sys {
    /// syscall(2) with up to six arguments.
    ///
    /// # Safety
    /// The arguments must be valid for syscall `n`; pointers must point where the kernel may read
    /// or write what that syscall reads or writes.
    #[inline(always)]
    pub unsafe fn call(n: i64, a: [usize; 6]) -> isize {
        let ret: isize;
        // SAFETY: the syscall instruction clobbers only rax (result), rcx and r11; the caller
        // vouches for the arguments.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") n as isize => ret,
                in("rdi") a[0],
                in("rsi") a[1],
                in("rdx") a[2],
                in("r10") a[3],
                in("r8") a[4],
                in("r9") a[5],
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack)
            );
        }
        ret
    }

    /// exit_group(2).
    #[inline(always)]
    pub fn exit(code: i32) -> ! {
        loop {
            // SAFETY: exit_group takes an integer and does not return.
            unsafe { call(libc::SYS_exit_group, [code as usize, 0, 0, 0, 0, 0]) };
        }
    }

    /// The kernel's `struct sigaction` for rt_sigaction(2) (not libc's, whose mask is larger).
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct KernelSigaction {
        /// SIG_DFL, SIG_IGN or a handler.
        pub handler: usize,
        /// SA_* flags.
        pub flags: u64,
        /// SA_RESTORER's trampoline (unused: no handlers are installed this early).
        pub restorer: usize,
        /// Signals blocked while the handler runs.
        pub mask: u64,
    }

    impl KernelSigaction {
        /// All zero: where rt_sigaction writes a previous disposition.
        pub const EMPTY: KernelSigaction = KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
    }

    /// Sets `sig`'s disposition to `handler` (SIG_DFL or SIG_IGN only: a handler would need a
    /// restorer) with SA_RESTART, returning the previous one in `old`.
    #[inline(always)]
    pub fn set_disposition(sig: i32, handler: usize, old: &mut KernelSigaction) -> isize {
        let act = KernelSigaction {
            handler,
            flags: libc::SA_RESTART as u64,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: both structs are valid and of the kernel's layout; sigsetsize is 8.
        unsafe {
            call(
                libc::SYS_rt_sigaction,
                [
                    sig as usize,
                    &act as *const KernelSigaction as usize,
                    old as *mut KernelSigaction as usize,
                    8,
                    0,
                    0,
                ],
            )
        }
    }

    /// Puts back a disposition saved by [`set_disposition`].
    #[inline(always)]
    pub fn restore_disposition(sig: i32, old: &KernelSigaction) -> isize {
        // SAFETY: a struct the kernel filled; sigsetsize is 8.
        unsafe {
            call(
                libc::SYS_rt_sigaction,
                [
                    sig as usize,
                    old as *const KernelSigaction as usize,
                    0,
                    8,
                    0,
                    0,
                ],
            )
        }
    }

    /// rt_sigprocmask(2) on a 64-bit mask; returns the old mask (or `-errno`).
    #[inline(always)]
    pub fn sigprocmask(how: i32, set: u64) -> Result<u64, isize> {
        let mut old: u64 = 0;
        // SAFETY: both masks are valid u64s; sigsetsize is 8.
        let r = unsafe {
            call(
                libc::SYS_rt_sigprocmask,
                [
                    how as usize,
                    &set as *const u64 as usize,
                    &mut old as *mut u64 as usize,
                    8,
                    0,
                    0,
                ],
            )
        };
        if r < 0 {
            Err(r)
        } else {
            Ok(old)
        }
    }

    /// wait4(2) for `pid`, retrying EINTR: the raw wait status, or `-errno`.
    #[inline(always)]
    pub fn wait(pid: libc::pid_t) -> Result<i32, isize> {
        let mut status: i32 = 0;
        loop {
            // SAFETY: wait4 writes only the status, a valid local; no rusage.
            let r = unsafe {
                call(
                    libc::SYS_wait4,
                    [pid as usize, &mut status as *mut i32 as usize, 0, 0, 0, 0],
                )
            };
            if r == pid as isize {
                return Ok(status);
            }
            if r != -(libc::EINTR as isize) {
                return Err(r);
            }
        }
    }

    /// Dies of `sig` so that our parent sees the status a child killed by it had (a shell prints
    /// 128+N), without leaving a core file; if `sig` cannot kill us (it is ignored by the kernel
    /// for us, as for a PID 1), exits with 128+N.
    #[inline(always)]
    pub fn reraise(sig: i32) -> ! {
        let no_core = [0u64; 2];
        let mut prev = KernelSigaction::EMPTY;
        // SAFETY: setrlimit reads a valid struct rlimit; getpid and kill take integers. We are
        // about to die, so the core limit, the disposition and the mask no longer matter.
        unsafe {
            call(
                libc::SYS_setrlimit,
                [
                    libc::RLIMIT_CORE as usize,
                    no_core.as_ptr() as usize,
                    0,
                    0,
                    0,
                    0,
                ],
            );
            set_disposition(sig, libc::SIG_DFL, &mut prev);
            let _ = sigprocmask(libc::SIG_UNBLOCK, sigbit(sig));
            let me = call(libc::SYS_getpid, [0; 6]);
            call(libc::SYS_kill, [me as usize, sig as usize, 0, 0, 0, 0]);
        }
        exit(128 + sig)
    }

    /// The bit of `sig` in a kernel signal mask.
    #[inline(always)]
    pub const fn sigbit(sig: i32) -> u64 {
        1u64 << (sig - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_initial_stack() {
        let a = b"prog\0";
        let b = b"-n\0";
        let e = b"PATH=/bin:/usr/bin\0";
        let f = b"SHELL=/bin/sh\0";
        let stack: [usize; 13] = [
            2,
            a.as_ptr() as usize,
            b.as_ptr() as usize,
            0,
            e.as_ptr() as usize,
            f.as_ptr() as usize,
            0,
            libc::AT_PAGESZ as usize,
            4096,
            libc::AT_SECURE as usize,
            0,
            libc::AT_NULL as usize,
            0,
        ];
        // SAFETY: the array is laid out like an initial stack and outlives `s`; the strings
        // are statics.
        let s = unsafe { Start::from_stack(stack.as_ptr()) };
        assert_eq!(s.argc(), 2);
        assert_eq!(s.arg(0), Some(&b"prog"[..]));
        assert_eq!(s.arg(1), Some(&b"-n"[..]));
        assert_eq!(s.arg(2), None);
        assert_eq!(s.env(b"PATH="), Some(&b"/bin:/usr/bin"[..]));
        assert_eq!(s.env(b"SHELL="), Some(&b"/bin/sh"[..]));
        assert_eq!(s.env(b"HOME="), None);
        assert!(!s.secure());
        let mut secure = stack;
        secure[10] = 1;
        // SAFETY: as above.
        assert!(unsafe { Start::from_stack(secure.as_ptr()) }.secure());
        assert!(eq(b"-n", b"-n") && !eq(b"-n", b"-nx") && !eq(b"-n", b"-m"));
        assert!(starts_with(b"--mount", b"--") && !starts_with(b"-", b"--"));
    }

    #[test]
    fn raw_syscalls_return_minus_errno() {
        let mut old = sys::KernelSigaction::EMPTY;
        // Signal 0 does not exist: EINVAL, and nothing changed.
        assert_eq!(
            sys::set_disposition(0, libc::SIG_IGN, &mut old),
            -(libc::EINVAL as isize)
        );
        let mask = sys::sigprocmask(libc::SIG_BLOCK, 0).expect("query the mask");
        assert_eq!(sys::sigprocmask(libc::SIG_SETMASK, mask), Ok(mask));
        assert_eq!(sys::sigbit(libc::SIGINT), 2);
    }
}
