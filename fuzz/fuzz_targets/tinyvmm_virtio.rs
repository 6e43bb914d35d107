//! Fuzzes tinyvmm's virtio-mmio transport and the requests of its block, entropy, network and
//! vsock devices (vsock without a host side: every packet parsed, answered or reset): a driver's register writes and reads from the input, guest memory filled from the
//! rest, the queues served in between (the network device's tap in memory holds frames cut from
//! the input too, so that its receive queue has something to fill). Whatever the rings and descriptors say (loops, addresses outside
//! RAM, huge lengths), serving never panics or hangs, and a fault always shows as NEEDS_RESET.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyvmm::virtio::blk::Blk;
use tinyvmm::virtio::mmio::{Transport, Write};
use tinyvmm::virtio::net::{MemTap, Net};
use tinyvmm::virtio::rng::Rng;
use tinyvmm::virtio::vsock::Vsock;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RAM: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let ops_len = (usize::from(n) * 6).min(rest.len());
    let (ops, image) = rest.split_at(ops_len);
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
    mem.write_slice(&image[..image.len().min(RAM)], GuestAddress(0)).unwrap();
    let dev: Box<dyn tinyvmm::virtio::Device> = match n % 4 {
        0 => Box::new(Blk::new(vec![0u8; 8192], 8192, n & 4 != 0, "fuzz")),
        1 => Box::new(Rng),
        3 => Box::new(Vsock::new(3, None).unwrap()),
        _ => {
            // Frames for the guest: the image cut in pieces of up to 2 KiB.
            let mut tap = MemTap::default();
            tap.rx = image.chunks(2048).map(<[u8]>::to_vec).collect();
            Box::new(Net::new(tap, [2, 0, 0, 0, 0, 1]))
        }
    };
    let mut t = Transport::new(dev);
    for op in ops.chunks_exact(6) {
        let off = u64::from(op[1]) * 4;
        let v = u32::from_le_bytes([op[2], op[3], op[4], op[5]]);
        match op[0] % 4 {
            0 | 1 => {
                if let Write::Notify(q) = t.write(off, &v.to_le_bytes()) {
                    serve(&mut t, q, &mem);
                }
            }
            2 => {
                let mut b = [0u8; 4];
                t.read(off, &mut b[..usize::from(op[2] % 4) + 1]);
            }
            _ => serve(&mut t, usize::from(op[2] % 3), &mem),
        }
        // What the device thread does after each wake-up: drops input while not live.
        let _ = t.wants_input();
    }
});

fn serve(t: &mut Transport, q: usize, mem: &GuestMemoryMmap) {
    // A batch at a time, as the device thread does; the avail index bounds the work.
    for _ in 0..300 {
        let (_, more) = t.process(q, mem);
        if !more {
            break;
        }
    }
    if t.fault().is_some() {
        assert_ne!(t.status() & 0x40, 0, "a fault without NEEDS_RESET");
    }
}
