//! Signal names and numbers as `kill(1)` takes them: `TERM`, `SIGTERM`, `15`, `RTMIN+2`.

/// The standard signals by name, without the `SIG` prefix.
pub const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parses a signal given by name (any case, with or without `SIG`), by number (1..=64), or as
/// `RTMIN+N` / `RTMAX-N`. Returns a message naming the bad input on failure.
pub fn parse(input: &str) -> Result<i32, String> {
    let s = input.trim();
    let bad = || format!("unknown signal '{input}' (use a name like TERM or KILL, or a number)");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<i32>() {
            Ok(n) if (1..=libc::SIGRTMAX()).contains(&n) => Ok(n),
            _ => Err(bad()),
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(*n);
    }
    if name == "IOT" {
        return Ok(libc::SIGABRT);
    }
    if name == "POLL" {
        return Ok(libc::SIGIO);
    }
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let offset = |rest: &str| -> Result<i32, String> {
        if rest.is_empty() {
            Ok(0)
        } else {
            rest.parse::<i32>().map_err(|_| bad())
        }
    };
    let sig = if let Some(rest) = name.strip_prefix("RTMIN") {
        min + offset(
            rest.strip_prefix('+')
                .unwrap_or(if rest.is_empty() { "" } else { "x" }),
        )?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        max - offset(
            rest.strip_prefix('-')
                .unwrap_or(if rest.is_empty() { "" } else { "x" }),
        )?
    } else {
        return Err(bad());
    };
    if (min..=max).contains(&sig) {
        Ok(sig)
    } else {
        Err(bad())
    }
}

/// The name of `sig` without `SIG`, or its number as text.
pub fn name(sig: i32) -> String {
    NAMES
        .iter()
        .find(|(_, n)| *n == sig)
        .map(|(name, _)| (*name).to_string())
        .unwrap_or_else(|| sig.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse("SIGTERM"), Ok(15));
        assert_eq!(parse("sigkill"), Ok(9));
        assert_eq!(parse("9"), Ok(9));
        assert_eq!(parse("usr1"), Ok(libc::SIGUSR1));
        assert_eq!(parse("RTMIN"), Ok(libc::SIGRTMIN()));
        assert_eq!(parse("RTMIN+2"), Ok(libc::SIGRTMIN() + 2));
        assert_eq!(parse("RTMAX-1"), Ok(libc::SIGRTMAX() - 1));
        assert_eq!(name(15), "TERM");
        assert_eq!(name(40), "40");
    }

    #[test]
    fn rejects_unknown() {
        for bad in [
            "",
            "0",
            "65",
            "FOO",
            "SIG",
            "RTMIN+99",
            "RTMINX",
            "-9",
            "RTMAX+1",
            "99999999999",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
    }
}
