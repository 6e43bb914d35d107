//! Thin entry point: parse, run, exit with the outcome.
//!
//! `no_main` skips Rust's runtime start-up: it would set SIGPIPE to ignored, which the program
//! we exec would inherit (util-linux leaves dispositions alone), and it reads /proc/self/maps
//! for a stack guard, which costs start-up time in a tool that lives for a millisecond.

#![no_main]

#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    conventions::output::guard_std_fds();
    let tool = conventions::output::tool_name("nsenter-rs");
    let code = nsenter_rs::main_with(&tool, std::env::args_os().skip(1));
    conventions::output::exit(&tool, code, conventions::exit::FAILURE)
}
