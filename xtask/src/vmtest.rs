//! `cargo xtask vmtest`: the guest-kernel test lane. Some kernel state cannot be reached on the
//! host (pure cgroup v2 with controllers, an initramfs root for pivot's fallback and switch_root),
//! so the tools run inside a real guest kernel booted from an initramfs this module writes, and the
//! results come back over the serial console.

use crate::cpio::Archive;
use crate::{kernel, rootfs, util};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Guest lines carrying results start with this, so kernel messages interleaved on the serial
/// console never confuse the parser.
pub const MARK: &str = "@@VMTEST";

/// The guest kernel command line (the VMM may add its own defaults).
const CMDLINE: &str = "console=ttyS0 reboot=k panic=-1 quiet";

const USAGE: &str = "usage: cargo xtask vmtest [FILTER] [--vmm qemu|tinyvmm] [--timeout SECS] \
                     [--cases DIR] [--no-build] [-v]";

/// Which virtual machine monitor boots the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vmm {
    /// qemu-system-x86_64 in TCG (software) mode: works everywhere, ~3 s to boot here.
    Qemu,
    /// The workspace's own tinyvmm (needs hardware-backed KVM to boot Linux).
    Tinyvmm,
}

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opts {
    /// Run only cases whose name contains this.
    pub filter: Option<String>,
    /// The VMM.
    pub vmm: Vmm,
    /// Limit for the whole boot.
    pub timeout: Duration,
    /// Echo the raw serial console.
    pub verbose: bool,
    /// Where the cases are (default xtask/vmtest/cases).
    pub cases: Option<PathBuf>,
    /// Use the tool binaries already in target/debug instead of running cargo build.
    pub no_build: bool,
}

/// Parses the command line (see `USAGE`).
pub fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut opts = Opts {
        filter: None,
        vmm: Vmm::Qemu,
        timeout: Duration::from_secs(600),
        verbose: false,
        cases: None,
        no_build: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value ({USAGE})"))
        };
        match key {
            "--vmm" => {
                opts.vmm = match value("--vmm")?.as_str() {
                    "qemu" => Vmm::Qemu,
                    "tinyvmm" => Vmm::Tinyvmm,
                    other => return Err(format!("unknown --vmm '{other}' (qemu or tinyvmm)")),
                }
            }
            "--timeout" => {
                let v = value("--timeout")?;
                let secs: u64 = v.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("--timeout '{v}' is not a positive number of seconds")
                })?;
                opts.timeout = Duration::from_secs(secs);
            }
            "--cases" => opts.cases = Some(PathBuf::from(value("--cases")?)),
            "--no-build" => opts.no_build = true,
            "-v" | "--verbose" => opts.verbose = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            f if f.starts_with('-') => return Err(format!("unknown option '{f}' ({USAGE})")),
            f => {
                if opts.filter.replace(f.to_string()).is_some() {
                    return Err(format!("only one FILTER may be given ({USAGE})"));
                }
            }
        }
    }
    Ok(opts)
}

/// One guest test case: `xtask/vmtest/cases/NAME.sh`.
#[derive(Debug, Clone)]
pub struct Case {
    /// File stem.
    pub name: String,
    /// Script text.
    pub script: String,
    /// Workspace binaries it runs, from its `# needs: a b` line.
    pub needs: Vec<String>,
}

/// The `# needs: TOOL...` header of a case.
pub fn parse_needs(script: &str) -> Vec<String> {
    script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# needs:"))
        .flat_map(|rest| rest.split_whitespace().map(str::to_string))
        .collect()
}

/// The `# needs-test: PKG TEST` headers of a case: integration tests of the workspace (cargo's
/// `--test TEST` of package PKG) that it runs inside the guest, where the kernel state they need
/// is real. The test binary is at `/usr/local/bin/PKG-TEST-tests`.
pub fn parse_needs_tests(script: &str) -> Vec<(String, String)> {
    script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# needs-test:"))
        .filter_map(|rest| {
            let mut w = rest.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect()
}

/// The binary of integration test `test` of package `pkg`, as `cargo test` builds it (built
/// now when it is not yet; after `cargo test --workspace` cargo only finds it fresh).
pub fn test_binary(pkg: &str, test: &str) -> Result<PathBuf, String> {
    let out = util::output(util::cargo().args([
        "test",
        "-p",
        pkg,
        "--test",
        test,
        "--no-run",
        "--message-format=json",
    ]))?;
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["target"]["name"] == test && v["profile"]["test"] == true)
        .and_then(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo test -p {pkg} --test {test} named no test binary"))
}

pub fn vmtest_dir() -> PathBuf {
    util::root().join("xtask/vmtest")
}

/// The cases in `dir`, sorted by name, keeping those whose name contains `filter`.
pub fn load_cases(dir: &Path, filter: Option<&str>) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("sh") {
            continue;
        }
        let Some(name) = p.file_stem().and_then(|s| s.to_str()).map(str::to_string) else {
            continue;
        };
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let script =
            std::fs::read_to_string(&p).map_err(|e| format!("reading {}: {e}", p.display()))?;
        let needs = parse_needs(&script);
        cases.push(Case {
            name,
            script,
            needs,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

/// A dynamic executable at its host path, with the libraries `ldd` names.
pub fn add_with_libraries(a: &mut Archive, exe: &Path) -> Result<(), String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
    a.file(&exe.to_string_lossy(), 0o755, read(exe)?);
    let ldd = util::output(Command::new("ldd").arg(exe)).unwrap_or_default();
    for lib in parse_ldd(&ldd) {
        a.file(&lib, 0o755, read(Path::new(&lib))?);
    }
    Ok(())
}

/// The shared libraries (and the dynamic loader) `ldd` names for a binary.
pub fn parse_ldd(out: &str) -> Vec<String> {
    let mut libs = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            if !libs.iter().any(|l| l == p) {
                libs.push(p.to_string());
            }
        }
    }
    libs
}

/// One case's result as the guest reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// True for PASS.
    pub passed: bool,
    /// Why it failed (exit status and the like).
    pub detail: String,
    /// How long it ran in the guest, as the guest wrote it (`1.2s`).
    pub took: Option<String>,
    /// Its output, sent only on failure.
    pub output: Vec<String>,
}

/// Everything read back from the serial console.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Results in the order the guest ran the cases.
    pub results: Vec<CaseResult>,
    /// The guest's runner printed its final DONE line.
    pub done: bool,
}

/// Parses the serial console. The guest prints, per case, `@@VMTEST PASS NAME` or
/// `@@VMTEST FAIL NAME DETAIL...` followed by its output as `@@VMTEST| LINE` lines, and at the end
/// `@@VMTEST DONE`. Everything else (firmware, kernel messages) is ignored.
pub fn parse_serial(serial: &str) -> Report {
    let mut report = Report::default();
    let out_mark = format!("{MARK}|");
    for raw in serial.lines() {
        let line = raw.trim_end_matches('\r');
        let Some(pos) = line.find(MARK) else {
            continue;
        };
        let line = &line[pos..];
        if let Some(text) = line.strip_prefix(&out_mark) {
            if let Some(last) = report.results.last_mut() {
                last.output
                    .push(text.strip_prefix(' ').unwrap_or(text).to_string());
            }
            continue;
        }
        let mut words = line[MARK.len()..].split_whitespace();
        match words.next() {
            Some(verdict @ ("PASS" | "FAIL")) => {
                let Some(name) = words.next() else { continue };
                let mut rest: Vec<&str> = words.collect();
                let took = match rest.first() {
                    Some(t)
                        if t.strip_suffix('s')
                            .is_some_and(|n| n.parse::<f64>().is_ok()) =>
                    {
                        Some(rest.remove(0).to_string())
                    }
                    _ => None,
                };
                report.results.push(CaseResult {
                    name: name.to_string(),
                    passed: verdict == "PASS",
                    detail: rest.join(" "),
                    took,
                    output: Vec::new(),
                });
            }
            Some("DONE") => report.done = true,
            _ => {}
        }
    }
    report
}

/// The final verdict over the expected case names: prints nothing, returns (lines, passed,
/// failed). A case the guest never reported counts as failed.
pub fn summarize(expected: &[String], report: &Report) -> (Vec<String>, usize, usize) {
    let mut lines = Vec::new();
    let (mut passed, mut failed) = (0, 0);
    for r in &report.results {
        let detail = if r.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.detail)
        };
        let took = r
            .took
            .as_deref()
            .map(|t| format!(" [{t}]"))
            .unwrap_or_default();
        let verdict = if r.passed { "PASS" } else { "FAIL" };
        if r.passed {
            passed += 1;
        } else {
            failed += 1;
        }
        lines.push(format!("{verdict} {}{detail}{took}", r.name));
        // A passing case's output is only sent with -v.
        lines.extend(r.output.iter().map(|o| format!("    | {o}")));
    }
    for name in expected {
        if !report.results.iter().any(|r| &r.name == name) {
            failed += 1;
            lines.push(format!("FAIL {name} (no result: the guest did not run it)"));
        }
    }
    if !report.done {
        lines.push("guest did not finish (no DONE line): timeout, panic or crash".to_string());
    }
    lines.push(format!("{passed} passed, {failed} failed"));
    (lines, passed, failed)
}

/// Runs the lane.
pub fn run(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let opts = parse_args(args)?;
    let case_dir = opts
        .cases
        .clone()
        .unwrap_or_else(|| vmtest_dir().join("cases"));
    let cases = load_cases(&case_dir, opts.filter.as_deref())?;
    if cases.is_empty() {
        return Err(format!(
            "no case in {} matches {:?}",
            case_dir.display(),
            opts.filter
        ));
    }
    let kernel = match std::env::var_os("MICROTOOLS_KERNEL") {
        Some(_) => kernel::image(),
        None => kernel::ensure()?,
    };
    if !kernel.is_file() {
        return Err(format!("no guest kernel at {}", kernel.display()));
    }
    let mut tools: Vec<String> = cases.iter().flat_map(|c| c.needs.clone()).collect();
    tools.sort();
    tools.dedup();
    if !tools.is_empty() && !opts.no_build {
        let mut build = util::cargo();
        build.arg("build");
        for t in &tools {
            build.args(["-p", t]);
        }
        util::run(&mut build)?;
    }
    // Per run, so that concurrent runs (the integration tests) do not overwrite each other's.
    let initrd = util::target_dir().join(format!("vmtest/initramfs-{}.cpio", std::process::id()));
    write_initramfs(&initrd, &cases, &tools)?;
    eprintln!(
        "xtask vmtest: booting {} with {} case(s) under {:?}",
        kernel.display(),
        cases.len(),
        opts.vmm
    );
    let started = Instant::now();
    let booted = boot(&opts, &kernel, &initrd);
    let _ = std::fs::remove_file(&initrd);
    let (serial, finished) = booted?;
    let report = parse_serial(&serial);
    let expected: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    let (lines, _, failed) = summarize(&expected, &report);
    if !report.done || !finished {
        eprintln!("xtask vmtest: last serial lines:");
        let tail: Vec<&str> = serial.lines().collect();
        for l in &tail[tail.len().saturating_sub(30)..] {
            eprintln!("    {}", l.trim_end_matches('\r'));
        }
    }
    for l in &lines {
        println!("{l}");
    }
    eprintln!(
        "xtask vmtest: guest ran for {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if failed > 0 || !report.done {
        return Err("guest tests failed".to_string());
    }
    Ok(())
}

/// Writes the initramfs: the busybox rootfs, the tools and their libraries, the runner as /init,
/// and the cases.
fn write_initramfs(path: &Path, cases: &[Case], tools: &[String]) -> Result<(), String> {
    let rootfs = rootfs::default_dir();
    rootfs::ensure(&rootfs)?;
    let bin_dir = util::target_dir().join("debug");
    let bins: Vec<PathBuf> = tools.iter().map(|t| bin_dir.join(t)).collect();
    let a = build_initramfs(cases, &bins, &rootfs)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    std::fs::write(path, a.to_bytes()).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// The guest's initramfs: `/dev/console`, the runner as `/init`, `/vmtest/lib.sh`, the cases in
/// `/vmtest/cases/`, each binary at `/usr/local/bin/NAME` with the libraries `ldd` names (at their
/// host paths), the integration tests the cases name (`# needs-test:`) with each binary also at
/// the `target/debug` path the tests were built to run, and the busybox rootfs. The first entry
/// for a path wins.
pub fn build_initramfs(cases: &[Case], bins: &[PathBuf], rootfs: &Path) -> Result<Archive, String> {
    let mut a = Archive::new();
    let vm = vmtest_dir();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
    a.chardev("/dev/console", 0o600, 5, 1);
    a.file("/init", 0o755, read(&vm.join("init.sh"))?);
    a.file("/vmtest/lib.sh", 0o644, read(&vm.join("lib.sh"))?);
    for c in cases {
        a.file(
            &format!("/vmtest/cases/{}.sh", c.name),
            0o755,
            c.script.as_bytes().to_vec(),
        );
    }
    let tests: Vec<(String, String)> = cases
        .iter()
        .flat_map(|c| parse_needs_tests(&c.script))
        .collect();
    let mut installed = Vec::new();
    for (pkg, test) in &tests {
        installed.push((format!("{pkg}-{test}-tests"), test_binary(pkg, test)?));
    }
    for bin in bins {
        let name = bin
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{} has no file name", bin.display()))?;
        installed.push((name.to_string(), bin.clone()));
        if !tests.is_empty() {
            // Where the tests look for it (cargo's CARGO_BIN_EXE_NAME).
            let at = util::target_dir().join("debug").join(name);
            a.symlink(&at.to_string_lossy(), &format!("/usr/local/bin/{name}"));
        }
    }
    for (name, bin) in &installed {
        a.file(&format!("/usr/local/bin/{name}"), 0o755, stripped(bin)?);
        let ldd = util::output(Command::new("ldd").arg(bin)).unwrap_or_default();
        for lib in parse_ldd(&ldd) {
            a.file(&lib, 0o755, read(Path::new(&lib))?);
        }
    }
    add_tree(&mut a, rootfs, "").map_err(|e| format!("adding {}: {e}", rootfs.display()))?;
    Ok(a)
}

/// The binary without debug info (it would only cost guest memory), or as is when `strip` is
/// missing.
pub fn stripped(bin: &Path) -> Result<Vec<u8>, String> {
    // Unique per call: the hardware-KVM lane builds its level-1 images in parallel threads.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = std::env::temp_dir().join(format!(
        "xtask-vmtest-{}-{call}-{}",
        std::process::id(),
        bin.file_name().and_then(|n| n.to_str()).unwrap_or("bin")
    ));
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&tmp)
        .arg(bin)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let data = if ok {
        std::fs::read(&tmp)
    } else {
        std::fs::read(bin)
    };
    let _ = std::fs::remove_file(&tmp);
    data.map_err(|e| format!("reading {}: {e} (did it build?)", bin.display()))
}

pub fn add_tree(a: &mut Archive, dir: &Path, prefix: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".microtools") {
            continue;
        }
        let path = format!("{prefix}/{name}");
        let meta = std::fs::symlink_metadata(e.path())?;
        let perm = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(e.path())?;
            a.symlink(&path, &target.to_string_lossy());
        } else if meta.is_dir() {
            a.dir(&path, perm);
            add_tree(a, &e.path(), &path)?;
        } else if meta.is_file() {
            a.file(&path, perm, std::fs::read(e.path())?);
        }
    }
    Ok(())
}

/// The VMM's command line.
pub fn vmm_command(vmm: Vmm, kernel: &Path, initrd: &Path, verbose: bool) -> Command {
    let cmdline = if verbose {
        format!("{CMDLINE} vmtest.verbose")
    } else {
        CMDLINE.to_string()
    };
    match vmm {
        Vmm::Qemu => qemu_tcg(
            Path::new("qemu-system-x86_64"),
            kernel,
            initrd,
            512,
            &cmdline,
        ),
        Vmm::Tinyvmm => {
            let mut c = Command::new(util::target_dir().join("debug/tinyvmm"));
            c.arg("run")
                .arg("--kernel")
                .arg(kernel)
                .arg("--initrd")
                .arg(initrd)
                .args(["--mem", "512M", "--append"])
                .arg(cmdline.trim_start_matches("console=ttyS0 reboot=k panic=-1 "));
            c
        }
    }
}

/// Boots the guest and collects its serial console until it stops or the limit passes (then the
/// VMM is killed by PID). Returns the console text and whether the VMM exited on its own.
fn boot(opts: &Opts, kernel: &Path, initrd: &Path) -> Result<(String, bool), String> {
    if opts.vmm == Vmm::Tinyvmm {
        if !opts.no_build {
            util::run(util::cargo().args(["build", "-p", "tinyvmm"]))?;
        }
        let bin = util::target_dir().join("debug/tinyvmm");
        let help = util::output(Command::new(&bin).args(["run", "--help"]))?;
        if !help.contains("--kernel") || !help.contains("--initrd") {
            return Err(format!(
                "{} cannot boot Linux yet (its `run` has no --kernel/--initrd): use --vmm qemu",
                bin.display()
            ));
        }
    }
    let mut cmd = vmm_command(opts.vmm, kernel, initrd, opts.verbose);
    let verbose = opts.verbose;
    collect(&mut cmd, opts.timeout, &mut |line| {
        if verbose {
            eprint!("    serial: {line}");
        } else if line.contains(MARK) && !line.contains(&format!("{MARK}|")) {
            eprint!("    {}", line.trim_start_matches(|c| c != '@'));
        }
    })
}

/// Runs a VMM (stdin closed) and collects its serial console (stdout) until it exits or `limit`
/// passes, when it is killed by PID; `on_line` sees each line as it comes. Returns the console
/// text and whether the VMM exited on its own. The lanes share it.
pub fn collect(
    cmd: &mut Command,
    limit: Duration,
    on_line: &mut dyn FnMut(&str),
) -> Result<(String, bool), String> {
    collect_watched(cmd, limit, None, on_line)
}

/// [`collect`], and the VMM is also killed when its console stays silent for `idle`: a guest
/// that prints a heartbeat (the hardware-KVM lane's level 1) is stuck when it stops.
pub fn collect_watched(
    cmd: &mut Command,
    limit: Duration,
    idle: Option<Duration>,
    on_line: &mut dyn FnMut(&str),
) -> Result<(String, bool), String> {
    let desc = util::describe(cmd);
    eprintln!("xtask: $ {desc}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {desc}: {e}"))?;
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut s);
        s
    });
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        while let Ok(n) = r.read_until(b'\n', &mut buf) {
            if n == 0 || tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                break;
            }
            buf.clear();
        }
    });
    let deadline = Instant::now() + limit;
    let mut serial = String::new();
    let mut finished = true;
    let mut heard = Instant::now();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let silent = idle.filter(|&i| heard.elapsed() >= i);
        if left.is_zero() || silent.is_some() {
            let why = match silent {
                Some(i) => format!("its console was silent for {i:?}"),
                None => format!("the guest ran longer than {limit:?}"),
            };
            eprintln!("xtask: {why}; killing the VMM (pid {})", child.id());
            let _ = child.kill();
            finished = false;
            break;
        }
        match rx.recv_timeout(left.min(Duration::from_millis(500))) {
            Ok(line) => {
                heard = Instant::now();
                on_line(&line);
                serial.push_str(&line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {desc}: {e}"))?;
    let err = err_reader.join().unwrap_or_default();
    if finished && !status.success() {
        eprintln!("xtask: {desc} exited with {status}: {}", err.trim());
    } else if !finished && !err.trim().is_empty() {
        eprintln!("xtask: the VMM's stderr: {}", err.trim());
    }
    Ok((serial, finished))
}

/// QEMU with the CPU emulated in software (KVM here cannot boot Linux; `-M microvm` stalled in
/// TSC calibration under TCG, `-M pc` works), booting `kernel` with `initrd` and `append`, the
/// serial line on stdio, no reboot: the one command line the demo, the bench and the guest-kernel
/// lane use.
pub fn qemu_tcg(qemu: &Path, kernel: &Path, initrd: &Path, mem_mib: u64, append: &str) -> Command {
    let mut c = Command::new(qemu);
    c.args(["-accel", "tcg", "-M", "pc", "-cpu", "max", "-m"])
        .arg(mem_mib.to_string())
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(append)
        .args([
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
        ]);
    util::die_with_parent(&mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn args() {
        let o = parse_args(&s(&["cgctl", "--vmm", "qemu", "--timeout=30"])).unwrap();
        assert_eq!(o.filter.as_deref(), Some("cgctl"));
        assert_eq!(o.vmm, Vmm::Qemu);
        assert_eq!(o.timeout, Duration::from_secs(30));
        assert_eq!(
            parse_args(&s(&["--vmm=tinyvmm"])).unwrap().vmm,
            Vmm::Tinyvmm
        );
        assert!(parse_args(&s(&["--vmm", "kvmtool"])).is_err());
        assert!(parse_args(&s(&["--vmm"])).is_err());
        assert!(parse_args(&s(&["--timeout", "0"])).is_err());
        assert!(parse_args(&s(&["a", "b"])).is_err());
        assert!(parse_args(&s(&["--bogus"])).is_err());
        let o = parse_args(&s(&["--cases", "/x", "--no-build", "-v"])).unwrap();
        assert_eq!(o.cases, Some(PathBuf::from("/x")));
        assert!(o.no_build && o.verbose && o.filter.is_none());
    }

    #[test]
    fn needs_and_ldd() {
        assert_eq!(
            parse_needs("#!/bin/sh\n# needs: cgctl pivot\necho\n"),
            ["cgctl", "pivot"]
        );
        assert!(parse_needs("#!/bin/sh\necho\n").is_empty());
        let ldd = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n\
                   \tlibmissing.so => not found\n";
        assert_eq!(
            parse_ldd(ldd),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
    }

    /// The archive unpacks (cpio -t) to the layout /init and the cases expect.
    #[test]
    fn initramfs_layout() {
        let root = std::env::temp_dir().join(format!("xtask-vmtest-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/busybox"), b"not really busybox").unwrap();
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
        std::fs::write(root.join(".microtools-rootfs"), b"stamp").unwrap();
        let case = Case {
            name: "one".to_string(),
            script: "# needs: true\nexit 0\n".to_string(),
            needs: vec!["true".to_string()],
        };
        // A dynamically linked host binary stands in for a tool.
        let a = build_initramfs(&[case], &[PathBuf::from("/bin/true")], &root);
        let _ = std::fs::remove_dir_all(&root);
        let bytes = a.unwrap().to_bytes();
        // cpio reads the archive from a file, so that a bounded run needs no writer thread.
        struct Removed(PathBuf);
        impl Drop for Removed {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let archive =
            Removed(std::env::temp_dir().join(testcaps::unique_name("xtask-vmtest-cpio")));
        std::fs::write(&archive.0, &bytes).unwrap();
        let list = |args: &[&str]| {
            let stdin = std::fs::File::open(&archive.0).unwrap();
            let out = testcaps::run(
                Command::new("cpio").args(args).stdin(stdin),
                std::time::Duration::from_secs(60),
            );
            assert_eq!(
                out.code,
                Some(0),
                "cpio (cargo xtask deps installs it): {out:?}"
            );
            out.stdout
        };
        let names = list(&["-it", "--quiet"]);
        let names: Vec<&str> = names.lines().collect();
        for want in [
            "dev/console",
            "init",
            "vmtest/lib.sh",
            "vmtest/cases/one.sh",
            "usr/local/bin/true",
            "bin/busybox",
            "bin/sh",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.contains(".microtools")),
            "{names:?}"
        );
        let libc = names.iter().any(|n| n.ends_with("/libc.so.6"));
        let loader = names.iter().any(|n| n.contains("ld-linux"));
        assert!(
            libc && loader,
            "no libc or loader for /bin/true in {names:?}"
        );
        let init = list(&["-i", "--quiet", "--to-stdout", "init"]);
        assert_eq!(
            init,
            std::fs::read_to_string(vmtest_dir().join("init.sh")).unwrap()
        );
        let long = list(&["-itv", "--quiet", "dev/console"]);
        assert!(long.starts_with("crw-------"), "{long}");
    }

    #[test]
    fn serial_results() {
        let serial = "SeaBIOS\r\nBooting\r\n\x1b[2J@@VMTEST PASS baseline\r\n\
            [    2.1] Memory cgroup out of memory: Killed process 99 (sh)\r\n\
            @@VMTEST FAIL cgctl_oom 2.5s exit 1\r\n@@VMTEST| expected oom_killed true\r\n\
            @@VMTEST|   got: false\r\n@@VMTEST PASS pivot\r\n@@VMTEST DONE\r\n[ 3.0] reboot: Power down\r\n";
        let r = parse_serial(serial);
        assert!(r.done);
        assert_eq!(r.results.len(), 3);
        assert_eq!(r.results[0].name, "baseline");
        assert!(r.results[0].passed);
        assert!(!r.results[1].passed);
        assert_eq!(r.results[1].detail, "exit 1");
        assert_eq!(r.results[1].took.as_deref(), Some("2.5s"));
        assert_eq!(r.results[0].took, None);
        assert_eq!(
            r.results[1].output,
            ["expected oom_killed true", "  got: false"]
        );
        let (lines, p, f) = summarize(&s(&["baseline", "cgctl_oom", "pivot", "never"]), &r);
        assert_eq!((p, f), (2, 2));
        assert_eq!(lines.last().unwrap(), "2 passed, 2 failed");
        assert!(lines.contains(&"FAIL cgctl_oom (exit 1) [2.5s]".to_string()));
        assert!(lines.contains(&"PASS baseline".to_string()));
        assert!(lines.contains(&"    | expected oom_killed true".to_string()));
        assert!(lines.iter().any(|l| l.starts_with("FAIL never (no result")));
    }

    #[test]
    fn unfinished_guest() {
        let r = parse_serial("@@VMTEST PASS a\n[ 9.9] Kernel panic - not syncing\n");
        assert!(!r.done);
        let (lines, p, f) = summarize(&s(&["a"]), &r);
        assert_eq!((p, f), (1, 0));
        assert!(lines.iter().any(|l| l.contains("did not finish")));
        assert_eq!(lines.last().unwrap(), "1 passed, 0 failed");
        assert_eq!(parse_serial(""), Report::default());
    }
}
