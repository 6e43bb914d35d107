//! `cargo xtask ci`: the whole test suite, the same steps on a laptop and in `.ci/run`.

use crate::{conformance, deps, early, kernel, nested, release, rootfs, util};

/// Runs set-up (packages, rootfs, guest kernel), then fmt, clippy, build, the tests (unshare-rs's
/// also on its shipped build, whose early code is audited first), docs, a
/// build check of the fuzz targets (offline once `cargo fetch --manifest-path fuzz/Cargo.toml`
/// has run: fuzz/Cargo.lock pins its crates), the OCI conformance suite against ocirun and the
/// hardware-KVM lane (the guest-kernel lane runs among the tests);
/// stops at the first failure and lists, at the end, the tests that skipped for a missing
/// capability.
pub fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("ci takes no arguments".to_string());
    }
    deps::run(&[])?;
    let rootfs = rootfs::default_dir();
    rootfs::ensure(&rootfs)?;
    let kernel = kernel::ensure()?;
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
    let skips = util::target_dir().join("microtools-skips.log");
    let _ = std::fs::remove_file(&skips);
    let result = steps(&rootfs, &kernel, &skips);
    // Last, so that it is what a reader of the log sees, whether the steps passed or not.
    let skipped = std::fs::read_to_string(&skips).unwrap_or_default();
    if skipped.is_empty() {
        eprintln!("xtask ci: no test skipped");
    } else {
        eprintln!(
            "xtask ci: {} skip(s) for a missing capability:\n{skipped}",
            skipped.lines().count()
        );
    }
    result?;
    eprintln!("xtask ci: all steps passed");
    Ok(())
}

/// The tests and lanes, in order, stopping at the first failure; skips are logged to `skips`.
fn steps(
    rootfs: &std::path::Path,
    kernel: &std::path::Path,
    skips: &std::path::Path,
) -> Result<(), String> {
    let tests = util::run(
        util::cargo()
            .args(["test", "--workspace"])
            .env("MICROTOOLS_ROOTFS", rootfs)
            .env("MICROTOOLS_KERNEL", kernel)
            .env("MICROTOOLS_SKIP_LOG", skips),
    );
    // unshare-rs runs everyday command lines before glibc starts, which in the shipped static
    // build only works if that code calls nothing of glibc's: audit it, then run unshare-rs's
    // integration tests again on the shipped binary.
    let tests = tests.and_then(|()| {
        release::build_release_of(&["unshare-rs"])?;
        early::audit(&release::release_dir().join("unshare-rs"))?;
        release_names_its_commit(&release::release_dir().join("unshare-rs"))?;
        eprintln!("xtask ci: the shipped unshare-rs's early code calls nothing outside itself");
        util::run(
            util::cargo()
                .args(["test", "-p", "unshare-rs", "--test", "*"])
                .env("MICROTOOLS_BIN_DIR", release::release_dir())
                .env("MICROTOOLS_ROOTFS", rootfs)
                .env("MICROTOOLS_KERNEL", kernel)
                .env("MICROTOOLS_SKIP_LOG", skips),
        )
    });
    tests?;
    // The OCI runtime conformance suite against ocirun: every test that can pass on this host
    // must (crun and runc are compared in the recipe's full mode, not here).
    conformance::run(&["--ci".to_string()])?;
    util::run(
        util::cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    // The fuzz crate lives outside the workspace; checking it keeps its targets in step with the
    // parsers' APIs (running them needs cargo-fuzz, see fuzz/README.md).
    util::run(util::cargo().args(["check", "--manifest-path", "fuzz/Cargo.toml", "--bins"]))?;
    // The guest-kernel lane (`cargo xtask vmtest`) ran whole as xtask/tests/vmtest.rs.
    // The hardware-KVM lane: Linux under tinyvmm inside a QEMU guest with nested KVM, where the
    // hwkvm tests run (and must not skip) although this host has none. Its level 1 has one CPU
    // (nested::LEVEL1_CPUS says why two made it die by chance); a level 1 that stops anyway is
    // booted once more for what it did not report (nested::Attempt::to_retry).
    nested::run(&[])
}

/// A shipped build's `--version` names the commit it was built from (conventions/build.rs).
fn release_names_its_commit(bin: &std::path::Path) -> Result<(), String> {
    let head = util::output(util::git().args(["rev-parse", "--short=12", "HEAD"]))?;
    let out = util::output(std::process::Command::new(bin).arg("--version"))?;
    let want = format!(
        "unshare-rs {} (commit {})\n",
        env!("CARGO_PKG_VERSION"),
        head.trim()
    );
    if out != want {
        return Err(format!(
            "{} --version printed {out:?}, expected {want:?}",
            bin.display()
        ));
    }
    eprintln!(
        "xtask ci: the shipped build names its commit: {}",
        out.trim()
    );
    Ok(())
}
