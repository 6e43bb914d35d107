//! `cargo xtask install` and `cargo xtask deb` lay the tools out as system tools: installed into
//! a temporary prefix, the util-linux names of `--drop-in` behave as those tools; the .deb
//! installs into a throwaway dpkg root and removes with nothing left, and apt installs and purges
//! it on this host's Debian seen through an overlay. Both take the test builds
//! (`--bin-dir`): the layout is what is tested here, and `cargo xtask install` without it builds
//! the same tools as shipped (the demo and CI's shipped unshare-rs check that build).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testcaps::{require, Cap};

const LIMIT: Duration = Duration::from_secs(60);

fn bin_dir() -> PathBuf {
    testcaps::sibling_bin("unshare-rs")
        .parent()
        .map(Path::to_path_buf)
        .expect("the test build's directory")
}

fn xtask(args: &[&str]) -> testcaps::Output {
    let out = testcaps::run(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .arg("--bin-dir")
            .arg(bin_dir()),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    out
}

fn run(cmd: &mut Command) -> testcaps::Output {
    testcaps::run(cmd, Duration::from_secs(30))
}

#[test]
fn install_lays_out_tools_pages_completions_and_drop_in_links() {
    require!(Cap::Root);
    let dir = testcaps::TempDir::new("xtask-install-test").expect("temp dir");
    let prefix = dir.path().join("usr");
    let out = xtask(&[
        "install",
        "--drop-in",
        "--prefix",
        prefix.to_str().expect("utf-8"),
    ]);
    let listed: Vec<&str> = out.stdout.lines().collect();
    let bin = prefix.join("bin");
    for f in [
        bin.join("unshare-rs"),
        bin.join("ocirun"),
        bin.join("unshare"),
        prefix.join("share/man/man1/unshare-rs.1"),
        prefix.join("share/man/man8/switch_root.8"),
        prefix.join("share/bash-completion/completions/cgctl"),
        prefix.join("share/zsh/vendor-completions/_tinyvmm"),
        prefix.join("share/fish/vendor_completions.d/nsenter-rs.fish"),
    ] {
        assert!(
            listed.contains(&f.to_str().expect("utf-8")),
            "{f:?} not in {listed:?}"
        );
        assert!(f.exists(), "{f:?}");
    }
    for (link, to) in [
        ("unshare", "unshare-rs"),
        ("nsenter", "nsenter-rs"),
        ("pivot_root", "pivot"),
        ("switch_root", "pivot"),
    ] {
        assert_eq!(
            std::fs::read_link(bin.join(link)).expect("a link"),
            PathBuf::from(to)
        );
    }
    // Each link speaks as the util-linux tool.
    let out = run(Command::new(bin.join("unshare")).args([
        "-u",
        "sh",
        "-c",
        "hostname in-uts; hostname",
    ]));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "in-uts\n"),
        "{out:?}"
    );
    let out = run(Command::new(bin.join("unshare")).arg("--bogus"));
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "unshare: unexpected argument '--bogus' found (try 'unshare --help')\n"
    );
    // nsenter enters the UTS namespace of a shell that unshare made.
    let out = run(Command::new(bin.join("unshare"))
        .args([
            "-u",
            "sh",
            "-c",
            "hostname box; exec \"$0\" -t $$ -u hostname",
        ])
        .arg(bin.join("nsenter")));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "box\n"),
        "{out:?}"
    );
    let out = run(Command::new(bin.join("nsenter")).arg("--version"));
    assert!(out.stdout.starts_with("nsenter 0.1.0 ("), "{out:?}");
    let out = run(Command::new(bin.join("pivot_root")).arg("/"));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.starts_with("pivot_root: "), "{out:?}");
    assert!(out.stderr.contains("<PUT_OLD>"), "{out:?}");
    let out = run(Command::new(bin.join("switch_root")).arg("--help"));
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout
            .contains("Usage: switch_root [OPTIONS] <NEWROOT> <INIT>"),
        "{out:?}"
    );
    // A switch_root outside an initramfs, in the host's mount namespace, refuses.
    let out = run(Command::new(bin.join("switch_root")).args(["/", "/bin/true"]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.starts_with("switch_root: "), "{out:?}");
    // man finds the pages under the prefix.
    let out = run(Command::new("man")
        .arg("-M")
        .arg(prefix.join("share/man"))
        .args(["-w", "pivot_root"]));
    assert_eq!(
        out.stdout,
        format!("{}\n", prefix.join("share/man/man8/pivot_root.8").display())
    );
}

#[test]
fn deb_installs_into_a_throwaway_root_and_removes_cleanly() {
    require!(Cap::Root);
    let dir = testcaps::TempDir::new("xtask-deb-test").expect("temp dir");
    let out_dir = dir.path().join("out");
    // The test builds are large (debug info): not compressed, they take a second, not ten.
    let out = xtask(&[
        "deb",
        "--compress",
        "none",
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]);
    let deb = PathBuf::from(out.stdout.trim_end());
    assert_eq!(deb, out_dir.join("microtools_0.1.0_amd64.deb"));
    let fields = run(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .args(["Package", "Architecture"]));
    assert_eq!(
        fields.stdout, "Package: microtools\nArchitecture: amd64\n",
        "{fields:?}"
    );
    // A dpkg database of its own: nothing of the host's /usr or /var/lib/dpkg is touched.
    let root = dir.path().join("root");
    let admin = root.join("var/lib/dpkg");
    for d in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(d)).expect("dpkg dirs");
    }
    std::fs::write(admin.join("status"), "").expect("status");
    std::fs::write(admin.join("available"), "").expect("available");
    let dpkg = |args: &[&str]| {
        run(Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args(args))
    };
    let out = dpkg(&["-i", deb.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let listed = dpkg(&["-L", "microtools"]).stdout;
    for f in [
        "/usr/bin/unshare-rs",
        "/usr/bin/netwire",
        "/usr/share/man/man1/cgctl-run.1.gz",
        "/usr/share/man/man8/pivot.8.gz",
        "/usr/share/bash-completion/completions/setpriv-rs",
    ] {
        assert!(listed.lines().any(|l| l == f), "{f} not in {listed}");
        assert!(root.join(&f[1..]).exists(), "{f}");
    }
    // No util-linux names: those files are util-linux's.
    assert!(!root.join("usr/bin/unshare").exists());
    let out = run(Command::new(root.join("usr/bin/unshare-rs")).arg("--version"));
    assert!(out.stdout.starts_with("unshare-rs 0.1.0 ("), "{out:?}");
    let out = dpkg(&["-r", "microtools"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let left: Vec<PathBuf> = walk(&root)
        .into_iter()
        .filter(|p| !admin.starts_with(p) && !p.starts_with(&admin))
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new(), "left after dpkg -r");
}

/// apt on this host's own Debian, seen through a copy-on-write overlay: in a mount namespace of
/// its own (unshare-rs -m), a tmpfs holds an overlay whose lower layer is `/`, and apt-get
/// installs the .deb there in a chroot and purges it. Everything apt changed lands in the
/// overlay's upper layer, so what is there afterwards, outside apt's and dpkg's own state under
/// /var, is what the package left: only directories that `/` has too may remain (copied up on
/// the way), nothing of the host changes.
const APT_SCRIPT: &str = r#"
set -e
T=$1 DEB=$2
mount -t tmpfs tmpfs "$T"
mkdir "$T/up" "$T/work" "$T/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/up,workdir=$T/work" "$T/root"
mount --rbind /dev "$T/root/dev"
mount -t proc proc "$T/root/proc"
# apt-get refuses a package file straight under / ("Pathname to install is not absolute").
cp "$DEB" "$T/root/tmp/microtools.deb"
apt() {
    chroot "$T/root" env DEBIAN_FRONTEND=noninteractive apt-get -y -q "$@" >"$T/apt.log" 2>&1 \
        || { cat "$T/apt.log" >&2; exit 1; }
}
apt install /tmp/microtools.deb
echo "$(chroot "$T/root" dpkg-query -W -f '${Package} ${Version} ${Status}' microtools)"
chroot "$T/root" unshare-rs --version | cut -d' ' -f1-2
chroot "$T/root" man -w unshare-rs
apt purge microtools
chroot "$T/root" dpkg-query -W microtools 2>&1 || true
rm "$T/root/tmp/microtools.deb"
cd "$T/up"
find . -mindepth 1 -path ./var -prune -o -print | while read -r p; do
    [ -d "/$p" ] && [ ! -L "/$p" ] && [ -d "$p" ] || echo "left: $p"
done
find ./var -mindepth 1 ! -type d | grep -v -e '^./var/lib/dpkg/' -e '^./var/lib/apt/' \
    -e '^./var/cache/' -e '^./var/log/' | sed 's/^/left: /' || true
echo done
"#;

#[test]
fn deb_installs_with_apt_on_this_debian_and_purges_cleanly() {
    require!(Cap::Root);
    assert!(
        testcaps::find_in_path("apt-get").is_some(),
        "apt-get is not installed: the .deb is for Debian"
    );
    let dir = testcaps::TempDir::new("xtask-apt-test").expect("temp dir");
    let out = xtask(&[
        "deb",
        "--compress",
        "none",
        "--out",
        dir.path().join("out").to_str().expect("utf-8"),
    ]);
    let deb = PathBuf::from(out.stdout.trim_end());
    let view = dir.path().join("view");
    std::fs::create_dir_all(&view).expect("view dir");
    let out = testcaps::run(
        Command::new(testcaps::sibling_bin("unshare-rs"))
            .args([
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                APT_SCRIPT,
                "sh",
            ])
            .arg(&view)
            .arg(&deb),
        Duration::from_secs(120),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "microtools 0.1.0 install ok installed\n\
         unshare-rs 0.1.0\n\
         /usr/share/man/man1/unshare-rs.1.gz\n\
         dpkg-query: no packages found matching microtools\n\
         done\n",
        "{out:?}"
    );
    // The overlay went with the namespace: nothing of it is mounted here.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(view.to_str().expect("utf-8")), "{mounts}");
}

/// Every file, link and directory under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        out.push(p.clone());
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        }
    }
    out
}
