//! Command-line conventions: one-line errors `TOOL: what failed: why (hint)`, exit 1 on usage errors.

use std::ffi::OsString;

/// What parsing decided, for callers that want to act before exiting.
#[derive(Debug)]
pub enum Parsed<T> {
    /// Arguments are fine.
    Run(T),
    /// `--help` or `--version`: print this on stdout and exit 0.
    Info(String),
    /// A usage error, already formatted as one line.
    Usage(String),
}

/// Parses `args` with clap and sorts the result into [`Parsed`], the pure part of [`parse`].
pub fn try_parse_from<P, I, A>(tool: &str, args: I) -> Parsed<P>
where
    P: clap::Parser,
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    match P::try_parse_from(args) {
        Ok(p) => Parsed::Run(p),
        Err(e) => from_error(tool, &e),
    }
}

/// Sorts a clap error into help/version text or the one-line usage error, with clap's "did you
/// mean" (for a tool that drives clap itself, as pivot does for its option order).
pub fn from_error<T>(tool: &str, e: &clap::Error) -> Parsed<T> {
    match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            Parsed::Info(e.render().to_string())
        }
        _ => {
            let line = usage_line(tool, &e.render().to_string());
            Parsed::Usage(match suggestion(e) {
                Some(s) => with_suggestion(&line, tool, &s),
                None => line,
            })
        }
    }
}

/// The name among `names` nearest to `given`, if one is near enough to be a typo of it: the
/// measure and threshold of clap's `suggestions` (Jaro similarity above 0.7, the most similar
/// first), so that the drop-ins' getopt suggests as the clap tools do.
pub fn nearest<'a>(given: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .map(|n| (strsim::jaro(given, n), n))
        .filter(|(score, _)| *score > 0.7)
        .fold(None, |best: Option<(f64, &str)>, (score, n)| match best {
            Some((b, _)) if b >= score => best,
            _ => Some((score, n)),
        })
        .map(|(_, n)| n)
}

/// What clap found near a mistyped subcommand, option or value, as `did you mean 'X'?`
/// (`'X' or 'Y'` when it found several, `'run --memory'` for an option of a subcommand).
fn suggestion(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let quoted = |v: &ContextValue| match v {
        ContextValue::String(s) => Some(format!("'{s}'")),
        // clap orders them least similar first.
        ContextValue::Strings(v) if !v.is_empty() => Some(
            v.iter()
                .rev()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(" or "),
        ),
        _ => None,
    };
    let direct = [
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedArg,
        ContextKind::SuggestedValue,
    ]
    .into_iter()
    .find_map(|k| e.get(k).and_then(quoted));
    // An option that exists only in a subcommand comes as the tip "'run --memory' exists".
    let in_subcommand = || match e.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(tips)) => tips.iter().find_map(|t| {
            let t = t.to_string();
            t.strip_suffix(" exists")
                .filter(|q| q.starts_with('\'') && q.ends_with('\''))
                .map(str::to_string)
        }),
        _ => None,
    };
    direct
        .or_else(in_subcommand)
        .map(|s| format!("did you mean {s}?"))
}

/// Turns clap's multi-line error into `TOOL: message (try 'TOOL --help')`.
pub fn usage_line(tool: &str, rendered: &str) -> String {
    let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("invalid arguments").trim();
    let mut msg = first.strip_prefix("error: ").unwrap_or(first).to_string();
    // "the following required arguments were not provided:" lists them on the next lines.
    if msg.ends_with(':') {
        let listed: Vec<&str> = lines
            .take_while(|l| l.starts_with("  ") && !l.trim_start().starts_with("tip:"))
            .map(str::trim)
            .collect();
        if !listed.is_empty() {
            msg = format!("{} {}", msg, listed.join(", "));
        }
    }
    format!("{tool}: {msg} (try '{tool} --help')")
}

/// Puts `; did you mean ...?` before the `(try 'TOOL --help')` of a usage line.
fn with_suggestion(line: &str, tool: &str, suggestion: &str) -> String {
    let tail = format!(" (try '{tool} --help')");
    match line.strip_suffix(&tail) {
        Some(head) => format!("{head}; {suggestion}{tail}"),
        None => format!("{line}; {suggestion}"),
    }
}

/// Parses the process's arguments; prints help/version and exits 0, or prints one line and exits
/// 1 on a usage error (clap's own default is 2, which util-linux tools never use). Help that
/// cannot be written (`--help >/dev/full`) is `TOOL: write error: ...` and exit 1.
pub fn parse<P: clap::Parser>(tool: &str) -> P {
    parse_or_exit(tool, crate::exit::FAILURE)
}

/// As [`parse`], but a usage error (or a failed write of the help) exits with `usage_code`
/// (tinyvmm uses 125, since its guest may exit with 1).
pub fn parse_or_exit<P: clap::Parser>(tool: &str, usage_code: i32) -> P {
    match try_parse_from::<P, _, _>(tool, std::env::args_os()) {
        Parsed::Run(p) => p,
        Parsed::Info(text) => {
            crate::out!("{text}");
            crate::output::exit(tool, 0, usage_code)
        }
        Parsed::Usage(line) => {
            crate::errln!("{line}");
            crate::output::exit(tool, usage_code, usage_code)
        }
    }
}

/// Formats the one error line: `TOOL: what: why (hint)`; the hint is left out when empty.
pub fn error_line(tool: &str, what: &str, why: &str, hint: &str) -> String {
    if hint.is_empty() {
        format!("{tool}: {what}: {why}")
    } else {
        format!("{tool}: {what}: {why} ({hint})")
    }
}

/// The drop-ins' answers that end a run before it starts (their getopt lines have no clap to
/// print them): `--help`'s text on stdout, exit 0.
pub fn help_answer(text: &str) -> i32 {
    crate::out!("{text}");
    crate::output::flush();
    0
}

/// `--version`: `TOOL VERSION` on stdout, exit 0.
pub fn version_answer(tool: &str, version: &str) -> i32 {
    crate::outln!("{tool} {version}");
    crate::output::flush();
    0
}

/// A usage error: `TOOL: MSG (try 'TOOL --help')` on stderr, exit 1.
pub fn usage_answer(tool: &str, msg: &str) -> i32 {
    crate::errln!("{tool}: {msg} (try '{tool} --help')");
    crate::exit::FAILURE
}

/// Prints `TOOL: message` once on stderr and exits with `code` (through [`crate::output::exit`]:
/// a failed write of stdout before is reported too).
pub fn die(tool: &str, message: impl std::fmt::Display, code: i32) -> ! {
    crate::errln!("{tool}: {message}");
    crate::output::exit(tool, code, code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    #[command(name = "demo", version, about = "demo")]
    struct Demo {
        #[arg(long)]
        count: Option<u32>,
    }

    #[test]
    fn usage_errors_are_one_line() {
        match try_parse_from::<Demo, _, _>("demo", ["demo", "--bogus"]) {
            Parsed::Usage(line) => {
                assert!(
                    line.starts_with("demo: unexpected argument '--bogus' found"),
                    "{line}"
                );
                assert!(line.ends_with("(try 'demo --help')"), "{line}");
                assert!(!line.contains('\n'));
            }
            other => panic!("expected a usage error, got {other:?}"),
        }
        match try_parse_from::<Demo, _, _>("demo", ["demo", "--count", "x"]) {
            Parsed::Usage(line) => assert!(line.contains("invalid value 'x'"), "{line}"),
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[derive(Parser, Debug)]
    #[command(name = "need")]
    struct Need {
        #[arg(long, required = true)]
        kernel: String,
    }

    #[test]
    fn missing_required_arguments_are_named() {
        match try_parse_from::<Need, _, _>("need", ["need"]) {
            Parsed::Usage(line) => assert_eq!(
                line,
                "need: the following required arguments were not provided: --kernel <KERNEL> (try 'need --help')"
            ),
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn help_and_version_are_info() {
        assert!(
            matches!(try_parse_from::<Demo, _, _>("demo", ["demo", "--help"]), Parsed::Info(t) if t.contains("Usage"))
        );
        assert!(
            matches!(try_parse_from::<Demo, _, _>("demo", ["demo", "--version"]), Parsed::Info(t) if t.contains("demo"))
        );
        assert!(matches!(
            try_parse_from::<Demo, _, _>("demo", ["demo", "--count", "3"]),
            Parsed::Run(Demo { count: Some(3) })
        ));
    }

    #[derive(Parser, Debug)]
    #[command(name = "sub")]
    struct Sub {
        #[arg(long, value_parser = ["always", "never"])]
        color: Option<String>,
        #[command(subcommand)]
        cmd: Option<SubCmd>,
    }

    #[derive(clap::Subcommand, Debug)]
    enum SubCmd {
        Run {
            #[arg(long)]
            memory: Option<String>,
        },
        Create,
    }

    fn usage<P: clap::Parser + std::fmt::Debug>(tool: &str, args: &[&str]) -> String {
        match try_parse_from::<P, _, _>(tool, args) {
            Parsed::Usage(line) => line,
            other => panic!("{args:?}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn typos_name_the_nearest_choice() {
        assert_eq!(
            usage::<Demo>("demo", &["demo", "--cuont", "3"]),
            "demo: unexpected argument '--cuont' found; did you mean '--count'? (try 'demo --help')"
        );
        assert_eq!(
            usage::<Sub>("sub", &["sub", "runn"]),
            "sub: unrecognized subcommand 'runn'; did you mean 'run'? (try 'sub --help')"
        );
        assert_eq!(
            usage::<Sub>("sub", &["sub", "run", "--memroy", "1"]),
            "sub: unexpected argument '--memroy' found; did you mean '--memory'? (try 'sub --help')"
        );
        assert_eq!(
            usage::<Sub>("sub", &["sub", "--memory", "1", "run"]),
            "sub: unexpected argument '--memory' found; did you mean 'run --memory'? (try 'sub --help')"
        );
        assert_eq!(
            usage::<Sub>("sub", &["sub", "--color", "allways"]),
            "sub: invalid value 'allways' for '--color <COLOR>'; did you mean 'always'? (try 'sub --help')"
        );
        // Nothing near: no suggestion.
        assert_eq!(
            usage::<Sub>("sub", &["sub", "xyzzy"]),
            "sub: unrecognized subcommand 'xyzzy' (try 'sub --help')"
        );
    }

    #[test]
    fn nearest_follows_clap() {
        let names = ["fork", "mount", "mount-proc", "map-user"];
        assert_eq!(nearest("frok", names), Some("fork"));
        assert_eq!(nearest("mount-porc", names), Some("mount-proc"));
        assert_eq!(nearest("mape-user", names), Some("map-user"));
        assert_eq!(nearest("xyzzy", names), None);
        assert_eq!(nearest("", names), None);
    }

    #[test]
    fn error_lines() {
        assert_eq!(
            error_line("t", "open(/x) failed", "No such file", "create it"),
            "t: open(/x) failed: No such file (create it)"
        );
        assert_eq!(error_line("t", "w", "y", ""), "t: w: y");
    }
}
