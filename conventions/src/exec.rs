//! Running the user's program the same way in every tool: default shell, execvp, 126/127.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// The program to run when none is given: `$SHELL`, else `/bin/sh` (util-linux's rule).
pub fn default_program() -> Vec<OsString> {
    match std::env::var_os("SHELL") {
        Some(s) if !s.is_empty() => vec![s],
        _ => vec![OsString::from("/bin/sh")],
    }
}

/// `argv` if not empty, else [`default_program`].
pub fn program_or_default(argv: &[OsString]) -> Vec<OsString> {
    if argv.is_empty() {
        default_program()
    } else {
        argv.to_vec()
    }
}

/// The first file named `name` in a directory of `$PATH`, as a shell would look it up.
pub fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn cstring(s: &OsStr) -> Result<CString, String> {
    CString::new(s.as_bytes()).map_err(|_| format!("argument {s:?} contains a NUL byte"))
}

/// Replaces this process with `argv` (searched in PATH like execvp). Returns only on failure, with
/// the message to print and the exit code (127 not found, 126 not executable, 1 bad argument).
pub fn execvp(argv: &[OsString]) -> (String, i32) {
    let Some(prog) = argv.first() else {
        return ("no program to execute".to_string(), crate::exit::FAILURE);
    };
    let args: Result<Vec<CString>, String> = argv.iter().map(|a| cstring(a)).collect();
    let args = match args {
        Ok(a) => a,
        Err(e) => return (e, crate::exit::FAILURE),
    };
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // Rust's runtime ignores SIGPIPE, and an ignored disposition survives execve: the program
    // must start with the default, as it would under util-linux (`yes | head` must end quietly).
    // SAFETY: setting a standard signal to its default disposition has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // SAFETY: args outlive the call; ptrs is a NULL-terminated array of valid C strings.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    let err = std::io::Error::last_os_error();
    let errno = err.raw_os_error().unwrap_or(libc::ENOENT);
    (
        format!(
            "failed to execute {}: {}",
            prog.to_string_lossy(),
            crate::output::errtext(&err)
        ),
        crate::exit::exec_failure_code(errno),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_in_path() {
        assert!(find_in_path("sh").is_some_and(|p| p.ends_with("sh")));
        assert_eq!(find_in_path("no-such-program-microtools"), None);
    }

    #[test]
    fn default_program_is_shell_or_sh() {
        let p = default_program();
        assert_eq!(p.len(), 1);
        assert!(!p[0].is_empty());
        assert_eq!(
            program_or_default(&[OsString::from("true")]),
            vec![OsString::from("true")]
        );
    }

    #[test]
    fn exec_failures_are_reported_not_run() {
        let (msg, code) = execvp(&[OsString::from("/nonexistent/program")]);
        assert_eq!(code, 127);
        assert!(
            msg.starts_with("failed to execute /nonexistent/program: No such file"),
            "{msg}"
        );
        // A file without execute permission: EACCES, 126 (never one that could run).
        let dir = std::env::temp_dir().join(format!("conventions-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("not-executable");
        std::fs::write(&file, "echo should not run\n").expect("write");
        let (msg, code) = execvp(&[file.clone().into_os_string()]);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(code, 126, "{msg}");
        let (_, code) = execvp(&[]);
        assert_eq!(code, 1);
        let (_, code) = execvp(&[OsString::from("a\0b")]);
        assert_eq!(code, 1);
    }
}
