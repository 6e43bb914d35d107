//! linux.seccomp to a BPF program with rust-vmm's `seccompiler` (pure Rust, its own x86_64
//! syscall table, no C library to link into a static build), and installing it.
//!
//! The model ocirun carries out is an allow list or a deny list: one default action and one
//! action for every rule that differs from it (what the runtimes' default profiles are); rules of
//! several other actions are refused by name. Syscall names this architecture lacks (`chown32`
//! in a multi-arch profile) are dropped, as libseccomp does. A syscall of another architecture
//! kills the process.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompOperator as Op};
use seccompiler::{BpfProgram, SeccompAction, TargetArch};
use serde_json::{json, Value};

use crate::error::{Error, Result};

fn action(field: &str, a: A, errno: Option<u32>) -> Result<SeccompAction> {
    Ok(match a {
        A::ScmpActAllow => SeccompAction::Allow,
        A::ScmpActErrno => SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u32)),
        A::ScmpActKill | A::ScmpActKillThread => SeccompAction::KillThread,
        A::ScmpActKillProcess => SeccompAction::KillProcess,
        A::ScmpActTrap => SeccompAction::Trap,
        A::ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(0)),
        A::ScmpActLog => SeccompAction::Log,
        A::ScmpActNotify => {
            return Err(Error::unsupported(
                field,
                "SCMP_ACT_NOTIFY (a seccomp agent) is not implemented",
            ))
        }
    })
}

fn action_json(a: &SeccompAction) -> Value {
    match a {
        SeccompAction::Allow => json!("allow"),
        SeccompAction::Errno(n) => json!({"errno": n}),
        SeccompAction::KillThread => json!("kill_thread"),
        SeccompAction::KillProcess => json!("kill_process"),
        SeccompAction::Log => json!("log"),
        SeccompAction::Trace(n) => json!({"trace": n}),
        SeccompAction::Trap => json!("trap"),
    }
}

fn known(name: &str) -> bool {
    let probe = json!({"p": {"mismatch_action": "allow", "match_action": "trap",
                             "filter": [{"syscall": name}]}});
    seccompiler::compile_from_json(probe.to_string().as_bytes(), TargetArch::x86_64).is_ok()
}

/// The seccompiler JSON of a profile (pure but for the name probe): `None` when nothing
/// differs from the default action.
pub fn to_json(s: &LinuxSeccomp) -> Result<Value> {
    if s.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::unsupported(
            "linux.seccomp.flags",
            "seccomp filter flags are not implemented",
        ));
    }
    if s.listener_path().is_some() {
        return Err(Error::unsupported(
            "linux.seccomp.listenerPath",
            "a seccomp agent is not implemented",
        ));
    }
    let default = action(
        "linux.seccomp.defaultAction",
        s.default_action(),
        s.default_errno_ret(),
    )?;
    let mut matched: Option<SeccompAction> = None;
    // Per syscall: None = unconditional, Some(rules) = any of these condition lists.
    let mut rules: BTreeMap<String, Option<Vec<Value>>> = BTreeMap::new();
    for (i, r) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}].action");
        let a = action(&field, r.action(), r.errno_ret())?;
        if a == default {
            continue;
        }
        match &matched {
            None => matched = Some(a),
            Some(m) if *m == a => {}
            Some(_) => {
                return Err(Error::unsupported(
                    field,
                    "rules with two different actions besides the default one are not \
                     implemented yet",
                ))
            }
        }
        let mut conds = Vec::new();
        for (j, arg) in r.args().iter().flatten().enumerate() {
            let (op, val) = match arg.op() {
                Op::ScmpCmpEq => (json!("eq"), arg.value()),
                Op::ScmpCmpNe => (json!("ne"), arg.value()),
                Op::ScmpCmpLt => (json!("lt"), arg.value()),
                Op::ScmpCmpLe => (json!("le"), arg.value()),
                Op::ScmpCmpGt => (json!("gt"), arg.value()),
                Op::ScmpCmpGe => (json!("ge"), arg.value()),
                Op::ScmpCmpMaskedEq => (
                    json!({"masked_eq": arg.value()}),
                    arg.value_two().unwrap_or(0),
                ),
            };
            if arg.index() > 5 {
                return Err(Error::config(
                    format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                    "a syscall has arguments 0 to 5",
                ));
            }
            conds.push(json!({"index": arg.index(), "type": "qword", "op": op, "val": val}));
        }
        for name in r.names() {
            let entry = rules
                .entry(name.clone())
                .or_insert_with(|| Some(Vec::new()));
            match (entry.as_mut(), conds.is_empty()) {
                // Unconditional wins over any conditions.
                (_, true) => *entry = None,
                (Some(list), false) => list.push(Value::from(conds.clone())),
                (None, false) => {}
            }
        }
    }
    let Some(matched) = matched else {
        return Ok(Value::Null);
    };
    let mut filter = Vec::new();
    for (name, conds) in rules {
        if !known(&name) {
            continue;
        }
        match conds {
            None => filter.push(json!({"syscall": name})),
            Some(list) => {
                for c in list {
                    filter.push(json!({"syscall": name, "args": c}));
                }
            }
        }
    }
    Ok(json!({"main": {
        "mismatch_action": action_json(&default),
        "match_action": action_json(&matched),
        "filter": filter
    }}))
}

/// Compiles a profile; `None` when it changes nothing.
pub fn compile(s: &LinuxSeccomp) -> Result<Option<BpfProgram>> {
    let j = to_json(s)?;
    if j.is_null() {
        return Ok(None);
    }
    let mut map = seccompiler::compile_from_json(j.to_string().as_bytes(), TargetArch::x86_64)
        .map_err(|e| Error::config("linux.seccomp", format!("cannot compile: {e}")))?;
    Ok(map.remove("main"))
}

/// Installs a compiled filter on this thread (NO_NEW_PRIVS or CAP_SYS_ADMIN needed).
pub fn install(prog: &BpfProgram) -> std::io::Result<()> {
    let filters: Vec<libc::sock_filter> = prog
        .iter()
        .map(|f| libc::sock_filter {
            code: f.code,
            jt: f.jt,
            jf: f.jf,
            k: f.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: filters.len() as libc::c_ushort,
        filter: filters.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `filters`, which outlives the call; the kernel copies it.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn allow_list_with_conditions() {
        let s = profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["read", "write", "chown32"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["write"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}
            ]
        }));
        let j = to_json(&s).unwrap();
        assert_eq!(j["main"]["mismatch_action"], json!({"errno": libc::EPERM}));
        assert_eq!(j["main"]["match_action"], "allow");
        assert_eq!(
            j["main"]["filter"],
            json!([
                {"syscall": "personality", "args": [{"index": 0, "type": "qword", "op": "eq", "val": 8}]},
                {"syscall": "read"},
                {"syscall": "write"}
            ])
        );
        assert!(compile(&s).unwrap().is_some_and(|p| !p.is_empty()));
    }

    #[test]
    fn refusals_name_the_field() {
        let s = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mount"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["umount2"], "action": "SCMP_ACT_KILL"}
            ]
        }));
        let e = to_json(&s).unwrap_err().to_string();
        assert!(
            e.starts_with("config.json: linux.seccomp.syscalls[1].action: not supported"),
            "{e}"
        );
        let s = profile(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert!(to_json(&s).is_err());
        let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        assert!(compile(&s).unwrap().is_none());
    }
}
