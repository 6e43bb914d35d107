//! User and group id maps: parsing `--map-users` in every form util-linux accepted, resolving
//! `auto`/`subids`/`all`, and building the lines of `/proc/PID/uid_map` without overlaps.

/// One line of an id map: `count` ids starting at `inner` inside map to ids starting at `outer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First id inside the namespace.
    pub inner: u32,
    /// First id in the parent namespace.
    pub outer: u32,
    /// How many ids.
    pub count: u32,
}

/// A `--map-users`/`--map-groups` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapSpec {
    /// An explicit range.
    Range(Range),
    /// The caller's first block of /etc/subuid (subgid), mapped at 0.
    Auto,
    /// The same block, mapped to itself.
    Subids,
    /// Every id of the parent namespace, mapped to itself.
    All,
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `inner:outer:count`, the old `outer,inner,count`, `auto`, `subids` or `all`. The error
/// is the message util-linux prints, naming the input.
pub fn parse_spec(input: &str) -> Result<MapSpec, String> {
    match input {
        "auto" => return Ok(MapSpec::Auto),
        "subids" => return Ok(MapSpec::Subids),
        "all" => return Ok(MapSpec::All),
        _ => {}
    }
    let bad = || {
        format!(
            "could not parse ID map '{input}' (expected inner:outer:count, auto, subids or all)"
        )
    };
    let (sep, old) = if input.contains(':') {
        (':', false)
    } else {
        (',', true)
    };
    let parts: Vec<&str> = input.split(sep).collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    let nums: Vec<u32> = parts
        .iter()
        .map(|p| number(p))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let (inner, outer) = if old {
        (nums[1], nums[0])
    } else {
        (nums[0], nums[1])
    };
    let count = nums[2];
    let fits = |start: u32| u64::from(start) + u64::from(count) <= 1 << 32;
    if count == 0 || !fits(inner) || !fits(outer) {
        return Err(format!(
            "invalid ID map '{input}': the count must be at least 1 and the ranges must stay below 2^32"
        ));
    }
    Ok(MapSpec::Range(Range {
        inner,
        outer,
        count,
    }))
}

/// Finds the first block of `/etc/subuid`-style `text` (`name:start:count` lines) that belongs to
/// the user called `name` or numbered `id`.
pub fn subid_block(text: &str, name: Option<&str>, id: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
        let mine = Some(owner) == name || number(owner) == Some(id);
        if !mine {
            return None;
        }
        Some((number(start)?, number(count)?))
    })
}

/// Parses `/proc/PID/uid_map` text: lines of three numbers.
pub fn parse_proc_map(text: &str) -> Vec<Range> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace().map(number);
            Some(Range {
                inner: f.next()??,
                outer: f.next()??,
                count: f.next()??,
            })
        })
        .collect()
}

/// Turns a spec into ranges, given the caller's subordinate block and the parent's own map.
pub fn resolve(
    spec: MapSpec,
    sub: Option<(u32, u32)>,
    parent_map: &[Range],
) -> Result<Vec<Range>, String> {
    let block = || sub.ok_or_else(|| "no subordinate id block for this user".to_string());
    Ok(match spec {
        MapSpec::Range(r) => vec![r],
        MapSpec::Auto => {
            let (start, count) = block()?;
            vec![Range {
                inner: 0,
                outer: start,
                count,
            }]
        }
        MapSpec::Subids => {
            let (start, count) = block()?;
            vec![Range {
                inner: start,
                outer: start,
                count,
            }]
        }
        MapSpec::All => parent_map
            .iter()
            .map(|r| Range {
                inner: r.inner,
                outer: r.inner,
                count: r.count,
            })
            .collect(),
    })
}

/// Takes the single id `inner` -> `outer` out of range `r`, as util-linux does: when either side
/// of `r` holds its id, `r` gives up one id (so at most one, even when both sides hold it), and
/// what is left is split into at most three lines, low, middle and high, that step over
/// `inner` on the inner side and `outer` on the outer side. The ids given up are the topmost of
/// a side. (util-linux also gives one up when an id is just past the end of `r`, which maps one
/// id fewer than it could; unshare-rs does not.)
fn split_around(r: Range, inner: u32, outer: u32) -> Vec<Range> {
    let holds = |start: u32, id: u32| {
        u64::from(id) >= u64::from(start) && u64::from(id) < u64::from(start) + u64::from(r.count)
    };
    let count = r.count - u32::from(holds(r.outer, outer) || holds(r.inner, inner));
    let offset = |id: u32, start: u32| id.saturating_sub(start).min(count);
    let (outer_off, inner_off) = (offset(outer, r.outer), offset(inner, r.inner));
    // Steps over the single id when a line would start on it.
    let skip = |at: u32, id: u32| if at == id { at.wrapping_add(1) } else { at };
    let lo = Range {
        inner: r.inner,
        outer: r.outer,
        count: outer_off.min(inner_off),
    };
    let mid = Range {
        inner: skip(lo.inner.wrapping_add(lo.count), inner),
        outer: skip(lo.outer.wrapping_add(lo.count), outer),
        count: outer_off.abs_diff(inner_off),
    };
    let hi = Range {
        inner: skip(mid.inner.wrapping_add(mid.count), inner),
        outer: skip(mid.outer.wrapping_add(mid.count), outer),
        count: count - lo.count - mid.count,
    };
    [lo, mid, hi].into_iter().filter(|l| l.count > 0).collect()
}

/// The lines of a map: the single id (`inner`, `outer`) first, then the ranges, in the order
/// given, with the single id taken out of each (the kernel rejects overlapping lines).
pub fn build(single: Option<(u32, u32)>, ranges: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    if let Some((inner, outer)) = single {
        out.push(Range {
            inner,
            outer,
            count: 1,
        });
    }
    for &r in ranges {
        match single {
            Some((inner, outer)) => out.extend(split_around(r, inner, outer)),
            None => out.push(r),
        }
    }
    out
}

/// The most lines a uid_map or gid_map may have (the kernel's `UID_GID_MAP_MAX_EXTENTS`).
pub const MAX_LINES: usize = 340;

/// Checks `lines` as the kernel will, so that a map it would refuse fails before anything is
/// created, with the reason (the kernel answers EINVAL or EPERM for all of them): no more than
/// [`MAX_LINES`] lines, no id 4294967295 (it is `(uid_t)-1`, "no id"), and no two lines sharing
/// an id on either side. `what` is `uid` or `gid`.
pub fn check(lines: &[Range], what: &str) -> Result<(), String> {
    if lines.len() > MAX_LINES {
        return Err(format!(
            "the {what} map has {} lines; the kernel takes at most {MAX_LINES}",
            lines.len()
        ));
    }
    let end = |start: u32, count: u32| u64::from(start) + u64::from(count);
    for l in lines {
        if end(l.inner, l.count) > u64::from(u32::MAX)
            || end(l.outer, l.count) > u64::from(u32::MAX)
        {
            return Err(format!(
                "the {what} map line '{} {} {}' includes {what} 4294967295, which the kernel never maps (it means \"no id\")",
                l.inner, l.outer, l.count
            ));
        }
    }
    for (i, a) in lines.iter().enumerate() {
        for b in &lines[i + 1..] {
            let overlap =
                |x: u32, y: u32| u64::from(x) < end(y, b.count) && u64::from(y) < end(x, a.count);
            let side = if overlap(a.inner, b.inner) {
                "inside the namespace"
            } else if overlap(a.outer, b.outer) {
                "outside"
            } else {
                continue;
            };
            return Err(format!(
                "the {what} map lines '{} {} {}' and '{} {} {}' overlap {side}; the kernel refuses overlapping lines",
                a.inner, a.outer, a.count, b.inner, b.outer, b.count
            ));
        }
    }
    Ok(())
}

/// The text written to `uid_map`/`gid_map`: one `inner outer count` line per range.
pub fn format(lines: &[Range]) -> String {
    lines
        .iter()
        .map(|r| format!("{} {} {}\n", r.inner, r.outer, r.count))
        .collect()
}

/// The arguments newuidmap/newgidmap take after the pid: `inner outer count` triples.
pub fn helper_args(lines: &[Range]) -> Vec<String> {
    lines
        .iter()
        .flat_map(|r| {
            [
                r.inner.to_string(),
                r.outer.to_string(),
                r.count.to_string(),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(inner: u32, outer: u32, count: u32) -> Range {
        Range {
            inner,
            outer,
            count,
        }
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            parse_spec("0:100000:65536"),
            Ok(MapSpec::Range(r(0, 100000, 65536)))
        );
        // The old comma form puts the outer id first.
        assert_eq!(
            parse_spec("100000,0,65536"),
            Ok(MapSpec::Range(r(0, 100000, 65536)))
        );
        assert_eq!(parse_spec("auto"), Ok(MapSpec::Auto));
        assert_eq!(parse_spec("subids"), Ok(MapSpec::Subids));
        assert_eq!(parse_spec("all"), Ok(MapSpec::All));
        assert_eq!(
            parse_spec("0:4294967295:1"),
            Ok(MapSpec::Range(r(0, u32::MAX, 1)))
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "1:2",
            "1:2:3:4",
            "a:b:c",
            "1,2",
            "1:2,3",
            "-1:0:1",
            "1:2:0",
            "0:0:4294967297",
            "1:4294967295:2",
            " 1:2:3",
            "+1:2:3",
            "1::3",
            "AUTO",
            "0:0:99999999999",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad:?} should fail");
        }
        assert!(parse_spec("1:2").unwrap_err().contains("'1:2'"));
    }

    #[test]
    fn never_panics_on_random_input() {
        // A simple xorshift generator: reproducible, no dependency.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"0123456789:,-+ autosbidl\xff\x00";
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 24) as usize;
            let mut bytes = Vec::with_capacity(len);
            let mut s = state;
            for _ in 0..len {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                bytes.push(alphabet[(s >> 33) as usize % alphabet.len()]);
            }
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(MapSpec::Range(range)) = parse_spec(&text) {
                assert!(range.count >= 1);
                let _ = build(Some((0, 0)), &[range]);
            }
            let _ = parse_proc_map(&text);
            let _ = subid_block(&text, Some("root"), 0);
        }
    }

    /// Every small single id against every small range: the lines never overlap, the single id
    /// is mapped, each line is a piece of the range, and at most one id is given up.
    #[test]
    fn holes_never_overlap() {
        for (i, o, c) in
            (0..6).flat_map(|i| (0..6).flat_map(move |o| (1..6).map(move |c| (i, o, c))))
        {
            for (si, so) in (0..9).flat_map(|a| (0..9).map(move |b| (a, b))) {
                let lines = build(Some((si, so)), &[r(i, o, c)]);
                assert_eq!(
                    check(&lines, "uid"),
                    Ok(()),
                    "{si} {so} / {i} {o} {c}: {lines:?}"
                );
                assert_eq!(lines[0], r(si, so, 1));
                let mapped: u32 = lines[1..].iter().map(|l| l.count).sum();
                let held = (i..i + c).contains(&si) || (o..o + c).contains(&so);
                assert_eq!(
                    mapped,
                    c - u32::from(held),
                    "{si} {so} / {i} {o} {c}: {lines:?}"
                );
                for l in &lines[1..] {
                    assert!(l.inner >= i && l.inner + l.count <= i + c, "{lines:?}");
                    assert!(l.outer >= o && l.outer + l.count <= o + c, "{lines:?}");
                }
            }
        }
    }

    #[test]
    fn checks_what_the_kernel_refuses() {
        assert_eq!(check(&[r(0, 1000, 1), r(1, 100000, 10)], "uid"), Ok(()));
        let e = check(&[r(0, 0, 10), r(5, 100, 1)], "uid").unwrap_err();
        assert!(
            e.contains("'0 0 10' and '5 100 1' overlap inside the namespace"),
            "{e}"
        );
        let e = check(&[r(0, 0, 10), r(50, 9, 1)], "gid").unwrap_err();
        assert!(
            e.contains("gid map lines") && e.contains("overlap outside"),
            "{e}"
        );
        let e = check(&[r(0, u32::MAX, 1)], "uid").unwrap_err();
        assert!(e.contains("includes uid 4294967295"), "{e}");
        assert!(check(&[r(u32::MAX - 1, 0, 1)], "uid").is_ok());
        let many: Vec<Range> = (0..341).map(|k| r(k, k, 1)).collect();
        assert!(check(&many, "uid").unwrap_err().contains("341 lines"));
        assert!(check(&many[..340], "uid").is_ok());
    }

    #[test]
    fn subordinate_blocks() {
        let text = "alice:100000:65536\n1000:200000:1000\nbob:300000:10\nalice:900000:5\n";
        assert_eq!(subid_block(text, Some("alice"), 5), Some((100000, 65536)));
        assert_eq!(subid_block(text, None, 1000), Some((200000, 1000)));
        assert_eq!(subid_block(text, Some("carol"), 7), None);
        assert_eq!(subid_block("garbage\n:::\n", Some("x"), 0), None);
    }

    #[test]
    fn resolves_specials() {
        let parent = parse_proc_map("         0          0 4294967295\n");
        assert_eq!(parent, vec![r(0, 0, u32::MAX)]);
        assert_eq!(
            resolve(MapSpec::All, None, &parent),
            Ok(vec![r(0, 0, u32::MAX)])
        );
        assert_eq!(
            resolve(MapSpec::Auto, Some((100000, 65536)), &parent),
            Ok(vec![r(0, 100000, 65536)])
        );
        assert_eq!(
            resolve(MapSpec::Subids, Some((100000, 65536)), &parent),
            Ok(vec![r(100000, 100000, 65536)])
        );
        assert!(resolve(MapSpec::Auto, None, &parent).is_err());
    }

    #[test]
    fn holes_keep_lines_disjoint() {
        // --map-user=0 with euid 1000 and --map-users=0:100000:65536: inner 0 is taken.
        assert_eq!(
            build(Some((0, 1000)), &[r(0, 100000, 65536)]),
            vec![r(0, 1000, 1), r(1, 100000, 65535)]
        );
        // A hole in the middle on the inner side.
        assert_eq!(
            build(Some((5, 1000)), &[r(0, 100000, 10)]),
            vec![r(5, 1000, 1), r(0, 100000, 5), r(6, 100005, 4)]
        );
        // A hole on the outer side.
        assert_eq!(
            build(Some((70000, 100002)), &[r(0, 100000, 10)]),
            vec![r(70000, 100002, 1), r(0, 100000, 2), r(2, 100003, 7)]
        );
        // No overlap: unchanged.
        assert_eq!(
            build(Some((0, 0)), &[r(1, 1, 9)]),
            vec![r(0, 0, 1), r(1, 1, 9)]
        );
        assert_eq!(build(None, &[r(1, 2, 3)]), vec![r(1, 2, 3)]);
        // A one-id range that is exactly the single id disappears.
        assert_eq!(build(Some((0, 0)), &[r(0, 0, 1)]), vec![r(0, 0, 1)]);
        // Both sides hold the single id: one id is given up, not two (util-linux's `1 1 9`).
        assert_eq!(
            build(Some((0, 0)), &[r(0, 0, 10)]),
            vec![r(0, 0, 1), r(1, 1, 9)]
        );
        assert_eq!(
            build(Some((5, 3)), &[r(0, 0, 10)]),
            vec![r(5, 3, 1), r(0, 0, 3), r(3, 4, 2), r(6, 6, 4)]
        );
        // Ranges keep the order given.
        assert_eq!(
            build(Some((0, 1000)), &[r(0, 100000, 2), r(10, 10, 1)]),
            vec![r(0, 1000, 1), r(1, 100000, 1), r(10, 10, 1)]
        );
        assert_eq!(format(&[r(0, 1000, 1), r(1, 2, 3)]), "0 1000 1\n1 2 3\n");
        assert_eq!(helper_args(&[r(0, 1000, 1)]), vec!["0", "1000", "1"]);
    }
}
