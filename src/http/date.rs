//! HTTP dates (RFC 9110 §5.6.7): `Last-Modified` in, `If-Modified-Since` out.
//!
//! A recipient must accept all three formats; a sender sends only IMF-fixdate:
//!
//! ```text
//! IMF-fixdate  = day-name "," SP date1 SP time-of-day SP GMT   ; Sun, 06 Nov 1994 08:49:37 GMT
//! rfc850-date  = day-name-l "," SP date2 SP time-of-day SP GMT ; Sunday, 06-Nov-94 08:49:37 GMT
//! asctime-date = day-name SP date3 SP time-of-day SP year      ; Sun Nov  6 08:49:37 1994
//! ```
//!
//! Times are seconds since the Unix epoch (UTC); the day name is not checked against the date.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Parses any of the three formats into seconds since the epoch; `None` when invalid.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let (_, rest) = text.split_once([',', ' '])?;
    let fields: Vec<&str> = rest.split([' ', '-']).filter(|f| !f.is_empty()).collect();
    let (day, month, year, time) = match fields.as_slice() {
        // IMF-fixdate and rfc850-date: day month year time GMT
        [day, month, year, time, "GMT"] => (*day, *month, *year, *time),
        // asctime-date: month day time year
        [month, day, time, year] => (*day, *month, *year, *time),
        _ => return None,
    };
    let day: u32 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let mut year: i64 = year.parse().ok()?;
    if year < 100 {
        // RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is in the past
        // century; for the dates a server sends, 70..99 → 19xx, 00..69 → 20xx is that rule.
        year += if year >= 70 { 1900 } else { 2000 };
    }
    let mut hms = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + i64::from(h * 3600 + m * 60 + s))
}

/// Formats seconds since the epoch as IMF-fixdate.
pub fn format_http_date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day) of a day since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9110 §5.6.7's example instant, 1994-11-06 08:49:37 UTC.
    const EXAMPLE: i64 = 784_111_777;

    #[test]
    fn all_three_formats_of_rfc_9110_parse_to_one_instant() {
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(text), Some(EXAMPLE), "{text}");
        }
    }

    #[test]
    fn formatting_is_imf_fixdate_and_round_trips() {
        assert_eq!(format_http_date(EXAMPLE), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        for t in [0, EXAMPLE, 951_782_400, 1_709_210_096, 4_102_444_800] {
            assert_eq!(parse_http_date(&format_http_date(t)), Some(t), "{t}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        for text in [
            "",
            "yesterday",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37 CET",
        ] {
            assert_eq!(parse_http_date(text), None, "{text}");
        }
    }
}
