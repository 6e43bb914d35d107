//! `cargo xtask demo --json` runs a container, a tinyvmm VM, a Linux VM under QEMU and one under
//! tinyvmm (when a guest kernel is there; tinyvmm's inside the nested lane's level 1 on a host
//! whose KVM cannot boot Linux) and a plain process for real and prints one JSON object with
//! every row and field; this checks that object and that nothing is left behind.

use std::path::Path;
use std::process::Command;
use testcaps::{require, Cap};

const ROW_FIELDS: [&str; 16] = [
    "name",
    "label",
    "ran",
    "unavailable",
    "skipped",
    "command",
    "measured_command",
    "inside",
    "start_to_exit_ms",
    "peak_rss_kib",
    "reserved_bytes",
    "reserved",
    "kernel",
    "kernel_detail",
    "isolation",
    "exit_status",
];

fn demo_groups_left() -> Vec<String> {
    testcaps::cgroup_mounts()
        .iter()
        .filter_map(|m| std::fs::read_dir(m).ok())
        .flat_map(|d| d.flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("microtools-demo-"))
        .collect()
}

#[test]
fn demo_json_has_every_row_and_the_container_and_vm_ran() {
    require!(Cap::Root, Cap::Rootfs, Cap::Kvm);
    let bin_dir = testcaps::sibling_bin("cgctl")
        .parent()
        .map(Path::to_path_buf)
        .expect("target/debug");
    for t in [
        "unshare-rs",
        "pivot",
        "tinyvmm",
        "setpriv-rs",
        "netwire",
        "nsenter-rs",
    ] {
        testcaps::sibling_bin(t);
    }
    let out = testcaps::run(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["demo", "--json", "--bin-dir"])
            .arg(&bin_dir)
            .env("MICROTOOLS_ROOTFS", testcaps::rootfs()),
        // The demo is a dozen guest boots (three of Linux under QEMU TCG, three nested under
        // tinyvmm), each bounded by the hang guard inside; on two cores shared with other
        // builds together they may take longer than one guard.
        testcaps::HANG_GUARD * 2,
    );
    // As text: a VM's console output carries terminal control sequences.
    let shown = format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.code,
        testcaps::strip_escapes(&out.stdout),
        testcaps::strip_escapes(&out.stderr)
    );
    assert_eq!(out.code, Some(0), "{shown}");
    assert_eq!(out.stdout.lines().count(), 1, "one JSON object: {shown}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert!(v["verdict"]
        .as_str()
        .is_some_and(|s| s.starts_with("Measured here:")));
    assert!(v["machine"]["kernel"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    // Container to container (bridge, bare veth) and loopback, each with a round trip and a
    // throughput.
    let net = v["network"].as_array().expect("network paths");
    let paths: Vec<&str> = net.iter().filter_map(|p| p["path"].as_str()).collect();
    assert_eq!(
        paths,
        [
            "container-container, veth + bridge",
            "container-container, one veth pair",
            "loopback (one namespace)"
        ],
        "{shown}"
    );
    for p in net {
        for k in ["rtt_ms", "tcp_gbit_s"] {
            assert!(p[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {p}");
        }
    }
    let rows = v["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        ["process", "container", "vm", "linux-vm", "linux-tinyvmm"]
    );
    let linux = &rows[3];
    let linux_ran = linux["ran"] == true;
    let tvmm = &rows[4];
    for r in [linux, tvmm] {
        if r["ran"] != true {
            // Only a missing guest kernel (or QEMU) may keep a Linux VM from running, and it
            // says so.
            assert!(
                r["skipped"]
                    .as_str()
                    .is_some_and(|s| s.contains("guest kernel") || s.contains("qemu")),
                "{r}"
            );
        }
    }
    if !linux_ran {
        assert!(
            !testcaps::kernel_image().is_file(),
            "a kernel is there: {linux}"
        );
    }
    let nested = tvmm["details"]["where"]
        .as_str()
        .is_some_and(|w| w.starts_with("nested"));
    for r in rows
        .iter()
        .filter(|r| r["ran"] == true || r["skipped"].is_null())
    {
        for f in ROW_FIELDS {
            assert!(r.get(f).is_some(), "row {} has no {f}: {r}", r["name"]);
        }
        assert_eq!(r["ran"], true, "{r}");
        assert!(r["unavailable"].is_null(), "{r}");
        assert_eq!(r["exit_status"], 0, "{r}");
        let t = &r["start_to_exit_ms"];
        for k in ["median", "min", "max"] {
            assert!(t[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {r}");
        }
        assert!(t["min"].as_f64() <= t["median"].as_f64());
        assert!(t["median"].as_f64() <= t["max"].as_f64());
        assert!(r["repetitions"].as_u64().is_some_and(|n| n >= 2), "{r}");
        // tinyvmm inside the nested lane runs in another machine, out of GNU time's reach.
        if !(r["name"] == "linux-tinyvmm" && nested) {
            assert!(r["peak_rss_kib"].as_u64().is_some_and(|n| n > 0), "{r}");
        }
        assert!(
            r["isolation"].as_array().is_some_and(|a| !a.is_empty()),
            "{r}"
        );
    }
    let container = &rows[1];
    // The probe is PID 2 under pivot's reaper, with what setpriv-rs --default-container leaves
    // it (issue #26): the engines' eleven capabilities, no_new_privs, a seccomp filter.
    assert_eq!(container["inside"]["pid"], "2", "{container}");
    assert_eq!(
        container["inside"]["CapEff"], "00000000800405fb",
        "{container}"
    );
    assert_eq!(
        container["inside"]["CapBnd"], "00000000800405fb",
        "{container}"
    );
    assert_eq!(container["inside"]["NoNewPrivs"], "1", "{container}");
    assert_eq!(container["inside"]["Seccomp"], "2", "{container}");
    assert!(
        container["isolation"]
            .as_array()
            .is_some_and(|a| a.iter().any(|l| {
                l == "capabilities 11: chown dac_override fowner fsetid kill setgid setuid setpcap \
                net_bind_service sys_chroot setfcap (bounding set the same), no_new_privs, \
                a seccomp filter"
            })),
        "{container}"
    );
    assert_eq!(
        container["inside"]["hostname"], "microtools-demo",
        "{container}"
    );
    assert_eq!(container["inside"]["memory_limit"], "64 MiB", "{container}");
    assert_eq!(container["kernel"], "shared");
    assert_eq!(container["reserved_bytes"], 0);
    let process = &rows[0];
    assert_ne!(process["inside"]["pid"], "1", "{process}");
    assert_eq!(
        process["inside"]["kernel"], container["inside"]["kernel"],
        "a container shares the host's kernel"
    );
    let vm = &rows[2];
    assert_eq!(vm["kernel"], "own");
    assert_eq!(vm["reserved_bytes"], 64u64 << 20);
    assert!(
        vm["output"]
            .as_str()
            .is_some_and(|s| s.contains("hello from inside the VM")),
        "{vm}"
    );
    assert!(
        vm["details"]["report"].is_object(),
        "tinyvmm's --report: {vm}"
    );
    if linux_ran {
        assert_eq!(linux["inside"]["pid"], "1", "{linux}");
        assert_eq!(linux["kernel"], "own");
        assert_ne!(
            linux["inside"]["kernel"], container["inside"]["kernel"],
            "the Linux VM runs its own kernel: {linux}"
        );
    }
    if tvmm["ran"] == true {
        assert_eq!(tvmm["inside"]["pid"], "1", "{tvmm}");
        assert_eq!(tvmm["kernel"], "own");
        assert_eq!(
            tvmm["inside"]["kernel"], linux["inside"]["kernel"],
            "{tvmm}"
        );
        let detail = tvmm["kernel_detail"].as_str().unwrap_or("");
        // On a host whose KVM cannot boot Linux the row says where it ran instead.
        if testcaps::check(Cap::HwKvm).is_err() {
            assert!(nested, "{tvmm}");
            assert!(detail.contains("nested KVM"), "{tvmm}");
            assert!(detail.contains("cannot boot Linux"), "{tvmm}");
        }
    }
    assert!(
        demo_groups_left().is_empty(),
        "left behind: {:?}",
        demo_groups_left()
    );
}
