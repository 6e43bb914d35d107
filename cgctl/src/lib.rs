//! cgctl: create cgroups, set limits, run commands under them and report what they used. Placeholder until the tool's issue lands.

use clap::Parser;

/// Command line of cgctl.
#[derive(Parser, Debug)]
#[command(
    name = "cgctl",
    version,
    about = "create cgroups, set limits, run commands under them and report what they used",
    after_help = "Examples:\n  cgctl --help"
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
