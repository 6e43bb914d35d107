//! Thin entry point: parse and run, print an error once, exit as the child did.
//!
//! `no_main` skips Rust's runtime start-up, which costs a tool that lives for a millisecond a
//! measurable share of it: it sets SIGPIPE to ignored (the program we exec would inherit that;
//! util-linux leaves dispositions alone, so we would have to set it back), polls fds 0-2, reads
//! /proc/self/maps for a stack guard and installs an alternate signal stack. glibc hands std the
//! arguments through its init hook, so `std::env::args_os` works as before.

#![no_main]

// The shipped static build starts in the fast path, which runs everyday command lines before
// glibc starts and returns to glibc's `_start` for the rest (see unshare_rs::early); other
// builds start at `_start` and have no fast path (build/early_entry.rs).
#[cfg(microtools_early)]
conventions::early_entry!(unshare_rs::early::entry);

#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    conventions::output::guard_std_fds();
    let tool = conventions::output::tool_name("unshare-rs");
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match unshare_rs::run(&tool, &args, unshare_rs::early::handover()) {
        Ok(unshare_rs::Exit::Code(code)) => conventions::output::exit(&tool, code, 1),
        Ok(unshare_rs::Exit::Child(outcome)) => conventions::exit::relay(outcome),
        Err(unshare_rs::error::Error::Reported) => conventions::output::exit(&tool, 1, 1),
        Err(e) => conventions::cli::die(&tool, &e, e.code()),
    }
}
