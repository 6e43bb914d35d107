//! Runs the example guests (built from tinyvmm/guests by build.rs) under real KVM and checks their
//! exact output and exit status, the report, and that bad input is refused with 125.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use testcaps::{require, Cap};

const BIN: &str = env!("CARGO_BIN_EXE_tinyvmm");

fn tmp(name: &str) -> PathBuf {
    let dir = testcaps::target_dir().join("tmp");
    std::fs::create_dir_all(&dir).expect("create target/tmp");
    dir.join(testcaps::unique_name(name))
}

/// Runs tinyvmm with `args`, stdin from `input` (a file, so that it ends), at most 30 s.
fn tinyvmm(args: &[&str], input: &[u8]) -> testcaps::Output {
    let file = tmp("stdin");
    std::fs::write(&file, input).expect("write stdin file");
    let stdin = std::fs::File::open(&file).expect("open stdin file");
    let out = testcaps::run(
        Command::new(BIN).args(args).stdin(Stdio::from(stdin)),
        Duration::from_secs(30),
    );
    let _ = std::fs::remove_file(&file);
    out
}

fn run_guest(name: &str, extra: &[&str], input: &[u8]) -> testcaps::Output {
    let path = tinyvmm::guest_path(name);
    let mut args: Vec<&str> = vec!["run"];
    args.extend_from_slice(extra);
    args.push(&path);
    tinyvmm(&args, input)
}

/// The run ended with 0, printed exactly `stdout` and nothing on stderr.
fn assert_clean_exit(out: &testcaps::Output, stdout: &str) {
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, stdout);
    assert_eq!(out.stderr, "");
}

#[test]
fn real_mode_hello() {
    require!(Cap::Kvm);
    let out = run_guest("hello-real.bin", &[], b"");
    assert_clean_exit(&out, "Hello from real mode!\n");
    // Forcing the format gives the same.
    let forced = run_guest("hello-real.bin", &["--format", "real"], b"");
    assert_eq!(
        (forced.code, forced.stdout.as_str()),
        (Some(0), "Hello from real mode!\n")
    );
}

#[test]
fn long_mode_hello_halts_with_0() {
    require!(Cap::Kvm);
    let out = run_guest("hello-long.bin", &[], b"");
    assert_clean_exit(&out, "Hello from long mode!\n");
}

#[test]
fn long_mode_at_another_load_address() {
    require!(Cap::Kvm);
    // hello-long uses only RIP-relative addresses, so it runs wherever it is loaded.
    let out = run_guest(
        "hello-long.bin",
        &["--format", "long", "--load", "0x300000"],
        b"",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "Hello from long mode!\n");
}

#[test]
fn elf_guest_computes_primes() {
    require!(Cap::Kvm);
    let out = run_guest("primes.elf", &[], b"");
    assert_clean_exit(&out, "first primes: 2 3 5 7 11 13 17 19 23 29\n");
}

#[test]
fn pvh_guest_gets_its_start_info() {
    require!(Cap::Kvm);
    let out = run_guest("pvh.elf", &["--mem", "32M"], b"");
    assert_clean_exit(
        &out,
        "pvh: 32-bit protected mode, start info magic ok, memory map: 32 MiB of RAM\n",
    );
}

#[test]
fn i8042_reset_ends_the_run_with_0() {
    require!(Cap::Kvm);
    let out = run_guest("reset.bin", &["--json"], b"");
    assert_eq!(out.code, Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON on stdout");
    assert_eq!(v["reason"], "reset");
}

#[test]
fn real_mode_triple_fault_is_a_crash() {
    require!(Cap::Kvm);
    let out = run_guest("fault-real.bin", &[], b"");
    assert_eq!(out.code, Some(123), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    // Hardware KVM reports a shutdown; this machine's PVM an internal error.
    assert!(
        out.stderr.starts_with("tinyvmm: guest crashed: ")
            && (out.stderr.contains("KVM_EXIT_SHUTDOWN")
                || out.stderr.contains("KVM_EXIT_INTERNAL_ERROR"))
            && out.stderr.contains(" at RIP 0x"),
        "{out:?}"
    );
}

#[test]
fn status_port_gives_the_byte_as_exit_status() {
    require!(Cap::Kvm);
    for status in [0u8, 1, 42, 255] {
        let out = run_guest("status.bin", &[], &[status]);
        assert_eq!(out.code, Some(i32::from(status)), "{out:?}");
        assert_eq!(out.stdout, "");
        assert_eq!(out.stderr, "");
    }
}

#[test]
fn stdin_reaches_the_guest() {
    require!(Cap::Kvm);
    let out = run_guest("echo.bin", &[], b"hello, guest\nnot echoed\n");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "hello, guest\n");
    // Bytes pass unchanged both ways, including ones a terminal would interpret.
    let raw = b"\x00\x01\xff\r\x1b[0m\n";
    let out = run_guest("echo.bin", &[], raw);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout.as_bytes(),
        String::from_utf8_lossy(raw).as_bytes()
    );
}

#[test]
fn spinner_is_stopped_by_the_timeout() {
    require!(Cap::Kvm);
    let out = run_guest("spin.bin", &["--timeout", "1"], b"");
    assert_eq!(out.code, Some(124), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "tinyvmm: timeout: the guest was still running after 1 s\n"
    );
}

#[test]
fn triple_fault_is_a_crash() {
    require!(Cap::Kvm);
    let out = run_guest("fault.bin", &[], b"");
    assert_eq!(out.code, Some(123), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr.starts_with("tinyvmm: guest crashed: ")
            && out.stderr.contains("triple fault")
            && out.stderr.contains(" at RIP 0x"),
        "{out:?}"
    );
}

#[test]
fn chaos_guest_ends_normally() {
    require!(Cap::Kvm);
    let out = run_guest("chaos.bin", &[], b"");
    assert_clean_exit(
        &out,
        "chaos: unknown ports and unbacked memory read all-ones\n",
    );
}

#[test]
fn built_in_guest_reports_what_it_sees() {
    require!(Cap::Kvm);
    let out = tinyvmm(&["run"], b"");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "tinyvmm: hello from inside the VM\n\
         cpu mode: 64-bit long mode (EFER.LMA=1)\n\
         memory: 64 MiB of RAM in the memory map\n\
         hypervisor: KVMKVMKVM\n"
    );
    let out = tinyvmm(&["run", "--mem", "12M"], b"");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("\nmemory: 12 MiB of RAM"), "{out:?}");
}

#[test]
fn report_has_all_its_fields() {
    require!(Cap::Kvm);
    let file = tmp("report.json");
    let f = file.to_str().expect("utf-8 path");
    let out = run_guest("status.bin", &["--report", f], b"*");
    assert_eq!(out.code, Some(42), "{out:?}");
    let text = std::fs::read_to_string(&file).expect("report written");
    let _ = std::fs::remove_file(&file);
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("report is JSON");
    assert_eq!(v["reason"], "status-port");
    assert_eq!(v["status"], 42);
    assert_eq!(v["format"], "long");
    assert_eq!(v["mem"], 64u64 << 20);
    assert_eq!(v["exits"]["io_out"], 1, "{v}");
    assert!(v["exits"]["io_in"].as_u64().unwrap_or(0) >= 2, "{v}");
    for kind in [
        "io_in",
        "io_out",
        "mmio_read",
        "mmio_write",
        "hlt",
        "intr",
        "shutdown",
        "system_event",
        "internal_error",
        "fail_entry",
        "other",
    ] {
        assert!(v["exits"][kind].is_u64(), "exits.{kind} missing: {v}");
    }
    for phase in [
        "create_us",
        "load_us",
        "run_us",
        "teardown_us",
        "exits_total",
    ] {
        assert!(v[phase].is_u64(), "{phase} missing: {v}");
    }

    // --json: the same object on stdout after the guest's output; a crash names itself.
    let out = run_guest("fault.bin", &["--json"], b"");
    assert_eq!(out.code, Some(123), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON on stdout");
    assert_eq!(v["reason"], "crash");
    assert_eq!(v["status"], 123);
    assert!(
        v["crash"].as_str().unwrap_or("").contains("triple fault"),
        "{v}"
    );
    assert!(v["rip"].is_u64(), "{v}");
}

#[test]
fn verbose_logs_exits_on_stderr() {
    require!(Cap::Kvm);
    let out = run_guest("status.bin", &["-v"], b"\x07");
    assert_eq!(out.code, Some(7), "{out:?}");
    assert!(
        out.stderr
            .contains("tinyvmm: exit: io out port 0xf4 data [07]"),
        "{out:?}"
    );
}

/// Each case must exit 125 with exactly one line on stderr containing `needle`.
fn refused(args: &[&str], needle: &str) {
    let out = tinyvmm(args, b"");
    assert_eq!(out.code, Some(125), "{args:?}: {out:?}");
    assert_eq!(out.stdout, "", "{args:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
    assert!(out.stderr.starts_with("tinyvmm: "), "{args:?}: {out:?}");
    assert!(out.stderr.contains(needle), "{args:?}: {out:?}");
}

#[test]
fn bad_images_and_options_give_125() {
    // None of these reach KVM.
    let dir = tmp("bad");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = |n: &str| dir.join(n).to_str().expect("utf-8").to_string();
    let elf = std::fs::read(tinyvmm::guest_path("primes.elf")).expect("primes.elf is built");
    std::fs::write(path("empty"), b"").expect("write");
    std::fs::write(path("truncated.elf"), &elf[..100]).expect("write");
    let mut arm = elf.clone();
    arm[18] = 183; // EM_AARCH64
    std::fs::write(path("arm.elf"), &arm).expect("write");
    std::fs::write(path("big.bin"), vec![0xf4u8; 2 << 20]).expect("write");

    refused(&["run", &path("missing")], "cannot read image");
    refused(&["run", &path("empty")], "the image is empty");
    refused(&["run", &path("truncated.elf")], "truncated ELF");
    refused(&["run", &path("arm.elf")], "not x86-64");
    refused(
        &["run", "--mem", "1M", &tinyvmm::guest_path("primes.elf")],
        "outside guest memory",
    );
    refused(&["run", "--mem", "2M", &path("big.bin")], "do not fit");
    refused(&["run", "--mem", "0", &path("big.bin")], "--mem 0");
    refused(&["run", "--mem", "1T", &path("big.bin")], "at most 3G");
    refused(&["run", "--mem", "lots"], "invalid size");
    refused(&["run", "--format", "zip"], "invalid value 'zip'");
    refused(&["run", "--timeout", "0"], "invalid timeout");
    refused(
        &[
            "run",
            "--load",
            "0x100000",
            &tinyvmm::guest_path("primes.elf"),
        ],
        "--load applies to flat images",
    );
    refused(
        &["run", "--format", "pvh", &tinyvmm::guest_path("primes.elf")],
        "no PVH entry note",
    );
    refused(&["run", dir.to_str().unwrap()], "cannot read image");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_dev_kvm_gives_125_with_a_hint() {
    require!(Cap::Root);
    // A private mount namespace (made by util-linux unshare, not by this process) with an empty
    // /dev: tinyvmm finds no /dev/kvm.
    let script = format!("mount -t tmpfs none /dev && exec {BIN} run");
    let out = testcaps::run(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null()),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(125), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("tinyvmm: open(/dev/kvm) failed: No such file or directory ("),
        "{out:?}"
    );
    assert!(!out.stderr.contains("(os error"), "{out:?}");
}

#[test]
fn inaccessible_dev_kvm_gives_125_with_a_hint() {
    require!(Cap::Root, Cap::Kvm);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata("/dev/kvm")
            .expect("stat /dev/kvm")
            .permissions(),
    );
    // Where everyone may use /dev/kvm there is no refusal to see.
    testcaps::require_that!(
        "kvmprivate",
        if mode & 0o006 == 0 {
            Ok(())
        } else {
            Err(format!("/dev/kvm is world-accessible (mode {mode:o})"))
        }
    );
    // A copy the unprivileged user can reach (the checkout may sit under a 0700 home).
    let dir = std::env::temp_dir().join(testcaps::unique_name("tinyvmm-nobody"));
    std::fs::create_dir_all(&dir).expect("mkdir in the temp dir");
    let copy = dir.join("tinyvmm");
    testcaps::copy_executable(BIN, &copy);
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    // Another test thread forking while the copy was open for writing makes exec fail with
    // ETXTBSY until that child has exec'd; try again briefly.
    let mut attempts = 0;
    let out = loop {
        let out = testcaps::run(
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&copy)
                .arg("run")
                .stdin(Stdio::null()),
            Duration::from_secs(30),
        );
        attempts += 1;
        if !out.stderr.contains("Text file busy") || attempts == 50 {
            break out;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    assert!(out.stderr.contains("kvm group"), "{out:?}");
}

#[test]
fn guest_output_into_a_full_disk_is_a_write_error() {
    require!(Cap::Kvm);
    // The embedded guest prints what it sees; none of it can be written.
    testcaps::cli::assert_write_error(BIN, &["run"], testcaps::StdoutTo::Full, "tinyvmm", 125);
    testcaps::cli::assert_write_error(
        BIN,
        &["run", "--json"],
        testcaps::StdoutTo::Full,
        "tinyvmm",
        125,
    );
}

/// `tinyvmm guests DIR` writes every example guest, byte for byte the build's, prints each path,
/// overwrites on a second run; the README's example then runs as written (#24). A directory
/// it cannot create is one line and 125.
#[test]
fn guests_writes_the_examples_that_the_readme_runs() {
    let dir =
        testcaps::TempDir::new_in(testcaps::target_dir().join("tmp"), "guests").expect("temp dir");
    let g = dir.path().join("g");
    let g_str = g.to_str().expect("utf-8 path");
    let expected: String = tinyvmm::GUESTS
        .iter()
        .map(|(name, _)| format!("{}\n", g.join(name).display()))
        .collect();
    for _ in 0..2 {
        let out = tinyvmm(&["guests", g_str], b"");
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(0), expected.as_str(), ""),
            "{out:?}"
        );
    }
    assert!(tinyvmm::GUESTS.len() >= 15);
    for (name, _) in tinyvmm::GUESTS {
        assert_eq!(
            std::fs::read(g.join(name)).expect("written guest"),
            std::fs::read(tinyvmm::guest_path(name)).expect("built guest"),
            "{name}"
        );
    }
    let bad = tinyvmm(&["guests", "/proc/self/no/such"], b"");
    assert_eq!(bad.code, Some(125), "{bad:?}");
    assert_eq!(
        bad.stderr,
        "tinyvmm: cannot write /proc/self/no/such: No such file or directory (choose a directory you can write)\n"
    );
    require!(Cap::Kvm);
    let primes = g.join("primes.elf");
    let out = tinyvmm(
        &[
            "run",
            "--report",
            "/dev/null",
            primes.to_str().expect("utf-8"),
        ],
        b"",
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "first primes: 2 3 5 7 11 13 17 19 23 29\n"),
        "{out:?}"
    );
    let status = g.join("status.bin");
    let out = tinyvmm(&["run", status.to_str().expect("utf-8")], b"\x07");
    assert_eq!(out.code, Some(7), "{out:?}");
}
