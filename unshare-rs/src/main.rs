//! Thin entry point: parse and run, print an error once, exit as the child did.

fn main() {
    // Rust's runtime ignores SIGPIPE; the program we exec must get the default back (an ignored
    // signal stays ignored across execve), as it would from util-linux.
    // SAFETY: resetting a signal disposition to the default has no memory effects.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let tool = conventions::cli::tool_name("unshare-rs");
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match unshare_rs::run(&tool, &args) {
        Ok(unshare_rs::Exit::Code(code)) => {
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::process::exit(code)
        }
        Ok(unshare_rs::Exit::Child(outcome)) => conventions::exit::relay(outcome),
        Err(unshare_rs::error::Error::Reported) => std::process::exit(1),
        Err(e) => conventions::cli::die(&tool, &e, e.code()),
    }
}
