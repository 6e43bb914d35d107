//! Applying a plan to this process and exec'ing the program, in util-linux setpriv's order:
//! environment, no_new_privs, LSM labels, the raw seccomp filter, ids (capabilities kept
//! across the uid change), groups, securebits, bounding, inheritable and ambient sets, the
//! parent-death signal, the ptracer, Landlock, and last the OCI seccomp profile (so that the
//! filter never sees the set-up calls, as runc loads it just before execve).

use crate::args::{Pdeathsig, Ptracer, Secbit};
use crate::plan::{Plan, SeccompSource};
use crate::users::{self, User};
use crate::Error;
use privs::caps::{self, CapSet, CapsHashSet};
use privs::Capability;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

fn cstr(s: &OsStr) -> Result<CString, Error> {
    CString::new(s.as_bytes()).map_err(|_| Error::Invalid(format!("{s:?} contains a NUL byte")))
}

/// `--ruid`'s argument: a name first, else a number (util-linux's order), and its entry.
fn resolve_user(opt: &str, s: &str) -> Result<(u32, Option<User>), Error> {
    if let Some(u) = users::lookup(Some(s), 0) {
        return Ok((u.uid, Some(u)));
    }
    match s.parse::<u32>() {
        Ok(uid) => Ok((uid, users::lookup(None, uid))),
        Err(_) => Err(Error::Usage(format!(
            "{opt}: unknown user '{s}' (a number or a name from the user database)"
        ))),
    }
}

fn resolve_group(opt: &str, s: &str) -> Result<u32, Error> {
    users::gid(s).ok_or_else(|| {
        Error::Usage(format!(
            "{opt}: unknown group '{s}' (a number or a name from the group database)"
        ))
    })
}

fn prctl(what: &str, op: libc::c_int, arg: libc::c_ulong) -> Result<(), Error> {
    // SAFETY: the prctl operations used here take integer arguments only.
    if unsafe { libc::prctl(op, arg, 0, 0, 0) } == -1 {
        return Err(Error::last(what, ""));
    }
    Ok(())
}

fn reset_env(user: Option<&User>) -> Result<(), Error> {
    let me;
    let user = match user {
        Some(u) => u,
        None => {
            // SAFETY: getuid cannot fail.
            me = users::lookup(None, unsafe { libc::getuid() });
            me.as_ref().ok_or_else(|| {
                Error::Invalid("--reset-env: this user is not in the user database".to_string())
            })?
        }
    };
    let keep: Vec<(OsString, OsString)> = ["TERM", "COLORTERM", "NO_COLOR"]
        .iter()
        .filter_map(|k| std::env::var_os(k).map(|v| (OsString::from(k), v)))
        .collect();
    for (k, _) in std::env::vars_os() {
        std::env::remove_var(k);
    }
    for (k, v) in keep {
        std::env::set_var(k, v);
    }
    let shell = if user.shell.is_empty() {
        "/bin/sh"
    } else {
        &user.shell
    };
    std::env::set_var("SHELL", shell);
    std::env::set_var("HOME", &user.dir);
    std::env::set_var("USER", &user.name);
    std::env::set_var("LOGNAME", &user.name);
    // login.defs' defaults, as util-linux's logindefs_setenv_path without a login.defs.
    let path = if user.uid == 0 {
        "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin"
    } else {
        "/usr/local/bin:/bin:/usr/bin"
    };
    std::env::set_var("PATH", path);
    Ok(())
}

fn write_attr(paths: &[&str], text: &str, what: &str) -> Result<(), Error> {
    let mut last = None;
    for p in paths {
        match std::fs::OpenOptions::new().write(true).open(p) {
            Ok(mut f) => {
                return std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|err| {
                    Error::Sys {
                        what: format!("{what}: write {p}"),
                        err,
                        hint: String::new(),
                    }
                })
            }
            Err(e) => last = Some((p, e)),
        }
    }
    match last {
        Some((p, err)) => Err(Error::Sys {
            what: format!("{what}: open {p}"),
            err,
            hint: String::new(),
        }),
        None => Ok(()),
    }
}

fn seccomp_filter(path: &OsStr) -> Result<(), Error> {
    let shown = path.to_string_lossy();
    let bytes = std::fs::read(path).map_err(|err| Error::Sys {
        what: format!("--seccomp-filter: read {shown}"),
        err,
        hint: String::new(),
    })?;
    let bpf = privs::seccomp::Bpf::from_bytes(&bytes, libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as _)
        .map_err(|e| {
            Error::Invalid(format!(
                "--seccomp-filter: {shown} is not a BPF program ({})",
                match e {
                    privs::Error::Invalid(m) => m,
                    other => other.to_string(),
                }
            ))
        })?;
    prctl("prctl(PR_SET_NO_NEW_PRIVS)", libc::PR_SET_NO_NEW_PRIVS, 1)?;
    if bpf.install().is_err() {
        return Err(Error::last(
            format!("--seccomp-filter: seccomp(SET_MODE_FILTER, {shown})"),
            "the program is not a valid classic BPF seccomp filter",
        ));
    }
    Ok(())
}

fn landlock(access: u64, rules: &[crate::args::LandlockRule]) -> Result<(), Error> {
    if access == 0 {
        return Ok(());
    }
    // SAFETY: the version query takes no pointers (NULL, 0, LANDLOCK_CREATE_RULESET_VERSION).
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if abi < 1 {
        return Err(Error::last(
            "--landlock-access: landlock_create_ruleset",
            "this kernel has no Landlock, or it is not enabled (lsm= on the kernel command line)",
        ));
    }
    // Rights the kernel's ABI does not know are refused with EINVAL: say which.
    let known: u64 = match abi {
        1 => (1 << 13) - 1,
        2 => (1 << 14) - 1,
        3 | 4 => (1 << 15) - 1,
        _ => (1 << 16) - 1,
    };
    let unknown = (access | rules.iter().fold(0, |m, r| m | r.rights)) & !known;
    if unknown != 0 {
        let names: Vec<&str> = (0..16)
            .filter(|i| unknown & (1 << i) != 0)
            .map(|i| crate::args::LANDLOCK_FS[i].0)
            .collect();
        return Err(Error::Invalid(format!(
            "--landlock-access: this kernel's Landlock (ABI {abi}) does not know {}",
            names.join(",")
        )));
    }
    #[repr(C)]
    struct RulesetAttr {
        handled_access_fs: u64,
    }
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    let attr = RulesetAttr {
        handled_access_fs: access,
    };
    // SAFETY: attr is valid for its size; the kernel reads the first field only.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(Error::last("landlock_create_ruleset", ""));
    }
    for r in rules {
        let shown = r.path.to_string_lossy();
        let path = std::fs::File::open(&r.path)
            .or_else(|_| {
                let c =
                    cstr(&r.path).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
                // SAFETY: c is a valid C string; O_PATH opens without reading.
                let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: fd was just opened and is owned by nothing else.
                Ok(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
            })
            .map_err(|err| Error::Sys {
                what: format!("--landlock-rule: open {shown}"),
                err,
                hint: String::new(),
            })?;
        let attr = PathBeneath {
            allowed_access: r.rights & access,
            parent_fd: std::os::fd::AsRawFd::as_raw_fd(&path),
        };
        // SAFETY: attr is valid for the call; LANDLOCK_RULE_PATH_BENEATH is 1.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                fd as libc::c_int,
                1u32,
                &attr as *const PathBeneath,
                0u32,
            )
        };
        if rc != 0 {
            return Err(Error::last(
                format!("--landlock-rule: landlock_add_rule({shown})"),
                "a rule may allow only rights that --landlock-access handles, and rights on directories (read-dir, make-*, remove-*) only beneath a directory",
            ));
        }
    }
    prctl("prctl(PR_SET_NO_NEW_PRIVS)", libc::PR_SET_NO_NEW_PRIVS, 1)?;
    // SAFETY: fd is the ruleset just made.
    if unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd as libc::c_int, 0u32) } != 0 {
        return Err(Error::last("landlock_restrict_self", ""));
    }
    // SAFETY: fd is ours and not used again.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

fn load_seccomp(src: &SeccompSource) -> Result<(), Error> {
    let (text, name) = match src {
        SeccompSource::Default => (
            privs::seccomp::DEFAULT_PROFILE.to_string(),
            "the default profile".to_string(),
        ),
        SeccompSource::File(f) => {
            let shown = f.to_string_lossy().into_owned();
            let t = std::fs::read_to_string(f).map_err(|err| Error::Sys {
                what: format!("--seccomp: read {shown}"),
                err,
                hint: String::new(),
            })?;
            (t, shown)
        }
    };
    let profile = privs::seccomp::Profile::from_json(&text)
        .map_err(|e| Error::Invalid(format!("--seccomp: {name}: {e}")))?;
    profile
        .load()
        .map_err(|e| Error::Invalid(format!("--seccomp: {name}: {e}")))
}

fn changed(set: &CapsHashSet, changes: &[privs::caps::Change]) -> CapsHashSet {
    caps::apply_changes(set, changes)
}

/// Applies the plan and execs the program; returns only on failure.
pub fn run(plan: Plan) -> Result<std::convert::Infallible, Error> {
    let o = &plan.opts;
    // Every lookup first, so that a bad name changes nothing.
    let mut user = None;
    let ruid = match &o.ruid {
        Some(s) => {
            let (uid, u) = resolve_user(if o.reuid { "--reuid" } else { "--ruid" }, s)?;
            user = u;
            Some(uid)
        }
        None => None,
    };
    let euid = match (&o.euid, &o.ruid) {
        (Some(e), Some(r)) if e == r => ruid,
        (Some(s), _) => Some(resolve_user("--euid", s)?.0),
        (None, _) => None,
    };
    let (rname, ename) = if o.regid {
        ("--regid", "--regid")
    } else {
        ("--rgid", "--egid")
    };
    let rgid = o
        .rgid
        .as_deref()
        .map(|s| resolve_group(rname, s))
        .transpose()?;
    let egid = o
        .egid
        .as_deref()
        .map(|s| resolve_group(ename, s))
        .transpose()?;
    let groups: Option<Vec<libc::gid_t>> = o
        .groups
        .as_ref()
        .map(|g| g.iter().map(|s| resolve_group("--groups", s)).collect())
        .transpose()?;
    if o.init_groups && user.is_none() {
        return Err(Error::Usage(format!(
            "uid {} not found, --init-groups requires an user that can be found on the system",
            ruid.unwrap_or(0)
        )));
    }
    let program = conventions::exec::program_or_default(&o.program);

    if o.reset_env {
        reset_env(user.as_ref())?;
    }
    if o.nnp {
        prctl("prctl(PR_SET_NO_NEW_PRIVS)", libc::PR_SET_NO_NEW_PRIVS, 1)?;
    }
    if let Some(l) = &o.selinux_label {
        if !std::path::Path::new("/sys/fs/selinux").exists() {
            return Err(Error::Invalid(
                "--selinux-label: SELinux is not running".to_string(),
            ));
        }
        write_attr(&["/proc/self/attr/exec"], l, "--selinux-label")?;
    }
    if let Some(p) = &o.apparmor_profile {
        if !std::path::Path::new("/sys/kernel/security/apparmor").exists() {
            return Err(Error::Invalid(
                "--apparmor-profile: AppArmor is not running (no /sys/kernel/security/apparmor)"
                    .to_string(),
            ));
        }
        write_attr(
            &["/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"],
            &format!("exec {p}"),
            "--apparmor-profile",
        )?;
    }
    if let Some(f) = &o.seccomp_filter {
        seccomp_filter(f)?;
    }

    prctl("prctl(PR_SET_KEEPCAPS)", libc::PR_SET_KEEPCAPS, 1)?;
    let permitted = caps::read(CapSet::Permitted)?;
    let mut effective = caps::read(CapSet::Effective)?;
    for c in [
        Capability::CAP_SETPCAP,
        Capability::CAP_SETUID,
        Capability::CAP_SETGID,
    ] {
        if permitted.contains(&c) {
            effective.insert(c);
        }
    }
    caps::set(CapSet::Effective, &effective)?;

    if ruid.is_some() || euid.is_some() {
        let (mut r, mut e, mut s) = (0, 0, 0);
        // SAFETY: the pointers are valid for one uid each.
        unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
        let (r, e) = (ruid.unwrap_or(r), euid.unwrap_or(e));
        // SAFETY: setresuid takes integers.
        if unsafe { libc::setresuid(r, e, e) } != 0 {
            return Err(Error::last(format!("setresuid({r}, {e}, {e})"), ""));
        }
        // PR_SET_KEEPCAPS keeps the permitted set across the change, not the effective one.
        caps::set(CapSet::Effective, &effective)?;
    }
    if rgid.is_some() || egid.is_some() {
        let (mut r, mut e, mut s) = (0, 0, 0);
        // SAFETY: the pointers are valid for one gid each.
        unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
        let (r, e) = (rgid.unwrap_or(r), egid.unwrap_or(e));
        // SAFETY: setresgid takes integers.
        if unsafe { libc::setresgid(r, e, e) } != 0 {
            return Err(Error::last(format!("setresgid({r}, {e}, {e})"), ""));
        }
    }
    if let Some(g) = &groups {
        // SAFETY: g is valid for g.len() gids.
        if unsafe { libc::setgroups(g.len(), g.as_ptr()) } != 0 {
            return Err(Error::last("setgroups", ""));
        }
    } else if o.init_groups {
        let Some(u) = user.as_ref() else {
            return Err(Error::Invalid("--init-groups: no user".to_string()));
        };
        if let Err(what) = users::init_groups(u) {
            return Err(Error::last(what, ""));
        }
    } else if o.clear_groups {
        // SAFETY: an empty list reads nothing.
        if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
            return Err(Error::last("setgroups(0)", ""));
        }
    }
    if let Some(ops) = &o.securebits {
        // SAFETY: PR_GET_SECUREBITS takes no pointers.
        let mut bits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
        if bits < 0 {
            return Err(Error::last("prctl(PR_GET_SECUREBITS)", ""));
        }
        if bits & !0x3f != 0 {
            return Err(Error::Invalid(
                "--securebits: unrecognized securebit set -- refusing to adjust".to_string(),
            ));
        }
        for (add, b) in ops {
            match (add, b) {
                (_, Secbit::All) => bits = 0,
                (true, Secbit::Bit(v)) => bits |= v,
                (false, Secbit::Bit(v)) => bits &= !v,
            }
        }
        bits |= 1 << 4; // keep_caps: needed until exec, which resets it
        prctl(
            "prctl(PR_SET_SECUREBITS)",
            libc::PR_SET_SECUREBITS,
            bits as libc::c_ulong,
        )?;
    }
    if let Some(ch) = &o.bounding_set {
        let now = caps::read(CapSet::Bounding)?;
        let keep = changed(&now, ch);
        let added: Vec<_> = keep.difference(&now).collect();
        if let Some(c) = added.first() {
            return Err(Error::Invalid(format!(
                "--bounding-set: {} is not in the bounding set and cannot be added back",
                caps::short_name(**c)
            )));
        }
        caps::limit_bounding(&keep)?;
    }
    if let Some(ch) = &o.inh_caps {
        let inh = changed(&caps::read(CapSet::Inheritable)?, ch);
        caps::set(CapSet::Inheritable, &inh)?;
    }
    if let Some(ch) = &o.ambient_caps {
        for c in ch {
            let targets: Vec<Capability> = match c.cap {
                Some(one) => vec![one],
                None => caps::kernel_all().into_iter().collect(),
            };
            for t in targets {
                caps::ambient(t, c.add).map_err(|e| {
                    Error::Invalid(format!("--ambient-caps: {e} (an ambient capability must be permitted and inheritable: add it with --inh-caps)"))
                })?;
            }
        }
    }
    match o.pdeathsig {
        None => {}
        Some(Pdeathsig::Keep) => {
            let mut sig: libc::c_int = 0;
            // SAFETY: PR_GET_PDEATHSIG writes one int.
            unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut sig as *mut libc::c_int) };
            prctl(
                "prctl(PR_SET_PDEATHSIG)",
                libc::PR_SET_PDEATHSIG,
                sig as libc::c_ulong,
            )?;
        }
        Some(Pdeathsig::Clear) => prctl("prctl(PR_SET_PDEATHSIG, 0)", libc::PR_SET_PDEATHSIG, 0)?,
        Some(Pdeathsig::Signal(s)) => prctl(
            "prctl(PR_SET_PDEATHSIG)",
            libc::PR_SET_PDEATHSIG,
            s as libc::c_ulong,
        )?,
    }
    if let Some(p) = o.ptracer {
        let arg = match p {
            Ptracer::Any => libc::c_ulong::MAX, // PR_SET_PTRACER_ANY is (unsigned long)-1
            Ptracer::None => 0,
            Ptracer::Pid(p) => p as libc::c_ulong,
        };
        // SAFETY: PR_SET_PTRACER takes an integer.
        if unsafe { libc::prctl(0x59616d61, arg, 0, 0, 0) } == -1 {
            return Err(Error::last(
                "--ptracer: prctl(PR_SET_PTRACER)",
                "it needs the Yama LSM",
            ));
        }
    }
    landlock(o.landlock_access, &o.landlock_rules)?;
    if let Some(src) = &plan.seccomp {
        load_seccomp(src)?;
    }
    let (msg, code) = conventions::exec::execvp(&program);
    Err(Error::Exec { msg, code })
}
