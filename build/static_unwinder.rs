//! Build script shared by the tool crates: links the unwinder statically into dynamically
//! linked builds of the binaries.
//!
//! std refers to a few `_Unwind_*` functions (backtraces; unwinding in panic=unwind builds), and
//! rustc satisfies them with libgcc_s.so. Loading that second shared library costs about a
//! tenth of a millisecond at every start, a tenth of what the whole tool takes. With libgcc's
//! static unwinder linked in whole, nothing is left for libgcc_s to provide and the linker's
//! --as-needed drops it: libc is the only library loaded, as for util-linux. Static
//! (crt-static) builds already link the static unwinder, so they are left alone.

/// Tells rustc to link libgcc's unwinder whole into the binaries of the crate being built.
/// Build scripts that have a main of their own (tinyvmm's) call this through
/// `#[path = "../build/static_unwinder.rs"] mod unwinder;`.
pub fn link_static_unwinder() {
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" && env == "gnu" && !features.split(',').any(|f| f == "crt-static") {
        println!("cargo:rustc-link-arg-bins=-Wl,--whole-archive,-lgcc_eh,--no-whole-archive");
    }
}

#[allow(dead_code)] // not the entry point when used as a module
fn main() {
    println!("cargo:rerun-if-changed=../build/static_unwinder.rs");
    link_static_unwinder();
}
