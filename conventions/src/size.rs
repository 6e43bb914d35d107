//! Sizes as people type them (`64M`, `1.5G`, `512k`, `max`): binary units, exact, never a panic.

use std::fmt;

/// Why a size did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeError {
    /// Nothing was given.
    Empty,
    /// Not a number with an optional K/M/G/T/P/E suffix.
    Malformed(String),
    /// Larger than 2^64-1 bytes.
    TooLarge(String),
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Empty => write!(f, "empty size (give bytes or a number with K, M, G or T)"),
            SizeError::Malformed(s) => {
                write!(
                    f,
                    "invalid size '{s}' (expected e.g. 4096, 64K, 64M, 1.5G or 2T)"
                )
            }
            SizeError::TooLarge(s) => write!(f, "size '{s}' is too large"),
        }
    }
}

impl std::error::Error for SizeError {}

/// Parses a byte count: digits, an optional fraction, then an optional unit K, M, G, T, P or E
/// (powers of 1024, any case, optionally followed by `iB` or `B`), or a bare `B`.
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(SizeError::Empty);
    }
    let bad = || SizeError::Malformed(input.to_string());
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit_lower = unit.to_ascii_lowercase();
    let stem = unit_lower
        .strip_suffix("ib")
        .or_else(|| unit_lower.strip_suffix('b'))
        .unwrap_or(&unit_lower);
    let shift: u32 = match stem {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        "e" => 60,
        _ => return Err(bad()),
    };
    if unit_lower.ends_with("ib") && stem.is_empty() {
        return Err(bad());
    }
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad());
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let too_large = || SizeError::TooLarge(input.to_string());
    let int: u128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse::<u128>().map_err(|_| too_large())?
    };
    let mut total: u128 = int.checked_shl(shift).ok_or_else(too_large)?;
    if int > u128::from(u64::MAX) {
        return Err(too_large());
    }
    if !frac_part.is_empty() {
        if shift == 0 {
            return Err(bad());
        }
        // Up to 18 fraction digits are exact enough for any unit up to E.
        let digits = &frac_part[..frac_part.len().min(18)];
        let frac: u128 = digits.parse().map_err(|_| bad())?;
        let scale = 10u128.pow(digits.len() as u32);
        total += (frac << shift) / scale;
    }
    u64::try_from(total).map_err(|_| too_large())
}

/// A limit: a size, or `max` (also `-1`, `unlimited`, `infinity`) for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit.
    Max,
    /// At most this many bytes (or units).
    Bytes(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Max => write!(f, "max"),
            Limit::Bytes(n) => write!(f, "{n}"),
        }
    }
}

/// Parses a limit: `max` or a size as [`parse_size`] takes it.
pub fn parse_limit(input: &str) -> Result<Limit, SizeError> {
    match input.trim().to_ascii_lowercase().as_str() {
        "max" | "-1" | "unlimited" | "infinity" => Ok(Limit::Max),
        _ => parse_size(input).map(Limit::Bytes),
    }
}

/// Formats bytes for people: `64M`, `1.5G`, `4096`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 6] = [
        ("E", 60),
        ("P", 50),
        ("T", 40),
        ("G", 30),
        ("M", 20),
        ("K", 10),
    ];
    for (name, shift) in UNITS {
        let unit = 1u64 << shift;
        if bytes >= unit {
            if bytes.is_multiple_of(unit) {
                return format!("{}{name}", bytes >> shift);
            }
            let tenths = (u128::from(bytes) * 10 / u128::from(unit)) as u64;
            return format!("{}.{}{name}", tenths / 10, tenths % 10);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64mb"), Ok(64 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size(".5K"), Ok(512));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size(" 8M "), Ok(8 << 20));
        assert_eq!(parse_size("15E"), Ok(15 << 60));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "", " ", "M", "-1", "1x", "1.2.3", "1..", ".", "1.5", "1iB", "K5", "1 M", "+1", "1e3",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should fail");
        }
        assert!(matches!(parse_size("16E"), Err(SizeError::TooLarge(_))));
        assert!(matches!(
            parse_size("99999999999999999999999999999999999999999"),
            Err(SizeError::TooLarge(_))
        ));
        assert!(matches!(
            parse_size("18446744073709551616"),
            Err(SizeError::TooLarge(_))
        ));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("max"), Ok(Limit::Max));
        assert_eq!(parse_limit("MAX"), Ok(Limit::Max));
        assert_eq!(parse_limit("-1"), Ok(Limit::Max));
        assert_eq!(parse_limit("32M"), Ok(Limit::Bytes(32 << 20)));
        assert!(parse_limit("lots").is_err());
        assert_eq!(Limit::Bytes(5).to_string(), "5");
    }

    #[test]
    fn formats() {
        assert_eq!(format_size(64 << 20), "64M");
        assert_eq!(format_size(3 << 29), "1.5G");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(format_size(1024), "1K");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "\u{0}",
            "١٢",
            "9".repeat(400).as_str(),
            "0.99999999999999999999999999E",
            "1.K",
        ] {
            let _ = parse_size(s);
        }
        assert_eq!(parse_size("1.K"), Ok(1024));
    }
}
