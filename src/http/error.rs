//! Errors of the HTTP layer, one clear sentence each, and the wget exit code each maps to.
//!
//! wget's exit codes (wget(1), "EXIT STATUS"): 1 generic error (and a URL wget cannot parse or
//! use), 2 parse error (command line), 4 network failure, 7 protocol error, 8 the server issued an error response.

/// Everything that can go wrong between building the request and the last body byte.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    // --- URLs (exit 2, HTTPS 1) ---
    /// The user's URL could not be parsed at all.
    #[error("cannot parse URL '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },
    /// Any scheme other than `http` and `https`.
    #[error("{url}: Unsupported scheme '{scheme}'")]
    UnsupportedScheme { scheme: String, url: String },
    /// The URL names no host (`http:///path`).
    #[error("URL '{url}' has no host")]
    MissingHost { url: String },
    /// Internationalised host names are not converted for the user.
    #[error(
        "host in URL '{url}' is not ASCII: write internationalised names in punycode (xn--...)"
    )]
    NonAsciiHost { url: String },
    /// `user:password@` in the URL.
    #[error("URL '{url}' carries credentials (user@host): authentication is not supported")]
    CredentialsUnsupported { url: String },
    /// A redirect's `Location` could not be resolved against the current URL.
    #[error("redirect to '{location}' cannot be followed: {reason}")]
    BadRedirect { location: String, reason: String },

    // --- request headers the user supplied (exit 2) ---
    /// A header name that is not an RFC 9110 token.
    #[error("invalid header name '{name}': a name is letters, digits and !#$%&'*+-.^_`|~ only")]
    InvalidHeaderName { name: String },
    /// A header value with CR, LF, NUL or another control character (header injection).
    #[error("invalid value for header '{name}': it contains a line break or control character")]
    InvalidHeaderValue { name: String },
    /// A `--header` argument without a colon.
    #[error("header '{header}' is not of the form 'Name: value'")]
    MalformedHeaderArgument { header: String },
    /// A header the exchange depends on, which the user may not set by hand.
    #[error("header '{name}' is managed by xdpget and cannot be set by hand{hint}")]
    ReservedHeader { name: String, hint: &'static str },

    // --- response head (exit 7) ---
    /// The head did not end within the size limit.
    #[error("response head is larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    /// More header lines than we accept.
    #[error("response head has more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    /// httparse rejected the status line or a header line.
    #[error("malformed response head: {reason}")]
    MalformedHead { reason: String },
    /// `101 Switching Protocols`, which we never asked for.
    #[error("server switched protocols (101) without being asked")]
    UnexpectedSwitchingProtocols,
    /// Content-Length that is not a decimal number of bytes (RFC 9110 §8.6).
    #[error("invalid Content-Length '{value}'")]
    InvalidContentLength { value: String },
    /// Two Content-Length values that disagree (RFC 9112 §6.3 item 5).
    #[error("conflicting Content-Length values {first} and {second}")]
    ConflictingContentLength { first: u64, second: u64 },
    /// A Content-Range we need that does not follow RFC 9110 §14.4.
    #[error("invalid Content-Range '{value}'")]
    InvalidContentRange { value: String },
    /// A transfer coding other than chunked (we asked for none).
    #[error("unsupported Transfer-Encoding '{value}': only chunked is understood")]
    UnsupportedTransferEncoding { value: String },
    /// A 206 whose range does not start where we asked.
    #[error("server sent a range starting at byte {got} but xdpget asked for byte {requested}")]
    RangeMismatch { requested: u64, got: u64 },
    /// A 206 without a usable single byte range.
    #[error("partial content (206) without a single byte range in Content-Range")]
    PartialWithoutRange,
    /// A 206 whose Content-Length disagrees with its Content-Range.
    #[error("Content-Length {content_length} disagrees with Content-Range length {range_length}")]
    RangeLengthMismatch {
        content_length: u64,
        range_length: u64,
    },
    /// A redirect status without a `Location` to go to.
    #[error("redirect ({status}) without a Location header")]
    RedirectWithoutLocation { status: u16 },

    // --- chunked body (exit 7) ---
    /// A chunk size line that is not hexadecimal digits (RFC 9112 §7.1).
    #[error("invalid chunk size in chunked body")]
    InvalidChunkSize,
    /// A chunk size larger than 2^64 - 1.
    #[error("chunk size in chunked body overflows 64 bits")]
    ChunkSizeOverflow,
    /// A missing CRLF after a chunk size line, chunk data or the trailer section.
    #[error("missing CRLF in chunked body")]
    MissingChunkCrlf,
    /// A chunked 206 whose body length differs from its Content-Range.
    #[error("chunked body carried {got} bytes where Content-Range announced {expected}")]
    ChunkedLengthMismatch { got: u64, expected: u64 },
    /// A chunk extension or trailer section beyond our limits.
    #[error("chunk extension or trailer section longer than {limit} bytes")]
    ChunkMetadataTooLong { limit: usize },

    // --- reassembly (exit 7) ---
    /// The TCP layer delivered bytes further ahead than the staging window holds.
    #[error(
        "stream bytes up to offset {end} arrived while only {window} bytes past offset {consumed} can be staged"
    )]
    ReassemblyWindowExceeded {
        end: u64,
        consumed: u64,
        window: u64,
    },

    // --- server said no (exit 8) ---
    /// A 4xx or 5xx answer (or another status we cannot use).
    #[error("server answered {status} {reason}")]
    ServerError { status: u16, reason: String },

    // --- proxies ---
    /// `http_proxy`/`https_proxy` holds something that is not an http:// proxy URL (exit 1).
    #[error("cannot use the proxy setting '{setting}': {reason}")]
    InvalidProxy { setting: String, reason: String },
    /// The proxy answered our `CONNECT` with something other than 2xx (exit 4, as wget's
    /// "Proxy tunneling failed").
    #[error("Proxy tunneling failed: {status} {reason}")]
    ProxyTunnel { status: u16, reason: String },

    // --- the connection ended early (exit 4) ---
    /// The connection closed before a single response byte.
    #[error("server closed the connection without sending a response")]
    NoResponse,
    /// The connection closed in the middle of the response head.
    #[error("connection closed after {got} bytes, in the middle of the response head")]
    TruncatedHead { got: u64 },
    /// The connection closed before the body was complete.
    #[error("connection closed early: {got} of {} body bytes arrived", expected_text(*.expected))]
    Truncated { got: u64, expected: Option<u64> },
}

fn expected_text(expected: Option<u64>) -> String {
    match expected {
        Some(n) => n.to_string(),
        None => "an unknown number of".to_string(),
    }
}

impl HttpError {
    /// The wget exit code for this error: 1 generic, 2 parse, 4 network, 7 protocol, 8 server.
    pub fn exit_code(&self) -> u8 {
        use HttpError::*;
        match self {
            // wget: a URL it cannot parse or use is URLERROR, exit 1.
            CredentialsUnsupported { .. }
            | InvalidUrl { .. }
            | UnsupportedScheme { .. }
            | MissingHost { .. }
            | InvalidProxy { .. } => 1,
            NonAsciiHost { .. }
            | InvalidHeaderName { .. }
            | InvalidHeaderValue { .. }
            | MalformedHeaderArgument { .. }
            | ReservedHeader { .. } => 2,
            NoResponse | TruncatedHead { .. } | Truncated { .. } | ProxyTunnel { .. } => 4,
            ServerError { .. } => 8,
            BadRedirect { .. }
            | HeadTooLarge { .. }
            | TooManyHeaders { .. }
            | MalformedHead { .. }
            | UnexpectedSwitchingProtocols
            | InvalidContentLength { .. }
            | ConflictingContentLength { .. }
            | InvalidContentRange { .. }
            | UnsupportedTransferEncoding { .. }
            | RangeMismatch { .. }
            | PartialWithoutRange
            | RangeLengthMismatch { .. }
            | RedirectWithoutLocation { .. }
            | InvalidChunkSize
            | ChunkSizeOverflow
            | MissingChunkCrlf
            | ChunkMetadataTooLong { .. }
            | ChunkedLengthMismatch { .. }
            | ReassemblyWindowExceeded { .. } => 7,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_wget() {
        assert_eq!(
            HttpError::CredentialsUnsupported {
                url: "http://u@a/".into()
            }
            .exit_code(),
            1
        );
        assert_eq!(
            HttpError::InvalidUrl {
                url: "x".into(),
                reason: "y".into()
            }
            .exit_code(),
            1
        );
        assert_eq!(
            HttpError::Truncated {
                got: 1,
                expected: Some(2)
            }
            .exit_code(),
            4
        );
        assert_eq!(HttpError::InvalidChunkSize.exit_code(), 7);
        assert_eq!(
            HttpError::ServerError {
                status: 404,
                reason: "Not Found".into()
            }
            .exit_code(),
            8
        );
    }

    #[test]
    fn truncated_message_names_both_counts() {
        let e = HttpError::Truncated {
            got: 10,
            expected: Some(100),
        };
        assert_eq!(
            e.to_string(),
            "connection closed early: 10 of 100 body bytes arrived"
        );
        let e = HttpError::Truncated {
            got: 10,
            expected: None,
        };
        assert_eq!(
            e.to_string(),
            "connection closed early: 10 of an unknown number of body bytes arrived"
        );
    }
}
