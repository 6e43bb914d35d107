//! pivot: switch a process into its own root filesystem (pivot_root, switch_root). Placeholder until the tool's issue lands.

use clap::Parser;

/// Command line of pivot.
#[derive(Parser, Debug)]
#[command(
    name = "pivot",
    version,
    about = "switch a process into its own root filesystem (pivot_root, switch_root)",
    after_help = "Examples:\n  pivot --help"
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
