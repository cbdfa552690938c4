//! The access log: one line per request in the Common Log Format (NCSA httpd, as Apache's
//! `common` and nginx's format without its two trailing fields):
//!
//! ```text
//! host ident authuser [day/Mon/year:HH:MM:SS +0000] "request line" status bytes
//! 10.0.0.2 - - [02/Dec/2026:00:40:12 +0000] "GET /big.iso HTTP/1.1" 200 1048576
//! ```
//!
//! `bytes` is the body bytes handed to TCP (`-` for none). The request line is written as
//! received, with `"`, `\` and bytes outside printable ASCII escaped as `\xHH` (as nginx
//! does), so a client cannot forge a line or a terminal escape in the log.

use std::net::IpAddr;

use crate::http::date::civil_from_days;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One request's line, formatted when written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLogEntry {
    pub client: IpAddr,
    /// Seconds since the epoch when the request head arrived.
    pub time: i64,
    /// `METHOD target HTTP/1.x`, or what arrived of it for a refused head.
    pub request_line: String,
    pub status: u16,
    pub body_bytes: u64,
}

impl std::fmt::Display for AccessLogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days = self.time.div_euclid(86_400);
        let secs = self.time.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{} - - [{day:02}/{}/{year:04}:{:02}:{:02}:{:02} +0000] \"{}\" {} ",
            self.client,
            MONTHS[(month - 1) as usize],
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            escape(&self.request_line),
            self.status
        )?;
        if self.body_bytes == 0 {
            f.write_str("-")
        } else {
            write!(f, "{}", self.body_bytes)
        }
    }
}

/// `"`, `\` and anything outside printable ASCII as `\xHH`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("\\x{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_in_common_log_format() {
        let entry = AccessLogEntry {
            client: "10.0.0.2".parse().unwrap(),
            time: 784_111_777,
            request_line: "GET /big.iso HTTP/1.1".into(),
            status: 200,
            body_bytes: 1_048_576,
        };
        assert_eq!(
            entry.to_string(),
            "10.0.0.2 - - [06/Nov/1994:08:49:37 +0000] \"GET /big.iso HTTP/1.1\" 200 1048576"
        );
    }

    #[test]
    fn no_body_is_a_dash_and_hostile_bytes_are_escaped() {
        let entry = AccessLogEntry {
            client: "fd00::2".parse().unwrap(),
            time: 0,
            request_line: "GET /\"\u{1b}[31m\\é HTTP/1.1".into(),
            status: 304,
            body_bytes: 0,
        };
        assert_eq!(
            entry.to_string(),
            "fd00::2 - - [01/Jan/1970:00:00:00 +0000] \
             \"GET /\\x22\\x1B[31m\\x5C\\xC3\\xA9 HTTP/1.1\" 304 -"
        );
    }
}
