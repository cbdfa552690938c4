//! What the simulated HTTP/1.1 server answers: generated resources, with the misbehaviours
//! tests need on demand. It plays nginx's part in the simulator.
//!
//! Routes (`N` and `CUT` are byte counts, `CODE` a status, `REST` any path):
//!
//! | path | answer |
//! |---|---|
//! | `/file/N` | N bytes with Content-Length; honours `Range: bytes=S-` (206, or 416 past the end) |
//! | `/norange/N` | like `/file/N` but ignores Range (always 200) |
//! | `/chunked/N` | N bytes, `Transfer-Encoding: chunked`, chunks of varying size |
//! | `/close/N` | N bytes delimited by closing the connection (no length) |
//! | `/short/N/CUT` | announces N bytes, sends CUT, then closes |
//! | `/redirect/CODE/REST` | CODE with a relative `Location: /REST` |
//! | `/status/CODE` | CODE with a short text body |
//! | `/auth/HEX/REST` | 401 with `WWW-Authenticate: Basic` unless the request carries `Authorization: Basic` for the `user:password` whose bytes HEX spells in hexadecimal (so the password is not in the URL as text); then `/REST` |
//! | `/lastmod/T/REST` | `/REST` with `Last-Modified` at T (seconds since the epoch); 304 when `If-Modified-Since` is T or later (`T!`: never 304, as a server that ignores the condition) |
//! | `/disposition/NAME/REST` | `/REST` with `Content-Disposition: attachment; filename="NAME"` (NAME percent-decoded) |
//! | `/flaky/K/REST` | 503 to the server's first K requests (of any path), then `/REST` |
//! | `/tohttps/REST` | 301 to `https://ADDRESS:TLS_PORT/REST` (with `SimServer::with_tls`) |
//! | `/drip/N/FAST` | like `/file/N`, but content from offset FAST on goes one byte per second |
//!
//! With `SimServer::with_tls` the host also serves the same routes over TLS on a second
//! port (`super::tls`): a complete response ends with `close_notify`, a `/short` one
//! without, as a truncation on the path would look.
//!
//! Every body byte at offset `i` is `content::fill(CONTENT_SEED, i, …)`, so a test checks a
//! download against `content::sha256(CONTENT_SEED, N)`.

use std::time::Duration;

use crate::driver::sim::content;
use crate::time::Instant;

/// The seed of every resource's contents.
pub const CONTENT_SEED: u64 = 0x7864_7067_6574;

/// Bytes generated per body piece handed to the connection.
pub(super) const PIECE: usize = 64 * 1024;

/// The pace of `/drip` past its fast part: one byte per this long.
pub(super) const DRIP_INTERVAL: Duration = Duration::from_secs(1);

/// The bytes of one response still to be queued.
pub(super) struct Response {
    pub(super) head: Vec<u8>,
    pub(super) head_queued: usize,
    /// Content offsets `[next, end)` still to queue.
    pub(super) next: u64,
    pub(super) end: u64,
    /// Close after queueing up to here (`/short`), or after the whole response.
    pub(super) chunked: bool,
    pub(super) chunked_done: bool,
    /// The response is cut short on purpose (`/short`): over TLS, no close_notify.
    pub(super) cut: bool,
    /// Over TLS: the outbox holds ciphertext (sealed), and close_notify is queued.
    pub(super) sealed: bool,
    pub(super) close_notify_queued: bool,
    /// A generated piece waiting for room in the send buffer.
    pub(super) outbox: Vec<u8>,
    pub(super) outbox_sent: usize,
    /// `/drip`: content from this offset on goes one byte per [`DRIP_INTERVAL`]
    /// (`u64::MAX` for every other route), the next byte not before `drip_at`.
    pub(super) drip_from: u64,
    pub(super) drip_at: Option<Instant>,
}

impl Response {
    /// Adds one field line (without CRLF) to the head, before the blank line.
    fn add_header(&mut self, line: &str) {
        let end = self.head.len() - 2;
        let mut field = line.as_bytes().to_vec();
        field.extend_from_slice(b"\r\n");
        self.head.splice(end..end, field);
    }

    /// The head is out and the next content byte is one to drip.
    pub(super) fn dripping(&self) -> bool {
        self.head_queued == self.head.len() && self.next >= self.drip_from && self.next < self.end
    }

    /// When the next dripped byte may be queued, while dripping.
    pub(super) fn next_drip(&self) -> Option<Instant> {
        self.drip_at.filter(|_| self.dripping())
    }

    /// Generates the next piece into the outbox; false when the response is all queued.
    pub(super) fn refill(&mut self) -> bool {
        self.outbox.clear();
        self.outbox_sent = 0;
        self.sealed = false;
        if self.head_queued < self.head.len() {
            self.outbox.extend_from_slice(&self.head);
            self.head_queued = self.head.len();
            return true;
        }
        if self.next < self.end {
            // Vary chunk sizes so chunk boundaries fall everywhere in segments.
            let size = if self.next >= self.drip_from {
                1
            } else if self.chunked {
                (PIECE as u64 - (self.next % 4093)).min(self.end - self.next)
            } else {
                (PIECE as u64)
                    .min(self.end - self.next)
                    .min(self.drip_from - self.next)
            } as usize;
            if self.chunked {
                self.outbox
                    .extend_from_slice(format!("{size:x};sim=1\r\n").as_bytes());
            }
            let start = self.outbox.len();
            self.outbox.resize(start + size, 0);
            content::fill(CONTENT_SEED, self.next, &mut self.outbox[start..]);
            if self.chunked {
                self.outbox.extend_from_slice(b"\r\n");
            }
            self.next += size as u64;
            return true;
        }
        if self.chunked && !self.chunked_done {
            self.chunked_done = true;
            self.outbox
                .extend_from_slice(b"0\r\nX-Trailer: done\r\n\r\n");
            return true;
        }
        false
    }
}

/// Parses a complete request head and builds the response, or `None` while incomplete.
/// `secure_origin` is where `/tohttps` points; `served` counts the requests before this one.
pub(super) fn respond(
    request: &[u8],
    served: u64,
    secure_origin: Option<&str>,
) -> Option<Response> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let status = parsed.parse(request).ok()?;
    if status.is_partial() {
        return None;
    }
    let head_only = parsed.method == Some("HEAD");
    let path = parsed.path.unwrap_or("/");
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let range = header("range").and_then(parse_range);
    let request = RequestView {
        range,
        if_range: header("if-range"),
        head_only,
        authorization: header("authorization"),
        if_modified_since: header("if-modified-since"),
        served,
        secure_origin,
    };
    Some(wrapped_route(path, &request))
}

/// What the wrapping routes look at in a request.
struct RequestView<'a> {
    range: Option<ByteRange>,
    if_range: Option<&'a str>,
    head_only: bool,
    authorization: Option<&'a str>,
    if_modified_since: Option<&'a str>,
    served: u64,
    secure_origin: Option<&'a str>,
}

/// The routes that wrap another (`/auth`, `/lastmod`, `/disposition`, `/flaky`): they add a
/// condition or a header field to the route of the rest of the path.
fn wrapped_route(path: &str, request: &RequestView<'_>) -> Response {
    let trimmed = path.trim_start_matches('/');
    let (first, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let (argument, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let inner = |request: &RequestView<'_>| wrapped_route(&format!("/{rest}"), request);
    match first {
        "auth" => {
            let pair: Vec<u8> = (0..argument.len() / 2)
                .filter_map(|i| u8::from_str_radix(argument.get(2 * i..2 * i + 2)?, 16).ok())
                .collect();
            let expected = format!("Basic {}", crate::http::auth::base64(&pair));
            if request.authorization == Some(expected.as_str()) {
                inner(request)
            } else {
                let mut response = route("/status/401", None, request.head_only, None);
                response.add_header("WWW-Authenticate: Basic realm=\"sim\", charset=\"UTF-8\"");
                response
            }
        }
        "lastmod" => {
            let modified = argument.trim_end_matches('!').parse::<i64>().unwrap_or(0);
            let since = request
                .if_modified_since
                .filter(|_| !argument.ends_with('!'))
                .and_then(crate::http::date::parse_http_date);
            let mut response = if since.is_some_and(|since| since >= modified) {
                empty_response(304)
            } else {
                inner(request)
            };
            let date = crate::http::date::format_http_date(modified);
            response.add_header(&format!("Last-Modified: {date}"));
            response
        }
        "disposition" => {
            let mut response = inner(request);
            let name = crate::http::auth::percent_decode(argument);
            response.add_header(&format!(
                "Content-Disposition: attachment; filename=\"{name}\""
            ));
            response
        }
        // `/etag/TAG/...`: the rest's response with `ETag: "TAG"`, honouring `If-Range`.
        // `/etagafter/K/...`: "v1" for the first K requests, "v2" after: a file that
        // changes on the server in the middle of a segmented download.
        "etag" | "etagafter" => {
            let tag = match first {
                "etag" => format!("\"{argument}\""),
                _ if request.served < argument.parse::<u64>().unwrap_or(0) => "\"v1\"".into(),
                _ => "\"v2\"".into(),
            };
            // RFC 9110 §13.1.5: a validator that does not match means the whole file.
            let range = request
                .range
                .filter(|_| request.if_range.is_none_or(|v| v == tag));
            let path = format!("/{rest}");
            let mut response = route(&path, range, request.head_only, request.secure_origin);
            response.add_header(&format!("ETag: {tag}"));
            response
        }
        "flaky" => {
            if request.served < argument.parse::<u64>().unwrap_or(0) {
                route("/status/503", None, request.head_only, None)
            } else {
                inner(request)
            }
        }
        _ => route(
            path,
            request.range,
            request.head_only,
            request.secure_origin,
        ),
    }
}

/// `Range: bytes=first-[last]` (RFC 9110 §14.1.2), one range, as the engine asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ByteRange {
    first: u64,
    /// Inclusive; `None` to the end.
    last: Option<u64>,
}

fn parse_range(value: &str) -> Option<ByteRange> {
    let (first, last) = value.strip_prefix("bytes=")?.split_once('-')?;
    let first = first.parse().ok()?;
    let last = match last {
        "" => None,
        last => Some(last.parse().ok().filter(|&l| l >= first)?),
    };
    Some(ByteRange { first, last })
}

/// A response without a body (304).
fn empty_response(status: u16) -> Response {
    let mut response = route("/status/200", None, true, None);
    response.head = format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\nServer: xdpget-sim\r\n\r\n",
        reason(status)
    )
    .into_bytes();
    response
}

fn route(
    path: &str,
    range: Option<ByteRange>,
    head_only: bool,
    secure_origin: Option<&str>,
) -> Response {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let number = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
    let drip_from = match parts.first().copied() {
        Some("drip") => number(2).unwrap_or(0),
        _ => u64::MAX,
    };
    let (status, mut headers, body, chunked) = match (parts.first().copied(), number(1)) {
        (Some("file" | "drip"), Some(len)) => match range {
            Some(ByteRange { first, .. }) if first >= len => (
                416,
                format!("Content-Range: bytes */{len}\r\nContent-Length: 0\r\n"),
                0..0,
                false,
            ),
            Some(ByteRange { first, last }) => {
                let end = last.map_or(len, |last| (last + 1).min(len));
                (
                    206,
                    format!(
                        "Content-Range: bytes {first}-{}/{len}\r\nContent-Length: {}\r\n",
                        end - 1,
                        end - first
                    ),
                    first..end,
                    false,
                )
            }
            None => (200, format!("Content-Length: {len}\r\n"), 0..len, false),
        },
        (Some("norange"), Some(len)) => (200, format!("Content-Length: {len}\r\n"), 0..len, false),
        (Some("chunked"), Some(len)) => (
            200,
            "Transfer-Encoding: chunked\r\n".to_string(),
            0..len,
            true,
        ),
        (Some("close"), Some(len)) => (200, String::new(), 0..len, false),
        (Some("short"), Some(len)) => {
            let cut = number(2).unwrap_or(len / 2).min(len);
            (200, format!("Content-Length: {len}\r\n"), 0..cut, false)
        }
        (Some("tohttps"), _) if secure_origin.is_some() => {
            let rest = parts.get(1..).map(|p| p.join("/")).unwrap_or_default();
            let origin = secure_origin.unwrap_or_default();
            (
                301,
                format!("Location: {origin}/{rest}\r\nContent-Length: 0\r\n"),
                0..0,
                false,
            )
        }
        (Some("redirect"), Some(code)) => {
            let rest = parts.get(2..).map(|p| p.join("/")).unwrap_or_default();
            (
                code as u16,
                format!("Location: /{rest}\r\nContent-Length: 0\r\n"),
                0..0,
                false,
            )
        }
        (Some("status"), Some(code)) => (
            code as u16,
            "Content-Length: 10\r\n".to_string(),
            0..10,
            false,
        ),
        _ => (404, "Content-Length: 10\r\n".to_string(), 0..10, false),
    };
    headers.push_str("Connection: close\r\nServer: xdpget-sim\r\n");
    let head = format!("HTTP/1.1 {status} {}\r\n{headers}\r\n", reason(status)).into_bytes();
    let body = if head_only { 0..0 } else { body };
    let cut = parts.first() == Some(&"short");
    Response {
        head,
        head_queued: 0,
        next: body.start,
        end: body.end,
        chunked: chunked && !head_only,
        chunked_done: false,
        cut,
        sealed: false,
        close_notify_queued: false,
        outbox: Vec::with_capacity(PIECE + 64),
        outbox_sent: 0,
        drip_from,
        drip_at: None,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        404 => "Not Found",
        304 => "Not Modified",
        401 => "Unauthorized",
        416 => "Range Not Satisfiable",
        503 => "Service Unavailable",
        500 => "Internal Server Error",
        _ => "Status",
    }
}
