//! `-x N`: one file over up to 16 connections of the host, each fetching a range of it into
//! the one sink.
//!
//! How a segmented download goes (a part of one fetch task, `engine::fetch`):
//!
//! 1. **The first connection asks for the rest of the file** (`Range: bytes=S-`, S the first
//!    missing byte, 0 for a fresh file). When its head arrives, [`splittable`] decides: a
//!    `206` with the file's length and a validator that `If-Range` can carry (a strong
//!    `ETag`, or a `Last-Modified` at least a minute older than the response's `Date`,
//!    RFC 9110 §13.1.5 and §8.8.2.2). If not, the download stays on that one connection,
//!    with a one-line notice; nothing is lost, since that connection already fetches
//!    everything.
//! 2. **The planner** (`engine::segments`) cuts the missing bytes into N pieces. The first
//!    connection keeps going on the first piece: its request asked for more, so its
//!    [`Piece`]'s end is moved down and it stops with a RST once the piece is in the file.
//!    The others open connections of their own, asking exactly for their piece with
//!    `Range: bytes=a-b` and `If-Range`.
//! 3. **Every answer is checked** ([`check_piece`]): a `200` means the validator no longer
//!    matched (the file changed on the server), a different length or validator too: the
//!    download stops with [`EngineError::Changed`], so a file is never stitched from two
//!    versions.
//! 4. **The coordinator** ([`run`]) reports each connection's progress to the planner (the
//!    file's arrived bytes from the piece's start: [`Piece::done_upto`]) and carries out
//!    what it says: a new piece on a new connection, a shortened range, a slow connection
//!    restarted. A connection that fails gives its range back to the pool; one that fails
//!    [`MAX_FAILURES`] times in a row (a server that limits connections) is not opened
//!    again, and the others finish its range. A try with more than
//!    [`FAILURES_PER_CONNECTION`] failures per connection fails, and the fetch's
//!    `--tries` go on from the holes, as after any other network error.
//!
//! All connections write into one sink, which keeps the set of finished ranges: its
//! checkpoints record them, so `-c` after a crash fetches exactly the holes, with any `-x`.
//! The coordinator is plain `async` in the fetch's task, polling the connections' futures
//! itself; one waker for all of them (the task's), and a tick of [`TICK`] for the rates,
//! sooner when a range may have stalled at the end (the planner's rule 4).

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use super::body::{BodyOut, Piece};
use super::endpoint::Endpoint;
use super::error::EngineError;
use super::host::Handle;
use super::progress::Progress;
use super::runtime::{Reactor, Sleep};
use super::segments::{Action, ConnectionId, SegmentConfig, SegmentPlanner};
use super::transfer::{TransferEnd, TransferFailure, TransferOptions};
use crate::http::date::parse_http_date;
use crate::http::{BodyPlan, Completion, HttpError, Request, ResponseHead};
use crate::sink::Sink;

/// How often the coordinator looks at the connections without being woken (each one's rate,
/// for the slow-connection rule).
pub const TICK: Duration = Duration::from_millis(100);

/// The shortest tick: a stall check that comes due at once is looked at after this.
const MIN_TICK: Duration = Duration::from_millis(1);

/// Failures in a row (no piece finished in between) after which a connection is not
/// opened again.
pub const MAX_FAILURES: u32 = 3;

/// Connection failures one try of a download may have, per connection: past that the try
/// fails, and the fetch's retries (`--tries`) take over, resuming the holes.
pub const FAILURES_PER_CONNECTION: u32 = 2;

/// What every piece's answer is checked against: the file's length and its validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub total: u64,
    /// What `If-Range` carries: a strong entity tag, or an HTTP date.
    pub validator: Validator,
}

/// A validator `If-Range` may carry (RFC 9110 §13.1.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validator {
    /// A strong `ETag`, quotes included.
    ETag(String),
    /// A `Last-Modified` date that is a strong validator.
    LastModified(String),
}

impl Validator {
    /// The field value.
    pub fn value(&self) -> &str {
        match self {
            Validator::ETag(tag) | Validator::LastModified(tag) => tag,
        }
    }

    /// Whether `head` carries the same validator.
    fn matches(&self, head: &ResponseHead) -> bool {
        match self {
            Validator::ETag(tag) => head.header("etag") == Some(tag.as_str()),
            Validator::LastModified(date) => {
                head.header("last-modified").and_then(parse_http_date) == parse_http_date(date)
            }
        }
    }
}

/// Whether the first response of a download allows splitting it, and what every piece is
/// checked against; otherwise why not (a notice for the user).
pub fn splittable(head: &ResponseHead, plan: &BodyPlan) -> Result<Split, &'static str> {
    if head.status != 206 {
        return Err("the server does not send ranges of it");
    }
    let Some(total) = plan.total_len else {
        return Err("the server does not say how long it is");
    };
    let Some(validator) = validator(head) else {
        return Err(
            "the server sends no validator to check every range against (a strong ETag, or \
             a Last-Modified a minute older than its Date)",
        );
    };
    Ok(Split { total, validator })
}

/// RFC 9110 §13.1.5: an entity tag if there is one, and only a strong one; else a date,
/// only when it is a strong validator (§8.8.2.2: at least 60 s before the response's Date).
fn validator(head: &ResponseHead) -> Option<Validator> {
    if let Some(tag) = head.header("etag") {
        return (!tag.starts_with("W/")).then(|| Validator::ETag(tag.to_string()));
    }
    let modified = head.header("last-modified")?;
    let date = parse_http_date(head.header("date")?)?;
    (date - parse_http_date(modified)? >= 60).then(|| Validator::LastModified(modified.into()))
}

/// Checks a piece's answer: a `206` of the same file (RFC 9110 §13.1.5: a server whose copy
/// no longer matches `If-Range` sends the whole new one with `200`).
pub fn check_piece(head: &ResponseHead, plan: &BodyPlan, split: &Split) -> Result<(), EngineError> {
    if head.status != 206 {
        return Err(EngineError::Changed("it no longer matches If-Range"));
    }
    if plan.total_len != Some(split.total) {
        return Err(EngineError::Changed("its length changed"));
    }
    if !split.validator.matches(head) {
        return Err(EngineError::Changed("its validator changed"));
    }
    Ok(())
}

/// The options of every connection but the first (whose request went out before the
/// split): the same, except that each ACKs at the end of a receive batch only once
/// `2 × connections` full segments are new (`tcp::Config::batch_ack_segments`). The N
/// connections share every batch, so together they send about as many ACKs as one would:
/// on a link where the sender's ACK processing shares our core (veth), N times the ACKs
/// made `-x N` slower than `-x 1`.
pub fn piece_options(first: &TransferOptions, connections: usize) -> TransferOptions {
    let mut options = first.clone();
    options.tcp.batch_ack_segments = 2 * connections.clamp(1, super::segments::MAX_CONNECTIONS);
    options
}

/// What the first connection's head started: handed from the fetch's `open_sink` to [`run`].
pub struct Segmenting {
    sink: Rc<RefCell<Sink>>,
    first: Piece,
    split: Split,
    head: ResponseHead,
    plan: BodyPlan,
}

impl Segmenting {
    /// The first response allows splitting: `sink` becomes the download's shared sink, and
    /// the first connection's body goes to the returned piece (from `plan`'s offset on).
    pub fn begin(
        sink: Sink,
        split: Split,
        head: &ResponseHead,
        plan: &BodyPlan,
        progress: &Progress,
    ) -> (Segmenting, BodyOut) {
        progress.start_file(sink.arrived().covered(), Some(split.total));
        let sink = Rc::new(RefCell::new(sink));
        let first = Piece::new(
            sink.clone(),
            plan.file_offset,
            Rc::new(Cell::new(split.total)),
        );
        let out = BodyOut::Piece(first.clone());
        let segmenting = Segmenting {
            sink,
            first,
            split,
            head: head.clone(),
            plan: *plan,
        };
        (segmenting, out)
    }
}

/// What the connections of one segmented download share.
pub struct Job<'j, 'a> {
    pub reactor: &'j Reactor<'a>,
    /// Where the first connection goes (the server, or the proxy); the others open
    /// connections of their own to its `remote`.
    pub endpoint: Endpoint,
    /// The first request: every piece's is this one with its range and `If-Range`.
    pub request: &'j Request,
    /// The options of the pieces' connections ([`piece_options`]).
    pub options: &'j TransferOptions,
    pub progress: &'a Progress,
    pub connections: usize,
}

type ExchangeFuture<'f> = Pin<Box<dyn Future<Output = Result<TransferEnd, TransferFailure>> + 'f>>;

/// What opens the first exchange's sink (`Reactor::follow_exchange`'s `open_sink`).
pub type OpenSink<'f> = dyn FnMut(&ResponseHead, &BodyPlan) -> Result<BodyOut, EngineError> + 'f;

/// Runs the first exchange (`job.request` with `first_options`, its sink opened by
/// `open_sink`) and, once its head set `stash` (see [`Segmenting::begin`]), the whole
/// segmented download. Without a stash the first exchange's end is the download's. On
/// success the end carries the shared sink, complete.
pub async fn run<'f>(
    job: &'f Job<'f, '_>,
    first_options: &'f TransferOptions,
    open_sink: &'f mut OpenSink<'f>,
    stash: &RefCell<Option<Segmenting>>,
) -> Result<TransferEnd, TransferFailure> {
    let reactor = job.reactor;
    let first_handle =
        reactor.begin_exchange(&job.endpoint, job.request, first_options, job.progress)?;
    let mut first: ExchangeFuture<'f> = Box::pin(reactor.follow_exchange(first_handle, open_sink));
    let first_end = core::future::poll_fn(|cx| match first.as_mut().poll(cx) {
        Poll::Ready(end) => Poll::Ready(Some(end)),
        Poll::Pending if stash.borrow().is_some() => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await;
    let Some(segmenting) = stash.borrow_mut().take() else {
        return match first_end {
            Some(end) => end,
            None => Err(EngineError::Setup("the download lost its first connection".into()).into()),
        };
    };
    let mut coordinator = Coordinator::new(job, segmenting);
    coordinator.slots[0].handle.set(Some(first_handle));
    match first_end {
        Some(end) => coordinator.ended(0, end),
        None => coordinator.slots[0].exchange = Some(first),
    }
    let outcome = core::future::poll_fn(|cx| coordinator.poll(cx)).await;
    coordinator.finish(outcome)
}

/// One connection of the download: what it fetches and its exchange, while it runs.
struct Slot<'f> {
    exchange: Option<ExchangeFuture<'f>>,
    piece: Option<Piece>,
    /// The connection, once opened (the exchange sets it after the route lookup).
    handle: Rc<Cell<Option<Handle>>>,
    /// Failures in a row (no piece finished in between).
    failures: u32,
}

struct Coordinator<'f, 'a> {
    job: &'f Job<'f, 'a>,
    planner: SegmentPlanner,
    sink: Rc<RefCell<Sink>>,
    split: Split,
    head: ResponseHead,
    plan: BodyPlan,
    slots: Vec<Slot<'f>>,
    /// The tick's sleep and when it ends.
    tick: Option<(crate::time::Instant, Pin<Box<Sleep<'f, 'a>>>)>,
    /// The error that ends the download (the first fatal one).
    failure: Option<EngineError>,
    /// The last error of a connection, for when no connection is left.
    last_error: Option<EngineError>,
    /// Connection failures in this try.
    failures: u32,
}

impl<'f, 'a> Coordinator<'f, 'a> {
    fn new(job: &'f Job<'f, 'a>, segmenting: Segmenting) -> Coordinator<'f, 'a> {
        let Segmenting {
            sink,
            first,
            split,
            head,
            plan,
        } = segmenting;
        let config = SegmentConfig {
            connections: job.connections,
            ..SegmentConfig::default()
        };
        let planner = SegmentPlanner::new(split.total, sink.borrow().arrived(), config);
        let mut slots: Vec<Slot<'f>> =
            (0..job.connections.clamp(1, super::segments::MAX_CONNECTIONS))
                .map(|_| Slot {
                    exchange: None,
                    piece: None,
                    handle: Rc::new(Cell::new(None)),
                    failures: 0,
                })
                .collect();
        // The first connection fetches the first piece (its request asked for the rest).
        slots[0].piece = Some(first);
        Coordinator {
            job,
            planner,
            sink,
            split,
            head,
            plan,
            slots,
            tick: None,
            failure: None,
            last_error: None,
            failures: 0,
        }
    }

    /// One look at everything: the connections' ends, their progress, the planner's
    /// actions. Ready when the file is complete or the download failed.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), EngineError>> {
        for index in 0..self.slots.len() {
            let Some(exchange) = self.slots[index].exchange.as_mut() else {
                continue;
            };
            if let Poll::Ready(end) = exchange.as_mut().poll(cx) {
                self.slots[index].exchange = None;
                self.ended(index, end);
            }
        }
        if let Some(error) = self.failure.take() {
            return Poll::Ready(Err(error));
        }
        for (index, slot) in self.slots.iter().enumerate() {
            if let Some(piece) = &slot.piece {
                self.planner
                    .on_progress(ConnectionId(index), piece.done_upto());
            }
        }
        let now = self.job.reactor.now();
        while let Some(action) = self.planner.poll_action(now) {
            if self.act(action) {
                return Poll::Ready(Ok(()));
            }
        }
        if self.planner.is_stuck() {
            let error = self.last_error.take().unwrap_or_else(|| {
                EngineError::Setup("no connection of the download is left".into())
            });
            return Poll::Ready(Err(error));
        }
        // The tick: looked at again within TICK even if nothing wakes the task, sooner when
        // a range may stall before that (the planner's rule 4).
        let reactor = self.job.reactor;
        let wait = self.planner.next_check().map_or(TICK, |at| {
            at.saturating_duration_since(now).clamp(MIN_TICK, TICK)
        });
        if self.tick.as_ref().is_some_and(|(at, _)| now + wait < *at) {
            self.tick = None;
        }
        let (_, tick) = self
            .tick
            .get_or_insert_with(|| (now + wait, Box::pin(reactor.sleep(wait))));
        match tick.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Ready(Ok(())) => {
                // Time has moved: be polled again at once, which starts the next tick.
                self.tick = None;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    /// Carries out one action of the planner; true when the file is complete.
    fn act(&mut self, action: Action) -> bool {
        match action {
            Action::Fetch {
                connection,
                start,
                end,
            } => {
                let slot = &mut self.slots[connection.0];
                match &slot.piece {
                    // The first connection's open-ended request covers its first piece.
                    Some(piece) if slot.exchange.is_some() && piece.start() == start => {
                        piece.set_end(end);
                    }
                    _ => {
                        self.discard(connection.0);
                        self.open(connection.0, start, end);
                    }
                }
            }
            Action::Shorten { connection, end } => {
                let slot = &self.slots[connection.0];
                if let Some(piece) = &slot.piece {
                    piece.set_end(end);
                }
                if let Some(handle) = slot.handle.get() {
                    self.job.reactor.wake_exchange(handle);
                }
            }
            Action::Restart { connection } | Action::Release { connection } => {
                self.discard(connection.0);
                self.slots[connection.0].piece = None;
            }
            Action::Finished => return true,
        }
        false
    }

    /// A connection's exchange ended: done with its piece, or it failed (the rest of its
    /// range goes back to the pool; a fatal error ends the download).
    fn ended(&mut self, index: usize, end: Result<TransferEnd, TransferFailure>) {
        let slot = &mut self.slots[index];
        slot.handle.set(None);
        let Some(piece) = slot.piece.clone() else {
            return;
        };
        let id = ConnectionId(index);
        self.planner.on_progress(id, piece.done_upto());
        if piece.is_done() {
            slot.failures = 0;
            return;
        }
        let error = match end {
            // The server sent less than the range (and closed).
            Ok(TransferEnd::Body { .. }) => EngineError::Http(HttpError::Truncated {
                got: piece.done_upto() - piece.start(),
                expected: Some(piece.end() - piece.start()),
            }),
            Ok(TransferEnd::NoBody { outcome, .. }) => match outcome.to_error() {
                Some(error) => error.into(),
                None => EngineError::Changed("it answers a range with a redirect now"),
            },
            Err(failure) => failure.error,
        };
        if self.job.reactor.interrupted() || !is_connection_trouble(&error) {
            self.failure.get_or_insert(error);
            return;
        }
        slot.failures += 1;
        slot.piece = None;
        if slot.failures >= MAX_FAILURES {
            self.planner.retire(id);
        } else {
            self.planner.on_failed(id);
        }
        self.failures += 1;
        if self.failures > FAILURES_PER_CONNECTION * self.slots.len() as u32 {
            self.failure.get_or_insert(error);
            return;
        }
        self.last_error = Some(error);
    }

    /// Starts connection `index` on bytes `start..end`.
    fn open(&mut self, index: usize, start: u64, end: u64) {
        let job = self.job;
        let piece = Piece::new(self.sink.clone(), start, Rc::new(Cell::new(end)));
        let slot = &mut self.slots[index];
        slot.piece = Some(piece.clone());
        let handle = slot.handle.clone();
        let split = self.split.clone();
        slot.exchange = Some(Box::pin(async move {
            let endpoint = job.reactor.open(job.endpoint.remote).await?;
            let request = Request {
                range_start: Some(start),
                range_end: Some(end),
                if_range: Some(split.validator.value().to_string()),
                ..job.request.clone()
            };
            let opened =
                job.reactor
                    .begin_exchange(&endpoint, &request, job.options, job.progress)?;
            handle.set(Some(opened));
            let mut open_piece = |head: &ResponseHead, plan: &BodyPlan| {
                check_piece(head, plan, &split)?;
                Ok(BodyOut::Piece(piece.clone()))
            };
            job.reactor.follow_exchange(opened, &mut open_piece).await
        }));
    }

    /// Stops connection `index`'s exchange, if it runs: the connection is reset, the
    /// session and the future dropped (nothing of it is waited for).
    fn discard(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if let Some(handle) = slot.handle.take() {
            self.job.reactor.discard_exchange(handle);
        }
        slot.exchange = None;
    }

    /// Stops every connection and hands the sink back, complete or not.
    fn finish(mut self, outcome: Result<(), EngineError>) -> Result<TransferEnd, TransferFailure> {
        for index in 0..self.slots.len() {
            self.discard(index);
        }
        let Coordinator {
            sink,
            slots,
            head,
            plan,
            split,
            ..
        } = self;
        // The pieces hold the sink too.
        drop(slots);
        let sink = match Rc::try_unwrap(sink) {
            Ok(sink) => Box::new(sink.into_inner()),
            Err(_) => {
                return Err(EngineError::Setup(
                    "internal error: a connection still holds the file".into(),
                )
                .into());
            }
        };
        match outcome {
            Ok(()) => Ok(TransferEnd::Body {
                sink: Some(sink),
                completion: Completion {
                    body_len: split.total - plan.file_offset,
                    close_delimited: false,
                },
                plan,
                head,
            }),
            Err(error) => Err(TransferFailure {
                error,
                sink: Some(sink),
            }),
        }
    }
}

/// Whether a connection's failure is its own trouble (another connection may do better):
/// network errors, and the statuses of a server that limits connections (429, 5xx).
fn is_connection_trouble(error: &EngineError) -> bool {
    match error {
        EngineError::Http(HttpError::ServerError { status, .. }) => {
            *status == 429 || *status >= 500
        }
        other => other.is_retryable(),
    }
}
