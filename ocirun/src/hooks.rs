//! The spec's hooks: each a program run with the container's state JSON on stdin and an optional
//! timeout, at its point of the lifecycle (prestart and createRuntime by the runtime before the
//! pivot, createContainer by the init in the container's namespaces before the pivot,
//! startContainer by the init before exec, poststart after start, poststop after delete).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// One hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Where it is in config.json, for errors (`hooks.prestart[0]`).
    pub label: String,
    /// Absolute path of the program.
    pub path: PathBuf,
    /// argv (argv\[0\] included); the path alone when empty.
    pub args: Vec<String>,
    /// Its whole environment.
    pub env: Vec<String>,
    /// Seconds it may take.
    pub timeout: Option<u64>,
}

/// The hooks of a config, by lifecycle point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Deprecated, run with createRuntime's.
    pub prestart: Vec<Hook>,
    /// After the namespaces exist, in the runtime's namespace.
    pub create_runtime: Vec<Hook>,
    /// In the container's namespaces, before the pivot.
    pub create_container: Vec<Hook>,
    /// In the container, before its program.
    pub start_container: Vec<Hook>,
    /// After start.
    pub poststart: Vec<Hook>,
    /// After delete.
    pub poststop: Vec<Hook>,
}

/// The hooks of a config.json's `hooks` JSON (checked).
pub fn from_json(v: &Value) -> Result<Hooks> {
    if v.is_null() {
        return Ok(Hooks::default());
    }
    let typed: oci_spec::runtime::Hooks = serde_path_to_error::deserialize(v.clone())
        .map_err(|e| Error::config(format!("hooks.{}", e.path()), e.inner().to_string()))?;
    let list = |name: &str, l: &Option<Vec<oci_spec::runtime::Hook>>| -> Result<Vec<Hook>> {
        let mut out = Vec::new();
        for (i, h) in l.iter().flatten().enumerate() {
            let label = format!("hooks.{name}[{i}]");
            if !h.path().is_absolute() {
                return Err(Error::config(
                    format!("{label}.path"),
                    "must be an absolute path",
                ));
            }
            let timeout = match h.timeout() {
                None => None,
                Some(t) if t > 0 => Some(t as u64),
                Some(_) => {
                    return Err(Error::config(format!("{label}.timeout"), "must be above 0"))
                }
            };
            out.push(Hook {
                label,
                path: h.path().clone(),
                args: h.args().clone().unwrap_or_default(),
                env: h.env().clone().unwrap_or_default(),
                timeout,
            });
        }
        Ok(out)
    };
    Ok(Hooks {
        prestart: list("prestart", typed.prestart())?,
        create_runtime: list("createRuntime", typed.create_runtime())?,
        create_container: list("createContainer", typed.create_container())?,
        start_container: list("startContainer", typed.start_container())?,
        poststart: list("poststart", typed.poststart())?,
        poststop: list("poststop", typed.poststop())?,
    })
}

/// The state a hook reads on stdin.
pub fn state(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &std::path::Path,
    annotations: &Value,
) -> Value {
    json!({
        "ociVersion": crate::defaults::SPEC_VERSION,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": annotations,
    })
}

/// Runs `hooks` in order with `state` on stdin; the first failure is the error.
pub fn run(hooks: &[Hook], state: &Value) -> Result<()> {
    for h in hooks {
        run_one(h, state)?;
    }
    Ok(())
}

/// Runs `hooks`, printing a warning for each failure (poststart, poststop).
pub fn run_warning(tool: &str, hooks: &[Hook], state: &Value) {
    for h in hooks {
        if let Err(e) = run_one(h, state) {
            eprintln!("{tool}: warning: {e}");
        }
    }
}

fn run_one(h: &Hook, state: &Value) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(&h.path);
    if let Some((first, rest)) = h.args.split_first() {
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear();
    for e in &h.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::sys(format!("{}: running {}", h.label, h.path.display()), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {
                if h.timeout
                    .is_some_and(|t| start.elapsed() > Duration::from_secs(t))
                {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::Init(format!(
                        "{}: {} timed out after {} s",
                        h.label,
                        h.path.display(),
                        h.timeout.unwrap_or(0)
                    )));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(Error::sys(format!("{}: waiting for the hook", h.label), e)),
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(Error::Init(format!(
            "{}: {} failed ({status})",
            h.label,
            h.path.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_from_json() {
        let h = from_json(&json!({
            "prestart": [{"path": "/bin/true", "args": ["true", "x"], "timeout": 5}],
            "poststop": [{"path": "/bin/echo", "env": ["A=1"]}]
        }))
        .unwrap();
        assert_eq!(h.prestart[0].label, "hooks.prestart[0]");
        assert_eq!(h.prestart[0].args, ["true", "x"]);
        assert_eq!(h.prestart[0].timeout, Some(5));
        assert_eq!(h.poststop[0].env, ["A=1"]);
        let e = from_json(&json!({"poststart": [{"path": "rel"}]}))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config.json: hooks.poststart[0].path: must be an absolute path"
        );
        assert_eq!(from_json(&Value::Null).unwrap(), Hooks::default());
    }

    #[test]
    fn a_hook_gets_the_state_and_its_status_counts() {
        let dir = std::env::temp_dir().join(format!("ocirun-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("state");
        let h = Hook {
            label: "hooks.prestart[0]".into(),
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), format!("cat > {}", out.display())],
            env: vec![],
            timeout: Some(10),
        };
        let s = state("c1", "creating", 42, std::path::Path::new("/b"), &json!({}));
        run(std::slice::from_ref(&h), &s).unwrap();
        let got: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(got, s);
        let failing = Hook {
            args: vec!["sh".into(), "-c".into(), "exit 3".into()],
            ..h
        };
        let e = run(&[failing], &s).unwrap_err().to_string();
        assert!(
            e.starts_with("hooks.prestart[0]: /bin/sh failed (exit status: 3)"),
            "{e}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
