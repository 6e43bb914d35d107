//! User and group ids given as numbers or names, and dropping to them, as unshare/nsenter do.

/// Resolves a user given as a number or a name in the user database.
pub fn uid(spec: &str) -> Result<u32, String> {
    if let Ok(n) = spec.parse::<u32>() {
        return Ok(n);
    }
    match user_by_name(spec) {
        Some(uid) => Ok(uid),
        None => Err(format!(
            "unknown user '{spec}' (give a number or a name from /etc/passwd)"
        )),
    }
}

/// Resolves a group given as a number or a name in the group database.
pub fn gid(spec: &str) -> Result<u32, String> {
    if let Ok(n) = spec.parse::<u32>() {
        return Ok(n);
    }
    match group_by_name(spec) {
        Some(gid) => Ok(gid),
        None => Err(format!(
            "unknown group '{spec}' (give a number or a name from /etc/group)"
        )),
    }
}

/// A user's uid by name, through NSS (getpwnam_r).
#[cfg(not(target_feature = "crt-static"))]
fn user_by_name(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

/// A group's gid by name, through NSS (getgrnam_r).
#[cfg(not(target_feature = "crt-static"))]
fn group_by_name(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// A user's uid by name, from /etc/passwd: a static glibc loads NSS modules other than `files`
/// (systemd's, say) with its own dlopen, and a name that `files` does not know crashed the
/// static build inside libnss_systemd. The shipped (static) builds resolve names from the files
/// only, as a static busybox does.
#[cfg(target_feature = "crt-static")]
fn user_by_name(name: &str) -> Option<u32> {
    id_in_file(&std::fs::read_to_string("/etc/passwd").ok()?, name)
}

/// A group's gid by name, from /etc/group (see [`user_by_name`]).
#[cfg(target_feature = "crt-static")]
fn group_by_name(name: &str) -> Option<u32> {
    id_in_file(&std::fs::read_to_string("/etc/group").ok()?, name)
}

/// The id (third field) of `name` in the text of /etc/passwd or /etc/group.
#[cfg_attr(not(target_feature = "crt-static"), allow(dead_code))]
fn id_in_file(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let mut fields = l.split(':');
        if fields.next()? != name {
            return None;
        }
        fields.nth(1)?.parse().ok()
    })
}

/// Sets the gid (dropping supplementary groups when `drop_groups`), then the uid. Each failure
/// names the syscall.
pub fn switch_to(uid: Option<u32>, gid: Option<u32>, drop_groups: bool) -> Result<(), String> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
    if let Some(g) = gid {
        if drop_groups {
            setgroups(&[]).map_err(|e| format!("setgroups() failed: {e}"))?;
        }
        setgid(Gid::from_raw(g)).map_err(|e| format!("setgid({g}) failed: {e}"))?;
    }
    if let Some(u) = uid {
        setuid(Uid::from_raw(u)).map_err(|e| format!("setuid({u}) failed: {e}"))?;
    }
    Ok(())
}

/// `CALL failed: why`, the caps crate's message without std's errno tail.
fn caps_failed(call: &str, e: &caps::errors::CapsError) -> String {
    format!(
        "{call} failed: {}",
        crate::output::without_os_error(&e.to_string())
    )
}

/// Raises every permitted capability into the inheritable and ambient sets so that it survives
/// execve of an unprivileged program (`--keep-caps` of unshare and nsenter).
pub fn keep_caps() -> Result<(), String> {
    use caps::CapSet;
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| caps_failed("capget()", &e))?;
    for cap in permitted {
        caps::raise(None, CapSet::Inheritable, cap)
            .map_err(|e| caps_failed(&format!("capset(inheritable {cap})"), &e))?;
        caps::raise(None, CapSet::Ambient, cap)
            .map_err(|e| caps_failed(&format!("prctl(PR_CAP_AMBIENT_RAISE, {cap})"), &e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_numbers_and_names() {
        assert_eq!(uid("0"), Ok(0));
        assert_eq!(uid("root"), Ok(0));
        assert_eq!(gid("0"), Ok(0));
        assert_eq!(gid("root"), Ok(0));
        assert_eq!(uid("4294967295"), Ok(u32::MAX));
        assert!(uid("no-such-user-xyz")
            .unwrap_err()
            .contains("unknown user 'no-such-user-xyz'"));
        assert!(gid("-1").is_err());
    }

    #[test]
    fn reads_ids_from_passwd_and_group_text() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nnobody:x:65534:65534::/:/bin/false\nbad:x:y:1\n";
        assert_eq!(id_in_file(passwd, "root"), Some(0));
        assert_eq!(id_in_file(passwd, "nobody"), Some(65534));
        assert_eq!(id_in_file(passwd, "bad"), None);
        assert_eq!(id_in_file(passwd, "no"), None);
        assert_eq!(id_in_file(passwd, ""), None);
        assert_eq!(id_in_file("users:x:100:alice,bob\n", "users"), Some(100));
    }
}
