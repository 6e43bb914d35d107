//! `run --kernel`: the 64-bit boot protocol (bzImage) and the PVH entry (ELF), checked with the
//! synthetic kernels in tinyvmm/guests that print what a kernel reads at boot; Debian's kernel
//! through the PVH entry up to its early console lines; bad kernels refused with 125.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testcaps::{require, Cap};

const BIN: &str = env!("CARGO_BIN_EXE_tinyvmm");

fn tmp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = testcaps::target_dir().join("tmp");
    std::fs::create_dir_all(&dir).expect("create target/tmp");
    let path = dir.join(testcaps::unique_name(name));
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

fn tinyvmm(args: &[&str]) -> testcaps::Output {
    testcaps::run(
        Command::new(BIN).args(args).stdin(Stdio::null()),
        testcaps::HANG_GUARD,
    )
}

/// Runs the synthetic kernel `kernel` with `mem` of memory, `root=/dev/vda quiet` appended and a
/// 17-byte initrd starting "TVMMINIT" (removed afterwards), plus `extra` options.
fn boot_with_initrd(kernel: &str, mem: &str, extra: &[&str]) -> testcaps::Output {
    let initrd = tmp_file("initrd", b"TVMMINIT and more");
    let kernel = tinyvmm::guest_path(kernel);
    let mut args = vec![
        "run",
        "--kernel",
        &kernel,
        "--initrd",
        initrd.to_str().expect("utf-8"),
        "--append",
        "root=/dev/vda quiet",
        "--mem",
        mem,
    ];
    args.extend(extra);
    let out = tinyvmm(&args);
    let _ = std::fs::remove_file(&initrd);
    out
}

/// What both synthetic kernels print after their first line, for `mem` bytes and a 17-byte
/// initrd starting "TVMMINIT"; the bzImage one also counts the MP table's processors.
fn boot_lines(mem: u64, processors: Option<u8>) -> String {
    format!(
        "cmdline: console=ttyS0 reboot=k,panic_warm panic=-1 root=/dev/vda quiet\n\
         e820: 0x0000000000000000 size 0x000000000009fc00 type 1\n\
         e820: 0x000000000009fc00 size 0x0000000000060400 type 2\n\
         e820: 0x0000000000100000 size 0x{:016x} type 1\n\
         {}\
         initrd: size 0x0000000000000011, page-aligned: yes, starts with \"TVMMINIT\"\n",
        mem - 0x10_0000,
        processors
            .map(|n| format!(
                "mptable: processors: {n}\n\
                 acpi: MADT processors: {n}, FADT: yes\n\
                 cmos: century 20, updating: no\n\
                 pci: 00:00.0 0x000000000d578086, 00:01.0 0x00000000ffffffff\n"
            ))
            .unwrap_or_default()
    )
}

#[test]
fn bzimage_gets_boot_params_cmdline_e820_and_initrd() {
    require!(Cap::Kvm);
    let out = boot_with_initrd("testkernel-bz.bin", "64M", &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "boot: 64-bit boot protocol, boot_params at 0x0000000000007000 with HdrS\n{}",
            boot_lines(64 << 20, Some(1))
        )
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn pvh_kernel_gets_start_info_cmdline_memmap_and_module() {
    require!(Cap::Kvm);
    let out = boot_with_initrd("testkernel-pvh.elf", "48M", &["--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let (console, json) = out
        .stdout
        .rsplit_once("\"\n")
        .map(|(c, j)| (format!("{c}\"\n"), j.to_string()))
        .expect("console then JSON");
    assert_eq!(
        console,
        format!(
            "boot: PVH, hvm_start_info at 0x0000000000006000 with its magic\n{}",
            boot_lines(48 << 20, None)
        )
    );
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON report");
    assert_eq!(v["format"], "kernel-pvh");
    assert_eq!(v["reason"], "status-port");
    // By default every transmitted byte stopped the vCPU: at least one port-write exit each.
    let io_out = v["exits"]["io_out"].as_u64().expect("io_out");
    assert!(
        io_out >= console.len() as u64,
        "{io_out} port-write exits for {} console bytes: {v}",
        console.len()
    );
}

/// With --console-ring the same console comes byte for byte through KVM's coalesced-I/O ring:
/// the port writes that exited are the few besides the transmitter's (the status port, the CMOS
/// and PCI probes) and the ring's overflow, far fewer than the bytes. (The nested lane skips
/// this one: the ring is what crashed its level-1 kernel.)
#[test]
fn console_ring_queues_the_kernels_writes_without_an_exit_per_byte() {
    require!(Cap::Kvm);
    let out = boot_with_initrd("testkernel-pvh.elf", "48M", &["--json", "--console-ring"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let (console, json) = out.stdout.rsplit_once("\"\n").expect("console then JSON");
    assert_eq!(
        format!("{console}\"\n"),
        format!(
            "boot: PVH, hvm_start_info at 0x0000000000006000 with its magic\n{}",
            boot_lines(48 << 20, None)
        )
    );
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON report");
    let io_out = v["exits"]["io_out"].as_u64().expect("io_out");
    assert!(
        io_out * 10 < console.len() as u64,
        "{io_out} port-write exits for {} console bytes: {v}",
        console.len()
    );
}

/// Extra vCPUs wait in KVM for the kernel's INIT/SIPI; the MP table lists them all, and when
/// the bootstrap vCPU ends the run the waiting ones are kicked out and the run ends.
#[test]
fn cpus_are_in_the_mp_table_and_the_run_ends() {
    require!(Cap::Kvm);
    for cpus in ["2", "8", "32"] {
        let out = tinyvmm(&[
            "run",
            "--cpus",
            cpus,
            "--kernel",
            &tinyvmm::guest_path("testkernel-bz.bin"),
            "--report",
            "/dev/null",
        ]);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(
            out.stdout
                .contains(&format!("\nmptable: processors: {cpus}\n")),
            "{out:?}"
        );
        assert!(
            out.stdout
                .contains(&format!("\nacpi: MADT processors: {cpus}, FADT: yes\n")),
            "{out:?}"
        );
    }
    // With a timeout as well: the watchdog then also watches the clock.
    let out = tinyvmm(&[
        "run",
        "--cpus",
        "3",
        "--timeout",
        "20",
        "--kernel",
        &tinyvmm::guest_path("testkernel-bz.bin"),
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
}

/// The synthetic kernel goes down as its command line's `end=X` says, the way Linux does: S5 in
/// the FADT's sleep control register (`a`), or the BIOS reset flag at 0x472 written (warm for a
/// panic, cold for a reboot) and then the i8042 reset (`p`, `r`), a triple fault (`t`) or the
/// FADT's reset register (`R`); a triple fault without the flag (`T`) is a crash. The console
/// lines Linux prints on the way (`p`, `r`, `t`) play no part, and with ACPI there are none.
#[test]
fn kernel_poweroff_reboot_and_panic_have_their_own_statuses() {
    require!(Cap::Kvm);
    for (end, status, reason) in [
        ("p", 121, "panic"),
        ("r", 122, "reboot"),
        ("t", 122, "reboot"),
        ("T", 123, "crash"),
        ("a", 0, "poweroff"),
        ("R", 122, "reboot"),
    ] {
        let report = tmp_file("report.json", b"");
        let out = tinyvmm(&[
            "run",
            "--kernel",
            &tinyvmm::guest_path("testkernel-bz.bin"),
            "--append",
            &format!("end={end}"),
            "--report",
            report.to_str().expect("utf-8"),
        ]);
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        let _ = std::fs::remove_file(&report);
        assert_eq!(out.code, Some(status), "end={end}: {out:?}");
        if end == "T" {
            assert!(
                out.stderr
                    .starts_with("tinyvmm: guest crashed: triple fault (KVM_EXIT_SHUTDOWN) at RIP"),
                "{out:?}"
            );
        } else {
            assert_eq!(out.stderr, "", "end={end}: {out:?}");
        }
        if end == "a" || end == "R" || end == "T" {
            assert!(!out.stdout.contains("reboot:"), "end={end}: {out:?}");
            assert!(!out.stdout.contains("Kernel panic"), "end={end}: {out:?}");
        }
        let v: serde_json::Value = serde_json::from_str(&text).expect("report");
        assert_eq!(v["reason"], reason, "end={end}: {v}");
    }
}

#[test]
fn bad_kernels_and_options_give_125() {
    let garbage = tmp_file("kernel", b"this is no kernel at all");
    let empty = tmp_file("initrd", b"");
    // Within --mem 2M as a file, but not beside the kernel.
    let big = tmp_file("initrd", &vec![0u8; 3 << 19]);
    let g = garbage.to_str().expect("utf-8").to_string();
    let e = empty.to_str().expect("utf-8").to_string();
    let b = big.to_str().expect("utf-8").to_string();
    let bz = tinyvmm::guest_path("testkernel-bz.bin");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", "--kernel", &g],
            "neither an ELF vmlinux nor a bzImage",
        ),
        (
            vec!["run", "--kernel", &bz, "--initrd", &e],
            "the initrd is empty",
        ),
        (
            vec!["run", "--kernel", &bz, "--initrd", &b, "--mem", "2M"],
            "does not fit",
        ),
        (vec!["run", "--initrd", &e], "go with --kernel"),
        (vec!["run", "--cpus", "2"], "--cpus goes with --kernel"),
        (
            vec!["run", "--console-ring"],
            "--console-ring goes with --kernel",
        ),
        (
            vec!["run", "--kernel", &bz, "--cpus", "33"],
            "invalid value '33'",
        ),
        (
            vec!["run", "--kernel", &bz, "--cpus", "0"],
            "invalid value '0'",
        ),
        (vec!["run", "--kernel", &bz, "--rootfs", "/"], "go together"),
        (vec!["run", "--kernel", &bz, "--", "true"], "go together"),
        (
            vec![
                "run",
                "--kernel",
                &bz,
                "--rootfs",
                "/nonexistent",
                "--",
                "true",
            ],
            "--rootfs: cannot build the initramfs: /nonexistent: No such file or directory",
        ),
        (vec!["run", "--kernel", &bz, &g], "cannot be used with"),
        (
            vec!["run", "--kernel", "/nonexistent/vmlinuz"],
            "cannot read kernel /nonexistent/vmlinuz: No such file",
        ),
    ];
    for (args, needle) in cases {
        let out = tinyvmm(&args);
        assert_eq!(out.code, Some(125), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("tinyvmm: "), "{args:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {out:?}");
        // strerror's words, never std's " (os error N)".
        assert!(!out.stderr.contains("(os error"), "{args:?}: {out:?}");
    }
    for f in [garbage, empty, big] {
        let _ = std::fs::remove_file(f);
    }
}

/// The one-shot mode hands the kernel a newc initramfs (the synthetic kernel shows its first
/// bytes); that its /init reports the command's status needs a full boot, which this host cannot
/// do (the archive and the script are unit-tested).
#[test]
fn rootfs_becomes_a_cpio_initrd() {
    require!(Cap::Kvm, Cap::Rootfs);
    let root = testcaps::rootfs();
    let out = tinyvmm(&[
        "run",
        "--kernel",
        &tinyvmm::guest_path("testkernel-bz.bin"),
        "--rootfs",
        root.to_str().expect("utf-8"),
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    // The one-shot mode's serial console is the kernel's log, on stderr.
    assert_eq!(out.stdout, "", "{out:?}");
    assert!(
        out.stderr
            .contains(", page-aligned: yes, starts with \"07070100\"\n"),
        "{out:?}"
    );
}

/// Debian's kernel, entered at its PVH note, prints its early console: the version, our command
/// line and the e820 map of --mem. It cannot boot further on this project's PVM host, so the
/// test stops it (by PID) once the map is out.
#[test]
fn debian_kernel_prints_its_early_console_through_pvh() {
    require!(Cap::Kvm, Cap::Kernel);
    let vmlinux = testcaps::kernel_elf();
    let mut child = Command::new(BIN)
        .args(["run", "--mem", "128M", "--timeout", "100", "--kernel"])
        .arg(&vmlinux)
        .args(["--append", "earlyprintk=serial,ttyS0,115200"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tinyvmm");
    let stdout = child.stdout.take().expect("piped stdout");
    // Lines come through a channel, so that the limit holds even when none arrives.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            if tx
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(110);
    let mut seen = Vec::new();
    let last = "BIOS-e820: [mem 0x0000000000100000-0x0000000007ffffff] usable";
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let done = line.contains(last);
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.join("\n");
    assert!(text.contains("] Linux version 6."), "{text}");
    assert!(
        text.contains(
            "] Command line: console=ttyS0 reboot=k,panic_warm panic=-1 earlyprintk=serial,ttyS0,115200"
        ),
        "{text}"
    );
    assert!(
        text.contains("BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable"),
        "{text}"
    );
    assert!(
        text.contains("BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved"),
        "{text}"
    );
    assert!(text.contains(last), "{text}");
}

/// The one-shot initramfs, booted by QEMU in software emulation (this host's KVM cannot boot
/// Linux): /init runs the command on the console and its status reaches port 0xf4, where QEMU's
/// isa-debug-exit turns 42 into (42 << 1) | 1 = 85.
#[test]
fn one_shot_initramfs_reports_the_status_under_qemu() {
    require!(Cap::Kernel, Cap::Rootfs, Cap::Qemu);
    let cpio = tinyvmm::initramfs::build(
        &testcaps::rootfs(),
        &[
            "sh".to_string(),
            "-c".to_string(),
            "echo \"hello from $(uname -s)\"; exit 42".to_string(),
        ],
        256 << 20,
    )
    .expect("initramfs from the rootfs");
    let initrd = tmp_file("oneshot.cpio", &cpio);
    let out = testcaps::run(
        Command::new("qemu-system-x86_64")
            .args(["-M", "pc", "-accel", "tcg", "-cpu", "max", "-m", "256M"])
            .args([
                "-nographic",
                "-no-reboot",
                "-nodefaults",
                "-serial",
                "stdio",
            ])
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=1", "-kernel"])
            .arg(testcaps::kernel_image())
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", "console=ttyS0 reboot=k panic=-1 quiet"])
            .stdin(Stdio::null()),
        Duration::from_secs(120),
    );
    let _ = std::fs::remove_file(&initrd);
    assert_eq!(out.code, Some((42 << 1) | 1), "{out:?}");
    assert!(
        out.stdout.contains("hello from Linux\r\n") || out.stdout.contains("hello from Linux\n"),
        "{out:?}"
    );
}

/// The whole one-shot path in tinyvmm: needs KVM that can boot Linux, which a PVM host (software
/// virtualization, /sys/module/kvm_pvm) cannot.
#[test]
fn one_shot_command_status_becomes_tinyvmms() {
    require!(Cap::HwKvm, Cap::Kernel, Cap::Rootfs);
    let kernel = testcaps::kernel_image();
    let root = testcaps::rootfs();
    // A hang guard only: under nested emulation on a loaded machine a boot takes a minute or more.
    let guard = testcaps::HANG_GUARD.as_secs().to_string();
    let out = tinyvmm(&[
        "run",
        "--mem",
        "256M",
        "--timeout",
        &guard,
        "--kernel",
        kernel.to_str().expect("utf-8"),
        "--append",
        "quiet",
        "--rootfs",
        root.to_str().expect("utf-8"),
        "--",
        "sh",
        "-c",
        "echo one-shot; exit 42",
    ]);
    assert_eq!(out.code, Some(42), "{out:?}");
    // The command's output is on stdout when the rootfs has the virtio console's modules (the
    // lane's linux_one_shot_console), and otherwise on the serial console, which the one-shot
    // mode sends to stderr, after init's note.
    if out.stdout != "one-shot\n" {
        assert_eq!(out.stdout, "", "{out:?}");
        assert!(
            out.stderr.contains("one-shot\r\n") || out.stderr.contains("one-shot\n"),
            "{out:?}"
        );
        assert!(
            out.stderr.contains(tinyvmm::initramfs::NO_CONSOLE),
            "{out:?}"
        );
    }
}

/// A Linux kernel on a PVM host (#24): a note before the run says that it cannot boot to the end
/// here and points at the hardware-KVM lane, and the ending line repeats the hint; on hardware
/// KVM neither appears. The synthetic kernels, which PVM runs, never get the note.
#[test]
fn linux_on_pvm_points_at_the_hardware_kvm_lane() {
    require!(Cap::Kvm, Cap::Kernel);
    let pvm = testcaps::kvm_is_pvm();
    let vmlinux = testcaps::kernel_elf();
    for (kernel, expect) in [
        (testcaps::kernel_image(), "a bzImage printed nothing in 45 s"),
        (
            vmlinux,
            "a vmlinux prints its early console with earlyprintk=serial after 15 to 35 s, then stalls",
        ),
    ] {
        let kernel = kernel.to_str().expect("utf-8 path").to_string();
        let out = tinyvmm(&["run", "--mem", "128M", "--timeout", "1", "--kernel", &kernel]);
        if pvm {
            assert_eq!(out.code, Some(124), "{kernel}: {out:?}");
            assert_eq!(
                out.stderr,
                format!(
                    "tinyvmm: note: {hint} (here {expect})\n\
                     tinyvmm: timeout: the guest was still running after 1 s ({hint})\n",
                    hint = tinyvmm::PVM_HINT
                ),
                "{kernel}"
            );
        } else {
            assert!(!out.stderr.contains("PVM"), "{kernel}: {out:?}");
        }
    }
    let out = boot_with_initrd("testkernel-pvh.elf", "16M", &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stderr.contains("PVM"), "{out:?}");
}
