//! The shipped builds: the tools as release binaries (static, not position independent), which
//! the demo, the bench, the hardware-KVM lane, `install` and `deb` all start from.

use crate::util;

/// The tools the demo composes.
pub const TOOLS: [&str; 5] = ["unshare-rs", "nsenter-rs", "pivot", "cgctl", "tinyvmm"];

/// What the demo and the lanes build and run: [`TOOLS`] and setpriv-rs, the container's last step.
pub const DEMO_TOOLS: [&str; 6] = [
    TOOLS[0],
    TOOLS[1],
    TOOLS[2],
    TOOLS[3],
    TOOLS[4],
    "setpriv-rs",
];

/// The target triple of the shipped builds: named explicitly so that `crt-static` applies to the
/// tools and not to build scripts and proc macros.
const RELEASE_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds the tools as they are shipped: release, statically linked (glibc's dynamic loading
/// costs 0.1-0.3 ms of every start here, a fifth of what a tool takes) and not position
/// independent (a static-pie binary relocates itself at start, dirtying a copy-on-write page
/// for every page of pointers it has; 0.02-0.1 ms here, at the cost of the executable's own
/// address not being randomized: the tools are not setuid and parse no network input), all at
/// once, else one by one so that one crate that does not compile does not take the others
/// down. Returns the directory of the binaries.
pub fn build_release() -> std::path::PathBuf {
    if build_release_of(&DEMO_TOOLS).is_err() {
        for t in DEMO_TOOLS {
            if let Err(e) = build_release_of(&[t]) {
                eprintln!("xtask: {t} does not build now: {e}");
            }
        }
    }
    release_dir()
}

/// The flags of the shipped builds (see [`build_release`]). They are given here and not in
/// .cargo/config.toml: a `[target.x86_64-unknown-linux-gnu]` rustflags there would apply to builds
/// without `--target` too, proc macros included, and rustc cannot build a proc macro with
/// `+crt-static` ("cannot produce proc-macro ... does not support these crate types").
pub const SHIPPED_RUSTFLAGS: &str = "-C target-feature=+crt-static -C relocation-model=static";

/// Every binary `cargo xtask install` and `deb` ship.
pub const SHIPPED_TOOLS: [&str; 8] = [
    "unshare-rs",
    "nsenter-rs",
    "pivot",
    "setpriv-rs",
    "cgctl",
    "tinyvmm",
    "ocirun",
    "netwire",
];

/// The shell command that builds `pkgs` as shipped, as a user would type it (xtask prints it).
pub fn shipped_build_command(pkgs: &[&str]) -> String {
    let mut s =
        format!("RUSTFLAGS='{SHIPPED_RUSTFLAGS}' cargo build --release --target {RELEASE_TARGET}");
    for p in pkgs {
        s.push_str(" -p ");
        s.push_str(p);
    }
    s
}

/// Builds these packages as they are shipped (see [`build_release`]), into [`release_dir`].
pub fn build_release_of(pkgs: &[&str]) -> Result<(), String> {
    let mut cmd = util::cargo();
    cmd.args(["build", "--release", "--target", RELEASE_TARGET])
        .env("RUSTFLAGS", SHIPPED_RUSTFLAGS);
    for p in pkgs {
        cmd.args(["-p", p]);
    }
    eprintln!(
        "xtask: $ {}    # into {}",
        shipped_build_command(pkgs),
        release_dir().display()
    );
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed with {status}",
            shipped_build_command(pkgs)
        ))
    }
}

/// Where the shipped builds are.
pub fn release_dir() -> std::path::PathBuf {
    util::target_dir().join(RELEASE_TARGET).join("release")
}
