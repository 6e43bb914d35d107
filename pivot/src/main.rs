//! Thin entry point: pick the mode from the name we were called by, run, exit with the outcome.
//!
//! `no_main` skips Rust's runtime start-up (SIGPIPE ignored, fds 0-2 polled, /proc/self/maps read
//! for a stack guard, an alternate signal stack), a measurable share of a container's start.

#![no_main]

#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    conventions::output::guard_std_fds();
    let tool = conventions::output::tool_name("pivot");
    let code = pivot::main_with(&tool, std::env::args_os().collect());
    conventions::output::exit(&tool, code, conventions::exit::FAILURE)
}
