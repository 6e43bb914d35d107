//! `exec` through the built binary, as root with the busybox rootfs: another process in the
//! container's namespaces and cgroup, with the config's process or a --process file, the flags
//! applied, its exit status passed on, and the refusals.

mod common;
use common::Env;

use serde_json::json;
use testcaps::Cap;

fn running(args: &[&str], id: &str) -> Env {
    let env = Env::new(args);
    env.create(id);
    let out = env.ocirun(&["start", id]);
    assert_eq!(out.code, Some(0), "{out:?}");
    env
}

#[test]
fn exec_joins_the_container_and_passes_the_status() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = running(&["sleep", "1000"], "x1");
    let init = env.state("x1")["pid"].as_i64().unwrap();
    let out = env.ocirun(&[
        "exec",
        "x1",
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$; exit 5",
    ]);
    assert_eq!(out.code, Some(5), "{out:?}");
    // The container's hostname, its pid namespace (pid 1 is the container's sleep) and a pid
    // of its own there.
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..2], ["ocirun", "sleep 1000 "], "{out:?}");
    assert_ne!(lines[2], "1");
    assert!(Env::alive(init));
}

#[test]
fn exec_flags_and_a_process_file() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = running(&["sleep", "1000"], "x2");
    let out = env.ocirun(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1001",
        "x2",
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "bar\n/tmp\n1000\n1001\n");
    let pf = env.dir.join("p.json");
    std::fs::write(
        &pf,
        json!({"args": ["sh", "-c", "grep -c . /proc/self/cgroup >/dev/null && echo file"],
               "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]})
        .to_string(),
    )
    .unwrap();
    let pid_file = env.dir.join("x.pid");
    let out = env.ocirun(&[
        "exec",
        "--process",
        pf.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "x2",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "file\n");
    assert!(std::fs::read_to_string(&pid_file)
        .unwrap()
        .parse::<i32>()
        .is_ok());
}

#[test]
fn exec_s_process_runs_in_the_container_s_cgroup() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = running(&["sleep", "1000"], "x3");
    let pid_file = env.dir.join("d.pid");
    let out = env.ocirun(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "x3",
        "sleep",
        "999",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let procs = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/pids/{}/cgroup.procs",
        env.cgroup.name()
    ))
    .unwrap();
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    let out = env.ocirun(&["ps", "--format", "json", "x3"]);
    let pids: Vec<i64> = serde_json::from_str(&out.stdout).unwrap();
    assert!(pids.contains(&pid), "{out:?}");
    assert_eq!(env.ocirun(&["delete", "--force", "x3"]).code, Some(0));
    assert!(!Env::alive(pid));
}

#[test]
fn exec_failures_are_one_line() {
    testcaps::require!(Cap::Root, Cap::Rootfs);
    let env = running(&["sleep", "1000"], "x4");
    let out = env.ocirun(&["exec", "x4", "nosuchprog"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "ocirun: process.args[0]: failed to execute nosuchprog: No such file or directory\n"
    );
    let out = env.ocirun(&["exec", "--tty", "x4", "sh"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "ocirun: exec: process.terminal is true but no --console-socket was given (ocirun hands \
         the pty master to the caller; give --console-socket PATH)\n"
    );
    let pf = env.dir.join("bad.json");
    std::fs::write(&pf, r#"{"args": "sh", "cwd": "/"}"#).unwrap();
    let out = env.ocirun(&["exec", "--process", pf.to_str().unwrap(), "x4"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains(": args: invalid type: string"),
        "{out:?}"
    );
    assert_eq!(env.ocirun(&["kill", "x4", "KILL"]).code, Some(0));
    env.wait_status("x4", "stopped");
    let out = env.ocirun(&["exec", "x4", "true"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "ocirun: container x4: cannot exec in a container that is stopped\n"
    );
}
