//! Fuzzes ocirun's seccomp cache file reader: any bytes give a compiled profile or a miss, never
//! a panic; a hit is only ever for the key asked; and what the writer makes is read back whole.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (key, file) = data.split_at(data.len().min(data.first().copied().unwrap_or(0) as usize));
    if let Some(c) = ocirun::seccomp::decode(file, key) {
        // A hit re-encodes to the same bytes: nothing in the file was ignored.
        assert_eq!(ocirun::seccomp::encode(key, &c), file);
    }
    // The input's tail as a program of whole instructions, when it is one.
    let prog = &file[..file.len() - file.len() % 8];
    let bpf = privs::seccomp::Bpf::from_bytes(prog, 0).ok();
    let names: Vec<String> = String::from_utf8_lossy(key)
        .split(['\n', '\0'])
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    let c = (bpf, names);
    let bytes = ocirun::seccomp::encode(key, &c);
    assert_eq!(ocirun::seccomp::decode(&bytes, key), Some(c));
    let mut other = key.to_vec();
    other.push(b'x');
    assert_eq!(ocirun::seccomp::decode(&bytes, &other), None);
});
