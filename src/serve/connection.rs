//! A [`ServerSession`] as a [`Session`] of the engine's host: what ties the HTTP side of one
//! connection to its TCP [`Connection`], and the host's listener that makes them.
//!
//! Per poll: the connection's events (the peer's FIN, a reset), progress of the peer's
//! acknowledgements, the leases of the mapped files whose bytes the connection still refers
//! to (a lease being broken resets the connection: `serve/mapped.rs`), the session's
//! timeouts, then as many response bytes as the connection's send buffer takes: heads are
//! copied in, a mapped file body is *lent* (`Connection::lend`: the send buffer refers to
//! the mapping, and each segment's payload is copied from there into its frame, the only
//! copy), a file that could not be mapped is read with `pread` into a scratch buffer and
//! copied in. Then the receive window, the access-log lines, and the end of the connection
//! when the session decides it.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::log::AccessLogEntry;
use super::mapped::MappedFile;
use super::opener::{OpenJob, OpenSubmitter, OpenToken};
use super::paths::Root;
use super::respond::{Response, refusal};
use super::session::{Outgoing, ServerSession, SessionEnd, SessionLimits, wall_clock};
use crate::engine::host::{Host, Session, SessionStatus};
use crate::tcp::send_buffer::SharedBytes;
use crate::tcp::{self, Connection, Event, State};
use crate::time::Instant;

/// Where access-log lines go (stderr for the CLI, a vector in tests).
pub type LogSink = Arc<dyn Fn(&AccessLogEntry) + Send + Sync>;

/// Bytes read from a file per `pread` (the fallback for files that cannot be mapped).
const SCRATCH_LEN: usize = 64 * 1024;

/// The receive window a server connection starts with (before its session sets its own):
/// room for one request head.
pub const SERVER_RECEIVE_WINDOW: usize = 16 * 1024;

/// One server connection in the host.
pub struct ServeConnection {
    session: ServerSession,
    log: Option<LogSink>,
    /// `pread` bytes on their way to the send buffer; allocated on first use.
    scratch: Vec<u8>,
    /// Bytes handed to the connection so far (copied or lent): with its send queue's length,
    /// this tells how far the peer has acknowledged.
    queued_total: u64,
    /// The mapped files the connection may still read, with the stream offset where the
    /// last bytes lent from each end: their leases are checked at every poll.
    lent: VecDeque<(u64, Arc<MappedFile>)>,
    /// The send queue's length after the last poll: when it shrinks, the peer is reading.
    queued: usize,
    /// The session's clock starts at the first poll (the host makes sessions without a time).
    started: bool,
    close_queued: bool,
    /// Live connections of the listener, this one included.
    live: Arc<AtomicUsize>,
    /// Where requests go to be answered off the busy-poll thread (`None`: inline).
    opener: Option<OpenSubmitter>,
    root: Arc<Root>,
    /// The opener's answer, until the next poll hands it to the session.
    answer: Option<Response>,
    /// This connection's number among the listener's (in its opener jobs' tokens).
    serial: u64,
}

impl ServeConnection {
    fn new(
        mut session: ServerSession,
        log: Option<LogSink>,
        live: Arc<AtomicUsize>,
        opener: Option<OpenSubmitter>,
        root: Arc<Root>,
        serial: u64,
    ) -> Self {
        if opener.is_some() {
            session.defer_opens();
        }
        ServeConnection {
            opener,
            root,
            answer: None,
            serial,
            session,
            log,
            scratch: Vec::new(),
            queued_total: 0,
            lent: VecDeque::new(),
            queued: 0,
            started: false,
            close_queued: false,
            live,
        }
    }

    /// Requests answered on this connection.
    pub fn served(&self) -> u32 {
        self.session.served()
    }

    /// The opener's answer `token` names; taken if it is this connection's (the loop wakes
    /// it next), else dropped.
    pub fn deliver(&mut self, token: OpenToken, response: Response) {
        if token.serial == self.serial {
            self.answer = Some(response);
        }
    }

    /// Sends the session's next request to the opener thread.
    fn submit_job(&mut self, now: Instant, connection: &Connection) {
        let (Some(opener), Some(remote)) = (&self.opener, connection.remote()) else {
            return;
        };
        let Some(head) = self.session.take_open_job() else {
            return;
        };
        let job = OpenJob {
            token: OpenToken {
                local: connection.local(),
                remote,
                serial: self.serial,
            },
            root: Arc::clone(&self.root),
            head,
            wall: wall_clock(),
        };
        if opener.submit(job).is_err() {
            // The opener thread is gone (it panicked): answer, and close.
            self.session.on_response(now, refusal(500, wall_clock()));
        }
    }

    /// Hands response bytes to the connection while its send buffer has room: heads and
    /// pages are copied in, mapped bodies lent, other file bodies read with `pread`.
    fn pump(&mut self, now: Instant, connection: &mut Connection) {
        while self.session.has_output() {
            let room = connection.send_capacity();
            if room == 0 {
                return;
            }
            let taken = match self.session.peek() {
                None => return,
                Some(Outgoing::Bytes(bytes)) => connection.send(bytes),
                Some(Outgoing::Lent { file, offset, len }) => {
                    let start = offset as usize;
                    let end = start + usize::try_from(len).unwrap_or(usize::MAX).min(room);
                    let shared: Arc<dyn SharedBytes> = file.clone();
                    let taken = connection.lend(&shared, start..end);
                    let lent_end = self.queued_total + taken as u64;
                    match self.lent.back_mut() {
                        Some((last_end, last)) if Arc::ptr_eq(last, file) => *last_end = lent_end,
                        _ => self.lent.push_back((lent_end, Arc::clone(file))),
                    }
                    taken
                }
                Some(Outgoing::File { .. }) => {
                    let room = room.min(SCRATCH_LEN);
                    if self.scratch.len() < room {
                        self.scratch.resize(SCRATCH_LEN, 0);
                    }
                    let read = self.session.copy_next(now, &mut self.scratch[..room]);
                    let taken = connection.send(&self.scratch[..read]);
                    debug_assert_eq!(taken, read, "the send buffer had room for it");
                    self.queued_total += taken as u64;
                    if read == 0 {
                        return;
                    }
                    continue;
                }
            };
            if taken == 0 {
                return;
            }
            self.queued_total += taken as u64;
            self.session.advance(now, taken);
        }
    }

    /// Whether every mapped file the connection may still read is unchanged; forgets those
    /// whose bytes the peer has acknowledged.
    fn leases_hold(&mut self, connection: &Connection) -> bool {
        let acknowledged = self.queued_total - connection.send_queue_len() as u64;
        while self
            .lent
            .front()
            .is_some_and(|(end, _)| *end <= acknowledged)
        {
            self.lent.pop_front();
        }
        self.lent.iter().all(|(_, file)| file.intact())
    }
}

impl Drop for ServeConnection {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Session for ServeConnection {
    fn on_stream(&mut self, offset: u64, bytes: &[u8]) {
        self.session.on_stream(offset, bytes);
    }

    fn poll(&mut self, now: Instant, connection: &mut Connection) -> SessionStatus {
        if !std::mem::replace(&mut self.started, true) {
            self.session.start_clock(now);
        }
        let mut gone = false;
        while let Some(event) = connection.poll_event() {
            match event {
                Event::Connected => {}
                Event::PeerFin { .. } => self.session.on_peer_fin(now),
                Event::Reset | Event::TimedOut | Event::Closed => gone = true,
            }
        }
        if connection.send_queue_len() < self.queued {
            self.session.on_acked(now);
        }
        if !gone && !self.leases_hold(connection) {
            // Another process wants to change a file whose bytes may still be sent: reset
            // (dropping every reference to the mapping releases the lease, `serve/mapped.rs`).
            self.session.abort();
            self.lent.clear();
        }
        self.session.on_timeout(now);
        if let Some(response) = self.answer.take() {
            self.session.on_response(now, response);
        }
        self.session.poll(now);
        self.submit_job(now, connection);
        if !gone {
            self.pump(now, connection);
            // A pipelined request may have come up when an answer finished.
            self.submit_job(now, connection);
        }
        self.queued = connection.send_queue_len();
        connection.set_receive_window(self.session.receive_window(connection.received_in_order()));
        while let Some(entry) = self.session.poll_log() {
            if let Some(log) = &self.log {
                log(&entry);
            }
        }
        match self.session.poll_end() {
            Some(SessionEnd::Abort) => {
                connection.abort();
                return SessionStatus::Done;
            }
            Some(SessionEnd::Graceful) if !self.close_queued => {
                connection.close();
                self.close_queued = true;
            }
            _ => {}
        }
        // Done once everything we sent is acknowledged (FIN-WAIT-2, TIME-WAIT) or the
        // connection is gone; the host lets it finish closing.
        let settled = matches!(
            connection.state(),
            State::Closed | State::FinWait2 | State::TimeWait
        );
        if gone || settled {
            SessionStatus::Done
        } else {
            SessionStatus::Running
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_deadline()
    }
}

/// What a listener serves, and how.
#[derive(Clone)]
pub struct ServeConfig {
    pub root: Arc<Root>,
    pub limits: SessionLimits,
    /// Connections served at once; a SYN beyond this is dropped (the client retries it).
    pub max_connections: usize,
    pub log: Option<LogSink>,
}

/// The TCP configuration of server connections: `base` with a receive window sized for
/// request heads (a server receives little) and `send_buffer` bytes of send buffer, which
/// bounds what one connection holds and must cover the path's bandwidth-delay product.
pub fn server_tcp_config(base: tcp::Config, send_buffer: usize) -> tcp::Config {
    tcp::Config {
        initial_receive_window: SERVER_RECEIVE_WINDOW,
        max_receive_window: SERVER_RECEIVE_WINDOW,
        send_buffer_capacity: send_buffer,
        ..base
    }
}

/// Makes `host` serve `config` on `local` (passive open), each answer made inline (the
/// simulator's server; see [`listen_with_opener`]).
pub fn listen(
    host: &mut Host<ServeConnection>,
    local: SocketAddr,
    tcp: tcp::Config,
    mtu: usize,
    config: ServeConfig,
) {
    listen_with_opener(host, local, tcp, mtu, config, None);
}

/// Like [`listen`], with the answers made off the busy-poll thread by `opener`'s thread
/// (`serve/opener.rs`); the loop hands them back ([`super::run::serve`]).
pub fn listen_with_opener(
    host: &mut Host<ServeConnection>,
    local: SocketAddr,
    tcp: tcp::Config,
    mtu: usize,
    config: ServeConfig,
    opener: Option<OpenSubmitter>,
) {
    let live = Arc::new(AtomicUsize::new(0));
    let mut serial = 0u64;
    host.listen(
        local,
        tcp,
        mtu,
        Box::new(move |endpoint| {
            if live.fetch_add(1, Ordering::Relaxed) >= config.max_connections {
                live.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
            let client: IpAddr = endpoint.remote.ip();
            serial += 1;
            let session = ServerSession::new(
                Arc::clone(&config.root),
                config.limits,
                client,
                Instant::ZERO,
            );
            Some(ServeConnection::new(
                session,
                config.log.clone(),
                Arc::clone(&live),
                opener.clone(),
                Arc::clone(&config.root),
                serial,
            ))
        }),
    );
}
