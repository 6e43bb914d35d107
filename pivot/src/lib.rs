//! pivot: switch a process into its own root filesystem, set up as a container runtime does, and
//! the util-linux `pivot_root`/`switch_root` behaviours under those names.
//!
//! - [`plan`]: options to the ordered list of mount steps (pure).
//! - [`resolve`]: paths inside the new root that never leave it.
//! - [`apply`]: the steps as syscalls, the pivot and its initramfs fallback.
//! - [`compat`]: `pivot_root NEW PUT_OLD` and `switch_root NEWROOT INIT`.
//! - [`hostns`]: refusing the host's own mount namespace.
//! - [`reaper`]: `--reaper`, a PID 1 that reaps orphans and forwards signals.
//! - [`supervise`]: `--info-fd`, `--json-status-fd`, `--block-fd`, `--sync-fd`.

pub mod apply;
pub mod compat;
pub mod copyup;
pub mod error;
pub mod hostns;
pub mod mountinfo;
pub mod plan;
pub mod reaper;
pub mod resolve;
pub mod spec;
pub mod supervise;
pub mod sys;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

pub use error::Error;
use plan::{Options, Propagation, UserMount};

const EXAMPLES: &str = "\
Examples:
  unshare-rs -m -p -f -u -i -n -- pivot ./rootfs /bin/sh -c 'ps; mount'
  unshare-rs -m -p -f -- pivot --reaper ./rootfs /bin/sh -c 'daemon & exec server'
      (pivot stays PID 1: reaps orphans, forwards TERM and the like, exits as the command)
  unshare-rs -r -m -p -f -- pivot --ro --bind \"$PWD:/work\" -w /work ./rootfs make
  unshare-rs -m -- pivot --bare --put-old /old ./rootfs /bin/ls /old
  unshare-rs -m -p -f -- pivot --dev-bind /dev/fuse --ro-bind-try /etc/resolv.conf ./rootfs sh
      (--bind and --ro-bind are nosuid,nodev; --dev-bind is not; -try skips a missing SRC)
  unshare-rs -m -p -f -i -- pivot --tmpfs-root --ro --dir /work --file 3 /work/motd \\
      --symlink /proc/self/mounts /mtab --size 16777216 --tmpfs /tmp ./rootfs sh 3<motd
      (the new root is a tmpfs with ./rootfs's entries bound in: nothing is written to ./rootfs;
      creating anything inside those entries, /etc/x say, is refused)
  unshare-rs -m -p -f -i -- pivot --bind-data 3 /etc/hosts --perms 0700 --dir /run/app \\
      --mqueue /dev/mqueue --remount-ro /dev/mqueue ./rootfs sh 3<hosts
  unshare-rs -m -p -f -- pivot --tmp-overlay-root --overlay-src \"$PWD\" --tmp-overlay /src \\
      ./rootfs make -C /src    (./rootfs and $PWD shared unchanged; all writes thrown away)
  unshare-rs -m -p -f -- pivot --new-session --die-with-parent ./rootfs sh
      (no TIOCSTI into the caller's terminal; the container dies with unshare-rs's parent)
  unshare-rs -m -p -f -- pivot --reaper --json-status-fd 3 --block-fd 4 ./rootfs sh 3>st 4<go
      (st: the host pid and namespaces once set up, the exit code at the end; waits for go)
  env -i PATH=/bin pivot --clear-env --setenv PATH /usr/bin:/bin --setenv HOME /root \\
      --unsetenv TERM ./rootfs sh     (in command-line order; COMMAND is found with that PATH)
  pivot switch-root /newroot /sbin/init        (in an initramfs; also as `switch_root`)
  pivot root-compat /new /new/old              (pivot_root(8); also as `pivot_root`)

pivot refuses to run in the host's initial mount namespace: run it under `unshare-rs -m`.
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
    version = conventions::VERSION,
    about = "Switch a process into its own root filesystem, set up as a container runtime does",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Bind-mount host path SRC at absolute DST inside the new root, nosuid,nodev (repeatable;
    /// an absolute `SRC` alone: same path; write `\:` for a colon and `\\` for a backslash in a
    /// path).
    #[arg(long, value_name = "SRC:DST")]
    pub bind: Vec<String>,
    /// As --bind, read-only (recursively).
    #[arg(long = "ro-bind", value_name = "SRC:DST")]
    pub ro_bind: Vec<String>,
    /// As --bind, but device nodes and set-uid programs in it keep working.
    #[arg(long = "dev-bind", value_name = "SRC:DST")]
    pub dev_bind: Vec<String>,
    /// As --bind; a missing SRC skips it.
    #[arg(long = "bind-try", value_name = "SRC:DST")]
    pub bind_try: Vec<String>,
    /// As --ro-bind; a missing SRC skips it.
    #[arg(long = "ro-bind-try", value_name = "SRC:DST")]
    pub ro_bind_try: Vec<String>,
    /// As --dev-bind; a missing SRC skips it.
    #[arg(long = "dev-bind-try", value_name = "SRC:DST")]
    pub dev_bind_try: Vec<String>,
    /// Mount an empty tmpfs at absolute DST inside the new root (repeatable).
    #[arg(long, value_name = "DST")]
    pub tmpfs: Vec<PathBuf>,
    /// Build the new root on a fresh tmpfs and bind NEWROOT's top-level entries into it:
    /// nothing pivot creates (mount points, --dir, --file, --symlink) lands in NEWROOT on disk.
    #[arg(long = "tmpfs-root")]
    pub tmpfs_root: bool,
    /// Make the new root an overlay of NEWROOT with its writes in an invisible tmpfs: NEWROOT is
    /// shared unchanged and the container's writes are thrown away.
    #[arg(long = "tmp-overlay-root", conflicts_with = "tmpfs_root")]
    pub tmp_overlay_root: bool,
    /// A lower layer (host directory) of the overlay that follows; repeatable, the first is the
    /// top-most.
    #[arg(long = "overlay-src", value_name = "SRC")]
    pub overlay_src: Vec<PathBuf>,
    /// Mount an overlay of the --overlay-src layers at DST, writes going to the host directory
    /// RWSRC (WORKDIR: an empty directory on its filesystem).
    #[arg(long, num_args = 3, value_names = ["RWSRC", "WORKDIR", "DST"])]
    pub overlay: Vec<PathBuf>,
    /// Mount an overlay of the --overlay-src layers at DST, writes going to an invisible tmpfs.
    #[arg(long = "tmp-overlay", value_name = "DST")]
    pub tmp_overlay: Vec<PathBuf>,
    /// Mount a read-only overlay of the --overlay-src layers at DST.
    #[arg(long = "ro-overlay", value_name = "DST")]
    pub ro_overlay: Vec<PathBuf>,
    /// Create the directory DST (parents 0755 as needed; mode 0755 or --perms).
    #[arg(long, value_name = "DST")]
    pub dir: Vec<PathBuf>,
    /// Create the file DST with the contents read from descriptor FD (mode 0666 or --perms).
    #[arg(long, num_args = 2, value_names = ["FD", "DST"])]
    pub file: Vec<String>,
    /// Bind at DST a file of pivot's own holding the contents of FD (nosuid,nodev; 0600 or
    /// --perms).
    #[arg(long = "bind-data", num_args = 2, value_names = ["FD", "DST"])]
    pub bind_data: Vec<String>,
    /// As --bind-data, read-only.
    #[arg(long = "ro-bind-data", num_args = 2, value_names = ["FD", "DST"])]
    pub ro_bind_data: Vec<String>,
    /// Create the symlink DST pointing at TARGET.
    #[arg(long, num_args = 2, value_names = ["TARGET", "DST"])]
    pub symlink: Vec<String>,
    /// Change the mode of PATH inside the new root to OCTAL.
    #[arg(long, num_args = 2, value_names = ["OCTAL", "PATH"])]
    pub chmod: Vec<String>,
    /// The size of the --tmpfs that follows (bytes, or K/M/G).
    #[arg(long, value_name = "BYTES")]
    pub size: Vec<String>,
    /// The mode of the --tmpfs, --dir, --file or --bind-data that follows.
    #[arg(long, value_name = "OCTAL")]
    pub perms: Vec<String>,
    /// Mount a POSIX message queue filesystem at DST (nosuid,nodev,noexec).
    #[arg(long, value_name = "DST")]
    pub mqueue: Vec<PathBuf>,
    /// Make the mount at DST read-only (that mount only, not the ones below it).
    #[arg(long = "remount-ro", value_name = "DST")]
    pub remount_ro: Vec<PathBuf>,
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
    /// Keep the old root mounted at DIR inside the new root instead of detaching it (a
    /// directory, created when missing).
    #[arg(long, value_name = "DIR")]
    pub put_old: Option<PathBuf>,
    /// Working directory inside the new root (default /).
    #[arg(short = 'w', long = "wd", value_name = "DIR")]
    pub wd: Option<PathBuf>,
    /// Set VAR to VALUE in the command's environment (with --unsetenv and --clear-env in
    /// command-line order; COMMAND is looked up with the resulting PATH).
    #[arg(long, num_args = 2, value_names = ["VAR", "VALUE"])]
    pub setenv: Vec<OsString>,
    /// Remove VAR from the command's environment.
    #[arg(long, value_name = "VAR")]
    pub unsetenv: Vec<OsString>,
    /// Start the command's environment empty (what comes after it still applies).
    #[arg(long = "clear-env", visible_alias = "clearenv")]
    pub clear_env: bool,
    /// Do not exec COMMAND: fork it and stay as its parent (PID 1 under unshare-rs -p), reaping
    /// orphans, forwarding HUP INT QUIT TERM USR1 USR2 WINCH CONT, ending as COMMAND ended.
    #[arg(long)]
    pub reaper: bool,
    /// Run COMMAND in a new session (setsid), so it has no controlling terminal to inject input
    /// into (TIOCSTI).
    #[arg(long = "new-session")]
    pub new_session: bool,
    /// COMMAND (and with --reaper pivot too) is killed (SIGKILL) when pivot's parent dies.
    #[arg(long = "die-with-parent")]
    pub die_with_parent: bool,
    /// Write `{ "child-pid": N, "mnt-namespace": INODE, ... }` (bwrap's keys; N the host's pid)
    /// to FD once the container is set up, then close it.
    #[arg(long = "info-fd", value_name = "FD", value_parser = plan::parse_fd)]
    pub info_fd: Option<i32>,
    /// As --info-fd, and with --reaper `{ "exit-code": N }` when the command has ended.
    #[arg(long = "json-status-fd", value_name = "FD", value_parser = plan::parse_fd)]
    pub json_status_fd: Option<i32>,
    /// Before running COMMAND, wait until FD has a byte to read or is closed.
    #[arg(long = "block-fd", value_name = "FD", value_parser = plan::parse_fd)]
    pub block_fd: Option<i32>,
    /// Keep FD open as long as the container runs (with --reaper in pivot only, not in COMMAND):
    /// its other end sees the end as EOF.
    #[arg(long = "sync-fd", value_name = "FD", value_parser = plan::parse_fd)]
    pub sync_fd: Option<i32>,
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
    /// `--setenv`, `--unsetenv`, `--clear-env` in the order given.
    pub env: Vec<plan::EnvOp>,
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
    for (id, opt, ro, dev, skip_missing) in [
        ("bind", "--bind", false, false, false),
        ("ro_bind", "--ro-bind", true, false, false),
        ("dev_bind", "--dev-bind", false, true, false),
        ("bind_try", "--bind-try", false, false, true),
        ("ro_bind_try", "--ro-bind-try", true, false, true),
        ("dev_bind_try", "--dev-bind-try", false, true, true),
    ] {
        let values = matches.get_many::<String>(id).into_iter().flatten();
        let indices = matches.indices_of(id).into_iter().flatten();
        for (spec, i) in values.zip(indices) {
            match plan::parse_bind(spec) {
                Ok((src, dst)) => indexed.push((
                    i,
                    UserMount::Bind {
                        src,
                        dst,
                        ro,
                        dev,
                        skip_missing,
                    },
                )),
                Err(why) => {
                    return Parsed::Usage(format!(
                        "{tool}: invalid value for {opt}: {why} (try '{tool} --help')"
                    ));
                }
            }
        }
    }
    let bad = |opt: &str, why: String| {
        Parsed::Usage(format!(
            "{tool}: invalid value for {opt}: {why} (try '{tool} --help')"
        ))
    };
    let relative = |m: &UserMount| {
        (!m.dst().is_absolute()).then(|| {
            bad(
                m.option(),
                format!(
                    "'{}' is not an absolute path ({})",
                    m.dst().display(),
                    plan::DST_ABSOLUTE
                ),
            )
        })
    };
    let mut events: Vec<(usize, Event)> = Vec::new();
    for (id, make) in [
        (
            "tmpfs",
            (|dst| UserMount::Tmpfs {
                dst,
                size: None,
                mode: None,
            }) as fn(PathBuf) -> UserMount,
        ),
        ("dir", |dst| UserMount::Dir { dst, mode: None }),
        ("mqueue", |dst| UserMount::Mqueue { dst }),
        ("remount_ro", |dst| UserMount::RemountRo { dst }),
        ("tmp_overlay", |dst| UserMount::Overlay {
            lower: vec![],
            upper: plan::OverlayUpper::Tmp,
            dst,
        }),
        ("ro_overlay", |dst| UserMount::Overlay {
            lower: vec![],
            upper: plan::OverlayUpper::ReadOnly,
            dst,
        }),
    ] {
        let values = matches.get_many::<PathBuf>(id).into_iter().flatten();
        let indices = matches.indices_of(id).into_iter().flatten();
        for (dst, i) in values.zip(indices) {
            let m = make(dst.clone());
            if let Some(usage) = relative(&m) {
                return usage;
            }
            events.push((i, Event::Op(m)));
        }
    }
    for id in ["file", "bind_data", "ro_bind_data", "symlink", "chmod"] {
        let values: Vec<&String> = matches
            .get_many::<String>(id)
            .into_iter()
            .flatten()
            .collect();
        let indices: Vec<usize> = matches.indices_of(id).into_iter().flatten().collect();
        for (pair, i) in values.chunks(2).zip(indices.chunks(2)) {
            let (a, b) = match pair {
                [a, b] => (a.as_str(), PathBuf::from(b.as_str())),
                _ => {
                    return Parsed::Usage(conventions::cli::usage_line(
                        tool,
                        "an option lacks its second value",
                    ))
                }
            };
            let fd = || plan::parse_fd(a);
            let m = match id {
                "file" => fd().map(|fd| UserMount::File {
                    fd,
                    dst: b,
                    mode: None,
                }),
                "bind_data" | "ro_bind_data" => fd().map(|fd| UserMount::BindData {
                    fd,
                    dst: b,
                    ro: id == "ro_bind_data",
                    mode: None,
                }),
                "symlink" => Ok(UserMount::Symlink {
                    target: PathBuf::from(a),
                    dst: b,
                }),
                _ => plan::parse_mode(a).map(|mode| UserMount::Chmod { mode, path: b }),
            };
            let m = match m {
                Ok(m) => m,
                Err(why) => return bad(&format!("--{}", id.replace('_', "-")), why),
            };
            if let Some(usage) = relative(&m) {
                return usage;
            }
            events.push((i[0], Event::Op(m)));
        }
    }
    let values: Vec<&PathBuf> = matches
        .get_many::<PathBuf>("overlay")
        .into_iter()
        .flatten()
        .collect();
    let indices: Vec<usize> = matches
        .indices_of("overlay")
        .into_iter()
        .flatten()
        .collect();
    for (v, i) in values.chunks(3).zip(indices.chunks(3)) {
        if let [upper, work, dst] = v {
            let m = UserMount::Overlay {
                lower: vec![],
                upper: plan::OverlayUpper::Dir {
                    upper: (*upper).clone(),
                    work: (*work).clone(),
                },
                dst: (*dst).clone(),
            };
            if let Some(usage) = relative(&m) {
                return usage;
            }
            events.push((i[0], Event::Op(m)));
        }
    }
    let values = matches
        .get_many::<PathBuf>("overlay_src")
        .into_iter()
        .flatten();
    let indices = matches.indices_of("overlay_src").into_iter().flatten();
    for (v, i) in values.zip(indices) {
        events.push((i, Event::OverlaySrc(v.clone())));
    }
    let values = matches.get_many::<String>("size").into_iter().flatten();
    let indices = matches.indices_of("size").into_iter().flatten();
    for (v, i) in values.zip(indices) {
        match conventions::size::parse_size(v) {
            Ok(n) => events.push((i, Event::Size(n))),
            Err(e) => return bad("--size", format!("'{v}': {e}")),
        }
    }
    let values = matches.get_many::<String>("perms").into_iter().flatten();
    let indices = matches.indices_of("perms").into_iter().flatten();
    for (v, i) in values.zip(indices) {
        match plan::parse_mode(v) {
            Ok(m) => events.push((i, Event::Perms(m))),
            Err(why) => return bad("--perms", why),
        }
    }
    events.extend(indexed.into_iter().map(|(i, m)| (i, Event::Op(m))));
    events.sort_by_key(|(i, _)| *i);
    let env = match env_ops(&matches) {
        Ok(env) => env,
        Err(why) => return Parsed::Usage(format!("{tool}: {why} (try '{tool} --help')")),
    };
    match apply_modifiers(events.into_iter().map(|(_, e)| e)) {
        Ok(mounts) => Parsed::Run(Invocation { cli, mounts, env }),
        Err(why) => Parsed::Usage(format!("{tool}: {why} (try '{tool} --help')")),
    }
}

/// `--setenv`, `--unsetenv` and `--clear-env` in command-line order.
fn env_ops(matches: &clap::ArgMatches) -> Result<Vec<plan::EnvOp>, String> {
    use plan::EnvOp;
    let mut ops: Vec<(usize, EnvOp)> = Vec::new();
    let values: Vec<&OsString> = matches
        .get_many::<OsString>("setenv")
        .into_iter()
        .flatten()
        .collect();
    let indices: Vec<usize> = matches.indices_of("setenv").into_iter().flatten().collect();
    for (pair, i) in values.chunks(2).zip(indices.chunks(2)) {
        if let [k, v] = pair {
            plan::check_env_name(k).map_err(|why| format!("invalid value for --setenv: {why}"))?;
            ops.push((i[0], EnvOp::Set((*k).clone(), (*v).clone())));
        }
    }
    let values = matches
        .get_many::<OsString>("unsetenv")
        .into_iter()
        .flatten();
    let indices = matches.indices_of("unsetenv").into_iter().flatten();
    for (k, i) in values.zip(indices) {
        plan::check_env_name(k).map_err(|why| format!("invalid value for --unsetenv: {why}"))?;
        ops.push((i, EnvOp::Unset(k.clone())));
    }
    if matches.get_flag("clear_env") {
        let i = matches.index_of("clear_env").unwrap_or(0);
        ops.push((i, EnvOp::Clear));
    }
    ops.sort_by_key(|(i, _)| *i);
    Ok(ops.into_iter().map(|(_, op)| op).collect())
}

/// One piece of the ordered command line: an operation, or a modifier of the next one.
#[derive(Debug)]
enum Event {
    Op(UserMount),
    Size(u64),
    Perms(u32),
    OverlaySrc(PathBuf),
}

/// Gives `--size` and `--perms` to the operation right after them, as bubblewrap does; one that
/// is followed by no operation able to take it is an error rather than silently dropped.
fn apply_modifiers(events: impl Iterator<Item = Event>) -> Result<Vec<UserMount>, String> {
    let mut out = Vec::new();
    let mut size: Option<u64> = None;
    let mut perms: Option<u32> = None;
    let mut layers: Vec<PathBuf> = Vec::new();
    for e in events {
        match e {
            Event::OverlaySrc(p) => layers.push(p),
            Event::Size(n) => {
                if size.replace(n).is_some() {
                    return Err("--size given twice before one --tmpfs".into());
                }
            }
            Event::Perms(m) => {
                if perms.replace(m).is_some() {
                    return Err("--perms given twice before one operation".into());
                }
            }
            Event::Op(mut m) => {
                let opt = m.option();
                match &mut m {
                    UserMount::Tmpfs { size: s, mode, .. } => {
                        *s = size.take();
                        *mode = perms.take();
                    }
                    UserMount::Dir { mode, .. }
                    | UserMount::File { mode, .. }
                    | UserMount::BindData { mode, .. } => *mode = perms.take(),
                    UserMount::Overlay { lower, .. } => {
                        if layers.is_empty() {
                            return Err(format!("{opt} needs --overlay-src before it"));
                        }
                        *lower = std::mem::take(&mut layers);
                    }
                    _ => {}
                }
                if let Some(l) = layers.first() {
                    return Err(format!(
                        "--overlay-src {} must come right before --overlay, --tmp-overlay or \
                         --ro-overlay, not {opt}",
                        l.display()
                    ));
                }
                if let Some(n) = size {
                    return Err(format!(
                        "--size {n} must come right before a --tmpfs, not {opt}"
                    ));
                }
                if let Some(p) = perms {
                    return Err(format!(
                        "--perms {p:o} must come right before --tmpfs, --dir, --file or \
                         --bind-data, not {opt}"
                    ));
                }
                out.push(m);
            }
        }
    }
    if let Some(n) = size {
        return Err(format!("--size {n} is not followed by a --tmpfs"));
    }
    if let Some(l) = layers.first() {
        return Err(format!(
            "--overlay-src {} is not followed by --overlay, --tmp-overlay or --ro-overlay",
            l.display()
        ));
    }
    if let Some(p) = perms {
        return Err(format!(
            "--perms {p:o} is not followed by --tmpfs, --dir, --file or --bind-data"
        ));
    }
    Ok(out)
}

/// Sorts a clap error into help/version text or a one-line usage error.
pub fn clap_error<T>(tool: &str, e: clap::Error) -> conventions::cli::Parsed<T> {
    conventions::cli::from_error(tool, &e)
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
            tmpfs_root: c.tmpfs_root,
            overlay_root: c.tmp_overlay_root,
            mounts: self.mounts.clone(),
            put_old: c.put_old.clone(),
            wd: c.wd.clone(),
            hostname: c.hostname.clone(),
            env: self.env.clone(),
            reaper: c.reaper,
            new_session: c.new_session,
            die_with_parent: c.die_with_parent,
            info_fd: c.info_fd,
            json_status_fd: c.json_status_fd,
            block_fd: c.block_fd,
            sync_fd: c.sync_fd,
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
            conventions::errln!("{tool}: {e}");
            e.code()
        }
    }
}

fn info(text: &str) -> i32 {
    conventions::out!("{text}");
    0
}

fn usage(line: &str) -> i32 {
    conventions::errln!("{line}");
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

pub(crate) fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => !plan::is_initial_uid_map(&map),
        Err(_) => false,
    }
}

/// Checks everything that can be checked before the first mount, so bad input changes nothing.
/// Returns the canonical NEWROOT.
fn validate(tool: &str, opts: &mut Options, allow_host: bool) -> Result<PathBuf, Error> {
    refuse_host_namespace(allow_host)?;
    let shown = opts.newroot.display().to_string();
    let meta = std::fs::metadata(&opts.newroot).map_err(|e| {
        Error::input(
            format!("NEWROOT {shown}"),
            conventions::output::errtext(&e),
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
    // proc, dev and sys go only onto real directories (created when missing, at mount time).
    // (With --tmpfs-root they are fresh directories of the tmpfs instead.)
    for (on, name) in [(opts.proc, "proc"), (opts.dev, "dev"), (opts.sys, "sys")] {
        if on && !opts.tmpfs_root {
            resolve::real_dir(&root_fd, std::ffi::OsStr::new(name), false)
                .map_err(|e| error::not_real_dir(&opts.newroot, name, e))?;
        }
    }
    let check_dst = |opt: &str, dst: &Path, may_be_root: bool| -> Result<(), Error> {
        let root_itself = resolve::check(&root_fd, dst).map_err(|e| {
            Error::input(
                format!("{opt} destination {}", dst.display()),
                e.to_string(),
                "destinations are resolved inside NEWROOT and may not leave it",
            )
        })?;
        if root_itself && !may_be_root {
            // A mount there would sit on the bind pivot_root uses and be lost without a word.
            let hint = match opt {
                "--file" | "--symlink" => "give a path below it",
                "--tmpfs" | "--mqueue" | "--overlay" | "--tmp-overlay" | "--ro-overlay" => {
                    "mount onto a directory below it"
                }
                _ => "bind onto a directory below it",
            };
            return Err(Error::input(
                format!("{opt} destination {}", dst.display()),
                "is the new root itself",
                hint,
            ));
        }
        Ok(())
    };
    for (opt, fd, write) in [
        ("--info-fd", opts.info_fd, true),
        ("--json-status-fd", opts.json_status_fd, true),
        ("--block-fd", opts.block_fd, false),
        ("--sync-fd", opts.sync_fd, false),
    ] {
        let Some(fd) = fd else { continue };
        let checked = if write {
            sys::fd_writable(fd)
        } else if opt == "--block-fd" {
            sys::fd_readable(fd)
        } else {
            // Any open descriptor will do for --sync-fd.
            sys::fd_readable(fd).or_else(|_| sys::fd_writable(fd))
        };
        checked.map_err(|e| {
            Error::input(
                format!("{opt} {fd}"),
                format!("descriptor {fd}: {}", conventions::output::errtext(&e)),
                if write {
                    format!("give a descriptor open for writing, e.g. {fd}>FILE")
                } else {
                    format!("give an open descriptor, e.g. {fd}<FILE")
                },
            )
        })?;
    }
    let mut kept = Vec::with_capacity(opts.mounts.len());
    // Each descriptor is read to its end (and closed) by one option.
    let mut read_fds: Vec<(i32, &'static str)> = Vec::new();
    for mut m in std::mem::take(&mut opts.mounts) {
        match &mut m {
            UserMount::Bind {
                src,
                dst,
                ro,
                dev,
                skip_missing,
            } => {
                let opt = plan::bind_option(*ro, *dev, *skip_missing);
                match std::fs::canonicalize(&*src) {
                    Ok(canon) => *src = canon,
                    Err(e) if *skip_missing && e.kind() == std::io::ErrorKind::NotFound => {
                        if opts.verbose {
                            conventions::errln!(
                                "{tool}: {opt} source {} does not exist: skipped",
                                src.display()
                            );
                        }
                        continue;
                    }
                    Err(e) => {
                        return Err(Error::input(
                            format!("{opt} source {}", src.display()),
                            conventions::output::errtext(&e),
                            "the source is a path on the host, resolved before the pivot",
                        ))
                    }
                }
                check_dst(opt, dst, false)?;
            }
            UserMount::Overlay { lower, upper, dst } => {
                let opt = match upper {
                    plan::OverlayUpper::Dir { .. } => "--overlay",
                    plan::OverlayUpper::Tmp => "--tmp-overlay",
                    plan::OverlayUpper::ReadOnly => "--ro-overlay",
                };
                let host_dir = |what: &str, p: &mut PathBuf| -> Result<(), Error> {
                    let canon = std::fs::canonicalize(&*p)
                        .and_then(|c| {
                            if c.is_dir() {
                                Ok(c)
                            } else {
                                Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
                            }
                        })
                        .map_err(|e| {
                            Error::input(
                                format!("{what} {}", p.display()),
                                conventions::output::errtext(&e),
                                "overlay layers are directories on the host, resolved before \
                                 the pivot",
                            )
                        })?;
                    *p = canon;
                    Ok(())
                };
                for l in lower.iter_mut() {
                    host_dir("--overlay-src", l)?;
                }
                if let plan::OverlayUpper::Dir { upper, work } = upper {
                    host_dir("--overlay RWSRC", upper)?;
                    host_dir("--overlay WORKDIR", work)?;
                }
                check_dst(opt, dst, false)?;
            }
            other => {
                if let Some(fd) = other.fd() {
                    if let Some((_, first)) = read_fds.iter().find(|(f, _)| *f == fd) {
                        return Err(Error::input(
                            format!("{} {fd} {}", other.option(), other.dst().display()),
                            format!("descriptor {fd} is already read by {first}"),
                            "each descriptor is read to its end by one option: give another",
                        ));
                    }
                    read_fds.push((fd, other.option()));
                    sys::fd_readable(fd).map_err(|e| {
                        Error::input(
                            format!("{} {fd} {}", other.option(), other.dst().display()),
                            format!("descriptor {fd}: {}", conventions::output::errtext(&e)),
                            format!("give a descriptor open for reading, e.g. {fd}<FILE"),
                        )
                    })?;
                }
                check_dst(other.option(), other.dst(), other.may_be_root())?;
            }
        }
        kept.push(m);
    }
    opts.mounts = kept;
    if let Some(dir) = &opts.put_old {
        check_put_old(&root_fd, opts, dir)?;
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
            UserMount::Chmod { .. } | UserMount::RemountRo { .. } => false,
            m => under(m.dst()),
        })
}

/// `--put-old DIR`: inside the new root, below it, and a directory or a path to create; found
/// now rather than at pivot_root with an unrelated hint.
fn check_put_old(root: &std::os::fd::OwnedFd, opts: &Options, dir: &Path) -> Result<(), Error> {
    let bad = |why: String| {
        Error::input(
            format!(
                "--put-old {} inside {}",
                dir.display(),
                opts.newroot.display()
            ),
            why,
            "give a directory inside NEWROOT, or a path to create",
        )
    };
    match resolve::check(root, dir) {
        Ok(false) => {}
        Ok(true) => {
            return Err(Error::input(
                format!("--put-old {}", dir.display()),
                "is the new root itself",
                "give a directory below it, e.g. /mnt",
            ))
        }
        Err(e @ resolve::ResolveError::NotDir(_)) => return Err(bad(e.to_string())),
        Err(e) => {
            return Err(Error::input(
                format!("--put-old destination {}", dir.display()),
                e.to_string(),
                "destinations are resolved inside NEWROOT and may not leave it",
            ))
        }
    }
    match kind_inside(root, dir, "--put-old")? {
        Some(mode) if mode & libc::S_IFMT != libc::S_IFDIR => Err(bad("not a directory".into())),
        _ => Ok(()),
    }
}

/// What a path inside the new root is now: `None` when it is not there (missing, or a component
/// on the way is no directory, loops or leaves the root). Any other failure (too few free
/// descriptors, I/O) is an error: the path may well be there, and saying "not found" would lie.
fn kind_inside(
    root: &std::os::fd::OwnedFd,
    path: &Path,
    what: &str,
) -> Result<Option<libc::mode_t>, Error> {
    use resolve::ResolveError;
    let lookup_failed = |e: std::io::Error| {
        Error::sys(
            format!("looking up {what} {} inside the new root", path.display()),
            e,
        )
    };
    match resolve::resolve(root, path, resolve::Create::No) {
        Ok(t) => sys::fstat(&t.fd)
            .map(|st| Some(st.st_mode))
            .map_err(lookup_failed),
        Err(ResolveError::Io(_, e))
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::EACCES)
            ) =>
        {
            Ok(None)
        }
        Err(ResolveError::Io(_, e)) => Err(lookup_failed(e)),
        Err(_) => Ok(None),
    }
}

/// Finds before the first mount what would only fail after the pivot: a COMMAND missing from
/// the new root (127) or not executable (126), a -w directory that does not exist. Paths that a
/// planned mount may provide are left to the real exec.
fn precheck(root: &std::os::fd::OwnedFd, opts: &Options) -> Result<(), Error> {
    let wd = opts.wd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let wd_abs = Path::new("/").join(&wd);
    if opts.wd.is_some() && !maybe_mounted(opts, &wd_abs) {
        let is_dir = kind_inside(root, &wd_abs, "-w")?.map(|m| m & libc::S_IFMT == libc::S_IFDIR);
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
        // The PATH the command will be looked up with: after --setenv/--unsetenv/--clear-env.
        let path = plan::environment(
            std::env::var_os("PATH").map(|p| ("PATH".into(), p)),
            &opts.env,
        )
        .into_iter()
        .find_map(|(k, v)| (k == "PATH").then_some(v))
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
        match kind_inside(root, c, "COMMAND")? {
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
    let newroot = validate(tool, &mut opts, inv.cli.host_namespace)?;
    // Read now, while /proc is still the host's: the pid a supervisor can use.
    let info = if opts.info_fd.is_some() || opts.json_status_fd.is_some() {
        Some(supervise::Info::read().map_err(|e| Error::sys("reading /proc/self", e))?)
    } else {
        None
    };
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
        nix::unistd::sethostname(name)
            .map_err(|e| Error::sys(format!("sethostname({name})"), e))?;
    }
    if let Some(wd) = &opts.wd {
        ctx.say(format!("chdir({})", wd.display()));
        nix::unistd::chdir(wd).map_err(|e| {
            Error::sys_hint(
                format!("chdir({}) inside the new root", wd.display()),
                e,
                "-w names a directory inside NEWROOT",
            )
        })?;
    }
    set_environment(&ctx, &opts.env)?;
    if opts.die_with_parent {
        ctx.say("prctl(PR_SET_PDEATHSIG, SIGKILL)");
        sys::die_with_parent().map_err(|e| Error::sys("prctl(PR_SET_PDEATHSIG)", e))?;
    }
    if opts.new_session {
        ctx.say("setsid()");
        nix::unistd::setsid().map_err(|e| {
            Error::sys_hint(
                "setsid()",
                e,
                "pivot is a process group leader: start it from a shell that made it a job, or \
                 under unshare -f",
            )
        })?;
    }
    if let Some(info) = &info {
        for (opt, fd) in [
            ("--info-fd", opts.info_fd),
            ("--json-status-fd", opts.json_status_fd),
        ] {
            if let Some(fd) = fd {
                supervise::write_all(fd, &info.json())
                    .map_err(|e| Error::sys(format!("write({opt} {fd})"), e))?;
            }
        }
    }
    if let Some(fd) = opts.info_fd {
        sys::close_fd(fd);
    }
    if let Some(fd) = opts.block_fd {
        ctx.say(format!("waiting on --block-fd {fd}"));
        supervise::block_on(fd).map_err(|e| Error::sys(format!("read(--block-fd {fd})"), e))?;
        sys::close_fd(fd);
    }
    if opts.reaper {
        let fds = reaper::Fds {
            status: opts.json_status_fd,
            sync: opts.sync_fd,
        };
        return reaper::run(&opts.argv, opts.die_with_parent, fds, &|msg| ctx.say(msg));
    }
    // Without a reaper nobody is left to say how the command ended.
    if let Some(fd) = opts.json_status_fd {
        sys::close_fd(fd);
    }
    exec(&opts.argv)
}

/// Applies `ops` to the process environment, in order, for the exec that follows.
fn set_environment(ctx: &apply::Ctx<'_>, ops: &[plan::EnvOp]) -> Result<(), Error> {
    for op in ops {
        let r = match op {
            plan::EnvOp::Set(k, v) => {
                ctx.say(format!("setenv {}", k.to_string_lossy()));
                sys::setenv(k, v)
            }
            plan::EnvOp::Unset(k) => {
                ctx.say(format!("unsetenv {}", k.to_string_lossy()));
                sys::unsetenv(k)
            }
            plan::EnvOp::Clear => {
                ctx.say("clearenv");
                sys::clearenv()
            }
        };
        r.map_err(|e| Error::sys("changing the environment", e))?;
    }
    Ok(())
}

/// Execs `argv` (PATH search) and returns the failure with 126/127.
pub fn exec(argv: &[OsString]) -> Result<Never, Error> {
    let (msg, code) = conventions::exec::execvp(argv);
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
                UserMount::Tmpfs {
                    dst: "/t".into(),
                    size: None,
                    mode: None
                },
                UserMount::Bind {
                    src: "/a".into(),
                    dst: "/t/a".into(),
                    ro: true,
                    dev: false,
                    skip_missing: false,
                },
                UserMount::Bind {
                    src: "/b".into(),
                    dst: "/b".into(),
                    ro: false,
                    dev: false,
                    skip_missing: false,
                },
                UserMount::Tmpfs {
                    dst: "/u".into(),
                    size: None,
                    mode: None
                },
            ]
        );
    }

    #[test]
    fn dev_and_try_binds() {
        let o = ok(&[
            "--dev-bind",
            "/d",
            "--bind-try",
            "/a:/b",
            "--ro-bind-try",
            "/c",
            "--dev-bind-try",
            "/e:/f",
            "/r",
        ])
        .options();
        let got: Vec<_> = o
            .mounts
            .iter()
            .map(|m| match m {
                UserMount::Bind {
                    ro,
                    dev,
                    skip_missing,
                    ..
                } => plan::bind_option(*ro, *dev, *skip_missing),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                "--dev-bind",
                "--bind-try",
                "--ro-bind-try",
                "--dev-bind-try"
            ]
        );
        match parse("pivot", ["pivot", "--dev-bind-try", "/a:b", "/r"]) {
            Parsed::Usage(line) => assert_eq!(
                line,
                "pivot: invalid value for --dev-bind-try: 'b' is not an absolute path (DST is \
                 a path inside the new root, starting with /) (try 'pivot --help')"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tmpfs_root_operations_in_order_with_their_modifiers() {
        let inv = ok(&[
            "--tmpfs-root",
            "--perms",
            "0700",
            "--dir",
            "/d",
            "--file",
            "3",
            "/d/f",
            "--size",
            "1M",
            "--tmpfs",
            "/t",
            "--symlink",
            "../x:y",
            "/l",
            "--ro-bind-data",
            "4",
            "/d/r",
            "--bind",
            "/b",
            "--perms",
            "600",
            "--bind-data",
            "5",
            "/d/w",
            "--chmod",
            "1777",
            "/t",
            "--mqueue",
            "/mq",
            "--remount-ro",
            "/",
            "/r",
            "sh",
        ]);
        let o = inv.options();
        assert!(o.tmpfs_root);
        assert_eq!(o.argv, ["sh"]);
        assert_eq!(
            o.mounts,
            vec![
                UserMount::Dir {
                    dst: "/d".into(),
                    mode: Some(0o700)
                },
                UserMount::File {
                    fd: 3,
                    dst: "/d/f".into(),
                    mode: None
                },
                UserMount::Tmpfs {
                    dst: "/t".into(),
                    size: Some(1 << 20),
                    mode: None
                },
                UserMount::Symlink {
                    target: "../x:y".into(),
                    dst: "/l".into()
                },
                UserMount::BindData {
                    fd: 4,
                    dst: "/d/r".into(),
                    ro: true,
                    mode: None
                },
                UserMount::Bind {
                    src: "/b".into(),
                    dst: "/b".into(),
                    ro: false,
                    dev: false,
                    skip_missing: false
                },
                UserMount::BindData {
                    fd: 5,
                    dst: "/d/w".into(),
                    ro: false,
                    mode: Some(0o600)
                },
                UserMount::Chmod {
                    mode: 0o1777,
                    path: "/t".into()
                },
                UserMount::Mqueue { dst: "/mq".into() },
                UserMount::RemountRo { dst: "/".into() },
            ]
        );
    }

    #[test]
    fn modifiers_and_new_operations_refuse_bad_input() {
        for (args, want) in [
            (&["--size", "1M", "--dir", "/d"][..], "pivot: --size 1048576 must come right before a --tmpfs, not --dir (try 'pivot --help')"),
            (&["--perms", "700", "--symlink", "a", "/b"], "pivot: --perms 700 must come right before --tmpfs, --dir, --file or --bind-data, not --symlink (try 'pivot --help')"),
            (&["--tmpfs", "/t", "--size", "1"], "pivot: --size 1 is not followed by a --tmpfs (try 'pivot --help')"),
            (&["--perms", "1", "--perms", "2", "--dir", "/d"], "pivot: --perms given twice before one operation (try 'pivot --help')"),
            (&["--size", "lots", "--tmpfs", "/t"], "pivot: invalid value for --size: 'lots': "),
            (&["--file", "x", "/f"], "pivot: invalid value for --file: 'x' is not a file descriptor number (try 'pivot --help')"),
            (&["--bind-data", "-1", "/f"], "pivot: "),
            (&["--chmod", "9", "/f"], "pivot: invalid value for --chmod: '9' is not an octal mode (0 to 7777) (try 'pivot --help')"),
            (&["--dir", "d"], "pivot: invalid value for --dir: 'd' is not an absolute path (DST is a path inside the new root, starting with /) (try 'pivot --help')"),
            (&["--mqueue", "mq"], "pivot: invalid value for --mqueue: 'mq' is not an absolute path"),
            (&["--remount-ro", "x"], "pivot: invalid value for --remount-ro: 'x' is not an absolute path"),
            (&["--chmod", "755", "x"], "pivot: invalid value for --chmod: 'x' is not an absolute path"),
            (&["--file", "3"], "pivot: "),
        ] {
            let argv = std::iter::once("pivot").chain(args.iter().copied()).chain(["/r"]);
            match parse("pivot", argv) {
                Parsed::Usage(line) => {
                    assert!(line.starts_with(want), "{args:?}: {line}");
                    assert!(!line.contains('\n'), "{line}");
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn overlays_take_the_overlay_sources_before_them() {
        use plan::OverlayUpper;
        let inv = ok(&[
            "--tmp-overlay-root",
            "--overlay-src",
            "/l1",
            "--overlay-src",
            "/l2",
            "--tmp-overlay",
            "/o",
            "--overlay-src",
            "/l3",
            "--overlay",
            "/u",
            "/w",
            "/p",
            "--dir",
            "/d",
            "--overlay-src",
            "/l1",
            "--overlay-src",
            "/l3",
            "--ro-overlay",
            "/q",
            "/r",
        ]);
        let o = inv.options();
        assert!(o.overlay_root && !o.tmpfs_root);
        let ov = |lower: &[&str], upper, dst: &str| UserMount::Overlay {
            lower: lower.iter().map(PathBuf::from).collect(),
            upper,
            dst: dst.into(),
        };
        assert_eq!(
            o.mounts,
            [
                ov(&["/l1", "/l2"], OverlayUpper::Tmp, "/o"),
                ov(
                    &["/l3"],
                    OverlayUpper::Dir {
                        upper: "/u".into(),
                        work: "/w".into()
                    },
                    "/p"
                ),
                UserMount::Dir {
                    dst: "/d".into(),
                    mode: None
                },
                ov(&["/l1", "/l3"], OverlayUpper::ReadOnly, "/q"),
            ]
        );
        for (args, want) in [
            (&["--tmp-overlay", "/o"][..], "pivot: --tmp-overlay needs --overlay-src before it (try 'pivot --help')"),
            (&["--overlay-src", "/l", "--dir", "/d"], "pivot: --overlay-src /l must come right before --overlay, --tmp-overlay or --ro-overlay, not --dir (try 'pivot --help')"),
            (&["--overlay-src", "/l"], "pivot: --overlay-src /l is not followed by --overlay, --tmp-overlay or --ro-overlay (try 'pivot --help')"),
            (&["--overlay-src", "/l", "--overlay", "/u", "/w", "p"], "pivot: invalid value for --overlay: 'p' is not an absolute path (DST is a path inside the new root, starting with /) (try 'pivot --help')"),
        ] {
            let argv = std::iter::once("pivot").chain(args.iter().copied()).chain(["/r"]);
            match parse("pivot", argv) {
                Parsed::Usage(line) => assert_eq!(line, want, "{args:?}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        match parse(
            "pivot",
            ["pivot", "--tmpfs-root", "--tmp-overlay-root", "/r"],
        ) {
            Parsed::Usage(line) => assert!(line.contains("cannot be used with"), "{line}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn environment_options_keep_command_line_order() {
        use plan::EnvOp;
        let os = OsString::from;
        let inv = ok(&[
            "--setenv",
            "A",
            "1",
            "--clear-env",
            "--unsetenv",
            "B",
            "--setenv",
            "C",
            "x=y z",
            "/r",
        ]);
        assert_eq!(
            inv.options().env,
            [
                EnvOp::Set(os("A"), os("1")),
                EnvOp::Clear,
                EnvOp::Unset(os("B")),
                EnvOp::Set(os("C"), os("x=y z")),
            ]
        );
        assert_eq!(ok(&["--clearenv", "/r"]).env, [EnvOp::Clear]);
        for (args, want) in [
            (&["--setenv", "A=B", "1"][..], "pivot: invalid value for --setenv: 'A=B' is not a variable name (not empty, no '=') (try 'pivot --help')"),
            (&["--unsetenv", ""], "pivot: invalid value for --unsetenv: '' is not a variable name (not empty, no '=') (try 'pivot --help')"),
        ] {
            let argv = std::iter::once("pivot").chain(args.iter().copied()).chain(["/r"]);
            match parse("pivot", argv) {
                Parsed::Usage(line) => assert_eq!(line, want),
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn reaper_is_off_by_default() {
        let o = ok(&["/r"]).options();
        assert!(!o.reaper && !o.new_session && !o.die_with_parent);
        let o = ok(&["--new-session", "--die-with-parent", "/r"]).options();
        assert!(o.new_session && o.die_with_parent);
        let o = ok(&[
            "--info-fd",
            "3",
            "--json-status-fd",
            "4",
            "--block-fd",
            "5",
            "--sync-fd",
            "6",
            "/r",
        ])
        .options();
        assert_eq!(
            (o.info_fd, o.json_status_fd, o.block_fd, o.sync_fd),
            (Some(3), Some(4), Some(5), Some(6))
        );
        match parse("pivot", ["pivot", "--sync-fd", "x", "/r"]) {
            Parsed::Usage(line) => assert!(line.contains("not a file descriptor number"), "{line}"),
            other => panic!("{other:?}"),
        }
        assert!(ok(&["--reaper", "/r", "sh"]).options().reaper);
        // What it forwards never includes what it cannot or must not pass on.
        for s in [libc::SIGCHLD, libc::SIGKILL, libc::SIGSTOP] {
            assert!(!reaper::FORWARDED.contains(&s), "{s}");
        }
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
