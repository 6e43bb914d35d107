//! Fuzzes pivot's command line and its `--bind SRC:DST` parser: no panic, every accepted
//! destination absolute, and a parsed spec written back with `bind_spec` reads the same. The
//! operations of issue #27 (`--dir`, `--file`, `--bind-data`, `--symlink`, `--chmod`, `--size`,
//! `--perms`, `--mqueue`, `--remount-ro`) keep command-line order: every accepted mode is at
//! most 07777, every descriptor non-negative, and `--size`/`--perms` land only on operations
//! that take them, every overlay has its `--overlay-src` layers. `--setenv`/`--unsetenv` names
//! are valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pivot::plan::{bind_spec, check_env_name, parse_bind, parse_fd, parse_mode, EnvOp, UserMount};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((src, dst)) = parse_bind(&text) {
        assert!(dst.is_absolute(), "{text:?}");
        let (s, d) = (src.to_string_lossy(), dst.to_string_lossy());
        assert_eq!(
            parse_bind(&bind_spec(&s, &d)),
            Ok((src.clone(), dst.clone()))
        );
    }
    if let Ok(m) = parse_mode(&text) {
        assert!(m <= 0o7777, "{text:?}");
    }
    if let Ok(fd) = parse_fd(&text) {
        assert!(fd >= 0, "{text:?}");
    }
    // The same bytes as a whole command line, one argument per NUL-separated piece.
    let args = std::iter::once("pivot").chain(text.split('\0'));
    if let conventions::cli::Parsed::Run(inv) = pivot::parse("pivot", args) {
        let sizes = text.split('\0').filter(|a| *a == "--size").count();
        let given = inv
            .mounts
            .iter()
            .filter(|m| matches!(m, UserMount::Tmpfs { size: Some(_), .. }))
            .count();
        assert!(given <= sizes, "{text:?}");
        for op in &inv.env {
            if let EnvOp::Set(k, _) | EnvOp::Unset(k) = op {
                assert!(check_env_name(k).is_ok(), "{text:?}: {op:?}");
            }
        }
        for m in &inv.mounts {
            assert!(m.dst().is_absolute(), "{text:?}: {m:?}");
            if let Some(fd) = m.fd() {
                assert!(fd >= 0, "{text:?}: {m:?}");
            }
            match m {
                UserMount::Tmpfs { mode, .. }
                | UserMount::Dir { mode, .. }
                | UserMount::File { mode, .. }
                | UserMount::BindData { mode, .. } => {
                    assert!(mode.unwrap_or(0) <= 0o7777, "{text:?}: {m:?}")
                }
                UserMount::Chmod { mode, .. } => assert!(*mode <= 0o7777, "{text:?}: {m:?}"),
                UserMount::Overlay { lower, .. } => assert!(!lower.is_empty(), "{text:?}: {m:?}"),
                _ => {}
            }
        }
    }
});
