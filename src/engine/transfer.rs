//! One HTTP exchange as a session of the host: [`Transfer`].
//!
//! The exchange never touches the driver; the host (`engine::host`) hands it stream bytes
//! and polls it once per step:
//!
//! ```text
//! on_stream: (stream offset, bytes borrowed from the frame) → Exchange::on_stream
//!            → body chunk → Sink::write_at (the one copy)           [plain HTTP]
//!            → TlsStream staging at its offset                       [HTTPS]
//! poll:      HTTPS: decrypt what is in order → Exchange::on_stream → Sink::write_at
//!            events: connected → queue the request; peer FIN → end of stream
//!            head: no body → done (redirect, error); a body waits for its sink
//!            receive window; progress; checkpoint; complete → FIN, done
//!            connect, read and minimum-speed timeouts
//! ```
//!
//! The caller (a fetch) sees [`Transfer::wants_sink`] once the head says a body follows,
//! opens the output and gives it with [`Transfer::start_body`]; body bytes that arrived
//! meanwhile wait in the exchange's staging, inside the receive window
//! (`engine::runtime::Reactor::exchange` is that caller).
//!
//! HTTPS puts a [`TlsStream`] between the connection and the exchange: segments' payload is
//! staged at its stream offset, decrypted once per batch, and the plaintext goes on to
//! `Exchange::on_stream` in order; the handshake and the encrypted request go out through
//! the connection's send buffer. The plain path is untouched (no staging, no copy).

use core::time::Duration;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::body::BodyOut;
use super::endpoint::Endpoint;
use super::error::EngineError;
use super::host::{Session, SessionStatus};
use super::progress::Progress;
use super::stats::EngineStats;
use super::tunnel::Tunnel;
use crate::http::proxy::connect_request;
use crate::http::{BodyChunk, BodyPlan, Completion, Exchange, Outcome, Request, ResponseHead};
use crate::sink::Sink;
use crate::tcp::pacer::Pacer;
use crate::tcp::{self, Connection, Event, State};
use crate::time::Instant;
use crate::tls::{TlsSettings, TlsStream};

/// Staging window of the HTTP exchange (response head, chunked bodies).
const STAGING_WINDOW: usize = 4 << 20;

/// Tuning of one transfer.
#[derive(Clone, Debug)]
pub struct TransferOptions {
    pub tcp: tcp::Config,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// How long the loop spins with nothing to do before it blocks in `Driver::wait`.
    /// Zero in the simulator (waiting is how virtual time moves).
    pub idle_before_wait: Duration,
    /// The longest single blocking wait, so timeouts and Ctrl-C are noticed.
    pub max_wait: Duration,
    /// Set (by a signal handler) to stop the transfer; checked once per loop iteration.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Trust for `https://` URLs.
    pub tls: TlsSettings,
    /// Give up on a connection that stays slower than this (curl's `--speed-limit` and
    /// `--speed-time`): a server that drips a byte a second never trips `read_timeout`.
    pub min_speed: Option<MinSpeed>,
    /// `--limit-rate`: bytes per second this exchange may receive, paced by the receive
    /// window it advertises (`tcp::pacer`), never by dropping data.
    pub limit_rate: Option<u64>,
}

/// The slowest a connection may be, for how long, before the transfer gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinSpeed {
    pub bytes_per_second: u64,
    pub period: Duration,
}

/// How often the speed is sampled: bytes per second over this much time.
const SPEED_SAMPLE: Duration = Duration::from_secs(1);

/// The state of the minimum-speed check: as curl does, the connection is "slow" from the
/// first one-second sample below the limit, and the transfer gives up once it has been
/// slow for the whole period; any sample at or above the limit forgives.
#[derive(Debug)]
struct SpeedCheck {
    sample_start: Instant,
    sample_bytes: u64,
    slow_since: Option<Instant>,
}

impl SpeedCheck {
    fn new(now: Instant) -> SpeedCheck {
        SpeedCheck {
            sample_start: now,
            sample_bytes: 0,
            slow_since: None,
        }
    }

    /// `Some(seconds slow)` once the connection has been slower than `limit` for its
    /// period.
    fn check(&mut self, now: Instant, limit: MinSpeed) -> Option<Duration> {
        let elapsed = now - self.sample_start;
        if elapsed >= SPEED_SAMPLE {
            let rate = self.sample_bytes as f64 / elapsed.as_secs_f64();
            if rate < limit.bytes_per_second as f64 {
                self.slow_since.get_or_insert(self.sample_start);
            } else {
                self.slow_since = None;
            }
            self.sample_start = now;
            self.sample_bytes = 0;
        }
        self.slow_since
            .map(|since| now - since)
            .filter(|slow| *slow >= limit.period)
    }
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            tcp: tcp::Config::default(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(900),
            idle_before_wait: Duration::from_millis(2),
            max_wait: Duration::from_millis(100),
            interrupt: None,
            tls: TlsSettings::default(),
            min_speed: None,
            limit_rate: None,
        }
    }
}

/// How an exchange ended well.
#[derive(Debug)]
pub enum TransferEnd {
    /// The body is complete in `sink` (still to be finished by the caller); `None` for a
    /// piece of a segmented download, whose sink belongs to the download.
    Body {
        sink: Option<Box<Sink>>,
        plan: BodyPlan,
        completion: Completion,
        head: ResponseHead,
    },
    /// The response has no body for us: a redirect, a server error, or "already complete".
    NoBody {
        outcome: Outcome,
        head: ResponseHead,
    },
}

/// How an exchange ended badly: the error, and the sink if one was opened (the caller
/// abandons it, which keeps the contiguous prefix for `-c` and retries).
#[derive(Debug)]
pub struct TransferFailure {
    pub error: EngineError,
    pub sink: Option<Box<Sink>>,
}

impl<E: Into<EngineError>> From<E> for TransferFailure {
    fn from(error: E) -> Self {
        TransferFailure {
            error: error.into(),
            sink: None,
        }
    }
}

/// The client side of one HTTP exchange (plain or TLS) as a [`Session`] of the host: the
/// request out, the response head decided, the body into its sink at its file offsets,
/// the connect, read and minimum-speed timeouts. It never sees the driver.
pub struct Transfer<'a> {
    endpoint: Endpoint,
    options: TransferOptions,
    progress: &'a Progress,
    exchange: Exchange,
    request_bytes: Vec<u8>,
    request_sent: usize,
    /// The TLS session of an `https://` exchange (it sends the request itself).
    tls: Option<TlsStream>,
    /// The handshake completed: a reset or timeout now means a broken connection, not a
    /// refused or unreachable server.
    connected: bool,
    sink: Option<BodyOut>,
    plan: Option<BodyPlan>,
    completion: Option<Completion>,
    started: Instant,
    last_data: Instant,
    speed: SpeedCheck,
    /// Stream bytes arrived since the last poll (HTTPS decrypts once per batch).
    received: bool,
    /// Body bytes written since the last poll.
    delivered: u64,
    /// The first error of the data path (sticky: the session ends with it).
    failure: Option<EngineError>,
    /// How the exchange ended, once it has.
    end: Option<Result<TransferEnd, EngineError>>,
    /// Time to connect and to the first body byte, for `--stats`.
    connect_time: Option<Duration>,
    first_byte_time: Option<Duration>,
    /// HTTPS through a proxy: the `CONNECT` before TLS, and where the tunnel starts.
    tunnel: Option<Tunnel>,
    /// `--limit-rate`: the window's edge moves at the rate; the next time it moves.
    pacer: Option<Pacer>,
    pacer_next: Option<Instant>,
    /// Segments and bytes of this connection, for `--stats`.
    body_bytes: u64,
}

impl<'a> Transfer<'a> {
    /// The session of `request` to `endpoint.remote`, starting at `now`.
    pub fn new(
        now: Instant,
        endpoint: Endpoint,
        request: &Request,
        options: &TransferOptions,
        progress: &'a Progress,
    ) -> Result<Self, EngineError> {
        let mut request_bytes = request.encode()?;
        let tunnel = match &request.proxy {
            Some(proxy) if request.target.is_https() => Some(Tunnel::new(connect_request(
                &request.target,
                proxy,
                request.user_agent.as_deref(),
            )?)),
            _ => None,
        };
        let tls = if request.target.is_https() {
            let config = options.tls.client_config()?;
            let plaintext = core::mem::take(&mut request_bytes);
            let host = &request.target.host;
            Some(TlsStream::new(config, host, plaintext, STAGING_WINDOW)?)
        } else {
            None
        };
        Ok(Transfer {
            endpoint,
            options: options.clone(),
            progress,
            exchange: Exchange::with_window(request, STAGING_WINDOW),
            request_bytes,
            request_sent: 0,
            tls,
            connected: false,
            sink: None,
            plan: None,
            completion: None,
            started: now,
            last_data: now,
            speed: SpeedCheck::new(now),
            received: false,
            delivered: 0,
            failure: None,
            end: None,
            connect_time: None,
            first_byte_time: None,
            tunnel,
            pacer: options
                .limit_rate
                .map(|rate| Pacer::new(rate, usize::from(options.tcp.advertised_mss()))),
            pacer_next: None,
            body_bytes: 0,
        })
    }

    /// How the exchange ended, with the sink if one was opened and the exchange failed (the
    /// caller abandons it, which keeps the contiguous prefix for `-c` and retries).
    pub fn into_end(mut self) -> Result<TransferEnd, TransferFailure> {
        match self.end.take() {
            Some(Ok(end)) => Ok(end),
            Some(Err(error)) => Err(TransferFailure {
                error,
                sink: self.sink.take().and_then(BodyOut::into_whole),
            }),
            None => Err(TransferFailure {
                error: EngineError::Interrupted,
                sink: self.sink.take().and_then(BodyOut::into_whole),
            }),
        }
    }

    /// The sink, if one was opened (an exchange given up from outside: the caller abandons
    /// it, which keeps what arrived).
    pub fn into_sink(mut self) -> Option<Box<Sink>> {
        self.sink.take().and_then(BodyOut::into_whole)
    }

    /// Adds this exchange's connect and first-byte times to `stats`.
    pub fn record(&self, stats: &mut EngineStats) {
        if let Some(t) = self.connect_time {
            stats.connect.record(nanos(t));
        }
        if let Some(t) = self.first_byte_time {
            stats.first_byte.record(nanos(t));
        }
        if let Some(pacer) = &self.pacer {
            stats.window_limited += pacer.window_limited();
        }
    }

    /// Body bytes this exchange wrote.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// The remote end.
    pub fn remote(&self) -> std::net::SocketAddr {
        self.endpoint.remote
    }

    /// One poll's work; an error ends the exchange.
    fn step(
        &mut self,
        now: Instant,
        connection: &mut Connection,
    ) -> Result<Option<TransferEnd>, EngineError> {
        if let Some(error) = self.failure.take() {
            return Err(error);
        }
        if core::mem::take(&mut self.received) {
            self.decrypt();
            if let Some(error) = self.failure.take() {
                return Err(error);
            }
        }
        if let Some(tunnel) = self.tunnel.as_mut() {
            tunnel.poll()?;
        }
        let delivered = core::mem::take(&mut self.delivered);
        self.speed.sample_bytes += delivered;
        self.body_bytes += delivered;
        if delivered > 0 {
            self.last_data = now;
            if self.first_byte_time.is_none() && self.plan.is_some() {
                self.first_byte_time = Some(now - self.started);
            }
        }
        if let Some(end) = self.handle_events(now, connection)? {
            return Ok(Some(end));
        }
        if let Some(end) = self.handle_head(connection)? {
            return Ok(Some(end));
        }
        self.update_receive_window(now, connection);
        if let Some(out) = self.sink.as_mut() {
            if delivered > 0 {
                self.progress.advance(out.shown_len(), delivered);
            }
            out.poll_checkpoint(now)?;
        }
        if let Some(end) = self.finished(connection) {
            return Ok(Some(end));
        }
        self.check_timeouts(now, connection)?;
        Ok(None)
    }

    /// Ends the connection after the exchange failed. When our TLS session rejected the
    /// server (its certificate, a bad record), rustls's fatal alert waits in
    /// `pending_output`: it goes out, then a FIN, so the server learns why (RFC 8446 §6.2;
    /// nginx logs e.g. "alert unknown ca"); the host sends both with this step's transmit
    /// batch (the connection lingers after its session is done). Anything else resets it.
    fn end_after_failure(&mut self, error: &EngineError, connection: &mut Connection) {
        let open = matches!(connection.state(), State::Established | State::CloseWait);
        match self.tls.as_mut() {
            Some(tls)
                if open
                    && matches!(error, EngineError::Tls(_))
                    && !tls.pending_output().is_empty() =>
            {
                let taken = connection.send(tls.pending_output());
                tls.consume_output(taken);
                connection.close();
            }
            _ => connection.abort(),
        }
    }

    /// HTTPS: decrypts what arrived in order this batch, and hands the plaintext on.
    fn decrypt(&mut self) {
        let Transfer {
            exchange,
            sink,
            plan,
            tls,
            delivered,
            failure,
            ..
        } = self;
        let Some(tls) = tls.as_mut() else {
            return;
        };
        let decrypted = tls.process(&mut |offset, bytes| {
            to_exchange(exchange, sink, plan, offset, bytes, delivered, failure);
        });
        if let Err(e) = decrypted {
            failure.get_or_insert(e.into());
        }
    }

    /// Drains the connection's events. A finished exchange may end here.
    fn handle_events(
        &mut self,
        now: Instant,
        connection: &mut Connection,
    ) -> Result<Option<TransferEnd>, EngineError> {
        let remote = self.endpoint.remote;
        while let Some(event) = connection.poll_event() {
            match event {
                Event::Connected => {
                    self.connected = true;
                    self.connect_time = Some(now - self.started);
                }
                Event::PeerFin { stream_len } => {
                    if self.completion.is_none()
                        && let Some(stream_len) = self.plaintext_end(stream_len)?
                    {
                        let completion = self.exchange.on_stream_end(stream_len)?;
                        self.completion = Some(completion);
                    }
                    // Our side has nothing more to say either (RFC 9293 §3.10.4).
                    connection.close();
                }
                Event::Reset if !self.connected => {
                    return Err(EngineError::Refused { remote });
                }
                Event::Reset => {
                    if self.exchange.is_complete() {
                        continue;
                    }
                    return Err(EngineError::Reset { remote });
                }
                Event::TimedOut if !self.connected => {
                    return Err(EngineError::ConnectTimeout { remote });
                }
                Event::TimedOut => return Err(EngineError::RetransmissionsExhausted { remote }),
                Event::Closed => {}
            }
        }
        let open = matches!(connection.state(), State::Established | State::CloseWait);
        if open && let Some(tunnel) = self.tunnel.as_mut() {
            let taken = connection.send(tunnel.pending_request());
            tunnel.consume_request(taken);
        }
        // Through a proxy, TLS speaks only once the tunnel is open.
        let tunneled = self.tunnel.as_ref().is_none_or(|t| t.open_at().is_some());
        if open
            && tunneled
            && let Some(tls) = self.tls.as_mut()
        {
            let taken = connection.send(tls.pending_output());
            tls.consume_output(taken);
        }
        if open && self.request_sent < self.request_bytes.len() {
            self.request_sent += connection.send(&self.request_bytes[self.request_sent..]);
        }
        Ok(None)
    }

    /// The length of the stream the exchange reads, from the TCP stream's at the peer's FIN:
    /// the same for plain HTTP; for HTTPS the plaintext's, if the peer said `close_notify`.
    /// `None` when TLS ended without it but the response is complete anyway.
    fn plaintext_end(&mut self, stream_len: u64) -> Result<Option<u64>, EngineError> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(Some(stream_len));
        };
        match tls.end_of_stream() {
            Ok(plaintext_len) => Ok(Some(plaintext_len)),
            Err(_) if self.exchange.is_complete() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Once the head is decided: end the exchange if no body follows. A body waits (staged,
    /// inside the receive window) until the caller gives it a sink with
    /// [`Transfer::start_body`] (see [`Transfer::wants_sink`]).
    fn handle_head(
        &mut self,
        connection: &mut Connection,
    ) -> Result<Option<TransferEnd>, EngineError> {
        if self.plan.is_some() {
            return Ok(None);
        }
        let (Some(outcome), Some(head)) = (self.exchange.outcome(), self.exchange.head()) else {
            return Ok(None);
        };
        let Outcome::Body(_) = outcome else {
            let end = TransferEnd::NoBody {
                outcome: outcome.clone(),
                head: head.clone(),
            };
            connection.abort();
            return Ok(Some(end));
        };
        Ok(None)
    }

    /// The response head says a body follows and no sink was given yet: the caller opens
    /// one (it may refuse: then it aborts the connection) and calls
    /// [`Transfer::start_body`].
    pub fn wants_sink(&self) -> bool {
        self.plan.is_none()
            && self.end.is_none()
            && matches!(self.exchange.outcome(), Some(Outcome::Body(_)))
    }

    /// The response head says a body follows (after [`TransferEnd::Head`]): the body goes
    /// to `sink` from now on. (A piece's download starts the progress display itself.)
    pub fn start_body(&mut self, mut sink: BodyOut) -> Result<(), EngineError> {
        let Some(Outcome::Body(plan)) = self.exchange.outcome() else {
            return Err(EngineError::Setup("no body to start".into()));
        };
        let plan = *plan;
        if let BodyOut::Whole(whole) = &sink {
            self.progress
                .start_file(whole.contiguous_len(), plan.total_len);
        }
        let mut failure = None;
        let mut delivered = 0;
        let started = self.exchange.start_body(&mut |chunk: BodyChunk<'_>| {
            delivered += place(&mut sink, &plan, chunk, &mut failure);
        });
        self.delivered += delivered;
        // Kept even on error: the caller abandons it, which keeps what arrived for `-c`.
        self.sink = Some(sink);
        self.plan = Some(plan);
        started?;
        failure.map_or(Ok(()), Err)
    }

    /// The response head, once decided.
    pub fn head(&self) -> Option<(&ResponseHead, &BodyPlan)> {
        let Some(Outcome::Body(plan)) = self.exchange.outcome() else {
            return None;
        };
        Some((self.exchange.head()?, plan))
    }

    /// Keeps the advertised window inside what the exchange and the sink can take.
    fn update_receive_window(&mut self, now: Instant, connection: &mut Connection) {
        let max = self.options.tcp.max_receive_window;
        let in_order = connection.received_in_order();
        let window = match self.exchange.stream_window_end() {
            Some(end) => end.saturating_sub(in_order),
            None => self
                .sink
                .as_ref()
                .and_then(BodyOut::reorder_capacity)
                .unwrap_or(max as u64),
        };
        // HTTPS: ciphertext waits in the TLS staging buffer until it decrypts in order.
        let window = self.tls.as_ref().map_or(window, |tls| {
            let base = self.tunnel.as_ref().map_or(0, |t| t.open_at().unwrap_or(0));
            (base + tls.window_end()).saturating_sub(in_order)
        });
        // --limit-rate: the edge moves no faster than the rate (RFC 9293 §3.8.6).
        let window = match self.pacer.as_mut() {
            Some(pacer) => {
                let pace = pacer.poll(now, in_order);
                self.pacer_next = Some(pace.next_poll);
                window.min(pace.window as u64)
            }
            None => window,
        };
        connection.set_receive_window(usize::try_from(window).unwrap_or(max).min(max));
    }

    /// The exchange is over when the body is complete (by length, or by the peer's FIN), or
    /// when a piece's range is in the file (the server would send more: a RST stops it).
    fn finished(&mut self, connection: &mut Connection) -> Option<TransferEnd> {
        let complete = self.exchange.is_complete() || self.completion.is_some();
        let piece_done = !complete
            && self
                .sink
                .as_ref()
                .and_then(BodyOut::piece)
                .is_some_and(|piece| piece.is_done());
        if !(complete || piece_done) || self.plan.is_none() {
            return None;
        }
        let completion = match self.completion {
            Some(c) => c,
            None => Completion {
                body_len: self.exchange.body_received(),
                close_delimited: false,
            },
        };
        if piece_done {
            connection.abort();
        } else {
            // We are done reading; say goodbye once (the FIN goes out with this step's
            // transmit batch, and the host lets the connection finish closing).
            connection.close();
        }
        let (Some(sink), Some(plan), Some(head)) =
            (self.sink.take(), self.plan, self.exchange.head().cloned())
        else {
            return None;
        };
        Some(TransferEnd::Body {
            sink: sink.into_whole(),
            plan,
            completion,
            head,
        })
    }

    fn check_timeouts(&mut self, now: Instant, connection: &Connection) -> Result<(), EngineError> {
        let remote = self.endpoint.remote;
        if connection.state() == State::SynSent
            && now - self.started >= self.options.connect_timeout
        {
            return Err(EngineError::ConnectTimeout { remote });
        }
        if now - self.last_data >= self.options.read_timeout && connection.state() != State::SynSent
        {
            return Err(EngineError::ReadTimeout {
                remote,
                seconds: self.options.read_timeout.as_secs(),
            });
        }
        if let Some(limit) = self.options.min_speed
            && connection.state() != State::SynSent
            && let Some(slow) = self.speed.check(now, limit)
        {
            return Err(EngineError::TooSlow {
                remote,
                bytes_per_second: limit.bytes_per_second,
                seconds: slow.as_secs(),
            });
        }
        Ok(())
    }
}

impl Session for Transfer<'_> {
    fn on_stream(&mut self, offset: u64, bytes: &[u8]) {
        if self.failure.is_some() || self.end.is_some() {
            return;
        }
        self.received = true;
        let (offset, bytes) = match self.tunnel.as_mut().map(|t| t.on_stream(offset, bytes)) {
            None => (offset, bytes),
            Some(Ok(Some(inside))) => inside,
            Some(Ok(None)) => return,
            Some(Err(e)) => {
                self.failure.get_or_insert(e.into());
                return;
            }
        };
        if let Some(tls) = self.tls.as_mut() {
            if let Err(e) = tls.on_stream(offset, bytes) {
                self.failure.get_or_insert(e.into());
            }
            return;
        }
        to_exchange(
            &mut self.exchange,
            &mut self.sink,
            &self.plan,
            offset,
            bytes,
            &mut self.delivered,
            &mut self.failure,
        );
    }

    fn poll(&mut self, now: Instant, connection: &mut Connection) -> SessionStatus {
        if self.end.is_some() {
            return SessionStatus::Done;
        }
        match self.step(now, connection) {
            Ok(None) => SessionStatus::Running,
            Ok(Some(end)) => {
                self.end = Some(Ok(end));
                SessionStatus::Done
            }
            Err(error) => {
                self.end_after_failure(&error, connection);
                self.end = Some(Err(error));
                SessionStatus::Done
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let mut deadline = self.last_data + self.options.read_timeout;
        if self.connect_time.is_none() {
            deadline = deadline.min(self.started + self.options.connect_timeout);
        }
        // The speed is sampled once connected (check_timeouts), so its deadline is ahead.
        if self.options.min_speed.is_some() && self.connected {
            deadline = deadline.min(self.speed.sample_start + SPEED_SAMPLE);
        }
        if let Some(next) = self.pacer_next {
            deadline = deadline.min(next);
        }
        // A staged file sink whose writer fell behind reopens the window without a segment.
        if let Some(next) = self.sink.as_ref().and_then(BodyOut::poll_again_at) {
            deadline = deadline.min(next);
        }
        Some(deadline)
    }
}

/// Hands stream bytes at `offset` to the exchange, and the body bytes it lets out to the
/// sink, counting them in `delivered`. The first error is kept in `failure`.
fn to_exchange(
    exchange: &mut Exchange,
    sink: &mut Option<BodyOut>,
    plan: &Option<BodyPlan>,
    offset: u64,
    bytes: &[u8],
    delivered: &mut u64,
    failure: &mut Option<EngineError>,
) {
    let mut write = |chunk: BodyChunk<'_>| {
        if let (Some(sink), Some(plan)) = (sink.as_mut(), plan.as_ref()) {
            *delivered += place(sink, plan, chunk, failure);
        }
    };
    if let Err(e) = exchange.on_stream(offset, bytes, &mut write) {
        failure.get_or_insert(e.into());
    }
}

/// Writes body bytes at their file offset (the one copy of the data path) and returns how
/// many were taken. The first error is kept in `failure`.
fn place(
    sink: &mut BodyOut,
    plan: &BodyPlan,
    chunk: BodyChunk<'_>,
    failure: &mut Option<EngineError>,
) -> u64 {
    match sink.write_at(plan.file_offset + chunk.offset, chunk.bytes) {
        Ok(taken) => taken,
        Err(e) => {
            failure.get_or_insert(e.into());
            chunk.bytes.len() as u64
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
