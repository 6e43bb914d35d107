//! Thin entry point: parse, run, exit with the outcome.

fn main() {
    let tool = conventions::cli::tool_name("unshare-rs");
    let cli: unshare_rs::Cli = conventions::cli::parse(&tool);
    std::process::exit(unshare_rs::run(&tool, cli));
}
