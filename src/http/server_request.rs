//! The server side's request head: parsing it with bounded sizes, and reading it from a TCP
//! stream fed in any order.
//!
//! Follows RFC 9112 §2.2 (a server may ignore empty lines before the request line), §3
//! (request line; §3.2 request-target forms, §3.2 Host), §6.1–§6.3 (a request has a body
//! only with Content-Length or Transfer-Encoding), §9.3 (persistence: HTTP/1.1 keeps the
//! connection unless `close`, HTTP/1.0 closes unless `keep-alive`), RFC 9110 §13.1.2
//! (If-None-Match), §13.1.3 (If-Modified-Since), §13.1.5 (If-Range), §14.1.2 and §14.2
//! (byte ranges) and RFC 6585 §5 (431 for heads that are too large).
//!
//! Only what a static file server needs is kept from the head; everything else is checked
//! for syntax by `httparse` and dropped.

use super::date::parse_http_date;
use super::error::HttpError;
use super::staging::Staging;

/// The largest request head accepted, request line to blank line included (nginx's
/// `large_client_header_buffers` default is 8 KiB per line; one buffer for the whole head
/// keeps a connection's receive memory at this bound).
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// The most header fields accepted in one request head.
pub const MAX_REQUEST_HEADERS: usize = 64;

/// The request method, as far as a static file server cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestMethod {
    Get,
    Head,
    /// Any other token (methods are case-sensitive, RFC 9110 §9.1): answered with 405.
    Other(String),
}

impl RequestMethod {
    fn from_token(token: &str) -> RequestMethod {
        match token {
            "GET" => RequestMethod::Get,
            "HEAD" => RequestMethod::Head,
            other => RequestMethod::Other(other.to_string()),
        }
    }

    /// The method token, for the access log.
    pub fn as_str(&self) -> &str {
        match self {
            RequestMethod::Get => "GET",
            RequestMethod::Head => "HEAD",
            RequestMethod::Other(token) => token,
        }
    }
}

/// One `Range: bytes=…` range (RFC 9110 §14.1.2), not yet resolved against a length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-last` or `first-` (`last` inclusive).
    From { first: u64, last: Option<u64> },
    /// `-suffix`: the last `suffix` bytes.
    Suffix(u64),
}

/// A range resolved against the representation's length: bytes `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SatisfiedRange {
    pub first: u64,
    pub last: u64,
}

impl SatisfiedRange {
    /// The number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a satisfied range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl ByteRange {
    /// The bytes this range selects from a representation of `length` bytes, or `None` when
    /// it is unsatisfiable (RFC 9110 §14.1.2: a first-pos at or past the length, or a suffix
    /// of zero; a last-pos past the end or a suffix longer than the length are clipped).
    pub fn resolve(self, length: u64) -> Option<SatisfiedRange> {
        if length == 0 {
            return None;
        }
        match self {
            ByteRange::From { first, last } => {
                if first >= length {
                    return None;
                }
                let last = last.map_or(length - 1, |last| last.min(length - 1));
                Some(SatisfiedRange { first, last })
            }
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(suffix) => Some(SatisfiedRange {
                first: length - suffix.min(length),
                last: length - 1,
            }),
        }
    }

    /// Parses a Range value holding exactly one byte range; `None` for anything else
    /// (another unit, several ranges, bad syntax), which the server then ignores and answers
    /// with the whole representation, as RFC 9110 §14.2 allows ("A server MAY ignore the
    /// Range header field").
    ///
    /// ```text
    /// ranges-specifier = range-unit "=" range-set
    /// int-range        = first-pos "-" [ last-pos ]
    /// suffix-range     = "-" suffix-length
    /// ```
    pub fn parse(value: &str) -> Option<ByteRange> {
        let (unit, set) = value.trim_matches([' ', '\t']).split_once('=')?;
        // RFC 9110 §14.1: range units are case-insensitive.
        if !unit.trim_matches([' ', '\t']).eq_ignore_ascii_case("bytes") {
            return None;
        }
        let set = set.trim_matches([' ', '\t']);
        if set.contains(',') {
            return None;
        }
        let (first, last) = set.split_once('-')?;
        let (first, last) = (
            first.trim_matches([' ', '\t']),
            last.trim_matches([' ', '\t']),
        );
        if first.is_empty() {
            return Some(ByteRange::Suffix(digits(last)?));
        }
        let first = digits(first)?;
        let last = if last.is_empty() {
            None
        } else {
            Some(digits(last)?)
        };
        // "A client MUST NOT generate a range whose last-pos is less than its first-pos";
        // such a range-set is invalid, so the field is ignored.
        if last.is_some_and(|last| last < first) {
            return None;
        }
        Some(ByteRange::From { first, last })
    }
}

/// 1*DIGIT as a u64; `None` on anything else or on overflow.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Why a request head was refused, each with the status that answers it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The head did not end within [`MAX_REQUEST_HEAD`] bytes.
    #[error("request head is larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    /// More than [`MAX_REQUEST_HEADERS`] fields.
    #[error("request head has more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    /// httparse refused the request line or a field line.
    #[error("malformed request head: {reason}")]
    Malformed { reason: String },
    /// A version other than HTTP/1.0 and HTTP/1.1.
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
    /// RFC 9112 §3.2: an HTTP/1.1 request without exactly one valid Host.
    #[error("HTTP/1.1 request without exactly one Host field")]
    BadHost,
    /// A Content-Length that is not one decimal number.
    #[error("invalid Content-Length in request")]
    BadContentLength,
    /// Bytes beyond the head's window arrived (the peer ignored our receive window).
    #[error("request bytes beyond the receive window")]
    BeyondWindow,
}

impl RequestError {
    /// The status code of the answer (then the connection closes).
    pub fn status(&self) -> u16 {
        match self {
            // RFC 6585 §5: Request Header Fields Too Large.
            RequestError::HeadTooLarge { .. } | RequestError::TooManyHeaders { .. } => 431,
            // RFC 9110 §15.6.6: HTTP Version Not Supported.
            RequestError::UnsupportedVersion => 505,
            RequestError::Malformed { .. }
            | RequestError::BadHost
            | RequestError::BadContentLength
            | RequestError::BeyondWindow => 400,
        }
    }
}

/// What the server keeps of a request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: RequestMethod,
    /// The request-target as sent (origin-form, absolute-form, or `*`), for the path
    /// resolver and the access log.
    pub target: String,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version_minor: u8,
    pub host: Option<String>,
    /// The one byte range asked for, when the Range field held exactly one valid range.
    pub range: Option<ByteRange>,
    /// The raw If-Range value (an entity tag or a date).
    pub if_range: Option<String>,
    /// If-Modified-Since as seconds since the epoch; an invalid date is ignored
    /// (RFC 9110 §13.1.3).
    pub if_modified_since: Option<i64>,
    /// The raw If-None-Match value (a list of entity tags or `*`).
    pub if_none_match: Option<String>,
    /// The connection stays open after the response (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// The request carries a body (Content-Length > 0 or any Transfer-Encoding), which a
    /// static file server never reads: the connection closes after the answer, since the
    /// next request's start cannot be found without reading it.
    pub has_body: bool,
    /// The number of bytes of the head, blank line included.
    pub head_len: usize,
}

/// Parses a request head from the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete, `Ok(Some(head))` once the blank line is
/// in, and an error (with its status, [`RequestError::status`]) when it is malformed or goes
/// over [`MAX_REQUEST_HEAD`] bytes or [`MAX_REQUEST_HEADERS`] fields. Never panics.
pub fn parse_request(buf: &[u8]) -> Result<Option<RequestHead>, RequestError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let window = &buf[..buf.len().min(MAX_REQUEST_HEAD)];
    // httparse skips empty lines before the request line, as RFC 9112 §2.2 asks ("SHOULD
    // ignore at least one empty line (CRLF) received prior to the request-line").
    let head_len = match request.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST_HEAD => {
            return Err(RequestError::HeadTooLarge {
                limit: MAX_REQUEST_HEAD,
            });
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::TooManyHeaders {
                limit: MAX_REQUEST_HEADERS,
            });
        }
        Err(httparse::Error::Version) => return Err(RequestError::UnsupportedVersion),
        Err(e) => {
            return Err(RequestError::Malformed {
                reason: e.to_string(),
            });
        }
    };
    let (Some(method), Some(target), Some(version_minor)) =
        (request.method, request.path, request.version)
    else {
        // Unreachable after Complete, but no panic on any input.
        return Err(RequestError::Malformed {
            reason: "missing request line".to_string(),
        });
    };

    let mut head = RequestHead {
        method: RequestMethod::from_token(method),
        target: target.to_string(),
        version_minor,
        host: None,
        range: None,
        if_range: None,
        if_modified_since: None,
        if_none_match: None,
        keep_alive: version_minor >= 1,
        has_body: false,
        head_len,
    };
    let mut hosts = 0;
    let mut content_length: Option<u64> = None;
    for field in request.headers.iter() {
        let name = field.name;
        let value = String::from_utf8_lossy(field.value);
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            head.host = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("range") {
            // Two Range fields make one invalid list: ignore both.
            head.range = if head.range.is_none() && head.if_range.is_none() {
                ByteRange::parse(value)
            } else {
                None
            };
        } else if name.eq_ignore_ascii_case("if-range") {
            head.if_range = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            head.if_modified_since = parse_http_date(value);
        } else if name.eq_ignore_ascii_case("if-none-match") {
            // RFC 9110 §5.3: several fields are one comma-separated list.
            match &mut head.if_none_match {
                Some(list) => {
                    list.push_str(", ");
                    list.push_str(value);
                }
                None => head.if_none_match = Some(value.to_string()),
            }
        } else if name.eq_ignore_ascii_case("connection") {
            // RFC 9110 §7.6.1: Connection = #connection-option, case-insensitive.
            for option in value.split(',').map(|o| o.trim_matches([' ', '\t'])) {
                if option.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if option.eq_ignore_ascii_case("keep-alive") && version_minor == 0 {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.has_body = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            // RFC 9110 §8.6: a list of identical values is one value.
            for item in value.split(',').map(|v| v.trim_matches([' ', '\t'])) {
                let length = digits(item).ok_or(RequestError::BadContentLength)?;
                if content_length.is_some_and(|first| first != length) {
                    return Err(RequestError::BadContentLength);
                }
                content_length = Some(length);
            }
        }
    }
    head.has_body |= content_length.is_some_and(|length| length > 0);
    if head.has_body {
        head.keep_alive = false;
    }
    // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    // HTTP/1.1 request message that lacks a Host header field and to any request message
    // that contains more than one Host header field line or a Host header field with an
    // invalid field value."
    let host_valid = head.host.as_deref().is_none_or(valid_host);
    if hosts > 1 || (version_minor >= 1 && hosts == 0) || !host_valid {
        return Err(RequestError::BadHost);
    }
    Ok(Some(head))
}

/// RFC 9110 §7.2: Host = uri-host [ ":" port ]; a loose check that refuses what could never
/// be a host: whitespace, '/', '@' (userinfo) and other delimiters.
fn valid_host(host: &str) -> bool {
    host.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:[]%!$&'()*+,;=".contains(&b))
}

/// Reads request heads from a TCP stream fed at stream offsets, in order or not.
///
/// Calling order: [`RequestReader::on_stream`] for every delivered run of bytes (never past
/// [`RequestReader::window_end`], the edge to advertise), then [`RequestReader::next_head`]
/// until it returns `Ok(None)`. A head is consumed when returned; the bytes after it (a
/// pipelined next request) stay staged. Memory is bounded by [`MAX_REQUEST_HEAD`].
#[derive(Debug)]
pub struct RequestReader {
    staging: Staging,
    /// A refused head is sticky: nothing after it can be framed.
    failed: Option<RequestError>,
}

impl Default for RequestReader {
    fn default() -> Self {
        RequestReader::new()
    }
}

impl RequestReader {
    pub fn new() -> RequestReader {
        RequestReader {
            staging: Staging::new(MAX_REQUEST_HEAD),
            failed: None,
        }
    }

    /// Stages the peer's stream bytes `[offset, offset + bytes.len())`.
    pub fn on_stream(&mut self, offset: u64, bytes: &[u8]) -> Result<(), RequestError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        self.staging
            .insert(offset, bytes)
            .map_err(|_: HttpError| self.fail(RequestError::BeyondWindow))
    }

    fn fail(&mut self, error: RequestError) -> RequestError {
        self.staging.release();
        self.failed = Some(error.clone());
        error
    }

    /// The next complete request head, consumed; `Ok(None)` while it is incomplete.
    pub fn next_head(&mut self) -> Result<Option<RequestHead>, RequestError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match parse_request(self.staging.contiguous()) {
            Ok(Some(head)) => {
                self.staging.consume(head.head_len);
                Ok(Some(head))
            }
            Ok(None) => Ok(None),
            Err(error) => Err(self.fail(error)),
        }
    }

    /// The first stream offset the reader cannot take now: the receive window's right edge.
    pub fn window_end(&self) -> u64 {
        self.staging.window_end()
    }

    /// The stream offset up to which heads have been consumed.
    pub fn consumed(&self) -> u64 {
        self.staging.consumed()
    }

    /// True when bytes of a next request are staged (pipelined or partial).
    pub fn has_pending_bytes(&self) -> bool {
        !self.staging.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<RequestHead>, RequestError> {
        parse_request(text.as_bytes())
    }

    fn head(text: &str) -> RequestHead {
        parse(text).expect("parses").expect("complete")
    }

    #[test]
    fn curl_request_parses() {
        let text = "GET /big.iso HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n\
                    Accept: */*\r\n\r\n";
        let h = head(text);
        assert_eq!(h.method, RequestMethod::Get);
        assert_eq!(h.target, "/big.iso");
        assert_eq!(h.version_minor, 1);
        assert_eq!(h.host.as_deref(), Some("10.0.0.1:8080"));
        assert!(h.keep_alive);
        assert!(!h.has_body);
        assert_eq!(h.head_len, text.len());
    }

    #[test]
    fn a_partial_head_waits() {
        for cut in 0.."GET / HTTP/1.1\r\nHost: a\r\n\r\n".len() {
            assert_eq!(
                parse(&"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..cut]),
                Ok(None),
                "{cut}"
            );
        }
    }

    #[test]
    fn persistence_follows_rfc_9112_section_9_3() {
        assert!(head("GET / HTTP/1.1\r\nHost: a\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n").keep_alive);
    }

    #[test]
    fn host_rules_of_rfc_9112_section_3_2() {
        assert_eq!(parse("GET / HTTP/1.1\r\n\r\n"), Err(RequestError::BadHost));
        assert_eq!(
            parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(RequestError::BadHost)
        );
        assert_eq!(
            parse("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
            Err(RequestError::BadHost)
        );
        assert_eq!(
            parse("GET / HTTP/1.1\r\nHost: u@evil\r\n\r\n"),
            Err(RequestError::BadHost)
        );
        // HTTP/1.0 may omit it.
        assert!(head("GET / HTTP/1.0\r\n\r\n").host.is_none());
        assert!(parse("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").is_ok());
    }

    #[test]
    fn methods_are_case_sensitive_tokens() {
        assert_eq!(
            head("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").method,
            RequestMethod::Head
        );
        assert_eq!(
            head("get / HTTP/1.1\r\nHost: a\r\n\r\n").method,
            RequestMethod::Other("get".into())
        );
        assert_eq!(
            head("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n").method.as_str(),
            "DELETE"
        );
    }

    #[test]
    fn malformed_heads_get_their_status() {
        let cases: &[(&str, u16)] = &[
            ("GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", 400),
            ("GET /\r\n\r\n", 400),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            ("GET / HTTP/1.1\r\nBad Name: x\r\nHost: a\r\n\r\n", 400),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
                400,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n",
                400,
            ),
            ("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("\0\0\0\0", 400),
        ];
        for (text, status) in cases {
            match parse(text) {
                Err(e) => assert_eq!(e.status(), *status, "{text:?}: {e}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn size_limits_give_431() {
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_HEAD));
        assert_eq!(
            parse(&long).map_err(|e| e.status()),
            Err(431),
            "an unterminated head at the limit"
        );
        let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..MAX_REQUEST_HEADERS {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(parse(&many).map_err(|e| e.status()), Err(431));
    }

    #[test]
    fn a_body_closes_the_connection() {
        let h = head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
        assert!(h.has_body && !h.keep_alive);
        let h = head("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(h.has_body && !h.keep_alive);
        let h = head("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        assert!(!h.has_body && h.keep_alive);
    }

    #[test]
    fn conditional_fields_are_kept() {
        let h = head(
            "GET / HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             If-None-Match: \"a\"\r\nIf-None-Match: W/\"b\"\r\nIf-Range: \"c\"\r\n\r\n",
        );
        assert_eq!(h.if_modified_since, Some(784_111_777));
        assert_eq!(h.if_none_match.as_deref(), Some("\"a\", W/\"b\""));
        assert_eq!(h.if_range.as_deref(), Some("\"c\""));
        let h = head("GET / HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: yesterday\r\n\r\n");
        assert_eq!(h.if_modified_since, None);
    }

    #[test]
    fn ranges_parse_per_rfc_9110_section_14_1_2() {
        let cases: &[(&str, Option<ByteRange>)] = &[
            (
                "bytes=0-499",
                Some(ByteRange::From {
                    first: 0,
                    last: Some(499),
                }),
            ),
            (
                "bytes=500-",
                Some(ByteRange::From {
                    first: 500,
                    last: None,
                }),
            ),
            ("bytes=-500", Some(ByteRange::Suffix(500))),
            (
                "Bytes = 1-2",
                Some(ByteRange::From {
                    first: 1,
                    last: Some(2),
                }),
            ),
            ("bytes=0-0,-1", None),
            ("bytes=5-4", None),
            ("bytes=-", None),
            ("bytes=a-b", None),
            ("items=0-1", None),
            ("bytes 0-1", None),
            ("bytes=99999999999999999999-", None),
        ];
        for (value, expected) in cases {
            assert_eq!(ByteRange::parse(value), *expected, "{value}");
        }
    }

    #[test]
    fn ranges_resolve_against_a_length() {
        let from = |first, last| ByteRange::From { first, last };
        let sat = |first, last| Some(SatisfiedRange { first, last });
        assert_eq!(from(0, Some(499)).resolve(10_000), sat(0, 499));
        assert_eq!(from(9_500, None).resolve(10_000), sat(9_500, 9_999));
        assert_eq!(from(9_500, Some(20_000)).resolve(10_000), sat(9_500, 9_999));
        assert_eq!(ByteRange::Suffix(500).resolve(10_000), sat(9_500, 9_999));
        assert_eq!(ByteRange::Suffix(20_000).resolve(10_000), sat(0, 9_999));
        assert_eq!(from(10_000, None).resolve(10_000), None);
        assert_eq!(ByteRange::Suffix(0).resolve(10_000), None);
        assert_eq!(from(0, None).resolve(0), None);
        assert_eq!(sat(3, 5).map(|r| r.len()), Some(3));
    }

    #[test]
    fn two_range_fields_are_ignored() {
        let h = head("GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n");
        assert_eq!(h.range, None);
    }

    #[test]
    fn the_reader_takes_bytes_out_of_order_and_pipelined() {
        let two = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut reader = RequestReader::new();
        reader.on_stream(20, &two[20..]).unwrap();
        assert_eq!(reader.next_head(), Ok(None));
        reader.on_stream(0, &two[..20]).unwrap();
        let first = reader.next_head().unwrap().unwrap();
        assert_eq!(first.target, "/a");
        assert!(reader.has_pending_bytes());
        let second = reader.next_head().unwrap().unwrap();
        assert_eq!(
            (second.method, second.target.as_str()),
            (RequestMethod::Head, "/b")
        );
        assert_eq!(reader.next_head(), Ok(None));
        assert!(!reader.has_pending_bytes());
        assert_eq!(reader.consumed(), two.len() as u64);
        assert_eq!(
            reader.window_end(),
            two.len() as u64 + MAX_REQUEST_HEAD as u64
        );
    }

    #[test]
    fn the_reader_refuses_bytes_past_its_window_and_stays_failed() {
        let mut reader = RequestReader::new();
        let too_far = MAX_REQUEST_HEAD as u64;
        assert_eq!(
            reader.on_stream(too_far, b"x"),
            Err(RequestError::BeyondWindow)
        );
        assert_eq!(reader.next_head(), Err(RequestError::BeyondWindow));
        let mut reader = RequestReader::new();
        reader.on_stream(0, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(reader.next_head(), Err(RequestError::BadHost));
        assert_eq!(reader.next_head(), Err(RequestError::BadHost));
    }
}
