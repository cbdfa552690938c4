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
//! `plan.file_offset + chunk.offset` and nothing is copied or allocated here.

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
    /// clipped to `limit`.
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
        out(BodyChunk {
            offset: body_offset,
            bytes,
        });
        self.received
            .insert(body_offset, body_offset + bytes.len() as u64);
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
                    self.phase = Phase::Done;
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

    fn accept_final_head(&mut self, head: ResponseHead) -> Result<(), HttpError> {
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
                // Content-Length, or for a close-delimited 206 the range length.
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
            let mut next = self.chunked.body_len();
            self.chunked.decode(input, &mut |data| {
                out(BodyChunk {
                    offset: next,
                    bytes: data,
                });
                next += data.len() as u64;
            })?;
            self.staging.consume(input.len());
            self.check_chunked_complete();
            return Ok(());
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
        let mut next = self.chunked.body_len();
        self.chunked.decode(input, &mut |data| {
            out(BodyChunk {
                offset: next,
                bytes: data,
            });
            next += data.len() as u64;
        })?;
        let used = input.len();
        self.staging.consume(used);
        self.check_chunked_complete();
        Ok(())
    }

    fn check_chunked_complete(&mut self) {
        if self.chunked.is_done() {
            self.phase = Phase::Done;
            self.staging.release();
        }
    }
}
