//! tinyvmm's library leaves no file descriptor behind, whether a run succeeds, the guest crashes
//! or the image is refused: every fd (/dev/kvm, the VM, the vCPU, the eventfd) is closed by RAII.
//! Its own test binary, so that no concurrent test opens files while fds are counted.

use std::path::PathBuf;

use testcaps::{require, Cap};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn args(image: Option<PathBuf>, mem: u64) -> tinyvmm::RunArgs {
    tinyvmm::RunArgs {
        mem,
        cpuid: true,
        image,
        ..Default::default()
    }
}

#[test]
fn no_fd_is_left_behind() {
    require!(Cap::Kvm);
    let guests = PathBuf::from(tinyvmm::GUEST_DIR);
    // Warm up whatever the runtime opens once.
    let _ = tinyvmm::run_vm("tinyvmm", &args(Some(guests.join("fault.bin")), 16 << 20));
    let before = open_fds();
    for _ in 0..3 {
        let crashed = tinyvmm::run_vm("tinyvmm", &args(Some(guests.join("fault.bin")), 16 << 20))
            .expect("the fault guest runs");
        assert_eq!(crashed.end.status(), 123);
        assert!(tinyvmm::run_vm("tinyvmm", &args(Some(guests.join("fault.bin")), 0)).is_err());
        assert!(
            tinyvmm::run_vm("tinyvmm", &args(Some(guests.join("nonexistent")), 16 << 20)).is_err()
        );
        assert!(tinyvmm::run_vm("tinyvmm", &args(Some(guests.clone()), 16 << 20)).is_err());
        // A kernel: interrupt controller, PIT, irqfd (the synthetic kernel prints its
        // findings into the test's output).
        let mut k = args(None, 16 << 20);
        k.kernel = Some(guests.join("testkernel-bz.bin"));
        let booted = tinyvmm::run_vm("tinyvmm", &k).expect("the synthetic kernel boots");
        assert_eq!(booted.end.status(), 0);
        // Waiting application processors on their own threads, kicked out at the end.
        k.cpus = 3;
        let smp = tinyvmm::run_vm("tinyvmm", &k).expect("the synthetic kernel boots with 3 vCPUs");
        assert_eq!(smp.end.status(), 0);
        k.cpus = 1;
        k.initrd = Some(guests.join("nonexistent"));
        assert!(tinyvmm::run_vm("tinyvmm", &k).is_err());
    }
    assert_eq!(open_fds(), before);
}
