//! Human-readable quantities for simulator settings: `1Gbit`, `20ms`, `64MiB`, `1%`.
//!
//! The command line (`xdpget sim --rate 1Gbit --rtt 20ms --loss 1% --size 64MiB`) speaks in
//! these units. The rules are those of networking practice:
//!
//! - rates are in **bits** per second with decimal prefixes (`k` = 10³, `M` = 10⁶, `G` = 10⁹,
//!   `T` = 10¹²), as link speeds are quoted (`1Gbit`, `100Mbit`, `10kbit`, `1.5Gbit/s`, `1Gbps`);
//! - sizes are in **bytes**, with binary (`KiB`, `MiB`, `GiB`, `TiB`) or decimal (`kB`, `MB`,
//!   `GB`, `TB`) prefixes, or a plain number of bytes;
//! - durations carry a unit (`ns`, `us`/`µs`, `ms`, `s`); only `0` may go without one;
//! - probabilities are percentages with a `%` sign, so that `1` can never be misread as 100 %.

use core::time::Duration;

/// Why a human-written quantity could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("expected a {what}, found an empty string")]
    Empty { what: &'static str },
    #[error("\"{input}\" does not start with a number (expected a {what} such as {example})")]
    NotANumber {
        input: String,
        what: &'static str,
        example: &'static str,
    },
    #[error("\"{input}\" has unknown unit \"{unit}\" (expected one of: {expected})")]
    UnknownUnit {
        input: String,
        unit: String,
        expected: &'static str,
    },
    #[error("\"{input}\" is out of range: {why}")]
    OutOfRange { input: String, why: &'static str },
}

/// Splits `"12.5Mbit"` into `(12.5, "Mbit")`; the number may not be negative.
fn split_number<'a>(
    input: &'a str,
    what: &'static str,
    example: &'static str,
) -> Result<(f64, &'a str), UnitError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(UnitError::Empty { what });
    }
    let number_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(number_end);
    let value: f64 = number.parse().map_err(|_| UnitError::NotANumber {
        input: input.to_string(),
        what,
        example,
    })?;
    Ok((value, unit.trim()))
}

/// Converts a finite, non-negative `value * scale` to an integer, refusing overflow.
fn scaled_to_u64(input: &str, value: f64, scale: f64) -> Result<u64, UnitError> {
    let scaled = (value * scale).round();
    // 2^64 is exactly representable as f64; anything at or above it does not fit.
    if !scaled.is_finite() || scaled >= 18_446_744_073_709_551_616.0 {
        return Err(UnitError::OutOfRange {
            input: input.to_string(),
            why: "the value does not fit in 64 bits",
        });
    }
    // The cast is exact: `scaled` is a non-negative integer below 2^64.
    Ok(scaled as u64)
}

/// A link rate in bits per second: `"1Gbit"`, `"100Mbit"`, `"10kbit"`, `"1.5Gbit/s"`,
/// `"2Mbps"`, `"9600"` (bare numbers are bit/s). Zero is refused: a link that never sends
/// is not a link.
pub fn parse_rate(input: &str) -> Result<u64, UnitError> {
    const EXPECTED: &str = "bit, kbit, Mbit, Gbit, Tbit (optionally /s), or bps, kbps, Mbps, Gbps";
    let (value, unit) = split_number(input, "rate", "100Mbit")?;
    let lower = unit.to_ascii_lowercase();
    let stem = lower
        .strip_suffix("bit/s")
        .or_else(|| lower.strip_suffix("bit"))
        .or_else(|| lower.strip_suffix("bps"));
    let scale = match (unit.is_empty(), stem) {
        (true, _) | (false, Some("")) => 1.0,
        (false, Some("k")) => 1e3,
        (false, Some("m")) => 1e6,
        (false, Some("g")) => 1e9,
        (false, Some("t")) => 1e12,
        _ => {
            return Err(UnitError::UnknownUnit {
                input: input.to_string(),
                unit: unit.to_string(),
                expected: EXPECTED,
            });
        }
    };
    // A capital B means bytes ("MBps", "MB/s"): refuse it rather than guess by a factor of 8.
    if unit.contains('B') {
        return Err(UnitError::UnknownUnit {
            input: input.to_string(),
            unit: unit.to_string(),
            expected: EXPECTED,
        });
    }
    let rate = scaled_to_u64(input, value, scale)?;
    if rate == 0 {
        return Err(UnitError::OutOfRange {
            input: input.to_string(),
            why: "a rate must be at least 1 bit/s",
        });
    }
    Ok(rate)
}

/// A duration: `"20ms"`, `"1s"`, `"250us"`, `"250µs"`, `"1.5ms"`, `"100ns"`, or `"0"`.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let (value, unit) = split_number(input, "duration", "20ms")?;
    let nanos_per_unit = match unit {
        "" if value == 0.0 => 0.0,
        "ns" => 1.0,
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => {
            return Err(UnitError::UnknownUnit {
                input: input.to_string(),
                unit: unit.to_string(),
                expected: "ns, us, ms, s (only 0 may go without a unit)",
            });
        }
    };
    Ok(Duration::from_nanos(scaled_to_u64(
        input,
        value,
        nanos_per_unit,
    )?))
}

/// A size in bytes: `"64MiB"`, `"1GiB"`, `"1000"`, `"10kB"`, `"1.5MB"`, `"512B"`.
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    let (value, unit) = split_number(input, "size", "64MiB")?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(UnitError::UnknownUnit {
                input: input.to_string(),
                unit: unit.to_string(),
                expected: "B, KiB, MiB, GiB, TiB, kB, MB, GB, TB, or a plain number of bytes",
            });
        }
    };
    // Lower-case b is bits in networking ("Mb"): refuse it rather than be off by a factor of 8.
    if unit.ends_with('b') {
        return Err(UnitError::UnknownUnit {
            input: input.to_string(),
            unit: unit.to_string(),
            expected: "a byte unit with a capital B (B, KiB, MiB, GiB, kB, MB, GB)",
        });
    }
    scaled_to_u64(input, value, scale)
}

/// A probability written as a percentage: `"1%"`, `"0.5%"`, `"0%"` (or a bare `"0"`).
/// Returns the fraction in `0.0..=1.0`.
pub fn parse_percent(input: &str) -> Result<f64, UnitError> {
    let (value, unit) = split_number(input, "percentage", "1%")?;
    match unit {
        "%" => {}
        "" if value == 0.0 => {}
        _ => {
            return Err(UnitError::UnknownUnit {
                input: input.to_string(),
                unit: unit.to_string(),
                expected: "% (write 1% rather than 0.01 or 1)",
            });
        }
    }
    if !(0.0..=100.0).contains(&value) {
        return Err(UnitError::OutOfRange {
            input: input.to_string(),
            why: "a percentage must lie between 0% and 100%",
        });
    }
    Ok(value / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1Gbit"), Ok(1_000_000_000));
        assert_eq!(parse_rate("100Mbit"), Ok(100_000_000));
        assert_eq!(parse_rate("10kbit"), Ok(10_000));
        assert_eq!(parse_rate("1.5Gbit/s"), Ok(1_500_000_000));
        assert_eq!(parse_rate("2Mbps"), Ok(2_000_000));
        assert_eq!(parse_rate("9600"), Ok(9600));
        assert_eq!(parse_rate(" 10 Mbit "), Ok(10_000_000));
        assert!(matches!(
            parse_rate("10MB/s"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_rate("10furlongs"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_rate("0bit"),
            Err(UnitError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_rate("-1Mbit"),
            Err(UnitError::NotANumber { .. })
        ));
        assert!(matches!(parse_rate(""), Err(UnitError::Empty { .. })));
        assert!(parse_rate("1e400Gbit").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        let err = parse_duration("20").unwrap_err();
        assert!(
            err.to_string().contains("only 0 may go without a unit"),
            "{err}"
        );
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("20 fortnights").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("10kB"), Ok(10_000));
        assert_eq!(parse_size("1.5MB"), Ok(1_500_000));
        assert_eq!(parse_size("512B"), Ok(512));
        assert!(matches!(
            parse_size("10Mb"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("10 parsecs"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("99999999TiB"),
            Err(UnitError::OutOfRange { .. })
        ));
    }

    #[test]
    fn percents() {
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("0.5%"), Ok(0.005));
        assert_eq!(parse_percent("100%"), Ok(1.0));
        assert_eq!(parse_percent("0"), Ok(0.0));
        assert!(matches!(
            parse_percent("1"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_percent("0.01"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_percent("150%"),
            Err(UnitError::OutOfRange { .. })
        ));
        let err = parse_percent("x%").unwrap_err();
        assert!(
            err.to_string().contains("does not start with a number"),
            "{err}"
        );
    }
}
