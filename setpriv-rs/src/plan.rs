//! The pure step between the command line and the syscalls: the checks between options that
//! util-linux makes before changing anything, and what `--default-container` stands for.

use crate::args::Options;
use privs::caps::Change;

/// Where the OCI seccomp profile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompSource {
    /// `--seccomp FILE`.
    File(std::ffi::OsString),
    /// The profile built into privs (`--default-container`).
    Default,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `--dump`, this many times.
    Dump(u32),
    /// `--list-caps`.
    ListCaps,
    /// Change the settings and exec the program.
    Run(Box<Plan>),
}

/// The options to apply, after the checks; `--default-container` is spelled out in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The options (with the container defaults filled in).
    pub opts: Options,
    /// The OCI seccomp profile to load last, if any.
    pub seccomp: Option<SeccompSource>,
}

/// The bounding set `--default-container` leaves: `-all` then each default capability.
pub fn default_bounding_set() -> Vec<Change> {
    let mut v = vec![Change {
        add: false,
        cap: None,
    }];
    v.extend(privs::container::DEFAULT_CAPS.iter().map(|c| Change {
        add: true,
        cap: Some(*c),
    }));
    v
}

/// Checks the options against each other, as util-linux does and in its order of messages.
pub fn plan(mut o: Options) -> Result<Mode, String> {
    if o.dump > 0 {
        if o.others > 0 || !o.program.is_empty() {
            return Err("--dump is incompatible with all other options".to_string());
        }
        return Ok(Mode::Dump(o.dump));
    }
    if o.list_caps {
        if o.others != 1 || !o.program.is_empty() {
            return Err("--list-caps must be specified alone".to_string());
        }
        return Ok(Mode::ListCaps);
    }
    if o.program.is_empty() {
        return Err("No program specified".to_string());
    }
    if (o.rgid.is_some() || o.egid.is_some())
        && !o.keep_groups
        && !o.clear_groups
        && !o.init_groups
        && o.groups.is_none()
    {
        return Err(
            "--[re]gid requires --keep-groups, --clear-groups, --init-groups, or --groups"
                .to_string(),
        );
    }
    if o.init_groups && o.ruid.is_none() {
        return Err("--init-groups requires --ruid or --reuid".to_string());
    }
    let mut seccomp = o.seccomp.clone().map(SeccompSource::File);
    if o.default_container {
        // Explicit options win over the defaults they would replace.
        o.nnp = true;
        if o.bounding_set.is_none() {
            o.bounding_set = Some(default_bounding_set());
        }
        let none = vec![Change {
            add: false,
            cap: None,
        }];
        if o.inh_caps.is_none() {
            o.inh_caps = Some(none.clone());
        }
        if o.ambient_caps.is_none() {
            o.ambient_caps = Some(none);
        }
        if seccomp.is_none() {
            seccomp = Some(SeccompSource::Default);
        }
    }
    Ok(Mode::Run(Box::new(Plan { opts: o, seccomp })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{parse, Parsed};
    use std::ffi::OsString;

    fn pl(args: &[&str]) -> Result<Mode, String> {
        match parse(args.iter().map(OsString::from)) {
            Ok(Parsed::Run(o)) => plan(o),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dump_and_list_caps_stand_alone() {
        assert_eq!(pl(&["-d", "-d"]), Ok(Mode::Dump(2)));
        assert_eq!(
            pl(&["-d", "--nnp"]),
            Err("--dump is incompatible with all other options".into())
        );
        assert_eq!(
            pl(&["-d", "ls"]),
            Err("--dump is incompatible with all other options".into())
        );
        assert_eq!(pl(&["--list-caps"]), Ok(Mode::ListCaps));
        assert_eq!(
            pl(&["--list-caps", "--nnp"]),
            Err("--list-caps must be specified alone".into())
        );
    }

    #[test]
    fn requirements_between_options() {
        assert_eq!(pl(&["--nnp"]), Err("No program specified".into()));
        assert_eq!(
            pl(&["--regid=0", "true"]),
            Err(
                "--[re]gid requires --keep-groups, --clear-groups, --init-groups, or --groups"
                    .into()
            )
        );
        assert!(matches!(
            pl(&["--regid=0", "--keep-groups", "true"]),
            Ok(Mode::Run(_))
        ));
        assert_eq!(
            pl(&["--init-groups", "true"]),
            Err("--init-groups requires --ruid or --reuid".into())
        );
    }

    #[test]
    fn default_container_spelled_out() {
        let Ok(Mode::Run(p)) = pl(&["--default-container", "sh"]) else {
            panic!()
        };
        assert!(p.opts.nnp);
        assert_eq!(p.opts.bounding_set, Some(default_bounding_set()));
        assert_eq!(p.opts.inh_caps.as_ref().map(Vec::len), Some(1));
        assert_eq!(p.seccomp, Some(SeccompSource::Default));
        let Ok(Mode::Run(p)) = pl(&[
            "--default-container",
            "--seccomp=f.json",
            "--bounding-set=-all",
            "sh",
        ]) else {
            panic!()
        };
        assert_eq!(p.seccomp, Some(SeccompSource::File("f.json".into())));
        assert_eq!(p.opts.bounding_set.as_ref().map(Vec::len), Some(1));
        let Ok(Mode::Run(p)) = pl(&["sh"]) else {
            panic!()
        };
        assert_eq!(p.seccomp, None);
        assert!(!p.opts.nnp);
    }
}
