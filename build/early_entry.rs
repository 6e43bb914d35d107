//! Build script piece for a tool that starts in `conventions::prelibc` (see there): tells the
//! linker to enter the binary at `microtools_early_entry` instead of glibc's `_start`.
//!
//! Left out for static position-independent builds (`crt-static` without
//! `relocation-model=static`): such a binary relocates itself in glibc's start-up, so code that
//! runs before it would find its pointers unrelocated. Dynamic builds (the loader has relocated
//! everything before the entry runs) and static non-PIE builds (nothing to relocate) get it.

/// Prints the cargo directive that sets `bin`'s entry point, when the build allows it.
pub fn link_early_entry(bin: &str) {
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
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
    if supported && (!crt_static || non_pic) {
        println!("cargo:rustc-link-arg-bin={bin}=-Wl,--entry=microtools_early_entry");
    }
}
