//! unshare-rs against the kernel: which namespaces the program ends up in, id maps, persistence,
//! exit statuses, signals, --lo-up, --report, and bad input that must leave nothing behind.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testcaps::Cap;

#[test]
fn each_namespace_type_differs_only_when_asked() {
    testcaps::require!(Cap::Root, Cap::Userns);
    for (opt, kind) in [
        ("-m", "mnt"),
        ("-u", "uts"),
        ("-i", "ipc"),
        ("-n", "net"),
        ("-p", "pid"),
        ("-U", "user"),
        ("-C", "cgroup"),
        ("-T", "time"),
    ] {
        // -f: pid and time namespaces apply to children only.
        let (out, diff) = shape(bin(), &["-f", opt]);
        assert_eq!(out.code, Some(0), "{opt}: {out:?}");
        assert_eq!(diff, vec![kind.to_string()], "{opt}");
    }
    let (_, diff) = shape(bin(), &[]);
    assert!(diff.is_empty(), "{diff:?}");
    let (_, diff) = shape(bin(), &["-fmipunUCT"]);
    assert_eq!(diff.len(), 8, "{diff:?}");
    // Without -f the program itself stays in the caller's pid namespace, but execve moves it
    // into the new time namespace (time_for_children).
    let (_, diff) = shape(bin(), &["-p"]);
    assert!(diff.is_empty(), "{diff:?}");
    let (_, diff) = shape(bin(), &["-T"]);
    assert_eq!(diff, vec!["time".to_string()]);
}

#[test]
fn mount_proc_shows_the_program_as_pid_1() {
    testcaps::require!(Cap::Root);
    let out = ours(&["-fp", "--mount-proc", "readlink", "/proc/self"]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "1\n"), "{out:?}");
    let out = ours(&[
        "-fp",
        "--mount-proc",
        "sh",
        "-c",
        "ls /proc | grep -c '^[0-9]'",
    ]);
    // sh and ls (and grep's process): only the new namespace's few processes.
    let n: u32 = out.stdout.trim().parse().expect("a count");
    assert!((1..=4).contains(&n), "{out:?}");
    let out = ours(&[
        "-fp",
        "--mount-proc",
        "sh",
        "-c",
        "grep ' - proc ' /proc/self/mountinfo",
    ]);
    assert!(out.stdout.contains("nosuid,nodev,noexec"), "{out:?}");
}

fn maps_of(tool: &str, opts: &[&str]) -> testcaps::Output {
    let mut args = opts.to_vec();
    args.extend([
        "cat",
        "/proc/self/uid_map",
        "/proc/self/gid_map",
        "/proc/self/setgroups",
    ]);
    run_with(tool, &args)
}

#[test]
fn single_id_maps_are_written_as_util_linux_writes_them() {
    testcaps::require!(Cap::Root, Cap::Userns);
    for opts in [
        &["-r"][..],
        &["-c"],
        &["--map-user=5"],
        &["--map-group=7"],
        &["--map-user=5", "--map-group=7"],
        &["--map-user=nobody", "--map-group=nogroup"],
        &["-U"],
        &["-U", "--setgroups=deny"],
        &["-rf"],
    ] {
        let a = maps_of(bin(), opts);
        let b = maps_of(UTIL, opts);
        assert_eq!(a.code, Some(0), "{opts:?}: {a:?}");
        assert_eq!((a.code, &a.stdout), (b.code, &b.stdout), "{opts:?}");
    }
    // util-linux 2.38.1 fails here (setgroups written after gid_map); the maps are the same as -r.
    let a = maps_of(bin(), &["-r", "--setgroups=deny"]);
    assert_eq!(a.code, Some(0), "{a:?}");
    assert_eq!(a.stdout, maps_of(bin(), &["-r"]).stdout);
}

fn line(inner: u32, outer: u32, count: u32) -> String {
    format!("{inner:>10} {outer:>10} {count:>10}\n")
}

#[test]
fn range_maps_are_written_directly_as_root() {
    testcaps::require!(Cap::Root, Cap::Userns);
    let both = |l: &str| format!("{l}{l}");
    for (opts, expected) in [
        (
            &["--map-users=0:100000:65536", "--map-groups=0:100000:65536"][..],
            both(&line(0, 100000, 65536)),
        ),
        // The old comma form: outer first.
        (
            &["--map-users=100000,0,65536", "--map-groups=100000,0,65536"],
            both(&line(0, 100000, 65536)),
        ),
        (
            &["--map-users=all", "--map-groups=all"],
            both(&line(0, 0, u32::MAX)),
        ),
        // -r with a range over inner 0: the range loses its first id, not the overlap check.
        (
            &["-r", "--map-users=0:100000:10", "--map-groups=0:100000:10"],
            both(&format!("{}{}", line(0, 0, 1), line(1, 100000, 9))),
        ),
        // The single id on both sides of the range: one id of it goes, not two (util-linux's
        // `1 1 9`; issue #22 item 6).
        (
            &["-r", "--map-users=0:0:10", "--map-groups=0:0:10"],
            both(&format!("{}{}", line(0, 0, 1), line(1, 1, 9))),
        ),
        (
            &["--map-user=5", "--map-users=0:0:10", "--map-groups=0:0:1"],
            format!(
                "{}{}{}{}",
                line(5, 0, 1),
                line(0, 1, 5),
                line(6, 6, 4),
                line(0, 0, 1)
            ),
        ),
        // Two ranges.
        (
            &[
                "--map-users=0:100000:10",
                "--map-users=10:200000:5",
                "--map-groups=0:300000:1",
            ],
            format!(
                "{}{}{}",
                line(0, 100000, 10),
                line(10, 200000, 5),
                line(0, 300000, 1)
            ),
        ),
    ] {
        let out = maps_of(bin(), opts);
        assert_eq!(out.code, Some(0), "{opts:?}: {out:?}");
        let maps: String = out
            .stdout
            .lines()
            .take(opts_lines(&expected))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(maps, expected, "{opts:?}: {out:?}");
    }
}

fn opts_lines(s: &str) -> usize {
    s.lines().count()
}

#[test]
fn persisted_uts_namespace_is_entered_by_nsenter() {
    testcaps::require!(Cap::Root);
    let dir = TempDir::new("unshare-rs-persist").expect("temp dir");
    let nsfs_before = host_nsfs_count();
    // Everything that mounts happens inside a private mount namespace made by util-linux.
    let script = r#"
        set -e
        D=$1; B=$2
        mount -t tmpfs tmpfs "$D"
        touch "$D/uts" "$D/pid" "$D/net" "$D/time" "$D/mnt" "$D/user" "$D/uts2" "$D/u2"
        for i in 1 2 3 4 5 6; do touch "$D/m$i"; done
        "$B" --uts="$D/uts" hostname persisted-uts
        nsenter --uts="$D/uts" hostname
        "$B" -f --pid="$D/pid" --net="$D/net" -T --time="$D/time" true
        grep -c ' - nsfs ' /proc/self/mountinfo
        nsenter --net="$D/net" ip -o link show lo | grep -c DOWN
        "$B" --mount="$D/mnt" mount -t tmpfs marker-fs /mnt
        nsenter --mount="$D/mnt" findmnt -n -o SOURCE /mnt
        findmnt -n -o SOURCE /mnt || echo "not in the caller's"
        # Mount namespace ids are not monotonic across CPUs; binding must work every time.
        for i in 1 2 3 4 5 6; do "$B" --mount="$D/m$i" true; done
        "$B" -r --user="$D/user" --uts="$D/uts2" true
        grep -c ' - nsfs ' /proc/self/mountinfo
        ln -s "$D" "$D/link"
        rc=0; "$B" --uts="$D/u2" --ipc="$D/link" true 2>/dev/null || rc=$?
        echo "halfway rc=$rc"
        grep -c ' - nsfs ' /proc/self/mountinfo
    "#;
    let out = script_in_private_mnt_ns(script, &dir, bin());
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout, "persisted-uts\n4\n1\nmarker-fs\nnot in the caller's\n13\nhalfway rc=1\n13\n",
        "{out:?}"
    );
    assert!(host_mounts_with(path_str(&dir)).is_empty());
    assert_eq!(host_nsfs_count(), nsfs_before);
}

#[test]
fn exit_codes_pass_through() {
    testcaps::require!(Cap::Root);
    for code in 0..=255 {
        let c = code.to_string();
        let out = ours(&["-f", "sh", "-c", "exit $0", &c]);
        assert_eq!(out.code, Some(code), "{out:?}");
    }
    for code in [0, 1, 42, 255] {
        let out = ours(&["-u", "sh", "-c", "exit $0", &code.to_string()]);
        assert_eq!(out.code, Some(code), "{out:?}");
    }
    assert_eq!(ours(&["/nonexistent/program"]).code, Some(127));
    assert_eq!(ours(&["-f", "/nonexistent/program"]).code, Some(127));
    // The forked child runs on the parent's memory until it execs: its failures are printed
    // once, by the child, and its code comes back through the parent.
    let out = ours(&["-fp", "/nonexistent/program"]);
    assert_eq!(out.code, Some(127), "{out:?}");
    assert_eq!(
        out.stderr,
        "unshare-rs: failed to execute /nonexistent/program: No such file or directory\n"
    );
    let out = ours(&["-fp", "--mount-proc=/nonexistent-dir", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("unshare-rs: mount /nonexistent-dir failed: "),
        "{out:?}"
    );
    // A time namespace takes the copying fork (CLONE_VM is refused there), with the same codes.
    let out = ours(&["-fT", "sh", "-c", "exit 9"]);
    assert_eq!(out.code, Some(9), "{out:?}");
    let dir = TempDir::new("unshare-rs-noexec").expect("temp dir");
    let file = dir.path().join("not-executable");
    std::fs::write(&file, "exit 0\n").expect("write");
    let out = ours(&[file.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(126), "{out:?}");
}

#[test]
fn a_child_killed_by_a_signal_is_relayed() {
    testcaps::require!(Cap::Root);
    for (sig, code) in [("TERM", 143), ("KILL", 137)] {
        let out = ours(&["-f", "sh", "-c", &format!("kill -{sig} $$")]);
        assert_eq!((out.code, out.signal), (None, Some(code - 128)), "{out:?}");
        // Not in a new pid namespace: there sh would be init, immune to its own signals.
        let shell = format!("'{}' -f sh -c 'kill -{sig} $$'; echo $?", bin());
        let out = run_with("sh", &["-c", &shell]);
        assert_eq!(out.stdout, format!("{code}\n"), "{out:?}");
    }
}

/// Spawns `args`, waits for the line `ready` on stdout, and returns the child.
fn spawn_ready(args: &[&str]) -> std::process::Child {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("read");
    assert_eq!(line, "ready\n");
    child
}

fn wait_bounded(child: &mut std::process::Child) -> std::process::ExitStatus {
    testcaps::wait_bounded(child, LIMIT)
}

fn sigterm(pid: u32) {
    // SAFETY: kill on a process this test spawned.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
}

#[test]
fn forward_signals_delivers_sigterm_to_the_child() {
    testcaps::require!(Cap::Root);
    let script = "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done";
    let mut child = spawn_ready(&["-f", "--forward-signals", "sh", "-c", script]);
    sigterm(child.id());
    assert_eq!(wait_bounded(&mut child).code(), Some(7));
    // Without it the parent ignores SIGTERM and the child finishes on its own.
    let script = "echo ready; sleep 0.3; exit 3";
    let mut child = spawn_ready(&["-f", "sh", "-c", script]);
    sigterm(child.id());
    assert_eq!(wait_bounded(&mut child).code(), Some(3));
}

fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn kill_child_kills_the_child_when_unshare_rs_dies() {
    testcaps::require!(Cap::Root);
    let dir = TempDir::new("unshare-rs-kc").expect("temp dir");
    for (opt, signal) in [("--kill-child", 9), ("--kill-child=TERM", 15)] {
        let report = format!("{}/r{signal}.json", dir.path().display());
        let mut child = spawn_ready(&[
            opt,
            "--report",
            &report,
            "sh",
            "-c",
            "echo ready; exec sleep 30",
        ]);
        let text = std::fs::read_to_string(&report).expect("report");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let pid = v["pid"].as_i64().expect("pid") as i32;
        assert!(state_of(pid).is_some(), "the program runs");
        // SAFETY: kill on a process this test spawned.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        wait_bounded(&mut child);
        let start = Instant::now();
        // Dead means gone or a zombie waiting for init to reap it.
        while !matches!(state_of(pid), None | Some('Z')) {
            assert!(start.elapsed() < LIMIT, "{opt}: the child survived");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn lo_up_brings_loopback_up() {
    testcaps::require!(Cap::Root);
    let out = ours(&["-n", "--lo-up", "ip", "-o", "link", "show", "lo"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("<LOOPBACK,UP,LOWER_UP>"), "{out:?}");
    let out = ours(&["-n", "ip", "-o", "link", "show", "lo"]);
    assert!(out.stdout.contains("state DOWN"), "{out:?}");
}

#[test]
fn report_names_the_pid_and_namespaces_of_the_program() {
    testcaps::require!(Cap::Root);
    let dir = TempDir::new("unshare-rs-report").expect("temp dir");
    let file = format!("{}/r.json", dir.path().display());
    let mut args = vec!["-fpun", "--report", &file];
    let tail = readlink_args();
    args.extend(tail.iter().map(String::as_str));
    let out = ours(&args);
    assert_eq!(out.code, Some(0), "{out:?}");
    let text = std::fs::read_to_string(&file).expect("report");
    assert_eq!(text.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert!(
        v["pid"].as_i64().expect("pid") > 1,
        "the caller's view: {v}"
    );
    let links = parse_links(&out.stdout);
    for (kind, ino) in &links {
        assert_eq!(v["namespaces"][kind].as_u64(), Some(*ino), "{kind}: {v}");
    }
    // Without --fork the program is unshare-rs itself: same pid; to a descriptor.
    let out = ours(&["-u", "--report=1", "sh", "-c", "echo $$"]);
    let mut lines = out.stdout.lines();
    let v: serde_json::Value = serde_json::from_str(lines.next().expect("report")).expect("json");
    assert_eq!(
        v["pid"].as_i64().map(|p| p.to_string()).as_deref(),
        lines.next(),
        "{out:?}"
    );
}

#[test]
fn time_offsets_apply_to_the_program() {
    testcaps::require!(Cap::Root);
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .expect("uptime")
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("number");
    let out = ours(&["-fT", "--boottime=100000", "cat", "/proc/uptime"]);
    let inside: f64 = out
        .stdout
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("number");
    assert!(inside >= host + 99_999.0, "{host} {out:?}");
}

#[test]
fn bad_input_is_one_line_exit_1_and_leaves_nothing() {
    testcaps::require!(Cap::Root);
    let dir = TempDir::new("unshare-rs-bad").expect("temp dir");
    let file = format!("--uts={}/f", dir.path().display());
    let nsfs_before = host_nsfs_count();
    for args in [
        &["--map-users=1:2", "true"][..],
        &["--map-groups=a:b:c", "true"],
        &["--kill-child=NOSUCHSIG", "true"],
        &["-T", "--monotonic=abc", "true"],
        &["-T", "--boottime=1.5", "true"],
        &["--monotonic=5", "true"],
        &["-R", "/nonexistent-root", "true"],
        &["--bogus"],
        &["-mfoo"],
        &["--setgroups=maybe", "true"],
        &["--propagation=sideways", "true"],
        &["--map-user=no-such-user-xyz", "true"],
        &["--pid=/tmp/x", "true"],
        &["--report=99", "true"],
        &["--root"],
        &["--fork=yes"],
        &["--map"],
        &[&file, "--kill-child=NOSUCHSIG", "true"],
        &[&file, "-R", "/nonexistent-root", "true"],
        &[&file, "--report=99", "true"],
        // Maps the kernel would refuse, named before anything is created (issue #22 item 6).
        &["--map-users=0:0:10", "--map-users=5:100:1", "true"],
        &["--map-groups=0:0:10", "--map-groups=100:5:1", "true"],
        &["--map-users=0:4294967295:1", "true"],
        &["--map-user=4294967295", "true"],
    ] {
        let out = ours(args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("unshare-rs: "), "{args:?}: {out:?}");
        assert!(
            !std::path::Path::new(&format!("{}/f", dir.path().display())).exists(),
            "{args:?} created the target"
        );
    }
    assert_eq!(host_nsfs_count(), nsfs_before);
    assert!(host_mounts_with(path_str(&dir)).is_empty());
    // The map errors say what the kernel would refuse, not that a capability is missing.
    let out = ours(&["--map-users=0:0:10", "--map-users=5:100:1", "true"]);
    assert_eq!(
        out.stderr,
        "unshare-rs: the uid map lines '0 0 10' and '5 100 1' overlap inside the namespace; the kernel refuses overlapping lines\n"
    );
    let out = ours(&["--map-users=0:4294967295:1", "true"]);
    assert!(out.stderr.contains("includes uid 4294967295"), "{out:?}");
    let many: Vec<String> = (0..341).map(|k| format!("--map-users={k}:{k}:1")).collect();
    let mut args: Vec<&str> = many.iter().map(String::as_str).collect();
    args.push("true");
    let out = ours(&args);
    assert!(
        out.stderr
            .contains("the uid map has 341 lines; the kernel takes at most 340"),
        "{out:?}"
    );
}

#[test]
fn invoked_as_unshare_it_speaks_as_unshare() {
    let dir = TempDir::new("unshare-rs-link").expect("temp dir");
    let link = dir.path().join("unshare");
    std::os::unix::fs::symlink(bin(), &link).expect("symlink");
    let out = testcaps::run(Command::new(&link).arg("--bogus"), LIMIT);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .starts_with("unshare: unexpected argument '--bogus' found (try 'unshare --help')"),
        "{out:?}"
    );
    let out = testcaps::run(Command::new(&link).arg("-V"), LIMIT);
    assert!(
        out.stdout
            .starts_with(&format!("unshare {} (", env!("CARGO_PKG_VERSION")))
            && out.stdout.ends_with(")\n"),
        "{out:?}"
    );
}

/// Runs `tool args` as nobody (uid/gid 65534) through setpriv.
fn as_nobody(tool: &str, args: &[&str]) -> testcaps::Output {
    let mut all = vec![
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        tool,
    ];
    all.extend_from_slice(args);
    run_with("setpriv", &all)
}

#[test]
fn unprivileged_callers_get_maps_caps_and_hints() {
    testcaps::require!(Cap::Root, Cap::Userns);
    // A copy nobody can surely execute, wherever the build directory is.
    let dir = TempDir::new("unshare-rs-nobody").expect("temp dir");
    let copy = dir.path().join("unshare-rs");
    testcaps::copy_executable(bin(), &copy);
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [(dir.path(), 0o755), (&copy, 0o755)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let bin = copy.to_str().expect("utf-8");
    for args in [
        &[
            "-r",
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map /proc/self/gid_map",
        ][..],
        &["-c", "sh", "-c", "id -u; cat /proc/self/uid_map"],
        &["-r", "--keep-caps", "grep", "^CapAmb", "/proc/self/status"],
        &["-r", "grep", "^CapAmb", "/proc/self/status"],
        &["-rfp", "--mount-proc", "readlink", "/proc/self"],
    ] {
        let a = as_nobody(bin, args);
        let b = as_nobody(UTIL, args);
        assert_eq!(a.code, Some(0), "{args:?}: {a:?}");
        assert_eq!((a.code, &a.stdout), (b.code, &b.stdout), "{args:?}");
    }
    // A failure after the report file was opened removes it again.
    let report = dir.path().join("report.json");
    let report_arg = format!("--report={}", report.display());
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = as_nobody(bin, &["-n", &report_arg, "true"]);
    assert_eq!(out.code, Some(1));
    assert!(!report.exists(), "the report file was left behind");
    assert!(
        out.stderr.starts_with("unshare-rs: unshare(CLONE_NEWNET) failed: Operation not permitted (creating these namespaces needs CAP_SYS_ADMIN"),
        "{out:?}"
    );
    let out = as_nobody(bin, &["-rn", "--lo-up", "ip", "-o", "link", "show", "lo"]);
    assert!(out.stdout.contains("<LOOPBACK,UP,LOWER_UP>"), "{out:?}");
}

#[test]
fn default_program_and_clear_env() {
    testcaps::require!(Cap::Root);
    let out = testcaps::run(
        Command::new(bin()).arg("-u").env("SHELL", "/usr/bin/id"),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("uid=0(root)"), "{out:?}");
    // No $SHELL: /bin/sh, which reads its commands from stdin here.
    let dir = TempDir::new("unshare-rs-sh").expect("temp dir");
    let script = dir.path().join("script");
    std::fs::write(&script, "echo sh-ran\n").expect("write");
    let stdin = std::fs::File::open(&script).expect("open");
    let out = testcaps::run(
        Command::new(bin())
            .env_remove("SHELL")
            .stdin(Stdio::from(stdin)),
        LIMIT,
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "sh-ran\n"),
        "{out:?}"
    );
    let out = testcaps::run(
        Command::new(bin())
            .args(["--clear-env", "/usr/bin/env"])
            .env("FOO", "bar"),
        LIMIT,
    );
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""), "{out:?}");
}

#[test]
fn owner_creates_the_user_namespace_for_another_user() {
    testcaps::require!(Cap::Root, Cap::Userns);
    let maps = [
        "--owner=100000:100000",
        "--map-users=0:100000:65536",
        "--map-groups=0:100000:65536",
    ];
    let mut args = maps.to_vec();
    args.extend(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map"]);
    let out = ours(&args);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("0\n0\n{}", line(0, 100000, 65536)));
    // The kernel names 100000 as the namespace's owner.
    let dir = TempDir::new("unshare-rs-owner").expect("temp dir");
    let report = format!("{}/r.json", dir.path().display());
    let mut args = maps.to_vec();
    args.extend(["--kill-child", "--report", &report]);
    args.extend(["sh", "-c", "echo ready; exec sleep 30"]);
    let mut child = spawn_ready(&args);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    let pid = v["pid"].as_i64().expect("pid");
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/user")).expect("ns file");
    let mut owner: libc::uid_t = u32::MAX;
    const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t into the valid local; this is a query, not setns.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&ns),
            NS_GET_OWNER_UID,
            &mut owner,
        )
    };
    // SAFETY: kill on a process this test spawned (--kill-child takes the program with it).
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    wait_bounded(&mut child);
    assert_eq!((r, owner), (0, 100000));
}

#[test]
fn unprivileged_ranges_go_through_newuidmap_and_newgidmap() {
    testcaps::require!(Cap::Root, Cap::Userns);
    // Stand-ins that record their arguments (the real ones may not be installed).
    let dir = TempDir::new("unshare-rs-idmap-helpers").expect("temp dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    for tool in ["newuidmap", "newgidmap"] {
        let path = dir.path().join(tool);
        let script = format!(
            "#!/bin/sh\necho \"$*\" > '{}/{tool}.args'\n",
            dir.path().display()
        );
        std::fs::write(&path, script).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let copy = dir.path().join("unshare-rs");
    testcaps::copy_executable(bin(), &copy);
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = testcaps::run(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                copy.to_str().expect("utf-8"),
                "--map-user=0",
                "--map-users=1:100000:65536",
                "--map-groups=0:200000:10",
                "true",
            ])
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display())),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let args = |tool: &str| {
        let text = std::fs::read_to_string(dir.path().join(format!("{tool}.args"))).expect(tool);
        let (pid, rest) = text.trim_end().split_once(' ').expect("pid and ranges");
        assert!(pid.parse::<u32>().is_ok(), "{text}");
        rest.to_string()
    };
    // The single id first, then the range (no overlap here).
    assert_eq!(args("newuidmap"), "0 65534 1 1 100000 65536");
    assert_eq!(args("newgidmap"), "0 200000 10");
}

#[test]
fn the_forked_child_borrows_our_memory_until_it_execs() {
    testcaps::require!(Cap::Root);
    // The ordinary path: the fast path (tests/early.rs) forks before glibc starts, when there
    // is little memory to copy.
    let (out, trace) = testcaps::strace(
        Command::new(bin())
            .args(["-fp", "true"])
            .env("MICROTOOLS_EARLY", "0"),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let clone = testcaps::one_call(&trace, "clone");
    assert!(
        clone.contains("flags=CLONE_VM|CLONE_VFORK|SIGCHLD"),
        "{trace}"
    );
    // A time namespace takes the copying fork: the kernel refuses CLONE_VM there.
    let (out, trace) = testcaps::strace(Command::new(bin()).args(["-fT", "true"]), LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        !testcaps::one_call(&trace, "clone").contains("CLONE_VM"),
        "{trace}"
    );
}

/// `--whitelist-env` (util-linux 2.40): only the listed variables that are set are kept.
#[test]
fn whitelist_env_keeps_only_the_listed_variables() {
    testcaps::require!(Cap::Root);
    for opts in [
        &["--whitelist-env=A,C,UNSET", "/usr/bin/env"][..],
        &[
            "--whitelist-env",
            "A",
            "--whitelist-env=C",
            "-f",
            "/usr/bin/env",
        ],
        &["--clear-env", "--whitelist-env=A,C", "/usr/bin/env"],
    ] {
        let out = testcaps::run(
            Command::new(bin())
                .args(opts)
                .env_clear()
                .env("A", "1")
                .env("B", "2")
                .env("C", "x=3"),
            LIMIT,
        );
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "A=1\nC=x=3\n"),
            "{opts:?}: {out:?}"
        );
    }
}

/// `--mount-binfmt` and `-l/--load-interp` (util-linux 2.41): a binfmt_misc instance of the
/// new user namespace (Linux 6.7+; this kernel has it), with an interpreter registered there
/// and used, and nothing registered on the host.
#[test]
fn binfmt_misc_of_the_new_user_namespace() {
    testcaps::require!(Cap::Root, Cap::Userns);
    let dir = TempDir::new("unshare-rs-binfmt").expect("temp dir");
    let name = format!("urs{}", std::process::id());
    let file = dir.path().join(format!("hello.{name}"));
    std::fs::write(&file, "interpreted\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let def = format!(":{name}:E::{name}::/bin/cat:");
    let file_s = file.to_string_lossy().into_owned();
    // --mount-binfmt alone: the default place, in a fresh /proc.
    let out = ours(&[
        "-r",
        "-fp",
        "--mount-binfmt",
        "ls",
        "/proc/sys/fs/binfmt_misc",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "register\nstatus\n"),
        "{out:?}"
    );
    // -l: registered, then the file runs through /bin/cat.
    let script = format!("cat /proc/sys/fs/binfmt_misc/{name}; {file_s}");
    let out = ours(&["-r", "-fp", "-l", &def, "sh", "-c", &script]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            Some(0),
            format!("enabled\ninterpreter /bin/cat\nflags: \nextension .{name}\ninterpreted\n")
                .as_str()
        ),
        "{out:?}"
    );
    // Another directory, given: no /proc of its own is implied.
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    let at = format!("--mount-binfmt={}", mnt.display());
    let out = ours(&["-r", "-m", &at, "ls", &mnt.to_string_lossy()]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "register\nstatus\n"),
        "{out:?}"
    );
    // F with --root: registered before the chroot (the kernel opens /bin/cat from our root).
    let fixed = format!(":{name}f:E::{name}f::/bin/cat:F");
    let out = ours(&[
        "-r",
        "-fp",
        "-R",
        "/",
        "-l",
        &fixed,
        "cat",
        &format!("/proc/sys/fs/binfmt_misc/{name}f"),
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            Some(0),
            format!("enabled\ninterpreter /bin/cat\nflags: F\nextension .{name}f\n").as_str()
        ),
        "{out:?}"
    );
    // A bad definition: one line, exit 1.
    let out = ours(&["-r", "-fp", "-l", "nonsense", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.starts_with(
            "unshare-rs: write /proc/sys/fs/binfmt_misc/register failed: Invalid argument"
        ),
        "{out:?}"
    );
    assert!(!std::path::Path::new(&format!("/proc/sys/fs/binfmt_misc/{name}")).exists());
    assert!(host_mounts_with(path_str(&dir)).is_empty());
}

/// Failed syscalls are reported once, on one line, in strerror's words, as util-linux does:
/// never std's " (os error N)" (one case per path that reports a kernel error: chroot, chdir,
/// a mount in the new namespace, exec).
#[test]
fn syscall_failures_are_one_line_in_strerrors_words() {
    testcaps::require!(Cap::Root);
    let missing = format!("/nonexistent-{}", std::process::id());
    let proc_at = format!("--mount-proc={missing}");
    let cases: [(Vec<&str>, &str, i32); 4] = [
        (vec!["-R", &missing, "true"], "No such file or directory", 1),
        (vec!["-w", &missing, "true"], "No such file or directory", 1),
        (vec!["-m", &proc_at, "true"], "No such file or directory", 1),
        (vec![&missing], "No such file or directory", 127),
    ];
    for (args, needle, code) in cases {
        let out = ours(&args);
        assert_eq!(out.code, Some(code), "{args:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("unshare-rs: "), "{args:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {out:?}");
        assert!(!out.stderr.contains("(os error"), "{args:?}: {out:?}");
    }
}
