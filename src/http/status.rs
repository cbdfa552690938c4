//! What a final response means for the download: the status decision.
//!
//! Follows RFC 9110 §15 (status codes): §15.3 2xx, §15.3.7 206 with §14.4 Content-Range,
//! §15.4 redirects (301, 302, 303, 307, 308 with §10.2.2 Location), §15.5.17 416 with
//! `Content-Range: bytes */N`, and §14.2: a server may ignore Range and answer 200.

use super::error::HttpError;
use super::framing::BodyFraming;
use super::request::Method;
use super::response::{ContentRange, ResponseHead};
use super::url::Target;

/// What the caller does with a final response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx: write the body into the output file as `plan` says.
    Body(BodyPlan),
    /// Follow the redirect to this target (the caller counts redirects).
    Redirect(Target),
    /// 416 to a resume request: the file is already fully retrieved. The caller checks that
    /// the local size equals `complete_length` when the server said it.
    AlreadyComplete { complete_length: Option<u64> },
    /// 4xx, 5xx or another status we cannot use: no output file (wget exit code 8).
    ServerError { status: u16, reason: String },
}

impl Outcome {
    /// The error a `ServerError` outcome ends the run with (wget exit code 8).
    pub fn to_error(&self) -> Option<HttpError> {
        match self {
            Outcome::ServerError { status, reason } => Some(HttpError::ServerError {
                status: *status,
                reason: reason.clone(),
            }),
            _ => None,
        }
    }
}

/// Where the body goes and how much of it there is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyPlan {
    /// The file offset of body byte 0: the resume offset for a 206, else 0.
    pub file_offset: u64,
    /// How many bytes the body carries, when known before it ends (0 for HEAD).
    pub body_len: Option<u64>,
    /// The size of the whole file, when known (from Content-Length, or the complete length
    /// of a Content-Range; for HEAD, the Content-Length the GET would have).
    pub total_len: Option<u64>,
    /// We asked for a range and got the whole representation (200): the caller restarts
    /// from zero, truncating what it had.
    pub range_ignored: bool,
}

/// Decides the outcome of the final (non-1xx) `head`, the answer to a `method` request for
/// `target` that asked for bytes from `range_start` on.
pub fn decide(
    method: Method,
    range_start: Option<u64>,
    target: &Target,
    head: &ResponseHead,
    framing: BodyFraming,
) -> Result<Outcome, HttpError> {
    match head.status {
        101 => Err(HttpError::UnexpectedSwitchingProtocols),
        206 => partial_content(method, range_start, head, framing),
        200..=299 => Ok(Outcome::Body(BodyPlan {
            file_offset: 0,
            body_len: framing.length(),
            total_len: match method {
                Method::Head => head.content_length,
                Method::Get => framing.length(),
            },
            range_ignored: range_start.is_some_and(|start| start > 0),
        })),
        301 | 302 | 303 | 307 | 308 => {
            let Some(location) = &head.location else {
                return Err(HttpError::RedirectWithoutLocation {
                    status: head.status,
                });
            };
            Ok(Outcome::Redirect(target.resolve_redirect(location)?))
        }
        // RFC 9110 §15.5.17: "bytes */N" tells the current length. A broken Content-Range
        // only costs us the length check.
        416 if range_start.is_some() => Ok(Outcome::AlreadyComplete {
            complete_length: match head.content_range() {
                Ok(Some(ContentRange::Unsatisfied { complete_length })) => Some(complete_length),
                _ => None,
            },
        }),
        status => Ok(Outcome::ServerError {
            status,
            reason: head.reason.clone(),
        }),
    }
}

/// RFC 9110 §15.3.7: a 206 carries the range in Content-Range; it must start where we asked
/// (0 when we did not ask, since then only the whole file is of use).
fn partial_content(
    method: Method,
    range_start: Option<u64>,
    head: &ResponseHead,
    framing: BodyFraming,
) -> Result<Outcome, HttpError> {
    let requested = range_start.unwrap_or(0);
    let Some(ContentRange::Bytes {
        first,
        last,
        complete_length,
    }) = head.content_range()?
    else {
        // Absent (multipart/byteranges, which we never ask for) or "bytes */N".
        return Err(HttpError::PartialWithoutRange);
    };
    if first != requested {
        return Err(HttpError::RangeMismatch {
            requested,
            got: first,
        });
    }
    let range_length = (last - first)
        .checked_add(1)
        .ok_or(HttpError::PartialWithoutRange)?;
    if let (Method::Get, BodyFraming::ContentLength(content_length)) = (method, framing)
        && content_length != range_length
    {
        return Err(HttpError::RangeLengthMismatch {
            content_length,
            range_length,
        });
    }
    Ok(Outcome::Body(BodyPlan {
        file_offset: first,
        body_len: Some(match method {
            Method::Head => 0,
            Method::Get => range_length,
        }),
        total_len: complete_length,
        range_ignored: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::parse_head;

    fn outcome(method: Method, range_start: Option<u64>, head: &str) -> Result<Outcome, HttpError> {
        let target = Target::parse("http://h/dir/file").unwrap();
        let head = parse_head(head.as_bytes()).unwrap().unwrap();
        let framing = BodyFraming::of(method, &head)?;
        decide(method, range_start, &target, &head, framing)
    }

    fn body(o: Result<Outcome, HttpError>) -> BodyPlan {
        match o {
            Ok(Outcome::Body(plan)) => plan,
            other => panic!("expected a body, got {other:?}"),
        }
    }

    #[test]
    fn ok_with_length() {
        let plan = body(outcome(
            Method::Get,
            None,
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
        ));
        assert_eq!(
            plan,
            BodyPlan {
                file_offset: 0,
                body_len: Some(10),
                total_len: Some(10),
                range_ignored: false
            }
        );
    }

    #[test]
    fn head_reports_the_get_length() {
        let plan = body(outcome(
            Method::Head,
            None,
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
        ));
        assert_eq!((plan.body_len, plan.total_len), (Some(0), Some(10)));
    }

    #[test]
    fn resumed_206_matching() {
        let plan = body(outcome(
            Method::Get,
            Some(100),
            "HTTP/1.1 206 Partial Content\r\nContent-Length: 900\r\nContent-Range: bytes 100-999/1000\r\n\r\n",
        ));
        assert_eq!(
            plan,
            BodyPlan {
                file_offset: 100,
                body_len: Some(900),
                total_len: Some(1000),
                range_ignored: false
            }
        );
    }

    #[test]
    fn resumed_206_mismatches() {
        let head = |range: &str, length: u64| {
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {length}\r\nContent-Range: {range}\r\n\r\n"
            )
        };
        assert_eq!(
            outcome(Method::Get, Some(100), &head("bytes 0-999/1000", 1000)),
            Err(HttpError::RangeMismatch {
                requested: 100,
                got: 0
            })
        );
        assert_eq!(
            outcome(Method::Get, None, &head("bytes 5-9/10", 5)),
            Err(HttpError::RangeMismatch {
                requested: 0,
                got: 5
            })
        );
        assert_eq!(
            outcome(Method::Get, Some(100), &head("bytes 100-199/1000", 900)),
            Err(HttpError::RangeLengthMismatch {
                content_length: 900,
                range_length: 100
            })
        );
        assert_eq!(
            outcome(
                Method::Get,
                Some(100),
                "HTTP/1.1 206 Partial Content\r\nContent-Length: 9\r\n\r\n"
            ),
            Err(HttpError::PartialWithoutRange)
        );
        assert_eq!(
            outcome(Method::Get, Some(100), &head("bytes */1000", 0)),
            Err(HttpError::PartialWithoutRange)
        );
        assert!(matches!(
            outcome(Method::Get, Some(100), &head("bytes 100-50/1000", 0)),
            Err(HttpError::InvalidContentRange { .. })
        ));
    }

    #[test]
    fn range_ignored_restarts_from_zero() {
        let plan = body(outcome(
            Method::Get,
            Some(100),
            "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
        ));
        assert!(plan.range_ignored);
        assert_eq!((plan.file_offset, plan.total_len), (0, Some(1000)));
    }

    #[test]
    fn already_complete() {
        let head =
            "HTTP/1.1 416 Requested Range Not Satisfiable\r\nContent-Range: bytes */1000\r\n\r\n";
        assert_eq!(
            outcome(Method::Get, Some(1000), head),
            Ok(Outcome::AlreadyComplete {
                complete_length: Some(1000)
            })
        );
        let head = "HTTP/1.1 416 Requested Range Not Satisfiable\r\n\r\n";
        assert_eq!(
            outcome(Method::Get, Some(1000), head),
            Ok(Outcome::AlreadyComplete {
                complete_length: None
            })
        );
        // Without a Range request, 416 is just an error.
        assert!(matches!(
            outcome(Method::Get, None, head),
            Ok(Outcome::ServerError { status: 416, .. })
        ));
    }

    #[test]
    fn redirects() {
        for status in [301, 302, 303, 307, 308] {
            let head = format!("HTTP/1.1 {status} Moved\r\nLocation: ../other?x\r\n\r\n");
            match outcome(Method::Get, None, &head) {
                Ok(Outcome::Redirect(t)) => assert_eq!(t.path_and_query, "/other?x"),
                other => panic!("{status}: {other:?}"),
            }
        }
        assert_eq!(
            outcome(Method::Get, None, "HTTP/1.1 302 Found\r\n\r\n"),
            Err(HttpError::RedirectWithoutLocation { status: 302 })
        );
        assert!(matches!(
            outcome(
                Method::Get,
                None,
                "HTTP/1.1 301 Moved\r\nLocation: ftp://h/\r\n\r\n"
            ),
            Err(HttpError::UnsupportedScheme { .. })
        ));
    }

    #[test]
    fn server_errors() {
        for (line, status) in [
            ("404 Not Found", 404),
            ("500 Internal Server Error", 500),
            ("300 Multiple Choices", 300),
        ] {
            let head = format!("HTTP/1.1 {line}\r\nContent-Length: 0\r\n\r\n");
            let result = outcome(Method::Get, None, &head).unwrap();
            assert_eq!(
                result,
                Outcome::ServerError {
                    status,
                    reason: line[4..].to_string()
                }
            );
            let error = result.to_error().unwrap();
            assert_eq!(error.exit_code(), 8);
            assert_eq!(error.to_string(), format!("server answered {line}"));
        }
    }
}
