//! Builds the example guests in `guests/` with binutils (`as`, `ld`) into OUT_DIR, where the tests
//! find them and from where the embedded guest is included in the binary. Routines several guests
//! share live once in `guests/lib/*.inc`, found through the assembler's include path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The tools' shared build script: libgcc_s.so is not loaded at start-up.
#[path = "../build/static_unwinder.rs"]
mod unwinder;

/// tinyvmm's seccomp allow-list, compiled here to the kernel's BPF (src/seccomp/mod.rs says why).
#[path = "src/seccomp/table.rs"]
#[allow(dead_code)]
mod seccomp_table;

/// Compiles the allow-list into OUT_DIR/seccomp.bpf.
fn seccomp_filter(out: &Path) {
    println!("cargo:rerun-if-changed=src/seccomp/table.rs");
    let bpf = seccomp_table::profile()
        .and_then(|p| p.to_bpf().map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("tinyvmm's seccomp filter: {e}"));
    let bytes: Vec<u8> = bpf.to_bytes();
    std::fs::write(out.join("seccomp.bpf"), bytes)
        .unwrap_or_else(|e| panic!("writing seccomp.bpf: {e}"));
}

/// The x86-64 system call names by number into OUT_DIR/syscall_names.rs, for the SIGSYS
/// handler's message (which cannot ask libseccomp: it runs in a signal).
fn syscall_names(out: &Path) {
    let names: Vec<String> = (0..SYSCALL_NUMBERS)
        .map(|nr| privs::seccomp::x86_64_name(nr).unwrap_or_default())
        .collect();
    let text = format!(
        "/// x86-64 system call names by number (empty: none), from libseccomp at build time.\n\
         pub const SYSCALL_NAMES: [&str; {}] = {names:?};\n",
        names.len()
    );
    std::fs::write(out.join("syscall_names.rs"), text)
        .unwrap_or_else(|e| panic!("writing syscall_names.rs: {e}"));
}

/// Numbers below this get a name in [`syscall_names`] (x86-64's table ends in the 460s).
const SYSCALL_NUMBERS: i32 = 512;

/// How a guest is linked.
enum Link {
    /// A flat binary whose first byte is at this guest-physical address.
    Flat(u64),
    /// An ELF64 executable linked with this script.
    Elf(&'static str),
    /// A flat binary laid out by this script (the synthetic bzImage).
    Script(&'static str),
    /// A static Linux program (default linker layout).
    Program,
}

const GUESTS: &[(&str, Link)] = &[
    ("hello-real", Link::Flat(0x1000)),
    ("hello-long", Link::Flat(0x10_0000)),
    ("primes", Link::Elf("elf.ld")),
    ("echo", Link::Flat(0x10_0000)),
    ("status", Link::Flat(0x10_0000)),
    ("spin", Link::Flat(0x10_0000)),
    ("fault", Link::Flat(0x10_0000)),
    ("chaos", Link::Flat(0x10_0000)),
    ("info", Link::Flat(0x10_0000)),
    ("fault-real", Link::Flat(0x1000)),
    ("reset", Link::Flat(0x10_0000)),
    ("pvh", Link::Elf("pvh.ld")),
    ("testkernel-bz", Link::Script("bzimage.ld")),
    ("testkernel-pvh", Link::Elf("pvh.ld")),
    ("virtio", Link::Flat(0x10_0000)),
    ("net", Link::Flat(0x10_0000)),
    ("exit-helper", Link::Program),
    ("rootfs-init", Link::Program),
];

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "tinyvmm's example guests need binutils' `{name}`, which is not installed \
         (install the Debian package binutils: apt-get install binutils)"
    );
}

fn run(cmd: &mut Command) {
    let desc = format!("{cmd:?}");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e} (is binutils installed?)"));
    assert!(status.success(), "{desc} failed with {status}");
}

fn main() {
    println!("cargo:rerun-if-changed=../build/static_unwinder.rs");
    unwinder::link_static_unwinder();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    seccomp_filter(&out);
    syscall_names(&out);
    let src = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("guests");
    println!("cargo:rerun-if-changed=guests");
    // The routines the guests share (`.include "uart.inc"`): a change there must rebuild them all.
    let lib = src.join("lib");
    let mut includes: Vec<PathBuf> = std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", lib.display()))
        .map(|entry| entry.expect("readable guests/lib entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "inc"))
        .collect();
    includes.sort();
    for inc in &includes {
        println!("cargo:rerun-if-changed={}", inc.display());
    }
    let as_ = tool("as");
    let ld = tool("ld");
    for (name, link) in GUESTS {
        let source = src.join(format!("{name}.s"));
        println!("cargo:rerun-if-changed={}", source.display());
        let obj = out.join(format!("{name}.o"));
        run(Command::new(&as_)
            .arg("--64")
            .arg("-I")
            .arg(&lib)
            .arg("-o")
            .arg(&obj)
            .arg(&source));
        match link {
            Link::Flat(base) => {
                run(Command::new(&ld)
                    .args(["-m", "elf_x86_64", "--oformat", "binary", "-e", "_start"])
                    .arg(format!("-Ttext=0x{base:x}"))
                    .arg("-o")
                    .arg(out.join(format!("{name}.bin")))
                    .arg(&obj));
            }
            Link::Program => {
                run(Command::new(&ld)
                    .args([
                        "-m",
                        "elf_x86_64",
                        "-static",
                        "--build-id=none",
                        "-e",
                        "_start",
                    ])
                    .arg("-o")
                    .arg(out.join(name))
                    .arg(&obj));
            }
            Link::Script(script) => {
                run(Command::new(&ld)
                    .args(["-m", "elf_x86_64", "--oformat", "binary"])
                    .arg("-T")
                    .arg(src.join(script))
                    .arg("-o")
                    .arg(out.join(format!("{name}.bin")))
                    .arg(&obj));
            }
            Link::Elf(script) => {
                run(Command::new(&ld)
                    .args([
                        "-m",
                        "elf_x86_64",
                        "-static",
                        "-nostdlib",
                        "--build-id=none",
                    ])
                    .arg("-T")
                    .arg(src.join(script))
                    .arg("-o")
                    .arg(out.join(format!("{name}.elf")))
                    .arg(&obj));
            }
        }
    }
}
