//! linux.seccomp through privs (libseccomp, the same reading and compiler as setpriv-rs's
//! `--seccomp`): compiled to BPF in the runtime before fork, so a bad profile is create's error,
//! and installed by the init or exec'd process with one system call.
//!
//! As runc and crun do, a system call name libseccomp does not know is left out of its rule
//! (said on stderr with `--debug`); every other field is carried out or refused by name.

use oci_spec::runtime::LinuxSeccomp;
use privs::seccomp::{Bpf, Profile};

use crate::error::{Error, Result};

/// The `linux.seccomp.` error of privs's `FIELD: why`.
fn config_error(e: privs::Error) -> Error {
    match e {
        privs::Error::Invalid(text) => match text.split_once(": ") {
            Some((field, why)) if !field.contains(' ') || field == "(top level)" => {
                let field = if field == "(top level)" {
                    "linux.seccomp".to_string()
                } else {
                    format!("linux.seccomp.{field}")
                };
                Error::config(field, why)
            }
            _ => Error::config("linux.seccomp", text),
        },
        other => Error::config("linux.seccomp", format!("cannot compile: {other}")),
    }
}

/// Reads a typed profile into privs's, with the names libseccomp lacks.
pub fn profile(s: &LinuxSeccomp) -> Result<(Profile, Vec<String>)> {
    let v = serde_json::to_value(s)
        .map_err(|e| Error::config("linux.seccomp", format!("cannot re-read: {e}")))?;
    Profile::from_value_skipping_unknown(&v).map_err(config_error)
}

/// Compiles a profile; `None` when it lets everything through. The second value lists the
/// system call names left out.
pub fn compile(s: &LinuxSeccomp) -> Result<(Option<Bpf>, Vec<String>)> {
    let (p, skipped) = profile(s)?;
    if p.allows_everything() {
        return Ok((None, skipped));
    }
    let bpf = p.to_bpf().map_err(config_error)?;
    Ok((Some(bpf), skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn typed(v: Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn allow_list_with_conditions_and_other_architectures() {
        let s = typed(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["read", "write", "chown32"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["umount2"], "action": "SCMP_ACT_KILL"},
                {"names": ["fchmodat_of_the_future"], "action": "SCMP_ACT_ALLOW"}
            ]
        }));
        let (bpf, skipped) = compile(&s).unwrap();
        assert!(bpf.is_some_and(|b| b.len() > 10));
        assert_eq!(skipped, ["fchmodat_of_the_future"]);
    }

    #[test]
    fn errors_name_the_field_under_linux_seccomp() {
        let s = typed(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]
        }));
        let e = compile(&s).unwrap_err().to_string();
        assert_eq!(
            e,
            "config.json: linux.seccomp.syscalls[0].args[0].index: must be 0 to 5 (a system \
             call has six arguments)"
        );
        let s = typed(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert!(compile(&s)
            .unwrap_err()
            .to_string()
            .starts_with("config.json: linux.seccomp.defaultAction: "));
        let s = typed(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        assert!(compile(&s).unwrap().0.is_none());
    }
}
