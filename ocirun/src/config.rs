//! config.json to a checked plan, with no syscalls: read with the `oci-spec` crate (the
//! ecosystem's typed runtime-spec), every error naming its JSON path, and every field ocirun
//! does not carry out refused by name instead of being ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cgctl::layout::Version;
use cgctl::limits::{Limits, Write};
use conventions::ns::NsKind;
use conventions::size::Limit;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use pivot::spec::{SpecDevice, SpecMount, SpecRoot};
use serde_json::Value;
use unshare_rs::idmap::Range;

use crate::error::{Error, Result};

/// One namespace of the config: new, or joined through a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The kind, from conventions' table.
    pub kind: NsKind,
    /// The namespace file to join; `None` for a new one.
    pub path: Option<PathBuf>,
}

/// The five capability sets, each `None` when the config leaves it out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Bounding set.
    pub bounding: Option<Vec<privs::Capability>>,
    /// Effective set.
    pub effective: Option<Vec<privs::Capability>>,
    /// Inheritable set.
    pub inheritable: Option<Vec<privs::Capability>>,
    /// Permitted set.
    pub permitted: Option<Vec<privs::Capability>>,
    /// Ambient set.
    pub ambient: Option<Vec<privs::Capability>>,
}

/// What the container's process is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// argv (never empty).
    pub args: Vec<String>,
    /// `NAME=VALUE` strings.
    pub env: Vec<String>,
    /// Working directory inside the container (absolute).
    pub cwd: PathBuf,
    /// uid inside the container.
    pub uid: u32,
    /// gid inside the container.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// umask, when given.
    pub umask: Option<u32>,
    /// Capabilities; `None`: left as they are.
    pub caps: Option<CapSets>,
    /// `(RLIMIT_*, soft, hard)`.
    pub rlimits: Vec<(libc::c_int, u64, u64)>,
    /// prctl(PR_SET_NO_NEW_PRIVS).
    pub no_new_privileges: bool,
    /// /proc/PID/oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// A pty on stdio, its master sent to `--console-socket` (process.terminal).
    pub terminal: bool,
    /// `(height, width)` of that pty (process.consoleSize).
    pub console_size: Option<(u16, u16)>,
}

/// The cgroup the container runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// Name relative to each hierarchy's root (from linux.cgroupsPath, or `ocirun/ID`).
    pub name: String,
    /// The interface-file writes, in order.
    pub writes: Vec<Write>,
    /// The v1 `tasks` files the init writes 0 to, joining the group itself (set by create
    /// when it can: see `cgctl::Group::self_join_split`); empty when the runtime joins it.
    pub self_join: Vec<std::path::PathBuf>,
}

/// Everything create needs, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config's ociVersion.
    pub oci_version: String,
    /// The namespaces, in conventions' order (user first).
    pub namespaces: Vec<Namespace>,
    /// uid map lines for a new user namespace.
    pub uid_map: Vec<Range>,
    /// gid map lines.
    pub gid_map: Vec<Range>,
    /// Hostname to set.
    pub hostname: Option<String>,
    /// Domain name to set.
    pub domainname: Option<String>,
    /// The root filesystem (cgroup-type mounts are still `fstype: Some("cgroup")` here and are
    /// expanded by create once the cgroup exists).
    pub root: SpecRoot,
    /// The process.
    pub process: Process,
    /// `(key, value)` of linux.sysctl, sorted.
    pub sysctl: Vec<(String, String)>,
    /// The cgroup.
    pub cgroup: Cgroup,
    /// linux.timeOffsets: `(clock, secs, nanosecs)`.
    pub time_offsets: Vec<(String, i64, u32)>,
    /// annotations.
    pub annotations: BTreeMap<String, String>,
    /// File descriptors from 3 on that the process keeps (`--preserve-fds`); the rest are
    /// closed on exec.
    pub preserve_fds: u32,
    /// The hooks.
    pub hooks: crate::hooks::Hooks,
    /// The hooks as config.json has them (kept in the state for start and delete).
    pub hooks_json: Value,
    /// The compiled linux.seccomp filter, `None` when there is none.
    pub seccomp: Option<privs::seccomp::Bpf>,
    /// linux.seccomp's system call names libseccomp does not know, left out (a warning).
    pub seccomp_unknown: Vec<String>,
}

impl Plan {
    /// The `CLONE_NEW*` flags of the namespaces made new.
    pub fn new_flags(&self) -> libc::c_int {
        self.namespaces
            .iter()
            .filter(|n| n.path.is_none())
            .fold(0, |acc, n| acc | n.kind.flag)
    }

    /// Whether the container gets a user namespace (new or joined).
    pub fn has(&self, flag: libc::c_int) -> bool {
        self.namespaces.iter().any(|n| n.kind.flag == flag)
    }
}

/// Reads `BUNDLE/config.json` into a JSON value (a syntax error names where it is).
pub fn read(bundle: &Path) -> Result<Value> {
    let file = bundle.join("config.json");
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Error::sys_hint(
            format!("reading {}", file.display()),
            e,
            "give the bundle directory with -b/--bundle (it holds config.json)",
        )
    })?;
    parse(&text)
}

/// Parses config.json text into a JSON value.
pub fn parse(text: &str) -> Result<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize::<_, Value>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "(top level)".to_string()
        } else {
            path
        };
        Error::config(path, e.into_inner().to_string())
    })
}

/// Whether a JSON value says something: not null, not an empty array, object or string, not
/// `false`.
fn present(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Fields ocirun does not carry out, by JSON pointer, each with the reason given to the user.
const REFUSED: [(&str, &str); 19] = [
    ("/process/apparmorProfile", "AppArmor is not implemented"),
    ("/linux/intelRdt", "Intel RDT is not implemented"),
    ("/linux/personality", "personality(2) is not implemented"),
    ("/linux/memoryPolicy", "set_mempolicy(2) is not implemented"),
    (
        "/linux/netDevices",
        "moving network devices is not implemented",
    ),
    (
        "/process/ioPriority",
        "ioprio_set(2) is not implemented yet",
    ),
    ("/process/scheduler", "sched_setattr(2) is not implemented"),
    (
        "/process/execCPUAffinity",
        "CPU affinity is not implemented",
    ),
    ("/process/commandLine", "a Windows field"),
    ("/process/user/username", "a Windows field"),
    (
        "/linux/resources/blockIO",
        "blkio limits are not implemented yet",
    ),
    (
        "/linux/resources/hugepageLimits",
        "hugetlb limits are not implemented",
    ),
    (
        "/linux/resources/network",
        "net_cls/net_prio are not implemented",
    ),
    ("/linux/resources/rdma", "rdma limits are not implemented"),
    (
        "/linux/resources/unified",
        "raw cgroup v2 files are not implemented yet",
    ),
    (
        "/linux/resources/cpu/realtimeRuntime",
        "real-time CPU limits are not implemented",
    ),
    (
        "/linux/resources/cpu/realtimePeriod",
        "real-time CPU limits are not implemented",
    ),
    ("/linux/resources/cpu/idle", "cpu.idle is not implemented"),
    ("/linux/resources/cpu/burst", "cpu burst is not implemented"),
];

/// SELinux labels, which mean nothing on a host without SELinux (no selinuxfs): there they
/// are accepted and have no effect, as with runc and crun (the label is nobody's to enforce);
/// with SELinux on they are refused, not implemented.
const SELINUX_LABELS: [&str; 2] = ["/process/selinuxLabel", "/linux/mountLabel"];

/// Refuses SELinux labels when the host enforces SELinux (`selinux_on`).
pub fn check_labels(v: &Value, selinux_on: bool) -> Result<()> {
    for pointer in SELINUX_LABELS {
        if selinux_on && v.pointer(pointer).is_some_and(present) {
            return Err(Error::unsupported(
                dotted(pointer),
                "SELinux labels are not implemented (and this host has SELinux on)",
            ));
        }
    }
    Ok(())
}

/// Whether the host has SELinux on (its filesystem mounted, as libselinux decides).
pub fn host_selinux() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// The JSON path (`linux.resources.cpu.idle`) of a JSON pointer.
fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// Refuses an unknown ociVersion major and every field ocirun would have to ignore.
pub fn check(v: &Value) -> Result<()> {
    let version = match v.get("ociVersion") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(Error::config("ociVersion", "must be a string")),
        None => return Err(Error::config("ociVersion", "missing")),
    };
    let major = version.split('.').next().unwrap_or("");
    if major != "1" {
        return Err(Error::config(
            "ociVersion",
            format!("version '{version}' is not supported (ocirun implements runtime-spec 1.x)"),
        ));
    }
    for platform in ["solaris", "windows", "vm", "zos"] {
        if v.get(platform).is_some_and(present) {
            return Err(Error::unsupported(platform, "ocirun runs Linux containers"));
        }
    }
    for (pointer, why) in REFUSED {
        if v.pointer(pointer).is_some_and(present) {
            return Err(Error::unsupported(dotted(pointer), why));
        }
    }
    if let Some(Value::Array(mounts)) = v.get("mounts") {
        for (i, m) in mounts.iter().enumerate() {
            for f in ["uidMappings", "gidMappings"] {
                if m.get(f).is_some_and(present) {
                    return Err(Error::unsupported(
                        format!("mounts[{i}].{f}"),
                        "id-mapped mounts are not implemented",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The typed spec from a checked JSON value, a type error naming its JSON path.
pub fn typed(v: Value) -> Result<Spec> {
    serde_path_to_error::deserialize::<_, Spec>(v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "(top level)".to_string()
        } else {
            path
        };
        Error::config(path, e.into_inner().to_string())
    })
}

/// Mount options to `(flags, propagation, data)`, as mount(8) reads them.
pub fn mount_options(
    label: &str,
    options: &[String],
) -> Result<(libc::c_ulong, libc::c_ulong, String)> {
    let mut flags: libc::c_ulong = 0;
    let mut prop: libc::c_ulong = 0;
    let mut data: Vec<&str> = Vec::new();
    for (i, o) in options.iter().enumerate() {
        let set = |f: libc::c_ulong| (f, 0);
        let (on, off): (libc::c_ulong, libc::c_ulong) = match o.as_str() {
            "defaults" => (0, 0),
            "ro" => set(libc::MS_RDONLY),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => set(libc::MS_NOSUID),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => set(libc::MS_NODEV),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => set(libc::MS_NOEXEC),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => set(libc::MS_SYNCHRONOUS),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => set(libc::MS_DIRSYNC),
            "mand" => set(libc::MS_MANDLOCK),
            "nomand" => (0, libc::MS_MANDLOCK),
            "noatime" => set(libc::MS_NOATIME),
            "atime" => (0, libc::MS_NOATIME),
            "nodiratime" => set(libc::MS_NODIRATIME),
            "diratime" => (0, libc::MS_NODIRATIME),
            "relatime" => set(libc::MS_RELATIME),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => set(libc::MS_STRICTATIME),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "bind" => set(libc::MS_BIND),
            "rbind" => set(libc::MS_BIND | libc::MS_REC),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let base = match o.trim_start_matches('r') {
                    "private" => libc::MS_PRIVATE,
                    "shared" => libc::MS_SHARED,
                    "slave" => libc::MS_SLAVE,
                    _ => libc::MS_UNBINDABLE,
                };
                prop = base | if o.starts_with('r') { libc::MS_REC } else { 0 };
                (0, 0)
            }
            "remount" => {
                return Err(Error::unsupported(
                    format!("{label}.options[{i}]"),
                    "'remount' makes no sense for a new mount",
                ))
            }
            // Carried by SpecMount::copy_up (see plan's mounts), only for a tmpfs.
            "tmpcopyup" => (0, 0),
            "idmap" | "ridmap" | "rro" | "rrw" | "rnosuid" | "rsuid" | "rnodev" | "rdev"
            | "rnoexec" | "rexec" | "rnoatime" | "ratime" | "rrelatime" | "rnorelatime"
            | "rstrictatime" | "rnostrictatime" | "rnodiratime" | "rdiratime" | "rnosymfollow"
            | "nosymfollow" | "rsymfollow" | "symfollow" => {
                return Err(Error::unsupported(
                    format!("{label}.options[{i}]"),
                    format!("the mount option '{o}' is not implemented"),
                ))
            }
            other => {
                data.push(other);
                (0, 0)
            }
        };
        flags = (flags | on) & !off;
    }
    Ok((flags, prop, data.join(",")))
}

fn ns_kind(t: LinuxNamespaceType) -> NsKind {
    let name = match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    };
    // Every kind of the spec is in conventions' table.
    conventions::ns::by_name(name).unwrap_or(conventions::ns::ALL[0])
}

/// The libc resource of an `RLIMIT_*` name.
pub fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    let r = match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    };
    Some(r as libc::c_int)
}

fn cap_list(
    field: &str,
    set: &Option<oci_spec::runtime::Capabilities>,
) -> Result<Option<Vec<privs::Capability>>> {
    // A set left out of a given capabilities object is empty, as runc takes it: podman's
    // --cap-drop ALL writes `"capabilities": {}`.
    let Some(set) = set else {
        return Ok(Some(Vec::new()));
    };
    let names: Vec<String> = set.iter().map(|c| format!("CAP_{c}")).collect();
    let mut out: Vec<privs::Capability> = privs::caps::parse_oci_list(&names)
        .map_err(|e| Error::unsupported(format!("process.capabilities.{field}"), e.to_string()))?
        .into_iter()
        .collect();
    out.sort_by_key(|c| c.index());
    Ok(Some(out))
}

/// Turns a checked spec into the plan for container `id` with bundle `bundle` (absolute).
/// `route` says which cgroup version carries a controller on this host (cgctl's layout);
/// `seccomp` compiles linux.seccomp ([`crate::seccomp::compile`], or through the root's cache).
pub fn plan(
    spec: &Spec,
    id: &str,
    bundle: &Path,
    route: &dyn Fn(&str) -> Option<Version>,
    seccomp: &dyn Fn(&oci_spec::runtime::LinuxSeccomp) -> Result<crate::seccomp::Compiled>,
) -> Result<Plan> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::config("root", "missing (the bundle's rootfs)"))?;
    let rootfs = bundle.join(root.path());
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::config("linux", "missing (ocirun runs Linux containers)"))?;

    let mut namespaces: Vec<Namespace> = Vec::new();
    for (i, n) in linux.namespaces().iter().flatten().enumerate() {
        let kind = ns_kind(n.typ());
        if namespaces.iter().any(|x| x.kind == kind) {
            return Err(Error::config(
                format!("linux.namespaces[{i}]"),
                format!("a second {} namespace", kind.proc_name),
            ));
        }
        if let Some(p) = n.path() {
            if !p.is_absolute() {
                return Err(Error::config(
                    format!("linux.namespaces[{i}].path"),
                    "must be an absolute path",
                ));
            }
        }
        namespaces.push(Namespace {
            kind,
            path: n.path().clone(),
        });
    }
    namespaces.sort_by_key(|n| {
        conventions::ns::ALL
            .iter()
            .position(|k| *k == n.kind)
            .unwrap_or(usize::MAX)
    });
    let has = |flag| namespaces.iter().any(|n| n.kind.flag == flag);
    let new_user = namespaces
        .iter()
        .any(|n| n.kind.flag == libc::CLONE_NEWUSER && n.path.is_none());
    let map = |field: &str, m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        let lines: Vec<Range> = m
            .iter()
            .flatten()
            .map(|l| Range {
                inner: l.container_id(),
                outer: l.host_id(),
                count: l.size(),
            })
            .collect();
        if !lines.is_empty() && !new_user {
            return Err(Error::config(
                format!("linux.{field}"),
                "id mappings need a new user namespace in linux.namespaces",
            ));
        }
        if new_user && lines.is_empty() {
            return Err(Error::config(
                format!("linux.{field}"),
                "a new user namespace needs mappings",
            ));
        }
        Ok(lines)
    };
    let uid_map = map("uidMappings", linux.uid_mappings())?;
    let gid_map = map("gidMappings", linux.gid_mappings())?;

    for (field, flag) in [
        ("hostname", libc::CLONE_NEWUTS),
        ("domainname", libc::CLONE_NEWUTS),
    ] {
        let value = if field == "hostname" {
            spec.hostname()
        } else {
            spec.domainname()
        };
        if value.as_deref().is_some_and(|s| !s.is_empty()) && !has(flag) {
            return Err(Error::config(
                field,
                "needs a UTS namespace in linux.namespaces (it would rename the host)",
            ));
        }
    }

    let mut mounts = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let label = format!("mounts[{i}]");
        if !m.destination().is_absolute() {
            return Err(Error::config(
                format!("{label}.destination"),
                "must be an absolute path",
            ));
        }
        let (mut flags, propagation, data) =
            mount_options(&label, m.options().as_deref().unwrap_or(&[]))?;
        let fstype = m.typ().clone().filter(|t| !t.is_empty() && t != "none");
        let is_bind = flags & libc::MS_BIND != 0 || fstype.as_deref() == Some("bind");
        if is_bind {
            flags |= libc::MS_BIND;
        }
        let source = m.source().as_ref().map(|s| {
            if is_bind && s.is_relative() {
                bundle.join(s)
            } else {
                s.clone()
            }
        });
        if is_bind && source.is_none() {
            return Err(Error::config(
                format!("{label}.source"),
                "a bind mount needs a source",
            ));
        }
        let copy_up = m.options().iter().flatten().any(|o| o == "tmpcopyup");
        if copy_up && (is_bind || fstype.as_deref() != Some("tmpfs")) {
            return Err(Error::config(
                format!("{label}.options"),
                "'tmpcopyup' is for a tmpfs mount",
            ));
        }
        mounts.push(SpecMount {
            label,
            destination: m.destination().clone(),
            fstype: if is_bind { None } else { fstype },
            source,
            flags,
            data,
            propagation,
            copy_up,
        });
    }
    let dev_is_mounted = mounts
        .iter()
        .any(|m| m.destination == Path::new("/dev") && m.flags & libc::MS_BIND == 0);

    let mut devices = Vec::new();
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        use oci_spec::runtime::LinuxDeviceType as T;
        let kind = match d.typ() {
            T::C | T::U => libc::S_IFCHR,
            T::B => libc::S_IFBLK,
            T::P => libc::S_IFIFO,
            T::A => {
                return Err(Error::config(
                    format!("linux.devices[{i}].type"),
                    "must be c, b, u or p",
                ))
            }
        };
        let num = |v: i64, f: &str| {
            u32::try_from(v)
                .map_err(|_| Error::config(format!("linux.devices[{i}].{f}"), "out of range"))
        };
        devices.push(SpecDevice {
            path: d.path().clone(),
            kind,
            major: num(d.major(), "major")?,
            minor: num(d.minor(), "minor")?,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }

    let rootfs_propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") => None,
        Some(p) => {
            let (_, prop, data) = mount_options("linux.rootfsPropagation", &[p.to_string()])?;
            if prop == 0 || !data.is_empty() {
                return Err(Error::config(
                    "linux.rootfsPropagation",
                    format!("'{p}' is not shared, slave, private or unbindable"),
                ));
            }
            Some(prop | libc::MS_REC)
        }
    };

    let root = SpecRoot {
        newroot: rootfs,
        mounts,
        default_devices: dev_is_mounted,
        devices,
        masked: linux
            .masked_paths()
            .iter()
            .flatten()
            .map(PathBuf::from)
            .collect(),
        readonly: linux
            .readonly_paths()
            .iter()
            .flatten()
            .map(PathBuf::from)
            .collect(),
        root_readonly: root.readonly().unwrap_or(false),
        rootfs_propagation,
        no_pivot: false,
        // Without a mount namespace of its own the container mounts in ocirun's, which
        // lifecycle::create allows only when that is not the host's.
        shared_mount_ns: !has(libc::CLONE_NEWNS),
        in_userns: has(libc::CLONE_NEWUSER),
        verbose: false,
    };

    let process = process(spec)?;

    let mut sysctl: Vec<(String, String)> = linux
        .sysctl()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sysctl.sort();
    for (k, _) in &sysctl {
        if k.contains('/') || k.split('.').any(|c| c.is_empty() || c == "..") {
            return Err(Error::config(
                format!("linux.sysctl.{k}"),
                "not a sysctl name",
            ));
        }
    }

    let cgroup = cgroup(linux, id, route)?;

    let mut time_offsets = Vec::new();
    if let Some(offsets) = linux.time_offsets() {
        if !offsets.is_empty() && !has(conventions::ns::CLONE_NEWTIME) {
            return Err(Error::config(
                "linux.timeOffsets",
                "needs a time namespace in linux.namespaces",
            ));
        }
        for (clock, o) in offsets {
            if clock != "monotonic" && clock != "boottime" {
                return Err(Error::config(
                    format!("linux.timeOffsets.{clock}"),
                    "only monotonic and boottime have offsets",
                ));
            }
            time_offsets.push((
                clock.clone(),
                o.secs().unwrap_or(0),
                o.nanosecs().unwrap_or(0),
            ));
        }
        time_offsets.sort();
    }

    let (seccomp, seccomp_unknown) = match linux.seccomp() {
        Some(s) => seccomp(s)?,
        None => (None, Vec::new()),
    };

    let hooks_json = serde_json::to_value(spec.hooks()).unwrap_or(Value::Null);
    let hooks = crate::hooks::from_json(&hooks_json)?;

    Ok(Plan {
        preserve_fds: 0,
        hooks,
        hooks_json,
        seccomp,
        seccomp_unknown,
        oci_version: spec.version().clone(),
        namespaces,
        uid_map,
        gid_map,
        hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
        domainname: spec.domainname().clone().filter(|h| !h.is_empty()),
        root,
        process,
        sysctl,
        cgroup,
        time_offsets,
        annotations: spec
            .annotations()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

fn process(spec: &Spec) -> Result<Process> {
    let p = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing (create needs a process)"))?;
    process_of(p)
}

/// The checked process of an OCI process object (config.json's, or `exec --process`'s).
pub fn process_of(p: &oci_spec::runtime::Process) -> Result<Process> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(Error::config("process.args", "must not be empty"));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::config("process.cwd", "must be an absolute path"));
    }
    let env = p.env().clone().unwrap_or_default();
    for (i, e) in env.iter().enumerate() {
        if !e.contains('=') || e.contains('\0') {
            return Err(Error::config(
                format!("process.env[{i}]"),
                "must be NAME=VALUE",
            ));
        }
    }
    let caps = match p.capabilities() {
        None => None,
        Some(c) => Some(CapSets {
            bounding: cap_list("bounding", c.bounding())?,
            effective: cap_list("effective", c.effective())?,
            inheritable: cap_list("inheritable", c.inheritable())?,
            permitted: cap_list("permitted", c.permitted())?,
            ambient: cap_list("ambient", c.ambient())?,
        }),
    };
    let mut rlimits = Vec::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let name = r.typ().to_string();
        let res = rlimit_resource(&name).ok_or_else(|| {
            Error::config(
                format!("process.rlimits[{i}].type"),
                format!("unknown {name}"),
            )
        })?;
        if r.soft() > r.hard() {
            return Err(Error::config(
                format!("process.rlimits[{i}]"),
                "soft is above hard",
            ));
        }
        rlimits.push((res, r.soft(), r.hard()));
    }
    let user = p.user();
    Ok(Process {
        args,
        env,
        cwd: p.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        caps,
        rlimits,
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        oom_score_adj: p.oom_score_adj(),
        terminal: p.terminal().unwrap_or(false),
        console_size: p
            .console_size()
            .as_ref()
            .filter(|b| b.height() != 0 && b.width() != 0)
            .map(|b| (clamp_u16(b.height()), clamp_u16(b.width()))),
    })
}

fn clamp_u16(v: u64) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn limit(v: i64) -> Limit {
    if v < 0 {
        Limit::Max
    } else {
        Limit::Bytes(v as u64)
    }
}

/// The parent of every container's cgroup without a linux.cgroupsPath: shared, owned by none,
/// removed by the `delete` that leaves it empty.
pub const DEFAULT_CGROUP_PARENT: &str = "ocirun";

/// The cgroup of container `id` without a linux.cgroupsPath.
pub fn default_cgroup(id: &str) -> String {
    format!("{DEFAULT_CGROUP_PARENT}/{id}")
}

fn cgroup(
    linux: &oci_spec::runtime::Linux,
    id: &str,
    route: &dyn Fn(&str) -> Option<Version>,
) -> Result<Cgroup> {
    let name = match linux.cgroups_path() {
        Some(p) if !p.as_os_str().is_empty() => {
            let s = p.to_string_lossy();
            if s.contains(':') {
                return Err(Error::unsupported(
                    "linux.cgroupsPath",
                    "systemd's slice:prefix:name form needs --systemd-cgroup, which ocirun lacks",
                ));
            }
            s.trim_start_matches('/').to_string()
        }
        _ => default_cgroup(id),
    };
    if name.is_empty() || name.split('/').any(|c| c == ".." || c == ".") {
        return Err(Error::config(
            "linux.cgroupsPath",
            "must name a cgroup below the hierarchy's root, without . or ..",
        ));
    }
    let writes = resource_writes(
        linux.resources().as_ref(),
        linux.devices().as_deref().unwrap_or(&[]),
        route,
    )?;
    Ok(Cgroup {
        name,
        writes,
        self_join: Vec::new(),
    })
}

/// The cgroup writes of linux.resources (and the devices the device cgroup must allow), for
/// create and `update`.
pub fn resource_writes(
    resources: Option<&oci_spec::runtime::LinuxResources>,
    devices: &[oci_spec::runtime::LinuxDevice],
    route: &dyn Fn(&str) -> Option<Version>,
) -> Result<Vec<Write>> {
    let mut l = Limits::default();
    let mut extra: Vec<Write> = Vec::new();
    let raw = |controller: &str, file: &str, value: String| Write {
        controller: controller.to_string(),
        file: file.to_string(),
        value,
    };
    let need = |controller: &str, field: &str| {
        route(controller).ok_or_else(|| {
            Error::unsupported(
                field.to_string(),
                format!("this host has no {controller} controller"),
            )
        })
    };
    if let Some(r) = resources {
        if let Some(m) = r.memory() {
            if let Some(v) = m.limit() {
                l.memory = Some(limit(v));
            }
            if let Some(s) = m.swap() {
                l.swap = Some(match (limit(s), m.limit().map(limit)) {
                    (Limit::Max, _) => Limit::Max,
                    (Limit::Bytes(total), Some(Limit::Bytes(mem))) if total >= mem => {
                        Limit::Bytes(total - mem)
                    }
                    (Limit::Bytes(_), Some(Limit::Bytes(_))) => {
                        return Err(Error::config(
                            "linux.resources.memory.swap",
                            "memory+swap is below the memory limit",
                        ))
                    }
                    _ => {
                        return Err(Error::config(
                            "linux.resources.memory.swap",
                            "needs linux.resources.memory.limit",
                        ))
                    }
                });
            }
            if let Some(v) = m.reservation() {
                match need("memory", "linux.resources.memory.reservation")? {
                    Version::V1 => extra.push(raw(
                        "memory",
                        "memory.soft_limit_in_bytes",
                        limit(v).to_string(),
                    )),
                    Version::V2 => extra.push(raw("memory", "memory.low", limit(v).to_string())),
                }
            }
            for (v, file, field) in [
                (m.kernel(), "memory.kmem.limit_in_bytes", "kernel"),
                (
                    m.kernel_tcp(),
                    "memory.kmem.tcp.limit_in_bytes",
                    "kernelTCP",
                ),
            ] {
                let Some(v) = v else { continue };
                let field = format!("linux.resources.memory.{field}");
                match need("memory", &field)? {
                    Version::V1 => extra.push(raw("memory", file, limit(v).to_string())),
                    Version::V2 => {
                        return Err(Error::unsupported(
                            field,
                            "cgroup v2 has no kernel memory limit",
                        ))
                    }
                }
            }
            if let Some(v) = m.swappiness() {
                if v > 100 {
                    return Err(Error::config(
                        "linux.resources.memory.swappiness",
                        "must be 0 to 100",
                    ));
                }
                match need("memory", "linux.resources.memory.swappiness")? {
                    Version::V1 => extra.push(raw("memory", "memory.swappiness", v.to_string())),
                    Version::V2 => {
                        return Err(Error::unsupported(
                            "linux.resources.memory.swappiness",
                            "cgroup v2 has no per-group swappiness",
                        ))
                    }
                }
            }
            if m.disable_oom_killer() == Some(true) {
                match need("memory", "linux.resources.memory.disableOOMKiller")? {
                    Version::V1 => extra.push(raw("memory", "memory.oom_control", "1".into())),
                    Version::V2 => {
                        return Err(Error::unsupported(
                            "linux.resources.memory.disableOOMKiller",
                            "cgroup v2 cannot disable the OOM killer",
                        ))
                    }
                }
            }
        }
        if let Some(c) = r.cpu() {
            if let Some(shares) = c.shares().filter(|s| *s > 0) {
                match need("cpu", "linux.resources.cpu.shares")? {
                    Version::V1 => extra.push(raw("cpu", "cpu.shares", shares.to_string())),
                    Version::V2 => {
                        let s = shares.clamp(2, 262_144);
                        let weight = 1 + ((s - 2) * 9999) / 262_142;
                        extra.push(raw("cpu", "cpu.weight", weight.to_string()));
                    }
                }
            }
            let period = c.period().filter(|p| *p > 0);
            if let Some(q) = c.quota().filter(|q| *q != 0) {
                let period = period.unwrap_or(cgctl::limits::PERIOD_US);
                match need("cpu", "linux.resources.cpu.quota")? {
                    Version::V1 => {
                        extra.push(raw("cpu", "cpu.cfs_period_us", period.to_string()));
                        extra.push(raw("cpu", "cpu.cfs_quota_us", q.max(-1).to_string()));
                    }
                    Version::V2 => {
                        let quota = if q < 0 {
                            "max".to_string()
                        } else {
                            q.to_string()
                        };
                        extra.push(raw("cpu", "cpu.max", format!("{quota} {period}")));
                    }
                }
            } else if let Some(p) = period {
                match need("cpu", "linux.resources.cpu.period")? {
                    Version::V1 => extra.push(raw("cpu", "cpu.cfs_period_us", p.to_string())),
                    Version::V2 => extra.push(raw("cpu", "cpu.max", format!("max {p}"))),
                }
            }
            if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
                l.cpuset = Some(cpus.to_string());
            }
            if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
                l.mems = Some(mems.to_string());
            }
        }
        if let Some(p) = r.pids() {
            l.pids = Some(if p.limit() <= 0 {
                Limit::Max
            } else {
                Limit::Bytes(p.limit() as u64)
            });
        }
        if let Some(rules) = r.devices().as_ref().filter(|d| !d.is_empty()) {
            match need("devices", "linux.resources.devices")? {
                Version::V1 => {}
                Version::V2 => {
                    return Err(Error::unsupported(
                        "linux.resources.devices",
                        "cgroup v2 needs an eBPF device filter, not implemented yet",
                    ))
                }
            }
            for rule in rules {
                let file = if rule.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                extra.push(raw("devices", file, device_rule(rule)));
            }
            // The config's own devices are usable (as runc does), and what every container may
            // use whatever the rules (runc's list): the standard nodes, the pty master and ptys.
            for d in devices {
                let kind = match d.typ().as_str() {
                    "b" => "b",
                    "p" => continue,
                    _ => "c",
                };
                extra.push(raw(
                    "devices",
                    "devices.allow",
                    format!("{kind} {}:{} rwm", d.major(), d.minor()),
                ));
            }
            for d in [
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
                "c 136:* rwm",
            ] {
                extra.push(raw("devices", "devices.allow", d.to_string()));
            }
        }
    }
    let mut writes = cgctl::limits::plan(&l, route)?;
    writes.extend(extra);
    Ok(writes)
}

/// A device-cgroup rule in v1's `devices.allow` syntax (`c 1:3 rwm`, `a`).
pub fn device_rule(rule: &oci_spec::runtime::LinuxDeviceCgroup) -> String {
    let kind = rule.typ().map_or("a", |t| match t.as_str() {
        "c" | "u" => "c",
        "b" => "b",
        "p" => "p",
        _ => "a",
    });
    if kind == "a" && rule.major().is_none() && rule.minor().is_none() {
        return "a".to_string();
    }
    let num = |n: Option<i64>| match n {
        Some(v) if v >= 0 => v.to_string(),
        _ => "*".to_string(),
    };
    let access = rule.access().clone().unwrap_or_else(|| "rwm".to_string());
    format!(
        "{kind} {}:{} {access}",
        num(rule.major()),
        num(rule.minor())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "env": ["PATH=/bin"]},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        })
    }

    fn v1(_: &str) -> Option<Version> {
        Some(Version::V1)
    }

    fn plan_of(v: Value) -> Result<Plan> {
        check(&v)?;
        let spec = typed(v)?;
        plan(&spec, "c1", Path::new("/b"), &v1, &crate::seccomp::compile)
    }

    fn err(v: Value) -> String {
        plan_of(v).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn syntax_errors_name_the_path() {
        let e = parse(r#"{"process": {"args": ["sh",]}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("config.json: process.args"), "{e}");
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn type_errors_name_the_path() {
        let mut v = base();
        v["process"]["args"] = json!("sh");
        let e = err(v);
        assert!(
            e.starts_with("config.json: process.args: invalid type"),
            "{e}"
        );
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = json!("nope");
        let e = err(v);
        assert!(
            e.starts_with("config.json: linux.namespaces[1].type"),
            "{e}"
        );
    }

    #[test]
    fn versions() {
        let mut v = base();
        v["ociVersion"] = json!("2.0.0");
        assert!(err(v).contains("ociVersion: version '2.0.0' is not supported"));
        let mut v = base();
        v.as_object_mut().unwrap().remove("ociVersion");
        assert_eq!(err(v), "config.json: ociVersion: missing");
        let mut v = base();
        v["ociVersion"] = json!("1.2.1");
        assert!(plan_of(v).is_ok());
    }

    #[test]
    fn selinux_labels_only_without_selinux() {
        let mut v = base();
        v["linux"]["mountLabel"] = json!("system_u:object_r:svirt_sandbox_file_t:s0");
        assert!(check_labels(&v, false).is_ok());
        let e = check_labels(&v, true).unwrap_err().to_string();
        assert!(
            e.starts_with("config.json: linux.mountLabel: not supported"),
            "{e}"
        );
        v["process"]["selinuxLabel"] = json!("l");
        v["linux"]["mountLabel"] = json!("");
        assert!(check_labels(&v, true)
            .unwrap_err()
            .to_string()
            .contains("process.selinuxLabel"));
    }

    #[test]
    fn refused_fields_are_named() {
        let cases = [
            (
                "/process/apparmorProfile",
                json!("p"),
                "process.apparmorProfile",
            ),
            ("/linux/intelRdt", json!({"closID": "x"}), "linux.intelRdt"),
            (
                "/linux/personality",
                json!({"domain": "LINUX"}),
                "linux.personality",
            ),
            (
                "/process/scheduler",
                json!({"policy": "SCHED_OTHER"}),
                "process.scheduler",
            ),
        ];
        for (pointer, value, field) in cases {
            let mut v = base();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let target = if parent.is_empty() {
                &mut v
            } else {
                v.pointer_mut(parent).unwrap()
            };
            target[key] = value;
            let e = err(v);
            assert!(
                e.starts_with(&format!("config.json: {field}: not supported by ocirun")),
                "{e}"
            );
        }
        // Empty or false values say nothing and pass.
        let mut v = base();
        v["process"]["terminal"] = json!(false);
        v["hooks"] = json!({});
        assert!(plan_of(v).is_ok());
    }

    #[test]
    fn no_mount_namespace_chroots_in_the_callers() {
        let mut v = base();
        v["linux"]["namespaces"] = json!([{"type": "pid"}]);
        assert!(plan_of(v).unwrap().root.shared_mount_ns);
        assert!(!plan_of(base()).unwrap().root.shared_mount_ns);
    }

    #[test]
    fn hostname_needs_uts() {
        let mut v = base();
        v["hostname"] = json!("box");
        assert!(err(v).starts_with("config.json: hostname: needs a UTS namespace"));
    }

    #[test]
    fn options_to_flags() {
        let o = |s: &[&str]| {
            mount_options(
                "mounts[0]",
                &s.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            )
        };
        let (f, p, d) = o(&["nosuid", "strictatime", "mode=755", "size=65536k"]).unwrap();
        assert_eq!(f, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(p, 0);
        assert_eq!(d, "mode=755,size=65536k");
        let (f, p, _) = o(&["rbind", "ro", "rw", "rslave"]).unwrap();
        assert_eq!(f, libc::MS_BIND | libc::MS_REC);
        assert_eq!(p, libc::MS_SLAVE | libc::MS_REC);
        let e = o(&["ro", "idmap"]).unwrap_err().to_string();
        assert!(e.contains("mounts[0].options[1]"), "{e}");
    }

    #[test]
    fn plan_reads_everything() {
        let mut v = base();
        v["hostname"] = json!("box");
        v["linux"]["namespaces"] = json!([
            {"type": "network", "path": "/proc/1/ns/net"},
            {"type": "mount"}, {"type": "uts"}, {"type": "user"}
        ]);
        v["linux"]["uidMappings"] = json!([{"hostID": 1000, "containerID": 0, "size": 1}]);
        v["linux"]["gidMappings"] = json!([{"hostID": 1000, "containerID": 0, "size": 1}]);
        v["linux"]["resources"] =
            json!({"memory": {"limit": 67108864, "kernel": 4096}, "pids": {"limit": 10}});
        v["linux"]["cgroupsPath"] = json!("/x/y");
        v["mounts"] = json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": "data", "options": ["ro"]}
        ]);
        v["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_CHOWN"]});
        v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]);
        let p = plan_of(v).unwrap();
        let names: Vec<&str> = p.namespaces.iter().map(|n| n.kind.proc_name).collect();
        assert_eq!(names, ["user", "uts", "net", "mnt"]);
        assert_eq!(
            p.new_flags(),
            libc::CLONE_NEWUSER | libc::CLONE_NEWUTS | libc::CLONE_NEWNS
        );
        assert_eq!(
            p.uid_map,
            [Range {
                inner: 0,
                outer: 1000,
                count: 1
            }]
        );
        assert_eq!(p.root.newroot, Path::new("/b/rootfs"));
        assert!(p.root.in_userns);
        assert_eq!(
            p.root.mounts[1].source.as_deref(),
            Some(Path::new("/b/data"))
        );
        assert_eq!(p.root.mounts[1].flags, libc::MS_BIND | libc::MS_RDONLY);
        assert_eq!(p.root.mounts[1].fstype, None);
        assert_eq!(p.cgroup.name, "x/y");
        assert!(p
            .cgroup
            .writes
            .iter()
            .any(|w| w.file == "memory.limit_in_bytes" && w.value == "67108864"));
        assert!(p
            .cgroup
            .writes
            .iter()
            .any(|w| w.file == "pids.max" && w.value == "10"));
        let caps = p.process.caps.unwrap();
        assert_eq!(
            caps.bounding.unwrap(),
            [privs::Capability::CAP_CHOWN, privs::Capability::CAP_KILL]
        );
        assert_eq!(p.process.rlimits, [(libc::RLIMIT_NOFILE as i32, 10, 20)]);
    }

    #[test]
    fn default_cgroup_name_and_devices_rules() {
        let mut v = base();
        v["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rw"}]});
        let p = plan_of(v).unwrap();
        assert_eq!(p.cgroup.name, "ocirun/c1");
        let w: Vec<(&str, &str)> = p
            .cgroup
            .writes
            .iter()
            .map(|w| (w.file.as_str(), w.value.as_str()))
            .take(3)
            .collect();
        assert_eq!(
            w,
            [
                ("devices.deny", "a"),
                ("devices.allow", "c 10:200 rw"),
                ("devices.allow", "c 1:3 rwm")
            ]
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let mut v = base();
        v["process"]["args"] = json!([]);
        assert_eq!(err(v), "config.json: process.args: must not be empty");
        let mut v = base();
        v["process"]["cwd"] = json!("rel");
        assert_eq!(err(v), "config.json: process.cwd: must be an absolute path");
        let mut v = base();
        v["mounts"] = json!([{"destination": "tmp", "type": "tmpfs"}]);
        assert_eq!(
            err(v),
            "config.json: mounts[0].destination: must be an absolute path"
        );
        let mut v = base();
        v["linux"]["cgroupsPath"] = json!("../x");
        assert!(err(v).starts_with("config.json: linux.cgroupsPath: must name"));
    }
}
