//! Fuzzes the one newc writer (`newc::Archive`) against its reader: any bytes read as an archive
//! give entries or an error, never a panic; and entries built from the input are read back the
//! same, once each, with no `..` and no leading `/`, aligned to 4 and padded to 512.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = newc::entries(data);
    // The input as a list of entries: a kind byte, a perm byte, then a NUL-terminated name and
    // a NUL-terminated body.
    let mut a = newc::Archive::new();
    let mut names = std::collections::BTreeSet::new();
    let mut rest = data;
    while let [kind, perm, tail @ ..] = rest {
        let mut parts = tail.splitn(3, |b| *b == 0);
        let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let body = parts.next().unwrap_or_default().to_vec();
        rest = parts.next().unwrap_or_default();
        let perm = u32::from(*perm) * 7;
        let before = a.len();
        match kind % 4 {
            0 => a.dir(&name, perm),
            1 => a.file(&name, perm, body.clone()),
            2 => a.symlink(&name, &String::from_utf8_lossy(&body)),
            _ => a.chardev(&name, perm, u32::from(body.first().copied().unwrap_or(0)), 3),
        }
        assert!(a.len() >= before);
        assert!(a.len().is_multiple_of(4));
        names.insert(name);
    }
    let bytes = a.finish();
    assert!(bytes.len().is_multiple_of(512));
    let read = newc::entries(&bytes).expect("what the writer wrote reads back");
    let mut seen = std::collections::BTreeSet::new();
    for e in &read {
        assert!(seen.insert(e.name.clone()), "{} twice", e.name);
        assert!(!e.name.starts_with('/') && !e.name.is_empty());
        assert!(e.name.split('/').all(|c| c != ".." && c != "." && !c.is_empty()));
        // Every parent stands before its child.
        if let Some((parent, _)) = e.name.rsplit_once('/') {
            assert!(seen.contains(parent), "{} before its parent", e.name);
        }
    }
});
