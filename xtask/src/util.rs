//! Small helpers the recipes share: run a command loudly, find the workspace and target dirs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (xtask's parent directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root().join(d),
        _ => root().join("target"),
    }
}

/// The cargo that runs us.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// git, in the workspace.
pub fn git() -> Command {
    let mut c = Command::new("git");
    c.current_dir(root());
    c
}

/// Runs `cmd`, echoing it first; an error names the command and its status.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: $ {}", describe(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed with {status}", describe(cmd)))
    }
}

/// An apt-get whose output goes to stderr, so that it never lands in front of a recipe's own
/// stdout (`demo --json`), and without the "Download is performed unsandboxed as root" notice
/// (the `_apt` user cannot write into target/, and running as root there is intended).
pub fn apt_get(args: &[&str]) -> Command {
    let mut c = Command::new("apt-get");
    c.args(["-o", "APT::Sandbox::User=root"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::io::stderr());
    c
}

/// Makes the command's process get SIGKILL when the thread that starts it ends, so that a guest
/// outlives no recipe: a hang guard that kills xtask (by pid) would otherwise leave its QEMU
/// running, at full CPU, until someone notices.
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl with integer arguments is async-signal-safe; the closure touches nothing
    // else of the parent's memory.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

/// Waits for `child` at most `limit`, polling every `poll`: its status, or None when it ran too
/// long and was killed (SIGKILL, by its pid) and reaped.
pub fn wait_bounded(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    poll: std::time::Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(poll);
    }
}

/// Runs `cmd` quietly and returns its stdout.
pub fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", describe(cmd)))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} failed with {}: {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A command line as text, for logs and errors.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The CPU's model name from /proc/cpuinfo, or an empty string.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// Terminal control sequences removed (shared with the tests, which show captured output).
pub use testcaps::strip_escapes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(
            strip_escapes("ROM...\u{1b}c\u{1b}[?7l\u{1b}[2Jpid: 1\r\n"),
            "ROM...pid: 1\n"
        );
        assert_eq!(strip_escapes("plain\n"), "plain\n");
        assert_eq!(strip_escapes("cut\u{1b}"), "cut");
    }
}

#[cfg(test)]
mod death_tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_command_dies_with_the_thread_that_started_it() {
        let child = std::thread::spawn(|| {
            let mut c = Command::new("sleep");
            c.arg("30");
            die_with_parent(&mut c);
            c.spawn().expect("spawn sleep")
        })
        .join()
        .expect("the starting thread");
        let mut child = child;
        let status = wait_bounded(
            &mut child,
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis(10),
        )
        .expect("wait");
        assert_eq!(status.and_then(|s| s.signal()), Some(libc::SIGKILL));
    }
}
