//! The virtio-mmio devices under real KVM, driven by a tiny guest (guests/virtio.s) that is its
//! own driver: a disk read, write, serial and flush round trip checked on the host image, a
//! read-only disk refusing the write, a driver that misbehaves three ways getting NEEDS_RESET
//! while the VM runs on to its status, the entropy device, and the image lock.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use testcaps::{require, Cap};

const BIN: &str = env!("CARGO_BIN_EXE_tinyvmm");

/// A disk image under target/tmp, removed when dropped (also when the test fails).
struct Image(PathBuf);

impl Image {
    /// 64 KiB whose sector 0 starts with a line the guest prints.
    fn new(name: &str) -> Image {
        let dir = testcaps::target_dir().join("tmp");
        std::fs::create_dir_all(&dir).expect("create target/tmp");
        let path = dir.join(testcaps::unique_name(name));
        let mut bytes = vec![0u8; 64 << 10];
        bytes[..23].copy_from_slice(b"sector 0 from the host\n");
        std::fs::write(&path, &bytes).expect("write the image");
        Image(path)
    }

    fn arg(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.0.display())
    }

    fn sector(&self, n: usize) -> Vec<u8> {
        std::fs::read(&self.0).expect("read the image")[n * 512..(n + 1) * 512].to_vec()
    }

    /// The serial the device reports: tinyvmm-DEV-INO in hex, cut at 20 bytes.
    fn serial(&self) -> String {
        let m = std::fs::metadata(&self.0).expect("stat the image");
        let mut s = format!("tinyvmm-{:x}-{:x}", m.dev(), m.ino());
        s.truncate(20);
        s
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tinyvmm(args: &[&str]) -> testcaps::Output {
    testcaps::run(
        Command::new(BIN).args(args).stdin(Stdio::null()),
        Duration::from_secs(60),
    )
}

fn expected_stdout(write_status: u8, serial: &str) -> String {
    format!(
        "blk: capacity in sectors 128\n\
         read sector 0: status 0\n\
         sector 0 from the host\n\
         write sector 1: status {write_status}\n\
         get id: status 0\n\
         serial: {serial}\n\
         flush: status 0\n\
         descriptor loop: needs reset\n\
         buffer outside RAM: needs reset\n\
         oversize length: needs reset\n\
         after reset, read sector 0: status 0\n\
         rng: 64 bytes\n"
    )
}

const FAULTS: &str = "\
tinyvmm: virtio device at 0xd0000000 needs a reset: descriptor chain at 3 loops
tinyvmm: virtio device at 0xd0000000 needs a reset: buffer 0x7fff0000 (+512 bytes) is outside guest RAM
tinyvmm: virtio device at 0xd0000000 needs a reset: buffer 0x53000 (+268435456 bytes) is outside guest RAM
";

#[test]
fn disk_round_trip_misbehaving_driver_and_rng() {
    require!(Cap::Kvm);
    let img = Image::new("disk");
    let out = tinyvmm(&[
        "run",
        "--mem",
        "16M",
        "--disk",
        &img.arg(""),
        "--rng",
        "-v",
        &tinyvmm::guest_path("virtio.bin"),
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, expected_stdout(0, &img.serial()));
    let (exits, other): (Vec<&str>, Vec<&str>) = out
        .stderr
        .lines()
        .partition(|l| l.starts_with("tinyvmm: exit: "));
    assert_eq!(other.join("\n") + "\n", FAULTS);
    // The guest's sector is on the host, the rest of the image as it was.
    let mut want = b"sector 1 written by the guest\n".to_vec();
    want.resize(512, 0);
    assert_eq!(img.sector(1), want);
    assert_eq!(&img.sector(0)[..23], b"sector 0 from the host\n");
    // The register set-up exits, the queue notifications do not: KVM signals them on an
    // ioeventfd that the device thread serves.
    assert!(exits.iter().any(|l| l.contains("mmio write 0xd0000070")));
    for queue_notify in ["mmio write 0xd0000050", "mmio write 0xd0001050"] {
        assert!(
            !exits.iter().any(|l| l.contains(queue_notify)),
            "{queue_notify} exited"
        );
    }
}

#[test]
fn read_only_disk_refuses_the_write() {
    require!(Cap::Kvm);
    let img = Image::new("disk-ro");
    let before = std::fs::read(&img.0).expect("read");
    let out = tinyvmm(&[
        "run",
        "--mem",
        "16M",
        "--disk",
        &img.arg(",ro"),
        "--rng",
        &tinyvmm::guest_path("virtio.bin"),
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    // VIRTIO_BLK_S_IOERR (1) for the write; reads, the serial and the flush work.
    assert_eq!(out.stdout, expected_stdout(1, &img.serial()));
    assert_eq!(out.stderr, FAULTS);
    assert_eq!(std::fs::read(&img.0).expect("read"), before);
}

/// Holds flock(2) `op` on `path` while `f` runs.
fn with_lock(path: &Path, op: libc::c_int, f: impl FnOnce()) {
    let file = std::fs::File::open(path).expect("open the image");
    assert_eq!(
        // SAFETY: flock on an fd this function owns.
        unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) },
        0
    );
    f();
    drop(file);
}

#[test]
fn image_lock_keeps_a_second_vm_out() {
    require!(Cap::Kvm);
    let img = Image::new("disk-lock");
    let rw = img.arg("");
    let ro = img.arg(",ro");
    let locked = |arg: &str, ro: bool| {
        let out = tinyvmm(&[
            "run",
            "--mem",
            "16M",
            "--disk",
            arg,
            &tinyvmm::guest_path("virtio.bin"),
        ]);
        assert_eq!(out.code, Some(125), "{out:?}");
        assert_eq!(out.stdout, "");
        let writable = if ro { " writable" } else { "" };
        assert_eq!(
            out.stderr,
            format!(
                "tinyvmm: --disk {}: it is locked by another process (another VM has {} \
                 open{writable})\n",
                img.0.display(),
                img.0.display()
            )
        );
    };
    // A writer (an exclusive lock) keeps out readers and writers.
    with_lock(&img.0, libc::LOCK_EX, || {
        locked(&rw, false);
        locked(&ro, true);
    });
    // Readers (shared locks) keep out a writer, not another reader: the guest's write is then
    // refused by the device, not by the lock.
    with_lock(&img.0, libc::LOCK_SH, || {
        locked(&rw, false);
        let out = tinyvmm(&[
            "run",
            "--mem",
            "16M",
            "--disk",
            &ro,
            "--rng",
            &tinyvmm::guest_path("virtio.bin"),
        ]);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(out.stdout.contains("write sector 1: status 1\n"), "{out:?}");
    });
    // The lock went with the process: the image is free again.
    let out = tinyvmm(&[
        "run",
        "--mem",
        "16M",
        "--disk",
        &rw,
        "--rng",
        &tinyvmm::guest_path("virtio.bin"),
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn bad_disk_options_give_125() {
    // None of these reach KVM.
    let dir = testcaps::target_dir().join("tmp");
    std::fs::create_dir_all(&dir).expect("create target/tmp");
    let missing = dir.join(testcaps::unique_name("missing.img"));
    let missing = missing.to_str().expect("utf-8");
    for (args, needle) in [
        (
            vec!["run", "--disk", missing],
            format!("tinyvmm: --disk {missing}: cannot open it: No such file or directory"),
        ),
        (
            vec!["run", "--disk", dir.to_str().expect("utf-8"), "--rng"],
            format!(
                "tinyvmm: --disk {}: cannot open it: Is a directory",
                dir.display()
            ),
        ),
        (
            vec!["run", "--disk", "x.img,rx"],
            "unknown disk option 'rx' in 'x.img,rx' (FILE or FILE,ro)".to_string(),
        ),
        (
            vec!["run", "--disk", ",ro"],
            "no image file in ',ro'".to_string(),
        ),
    ] {
        let out = tinyvmm(&args);
        assert_eq!(out.code, Some(125), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(out.stderr.contains(&needle), "{args:?}: {out:?}");
        // strerror's words end the line: no " (os error N)" after them.
        assert!(!out.stderr.contains("(os error"), "{args:?}: {out:?}");
    }
}
