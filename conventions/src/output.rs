//! Writing to stdout and stderr without ever panicking, and ending as util-linux's `close_stdout`
//! does: a failed write (`>/dev/full`, a closed descriptor) is `TOOL: write error: <strerror>`
//! and a failure status, not a Rust panic (`print!` and `eprint!` panic when a write fails).
//!
//! The model is C stdio's: a write that fails records its errno (the first one) and the tool goes
//! on; [`exit`] (or [`finish`]) flushes stdout and turns a recorded error into the one message and
//! the failure status. [`guard_std_fds`], called first in every `main`, keeps a closed fd 0-2
//! from being reused by the first file the tool opens, where its output would then land.

use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The first errno of a failed stdout write (0: none).
static STDOUT_ERRNO: AtomicI32 = AtomicI32::new(0);
/// The first errno of a failed stderr write (0: none).
static STDERR_ERRNO: AtomicI32 = AtomicI32::new(0);
/// Fd 1 was not open when the tool started (it is /dev/null now, see [`guard_std_fds`]).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// Fd 2 was not open when the tool started.
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// Opens /dev/null onto each of fds 0, 1 and 2 that is not open, so that no descriptor the tool
/// opens later becomes its stdout (a closed stdout would otherwise receive `nsenter-rs --ls`'s
/// listing in a namespace file it opened). The placeholders are close-on-exec: a program the tool
/// execs finds the descriptor closed, as the tool did. Writes to a stdout or stderr that was
/// closed fail with EBADF, as they would have. Costs three `fcntl`s when all are open (Rust's
/// own runtime start-up, which `no_main` skips, polls them instead).
pub fn guard_std_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD on any number is harmless; it only asks whether fd is open.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        if !closed {
            continue;
        }
        // open returns the lowest free descriptor: this one, as the lower ones are open now.
        // SAFETY: a valid C string path; the descriptor is ours and stays open on purpose.
        let got = unsafe {
            libc::open(
                c"/dev/null".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOCTTY,
            )
        };
        if got >= 0 && got != fd {
            // Not the slot we meant (cannot happen while 0..fd are open): give it back.
            // SAFETY: closes the descriptor just opened.
            unsafe { libc::close(got) };
        }
        match fd {
            1 => STDOUT_CLOSED.store(true, Ordering::Relaxed),
            2 => STDERR_CLOSED.store(true, Ordering::Relaxed),
            _ => {}
        }
    }
}

/// The name to use in messages: the base name of `argv[0]` (so a symlink named `unshare` speaks as
/// `unshare`), or `default` when `argv[0]` is missing or empty.
pub fn tool_name(default: &str) -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// The kernel's message for `errno`, as strerror gives it (without std's ` (os error N)`).
pub fn strerror(errno: i32) -> String {
    errtext(&std::io::Error::from_raw_os_error(errno))
}

/// An I/O error's text as strerror gives it, for one-line messages: std's ` (os error N)` tail is
/// noise next to util-linux's wording, so every tool's message passes through here.
pub fn errtext(err: &std::io::Error) -> String {
    let s = err.to_string();
    match err.raw_os_error() {
        Some(_) => without_os_error(&s).to_string(),
        None => s,
    }
}

/// `msg` without a trailing ` (os error N)`, for messages that reach us as text (other crates'
/// errors that wrap an errno): the one place that strips it.
pub fn without_os_error(msg: &str) -> &str {
    match msg.rfind(" (os error ") {
        Some(i) if msg.ends_with(')') => &msg[..i],
        _ => msg,
    }
}

/// The one line a failed write of stdout or stderr ends with: `TOOL: write error: <strerror>`.
pub fn write_error_line(tool: &str, errno: i32) -> String {
    format!("{tool}: write error: {}", strerror(errno))
}

fn record(slot: &AtomicI32, e: &std::io::Error) {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    let _ = slot.compare_exchange(0, errno, Ordering::Relaxed, Ordering::Relaxed);
}

/// Records a failed write of fd 1 made without [`out_fmt`] (tinyvmm writes guest output to fd
/// 1 directly), for [`exit`] to report.
pub fn stdout_failed(e: &std::io::Error) {
    record(&STDOUT_ERRNO, e);
}

/// Writes to stdout; a failure is recorded for [`exit`] and reported `false`, never a panic.
pub fn out_fmt(args: fmt::Arguments) -> bool {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        let _ = STDOUT_ERRNO.compare_exchange(0, libc::EBADF, Ordering::Relaxed, Ordering::Relaxed);
        return false;
    }
    match std::io::stdout().lock().write_fmt(args) {
        Ok(()) => true,
        Err(e) => {
            record(&STDOUT_ERRNO, &e);
            false
        }
    }
}

/// Writes to stderr (unbuffered); a failure is recorded for [`exit`], never a panic.
pub fn err_fmt(args: fmt::Arguments) -> bool {
    if STDERR_CLOSED.load(Ordering::Relaxed) {
        let _ = STDERR_ERRNO.compare_exchange(0, libc::EBADF, Ordering::Relaxed, Ordering::Relaxed);
        return false;
    }
    match std::io::stderr().lock().write_fmt(args) {
        Ok(()) => true,
        Err(e) => {
            record(&STDERR_ERRNO, &e);
            false
        }
    }
}

/// Flushes stdout; a failure is recorded for [`exit`].
pub fn flush() -> bool {
    match std::io::stdout().lock().flush() {
        Ok(()) => true,
        Err(e) => {
            record(&STDOUT_ERRNO, &e);
            false
        }
    }
}

/// Whether a write of stdout or stderr has failed so far.
pub fn failed() -> bool {
    STDOUT_ERRNO.load(Ordering::Relaxed) != 0 || STDERR_ERRNO.load(Ordering::Relaxed) != 0
}

/// What ending with `code` becomes after the writes so far: `code` when every write reached its
/// descriptor; else `failure` (1, tinyvmm's 125), with the message for a failed stdout.
fn verdict(stdout_errno: i32, stderr_errno: i32, code: i32, failure: i32) -> (i32, Option<i32>) {
    match (stdout_errno, stderr_errno) {
        (0, 0) => (code, None),
        // Where stderr itself failed, nothing can be said (util-linux's close_stdout: _exit).
        (_, e) if e != 0 => (failure, None),
        (e, _) => (failure, Some(e)),
    }
}

/// Flushes stdout and returns the status to end with: `code`, or `failure` after printing
/// `TOOL: write error: <strerror>` on stderr once when a write of stdout failed (only the
/// status when stderr itself failed).
pub fn finish(tool: &str, code: i32, failure: i32) -> i32 {
    flush();
    let (status, say) = verdict(
        STDOUT_ERRNO.load(Ordering::Relaxed),
        STDERR_ERRNO.load(Ordering::Relaxed),
        code,
        failure,
    );
    if let Some(errno) = say {
        err_fmt(format_args!("{}\n", write_error_line(tool, errno)));
    }
    status
}

/// Ends the process as [`finish`] decides.
pub fn exit(tool: &str, code: i32, failure: i32) -> ! {
    std::process::exit(finish(tool, code, failure))
}

/// `print!` that never panics: writes to stdout, recording a failure for
/// [`output::exit`](crate::output::exit).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = $crate::output::out_fmt(::std::format_args!($($arg)*));
    }};
}

/// `println!` that never panics: writes a line to stdout, recording a failure for
/// [`output::exit`](crate::output::exit).
#[macro_export]
macro_rules! outln {
    () => {{
        let _ = $crate::output::out_fmt(::std::format_args!("\n"));
    }};
    ($($arg:tt)*) => {{
        let _ = $crate::output::out_fmt(::std::format_args!("{}\n", ::std::format_args!($($arg)*)));
    }};
}

/// `eprintln!` that never panics: writes a line to stderr, recording a failure for
/// [`output::exit`](crate::output::exit).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        let _ = $crate::output::err_fmt(::std::format_args!("{}\n", ::std::format_args!($($arg)*)));
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_strerror() {
        assert_eq!(
            write_error_line("cgctl", libc::ENOSPC),
            "cgctl: write error: No space left on device"
        );
        assert_eq!(strerror(libc::EBADF), "Bad file descriptor");
    }

    #[test]
    fn no_message_ends_in_os_error() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert!(e.to_string().ends_with("(os error 2)"), "std changed: {e}");
        assert_eq!(errtext(&e), "No such file or directory");
        // Not an OS error: the text is all there is, parentheses included.
        let e = std::io::Error::other("bad value (os error 2)");
        assert_eq!(errtext(&e), "bad value (os error 2)");
        assert_eq!(
            without_os_error("capset failure: Operation not permitted (os error 1)"),
            "capset failure: Operation not permitted"
        );
        assert_eq!(without_os_error("no errno here"), "no errno here");
        assert_eq!(without_os_error("x (os error 2) y"), "x (os error 2) y");
        let (msg, _) = crate::exec::execvp(&["/nonexistent/program".into()]);
        assert_eq!(
            msg,
            "failed to execute /nonexistent/program: No such file or directory"
        );
    }

    #[test]
    fn a_failed_write_overrides_the_status() {
        assert_eq!(verdict(0, 0, 0, 1), (0, None));
        assert_eq!(verdict(0, 0, 3, 1), (3, None));
        assert_eq!(verdict(libc::ENOSPC, 0, 0, 1), (1, Some(libc::ENOSPC)));
        assert_eq!(verdict(libc::ENOSPC, 0, 0, 125), (125, Some(libc::ENOSPC)));
        assert_eq!(verdict(0, libc::ENOSPC, 0, 1), (1, None));
        assert_eq!(verdict(libc::EBADF, libc::ENOSPC, 7, 1), (1, None));
    }
}
