//! One getopt_long for the drop-ins (unshare-rs, nsenter-rs), because scripts written for
//! util-linux rely on glibc's exact rules and clap cannot express all of them: options end at the
//! first operand (the `+` of util-linux's optstrings), `--` ends them, short options bundle,
//! optional arguments are taken only when attached, and long options may be abbreviated to any
//! unambiguous prefix.
//!
//! The abbreviation rule is glibc's: an exact name wins; otherwise every long option the text
//! prefixes is a candidate; candidates that are the same option (same id and argument rule) count
//! once; one candidate is taken, several are an error naming them all (`option '--ma' is
//! ambiguous; possibilities: '--map-user' '--map-users'`), none is an unknown option.
//!
//! The parser is an iterator, so that a tool acts on each option as util-linux does, in order:
//! `-h --bogus` prints the help, `--bogus -h` is a usage error.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Whether an option takes an argument (getopt's `no_argument`, `required_argument`,
/// `optional_argument`; in the short option string nothing, `:` and `::`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    /// A flag.
    No,
    /// `--opt=VALUE` or `--opt VALUE`; `-oVALUE` or `-o VALUE`.
    Required,
    /// Only when attached: `--opt=VALUE`, `-oVALUE`; `--opt VALUE` leaves VALUE an operand.
    Optional,
}

/// One option of a tool's table.
#[derive(Debug, Clone, Copy)]
pub struct Spec<T> {
    /// Long name without the dashes.
    pub long: &'static str,
    /// Short letter, if any.
    pub short: Option<char>,
    /// Whether the long form takes an argument.
    pub arg: HasArg,
    /// Whether the short form takes one; usually the same as `arg`, but util-linux's unshare
    /// has `--mount[=FILE]` with a plain `-m` (`-mu` is `-m -u` there, and nsenter's `-mu` is
    /// the mount namespace file `u`).
    pub short_arg: HasArg,
    /// What the caller gets back for it.
    pub id: T,
}

impl<T: Copy> Spec<T> {
    /// An option whose short and long forms take the same kind of argument.
    pub const fn new(long: &'static str, short: Option<char>, arg: HasArg, id: T) -> Spec<T> {
        Spec {
            long,
            short,
            arg,
            short_arg: arg,
            id,
        }
    }

    /// The same option with a short form that takes no argument.
    pub const fn short_flag(self) -> Spec<T> {
        Spec {
            short_arg: HasArg::No,
            ..self
        }
    }
}

/// An option as a man page or a shell completion shows it: its names and argument rules,
/// without the tool's own id type (`cargo xtask man` renders the drop-ins' tables from these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Long name without the dashes.
    pub long: &'static str,
    /// Short letter, if any.
    pub short: Option<char>,
    /// Whether the long form takes an argument.
    pub arg: HasArg,
    /// Whether the short form takes one.
    pub short_arg: HasArg,
}

/// The [`Shape`]s of a table, in its order.
pub fn shapes<T>(specs: &[Spec<T>]) -> Vec<Shape> {
    specs
        .iter()
        .map(|s| Shape {
            long: s.long,
            short: s.short,
            arg: s.arg,
            short_arg: s.short_arg,
        })
        .collect()
}

/// Why the command line did not parse; `Display` gives the message without the tool's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetoptError {
    /// An option that is not in the table (`--bogus`, `-x`).
    Unknown(String),
    /// A long option that is not in the table but near one that is (`--forrk`: `fork`), by
    /// [`crate::cli::nearest`].
    Similar(String, &'static str),
    /// A prefix that matches several long options: the text as given, and their names.
    Ambiguous(String, Vec<&'static str>),
    /// A required argument is missing (`-t` at the end).
    MissingArg(String),
    /// `--flag=value` for an option that takes none.
    UnexpectedArg(String),
}

impl std::fmt::Display for GetoptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetoptError::Unknown(o) => write!(f, "unexpected argument '{o}' found"),
            GetoptError::Similar(o, near) => {
                write!(
                    f,
                    "unexpected argument '{o}' found; did you mean '--{near}'?"
                )
            }
            GetoptError::Ambiguous(o, all) => {
                write!(f, "option '{o}' is ambiguous; possibilities:")?;
                for l in all {
                    write!(f, " '--{l}'")?;
                }
                Ok(())
            }
            GetoptError::MissingArg(o) => write!(f, "option '{o}' requires an argument"),
            GetoptError::UnexpectedArg(o) => write!(f, "option '{o}' doesn't allow an argument"),
        }
    }
}

impl std::error::Error for GetoptError {}

/// Finds the long option `name` names, by glibc's rule (see the module documentation). `shown`
/// is the argument as given, for the messages.
pub fn find_long<'a, T: PartialEq>(
    specs: &'a [Spec<T>],
    name: &[u8],
    shown: &str,
) -> Result<&'a Spec<T>, GetoptError> {
    if let Some(s) = specs.iter().find(|s| s.long.as_bytes() == name) {
        return Ok(s);
    }
    let mut found: Option<&Spec<T>> = None;
    let mut ambiguous = false;
    for s in specs.iter().filter(|s| s.long.as_bytes().starts_with(name)) {
        match found {
            None => found = Some(s),
            Some(f) if f.id == s.id && f.arg == s.arg => {}
            Some(_) => ambiguous = true,
        }
    }
    match (found, ambiguous) {
        (None, _) => Err(
            match std::str::from_utf8(name)
                .ok()
                .and_then(|n| crate::cli::nearest(n, specs.iter().map(|s| s.long)))
            {
                Some(near) => GetoptError::Similar(shown.to_string(), near),
                None => GetoptError::Unknown(shown.to_string()),
            },
        ),
        (Some(s), false) => Ok(s),
        (Some(_), true) => Err(GetoptError::Ambiguous(
            shown.to_string(),
            specs
                .iter()
                .filter(|s| s.long.as_bytes().starts_with(name))
                .map(|s| s.long)
                .collect(),
        )),
    }
}

/// An option letter as a message shows it: `-x`, or `-\xff` for a byte that is not ASCII.
fn show_short(c: u8) -> String {
    if c.is_ascii() && !c.is_ascii_control() {
        format!("-{}", c as char)
    } else {
        format!("-\\x{c:02x}")
    }
}

/// The options of a command line, one at a time, each with its argument; after the last,
/// [`Getopt::operands`] are the program and its arguments. An error ends the iteration.
#[derive(Debug)]
pub struct Getopt<'a, T> {
    specs: &'a [Spec<T>],
    args: &'a [OsString],
    /// The argument being read.
    i: usize,
    /// The position in a bundle of short options (0: not inside one).
    j: usize,
    /// Options are over (an operand, `--`, the end, or an error).
    done: bool,
}

impl<'a, T: Copy + PartialEq> Getopt<'a, T> {
    /// Reads `args` (without argv\[0\]) against `specs`.
    pub fn new(specs: &'a [Spec<T>], args: &'a [OsString]) -> Getopt<'a, T> {
        Getopt {
            specs,
            args,
            i: 0,
            j: 0,
            done: false,
        }
    }

    /// The operands: everything from the first non-option (or after `--`). Meaningful once the
    /// iterator has returned None.
    pub fn operands(&self) -> &'a [OsString] {
        self.args.get(self.i..).unwrap_or(&[])
    }

    fn fail(&mut self, e: GetoptError) -> Option<Result<(T, Option<OsString>), GetoptError>> {
        self.done = true;
        Some(Err(e))
    }

    fn long(&mut self, body: &'a [u8]) -> Option<Result<(T, Option<OsString>), GetoptError>> {
        let (name, value) = match body.iter().position(|&b| b == b'=') {
            Some(p) => (&body[..p], Some(&body[p + 1..])),
            None => (body, None),
        };
        let shown = format!("--{}", String::from_utf8_lossy(name));
        let spec = match find_long(self.specs, name, &shown) {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        let full = format!("--{}", spec.long);
        self.i += 1;
        let value = match (spec.arg, value) {
            (HasArg::No, Some(_)) => return self.fail(GetoptError::UnexpectedArg(full)),
            (HasArg::No | HasArg::Optional, None) => None,
            (_, Some(v)) => Some(OsStr::from_bytes(v).to_os_string()),
            (HasArg::Required, None) => match self.args.get(self.i) {
                Some(v) => {
                    self.i += 1;
                    Some(v.clone())
                }
                None => return self.fail(GetoptError::MissingArg(full)),
            },
        };
        Some(Ok((spec.id, value)))
    }

    fn short(&mut self, arg: &'a [u8]) -> Option<Result<(T, Option<OsString>), GetoptError>> {
        let c = *arg.get(self.j)?;
        let Some(spec) = self
            .specs
            .iter()
            .find(|s| s.short.is_some_and(|l| l as u32 == u32::from(c)))
        else {
            return self.fail(GetoptError::Unknown(show_short(c)));
        };
        let rest = &arg[self.j + 1..];
        let end_of_bundle = |g: &mut Self| {
            g.i += 1;
            g.j = 0;
        };
        let value = match spec.short_arg {
            HasArg::No => {
                self.j += 1;
                if rest.is_empty() {
                    end_of_bundle(self);
                }
                None
            }
            HasArg::Optional => {
                end_of_bundle(self);
                (!rest.is_empty()).then(|| OsString::from_vec(rest.to_vec()))
            }
            HasArg::Required => {
                end_of_bundle(self);
                if !rest.is_empty() {
                    Some(OsString::from_vec(rest.to_vec()))
                } else {
                    match self.args.get(self.i) {
                        Some(v) => {
                            self.i += 1;
                            Some(v.clone())
                        }
                        None => return self.fail(GetoptError::MissingArg(show_short(c))),
                    }
                }
            }
        };
        Some(Ok((spec.id, value)))
    }
}

impl<'a, T: Copy + PartialEq> Iterator for Getopt<'a, T> {
    type Item = Result<(T, Option<OsString>), GetoptError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let args = self.args;
        let Some(arg) = args.get(self.i).map(|a| a.as_bytes()) else {
            self.done = true;
            return None;
        };
        if self.j > 0 {
            return self.short(arg);
        }
        if arg == b"--" {
            self.i += 1;
            self.done = true;
            return None;
        }
        if let Some(body) = arg.strip_prefix(b"--") {
            return self.long(body);
        }
        if arg.len() < 2 || arg[0] != b'-' {
            // The first operand (a lone "-" included) ends the options.
            self.done = true;
            return None;
        }
        self.j = 1;
        self.short(arg)
    }
}

/// The options found, in order, each with its argument, and the operands.
pub type Parsed<T> = (Vec<(T, Option<OsString>)>, Vec<OsString>);

/// Reads the whole line at once: every option, then the operands; the first error is returned.
pub fn parse<T: Copy + PartialEq>(
    specs: &[Spec<T>],
    args: &[OsString],
) -> Result<Parsed<T>, GetoptError> {
    let mut g = Getopt::new(specs, args);
    let found = g.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok((found, g.operands().to_vec()))
}

/// Reads `args` with `specs` and hands each option to `act` as it is read, in order, the way
/// util-linux acts on an option when it reads it (`-h --bogus` is the help, not an error). `act`
/// may end the reading with an answer (`Some`: the help, the version), which is then
/// `Break(answer)`; otherwise the line's operands are `Continue(operands)`. A getopt error or an
/// `Err` from `act` is the usage error's text, without the tool's name.
pub fn each<T: Copy + PartialEq, R>(
    specs: &[Spec<T>],
    args: &[OsString],
    mut act: impl FnMut(T, Option<OsString>) -> Result<Option<R>, String>,
) -> Result<std::ops::ControlFlow<R, Vec<OsString>>, String> {
    let mut g = Getopt::new(specs, args);
    for item in g.by_ref() {
        let (opt, val) = item.map_err(|e| e.to_string())?;
        if let Some(answer) = act(opt, val)? {
            return Ok(std::ops::ControlFlow::Break(answer));
        }
    }
    Ok(std::ops::ControlFlow::Continue(g.operands().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: [Spec<u8>; 9] = [
        Spec::new("mount", Some('m'), HasArg::Optional, 1).short_flag(),
        Spec::new("fork", Some('f'), HasArg::No, 2),
        Spec::new("root", Some('R'), HasArg::Required, 3),
        Spec::new("map-user", None, HasArg::Required, 4),
        Spec::new("map-users", None, HasArg::Required, 5),
        Spec::new("mount-proc", None, HasArg::Optional, 6),
        Spec::new("net", Some('n'), HasArg::Optional, 7),
        // An alias of --fork: glibc counts candidates that are the same option once.
        Spec::new("fork-too", None, HasArg::No, 2),
        Spec::new("wd", Some('w'), HasArg::Optional, 8),
    ];

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn p(v: &[&str]) -> Result<Parsed<u8>, GetoptError> {
        parse(&T, &os(v))
    }

    type Flat = (Vec<(u8, Option<String>)>, Vec<String>);

    fn ids(v: &[&str]) -> Flat {
        let (o, r) = p(v).unwrap_or_else(|e| panic!("{v:?}: {e}"));
        (
            o.into_iter()
                .map(|(i, v)| (i, v.map(|s| s.to_string_lossy().into_owned())))
                .collect(),
            r.into_iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect(),
        )
    }

    #[test]
    fn bundles_and_operands() {
        assert_eq!(
            ids(&["-mf", "true", "-m"]),
            (vec![(1, None), (2, None)], vec!["true".into(), "-m".into()])
        );
        assert_eq!(
            ids(&["-m", "--", "-f"]),
            (vec![(1, None)], vec!["-f".into()])
        );
        assert_eq!(ids(&["-", "x"]), (vec![], vec!["-".into(), "x".into()]));
        assert_eq!(ids(&[]), (vec![], vec![]));
        assert_eq!(ids(&["--"]), (vec![], vec![]));
        assert_eq!(ids(&["--", "--"]), (vec![], vec!["--".into()]));
        assert_eq!(ids(&["-f", ""]), (vec![(2, None)], vec!["".into()]));
    }

    #[test]
    fn required_arguments() {
        assert_eq!(ids(&["-R/x"]).0, vec![(3, Some("/x".into()))]);
        assert_eq!(
            ids(&["-fR", "/x", "y"]),
            (vec![(2, None), (3, Some("/x".into()))], vec!["y".into()])
        );
        assert_eq!(ids(&["-fR/x", "y"]).1, vec!["y".to_string()]);
        assert_eq!(ids(&["--root", "/x"]).0, vec![(3, Some("/x".into()))]);
        assert_eq!(ids(&["--root=/x"]).0, vec![(3, Some("/x".into()))]);
        assert_eq!(ids(&["--root="]).0, vec![(3, Some("".into()))]);
        // The next argument is taken even when it looks like an option.
        assert_eq!(ids(&["-R", "-f"]).0, vec![(3, Some("-f".into()))]);
        assert_eq!(
            ids(&["--root", "--"]),
            (vec![(3, Some("--".into()))], vec![])
        );
    }

    #[test]
    fn optional_arguments_only_when_attached() {
        assert_eq!(
            ids(&["--mount-proc", "/p"]),
            (vec![(6, None)], vec!["/p".into()])
        );
        assert_eq!(ids(&["--mount-proc=/p"]).0, vec![(6, Some("/p".into()))]);
        assert_eq!(ids(&["--mount-proc="]).0, vec![(6, Some("".into()))]);
        // A short letter with an optional argument takes the rest of its bundle...
        assert_eq!(ids(&["-nfoo"]).0, vec![(7, Some("foo".into()))]);
        assert_eq!(ids(&["-n=x"]).0, vec![(7, Some("=x".into()))]);
        assert_eq!(ids(&["-fn"]).0, vec![(2, None), (7, None)]);
        assert_eq!(ids(&["-n", "/x"]), (vec![(7, None)], vec!["/x".into()]));
        // ... unless the table makes the short form a flag (unshare's -m).
        assert_eq!(ids(&["-mf"]).0, vec![(1, None), (2, None)]);
        assert_eq!(p(&["-m/p"]), Err(GetoptError::Unknown("-/".into())));
        assert_eq!(ids(&["--mount=/f"]).0, vec![(1, Some("/f".into()))]);
    }

    #[test]
    fn long_prefixes_follow_glibc() {
        assert_eq!(ids(&["--for"]).0, vec![(2, None)]);
        assert_eq!(ids(&["--ro=/a"]).0, vec![(3, Some("/a".into()))]);
        assert_eq!(ids(&["--ro", "/a"]).0, vec![(3, Some("/a".into()))]);
        // An exact name wins over a longer one it prefixes.
        assert_eq!(ids(&["--map-user=1"]).0, vec![(4, Some("1".into()))]);
        assert_eq!(ids(&["--map-users=1"]).0, vec![(5, Some("1".into()))]);
        assert_eq!(ids(&["--mount"]).0, vec![(1, None)]);
        // Two names for one option are not ambiguous.
        assert_eq!(ids(&["--fork-t"]).0, vec![(2, None)]);
        assert_eq!(ids(&["--f"]).0, vec![(2, None)]);
        assert_eq!(
            p(&["--map"]),
            Err(GetoptError::Ambiguous(
                "--map".into(),
                vec!["map-user", "map-users"]
            ))
        );
        assert_eq!(
            p(&["--mou=/x"]).map_err(|e| e.to_string()),
            Err("option '--mou' is ambiguous; possibilities: '--mount' '--mount-proc'".into())
        );
        // glibc: an empty name is a prefix of every option.
        assert!(matches!(p(&["--=x"]), Err(GetoptError::Ambiguous(..))));
    }

    #[test]
    fn errors() {
        assert_eq!(p(&["--bogus"]), Err(GetoptError::Unknown("--bogus".into())));
        // A typo of a long option names the nearest one.
        assert_eq!(
            p(&["--frok"]),
            Err(GetoptError::Similar("--frok".into(), "fork"))
        );
        assert_eq!(
            p(&["--mount-porc=/p"]).map_err(|e| e.to_string()),
            Err("unexpected argument '--mount-porc' found; did you mean '--mount-proc'?".into())
        );
        assert_eq!(p(&["--xyzzy"]), Err(GetoptError::Unknown("--xyzzy".into())));
        assert_eq!(p(&["-fZ"]), Err(GetoptError::Unknown("-Z".into())));
        assert_eq!(p(&["-R"]), Err(GetoptError::MissingArg("-R".into())));
        assert_eq!(p(&["-fR"]), Err(GetoptError::MissingArg("-R".into())));
        assert_eq!(p(&["--ro"]), Err(GetoptError::MissingArg("--root".into())));
        assert_eq!(
            p(&["--fo=1"]),
            Err(GetoptError::UnexpectedArg("--fork".into()))
        );
        assert_eq!(
            GetoptError::Unknown("--x".into()).to_string(),
            "unexpected argument '--x' found"
        );
        assert_eq!(
            GetoptError::MissingArg("-t".into()).to_string(),
            "option '-t' requires an argument"
        );
        // Non-UTF-8 bytes never panic.
        let odd = vec![
            OsString::from_vec(vec![b'-', 0xff]),
            OsString::from_vec(vec![b'-', b'-', 0xfe]),
        ];
        assert_eq!(parse(&T, &odd), Err(GetoptError::Unknown("-\\xff".into())));
        assert!(parse(&T, &odd[1..]).is_err());
    }

    #[test]
    fn iteration_stops_at_the_first_error_and_keeps_order() {
        let args = os(&["-f", "--bogus", "-m"]);
        let mut g = Getopt::new(&T, &args);
        assert_eq!(g.next(), Some(Ok((2, None))));
        assert!(matches!(g.next(), Some(Err(GetoptError::Unknown(_)))));
        assert_eq!(g.next(), None);
        let args = os(&["-fm", "--net=/n", "prog", "-f"]);
        let mut g = Getopt::new(&T, &args);
        let got: Vec<_> = g.by_ref().collect();
        assert_eq!(got.len(), 3);
        assert_eq!(g.operands(), &os(&["prog", "-f"])[..]);
    }

    #[test]
    fn random_lines_never_panic() {
        let pieces: &[&[u8]] = &[
            b"-",
            b"--",
            b"-m",
            b"f",
            b"R",
            b"=",
            b"--m",
            b"--map",
            b"--root",
            b"\xff",
            b"",
            b"-n",
            b"x",
            b"--mount-proc=",
            b"--f",
        ];
        for args in testcaps::random_lines(pieces, 0x9e37_79b9_7f4a_7c15, 20_000) {
            if let Ok((opts, rest)) = parse(&T, &args) {
                // The operands are the tail of the line, and each option came from an argument.
                assert!(args.ends_with(&rest), "{args:?} {rest:?}");
                let option_bytes: usize = args[..args.len() - rest.len()]
                    .iter()
                    .map(|a| a.len())
                    .sum();
                assert!(opts.len() <= option_bytes, "{args:?}");
            }
        }
    }
}
