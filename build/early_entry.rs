//! Build script piece for a tool that starts in `conventions::prelibc` (see there): in the
//! shipped static build, tells the linker to enter the binary at `microtools_early_entry`
//! instead of glibc's `_start`, and sets `cfg(microtools_early)` so that the entry and its code
//! are compiled at all.
//!
//! Only the static non-PIE build (`+crt-static` with `relocation-model=static`, as `cargo xtask`
//! builds the shipped tools) gets it: there glibc's start-up is a third of unshare-rs's run, and
//! skipping it was measured to matter (#23: `unshare-rs -r true` 0.80 ms instead of 1.41 ms). A
//! dynamic build gains nothing measurable (the dynamic loader's work stays), and a static PIE
//! relocates itself in glibc's start-up, so code that ran before it would find its pointers
//! unrelocated. Those builds start at `_start` and have no early code.

/// Prints the cargo directives for `bin`'s early entry when the build is the shipped static one.
pub fn link_early_entry(bin: &str) {
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo::rustc-check-cfg=cfg(microtools_early)");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let crt_static = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let flags: Vec<&str> = flags.split('\x1f').collect();
    let non_pic = flags.iter().enumerate().any(|(i, f)| {
        *f == "-Crelocation-model=static"
            || (*f == "relocation-model=static" && i > 0 && flags[i - 1] == "-C")
    });
    let supported = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if supported && crt_static && non_pic {
        println!("cargo:rustc-cfg=microtools_early");
        println!("cargo:rustc-link-arg-bin={bin}=-Wl,--entry=microtools_early_entry");
    }
}
