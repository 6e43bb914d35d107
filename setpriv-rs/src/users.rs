//! Users and groups by name or number, and a user's supplementary groups, as setpriv needs
//! them: through NSS in dynamic builds, from /etc/passwd and /etc/group in static ones (a
//! static glibc dlopens NSS modules other than `files`, and a name `files` does not know
//! crashed inside libnss_systemd; `conventions::ids` reads the files for the same reason).

/// A user-database entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Home directory.
    pub dir: String,
    /// Login shell.
    pub shell: String,
}

/// Finds a user in the text of /etc/passwd by name or by uid.
pub fn user_in_passwd(text: &str, name: Option<&str>, uid: u32) -> Option<User> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let u = User {
            name: f[0].to_string(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            dir: f[5].to_string(),
            shell: f[6].to_string(),
        };
        let hit = match name {
            Some(n) => u.name == n,
            None => u.uid == uid,
        };
        hit.then_some(u)
    })
}

/// A group's gid by name in the text of /etc/group.
pub fn gid_in_group(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// The groups of /etc/group that list `user` as a member, after `primary` (initgroups' list).
pub fn groups_of(text: &str, user: &str, primary: u32) -> Vec<u32> {
    let mut v = vec![primary];
    for l in text.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[3].split(',').any(|m| m == user) {
            if let Ok(g) = f[2].parse::<u32>() {
                if !v.contains(&g) {
                    v.push(g);
                }
            }
        }
    }
    v
}

#[cfg(not(target_feature = "crt-static"))]
fn field(p: *const libc::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a non-null passwd field is a NUL-terminated string in the caller's buffer.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// A user by name (`Some`) or uid, through NSS.
#[cfg(not(target_feature = "crt-static"))]
pub fn lookup(name: Option<&str>, uid: u32) -> Option<User> {
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: passwd is plain data; zeroed is a valid value to be overwritten.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    let rc = match name {
        Some(n) => {
            let n = std::ffi::CString::new(n).ok()?;
            // SAFETY: every pointer is valid for the size given.
            unsafe { libc::getpwnam_r(n.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) }
        }
        // SAFETY: as above.
        None => unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) },
    };
    if rc != 0 || out.is_null() {
        return None;
    }
    Some(User {
        name: field(pw.pw_name),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        dir: field(pw.pw_dir),
        shell: field(pw.pw_shell),
    })
}

/// A user by name (`Some`) or uid, from /etc/passwd.
#[cfg(target_feature = "crt-static")]
pub fn lookup(name: Option<&str>, uid: u32) -> Option<User> {
    user_in_passwd(&std::fs::read_to_string("/etc/passwd").ok()?, name, uid)
}

/// A group given as a name or a number (a name first, as util-linux).
pub fn gid(spec: &str) -> Option<u32> {
    #[cfg(not(target_feature = "crt-static"))]
    {
        if let Ok(g) = conventions::ids::gid(spec) {
            return Some(g);
        }
    }
    #[cfg(target_feature = "crt-static")]
    {
        if let Some(g) = std::fs::read_to_string("/etc/group")
            .ok()
            .and_then(|t| gid_in_group(&t, spec))
        {
            return Some(g);
        }
    }
    spec.parse().ok()
}

/// Sets the supplementary groups of `user` (initgroups(3)); returns the failed call's name.
pub fn init_groups(user: &User) -> Result<(), String> {
    #[cfg(not(target_feature = "crt-static"))]
    {
        let name =
            std::ffi::CString::new(user.name.as_str()).map_err(|_| "initgroups".to_string())?;
        // SAFETY: name is a valid C string.
        if unsafe { libc::initgroups(name.as_ptr(), user.gid) } != 0 {
            return Err(format!("initgroups({})", user.name));
        }
        Ok(())
    }
    #[cfg(target_feature = "crt-static")]
    {
        let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
        let g = groups_of(&text, &user.name, user.gid);
        // SAFETY: g is valid for g.len() gids.
        if unsafe { libc::setgroups(g.len(), g.as_ptr()) } != 0 {
            return Err(format!("setgroups (the groups of {})", user.name));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nbad line\n";
    const GROUP: &str = "root:x:0:\nadm:x:4:syslog,nobody\nusers:x:100:\nnogroup:x:65534:\n";

    #[test]
    fn passwd_and_group_files() {
        let u = user_in_passwd(PASSWD, Some("nobody"), 0).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.dir.as_str(), u.shell.as_str()),
            (65534, 65534, "/nonexistent", "/usr/sbin/nologin")
        );
        assert_eq!(user_in_passwd(PASSWD, None, 0).unwrap().name, "root");
        assert_eq!(user_in_passwd(PASSWD, Some("bad line"), 0), None);
        assert_eq!(user_in_passwd(PASSWD, None, 7), None);
        assert_eq!(gid_in_group(GROUP, "users"), Some(100));
        assert_eq!(gid_in_group(GROUP, "nope"), None);
        assert_eq!(groups_of(GROUP, "nobody", 65534), vec![65534, 4]);
        assert_eq!(groups_of(GROUP, "root", 0), vec![0]);
    }
}
