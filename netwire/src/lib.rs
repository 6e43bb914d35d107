//! netwire: network wiring through rtnetlink (bridges, veth pairs, taps, addresses, routes),
//! and the same binary as a CNI plugin when `CNI_COMMAND` is set.

pub mod cli;
pub mod cni;
pub mod error;
pub mod exec;
pub mod ipam;
pub mod nl;
pub mod ns;
pub mod parse;
pub mod plan;
pub mod tap;

pub use cli::Cli;
pub use error::Error;

use conventions::{errln, outln};

/// Enters the namespace the tool acts in, for the rest of the run (taps are made in the
/// process's own namespace, so entering is simpler than a socket elsewhere).
pub fn enter(ns: &parse::NsRef) -> Result<(), Error> {
    let f = ns::open_file(ns)?;
    // SAFETY: setns on a namespace descriptor we own; netwire has one thread.
    if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::Namespace {
            what: ns.to_string(),
            path: ns.path().display().to_string(),
            why: format!(
                "setns(CLONE_NEWNET) failed: {}",
                conventions::output::errtext(&e)
            ),
            hint: "joining a network namespace needs CAP_SYS_ADMIN".into(),
        });
    }
    Ok(())
}

fn show_line(v: &serde_json::Value) -> String {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let addrs: Vec<String> = v
        .get("addresses")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}: {} {} {} mtu {} {}{}",
        v.get("ifindex").and_then(|x| x.as_u64()).unwrap_or(0),
        s("dev"),
        v.get("kind").and_then(|x| x.as_str()).unwrap_or("-"),
        if v.get("up").and_then(|x| x.as_bool()).unwrap_or(false) {
            "up"
        } else {
            "down"
        },
        v.get("mtu").and_then(|x| x.as_u64()).unwrap_or(0),
        v.get("mac").and_then(|x| x.as_str()).unwrap_or("-"),
        if addrs.is_empty() {
            String::new()
        } else {
            format!(" {}", addrs.join(" "))
        }
    )
}

/// Runs one command line; returns the exit status, the error printed once.
pub fn run(tool: &str, cli: Cli) -> i32 {
    match run_inner(&cli) {
        Ok(report) => {
            if cli.json {
                let key = if matches!(cli.cmd, cli::Cmd::Show) {
                    "links"
                } else {
                    "steps"
                };
                outln!("{}", serde_json::json!({ key: report }));
            } else if matches!(cli.cmd, cli::Cmd::Show) {
                for v in &report {
                    outln!("{}", show_line(v));
                }
            }
            0
        }
        Err(e) => {
            errln!("{tool}: {e}");
            conventions::exit::FAILURE
        }
    }
}

fn run_inner(cli: &Cli) -> Result<Vec<serde_json::Value>, Error> {
    let steps = plan::plan(&cli.cmd).map_err(Error::Invalid)?;
    if let Some(ns) = &cli.netns {
        enter(ns)?;
    }
    let mut w = exec::Wire::new()?;
    w.run(&steps)?;
    w.commit();
    Ok(std::mem::take(&mut w.report))
}
