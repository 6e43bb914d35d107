//! The command line as util-linux getopt_long reads it, so scripts written for `nsenter` parse the
//! same way: options stop at the first non-option, `--` ends them, short options bundle, optional
//! arguments are taken only when attached (`-mFILE`, `--mount=FILE`), long options may be
//! abbreviated to any unambiguous prefix.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    No,
    Required,
    /// Only when attached: `-mFILE`, `--mount=FILE`.
    Optional,
}

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

struct Spec {
    long: &'static str,
    short: Option<char>,
    arg: Arg,
    opt: Opt,
}

const fn spec(long: &'static str, short: Option<char>, arg: Arg, opt: Opt) -> Spec {
    Spec {
        long,
        short,
        arg,
        opt,
    }
}

/// The option table. Namespace options come from `conventions::ns::ALL` (see [`ns_spec`]).
const SPECS: &[Spec] = &[
    spec("all", Some('a'), Arg::No, Opt::All),
    spec("help", Some('h'), Arg::No, Opt::Help),
    spec("version", Some('V'), Arg::No, Opt::Version),
    spec("target", Some('t'), Arg::Required, Opt::Target),
    spec("setuid", Some('S'), Arg::Required, Opt::Setuid),
    spec("setgid", Some('G'), Arg::Required, Opt::Setgid),
    spec(
        "preserve-credentials",
        None,
        Arg::No,
        Opt::PreserveCredentials,
    ),
    spec("keep-caps", None, Arg::No, Opt::KeepCaps),
    spec("root", Some('r'), Arg::Optional, Opt::Root),
    spec("wd", Some('w'), Arg::Optional, Opt::Wd),
    spec("wdns", Some('W'), Arg::Required, Opt::Wdns),
    spec("env", Some('e'), Arg::No, Opt::Env),
    spec("no-fork", Some('F'), Arg::No, Opt::NoFork),
    spec("follow-context", Some('Z'), Arg::No, Opt::FollowContext),
    spec("join-cgroup", Some('c'), Arg::No, Opt::JoinCgroup),
    spec("net-socket", Some('N'), Arg::Required, Opt::NetSocket),
    spec("user-parent", None, Arg::No, Opt::UserParent),
    spec("ls", None, Arg::No, Opt::Ls),
    spec("json", None, Arg::No, Opt::Json),
    spec("mount-proc", None, Arg::No, Opt::MountProc),
];

fn ns_spec(kind: &conventions::ns::NsKind) -> Spec {
    spec(
        kind.long,
        Some(kind.short),
        Arg::Optional,
        Opt::Ns(kind.long),
    )
}

fn all_specs() -> Vec<Spec> {
    let mut v: Vec<Spec> = conventions::ns::ALL.iter().map(ns_spec).collect();
    v.extend(SPECS.iter().map(|s| spec(s.long, s.short, s.arg, s.opt)));
    v
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
    /// `-W`.
    pub wdns: Option<OsString>,
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
        Opt::Wdns => o.wdns = val,
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

fn is_extra(opt: Opt) -> bool {
    matches!(opt, Opt::Ls | Opt::Json | Opt::MountProc)
}

fn find_long<'a>(specs: &'a [Spec], name: &str) -> Result<&'a Spec, String> {
    if let Some(s) = specs.iter().find(|s| s.long == name) {
        return Ok(s);
    }
    // Our own options (beyond util-linux) match only when spelled out, so that every
    // abbreviation util-linux accepts (`--m` for `--mount`) still means the same.
    let matches: Vec<&Spec> = specs
        .iter()
        .filter(|s| s.long.starts_with(name) && !is_extra(s.opt))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("unexpected argument '--{name}' found")),
        many => {
            let names: Vec<String> = many.iter().map(|s| format!("'--{}'", s.long)).collect();
            Err(format!(
                "option '--{name}' is ambiguous; possibilities: {}",
                names.join(" ")
            ))
        }
    }
}

/// Parses the arguments after argv\[0\]. An `Err` is a usage error message without the tool name.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Parsed, String> {
    let specs = all_specs();
    let mut o = Options::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            break;
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            // The first non-option ends the options; it and the rest are the program.
            o.program.push(arg);
            break;
        }
        if let Some(body) = bytes.strip_prefix(b"--") {
            let (name, val) = match body.iter().position(|&b| b == b'=') {
                Some(i) => (&body[..i], Some(OsString::from_vec(body[i + 1..].to_vec()))),
                None => (body, None),
            };
            let name = String::from_utf8_lossy(name).into_owned();
            let s = find_long(&specs, &name)?;
            let val = match (s.arg, val) {
                (Arg::No, Some(_)) => {
                    return Err(format!("option '--{}' doesn't allow an argument", s.long))
                }
                (Arg::Required, None) => match it.next() {
                    Some(v) => Some(v),
                    None => return Err(format!("option '--{}' requires an argument", s.long)),
                },
                (_, v) => v,
            };
            if let Some(done) = apply(&mut o, s.opt, val)? {
                return Ok(done);
            }
            continue;
        }
        // A bundle of short options: -mu, -t123, -mFILE.
        let mut i = 1;
        while i < bytes.len() {
            let c = bytes[i] as char;
            let Some(s) = specs.iter().find(|s| s.short == Some(c)) else {
                let shown = if bytes[i].is_ascii() {
                    c.to_string()
                } else {
                    String::from_utf8_lossy(&bytes[i..]).into_owned()
                };
                return Err(format!("unexpected argument '-{shown}' found"));
            };
            let rest = &bytes[i + 1..];
            let val = match s.arg {
                Arg::No => None,
                Arg::Optional if rest.is_empty() => None,
                Arg::Optional => Some(OsString::from_vec(rest.to_vec())),
                Arg::Required if !rest.is_empty() => Some(OsString::from_vec(rest.to_vec())),
                Arg::Required => match it.next() {
                    Some(v) => Some(v),
                    None => return Err(format!("option '-{c}' requires an argument")),
                },
            };
            if let Some(done) = apply(&mut o, s.opt, val.clone())? {
                return Ok(done);
            }
            if val.is_some() {
                break;
            }
            i += 1;
        }
    }
    o.program.extend(it);
    Ok(Parsed::Run(o))
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
        assert_eq!(
            p(&["--wdns"]),
            Err("option '--wdns' requires an argument".to_string())
        );
    }

    #[test]
    fn long_options_abbreviate() {
        let o = run(&["--mo", "--targ=1", "--preserve", "--keep"]);
        assert_eq!(o.namespaces, vec![("mount", Source::Target)]);
        assert!(o.preserve_credentials && o.keep_caps);
        assert_eq!(run(&["--m"]).namespaces, vec![("mount", Source::Target)]);
        let e = p(&["--p"]).unwrap_err();
        assert!(e.starts_with("option '--p' is ambiguous"), "{e}");
        assert!(p(&["--mount-p"]).is_err());
        assert!(p(&["--l"]).is_err());
        assert!(run(&["--mount-proc"]).mount_proc);
        assert_eq!(
            p(&["--all=x"]),
            Err("option '--all' doesn't allow an argument".to_string())
        );
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
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let n = (next() % 6) as usize;
            let args: Vec<OsString> = (0..n)
                .map(|_| {
                    let k = 1 + (next() % 3) as usize;
                    let mut a = Vec::new();
                    for _ in 0..k {
                        a.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
                    }
                    OsString::from_vec(a)
                })
                .collect();
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
