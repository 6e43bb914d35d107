//! Thin entry point: parse, run, exit with the outcome (the container's for `run`).
//!
//! `no_main` skips Rust's runtime start-up (SIGPIPE ignored, which the container's program would
//! inherit; fds 0-2 polled; /proc/self/maps read for a stack guard).

#![no_main]

#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    let tool = conventions::output::tool_name("ocirun");
    match ocirun::main_with(&tool, std::env::args_os().collect()) {
        ocirun::Exit::Code(code) => code,
        ocirun::Exit::Child(outcome) => conventions::exit::relay(outcome),
    }
}
