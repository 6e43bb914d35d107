//! Writes the default container profile compiled to a classic BPF program (libseccomp's
//! export): what `bwrap --seccomp FD` and `setpriv --seccomp-filter FILE` load, so that
//! `cargo xtask bench` can time bwrap with the same filter setpriv-rs --default-container loads.
//!
//! Usage: `cargo run -p privs --example default_container_bpf -- OUT`

use privs::seccomp::{Profile, DEFAULT_PROFILE};

fn main() {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("default_container_bpf: usage: default_container_bpf OUT");
        std::process::exit(1);
    };
    let written = Profile::from_json(DEFAULT_PROFILE)
        .and_then(|p| p.compile())
        .map_err(|e| e.to_string())
        .and_then(|ctx| {
            let mut f = std::fs::File::create(&out)
                .map_err(|e| format!("create {}: {e}", out.to_string_lossy()))?;
            ctx.export_bpf(&mut f)
                .map_err(|e| format!("seccomp_export_bpf: {e}"))
        });
    if let Err(e) = written {
        eprintln!("default_container_bpf: {e}");
        std::process::exit(1);
    }
}
