//! `cargo xtask install` and `cargo xtask deb`: the shipped static builds, their man pages and
//! completions laid out as system tools are (bin/, share/man/, share/*completion*), so that a
//! clone becomes tools on PATH; `--drop-in` adds the util-linux names as links.

use crate::{man, release, util};
use std::path::{Path, PathBuf};

/// The util-linux names `--drop-in` adds, and the binary each is a link to. Each tool speaks
/// under the name it was called by (`conventions::output::tool_name`): `unshare` is unshare-rs
/// as util-linux's unshare, and pivot called `pivot_root` or `switch_root` is that tool
/// (pivot's `mode`).
pub const DROP_INS: [(&str, &str); 4] = [
    ("unshare", "unshare-rs"),
    ("nsenter", "nsenter-rs"),
    ("pivot_root", "pivot"),
    ("switch_root", "pivot"),
];

/// What `install` lays out under a prefix: (source, destination relative to the prefix), the
/// links (name, target), and whether the drop-in pages and completions come too.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    /// Binaries to copy: from, to (under the prefix).
    pub bins: Vec<(PathBuf, PathBuf)>,
    /// Symlinks under the prefix: link, target (relative, in the same directory).
    pub links: Vec<(PathBuf, String)>,
    /// Whether the drop-in names' pages and completions are installed.
    pub drop_in: bool,
}

/// The pure plan of an install from `bin_dir` (the built tools).
pub fn layout(bin_dir: &Path, drop_in: bool) -> Layout {
    Layout {
        bins: release::SHIPPED_TOOLS
            .iter()
            .map(|t| (bin_dir.join(t), Path::new("bin").join(t)))
            .collect(),
        links: if drop_in {
            DROP_INS
                .iter()
                .map(|(name, to)| (Path::new("bin").join(name), to.to_string()))
                .collect()
        } else {
            Vec::new()
        },
        drop_in,
    }
}

/// Installs `layout` under `prefix` (`root` prepended, as DESTDIR): returns the files made,
/// relative to `root`.
pub fn apply(layout: &Layout, root: &Path, prefix: &Path) -> Result<Vec<PathBuf>, String> {
    let base = root.join(prefix.strip_prefix("/").unwrap_or(prefix));
    let mut made = Vec::new();
    std::fs::create_dir_all(base.join("bin"))
        .map_err(|e| format!("creating {}: {e}", base.join("bin").display()))?;
    for (from, to) in &layout.bins {
        let dest = base.join(to);
        // Copy to a temporary name and rename, so that a running copy of the old binary is not
        // overwritten in place ("Text file busy").
        let tmp = dest.with_extension("xtask-new");
        std::fs::copy(from, &tmp).map_err(|e| {
            format!(
                "copying {} to {}: {e} (is it built?)",
                from.display(),
                tmp.display()
            )
        })?;
        set_mode(&tmp, 0o755)?;
        std::fs::rename(&tmp, &dest)
            .map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), dest.display()))?;
        made.push(dest);
    }
    for (link, target) in &layout.links {
        let dest = base.join(link);
        match std::fs::symlink_metadata(&dest) {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::remove_file(&dest)
                    .map_err(|e| format!("removing the old link {}: {e}", dest.display()))?;
            }
            Ok(_) => {
                return Err(format!(
                    "{} exists and is not a link: not replacing it (another package's {}?)",
                    dest.display(),
                    link.display()
                ))
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(target, &dest)
            .map_err(|e| format!("linking {} to {target}: {e}", dest.display()))?;
        made.push(dest);
    }
    made.extend(man::write(&base, layout.drop_in)?);
    Ok(made
        .into_iter()
        .map(|p| {
            p.strip_prefix(root)
                .map(|r| Path::new("/").join(r))
                .unwrap_or(p)
        })
        .collect())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {mode:o} {}: {e}", path.display()))
}

struct Opts {
    prefix: PathBuf,
    drop_in: bool,
    bin_dir: Option<PathBuf>,
    out: Option<PathBuf>,
    compress: String,
}

fn parse(args: &[String], what: &str) -> Result<Opts, String> {
    let mut o = Opts {
        prefix: PathBuf::from(if what == "deb" { "/usr" } else { "/usr/local" }),
        drop_in: false,
        bin_dir: None,
        out: None,
        compress: "xz".to_string(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .map(PathBuf::from)
                .ok_or(format!("{what}: {name} needs a directory"))
        };
        match a.as_str() {
            "--prefix" if what == "install" => o.prefix = value("--prefix")?,
            "--drop-in" if what == "install" => o.drop_in = true,
            "--out" if what == "deb" => o.out = Some(value("--out")?),
            "--compress" if what == "deb" => {
                o.compress = match it.next().map(String::as_str) {
                    Some(c @ ("none" | "gzip" | "xz")) => c.to_string(),
                    _ => return Err("deb: --compress takes none, gzip or xz".to_string()),
                }
            }
            "--bin-dir" => o.bin_dir = Some(value("--bin-dir")?),
            other => return Err(format!("{what}: unexpected argument '{other}'")),
        }
    }
    if !o.prefix.is_absolute() {
        o.prefix = std::env::current_dir()
            .map_err(|e| format!("{what}: the current directory: {e}"))?
            .join(&o.prefix);
    }
    Ok(o)
}

/// The built tools: `--bin-dir`, or the shipped static builds, built now.
fn built(bin_dir: &Option<PathBuf>) -> Result<PathBuf, String> {
    match bin_dir {
        Some(d) => Ok(d.clone()),
        None => {
            release::build_release_of(&release::SHIPPED_TOOLS)?;
            Ok(release::release_dir())
        }
    }
}

/// `cargo xtask install [--prefix DIR] [--drop-in] [--bin-dir DIR]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let o = parse(args, "install")?;
    let bin_dir = built(&o.bin_dir)?;
    let made = apply(&layout(&bin_dir, o.drop_in), Path::new("/"), &o.prefix)?;
    for p in &made {
        println!("{}", p.display());
    }
    eprintln!(
        "xtask install: {} files under {} (put {} on PATH; MANPATH finds {} from it)",
        made.len(),
        o.prefix.display(),
        o.prefix.join("bin").display(),
        o.prefix.join("share/man").display()
    );
    Ok(())
}

/// The package's control file.
pub fn control(version: &str, installed_kib: u64) -> String {
    format!(
        "Package: microtools\n\
         Version: {version}\n\
         Architecture: amd64\n\
         Maintainer: microtools developers <microtools@localhost>\n\
         Installed-Size: {installed_kib}\n\
         Section: admin\n\
         Priority: optional\n\
         Description: single-purpose Linux isolation tools: namespaces, root filesystems, cgroups, KVM\n \
         unshare-rs and nsenter-rs (drop-ins for util-linux unshare and nsenter), pivot\n \
         (pivot_root and switch_root), setpriv-rs, cgctl (cgroups v1 and v2), tinyvmm (a\n \
         minimal KVM monitor), ocirun (an OCI runtime) and netwire (network wiring, a CNI\n \
         plugin). Statically linked; man pages and bash, zsh and fish completions.\n"
    )
}

/// `cargo xtask deb [--out DIR] [--bin-dir DIR] [--compress none|gzip|xz]`: builds target/deb/microtools_VERSION_amd64.deb
/// with dpkg-deb (the tools under /usr, no drop-in names: those are util-linux's files) and
/// prints its path.
pub fn deb(args: &[String]) -> Result<(), String> {
    let o = parse(args, "deb")?;
    let bin_dir = built(&o.bin_dir)?;
    let out = o.out.unwrap_or_else(|| util::target_dir().join("deb"));
    let stage = out.join("stage");
    let _ = std::fs::remove_dir_all(&stage);
    apply(&layout(&bin_dir, false), &stage, Path::new("/usr"))?;
    // Debian ships man pages compressed (policy 12.1); man reads them so.
    let man_dirs = stage.join("usr/share/man");
    for section in std::fs::read_dir(&man_dirs)
        .map_err(|e| format!("reading {}: {e}", man_dirs.display()))?
        .flatten()
    {
        util::run(
            std::process::Command::new("sh")
                .args(["-c", "gzip -9n -- \"$0\"/*"])
                .arg(section.path()),
        )?;
    }
    let kib = du_kib(&stage);
    let version = env!("CARGO_PKG_VERSION");
    let debian = stage.join("DEBIAN");
    std::fs::create_dir_all(&debian).map_err(|e| format!("creating {}: {e}", debian.display()))?;
    std::fs::write(debian.join("control"), control(version, kib))
        .map_err(|e| format!("writing the control file: {e}"))?;
    let deb = out.join(format!("microtools_{version}_amd64.deb"));
    util::run(
        std::process::Command::new("dpkg-deb")
            .args([
                "--root-owner-group",
                &format!("-Z{}", o.compress),
                "--build",
            ])
            .arg(&stage)
            .arg(&deb)
            .stdout(std::io::stderr()),
    )?;
    let _ = std::fs::remove_dir_all(&stage);
    println!("{}", deb.display());
    Ok(())
}

/// The size of the files under `dir`, in KiB rounded up, as Installed-Size counts it.
fn du_kib(dir: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        if m.is_dir() {
            std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0)
        } else {
            m.len().div_ceil(1024)
        }
    }
    walk(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_puts_every_tool_in_bin_and_links_only_with_drop_in() {
        let l = layout(Path::new("/b"), false);
        assert_eq!(l.bins.len(), release::SHIPPED_TOOLS.len());
        assert_eq!(
            l.bins[0],
            (
                PathBuf::from("/b/unshare-rs"),
                PathBuf::from("bin/unshare-rs")
            )
        );
        assert!(l.links.is_empty());
        let l = layout(Path::new("/b"), true);
        assert_eq!(
            l.links,
            vec![
                (PathBuf::from("bin/unshare"), "unshare-rs".to_string()),
                (PathBuf::from("bin/nsenter"), "nsenter-rs".to_string()),
                (PathBuf::from("bin/pivot_root"), "pivot".to_string()),
                (PathBuf::from("bin/switch_root"), "pivot".to_string()),
            ]
        );
    }

    #[test]
    fn control_has_the_fields_dpkg_needs() {
        let c = control("0.1.0", 1234);
        for f in [
            "Package: microtools\n",
            "Version: 0.1.0\n",
            "Architecture: amd64\n",
            "Installed-Size: 1234\n",
            "Maintainer: ",
            "Description: ",
        ] {
            assert!(c.contains(f), "{f}: {c}");
        }
        assert!(c.ends_with('\n'));
    }
}
