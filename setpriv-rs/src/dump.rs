//! `--dump` and `--list-caps`: this process's privilege state in util-linux setpriv's words,
//! line for line, so that scripts reading it keep working.

use privs::caps::{self, CapSet, CapsHashSet};

fn ambient() -> Option<CapsHashSet> {
    // PR_CAP_AMBIENT_IS_SET fails with EINVAL on kernels before 4.3.
    caps::read(CapSet::Ambient).ok()
}

fn securebits() -> String {
    // SAFETY: PR_GET_SECUREBITS takes no pointers.
    let bits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
    if bits < 0 {
        return "[none]".to_string();
    }
    let mut bits = bits & !(1 << 4); // keep_caps is reset on exec: not shown, as util-linux
    let mut names = Vec::new();
    for (bit, name) in [
        (1 << 0, "noroot"),
        (1 << 1, "noroot_locked"),
        (1 << 2, "no_setuid_fixup"),
        (1 << 3, "no_setuid_fixup_locked"),
        (1 << 5, "keep_caps_locked"),
    ] {
        if bits & bit != 0 {
            names.push(name.to_string());
            bits &= !bit;
        }
    }
    if bits != 0 {
        names.push(format!("0x{bits:x}"));
    }
    if names.is_empty() {
        "[none]".to_string()
    } else {
        names.join(",")
    }
}

fn pdeathsig() -> String {
    let mut sig: libc::c_int = 0;
    // SAFETY: PR_GET_PDEATHSIG writes one int to the pointer, which is valid.
    unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut sig as *mut libc::c_int) };
    if sig == 0 {
        "[none]".to_string()
    } else {
        conventions::signal::name(sig)
    }
}

fn groups() -> String {
    // SAFETY: a zero-length query writes nothing.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut v = vec![0 as libc::gid_t; n.max(0) as usize];
    // SAFETY: v has room for n gids.
    let n = unsafe { libc::getgroups(n.max(0), v.as_mut_ptr()) };
    v.truncate(n.max(0) as usize);
    if v.is_empty() {
        "[none]".to_string()
    } else {
        v.iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn label(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_end_matches(['\n', '\0']).to_string())
}

/// The `--dump` text at `level` (how many `-d`).
pub fn dump(level: u32) -> String {
    let (mut ru, mut eu, mut su) = (0, 0, 0);
    let (mut rg, mut eg, mut sg) = (0, 0, 0);
    // SAFETY: the pointers are valid for one uid/gid each.
    unsafe {
        libc::getresuid(&mut ru, &mut eu, &mut su);
        libc::getresgid(&mut rg, &mut eg, &mut sg);
    }
    let mut s = format!("uid: {ru}\neuid: {eu}\n");
    if level >= 3 {
        s += &format!("suid: {su}\n");
    }
    s += &format!("gid: {rg}\negid: {eg}\n");
    if level >= 3 {
        s += &format!("sgid: {sg}\n");
    }
    s += &format!("Supplementary groups: {}\n", groups());
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointers.
    let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    s += &format!("no_new_privs: {nnp}\n");
    let show = |set| {
        caps::read(set)
            .map(|v| caps::show(&v))
            .unwrap_or_else(|_| "[none]".to_string())
    };
    if level >= 2 {
        s += &format!("Effective capabilities: {}\n", show(CapSet::Effective));
        s += &format!("Permitted capabilities: {}\n", show(CapSet::Permitted));
    }
    s += &format!("Inheritable capabilities: {}\n", show(CapSet::Inheritable));
    s += &format!(
        "Ambient capabilities: {}\n",
        ambient()
            .map(|v| caps::show(&v))
            .unwrap_or_else(|| "[unsupported]".to_string())
    );
    s += &format!("Capability bounding set: {}\n", show(CapSet::Bounding));
    s += &format!("Securebits: {}\n", securebits());
    s += &format!("Parent death signal: {}\n", pdeathsig());
    if std::path::Path::new("/sys/fs/selinux").exists() {
        if let Some(l) = label("/proc/self/attr/current") {
            s += &format!("SELinux label: {l}\n");
        }
    }
    if std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        if let Some(l) = label("/proc/self/attr/current") {
            s += &format!("AppArmor profile: {l}\n");
        }
    }
    s
}

/// The `--list-caps` text: every capability the kernel has, one short name a line.
pub fn list_caps() -> String {
    let last = caps::last_cap();
    caps::all_known()
        .into_iter()
        .filter(|c| c.index() <= last)
        .map(|c| caps::short_name(c) + "\n")
        .collect()
}
