//! pivot for real, as root, each run inside namespaces that util-linux `unshare` creates for it,
//! so every mount lives and dies in a private mount namespace. After each test the host's own
//! mount table must be exactly what it was before.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testcaps::{require, Cap, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_pivot");
const LIMIT: Duration = Duration::from_secs(30);

fn host_mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").expect("read the host's mountinfo")
}

/// Remembers the host's mount table and checks, when the test ends (dropped), that it did not
/// change; a test that already failed is not failed twice.
struct HostMounts(String);

impl HostMounts {
    fn now() -> HostMounts {
        HostMounts(host_mountinfo())
    }
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(
                host_mountinfo(),
                self.0,
                "the host's /proc/self/mountinfo changed"
            );
        }
    }
}

/// The start of a test: the capabilities it needs (`require!` returns from the test when one is
/// missing), then the guard that checks the host's mount table when the test ends.
macro_rules! start {
    ($($cap:expr),+) => {{
        require!($($cap),+);
        HostMounts::now()
    }};
}

/// A directory of the test's own under /tmp, removed at the end.
fn temp(tag: &str) -> TempDir {
    TempDir::new(&format!("pivot-{tag}")).expect("temp dir")
}

fn rootfs() -> String {
    testcaps::rootfs().display().to_string()
}

/// `unshare NS... -- pivot ARGS...`.
fn in_ns(ns: &[&str], args: &[&str]) -> testcaps::Output {
    testcaps::run(
        Command::new("unshare")
            .args(ns)
            .arg("--")
            .arg(BIN)
            .args(args),
        LIMIT,
    )
}

/// [`in_ns`] that must exit 0.
fn in_ns_ok(ns: &[&str], args: &[&str]) -> testcaps::Output {
    let out = in_ns(ns, args);
    assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
    out
}

/// `unshare NS... -- sh -c SCRIPT`: a shell in the namespaces, for steps around pivot itself.
fn sh_in_ns(ns: &[&str], script: &str) -> testcaps::Output {
    testcaps::run(
        Command::new("unshare")
            .args(ns)
            .args(["--", "sh", "-c", script]),
        LIMIT,
    )
}

/// A private mount namespace only.
const MOUNT_ONLY: [&str; 3] = ["-m", "--propagation", "private"];

/// A private mount namespace and a PID namespace, so a procfs can be mounted for the new root.
const MOUNT_AND_PID: [&str; 5] = ["-m", "-p", "-f", "--propagation", "private"];

/// setpriv's arguments that drop to nobody (uid and gid 65534, no groups) before `--`.
const AS_NOBODY: [&str; 6] = [
    "--reuid",
    "65534",
    "--regid",
    "65534",
    "--clear-groups",
    "--",
];

/// `unshare CONTAINER... -- pivot OPTS... ROOTFS /bin/sh -c SCRIPT`.
fn sh_in_container(opts: &[&str], script: &str) -> testcaps::Output {
    let root = rootfs();
    let mut args = opts.to_vec();
    args.extend([root.as_str(), "/bin/sh", "-c", script]);
    in_ns(&CONTAINER, &args)
}

/// [`sh_in_container`] that must exit 0.
fn sh_in_container_ok(opts: &[&str], script: &str) -> testcaps::Output {
    let out = sh_in_container(opts, script);
    assert_eq!(out.code, Some(0), "{opts:?} {script:?}: {out:?}");
    out
}

/// The usual container namespaces, as root.
const CONTAINER: [&str; 8] = [
    "-m",
    "-p",
    "-f",
    "-u",
    "-i",
    "-n",
    "--propagation",
    "private",
];

/// Mount points listed in mountinfo text.
fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .collect()
}

/// The line of mountinfo whose mount point is `mp` (the last one: the visible mount).
fn mount_line<'a>(mountinfo: &'a str, mp: &str) -> Option<&'a str> {
    mountinfo
        .lines()
        .rev()
        .find(|l| l.split_whitespace().nth(4) == Some(mp))
}

fn allowed_mount_points() -> BTreeSet<String> {
    let mut set: BTreeSet<String> = ["/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"]
        .into_iter()
        .map(String::from)
        .collect();
    set.extend(pivot::plan::MASKED.iter().map(|s| s.to_string()));
    set.extend(pivot::plan::READ_ONLY.iter().map(|s| s.to_string()));
    set
}

#[test]
fn container_sees_pid_1_and_only_its_own_mounts() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let out = sh_in_container_ok(&[], "echo pid=$$; ps; echo ---; cat /proc/self/mountinfo");
    assert_eq!(out.stderr, "", "{out:?}");
    let (head, mountinfo) = out.stdout.split_once("---\n").expect("marker");
    assert!(head.starts_with("pid=1\n"), "{out:?}");
    // ps reads the container's own /proc: sh is PID 1 and only ps runs beside it.
    let procs: Vec<&str> = head.lines().skip(2).collect();
    assert_eq!(procs.len(), 2, "{head}");
    assert!(
        procs[0].trim_start().starts_with("1 root") && procs[0].contains("/bin/sh"),
        "{head}"
    );
    let points = mount_points(mountinfo);
    let allowed = allowed_mount_points();
    for p in &points {
        assert!(allowed.contains(p), "unexpected mount {p} in\n{mountinfo}");
    }
    for must in [
        "/",
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/sys",
        "/proc/sys",
    ] {
        assert!(
            points.iter().any(|p| p == must),
            "{must} missing in\n{mountinfo}"
        );
    }
    // The /proc is a fresh one of the container's (the host's is not bind-mounted).
    let proc_line = mount_line(mountinfo, "/proc").expect("/proc");
    assert!(
        proc_line.contains(" / /proc ") && proc_line.contains("- proc "),
        "{proc_line}"
    );
    assert!(mount_line(mountinfo, "/").is_some_and(|l| l.contains(&rootfs())));
}

#[test]
fn ps_and_mount_show_only_the_container() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    // The issue's own composition, verbatim.
    let out = sh_in_container_ok(&[], "ps; mount");
    let mut lines = out.stdout.lines();
    assert!(lines.next().is_some_and(|l| l.contains("PID")), "{out:?}");
    let first = lines.next().unwrap_or_default();
    assert!(
        first.trim_start().starts_with("1 root") && first.contains("sh -c ps; mount"),
        "{out:?}"
    );
    let allowed = allowed_mount_points();
    let mounts: Vec<&str> = lines.filter(|l| l.contains(" on ")).collect();
    assert!(mounts.len() >= 6, "{out:?}");
    for m in mounts {
        // busybox mount: `SOURCE on TARGET type FSTYPE (OPTIONS)`.
        let target = m
            .split(" on ")
            .nth(1)
            .and_then(|r| r.split(" type ").next());
        assert!(
            target.is_some_and(|t| allowed.contains(t)),
            "unexpected mount: {m}"
        );
    }
}

#[test]
fn dev_null_is_a_working_char_device_1_3() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let out = sh_in_container_ok(
        &[],
        "ls -l /dev/null /dev/zero /dev/tty; echo x > /dev/null && echo null-ok; \
         head -c 5 /dev/zero | wc -c; ls -l /dev/fd /dev/ptmx; test -c /dev/pts/ptmx && echo pts-ok",
    );
    let null = out
        .stdout
        .lines()
        .find(|l| l.ends_with("/dev/null"))
        .expect("ls /dev/null");
    assert!(null.starts_with("crw-rw-rw-"), "{null}");
    assert!(null.contains(" 1,   3 "), "{null}");
    assert!(out.stdout.contains("null-ok\n5\n"), "{out:?}");
    assert!(out.stdout.contains("/dev/fd -> /proc/self/fd"), "{out:?}");
    assert!(out.stdout.contains("/dev/ptmx -> pts/ptmx"), "{out:?}");
    assert!(out.stdout.contains("pts-ok"), "{out:?}");
}

#[test]
fn sys_is_read_only_and_masked_paths_read_empty() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let out = sh_in_container_ok(
        &[],
        "touch /sys/x; echo keys=$(cat /proc/keys | wc -c) timers=$(cat /proc/timer_list | wc -c) \
         fw=$(ls -A /sys/firmware | wc -l); echo host > /proc/sys/kernel/hostname; \
         echo ---; cat /proc/self/mountinfo",
    );
    assert!(
        out.stderr.contains("touch: /sys/x: Read-only file system"),
        "{out:?}"
    );
    assert!(out.stdout.starts_with("keys=0 timers=0 fw=0\n"), "{out:?}");
    // /proc/sys is read-only (and in a UTS namespace of its own, so nothing could leak).
    assert!(
        out.stderr.contains("/proc/sys/kernel/hostname") && out.stderr.contains("Read-only"),
        "{out:?}"
    );
    let (_, mountinfo) = out.stdout.split_once("---\n").expect("marker");
    let sys = mount_line(mountinfo, "/sys").expect("/sys");
    assert!(
        sys.split_whitespace()
            .nth(5)
            .is_some_and(|o| o.starts_with("ro")),
        "{sys}"
    );
    assert!(mount_line(mountinfo, "/proc/keys").is_some());
}

#[test]
fn no_mask_leaves_proc_unmasked() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let out = in_ns_ok(
        &CONTAINER,
        &["--no-mask", &rootfs(), "/bin/cat", "/proc/self/mountinfo"],
    );
    let points = mount_points(&out.stdout);
    assert!(
        !points
            .iter()
            .any(|p| p.starts_with("/proc/") || p.starts_with("/sys/")),
        "{out:?}"
    );
}

#[test]
fn ro_makes_the_root_read_only() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let out = sh_in_container_ok(
        &["--ro"],
        "touch /newfile; echo rc=$?; touch /dev/shm/ok && echo shm-writable",
    );
    assert_eq!(
        out.stderr, "touch: /newfile: Read-only file system\n",
        "{out:?}"
    );
    assert_eq!(out.stdout, "rc=1\nshm-writable\n", "{out:?}");
    assert!(!testcaps::rootfs().join("newfile").exists());
}

#[test]
fn bind_and_ro_bind_appear_inside() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("bind");
    std::fs::write(t.path().join("f"), "from the host\n").unwrap();
    let src = t.path().display().to_string();
    let out = sh_in_container_ok(
        &[
            "--bind",
            &format!("{src}:/mnt"),
            "--ro-bind",
            &format!("{src}:/root"),
            "--tmpfs",
            "/tmp",
            "-w",
            "/mnt",
        ],
        "cat f /root/f; touch written; touch /root/no; touch /tmp/t && echo tmp-ok; pwd",
    );
    assert_eq!(
        out.stdout, "from the host\nfrom the host\ntmp-ok\n/mnt\n",
        "{out:?}"
    );
    assert_eq!(
        out.stderr, "touch: /root/no: Read-only file system\n",
        "{out:?}"
    );
    assert!(
        t.path().join("written").is_file(),
        "the rw bind wrote through to the host"
    );
    assert!(!t.path().join("no").exists());
}

#[test]
fn put_old_keeps_the_old_root() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let script = format!("test -x /mnt{BIN} && echo old-root-at-mnt; ls /proc | wc -l");
    let out = sh_in_container_ok(&["--bare", "--put-old", "/mnt"], &script);
    assert_eq!(out.stdout, "old-root-at-mnt\n0\n", "{out:?}");
    // With --ro the new root is read-only, the old one below it is not touched.
    let out = sh_in_container_ok(
        &["--ro", "--put-old", "/mnt"],
        "touch /x; test -d /mnt/proc",
    );
    assert_eq!(out.stderr, "touch: /x: Read-only file system\n", "{out:?}");
}

#[test]
fn bare_mounts_nothing_else() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let out = sh_in_container_ok(
        &["--bare"],
        "echo proc=$(ls -A /proc | wc -l) dev=$(ls -A /dev | wc -l) sys=$(ls -A /sys | wc -l)",
    );
    assert_eq!(out.stdout, "proc=0 dev=0 sys=0\n", "{out:?}");
    // Mounting a proc by hand afterwards shows the whole table: the root and that proc.
    let out = sh_in_container_ok(
        &["--bare"],
        "mount -t proc proc /proc && cat /proc/self/mountinfo",
    );
    assert_eq!(mount_points(&out.stdout), ["/", "/proc"], "{out:?}");
}

#[test]
fn hostname_is_set_only_in_a_uts_namespace_of_its_own() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let out = in_ns_ok(
        &CONTAINER,
        &["--hostname", "box", &rootfs(), "/bin/hostname"],
    );
    assert_eq!(out.stdout, "box\n");
    let out = in_ns(
        &MOUNT_ONLY,
        &["--hostname", "box", &rootfs(), "/bin/hostname"],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "pivot: --hostname box: this is the host's UTS namespace (add -u to unshare so the name \
         stays in the container)\n"
    );
}

#[test]
fn rootless_mode_binds_device_nodes() {
    let _host = start!(Cap::Root, Cap::Rootfs, Cap::Userns);
    let out = in_ns_ok(
        &["-r", "-m", "-p", "-f", "--propagation", "private"],
        &[
            &rootfs(),
            "/bin/sh",
            "-c",
            "id -u; ls -l /dev/null; echo x > /dev/null && echo null-ok; touch /sys/x; \
             echo ---; cat /proc/self/mountinfo",
        ],
    );
    let (head, mountinfo) = out.stdout.split_once("---\n").expect("marker");
    assert!(head.starts_with("0\ncrw-rw-rw-"), "{out:?}");
    assert!(
        head.contains(" 1,   3 ") && head.contains("null-ok"),
        "{out:?}"
    );
    // The node is the host's, bind-mounted: mknod is not allowed in a user namespace.
    let null = mount_line(mountinfo, "/dev/null").expect("/dev/null is a bind mount");
    assert!(null.contains("/null /dev/null "), "{null}");
    assert!(
        out.stderr.contains("/sys/x: Read-only file system"),
        "{out:?}"
    );
    assert!(mount_line(mountinfo, "/proc").is_some());
}

#[test]
fn host_namespace_is_refused() {
    require!(Cap::Root, Cap::Rootfs);
    // Elsewhere pivot would pivot the test runner's own namespace: nothing to refuse.
    testcaps::require_that!(
        "hostns",
        match pivot::hostns::mount_ns() {
            pivot::hostns::Verdict::Host => Ok(()),
            v => Err(format!("pivot's verdict on this mount namespace: {v:?}")),
        }
    );
    let _host = HostMounts::now();
    for args in [
        vec![rootfs(), "/bin/true".to_string()],
        vec!["--bare".to_string(), rootfs()],
        vec![
            "root-compat".to_string(),
            rootfs(),
            format!("{}/mnt", rootfs()),
        ],
        vec!["switch-root".to_string(), rootfs(), "/bin/sh".to_string()],
    ] {
        let out = testcaps::run(Command::new(BIN).args(&args), LIMIT);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "");
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        assert!(
            out.stderr
                .contains("refusing to run in the host's initial mount namespace"),
            "{out:?}"
        );
    }
}

#[test]
fn bad_input_is_one_line_with_the_right_code() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("bad");
    let evil = t.path().join("evil");
    std::fs::create_dir_all(evil.join("etc")).unwrap();
    std::os::unix::fs::symlink("../../..", evil.join("up")).unwrap();
    let evil = evil.display().to_string();
    let r = rootfs();
    let cases: Vec<(Vec<&str>, i32, &str)> =
        vec![
        (vec![], 1, "pivot: the following required arguments were not provided"),
        (vec!["/nonexistent-root"], 1, "pivot: NEWROOT /nonexistent-root: No such file"),
        (vec!["/etc/passwd"], 1, "pivot: NEWROOT /etc/passwd: not a directory"),
        (vec![&evil], 127, "pivot: COMMAND /bin/sh not found inside "),
        (vec![&r, "/nope"], 127, "pivot: COMMAND /nope not found inside "),
        (vec![&r, "no-such-program"], 127, "pivot: COMMAND no-such-program not found"),
        (
            vec!["--tmpfs", "/home", &r, "/home/nope"],
            127,
            "pivot: failed to execute /home/nope: No such file or directory",
        ),
        (vec![&r, "/etc/passwd"], 126, "pivot: COMMAND /etc/passwd inside "),
        (vec![&r, "/etc"], 126, "pivot: COMMAND /etc inside "),
        (
            vec!["--tmpfs", "/home", "--bind", "/etc/passwd:/home/p", &r, "/home/p"],
            126,
            "pivot: failed to execute /home/p: Permission denied",
        ),
        (vec!["--bind", "/nonexistent-src:/mnt", &r], 1, "pivot: --bind source /nonexistent-src"),
        (
            vec!["--bind", "/tmp:/../../x", &r],
            1,
            "pivot: --bind destination /../../x: it leaves the new root",
        ),
        (
            vec!["--ro-bind", "/tmp:/up/x", &evil],
            1,
            "pivot: --ro-bind destination /up/x: it leaves the new root through the symlink /up",
        ),
        (vec!["--tmpfs", "/up", &evil], 1, "pivot: --tmpfs destination /up: it leaves"),
        (vec!["-w", "/nope", &r, "/bin/true"], 1, "pivot: -w /nope inside "),
        (vec!["-w", "/etc/passwd", &r, "/bin/true"], 1, "pivot: -w /etc/passwd inside "),
        (
            vec!["--tmpfs", "/home", "-w", "/home/nope", &r, "/bin/true"],
            1,
            "pivot: chdir(/home/nope) inside the new root failed",
        ),
    ];
    for (args, code, start) in cases {
        let out = in_ns(&MOUNT_ONLY, &args);
        assert_eq!(out.code, Some(code), "{args:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with(start), "{args:?}: {out:?}");
    }
    // Nothing was created outside the evil root.
    assert_eq!(
        std::fs::read_dir(t.path()).unwrap().count(),
        1,
        "only evil/ in {}",
        t.path().display()
    );
}

#[test]
fn a_failure_half_way_leaves_no_mounts_behind() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let r = rootfs();
    // Binding a file onto a directory fails after /proc, /dev and /sys were mounted.
    let script = format!(
        "{BIN} --bind /etc/hostname:/etc {r}; echo rc=$?; grep -c '{r}' /proc/self/mountinfo"
    );
    let out = sh_in_ns(&MOUNT_ONLY, &script);
    assert_eq!(out.stdout, "rc=1\n0\n", "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr.starts_with("pivot: mount(MS_BIND) on "),
        "{out:?}"
    );
    // A COMMAND missing from the new root is found before the first mount: the shell that
    // shares the namespace is not pivoted and sees no mount.
    let script = format!(
        "{BIN} {r} /no/such/command; echo rc=$?; grep -c '{r}' /proc/self/mountinfo; \
         test -d /usr/bin && echo still-on-the-host"
    );
    let out = sh_in_ns(&MOUNT_ONLY, &script);
    assert_eq!(out.stdout, "rc=127\n0\nstill-on-the-host\n", "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

/// Scaffolding for an "old root" a process can chroot into and still run pivot (a dynamically
/// linked binary): a tmpfs mounted at `tmpfs_at`, and in `root` (that directory or one below it)
/// the host's /usr bound read-only, lib symlinks, a procfs, pivot itself, and the busybox rootfs
/// bound read-only at `new`.
fn scaffold(tmpfs_at: &str, root: &str) -> String {
    format!(
        "set -e; mount -t tmpfs oldroot {tmpfs_at}; \
         mkdir -p {root}/usr {root}/proc {root}/bin {root}/new; \
         mount --bind /usr {root}/usr; mount -o remount,bind,ro {root}/usr; \
         ln -s usr/lib {root}/lib; ln -s usr/lib64 {root}/lib64; \
         mount -t proc proc {root}/proc; cp {BIN} {root}/bin/pivot; \
         mount --bind {rootfs} {root}/new; mount -o remount,bind,ro {root}/new; ",
        rootfs = rootfs()
    )
}

/// pivot_root(2) refuses a root that is not a mount point, exactly as it refuses the initramfs;
/// the same MS_MOVE + chroot fallback answers both. The real initramfs (rootfs as /) exists only
/// at boot, so that case is covered by the guest lane (`cargo xtask vmtest`); here / is a plain
/// directory of a tmpfs seen through chroot.
#[test]
fn initramfs_fallback_moves_and_chroots() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("fallback");
    let top = t.path().display().to_string();
    let sub = format!("{top}/sub");
    let script = format!(
        "{} set +e; chroot {sub} /bin/pivot -v /new /bin/sh -c 'echo inside; cat /proc/self/mountinfo'",
        scaffold(&top, &sub)
    );
    let out = sh_in_ns(&MOUNT_AND_PID, &script);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("inside\n"), "{out:?}");
    assert!(
        out.stderr
            .contains("/ is not a mount point (chroot): falling back to MS_MOVE of /new"),
        "{out:?}"
    );
    let points = mount_points(out.stdout.split_once("inside\n").map_or("", |x| x.1));
    assert!(points.iter().any(|p| p == "/proc"), "{out:?}");
}

#[test]
fn switch_root_deletes_only_its_own_device() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("switch");
    let old = format!("{}/old", t.path().display());
    let view = format!("{}/view", t.path().display());
    let keep = format!("{}/keep", t.path().display());
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&view).unwrap();
    std::fs::create_dir_all(&keep).unwrap();
    let script = format!(
        "{} mkdir -p {old}/junk/deep {old}/mnt {old}/run; touch {old}/junk/deep/f {old}/top; \
         mount -t tmpfs mnt {old}/mnt; touch {old}/mnt/kept; mount --bind {old}/mnt {keep}; \
         mount -t tmpfs run {old}/run; touch {old}/run/marker; mount --bind {old} {view}; \
         set +e; chroot {old} /bin/pivot switch-root -v /new /bin/sh -c \
         'ls /run; cat /proc/self/mountinfo'; echo rc=$?; echo ---; ls -A {view}; echo ---; \
         ls -A {keep}",
        scaffold(&old, &old)
    );
    let out = sh_in_ns(&MOUNT_AND_PID, &script);
    assert_eq!(out.code, Some(0), "{out:?}");
    let parts: Vec<&str> = out.stdout.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{out:?}");
    // /run and /proc were carried into the new root.
    assert!(parts[0].starts_with("marker\n"), "{out:?}");
    let points = mount_points(parts[0]);
    assert!(points.iter().any(|p| p == "/run"), "{out:?}");
    assert!(points.iter().any(|p| p == "/proc"), "{out:?}");
    assert!(parts[0].ends_with("rc=0\n"), "{out:?}");
    // Of the old root only the mount points remain: usr (the host's, never entered) and mnt
    // (another tmpfs, whose file survives).
    assert_eq!(parts[1], "mnt\nusr\n", "{out:?}");
    assert_eq!(parts[2], "kept\n", "{out:?}");
    assert!(out.stderr.contains("deleted"), "{out:?}");
    assert!(Path::new("/usr/bin").is_dir());
}

#[test]
fn pivot_root_compat_keeps_the_old_root_at_put_old() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("compat");
    let link = t.path().join("pivot_root");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let r = rootfs();
    let script = format!(
        "set -e; mount --bind {r} {r}; cd {r}; {link} . mnt; cd /; \
         test -x /mnt{BIN} && echo old-root-at-mnt; /bin/ls /etc/hostname",
        link = link.display()
    );
    let out = sh_in_ns(&MOUNT_ONLY, &script);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "old-root-at-mnt\n/etc/hostname\n", "{out:?}");
    // Named pivot_root, it speaks as pivot_root and wants two arguments.
    let out = testcaps::run(Command::new(&link).arg("/x"), LIMIT);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.starts_with("pivot_root: "), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

/// Whether every directory above `p` is searchable by others and `p` readable by them.
fn world_reachable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let mode = |q: &Path| {
        std::fs::metadata(q)
            .map(|m| m.permissions().mode())
            .unwrap_or(0)
    };
    mode(p) & 0o004 != 0 && p.ancestors().skip(1).all(|a| mode(a) & 0o001 != 0)
}

/// The pivot binary and the rootfs as paths nobody (uid 65534) can reach: the real ones, or, when
/// the clone sits under a private directory, copies in the test's world-readable temp dir.
fn reachable_by_nobody(t: &TempDir) -> (PathBuf, String) {
    if world_reachable(Path::new(BIN)) && world_reachable(&testcaps::rootfs()) {
        return (PathBuf::from(BIN), rootfs());
    }
    let bin = t.path().join("pivot");
    testcaps::copy_executable(BIN, &bin);
    let root = t.path().join("rootfs");
    let cp = testcaps::run(
        Command::new("cp")
            .arg("-a")
            .arg(testcaps::rootfs())
            .arg(&root),
        LIMIT,
    );
    assert_eq!(cp.code, Some(0), "{cp:?}");
    (bin, root.display().to_string())
}

#[test]
fn without_privilege_the_error_names_the_call_and_a_hint() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("noprivs");
    let (bin, root) = reachable_by_nobody(&t);
    // A mount namespace of its own, but nobody has no capability in it.
    let out = testcaps::run(
        Command::new("unshare")
            .args(MOUNT_ONLY)
            .args(["--", "setpriv"])
            .args(AS_NOBODY)
            .arg(&bin)
            .args([&root, "/bin/true"]),
        LIMIT,
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "pivot: mount(MS_REC|MS_PRIVATE) on / failed: Operation not permitted (needs \
         CAP_SYS_ADMIN over the mount namespace: run as root or under `unshare -r -m`)\n"
    );
}

#[test]
fn rootless_as_an_unprivileged_user() {
    let _host = start!(Cap::Root, Cap::Rootfs, Cap::Userns);
    let t = temp("nobody");
    let (bin, root) = reachable_by_nobody(&t);
    // nobody, in a user namespace of its own: the rootless container of an ordinary user.
    let out = testcaps::run(
        Command::new("setpriv")
            .args(AS_NOBODY)
            .args(["unshare", "-r"])
            .args(MOUNT_AND_PID)
            .arg("--")
            .arg(&bin)
            .args(["--ro", "--tmpfs", "/tmp", &root, "/bin/sh", "-c"])
            .arg(
                "id -u; ls -l /dev/null; echo x > /dev/null && echo null-ok; touch /x; \
                 touch /tmp/ok && echo tmp-ok; touch /sys/x",
            ),
        LIMIT,
    );
    assert_eq!(out.code, Some(1), "the last touch fails: {out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out:?}");
    assert_eq!(lines[0], "0");
    assert!(
        lines[1].starts_with("crw-rw-rw-") && lines[1].contains(" 1,   3 "),
        "{out:?}"
    );
    assert_eq!(&lines[2..], ["null-ok", "tmp-ok"]);
    assert_eq!(
        out.stderr,
        "touch: /x: Read-only file system\ntouch: /sys/x: Read-only file system\n"
    );
}

#[test]
fn double_dash_slave_propagation_and_partial_setups() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let out = in_ns_ok(
        &CONTAINER,
        &[
            "--propagation",
            "slave",
            "--no-dev",
            "--no-sys",
            &rootfs(),
            "--",
            "/bin/sh",
            "-c",
            "echo dev=$(ls -A /dev | wc -l) sys=$(ls -A /sys | wc -l); cat /proc/self/mountinfo",
        ],
    );
    assert!(out.stdout.starts_with("dev=0 sys=0\n"), "{out:?}");
    let points = mount_points(&out.stdout);
    assert!(points.iter().any(|p| p == "/proc"), "{out:?}");
    assert!(points.iter().any(|p| p == "/proc/sys"), "{out:?}");
    assert!(
        !points
            .iter()
            .any(|p| p.starts_with("/dev") || p.starts_with("/sys")),
        "{out:?}"
    );
}

/// The composition the issue names, with our own unshare-rs instead of util-linux's: as root
/// (`-m -p -f -u -i -n`, sh is PID 1 and sees only the container's mounts and processes) and
/// rootless (`-r -m -p -f`, device nodes bind-mounted from the host).
#[test]
fn composes_with_unshare_rs_as_root_and_rootless() {
    let _host = start!(Cap::Root, Cap::Rootfs, Cap::Userns);
    let unshare_rs = testcaps::sibling_bin("unshare-rs");
    let run = |ns: &[&str]| {
        testcaps::run(
            Command::new(&unshare_rs).args(ns).arg("--").arg(BIN).args([
                rootfs().as_str(),
                "/bin/sh",
                "-c",
                "echo pid=$$ uid=$(id -u); ps -o pid,comm; ls -l /dev/null; echo ---; \
                     cat /proc/self/mountinfo",
            ]),
            LIMIT,
        )
    };
    for (ns, uid) in [
        (&["-m", "-p", "-f", "-u", "-i", "-n"][..], "0"),
        (&["-r", "-m", "-p", "-f"][..], "0"),
    ] {
        let out = run(ns);
        assert_eq!(out.code, Some(0), "{ns:?}: {out:?}");
        let (head, mountinfo) = out.stdout.split_once("---\n").expect("marker");
        assert!(
            head.starts_with(&format!("pid=1 uid={uid}\n")),
            "{ns:?}: {out:?}"
        );
        let procs: Vec<&str> = head
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        assert_eq!(procs.len(), 2, "sh and ps only: {ns:?}: {out:?}");
        assert!(head.contains(" 1,   3 "), "{ns:?}: {out:?}");
        if ns.contains(&"-r") {
            // Rootless: the nodes are the host's, bind-mounted, and /sys is the host's read-only
            // rbind (its submounts come along); nothing else of the host is visible.
            assert!(mount_line(mountinfo, "/dev/null").is_some(), "{out:?}");
            for mp in mount_points(mountinfo) {
                let inside = ["/proc", "/dev", "/sys"]
                    .iter()
                    .any(|p| mp == *p || mp.starts_with(&format!("{p}/")));
                assert!(
                    mp == "/" || inside,
                    "{ns:?}: unexpected mount {mp}: {out:?}"
                );
            }
        } else {
            let allowed = allowed_mount_points();
            for mp in mount_points(mountinfo) {
                assert!(
                    allowed.contains(&mp),
                    "{ns:?}: unexpected mount {mp}: {out:?}"
                );
            }
        }
    }
}

/// switch_root's deletion of the old root is not recursive: a directory chain 15,000 levels deep
/// (deeper than any stack allows for a recursive walk, and than the limit of open files) is
/// deleted after the root was switched, and INIT runs.
#[test]
fn switch_root_deletes_a_very_deep_tree() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("deep");
    let old = format!("{}/old", t.path().display());
    let view = format!("{}/view", t.path().display());
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&view).unwrap();
    // Built bottom up: each round makes 2,000 levels with one mkdir -p (a path below PATH_MAX)
    // and renames the chain so far to their bottom.
    let step = vec!["d"; 2000].join("/");
    let script = format!(
        "{} mount --bind {old} {view}; cd {old}; mkdir -p {rest}; touch {rest}/bottom; \
         mv d chain; i=0; while [ $i -lt 7 ]; do mkdir -p {step}; mv chain {step}/chain; \
         mv d chain; i=$((i+1)); done; cd /; \
         set +e; chroot {old} /bin/pivot switch-root /new /bin/sh -c 'echo init-ran; exit 7'; \
         echo rc=$?; ls -A {view}",
        scaffold(&old, &old),
        rest = vec!["d"; 1000].join("/"),
    );
    let out = sh_in_ns(&MOUNT_AND_PID, &script);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "init-ran\nrc=7\nusr\n", "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
}

/// switch_root decides whether NEWROOT is a mount point without /proc (an initramfs need not have
/// mounted it), as util-linux does.
#[test]
fn switch_root_works_without_proc() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("noproc");
    let old = format!("{}/old", t.path().display());
    let view = format!("{}/view", t.path().display());
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&view).unwrap();
    let script = format!(
        "{} umount {old}/proc; mkdir {old}/plain; mount --bind {old} {view}; set +e; \
         chroot {old} /bin/pivot switch-root /plain /bin/sh; echo rc=$?; \
         chroot {old} /bin/pivot switch-root /new /bin/sh -c 'echo init-ran; ls /proc | wc -l'; \
         echo rc=$?; ls -A {view}",
        scaffold(&old, &old),
    );
    let out = sh_in_ns(&MOUNT_AND_PID, &script);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "rc=1\ninit-ran\n0\nrc=0\nusr\n", "{out:?}");
    assert_eq!(
        out.stderr,
        "pivot switch-root: NEWROOT /plain: not a mount point (mount the real root there first)\n"
    );
}
/// A copy of the busybox rootfs under `t`, named `name`, for a test to make hostile.
fn rootfs_copy(t: &TempDir, name: &str) -> PathBuf {
    let root = t.path().join(name);
    let cp = testcaps::run(
        Command::new("cp")
            .arg("-a")
            .arg(testcaps::rootfs())
            .arg(&root),
        LIMIT,
    );
    assert_eq!(cp.code, Some(0), "{cp:?}");
    root
}

/// Every entry under `dir` (symlinks not followed) with its type and mode bits, to prove that a
/// run created, removed or changed nothing on disk.
fn tree_snapshot(dir: &Path) -> BTreeSet<(String, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let p = entry.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let shown = p.strip_prefix(dir).unwrap().display().to_string();
            let link = std::fs::read_link(&p)
                .map(|l| format!(" -> {}", l.display()))
                .unwrap_or_default();
            out.insert((format!("{shown}{link}"), m.mode()));
            if m.is_dir() {
                todo.push(p);
            }
        }
    }
    out
}

/// Runs `pivot ARGS...` in a private mount namespace, then reports its status and how many
/// mounts of the namespace mention `root`: nothing may be left mounted after a refusal.
fn refused_in_ns(args: &[&str], root: &Path) -> testcaps::Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "{BIN} {}; echo rc=$?; grep -c '{}' /proc/self/mountinfo",
        quoted.join(" "),
        root.display()
    );
    sh_in_ns(&MOUNT_AND_PID, &script)
}

/// A rootfs whose /proc, /dev or /sys is a symlink (to `/`, `.` or another directory) would make
/// pivot mount over the root itself or another directory and create device nodes in the rootfs
/// on disk. Like runc, pivot mounts these only on real directories: it refuses, one line, before
/// the first mount, and the rootfs is left exactly as it was.
#[test]
fn hostile_proc_dev_sys_symlinks_are_refused_and_nothing_is_created() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("hostile");
    let root = rootfs_copy(&t, "r");
    let r = root.display().to_string();
    for (dir, target, opt) in [
        ("proc", "/", "--no-proc"),
        ("proc", "/etc", "--no-proc"),
        ("proc", ".", "--no-proc"),
        ("dev", "/", "--no-dev"),
        ("dev", ".", "--no-dev"),
        ("dev", "/etc", "--no-dev"),
        ("sys", "/", "--no-sys"),
        ("sys", "etc", "--no-sys"),
    ] {
        let p = root.join(dir);
        std::fs::remove_dir_all(&p)
            .or_else(|_| std::fs::remove_file(&p))
            .unwrap();
        std::os::unix::fs::symlink(target, &p).unwrap();
        let before = tree_snapshot(&root);
        let out = refused_in_ns(&[&r, "/bin/true"], &root);
        assert_eq!(out.stdout, "rc=1\n0\n", "{dir} -> {target}: {out:?}");
        assert_eq!(
            out.stderr,
            format!(
                "pivot: /{dir} inside {r}: is a symlink (to {target}) (pivot mounts {dir} only \
                 on a real directory, as runc does: make /{dir} a directory, or pass {opt})\n"
            ),
            "{dir} -> {target}"
        );
        assert_eq!(tree_snapshot(&root), before, "{dir} -> {target}");
        // Without that mount the link is no mount target: the run goes on, and still creates
        // nothing in the rootfs on disk.
        let out = in_ns(&MOUNT_AND_PID, &[opt, &r, "/bin/sh", "-c", "echo ran"]);
        assert_eq!(out.code, Some(0), "{opt} with {dir} -> {target}: {out:?}");
        assert_eq!(out.stdout, "ran\n", "{opt} with {dir} -> {target}: {out:?}");
        assert_eq!(tree_snapshot(&root), before, "{dir} -> {target}");
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
    }
    // A masked path reached through a symlink (here in a directory bound over /proc) would put
    // the mask elsewhere: refused, and the mounts made so far are undone.
    let fake = t.path().join("fakeproc");
    std::fs::create_dir(&fake).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", fake.join("kcore")).unwrap();
    let bind = format!("{}:/proc", fake.display());
    let before = tree_snapshot(&root);
    let out = refused_in_ns(&["--bind", &bind, &r, "/bin/true"], &root);
    assert_eq!(out.stdout, "rc=1\n0\n", "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "pivot: /proc/kcore inside {r}: resolves to /etc/hostname through a symlink (masked \
             and read-only paths must be real, as proc and sys make them)\n"
        )
    );
    assert_eq!(tree_snapshot(&root), before);
    // A plain file where /dev should be is refused as well.
    std::fs::remove_dir(root.join("dev")).unwrap();
    std::fs::write(root.join("dev"), "").unwrap();
    let out = refused_in_ns(&[&r, "/bin/true"], &root);
    assert_eq!(out.stdout, "rc=1\n0\n", "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "pivot: /dev inside {r}: is not a directory (pivot mounts dev only on a real \
             directory, as runc does: make /dev a directory, or pass --no-dev)\n"
        )
    );
}

/// With the real directories in place, a normal run creates nothing in the rootfs on disk: the
/// device nodes, symlinks and directories of /dev all live in pivot's own tmpfs.
#[test]
fn a_normal_run_creates_nothing_in_the_rootfs_on_disk() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("pristine");
    let root = rootfs_copy(&t, "r");
    let r = root.display().to_string();
    let before = tree_snapshot(&root);
    let out = in_ns_ok(
        &MOUNT_AND_PID,
        &[
            &r,
            "/bin/sh",
            "-c",
            "test -c /dev/null && test -L /dev/fd && test -d /dev/pts",
        ],
    );
    assert_eq!(out.stderr, "", "{out:?}");
    assert_eq!(tree_snapshot(&root), before);
}

/// Bad input that pivot used to take silently or report as something else (issue #22, item 4 and
/// item 12): each is one line, exit 1, before the first mount.
#[test]
fn misleading_input_is_refused_with_the_real_reason() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("misreport");
    let root = rootfs_copy(&t, "r");
    let r = root.display().to_string();
    let before = tree_snapshot(&root);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--bind", "/tmp:/", &r],
            "pivot: --bind destination /: is the new root itself (bind onto a directory \
             below it)"
                .to_string(),
        ),
        (
            vec!["--ro-bind", "/tmp:/etc/..", &r],
            "pivot: --ro-bind destination /etc/..: is the new root itself (bind onto a \
             directory below it)"
                .to_string(),
        ),
        (
            vec!["--tmpfs", "/", &r],
            "pivot: --tmpfs destination /: is the new root itself (mount onto a directory \
             below it)"
                .to_string(),
        ),
        (
            vec!["--bind", "/tmp:/mnt:/x", &r],
            "pivot: invalid value for --bind: '/tmp:/mnt:/x' has more than one ':' (write \\: \
             for a colon that is part of a path) (try 'pivot --help')"
                .to_string(),
        ),
        (
            vec!["--tmpfs", "tmp", &r],
            "pivot: invalid value for --tmpfs: 'tmp' is not an absolute path (DST is a path \
             inside the new root, starting with /) (try 'pivot --help')"
                .to_string(),
        ),
        (
            vec!["--bind", "/tmp:mnt", &r],
            "pivot: invalid value for --bind: 'mnt' is not an absolute path (DST is a path \
             inside the new root, starting with /) (try 'pivot --help')"
                .to_string(),
        ),
        (
            vec!["--bind", "tmp", &r],
            "pivot: invalid value for --bind: 'tmp' is not an absolute path (SRC alone is also \
             the destination inside the new root; give SRC:DST) (try 'pivot --help')"
                .to_string(),
        ),
        (
            vec!["--put-old", "/etc/passwd", &r],
            format!(
                "pivot: --put-old /etc/passwd inside {r}: not a directory (give a directory \
                 inside NEWROOT, or a path to create)"
            ),
        ),
        (
            vec!["--bare", "--put-old", "/bin/sh/x", &r],
            format!(
                "pivot: --put-old /bin/sh/x inside {r}: /bin/busybox is not a directory (give a \
                 directory inside NEWROOT, or a path to create)"
            ),
        ),
    ];
    for (args, err) in cases {
        let out = refused_in_ns(&args, &root);
        assert_eq!(out.stdout, "rc=1\n0\n", "{args:?}: {out:?}");
        assert_eq!(out.stderr, format!("{err}\n"), "{args:?}");
    }
    assert_eq!(tree_snapshot(&root), before);
}

/// With almost no free descriptors the lookup of a COMMAND that is there fails with EMFILE; that
/// is reported as what it is, not as "not found" (127).
#[test]
fn too_few_descriptors_is_not_reported_as_command_not_found() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let r = rootfs();
    for n in [4, 5] {
        let script = format!(
            "(ulimit -n {n}; exec {BIN} {r} /bin/true); echo rc=$?; \
             grep -c '{r}' /proc/self/mountinfo"
        );
        let out = sh_in_ns(&MOUNT_AND_PID, &script);
        assert_eq!(out.stdout, "rc=1\n0\n", "ulimit -n {n}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        assert!(
            out.stderr.starts_with("pivot: ")
                && out
                    .stderr
                    .contains("Too many open files (raise the limit of open files, ulimit -n)"),
            "ulimit -n {n}: {out:?}"
        );
    }
}

/// switch_root moves /dev /proc /sys /run only onto real directories of NEWROOT: `run -> /` in a
/// hostile new root would move the old root's /run onto the old root itself (and out of reach).
/// Such a mount is let go with a warning, as one whose directory is missing.
#[test]
fn switch_root_moves_mounts_only_onto_real_directories() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("switch-hostile");
    let copy = rootfs_copy(&t, "r");
    std::fs::remove_dir(copy.join("run")).unwrap();
    std::os::unix::fs::symlink("/", copy.join("run")).unwrap();
    let before = tree_snapshot(&copy);
    let old = format!("{}/old", t.path().display());
    let view = format!("{}/view", t.path().display());
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&view).unwrap();
    let script = format!(
        "{} mkdir {old}/hostile {old}/run; mount --bind {copy} {old}/hostile; \
         mount -t tmpfs run {old}/run; touch {old}/run/marker; mount --bind {old} {view}; \
         set +e; chroot {old} /bin/pivot switch-root /hostile /bin/sh -c \
         'ls -A /run | head -3; cut -d\" \" -f5 /proc/self/mountinfo'; echo rc=$?; ls -A {view}; \
         echo run-mounts=$(grep -c ' - tmpfs run ' /proc/self/mountinfo)",
        scaffold(&old, &old),
        copy = copy.display(),
    );
    let out = sh_in_ns(&MOUNT_AND_PID, &script);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stderr,
        "pivot switch-root: /hostile/run is a symlink (to /), not a directory: unmounting /run \
         instead of moving it\n",
        "{out:?}"
    );
    // Inside, /run is the new root's symlink to its own /, and only / and /proc are mounted; the
    // old root keeps only its mount points (usr, new); the old /run is mounted nowhere.
    let (inside, after) = out.stdout.split_once("rc=0\n").expect("rc=0");
    let mut lines: Vec<&str> = inside.lines().collect();
    // The new root's own first three entries (other tests may add mount points to the shared
    // rootfs, so they are read off the copy rather than spelled out).
    let mut names: Vec<String> = std::fs::read_dir(&copy)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.truncate(3);
    assert_eq!(lines.drain(..3).collect::<Vec<_>>(), names);
    lines.sort_unstable();
    assert_eq!(lines, ["/", "/proc"], "{out:?}");
    assert_eq!(after, "new\nusr\nrun-mounts=0\n", "{out:?}");
    assert_eq!(tree_snapshot(&copy), before);
}

/// `bwrap ARGS...`, bubblewrap on the same rootfs, for the tests that compare what is visible
/// inside (bubblewrap is one of `cargo xtask deps`' packages).
fn bwrap(args: &[&str]) -> testcaps::Output {
    testcaps::run(Command::new("bwrap").args(args), LIMIT)
}

/// A directory holding a `null` device node (1:3) and a set-uid-root copy of busybox named `su`
/// (busybox's su says "must be suid to work properly" when the set-uid bit did not take effect).
fn dev_and_suid_dir(t: &TempDir) -> String {
    use std::os::unix::fs::PermissionsExt;
    let d = t.path().join("devsuid");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mk = testcaps::run(
        Command::new("mknod")
            .args(["-m", "666"])
            .arg(d.join("null"))
            .args(["c", "1", "3"]),
        LIMIT,
    );
    assert_eq!(mk.code, Some(0), "{mk:?}");
    std::fs::copy(testcaps::rootfs().join("bin/busybox"), d.join("su")).unwrap();
    std::fs::set_permissions(d.join("su"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    d.display().to_string()
}

/// What the bind tests look at inside: the device node, the set-uid program run by nobody, and
/// the two mounts' options.
const DEV_SUID_SCRIPT: &str = "for d in a b; do \
     if echo x > /tmp/$d/null; then echo $d: null works; fi; \
     su -s /bin/sh nobody -c \"/tmp/$d/su -c true root\" </dev/null 2>&1 | tail -n 1; echo; \
     done; awk '$5 == \"/tmp/a\" || $5 == \"/tmp/b\" { print $5, $6 }' /proc/self/mountinfo";

/// issue #27: `--bind` is nodev,nosuid as bubblewrap's is (a device node and a set-uid program
/// in the bound directory do not work), `--dev-bind` keeps both working, and what is visible
/// inside is what bwrap shows for the same options.
#[test]
fn bind_is_nodev_nosuid_and_dev_bind_is_not_as_in_bwrap() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("devsuid");
    let d = dev_and_suid_dir(&t);
    let out = sh_in_container_ok(
        &[
            "--tmpfs",
            "/tmp",
            "--bind",
            &format!("{d}:/tmp/a"),
            "--dev-bind",
            &format!("{d}:/tmp/b"),
        ],
        DEV_SUID_SCRIPT,
    );
    let expected = "/bin/sh: can't create /tmp/a/null: Permission denied\n";
    assert_eq!(out.stderr, expected, "{out:?}");
    let want_lines = [
        "su: must be suid to work properly",
        "",
        "b: null works",
        "su: incorrect password",
        "",
    ];
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..5], want_lines, "{out:?}");
    let opts: Vec<&str> = lines[5..].to_vec();
    assert_eq!(opts.len(), 2, "{out:?}");
    assert!(opts[0].starts_with("/tmp/a rw,nosuid,nodev"), "{out:?}");
    assert!(
        opts[1].starts_with("/tmp/b rw,")
            && !opts[1].contains("nosuid")
            && !opts[1].contains("nodev"),
        "{out:?}"
    );
    // bubblewrap, the same binds on the same rootfs: the same devices inside.
    let binds = [
        "--tmpfs",
        "/tmp",
        "--bind",
        &format!("{d}:/tmp/a"),
        "--dev-bind",
        &format!("{d}:/tmp/b"),
    ];
    let out = sh_in_container_ok(&binds, DEV_SCRIPT);
    assert_eq!(
        out.stdout, "b: null works\n/tmp/a rw,nosuid,nodev,relatime\n/tmp/b dev\n",
        "{out:?}"
    );
    let root = rootfs();
    let b = bwrap(&[
        "--unshare-all",
        "--ro-bind",
        &root,
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--bind",
        &d,
        "/tmp/a",
        "--dev-bind",
        &d,
        "/tmp/b",
        "/bin/sh",
        "-c",
        DEV_SCRIPT,
    ]);
    assert_eq!(b.code, Some(0), "{b:?}");
    assert_eq!(b.stderr, out.stderr, "bwrap: {b:?}");
    assert_eq!(b.stdout, out.stdout, "bwrap: {b:?}");
}

/// What the bwrap comparison looks at: the device nodes and the nodev flags. bwrap itself runs
/// the sandbox without capabilities and with no_new_privs, and makes every bind nosuid,
/// `--dev-bind` included: set-uid programs are not comparable.
const DEV_SCRIPT: &str = "for d in a b; do \
     if echo x > /tmp/$d/null; then echo $d: null works; fi; done; \
     awk '$5 == \"/tmp/a\" { print $5, $6 } \
     $5 == \"/tmp/b\" { print $5, ($6 ~ /nodev/ ? \"nodev\" : \"dev\") }' /proc/self/mountinfo";

/// issue #27: the `-try` forms skip a missing source (nothing is created for it), the plain
/// forms refuse it with one line before the first mount.
#[test]
fn try_binds_skip_a_missing_source() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("trybind");
    let missing = t.path().join("missing").display().to_string();
    let present = t.path().display().to_string();
    for opt in ["--bind-try", "--ro-bind-try", "--dev-bind-try"] {
        let out = sh_in_container(
            &[
                "--tmpfs",
                "/tmp",
                opt,
                &format!("{missing}:/tmp/m"),
                opt,
                &format!("{present}:/tmp/p"),
            ],
            "ls /tmp; grep -c ' /tmp/' /proc/self/mountinfo",
        );
        assert_eq!(out.code, Some(0), "{opt}: {out:?}");
        assert_eq!(out.stdout, "p\n1\n", "{opt}: {out:?}");
        assert_eq!(out.stderr, "", "{opt}: {out:?}");
        let plain = opt.trim_end_matches("-try");
        let out = sh_in_container(
            &["--tmpfs", "/tmp", plain, &format!("{missing}:/tmp/m")],
            "echo ran",
        );
        assert_eq!(out.code, Some(1), "{plain}: {out:?}");
        assert_eq!(out.stdout, "", "{plain}: {out:?}");
        assert_eq!(
            out.stderr,
            format!(
                "pivot: {plain} source {missing}: No such file or directory (the source is a \
                 path on the host, resolved before the pivot)\n"
            ),
            "{plain}"
        );
    }
    // bwrap skips the same way.
    let root = rootfs();
    let b = bwrap(&[
        "--ro-bind",
        &root,
        "/",
        "--tmpfs",
        "/tmp",
        "--bind-try",
        &missing,
        "/tmp/m",
        "--bind-try",
        &present,
        "/tmp/p",
        "/bin/ls",
        "/tmp",
    ]);
    assert_eq!((b.code, b.stdout.as_str()), (Some(0), "p\n"), "{b:?}");
}

/// Every entry under `dir` and `dir` itself (symlinks not followed) with its mode, size,
/// modification time and link target: a run that wrote anything, even a mount point that it
/// removed again, changes some directory's mtime.
fn tree_with_mtimes(dir: &Path) -> BTreeSet<(String, u32, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeSet::new();
    let m = std::fs::symlink_metadata(dir).expect("lstat");
    out.insert((".".into(), m.mode(), m.size(), m.mtime(), m.mtime_nsec()));
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let p = entry.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let shown = p.strip_prefix(dir).unwrap().display().to_string();
            let link = std::fs::read_link(&p)
                .map(|l| format!(" -> {}", l.display()))
                .unwrap_or_default();
            out.insert((
                format!("{shown}{link}"),
                m.mode(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
            ));
            if m.is_dir() {
                todo.push(p);
            }
        }
    }
    out
}

/// What the tmpfs-root tests look at inside: what was created, its modes and contents, which
/// writes are refused, and the mounts' options and types (mqueue's options are pivot's own:
/// nosuid,nodev,noexec as runc's /dev/mqueue, bwrap gives it none).
const MADE_SCRIPT: &str = "stat -c '%n %a %F' /data /data/p /data/f /data/bd /data/rbd /link \
     /scratch /mq; cat /data/f /data/bd /data/rbd /link; readlink /link; touch /scratch/x; \
     echo w > /data/rbd; ls -A /; awk '$5 ~ /^\\/(data|scratch|mq)/ \
     { print $5, ($5 == \"/mq\" ? \"-\" : $6), $8 }' /proc/self/mountinfo";

/// issue #27: `--tmpfs-root` builds the new root on a tmpfs with NEWROOT's entries bound in, and
/// `--dir`, `--file`, `--bind-data`, `--ro-bind-data`, `--symlink`, `--perms`, `--size`,
/// `--tmpfs`, `--mqueue`, `--chmod`, `--remount-ro` add to it in command-line order: the rootfs
/// on disk is not written (not even a directory's mtime), and the result inside is bwrap's for
/// the same options with the same entries bound.
#[test]
fn tmpfs_root_writes_nothing_to_the_rootfs_and_matches_bwrap() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("tmpfsroot");
    let root = rootfs_copy(&t, "r");
    let r = root.display().to_string();
    let data = t.path().join("data");
    std::fs::write(&data, "some data\n").unwrap();
    let data = data.display().to_string();
    let ops = "--dir /data --perms 0700 --dir /data/p --file 3 /data/f --bind-data 4 /data/bd \
               --ro-bind-data 5 /data/rbd --symlink data/f /link --size 1048576 --perms 1777 \
               --tmpfs /scratch --mqueue /mq --chmod 0750 /data --chmod 0640 /data/bd \
               --remount-ro /scratch";
    let fds = format!("3<'{data}' 4<'{data}' 5<'{data}'");
    let before = tree_with_mtimes(&root);
    let script = format!("{BIN} --tmpfs-root --no-sys {ops} '{r}' /bin/sh -c \"$1\" {fds}");
    let out = testcaps::run(
        Command::new("unshare").args(CONTAINER).args([
            "--",
            "sh",
            "-c",
            &script,
            "sh",
            MADE_SCRIPT,
        ]),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stderr,
        "touch: /scratch/x: Read-only file system\n\
         /bin/sh: can't create /data/rbd: Read-only file system\n",
        "{out:?}"
    );
    let mut want = String::from(
        "/data 750 directory\n/data/p 700 directory\n/data/f 666 regular file\n\
         /data/bd 640 regular file\n/data/rbd 600 regular file\n/link 777 symbolic link\n\
         /scratch 1777 directory\n/mq 1777 directory\n",
    );
    want.push_str(&"some data\n".repeat(4));
    want.push_str("data/f\n");
    let mut top: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .chain(["data", "link", "mq", "scratch"].map(String::from))
        .collect();
    top.sort();
    for name in &top {
        want.push_str(&format!("{name}\n"));
    }
    want.push_str(
        "/data/bd rw,nosuid,nodev,relatime tmpfs\n/data/rbd ro,nosuid,nodev,relatime tmpfs\n\
         /scratch ro,nosuid,nodev,relatime tmpfs\n/mq - mqueue\n",
    );
    assert_eq!(out.stdout, want, "{out:?}");
    assert_eq!(
        tree_with_mtimes(&root),
        before,
        "the rootfs on disk changed"
    );
    // bwrap: its root is always a tmpfs; the same entries bound in, the same operations.
    let mut entries = String::new();
    for name in &top {
        let p = root.join(name);
        if ["data", "link", "mq", "scratch"].contains(&name.as_str()) {
            continue;
        }
        entries.push_str(&match (name.as_str(), std::fs::read_link(&p)) {
            ("proc", _) => "--proc /proc ".to_string(),
            ("dev", _) => "--dev /dev ".to_string(),
            (_, Ok(target)) => format!("--symlink '{}' '/{name}' ", target.display()),
            _ => format!("--bind '{}' '/{name}' ", p.display()),
        });
    }
    let script = format!("bwrap --unshare-all {entries}{ops} /bin/sh -c \"$1\" {fds}");
    let b = testcaps::run(
        Command::new("sh").args(["-c", &script, "sh", MADE_SCRIPT]),
        LIMIT,
    );
    assert_eq!(b.code, Some(0), "bwrap: {b:?}");
    assert_eq!(b.stderr, out.stderr, "bwrap: {b:?}");
    assert_eq!(b.stdout, out.stdout, "bwrap: {b:?}");
    assert_eq!(
        tree_with_mtimes(&root),
        before,
        "the rootfs on disk changed"
    );
}

/// issue #27: with `--tmpfs-root`, whatever would have to create or change something in NEWROOT
/// on disk (a mount point or --dir inside one of its directories, --file over one of its files,
/// --chmod of one of its paths) is refused with one line, and the rootfs is untouched.
#[test]
fn tmpfs_root_refuses_to_write_into_the_rootfs() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("tmpfsroot-refuse");
    let root = rootfs_copy(&t, "r");
    let r = root.display().to_string();
    let before = tree_with_mtimes(&root);
    let not_own = |opt: &str, path: &str, on: &str| {
        format!(
            "pivot: {opt} {path}: {on} is not on pivot's tmpfs (it is part of NEWROOT or of a \
             bind) (--tmpfs-root changes nothing in NEWROOT on disk: use a path on the tmpfs \
             root, a --tmpfs or a --dir below it)\n"
        )
    };
    let missing = |path: &str| {
        format!(
            "pivot: resolving {path} inside {r}: {path} is missing and would be created in \
             NEWROOT on disk (--tmpfs-root creates nothing in NEWROOT on disk: mount a --tmpfs \
             or make a --dir for it on the tmpfs root, or use a path NEWROOT has)\n"
        )
    };
    for (args, err) in [
        (vec!["--dir", "/etc/new"], missing("/etc/new")),
        (vec!["--tmpfs", "/mnt/sub"], missing("/mnt/sub")),
        (vec!["--bind", "/etc:/usr/new"], missing("/usr/new")),
        (
            vec!["--chmod", "0700", "/etc"],
            not_own("--chmod", "/etc", "/etc"),
        ),
        (
            vec!["--perms", "0700", "--dir", "/bin"],
            not_own("--perms", "/bin", "/bin"),
        ),
        (
            vec!["--symlink", "x", "/etc/new"],
            not_own("--symlink", "/etc/new", "/etc"),
        ),
    ] {
        let mut a = vec!["--tmpfs-root"];
        a.extend(&args);
        a.extend([r.as_str(), "/bin/true"]);
        let out = refused_in_ns(&a, &root);
        assert_eq!(out.stdout, "rc=1\n0\n", "{args:?}: {out:?}");
        assert_eq!(out.stderr, err, "{args:?}");
        assert_eq!(tree_with_mtimes(&root), before, "{args:?}");
    }
    // One descriptor for two options: the second would find it read and closed.
    let script = format!(
        "{BIN} --tmpfs-root --file 3 /a --bind-data 3 /b '{r}' /bin/true 3</dev/null; echo rc=$?"
    );
    let out = sh_in_ns(&MOUNT_AND_PID, &script);
    assert_eq!(out.stdout, "rc=1\n", "{out:?}");
    assert_eq!(
        out.stderr,
        "pivot: --bind-data 3 /b: descriptor 3 is already read by --file (each descriptor is \
         read to its end by one option: give another)\n"
    );
    // --file over a file of the rootfs: refused as well (it would truncate it on disk).
    let script =
        format!("{BIN} --tmpfs-root --file 3 /etc/passwd '{r}' /bin/true 3</dev/null; echo rc=$?");
    let out = sh_in_ns(&MOUNT_AND_PID, &script);
    assert_eq!(out.stdout, "rc=1\n", "{out:?}");
    assert_eq!(out.stderr, not_own("--file", "/etc/passwd", "/etc"));
    assert_eq!(tree_with_mtimes(&root), before);
}

/// issue #27: `--setenv`, `--unsetenv` and `--clear-env` (bwrap's `--clearenv` too) change the
/// command's environment in command-line order, as bwrap's do, and COMMAND is looked up with
/// the PATH they leave.
#[test]
fn environment_options_match_bwrap() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let root = rootfs();
    let env_args = [
        "--setenv",
        "A",
        "1",
        "--unsetenv",
        "HOME",
        "--setenv",
        "B",
        "x y",
        "--setenv",
        "X",
        "new",
    ];
    let cleared = [
        "--setenv",
        "A",
        "1",
        "--clearenv",
        "--setenv",
        "PATH",
        "/bin",
    ];
    let base = ["-i", "PATH=/bin:/usr/bin", "HOME=/root", "X=old"];
    for ops in [&env_args[..], &cleared[..]] {
        let out = testcaps::run(
            Command::new("env")
                .args(base)
                .arg("unshare")
                .args(MOUNT_AND_PID)
                .arg("--")
                .arg(BIN)
                .args(ops)
                .args([root.as_str(), "/bin/sh", "-c", "env | sort"]),
            LIMIT,
        );
        assert_eq!(out.code, Some(0), "{ops:?}: {out:?}");
        assert_eq!(out.stderr, "", "{ops:?}: {out:?}");
        let b = testcaps::run(
            Command::new("env")
                .args(base)
                .args([
                    "bwrap",
                    "--ro-bind",
                    &root,
                    "/",
                    "--proc",
                    "/proc",
                    "--dev",
                    "/dev",
                ])
                .args(ops)
                .args(["/bin/sh", "-c", "env | sort"]),
            LIMIT,
        );
        assert_eq!(b.code, Some(0), "bwrap {ops:?}: {b:?}");
        assert_eq!(out.stdout, b.stdout, "{ops:?}");
    }
    let out = testcaps::run(
        Command::new("env")
            .args(base)
            .arg("unshare")
            .args(MOUNT_AND_PID)
            .arg("--")
            .arg(BIN)
            .args(env_args)
            .args([root.as_str(), "/bin/sh", "-c", "env | sort"]),
        LIMIT,
    );
    assert_eq!(
        out.stdout, "A=1\nB=x y\nPATH=/bin:/usr/bin\nPWD=/\nSHLVL=1\nX=new\n",
        "{out:?}"
    );
    // The PATH left by --clear-env is the one COMMAND is looked up with.
    let out = in_ns(
        &MOUNT_AND_PID,
        &[
            "--clear-env",
            "--setenv",
            "PATH",
            "/nowhere",
            &root,
            "sh",
            "-c",
            "true",
        ],
    );
    assert_eq!(out.code, Some(127), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "pivot: COMMAND sh not found inside {root} (nothing was mounted; it is looked up in \
             the new root, with PATH for a bare name)\n"
        )
    );
}

/// Two lower layers and the directories an overlay test writes to, under `t`.
fn overlay_layers(t: &TempDir) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let (l1, l2, up, wk) = (
        t.path().join("l1"),
        t.path().join("l2"),
        t.path().join("up"),
        t.path().join("wk"),
    );
    for d in [&l1, &l2, &up, &wk] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(l1.join("a"), "top\n").unwrap();
    std::fs::write(l2.join("a"), "bottom\n").unwrap();
    std::fs::write(l2.join("b"), "b\n").unwrap();
    (l1, l2, up, wk)
}

/// issue #27: `--overlay-src` layers (the first on top, as bwrap's) under `--tmp-overlay` (writes
/// to an invisible tmpfs), `--overlay RWSRC WORKDIR` (writes to RWSRC) and `--ro-overlay`; the
/// lower layers are never written. (Debian's bwrap 0.8 has no overlay options to compare with.)
#[test]
fn overlays_write_only_to_their_upper_layer() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("overlay");
    let (l1, l2, up, wk) = overlay_layers(&t);
    let (l1s, l2s) = (l1.display().to_string(), l2.display().to_string());
    let before = (tree_with_mtimes(&l1), tree_with_mtimes(&l2));
    let out = sh_in_container_ok(
        &[
            "--tmpfs",
            "/tmp",
            "--overlay-src",
            &l1s,
            "--overlay-src",
            &l2s,
            "--tmp-overlay",
            "/tmp/o",
            "--overlay-src",
            &l2s,
            "--overlay",
            &up.display().to_string(),
            &wk.display().to_string(),
            "/tmp/p",
            "--overlay-src",
            &l1s,
            "--overlay-src",
            &l2s,
            "--ro-overlay",
            "/tmp/q",
        ],
        "cat /tmp/o/a /tmp/o/b; echo new > /tmp/o/n; rm /tmp/o/b; ls /tmp/o; \
         echo kept > /tmp/p/k; cat /tmp/q/a; touch /tmp/q/z; \
         awk '$5 ~ /^\\/tmp\\/[opq]$/ { print $5, $6, $8 }' /proc/self/mountinfo",
    );
    assert_eq!(
        out.stderr, "touch: /tmp/q/z: Read-only file system\n",
        "{out:?}"
    );
    assert_eq!(
        out.stdout,
        "top\nb\na\nn\ntop\n/tmp/o rw,nosuid,nodev,relatime overlay\n\
         /tmp/p rw,nosuid,nodev,relatime overlay\n/tmp/q ro,nosuid,nodev,relatime overlay\n",
        "{out:?}"
    );
    assert_eq!((tree_with_mtimes(&l1), tree_with_mtimes(&l2)), before);
    assert_eq!(std::fs::read_to_string(up.join("k")).unwrap(), "kept\n");
}

/// issue #27: `--tmp-overlay-root` shares one unchanged rootfs between containers and throws
/// their writes away: a container writes files and pivot creates mount points, yet the rootfs on
/// disk is unchanged (mtimes included) and a second container sees none of it; rootless too,
/// where the kernel lets a user namespace mount overlayfs.
#[test]
fn tmp_overlay_root_shares_an_unchanged_rootfs() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("ovlroot");
    let root = rootfs_copy(&t, "r");
    let r = root.display().to_string();
    let before = tree_with_mtimes(&root);
    for ns in [
        &CONTAINER[..],
        &["-r", "-m", "-p", "-f", "--propagation", "private"],
    ] {
        if ns[0] == "-r" && testcaps::check(Cap::Userns).is_err() {
            continue;
        }
        let out = in_ns(
            ns,
            &[
                "--tmp-overlay-root",
                "--tmpfs",
                "/new/tmp",
                &r,
                "/bin/sh",
                "-c",
                "ls /written 2>&1; echo w > /written; echo x >> /etc/passwd; mkdir /etc/d; \
                 cat /written; awk '$5 == \"/\" { print $8 }' /proc/self/mountinfo",
            ],
        );
        assert_eq!(out.code, Some(0), "{ns:?}: {out:?}");
        assert_eq!(out.stderr, "", "{ns:?}: {out:?}");
        assert_eq!(
            out.stdout, "ls: /written: No such file or directory\nw\noverlay\n",
            "{ns:?}: {out:?}"
        );
        assert_eq!(tree_with_mtimes(&root), before, "{ns:?}");
    }
}

/// The orphan probe of the reaper test: an orphan that exits once the command has become
/// `sleep` (which reaps nothing), watched from another orphan until it is gone (reaped) or for a
/// second (then it is a zombie nobody reaps); the watcher then ends the command (a PID 1
/// without a handler ignores SIGTERM: `sleep 3` ends it then).
const ORPHAN_SCRIPT: &str = "(sh -c 'while [ ! -e /tmp/go ]; do usleep 10000; done; \
     echo $$ > /tmp/orphan' &); \
     ( while [ \"$(cat /proc/$$/comm)\" != sleep ]; do usleep 10000; done; touch /tmp/go; \
       while [ ! -s /tmp/orphan ]; do usleep 10000; done; p=$(cat /tmp/orphan); i=0; \
       while [ -e /proc/$p ] && [ $i -lt 100 ]; do usleep 10000; i=$((i+1)); done; \
       if [ -e /proc/$p ]; then echo \"zombie $(cut -d' ' -f3 /proc/$p/stat)\"; \
       else echo reaped; fi; kill $$ ) & exec sleep 3";

/// issue #27: `--reaper` keeps pivot as PID 1, the command as PID 2: orphans are reaped (without
/// it the command is PID 1 and a zombie stays), signals sent to PID 1 reach the command, and pivot
/// ends as the command ended (its code, or its signal re-raised).
#[test]
fn reaper_reaps_orphans_forwards_signals_and_relays_the_status() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let out = sh_in_container(&["--tmpfs", "/tmp"], ORPHAN_SCRIPT);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "zombie Z\n"),
        "without --reaper: {out:?}"
    );
    let out = sh_in_container(&["--reaper", "--tmpfs", "/tmp"], ORPHAN_SCRIPT);
    assert_eq!(out.stdout, "reaped\n", "{out:?}");
    // The command died of SIGTERM; pivot, PID 1, cannot die of it and exits 128+15 instead.
    assert_eq!(out.code, Some(128 + libc::SIGTERM), "{out:?}");
    let out = sh_in_container(
        &["--reaper"],
        "echo $$ $(cat /proc/1/comm); trap 'echo got TERM; exit 3' TERM; sleep 100 & \
         kill -TERM 1; wait",
    );
    assert_eq!(out.stdout, "2 pivot\ngot TERM\n", "{out:?}");
    assert_eq!(out.code, Some(3), "{out:?}");
    let out = sh_in_container(&["--reaper"], "exit 7");
    assert_eq!(out.code, Some(7), "{out:?}");
    // bwrap's own reaper (its default): the same orphan reaped, command PID 2, the same statuses.
    let root = rootfs();
    let bw = |script: &str| {
        bwrap(&[
            "--unshare-pid",
            "--ro-bind",
            &root,
            "/",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "/bin/sh",
            "-c",
            script,
        ])
    };
    let b = bw(ORPHAN_SCRIPT);
    assert_eq!(
        (b.code, b.stdout.as_str()),
        (Some(143), "reaped\n"),
        "bwrap: {b:?}"
    );
    let b = bw("echo $$; exit 7");
    assert_eq!(
        (b.code, b.stdout.as_str()),
        (Some(7), "2\n"),
        "bwrap: {b:?}"
    );
    // A command that cannot be executed is the child's 126/127, said once.
    sh_in_container_ok(&["--reaper", "--tmpfs", "/x"], "true");
    let out = in_ns(
        &CONTAINER,
        &["--reaper", "--tmpfs", "/x", &root, "/x/missing"],
    );
    assert_eq!(out.code, Some(127), "{out:?}");
    assert_eq!(
        out.stderr,
        "pivot: failed to execute /x/missing: No such file or directory (the path is looked up \
         inside the new root)\n",
        "{out:?}"
    );
}

/// issue #27: `--new-session` runs the command in a session of its own (made inside the
/// container, so its id is a PID of the container's namespace, as bwrap's is), out of reach of
/// the caller's terminal for TIOCSTI; without it the session is the caller's (outside: 0).
#[test]
fn new_session_is_a_session_of_the_container() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let sid = "cut -d' ' -f6 /proc/$$/stat";
    let out = sh_in_container(&["--new-session"], sid);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "1\n"), "{out:?}");
    let out = sh_in_container(&[], sid);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "0\n"), "{out:?}");
    let root = rootfs();
    let b = bwrap(&[
        "--ro-bind",
        &root,
        "/",
        "--proc",
        "/proc",
        "--unshare-pid",
        "--new-session",
        "/bin/sh",
        "-c",
        sid,
    ]);
    assert_eq!(b.code, Some(0), "{b:?}");
    assert_ne!(b.stdout, "0\n", "bwrap: {b:?}");
}

/// issue #27: `--die-with-parent`: when pivot's parent (here `unshare -f`, waiting for it) is
/// killed, the command is killed too; without it the command lives on.
#[test]
fn die_with_parent_kills_the_command_with_its_parent() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let root = rootfs();
    for (flag, want) in [
        ("--die-with-parent", "dead\n"),
        ("--propagation=private", "alive\n"),
    ] {
        let script = format!(
            "unshare -m -f --propagation private -- {BIN} {flag} '{root}' /bin/sleep 100 & u=$!; \
             c=''; while [ -z \"$c\" ] || [ \"$(cat /proc/$c/comm 2>/dev/null)\" != sleep ]; do \
             c=$(cat /proc/$u/task/$u/children 2>/dev/null | tr -d ' '); sleep 0.01; done; \
             kill -9 $u; i=0; while [ $i -lt 300 ]; do \
             s=$(cut -d' ' -f3 /proc/$c/stat 2>/dev/null); \
             if [ -z \"$s\" ] || [ \"$s\" = Z ]; then echo dead; exit 0; fi; \
             sleep 0.01; i=$((i+1)); done; echo alive; kill -9 $c"
        );
        let out = testcaps::run(Command::new("sh").args(["-c", &script]), LIMIT);
        assert_eq!(out.stdout, want, "{flag}: {out:?}");
    }
}

/// issue #27: bwrap's usual root, an empty tmpfs with only what is bound in, is `--tmpfs-root`
/// with an empty NEWROOT directory: the same entries inside as bwrap's for the same binds.
#[test]
fn tmpfs_root_of_an_empty_directory_is_bwraps_empty_root() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("emptyroot");
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let root = testcaps::rootfs();
    let (bin, etc) = (root.join("bin"), root.join("etc"));
    let (bin, etc) = (bin.display().to_string(), etc.display().to_string());
    let probe = "ls -A /; ls /etc; awk '$5 == \"/\" { print $8 }' /proc/self/mountinfo";
    let out = in_ns_ok(
        &MOUNT_AND_PID,
        &[
            "--tmpfs-root",
            "--no-sys",
            "--ro-bind",
            &format!("{bin}:/bin"),
            "--ro-bind",
            &format!("{etc}:/etc"),
            "--symlink",
            "bin",
            "/sbin",
            "--dir",
            "/tmp",
            &empty.display().to_string(),
            "/bin/sh",
            "-c",
            probe,
        ],
    );
    assert_eq!(
        out.stdout, "bin\ndev\netc\nproc\nsbin\ntmp\ngroup\nhostname\nhosts\npasswd\ntmpfs\n",
        "{out:?}"
    );
    let b = bwrap(&[
        "--unshare-pid",
        "--ro-bind",
        &bin,
        "/bin",
        "--ro-bind",
        &etc,
        "/etc",
        "--symlink",
        "bin",
        "/sbin",
        "--dir",
        "/tmp",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "/bin/sh",
        "-c",
        probe,
    ]);
    assert_eq!(b.code, Some(0), "{b:?}");
    assert_eq!(b.stdout, out.stdout, "bwrap: {b:?}");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

/// issue #27 as an ordinary user (nobody, in a user namespace of its own): `--tmpfs-root` with
/// `--dir`, `--bind-data` and `--tmpfs`, and `--tmp-overlay-root` (overlayfs in a user
/// namespace, with `userxattr`), where the kernel allows it; the rootfs is unchanged after both.
#[test]
fn tmpfs_root_and_overlay_root_as_an_unprivileged_user() {
    let _host = start!(Cap::Root, Cap::Rootfs, Cap::Userns);
    let t = temp("nobody-tmpfsroot");
    // Copies of its own: the shared rootfs may get mount points from other tests meanwhile.
    let bin = t.path().join("pivot");
    std::fs::copy(BIN, &bin).expect("copy pivot");
    let root = rootfs_copy(&t, "r").display().to_string();
    let before = tree_with_mtimes(Path::new(&root));
    let run = |args: &[&str], script: &str| {
        testcaps::run(
            Command::new("setpriv")
                .args(AS_NOBODY)
                .args(["unshare", "-r"])
                .args(MOUNT_AND_PID)
                .arg("--")
                .arg(&bin)
                .args(args)
                .args([root.as_str(), "/bin/sh", "-c", script]),
            LIMIT,
        )
    };
    let out = run(
        &[
            "--tmpfs-root",
            "--dir",
            "/data",
            "--bind-data",
            "0",
            "/data/in",
            "--tmpfs",
            "/data/t",
        ],
        "id -u; cat /data/in; touch /data/t/ok && echo ok; \
         awk '$5 == \"/\" || $5 == \"/data/in\" { print $5, $8 }' /proc/self/mountinfo",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    // The descriptor 0 of testcaps::run is /dev/null: an empty file.
    assert_eq!(out.stdout, "0\nok\n/ tmpfs\n/data/in tmpfs\n", "{out:?}");
    assert_eq!(tree_with_mtimes(Path::new(&root)), before);
    let out = run(
        &["--tmp-overlay-root"],
        "echo w > /w && cat /w; awk '$5 == \"/\" { print $8, ($NF ~ /userxattr/) }' \
         /proc/self/mountinfo",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "w\noverlay 1\n", "{out:?}");
    assert_eq!(tree_with_mtimes(Path::new(&root)), before);
}

/// issue #27: `--json-status-fd` says, once the container is set up, the pid the host knows and
/// the namespaces (bwrap's keys, the same line format) and, with `--reaper`, the exit code at the
/// end; `--block-fd` holds the command until the supervisor writes; `--info-fd` gets the first
/// object alone.
#[test]
fn status_and_block_fds_tell_a_supervisor_the_start_and_the_end() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("status");
    let d = t.path().display().to_string();
    let root = rootfs();
    let script = format!(
        "mkfifo '{d}/block'; \
         unshare -m -p -f --propagation private -- {BIN} --reaper --json-status-fd 3 \
         --info-fd 6 --block-fd 4 --bind '{d}:/t' '{root}' /bin/sh -c 'touch /t/ran; exit 5' \
         3>'{d}/js' 6>'{d}/info' 4<'{d}/block' & p=$!; exec 5>'{d}/block'; \
         while [ ! -s '{d}/js' ]; do sleep 0.01; done; \
         pid=$(sed 's/.*\"child-pid\": \\([0-9]*\\).*/\\1/' '{d}/js'); \
         mnt=$(stat -L -c %i /proc/$pid/ns/mnt); \
         grep -q \"\\\"mnt-namespace\\\": $mnt,\" '{d}/js' && echo mnt-matches; \
         [ -e '{d}/ran' ] || echo blocked; echo go >&5; exec 5>&-; wait $p; echo rc=$?; \
         [ -e '{d}/ran' ] && echo ran; sed 's/[0-9][0-9]*/N/g' '{d}/js'; cat '{d}/info' | wc -l"
    );
    let out = testcaps::run(Command::new("sh").args(["-c", &script]), LIMIT);
    assert_eq!(out.stderr, "", "{out:?}");
    let keys = "{ \"child-pid\": N, \"cgroup-namespace\": N, \"ipc-namespace\": N, \
                \"mnt-namespace\": N, \"net-namespace\": N, \"pid-namespace\": N, \
                \"uts-namespace\": N }\n";
    assert_eq!(
        out.stdout,
        format!("mnt-matches\nblocked\nrc=5\nran\n{keys}{{ \"exit-code\": N }}\n1\n"),
        "{out:?}"
    );
    // bwrap's lines, for the same command.
    let script = format!(
        "bwrap --unshare-all --ro-bind '{root}' / --json-status-fd 3 /bin/sh -c 'exit 5' \
         3>'{d}/bjs'; echo rc=$?; sed 's/[0-9][0-9]*/N/g' '{d}/bjs'"
    );
    let b = testcaps::run(Command::new("sh").args(["-c", &script]), LIMIT);
    assert_eq!(
        b.stdout,
        format!("rc=5\n{keys}{{ \"exit-code\": N }}\n"),
        "{b:?}"
    );
}

/// issue #27: the new operations' destinations are held to the same rules as --bind's: inside
/// the new root, not the root itself (where that would be lost), refused before the first mount
/// with one line, the rootfs unchanged.
#[test]
fn new_operations_refuse_destinations_outside_or_at_the_root() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let t = temp("newops-refuse");
    let root = rootfs_copy(&t, "r");
    let r = root.display().to_string();
    std::os::unix::fs::symlink("../..", root.join("up")).unwrap();
    let before = tree_with_mtimes(&root);
    let leaves = |opt: &str, dst: &str, via: &str| {
        format!(
            "pivot: {opt} destination {dst}: it leaves the new root through {via} (destinations \
             are resolved inside NEWROOT and may not leave it)\n"
        )
    };
    let at_root = |opt: &str, hint: &str| {
        format!("pivot: {opt} destination /: is the new root itself ({hint})\n")
    };
    for (args, err) in [
        (
            vec!["--dir", "/../x"],
            leaves("--dir", "/../x", "'..' in /../x"),
        ),
        (
            vec!["--symlink", "a", "/up/x"],
            leaves("--symlink", "/up/x", "the symlink /up -> ../.."),
        ),
        (
            vec!["--mqueue", "/etc/../../mq"],
            leaves("--mqueue", "/etc/../../mq", "'..' in /etc/../../mq"),
        ),
        (
            vec!["--symlink", "a", "/"],
            at_root("--symlink", "give a path below it"),
        ),
        (
            vec!["--file", "0", "/"],
            at_root("--file", "give a path below it"),
        ),
        (
            vec!["--mqueue", "/"],
            at_root("--mqueue", "mount onto a directory below it"),
        ),
        (
            vec!["--overlay-src", "/etc", "--tmp-overlay", "/"],
            at_root("--tmp-overlay", "mount onto a directory below it"),
        ),
        (
            vec!["--bind-data", "0", "/"],
            at_root("--bind-data", "bind onto a directory below it"),
        ),
    ] {
        let mut a = args.clone();
        a.extend([r.as_str(), "/bin/true"]);
        let out = refused_in_ns(&a, &root);
        assert_eq!(out.stdout, "rc=1\n0\n", "{args:?}: {out:?}");
        assert_eq!(out.stderr, err, "{args:?}");
        assert_eq!(tree_with_mtimes(&root), before, "{args:?}");
    }
}

/// Failed syscalls are reported once, on one line, in strerror's words: never std's
/// " (os error N)" (a missing new root, a missing bind source, a missing working directory; in
/// switch_root mode a missing new root).
#[test]
fn syscall_failures_are_one_line_in_strerrors_words() {
    let _host = start!(Cap::Root, Cap::Rootfs);
    let missing = format!("/nonexistent-{}", std::process::id());
    let root = rootfs();
    let bind = format!("{missing}:/mnt");
    let cases: [(Vec<&str>, i32); 4] = [
        (vec![&missing, "/bin/true"], 1),
        (vec!["--bind", &bind, &root, "/bin/true"], 1),
        (vec!["--wd", &missing, &root, "/bin/true"], 1),
        (vec!["switch-root", &missing, "/sbin/init"], 1),
    ];
    for (args, code) in cases {
        let out = in_ns(&MOUNT_AND_PID, &args);
        assert_eq!(out.code, Some(code), "{args:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("pivot"), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("No such file or directory"),
            "{args:?}: {out:?}"
        );
        assert!(!out.stderr.contains("(os error"), "{args:?}: {out:?}");
    }
}

/// What the supervision comparison runs, `sh -c SCRIPT sh TOOL DIR`: TOOL (the container up to
/// its command, with `--sync-fd 3 --info-fd 6 --block-fd 4` and DIR bound at /t) runs a command
/// that leaves a mark and exits 5; the script checks that the command waits for the block fd
/// (the info line comes first), that the sync fd ends with the container, the status, and the
/// info line's keys.
const SUPERVISE_SCRIPT: &str = "d=$2; mkfifo $d/block $d/sync; \
     eval \"$1\"' /bin/sh -c \"touch /mnt/ran; exit 5\" 3>$d/sync 6>$d/info 4<$d/block &'; p=$!; \
     exec 7<$d/sync; exec 5>$d/block; \
     while [ ! -s $d/info ]; do sleep 0.01; done; [ -e $d/ran ] || echo blocked; \
     echo go >&5; exec 5>&-; cat <&7; echo eof; wait $p; echo rc=$?; [ -e $d/ran ] && echo ran; \
     tr -d '\\n ' < $d/info | sed 's/[0-9][0-9]*/N/g'; echo";

/// issue #27 audit: `--block-fd`, `--sync-fd` and `--info-fd` against bwrap's for the same
/// command on the same rootfs (bwrap prints its info object over several lines; compared
/// without the whitespace).
#[test]
fn block_sync_and_info_fds_match_bwrap() {
    require!(Cap::Root, Cap::Rootfs);
    let host = HostMounts::now();
    let root = rootfs();
    let fds = "--sync-fd 3 --info-fd 6 --block-fd 4";
    let mut seen = Vec::new();
    for (tag, tool) in [
        (
            "pivot",
            format!("unshare -m -p -f --propagation private -- {BIN} --reaper {fds} --bind $d:/mnt '{root}'"),
        ),
        (
            "bwrap",
            format!("bwrap --unshare-all --ro-bind '{root}' / --proc /proc --dev /dev --bind $d /mnt {fds}"),
        ),
    ] {
        let t = temp(&format!("supervise-{tag}"));
        let out = testcaps::run(
            Command::new("sh")
                .args(["-c", SUPERVISE_SCRIPT, "sh", &tool])
                .arg(t.path()),
            LIMIT,
        );
        assert_eq!(out.stderr, "", "{tag}: {out:?}");
        assert_eq!(
            out.stdout,
            "blocked\neof\nrc=5\nran\n{\"child-pid\":N,\"cgroup-namespace\":N,\"ipc-namespace\":N,\
             \"mnt-namespace\":N,\"net-namespace\":N,\"pid-namespace\":N,\"uts-namespace\":N}\n",
            "{tag}: {out:?}"
        );
        seen.push(out.stdout);
    }
    assert_eq!(seen[0], seen[1]);
    drop(host);
}

/// What the session comparison prints inside: hostname, working directory, the tmpfs's mount
/// and superblock options (`--size`, `--perms`), the session id and the shell's pid.
const SESSION_SCRIPT: &str = "hostname; pwd; \
     awk '$5 == \"/mnt\" { print $6, $NF }' /proc/self/mountinfo; \
     cut -d' ' -f6 /proc/$$/stat; echo pid=$$";

/// issue #27 audit: `--hostname`, `-w` (bwrap's `--chdir`), `--new-session`, `--size` and
/// `--perms` of a `--tmpfs`, with the reaper, give what bwrap gives on the same rootfs: the
/// command is PID 2 in a new session led by the reaper (session 1, as bwrap's), the tmpfs has
/// the same size and mode.
#[test]
fn hostname_chdir_session_and_tmpfs_size_match_bwrap() {
    require!(Cap::Root, Cap::Rootfs);
    let host = HostMounts::now();
    let root = rootfs();
    let ops = [
        "--hostname",
        "box",
        "--tmpfs",
        "/tmp",
        "--new-session",
        "--size",
        "1048576",
        "--perms",
        "0700",
        "--tmpfs",
        "/mnt",
    ];
    let mut args = vec!["--reaper", "-w", "/tmp"];
    args.extend(ops);
    let out = sh_in_container(&args, SESSION_SCRIPT);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout, "box\n/tmp\nrw,nosuid,nodev,relatime rw,size=1024k,mode=700\n1\npid=2\n",
        "{out:?}"
    );
    let mut b = vec![
        "--unshare-all",
        "--ro-bind",
        &root,
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--chdir",
        "/tmp",
    ];
    b.extend(ops);
    b.extend(["/bin/sh", "-c", SESSION_SCRIPT]);
    let theirs = bwrap(&b);
    assert_eq!(theirs.code, Some(0), "{theirs:?}");
    assert_eq!(theirs.stdout, out.stdout, "bwrap: {theirs:?}");
    assert_eq!(theirs.stderr, out.stderr, "bwrap: {theirs:?}");
    drop(host);
}

/// The die-with-parent check, `sh -c SCRIPT sh LAUNCHER`: LAUNCHER (a process that stays the
/// container's parent, then the container up to its command) runs `sleep 100`; the script
/// finds that sleep among the launcher's descendants, kills the launcher and says whether the
/// sleep died with it.
const DEATH_SCRIPT: &str = "desc() { for c in $(cat /proc/$1/task/*/children 2>/dev/null); do \
     echo $c; desc $c; done; }; \
     eval \"$1 /bin/sleep 100 &\"; u=$!; c=''; \
     while [ -z \"$c\" ]; do for x in $(desc $u); do \
     [ \"$(cat /proc/$x/comm 2>/dev/null)\" = sleep ] && c=$x; done; sleep 0.01; done; \
     kill -9 $u; i=0; while [ $i -lt 300 ]; do s=$(cut -d' ' -f3 /proc/$c/stat 2>/dev/null); \
     if [ -z \"$s\" ] || [ \"$s\" = Z ]; then echo dead; exit 0; fi; sleep 0.01; i=$((i+1)); \
     done; echo alive; kill -9 $c";

/// issue #27 audit: `--die-with-parent` as bwrap's: the launcher's death kills the command,
/// with pivot's reaper as with bwrap's.
#[test]
fn die_with_parent_matches_bwrap() {
    require!(Cap::Root, Cap::Rootfs);
    let host = HostMounts::now();
    let root = rootfs();
    for launcher in [
        format!("unshare -m -p -f --propagation private -- {BIN} --reaper --die-with-parent '{root}'"),
        format!(
            "unshare -f -- bwrap --unshare-all --die-with-parent --ro-bind '{root}' / --proc /proc --dev /dev"
        ),
    ] {
        let out = testcaps::run(
            Command::new("sh").args(["-c", DEATH_SCRIPT, "sh", &launcher]),
            LIMIT,
        );
        assert_eq!(out.stdout, "dead\n", "{launcher}: {out:?}");
    }
    drop(host);
}
