//! One HTTP exchange over one TCP connection: the busy-poll loop.
//!
//! Per iteration (DESIGN.md "Data path"):
//!
//! ```text
//! now ← driver clock
//! rx batch: parse + verify each frame → Connection::on_segment → (stream offset, bytes)
//!           → Exchange::on_stream → body chunk → Sink::write_at (the one copy)
//! events:   connected → queue the request; peer FIN → end of stream
//! head:     once the response head is decided, open the sink (or stop: redirect, error)
//! timers:   Connection::on_timeout when due
//! tx batch: Connection::poll_transmit until None → frame template → driver; one kick
//! idle:     after `idle_before_wait` with nothing to do, block in Driver::wait
//! ```
//!
//! The same loop runs over AF_XDP, the raw socket, and the simulator: the driver supplies
//! the clock, so in the simulator "blocking" advances virtual time.
//!
//! HTTPS puts a [`TlsStream`] between the connection and the exchange: segments' payload is
//! staged at its stream offset, decrypted once per batch, and the plaintext goes on to
//! `Exchange::on_stream` in order; the handshake and the encrypted request go out through
//! the connection's send buffer. The plain path is untouched (no staging, no copy).

use core::time::Duration;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::endpoint::{Endpoint, FrameWriter};
use super::error::EngineError;
use super::progress::Progress;
use super::stats::EngineStats;
use crate::driver::Driver;
use crate::http::{BodyChunk, BodyPlan, Completion, Exchange, Outcome, Request, ResponseHead};
use crate::sink::Sink;
use crate::tcp::{self, Connection, Event, State};
use crate::time::Instant;
use crate::tls::{TlsSettings, TlsStream};
use crate::wire::parse_tcp_frame;

/// Frames taken from the driver per receive batch, and offered per transmit batch.
const RX_BATCH: usize = 64;
const TX_BATCH: usize = 64;

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
        }
    }
}

/// How an exchange ended well.
#[derive(Debug)]
pub enum TransferEnd {
    /// The body is complete in `sink` (still to be finished by the caller).
    Body {
        sink: Box<Sink>,
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

/// Runs one request on a new connection from `endpoint.local` to `endpoint.remote`.
///
/// `open_sink` is called once, when the response head says a body follows, before any body
/// byte is written; it decides where the body goes (and may refuse with an error).
pub fn run<D: Driver>(
    driver: &mut D,
    endpoint: &Endpoint,
    request: &Request,
    options: &TransferOptions,
    open_sink: &mut dyn FnMut(&ResponseHead, &BodyPlan) -> Result<Sink, EngineError>,
    progress: &Progress,
    stats: &mut EngineStats,
) -> Result<TransferEnd, TransferFailure> {
    let mut transfer = Transfer::new(driver.now(), endpoint, request, options)?;
    let result = transfer.drive(driver, open_sink, progress, stats);
    match result {
        Ok(end) => Ok(end),
        Err(error) => Err(TransferFailure {
            error,
            sink: transfer.sink.take().map(Box::new),
        }),
    }
}

/// The state of one exchange while the loop runs.
struct Transfer<'a> {
    endpoint: &'a Endpoint,
    options: &'a TransferOptions,
    connection: Connection,
    frames: FrameWriter,
    exchange: Exchange,
    request_bytes: Vec<u8>,
    request_sent: usize,
    /// The TLS session of an `https://` exchange (it sends the request itself).
    tls: Option<TlsStream>,
    /// The handshake completed: a reset or timeout now means a broken connection, not a
    /// refused or unreachable server.
    connected: bool,
    sink: Option<Sink>,
    plan: Option<BodyPlan>,
    completion: Option<Completion>,
    started: Instant,
    last_data: Instant,
    first_byte_seen: bool,
    speed: SpeedCheck,
}

impl<'a> Transfer<'a> {
    fn new(
        now: Instant,
        endpoint: &'a Endpoint,
        request: &Request,
        options: &'a TransferOptions,
    ) -> Result<Self, EngineError> {
        let tcp = tcp::Config {
            mtu: endpoint.mtu,
            ip_header_len: endpoint.ip_header_len(),
            ..options.tcp.clone()
        };
        let mut request_bytes = request.encode()?;
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
            options,
            connection: Connection::connect(now, tcp, endpoint.local, endpoint.remote),
            frames: FrameWriter::new(endpoint),
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
            first_byte_seen: false,
            speed: SpeedCheck::new(now),
        })
    }

    fn drive<D: Driver>(
        &mut self,
        driver: &mut D,
        open_sink: &mut dyn FnMut(&ResponseHead, &BodyPlan) -> Result<Sink, EngineError>,
        progress: &Progress,
        stats: &mut EngineStats,
    ) -> Result<TransferEnd, EngineError> {
        let mut idle_since: Option<Instant> = None;
        loop {
            let now = driver.now();
            let work_started = std::time::Instant::now();

            let (received, delivered) = match self.receive_batch(driver, now) {
                Ok(counts) => counts,
                Err(error) => {
                    // What `end_after_failure` queued (a TLS alert and FIN, or a RST) goes
                    // out before the connection is dropped.
                    let _ = self.transmit_batch(driver, now);
                    return Err(error);
                }
            };
            self.speed.sample_bytes += delivered;
            if delivered > 0 {
                self.last_data = now;
                if !self.first_byte_seen && self.plan.is_some() {
                    self.first_byte_seen = true;
                    stats.first_byte.record(nanos(now - self.started));
                }
            }
            if let Some(end) = self.handle_events(now, stats)? {
                return Ok(end);
            }
            if let Some(end) = self.handle_head(open_sink, progress)? {
                return Ok(end);
            }
            if self.connection.poll_timeout().is_some_and(|t| t <= now) {
                self.connection.on_timeout(now);
            }
            self.update_receive_window();
            let transmit_started = std::time::Instant::now();
            let (sent, kick) = self.transmit_batch(driver, now)?;

            if received > 0 {
                let done = std::time::Instant::now();
                let total = done - work_started;
                stats.batch_size.record(received as u64);
                stats.own_work.record(nanos(total.saturating_sub(kick)));
                if sent > 0 {
                    stats.receive_to_ack.record(nanos(total));
                    stats.transmit.record(nanos(done - transmit_started));
                    stats.kick.record(nanos(kick));
                }
            }
            if let Some(sink) = self.sink.as_mut() {
                if delivered > 0 {
                    progress.advance(sink.contiguous_len(), delivered);
                }
                sink.poll_checkpoint(now)?;
            }
            if let Some(end) = self.finished()? {
                return Ok(end);
            }
            self.check_timeouts(now)?;
            if let Some(flag) = &self.options.interrupt
                && flag.load(Ordering::Relaxed)
            {
                self.connection.abort();
                let _ = self.transmit_batch(driver, now);
                return Err(EngineError::Interrupted);
            }

            if received == 0 && sent == 0 {
                stats.idle_loops += 1;
                let since = *idle_since.get_or_insert(now);
                if now - since >= self.options.idle_before_wait {
                    stats.idle_waits += 1;
                    driver.wait(Some(self.next_deadline(now)))?;
                    idle_since = None;
                }
            } else {
                stats.loop_work.record(nanos(work_started.elapsed()));
                idle_since = None;
            }
        }
    }

    /// One receive batch. Returns (frames received, body bytes delivered).
    fn receive_batch<D: Driver>(
        &mut self,
        driver: &mut D,
        now: Instant,
    ) -> Result<(usize, u64), EngineError> {
        let mut delivered = 0u64;
        let mut failure: Option<EngineError> = None;
        let Transfer {
            endpoint,
            connection,
            exchange,
            sink,
            plan,
            tls,
            ..
        } = self;
        let received = driver.receive(RX_BATCH, |frame| {
            if failure.is_some() {
                return;
            }
            // Bad checksums, fragments and foreign frames are dropped here, before the
            // engine: the TCP layer only ever sees valid segments (RFC 9293 §3.10.7.1 asks
            // for silent discard of segments that fail the checksum).
            let Ok((_, ip, segment)) = parse_tcp_frame(frame, true) else {
                return;
            };
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            if !endpoint.accepts(src, dst, &segment) {
                return;
            }
            let Some((offset, bytes)) = connection.on_segment(now, src, dst, &segment).data else {
                return;
            };
            if let Some(tls) = tls.as_mut() {
                if let Err(e) = tls.on_stream(offset, bytes) {
                    failure.get_or_insert(e.into());
                }
                return;
            }
            to_exchange(
                exchange,
                sink,
                plan,
                offset,
                bytes,
                &mut delivered,
                &mut failure,
            );
        })?;
        if let Some(tls) = tls.as_mut()
            && received > 0
            && failure.is_none()
        {
            let decrypted = tls.process(&mut |offset, bytes| {
                to_exchange(
                    exchange,
                    sink,
                    plan,
                    offset,
                    bytes,
                    &mut delivered,
                    &mut failure,
                );
            });
            if let Err(e) = decrypted {
                failure.get_or_insert(e.into());
            }
        }
        match failure {
            Some(error) => {
                self.end_after_failure(&error);
                Err(error)
            }
            None => Ok((received, delivered)),
        }
    }

    /// Ends the connection after a failed receive batch. When our TLS session rejected the
    /// server (its certificate, a bad record), rustls's fatal alert waits in
    /// `pending_output`: it goes out, then a FIN, so the server learns why (RFC 8446 §6.2;
    /// nginx logs e.g. "alert unknown ca"). Anything else resets the connection.
    fn end_after_failure(&mut self, error: &EngineError) {
        let open = matches!(
            self.connection.state(),
            State::Established | State::CloseWait
        );
        match self.tls.as_mut() {
            Some(tls)
                if open
                    && matches!(error, EngineError::Tls(_))
                    && !tls.pending_output().is_empty() =>
            {
                let taken = self.connection.send(tls.pending_output());
                tls.consume_output(taken);
                self.connection.close();
            }
            _ => self.connection.abort(),
        }
    }

    /// Drains the connection's events. A finished exchange may end here.
    fn handle_events(
        &mut self,
        now: Instant,
        stats: &mut EngineStats,
    ) -> Result<Option<TransferEnd>, EngineError> {
        let remote = self.endpoint.remote;
        while let Some(event) = self.connection.poll_event() {
            match event {
                Event::Connected => {
                    self.connected = true;
                    stats.connect.record(nanos(now - self.started));
                }
                Event::PeerFin { stream_len } => {
                    if self.completion.is_none()
                        && let Some(stream_len) = self.plaintext_end(stream_len)?
                    {
                        let completion = self.exchange.on_stream_end(stream_len)?;
                        self.completion = Some(completion);
                    }
                    // Our side has nothing more to say either (RFC 9293 §3.10.4).
                    self.connection.close();
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
        let open = matches!(
            self.connection.state(),
            State::Established | State::CloseWait
        );
        if open && let Some(tls) = self.tls.as_mut() {
            let taken = self.connection.send(tls.pending_output());
            tls.consume_output(taken);
        }
        if open && self.request_sent < self.request_bytes.len() {
            self.request_sent += self
                .connection
                .send(&self.request_bytes[self.request_sent..]);
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

    /// Once the head is decided: open the sink for a body, or end the exchange.
    fn handle_head(
        &mut self,
        open_sink: &mut dyn FnMut(&ResponseHead, &BodyPlan) -> Result<Sink, EngineError>,
        progress: &Progress,
    ) -> Result<Option<TransferEnd>, EngineError> {
        if self.plan.is_some() {
            return Ok(None);
        }
        let (Some(outcome), Some(head)) = (self.exchange.outcome(), self.exchange.head()) else {
            return Ok(None);
        };
        let Outcome::Body(plan) = outcome else {
            let end = TransferEnd::NoBody {
                outcome: outcome.clone(),
                head: head.clone(),
            };
            self.connection.abort();
            return Ok(Some(end));
        };
        let plan = *plan;
        let mut sink = open_sink(head, &plan)?;
        progress.start_file(sink.contiguous_len(), plan.total_len);
        let mut failure = None;
        let started = self.exchange.start_body(&mut |chunk: BodyChunk<'_>| {
            place(&mut sink, &plan, chunk, &mut failure);
        });
        // Kept even on error: the caller abandons it, which keeps what arrived for `-c`.
        self.sink = Some(sink);
        self.plan = Some(plan);
        started?;
        failure.map_or(Ok(None), Err)
    }

    /// Keeps the advertised window inside what the exchange and the sink can take.
    fn update_receive_window(&mut self) {
        let max = self.options.tcp.max_receive_window;
        let in_order = self.connection.received_in_order();
        let window = match self.exchange.stream_window_end() {
            Some(end) => end.saturating_sub(in_order),
            None => self
                .sink
                .as_ref()
                .and_then(Sink::reorder_capacity)
                .unwrap_or(max as u64),
        };
        // HTTPS: ciphertext waits in the TLS staging buffer until it decrypts in order.
        let window = self
            .tls
            .as_ref()
            .map_or(window, |tls| tls.window_end().saturating_sub(in_order));
        self.connection
            .set_receive_window(usize::try_from(window).unwrap_or(max).min(max));
    }

    /// One transmit batch and its kick. Returns the frames sent and how long the kick took
    /// (the driver's flush: on veth it runs the peer's receive path on our core, so `--stats`
    /// keeps it apart from our own work).
    fn transmit_batch<D: Driver>(
        &mut self,
        driver: &mut D,
        now: Instant,
    ) -> Result<(usize, Duration), EngineError> {
        let mut failure = None;
        let Transfer {
            connection, frames, ..
        } = self;
        let sent = driver.transmit(TX_BATCH, |buffer| {
            let Some(segment) = connection.poll_transmit(now) else {
                return 0;
            };
            match frames.write(buffer, &segment) {
                Ok(len) => len,
                Err(e) => {
                    failure.get_or_insert(e);
                    0
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        let mut kick = Duration::ZERO;
        if sent > 0 {
            let kick_started = std::time::Instant::now();
            driver.flush()?;
            kick = kick_started.elapsed();
        }
        Ok((sent, kick))
    }

    /// The exchange is over when the body is complete (by length, or by the peer's FIN).
    fn finished(&mut self) -> Result<Option<TransferEnd>, EngineError> {
        let complete = self.exchange.is_complete() || self.completion.is_some();
        if !complete || self.plan.is_none() {
            return Ok(None);
        }
        let completion = match self.completion {
            Some(c) => c,
            None => Completion {
                body_len: self.exchange.body_received(),
                close_delimited: false,
            },
        };
        // We are done reading; say goodbye once (the FIN goes out with the next transmit,
        // and a late segment of the peer meets the nftables guard, not a kernel RST).
        self.connection.close();
        let (Some(sink), Some(plan), Some(head)) =
            (self.sink.take(), self.plan, self.exchange.head().cloned())
        else {
            return Ok(None);
        };
        Ok(Some(TransferEnd::Body {
            sink: Box::new(sink),
            plan,
            completion,
            head,
        }))
    }

    fn check_timeouts(&mut self, now: Instant) -> Result<(), EngineError> {
        let remote = self.endpoint.remote;
        if self.connection.state() == State::SynSent
            && now - self.started >= self.options.connect_timeout
        {
            return Err(EngineError::ConnectTimeout { remote });
        }
        if now - self.last_data >= self.options.read_timeout
            && self.connection.state() != State::SynSent
        {
            return Err(EngineError::ReadTimeout {
                remote,
                seconds: self.options.read_timeout.as_secs(),
            });
        }
        if let Some(limit) = self.options.min_speed
            && self.connection.state() != State::SynSent
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

    /// When the loop must look again even if nothing arrives.
    fn next_deadline(&self, now: Instant) -> Instant {
        let mut deadline = now + self.options.max_wait;
        if let Some(t) = self.connection.poll_timeout() {
            deadline = deadline.min(t);
        }
        if self.connection.state() == State::SynSent {
            deadline = deadline.min(self.started + self.options.connect_timeout);
        }
        deadline.min(self.last_data + self.options.read_timeout)
    }
}

/// Hands stream bytes at `offset` to the exchange, and the body bytes it lets out to the
/// sink, counting them in `delivered`. The first error is kept in `failure`.
fn to_exchange(
    exchange: &mut Exchange,
    sink: &mut Option<Sink>,
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
/// many they were. The first error is kept in `failure`.
fn place(
    sink: &mut Sink,
    plan: &BodyPlan,
    chunk: BodyChunk<'_>,
    failure: &mut Option<EngineError>,
) -> u64 {
    if let Err(e) = sink.write_at(plan.file_offset + chunk.offset, chunk.bytes) {
        failure.get_or_insert(e.into());
    }
    chunk.bytes.len() as u64
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
