//! Fuzzes tinyvmm's image planning: any bytes as an image give a load plan or an error, never a
//! panic, and a plan never places a piece outside guest memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyvmm::plan::{plan, FormatArg, Options};

fuzz_target!(|data: &[u8]| {
    let mem = 2 << 20;
    let opts = Options { format: FormatArg::Auto, mem, load: None, host_ram: 1 << 30 };
    let _ = tinyvmm::plan::parse_elf(data);
    if let Ok(p) = plan(&opts, data) {
        for piece in &p.pieces {
            let end = piece.addr.saturating_add(piece.mem_len.max(piece.len as u64));
            assert!(end <= mem, "{piece:?}");
        }
    }
});
