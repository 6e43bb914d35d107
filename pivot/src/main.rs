//! Thin entry point: parse, run, exit with the outcome.

fn main() {
    let tool = conventions::cli::tool_name("pivot");
    let cli: pivot::Cli = conventions::cli::parse(&tool);
    std::process::exit(pivot::run(&tool, cli));
}
