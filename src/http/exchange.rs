//! One request/response exchange, fed with TCP stream bytes as they arrive.
//!
//! Follows RFC 9112 §6.3 (body length, through `framing`), §7.1 (chunked, through
//! `chunked`), §9.6 (tear-down: a close-delimited body ends with the connection), RFC 9110
//! §15.2 (interim 1xx responses are skipped) and §15 (status decision, through `status`).
//!
//! # Calling order
//!
//! ```text
//! let mut exchange = Exchange::new(&request);      // request.encode() goes to TCP
//! for every TCP delivery (offset, bytes), in any order, overlapping or not:
//!     exchange.on_stream(offset, bytes, &mut |chunk| sink.write(chunk))?;
//!     if exchange just got its head (head() / outcome() became Some):
//!         Outcome::Body(plan)  → create the output file from `plan`, then
//!                                exchange.start_body(&mut |chunk| sink.write(chunk))?;
//!         anything else        → stop (redirect, server error, already complete)
//!     if exchange.is_complete() → close the connection
//! on the peer's FIN at stream length n:
//!     exchange.on_stream_end(n)?  → Completion, or Truncated (exit 4)
//! ```
//!
//! Stream offsets count from the first response byte. Body bytes reach `out` only after
//! `start_body`, so that the caller can look at the head before the first body byte.
//!
//! Until the head is parsed, and for a chunked body, bytes are staged in order in a buffer
//! of `window` bytes ([`Exchange::stream_window_end`] says how far the caller may deliver).
//! With identity framing (Content-Length or close-delimited) every delivery goes straight
//! to `out` at its body offset, in order or not: the caller writes it to
//! `plan.file_offset + chunk.offset`. Nothing is copied, and nothing is allocated unless
//! holes outnumber the 64 ranges reserved to track them. Each body byte reaches `out`
//! exactly once, however often TCP delivered it.

use super::chunked::ChunkedDecoder;
use super::error::HttpError;
use super::framing::BodyFraming;
use super::ranges::RangeSet;
use super::request::{Method, Request};
use super::response::{ResponseHead, parse_head};
use super::staging::Staging;
use super::status::{Outcome, decide};
use super::url::Target;

/// The default staging window: the most stream bytes held past the in-order point.
pub const DEFAULT_REASSEMBLY_WINDOW: usize = 1024 * 1024;
/// The smallest staging window: a whole response head must fit.
pub const MIN_REASSEMBLY_WINDOW: usize = 2 * super::response::MAX_HEAD_LEN;

/// Body bytes at their offset in the body (not in the file, not in the stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyChunk<'a> {
    pub offset: u64,
    pub bytes: &'a [u8],
}

/// How a body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Body bytes received (0 for responses without a body we keep).
    pub body_len: u64,
    /// The body had no stated length: the server's close marked its end (RFC 9112 §6.3).
    pub close_delimited: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the response head (and skipping 1xx heads); bytes are staged.
    Head,
    /// The head says a body follows; bytes are staged until `start_body`.
    Held,
    /// Content-Length or close-delimited body: bytes go straight out.
    Identity,
    /// Chunked body: bytes are staged in order and decoded.
    Chunked,
    /// Nothing more to read: the body is complete, absent, or not wanted.
    Done,
}

/// The bookkeeping of an identity-framed body.
#[derive(Debug)]
struct IdentityBody {
    /// Stream offset of body byte 0.
    body_start: u64,
    /// Body bytes expected: Content-Length, or a 206 range length. Bytes past it are
    /// ignored.
    limit: Option<u64>,
    /// Which body offsets have been handed out.
    received: RangeSet,
}

impl IdentityBody {
    /// Hands the body part of stream bytes `bytes` at `offset` to `out`, at its body offset,
    /// clipped to `limit`, leaving out bytes handed out before.
    fn deliver(&mut self, offset: u64, bytes: &[u8], out: &mut impl FnMut(BodyChunk<'_>)) {
        let end = offset.saturating_add(bytes.len() as u64);
        if end <= self.body_start {
            return;
        }
        let skip = self.body_start.saturating_sub(offset);
        let body_offset = offset + skip - self.body_start;
        let mut bytes = &bytes[skip as usize..];
        if let Some(limit) = self.limit {
            let room = limit.saturating_sub(body_offset);
            if (bytes.len() as u64) > room {
                bytes = &bytes[..room as usize];
            }
        }
        if bytes.is_empty() {
            return;
        }
        let end = body_offset + bytes.len() as u64;
        // Only the bytes not handed out before: each body byte reaches `out` once.
        self.received
            .for_each_gap(body_offset, end, |gap_start, gap_end| {
                let from = (gap_start - body_offset) as usize;
                let to = (gap_end - body_offset) as usize;
                out(BodyChunk {
                    offset: gap_start,
                    bytes: &bytes[from..to],
                });
            });
        self.received.insert(body_offset, end);
    }

    /// Body bytes handed out without a gap from body offset 0.
    fn contiguous(&self) -> u64 {
        self.received.contiguous_end(0)
    }
}

/// One HTTP/1.1 exchange on one connection, sans I/O. See the module documentation for
/// the calling order.
#[derive(Debug)]
pub struct Exchange {
    method: Method,
    range_start: Option<u64>,
    target: Target,
    phase: Phase,
    staging: Staging,
    head: Option<ResponseHead>,
    outcome: Option<Outcome>,
    framing: BodyFraming,
    identity: IdentityBody,
    chunked: ChunkedDecoder,
    /// The first error, returned again by every later call.
    error: Option<HttpError>,
    /// `--ignore-length` (see [`Request::ignore_length`]).
    ignore_length: bool,
}

impl Exchange {
    /// An exchange for `request` with the default staging window.
    pub fn new(request: &Request) -> Exchange {
        Exchange::with_window(request, DEFAULT_REASSEMBLY_WINDOW)
    }

    /// An exchange for `request` that stages at most `window` bytes past the in-order point
    /// (raised to [`MIN_REASSEMBLY_WINDOW`]).
    pub fn with_window(request: &Request, window: usize) -> Exchange {
        Exchange {
            method: request.method,
            range_start: request.range_start,
            target: request.target.clone(),
            phase: Phase::Head,
            staging: Staging::new(window.max(MIN_REASSEMBLY_WINDOW)),
            head: None,
            outcome: None,
            framing: BodyFraming::Empty,
            identity: IdentityBody {
                body_start: 0,
                limit: None,
                received: RangeSet::with_capacity(64),
            },
            chunked: ChunkedDecoder::new(),
            error: None,
            ignore_length: request.ignore_length,
        }
    }

    /// The final response head, once parsed.
    pub fn head(&self) -> Option<&ResponseHead> {
        self.head.as_ref()
    }

    /// What the final response means, once the head is parsed.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// The body framing, once the head is parsed.
    pub fn framing(&self) -> Option<BodyFraming> {
        self.head.as_ref().map(|_| self.framing)
    }

    /// True when no more stream bytes are needed: the body is complete or absent, or the
    /// outcome is not a body. A close-delimited body completes only at `on_stream_end`.
    pub fn is_complete(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Body bytes handed to `out` so far without a gap from the start of the body.
    pub fn body_received(&self) -> u64 {
        match self.framing {
            BodyFraming::Empty => 0,
            BodyFraming::Chunked => self.chunked.body_len(),
            BodyFraming::ContentLength(_) | BodyFraming::CloseDelimited => {
                self.identity.contiguous()
            }
        }
    }

    /// The first stream offset the exchange cannot take now, or `None` when any offset is
    /// fine. The caller keeps the TCP receive window inside it.
    pub fn stream_window_end(&self) -> Option<u64> {
        match self.phase {
            Phase::Head | Phase::Held | Phase::Chunked => Some(self.staging.window_end()),
            Phase::Identity | Phase::Done => None,
        }
    }

    /// Takes stream bytes `bytes` found at stream `offset` (from the first response byte),
    /// in any order, possibly overlapping earlier ones. Body bytes go to `out` (after
    /// `start_body`).
    pub fn on_stream(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut impl FnMut(BodyChunk<'_>),
    ) -> Result<(), HttpError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = match self.phase {
            Phase::Head => self
                .staging
                .insert(offset, bytes)
                .and_then(|()| self.read_heads()),
            Phase::Held => self.staging.insert(offset, bytes),
            Phase::Identity => {
                self.identity.deliver(offset, bytes, out);
                self.check_identity_complete();
                Ok(())
            }
            Phase::Chunked => self.feed_chunked(offset, bytes, out),
            Phase::Done => Ok(()),
        };
        self.remember(result)
    }

    /// Starts handing body bytes to `out`, beginning with those that arrived with the head.
    /// Call it once the output is ready for an `Outcome::Body`; it does nothing otherwise.
    pub fn start_body(&mut self, out: &mut impl FnMut(BodyChunk<'_>)) -> Result<(), HttpError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if self.phase != Phase::Held {
            return Ok(());
        }
        let result = match self.framing {
            BodyFraming::Chunked => {
                self.phase = Phase::Chunked;
                self.drain_chunked(out)
            }
            _ => {
                self.phase = Phase::Identity;
                for (offset, bytes) in self.staging.staged() {
                    self.identity.deliver(offset, bytes, out);
                }
                self.staging.release();
                self.check_identity_complete();
                Ok(())
            }
        };
        self.remember(result)
    }

    /// The peer closed its side after `stream_len` stream bytes (every byte before that has
    /// been delivered). Returns how the body ended, or `Truncated` when it ended early.
    pub fn on_stream_end(&mut self, stream_len: u64) -> Result<Completion, HttpError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = self.end_of_stream(stream_len);
        self.remember(result)
    }

    fn end_of_stream(&mut self, stream_len: u64) -> Result<Completion, HttpError> {
        let complete = |body_len| Completion {
            body_len,
            close_delimited: false,
        };
        match (self.phase, self.framing) {
            (Phase::Head, _) if stream_len == 0 => Err(HttpError::NoResponse),
            (Phase::Head, _) => Err(HttpError::TruncatedHead { got: stream_len }),
            (Phase::Done, _) => Ok(complete(self.body_received())),
            (Phase::Held | Phase::Chunked, BodyFraming::Chunked) => {
                // While held, decode the staged bytes on a copy: `start_body` still
                // hands them out later.
                let mut decoder = self.chunked.clone();
                if self.phase == Phase::Held {
                    decoder.decode(self.staging.contiguous(), &mut |_| {})?;
                }
                if decoder.is_done() {
                    if let Some(expected) = self.identity.limit
                        && decoder.body_len() != expected
                    {
                        return Err(HttpError::ChunkedLengthMismatch {
                            got: decoder.body_len(),
                            expected,
                        });
                    }
                    Ok(complete(decoder.body_len()))
                } else {
                    Err(HttpError::Truncated {
                        got: decoder.body_len(),
                        expected: None,
                    })
                }
            }
            (_, framing) => {
                let got = match self.phase {
                    Phase::Held => self.staging.contiguous().len() as u64,
                    _ => self.identity.contiguous(),
                };
                let got = self.identity.limit.map_or(got, |limit| got.min(limit));
                // A close-delimited body is what the stream carried, unless a 206 told us
                // its length.
                let stream_body = stream_len.saturating_sub(self.identity.body_start);
                let expected = self.identity.limit.unwrap_or(stream_body);
                if got < expected {
                    return Err(HttpError::Truncated {
                        got,
                        expected: Some(expected),
                    });
                }
                if self.phase == Phase::Identity {
                    self.phase = Phase::Done;
                }
                Ok(Completion {
                    body_len: got,
                    close_delimited: framing == BodyFraming::CloseDelimited,
                })
            }
        }
    }

    fn remember<T>(&mut self, result: Result<T, HttpError>) -> Result<T, HttpError> {
        if let Err(error) = &result {
            self.error = Some(error.clone());
        }
        result
    }

    /// Parses heads from the staged bytes: skips interim 1xx heads, stops at the final one.
    fn read_heads(&mut self) -> Result<(), HttpError> {
        while let Some(head) = parse_head(self.staging.contiguous())? {
            self.staging.consume(head.head_len);
            // RFC 9110 §15.2: a client must accept and skip 1xx responses before the final
            // one. 101 would switch protocols, which we never ask for.
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            return self.accept_final_head(head);
        }
        Ok(())
    }

    fn accept_final_head(&mut self, mut head: ResponseHead) -> Result<(), HttpError> {
        if self.ignore_length {
            head.content_length = None;
        }
        let framing = BodyFraming::of(self.method, &head);
        let head = self.head.insert(head);
        // A framing problem only matters when we want the body: a 404 stays a 404.
        let framing = match framing {
            Ok(framing) => framing,
            Err(error) if (200..300).contains(&head.status) => return Err(error),
            Err(_) => BodyFraming::Empty,
        };
        let outcome = decide(self.method, self.range_start, &self.target, head, framing)?;
        self.framing = framing;
        self.identity.body_start = self.staging.consumed();
        self.phase = match (&outcome, framing) {
            (Outcome::Body(_), BodyFraming::Empty) => Phase::Done,
            (Outcome::Body(plan), _) => {
                // Content-Length, or for a 206 without one the range length.
                self.identity.limit = match framing {
                    BodyFraming::ContentLength(n) => Some(n),
                    _ => plan.body_len,
                };
                Phase::Held
            }
            // Redirects, errors, 416: the body is not wanted.
            _ => {
                self.framing = BodyFraming::Empty;
                Phase::Done
            }
        };
        if self.phase == Phase::Done {
            self.staging.release();
        }
        self.outcome = Some(outcome);
        Ok(())
    }

    fn check_identity_complete(&mut self) {
        if let BodyFraming::ContentLength(length) = self.framing
            && self.identity.contiguous() >= length
        {
            self.phase = Phase::Done;
        }
    }

    fn feed_chunked(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut impl FnMut(BodyChunk<'_>),
    ) -> Result<(), HttpError> {
        let consumed = self.staging.consumed();
        let end = offset.saturating_add(bytes.len() as u64);
        if end <= consumed {
            return Ok(());
        }
        if self.staging.is_empty() && offset <= consumed {
            // In order with nothing staged: decode straight from the delivery, no copy.
            let input = &bytes[(consumed - offset) as usize..];
            decode_chunks(&mut self.chunked, input, self.identity.limit, out)?;
            self.staging.consume(input.len());
            return self.check_chunked_complete();
        }
        self.staging.insert(offset, bytes)?;
        self.drain_chunked(out)
    }

    /// Decodes the staged bytes that follow the in-order point.
    fn drain_chunked(&mut self, out: &mut impl FnMut(BodyChunk<'_>)) -> Result<(), HttpError> {
        let input = self.staging.contiguous();
        if input.is_empty() {
            return Ok(());
        }
        decode_chunks(&mut self.chunked, input, self.identity.limit, out)?;
        let used = input.len();
        self.staging.consume(used);
        self.check_chunked_complete()
    }

    fn check_chunked_complete(&mut self) -> Result<(), HttpError> {
        let got = self.chunked.body_len();
        // A chunked 206 must carry exactly the range it announced.
        if let Some(expected) = self.identity.limit
            && (got > expected || (self.chunked.is_done() && got != expected))
        {
            return Err(HttpError::ChunkedLengthMismatch { got, expected });
        }
        if self.chunked.is_done() {
            self.phase = Phase::Done;
            self.staging.release();
        }
        Ok(())
    }
}

/// Decodes `input` with `decoder`, handing the chunk data to `out` at its body offset, never
/// past `limit`.
fn decode_chunks(
    decoder: &mut ChunkedDecoder,
    input: &[u8],
    limit: Option<u64>,
    out: &mut impl FnMut(BodyChunk<'_>),
) -> Result<(), HttpError> {
    let mut next = decoder.body_len();
    decoder.decode(input, &mut |data| {
        let room = limit.map_or(u64::MAX, |limit| limit.saturating_sub(next));
        let kept = &data[..data.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
        if !kept.is_empty() {
            out(BodyChunk {
                offset: next,
                bytes: kept,
            });
        }
        next += data.len() as u64;
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::status::BodyPlan;
    use proptest::prelude::*;

    /// The output file, by body offset; checks that no byte is written twice.
    #[derive(Default)]
    struct File {
        bytes: Vec<u8>,
        written: Vec<bool>,
    }

    impl File {
        fn write(&mut self, chunk: BodyChunk<'_>) {
            let start = chunk.offset as usize;
            let end = start + chunk.bytes.len();
            if self.bytes.len() < end {
                self.bytes.resize(end, 0);
                self.written.resize(end, false);
            }
            for (i, &b) in chunk.bytes.iter().enumerate() {
                assert!(!self.written[start + i], "byte {} written twice", start + i);
                self.bytes[start + i] = b;
                self.written[start + i] = true;
            }
        }
    }

    fn get(url: &str, range_start: Option<u64>) -> Request {
        let mut request = Request::get(Target::parse(url).unwrap());
        request.range_start = range_start;
        request
    }

    /// Feeds `pieces` (stream offset, bytes) in the given order, starting the body as soon
    /// as the head says there is one, as the engine does.
    fn feed(
        exchange: &mut Exchange,
        file: &mut File,
        pieces: &[(u64, &[u8])],
    ) -> Result<(), HttpError> {
        for &(offset, bytes) in pieces {
            exchange.on_stream(offset, bytes, &mut |c| file.write(c))?;
            if let Some(Outcome::Body(_)) = exchange.outcome() {
                exchange.start_body(&mut |c| file.write(c))?;
            }
        }
        Ok(())
    }

    fn whole(response: &[u8]) -> Vec<(u64, &[u8])> {
        vec![(0, response)]
    }

    const LENGTH_RESPONSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world";
    const CHUNKED_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";

    #[test]
    fn content_length_in_one_delivery() {
        let mut exchange = Exchange::new(&get("http://h/f", None));
        let mut file = File::default();
        exchange
            .on_stream(0, LENGTH_RESPONSE, &mut |c| file.write(c))
            .unwrap();
        // Nothing reaches the file before the caller has seen the head.
        assert!(file.bytes.is_empty());
        assert_eq!(exchange.head().map(|h| h.status), Some(200));
        assert_eq!(
            exchange.outcome(),
            Some(&Outcome::Body(BodyPlan {
                file_offset: 0,
                body_len: Some(11),
                total_len: Some(11),
                range_ignored: false
            }))
        );
        assert!(!exchange.is_complete());
        exchange.start_body(&mut |c| file.write(c)).unwrap();
        assert_eq!(file.bytes, b"hello world");
        assert!(exchange.is_complete());
        assert_eq!(exchange.body_received(), 11);
        assert_eq!(
            exchange.on_stream_end(LENGTH_RESPONSE.len() as u64),
            Ok(Completion {
                body_len: 11,
                close_delimited: false
            })
        );
    }

    #[test]
    fn identity_body_is_handed_out_in_place_and_out_of_order() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n";
        let h = head.len() as u64;
        let mut exchange = Exchange::new(&get("http://h/f", None));
        let mut chunks: Vec<(u64, *const u8, usize)> = Vec::new();
        let mut note = |c: BodyChunk<'_>| chunks.push((c.offset, c.bytes.as_ptr(), c.bytes.len()));
        exchange.on_stream(0, head, &mut note).unwrap();
        exchange.start_body(&mut note).unwrap();
        assert_eq!(exchange.stream_window_end(), None);
        let late = b"5678";
        let early = b"1234";
        exchange.on_stream(h + 4, late, &mut note).unwrap();
        assert!(!exchange.is_complete());
        assert_eq!(exchange.body_received(), 0);
        exchange.on_stream(h, early, &mut note).unwrap();
        assert_eq!(
            chunks,
            vec![(4, late.as_ptr(), 4), (0, early.as_ptr(), 4)],
            "slices of the deliveries themselves, at their body offsets"
        );
        assert!(exchange.is_complete());
        assert_eq!(exchange.body_received(), 8);
    }

    #[test]
    fn chunked_in_one_delivery() {
        let mut exchange = Exchange::new(&get("http://h/f", None));
        let mut file = File::default();
        feed(&mut exchange, &mut file, &whole(CHUNKED_RESPONSE)).unwrap();
        assert_eq!(file.bytes, b"hello world");
        assert!(exchange.is_complete());
        assert_eq!(exchange.framing(), Some(BodyFraming::Chunked));
        assert_eq!(
            exchange.on_stream_end(CHUNKED_RESPONSE.len() as u64),
            Ok(Completion {
                body_len: 11,
                close_delimited: false
            })
        );
    }

    #[test]
    fn chunked_in_order_deliveries_are_decoded_in_place() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut exchange = Exchange::new(&get("http://h/f", None));
        let mut pointers = Vec::new();
        let mut note = |c: BodyChunk<'_>| pointers.push((c.offset, c.bytes.as_ptr()));
        exchange.on_stream(0, head, &mut note).unwrap();
        exchange.start_body(&mut note).unwrap();
        let body = b"3\r\nabc\r\n0\r\n\r\n";
        exchange
            .on_stream(head.len() as u64, body, &mut note)
            .unwrap();
        assert_eq!(pointers, vec![(0, body[3..].as_ptr())]);
        assert!(exchange.is_complete());
    }

    #[test]
    fn interim_responses_are_skipped() {
        let response =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        let mut exchange = Exchange::new(&get("http://h/f", None));
        let mut file = File::default();
        feed(&mut exchange, &mut file, &whole(response)).unwrap();
        assert_eq!(exchange.head().map(|h| h.status), Some(200));
        assert_eq!(file.bytes, b"abc");
        assert!(exchange.is_complete());
    }

    #[test]
    fn switching_protocols_is_an_error() {
        let mut exchange = Exchange::new(&get("http://h/f", None));
        let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n";
        assert_eq!(
            feed(&mut exchange, &mut File::default(), &whole(response)),
            Err(HttpError::UnexpectedSwitchingProtocols)
        );
    }

    #[test]
    fn server_errors_write_nothing() {
        for response in [
            &b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"[..],
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: gzip\r\n\r\nxx",
        ] {
            let mut exchange = Exchange::new(&get("http://h/f", None));
            let mut file = File::default();
            feed(&mut exchange, &mut file, &whole(response)).unwrap();
            assert!(matches!(
                exchange.outcome(),
                Some(Outcome::ServerError {
                    status: 404 | 503,
                    ..
                })
            ));
            assert!(exchange.is_complete());
            assert!(file.bytes.is_empty());
            assert_eq!(exchange.body_received(), 0);
        }
    }

    #[test]
    fn redirect_with_relative_location() {
        let response = b"HTTP/1.1 301 Moved Permanently\r\nServer: nginx/1.22.1\r\n\
Content-Type: text/html\r\nContent-Length: 5\r\nLocation: /pub/\r\n\r\n<a/>";
        let mut exchange = Exchange::new(&get("http://h:8080/pub", None));
        feed(&mut exchange, &mut File::default(), &whole(response)).unwrap();
        match exchange.outcome() {
            Some(Outcome::Redirect(target)) => {
                assert_eq!(target.to_string(), "http://h:8080/pub/");
            }
            other => panic!("{other:?}"),
        }
        assert!(exchange.is_complete());
    }

    #[test]
    fn resume_cases() {
        let resumed = |response: &[u8]| {
            let mut exchange = Exchange::new(&get("http://h/f", Some(100)));
            let mut file = File::default();
            feed(&mut exchange, &mut file, &whole(response)).map(|()| (exchange, file))
        };
        // 206 from where we asked.
        let (exchange, file) = resumed(
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-103/104\r\nContent-Length: 4\r\n\r\nwxyz",
        )
        .unwrap();
        assert!(matches!(
            exchange.outcome(),
            Some(Outcome::Body(BodyPlan {
                file_offset: 100,
                ..
            }))
        ));
        assert_eq!(file.bytes, b"wxyz");
        // 206 from somewhere else: a protocol error, and it sticks.
        let error = resumed(
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-103/104\r\nContent-Length: 104\r\n\r\n",
        )
        .err()
        .unwrap();
        assert_eq!(
            error,
            HttpError::RangeMismatch {
                requested: 100,
                got: 0
            }
        );
        assert_eq!(error.exit_code(), 7);
        // 416: already complete.
        let (mut exchange, _) = resumed(
            b"HTTP/1.1 416 Requested Range Not Satisfiable\r\nContent-Range: bytes */100\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            exchange.outcome(),
            Some(&Outcome::AlreadyComplete {
                complete_length: Some(100)
            })
        );
        assert!(exchange.on_stream_end(200).is_ok());
        // 200: the range was ignored, the body starts at file offset 0.
        let (exchange, file) = resumed(LENGTH_RESPONSE).unwrap();
        assert!(matches!(
            exchange.outcome(),
            Some(Outcome::Body(BodyPlan {
                file_offset: 0,
                range_ignored: true,
                ..
            }))
        ));
        assert_eq!(file.bytes, b"hello world");
    }

    #[test]
    fn chunked_partial_content_must_match_its_range() {
        let head = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-104/105\r\n\
Transfer-Encoding: chunked\r\n\r\n";
        let run = |body: &str| {
            let wire = format!("{head}{body}");
            let mut exchange = Exchange::new(&get("http://h/f", Some(100)));
            let mut file = File::default();
            feed(&mut exchange, &mut file, &whole(wire.as_bytes()))
                .and_then(|()| exchange.on_stream_end(wire.len() as u64))
                .map(|completion| (completion.body_len, file.bytes))
        };
        assert_eq!(run("5\r\nvwxyz\r\n0\r\n\r\n"), Ok((5, b"vwxyz".to_vec())));
        assert_eq!(
            run("3\r\nvwx\r\n0\r\n\r\n"),
            Err(HttpError::ChunkedLengthMismatch {
                got: 3,
                expected: 5
            })
        );
        assert_eq!(
            run("7\r\nvwxyz!!\r\n0\r\n\r\n"),
            Err(HttpError::ChunkedLengthMismatch {
                got: 7,
                expected: 5
            })
        );
    }

    #[test]
    fn errors_are_sticky() {
        let mut exchange = Exchange::new(&get("http://h/f", None));
        let mut file = File::default();
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(
            feed(&mut exchange, &mut file, &whole(bad)),
            Err(HttpError::InvalidChunkSize)
        );
        assert_eq!(
            exchange.on_stream(0, b"", &mut |c| file.write(c)),
            Err(HttpError::InvalidChunkSize)
        );
        assert_eq!(
            exchange.on_stream_end(100),
            Err(HttpError::InvalidChunkSize)
        );
    }

    #[test]
    fn head_request_completes_with_the_head() {
        let mut request = get("http://h/f", None);
        request.method = Method::Head;
        let mut exchange = Exchange::new(&request);
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        feed(&mut exchange, &mut File::default(), &whole(response)).unwrap();
        assert!(exchange.is_complete());
        assert!(matches!(
            exchange.outcome(),
            Some(Outcome::Body(BodyPlan {
                body_len: Some(0),
                total_len: Some(1000),
                ..
            }))
        ));
    }

    #[test]
    fn truncated_bodies() {
        let cases: &[(&[u8], HttpError)] = &[
            (b"", HttpError::NoResponse),
            (
                b"HTTP/1.1 200 OK\r\nContent-Le",
                HttpError::TruncatedHead { got: 27 },
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd",
                HttpError::Truncated {
                    got: 4,
                    expected: Some(10),
                },
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n3\r\nf",
                HttpError::Truncated {
                    got: 6,
                    expected: None,
                },
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n",
                HttpError::Truncated {
                    got: 5,
                    expected: None,
                },
            ),
            // A close-delimited 206 knows its length from Content-Range.
            (
                b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\n\r\nabc",
                HttpError::Truncated {
                    got: 3,
                    expected: Some(10),
                },
            ),
        ];
        for (response, expected) in cases {
            let mut exchange = Exchange::new(&get("http://h/f", None));
            let mut file = File::default();
            feed(&mut exchange, &mut file, &whole(response)).unwrap();
            let error = exchange.on_stream_end(response.len() as u64).unwrap_err();
            assert_eq!(&error, expected, "{:?}", String::from_utf8_lossy(response));
            assert_eq!(error.exit_code(), 4);
        }
        let error = HttpError::Truncated {
            got: 4,
            expected: Some(10),
        };
        assert_eq!(
            error.to_string(),
            "connection closed early: 4 of 10 body bytes arrived"
        );
    }

    #[test]
    fn close_delimited_body_ends_with_the_stream() {
        let response = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
        let mut exchange = Exchange::new(&get("http://h/f", None));
        let mut file = File::default();
        feed(&mut exchange, &mut file, &whole(response)).unwrap();
        assert!(!exchange.is_complete());
        assert_eq!(
            exchange.on_stream_end(response.len() as u64),
            Ok(Completion {
                body_len: 13,
                close_delimited: true
            })
        );
        assert!(exchange.is_complete());
        assert_eq!(file.bytes, b"until the end");
    }

    #[test]
    fn close_delimited_with_a_hole_is_truncated() {
        let head = b"HTTP/1.0 200 OK\r\n\r\n";
        let h = head.len() as u64;
        let mut exchange = Exchange::new(&get("http://h/f", None));
        feed(
            &mut exchange,
            &mut File::default(),
            &[(0, head), (h + 5, b"later")],
        )
        .unwrap();
        assert_eq!(
            exchange.on_stream_end(h + 10),
            Err(HttpError::Truncated {
                got: 0,
                expected: Some(10)
            })
        );
    }

    #[test]
    fn stream_end_before_start_body_counts_staged_bytes() {
        for response in [LENGTH_RESPONSE, CHUNKED_RESPONSE] {
            let mut exchange = Exchange::new(&get("http://h/f", None));
            let mut file = File::default();
            exchange
                .on_stream(0, response, &mut |c| file.write(c))
                .unwrap();
            assert_eq!(
                exchange.on_stream_end(response.len() as u64),
                Ok(Completion {
                    body_len: 11,
                    close_delimited: false
                })
            );
            exchange.start_body(&mut |c| file.write(c)).unwrap();
            assert_eq!(file.bytes, b"hello world");
        }
    }

    #[test]
    fn bytes_past_content_length_are_ignored() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA";
        let mut exchange = Exchange::new(&get("http://h/f", None));
        let mut file = File::default();
        feed(&mut exchange, &mut file, &whole(response)).unwrap();
        exchange
            .on_stream(response.len() as u64, b"MORE", &mut |c| file.write(c))
            .unwrap();
        assert_eq!(file.bytes, b"abc");
        assert_eq!(exchange.on_stream_end(200).map(|c| c.body_len), Ok(3));
    }

    #[test]
    fn staging_window_bounds_early_bytes() {
        let mut exchange = Exchange::with_window(&get("http://h/f", None), 0);
        let end = exchange.stream_window_end().unwrap();
        assert_eq!(end, MIN_REASSEMBLY_WINDOW as u64);
        assert!(exchange.on_stream(end - 1, b"x", &mut |_| {}).is_ok());
        let error = exchange.on_stream(end, b"x", &mut |_| {}).unwrap_err();
        assert!(matches!(error, HttpError::ReassemblyWindowExceeded { .. }));
    }

    #[test]
    fn oversized_head_is_an_error() {
        let mut response = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        response.resize(super::super::response::MAX_HEAD_LEN + 10, b'a');
        let mut exchange = Exchange::new(&get("http://h/f", None));
        assert!(matches!(
            feed(&mut exchange, &mut File::default(), &whole(&response)),
            Err(HttpError::HeadTooLarge { .. })
        ));
    }

    /// `wire` cut into pieces of 1 to 97 bytes plus some overlapping re-deliveries, in a
    /// seeded random order.
    fn scrambled(wire: &[u8], mut seed: u64) -> Vec<(u64, &[u8])> {
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let end = (at + 1 + (next() % 97) as usize).min(wire.len());
            pieces.push((at, end));
            if next() % 4 == 0 {
                let back = at.saturating_sub((next() % 50) as usize);
                pieces.push((back, end));
            }
            at = end;
        }
        for i in (1..pieces.len()).rev() {
            pieces.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        pieces
            .into_iter()
            .map(|(s, e)| (s as u64, &wire[s..e]))
            .collect()
    }

    /// Real nginx answers (testdata/README.md), whole and scrambled.
    #[test]
    fn nginx_captures() {
        const FILE: &[u8] = include_bytes!("testdata/nginx-file.bin");
        let url = "http://127.0.0.1:18473/file.bin";
        // (response, request, expected body, expected outcome when not a body)
        type Case<'a> = (&'a [u8], Request, &'a [u8], Option<Outcome>);
        let cases: [Case<'_>; 6] = [
            (
                include_bytes!("testdata/nginx-200.http"),
                get(url, None),
                FILE,
                None,
            ),
            (
                include_bytes!("testdata/nginx-206.http"),
                get(url, Some(100)),
                &FILE[100..],
                None,
            ),
            (
                include_bytes!("testdata/nginx-chunked.http"),
                get(url, None),
                b"",
                None,
            ),
            (
                include_bytes!("testdata/nginx-416.http"),
                get(url, Some(1000)),
                b"",
                Some(Outcome::AlreadyComplete {
                    complete_length: Some(1000),
                }),
            ),
            (
                include_bytes!("testdata/nginx-301.http"),
                get("http://127.0.0.1:18473/pub", None),
                b"",
                Some(Outcome::Redirect(
                    Target::parse("http://127.0.0.1:18473/pub/").unwrap(),
                )),
            ),
            (
                include_bytes!("testdata/nginx-404.http"),
                get("http://127.0.0.1:18473/nope", None),
                b"",
                Some(Outcome::ServerError {
                    status: 404,
                    reason: "Not Found".into(),
                }),
            ),
        ];
        for (wire, request, body, outcome) in cases {
            for seed in [0, 1, 2, 3, 0x9e37_79b9_7f4a_7c15] {
                let pieces = if seed == 0 {
                    whole(wire)
                } else {
                    scrambled(wire, seed)
                };
                let mut exchange = Exchange::new(&request);
                let mut file = File::default();
                feed(&mut exchange, &mut file, &pieces).unwrap();
                let completion = exchange.on_stream_end(wire.len() as u64).unwrap();
                assert!(exchange.is_complete());
                match (&outcome, exchange.outcome()) {
                    (Some(expected), got) => assert_eq!(got, Some(expected)),
                    (None, Some(Outcome::Body(plan))) => {
                        if exchange.framing() == Some(BodyFraming::Chunked) {
                            assert!(
                                file.bytes.starts_with(b"hello ")
                                    && file.bytes.ends_with(b" world\n")
                            );
                            assert_eq!(file.bytes.len(), 0x2d);
                        } else {
                            assert_eq!(file.bytes, body);
                            assert_eq!(plan.total_len, Some(1000));
                            assert_eq!(plan.file_offset, 1000 - body.len() as u64);
                        }
                        assert_eq!(completion.body_len, file.bytes.len() as u64);
                    }
                    (None, other) => panic!("{other:?}"),
                }
            }
        }
        let mut head_request = get(url, None);
        head_request.method = Method::Head;
        let mut exchange = Exchange::new(&head_request);
        let wire = include_bytes!("testdata/nginx-head.http");
        feed(&mut exchange, &mut File::default(), &whole(wire)).unwrap();
        assert!(matches!(
            exchange.outcome(),
            Some(Outcome::Body(BodyPlan {
                body_len: Some(0),
                total_len: Some(1000),
                ..
            }))
        ));
    }

    /// Builds a response with `body` framed as asked.
    fn response(body: &[u8], framing: u8, chunk_len: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        match framing {
            0 => {
                wire.extend_from_slice(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
                );
                wire.extend_from_slice(body);
            }
            1 => {
                wire.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                for chunk in body.chunks(chunk_len.max(1)) {
                    wire.extend_from_slice(format!("{:x};n=v\r\n", chunk.len()).as_bytes());
                    wire.extend_from_slice(chunk);
                    wire.extend_from_slice(b"\r\n");
                }
                wire.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
            }
            _ => {
                wire.extend_from_slice(b"HTTP/1.0 200 OK\r\n\r\n");
                wire.extend_from_slice(body);
            }
        }
        wire
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the order, overlap and split of the deliveries, the file ends up with
        /// exactly the body, and the end of stream says complete.
        #[test]
        fn out_of_order_overlapping_pieces_give_exactly_the_body(
            body in prop::collection::vec(any::<u8>(), 0..3000),
            framing in 0u8..3,
            chunk_len in 1usize..700,
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
            extra in prop::collection::vec((any::<prop::sample::Index>(), 1usize..400), 0..10),
            order in any::<prop::sample::Index>(),
        ) {
            let wire = response(&body, framing, chunk_len);
            // A partition of the stream, plus overlapping re-deliveries.
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
            points.push(0);
            points.push(wire.len());
            points.sort_unstable();
            points.dedup();
            let mut pieces: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
            for (start, len) in &extra {
                let start = start.index(wire.len().max(1));
                pieces.push((start, (start + len).min(wire.len())));
            }
            // A seeded shuffle from the drawn index.
            let mut seed = order.index(usize::MAX) as u64 | 1;
            for i in (1..pieces.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                pieces.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            let deliveries: Vec<(u64, &[u8])> =
                pieces.iter().map(|&(s, e)| (s as u64, &wire[s..e])).collect();

            let mut exchange = Exchange::new(&get("http://h/f", None));
            let mut file = File::default();
            feed(&mut exchange, &mut file, &deliveries).unwrap();
            let completion = exchange.on_stream_end(wire.len() as u64).unwrap();
            prop_assert_eq!(completion.body_len, body.len() as u64);
            prop_assert_eq!(completion.close_delimited, framing == 2);
            prop_assert!(exchange.is_complete());
            prop_assert_eq!(exchange.body_received(), body.len() as u64);
            prop_assert_eq!(&file.bytes, &body);
            prop_assert!(file.written.iter().all(|&w| w));
        }

        /// Garbage, or a valid head followed by garbage, in any pieces: errors, no panics.
        #[test]
        fn arbitrary_streams_never_panic(
            prefix in prop_oneof![Just(&b""[..]), Just(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..])],
            garbage in prop::collection::vec(any::<u8>(), 0..300),
            pieces in prop::collection::vec((any::<prop::sample::Index>(), 0usize..80), 1..10),
        ) {
            let wire = [prefix, &garbage[..]].concat();
            let mut exchange = Exchange::new(&get("http://h/f", None));
            let mut file = File::default();
            for (start, len) in pieces {
                let start = start.index(wire.len() + 1);
                let end = (start + len).min(wire.len());
                if feed(&mut exchange, &mut file, &[(start as u64, &wire[start..end])]).is_err() {
                    break;
                }
            }
            let _ = exchange.on_stream_end(wire.len() as u64);
        }

        /// A stream cut anywhere inside the body is reported as truncated, never complete.
        #[test]
        fn any_early_end_is_truncated(
            body in prop::collection::vec(any::<u8>(), 1..500),
            framing in 0u8..2,
            chunk_len in 1usize..100,
            cut in any::<prop::sample::Index>(),
        ) {
            let wire = response(&body, framing, chunk_len);
            let head_len = parse_head(&wire).unwrap().unwrap().head_len;
            let end = head_len + cut.index(wire.len() - head_len);
            let mut exchange = Exchange::new(&get("http://h/f", None));
            let mut file = File::default();
            feed(&mut exchange, &mut file, &[(0, &wire[..end])]).unwrap();
            let error = exchange.on_stream_end(end as u64).unwrap_err();
            let is_truncated = matches!(error, HttpError::Truncated { .. });
            prop_assert!(is_truncated);
        }
    }
}
