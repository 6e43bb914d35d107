//! The pure half of unshare-rs: the option table, and the command line turned into a [`Plan`]
//! (what to create, which ids to map, and the ordered steps util-linux takes), with every check
//! that needs no syscall done here, before anything is created.

use crate::idmap::{self, MapSpec};
use conventions::getopt::{Getopt, HasArg, Spec};
use conventions::ns::{self, NsKind};
use std::ffi::OsString;
use std::path::PathBuf;

/// Every option unshare-rs knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    /// A namespace option (`-m`, `--uts[=FILE]`, ...), by its `CLONE_NEW*` flag.
    Ns(libc::c_int),
    Fork,
    KillChild,
    ForwardSignals,
    MountProc,
    MapRootUser,
    MapCurrentUser,
    MapUser,
    MapGroup,
    MapUsers,
    MapGroups,
    MapAuto,
    MapSubids,
    Setgroups,
    Propagation,
    KeepCaps,
    Root,
    Wd,
    Setuid,
    Setgid,
    Monotonic,
    Boottime,
    ClearEnv,
    WhitelistEnv,
    MountBinfmt,
    LoadInterp,
    Owner,
    LoUp,
    Report,
    UnshareAll,
    UnshareUserTry,
    UnshareCgroupTry,
    ShareNet,
    DisableUserns,
    Help,
    Version,
}

const fn spec(long: &'static str, short: Option<char>, arg: HasArg, id: Opt) -> Spec<Opt> {
    Spec::new(long, short, arg, id)
}

/// A namespace option: `--mount[=FILE]`, but a plain `-m`.
const fn ns_spec(long: &'static str, short: char, flag: libc::c_int) -> Spec<Opt> {
    Spec::new(long, Some(short), HasArg::Optional, Opt::Ns(flag)).short_flag()
}

/// The option table. Short namespace letters take no argument: util-linux 2.38.1 reads `-mfoo`
/// as `-m -f -o -o` (an error), so persistence is only `--mount=FILE`.
pub const OPTIONS: [Spec<Opt>; 43] = [
    ns_spec("mount", 'm', libc::CLONE_NEWNS),
    ns_spec("uts", 'u', libc::CLONE_NEWUTS),
    ns_spec("ipc", 'i', libc::CLONE_NEWIPC),
    ns_spec("net", 'n', libc::CLONE_NEWNET),
    ns_spec("pid", 'p', libc::CLONE_NEWPID),
    ns_spec("user", 'U', libc::CLONE_NEWUSER),
    ns_spec("cgroup", 'C', libc::CLONE_NEWCGROUP),
    ns_spec("time", 'T', ns::CLONE_NEWTIME),
    spec("fork", Some('f'), HasArg::No, Opt::Fork),
    spec("kill-child", None, HasArg::Optional, Opt::KillChild),
    spec("forward-signals", None, HasArg::No, Opt::ForwardSignals),
    spec("mount-proc", None, HasArg::Optional, Opt::MountProc),
    spec("map-root-user", Some('r'), HasArg::No, Opt::MapRootUser),
    spec(
        "map-current-user",
        Some('c'),
        HasArg::No,
        Opt::MapCurrentUser,
    ),
    spec("map-user", None, HasArg::Required, Opt::MapUser),
    spec("map-group", None, HasArg::Required, Opt::MapGroup),
    spec("map-users", None, HasArg::Required, Opt::MapUsers),
    spec("map-groups", None, HasArg::Required, Opt::MapGroups),
    spec("map-auto", None, HasArg::No, Opt::MapAuto),
    spec("map-subids", None, HasArg::No, Opt::MapSubids),
    spec("setgroups", None, HasArg::Required, Opt::Setgroups),
    spec("propagation", None, HasArg::Required, Opt::Propagation),
    spec("keep-caps", None, HasArg::No, Opt::KeepCaps),
    spec("root", Some('R'), HasArg::Required, Opt::Root),
    spec("wd", Some('w'), HasArg::Required, Opt::Wd),
    spec("setuid", Some('S'), HasArg::Required, Opt::Setuid),
    spec("setgid", Some('G'), HasArg::Required, Opt::Setgid),
    spec("monotonic", None, HasArg::Required, Opt::Monotonic),
    spec("boottime", None, HasArg::Required, Opt::Boottime),
    spec("clear-env", None, HasArg::No, Opt::ClearEnv),
    spec("whitelist-env", None, HasArg::Required, Opt::WhitelistEnv),
    spec("mount-binfmt", None, HasArg::Optional, Opt::MountBinfmt),
    spec("load-interp", Some('l'), HasArg::Required, Opt::LoadInterp),
    spec("owner", None, HasArg::Required, Opt::Owner),
    spec("lo-up", None, HasArg::No, Opt::LoUp),
    spec("report", None, HasArg::Required, Opt::Report),
    spec("unshare-all", None, HasArg::No, Opt::UnshareAll),
    spec("unshare-user-try", None, HasArg::No, Opt::UnshareUserTry),
    spec(
        "unshare-cgroup-try",
        None,
        HasArg::No,
        Opt::UnshareCgroupTry,
    ),
    spec("share-net", None, HasArg::No, Opt::ShareNet),
    spec("disable-userns", None, HasArg::No, Opt::DisableUserns),
    spec("help", Some('h'), HasArg::No, Opt::Help),
    spec("version", Some('V'), HasArg::No, Opt::Version),
];

/// Where binfmt_misc is mounted by default.
pub const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// What `/proc/self/setgroups` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setgroups {
    /// `allow`.
    Allow,
    /// `deny`.
    Deny,
}

impl Setgroups {
    /// The word written to the file.
    pub fn word(self) -> &'static str {
        match self {
            Setgroups::Allow => "allow",
            Setgroups::Deny => "deny",
        }
    }
}

/// Where `--report` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportTo {
    /// An open file descriptor.
    Fd(i32),
    /// A file, created or truncated.
    File(PathBuf),
}

/// A namespace to persist by bind-mounting its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persist {
    /// Which namespace.
    pub kind: NsKind,
    /// The bind-mount target.
    pub path: PathBuf,
}

/// The ids the caller runs as, which the single-id maps and `auto` refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Effective uid.
    pub euid: u32,
    /// Effective gid.
    pub egid: u32,
}

/// One step of the run, in util-linux's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Fork a helper that stays in the parent namespaces and writes the range maps.
    SpawnMapHelper,
    /// Fork a helper that stays in the old namespaces for the persistence binds.
    SpawnBindHelper,
    /// Become the `--owner` (ids and no supplementary groups), so the new user namespace is
    /// owned by it.
    BecomeOwner,
    /// unshare(2) with these flags.
    Unshare(libc::c_int),
    /// Let the map helper write the maps and wait for it.
    SyncMapHelper,
    /// Write `/proc/self/timens_offsets` (before the fork: offsets apply to children).
    TimeOffsets,
    /// Bring `lo` up in the new network namespace.
    LoUp,
    /// Fork: the parent binds, reports and waits; the child goes on.
    Fork,
    /// Bind the namespace files on their targets (by the helper or ourselves).
    Persist,
    /// PR_SET_PDEATHSIG in the child.
    KillWithParent(i32),
    /// Write the single-id uid map `inner outer 1`.
    MapUser,
    /// Write `deny` to setgroups and the single-id gid map.
    MapGroup,
    /// Write setgroups.
    Setgroups(Setgroups),
    /// `--disable-userns`: limit the new user namespace to one child (its
    /// `user.max_user_namespaces` 1), enter that child (mapping the single ids through) and check
    /// that one more cannot be made.
    DisableUserns,
    /// Change the propagation of / recursively.
    Propagation(libc::c_ulong),
    /// chroot.
    Chroot,
    /// chdir.
    Chdir,
    /// Before the chroot: mount binfmt_misc on /proc/sys/fs/binfmt_misc and register the
    /// interpreter there, so that its `F` flag opens the interpreter from the caller's root.
    BinfmtBeforeChroot,
    /// Mount proc.
    MountProc,
    /// Mount binfmt_misc (`--mount-binfmt`).
    MountBinfmt,
    /// Register the `--load-interp` definition.
    LoadInterp,
    /// setgroups/setgid/setuid.
    SetIds,
    /// Permitted capabilities to ambient.
    KeepCaps,
    /// Clear the environment.
    ClearEnv,
    /// Write the report (or let the parent write it).
    Report,
    /// execvp the program.
    Exec,
}

/// Everything the command line asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `CLONE_NEW*` flags for unshare(2).
    pub flags: libc::c_int,
    /// The `-try` namespaces (`--unshare-all`, `--unshare-user-try`, `--unshare-cgroup-try`):
    /// added to `flags` by [`Plan::resolve_try`] where the kernel has them.
    pub try_flags: libc::c_int,
    /// `--disable-userns`: the program cannot create user namespaces.
    pub disable_userns: bool,
    /// Namespaces to persist.
    pub persist: Vec<Persist>,
    /// Run the program as a child.
    pub fork: bool,
    /// PR_SET_PDEATHSIG signal for the child.
    pub kill_child: Option<i32>,
    /// Forward SIGINT/SIGTERM to the child instead of ignoring them.
    pub forward_signals: bool,
    /// Where to mount proc.
    pub mount_proc: Option<PathBuf>,
    /// Propagation flags for /, None for `unchanged`.
    pub propagation: Option<libc::c_ulong>,
    /// What to write to setgroups.
    pub setgroups: Option<Setgroups>,
    /// Inner uid the caller's euid maps to (single-id map).
    pub map_user: Option<u32>,
    /// Inner gid the caller's egid maps to.
    pub map_group: Option<u32>,
    /// `--map-users` specs.
    pub user_ranges: Vec<MapSpec>,
    /// `--map-groups` specs.
    pub group_ranges: Vec<MapSpec>,
    /// chroot target.
    pub root: Option<PathBuf>,
    /// chdir target.
    pub wd: Option<PathBuf>,
    /// uid to switch to.
    pub setuid: Option<u32>,
    /// gid to switch to.
    pub setgid: Option<u32>,
    /// CLOCK_MONOTONIC offset in seconds.
    pub monotonic: Option<i64>,
    /// CLOCK_BOOTTIME offset in seconds.
    pub boottime: Option<i64>,
    /// Raise permitted caps to ambient.
    pub keep_caps: bool,
    /// Run the program with an empty environment.
    pub clear_env: bool,
    /// `--whitelist-env`: run it with only these variables (the ones set), in the order given.
    pub whitelist_env: Vec<String>,
    /// `--mount-binfmt[=DIR]` (also implied by `-l`): where to mount binfmt_misc.
    pub binfmt: Option<PathBuf>,
    /// `-l/--load-interp`: the binfmt_misc definition to register (`:name:type:...:flags`).
    pub load_interp: Option<OsString>,
    /// `--owner`: uid and gid that create (and so own) the user namespace.
    pub owner: Option<(u32, u32)>,
    /// Bring lo up.
    pub lo_up: bool,
    /// Where to write the JSON report.
    pub report: Option<ReportTo>,
    /// The program and its arguments (empty: the default shell).
    pub program: Vec<OsString>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run.
    Run(Box<Plan>),
    /// Print help.
    Help,
    /// Print the version.
    Version,
}

fn text(opt: &str, v: &Option<OsString>) -> Result<String, String> {
    match v {
        None => Err(format!("option '--{opt}' requires an argument")),
        Some(s) => s
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| format!("invalid --{opt} argument {s:?} (not UTF-8)")),
    }
}

fn offset(which: &str, s: &str) -> Result<i64, String> {
    s.trim().parse::<i64>().map_err(|_| {
        format!("failed to parse {which} offset: '{s}' (give whole seconds, e.g. 3600 or -60)")
    })
}

impl Plan {
    /// Whether the map helper writes uid_map: for ranges, and with `--owner` for every map
    /// (the process itself is then the owner, without the rights to write them).
    pub fn helper_maps_users(&self) -> bool {
        !self.user_ranges.is_empty() || (self.owner.is_some() && self.map_user.is_some())
    }

    /// Whether the map helper writes gid_map.
    pub fn helper_maps_groups(&self) -> bool {
        !self.group_ranges.is_empty() || (self.owner.is_some() && self.map_group.is_some())
    }

    /// Whether the map helper is needed at all.
    pub fn uses_map_helper(&self) -> bool {
        self.helper_maps_users() || self.helper_maps_groups()
    }

    /// What the map helper writes to setgroups before gid_map (a single gid map implies deny).
    pub fn helper_setgroups(&self) -> Option<Setgroups> {
        if !self.helper_maps_groups() {
            return None;
        }
        self.setgroups.or(self.map_group.map(|_| Setgroups::Deny))
    }

    /// Whether the forked child may borrow our memory until it execs (vfork semantics)
    /// instead of getting a copy of it: only when the parent has nothing to do between the fork
    /// and the child's exec (no namespace file to bind, no report to write), when no time
    /// namespace is to be entered (the kernel refuses CLONE_VM while the children's time
    /// namespace differs from ours), and when the environment is kept (clearing it would edit
    /// ours in place).
    pub fn child_borrows_memory(&self) -> bool {
        self.fork
            && self.persist.is_empty()
            && self.report.is_none()
            && self.flags & libc::CLONE_NEWTIME == 0
            && !self.clear_env
            && self.whitelist_env.is_empty()
    }

    /// Adds the `-try` namespaces the kernel has (`has(flag)`, [`crate::run::kernel_has`]) to
    /// `flags`, as bwrap does. A user namespace that only a `-try` asked for gets bwrap's map, the
    /// caller's ids to themselves (`-c`), unless a map option said otherwise.
    /// `--disable-userns` fails here when no user namespace can be made.
    pub fn resolve_try(
        &mut self,
        caller: Caller,
        has: &dyn Fn(libc::c_int) -> bool,
    ) -> Result<(), String> {
        for flag in [libc::CLONE_NEWUSER, libc::CLONE_NEWCGROUP] {
            if self.try_flags & flag == 0 || self.flags & flag != 0 || !has(flag) {
                continue;
            }
            self.flags |= flag;
            if flag == libc::CLONE_NEWUSER
                && self.map_user.is_none()
                && self.map_group.is_none()
                && !self.uses_map_helper()
            {
                self.map_user = Some(caller.euid);
                self.map_group = Some(caller.egid);
            }
        }
        self.try_flags = 0;
        if self.disable_userns && self.flags & libc::CLONE_NEWUSER == 0 {
            return Err("--disable-userns needs a new user namespace, and this kernel cannot make one (no /proc/self/ns/user, or sysctl user.max_user_namespaces is 0)".into());
        }
        Ok(())
    }

    /// Whether the single-id maps are written before the fork, right after a first unshare of
    /// the user namespace alone: `--disable-userns` enters a nested one there, in which the
    /// other namespaces are then made (so the program, in the nested one, owns them).
    fn maps_first(&self) -> bool {
        self.disable_userns && self.flags & libc::CLONE_NEWUSER != 0
    }

    /// The single-id map, setgroups and `--disable-userns` steps, wherever they run.
    fn map_steps(&self, s: &mut Vec<Step>) {
        if self.map_user.is_some() && !self.helper_maps_users() {
            s.push(Step::MapUser);
        }
        if self.map_group.is_some() && !self.helper_maps_groups() {
            s.push(Step::MapGroup);
        }
        // When the helper writes gid_map it writes setgroups first (afterwards it is refused);
        // with a single gid map `deny` was just written (and `allow` refused by parse).
        if let (Some(sg), false, false) = (
            self.setgroups,
            self.helper_maps_groups(),
            self.map_group.is_some(),
        ) {
            s.push(Step::Setgroups(sg));
        }
    }

    /// The steps in the order they run.
    pub fn steps(&self) -> Vec<Step> {
        let mut s = Vec::new();
        if self.uses_map_helper() {
            s.push(Step::SpawnMapHelper);
        }
        // The binds are made from the old namespaces (a new mount or user namespace could not
        // reach or would not be allowed to change the old mount tree), so always by a helper.
        if !self.persist.is_empty() {
            s.push(Step::SpawnBindHelper);
        }
        if self.owner.is_some() {
            s.push(Step::BecomeOwner);
        }
        if self.maps_first() {
            s.push(Step::Unshare(libc::CLONE_NEWUSER));
            self.map_steps(&mut s);
            s.push(Step::DisableUserns);
            if self.flags != libc::CLONE_NEWUSER {
                s.push(Step::Unshare(self.flags & !libc::CLONE_NEWUSER));
            }
        } else if self.flags != 0 {
            s.push(Step::Unshare(self.flags));
        }
        if self.uses_map_helper() {
            s.push(Step::SyncMapHelper);
        }
        if self.monotonic.is_some() || self.boottime.is_some() {
            s.push(Step::TimeOffsets);
        }
        if self.lo_up {
            s.push(Step::LoUp);
        }
        if self.fork {
            s.push(Step::Fork);
        } else if !self.persist.is_empty() {
            s.push(Step::Persist);
        }
        if let Some(sig) = self.kill_child {
            s.push(Step::KillWithParent(sig));
        }
        if !self.maps_first() {
            self.map_steps(&mut s);
        }
        if let (Some(p), true) = (self.propagation, self.flags & libc::CLONE_NEWNS != 0) {
            s.push(Step::Propagation(p));
        }
        if self.interp_before_chroot() {
            s.push(Step::BinfmtBeforeChroot);
        }
        if self.root.is_some() {
            s.push(Step::Chroot);
        }
        if self.root.is_some() || self.wd.is_some() {
            s.push(Step::Chdir);
        }
        if self.mount_proc.is_some() {
            s.push(Step::MountProc);
        }
        if self.binfmt.is_some() {
            s.push(Step::MountBinfmt);
        }
        if self.load_interp.is_some() && !self.interp_before_chroot() {
            s.push(Step::LoadInterp);
        }
        if self.setuid.is_some() || self.setgid.is_some() {
            s.push(Step::SetIds);
        }
        if self.keep_caps && self.flags & libc::CLONE_NEWUSER != 0 {
            s.push(Step::KeepCaps);
        }
        if self.clear_env || !self.whitelist_env.is_empty() {
            s.push(Step::ClearEnv);
        }
        if self.report.is_some() {
            s.push(Step::Report);
        }
        s.push(Step::Exec);
        s
    }

    /// Whether the interpreter is registered before the chroot, as util-linux does for a
    /// definition with the `F` flag (the kernel opens the interpreter at once, from our root).
    pub fn interp_before_chroot(&self) -> bool {
        self.root.is_some() && self.load_interp.as_deref().is_some_and(interp_is_fixed)
    }

    /// The directory to chdir to: `--wd`, else `/` after `--root`.
    pub fn chdir_target(&self) -> Option<PathBuf> {
        self.wd
            .clone()
            .or_else(|| self.root.as_ref().map(|_| PathBuf::from("/")))
    }
}

/// Whether a binfmt_misc definition has the `F` (fix binary) flag: the flags are the text after
/// its last `:`.
pub fn interp_is_fixed(def: &std::ffi::OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let b = def.as_bytes();
    b.iter()
        .rposition(|&c| c == b':')
        .is_some_and(|i| b[i + 1..].contains(&b'F'))
}

/// Parses the arguments after argv\[0\] into a [`Command`]. `caller` gives the ids that `-c` maps
/// and `lookup_uid`/`lookup_gid` resolve names (passed in so that this stays pure).
pub fn parse(
    args: &[OsString],
    caller: Caller,
    lookup_uid: &dyn Fn(&str) -> Result<u32, String>,
    lookup_gid: &dyn Fn(&str) -> Result<u32, String>,
) -> Result<Command, String> {
    let mut opts = Getopt::new(&OPTIONS, args);
    let mut p = Plan {
        flags: 0,
        try_flags: 0,
        disable_userns: false,
        persist: Vec::new(),
        fork: false,
        kill_child: None,
        forward_signals: false,
        mount_proc: None,
        propagation: Some(libc::MS_REC | libc::MS_PRIVATE),
        setgroups: None,
        map_user: None,
        map_group: None,
        user_ranges: Vec::new(),
        group_ranges: Vec::new(),
        root: None,
        wd: None,
        setuid: None,
        setgid: None,
        monotonic: None,
        boottime: None,
        keep_caps: false,
        clear_env: false,
        whitelist_env: Vec::new(),
        binfmt: None,
        load_interp: None,
        owner: None,
        lo_up: false,
        report: None,
        program: Vec::new(),
    };
    // Each option acts when it is read, as in util-linux: `-h --bogus` is the help.
    for item in opts.by_ref() {
        let (opt, value) = item.map_err(|e| e.to_string())?;
        let value = &value;
        match opt {
            Opt::Ns(flag) => {
                p.flags |= flag;
                if let Some(path) = value {
                    let kind = ns::by_flag(flag).ok_or("unknown namespace flag")?;
                    if path.is_empty() {
                        return Err(format!(
                            "--{}= needs a file name to persist the namespace on",
                            kind.long
                        ));
                    }
                    p.persist.retain(|x| x.kind != kind);
                    p.persist.push(Persist {
                        kind,
                        path: PathBuf::from(path),
                    });
                }
            }
            Opt::Fork => p.fork = true,
            Opt::KillChild => {
                p.fork = true;
                p.kill_child = Some(match value {
                    None => libc::SIGKILL,
                    Some(v) => conventions::signal::parse(&v.to_string_lossy())?,
                });
            }
            Opt::ForwardSignals => p.forward_signals = true,
            Opt::MountProc => {
                p.flags |= libc::CLONE_NEWNS;
                p.mount_proc = Some(match value {
                    Some(v) if v.is_empty() => {
                        // util-linux fails to mount on "", after creating the namespaces.
                        return Err("--mount-proc= needs a directory (or no '=': /proc)".into());
                    }
                    Some(v) => PathBuf::from(v),
                    None => PathBuf::from("/proc"),
                });
            }
            Opt::MapRootUser => {
                p.flags |= libc::CLONE_NEWUSER;
                p.map_user = Some(0);
                p.map_group = Some(0);
            }
            Opt::MapCurrentUser => {
                p.flags |= libc::CLONE_NEWUSER;
                p.map_user = Some(caller.euid);
                p.map_group = Some(caller.egid);
            }
            Opt::MapUser => {
                p.flags |= libc::CLONE_NEWUSER;
                p.map_user = Some(lookup_uid(&text("map-user", value)?)?);
            }
            Opt::MapGroup => {
                p.flags |= libc::CLONE_NEWUSER;
                p.map_group = Some(lookup_gid(&text("map-group", value)?)?);
            }
            Opt::MapUsers => {
                p.flags |= libc::CLONE_NEWUSER;
                p.user_ranges
                    .push(idmap::parse_spec(&text("map-users", value)?)?);
            }
            Opt::MapGroups => {
                p.flags |= libc::CLONE_NEWUSER;
                p.group_ranges
                    .push(idmap::parse_spec(&text("map-groups", value)?)?);
            }
            Opt::MapAuto | Opt::MapSubids => {
                p.flags |= libc::CLONE_NEWUSER;
                let spec = if opt == Opt::MapAuto {
                    MapSpec::Auto
                } else {
                    MapSpec::Subids
                };
                p.user_ranges.push(spec);
                p.group_ranges.push(spec);
            }
            Opt::Setgroups => {
                p.setgroups = Some(match text("setgroups", value)?.as_str() {
                    "allow" => Setgroups::Allow,
                    "deny" => Setgroups::Deny,
                    other => {
                        return Err(format!(
                            "unsupported --setgroups argument '{other}' (use allow or deny)"
                        ))
                    }
                })
            }
            Opt::Propagation => {
                p.propagation = match text("propagation", value)?.as_str() {
                    "slave" => Some(libc::MS_REC | libc::MS_SLAVE),
                    "shared" => Some(libc::MS_REC | libc::MS_SHARED),
                    "private" => Some(libc::MS_REC | libc::MS_PRIVATE),
                    "unchanged" => None,
                    other => {
                        return Err(format!(
                        "unsupported propagation mode: {other} (use slave, shared, private or unchanged)"
                    ))
                    }
                }
            }
            Opt::KeepCaps => p.keep_caps = true,
            Opt::Root => p.root = Some(PathBuf::from(value.clone().unwrap_or_default())),
            Opt::Wd => p.wd = Some(PathBuf::from(value.clone().unwrap_or_default())),
            Opt::Setuid => p.setuid = Some(lookup_uid(&text("setuid", value)?)?),
            Opt::Setgid => p.setgid = Some(lookup_gid(&text("setgid", value)?)?),
            Opt::Monotonic => p.monotonic = Some(offset("monotonic", &text("monotonic", value)?)?),
            Opt::Boottime => p.boottime = Some(offset("boottime", &text("boottime", value)?)?),
            Opt::ClearEnv => p.clear_env = true,
            Opt::WhitelistEnv => p.whitelist_env.extend(
                text("whitelist-env", value)?
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_string),
            ),
            Opt::MountBinfmt | Opt::LoadInterp => {
                // util-linux: both need a new user and mount namespace; the default place is
                // inside /proc, so a fresh /proc is mounted too unless --mount-proc said where.
                p.flags |= libc::CLONE_NEWNS | libc::CLONE_NEWUSER;
                match (opt, value) {
                    (Opt::MountBinfmt, Some(dir)) if !dir.is_empty() => {
                        p.binfmt = Some(PathBuf::from(dir));
                    }
                    (Opt::MountBinfmt, Some(_)) => {
                        return Err("--mount-binfmt= needs a directory".into())
                    }
                    _ if p.binfmt.is_none() => {
                        p.binfmt = Some(PathBuf::from(BINFMT_MISC));
                        p.mount_proc.get_or_insert_with(|| PathBuf::from("/proc"));
                    }
                    _ => {}
                }
                if opt == Opt::LoadInterp {
                    p.load_interp = value.clone();
                }
            }
            Opt::Owner => {
                let v = text("owner", value)?;
                let (u, g) = v
                    .split_once(':')
                    .ok_or_else(|| format!("invalid --owner '{v}' (expected UID:GID)"))?;
                p.flags |= libc::CLONE_NEWUSER;
                p.owner = Some((lookup_uid(u)?, lookup_gid(g)?));
            }
            Opt::LoUp => p.lo_up = true,
            Opt::Report => {
                let v = text("report", value)?;
                p.report = Some(if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    ReportTo::Fd(
                        v.parse()
                            .map_err(|_| format!("invalid --report descriptor '{v}'"))?,
                    )
                } else if v.is_empty() {
                    return Err("--report needs a file descriptor number or a file name".into());
                } else {
                    ReportTo::File(PathBuf::from(v))
                });
            }
            Opt::UnshareAll => {
                // bwrap's set, and as bwrap the program runs inside the new pid namespace.
                p.flags |= libc::CLONE_NEWNS
                    | libc::CLONE_NEWIPC
                    | libc::CLONE_NEWPID
                    | libc::CLONE_NEWNET
                    | libc::CLONE_NEWUTS;
                p.try_flags |= libc::CLONE_NEWUSER | libc::CLONE_NEWCGROUP;
                p.fork = true;
            }
            Opt::UnshareUserTry => p.try_flags |= libc::CLONE_NEWUSER,
            Opt::UnshareCgroupTry => p.try_flags |= libc::CLONE_NEWCGROUP,
            Opt::ShareNet => {
                p.flags &= !libc::CLONE_NEWNET;
                p.persist.retain(|x| x.kind.flag != libc::CLONE_NEWNET);
            }
            Opt::DisableUserns => {
                // A user namespace is needed; made as --unshare-user-try makes it (bwrap's
                // map), but not skipped: resolve_try fails where the kernel has none.
                p.try_flags |= libc::CLONE_NEWUSER;
                p.disable_userns = true;
            }
            Opt::Help => return Ok(Command::Help),
            Opt::Version => return Ok(Command::Version),
        }
    }
    p.program = opts.operands().to_vec();
    if (p.monotonic.is_some() || p.boottime.is_some()) && p.flags & ns::CLONE_NEWTIME == 0 {
        return Err(
            "options --monotonic and --boottime require unsharing of a time namespace (-T)".into(),
        );
    }
    for (id, what) in [(p.map_user, "--map-user"), (p.map_group, "--map-group")] {
        if id == Some(u32::MAX) {
            return Err(format!(
                "{what}=4294967295: the kernel never maps id 4294967295 (it means \"no id\")"
            ));
        }
    }
    if p.setgroups == Some(Setgroups::Allow) && p.map_group.is_some() {
        return Err("options --setgroups=allow and --map-group are mutually exclusive".into());
    }
    if p.disable_userns && (p.uses_map_helper() || p.owner.is_some()) {
        return Err("--disable-userns works with single-id maps (-r, -c, --map-user, --map-group), not with --map-users/--map-groups ranges or --owner: the nested user namespace's map is written from inside it".into());
    }
    if p.lo_up && p.flags & libc::CLONE_NEWNET == 0 {
        return Err("--lo-up needs a new network namespace (-n)".into());
    }
    if !p.fork && p.persist.iter().any(|x| x.kind.proc_name == "pid") {
        return Err("persisting a pid namespace (--pid=FILE) needs --fork: the namespace only exists once a child is in it".into());
    }
    Ok(Command::Run(Box::new(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Caller = Caller {
        euid: 1000,
        egid: 100,
    };

    fn uid(s: &str) -> Result<u32, String> {
        match s {
            "alice" => Ok(1000),
            _ => s.parse().map_err(|_| format!("unknown user '{s}'")),
        }
    }

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        match parse(&args, ME, &uid, &uid)? {
            Command::Run(p) => Ok(*p),
            other => Err(format!("not a run: {other:?}")),
        }
    }

    #[test]
    fn child_borrows_memory_only_when_the_parent_waits_idle() {
        for args in [
            &["-f", "true"][..],
            &["-fp", "--mount-proc", "true"],
            &["-mipunfC", "true"],
            &["-r", "-f", "--kill-child", "true"],
            &["-f", "-R", "/", "-w", "/tmp", "true"],
        ] {
            assert!(plan(args).expect("plan").child_borrows_memory(), "{args:?}");
        }
        for args in [
            // No fork: no child at all.
            &["-n", "true"][..],
            // The parent binds the pid namespace file while the child waits.
            &["-f", "--pid=/run/x/pid", "true"],
            // The parent writes the report while the child waits.
            &["-f", "--report=3", "true"],
            // clone(CLONE_VM) is refused while children enter a new time namespace.
            &["-fT", "true"],
            // Clearing the environment would edit the parent's.
            &["-f", "--clear-env", "true"],
        ] {
            assert!(
                !plan(args).expect("plan").child_borrows_memory(),
                "{args:?}"
            );
        }
    }

    #[test]
    fn table_has_unique_names() {
        for (i, a) in OPTIONS.iter().enumerate() {
            for b in &OPTIONS[i + 1..] {
                assert_ne!(a.long, b.long);
                if a.short.is_some() {
                    assert_ne!(a.short, b.short, "{}", a.long);
                }
            }
        }
    }

    #[test]
    fn namespaces_and_implications() {
        let p = plan(&["-fpmu", "true"]).expect("plan");
        assert_eq!(
            p.flags,
            libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS
        );
        assert!(p.fork);
        assert_eq!(p.program, vec![OsString::from("true")]);
        let p = plan(&["--mount-proc", "--kill-child"]).expect("plan");
        assert_eq!(p.flags, libc::CLONE_NEWNS);
        assert_eq!(p.mount_proc, Some(PathBuf::from("/proc")));
        assert!(p.fork);
        assert_eq!(p.kill_child, Some(libc::SIGKILL));
        let p = plan(&["--kill-child=TERM", "--mount-proc=/mnt/p"]).expect("plan");
        assert_eq!(p.kill_child, Some(libc::SIGTERM));
        assert_eq!(p.mount_proc, Some(PathBuf::from("/mnt/p")));
        let p = plan(&["-r"]).expect("plan");
        assert_eq!(
            (p.flags, p.map_user, p.map_group),
            (libc::CLONE_NEWUSER, Some(0), Some(0))
        );
        let p = plan(&["-c"]).expect("plan");
        assert_eq!((p.map_user, p.map_group), (Some(1000), Some(100)));
        let p = plan(&["--map-user=alice", "--map-group=7"]).expect("plan");
        assert_eq!((p.map_user, p.map_group), (Some(1000), Some(7)));
        assert!(plan(&["-T", "--monotonic", "-5", "--boottime=10"]).is_ok());
        assert!(p.program.is_empty());
    }

    #[test]
    fn persistence_targets() {
        let p = plan(&["--uts=/run/u", "--net=/run/n", "-m"]).expect("plan");
        assert_eq!(
            p.persist
                .iter()
                .map(|x| (x.kind.proc_name, x.path.to_string_lossy().into_owned()))
                .collect::<Vec<_>>(),
            vec![("uts", "/run/u".to_string()), ("net", "/run/n".to_string())]
        );
        assert!(plan(&["--pid=/run/p"])
            .unwrap_err()
            .contains("needs --fork"));
        assert!(plan(&["-f", "--pid=/run/p"]).is_ok());
        assert!(plan(&["--uts="]).is_err());
    }

    #[test]
    fn bad_input_is_refused() {
        for (args, needle) in [
            (&["--map-users=1:2"][..], "'1:2'"),
            (&["--kill-child=FOO"][..], "unknown signal 'FOO'"),
            (
                &["-T", "--monotonic=abc"][..],
                "failed to parse monotonic offset: 'abc'",
            ),
            (
                &["--monotonic=5"][..],
                "require unsharing of a time namespace",
            ),
            (
                &["--propagation=foo"][..],
                "unsupported propagation mode: foo",
            ),
            (
                &["--setgroups=x"][..],
                "unsupported --setgroups argument 'x'",
            ),
            (&["-r", "--setgroups=allow"][..], "mutually exclusive"),
            (&["--lo-up"][..], "needs a new network namespace"),
            (&["--map-user=nobody-such"][..], "unknown user"),
            (&["-mfoo"][..], "unexpected argument '-o' found"),
            (&["--bogus"][..], "unexpected argument '--bogus' found"),
            (&["--report="][..], "--report needs"),
            (&["--map-user=4294967295"][..], "never maps id 4294967295"),
            (&["--map-group=4294967295"][..], "--map-group=4294967295"),
        ] {
            let e = plan(args).expect_err(&format!("{args:?} should fail"));
            assert!(e.contains(needle), "{args:?}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn help_version_and_reports() {
        let a = |v: &[&str]| -> Vec<OsString> { v.iter().map(OsString::from).collect() };
        assert_eq!(parse(&a(&["-h"]), ME, &uid, &uid), Ok(Command::Help));
        assert_eq!(parse(&a(&["--vers"]), ME, &uid, &uid), Ok(Command::Version));
        // After the program, -V belongs to the program.
        assert!(matches!(
            parse(&a(&["true", "-V"]), ME, &uid, &uid),
            Ok(Command::Run(_))
        ));
        assert_eq!(
            plan(&["--report=3"]).expect("plan").report,
            Some(ReportTo::Fd(3))
        );
        assert_eq!(
            plan(&["--report", "/tmp/r.json"]).expect("plan").report,
            Some(ReportTo::File(PathBuf::from("/tmp/r.json")))
        );
    }

    #[test]
    fn binfmt_and_whitelist() {
        // -l implies --mount-binfmt at the default place, with a fresh /proc, -U and -m.
        let p = plan(&["-r", "-fp", "-l", ":x:E::x::/bin/cat:", "true"]).expect("plan");
        assert_eq!(p.flags & libc::CLONE_NEWNS, libc::CLONE_NEWNS);
        assert_eq!(p.binfmt, Some(PathBuf::from(BINFMT_MISC)));
        assert_eq!(p.mount_proc, Some(PathBuf::from("/proc")));
        assert!(!p.interp_before_chroot());
        let tail: Vec<Step> = p.steps().into_iter().rev().take(4).collect();
        assert_eq!(
            tail,
            vec![
                Step::Exec,
                Step::LoadInterp,
                Step::MountBinfmt,
                Step::MountProc
            ]
        );
        // An explicit directory: no /proc implied; --mount-proc given later wins.
        let p = plan(&["--mount-binfmt=/b", "--mount-proc=/p", "true"]).expect("plan");
        assert_eq!(
            (p.binfmt, p.mount_proc, p.load_interp),
            (Some(PathBuf::from("/b")), Some(PathBuf::from("/p")), None)
        );
        assert_eq!(p.flags, libc::CLONE_NEWNS | libc::CLONE_NEWUSER);
        let p = plan(&["--mount-binfmt=/b", "-l", "x", "true"]).expect("plan");
        assert_eq!((p.binfmt, p.mount_proc), (Some(PathBuf::from("/b")), None));
        // The F flag with --root: registered before the chroot, from the caller's root.
        let p = plan(&["-R", "/r", "--load-interp=:x:E::x::/i:OCF", "true"]).expect("plan");
        assert!(p.interp_before_chroot());
        let steps = p.steps();
        let at = |s: Step| steps.iter().position(|x| *x == s);
        assert!(at(Step::BinfmtBeforeChroot) < at(Step::Chroot));
        assert_eq!(at(Step::LoadInterp), None);
        assert!(at(Step::MountBinfmt) > at(Step::MountProc));
        assert!(interp_is_fixed(std::ffi::OsStr::new(":a:M::b:c:/x:F")));
        assert!(!interp_is_fixed(std::ffi::OsStr::new(":a:M::F:c:/x:OC")));
        assert!(!interp_is_fixed(std::ffi::OsStr::new("F")));
        let p = plan(&["--whitelist-env=A,B", "--whitelist-env", "C", "true"]).expect("plan");
        assert_eq!(p.whitelist_env, vec!["A", "B", "C"]);
        assert_eq!(p.steps(), vec![Step::ClearEnv, Step::Exec]);
        assert!(!plan(&["-f", "--whitelist-env=A", "true"])
            .expect("plan")
            .child_borrows_memory());
        assert!(plan(&["--mount-binfmt=", "true"]).is_err());
        assert!(plan(&["--mount-proc=", "true"])
            .unwrap_err()
            .contains("--mount-proc= needs a directory"));
        // The new names take part in abbreviation: --mount-b is --mount-binfmt, --mount-
        // is ambiguous, --wh is --whitelist-env.
        assert!(plan(&["--mount-b", "true"]).expect("plan").binfmt.is_some());
        assert!(plan(&["--mount-", "true"])
            .unwrap_err()
            .contains("ambiguous"));
        assert_eq!(
            plan(&["--wh=X", "true"]).expect("plan").whitelist_env,
            vec!["X"]
        );
    }

    #[test]
    fn random_command_lines_never_panic() {
        const TOKENS: [&str; 24] = [
            "-m",
            "-fpmu",
            "--uts=/x",
            "--mount=",
            "-R",
            "/",
            "--map-users=0:1:2",
            "--map-users",
            "1:2",
            "--kill-child=",
            "--kill-child=TERM",
            "-T",
            "--monotonic=-1",
            "--boottime",
            "x",
            "--",
            "-",
            "--map",
            "--owner=1:",
            "--report=",
            "--report=3",
            "-Z",
            "\u{0}",
            "--lo-up",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..5_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = (state % 7) as usize;
            let args: Vec<OsString> = (0..n)
                .map(|i| OsString::from(TOKENS[((state >> (i * 5)) % 24) as usize]))
                .collect();
            if let Ok(Command::Run(p)) = parse(&args, ME, &uid, &uid) {
                let steps = p.steps();
                assert_eq!(steps.last(), Some(&Step::Exec));
            }
        }
    }

    #[test]
    fn steps_follow_util_linux_order() {
        let p = plan(&["-fpmur", "--mount-proc", "-R/x", "--kill-child"]).expect("plan");
        assert_eq!(
            p.steps(),
            vec![
                Step::Unshare(
                    libc::CLONE_NEWPID
                        | libc::CLONE_NEWNS
                        | libc::CLONE_NEWUTS
                        | libc::CLONE_NEWUSER
                ),
                Step::Fork,
                Step::KillWithParent(libc::SIGKILL),
                Step::MapUser,
                Step::MapGroup,
                Step::Propagation(libc::MS_REC | libc::MS_PRIVATE),
                Step::Chroot,
                Step::Chdir,
                Step::MountProc,
                Step::Exec,
            ]
        );
        let p = plan(&[
            "--mount=/a",
            "-T",
            "--monotonic=1",
            "--map-users=0:100000:10",
            "--map-groups=0:100000:10",
            "--setgroups=deny",
            "-n",
            "--lo-up",
            "--propagation=unchanged",
            "--report=1",
        ])
        .expect("plan");
        assert_eq!(
            p.steps(),
            vec![
                Step::SpawnMapHelper,
                Step::SpawnBindHelper,
                Step::Unshare(
                    libc::CLONE_NEWNS
                        | ns::CLONE_NEWTIME
                        | libc::CLONE_NEWUSER
                        | libc::CLONE_NEWNET
                ),
                Step::SyncMapHelper,
                Step::TimeOffsets,
                Step::LoUp,
                Step::Persist,
                Step::Report,
                Step::Exec,
            ]
        );
        assert_eq!(plan(&[]).expect("plan").steps(), vec![Step::Exec]);
        // --owner: the helper writes even the single-id maps, after we became the owner.
        let p = plan(&["--owner=1000:100", "-r"]).expect("plan");
        assert_eq!(p.owner, Some((1000, 100)));
        assert_eq!(p.helper_setgroups(), Some(Setgroups::Deny));
        assert_eq!(
            p.steps(),
            vec![
                Step::SpawnMapHelper,
                Step::BecomeOwner,
                Step::Unshare(libc::CLONE_NEWUSER),
                Step::SyncMapHelper,
                Step::Exec
            ]
        );
        assert!(plan(&["--owner=1000"]).unwrap_err().contains("UID:GID"));
        assert_eq!(
            plan(&["--map-users=0:1:1"])
                .expect("plan")
                .helper_setgroups(),
            None
        );
        let p = plan(&[
            "-U",
            "-S",
            "0",
            "-G0",
            "--keep-caps",
            "--clear-env",
            "-w",
            "/",
        ])
        .expect("plan");
        assert_eq!(
            p.steps(),
            vec![
                Step::Unshare(libc::CLONE_NEWUSER),
                Step::Chdir,
                Step::SetIds,
                Step::KeepCaps,
                Step::ClearEnv,
                Step::Exec
            ]
        );
        assert_eq!(p.chdir_target(), Some(PathBuf::from("/")));
    }

    const ALL: libc::c_int = libc::CLONE_NEWNS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWUTS;

    #[test]
    fn unshare_all_is_bwraps_set_with_the_try_forms_resolved_by_the_kernel() {
        let mut p = plan(&["--unshare-all", "true"]).expect("plan");
        assert_eq!((p.flags, p.fork), (ALL, true));
        assert_eq!(p.try_flags, libc::CLONE_NEWUSER | libc::CLONE_NEWCGROUP);
        // A kernel with both: bwrap's user namespace maps the caller to itself.
        p.resolve_try(ME, &|_| true).expect("resolve");
        assert_eq!(p.flags, ALL | libc::CLONE_NEWUSER | libc::CLONE_NEWCGROUP);
        assert_eq!(
            (p.map_user, p.map_group, p.try_flags),
            (Some(1000), Some(100), 0)
        );
        // A kernel without user namespaces (or max_user_namespaces 0): skipped, no map.
        let mut p = plan(&["--unshare-all", "true"]).expect("plan");
        p.resolve_try(ME, &|f| f != libc::CLONE_NEWUSER)
            .expect("resolve");
        assert_eq!(p.flags, ALL | libc::CLONE_NEWCGROUP);
        assert_eq!((p.map_user, p.map_group), (None, None));
        assert_eq!(p.steps()[0], Step::Unshare(ALL | libc::CLONE_NEWCGROUP));
        // An explicit -r keeps its map; an explicit -U (no map) is not given one.
        let mut p = plan(&["--unshare-all", "-r"]).expect("plan");
        p.resolve_try(ME, &|_| true).expect("resolve");
        assert_eq!((p.map_user, p.map_group), (Some(0), Some(0)));
        let mut p = plan(&["--unshare-all", "-U"]).expect("plan");
        p.resolve_try(ME, &|_| true).expect("resolve");
        assert_eq!((p.map_user, p.map_group), (None, None));
        // The single -try forms, and --share-net after --unshare-all (also dropping a --net=FILE).
        let mut p = plan(&["--unshare-cgroup-try", "--unshare-user-try"]).expect("plan");
        p.resolve_try(ME, &|f| f == libc::CLONE_NEWCGROUP)
            .expect("resolve");
        assert_eq!((p.flags, p.fork), (libc::CLONE_NEWCGROUP, false));
        let p = plan(&["--net=/run/n", "--unshare-all", "--share-net"]).expect("plan");
        assert_eq!(p.flags, ALL & !libc::CLONE_NEWNET);
        assert!(p.persist.is_empty());
        let p = plan(&["--share-net", "--unshare-all"]).expect("plan");
        assert_eq!(p.flags, ALL, "options act in order");
    }

    #[test]
    fn disable_userns_maps_first_then_nests_then_makes_the_rest() {
        let mut p =
            plan(&["--disable-userns", "-r", "-fpm", "--mount-proc", "true"]).expect("plan");
        p.resolve_try(ME, &|_| true).expect("resolve");
        assert_eq!(
            p.steps(),
            vec![
                Step::Unshare(libc::CLONE_NEWUSER),
                Step::MapUser,
                Step::MapGroup,
                Step::DisableUserns,
                Step::Unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS),
                Step::Fork,
                Step::Propagation(libc::MS_REC | libc::MS_PRIVATE),
                Step::MountProc,
                Step::Exec,
            ]
        );
        // It makes a user namespace as --unshare-user-try would (bwrap's map), or fails.
        let mut p = plan(&["--disable-userns", "true"]).expect("plan");
        let e = p.clone().resolve_try(ME, &|_| false).unwrap_err();
        assert!(
            e.starts_with("--disable-userns needs a new user namespace"),
            "{e}"
        );
        p.resolve_try(ME, &|_| true).expect("resolve");
        assert_eq!((p.map_user, p.map_group), (Some(1000), Some(100)));
        assert_eq!(
            p.steps(),
            vec![
                Step::Unshare(libc::CLONE_NEWUSER),
                Step::MapUser,
                Step::MapGroup,
                Step::DisableUserns,
                Step::Exec
            ]
        );
        // With --unshare-all the try-made user namespace is bwrap's -c.
        let mut p = plan(&["--unshare-all", "--disable-userns", "true"]).expect("plan");
        p.resolve_try(ME, &|_| true).expect("resolve");
        assert_eq!((p.map_user, p.map_group), (Some(1000), Some(100)));
        assert_eq!(p.flags, ALL | libc::CLONE_NEWUSER | libc::CLONE_NEWCGROUP);
        for args in [
            &["--disable-userns", "--map-users=0:100000:10"][..],
            &["--disable-userns", "--owner=1000:100"],
        ] {
            let e = plan(args).unwrap_err();
            assert!(
                e.starts_with("--disable-userns works with single-id maps"),
                "{e}"
            );
        }
    }
}
