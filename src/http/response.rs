//! Parsing a response head: status line and the header fields the download needs.
//!
//! Follows RFC 9112 §4 (status line), §5 (field lines, obs-fold §5.2), §6.1 / §6.2
//! (Transfer-Encoding, Content-Length), RFC 9110 §8.6 (Content-Length as a list of identical
//! values), §14.4 (Content-Range), §7.6.1 (Connection), §10.2.2 (Location).

use super::error::HttpError;

/// The largest response head accepted, status line to blank line included.
pub const MAX_HEAD_LEN: usize = 64 * 1024;
/// The most header fields accepted in one head.
pub const MAX_HEADERS: usize = 128;

/// A parsed response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version_minor: u8,
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: String,
    /// Every field line in order, value trimmed, obs-fold replaced by spaces, invalid UTF-8
    /// replaced (for `--server-response` style printing).
    pub headers: Vec<(String, String)>,
    /// The Content-Length, already checked (RFC 9112 §6.3 item 5).
    pub content_length: Option<u64>,
    /// All Transfer-Encoding field values joined with ", " (RFC 9110 §5.3).
    pub transfer_encoding: Option<String>,
    /// The raw Content-Range value; parse it with [`ResponseHead::content_range`].
    pub content_range_value: Option<String>,
    pub location: Option<String>,
    pub content_type: Option<String>,
    /// True when a Connection field lists `close` (RFC 9112 §9.6).
    pub connection_close: bool,
    /// The number of bytes of the head, blank line included: the body starts here.
    pub head_len: usize,
}

/// A Content-Range value (RFC 9110 §14.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/complete` or `bytes first-last/*`; `last` is inclusive.
    Bytes {
        first: u64,
        last: u64,
        complete_length: Option<u64>,
    },
    /// `bytes */complete`, sent with 416 (Range Not Satisfiable).
    Unsatisfied { complete_length: u64 },
}

impl ContentRange {
    /// Parses a Content-Range value; `None` when it is not valid per RFC 9110 §14.4:
    ///
    /// ```text
    /// Content-Range     = range-unit SP ( range-resp / unsatisfied-range )
    /// range-resp        = incl-range "/" ( complete-length / "*" )
    /// incl-range        = first-pos "-" last-pos
    /// unsatisfied-range = "*/" complete-length
    /// ```
    pub fn parse(value: &str) -> Option<ContentRange> {
        let value = value.trim_matches([' ', '\t']);
        let (unit, rest) = value.split_once(' ')?;
        // RFC 9110 §14.1: range units are compared case-insensitively.
        if !unit.eq_ignore_ascii_case("bytes") {
            return None;
        }
        if let Some(complete) = rest.strip_prefix("*/") {
            return Some(ContentRange::Unsatisfied {
                complete_length: parse_digits(complete)?,
            });
        }
        let (range, complete) = rest.split_once('/')?;
        let (first, last) = range.split_once('-')?;
        let (first, last) = (parse_digits(first)?, parse_digits(last)?);
        let complete_length = match complete {
            "*" => None,
            digits => Some(parse_digits(digits)?),
        };
        // "A Content-Range field value is invalid if it contains a range-resp that has a
        // last-pos value less than its first-pos value, or a complete-length value less
        // than or equal to its last-pos value."
        if last < first || complete_length.is_some_and(|len| len <= last) {
            return None;
        }
        Some(ContentRange::Bytes {
            first,
            last,
            complete_length,
        })
    }

    /// The number of bytes in the range, for `Bytes`.
    pub fn range_len(&self) -> Option<u64> {
        match *self {
            // Only `bytes 0-18446744073709551615` has no u64 length.
            ContentRange::Bytes { first, last, .. } => (last - first).checked_add(1),
            ContentRange::Unsatisfied { .. } => None,
        }
    }
}

/// 1*DIGIT as a u64; `None` on anything else or on overflow.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl ResponseHead {
    /// The Content-Range, parsed: `Ok(None)` when absent, an error when present but invalid.
    pub fn content_range(&self) -> Result<Option<ContentRange>, HttpError> {
        match &self.content_range_value {
            None => Ok(None),
            Some(value) => {
                ContentRange::parse(value)
                    .map(Some)
                    .ok_or_else(|| HttpError::InvalidContentRange {
                        value: value.clone(),
                    })
            }
        }
    }

    /// The first field named `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a response head from the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete, `Ok(Some(head))` once the blank line is
/// in, and an error when the head is malformed or goes over [`MAX_HEAD_LEN`] bytes or
/// [`MAX_HEADERS`] fields.
pub fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, HttpError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let window = &buf[..buf.len().min(MAX_HEAD_LEN)];
    let head_len = match httparse::ParserConfig::default()
        // RFC 9112 §5.2: a user agent replaces each obs-fold with SP.
        .allow_obsolete_multiline_headers_in_responses(true)
        // RFC 9112 §5.1 lets only proxies be strict about "Name : value" in responses.
        .allow_spaces_after_header_name_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .parse_response(&mut response, window)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_LEN => {
            return Err(HttpError::HeadTooLarge {
                limit: MAX_HEAD_LEN,
            });
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders { limit: MAX_HEADERS });
        }
        Err(e) => {
            return Err(HttpError::MalformedHead {
                reason: e.to_string(),
            });
        }
    };
    let (Some(version_minor), Some(status)) = (response.version, response.code) else {
        // Unreachable after Complete, but no panic on any input.
        return Err(HttpError::MalformedHead {
            reason: "missing status line".to_string(),
        });
    };

    let mut head = ResponseHead {
        version_minor,
        status,
        reason: response.reason.unwrap_or("").to_string(),
        headers: Vec::with_capacity(response.headers.len()),
        content_length: None,
        transfer_encoding: None,
        content_range_value: None,
        location: None,
        content_type: None,
        connection_close: false,
        head_len,
    };
    for field in response.headers.iter() {
        let value = field_value(field.value);
        let name = field.name;
        if name.eq_ignore_ascii_case("content-length") {
            let length = parse_content_length(&value)?;
            match head.content_length {
                Some(first) if first != length => {
                    return Err(HttpError::ConflictingContentLength {
                        first,
                        second: length,
                    });
                }
                _ => head.content_length = Some(length),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            append_list(&mut head.transfer_encoding, &value);
        } else if name.eq_ignore_ascii_case("content-range") {
            // A repeated Content-Range joins into a list, which then fails to parse.
            append_list(&mut head.content_range_value, &value);
        } else if name.eq_ignore_ascii_case("location") {
            head.location.get_or_insert_with(|| value.clone());
        } else if name.eq_ignore_ascii_case("content-type") {
            head.content_type.get_or_insert_with(|| value.clone());
        } else if name.eq_ignore_ascii_case("connection") {
            // RFC 9110 §7.6.1: Connection = #connection-option, case-insensitive.
            head.connection_close |= value
                .split(',')
                .any(|option| option.trim().eq_ignore_ascii_case("close"));
        }
        head.headers.push((name.to_string(), value));
    }
    Ok(Some(head))
}

/// A field value as text: obs-fold line breaks become spaces (RFC 9112 §5.2), surrounding
/// whitespace is dropped (RFC 9110 §5.5), invalid UTF-8 is replaced.
fn field_value(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = text.replace(['\r', '\n'], " ");
    text.trim_matches([' ', '\t']).to_string()
}

fn append_list(list: &mut Option<String>, value: &str) {
    match list {
        Some(existing) => {
            existing.push_str(", ");
            existing.push_str(value);
        }
        None => *list = Some(value.to_string()),
    }
}

/// RFC 9110 §8.6: Content-Length = 1*DIGIT; a list of identical values ("42, 42") may be
/// taken as one value, any other list is invalid.
fn parse_content_length(value: &str) -> Result<u64, HttpError> {
    let invalid = || HttpError::InvalidContentLength {
        value: value.to_string(),
    };
    let mut length = None;
    for item in value.split(',') {
        let n = parse_digits(item.trim_matches([' ', '\t'])).ok_or_else(invalid)?;
        match length {
            Some(first) if first != n => {
                return Err(HttpError::ConflictingContentLength { first, second: n });
            }
            _ => length = Some(n),
        }
    }
    length.ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from nginx 1.22.1, see testdata/README.md.
    const NGINX_206: &[u8] = include_bytes!("testdata/nginx-206.http");
    const NGINX_CHUNKED: &[u8] = include_bytes!("testdata/nginx-chunked.http");
    const NGINX_301: &[u8] = include_bytes!("testdata/nginx-301.http");
    const NGINX_416: &[u8] = include_bytes!("testdata/nginx-416.http");

    fn parsed(buf: &[u8]) -> ResponseHead {
        parse_head(buf).unwrap().unwrap()
    }

    #[test]
    fn nginx_partial_content() {
        let head = parsed(NGINX_206);
        assert_eq!(
            (head.status, head.reason.as_str()),
            (206, "Partial Content")
        );
        assert_eq!(head.version_minor, 1);
        assert_eq!(head.content_length, Some(900));
        assert_eq!(
            head.content_range().unwrap(),
            Some(ContentRange::Bytes {
                first: 100,
                last: 999,
                complete_length: Some(1000)
            })
        );
        assert!(head.connection_close);
        assert_eq!(head.content_type.as_deref(), Some("text/plain"));
        assert_eq!(head.header("etag"), Some("\"6b024a79-3e8\""));
        assert_eq!(head.headers.len(), 8);
        assert_eq!(NGINX_206.len() - head.head_len, 900);
    }

    #[test]
    fn nginx_chunked_head_length_excludes_body() {
        let head = parsed(NGINX_CHUNKED);
        assert_eq!(head.transfer_encoding.as_deref(), Some("chunked"));
        assert_eq!(head.content_length, None);
        assert!(NGINX_CHUNKED[head.head_len..].starts_with(b"2d\r\nhello "));
    }

    #[test]
    fn nginx_redirect() {
        let head = parsed(NGINX_301);
        assert_eq!(head.status, 301);
        assert_eq!(head.location.as_deref(), Some("/pub/"));
    }

    #[test]
    fn nginx_unsatisfiable_range() {
        let head = parsed(NGINX_416);
        assert_eq!(head.status, 416);
        assert_eq!(
            head.content_range().unwrap(),
            Some(ContentRange::Unsatisfied {
                complete_length: 1000
            })
        );
    }

    #[test]
    fn partial_heads_wait_for_more() {
        let head_len = parsed(NGINX_206).head_len;
        for end in 0..head_len {
            assert_eq!(parse_head(&NGINX_206[..end]), Ok(None), "cut at {end}");
        }
    }

    #[test]
    fn http_1_0_and_obs_fold() {
        let head =
            parsed(b"HTTP/1.0 200 OK\r\nX-Long: a\r\n  b\r\nContent-Type : text/plain\r\n\r\n");
        assert_eq!(head.version_minor, 0);
        assert_eq!(head.header("x-long"), Some("a    b"));
        assert_eq!(head.content_type.as_deref(), Some("text/plain"));
    }

    #[test]
    fn content_length_lists_and_conflicts() {
        let ok = parsed(b"HTTP/1.1 200 OK\r\nContent-Length: 42, 42\r\nContent-Length: 42\r\n\r\n");
        assert_eq!(ok.content_length, Some(42));
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\nContent-Length: 43\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 42, 7\r\n\r\n",
        ] {
            assert!(matches!(
                parse_head(bad),
                Err(HttpError::ConflictingContentLength { .. })
            ));
        }
        for bad in ["-1", "+5", "0x10", "", "1 2", "18446744073709551616", "4 2"] {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert!(
                matches!(
                    parse_head(text.as_bytes()),
                    Err(HttpError::InvalidContentLength { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn content_range_grammar() {
        use ContentRange::*;
        let cases: &[(&str, Option<ContentRange>)] = &[
            (
                "bytes 0-0/1",
                Some(Bytes {
                    first: 0,
                    last: 0,
                    complete_length: Some(1),
                }),
            ),
            (
                "BYTES 5-9/*",
                Some(Bytes {
                    first: 5,
                    last: 9,
                    complete_length: None,
                }),
            ),
            (
                "bytes */1234",
                Some(Unsatisfied {
                    complete_length: 1234,
                }),
            ),
            ("bytes 9-5/100", None),
            ("bytes 0-100/100", None),
            ("bytes 0-9/0", None),
            ("bytes */*", None),
            ("bytes 0-9", None),
            ("items 0-9/10", None),
            ("bytes -9/10", None),
            ("bytes 0-18446744073709551616/*", None),
            ("bytes 1-2/3, bytes 1-2/3", None),
        ];
        for (text, expected) in cases {
            assert_eq!(ContentRange::parse(text), *expected, "{text}");
        }
        let full = ContentRange::parse("bytes 0-18446744073709551614/*").unwrap();
        assert_eq!(full.range_len(), Some(u64::MAX));
        let all = ContentRange::parse("bytes 0-18446744073709551615/*").unwrap();
        assert_eq!(all.range_len(), None);
    }

    #[test]
    fn invalid_content_range_is_reported_on_demand() {
        let head = parsed(b"HTTP/1.1 200 OK\r\nContent-Range: nonsense\r\n\r\n");
        assert!(matches!(
            head.content_range(),
            Err(HttpError::InvalidContentRange { .. })
        ));
    }

    #[test]
    fn head_size_limit() {
        let mut big = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
        big.resize(MAX_HEAD_LEN, b'a');
        assert_eq!(
            parse_head(&big),
            Err(HttpError::HeadTooLarge {
                limit: MAX_HEAD_LEN
            })
        );
        assert_eq!(parse_head(&big[..MAX_HEAD_LEN - 1]), Ok(None));
        // A head ending exactly at the limit is accepted.
        let mut exact = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
        exact.resize(MAX_HEAD_LEN - 4, b'a');
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parsed(&exact).head_len, MAX_HEAD_LEN);
    }

    #[test]
    fn header_count_limit() {
        let head_with = |n: usize| {
            let mut text = String::from("HTTP/1.1 200 OK\r\n");
            for i in 0..n {
                text.push_str(&format!("X-{i}: v\r\n"));
            }
            text.push_str("\r\n");
            text
        };
        assert_eq!(
            parsed(head_with(MAX_HEADERS).as_bytes()).headers.len(),
            MAX_HEADERS
        );
        assert_eq!(
            parse_head(head_with(MAX_HEADERS + 1).as_bytes()),
            Err(HttpError::TooManyHeaders { limit: MAX_HEADERS })
        );
    }

    #[test]
    fn malformed_heads() {
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad\x01Name: v\r\n\r\n",
            b"<html>",
        ] {
            assert!(
                matches!(parse_head(bad), Err(HttpError::MalformedHead { .. })),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = parse_head(&input);
            let mut head = b"HTTP/1.1 206 X\r\nContent-Range: ".to_vec();
            head.extend_from_slice(&input);
            head.extend_from_slice(b"\r\n\r\n");
            if let Ok(Some(parsed)) = parse_head(&head) {
                let _ = parsed.content_range();
            }
        }
    }
}
