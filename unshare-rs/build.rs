//! unshare-rs's build script: the tools' shared pieces, and the early entry point (an everyday
//! command line runs before glibc starts, see `src/early.rs`).

#[path = "../build/static_unwinder.rs"]
mod unwinder;

#[path = "../build/early_entry.rs"]
mod early_entry;

fn main() {
    println!("cargo:rerun-if-changed=../build/static_unwinder.rs");
    println!("cargo:rerun-if-changed=../build/early_entry.rs");
    unwinder::link_static_unwinder();
    early_entry::link_early_entry("unshare-rs");
}
