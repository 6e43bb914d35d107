//! Thin entry point: parse, run, exit with the outcome.

fn main() {
    let tool = conventions::cli::tool_name("tinyvmm");
    let cli: tinyvmm::Cli = conventions::cli::parse_or_exit(&tool, 125);
    std::process::exit(tinyvmm::run(&tool, cli));
}
