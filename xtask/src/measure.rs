//! Runs one command as a fresh process and measures it the way the demo and the benchmarks report:
//! wall time from spawn to reaped exit, the peak RSS the kernel recorded, and how it ended; bounded
//! by a time limit after which its whole process group is killed.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What one bounded run produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code, or None when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Spawn to reaped exit.
    pub wall: Duration,
    /// ru_maxrss of the child (the largest process of the tree it waited for), KiB; at least
    /// the spawning process's own size (see [`peak_rss_kib`]).
    pub maxrss_kib: u64,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
    /// True when the limit struck and the process group was killed.
    pub timed_out: bool,
}

impl Run {
    /// True for exit code 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// How it ended, as a shell would say it: `0`, `1`, `signal 9`, `timeout`.
    pub fn status_text(&self) -> String {
        match (self.timed_out, self.code, self.signal) {
            (true, _, _) => "timeout".to_string(),
            (_, Some(c), _) => c.to_string(),
            (_, None, Some(s)) => format!("signal {s}"),
            _ => "?".to_string(),
        }
    }

    /// The last non-empty line of stderr, else of stdout: why a failed run failed; as text, without
    /// the terminal control sequences a VM's firmware writes on its console.
    pub fn why(&self) -> String {
        let last = |s: &str| {
            crate::util::strip_escapes(s)
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_string)
        };
        last(&self.stderr)
            .or_else(|| last(&self.stdout))
            .unwrap_or_else(|| format!("exit status {}", self.status_text()))
    }
}

/// A file for a child's output, unlinked once read.
struct Capture {
    path: PathBuf,
}

impl Capture {
    fn new(tag: &str) -> Result<(Capture, std::fs::File), String> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("microtools-xtask-{}-{n}.{tag}", std::process::id()));
        let file = std::fs::File::create(&path)
            .map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok((Capture { path }, file))
    }

    fn take(self) -> String {
        let mut buf = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            let _ = f.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Runs `cmd` with stdin closed and output captured to files (so that a lingering grandchild
/// cannot hold a pipe open), in its own process group, killing that group after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Result<Run, String> {
    let desc = crate::util::describe(cmd);
    let (out_cap, out_file) = Capture::new("out")?;
    let (err_cap, err_file) = Capture::new("err")?;
    cmd.stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .process_group(0);
    let start = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("cannot run {desc}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    // A blocking wait4 on its own thread gives the exit instant and the rusage in one call; the
    // caller waits on the channel with a deadline.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut status: libc::c_int = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: waits for our own child; status and ru point to live locals.
            let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            if r == pid {
                let _ = tx.send(Ok((status, ru.ru_maxrss, Instant::now())));
                return;
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                let _ = tx.send(Err(format!("wait4({pid}): {err}")));
                return;
            }
        }
    });
    drop(child);
    let (result, timed_out) = match rx.recv_timeout(limit) {
        Ok(r) => (r, false),
        Err(_) => {
            // SAFETY: kills the process group of a child we spawned and have not reaped yet, so
            // the id cannot have been reused.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            (
                rx.recv().map_err(|e| format!("waiting for {desc}: {e}"))?,
                true,
            )
        }
    };
    let (status, maxrss, end) = result?;
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    Ok(Run {
        code,
        signal,
        wall: end.duration_since(start),
        maxrss_kib: maxrss.max(0) as u64,
        stdout: out_cap.take(),
        stderr: err_cap.take(),
        timed_out,
    })
}

/// Peak RSS of `cmd` in KiB, measured by running it once under GNU time (`/usr/bin/time -f %M`).
/// wait4's own ru_maxrss would not do: exec records the high-water mark of the mm it replaces,
/// so a child spawned from a large parent (this xtask) reports at least the parent's size; GNU
/// time forks from a process of about 1 MiB, whose copy is what a shell's would be.
pub fn peak_rss_kib(cmd: &Command, limit: Duration) -> Option<u64> {
    let (cap, _file) = Capture::new("rss").ok()?;
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "%M", "-o"])
        .arg(&cap.path)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let r = run(&mut c, limit).ok()?;
    if r.timed_out {
        return None;
    }
    cap.take()
        .lines()
        .rev()
        .find_map(|l| l.trim().parse::<u64>().ok())
}

/// Median, minimum and maximum of `xs` (seconds); zeros for an empty slice.
pub fn stats(xs: &[f64]) -> (f64, f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(stats(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(stats(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
        assert_eq!(stats(&[]), (0.0, 0.0, 0.0));
    }

    #[test]
    fn measures_a_process() {
        let r = run(
            Command::new("/bin/sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .expect("run sh");
        assert_eq!(r.code, Some(3));
        assert_eq!(r.stdout, "out\n");
        assert_eq!(r.why(), "err");
        assert!(r.maxrss_kib > 0);
        assert!(!r.timed_out);
    }

    #[test]
    fn peak_rss_of_a_small_program() {
        if !std::path::Path::new("/usr/bin/time").is_file() {
            return;
        }
        let rss = peak_rss_kib(&Command::new("/bin/true"), Duration::from_secs(10))
            .expect("GNU time's %M");
        assert!(rss > 0 && rss < 4096, "{rss} KiB for /bin/true");
    }

    #[test]
    fn kills_at_the_limit() {
        let r = run(
            Command::new("/bin/sh").args(["-c", "sleep 30"]),
            Duration::from_millis(200),
        )
        .expect("run sh");
        assert!(r.timed_out);
        assert_eq!(r.signal, Some(libc::SIGKILL));
    }
}
