//! tinyvmm: a minimal KVM virtual machine monitor for scripts. Placeholder until the tool's issue lands.

use clap::Parser;

/// Command line of tinyvmm.
#[derive(Parser, Debug)]
#[command(
    name = "tinyvmm",
    version,
    about = "a minimal KVM virtual machine monitor for scripts",
    after_help = "Examples:\n  tinyvmm --help"
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
