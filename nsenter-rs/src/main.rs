//! Thin entry point: parse, run, exit with the outcome.

fn main() {
    let tool = conventions::cli::tool_name("nsenter-rs");
    std::process::exit(nsenter_rs::main_with(&tool, std::env::args_os().skip(1)));
}
