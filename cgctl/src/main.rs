//! Thin entry point: parse, run, exit with the outcome.

fn main() {
    let tool = conventions::cli::tool_name("cgctl");
    let cli: cgctl::Cli = conventions::cli::parse(&tool);
    std::process::exit(cgctl::run(&tool, cli));
}
