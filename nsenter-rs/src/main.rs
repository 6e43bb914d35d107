//! Thin entry point: parse, run, exit with the outcome.

fn main() {
    let tool = conventions::cli::tool_name("nsenter-rs");
    let cli: nsenter_rs::Cli = conventions::cli::parse(&tool);
    std::process::exit(nsenter_rs::run(&tool, cli));
}
