//! Entering real namespaces as root: the program run by nsenter-rs sees exactly the target's
//! namespace inodes for the kinds asked and the caller's for the others.

mod common;

use common::*;
use std::process::Command;
use testcaps::Cap;

fn check_kinds(t: &Target, opts: &[&str], entered: &[&str], env_no_pidfd: bool) {
    let mut cmd = Command::new(BIN);
    cmd.args(with_target(t.pid, opts)).args(inode_script());
    if env_no_pidfd {
        cmd.env("NSENTER_RS_NO_PIDFD", "1");
    }
    let out = testcaps::run(&mut cmd, LIMIT);
    assert_eq!(out.code, Some(0), "{opts:?}: {out:?}");
    assert_eq!(out.stderr, "", "{opts:?}");
    assert_eq!(
        out.stdout,
        expected_inodes(t.pid, entered),
        "{opts:?} (no pidfd: {env_no_pidfd})"
    );
}

#[test]
fn each_kind_alone_and_together() {
    testcaps::require!(Cap::Root);
    let t = flat_target();
    for no_pidfd in [false, true] {
        for (opts, entered) in [
            (&["-m"][..], &["mnt"][..]),
            (&["-u"], &["uts"]),
            (&["-i"], &["ipc"]),
            (&["-n"], &["net"]),
            (&["-C"], &["cgroup"]),
            (&["--net", "--uts"], &["net", "uts"]),
            (
                &["-m", "-u", "-i", "-n", "-C"],
                &["mnt", "uts", "ipc", "net", "cgroup"],
            ),
        ] {
            check_kinds(&t, opts, entered, no_pidfd);
        }
    }
}

/// Targets made by our own unshare-rs (the issue asks for both makers): every kind, the user
/// namespace included, is entered with -a and with each flag.
#[test]
fn targets_made_by_unshare_rs() {
    testcaps::require!(Cap::Root, Cap::Userns);
    let unshare_rs = testcaps::sibling_bin("unshare-rs");
    let unshare_rs = unshare_rs.to_str().expect("utf-8 path");
    let mut argv = vec![unshare_rs, "-U", "-r"];
    argv.extend(EVERY_NS_SLEEP);
    let t = Target::start(&argv, true);
    for no_pidfd in [false, true] {
        check_kinds(&t, &["-a"], &KINDS, no_pidfd);
        check_kinds(
            &t,
            &["-U", "-C", "-i", "-u", "-n", "-p", "-m", "-T"],
            &KINDS,
            no_pidfd,
        );
        check_kinds(&t, &["-U", "-n"], &["user", "net"], no_pidfd);
    }
}

#[test]
fn pid_and_time_namespaces() {
    testcaps::require!(Cap::Root);
    let t = pid_target();
    for no_pidfd in [false, true] {
        check_kinds(&t, &["-p", "-m"], &["pid", "mnt"], no_pidfd);
        check_kinds(&t, &["-T", "-m", "-p"], &["time", "pid", "mnt"], no_pidfd);
        // -a: every kind but our own user namespace, which the target shares.
        check_kinds(
            &t,
            &["-a"],
            &["cgroup", "ipc", "uts", "net", "pid", "mnt", "time"],
            no_pidfd,
        );
    }
    // The forked program is a process of the target's pid namespace.
    let out = nsenter_rs_prog(
        &with_target(t.pid, &["-p", "-m"]),
        &["sh".into(), "-c".into(), "echo $$; cat /proc/1/comm".into()],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].parse::<i32>().expect("pid") > 1, "{out:?}");
    assert_eq!(lines[1], "sleep");
}

#[test]
fn no_fork_execs_in_place() {
    testcaps::require!(Cap::Root);
    let t = pid_target();
    // With -F the program is not in the pid namespace, only its children would be.
    let out = nsenter_rs_prog(
        &with_target(t.pid, &["-p", "-F"]),
        &[
            "sh".into(),
            "-c".into(),
            "stat -L -c %i /proc/$$/ns/pid /proc/$$/ns/pid_for_children".into(),
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "{}\n{}\n",
            ns_inode("self", "pid"),
            ns_inode(&t.pid.to_string(), "pid")
        )
    );
}

#[test]
fn status_is_relayed_through_the_pid_namespace_fork() {
    testcaps::require!(Cap::Root);
    let t = pid_target();
    for (script, code, signal) in [
        ("exit 0", Some(0), None),
        ("exit 42", Some(42), None),
        ("kill -9 $$", None, Some(9)),
        ("kill -15 $$", None, Some(15)),
    ] {
        let out = nsenter_rs_prog(
            &with_target(t.pid, &["-p"]),
            &["sh".into(), "-c".into(), script.into()],
        );
        assert_eq!((out.code, out.signal), (code, signal), "{script}: {out:?}");
        assert_eq!(out.stderr, "", "{script}");
    }
    // Through a shell the signals show as 128+N.
    for (script, shown) in [("kill -9 $$", "137"), ("kill -15 $$", "143")] {
        let out = testcaps::run(
            Command::new("sh").args([
                "-c",
                &format!("'{BIN}' -t {} -p sh -c '{script}'; echo $?", t.pid),
            ]),
            LIMIT,
        );
        assert_eq!(out.stdout.trim(), shown, "{out:?}");
    }
}

#[test]
fn exec_failures_are_126_and_127() {
    testcaps::require!(Cap::Root);
    // With -p, after a pid-namespace join the child that execs borrows our memory until then:
    // its failure is printed once, by the child, and its code comes back through the parent.
    for (t, ns) in [(flat_target(), "-n"), (pid_target(), "-p")] {
        let pid = t.pid.to_string();
        // strerror's words, as util-linux prints them: never std's " (os error N)".
        for (prog, code, why) in [
            ("/nonexistent/prog", 127, "No such file or directory"),
            ("/etc", 126, "Permission denied"),
        ] {
            let out = nsenter_rs(&["-t", &pid, ns, prog]);
            assert_eq!(out.code, Some(code), "{ns} {prog}: {out:?}");
            let want = format!("nsenter-rs: failed to execute {prog}: {why}\n");
            assert_eq!(out.stderr, want, "{ns}: {out:?}");
        }
    }
}

#[test]
fn mount_proc_shows_the_entered_pid_namespace() {
    testcaps::require!(Cap::Root);
    // A target in new pid and mount namespaces that keeps the host's /proc mounted.
    let t = Target::start(&["/usr/bin/unshare", "-fp", "-m", "sleep", "60"], true);
    let script = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
    // Without --mount-proc, /proc is still the host's: our pid 1 is not sleep.
    let plain = nsenter_rs_prog(
        &with_target(t.pid, &["-p", "-m"]),
        &script("cat /proc/1/comm"),
    );
    assert_eq!(plain.code, Some(0), "{plain:?}");
    assert_ne!(plain.stdout, "sleep\n");
    let fresh = nsenter_rs_prog(
        &with_target(t.pid, &["-p", "-m", "--mount-proc"]),
        &script("cat /proc/1/comm; ls /proc | grep -c '^[0-9]'"),
    );
    assert_eq!(fresh.code, Some(0), "{fresh:?}");
    // sleep is pid 1; the only processes are sleep, sh and grep... at most a few.
    let lines: Vec<&str> = fresh.stdout.lines().collect();
    assert_eq!(lines[0], "sleep", "{fresh:?}");
    assert!(lines[1].parse::<u32>().expect("count") <= 4, "{fresh:?}");
    // The target's own mount table did not get the new /proc.
    let theirs = std::fs::read_to_string(format!("/proc/{}/mountinfo", t.pid)).expect("mountinfo");
    let ours = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert_eq!(
        theirs.lines().filter(|l| l.contains(" /proc ")).count(),
        ours.lines().filter(|l| l.contains(" /proc ")).count()
    );
}

#[test]
fn net_file_of_a_persisted_namespace() {
    testcaps::require!(Cap::Root);
    // Everything happens in a private mount namespace made by util-linux unshare: the tmpfs, the
    // persisting bind mount, and both nsenters; nothing stays mounted on the host.
    let script = format!(
        "set -e; mount -t tmpfs tmpfs /mnt; touch /mnt/netns; \
         unshare --net=/mnt/netns true; \
         stat -L -c %i /mnt/netns; \
         '{BIN}' --net=/mnt/netns stat -L -c %i /proc/self/ns/net; \
         /usr/bin/nsenter --net=/mnt/netns stat -L -c %i /proc/self/ns/net; \
         '{BIN}' --net=/mnt/netns -- ip -o link | cut -d: -f2"
    );
    let out = testcaps::run(
        Command::new("/usr/bin/unshare").args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ]),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out:?}");
    assert_eq!(lines[0], lines[1]);
    assert_eq!(lines[1], lines[2]);
    assert_ne!(lines[0], ns_inode("self", "net").to_string());
    assert_eq!(lines[3].trim(), "lo");
}

fn user_target() -> Target {
    // A user namespace whose ids 0-65535 are host ids 100000-165535: our own uid 0 is not
    // mapped, so --preserve-credentials shows the overflow id.
    let t = Target::start(&["/usr/bin/unshare", "-U", "sleep", "60"], false);
    for map in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{}/{map}", t.pid), "0 100000 65536\n")
            .unwrap_or_else(|e| panic!("write {map}: {e}"));
    }
    t
}

#[test]
fn user_namespace_credentials() {
    testcaps::require!(Cap::Root, Cap::Userns);
    let t = user_target();
    let ids = vec![
        "sh".to_string(),
        "-c".to_string(),
        "id -u; id -g; stat -L -c %i /proc/self/ns/user".to_string(),
    ];
    let user_ino = ns_inode(&t.pid.to_string(), "user");
    for (opts, want) in [
        (&["-U"][..], "0\n0"),
        (&["-U", "--preserve-credentials"], "65534\n65534"),
        (&["-U", "-S", "5", "-G", "7"], "5\n7"),
        (&["--user"], "0\n0"),
    ] {
        let out = nsenter_rs_prog(&with_target(t.pid, opts), &ids);
        assert_eq!(out.code, Some(0), "{opts:?}: {out:?}");
        assert_eq!(out.stdout, format!("{want}\n{user_ino}\n"), "{opts:?}");
    }
    // The same with util-linux, for the kinds both know.
    for opts in [
        &["-U"][..],
        &["-U", "--preserve-credentials"],
        &["-U", "-S", "5", "-G", "7"],
    ] {
        let ours = nsenter_rs_prog(&with_target(t.pid, opts), &ids);
        let theirs = nsenter_ul_prog(&with_target(t.pid, opts), &ids);
        assert_eq!(
            (ours.code, ours.stdout),
            (theirs.code, theirs.stdout),
            "{opts:?}"
        );
    }
}

#[test]
fn all_enters_a_foreign_user_namespace_too() {
    testcaps::require!(Cap::Root, Cap::Userns);
    // The user namespace is the target's own; the mount namespace it owns is entered as well.
    let t = Target::start(&["/usr/bin/unshare", "-U", "-m", "sleep", "60"], false);
    for map in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{}/{map}", t.pid), "0 100000 65536\n").expect("map");
    }
    for no_pidfd in [false, true] {
        check_kinds(&t, &["-a"], &KINDS, no_pidfd);
    }
    let ours = nsenter_rs_prog(&with_target(t.pid, &["-a"]), &inode_script());
    let theirs = nsenter_ul_prog(&with_target(t.pid, &["-a"]), &inode_script());
    assert_eq!((ours.code, ours.stdout), (theirs.code, theirs.stdout));
}

#[test]
fn keep_caps_survive_exec_as_an_unmapped_user() {
    testcaps::require!(Cap::Root, Cap::Userns);
    let t = user_target();
    let caps = vec![
        "grep".to_string(),
        "^CapAmb".to_string(),
        "/proc/self/status".to_string(),
    ];
    let without = nsenter_rs_prog(
        &with_target(t.pid, &["-U", "--preserve-credentials"]),
        &caps,
    );
    assert_eq!(without.stdout, "CapAmb:\t0000000000000000\n", "{without:?}");
    let with = nsenter_rs_prog(
        &with_target(t.pid, &["-U", "--preserve-credentials", "--keep-caps"]),
        &caps,
    );
    assert_eq!(with.code, Some(0), "{with:?}");
    let mask = with.stdout.trim().trim_start_matches("CapAmb:").trim();
    let mask = u64::from_str_radix(mask, 16).expect("hex mask");
    // Bit 21 is CAP_SYS_ADMIN.
    assert_ne!(mask & (1 << 21), 0, "{with:?}");
}

#[test]
fn user_namespace_with_setgroups_denied() {
    testcaps::require!(Cap::Root, Cap::Userns);
    // unshare -r writes "deny" to setgroups: dropping groups is then refused, and not needed.
    let t = Target::start(&["/usr/bin/unshare", "-U", "-r", "sleep", "60"], false);
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{}/setgroups", t.pid)).expect("setgroups"),
        "deny\n"
    );
    let out = nsenter_rs_prog(
        &with_target(t.pid, &["-U"]),
        &["sh".into(), "-c".into(), "id -u; id -g".into()],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "0\n0\n"),
        "{out:?}"
    );
}

#[test]
fn sigterm_is_forwarded_and_sigint_ignored_after_the_fork() {
    testcaps::require!(Cap::Root);
    let t = pid_target();
    let mut child = Command::new(BIN)
        .args(with_target(t.pid, &["-p", "-m", "sleep", "30"]))
        .spawn()
        .expect("spawn nsenter-rs");
    let me = child.id() as i32;
    // Wait for the forked sleep in the target's pid namespace, then signal nsenter-rs itself.
    let _sleeper = Target::child_named(me, "sleep");
    // SIGINT to nsenter-rs alone is ignored (the terminal would send it to the program too);
    // SIGTERM is forwarded, and the program's death by it comes back.
    // SAFETY: kill with the pid of the process this test spawned.
    unsafe { libc::kill(me, libc::SIGINT) };
    // SAFETY: as above.
    unsafe { libc::kill(me, libc::SIGTERM) };
    let status = testcaps::wait_bounded(&mut child, LIMIT);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

#[test]
fn user_parent_enters_the_parent_user_namespace() {
    testcaps::require!(Cap::Root, Cap::Userns);
    // sh stays in the outer user namespace; the sleep it starts is in a nested one.
    let outer = Target::start(
        &[
            "/usr/bin/unshare",
            "-U",
            "-r",
            "sh",
            "-c",
            "unshare -U sleep 60 & wait",
        ],
        true,
    );
    let sh = outer.top();
    let inner = outer.pid;
    assert_ne!(
        ns_inode(&sh.to_string(), "user"),
        ns_inode(&inner.to_string(), "user")
    );
    let out = nsenter_rs_prog(
        &with_target(inner, &["-U", "--user-parent"]),
        &[
            "stat".into(),
            "-L".into(),
            "-c".into(),
            "%i".into(),
            "/proc/self/ns/user".into(),
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        ns_inode(&sh.to_string(), "user").to_string()
    );
    // Without -U the same (util-linux since 2.40): the parent of the target's user namespace,
    // not the owner of another namespace it was asked to enter; here with the target's net
    // namespace, which is ours.
    for opts in [&["--user-parent"][..], &["-n", "--user-parent"]] {
        let out = nsenter_rs_prog(&with_target(inner, opts), &inode_script());
        assert_eq!(out.code, Some(0), "{opts:?}: {out:?}");
        let want: String = KINDS
            .iter()
            .map(|k| {
                let who = if *k == "user" {
                    sh.to_string()
                } else {
                    "self".to_string()
                };
                format!("{k} {}\n", ns_inode(&who, k))
            })
            .collect();
        assert_eq!(out.stdout, want, "{opts:?}");
    }
}

/// `sleep 60` as uid 1234, gid 2345 and no supplementary groups.
const SLEEP_AS_1234: [&str; 6] = [
    "setpriv",
    "--reuid=1234",
    "--regid=2345",
    "--clear-groups",
    "sleep",
    "60",
];

/// Runs `sh -c SCRIPT` in `t`'s `kind` namespace with `-S follow -G follow`, from /, which the
/// unprivileged program may enter wherever the checkout is.
fn follow_ids(t: &Target, kind: &str, script: &str) -> testcaps::Output {
    testcaps::run(
        Command::new(BIN)
            .current_dir("/")
            .args(with_target(t.pid, &[kind, "-S", "follow", "-G", "follow"]))
            .args(["sh", "-c", script]),
        LIMIT,
    )
}

#[test]
fn setuid_follow_takes_the_targets_ids() {
    testcaps::require!(Cap::Root);
    let t = Target::start(&SLEEP_AS_1234, false);
    let out = follow_ids(&t, "-n", "id -u; id -g; id -G");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "1234\n2345\n2345\n");
}

#[test]
fn setuid_follow_reads_our_proc_after_joining_the_mount_namespace() {
    testcaps::require!(Cap::Root);
    // The target's /proc is its own pid namespace's, where its outer pid names nobody: the
    // status that `follow` reads after joining must still come through our /proc.
    let t = Target::start(
        &[
            &["/usr/bin/unshare", "-fp", "--mount-proc"][..],
            &SLEEP_AS_1234,
        ]
        .concat(),
        true,
    );
    let out = follow_ids(&t, "-m", "id -u; id -g");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "1234\n2345\n");
}

#[test]
fn env_is_the_targets() {
    testcaps::require!(Cap::Root);
    let t = Target::start(
        &[
            "env",
            "-i",
            "FOO=bar baz",
            "PATH=/usr/bin:/bin",
            "sleep",
            "60",
        ],
        false,
    );
    let out = nsenter_rs(&["-t", &t.pid.to_string(), "-u", "-e", "env"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["FOO=bar baz", "PATH=/usr/bin:/bin"]);
}

#[test]
fn root_and_working_directories() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let rootfs = testcaps::rootfs();
    let rootfs_s = rootfs.to_string_lossy().into_owned();
    // A target chrooted into the busybox rootfs, with /tmp of it as its cwd.
    let t = Target::start(
        &[
            "chroot",
            &rootfs_s,
            "/bin/sh",
            "-c",
            "cd /tmp && exec /bin/sleep 60",
        ],
        false,
    );
    let pid = t.pid.to_string();
    // -u (the target shares ours): util-linux since 2.40 and nsenter-rs want a namespace.
    let run = |opts: &[&str], script: &str| {
        let mut args: Vec<&str> = opts.to_vec();
        args.extend(["/bin/sh", "-c", script]);
        nsenter_rs(&args)
    };
    // -r: the target's root; the program finds the rootfs's busybox at /bin/busybox.
    let out = run(
        &["-t", &pid, "-u", "-r", "-w"],
        "pwd; test -f /bin/busybox && echo inside",
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "/tmp\ninside\n"),
        "{out:?}"
    );
    // -W: a directory resolved after entering the root.
    let out = run(&["-t", &pid, "-u", "-r", "-W/etc"], "pwd");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "/etc\n"),
        "{out:?}"
    );
    // -w alone: the target's cwd, seen from our root.
    let out = nsenter_rs(&["-t", &pid, "-u", "-w", "pwd"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), rootfs.join("tmp").to_string_lossy());
    // Explicit directories and a namespace file, no target.
    let root_arg = format!("--root={rootfs_s}");
    let wd_arg = format!("--wd={rootfs_s}/bin");
    let out = run(&["--uts=/proc/self/ns/uts", &root_arg, &wd_arg], "pwd");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "/bin\n"),
        "{out:?}"
    );
    // The same with util-linux.
    for opts in [
        vec!["-t", pid.as_str(), "-u", "-r"],
        vec!["-t", pid.as_str(), "-u", "-w"],
        vec!["-t", pid.as_str(), "-u", "-r", "-w"],
        vec!["-t", pid.as_str(), "-u", "-r", "-W/etc"],
        vec![
            "--uts=/proc/self/ns/uts",
            root_arg.as_str(),
            wd_arg.as_str(),
        ],
    ] {
        let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        args.extend(["/bin/sh".into(), "-c".into(), "pwd; ls /".into()]);
        let ours = nsenter_rs_prog(&args, &[]);
        let theirs = nsenter_ul_prog(&args, &[]);
        assert_eq!(
            (ours.code, &ours.stdout),
            (theirs.code, &theirs.stdout),
            "{opts:?}"
        );
    }
}

#[test]
fn pid_inode_refuses_another_process() {
    testcaps::require!(Cap::Root);
    let t = flat_target();
    let inode = pidfd_inode(t.pid);
    let good = format!("{}:{inode}", t.pid);
    let out = nsenter_rs_prog(&["-t".into(), good, "-n".into()], &inode_script());
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, expected_inodes(t.pid, &["net"]));
    // The inode of another process: as if the pid had been reused.
    let other = pidfd_inode(std::process::id() as i32);
    let out = nsenter_rs(&["-t", &format!("{}:{other}", t.pid), "-n", "echo", "ran"]);
    assert_fails(&out, "the pid was reused");
    // --ls checks it too.
    let out = nsenter_rs(&["--ls", "-t", &format!("{}:{other}", t.pid)]);
    assert_fails(&out, "the pid was reused");
    let out = nsenter_rs(&["--ls", "--json", "-t", &format!("{}:{inode}", t.pid)]);
    assert_eq!(
        (out.code, out.stdout.lines().count()),
        (Some(0), KINDS.len()),
        "{out:?}"
    );
    // A pid that really was reused keeps no process with the old inode.
    let gone = Target::start(&["sleep", "60"], false);
    let (pid, ino) = (gone.pid, pidfd_inode(gone.pid));
    drop(gone);
    let out = nsenter_rs(&["-t", &format!("{pid}:{ino}"), "-n", "echo", "ran"]);
    assert_fails(&out, "does not exist");
}

#[test]
fn ls_lists_the_targets_namespaces() {
    testcaps::require!(Cap::Root);
    let t = flat_target();
    let pid = t.pid.to_string();
    let out = nsenter_rs(&["--ls", "--json", "-t", &pid]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), KINDS.len(), "{out:?}");
    for (line, kind) in lines.iter().zip(KINDS) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        assert_eq!(v["type"], kind);
        assert_eq!(v["pid"], t.pid);
        assert_eq!(v["pidfs_inode"], pidfd_inode(t.pid));
        assert_eq!(v["inode"], ns_inode(&pid, kind));
        let pid1 = std::fs::metadata(format!("/proc/1/ns/{kind}"))
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m) != ns_inode(&pid, kind));
        assert_eq!(v["differs_from_pid1"], serde_json::json!(pid1), "{kind}");
    }
    let table = nsenter_rs(&["--ls", "--target", &pid]);
    assert_eq!(table.code, Some(0), "{table:?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    let ino = pidfd_inode(t.pid);
    assert_eq!(
        lines[0],
        format!("process {pid}, pidfs inode {ino} (-t {pid}:{ino})")
    );
    let rows = &lines[1..];
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["TYPE", "INODE", "PID1"]
    );
    for (row, kind) in rows[1..].iter().zip(KINDS) {
        let f: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(f[0], kind);
        assert_eq!(f[1], ns_inode(&pid, kind).to_string());
    }
    // Alone: our own namespaces (nsenter-rs is our child and shares them).
    let own = nsenter_rs(&["--ls", "--json"]);
    assert_eq!(own.code, Some(0), "{own:?}");
    for (line, kind) in own.stdout.lines().zip(KINDS) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        assert_eq!(v["inode"], ns_inode("self", kind), "{kind}");
    }
}

#[test]
fn net_socket_enters_the_sockets_namespace() {
    testcaps::require!(Cap::Root);
    // busybox nc listening in a new network namespace holds a socket of it.
    let t = Target::start_as(
        &[
            "/usr/bin/unshare",
            "-n",
            "busybox",
            "nc",
            "-l",
            "-p",
            "5555",
        ],
        false,
        "busybox",
    );
    let fd = t.socket_fd().to_string();
    let out = nsenter_rs_prog(&with_target(t.pid, &["-N", &fd]), &inode_script());
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, expected_inodes(t.pid, &["net"]));
    let out = nsenter_rs(&[
        "-t",
        &t.pid.to_string(),
        "--net-socket",
        "999",
        "echo",
        "ran",
    ]);
    assert_fails(&out, "has no file descriptor 999");
    let out = nsenter_rs(&["-t", &t.pid.to_string(), "-N", "0", "echo", "ran"]);
    assert_fails(&out, "must be a socket");
}

#[test]
fn join_cgroup_v2() {
    testcaps::require!(Cap::Root);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let t = flat_target();
    let Some((point, _)) = nsenter_rs::enter::parse_cgroup2_mount(&mountinfo) else {
        let out = nsenter_rs(&["-t", &t.pid.to_string(), "-u", "-c", "echo", "ran"]);
        assert_fails(&out, "is mounted here");
        return;
    };
    let guard = testcaps::CgroupGuard::new("nsenter-rs-test");
    let dir = std::path::Path::new(&point).join(guard.name());
    std::fs::create_dir(&dir).expect("mkdir cgroup");
    std::fs::write(dir.join("cgroup.procs"), t.pid.to_string()).expect("move target");
    let out = nsenter_rs(&[
        "-t",
        &t.pid.to_string(),
        "-u",
        "-c",
        "cat",
        "/proc/self/cgroup",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("0::/{}", guard.name())),
        "{out:?}"
    );
    drop(t);
}

/// Issue #22 item 12: on a hybrid host (v1 controllers and cgroup2), `-c` joins the target's
/// group in the v1 hierarchies too, not only in cgroup2. The test makes its own group in a few
/// v1 hierarchies and in cgroup2 and puts the target there; in the other hierarchies the target
/// shares our group, which -c leaves alone.
#[test]
fn join_cgroup_covers_the_v1_hierarchies_of_a_hybrid_host() {
    testcaps::require!(Cap::Root, Cap::CgroupV1);
    let mounts = conventions::mountinfo::read_self().expect("mountinfo");
    let find = |pred: &dyn Fn(&conventions::mountinfo::Mount) -> bool| {
        mounts
            .iter()
            .find(|m| pred(m))
            .map(|m| m.mount_point.clone())
    };
    let v1 = |c: &'static str| {
        find(&move |m| m.fstype == "cgroup" && m.super_option_list().any(|o| o == c))
    };
    let hierarchies: Vec<(&str, String)> = [
        ("pids", v1("pids")),
        ("freezer", v1("freezer")),
        ("name=systemd", v1("name=systemd")),
        ("", find(&|m| m.fstype == "cgroup2")),
    ]
    .into_iter()
    .filter_map(|(c, m)| Some((c, m?)))
    .collect();
    assert!(
        hierarchies.iter().any(|(c, _)| !c.is_empty()),
        "testcaps' cgroupv1 found a v1 hierarchy, mountinfo here none of pids, freezer, systemd"
    );
    let t = flat_target();
    let guard = testcaps::CgroupGuard::new("nsenter-rs-v1");
    for (_, point) in &hierarchies {
        let dir = std::path::Path::new(point).join(guard.name());
        std::fs::create_dir(&dir).expect("mkdir cgroup");
        std::fs::write(dir.join("cgroup.procs"), t.pid.to_string()).expect("move target");
    }
    let out = nsenter_rs(&[
        "-t",
        &t.pid.to_string(),
        "-u",
        "-c",
        "cat",
        "/proc/self/cgroup",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<(&str, &str)> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(':')?;
            rest.split_once(':')
        })
        .collect();
    for (controllers, _) in &hierarchies {
        assert!(
            lines.contains(&(controllers, format!("/{}", guard.name()).as_str())),
            "{controllers:?} in {out:?}"
        );
    }
    // Where the target shares our group (memory, cpu, ...), the program stays in ours.
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("own cgroup");
    for l in own.lines() {
        let Some((_, rest)) = l.split_once(':') else {
            continue;
        };
        let Some((c, path)) = rest.split_once(':') else {
            continue;
        };
        if !hierarchies.iter().any(|(h, _)| *h == c) {
            assert!(lines.contains(&(c, path)), "{c} {path} in {out:?}");
        }
    }
    drop(t);
}

#[test]
fn the_pid_namespace_child_borrows_our_memory_until_it_execs() {
    testcaps::require!(Cap::Root);
    let t = pid_target();
    let (out, trace) = testcaps::strace(
        Command::new(BIN).args(["-t", &t.pid.to_string(), "-p", "true"]),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let clone = testcaps::one_call(&trace, "clone");
    assert!(
        clone.contains("flags=CLONE_VM|CLONE_VFORK|SIGCHLD"),
        "{trace}"
    );
}
