//! One cgroup across every hierarchy it lives in: the manager that hides v1 and v2 behind one
//! interface (create, limit, join, freeze, kill, read, delete), writing cgroupfs directly.

use crate::cgroupfs::{keyed, parse_pids, read, read_small, write, Ahead};
use crate::layout::{Layout, Version};
use crate::limits::Write;
use crate::{Error, Result};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// Controllers cgctl enables for children in v2 parents when they are available there.
pub const V2_DELEGATE: [&str; 5] = ["memory", "pids", "cpu", "io", "cpuset"];

/// The longest directory name the kernel takes (NAME_MAX).
pub const NAME_MAX: usize = 255;

/// Checks a group name (or `--parent`): a relative path without `.` or `..` components, so it
/// cannot escape the hierarchy's root, without control characters (which would garble `list`,
/// /proc/PID/cgroup and every message that names it), and with components the kernel accepts.
/// Empty means the root itself.
pub fn check_name(name: &str) -> Result<PathBuf> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "invalid cgroup name '{}': {why}",
            name.escape_debug()
        ))
    };
    if name.contains('\0') || name.contains('\n') {
        return Err(bad("contains a NUL or newline"));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(bad(&format!("contains the control character {:?}", c)));
    }
    if let Some(c) = name.split('/').find(|c| c.len() > NAME_MAX) {
        return Err(bad(&format!(
            "the component '{}...' is {} bytes long, longer than 255 bytes (NAME_MAX)",
            c.chars().take(16).collect::<String>(),
            c.len()
        )));
    }
    if name.starts_with('/') {
        return Err(bad(
            "must be relative to the hierarchy root (drop the leading /)",
        ));
    }
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir | Component::ParentDir => {
                return Err(bad("'.' and '..' are not allowed"))
            }
            Component::RootDir | Component::Prefix(_) => return Err(bad("must be relative")),
        }
    }
    if name.split('/').any(|c| c == "." || c == "..") {
        return Err(bad("'.' and '..' are not allowed"));
    }
    Ok(out)
}

/// A group by name in every managed hierarchy of a layout.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    /// The host's layout.
    pub layout: &'a Layout,
    /// The path relative to each hierarchy's root.
    pub rel: PathBuf,
    /// When set, the only hierarchies this group lives in (a `run`'s group: see
    /// [`crate::run::scope`]); otherwise every managed one.
    pub scope: Option<Vec<usize>>,
}

impl<'a> Group<'a> {
    /// The group `parent/name`, both checked.
    pub fn new(layout: &'a Layout, parent: Option<&str>, name: &str) -> Result<Group<'a>> {
        let mut rel = check_name(parent.unwrap_or(""))?;
        rel.push(check_name(name)?);
        Ok(Group {
            layout,
            rel,
            scope: None,
        })
    }

    /// The same group restricted to the hierarchies `hs`.
    pub fn scoped(mut self, hs: Vec<usize>) -> Group<'a> {
        self.scope = Some(hs);
        self
    }

    /// Whether hierarchy `h` is one this group may live in.
    pub fn in_scope(&self, h: usize) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(&h))
    }

    /// The name as the user sees it.
    pub fn name(&self) -> String {
        self.rel.display().to_string()
    }

    /// Its directory in hierarchy `h`.
    pub fn dir(&self, h: usize) -> PathBuf {
        self.layout.hierarchies[h].mount.join(&self.rel)
    }

    /// Hierarchies cgctl makes groups in.
    pub fn managed(&self) -> Vec<usize> {
        (0..self.layout.hierarchies.len())
            .filter(|&h| self.layout.hierarchies[h].managed() && self.in_scope(h))
            .collect()
    }

    /// Managed hierarchies where the group exists now.
    pub fn existing(&self) -> Vec<usize> {
        self.managed()
            .into_iter()
            .filter(|&h| self.dir(h).is_dir())
            .collect()
    }

    /// As [`Group::existing`], but an error when it exists nowhere.
    pub fn require(&self) -> Result<Vec<usize>> {
        if self.rel.as_os_str().is_empty() {
            return Err(Error::Usage(
                "refusing to work on the root cgroup (give a NAME)".to_string(),
            ));
        }
        let e = self.existing();
        if e.is_empty() {
            Err(Error::Missing(self.name()))
        } else {
            Ok(e)
        }
    }

    /// The directory where files of `controller` live for this group, if it exists there.
    pub fn controller_dir(&self, controller: &str) -> Option<PathBuf> {
        let h = self.layout.route(controller)?;
        if !self.in_scope(h) {
            return None;
        }
        let d = self.dir(h);
        // A scoped group (a run's) was made in each of its hierarchies: no need to look.
        (self.scope.is_some() || d.is_dir()).then_some(d)
    }

    /// The path of an interface file (by its controller prefix).
    pub fn file(&self, file: &str) -> Result<PathBuf> {
        let h = self
            .layout
            .file_home(file)
            .ok_or_else(|| Error::Controller {
                what: format!("file {file}"),
                controller: file.split('.').next().unwrap_or("").to_string(),
                why: "is unknown or not available on this host".to_string(),
            })?;
        Ok(self.dir(h).join(file))
    }

    /// Creates the group in every managed hierarchy, with parents as needed: v1 cpuset groups
    /// get their parent's cpus and mems, v2 parents delegate controllers; then applies `writes`.
    /// On any failure, removes every directory it made. Returns the directories it made,
    /// parents first, so that a caller can remove new parents again.
    pub fn create(&self, writes: &[Write]) -> Result<Vec<PathBuf>> {
        if self.rel.as_os_str().is_empty() {
            return Err(Error::Usage("give a NAME to create".to_string()));
        }
        if self.layout.hierarchies.iter().all(|h| !h.managed()) {
            return Err(Error::NoCgroups);
        }
        let mut made: Vec<PathBuf> = Vec::new();
        let result = self
            .create_dirs(writes, &mut made)
            .and_then(|_| self.apply(writes));
        if result.is_err() {
            for d in made.iter().rev() {
                let _ = rmdir_retry(d);
            }
        }
        result.map(|_| made)
    }

    /// Removes directories `create` made (deepest first) that still exist and are empty of
    /// groups: the new parents of a nested name.
    pub fn remove_made(made: &[PathBuf]) {
        for d in made.iter().rev() {
            if d.is_dir() && subdirs(d).is_empty() {
                let _ = rmdir_retry(d);
            }
        }
    }

    fn create_dirs(&self, writes: &[Write], made: &mut Vec<PathBuf>) -> Result<()> {
        let comps: Vec<_> = self.rel.components().collect();
        for h in self.managed() {
            let hier = &self.layout.hierarchies[h];
            // A parent that another process removes between our mkdirs (a shared parent left
            // empty, see `remove_if_unused`) makes the next mkdir fail with ENOENT: start this
            // hierarchy's chain again, a few times.
            let mut restarts = 0;
            let mut dir = hier.mount.clone();
            let mut i = 0;
            while let Some(c) = comps.get(i) {
                if hier.version == Version::V2 {
                    let needed: Vec<&str> = writes
                        .iter()
                        .filter(|w| {
                            w.controller != "cgroup"
                                && self.layout.route_version(&w.controller) == Some(Version::V2)
                        })
                        .map(|w| w.controller.as_str())
                        .collect();
                    // The hierarchy's root offers what the layout already read from it.
                    let known = (dir == hier.mount).then_some(hier.controllers.as_slice());
                    delegate(&dir, known, &needed)?;
                }
                let parent = dir.clone();
                dir.push(c);
                match std::fs::create_dir(&dir) {
                    Ok(()) => made.push(dir.clone()),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::AlreadyExists && i + 1 < comps.len() => {
                    }
                    // mkdir itself is the existence check: no stat of every hierarchy first.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(Error::Exists(self.name()))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && i > 0 && restarts < 3 => {
                        restarts += 1;
                        made.retain(|m| m.is_dir());
                        dir = hier.mount.clone();
                        i = 0;
                        continue;
                    }
                    Err(e) => return Err(Error::sys("mkdir", &dir, e)),
                }
                if hier.version == Version::V1
                    && hier.controllers.iter().any(|c| c == "cpuset")
                    && made.last() == Some(&dir)
                {
                    // A v1 cpuset group starts with empty cpus and mems, which makes joining it
                    // fail with ENOSPC: inherit the parent's.
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let own = read(&dir.join(f)).unwrap_or_default();
                        if own.trim().is_empty() {
                            let from = read(&parent.join(f))?;
                            write(&dir.join(f), from.trim())?;
                        }
                    }
                }
                i += 1;
            }
        }
        Ok(())
    }

    /// Removes the group's directory in every hierarchy where it is empty: no child groups, no
    /// processes (the kernel's rmdir refuses a group with either, so it is the check). For a
    /// parent that several groups share and none owns, such as ocirun's `ocirun/`: the last
    /// one out removes it, a concurrent `create` that loses the race starts its mkdirs again.
    pub fn remove_if_unused(&self) {
        if self.rel.as_os_str().is_empty() {
            return;
        }
        for h in self.managed() {
            let _ = std::fs::remove_dir(self.dir(h));
        }
    }

    /// Applies planned writes to the hierarchies that carry each controller.
    pub fn apply(&self, writes: &[Write]) -> Result<()> {
        for w in writes {
            let h = if w.controller == "cgroup" {
                self.layout.v2()
            } else {
                self.layout.route(&w.controller)
            };
            let Some(h) = h else {
                return Err(Error::Controller {
                    what: w.file.clone(),
                    controller: w.controller.clone(),
                    why: "is not available on this host".to_string(),
                });
            };
            let dir = self.dir(h);
            let path = dir.join(&w.file);
            // Write first; only a failure is worth the stats that explain it.
            let err = match write(&path, &w.value) {
                Ok(()) => continue,
                Err(e) => e,
            };
            if err.errno() != Some(libc::ENOENT) {
                return Err(err);
            }
            if !dir.is_dir() {
                return Err(Error::Other(format!(
                    "cgroup '{}' does not exist in the {} hierarchy ({}), which {} needs",
                    self.name(),
                    self.layout.hierarchies[h].label(),
                    dir.display(),
                    w.file
                )));
            }
            if self.layout.hierarchies[h].version == Version::V1 {
                return Err(Error::Other(format!(
                    "no interface file {} (the v1 {} controller of this kernel has no such file)",
                    path.display(),
                    w.controller
                )));
            }
            return Err(Error::Controller {
                what: format!("{} ({})", w.file, path.display()),
                controller: w.controller.clone(),
                why: "is not enabled for this group (the parent's cgroup.subtree_control lacks it) or has no such file".to_string(),
            });
        }
        Ok(())
    }

    /// Pids in the group and its descendants, across every hierarchy, sorted and unique.
    pub fn procs(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for h in self.existing() {
            collect_procs(&self.dir(h), &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Moves `pid` (0: the caller, which must be single-threaded) into the group in every
    /// hierarchy where it exists.
    pub fn join(&self, pid: i32) -> Result<()> {
        self.join_in(pid, &self.require()?)
    }

    /// How a single-threaded child joins the group with its parent's help: the v1 `tasks`
    /// files it writes 0 to itself, and the other hierarchies (v2), which its parent joins it
    /// to by pid ([`Group::join_in`]). A write of another process's pid takes the kernel's
    /// global threadgroup lock, whose first taker after a quiet spell waits for an RCU grace
    /// period (10-30 ms measured here); a thread moving itself through `tasks` takes none.
    pub fn self_join_split(&self) -> Result<(Vec<PathBuf>, Vec<usize>)> {
        let mut tasks = Vec::new();
        let mut by_pid = Vec::new();
        for h in self.require()? {
            if self.layout.hierarchies[h].version == Version::V1 {
                tasks.push(self.dir(h).join("tasks"));
            } else {
                by_pid.push(h);
            }
        }
        Ok((tasks, by_pid))
    }

    /// [`Group::join`] in the hierarchies `hs` only.
    pub fn join_in(&self, pid: i32, hs: &[usize]) -> Result<()> {
        for &h in hs {
            // The caller moving its only thread through v1 `tasks` avoids the global
            // threadgroup lock (and an RCU grace period) that a cgroup.procs write takes.
            let file = if pid == 0 && self.layout.hierarchies[h].version == Version::V1 {
                "tasks"
            } else {
                "cgroup.procs"
            };
            let path = self.dir(h).join(file);
            let mut tries = 0;
            loop {
                match write(&path, &pid.to_string()) {
                    Ok(()) => break,
                    // A task still being created answers EINVAL for a moment.
                    Err(e) if e.errno() == Some(libc::EINVAL) && tries < 50 => {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) if e.errno() == Some(libc::ESRCH) => {
                        return Err(Error::Usage(format!("no process with pid {pid}")))
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// How freezing works for this group: v1 freezer.state, or v2 cgroup.freeze.
    fn freezer(&self) -> Result<(PathBuf, Version)> {
        if self.layout.route_version("freezer") == Some(Version::V1) {
            if let Some(d) = self.controller_dir("freezer") {
                return Ok((d, Version::V1));
            }
        }
        if let Some(h) = self.layout.v2().filter(|&h| self.in_scope(h)) {
            let d = self.dir(h);
            if d.join("cgroup.freeze").exists() {
                return Ok((d, Version::V2));
            }
        }
        Err(Error::Controller {
            what: "freezing".to_string(),
            controller: "freezer".to_string(),
            why: "is not available for this group (no v1 freezer, no v2 cgroup.freeze)".to_string(),
        })
    }

    /// Freezes (`true`) or thaws the group and waits until the kernel says it is done.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        self.require()?;
        let (dir, v) = self.freezer()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        match v {
            Version::V1 => {
                let (want, path) = (
                    if frozen { "FROZEN" } else { "THAWED" },
                    dir.join("freezer.state"),
                );
                loop {
                    write(&path, want)?;
                    if read(&path)?.trim() == want {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err(Error::Other(format!(
                            "{} did not become {want} within 10 s",
                            path.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Version::V2 => {
                write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
                let events = dir.join("cgroup.events");
                loop {
                    let text = read(&events)?;
                    if keyed(&text, "frozen") == Some(u64::from(frozen)) {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err(Error::Other(format!(
                            "{} did not show frozen {} within 10 s",
                            events.display(),
                            u8::from(frozen)
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    /// Signals every process of the group and its descendants. SIGKILL uses v2 cgroup.kill
    /// where the group has a v2 directory, then (and on v1) freezes, signals every pid, thaws,
    /// and repeats until the group is empty, so a fork loop cannot leave an escapee.
    pub fn kill(&self, sig: i32) -> Result<()> {
        self.require()?;
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        // An empty group cannot refill itself (nothing in it can fork): nothing to do.
        if self.procs().iter().all(|&p| p == me) {
            return Ok(());
        }
        let mut used_kill = false;
        if sig == libc::SIGKILL {
            if let Some(h) = self.layout.v2().filter(|&h| self.in_scope(h)) {
                let k = self.dir(h).join("cgroup.kill");
                if k.exists() {
                    write(&k, "1")?;
                    used_kill = true;
                }
            }
        }
        let can_freeze = self.freezer().is_ok();
        let start = Instant::now();
        let deadline = start + Duration::from_secs(10);
        loop {
            let pids: Vec<i32> = self.procs().into_iter().filter(|&p| p != me).collect();
            if pids.is_empty() {
                return Ok(());
            }
            // cgroup.kill leaves no escapee by itself; give its victims a moment to exit before
            // hunting processes it could not see (members of v1 groups only).
            if used_kill && start.elapsed() < Duration::from_millis(200) {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            if sig == libc::SIGKILL && Instant::now() > deadline {
                return Err(Error::Other(format!(
                    "cgroup '{}' still holds {} process(es) 10 s after SIGKILL",
                    self.name(),
                    pids.len()
                )));
            }
            let frozen = can_freeze && self.set_frozen(true).is_ok();
            // Frozen, nothing can fork: the list is complete.
            let pids: Vec<i32> = if frozen {
                self.procs().into_iter().filter(|&p| p != me).collect()
            } else {
                pids
            };
            for pid in pids {
                // SAFETY: kill(2) with a pid read from this group's cgroup.procs.
                unsafe { libc::kill(pid, sig) };
            }
            if frozen {
                self.set_frozen(false)?;
            }
            if sig != libc::SIGKILL {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Removes the group in every hierarchy where it exists (children first with `recursive`),
    /// retrying EBUSY; an error when anything is left.
    pub fn delete(&self, recursive: bool) -> Result<()> {
        if self.scope.is_none() {
            self.require()?;
        } else if self.rel.as_os_str().is_empty() {
            return Err(Error::Usage("refusing to delete a root cgroup".to_string()));
        }
        // Every hierarchy, named ones too: a group another tool made there is still this group;
        // a scoped group (a run's) only where it was made.
        let dirs: Vec<usize> = match &self.scope {
            Some(s) => s.clone(),
            None => (0..self.layout.hierarchies.len())
                .filter(|&h| self.dir(h).is_dir())
                .collect(),
        };
        let mut first_err = None;
        for h in dirs {
            let d = self.dir(h);
            if let Err(e) = remove_tree(&d, recursive) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Whether anything lives in the group or below it, from one hierarchical counter: v2
    /// cgroup.events `populated`, else v1 pids.current; `None` when neither is at hand.
    pub fn populated(&self) -> Option<bool> {
        self.populated_via(&mut Ahead::default())
    }

    /// The file [`Group::populated`] reads.
    fn populated_file(&self) -> Option<PathBuf> {
        if let Some(h) = self.layout.v2().filter(|&h| self.in_scope(h)) {
            return Some(self.dir(h).join("cgroup.events"));
        }
        let h = self.layout.route("pids").filter(|&h| self.in_scope(h))?;
        Some(self.dir(h).join("pids.current"))
    }

    /// Opens the file [`Group::populated_via`] will read.
    pub fn open_populated_ahead(&self, ahead: &mut Ahead) {
        if let Some(p) = self.populated_file() {
            ahead.open(&p);
        }
    }

    /// [`Group::populated`] through files opened ahead.
    pub fn populated_via(&self, ahead: &mut Ahead) -> Option<bool> {
        let p = self.populated_file()?;
        let text = ahead.read(&p).ok()?;
        if p.ends_with("cgroup.events") {
            keyed(&text, "populated").map(|n| n > 0)
        } else {
            text.trim().parse::<u64>().ok().map(|n| n > 0)
        }
    }

    /// Descendant groups (relative to this group), across hierarchies, sorted, with the labels
    /// of the hierarchies each lives in; the group itself comes first as "".
    pub fn tree(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for h in self.managed() {
            let d = self.dir(h);
            if !d.is_dir() {
                continue;
            }
            let label = self.layout.hierarchies[h].label();
            let mut rels = vec![String::new()];
            walk(&d, &d, &mut rels);
            for r in rels {
                match out.iter_mut().find(|(n, _)| *n == r) {
                    Some((_, labels)) => labels.push(label.clone()),
                    None => out.push((r, vec![label.clone()])),
                }
            }
        }
        out.sort();
        out
    }
}

/// Enables `needed` (an error when not offered) and the usual controllers (when offered) for the
/// children of the v2 group `dir`; `known` is what it offers when that was read already.
fn delegate(dir: &Path, known: Option<&[String]>, needed: &[&str]) -> Result<()> {
    let text = match known {
        Some(k) => k.join(" "),
        None => read(&dir.join("cgroup.controllers")).unwrap_or_default(),
    };
    let offered: Vec<&str> = text.split_whitespace().collect();
    for n in needed {
        if !offered.contains(n) {
            return Err(Error::Controller {
                what: format!("a limit in {}", dir.display()),
                controller: (*n).to_string(),
                why: format!(
                    "is not delegated to {} (missing from its cgroup.controllers)",
                    dir.display()
                ),
            });
        }
    }
    let path = dir.join("cgroup.subtree_control");
    let mut missing: Vec<&str> = V2_DELEGATE
        .iter()
        .copied()
        .filter(|c| offered.contains(c))
        .collect();
    for n in needed {
        if !missing.contains(n) {
            missing.push(n);
        }
    }
    if missing.is_empty() {
        // Nothing to delegate (a hybrid host's v2 with hugetlb only): no need to read more.
        return Ok(());
    }
    let enabled = read(&path).unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    missing.retain(|c| !enabled.contains(c));
    if missing.is_empty() {
        return Ok(());
    }
    // One write enables them all at once; only when it fails, find out which one is refused.
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if write(&path, &all.join(" ")).is_ok() {
        return Ok(());
    }
    for c in missing.iter() {
        match write(&path, &format!("+{c}")) {
            Ok(()) => {}
            Err(Error::Sys { source, .. })
                if needed.contains(c) && source.raw_os_error() == Some(libc::EBUSY) =>
            {
                return Err(Error::sys_hint(
                    &format!("write '+{c}' to"),
                    &path,
                    source,
                    "v2 forbids controllers in a group that holds processes: use a --parent without processes; `cgctl run` steps aside into a leaf only when it is the parent's sole process",
                ))
            }
            Err(e) if needed.contains(c) => return Err(e),
            // An optional controller that cannot be enabled (a parent that holds processes)
            // only costs statistics; the group still works with v2's core files.
            Err(_) => {}
        }
    }
    Ok(())
}

fn collect_procs(dir: &Path, pids: &mut Vec<i32>) {
    if let Ok(text) = read_small(&dir.join("cgroup.procs")) {
        pids.extend(parse_pids(&text));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_procs(&e.path(), pids);
            }
        }
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .collect();
    subs.sort();
    for s in subs {
        if let Ok(r) = s.strip_prefix(base) {
            out.push(r.display().to_string());
        }
        walk(base, &s, out);
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|es| {
            es.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

fn remove_tree(dir: &Path, recursive: bool) -> Result<()> {
    // The common case, a leaf with nothing left in it, costs one rmdir; only a refusal is
    // worth listing the directory.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
        Err(e) => return Err(Error::sys("rmdir", dir, e)),
    }
    let subs = subdirs(dir);
    if !subs.is_empty() && !recursive {
        return Err(Error::Other(format!(
            "{} has child groups (use -r to remove them too)",
            dir.display()
        )));
    }
    for s in subs {
        remove_tree(&s, true)?;
    }
    rmdir_retry(dir)
}

fn rmdir_retry(dir: &Path) -> Result<()> {
    let start = Instant::now();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY) && {
                    // Tasks that are exiting leave in a moment; live ones would not: give up on
                    // those soon instead of waiting the full grace period.
                    let live = std::fs::read_to_string(dir.join("cgroup.procs"))
                        .map(|t| !parse_pids(&t).is_empty())
                        .unwrap_or(false);
                    start.elapsed() < Duration::from_millis(if live { 100 } else { 2000 })
                } =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                let hint = if e.raw_os_error() == Some(libc::EBUSY) {
                    "it still holds processes: `cgctl kill NAME` first"
                } else {
                    ""
                };
                return Err(Error::sys_hint("rmdir", dir, e, hint));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(check_name("demo/job1").unwrap(), Path::new("demo/job1"));
        assert_eq!(check_name("a//b/").unwrap(), Path::new("a/b"));
        assert_eq!(check_name("").unwrap(), Path::new(""));
        for bad in ["../x", "a/../../b", "/etc", "a/./b", ".", "..", "a\nb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for ctl in ["a\tb", "a/\x1b[2J", "x\x7f", "\r", "a\u{85}b"] {
            let e = check_name(ctl).unwrap_err().to_string();
            assert!(e.contains("control character"), "{e}");
            // The message shows the name escaped: no raw control character reaches a terminal.
            assert!(!e.chars().any(char::is_control), "{e:?}");
        }
        let max = "x".repeat(NAME_MAX);
        assert!(check_name(&format!("a/{max}")).is_ok());
        let e = check_name(&format!("a/{max}y/b")).unwrap_err().to_string();
        assert!(e.contains("256 bytes long, longer than 255"), "{e}");
        // Bytes, not characters: 128 two-byte characters are 256 bytes.
        assert!(check_name(&"é".repeat(128)).is_err());
    }
}
