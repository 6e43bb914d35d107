//! Thin entry point: parse (clap), run, exit with the outcome.
//!
//! `no_main` skips Rust's runtime start-up (SIGPIPE ignored, fds 0-2 polled, /proc/self/maps read
//! for a stack guard, an alternate signal stack), a measurable share of a millisecond's run.

#![no_main]

#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    conventions::output::guard_std_fds();
    let tool = conventions::output::tool_name("cgctl");
    let cli = conventions::cli::parse::<cgctl::Cli>(&tool);
    let code = cgctl::run(&tool, cli);
    conventions::output::exit(&tool, code, conventions::exit::FAILURE)
}
