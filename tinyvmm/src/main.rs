//! Thin entry point: parse with clap, run, exit with the outcome.
//!
//! `no_main` skips Rust's runtime start-up (SIGPIPE ignored, fds 0-2 polled, /proc/self/maps read
//! for a stack guard, an alternate signal stack): a VM whose whole run takes a millisecond should
//! not spend a tenth of it there.

#![no_main]

#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    conventions::output::guard_std_fds();
    let tool = conventions::output::tool_name("tinyvmm");
    let cli = conventions::cli::parse_or_exit::<tinyvmm::Cli>(&tool, 125);
    let code = tinyvmm::run(&tool, cli);
    conventions::output::exit(&tool, code, tinyvmm::EXIT_FAILURE)
}
