//! Records which commit a release build comes from, for every tool's `--version`.
//!
//! Only release builds ask git: a debug build that re-ran on every commit would rebuild the whole
//! workspace (everything depends on conventions) each time a developer commits.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=MICROTOOLS_COMMIT");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let commit = match std::env::var("MICROTOOLS_COMMIT") {
        // A packager building from a tarball without .git says which commit it is.
        Ok(c) if !c.is_empty() => c,
        _ if !release => "unknown".to_string(),
        _ => match git(&["rev-parse", "--short=12", "HEAD"]) {
            Some(c) => {
                // Rebuild when HEAD moves: HEAD itself and the branch it names, as a loose ref
                // (its directory too, where git writes it anew after packing) or in
                // packed-refs. Only paths that exist: cargo reruns a build script that names a
                // missing one at every build, which rebuilt the whole workspace each time in a
                // repository without packed-refs.
                let watch = |path: String| {
                    if std::path::Path::new(&path).exists() {
                        println!("cargo:rerun-if-changed={path}");
                    }
                };
                if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
                    watch(head);
                }
                if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
                    if let Some(p) = git(&["rev-parse", "--git-path", &r]) {
                        if let Some(dir) = std::path::Path::new(&p).parent() {
                            watch(dir.display().to_string());
                        }
                        watch(p);
                    }
                }
                if let Some(p) = git(&["rev-parse", "--git-path", "packed-refs"]) {
                    watch(p);
                }
                c
            }
            None => "unknown".to_string(),
        },
    };
    let build = match (commit.as_str(), release) {
        ("unknown", false) => "debug build, no commit recorded".to_string(),
        ("unknown", true) => "built outside git, no commit recorded".to_string(),
        (c, _) => format!("commit {c}"),
    };
    println!("cargo:rustc-env=MICROTOOLS_COMMIT={commit}");
    println!("cargo:rustc-env=MICROTOOLS_BUILD={build}");
}
