//! Man pages and shell completions of every tool, rendered from the definitions that parse the
//! options: the clap tools' `Command`s (clap_mangen, clap_complete) and the drop-ins' getopt
//! tables (`conventions::getopt::Shape`), whose words come from the `--help` the tool prints,
//! so that neither can drift from the parser. `cargo xtask man`, `install` and `deb` use them.

use clap::CommandFactory;
use conventions::getopt::{HasArg, Shape};
use roff::{bold, roman, Roff};
use std::path::{Path, PathBuf};

/// The version the pages name: the workspace's, and the commit they were rendered at (xtask is a
/// debug build, whose own `conventions::VERSION` records no commit).
fn version() -> String {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(version_now).clone()
}

fn version_now() -> String {
    let commit = crate::util::output(crate::util::git().args(["rev-parse", "--short=12", "HEAD"]))
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    if commit.is_empty() {
        env!("CARGO_PKG_VERSION").to_string()
    } else {
        format!("{} (commit {commit})", env!("CARGO_PKG_VERSION"))
    }
}

/// One rendered man page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The page's name (`unshare-rs`, `cgctl-run`).
    pub name: String,
    /// Its manual section: 1, or 8 for the tools util-linux files there (the root tools).
    pub section: u8,
    /// The roff source.
    pub roff: String,
    /// Only for `--drop-in` installs (`pivot_root`, `switch_root`).
    pub drop_in: bool,
}

impl Page {
    /// `NAME.SECTION`.
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.name, self.section)
    }
}

/// One completion script.
#[derive(Debug, Clone)]
pub struct Completion {
    /// Where it goes under the prefix (`share/bash-completion/completions/cgctl`).
    pub path: PathBuf,
    /// The script.
    pub text: String,
    /// Only for `--drop-in` installs.
    pub drop_in: bool,
}

/// The exit statuses every tool of conventions shares, after its own first rows.
const COMMON_EXIT: &[(&str, &str)] = &[
    ("0", "success"),
    (
        "1",
        "the tool's own failure, usage errors included (one line on stderr says what failed)",
    ),
];

/// The rows of a tool that runs a program and ends as it did.
const PROGRAM_EXIT: &[(&str, &str)] = &[
    ("126", "the program was found but could not be executed"),
    ("127", "the program was not found"),
    ("N", "otherwise the program's exit status"),
    (
        "128+N",
        "the program was killed by signal N: the tool re-raises N on itself, so the shell shows 128+N",
    ),
];

/// How a tool's options are defined.
enum Source {
    /// A clap `Command`.
    Clap(fn() -> clap::Command),
    /// A drop-in's getopt table and the help text that describes each entry.
    Getopt {
        table: fn() -> Vec<Shape>,
        help: fn(&str) -> String,
    },
}

/// One tool's page: the name, its section, where its options are defined, its exit statuses.
struct Tool {
    name: &'static str,
    section: u8,
    source: Source,
    exit: Vec<(&'static str, &'static str)>,
    drop_in: bool,
}

fn common_and(rest: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    COMMON_EXIT.iter().chain(rest).copied().collect()
}

fn tools() -> Vec<Tool> {
    let program = common_and(PROGRAM_EXIT);
    vec![
        Tool {
            name: "unshare-rs",
            section: 1,
            source: Source::Getopt {
                table: || conventions::getopt::shapes(&unshare_rs::plan::OPTIONS),
                help: unshare_rs::help,
            },
            exit: program.clone(),
            drop_in: false,
        },
        Tool {
            name: "nsenter-rs",
            section: 1,
            source: Source::Getopt {
                table: nsenter_rs::args::option_table,
                help: nsenter_rs::help,
            },
            exit: program.clone(),
            drop_in: false,
        },
        Tool {
            name: "setpriv-rs",
            section: 1,
            source: Source::Getopt {
                table: setpriv_rs::args::option_table,
                help: setpriv_rs::help,
            },
            exit: program.clone(),
            drop_in: false,
        },
        Tool {
            name: "pivot",
            section: 8,
            source: Source::Clap(pivot::Cli::command),
            exit: program.clone(),
            drop_in: false,
        },
        Tool {
            name: "pivot_root",
            section: 8,
            source: Source::Clap(pivot::compat::PivotRootCli::command),
            exit: COMMON_EXIT.to_vec(),
            drop_in: true,
        },
        Tool {
            name: "switch_root",
            section: 8,
            source: Source::Clap(pivot::compat::SwitchRootCli::command),
            exit: program.clone(),
            drop_in: true,
        },
        Tool {
            name: "cgctl",
            section: 1,
            source: Source::Clap(cgctl::Cli::command),
            exit: common_and(&[
                (
                    "126",
                    "run, exec: the command was found but could not be executed",
                ),
                ("127", "run, exec: the command was not found"),
                ("N", "run: otherwise the command's exit status"),
                (
                    "128+N",
                    "run: the command was killed by signal N (re-raised)",
                ),
            ]),
            drop_in: false,
        },
        Tool {
            name: "tinyvmm",
            section: 1,
            source: Source::Clap(tinyvmm::Cli::command),
            exit: vec![
                (
                    "0..120",
                    "the byte the guest wrote to port 0xf4 (a Linux guest that powered off: 0)",
                ),
                ("121", "the Linux guest panicked"),
                ("122", "the Linux guest rebooted"),
                (
                    "123",
                    "the guest crashed (triple fault, KVM internal or emulation error)",
                ),
                ("124", "--timeout expired (said on stderr)"),
                ("125", "tinyvmm's own failure, usage errors included"),
            ],
            drop_in: false,
        },
        Tool {
            name: "ocirun",
            section: 8,
            source: Source::Clap(ocirun::Cli::command),
            exit: common_and(&[
                ("N", "run: the container process's exit status"),
                ("128+N", "run: the container process was killed by signal N"),
            ]),
            drop_in: false,
        },
        Tool {
            name: "netwire",
            section: 8,
            source: Source::Clap(netwire::Cli::command),
            exit: COMMON_EXIT.to_vec(),
            drop_in: false,
        },
    ]
}

/// Every man page: one per tool, and one per subcommand of the clap tools that have them
/// (`cgctl-run`, as git names its pages).
pub fn pages() -> Result<Vec<Page>, String> {
    let mut out = Vec::new();
    for t in tools() {
        match &t.source {
            Source::Clap(cmd) => clap_pages(&t, cmd(), &mut out)?,
            Source::Getopt { table, help } => out.push(Page {
                name: t.name.to_string(),
                section: t.section,
                roff: getopt_page(&t, &table(), &help(t.name))?,
                drop_in: t.drop_in,
            }),
        }
    }
    Ok(out)
}

/// Every completion script, for bash, zsh and fish.
pub fn completions() -> Vec<Completion> {
    let mut out = Vec::new();
    for t in tools() {
        for shell in ["bash", "zsh", "fish"] {
            let text = match &t.source {
                Source::Clap(cmd) => clap_completion(shell, cmd(), t.name),
                Source::Getopt { table, help } => {
                    let help = help(t.name);
                    let opts: Vec<(Shape, String)> = table()
                        .into_iter()
                        .map(|s| {
                            let d = describe(&help, &s).map(|(_, d)| d).unwrap_or_default();
                            (s, first_sentence(&d))
                        })
                        .collect();
                    getopt_completion(shell, t.name, &opts)
                }
            };
            let path = match shell {
                "bash" => format!("share/bash-completion/completions/{}", t.name),
                "zsh" => format!("share/zsh/vendor-completions/_{}", t.name),
                _ => format!("share/fish/vendor_completions.d/{}.fish", t.name),
            };
            out.push(Completion {
                path: PathBuf::from(path),
                text,
                drop_in: t.drop_in,
            });
        }
    }
    out
}

fn clap_completion(shell: &str, mut cmd: clap::Command, name: &str) -> String {
    use clap_complete::Shell;
    let sh = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        _ => Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(sh, &mut cmd, name, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The roff of a page's closing sections: EXIT STATUS (a table), EXAMPLES, NOTES.
fn closing_sections(roff: &mut Roff, exit: &[(&str, &str)], examples: &[String], notes: &[String]) {
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in exit {
        roff.control("TP", []);
        roff.text([bold(*code)]);
        roff.text([roman(*what)]);
    }
    roff.control("SH", ["EXAMPLES"]);
    roff.control("nf", []);
    for line in examples {
        roff.text([roman(line.as_str())]);
        roff.control("br", []);
    }
    roff.control("fi", []);
    if !notes.is_empty() {
        roff.control("SH", ["NOTES"]);
        roff.control("nf", []);
        for line in notes {
            roff.text([roman(line.as_str())]);
            roff.control("br", []);
        }
        roff.control("fi", []);
    }
}

/// Splits a help text into its `Examples:` block (the lines after it, up to a blank line, with
/// their indent less two) and the other paragraphs.
fn examples_and_rest(text: &str) -> (Vec<String>, Vec<String>) {
    let mut examples = Vec::new();
    let mut rest = Vec::new();
    let mut in_examples = false;
    for line in text.lines() {
        if line.trim() == "Examples:" {
            in_examples = true;
            continue;
        }
        if in_examples && line.trim().is_empty() {
            in_examples = false;
            rest.push(String::new());
            continue;
        }
        if in_examples {
            examples.push(line.strip_prefix("  ").unwrap_or(line).to_string());
        } else {
            rest.push(line.to_string());
        }
    }
    while rest.first().is_some_and(|l| l.trim().is_empty()) {
        rest.remove(0);
    }
    while rest.last().is_some_and(|l| l.trim().is_empty()) {
        rest.pop();
    }
    (examples, rest)
}

fn render_man(
    man: &clap_mangen::Man,
    what: &str,
    f: fn(&clap_mangen::Man, &mut dyn std::io::Write) -> std::io::Result<()>,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    f(man, buf).map_err(|e| format!("rendering {what}: {e}"))
}

fn clap_pages(t: &Tool, cmd: clap::Command, out: &mut Vec<Page>) -> Result<(), String> {
    let mut cmd = cmd.name(t.name).bin_name(t.name);
    cmd.build();
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .cloned()
        .collect();
    let top_examples = examples_and_rest(&after_help(&cmd)).0;
    out.push(Page {
        name: t.name.to_string(),
        section: t.section,
        roff: clap_page(t, cmd.clone(), &[])?,
        drop_in: t.drop_in,
    });
    for sub in subs {
        let page = format!("{}-{}", t.name, sub.get_name());
        let line = format!("{} {}", t.name, sub.get_name());
        // A subcommand without examples of its own gets the tool's lines that use it, or all
        // of the tool's when none does.
        let mut fallback: Vec<String> = top_examples
            .iter()
            .filter(|l| l.contains(&line))
            .cloned()
            .collect();
        if fallback.is_empty() {
            fallback = top_examples.clone();
        }
        let sub = sub.display_name(page.clone()).bin_name(line);
        out.push(Page {
            name: page,
            section: t.section,
            roff: clap_page(t, sub, &fallback)?,
            drop_in: t.drop_in,
        });
    }
    Ok(())
}

fn after_help(cmd: &clap::Command) -> String {
    cmd.get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string())
        .unwrap_or_default()
}

fn clap_page(t: &Tool, cmd: clap::Command, fallback: &[String]) -> Result<String, String> {
    let (mut examples, notes) = examples_and_rest(&after_help(&cmd));
    if examples.is_empty() {
        examples = fallback.to_vec();
    }
    if examples.is_empty() {
        return Err(format!(
            "{}: no Examples: in its --help (every tool and subcommand has one)",
            cmd.get_display_name().unwrap_or(cmd.get_name())
        ));
    }
    let has_subs = cmd.get_subcommands().any(|s| !s.is_hide_set());
    let man = clap_mangen::Man::new(cmd)
        .section(t.section.to_string())
        .source(format!("microtools {}", version()));
    let mut buf = Vec::new();
    render_man(&man, "title", clap_mangen::Man::render_title, &mut buf)?;
    render_man(
        &man,
        "name",
        clap_mangen::Man::render_name_section,
        &mut buf,
    )?;
    render_man(
        &man,
        "synopsis",
        clap_mangen::Man::render_synopsis_section,
        &mut buf,
    )?;
    render_man(
        &man,
        "description",
        clap_mangen::Man::render_description_section,
        &mut buf,
    )?;
    render_man(
        &man,
        "options",
        clap_mangen::Man::render_options_section,
        &mut buf,
    )?;
    if has_subs {
        render_man(
            &man,
            "subcommands",
            clap_mangen::Man::render_subcommands_section,
            &mut buf,
        )?;
    }
    let mut roff = Roff::default();
    closing_sections(&mut roff, &t.exit, &examples, &notes);
    roff.control("SH", ["VERSION"]);
    roff.text([roman(version())]);
    buf.extend_from_slice(roff.render().as_bytes());
    String::from_utf8(buf).map_err(|e| format!("rendering {}: {e}", t.name))
}

/// The help line of `shape` and what it says: the option's label as `--help` shows it
/// (`-m, --mount[=<file>]`) and its description, continuation lines joined. A line describes
/// an option when its label (the text before two spaces) names `--long` or `-s`.
pub fn describe(help: &str, shape: &Shape) -> Option<(String, String)> {
    let lines: Vec<&str> = help.lines().collect();
    let long = format!("--{}", shape.long);
    let names = |label: &str| -> bool {
        label.split([',', ' ']).any(|tok| {
            tok == long
                || tok.starts_with(&format!("{long}="))
                || tok.starts_with(&format!("{long}["))
        })
    };
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with('-') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let (label, desc) = match trimmed.find("  ") {
            Some(p) => (trimmed[..p].trim_end(), trimmed[p..].trim()),
            // One space before the words (`--preserve-credentials do not touch ...`): the
            // label is its leading option and argument tokens.
            None => {
                let mut end = 0;
                for tok in trimmed.split(' ') {
                    if !(tok.starts_with('-') || tok.starts_with('<')) {
                        break;
                    }
                    end += tok.len() + 1;
                }
                let end = end.min(trimmed.len());
                (trimmed[..end].trim_end(), trimmed[end..].trim())
            }
        };
        if !names(label) {
            continue;
        }
        let mut text = desc.to_string();
        for next in &lines[i + 1..] {
            let t = next.trim_start();
            let deeper = next.len() - t.len() > indent + 2;
            if t.is_empty() || !deeper || t.starts_with('-') && next.len() - t.len() < 20 {
                break;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(t);
        }
        return Some((label.to_string(), text));
    }
    None
}

fn first_sentence(s: &str) -> String {
    let end = s.find(" (").or_else(|| s.find("; ")).unwrap_or(s.len());
    s[..end].trim_end_matches('.').to_string()
}

/// A drop-in's page: SYNOPSIS and DESCRIPTION from its help's first paragraphs, OPTIONS from the
/// table (each entry's words from the help line that names it), the help's other paragraphs
/// as NOTES.
fn getopt_page(t: &Tool, table: &[Shape], help: &str) -> Result<String, String> {
    let paragraphs: Vec<Vec<&str>> = help
        .split("\n\n")
        .map(|p| {
            p.lines()
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|p| !p.is_empty())
        .collect();
    let usage: Vec<String> = paragraphs
        .first()
        .map(|p| {
            p.iter()
                .map(|l| l.trim().trim_start_matches("Usage:").trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let about = paragraphs
        .get(1)
        .map(|p| p.join(" ").trim().to_string())
        .unwrap_or_default();
    let (examples, _) = examples_and_rest(help);
    if examples.is_empty() {
        return Err(format!("{}: no Examples: in its --help", t.name));
    }
    let is_option_paragraph = |p: &[&str]| p.iter().any(|l| l.trim_start().starts_with('-'));
    let notes: Vec<String> = paragraphs
        .iter()
        .skip(2)
        .filter(|p| !is_option_paragraph(p))
        .filter(|p| {
            let first = p[0].trim();
            first != "Examples:" && !first.starts_with("Exit status")
        })
        .flat_map(|p| {
            p.iter()
                .map(|l| l.to_string())
                .chain(std::iter::once(String::new()))
        })
        .collect();
    let mut roff = Roff::default();
    let title = t.name.to_uppercase();
    let section = t.section.to_string();
    let source = format!("microtools {}", version());
    roff.control(
        "TH",
        [title.as_str(), section.as_str(), "", source.as_str(), ""],
    );
    roff.control("SH", ["NAME"]);
    roff.text([roman(format!(
        "{} - {}",
        t.name,
        about.trim_end_matches('.')
    ))]);
    roff.control("SH", ["SYNOPSIS"]);
    for u in &usage {
        roff.text([roman(u.as_str())]);
        roff.control("br", []);
    }
    roff.control("SH", ["DESCRIPTION"]);
    roff.text([roman(about.as_str())]);
    roff.control("SH", ["OPTIONS"]);
    let mut seen = Vec::new();
    for s in table {
        let Some((label, text)) = describe(help, s) else {
            return Err(format!(
                "{}: --{} is in the option table but not in --help",
                t.name, s.long
            ));
        };
        // Aliases (`--nnp, --no-new-privs`) share one line: shown once.
        if seen.contains(&label) {
            continue;
        }
        seen.push(label.clone());
        roff.control("TP", []);
        roff.text([bold(label.as_str())]);
        roff.text([roman(text.as_str())]);
    }
    let notes: Vec<String> = {
        let mut n = notes;
        while n.last().is_some_and(|l| l.is_empty()) {
            n.pop();
        }
        n
    };
    closing_sections(&mut roff, &t.exit, &examples, &notes);
    roff.control("SH", ["VERSION"]);
    roff.text([roman(version())]);
    Ok(roff.render())
}

/// A word inside a single-quoted shell string.
fn sq(s: &str) -> String {
    s.replace('\'', "'\\''")
}

/// Completions for a drop-in, from its table: option names, and files for their arguments.
fn getopt_completion(shell: &str, name: &str, opts: &[(Shape, String)]) -> String {
    let func = format!("_{}", name.replace('-', "_"));
    match shell {
        "bash" => {
            let mut words: Vec<String> = Vec::new();
            for (s, _) in opts {
                words.push(format!("--{}", s.long));
                if let Some(c) = s.short {
                    words.push(format!("-{c}"));
                }
            }
            let takes: Vec<String> = opts
                .iter()
                .filter(|(s, _)| s.arg == HasArg::Required)
                .flat_map(|(s, _)| {
                    let mut v = vec![format!("--{}", s.long)];
                    if let (Some(c), HasArg::Required) = (s.short, s.short_arg) {
                        v.push(format!("-{c}"));
                    }
                    v
                })
                .collect();
            format!(
                "# bash completion for {name}, from its option table (cargo xtask man)\n\
                 {func}() {{\n\
                 \x20   local cur=\"${{COMP_WORDS[COMP_CWORD]}}\" prev=\"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
                 \x20   case \"$prev\" in\n\
                 \x20       {}) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n\
                 \x20   esac\n\
                 \x20   case \"$cur\" in\n\
                 \x20       -*) COMPREPLY=($(compgen -W '{}' -- \"$cur\")) ;;\n\
                 \x20       *) COMPREPLY=($(compgen -c -- \"$cur\")) ;;\n\
                 \x20   esac\n\
                 }}\n\
                 complete -o default -o bashdefault -F {func} {name}\n",
                takes.join("|"),
                words.join(" ")
            )
        }
        "zsh" => {
            let clean = |d: &str| sq(&d.replace('[', "(").replace(']', ")").replace(':', "\\:"));
            let mut s = format!(
                "#compdef {name}\n# zsh completion for {name}, from its option table (cargo xtask man)\n_arguments -s -S \\\n"
            );
            for (o, d) in opts {
                let d = clean(d);
                let long = match o.arg {
                    HasArg::No => format!("--{}[{d}]", o.long),
                    HasArg::Required => format!("--{}=[{d}]:value:_files", o.long),
                    HasArg::Optional => format!("--{}=-[{d}]::value:_files", o.long),
                };
                s.push_str(&format!("  '{long}' \\\n"));
                if let Some(c) = o.short {
                    let short = match o.short_arg {
                        HasArg::No => format!("-{c}[{d}]"),
                        HasArg::Required => format!("-{c}+[{d}]:value:_files"),
                        HasArg::Optional => format!("-{c}-[{d}]::value:_files"),
                    };
                    s.push_str(&format!("  '{short}' \\\n"));
                }
            }
            s.push_str("  '*::command:_normal'\n");
            s
        }
        _ => {
            let mut s =
                format!("# fish completion for {name}, from its option table (cargo xtask man)\n");
            for (o, d) in opts {
                s.push_str(&format!("complete -c {name} -l {}", o.long));
                if let Some(c) = o.short {
                    s.push_str(&format!(" -s {c}"));
                }
                if o.arg == HasArg::Required {
                    s.push_str(" -r");
                }
                s.push_str(&format!(
                    " -d '{}'\n",
                    d.replace('\\', "\\\\").replace('\'', "\\'")
                ));
            }
            s
        }
    }
}

/// Writes the pages under `dir/share/man/manN/` and the completions under `dir/share/...`;
/// `drop_in` adds the pages and completions of the drop-in names. Returns the files written.
pub fn write(dir: &Path, drop_in: bool) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    let put = |path: PathBuf, text: &str, written: &mut Vec<PathBuf>| -> Result<(), String> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for p in pages()?.into_iter().filter(|p| drop_in || !p.drop_in) {
        let path = dir
            .join(format!("share/man/man{}", p.section))
            .join(p.file_name());
        put(path, &p.roff, &mut written)?;
    }
    for c in completions().into_iter().filter(|c| drop_in || !c.drop_in) {
        put(dir.join(&c.path), &c.text, &mut written)?;
    }
    Ok(written)
}

/// `cargo xtask man [--out DIR] [--drop-in]`: writes the pages and completions (default
/// target/man) and prints the directory.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut out = crate::util::target_dir().join("man");
    let mut drop_in = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => {
                out = PathBuf::from(it.next().ok_or("--out needs a directory")?);
            }
            "--drop-in" => drop_in = true,
            other => return Err(format!("man: unexpected argument '{other}'")),
        }
    }
    let written = write(&out, drop_in)?;
    eprintln!("xtask man: {} files", written.len());
    println!("{}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_in_option_has_a_help_line() {
        for t in tools() {
            if let Source::Getopt { table, help } = &t.source {
                let help = help(t.name);
                for s in table() {
                    let found = describe(&help, &s);
                    assert!(
                        found.as_ref().is_some_and(|(_, d)| !d.is_empty()),
                        "{}: --{} has no described help line ({found:?})",
                        t.name,
                        s.long
                    );
                }
            }
        }
    }

    #[test]
    fn describe_reads_labels_aliases_and_continuations() {
        let help = " -m, --mount[=<file>]      unshare mounts namespace\n \
                    --nnp, --no-new-privs   disallow granting new privileges\n \
                    --map-users=<a>:<b>\n                           map count users\n \
                    --kill-child[=<signame>]  when dying, kill the child\n                             defaults to SIGKILL\n \
                    --forward-signals         forward\n";
        let shape = |long, short| Shape {
            long,
            short,
            arg: HasArg::No,
            short_arg: HasArg::No,
        };
        assert_eq!(
            describe(help, &shape("mount", Some('m'))),
            Some((
                "-m, --mount[=<file>]".into(),
                "unshare mounts namespace".into()
            ))
        );
        assert_eq!(
            describe(help, &shape("no-new-privs", None)).map(|d| d.0),
            Some("--nnp, --no-new-privs".into())
        );
        assert_eq!(
            describe(help, &shape("map-users", None)).map(|d| d.1),
            Some("map count users".into())
        );
        assert_eq!(
            describe(help, &shape("kill-child", None)).map(|d| d.1),
            Some("when dying, kill the child defaults to SIGKILL".into())
        );
        assert_eq!(describe(help, &shape("map", None)), None);
    }

    #[test]
    fn every_page_has_exit_status_and_examples() {
        let pages = pages().expect("pages render");
        for name in [
            "unshare-rs",
            "nsenter-rs",
            "setpriv-rs",
            "pivot",
            "pivot_root",
            "switch_root",
            "cgctl",
            "cgctl-run",
            "tinyvmm",
            "tinyvmm-run",
            "ocirun",
            "netwire",
        ] {
            let p = pages
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("no page {name}"));
            assert!(p.roff.contains(".SH \"EXIT STATUS\""), "{name}");
            assert!(p.roff.contains(".SH EXAMPLES"), "{name}");
        }
    }
}
