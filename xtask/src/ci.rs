//! `cargo xtask ci`: the whole test suite, the same steps on a laptop and in `.ci/run`.

use crate::{deps, rootfs, util};

/// Runs set-up (packages, rootfs), then fmt, clippy, build, tests and docs; stops at the first
/// failure.
pub fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("ci takes no arguments".to_string());
    }
    deps::run(&[])?;
    let rootfs = rootfs::default_dir();
    rootfs::ensure(&rootfs)?;
    util::run(util::cargo().args(["fmt", "--all", "--", "--check"]))?;
    util::run(util::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    util::run(util::cargo().args(["build", "--workspace"]))?;
    util::run(
        util::cargo()
            .args(["test", "--workspace"])
            .env("MICROTOOLS_ROOTFS", &rootfs),
    )?;
    util::run(
        util::cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    eprintln!("xtask ci: all steps passed");
    Ok(())
}
