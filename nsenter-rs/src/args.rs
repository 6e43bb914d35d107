//! The command line as util-linux getopt_long reads it, so scripts written for `nsenter` parse the
//! same way: options stop at the first non-option, `--` ends them, short options bundle, optional
//! arguments are taken only when attached (`-mFILE`, `--mount=FILE`), long options may be
//! abbreviated to any unambiguous prefix.

use conventions::getopt::{self, HasArg, Spec};
use std::ffi::{OsStr, OsString};
use std::ops::ControlFlow;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Every option, identified by its long name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    All,
    Help,
    Version,
    Target,
    /// A namespace kind, by its long option name (`mount`, `uts`, ...).
    Ns(&'static str),
    Setuid,
    Setgid,
    PreserveCredentials,
    KeepCaps,
    Root,
    Wd,
    Wdns,
    Env,
    NoFork,
    FollowContext,
    JoinCgroup,
    NetSocket,
    UserParent,
    Ls,
    Json,
    MountProc,
}

const fn spec(long: &'static str, short: Option<char>, arg: HasArg, opt: Opt) -> Spec<Opt> {
    Spec::new(long, short, arg, opt)
}

/// The option table. Namespace options come from `conventions::ns::ALL` (see [`all_specs`]).
/// `-W` takes an optional argument, as in util-linux since 2.40 (2.38's needs one).
const SPECS: &[Spec<Opt>] = &[
    spec("all", Some('a'), HasArg::No, Opt::All),
    spec("help", Some('h'), HasArg::No, Opt::Help),
    spec("version", Some('V'), HasArg::No, Opt::Version),
    spec("target", Some('t'), HasArg::Required, Opt::Target),
    spec("setuid", Some('S'), HasArg::Required, Opt::Setuid),
    spec("setgid", Some('G'), HasArg::Required, Opt::Setgid),
    spec(
        "preserve-credentials",
        None,
        HasArg::No,
        Opt::PreserveCredentials,
    ),
    spec("keep-caps", None, HasArg::No, Opt::KeepCaps),
    spec("root", Some('r'), HasArg::Optional, Opt::Root),
    spec("wd", Some('w'), HasArg::Optional, Opt::Wd),
    spec("wdns", Some('W'), HasArg::Optional, Opt::Wdns),
    spec("env", Some('e'), HasArg::No, Opt::Env),
    spec("no-fork", Some('F'), HasArg::No, Opt::NoFork),
    spec("follow-context", Some('Z'), HasArg::No, Opt::FollowContext),
    spec("join-cgroup", Some('c'), HasArg::No, Opt::JoinCgroup),
    spec("net-socket", Some('N'), HasArg::Required, Opt::NetSocket),
    spec("user-parent", None, HasArg::No, Opt::UserParent),
    spec("ls", None, HasArg::No, Opt::Ls),
    spec("json", None, HasArg::No, Opt::Json),
    spec("mount-proc", None, HasArg::No, Opt::MountProc),
];

/// The whole table: a namespace option per row of `conventions::ns::ALL` (`-m[FILE]`,
/// `--mount[=FILE]`), then [`SPECS`].
fn all_specs() -> Vec<Spec<Opt>> {
    let mut v: Vec<Spec<Opt>> = conventions::ns::ALL
        .iter()
        .map(|k| spec(k.long, Some(k.short), HasArg::Optional, Opt::Ns(k.long)))
        .collect();
    v.extend_from_slice(SPECS);
    v
}

/// The option table as man pages and completions show it (`cargo xtask man`).
pub fn option_table() -> Vec<getopt::Shape> {
    getopt::shapes(&all_specs())
}

/// A user or group id as `-S`/`-G` take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSpec {
    /// A number.
    Id(u32),
    /// `follow`: the target's id.
    Follow,
}

/// Where a namespace, root or working directory comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The target process (`-m` without a file).
    Target,
    /// A file given to the option (`--net=/run/netns/x`, `--root=/dir`).
    File(OsString),
}

/// `-t PID` or `-t PID:INODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetSpec {
    /// The process id.
    pub pid: i32,
    /// The pidfs inode that must match, for reuse-safe addressing.
    pub inode: Option<u64>,
}

/// Everything the command line said, before any check between options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `-t`.
    pub target: Option<TargetSpec>,
    /// `-a`.
    pub all: bool,
    /// Namespace options in the order given, by long name; a later one for the same kind wins.
    pub namespaces: Vec<(&'static str, Source)>,
    /// `-S`.
    pub uid: Option<IdSpec>,
    /// `-G`.
    pub gid: Option<IdSpec>,
    /// `--preserve-credentials`.
    pub preserve_credentials: bool,
    /// `--keep-caps`.
    pub keep_caps: bool,
    /// `-r`.
    pub root: Option<Source>,
    /// `-w`.
    pub wd: Option<Source>,
    /// `-W`'s directory.
    pub wdns: Option<OsString>,
    /// Whether `-W` was given at all (it excludes `-w` even without a directory).
    pub wdns_given: bool,
    /// `-e`.
    pub env: bool,
    /// `-F`.
    pub no_fork: bool,
    /// `-Z`.
    pub follow_context: bool,
    /// `-c`.
    pub join_cgroup: bool,
    /// `-N`.
    pub net_socket: Option<i32>,
    /// `--user-parent`.
    pub user_parent: bool,
    /// `--ls`.
    pub ls: bool,
    /// `--json`.
    pub json: bool,
    /// `--mount-proc`.
    pub mount_proc: bool,
    /// The program and its arguments.
    pub program: Vec<OsString>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Run with these options.
    Run(Options),
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

/// Parses `-t`'s argument: `PID` or `PID:INODE`, PID > 0.
pub fn parse_target(s: &str) -> Result<TargetSpec, String> {
    let (pid_s, inode_s) = match s.split_once(':') {
        Some((p, i)) => (p, Some(i)),
        None => (s, None),
    };
    let pid = match pid_s.parse::<i32>() {
        Ok(p) if p > 0 => p,
        Ok(_) => return Err(format!("invalid target pid '{pid_s}': must be 1 or more")),
        Err(_) => return Err(format!("failed to parse pid: '{s}'")),
    };
    let inode = match inode_s {
        None => None,
        Some(i) => match i.parse::<u64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(format!(
                    "failed to parse pidfs inode in '{s}' (expected PID:INODE, INODE a positive number)"
                ))
            }
        },
    };
    Ok(TargetSpec { pid, inode })
}

fn parse_id(s: &str, what: &str) -> Result<IdSpec, String> {
    if s == "follow" {
        return Ok(IdSpec::Follow);
    }
    s.parse::<u32>()
        .map(IdSpec::Id)
        .map_err(|_| format!("failed to parse {what}: '{s}' (a number or 'follow')"))
}

fn text(arg: &OsStr) -> String {
    arg.to_string_lossy().into_owned()
}

fn apply(o: &mut Options, opt: Opt, val: Option<OsString>) -> Result<Option<Parsed>, String> {
    let text_val = val.as_deref().map(text).unwrap_or_default();
    match opt {
        Opt::Help => return Ok(Some(Parsed::Help)),
        Opt::Version => return Ok(Some(Parsed::Version)),
        Opt::All => o.all = true,
        Opt::Target => o.target = Some(parse_target(&text_val)?),
        Opt::Ns(long) => {
            let src = val.map(Source::File).unwrap_or(Source::Target);
            o.namespaces.retain(|(l, _)| *l != long);
            o.namespaces.push((long, src));
        }
        Opt::Setuid => o.uid = Some(parse_id(&text_val, "uid")?),
        Opt::Setgid => o.gid = Some(parse_id(&text_val, "gid")?),
        Opt::PreserveCredentials => o.preserve_credentials = true,
        Opt::KeepCaps => o.keep_caps = true,
        Opt::Root => o.root = Some(val.map(Source::File).unwrap_or(Source::Target)),
        Opt::Wd => o.wd = Some(val.map(Source::File).unwrap_or(Source::Target)),
        Opt::Wdns => {
            // util-linux drops one leading '=' (`-W=/srv`); `-W` alone sets nothing.
            o.wdns_given = true;
            o.wdns = val.map(|v| match v.as_bytes().strip_prefix(b"=") {
                Some(rest) => OsString::from_vec(rest.to_vec()),
                None => v,
            });
        }
        Opt::Env => o.env = true,
        Opt::NoFork => o.no_fork = true,
        Opt::FollowContext => o.follow_context = true,
        Opt::JoinCgroup => o.join_cgroup = true,
        Opt::NetSocket => match text_val.parse::<i32>() {
            Ok(fd) if fd >= 0 => o.net_socket = Some(fd),
            _ => return Err(format!("failed to parse file descriptor: '{text_val}'")),
        },
        Opt::UserParent => o.user_parent = true,
        Opt::Ls => o.ls = true,
        Opt::Json => o.json = true,
        Opt::MountProc => o.mount_proc = true,
    }
    Ok(None)
}

/// Parses the arguments after argv\[0\]. An `Err` is a usage error message without the tool name.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Parsed, String> {
    let specs = all_specs();
    let args: Vec<OsString> = args.into_iter().collect();
    let mut o = Options::default();
    Ok(
        match getopt::each(&specs, &args, |opt, val| apply(&mut o, opt, val))? {
            ControlFlow::Break(done) => done,
            ControlFlow::Continue(program) => Parsed::Run(Options { program, ..o }),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> Options {
        match p(args) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_stop_at_the_first_non_option() {
        let o = run(&["-t", "5", "-n", "ip", "-n", "link"]);
        assert_eq!(
            o.target,
            Some(TargetSpec {
                pid: 5,
                inode: None
            })
        );
        assert_eq!(o.namespaces, vec![("net", Source::Target)]);
        assert_eq!(o.program, os(&["ip", "-n", "link"]));
        let o = run(&["-n", "--", "-x", "--y"]);
        assert_eq!(o.program, os(&["-x", "--y"]));
        let o = run(&["-", "a"]);
        assert_eq!(o.program, os(&["-", "a"]));
        assert!(run(&[]).program.is_empty());
    }

    #[test]
    fn optional_arguments_only_when_attached() {
        let o = run(&["-m", "/x"]);
        assert_eq!(o.namespaces, vec![("mount", Source::Target)]);
        assert_eq!(o.program, os(&["/x"]));
        let o = run(&["-m/x", "--net=/run/netns/a", "-r/", "--wd=/tmp"]);
        assert_eq!(
            o.namespaces,
            vec![
                ("mount", Source::File("/x".into())),
                ("net", Source::File("/run/netns/a".into()))
            ]
        );
        assert_eq!(o.root, Some(Source::File("/".into())));
        assert_eq!(o.wd, Some(Source::File("/tmp".into())));
        // getopt gives "=x" to -m, as util-linux does.
        let o = run(&["-m=x"]);
        assert_eq!(o.namespaces, vec![("mount", Source::File("=x".into()))]);
        // A bundle after an optional-argument option is its argument: -mu is mount file "u".
        let o = run(&["-mu"]);
        assert_eq!(o.namespaces, vec![("mount", Source::File("u".into()))]);
        let o = run(&["-Fu"]);
        assert!(o.no_fork);
        assert_eq!(o.namespaces, vec![("uts", Source::Target)]);
    }

    #[test]
    fn required_arguments_attached_or_separate() {
        assert_eq!(
            run(&["-t7"]).target,
            Some(TargetSpec {
                pid: 7,
                inode: None
            })
        );
        assert_eq!(
            run(&["--target", "7:99"]).target,
            Some(TargetSpec {
                pid: 7,
                inode: Some(99)
            })
        );
        assert_eq!(
            run(&["--target=8"]).target,
            Some(TargetSpec {
                pid: 8,
                inode: None
            })
        );
        let o = run(&["-at", "3", "-S", "follow", "-G0", "-W/srv", "-N", "4"]);
        assert!(o.all);
        assert_eq!(o.target.map(|t| t.pid), Some(3));
        assert_eq!(o.uid, Some(IdSpec::Follow));
        assert_eq!(o.gid, Some(IdSpec::Id(0)));
        assert_eq!(o.wdns, Some("/srv".into()));
        assert_eq!(o.net_socket, Some(4));
        assert_eq!(
            p(&["-t"]),
            Err("option '-t' requires an argument".to_string())
        );
    }

    #[test]
    fn long_options_abbreviate() {
        // One rule for every option, ours included (glibc's, in conventions::getopt).
        let o = run(&[
            "--ut=/m",
            "--targ=1",
            "--preserve",
            "--keep",
            "--mount-p",
            "--l",
        ]);
        assert_eq!(o.namespaces, vec![("uts", Source::File("/m".into()))]);
        assert!(o.preserve_credentials && o.keep_caps && o.mount_proc && o.ls);
        assert_eq!(
            run(&["--mount"]).namespaces,
            vec![("mount", Source::Target)]
        );
        assert_eq!(
            p(&["--mo"]),
            Err("option '--mo' is ambiguous; possibilities: '--mount' '--mount-proc'".to_string())
        );
        let e = p(&["--p"]).unwrap_err();
        assert!(e.starts_with("option '--p' is ambiguous"), "{e}");
        assert!(run(&["--js"]).json);
        assert!(p(&["--j"])
            .unwrap_err()
            .contains("'--join-cgroup' '--json'"));
        assert_eq!(
            p(&["--all=x"]),
            Err("option '--all' doesn't allow an argument".to_string())
        );
    }

    #[test]
    fn wdns_takes_an_optional_argument() {
        // util-linux since 2.40: -W[DIR], one leading '=' dropped; -W alone sets nothing.
        let o = run(&["-W", "/srv"]);
        assert_eq!((o.wdns, o.wdns_given), (None, true));
        assert_eq!(o.program, os(&["/srv"]));
        assert_eq!(run(&["-W/srv"]).wdns, Some("/srv".into()));
        assert_eq!(run(&["-W=/srv"]).wdns, Some("/srv".into()));
        assert_eq!(run(&["--wdns=/srv"]).wdns, Some("/srv".into()));
        assert_eq!(run(&["--wdns"]).wdns, None);
        assert!(!run(&["-w"]).wdns_given);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            p(&["--no-such-option"]),
            Err("unexpected argument '--no-such-option' found".to_string())
        );
        assert_eq!(
            p(&["-x"]),
            Err("unexpected argument '-x' found".to_string())
        );
        assert_eq!(
            p(&["-t", "abc"]),
            Err("failed to parse pid: 'abc'".to_string())
        );
        assert!(p(&["-t", "0"]).unwrap_err().contains("must be 1 or more"));
        assert!(p(&["-t", "-3"]).unwrap_err().contains("must be 1 or more"));
        assert!(p(&["-t", "1:x"]).unwrap_err().contains("pidfs inode"));
        assert!(p(&["-t", "1:"]).unwrap_err().contains("pidfs inode"));
        assert!(p(&["-t", "1:0"]).unwrap_err().contains("pidfs inode"));
        assert!(p(&["-t", ":5"])
            .unwrap_err()
            .contains("failed to parse pid"));
        assert!(p(&["-S", "bob"])
            .unwrap_err()
            .contains("failed to parse uid"));
        assert!(p(&["-N", "-1"]).unwrap_err().contains("file descriptor"));
    }

    #[test]
    fn help_and_version_act_where_they_appear() {
        assert_eq!(p(&["-h", "-x"]), Ok(Parsed::Help));
        assert_eq!(p(&["-V"]), Ok(Parsed::Version));
        assert!(p(&["-x", "-h"]).is_err());
        // After the program, -h belongs to the program.
        assert_eq!(run(&["sh", "-h"]).program, os(&["sh", "-h"]));
    }

    #[test]
    fn random_input_never_panics() {
        // A small deterministic fuzz: arguments built from option fragments and junk bytes.
        let pieces: &[&[u8]] = &[
            b"-",
            b"--",
            b"-t",
            b"1",
            b":",
            b"=",
            b"m",
            b"a",
            b"-a",
            b"--mount",
            b"--ls",
            b"--json",
            b"-S",
            b"follow",
            b"-W",
            b"-w",
            b"-N",
            b"\xff",
            b"0",
            b"99999999999",
            b"--t",
            b"-Z",
            b"--mount-proc",
            b"-p",
            b"-F",
            b"/x",
            b"--user-parent",
            b"-r",
            b"",
            b"-mu",
        ];
        for args in testcaps::random_lines(pieces, 0x9e37_79b9_7f4a_7c15, 20_000) {
            if let Ok(Parsed::Run(o)) = parse(args) {
                let _ = crate::plan::plan(o);
            }
        }
    }

    #[test]
    fn later_namespace_option_wins() {
        let o = run(&["--net=/a", "-n"]);
        assert_eq!(o.namespaces, vec![("net", Source::Target)]);
    }
}
