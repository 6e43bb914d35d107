//! User and group ids given as numbers or names, and dropping to them, as unshare/nsenter do.

/// Resolves a user given as a number or a name in the user database.
pub fn uid(spec: &str) -> Result<u32, String> {
    if let Ok(n) = spec.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::User::from_name(spec) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        _ => Err(format!(
            "unknown user '{spec}' (give a number or a name from /etc/passwd)"
        )),
    }
}

/// Resolves a group given as a number or a name in the group database.
pub fn gid(spec: &str) -> Result<u32, String> {
    if let Ok(n) = spec.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::Group::from_name(spec) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        _ => Err(format!(
            "unknown group '{spec}' (give a number or a name from /etc/group)"
        )),
    }
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

/// Raises every permitted capability into the inheritable and ambient sets so that it survives
/// execve of an unprivileged program (`--keep-caps` of unshare and nsenter).
pub fn keep_caps() -> Result<(), String> {
    use caps::CapSet;
    let permitted =
        caps::read(None, CapSet::Permitted).map_err(|e| format!("capget() failed: {e}"))?;
    for cap in permitted {
        caps::raise(None, CapSet::Inheritable, cap)
            .map_err(|e| format!("capset(inheritable {cap}) failed: {e}"))?;
        caps::raise(None, CapSet::Ambient, cap)
            .map_err(|e| format!("prctl(PR_CAP_AMBIENT_RAISE, {cap}) failed: {e}"))?;
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
}
