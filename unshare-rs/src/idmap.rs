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

/// Removes one id from a range on the inner side (`inner_side`) or the outer side, keeping the
/// other side contiguous: the ids after the hole move down by one, so the topmost id of the
/// other side is the one left unmapped.
fn punch(r: Range, id: u32, inner_side: bool) -> Vec<Range> {
    let (start, other) = if inner_side {
        (r.inner, r.outer)
    } else {
        (r.outer, r.inner)
    };
    let end = u64::from(start) + u64::from(r.count);
    if u64::from(id) < u64::from(start) || u64::from(id) >= end {
        return vec![r];
    }
    let before = id - start;
    let after = r.count - before - 1;
    let make = |s: u32, o: u32, count: u32| {
        if inner_side {
            Range {
                inner: s,
                outer: o,
                count,
            }
        } else {
            Range {
                inner: o,
                outer: s,
                count,
            }
        }
    };
    let mut out = Vec::new();
    if before > 0 {
        out.push(make(start, other, before));
    }
    if after > 0 {
        out.push(make(id + 1, other + before, after));
    }
    out
}

/// The lines of a map: the single id (`inner`, `outer`) first, then the ranges with holes punched
/// where they would overlap it (the kernel rejects overlapping lines).
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
        let mut pieces = vec![r];
        if let Some((inner, outer)) = single {
            pieces = pieces
                .into_iter()
                .flat_map(|p| punch(p, inner, true))
                .flat_map(|p| punch(p, outer, false))
                .collect();
        }
        out.extend(pieces);
    }
    out
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
        assert_eq!(format(&[r(0, 1000, 1), r(1, 2, 3)]), "0 1000 1\n1 2 3\n");
        assert_eq!(helper_args(&[r(0, 1000, 1)]), vec!["0", "1000", "1"]);
    }
}
