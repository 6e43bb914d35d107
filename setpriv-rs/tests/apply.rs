//! The options util-linux 2.38 does not have (2.42's --ptracer, --landlock-*, --seccomp-filter;
//! our --seccomp and --default-container), checked against what the kernel then shows.

use std::process::Command;
use std::time::Duration;
use testcaps::Cap;

const BIN: &str = env!("CARGO_BIN_EXE_setpriv-rs");

fn run(args: &[&str]) -> testcaps::Output {
    testcaps::run(
        Command::new(testcaps::tool_bin("setpriv-rs", BIN)).args(args),
        Duration::from_secs(30),
    )
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(testcaps::unique_name("setpriv-rs"));
    std::fs::create_dir_all(&d).expect("temp dir");
    d.join(name)
}

#[test]
fn default_container_drops_to_the_engine_set_with_nnp_and_seccomp() {
    testcaps::require!(Cap::Root);
    let out = run(&["--default-container", "--", "cat", "/proc/self/status"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT
    // SETFCAP: bits 0 1 3 4 5 6 7 8 10 18 31.
    for key in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            status_field(&out.stdout, key),
            "00000000800405fb",
            "{key}: {out:?}"
        );
    }
    assert_eq!(status_field(&out.stdout, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&out.stdout, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), "1");
    assert_eq!(status_field(&out.stdout, "Seccomp"), "2");
}

#[test]
fn default_container_refuses_what_the_profile_blocks() {
    testcaps::require!(Cap::Root);
    let dir = temp("node");
    let script = format!(
        "mknod {node} c 1 3; echo mknod=$?; unshare -U true; echo unshare=$?; \
         unshare -m true; echo unshare_m=$?; mount -t tmpfs none /mnt; echo mount=$?",
        node = dir.display()
    );
    let out = run(&["--default-container", "--", "sh", "-c", &script]);
    let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout, "mknod=1\nunshare=1\nunshare_m=1\nmount=32\n",
        "{out:?}"
    );
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
}

#[test]
fn seccomp_profile_from_a_file() {
    let f = temp("profile.json");
    std::fs::write(
        &f,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
                        {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":1,
                         "args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
    )
    .expect("write");
    let dir = f.with_file_name("made");
    let out = run(&[
        "--seccomp",
        &f.to_string_lossy(),
        "mkdir",
        &dir.to_string_lossy(),
    ]);
    let made = dir.exists();
    let status = run(&[
        "--seccomp",
        &f.to_string_lossy(),
        "cat",
        "/proc/self/status",
    ]);
    let _ = std::fs::remove_dir_all(f.parent().expect("parent"));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    assert!(!made);
    assert_eq!(status_field(&status.stdout, "Seccomp"), "2");
    assert_eq!(status_field(&status.stdout, "NoNewPrivs"), "1");
}

#[test]
fn bad_seccomp_profiles_are_one_line_naming_the_field() {
    let f = temp("bad.json");
    let shown = f.to_string_lossy().into_owned();
    for (json, want) in [
        ("{\"defaultAction\":", "malformed JSON: EOF while parsing a value at line 1 column 17".to_string()),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["nosuchcall"],"action":"SCMP_ACT_ERRNO"}]}"#,
            "syscalls[0].names[0]: unknown system call \"nosuchcall\"".to_string(),
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_PDP11"]}"#,
            "architectures[1]: unknown architecture \"SCMP_ARCH_PDP11\": libseccomp cannot filter it".to_string(),
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_SOMETIMES"}"#,
            "defaultAction: unknown action \"SCMP_ACT_SOMETIMES\" (SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG)".to_string(),
        ),
    ] {
        std::fs::write(&f, json).expect("write");
        let out = run(&["--seccomp", &shown, "true"]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert_eq!(out.stdout, "");
        assert_eq!(out.stderr, format!("setpriv-rs: --seccomp: {shown}: {want}\n"));
    }
    let out = run(&["--seccomp", "/nonexistent/profile.json", "true"]);
    assert_eq!(
        out.stderr,
        "setpriv-rs: --seccomp: read /nonexistent/profile.json failed: No such file or directory\n"
    );
    let _ = std::fs::remove_dir_all(f.parent().expect("parent"));
}

#[test]
fn raw_seccomp_filter_as_util_linux_242() {
    // One instruction: SECCOMP_RET_ALLOW (BPF_RET|BPF_K = 6, k = 0x7fff0000).
    let f = temp("allow.bpf");
    let mut prog = Vec::new();
    prog.extend_from_slice(&6u16.to_ne_bytes());
    prog.extend_from_slice(&[0, 0]);
    prog.extend_from_slice(&0x7fff_0000u32.to_ne_bytes());
    std::fs::write(&f, &prog).expect("write");
    let out = run(&[
        "--seccomp-filter",
        &f.to_string_lossy(),
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(status_field(&out.stdout, "Seccomp"), "2");
    std::fs::write(&f, [1, 2, 3]).expect("write");
    let out = run(&["--seccomp-filter", &f.to_string_lossy(), "true"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains(
            "is not a BPF program (3 bytes, where a program is 1 to 65535 instructions of 8 bytes)"
        ),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(f.parent().expect("parent"));
}

fn has_landlock() -> bool {
    // SAFETY: the version query takes no pointers.
    unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        ) >= 1
    }
}

#[test]
fn landlock_rules_confine_the_program() {
    testcaps::require_that!(
        "landlock",
        if has_landlock() {
            Ok(())
        } else {
            Err("landlock_create_ruleset gives no ABI version".to_string())
        }
    );
    let f = temp("denied");
    let out = run(&[
        "--landlock-access",
        "fs",
        "--landlock-rule",
        "path-beneath:read-file,read-dir,execute:/",
        "--",
        "sh",
        "-c",
        &format!(
            "head -c1 /proc/self/status && echo; touch {}; echo touch=$?",
            f.display()
        ),
    ]);
    let made = f.exists();
    let _ = std::fs::remove_dir_all(f.parent().expect("parent"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "N\ntouch=1\n", "{out:?}");
    assert!(!made);
    let out = run(&[
        "--landlock-rule",
        "path-beneath:read-file:/nonexistent",
        "--landlock-access",
        "fs",
        "true",
    ]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "setpriv-rs: --landlock-rule: open /nonexistent failed: No such file or directory\n"
    );
}

#[test]
fn ptracer_without_yama_is_one_line() {
    if std::path::Path::new("/proc/sys/kernel/yama").exists() {
        let out = run(&["--ptracer", "any", "true"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        return;
    }
    let out = run(&["--ptracer", "any", "true"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "setpriv-rs: --ptracer: prctl(PR_SET_PTRACER) failed: Invalid argument (it needs the Yama LSM)\n"
    );
}

#[test]
fn ambient_without_inheritable_is_an_error_not_silence() {
    testcaps::require!(Cap::Root);
    // util-linux ignores a refused PR_CAP_AMBIENT_RAISE and runs the program without it.
    let out = run(&["--inh-caps=-all", "--ambient-caps", "+chown", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .starts_with("setpriv-rs: --ambient-caps: prctl(PR_CAP_AMBIENT, RAISE, chown) failed"),
        "{out:?}"
    );
    assert_eq!(out.stderr.lines().count(), 1);
}

#[test]
fn unknown_users_and_groups_name_the_option() {
    // The static build reads /etc/passwd and /etc/group itself: an unknown name must be an
    // error there too, not a crash inside an NSS module.
    for (args, want) in [
        (
            &["--reuid", "no-such-user-mt", "true"][..],
            "--reuid: unknown user 'no-such-user-mt'",
        ),
        (
            &["--ruid", "no-such-user-mt", "true"],
            "--ruid: unknown user 'no-such-user-mt'",
        ),
        (
            &["--euid", "no-such-user-mt", "true"],
            "--euid: unknown user 'no-such-user-mt'",
        ),
        (
            &["--regid", "no-such-group-mt", "--keep-groups", "true"],
            "--regid: unknown group 'no-such-group-mt'",
        ),
        (
            &["--egid", "no-such-group-mt", "--keep-groups", "true"],
            "--egid: unknown group 'no-such-group-mt'",
        ),
        (
            &["--groups", "0,no-such-group-mt", "true"],
            "--groups: unknown group 'no-such-group-mt'",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        assert!(
            out.stderr.starts_with(&format!("setpriv-rs: {want} (")),
            "{out:?}"
        );
    }
}

#[test]
fn bad_capability_lists_name_the_option() {
    for (args, want) in [
        (&["--inh-caps", "+nope", "true"][..], "--inh-caps: unknown capability \"nope\" (see --list-caps)"),
        (&["--ambient-caps", "+cap_99", "true"], "--ambient-caps: unknown capability \"cap_99\" (see --list-caps)"),
        (
            &["--bounding-set", "-all,chown", "true"],
            "--bounding-set: bad capability string \"chown\" (each entry is +NAME or -NAME, NAME a capability or 'all') (see --list-caps)",
        ),
        (
            &["--bounding-set", "-chown,", "true"],
            "--bounding-set: bad capability string \"\" (each entry is +NAME or -NAME, NAME a capability or 'all') (see --list-caps)",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert_eq!(out.stdout, "");
        assert_eq!(
            out.stderr,
            format!("setpriv-rs: {want} (try 'setpriv-rs --help')\n"),
            "{args:?}"
        );
    }
}

#[test]
fn a_bounding_set_that_cannot_be_cut_is_an_error_not_a_silent_run() {
    testcaps::require!(Cap::Root);
    // As nobody (no CAP_SETPCAP): util-linux 2.38 with this host's libcap-ng runs the program
    // with the capability still in the bounding set and exits 0; setpriv-rs refuses.
    let bin = testcaps::tool_bin("setpriv-rs", BIN);
    let out = testcaps::run(
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args([bin, "--bounding-set", "-chown", "--", "echo", "ran"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "setpriv-rs: prctl(PR_CAPBSET_DROP, chown) failed: Operation not permitted (dropping from the bounding set needs CAP_SETPCAP)\n"
    );
}
