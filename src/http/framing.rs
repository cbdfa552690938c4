//! How long the response body is: RFC 9112 §6.3 (message body length), for a client.
//!
//! 1. A response to HEAD, and any 1xx, 204 or 304 response, has no body.
//! 2. (2xx to CONNECT: we never send CONNECT.)
//! 3. Transfer-Encoding with chunked as the final coding: chunked; it overrides any
//!    Content-Length. Any other transfer coding: we asked for none (no `TE` header,
//!    RFC 9110 §10.1.4), so it is refused rather than written into the file.
//! 4. A valid Content-Length: exactly that many bytes (invalid ones were refused by
//!    `response::parse_head`, item 5).
//! 5. Otherwise the body runs until the server closes the connection.

use super::error::HttpError;
use super::request::Method;
use super::response::ResponseHead;

/// How the end of the body is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    ContentLength(u64),
    /// The chunked transfer coding (RFC 9112 §7.1).
    Chunked,
    /// Until the connection closes.
    CloseDelimited,
}

impl BodyFraming {
    /// Decides the framing of `head`, the answer to a `method` request.
    pub fn of(method: Method, head: &ResponseHead) -> Result<BodyFraming, HttpError> {
        // Item 1.
        if method == Method::Head || (100..200).contains(&head.status) {
            return Ok(BodyFraming::Empty);
        }
        if head.status == 204 || head.status == 304 {
            return Ok(BodyFraming::Empty);
        }
        // Item 3.
        if let Some(value) = &head.transfer_encoding {
            let codings: Vec<&str> = value
                .split(',')
                .map(|c| c.trim_matches([' ', '\t']))
                .filter(|c| !c.is_empty())
                .collect();
            // RFC 9112 §6.1: chunked must be final and must not be applied twice.
            return match codings.as_slice() {
                [only] if only.eq_ignore_ascii_case("chunked") => Ok(BodyFraming::Chunked),
                _ => Err(HttpError::UnsupportedTransferEncoding {
                    value: value.clone(),
                }),
            };
        }
        // Item 4 (and 6 for responses).
        if let Some(length) = head.content_length {
            return Ok(BodyFraming::ContentLength(length));
        }
        // Item 8.
        Ok(BodyFraming::CloseDelimited)
    }

    /// The body length when the framing states it.
    pub fn length(self) -> Option<u64> {
        match self {
            BodyFraming::Empty => Some(0),
            BodyFraming::ContentLength(n) => Some(n),
            BodyFraming::Chunked | BodyFraming::CloseDelimited => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::parse_head;

    fn framing(method: Method, head: &str) -> Result<BodyFraming, HttpError> {
        let head = parse_head(head.as_bytes()).unwrap().unwrap();
        BodyFraming::of(method, &head)
    }

    #[test]
    fn no_body_cases() {
        use Method::*;
        let cl = "Content-Length: 10\r\n\r\n";
        assert_eq!(
            framing(Head, &format!("HTTP/1.1 200 OK\r\n{cl}")),
            Ok(BodyFraming::Empty)
        );
        for status in [
            "100 Continue",
            "103 Early Hints",
            "204 No Content",
            "304 Not Modified",
        ] {
            assert_eq!(
                framing(Get, &format!("HTTP/1.1 {status}\r\n{cl}")),
                Ok(BodyFraming::Empty),
                "{status}"
            );
        }
    }

    #[test]
    fn chunked_overrides_content_length() {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: Chunked\r\n\r\n";
        assert_eq!(framing(Method::Get, head), Ok(BodyFraming::Chunked));
    }

    #[test]
    fn other_codings_are_refused() {
        for te in [
            "gzip",
            "gzip, chunked",
            "chunked, chunked",
            "chunked, gzip",
            "",
        ] {
            let head = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert!(
                matches!(
                    framing(Method::Get, &head),
                    Err(HttpError::UnsupportedTransferEncoding { .. })
                ),
                "{te:?}"
            );
        }
        // Split over two field lines is the same list.
        let head =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(framing(Method::Get, head).is_err());
    }

    #[test]
    fn length_or_close() {
        assert_eq!(
            framing(Method::Get, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            Ok(BodyFraming::ContentLength(0))
        );
        assert_eq!(
            framing(Method::Get, "HTTP/1.0 200 OK\r\n\r\n"),
            Ok(BodyFraming::CloseDelimited)
        );
        assert_eq!(
            framing(
                Method::Get,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\n"
            ),
            Ok(BodyFraming::ContentLength(5))
        );
    }
}
