//! Where ocirun's messages go: stderr always, and `--log FILE` in runc's text or JSON-lines form
//! (`{"level","msg","time"}`), whose last error line is what containerd's shim reports.

use std::io::Write;
use std::path::Path;

use serde_json::json;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `time="..." level=error msg="..."`
    Text,
    /// One JSON object a line.
    Json,
}

/// The log: an optional file and whether debug lines are wanted.
#[derive(Debug)]
pub struct Log {
    file: Option<std::fs::File>,
    format: Format,
    debug: bool,
}

impl Log {
    /// Opens `path` for appending (created 0600), or logs to stderr only.
    pub fn open(path: Option<&Path>, format: Format, debug: bool) -> std::io::Result<Log> {
        let file = match path {
            Some(p) => {
                use std::os::unix::fs::OpenOptionsExt;
                Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .mode(0o600)
                        .open(p)?,
                )
            }
            None => None,
        };
        Ok(Log {
            file,
            format,
            debug,
        })
    }

    /// A log to stderr only.
    pub fn stderr() -> Log {
        Log {
            file: None,
            format: Format::Text,
            debug: false,
        }
    }

    /// One line of `level` in the file's format.
    pub fn line(format: Format, level: &str, msg: &str, time: &str) -> String {
        match format {
            Format::Json => json!({"level": level, "msg": msg, "time": time}).to_string(),
            Format::Text => format!(
                "time=\"{time}\" level={level} msg={}",
                serde_json::Value::from(msg)
            ),
        }
    }

    fn write(&mut self, level: &str, msg: &str) {
        if let Some(f) = &mut self.file {
            let time = crate::state::rfc3339(std::time::SystemTime::now());
            let _ = writeln!(f, "{}", Log::line(self.format, level, msg, &time));
        }
    }

    /// An error: `ocirun: MSG` on stderr, and the log file's error line.
    pub fn error(&mut self, tool: &str, msg: &str) {
        eprintln!("{tool}: {msg}");
        self.write("error", msg);
    }

    /// A debug line, with --debug only.
    pub fn debug(&mut self, tool: &str, msg: &str) {
        if self.debug {
            eprintln!("{tool}: debug: {msg}");
            self.write("debug", msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let l = Log::line(Format::Json, "error", "a \"b\"", "T");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v, json!({"level": "error", "msg": "a \"b\"", "time": "T"}));
        assert_eq!(
            Log::line(Format::Text, "error", "x y", "T"),
            "time=\"T\" level=error msg=\"x y\""
        );
    }
}
