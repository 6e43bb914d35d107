//! Fuzzes cgctl's limit parsing: NUL bytes split the input into the option values.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut f = text.split('\0').map(str::to_string);
    let a = cgctl::limits::LimitArgs {
        memory: f.next(),
        memory_high: f.next(),
        swap: f.next(),
        cpus: f.next(),
        cpu_weight: f.next(),
        pids: f.next(),
        cpuset: f.next(),
        mems: f.next(),
        io_read_bps: f.next().into_iter().collect(),
        io_write_bps: f.next().into_iter().collect(),
        raw: f.collect(),
    };
    let no_dev = |_: &str| Ok((8, 0));
    let _ = cgctl::limits::Limits::parse(&a, &no_dev);
});
