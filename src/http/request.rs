//! Building the one request of a connection.
//!
//! Follows RFC 9112 §3 (request line, origin-form), §9.6 (`Connection: close`), RFC 9110 §7.2
//! (`Host`), §10.1.5 (`User-Agent`), §12.5.1 (`Accept`), §12.5.3 (`Accept-Encoding: identity`,
//! so that the body is the file itself) and §14.2 (`Range: bytes=N-` to resume), and §5.1 /
//! §5.5 for what a field name and a field value may contain.

use super::error::HttpError;
use super::proxy::Proxy;
use super::url::Target;

/// The request method: GET to download, HEAD for `--spider`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
}

impl Method {
    /// The method token as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }
}

/// The default `User-Agent`, `xdpget/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("xdpget/", env!("CARGO_PKG_VERSION"));

/// Headers the exchange depends on; a user header of one of these names is refused.
const RESERVED: &[(&str, &str)] = &[
    ("range", " (use -c/--continue to resume)"),
    ("connection", ""),
    ("transfer-encoding", ""),
    ("content-length", ""),
    ("te", ""),
    ("upgrade", ""),
];

/// One validated header field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl Header {
    /// Validates a name and a value (RFC 9110 §5.1 token, §5.5 field-value): no CR, LF, NUL
    /// or other control character can reach the wire. The value is trimmed of surrounding
    /// whitespace.
    pub fn new(name: &str, value: &str) -> Result<Header, HttpError> {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(HttpError::InvalidHeaderName {
                name: name.to_string(),
            });
        }
        let value = value.trim_matches([' ', '\t']);
        // field-value = *field-content; field-vchar = VCHAR / obs-text, plus SP and HTAB
        // inside. obs-text (0x80-0xFF) covers UTF-8 bytes.
        let valid_byte = |b: u8| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
        if !value.bytes().all(valid_byte) {
            return Err(HttpError::InvalidHeaderValue {
                name: name.to_string(),
            });
        }
        Ok(Header {
            name: name.to_string(),
            value: value.to_string(),
        })
    }

    /// Parses a `--header 'Name: value'` argument.
    pub fn parse_argument(argument: &str) -> Result<Header, HttpError> {
        let Some((name, value)) = argument.split_once(':') else {
            return Err(HttpError::MalformedHeaderArgument {
                header: argument.to_string(),
            });
        };
        Header::new(name, value)
    }
}

/// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
/// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Everything that goes into the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub target: Target,
    pub method: Method,
    /// `Some(n)` asks for the representation from byte `n` on (`Range: bytes=n-`).
    pub range_start: Option<u64>,
    /// With `range_start`: the range ends before this byte (`Range: bytes=n-(end-1)`); one
    /// connection's piece of a segmented download (`-x`).
    pub range_end: Option<u64>,
    /// `If-Range` (RFC 9110 §13.1.5): the validator (a strong `ETag`, else the
    /// `Last-Modified` date) the range must be of; a server whose copy changed sends the
    /// whole new representation (200) instead of the range.
    pub if_range: Option<String>,
    /// Replaces [`DEFAULT_USER_AGENT`] (wget's `-U`).
    pub user_agent: Option<String>,
    /// The user's `--header`s; one named like a default header (Host, User-Agent, Accept,
    /// Accept-Encoding) replaces it, as in wget.
    pub extra_headers: Vec<Header>,
    /// wget's `--ignore-length`: the response's Content-Length is not trusted; a body
    /// without chunked coding then ends when the server closes (RFC 9112 §6.3 item 8).
    pub ignore_length: bool,
    /// The HTTP proxy the request goes through (`http::proxy`): a plain `http://` request
    /// is asked of it in absolute form (RFC 9112 §3.2.2) with its `Proxy-Authorization`; an
    /// `https://` one goes through a `CONNECT` tunnel (the engine's job) and is encoded as
    /// for the origin server.
    pub proxy: Option<Proxy>,
}

impl Request {
    /// A plain `GET` of `target` with the default headers.
    pub fn get(target: Target) -> Request {
        Request {
            target,
            method: Method::Get,
            range_start: None,
            range_end: None,
            if_range: None,
            user_agent: None,
            extra_headers: Vec::new(),
            ignore_length: false,
            proxy: None,
        }
    }

    /// The request bytes, ready for the TCP send buffer.
    pub fn encode(&self) -> Result<Vec<u8>, HttpError> {
        for header in &self.extra_headers {
            // Re-validate: the fields are public and could have been built by hand.
            Header::new(&header.name, &header.value)?;
            let lower = header.name.to_ascii_lowercase();
            if let Some((name, hint)) = RESERVED.iter().find(|(n, _)| *n == lower) {
                return Err(HttpError::ReservedHeader {
                    name: (*name).to_string(),
                    hint,
                });
            }
        }
        let user_agent = match &self.user_agent {
            Some(agent) => Header::new("User-Agent", agent)?.value,
            None => DEFAULT_USER_AGENT.to_string(),
        };
        // RFC 9110 §14.1.2: byte-range-spec = first-pos "-" [ last-pos ], last inclusive.
        let range = match (self.range_start, self.range_end) {
            (Some(start), Some(end)) if end > start => Some(format!("bytes={start}-{}", end - 1)),
            (Some(start), _) => Some(format!("bytes={start}-")),
            (None, _) => None,
        };
        // A validator comes from a response head; checked like any field value.
        let if_range = match self.if_range.as_ref().filter(|_| range.is_some()) {
            Some(validator) => Some(Header::new("If-Range", validator)?.value),
            None => None,
        };
        let host = self.target.host_header();
        let defaults: [(&str, Option<&str>); 7] = [
            ("Host", Some(&host)),
            ("User-Agent", Some(&user_agent)),
            ("Accept", Some("*/*")),
            ("Accept-Encoding", Some("identity")),
            ("Range", range.as_deref()),
            ("If-Range", if_range.as_deref()),
            // One request per connection: the server closes after the response.
            ("Connection", Some("close")),
        ];

        let mut out = Vec::with_capacity(256 + self.target.path_and_query.len());
        // RFC 9112 §3: request-line = method SP request-target SP HTTP-version CRLF
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        let via_proxy = self.proxy.as_ref().filter(|_| !self.target.is_https());
        let request_target = match via_proxy {
            Some(_) => self.target.url.as_str(),
            None => &self.target.path_and_query,
        };
        out.extend_from_slice(request_target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in defaults {
            let Some(value) = value else { continue };
            let overridden = self
                .extra_headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case(name));
            if !overridden {
                push_field(&mut out, name, value);
            }
        }
        for header in &self.extra_headers {
            push_field(&mut out, &header.name, &header.value);
        }
        if let Some(header) = via_proxy.map(Proxy::authorization).transpose()?.flatten() {
            push_field(&mut out, &header.name, &header.value);
        }
        out.extend_from_slice(b"\r\n");
        Ok(out)
    }
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> Request {
        Request::get(Target::parse(url).unwrap())
    }

    fn text(r: &Request) -> String {
        String::from_utf8(r.encode().unwrap()).unwrap()
    }

    #[test]
    fn plain_get() {
        let expected = format!(
            "GET /pub/file.iso?v=2 HTTP/1.1\r\n\
             Host: example.com\r\n\
             User-Agent: xdpget/{}\r\n\
             Accept: */*\r\n\
             Accept-Encoding: identity\r\n\
             Connection: close\r\n\
             \r\n",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(
            text(&request("http://example.com/pub/file.iso?v=2")),
            expected
        );
    }

    #[test]
    fn a_piece_asks_for_a_closed_range_of_one_version() {
        let mut r = request("http://10.0.0.2/big");
        r.range_start = Some(1024);
        r.range_end = Some(2048);
        r.if_range = Some("\"5f3a-40000000\"".into());
        let encoded = text(&r);
        assert!(
            encoded.contains("\r\nRange: bytes=1024-2047\r\n"),
            "{encoded}"
        );
        assert!(
            encoded.contains("\r\nIf-Range: \"5f3a-40000000\"\r\n"),
            "{encoded}"
        );
        // Without a range, If-Range means nothing (RFC 9110 §13.1.5) and is not sent.
        r.range_start = None;
        assert!(!text(&r).contains("If-Range"));
        // A validator with a line break would smuggle a header: refused.
        r.range_start = Some(0);
        r.if_range = Some("x\r\nEvil: 1".into());
        assert!(r.encode().is_err());
    }

    #[test]
    fn head_with_range_and_port() {
        let mut r = request("http://10.0.0.2:8080/big");
        r.method = Method::Head;
        r.range_start = Some(1_048_576);
        r.user_agent = Some("Wget/1.21".into());
        assert_eq!(
            text(&r),
            "HEAD /big HTTP/1.1\r\n\
             Host: 10.0.0.2:8080\r\n\
             User-Agent: Wget/1.21\r\n\
             Accept: */*\r\n\
             Accept-Encoding: identity\r\n\
             Range: bytes=1048576-\r\n\
             Connection: close\r\n\
             \r\n"
        );
    }

    #[test]
    fn absolute_form_for_a_proxy() {
        let mut r = request("http://example.com:8080/a/b?c=d#frag");
        r.proxy = Some(Proxy::parse("http://u:p@proxy:3128").unwrap());
        let sent = text(&r);
        assert!(
            sent.starts_with(
                "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n"
            ),
            "{sent}"
        );
        assert!(
            sent.ends_with("Proxy-Authorization: Basic dTpw\r\n\r\n"),
            "{sent}"
        );
        // HTTPS goes through a tunnel: origin form, and no proxy credentials inside it.
        let mut r = request("https://example.com/a");
        r.proxy = Some(Proxy::parse("http://u:p@proxy:3128").unwrap());
        let sent = text(&r);
        assert!(sent.starts_with("GET /a HTTP/1.1\r\n"), "{sent}");
        assert!(!sent.contains("Proxy-Authorization"), "{sent}");
    }

    #[test]
    fn extra_headers_append_or_replace_defaults() {
        let mut r = request("http://h/");
        r.extra_headers = vec![
            Header::parse_argument("accept:  text/html ").unwrap(),
            Header::parse_argument("X-Trace: a=b; c").unwrap(),
        ];
        assert_eq!(
            text(&r),
            format!(
                "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: {DEFAULT_USER_AGENT}\r\n\
                 Accept-Encoding: identity\r\nConnection: close\r\n\
                 accept: text/html\r\nX-Trace: a=b; c\r\n\r\n"
            )
        );
    }

    #[test]
    fn header_injection_is_refused() {
        for value in ["a\r\nEvil: 1", "a\nb", "a\rb", "a\0b", "a\x7fb", "a\x01"] {
            assert!(matches!(
                Header::new("X", value),
                Err(HttpError::InvalidHeaderValue { .. })
            ));
        }
        for name in ["", "Bad Name", "Bad:Name", "X\r\n", "é"] {
            assert!(matches!(
                Header::new(name, "v"),
                Err(HttpError::InvalidHeaderName { .. })
            ));
        }
        assert!(matches!(
            Header::parse_argument("no colon"),
            Err(HttpError::MalformedHeaderArgument { .. })
        ));
        // A hand-built header is checked again when encoding.
        let mut r = request("http://h/");
        r.extra_headers.push(Header {
            name: "X".into(),
            value: "1\r\n\r\nGET /other".into(),
        });
        assert!(r.encode().is_err());
        let mut r = request("http://h/");
        r.user_agent = Some("ua\r\nX: y".into());
        assert!(r.encode().is_err());
    }

    #[test]
    fn reserved_headers_are_refused() {
        let mut r = request("http://h/");
        r.extra_headers
            .push(Header::parse_argument("Range: bytes=0-10").unwrap());
        let e = r.encode().unwrap_err();
        assert!(e.to_string().contains("-c/--continue"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }
}
