//! pivot: switch a process into its own root filesystem, set up as a container runtime does, and
//! the util-linux `pivot_root`/`switch_root` behaviours under those names.
//!
//! - [`plan`]: options to the ordered list of mount steps (pure).
//! - [`resolve`]: paths inside the new root that never leave it.
//! - [`apply`]: the steps as syscalls, the pivot and its initramfs fallback.
//! - [`compat`]: `pivot_root NEW PUT_OLD` and `switch_root NEWROOT INIT`.
//! - [`hostns`]: refusing the host's own mount namespace.

pub mod apply;
pub mod compat;
pub mod error;
pub mod hostns;
pub mod mountinfo;
pub mod plan;
pub mod resolve;
pub mod spec;
pub mod sys;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

pub use error::Error;
use plan::{Options, Propagation, UserMount};

const EXAMPLES: &str = "\
Examples:
  unshare -m -p -f -u -i -n -- pivot ./rootfs /bin/sh -c 'ps; mount'
  unshare -r -m -p -f -- pivot --ro --bind \"$PWD:/work\" -w /work ./rootfs make
  unshare -m -- pivot --bare --put-old /old ./rootfs /bin/ls /old
  pivot switch-root /newroot /sbin/init        (in an initramfs; also as `switch_root`)
  pivot root-compat /new /new/old              (pivot_root(8); also as `pivot_root`)

pivot refuses to run in the host's initial mount namespace: run it under `unshare -m`.
Exit status: 0 or the command's; 1 pivot failed; 126 COMMAND not executable; 127 not found.";

/// `--propagation` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PropagationArg {
    /// Nothing propagates in or out.
    Private,
    /// Host mounts propagate in, none out.
    Slave,
}

/// Command line of pivot.
#[derive(Parser, Debug)]
#[command(
    name = "pivot",
    version,
    about = "Switch a process into its own root filesystem, set up as a container runtime does",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Bind-mount host path SRC at DST inside the new root (repeatable; `SRC` alone: same path).
    #[arg(long, value_name = "SRC:DST")]
    pub bind: Vec<String>,
    /// As --bind, read-only (recursively).
    #[arg(long = "ro-bind", value_name = "SRC:DST")]
    pub ro_bind: Vec<String>,
    /// Mount an empty tmpfs at DST inside the new root (repeatable).
    #[arg(long, value_name = "DST")]
    pub tmpfs: Vec<PathBuf>,
    /// Make the new root read-only (its own mount, not /proc, /dev or other mounts).
    #[arg(long)]
    pub ro: bool,
    /// Do not mount a fresh /proc.
    #[arg(long)]
    pub no_proc: bool,
    /// Do not mount a minimal /dev.
    #[arg(long)]
    pub no_dev: bool,
    /// Do not mount a read-only /sys.
    #[arg(long)]
    pub no_sys: bool,
    /// Do not mask or make read-only the sensitive /proc and /sys paths.
    #[arg(long)]
    pub no_mask: bool,
    /// Only pivot, detach the old root and exec (= --no-proc --no-dev --no-sys --no-mask).
    #[arg(long)]
    pub bare: bool,
    /// Keep the old root mounted at DIR inside the new root instead of detaching it.
    #[arg(long, value_name = "DIR")]
    pub put_old: Option<PathBuf>,
    /// Working directory inside the new root (default /).
    #[arg(short = 'w', long = "wd", value_name = "DIR")]
    pub wd: Option<PathBuf>,
    /// Set the hostname (only in a UTS namespace that is not the host's).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Propagation of / made first, recursively.
    #[arg(long, value_enum, default_value = "private", value_name = "MODE")]
    pub propagation: PropagationArg,
    /// Print each step on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Allow running in the host's initial mount namespace (switches the host's root!).
    #[arg(long = "i-know-this-is-the-host-namespace")]
    pub host_namespace: bool,
    /// The directory that becomes /.
    #[arg(value_name = "NEWROOT")]
    pub newroot: PathBuf,
    /// Program and arguments, run inside the new root (default /bin/sh).
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

/// A parsed pivot command line: the options and the user mounts in command-line order.
#[derive(Debug)]
pub struct Invocation {
    /// The parsed flags.
    pub cli: Cli,
    /// `--bind`, `--ro-bind` and `--tmpfs` in the order given.
    pub mounts: Vec<UserMount>,
}

/// Parses pivot's own command line (without the compat modes).
pub fn parse<I, A>(tool: &str, args: I) -> conventions::cli::Parsed<Invocation>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    use conventions::cli::Parsed;
    let matches = match Cli::command().bin_name(tool).try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => return clap_error(tool, e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return clap_error(tool, e),
    };
    let mut indexed: Vec<(usize, UserMount)> = Vec::new();
    for (id, ro) in [("bind", false), ("ro_bind", true)] {
        let values = matches.get_many::<String>(id).into_iter().flatten();
        let indices = matches.indices_of(id).into_iter().flatten();
        for (spec, i) in values.zip(indices) {
            match plan::parse_bind(spec) {
                Ok((src, dst)) => indexed.push((i, UserMount::Bind { src, dst, ro })),
                Err(why) => {
                    let opt = if ro { "--ro-bind" } else { "--bind" };
                    return Parsed::Usage(format!(
                        "{tool}: invalid value for {opt}: {why} (try '{tool} --help')"
                    ));
                }
            }
        }
    }
    let values = matches.get_many::<PathBuf>("tmpfs").into_iter().flatten();
    let indices = matches.indices_of("tmpfs").into_iter().flatten();
    for (dst, i) in values.zip(indices) {
        indexed.push((i, UserMount::Tmpfs { dst: dst.clone() }));
    }
    indexed.sort_by_key(|(i, _)| *i);
    Parsed::Run(Invocation {
        cli,
        mounts: indexed.into_iter().map(|(_, m)| m).collect(),
    })
}

/// Sorts a clap error into help/version text or a one-line usage error.
pub fn clap_error<T>(tool: &str, e: clap::Error) -> conventions::cli::Parsed<T> {
    use clap::error::ErrorKind;
    use conventions::cli::Parsed;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Parsed::Info(e.render().to_string()),
        _ => {
            // clap ends some first lines with ':' and lists the culprits below; keep them.
            let rendered = e.render().to_string();
            let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut first = lines.next().unwrap_or("invalid arguments").to_string();
            if first.ends_with(':') {
                if let Some(next) = lines.next() {
                    first = format!("{first} {next}");
                }
            }
            Parsed::Usage(conventions::cli::usage_line(tool, &first))
        }
    }
}

impl Invocation {
    /// The plan's options.
    pub fn options(&self) -> Options {
        let c = &self.cli;
        Options {
            newroot: c.newroot.clone(),
            argv: if c.command.is_empty() {
                vec![OsString::from("/bin/sh")]
            } else {
                c.command.clone()
            },
            propagation: match c.propagation {
                PropagationArg::Private => Propagation::Private,
                PropagationArg::Slave => Propagation::Slave,
            },
            proc: !(c.no_proc || c.bare),
            dev: !(c.no_dev || c.bare),
            sys: !(c.no_sys || c.bare),
            mask: !(c.no_mask || c.bare),
            ro: c.ro,
            mounts: self.mounts.clone(),
            put_old: c.put_old.clone(),
            wd: c.wd.clone(),
            hostname: c.hostname.clone(),
            verbose: c.verbose,
        }
    }
}

/// What the entry point should do, decided from `argv[0]` and `argv[1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// pivot itself.
    Pivot,
    /// `pivot_root NEW PUT_OLD` (`argv[0]` `pivot_root` or `pivot root-compat`).
    PivotRoot,
    /// `switch_root NEWROOT INIT` (`argv[0]` `switch_root` or `pivot switch-root`).
    SwitchRoot,
}

/// Picks the mode; the second value says whether `argv[1]` named it (and is to be dropped).
pub fn mode(tool: &str, first_arg: Option<&std::ffi::OsStr>) -> (Mode, bool) {
    match tool {
        "pivot_root" => return (Mode::PivotRoot, false),
        "switch_root" => return (Mode::SwitchRoot, false),
        _ => {}
    }
    match first_arg.and_then(|a| a.to_str()) {
        Some("root-compat") => (Mode::PivotRoot, true),
        Some("switch-root") => (Mode::SwitchRoot, true),
        _ => (Mode::Pivot, false),
    }
}

/// The whole program: parses `args` (`argv[0]` included) and runs; returns the exit code (or does
/// not return, having exec'd the command).
pub fn main_with(tool: &str, mut args: Vec<OsString>) -> i32 {
    use conventions::cli::Parsed;
    let (mode, drop_first) = mode(tool, args.get(1).map(OsString::as_os_str));
    let tool = if drop_first {
        let sub = args.remove(1);
        format!("{tool} {}", sub.to_string_lossy())
    } else {
        tool.to_string()
    };
    let result = match mode {
        Mode::Pivot => match parse(&tool, args) {
            Parsed::Run(inv) => run(&tool, &inv).map(|never| match never {}),
            Parsed::Info(text) => return info(&text),
            Parsed::Usage(line) => return usage(&line),
        },
        Mode::PivotRoot => match compat::parse_pivot_root(&tool, args) {
            Parsed::Run(c) => compat::pivot_root(&c),
            Parsed::Info(text) => return info(&text),
            Parsed::Usage(line) => return usage(&line),
        },
        Mode::SwitchRoot => match compat::parse_switch_root(&tool, args) {
            Parsed::Run(c) => compat::switch_root(&tool, &c),
            Parsed::Info(text) => return info(&text),
            Parsed::Usage(line) => return usage(&line),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{tool}: {e}");
            e.code()
        }
    }
}

fn info(text: &str) -> i32 {
    print!("{text}");
    0
}

fn usage(line: &str) -> i32 {
    eprintln!("{line}");
    conventions::exit::FAILURE
}

/// The uninhabited success of a function that ends by exec.
#[derive(Debug)]
pub enum Never {}

/// Refuses the host's initial mount namespace unless allowed.
pub fn refuse_host_namespace(allowed: bool) -> Result<(), Error> {
    if allowed {
        return Ok(());
    }
    match hostns::mount_ns() {
        hostns::Verdict::NotHost => Ok(()),
        hostns::Verdict::Host => Err(Error::HostNamespace(
            "/proc/self/ns/mnt is the initial mount namespace".to_string(),
        )),
        hostns::Verdict::Unknown(why) => Err(Error::HostNamespace(why)),
    }
}

fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => !plan::is_initial_uid_map(&map),
        Err(_) => false,
    }
}

/// Checks everything that can be checked before the first mount, so bad input changes nothing.
/// Returns the canonical NEWROOT.
fn validate(opts: &mut Options, allow_host: bool) -> Result<PathBuf, Error> {
    refuse_host_namespace(allow_host)?;
    let shown = opts.newroot.display().to_string();
    let meta = std::fs::metadata(&opts.newroot).map_err(|e| {
        Error::input(
            format!("NEWROOT {shown}"),
            sys::errstr(&e),
            "give the directory that is to become /",
        )
    })?;
    if !meta.is_dir() {
        return Err(Error::input(
            format!("NEWROOT {shown}"),
            "not a directory",
            "give the directory that is to become /",
        ));
    }
    let newroot = std::fs::canonicalize(&opts.newroot)
        .map_err(|e| Error::sys(format!("realpath({shown})"), e))?;
    if newroot == Path::new("/") {
        return Err(Error::input(
            format!("NEWROOT {shown}"),
            "is already /",
            "give another directory",
        ));
    }
    if let Some(name) = &opts.hostname {
        match hostns::uts_ns() {
            hostns::Verdict::NotHost => {}
            hostns::Verdict::Host => {
                return Err(Error::input(
                    format!("--hostname {name}"),
                    "this is the host's UTS namespace",
                    "add -u to unshare so the name stays in the container",
                ))
            }
            hostns::Verdict::Unknown(why) => {
                return Err(Error::input(
                    format!("--hostname {name}"),
                    why,
                    "add -u to unshare",
                ))
            }
        }
        if name.is_empty() || name.len() > 64 {
            return Err(Error::input(
                format!("--hostname {name}"),
                "must be 1 to 64 bytes",
                "give a shorter name",
            ));
        }
    }
    let root_fd = sys::open(&newroot, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| Error::sys(format!("open({})", newroot.display()), e))?;
    let check_dst = |opt: &str, dst: &Path| -> Result<(), Error> {
        resolve::check(&root_fd, dst).map_err(|e| {
            Error::input(
                format!("{opt} destination {}", dst.display()),
                e.to_string(),
                "destinations are resolved inside NEWROOT and may not leave it",
            )
        })
    };
    for m in &mut opts.mounts {
        match m {
            UserMount::Bind { src, dst, ro } => {
                let opt = if *ro { "--ro-bind" } else { "--bind" };
                let canon = std::fs::canonicalize(&*src).map_err(|e| {
                    Error::input(
                        format!("{opt} source {}", src.display()),
                        sys::errstr(&e),
                        "the source is a path on the host, resolved before the pivot",
                    )
                })?;
                *src = canon;
                check_dst(opt, dst)?;
            }
            UserMount::Tmpfs { dst } => check_dst("--tmpfs", dst)?,
        }
    }
    if let Some(dir) = &opts.put_old {
        check_dst("--put-old", dir)?;
        if dir
            .components()
            .all(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Error::input(
                format!("--put-old {}", dir.display()),
                "is the new root itself",
                "give a directory below it, e.g. /mnt",
            ));
        }
    }
    precheck(&root_fd, opts)?;
    Ok(newroot)
}

/// Whether anything pivot mounts could provide `path` (inside the new root), so that its absence
/// now proves nothing.
fn maybe_mounted(opts: &Options, path: &Path) -> bool {
    let standard = [(opts.proc, "/proc"), (opts.dev, "/dev"), (opts.sys, "/sys")];
    let under = |dst: &Path| path.starts_with(Path::new("/").join(dst));
    standard.iter().any(|(on, p)| *on && under(Path::new(p)))
        || opts.mounts.iter().any(|m| match m {
            UserMount::Bind { dst, .. } | UserMount::Tmpfs { dst } => under(dst),
        })
}

/// What a path inside the new root is now: `None` when missing.
fn kind_inside(root: &std::os::fd::OwnedFd, path: &Path) -> Option<libc::mode_t> {
    let t = resolve::resolve(root, path, resolve::Create::No).ok()?;
    sys::fstat(&t.fd).ok().map(|st| st.st_mode)
}

/// Finds before the first mount what would only fail after the pivot: a COMMAND missing from
/// the new root (127) or not executable (126), a -w directory that does not exist. Paths that a
/// planned mount may provide are left to the real exec.
fn precheck(root: &std::os::fd::OwnedFd, opts: &Options) -> Result<(), Error> {
    let wd = opts.wd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let wd_abs = Path::new("/").join(&wd);
    if opts.wd.is_some() && !maybe_mounted(opts, &wd_abs) {
        let is_dir = kind_inside(root, &wd_abs).map(|m| m & libc::S_IFMT == libc::S_IFDIR);
        if is_dir != Some(true) {
            let why = if is_dir.is_none() {
                "No such file or directory"
            } else {
                "Not a directory"
            };
            return Err(Error::input(
                format!("-w {} inside {}", wd.display(), opts.newroot.display()),
                why,
                "-w names a directory inside NEWROOT",
            ));
        }
    }
    let Some(prog) = opts.argv.first() else {
        return Ok(());
    };
    let prog_path = Path::new(prog);
    let candidates: Vec<PathBuf> = if prog.as_encoded_bytes().contains(&b'/') {
        vec![wd_abs.join(prog_path)]
    } else {
        let path = std::env::var_os("PATH")
            .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
        std::env::split_paths(&path)
            .filter(|d| d.is_absolute())
            .map(|d| d.join(prog_path))
            .collect()
    };
    if candidates.is_empty() || candidates.iter().any(|c| maybe_mounted(opts, c)) {
        return Ok(());
    }
    let mut found_not_executable = false;
    for c in &candidates {
        match kind_inside(root, c) {
            Some(mode) if mode & libc::S_IFMT == libc::S_IFREG && mode & 0o111 != 0 => {
                return Ok(())
            }
            Some(_) => found_not_executable = true,
            None => {}
        }
    }
    let shown = prog_path.display();
    let newroot = opts.newroot.display();
    Err(if found_not_executable {
        Error::Exec {
            msg: format!(
                "COMMAND {shown} inside {newroot} is not an executable file (nothing was mounted)"
            ),
            code: conventions::exit::NOT_EXECUTABLE,
        }
    } else {
        Error::Exec {
            msg: format!(
                "COMMAND {shown} not found inside {newroot} (nothing was mounted; it is looked up \
                 in the new root, with PATH for a bare name)"
            ),
            code: conventions::exit::NOT_FOUND,
        }
    })
}

/// Runs pivot's main mode; returns only on failure.
pub fn run(tool: &str, inv: &Invocation) -> Result<Never, Error> {
    let mut opts = inv.options();
    let newroot = validate(&mut opts, inv.cli.host_namespace)?;
    let facts = plan::Facts {
        in_userns: in_user_namespace(),
    };
    let steps = plan::plan(&opts, facts);
    let mut ctx = apply::Ctx::new(tool, newroot, opts.verbose);
    for step in &steps {
        if let Err(e) = ctx.run(step) {
            ctx.cleanup();
            return Err(e);
        }
    }
    // From here on we are inside the new root; the host's tree is gone from view.
    if let Some(name) = &opts.hostname {
        ctx.say(format!("sethostname({name})"));
        sys::sethostname(name).map_err(|e| Error::sys(format!("sethostname({name})"), e))?;
    }
    if let Some(wd) = &opts.wd {
        ctx.say(format!("chdir({})", wd.display()));
        sys::chdir(wd).map_err(|e| {
            Error::sys_hint(
                format!("chdir({}) inside the new root", wd.display()),
                e,
                "-w names a directory inside NEWROOT",
            )
        })?;
    }
    exec(&opts.argv)
}

/// Execs `argv` (PATH search) and returns the failure with 126/127.
pub fn exec(argv: &[OsString]) -> Result<Never, Error> {
    let (msg, code) = conventions::exec::execvp(argv);
    let msg = match msg.find(" (os error ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let hint = if code == conventions::exit::NOT_FOUND {
        " (the path is looked up inside the new root)"
    } else {
        " (it must be an executable file for this machine, on a filesystem without noexec)"
    };
    Err(Error::Exec {
        msg: format!("{msg}{hint}"),
        code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use conventions::cli::Parsed;

    fn ok(args: &[&str]) -> Invocation {
        match parse(
            "pivot",
            std::iter::once("pivot").chain(args.iter().copied()),
        ) {
            Parsed::Run(i) => i,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn command_and_options() {
        let inv = ok(&["-v", "--ro", "/r", "sh", "-c", "echo --ro"]);
        assert!(inv.cli.verbose && inv.cli.ro);
        let o = inv.options();
        assert_eq!(o.newroot, PathBuf::from("/r"));
        assert_eq!(o.argv, ["sh", "-c", "echo --ro"]);
        let o = ok(&["/r"]).options();
        assert_eq!(o.argv, ["/bin/sh"]);
        assert!(o.proc && o.dev && o.sys && o.mask && !o.ro);
        assert_eq!(o.propagation, Propagation::Private);
        let o = ok(&["--bare", "--propagation", "slave", "/r"]).options();
        assert!(!o.proc && !o.dev && !o.sys && !o.mask);
        assert_eq!(o.propagation, Propagation::Slave);
    }

    #[test]
    fn user_mounts_keep_command_line_order() {
        let o = ok(&[
            "--tmpfs",
            "/t",
            "--ro-bind",
            "/a:/t/a",
            "--bind",
            "/b",
            "--tmpfs",
            "/u",
            "/r",
        ])
        .options();
        assert_eq!(
            o.mounts,
            vec![
                UserMount::Tmpfs { dst: "/t".into() },
                UserMount::Bind {
                    src: "/a".into(),
                    dst: "/t/a".into(),
                    ro: true
                },
                UserMount::Bind {
                    src: "/b".into(),
                    dst: "/b".into(),
                    ro: false
                },
                UserMount::Tmpfs { dst: "/u".into() },
            ]
        );
    }

    #[test]
    fn host_namespace_flag_parses_but_is_off_by_default() {
        assert!(!ok(&["/r"]).cli.host_namespace);
        assert!(
            ok(&["--i-know-this-is-the-host-namespace", "/r"])
                .cli
                .host_namespace
        );
    }

    #[test]
    fn usage_errors_are_one_line() {
        for args in [
            &["pivot"][..],
            &["pivot", "--bind", ":x", "/r"],
            &["pivot", "--propagation", "shared", "/r"],
            &["pivot", "--bogus", "/r"],
        ] {
            match parse("pivot", args.iter().copied()) {
                Parsed::Usage(line) => {
                    assert!(line.starts_with("pivot: "), "{line}");
                    assert!(!line.contains('\n'), "{line}");
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn modes_from_names() {
        use std::ffi::OsStr;
        assert_eq!(mode("pivot_root", None), (Mode::PivotRoot, false));
        assert_eq!(
            mode("switch_root", Some(OsStr::new("x"))),
            (Mode::SwitchRoot, false)
        );
        assert_eq!(
            mode("pivot", Some(OsStr::new("switch-root"))),
            (Mode::SwitchRoot, true)
        );
        assert_eq!(
            mode("pivot", Some(OsStr::new("root-compat"))),
            (Mode::PivotRoot, true)
        );
        assert_eq!(
            mode("pivot", Some(OsStr::new("./rootfs"))),
            (Mode::Pivot, false)
        );
    }
}
