//! Thin entry point: a CNI plugin when CNI_COMMAND is set, else parse (clap), run, exit.
//!
//! `no_main` skips Rust's runtime start-up, as in the other tools.

#![no_main]

#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    conventions::output::guard_std_fds();
    let tool = conventions::output::tool_name("netwire");
    if std::env::var_os("CNI_COMMAND").is_some() {
        let code = netwire::cni::main();
        conventions::output::exit(&tool, code, conventions::exit::FAILURE)
    }
    let cli = conventions::cli::parse::<netwire::Cli>(&tool);
    let code = netwire::run(&tool, cli);
    conventions::output::exit(&tool, code, conventions::exit::FAILURE)
}
