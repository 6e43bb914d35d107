//! Fuzzes pivot's command line and its `--bind SRC:DST` parser: no panic, every accepted
//! destination absolute, and a parsed spec written back with `bind_spec` reads the same. The
//! operations of issue #27 (`--dir`, `--file`, `--bind-data`, `--symlink`, `--chmod`, `--size`,
//! `--perms`, `--mqueue`, `--remount-ro`) keep command-line order: every accepted mode is at
//! most 07777, every descriptor non-negative, and `--size`/`--perms` land only on operations
//! that take them, every overlay has its `--overlay-src` layers. `--setenv`/`--unsetenv` names
//! are valid. The same line read as the `pivot_root NEW_ROOT PUT_OLD` and
//! `switch_root NEWROOT INIT [ARG...]` drop-ins (`compat`) gives their two operands, in order;
//! the bytes read as mountinfo give a root kind that agrees with the last mount on `/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pivot::compat::{parse_pivot_root, parse_switch_root};
use pivot::mountinfo::{root_kind, RootKind};
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
    // Each operand is one whole piece of the line, never a piece cut or joined.
    let pieces: Vec<&std::ffi::OsStr> = text.split('\0').map(std::ffi::OsStr::new).collect();
    let compat = std::iter::once("pivot_root").chain(text.split('\0'));
    if let conventions::cli::Parsed::Run(c) = parse_pivot_root("pivot_root", compat) {
        assert!(pieces.contains(&c.new_root.as_os_str()), "{text:?}: {c:?}");
        assert!(pieces.contains(&c.put_old.as_os_str()), "{text:?}: {c:?}");
    }
    let compat = std::iter::once("switch_root").chain(text.split('\0'));
    if let conventions::cli::Parsed::Run(c) = parse_switch_root("switch_root", compat) {
        assert!(pieces.contains(&c.newroot.as_os_str()), "{text:?}: {c:?}");
        assert!(pieces.contains(&c.init.as_os_str()), "{text:?}: {c:?}");
    }
    let mounts = conventions::mountinfo::parse(&text);
    let last_root = mounts.iter().rev().find(|m| m.mount_point == "/");
    match (root_kind(&mounts), last_root) {
        (RootKind::NotMountPoint, None) => {}
        (RootKind::Rootfs, Some(m)) => assert_eq!(m.fstype, "rootfs"),
        (RootKind::Mounted(t), Some(m)) => assert!(t == m.fstype && t != "rootfs"),
        (kind, m) => panic!("{text:?}: {kind:?} for {m:?}"),
    }
});
