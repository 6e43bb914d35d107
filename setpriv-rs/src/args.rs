//! The command line as util-linux setpriv reads it (getopt_long `+dhV`): options stop at the
//! program, long options abbreviate, each option may be given once, and lists are checked here
//! so that bad input is one line naming the option before anything is changed.

use conventions::getopt::{self, HasArg, Spec};
use privs::caps::Change;
use std::ffi::OsString;
use std::ops::ControlFlow;

/// Every option, identified by its long name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Dump,
    Nnp,
    InhCaps,
    AmbientCaps,
    ListCaps,
    Ruid,
    Euid,
    Rgid,
    Egid,
    Reuid,
    Regid,
    ClearGroups,
    KeepGroups,
    InitGroups,
    Groups,
    BoundingSet,
    Securebits,
    Pdeathsig,
    Ptracer,
    SelinuxLabel,
    ApparmorProfile,
    LandlockAccess,
    LandlockRule,
    SeccompFilter,
    ResetEnv,
    Seccomp,
    DefaultContainer,
    Help,
    Version,
}

const fn spec(long: &'static str, short: Option<char>, arg: HasArg, opt: Opt) -> Spec<Opt> {
    Spec::new(long, short, arg, opt)
}

const R: HasArg = HasArg::Required;
const N: HasArg = HasArg::No;

/// util-linux 2.42's table, then ours (`--seccomp`, `--default-container`).
const SPECS: &[Spec<Opt>] = &[
    spec("dump", Some('d'), N, Opt::Dump),
    spec("nnp", None, N, Opt::Nnp),
    spec("no-new-privs", None, N, Opt::Nnp),
    spec("inh-caps", None, R, Opt::InhCaps),
    spec("ambient-caps", None, R, Opt::AmbientCaps),
    spec("list-caps", None, N, Opt::ListCaps),
    spec("ruid", None, R, Opt::Ruid),
    spec("euid", None, R, Opt::Euid),
    spec("rgid", None, R, Opt::Rgid),
    spec("egid", None, R, Opt::Egid),
    spec("reuid", None, R, Opt::Reuid),
    spec("regid", None, R, Opt::Regid),
    spec("clear-groups", None, N, Opt::ClearGroups),
    spec("keep-groups", None, N, Opt::KeepGroups),
    spec("init-groups", None, N, Opt::InitGroups),
    spec("groups", None, R, Opt::Groups),
    spec("bounding-set", None, R, Opt::BoundingSet),
    spec("securebits", None, R, Opt::Securebits),
    spec("pdeathsig", None, R, Opt::Pdeathsig),
    spec("ptracer", None, R, Opt::Ptracer),
    spec("selinux-label", None, R, Opt::SelinuxLabel),
    spec("apparmor-profile", None, R, Opt::ApparmorProfile),
    spec("landlock-access", None, R, Opt::LandlockAccess),
    spec("landlock-rule", None, R, Opt::LandlockRule),
    spec("seccomp-filter", None, R, Opt::SeccompFilter),
    spec("help", Some('h'), N, Opt::Help),
    spec("reset-env", None, N, Opt::ResetEnv),
    spec("version", Some('V'), N, Opt::Version),
    spec("seccomp", None, R, Opt::Seccomp),
    spec("default-container", None, N, Opt::DefaultContainer),
];

/// The option table as man pages and completions show it (`cargo xtask man`).
pub fn option_table() -> Vec<getopt::Shape> {
    getopt::shapes(SPECS)
}

/// A securebit as `--securebits` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secbit {
    /// Every bit (only `-all`).
    All,
    /// One bit's value (`SECBIT_*`).
    Bit(i32),
}

/// `--pdeathsig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pdeathsig {
    /// Keep the current one (it survives no exec otherwise... it does; `keep` re-sets it).
    Keep,
    /// Clear it.
    Clear,
    /// Set this signal.
    Signal(i32),
}

/// `--ptracer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ptracer {
    /// `any`: PR_SET_PTRACER_ANY.
    Any,
    /// `none`: 0.
    None,
    /// A process.
    Pid(i32),
}

/// A `--landlock-rule path-beneath:RIGHTS:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockRule {
    /// The rights allowed beneath the path.
    pub rights: u64,
    /// The path.
    pub path: OsString,
}

/// Everything the command line said, each option checked on its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// How many `-d`.
    pub dump: u32,
    /// Options other than `-d` given (for `--dump`/`--list-caps` alone).
    pub others: u32,
    /// `--list-caps`.
    pub list_caps: bool,
    /// `--nnp`.
    pub nnp: bool,
    /// `--inh-caps`.
    pub inh_caps: Option<Vec<Change>>,
    /// `--ambient-caps`.
    pub ambient_caps: Option<Vec<Change>>,
    /// `--bounding-set`.
    pub bounding_set: Option<Vec<Change>>,
    /// `--ruid`/`--reuid` as given.
    pub ruid: Option<String>,
    /// `--euid`/`--reuid` as given.
    pub euid: Option<String>,
    /// `--rgid`/`--regid` as given.
    pub rgid: Option<String>,
    /// `--egid`/`--regid` as given.
    pub egid: Option<String>,
    /// Whether the uids came from `--reuid`, the gids from `--regid` (for the messages).
    pub reuid: bool,
    /// See `reuid`.
    pub regid: bool,
    /// `--clear-groups`.
    pub clear_groups: bool,
    /// `--keep-groups`.
    pub keep_groups: bool,
    /// `--init-groups`.
    pub init_groups: bool,
    /// `--groups`, each a number or a name.
    pub groups: Option<Vec<String>>,
    /// `--securebits`, in order.
    pub securebits: Option<Vec<(bool, Secbit)>>,
    /// `--pdeathsig`.
    pub pdeathsig: Option<Pdeathsig>,
    /// `--ptracer`.
    pub ptracer: Option<Ptracer>,
    /// `--selinux-label`.
    pub selinux_label: Option<String>,
    /// `--apparmor-profile`.
    pub apparmor_profile: Option<String>,
    /// `--landlock-access`, the handled filesystem rights.
    pub landlock_access: u64,
    /// `--landlock-rule`s.
    pub landlock_rules: Vec<LandlockRule>,
    /// `--seccomp-filter` (a raw BPF program, util-linux's).
    pub seccomp_filter: Option<OsString>,
    /// `--seccomp` (OCI runtime-spec JSON, ours).
    pub seccomp: Option<OsString>,
    /// `--default-container`.
    pub default_container: bool,
    /// `--reset-env`.
    pub reset_env: bool,
    /// The program and its arguments.
    pub program: Vec<OsString>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // built once per run
pub enum Parsed {
    /// Run (or dump, or list) with these options.
    Run(Options),
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

/// Landlock's filesystem rights, by the names util-linux gives them, in bit order.
pub const LANDLOCK_FS: [(&str, &str); 16] = [
    ("execute", "execute a file"),
    ("write-file", "open a file with write access"),
    ("read-file", "open a file with read access"),
    ("read-dir", "open a directory or list its content"),
    ("remove-dir", "remove an empty directory or rename one"),
    ("remove-file", "unlink (or rename) a file"),
    ("make-char", "create (or rename or link) a character device"),
    ("make-dir", "create (or rename) a directory"),
    ("make-reg", "create (or rename or link) a regular file"),
    (
        "make-sock",
        "create (or rename or link) a UNIX domain socket",
    ),
    ("make-fifo", "create (or rename or link) a named pipe"),
    ("make-block", "create (or rename or link) a block device"),
    ("make-sym", "create (or rename or link) a symbolic link"),
    (
        "refer",
        "link or rename a file from or to a different directory",
    ),
    ("truncate", "truncate a file with truncate(2)"),
    (
        "ioctl-dev",
        "invoke ioctl(2) on an opened character or block device",
    ),
];

/// Every right of [`LANDLOCK_FS`].
pub const LANDLOCK_FS_ALL: u64 = (1 << LANDLOCK_FS.len()) - 1;

/// `RIGHT,...` (empty: all) to a mask.
pub fn parse_landlock_rights(list: &str) -> Result<u64, String> {
    if list.is_empty() {
        return Ok(LANDLOCK_FS_ALL);
    }
    let mut mask = 0;
    for r in list.split(',') {
        match LANDLOCK_FS.iter().position(|(n, _)| *n == r) {
            Some(i) => mask |= 1 << i,
            None => {
                return Err(format!(
                    "unknown Landlock filesystem right '{r}' (see --help for the list)"
                ))
            }
        }
    }
    Ok(mask)
}

fn parse_securebits(s: &str) -> Result<Vec<(bool, Secbit)>, String> {
    s.split(',')
        .map(|item| {
            let (add, name) = match item.as_bytes().first() {
                Some(b'+') => (true, &item[1..]),
                Some(b'-') => (false, &item[1..]),
                _ => return Err(format!("bad securebits string \"{item}\" (each entry is +NAME or -NAME)")),
            };
            let bit = match name {
                "all" if add => return Err("+all securebits is not allowed".to_string()),
                "all" => Secbit::All,
                "noroot" => Secbit::Bit(1 << 0),
                "noroot_locked" => Secbit::Bit(1 << 1),
                "no_setuid_fixup" => Secbit::Bit(1 << 2),
                "no_setuid_fixup_locked" => Secbit::Bit(1 << 3),
                "keep_caps" => return Err("adjusting keep_caps does not make sense".to_string()),
                "keep_caps_locked" => Secbit::Bit(1 << 5),
                _ => return Err(format!("unrecognized securebit \"{name}\" (noroot, noroot_locked, no_setuid_fixup, no_setuid_fixup_locked, keep_caps_locked)")),
            };
            Ok((add, bit))
        })
        .collect()
}

fn dup(o: &str) -> String {
    format!("duplicate {o} option")
}

fn text(v: &Option<OsString>) -> String {
    v.as_deref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn caps_arg(opt: &str, v: &str) -> Result<Vec<Change>, String> {
    privs::caps::parse_list(v).map_err(|e| format!("{opt}: {e} (see --list-caps)"))
}

fn apply(o: &mut Options, opt: Opt, val: Option<OsString>) -> Result<Option<Parsed>, String> {
    let v = text(&val);
    if !matches!(opt, Opt::Dump) {
        o.others += 1;
    }
    let once = |given: bool, name: &str| if given { Err(dup(name)) } else { Ok(()) };
    match opt {
        Opt::Help => return Ok(Some(Parsed::Help)),
        Opt::Version => return Ok(Some(Parsed::Version)),
        Opt::Dump => o.dump += 1,
        Opt::Nnp => {
            once(o.nnp, "--no-new-privs")?;
            o.nnp = true;
        }
        Opt::InhCaps => {
            once(o.inh_caps.is_some(), "--inh-caps")?;
            o.inh_caps = Some(caps_arg("--inh-caps", &v)?);
        }
        Opt::AmbientCaps => {
            once(o.ambient_caps.is_some(), "--ambient-caps")?;
            o.ambient_caps = Some(caps_arg("--ambient-caps", &v)?);
        }
        Opt::BoundingSet => {
            once(o.bounding_set.is_some(), "--bounding-set")?;
            o.bounding_set = Some(caps_arg("--bounding-set", &v)?);
        }
        Opt::ListCaps => o.list_caps = true,
        Opt::Ruid => {
            if o.ruid.is_some() {
                return Err("duplicate ruid".to_string());
            }
            o.ruid = Some(v);
        }
        Opt::Euid => {
            if o.euid.is_some() {
                return Err("duplicate euid".to_string());
            }
            o.euid = Some(v);
        }
        Opt::Reuid => {
            if o.ruid.is_some() || o.euid.is_some() {
                return Err("duplicate ruid or euid".to_string());
            }
            o.ruid = Some(v.clone());
            o.euid = Some(v);
            o.reuid = true;
        }
        Opt::Rgid => {
            if o.rgid.is_some() {
                return Err("duplicate rgid".to_string());
            }
            o.rgid = Some(v);
        }
        Opt::Egid => {
            if o.egid.is_some() {
                return Err("duplicate egid".to_string());
            }
            o.egid = Some(v);
        }
        Opt::Regid => {
            if o.rgid.is_some() || o.egid.is_some() {
                return Err("duplicate rgid or egid".to_string());
            }
            o.rgid = Some(v.clone());
            o.egid = Some(v);
            o.regid = true;
        }
        Opt::ClearGroups | Opt::KeepGroups | Opt::InitGroups | Opt::Groups => {
            let already = o.clear_groups || o.keep_groups || o.init_groups || o.groups.is_some();
            let same = match opt {
                Opt::ClearGroups => o.clear_groups,
                Opt::KeepGroups => o.keep_groups,
                Opt::InitGroups => o.init_groups,
                _ => o.groups.is_some(),
            };
            if already && !same {
                return Err(
                    "mutually exclusive arguments: --clear-groups --keep-groups --init-groups --groups"
                        .to_string(),
                );
            }
            match opt {
                Opt::ClearGroups => {
                    once(o.clear_groups, "--clear-groups")?;
                    o.clear_groups = true;
                }
                Opt::KeepGroups => {
                    once(o.keep_groups, "--keep-groups")?;
                    o.keep_groups = true;
                }
                Opt::InitGroups => {
                    once(o.init_groups, "--init-groups")?;
                    o.init_groups = true;
                }
                _ => {
                    once(o.groups.is_some(), "--groups")?;
                    if v.split(',').any(str::is_empty) {
                        return Err(format!(
                            "--groups: invalid supplementary group list '{v}' (GIDs or names, comma separated)"
                        ));
                    }
                    o.groups = Some(v.split(',').map(str::to_string).collect());
                }
            }
        }
        Opt::Securebits => {
            once(o.securebits.is_some(), "--securebits")?;
            o.securebits = Some(parse_securebits(&v).map_err(|e| format!("--securebits: {e}"))?);
        }
        Opt::Pdeathsig => {
            once(o.pdeathsig.is_some(), "--pdeathsig")?;
            o.pdeathsig = Some(match v.as_str() {
                "keep" => Pdeathsig::Keep,
                "clear" => Pdeathsig::Clear,
                s => Pdeathsig::Signal(
                    conventions::signal::parse(s).map_err(|e| format!("--pdeathsig: {e}"))?,
                ),
            });
        }
        Opt::Ptracer => {
            once(o.ptracer.is_some(), "--ptracer")?;
            o.ptracer = Some(match v.as_str() {
                "any" => Ptracer::Any,
                "none" => Ptracer::None,
                s => match s.parse::<i32>() {
                    Ok(p) if p > 0 => Ptracer::Pid(p),
                    _ => {
                        return Err(format!(
                            "--ptracer: invalid PID argument '{s}' (a pid, 'any' or 'none')"
                        ))
                    }
                },
            });
        }
        Opt::SelinuxLabel => {
            once(o.selinux_label.is_some(), "--selinux-label")?;
            o.selinux_label = Some(v);
        }
        Opt::ApparmorProfile => {
            once(o.apparmor_profile.is_some(), "--apparmor-profile")?;
            o.apparmor_profile = Some(v);
        }
        Opt::LandlockAccess => {
            let bad = || format!("--landlock-access: invalid access '{v}' (fs or fs:RIGHT,...)");
            let mask = if v == "fs" {
                LANDLOCK_FS_ALL
            } else {
                let list = v.strip_prefix("fs:").ok_or_else(bad)?;
                parse_landlock_rights(list).map_err(|e| format!("--landlock-access: {e}"))?
            };
            o.landlock_access |= mask;
        }
        Opt::LandlockRule => {
            let bad =
                || format!("--landlock-rule: invalid rule '{v}' (path-beneath:RIGHT,...:PATH)");
            let rest = v.strip_prefix("path-beneath:").ok_or_else(bad)?;
            let (rights, path) = rest.split_once(':').ok_or_else(bad)?;
            let rights =
                parse_landlock_rights(rights).map_err(|e| format!("--landlock-rule: {e}"))?;
            // The path is the rest of the argument as given, not lossily decoded.
            let raw = val.unwrap_or_default();
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(raw.as_os_str());
            let skip = bytes.len() - path.len().min(bytes.len());
            let path: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(&bytes[skip..]);
            if path.is_empty() {
                return Err(bad());
            }
            o.landlock_rules.push(LandlockRule {
                rights,
                path: std::ffi::OsStr::to_os_string(path),
            });
        }
        Opt::SeccompFilter => {
            once(o.seccomp_filter.is_some(), "--seccomp-filter")?;
            o.seccomp_filter = val;
        }
        Opt::Seccomp => {
            once(o.seccomp.is_some(), "--seccomp")?;
            o.seccomp = val;
        }
        Opt::DefaultContainer => {
            once(o.default_container, "--default-container")?;
            o.default_container = true;
        }
        Opt::ResetEnv => o.reset_env = true,
    }
    Ok(None)
}

/// Parses the arguments after argv\[0\]. An `Err` is a usage error message without the tool name.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Parsed, String> {
    let args: Vec<OsString> = args.into_iter().collect();
    let mut o = Options::default();
    Ok(
        match getopt::each(SPECS, &args, |opt, val| apply(&mut o, opt, val))? {
            ControlFlow::Break(done) => done,
            ControlFlow::Continue(program) => Parsed::Run(Options { program, ..o }),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use privs::Capability;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> Options {
        match p(args) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn options_stop_at_the_program() {
        let o = run(&["--nnp", "--inh-caps=-all", "ls", "--nnp"]);
        assert!(o.nnp);
        assert_eq!(
            o.inh_caps,
            Some(vec![Change {
                add: false,
                cap: None
            }])
        );
        assert_eq!(
            o.program,
            vec![OsString::from("ls"), OsString::from("--nnp")]
        );
        assert_eq!(run(&["--", "-d"]).program, vec![OsString::from("-d")]);
        assert_eq!(run(&["-dd"]).dump, 2);
    }

    #[test]
    fn ids_and_groups() {
        let o = run(&[
            "--reuid",
            "1000",
            "--regid=users",
            "--groups",
            "1,wheel",
            "x",
        ]);
        assert_eq!(o.ruid.as_deref(), Some("1000"));
        assert_eq!(o.euid.as_deref(), Some("1000"));
        assert_eq!(o.egid.as_deref(), Some("users"));
        assert_eq!(o.groups, Some(vec!["1".to_string(), "wheel".to_string()]));
        assert_eq!(
            p(&["--ruid=1", "--reuid=2"]),
            Err("duplicate ruid or euid".into())
        );
        assert_eq!(
            p(&["--clear-groups", "--keep-groups"]),
            Err(
                "mutually exclusive arguments: --clear-groups --keep-groups --init-groups --groups"
                    .into()
            )
        );
        assert_eq!(
            p(&["--keep-groups", "--keep-groups"]),
            Err("duplicate --keep-groups option".into())
        );
        assert!(p(&["--groups", "1,,2"])
            .unwrap_err()
            .starts_with("--groups:"));
    }

    #[test]
    fn capability_lists() {
        let o = run(&[
            "--bounding-set",
            "-all,+chown",
            "--ambient-caps",
            "+cap_10",
            "x",
        ]);
        assert_eq!(
            o.bounding_set.unwrap()[1],
            Change {
                add: true,
                cap: Some(Capability::CAP_CHOWN)
            }
        );
        assert_eq!(
            o.ambient_caps.unwrap()[0].cap,
            Some(Capability::CAP_NET_BIND_SERVICE)
        );
        assert_eq!(
            p(&["--inh-caps", "+nope"]),
            Err("--inh-caps: unknown capability \"nope\" (see --list-caps)".into())
        );
        assert!(p(&["--bounding-set", "chown"])
            .unwrap_err()
            .starts_with("--bounding-set: bad capability string"));
        assert_eq!(
            p(&["--inh-caps=-all", "--inh-caps=-all"]),
            Err("duplicate --inh-caps option".into())
        );
    }

    #[test]
    fn securebits_pdeathsig_ptracer() {
        let o = run(&[
            "--securebits",
            "+noroot,-all",
            "--pdeathsig",
            "TERM",
            "--ptracer",
            "any",
            "x",
        ]);
        assert_eq!(
            o.securebits,
            Some(vec![(true, Secbit::Bit(1)), (false, Secbit::All)])
        );
        assert_eq!(o.pdeathsig, Some(Pdeathsig::Signal(libc::SIGTERM)));
        assert_eq!(o.ptracer, Some(Ptracer::Any));
        assert_eq!(
            run(&["--pdeathsig=clear"]).pdeathsig,
            Some(Pdeathsig::Clear)
        );
        assert_eq!(run(&["--ptracer=7"]).ptracer, Some(Ptracer::Pid(7)));
        assert!(p(&["--securebits", "+all"])
            .unwrap_err()
            .contains("+all securebits"));
        assert!(p(&["--securebits", "+keep_caps"])
            .unwrap_err()
            .contains("keep_caps"));
        assert!(p(&["--securebits", "noroot"])
            .unwrap_err()
            .starts_with("--securebits: bad securebits"));
        assert!(p(&["--pdeathsig", "NOPE"])
            .unwrap_err()
            .starts_with("--pdeathsig: unknown signal"));
        assert!(p(&["--ptracer", "0"])
            .unwrap_err()
            .starts_with("--ptracer: invalid PID"));
    }

    #[test]
    fn landlock() {
        let o = run(&[
            "--landlock-access",
            "fs:read-file,execute",
            "--landlock-rule",
            "path-beneath:read-file:/usr",
            "--landlock-rule=path-beneath::/a:b",
            "x",
        ]);
        assert_eq!(o.landlock_access, 0b101);
        assert_eq!(
            o.landlock_rules[0],
            LandlockRule {
                rights: 0b100,
                path: "/usr".into()
            }
        );
        assert_eq!(
            o.landlock_rules[1],
            LandlockRule {
                rights: LANDLOCK_FS_ALL,
                path: "/a:b".into()
            }
        );
        assert_eq!(
            run(&["--landlock-access=fs"]).landlock_access,
            LANDLOCK_FS_ALL
        );
        assert!(p(&["--landlock-access", "net"])
            .unwrap_err()
            .starts_with("--landlock-access: invalid access"));
        assert!(p(&["--landlock-access", "fs:nope"])
            .unwrap_err()
            .contains("'nope'"));
        assert!(p(&["--landlock-rule", "path-beneath:read-file"])
            .unwrap_err()
            .starts_with("--landlock-rule: invalid rule"));
        assert!(p(&["--landlock-rule", "path-beneath:read-file:"]).is_err());
    }

    #[test]
    fn abbreviations_help_version_unknown() {
        assert!(run(&["--no-new"]).nnp);
        assert!(run(&["--default-c"]).default_container);
        assert!(p(&["--seccomp"])
            .unwrap_err()
            .contains("requires an argument"));
        assert_eq!(run(&["--seccomp=f"]).seccomp, Some("f".into()));
        assert!(p(&["--re"]).unwrap_err().contains("ambiguous"));
        assert_eq!(p(&["-h", "--bogus"]), Ok(Parsed::Help));
        assert_eq!(p(&["-V"]), Ok(Parsed::Version));
        assert_eq!(
            p(&["--xyzzy"]),
            Err("unexpected argument '--xyzzy' found".into())
        );
        // Near a name (by clap's measure, which finds "--groups" near "--bogus" too).
        assert_eq!(
            p(&["--bogus"]),
            Err("unexpected argument '--bogus' found; did you mean '--groups'?".into())
        );
    }

    #[test]
    fn random_input_never_panics() {
        let pieces: &[&[u8]] = &[
            b"-",
            b"--",
            b"-d",
            b"--nnp",
            b"--inh-caps",
            b"+",
            b"-all",
            b",",
            b"chown",
            b"cap_",
            b"9",
            b"--groups",
            b"--landlock-rule",
            b"path-beneath:",
            b":",
            b"fs",
            b"\xff",
            b"=",
            b"--securebits",
            b"noroot",
            b"--pdeathsig",
            b"--reuid",
            b"x",
            b"",
        ];
        for args in testcaps::random_lines(pieces, 0x2545_f491_4f6c_dd1d, 20_000) {
            if let Ok(Parsed::Run(o)) = parse(args) {
                let _ = crate::plan::plan(o);
            }
        }
    }
}
