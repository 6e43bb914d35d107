//! Thin entry point: pick the mode from the name we were called by, run, exit with the outcome.

fn main() {
    let tool = conventions::cli::tool_name("pivot");
    std::process::exit(pivot::main_with(&tool, std::env::args_os().collect()));
}
