//! Capability names and lists, as util-linux setpriv and the OCI runtime spec write them, and
//! applying a set of capabilities to this process, so that every tool reads and sets them alike.

use crate::Error;
use ::caps::Capability;
pub use ::caps::{CapSet, CapsHashSet};

/// The highest capability number the running kernel knows (`/proc/sys/kernel/cap_last_cap`),
/// or the highest the `caps` crate knows when that cannot be read.
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .unwrap_or(Capability::CAP_CHECKPOINT_RESTORE as u8)
}

/// Every capability the `caps` crate knows, in kernel order.
pub fn all_known() -> Vec<Capability> {
    let mut v: Vec<Capability> = ::caps::all().into_iter().collect();
    v.sort_by_key(|c| c.index());
    v
}

/// The capability with kernel number `n`, if the `caps` crate knows it.
pub fn by_index(n: u8) -> Option<Capability> {
    all_known().into_iter().find(|c| c.index() == n)
}

/// The name setpriv prints: lower case, without `cap_` (`sys_admin`).
pub fn short_name(c: Capability) -> String {
    let full = c.to_string().to_ascii_lowercase();
    full.strip_prefix("cap_").unwrap_or(&full).to_string()
}

/// Reads a capability as setpriv(1) takes it: a name without the `cap_` prefix in any case
/// (`chown`, `SYS_ADMIN`), or `cap_N` for a number the kernel knows.
pub fn parse_setpriv_name(s: &str) -> Result<Capability, Error> {
    let bad = || Error::Invalid(format!("unknown capability \"{s}\""));
    if let Some(n) = s.strip_prefix("cap_") {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            let n: u8 = n.parse().map_err(|_| bad())?;
            if n > last_cap() {
                return Err(bad());
            }
            return by_index(n).ok_or_else(bad);
        }
    }
    if s.is_empty() || s.len() > 40 || s.to_ascii_lowercase().starts_with("cap_") {
        return Err(bad());
    }
    format!("CAP_{}", s.to_ascii_uppercase())
        .parse::<Capability>()
        .map_err(|_| bad())
}

/// Reads a capability as the OCI runtime spec writes it: `CAP_CHOWN` (upper case, prefixed).
pub fn parse_oci_name(s: &str) -> Result<Capability, Error> {
    s.parse::<Capability>().map_err(|_| {
        Error::Invalid(format!(
            "unknown capability \"{s}\" (the OCI spec writes them as CAP_CHOWN, CAP_KILL, ...)"
        ))
    })
}

/// A list of OCI capability names (`process.capabilities.bounding` and the like); an error
/// names the entry: `[2]: unknown capability "CAP_NOPE" (...)`.
pub fn parse_oci_list<S: AsRef<str>>(names: &[S]) -> Result<CapsHashSet, Error> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| parse_oci_name(n.as_ref()).map_err(|e| Error::Invalid(format!("[{i}]: {e}"))))
        .collect()
}

/// The five sets of the OCI spec's `process.capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sets {
    /// `bounding`.
    pub bounding: CapsHashSet,
    /// `effective`.
    pub effective: CapsHashSet,
    /// `inheritable`.
    pub inheritable: CapsHashSet,
    /// `permitted`.
    pub permitted: CapsHashSet,
    /// `ambient`.
    pub ambient: CapsHashSet,
}

/// Applies the OCI sets in runc's order: the bounding set cut, then capset (effective,
/// permitted, inheritable together), then the ambient set raised. Run it after the uid change
/// (with PR_SET_KEEPCAPS) and before exec.
pub fn apply_sets(s: &Sets) -> Result<(), Error> {
    limit_bounding(&s.bounding)?;
    let current_inh = read(CapSet::Inheritable)?;
    // Inheritable first may need CAP_SETPCAP, which the new effective set may lack.
    if current_inh != s.inheritable {
        set(CapSet::Inheritable, &s.inheritable)?;
    }
    set(
        CapSet::Effective,
        &s.effective.intersection(&s.permitted).copied().collect(),
    )?;
    set(CapSet::Permitted, &s.permitted)?;
    set(CapSet::Effective, &s.effective)?;
    ::caps::clear(None, CapSet::Ambient)
        .map_err(|e| sys("prctl(PR_CAP_AMBIENT_CLEAR_ALL)".to_string(), e))?;
    for c in &s.ambient {
        ambient(*c, true)?;
    }
    Ok(())
}

/// One entry of a `+cap,-cap,-all` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// `+` (true) or `-`.
    pub add: bool,
    /// The capability, or None for `all`.
    pub cap: Option<Capability>,
}

/// Parses setpriv's `(+|-)cap,...` list (`-all,+net_bind_service`); changes apply in order.
pub fn parse_list(s: &str) -> Result<Vec<Change>, Error> {
    s.split(',')
        .map(|item| {
            let (add, name) = match item.as_bytes().first() {
                Some(b'+') => (true, &item[1..]),
                Some(b'-') => (false, &item[1..]),
                _ => {
                    return Err(Error::Invalid(format!(
                        "bad capability string \"{item}\" (each entry is +NAME or -NAME, NAME a capability or 'all')"
                    )))
                }
            };
            if name == "all" {
                Ok(Change { add, cap: None })
            } else {
                Ok(Change {
                    add,
                    cap: Some(parse_setpriv_name(name)?),
                })
            }
        })
        .collect()
}

/// The capabilities the kernel has (0..=last_cap) that the `caps` crate knows.
pub fn kernel_all() -> CapsHashSet {
    let last = last_cap();
    all_known()
        .into_iter()
        .filter(|c| c.index() <= last)
        .collect()
}

/// `set` after the changes of a list, in order.
pub fn apply_changes(set: &CapsHashSet, changes: &[Change]) -> CapsHashSet {
    let mut out = set.clone();
    for ch in changes {
        let caps: Vec<Capability> = match ch.cap {
            Some(c) => vec![c],
            None => kernel_all().into_iter().collect(),
        };
        for c in caps {
            if ch.add {
                out.insert(c);
            } else {
                out.remove(&c);
            }
        }
    }
    out
}

/// A set as setpriv's `--dump` shows it: short names in kernel order, comma separated, or
/// `[none]`.
pub fn show(set: &CapsHashSet) -> String {
    let mut v: Vec<Capability> = set.iter().copied().collect();
    v.sort_by_key(|c| c.index());
    if v.is_empty() {
        return "[none]".to_string();
    }
    v.into_iter().map(short_name).collect::<Vec<_>>().join(",")
}

fn sys(what: String, e: ::caps::errors::CapsError) -> Error {
    Error::Sys {
        what,
        why: plain(&e.to_string()),
    }
}

/// The caps crate's message as util-linux words it: `caps error: capset failure: Operation not
/// permitted (os error 1)` is `Operation not permitted`.
fn plain(msg: &str) -> String {
    let msg = msg.strip_prefix("caps error: ").unwrap_or(msg);
    let msg = conventions::output::without_os_error(msg);
    match msg.rfind(": ") {
        Some(i) if msg.ends_with("not permitted") || msg.ends_with("argument") => {
            msg[i + 2..].to_string()
        }
        _ => msg.to_string(),
    }
}

/// Reads one of this thread's sets.
pub fn read(set: CapSet) -> Result<CapsHashSet, Error> {
    ::caps::read(None, set).map_err(|e| sys(format!("reading the {set:?} capability set"), e))
}

/// Drops every capability not in `keep` from the bounding set (needs CAP_SETPCAP).
pub fn limit_bounding(keep: &CapsHashSet) -> Result<(), Error> {
    for c in read(CapSet::Bounding)? {
        if !keep.contains(&c) {
            ::caps::drop(None, CapSet::Bounding, c).map_err(|e| {
                let mut err = sys(format!("prctl(PR_CAPBSET_DROP, {})", short_name(c)), e);
                if let Error::Sys { why, .. } = &mut err {
                    if why == "Operation not permitted" {
                        why.push_str(" (dropping from the bounding set needs CAP_SETPCAP)");
                    }
                }
                err
            })?;
        }
    }
    Ok(())
}

/// Sets one of the capset(2) sets (effective, permitted, inheritable) to exactly `value`.
pub fn set(set: CapSet, value: &CapsHashSet) -> Result<(), Error> {
    ::caps::set(None, set, value).map_err(|e| sys(format!("capset({set:?}: {})", show(value)), e))
}

/// Raises or lowers one ambient capability.
pub fn ambient(c: Capability, raise: bool) -> Result<(), Error> {
    let r = if raise {
        ::caps::raise(None, CapSet::Ambient, c)
    } else {
        ::caps::drop(None, CapSet::Ambient, c)
    };
    r.map_err(|e| {
        sys(
            format!(
                "prctl(PR_CAP_AMBIENT, {}, {})",
                if raise { "RAISE" } else { "LOWER" },
                short_name(c)
            ),
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_setpriv_reads_them() {
        assert_eq!(parse_setpriv_name("chown").unwrap(), Capability::CAP_CHOWN);
        assert_eq!(
            parse_setpriv_name("SYS_ADMIN").unwrap(),
            Capability::CAP_SYS_ADMIN
        );
        assert_eq!(parse_setpriv_name("cap_0").unwrap(), Capability::CAP_CHOWN);
        assert_eq!(
            parse_setpriv_name("cap_21").unwrap(),
            Capability::CAP_SYS_ADMIN
        );
        for bad in [
            "",
            "cap_chown",
            "CAP_CHOWN",
            "nope",
            "cap_",
            "cap_99",
            "cap_-1",
            "cap_300",
        ] {
            assert!(parse_setpriv_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_setpriv_name("nope").unwrap_err().to_string(),
            "unknown capability \"nope\""
        );
        assert_eq!(
            short_name(Capability::CAP_NET_BIND_SERVICE),
            "net_bind_service"
        );
    }

    #[test]
    fn kernel_messages_without_the_crate_wrapping() {
        assert_eq!(
            plain("caps error: capset failure: Operation not permitted (os error 1)"),
            "Operation not permitted"
        );
        assert_eq!(plain("something else"), "something else");
    }

    #[test]
    fn oci_lists_name_the_entry() {
        let s = parse_oci_list(&["CAP_KILL", "CAP_CHOWN"]).unwrap();
        assert_eq!(show(&s), "chown,kill");
        let e = parse_oci_list(&["CAP_KILL", "CAP_NOPE"])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("[1]: unknown capability \"CAP_NOPE\""), "{e}");
        assert!(parse_oci_list::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn oci_names() {
        assert_eq!(parse_oci_name("CAP_KILL").unwrap(), Capability::CAP_KILL);
        assert!(parse_oci_name("kill").is_err());
        assert!(parse_oci_name("CAP_NOPE")
            .unwrap_err()
            .to_string()
            .contains("CAP_NOPE"));
    }

    #[test]
    fn lists_apply_in_order() {
        let l = parse_list("-all,+chown,+kill,-kill").unwrap();
        assert_eq!(l.len(), 4);
        let s = apply_changes(&kernel_all(), &l);
        assert_eq!(show(&s), "chown");
        assert_eq!(show(&CapsHashSet::new()), "[none]");
        let s = apply_changes(&CapsHashSet::new(), &parse_list("+kill,+chown").unwrap());
        assert_eq!(show(&s), "chown,kill");
        assert!(parse_list("chown")
            .unwrap_err()
            .to_string()
            .contains("bad capability string"));
        assert!(parse_list("+chown,").is_err());
        assert!(parse_list("").is_err());
        assert!(parse_list("+bogus")
            .unwrap_err()
            .to_string()
            .contains("\"bogus\""));
    }
}
