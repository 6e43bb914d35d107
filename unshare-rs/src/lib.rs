//! unshare-rs: create namespaces and run a program in them (util-linux unshare). Placeholder until the tool's issue lands.

use clap::Parser;

/// Command line of unshare-rs.
#[derive(Parser, Debug)]
#[command(
    name = "unshare-rs",
    version,
    about = "create namespaces and run a program in them (util-linux unshare)",
    after_help = "Examples:\n  unshare-rs --help"
)]
pub struct Cli {
    /// Program and arguments.
    #[arg(trailing_var_arg = true)]
    pub args: Vec<std::ffi::OsString>,
}

/// Runs the tool and returns the process exit code.
pub fn run(tool: &str, _cli: Cli) -> i32 {
    eprintln!("{tool}: not implemented yet");
    conventions::exit::FAILURE
}
