//! From a request head to a response: status, header fields, and where the body comes from.
//!
//! RFC 9110 §9.3.1–§9.3.2 (GET, HEAD: the same fields, no body), §15.5.6 (405 with `Allow`),
//! §13.2.2 (the order conditionals are evaluated in), §13.1.2 (If-None-Match, weak
//! comparison), §13.1.3 (If-Modified-Since), §13.1.5 (If-Range, strong comparison),
//! §14.2–§14.4 (Range, 206 and Content-Range, 416 with `bytes */length`), §8.8.2–§8.8.3
//! (Last-Modified, ETag), §6.6.1 (Date), §15.4.2 (301 with Location), RFC 9112 §9.6
//! (`Connection: close`).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::listing;
use super::mapped::MappedFile;
use super::paths::{OpenFile, PathError, Resolved, Root};
use crate::http::date::format_http_date;
use crate::http::server_request::{RequestHead, RequestMethod, SatisfiedRange};

/// Our `Server` field.
const SERVER: &str = concat!("xdpget/", env!("CARGO_PKG_VERSION"));

/// Where a response's body comes from.
#[derive(Debug)]
pub enum Body {
    /// No body: HEAD, 304, or a body-less status.
    Empty,
    /// A small body made in memory (an error page, a listing).
    Bytes(Vec<u8>),
    /// `len` bytes of an open file from `offset` on, read with `pread` when sent (never
    /// loaded whole): the fallback for a file that cannot be mapped under a lease.
    File { file: File, offset: u64, len: u64 },
    /// `len` bytes of a mapped file from `offset` on, lent to the connection by reference
    /// and copied from the mapping into the transmit frames.
    Mapped {
        file: Arc<MappedFile>,
        offset: u64,
        len: u64,
    },
}

impl Body {
    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File { len, .. } | Body::Mapped { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response ready to send: the head's bytes, then the body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: Vec<u8>,
    pub body: Body,
    /// The connection closes after this response (`Connection: close` was sent).
    pub close: bool,
}

/// The reason phrase of each status we send.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Header fields being collected for one response.
struct HeadBuilder {
    text: String,
}

impl HeadBuilder {
    fn new(status: u16, now: i64) -> HeadBuilder {
        let mut head = HeadBuilder {
            text: format!("HTTP/1.1 {status} {}\r\n", reason(status)),
        };
        head.field("Server", SERVER);
        head.field("Date", &format_http_date(now));
        head
    }

    fn field(&mut self, name: &str, value: &str) {
        self.text.push_str(name);
        self.text.push_str(": ");
        self.text.push_str(value);
        self.text.push_str("\r\n");
    }

    fn finish(mut self, request_minor: u8, close: bool) -> Vec<u8> {
        if close {
            self.field("Connection", "close");
        } else if request_minor == 0 {
            // RFC 9112 §9.3: an HTTP/1.0 client keeps the connection only when told so.
            self.field("Connection", "keep-alive");
        }
        self.text.push_str("\r\n");
        self.text.into_bytes()
    }
}

/// The answer to a request the server refused before it could be understood (a
/// [`crate::http::server_request::RequestError`]) or that timed out: an error page, then
/// the connection closes.
pub fn refusal(status: u16, now: i64) -> Response {
    error_page(status, 1, true, true, now, &[])
}

/// A small HTML error page; `extra` fields (Allow, Location, Content-Range) go in the head.
fn error_page(
    status: u16,
    request_minor: u8,
    with_body: bool,
    close: bool,
    now: i64,
    extra: &[(&str, &str)],
) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{status} {0}</title></head>\n\
         <body><h1>{status} {0}</h1></body></html>\n",
        reason(status)
    );
    let mut head = HeadBuilder::new(status, now);
    for (name, value) in extra {
        head.field(name, value);
    }
    head.field("Content-Type", "text/html; charset=utf-8");
    head.field("Content-Length", &page.len().to_string());
    Response {
        status,
        head: head.finish(request_minor, close),
        body: if with_body {
            Body::Bytes(page.into_bytes())
        } else {
            Body::Empty
        },
        close,
    }
}

/// The response to a parsed request, resolved under `root`; `now` is the wall clock in
/// seconds since the epoch (for `Date`).
pub fn respond(root: &Root, request: &RequestHead, now: i64) -> Response {
    let close = !request.keep_alive;
    let minor = request.version_minor;
    let with_body = match request.method {
        RequestMethod::Get => true,
        RequestMethod::Head => false,
        RequestMethod::Other(_) => {
            // RFC 9110 §15.5.6: a 405 "MUST generate an Allow header field".
            return error_page(405, minor, true, close, now, &[("Allow", "GET, HEAD")]);
        }
    };
    if request.has_body {
        // A GET or HEAD with content: we do not read it, so nothing after it can be framed.
        return error_page(400, minor, with_body, true, now, &[]);
    }
    match root.resolve(&request.target) {
        Ok(Resolved::File(open)) => file_response(request, open, with_body, close, now),
        Ok(Resolved::Listing { dir, url_path }) => {
            listing_response(&dir, &url_path, minor, with_body, close, now)
        }
        Ok(Resolved::AddSlash { location }) => error_page(
            301,
            minor,
            with_body,
            close,
            now,
            &[("Location", &location)],
        ),
        Err(error) => {
            let status = error.status();
            // A target we could not even decode leaves the client's state in doubt.
            let close = close || matches!(error, PathError::BadRequest(_));
            error_page(status, minor, with_body, close, now, &[])
        }
    }
}

fn listing_response(
    dir: &Path,
    url_path: &str,
    minor: u8,
    with_body: bool,
    close: bool,
    now: i64,
) -> Response {
    let Ok(page) = listing::render(dir, url_path) else {
        return error_page(403, minor, with_body, close, now, &[]);
    };
    let mut head = HeadBuilder::new(200, now);
    head.field("Content-Type", "text/html; charset=utf-8");
    head.field("Content-Length", &page.len().to_string());
    Response {
        status: 200,
        head: head.finish(minor, close),
        body: if with_body {
            Body::Bytes(page)
        } else {
            Body::Empty
        },
        close,
    }
}

/// nginx's entity tag: the modification time and the length in hex, strong (a file that
/// changes within the same second with the same length keeps its tag: the same trade-off
/// nginx makes, and Last-Modified has the same resolution).
pub fn entity_tag(open: &OpenFile) -> String {
    format!("\"{:x}-{:x}\"", open.modified, open.len)
}

/// RFC 9110 §13.1.2: If-None-Match is false ("does not match") when `*` or any listed tag
/// matches ours by weak comparison (opaque-tags equal, W/ ignored).
fn none_match_fails(list: &str, ours: &str) -> bool {
    list.split(',')
        .map(|tag| tag.trim_matches([' ', '\t']))
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
}

/// RFC 9110 §13.1.5: If-Range holds when its entity tag matches ours by strong comparison
/// (a weak tag never does), or its date is exactly our Last-Modified.
fn if_range_holds(value: &str, ours: &str, modified: i64) -> bool {
    if value.starts_with('"') {
        value == ours
    } else if value.starts_with("W/") {
        false
    } else {
        crate::http::date::parse_http_date(value) == Some(modified)
    }
}

fn file_response(
    request: &RequestHead,
    open: OpenFile,
    with_body: bool,
    close: bool,
    now: i64,
) -> Response {
    let minor = request.version_minor;
    let etag = entity_tag(&open);
    let last_modified = format_http_date(open.modified);
    // RFC 9110 §13.2.2 steps 3 and 4: If-None-Match, else If-Modified-Since (only for GET
    // and HEAD, which are all we get here).
    let not_modified = match (&request.if_none_match, request.if_modified_since) {
        (Some(list), _) => none_match_fails(list, &etag),
        (None, Some(since)) => open.modified <= since,
        (None, None) => false,
    };
    if not_modified {
        // RFC 9110 §15.4.5: a 304 carries the validators a 200 would, and no content.
        let mut head = HeadBuilder::new(304, now);
        head.field("Last-Modified", &last_modified);
        head.field("ETag", &etag);
        return Response {
            status: 304,
            head: head.finish(minor, close),
            body: Body::Empty,
            close,
        };
    }
    // Step 5: Range, unless If-Range says the client's copy is another representation.
    let range = request.range.filter(|_| {
        request
            .if_range
            .as_deref()
            .is_none_or(|value| if_range_holds(value, &etag, open.modified))
    });
    let content_type = mime_guess::from_path(&open.path)
        .first_raw()
        .unwrap_or("application/octet-stream");
    let satisfied = match range {
        None => None,
        Some(range) => match range.resolve(open.len) {
            Some(satisfied) => Some(satisfied),
            None => {
                // RFC 9110 §15.5.17: 416 with "Content-Range: bytes */complete-length".
                let unsatisfied = format!("bytes */{}", open.len);
                return error_page(
                    416,
                    minor,
                    with_body,
                    close,
                    now,
                    &[("Content-Range", &unsatisfied)],
                );
            }
        },
    };
    let (status, offset, len) = match satisfied {
        Some(SatisfiedRange { first, last }) => (206, first, last - first + 1),
        None => (200, 0, open.len),
    };
    let mut head = HeadBuilder::new(status, now);
    head.field("Content-Type", content_type);
    head.field("Content-Length", &len.to_string());
    head.field("Last-Modified", &last_modified);
    head.field("ETag", &etag);
    head.field("Accept-Ranges", "bytes");
    if let Some(SatisfiedRange { first, last }) = satisfied {
        head.field(
            "Content-Range",
            &format!("bytes {first}-{last}/{}", open.len),
        );
    }
    Response {
        status,
        head: head.finish(minor, close),
        body: if with_body && len > 0 {
            match MappedFile::map(open.file, open.len) {
                Ok(file) => Body::Mapped { file, offset, len },
                Err(file) => Body::File { file, offset, len },
            }
        } else {
            Body::Empty
        },
        close,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::server_request::parse_request;
    use crate::tcp::send_buffer::SharedBytes;
    use std::os::unix::fs::FileExt;

    const NOW: i64 = 1_764_633_600; // 2025-12-02 00:00:00 UTC

    struct Site {
        _tmp: tempfile::TempDir,
        root: Root,
    }

    fn site() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(tmp.path().join("data.bin"), &data).unwrap();
        std::fs::write(tmp.path().join("page.html"), b"<p>hi</p>").unwrap();
        std::fs::write(tmp.path().join("empty.txt"), b"").unwrap();
        std::fs::create_dir(tmp.path().join("dir")).unwrap();
        let root = Root::new(tmp.path()).unwrap();
        Site { _tmp: tmp, root }
    }

    /// The response to `request_line` plus `fields`, with its head as text and its body.
    fn ask(site: &Site, request_line: &str, fields: &str) -> (Response, String, Vec<u8>) {
        let text = format!("{request_line}\r\nHost: h\r\n{fields}\r\n");
        let request = parse_request(text.as_bytes()).unwrap().unwrap();
        let response = respond(&site.root, &request, NOW);
        let head = String::from_utf8(response.head.clone()).unwrap();
        let body = match &response.body {
            Body::Empty => Vec::new(),
            Body::Bytes(bytes) => bytes.clone(),
            Body::File { file, offset, len } => {
                let mut buf = vec![0; *len as usize];
                file.read_exact_at(&mut buf, *offset).unwrap();
                buf
            }
            Body::Mapped { file, offset, len } => {
                file.bytes()[*offset as usize..(offset + len) as usize].to_vec()
            }
        };
        (response, head, body)
    }

    fn field<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
    }

    fn data() -> Vec<u8> {
        (0..10_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn get_a_file() {
        let site = site();
        let (r, head, body) = ask(&site, "GET /data.bin HTTP/1.1", "");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(field(&head, "Content-Length"), Some("10000"));
        assert_eq!(
            field(&head, "Content-Type"),
            Some("application/octet-stream")
        );
        assert_eq!(field(&head, "Accept-Ranges"), Some("bytes"));
        assert_eq!(field(&head, "Date"), Some("Tue, 02 Dec 2025 00:00:00 GMT"));
        assert!(field(&head, "ETag").is_some_and(|t| t.starts_with('"') && t.ends_with("-2710\"")));
        assert!(field(&head, "Last-Modified").is_some());
        assert_eq!(field(&head, "Connection"), None);
        assert!(head.ends_with("\r\n\r\n"));
        assert!(!r.close);
        assert_eq!(body, data());
        assert!(
            matches!(r.body, Body::Mapped { .. }),
            "a file body is mapped"
        );
        let (_, head, _) = ask(&site, "GET /page.html HTTP/1.1", "");
        assert_eq!(field(&head, "Content-Type"), Some("text/html"));
    }

    #[test]
    fn head_has_the_fields_of_get_and_no_body() {
        let site = site();
        let (_, get, _) = ask(&site, "GET /data.bin HTTP/1.1", "");
        let (r, head, body) = ask(&site, "HEAD /data.bin HTTP/1.1", "");
        assert_eq!(head, get);
        assert!(body.is_empty());
        assert!(matches!(r.body, Body::Empty));
    }

    #[test]
    fn other_methods_get_405_with_allow() {
        let site = site();
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
            let (r, head, _) = ask(&site, &format!("{method} /data.bin HTTP/1.1"), "");
            assert_eq!(r.status, 405, "{method}");
            assert_eq!(field(&head, "Allow"), Some("GET, HEAD"));
        }
        // A body we will not read closes the connection.
        let (r, head, _) = ask(&site, "POST / HTTP/1.1", "Content-Length: 3\r\n");
        assert!(r.close);
        assert_eq!(field(&head, "Connection"), Some("close"));
    }

    #[test]
    fn ranges_give_206_or_416() {
        let site = site();
        let (r, head, body) = ask(&site, "GET /data.bin HTTP/1.1", "Range: bytes=100-199\r\n");
        assert_eq!(r.status, 206);
        assert_eq!(field(&head, "Content-Range"), Some("bytes 100-199/10000"));
        assert_eq!(field(&head, "Content-Length"), Some("100"));
        assert_eq!(body, data()[100..200]);
        let (_, head, body) = ask(&site, "GET /data.bin HTTP/1.1", "Range: bytes=-10\r\n");
        assert_eq!(field(&head, "Content-Range"), Some("bytes 9990-9999/10000"));
        assert_eq!(body, data()[9990..]);
        let (_, _, body) = ask(&site, "GET /data.bin HTTP/1.1", "Range: bytes=9000-\r\n");
        assert_eq!(body, data()[9000..]);
        let (r, head, _) = ask(&site, "GET /data.bin HTTP/1.1", "Range: bytes=10000-\r\n");
        assert_eq!(r.status, 416);
        assert_eq!(field(&head, "Content-Range"), Some("bytes */10000"));
        let (r, _, _) = ask(&site, "GET /empty.txt HTTP/1.1", "Range: bytes=0-\r\n");
        assert_eq!(r.status, 416);
        // Several ranges are ignored: the whole file.
        let (r, _, body) = ask(&site, "GET /data.bin HTTP/1.1", "Range: bytes=0-1,5-6\r\n");
        assert_eq!((r.status, body.len()), (200, 10_000));
    }

    #[test]
    fn conditionals_give_304() {
        let site = site();
        let (_, head, _) = ask(&site, "GET /data.bin HTTP/1.1", "");
        let etag = field(&head, "ETag").unwrap().to_string();
        let modified = field(&head, "Last-Modified").unwrap().to_string();
        for fields in [
            format!("If-None-Match: {etag}\r\n"),
            format!("If-None-Match: \"x\", W/{etag}\r\n"),
            "If-None-Match: *\r\n".to_string(),
            format!("If-Modified-Since: {modified}\r\n"),
            // A date after the file's time (2100-01-01).
            format!("If-Modified-Since: {}\r\n", format_http_date(4_102_444_800)),
        ] {
            let (r, head, body) = ask(&site, "GET /data.bin HTTP/1.1", &fields);
            assert_eq!(r.status, 304, "{fields}");
            assert_eq!(field(&head, "ETag"), Some(etag.as_str()));
            assert!(body.is_empty());
        }
        for fields in [
            "If-None-Match: \"other\"\r\n".to_string(),
            "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n".to_string(),
            // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
            format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {modified}\r\n"),
        ] {
            let (r, _, _) = ask(&site, "GET /data.bin HTTP/1.1", &fields);
            assert_eq!(r.status, 200, "{fields}");
        }
    }

    #[test]
    fn if_range_decides_between_206_and_200() {
        let site = site();
        let (_, head, _) = ask(&site, "GET /data.bin HTTP/1.1", "");
        let etag = field(&head, "ETag").unwrap().to_string();
        let modified = field(&head, "Last-Modified").unwrap().to_string();
        let range = "Range: bytes=0-9\r\n";
        for (if_range, status) in [
            (etag.clone(), 206),
            (modified, 206),
            ("\"old\"".to_string(), 200),
            (format!("W/{etag}"), 200),
            ("Thu, 01 Jan 1970 00:00:00 GMT".to_string(), 200),
        ] {
            let (r, _, _) = ask(
                &site,
                "GET /data.bin HTTP/1.1",
                &format!("{range}If-Range: {if_range}\r\n"),
            );
            assert_eq!(r.status, status, "{if_range}");
        }
    }

    #[test]
    fn errors_and_redirects() {
        let site = site();
        let (r, head, body) = ask(&site, "GET /missing HTTP/1.1", "");
        assert_eq!(r.status, 404);
        assert!(String::from_utf8(body).unwrap().contains("404 Not Found"));
        assert!(!r.close, "a 404 keeps the connection");
        assert_eq!(
            field(&head, "Content-Type"),
            Some("text/html; charset=utf-8")
        );
        let (r, _, _) = ask(&site, "GET /../etc/passwd HTTP/1.1", "");
        assert_eq!(r.status, 403);
        let (r, head, _) = ask(&site, "GET /%zz HTTP/1.1", "");
        assert_eq!((r.status, r.close), (400, true));
        assert_eq!(field(&head, "Connection"), Some("close"));
        let (r, head, _) = ask(&site, "GET /dir HTTP/1.1", "");
        assert_eq!(r.status, 301);
        assert_eq!(field(&head, "Location"), Some("/dir/"));
        let (r, head, body) = ask(&site, "GET / HTTP/1.1", "");
        assert_eq!(r.status, 200);
        assert_eq!(
            field(&head, "Content-Length"),
            Some(body.len().to_string().as_str())
        );
        assert!(String::from_utf8(body).unwrap().contains("data.bin"));
    }

    #[test]
    fn http_1_0_keep_alive_is_confirmed() {
        let site = site();
        let (r, head, _) = ask(
            &site,
            "GET /page.html HTTP/1.0",
            "Connection: keep-alive\r\n",
        );
        assert!(!r.close);
        assert_eq!(field(&head, "Connection"), Some("keep-alive"));
        let (r, head, _) = ask(&site, "GET /page.html HTTP/1.0", "");
        assert!(r.close);
        assert_eq!(field(&head, "Connection"), Some("close"));
    }

    #[test]
    fn a_refusal_closes() {
        let r = refusal(431, NOW);
        assert!(r.close);
        let head = String::from_utf8(r.head).unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert_eq!(field(&head, "Connection"), Some("close"));
        assert_eq!(
            field(&head, "Content-Length"),
            Some(r.body.len().to_string().as_str())
        );
    }
}
