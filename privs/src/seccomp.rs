//! Seccomp filters from the OCI runtime-spec format (`linux.seccomp` of config.json, which is
//! also what `--seccomp FILE` reads), compiled by libseccomp, so that setpriv-rs and the OCI
//! runtime load the same profiles the same way.
//!
//! The JSON is read into a [`Profile`] first (every field checked, errors naming the field),
//! then [`Profile::load`] compiles and installs it. Rules follow runc's reading: a rule whose
//! action is the default action is dropped (libseccomp refuses it), conditions on distinct
//! arguments are ANDed in one rule, and several conditions on the same argument become one rule
//! each (ORed), as libseccomp cannot AND two comparisons of one argument.

use crate::Error;
use libseccomp::{ScmpArch, ScmpArgCompare, ScmpFilterContext, ScmpSyscall};
use serde_json::Value;

/// libseccomp's types that a [`Profile`] built in code (rather than read from JSON) names:
/// tinyvmm's own filter is such a table.
pub use libseccomp::{ScmpAction, ScmpCompareOp};

/// The project's default container profile (documented call by call in setpriv-rs/README.md).
pub const DEFAULT_PROFILE: &str = include_str!("default-seccomp.json");

/// One argument comparison of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    /// The argument's index, 0..=5.
    pub index: u32,
    /// The comparison (`SCMP_CMP_MASKED_EQ` carries `value` as the mask).
    pub op: ScmpCompareOp,
    /// The value compared with (for MASKED_EQ, `valueTwo`).
    pub datum: u64,
}

/// One rule: calls, action, conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The system calls, resolved.
    pub calls: Vec<(String, ScmpSyscall)>,
    /// What happens when one matches.
    pub action: ScmpAction,
    /// Conditions, all of which must hold.
    pub args: Vec<Arg>,
}

/// A checked profile, ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `defaultAction` (with `defaultErrnoRet`).
    pub default_action: ScmpAction,
    /// `architectures`, besides the native one.
    pub architectures: Vec<ScmpArch>,
    /// `flags`: SECCOMP_FILTER_FLAG_LOG, _SPEC_ALLOW, _TSYNC as libseccomp attributes.
    pub log: bool,
    /// SECCOMP_FILTER_FLAG_SPEC_ALLOW.
    pub spec_allow: bool,
    /// SECCOMP_FILTER_FLAG_TSYNC.
    pub tsync: bool,
    /// `syscalls`.
    pub rules: Vec<Rule>,
}

impl Rule {
    /// A rule for the calls named, resolved as a profile's `names` are: an unknown name is an
    /// error naming it.
    pub fn new(names: &[&str], action: ScmpAction, args: Vec<Arg>) -> Result<Rule, Error> {
        let calls = names
            .iter()
            .map(|n| {
                resolve(n)
                    .map(|c| (n.to_string(), c))
                    .ok_or_else(|| Error::Invalid(format!("unknown system call \"{n}\"")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rule {
            calls,
            action,
            args,
        })
    }
}

fn bad(field: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{field}: {why}"))
}

fn action(
    field: &str,
    name: &Value,
    errno: Option<&Value>,
    errno_field: &str,
) -> Result<ScmpAction, Error> {
    let name = name
        .as_str()
        .ok_or_else(|| bad(field, "must be a string such as \"SCMP_ACT_ERRNO\""))?;
    let errno = match errno {
        None | Some(Value::Null) => libc::EPERM,
        Some(v) => match v.as_u64() {
            Some(n) if n <= u16::MAX as u64 => n as i32,
            _ => return Err(bad(errno_field, "must be a number from 0 to 65535")),
        },
    };
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno),
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno as u16),
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_NOTIFY" => {
            return Err(bad(field, "SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which is not supported"))
        }
        other => {
            return Err(bad(
                field,
                format!("unknown action \"{other}\" (SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG)"),
            ))
        }
    })
}

fn op(field: &str, v: &Value, value: u64, value_two: u64) -> Result<(ScmpCompareOp, u64), Error> {
    let name = v
        .as_str()
        .ok_or_else(|| bad(field, "must be a string such as \"SCMP_CMP_EQ\""))?;
    Ok(match name {
        "SCMP_CMP_NE" => (ScmpCompareOp::NotEqual, value),
        "SCMP_CMP_LT" => (ScmpCompareOp::Less, value),
        "SCMP_CMP_LE" => (ScmpCompareOp::LessOrEqual, value),
        "SCMP_CMP_EQ" => (ScmpCompareOp::Equal, value),
        "SCMP_CMP_GE" => (ScmpCompareOp::GreaterEqual, value),
        "SCMP_CMP_GT" => (ScmpCompareOp::Greater, value),
        "SCMP_CMP_MASKED_EQ" => (ScmpCompareOp::MaskedEqual(value), value_two),
        other => {
            return Err(bad(
                field,
                format!(
                "unknown operator \"{other}\" (SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT, _MASKED_EQ)"
            ),
            ))
        }
    })
}

fn u64_field(obj: &serde_json::Map<String, Value>, key: &str, field: &str) -> Result<u64, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| {
            bad(
                &format!("{field}.{key}"),
                "must be a number from 0 to 2^64-1",
            )
        }),
    }
}

/// The x86-64 name of system call `nr`, from libseccomp's table; None for a number it has no
/// name for. For a program that reports a call by number (tinyvmm builds its SIGSYS message's
/// table with it, since a signal handler cannot ask libseccomp).
pub fn x86_64_name(nr: i32) -> Option<String> {
    ScmpSyscall::from(nr)
        .get_name_by_arch(ScmpArch::X8664)
        .ok()
        .filter(|n| !n.is_empty())
}

/// The call by name. A call the native architecture lacks but another has (vm86 on x86_64)
/// gets libseccomp's negative pseudo-number, which its rules map to each architecture that has
/// it; a number from another architecture's table would name a different native call.
fn resolve(name: &str) -> Option<ScmpSyscall> {
    ScmpSyscall::from_name(name).ok()
}

impl Profile {
    /// Reads and checks a profile in the OCI runtime-spec seccomp format.
    pub fn from_json(text: &str) -> Result<Profile, Error> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("malformed JSON: {e}")))?;
        Profile::from_value(&v)
    }

    /// Reads and checks a profile already parsed as JSON: the `linux.seccomp` object of an OCI
    /// config.json, for a runtime that has read the whole file (field names in errors are
    /// relative to that object).
    pub fn from_value(v: &Value) -> Result<Profile, Error> {
        Profile::read(v, false).map(|(p, _)| p)
    }

    /// [`Profile::from_value`] for a runtime, which must take the engines' profiles: a system
    /// call name libseccomp does not know (one newer than the library, `fchmodat2` for 2.5) is
    /// left out of its rule, as runc and crun do, instead of being an error. Returns the
    /// names left out, for the caller to say.
    pub fn from_value_skipping_unknown(v: &Value) -> Result<(Profile, Vec<String>), Error> {
        Profile::read(v, true)
    }

    fn read(v: &Value, skip_unknown: bool) -> Result<(Profile, Vec<String>), Error> {
        let mut skipped = Vec::new();
        let top = v.as_object().ok_or_else(|| {
            bad(
                "(top level)",
                "must be an object with defaultAction and syscalls",
            )
        })?;
        for key in top.keys() {
            if !matches!(
                key.as_str(),
                "defaultAction"
                    | "defaultErrnoRet"
                    | "architectures"
                    | "flags"
                    | "syscalls"
                    | "listenerPath"
                    | "listenerMetadata"
            ) {
                return Err(bad(key, "unknown field of the OCI seccomp format"));
            }
        }
        if top.get("listenerPath").is_some_and(|v| !v.is_null()) {
            return Err(bad(
                "listenerPath",
                "seccomp agents (SCMP_ACT_NOTIFY) are not supported",
            ));
        }
        let default_action = action(
            "defaultAction",
            top.get("defaultAction")
                .ok_or_else(|| bad("defaultAction", "missing"))?,
            top.get("defaultErrnoRet"),
            "defaultErrnoRet",
        )?;
        let mut architectures = Vec::new();
        if let Some(a) = top.get("architectures").filter(|v| !v.is_null()) {
            let list = a
                .as_array()
                .ok_or_else(|| bad("architectures", "must be a list of strings"))?;
            for (i, item) in list.iter().enumerate() {
                let field = format!("architectures[{i}]");
                let s = item
                    .as_str()
                    .ok_or_else(|| bad(&field, "must be a string such as \"SCMP_ARCH_X86_64\""))?;
                let arch: ScmpArch = s.parse().map_err(|_| {
                    bad(
                        &field,
                        format!("unknown architecture \"{s}\": libseccomp cannot filter it"),
                    )
                })?;
                architectures.push(arch);
            }
        }
        let (mut log, mut spec_allow, mut tsync) = (false, false, false);
        if let Some(f) = top.get("flags").filter(|v| !v.is_null()) {
            let list = f
                .as_array()
                .ok_or_else(|| bad("flags", "must be a list of strings"))?;
            for (i, item) in list.iter().enumerate() {
                match item.as_str() {
                    Some("SECCOMP_FILTER_FLAG_LOG") => log = true,
                    Some("SECCOMP_FILTER_FLAG_SPEC_ALLOW") => spec_allow = true,
                    Some("SECCOMP_FILTER_FLAG_TSYNC") => tsync = true,
                    _ => {
                        return Err(bad(
                            &format!("flags[{i}]"),
                            "unknown flag (SECCOMP_FILTER_FLAG_LOG, _SPEC_ALLOW, _TSYNC)",
                        ))
                    }
                }
            }
        }
        let mut rules = Vec::new();
        if let Some(s) = top.get("syscalls").filter(|v| !v.is_null()) {
            let list = s
                .as_array()
                .ok_or_else(|| bad("syscalls", "must be a list of objects"))?;
            for (i, item) in list.iter().enumerate() {
                let field = format!("syscalls[{i}]");
                let obj = item
                    .as_object()
                    .ok_or_else(|| bad(&field, "must be an object with names and action"))?;
                for key in obj.keys() {
                    if !matches!(
                        key.as_str(),
                        "names"
                            | "action"
                            | "errnoRet"
                            | "args"
                            | "comment"
                            | "includes"
                            | "excludes"
                    ) {
                        return Err(bad(
                            &format!("{field}.{key}"),
                            "unknown field of a seccomp rule",
                        ));
                    }
                }
                let names = obj
                    .get("names")
                    .and_then(Value::as_array)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| {
                        bad(
                            &format!("{field}.names"),
                            "must be a non-empty list of system call names",
                        )
                    })?;
                let mut calls = Vec::new();
                for (j, n) in names.iter().enumerate() {
                    let nf = format!("{field}.names[{j}]");
                    let name = n.as_str().ok_or_else(|| bad(&nf, "must be a string"))?;
                    match resolve(name) {
                        Some(call) => calls.push((name.to_string(), call)),
                        None if skip_unknown => skipped.push(name.to_string()),
                        None => return Err(bad(&nf, format!("unknown system call \"{name}\""))),
                    }
                }
                let action = action(
                    &format!("{field}.action"),
                    obj.get("action")
                        .ok_or_else(|| bad(&format!("{field}.action"), "missing"))?,
                    obj.get("errnoRet"),
                    &format!("{field}.errnoRet"),
                )?;
                let mut args = Vec::new();
                if let Some(a) = obj.get("args").filter(|v| !v.is_null()) {
                    let list = a.as_array().ok_or_else(|| {
                        bad(&format!("{field}.args"), "must be a list of objects")
                    })?;
                    for (k, arg) in list.iter().enumerate() {
                        let af = format!("{field}.args[{k}]");
                        let ao = arg.as_object().ok_or_else(|| {
                            bad(&af, "must be an object with index, value and op")
                        })?;
                        let index = u64_field(ao, "index", &af)?;
                        if index > 5 {
                            return Err(bad(
                                &format!("{af}.index"),
                                "must be 0 to 5 (a system call has six arguments)",
                            ));
                        }
                        let value = u64_field(ao, "value", &af)?;
                        let value_two = u64_field(ao, "valueTwo", &af)?;
                        let (op, datum) = op(
                            &format!("{af}.op"),
                            ao.get("op")
                                .ok_or_else(|| bad(&format!("{af}.op"), "missing"))?,
                            value,
                            value_two,
                        )?;
                        args.push(Arg {
                            index: index as u32,
                            op,
                            datum,
                        });
                    }
                }
                rules.push(Rule {
                    calls,
                    action,
                    args,
                });
            }
        }
        Ok((
            Profile {
                default_action,
                architectures,
                log,
                spec_allow,
                tsync,
                rules,
            },
            skipped,
        ))
    }

    /// Whether the filter would let every call through (an allow default and only allow
    /// rules): a runtime then installs nothing.
    pub fn allows_everything(&self) -> bool {
        self.default_action == ScmpAction::Allow
            && self
                .rules
                .iter()
                .all(|r| r.action == ScmpAction::Allow || r.calls.is_empty())
    }

    /// Compiles the profile and exports the kernel's program ([`Bpf`]), to be installed later
    /// (after fork) with [`Bpf::install`].
    pub fn to_bpf(&self) -> Result<Bpf, Error> {
        let ctx = self.compile()?;
        let sys = |what: &str, e: std::io::Error| Error::Sys {
            what: what.to_string(),
            why: e.to_string(),
        };
        // libseccomp 2.5 exports to a descriptor only (seccomp_export_bpf_mem is 2.6's).
        // SAFETY: a NUL-terminated name and no flags; the result is checked.
        let fd = unsafe { libc::memfd_create(c"seccomp-bpf".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(sys("memfd_create", std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        ctx.export_bpf(&file).map_err(|e| Error::Sys {
            what: "seccomp_export_bpf".to_string(),
            why: e.to_string(),
        })?;
        let mut bytes = Vec::new();
        use std::io::{Read, Seek};
        file.seek(std::io::SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(|e| sys("reading the exported filter", e))?;
        Bpf::from_bytes(&bytes, self.filter_flags())
    }

    /// The seccomp(2) flags of `flags` (libseccomp sets them only when it loads itself).
    fn filter_flags(&self) -> libc::c_ulong {
        let mut f = 0;
        if self.log {
            f |= libc::SECCOMP_FILTER_FLAG_LOG;
        }
        if self.spec_allow {
            f |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
        }
        if self.tsync {
            f |= libc::SECCOMP_FILTER_FLAG_TSYNC;
        }
        f
    }

    /// Compiles the profile into a libseccomp filter (not loaded).
    pub fn compile(&self) -> Result<ScmpFilterContext, Error> {
        let lib = |what: &str, e: libseccomp::error::SeccompError| Error::Sys {
            what: what.to_string(),
            why: e.to_string(),
        };
        let mut ctx =
            ScmpFilterContext::new(self.default_action).map_err(|e| lib("seccomp_init", e))?;
        for a in &self.architectures {
            ctx.add_arch(*a)
                .map_err(|e| lib(&format!("seccomp_arch_add({a:?})"), e))?;
        }
        if self.log {
            ctx.set_ctl_log(true)
                .map_err(|e| lib("seccomp_attr_set(CTL_LOG)", e))?;
        }
        if self.spec_allow {
            ctx.set_ctl_ssb(true)
                .map_err(|e| lib("seccomp_attr_set(CTL_SSB)", e))?;
        }
        if self.tsync {
            ctx.set_ctl_tsync(true)
                .map_err(|e| lib("seccomp_attr_set(CTL_TSYNC)", e))?;
        }
        for r in &self.rules {
            if r.action == self.default_action {
                continue;
            }
            let conds: Vec<ScmpArgCompare> = r
                .args
                .iter()
                .map(|a| ScmpArgCompare::new(a.index, a.op, a.datum))
                .collect();
            let repeated = (0..6).any(|i| r.args.iter().filter(|a| a.index == i).count() > 1);
            for (name, call) in &r.calls {
                let what = format!("seccomp_rule_add({name})");
                if conds.is_empty() {
                    ctx.add_rule(r.action, *call).map_err(|e| lib(&what, e))?;
                } else if repeated {
                    for c in &conds {
                        ctx.add_rule_conditional(r.action, *call, std::slice::from_ref(c))
                            .map_err(|e| lib(&what, e))?;
                    }
                } else {
                    ctx.add_rule_conditional(r.action, *call, &conds)
                        .map_err(|e| lib(&what, e))?;
                }
            }
        }
        Ok(ctx)
    }

    /// Compiles and installs the filter on this thread (setting no_new_privs, which the
    /// kernel demands of a process without CAP_SYS_ADMIN).
    pub fn load(&self) -> Result<(), Error> {
        self.compile()?.load().map_err(|e| Error::Sys {
            what: "seccomp_load".to_string(),
            why: e.to_string(),
        })
    }
}

/// A compiled filter in the kernel's classic-BPF form, with its seccomp(2) flags: a runtime
/// compiles before it forks (errors are the runtime's, reported once) and the container's init
/// installs it with one system call, late, without calling into libseccomp again.
#[derive(Clone, PartialEq, Eq)]
pub struct Bpf {
    prog: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

impl std::fmt::Debug for Bpf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Bpf({} instructions, flags {:#x})",
            self.prog.len(),
            self.flags
        )
    }
}

impl Bpf {
    /// The program from its bytes, as seccomp_export_bpf writes them and util-linux setpriv's
    /// `--seccomp-filter` reads them (8 bytes an instruction, native order: code u16, jt u8,
    /// jf u8, k u32).
    pub fn from_bytes(bytes: &[u8], flags: libc::c_ulong) -> Result<Bpf, Error> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(8) || bytes.len() / 8 > u16::MAX as usize
        {
            return Err(Error::Invalid(format!(
                "{} bytes, where a program is 1 to 65535 instructions of 8 bytes",
                bytes.len()
            )));
        }
        let prog = bytes
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Bpf { prog, flags })
    }

    /// The program's bytes, as [`Bpf::from_bytes`] reads them.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.prog
            .iter()
            .flat_map(|i| {
                let mut b = [0u8; 8];
                b[..2].copy_from_slice(&i.code.to_ne_bytes());
                b[2] = i.jt;
                b[3] = i.jf;
                b[4..].copy_from_slice(&i.k.to_ne_bytes());
                b
            })
            .collect()
    }

    /// Instructions in the program.
    pub fn len(&self) -> usize {
        self.prog.len()
    }

    /// Never true: [`Bpf::from_bytes`] refuses an empty program.
    pub fn is_empty(&self) -> bool {
        self.prog.is_empty()
    }

    /// The seccomp(2) flags it is installed with (SECCOMP_FILTER_FLAG_*).
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// Installs the filter on this thread (on every thread of the process with
    /// SECCOMP_FILTER_FLAG_TSYNC): seccomp(SECCOMP_SET_MODE_FILTER). The kernel wants
    /// no_new_privs set, or CAP_SYS_ADMIN.
    pub fn install(&self) -> std::io::Result<()> {
        let fprog = libc::sock_fprog {
            len: self.prog.len() as libc::c_ushort,
            filter: self.prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `fprog` points at `self.prog`, which outlives the call; the kernel copies it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &fprog as *const libc::sock_fprog,
            )
        };
        match r {
            0 => Ok(()),
            // TSYNC's failure: the thread that could not take the filter (it has another one).
            tid if tid > 0 => Err(std::io::Error::other(format!(
                "thread {tid} has a seccomp filter of its own (TSYNC)"
            ))),
            _ => Err(std::io::Error::last_os_error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        Profile::from_json(json).unwrap_err().to_string()
    }

    #[test]
    fn reads_the_oci_format() {
        let p = Profile::from_json(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
               "syscalls":[{"names":["mount","umount2"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                           {"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":268435456,"valueTwo":268435456,"op":"SCMP_CMP_MASKED_EQ"}]},
                           {"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        assert_eq!(p.default_action, ScmpAction::Allow);
        assert_eq!(p.architectures, vec![ScmpArch::X8664, ScmpArch::X86]);
        assert_eq!(p.rules[0].calls.len(), 2);
        assert_eq!(p.rules[0].action, ScmpAction::Errno(1));
        assert_eq!(
            p.rules[1].args,
            vec![Arg {
                index: 0,
                op: ScmpCompareOp::MaskedEqual(0x1000_0000),
                datum: 0x1000_0000
            }]
        );
        // Compiles (the ALLOW rule equal to the default is dropped, as runc does).
        p.compile().unwrap();
        let p = Profile::from_json(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38}"#)
            .unwrap();
        assert_eq!(p.default_action, ScmpAction::Errno(38));
    }

    #[test]
    fn bad_input_names_the_field() {
        assert!(err("{").starts_with("malformed JSON: "));
        assert_eq!(
            err("[]"),
            "(top level): must be an object with defaultAction and syscalls"
        );
        assert_eq!(err("{}"), "defaultAction: missing");
        assert!(err(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#)
            .starts_with("defaultAction: unknown action \"SCMP_ACT_NOPE\""));
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}"#),
            "architectures[0]: unknown architecture \"SCMP_ARCH_VAX\": libseccomp cannot filter it"
        );
        assert_eq!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"},{"names":["nosuchcall"],"action":"SCMP_ACT_ERRNO"}]}"#
            ),
            "syscalls[1].names[0]: unknown system call \"nosuchcall\""
        );
        assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_BOGUS"}]}"#)
            .starts_with("syscalls[0].action: unknown action"));
        assert_eq!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":-1}]}"#
            ),
            "syscalls[0].errnoRet: must be a number from 0 to 65535"
        );
        assert_eq!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#
            ),
            "syscalls[0].args[0].index: must be 0 to 5 (a system call has six arguments)"
        );
        assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":0,"op":"SCMP_CMP_XX"}]}]}"#)
            .starts_with("syscalls[0].args[0].op: unknown operator"));
        assert_eq!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ERRNO"}]}"#
            ),
            "syscalls[0].names: must be a non-empty list of system call names"
        );
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","bogus":1}"#),
            "bogus: unknown field of the OCI seccomp format"
        );
        assert!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x"}"#)
                .starts_with("listenerPath:")
        );
    }

    #[test]
    fn x86_64_numbers_name_their_calls() {
        assert_eq!(
            x86_64_name(libc::SYS_openat as i32).as_deref(),
            Some("openat")
        );
        assert_eq!(x86_64_name(0).as_deref(), Some("read"));
        assert_eq!(x86_64_name(100_000), None);
    }

    #[test]
    fn calls_of_other_architectures_resolve_to_pseudo_numbers() {
        // vm86 is i386's only: never a native x86_64 number that would block another call.
        let vm86 = resolve("vm86").unwrap();
        assert!(i32::from(vm86) < 0, "{vm86:?}");
        assert_eq!(
            i32::from(resolve("getpid").unwrap()),
            libc::SYS_getpid as i32
        );
        assert!(resolve("no_such_call").is_none());
    }

    #[test]
    fn a_runtime_skips_names_libseccomp_lacks() {
        let v: Value = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_LOG"],
               "syscalls":[{"names":["getpid","no_such_call"],"action":"SCMP_ACT_ALLOW"},
                           {"names":["also_not_a_call"],"action":"SCMP_ACT_KILL"}]}"#,
        )
        .unwrap();
        assert!(Profile::from_value(&v).is_err());
        let (p, skipped) = Profile::from_value_skipping_unknown(&v).unwrap();
        assert_eq!(skipped, ["no_such_call", "also_not_a_call"]);
        assert_eq!(p.rules[0].calls.len(), 1);
        assert!(p.rules[1].calls.is_empty());
        assert!(!p.allows_everything());
        let bpf = p.to_bpf().unwrap();
        assert!(bpf.len() > 4, "{bpf:?}");
        assert_eq!(bpf.flags, libc::SECCOMP_FILTER_FLAG_LOG);
        let allow = Profile::from_json(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        assert!(allow.allows_everything());
    }

    #[test]
    fn exported_bytes_become_instructions() {
        // BPF_RET|BPF_K SECCOMP_RET_ALLOW
        let ret_allow = [0x06, 0x00, 0, 0, 0x00, 0x00, 0xff, 0x7f];
        let b = Bpf::from_bytes(&ret_allow, 0).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b.prog[0].code, 0x06);
        assert_eq!(b.prog[0].k, 0x7fff_0000);
        assert_eq!(b.to_bytes(), ret_allow);
        assert!(Bpf::from_bytes(&[], 0).is_err());
        assert!(Bpf::from_bytes(&ret_allow[..7], 0).is_err());
    }

    #[test]
    fn the_default_profile_compiles() {
        let p = Profile::from_json(DEFAULT_PROFILE).unwrap();
        assert_eq!(p.default_action, ScmpAction::Allow);
        p.compile().unwrap();
    }
}
