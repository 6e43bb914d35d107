//! nsenter-rs: run a program in the namespaces of a process or of namespace files (util-linux nsenter). Placeholder until the tool's issue lands.

use clap::Parser;

/// Command line of nsenter-rs.
#[derive(Parser, Debug)]
#[command(
    name = "nsenter-rs",
    version,
    about = "run a program in the namespaces of a process or of namespace files (util-linux nsenter)",
    after_help = "Examples:\n  nsenter-rs --help"
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
