//! A small getopt_long, because scripts written for util-linux rely on its exact rules (options end
//! at the first operand, bundled short options, optional arguments only when attached, unique
//! prefixes of long options) and clap cannot express all of them.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    /// A flag.
    No,
    /// `--opt=VALUE`, `--opt VALUE`, `-oVALUE` or `-o VALUE`.
    Required,
    /// Only attached to the long form: `--opt=VALUE`; the short form is a flag.
    Optional,
}

/// One option of the table.
#[derive(Debug, Clone, Copy)]
pub struct Spec<T> {
    /// Long name without the dashes.
    pub long: &'static str,
    /// Short letter, if any.
    pub short: Option<char>,
    /// Whether it takes an argument.
    pub arg: HasArg,
    /// What the caller gets back for it.
    pub id: T,
}

/// Why the command line did not parse; `Display` gives the message without the tool's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetoptError {
    /// An option that is not in the table.
    Unknown(String),
    /// A prefix that matches several long options.
    Ambiguous(String, Vec<&'static str>),
    /// A required argument is missing.
    MissingArg(String),
    /// `--flag=value` for an option that takes none.
    UnexpectedArg(String),
}

impl std::fmt::Display for GetoptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetoptError::Unknown(o) => write!(f, "unexpected argument '{o}' found"),
            GetoptError::Ambiguous(o, all) => write!(
                f,
                "option '{o}' is ambiguous; possibilities: {}",
                all.iter()
                    .map(|l| format!("'--{l}'"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            GetoptError::MissingArg(o) => write!(f, "option '{o}' requires an argument"),
            GetoptError::UnexpectedArg(o) => write!(f, "option '{o}' doesn't allow an argument"),
        }
    }
}

/// The options found, in order, each with its argument, and the operands (program and arguments).
pub type Parsed<T> = (Vec<(T, Option<OsString>)>, Vec<OsString>);

fn find_long<'a, T>(specs: &'a [Spec<T>], name: &[u8]) -> Result<&'a Spec<T>, GetoptError> {
    if let Some(s) = specs.iter().find(|s| s.long.as_bytes() == name) {
        return Ok(s);
    }
    let shown = format!("--{}", String::from_utf8_lossy(name));
    let matches: Vec<&Spec<T>> = specs
        .iter()
        .filter(|s| !name.is_empty() && s.long.as_bytes().starts_with(name))
        .collect();
    match matches.len() {
        0 => Err(GetoptError::Unknown(shown)),
        1 => Ok(matches[0]),
        _ => Err(GetoptError::Ambiguous(
            shown,
            matches.iter().map(|s| s.long).collect(),
        )),
    }
}

/// Parses `args` (without argv\[0\]) with getopt_long's rules in "stop at the first operand" mode.
pub fn parse<T: Copy>(specs: &[Spec<T>], args: &[OsString]) -> Result<Parsed<T>, GetoptError> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        if arg == b"--" {
            i += 1;
            break;
        }
        if let Some(body) = arg.strip_prefix(b"--") {
            let (name, value) = match body.iter().position(|&b| b == b'=') {
                Some(p) => (&body[..p], Some(&body[p + 1..])),
                None => (body, None),
            };
            let spec = find_long(specs, name)?;
            let shown = format!("--{}", spec.long);
            let value = match (spec.arg, value) {
                (HasArg::No, Some(_)) => return Err(GetoptError::UnexpectedArg(shown)),
                (HasArg::No, None) | (HasArg::Optional, None) => None,
                (_, Some(v)) => Some(OsStr::from_bytes(v).to_os_string()),
                (HasArg::Required, None) => {
                    i += 1;
                    match args.get(i) {
                        Some(v) => Some(v.clone()),
                        None => return Err(GetoptError::MissingArg(shown)),
                    }
                }
            };
            found.push((spec.id, value));
            i += 1;
            continue;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            // The first operand (a lone "-" included) ends the options.
            break;
        }
        let mut j = 1;
        while j < arg.len() {
            let c = arg[j];
            let Some(spec) = specs
                .iter()
                .find(|s| s.short.map(|l| l as u32) == Some(c as u32))
            else {
                let shown = match char::from_u32(u32::from(c)) {
                    Some(ch) if c.is_ascii() => format!("-{ch}"),
                    _ => format!("-\\x{c:02x}"),
                };
                return Err(GetoptError::Unknown(shown));
            };
            let rest = &arg[j + 1..];
            match spec.arg {
                // A short option never takes an optional argument: util-linux 2.38.1 reads
                // `-mfoo` as `-m -f -o -o`, so text after it is more options.
                HasArg::No | HasArg::Optional => {
                    found.push((spec.id, None));
                    j += 1;
                }
                HasArg::Required => {
                    let v = if !rest.is_empty() {
                        OsString::from_vec(rest.to_vec())
                    } else {
                        i += 1;
                        match args.get(i) {
                            Some(v) => v.clone(),
                            None => {
                                let l = spec.short.unwrap_or('?');
                                return Err(GetoptError::MissingArg(format!("-{l}")));
                            }
                        }
                    };
                    found.push((spec.id, Some(v)));
                    break;
                }
            }
        }
        i += 1;
    }
    Ok((found, args[i.min(args.len())..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: [Spec<u8>; 6] = [
        Spec {
            long: "mount",
            short: Some('m'),
            arg: HasArg::No,
            id: 1,
        },
        Spec {
            long: "fork",
            short: Some('f'),
            arg: HasArg::No,
            id: 2,
        },
        Spec {
            long: "root",
            short: Some('R'),
            arg: HasArg::Required,
            id: 3,
        },
        Spec {
            long: "map-user",
            short: None,
            arg: HasArg::Required,
            id: 4,
        },
        Spec {
            long: "map-users",
            short: None,
            arg: HasArg::Required,
            id: 5,
        },
        Spec {
            long: "mount-proc",
            short: Some('P'),
            arg: HasArg::Optional,
            id: 6,
        },
    ];

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn p(v: &[&str]) -> Result<Parsed<u8>, GetoptError> {
        parse(&T, &os(v))
    }

    fn ids(v: &[&str]) -> (Vec<(u8, Option<String>)>, Vec<String>) {
        let (o, r) = p(v).expect("parses");
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
    }

    #[test]
    fn arguments() {
        assert_eq!(ids(&["-R/x"]).0, vec![(3, Some("/x".into()))]);
        assert_eq!(
            ids(&["-fR", "/x", "y"]).0,
            vec![(2, None), (3, Some("/x".into()))]
        );
        assert_eq!(ids(&["--root", "/x"]).0, vec![(3, Some("/x".into()))]);
        assert_eq!(ids(&["--root=/x"]).0, vec![(3, Some("/x".into()))]);
        assert_eq!(ids(&["--root="]).0, vec![(3, Some("".into()))]);
        // Optional arguments are taken only when attached.
        assert_eq!(
            ids(&["--mount-proc", "/p"]),
            (vec![(6, None)], vec!["/p".into()])
        );
        assert_eq!(ids(&["--mount-proc=/p"]).0, vec![(6, Some("/p".into()))]);
        assert_eq!(ids(&["-Pm"]).0, vec![(6, None), (1, None)]);
        assert_eq!(p(&["-P/p"]), Err(GetoptError::Unknown("-/".into())));
    }

    #[test]
    fn long_prefixes() {
        assert_eq!(ids(&["--for"]).0, vec![(2, None)]);
        // An exact name wins over a longer one it prefixes.
        assert_eq!(ids(&["--map-user=1"]).0, vec![(4, Some("1".into()))]);
        assert_eq!(ids(&["--map-users=1"]).0, vec![(5, Some("1".into()))]);
        assert_eq!(
            p(&["--map"]),
            Err(GetoptError::Ambiguous(
                "--map".into(),
                vec!["map-user", "map-users"]
            ))
        );
        assert!(matches!(p(&["--mou"]), Err(GetoptError::Ambiguous(..))));
    }

    #[test]
    fn errors() {
        assert_eq!(p(&["--bogus"]), Err(GetoptError::Unknown("--bogus".into())));
        assert_eq!(p(&["-mZ"]), Err(GetoptError::Unknown("-Z".into())));
        assert_eq!(p(&["-R"]), Err(GetoptError::MissingArg("-R".into())));
        assert_eq!(
            p(&["--root"]),
            Err(GetoptError::MissingArg("--root".into()))
        );
        assert_eq!(
            p(&["--fork=1"]),
            Err(GetoptError::UnexpectedArg("--fork".into()))
        );
        assert_eq!(p(&["--"]).map(|r| r.1.len()), Ok(0));
        assert_eq!(
            GetoptError::Unknown("--x".into()).to_string(),
            "unexpected argument '--x' found"
        );
        // Non-UTF-8 bytes never panic.
        let odd = vec![
            OsString::from_vec(vec![b'-', 0xff]),
            OsString::from_vec(vec![b'-', b'-', 0xfe]),
        ];
        assert!(parse(&T, &odd).is_err());
        assert!(parse(&T, &odd[1..]).is_err());
    }
}
