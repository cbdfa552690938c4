//! The host: many TCP connections over one driver (issue 10).
//!
//! What smoltcp splits into `Interface` + `SocketSet` and quinn calls an `Endpoint`: a slab
//! of connections addressed by [`Handle`] (index + generation), a [four-tuple
//! index](index::FourTupleIndex) into it, listeners for passive open, a [deadline
//! queue](deadlines::DeadlineQueue) over every connection's and session's timers, and fair
//! transmit. Each connection carries a [`Session`], its application (an HTTP client
//! exchange, a server's answer), which never sees the driver.
//!
//! The host is sans-IO like the layers under it: it never reads a clock and does not own a
//! driver. One step over a driver is [`Host::poll`]; the simulator's far end drives the same
//! host frame by frame through [`Host::on_frame`], [`Host::dispatch`] and
//! [`Host::next_frame`] (see `engine::sim_server`).
//!
//! One step, in order (DESIGN.md "Data path"):
//!
//! ```text
//! rx batch:  parse + verify → four-tuple index (last hit cached) → Connection::on_segment
//!            → (stream offset, bytes borrowed from the frame) → Session::on_stream;
//!            the connection is marked ready. Frames for no connection are counted, dropped;
//!            a SYN to a listener opens a connection with the listener's new session.
//! dispatch:  due deadlines: Connection::on_timeout, mark ready;
//!            every ready connection: Session::poll (events, what to send, receive window,
//!            done?), then it joins the transmit ring.
//! tx batch:  round-robin over the ring, one segment per connection per turn, resuming where
//!            the last batch stopped; a connection leaves the ring when it has nothing more
//!            (its next deadline is queued then); one kick.
//! ```
//!
//! A session that says it is done is handed back through [`Host::take_finished`]; its
//! connection stays (without a session) to finish closing — our FIN, the peer's FIN,
//! TIME-WAIT — for at most [`LINGER`], then goes. A closed connection leaves the slab at
//! once; its counters stay in [`Host::history`] for `--stats`.

pub mod deadlines;
pub mod index;

use core::time::Duration;
use std::collections::VecDeque;
use std::net::SocketAddr;

use deadlines::DeadlineQueue;
use index::{FourTuple, FourTupleIndex};

use super::endpoint::{Endpoint, FrameWriter};
use super::error::EngineError;
use crate::driver::{Driver, DriverError};
use crate::tcp::{self, Connection, State, TcpStats};
use crate::time::Instant;
use crate::wire::{
    EthernetAddress, SeqNumber, TcpFlags, TcpOptions, TcpRepr, WireError, parse_tcp_frame,
};

/// Frames taken from the driver per receive batch, and offered per transmit batch.
pub const RX_BATCH: usize = 64;
pub const TX_BATCH: usize = 64;

/// How long a connection whose session is done may take to finish closing.
pub const LINGER: Duration = Duration::from_secs(2);

/// The application of one connection, called by the host. Never touches the driver.
///
/// Calling order: [`Session::on_stream`] for the stream bytes of each received segment (in
/// any order, each at its offset; a byte may come twice, the same byte), then once per step
/// in which the connection received, was due or was woken, [`Session::poll`]. The host asks
/// [`Session::poll_timeout`] after each poll.
pub trait Session {
    /// Peer stream bytes `[offset, offset + bytes.len())`, borrowed from the received frame
    /// (the zero-copy path: write them where they belong, now).
    fn on_stream(&mut self, offset: u64, bytes: &[u8]);

    /// Handles the connection's events (`Connection::poll_event`), queues what to send
    /// (`Connection::send`, `close`, `abort`) and sets the receive window. Returns whether
    /// the session is over; the host then hands it back and closes the connection itself.
    fn poll(&mut self, now: Instant, connection: &mut Connection) -> SessionStatus;

    /// When the session needs a poll even if nothing arrives (its own timeouts).
    fn poll_timeout(&self) -> Option<Instant>;
}

/// What [`Session::poll`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    Running,
    Done,
}

/// A connection of the host: a slab index and the generation of that slot, so a handle of a
/// connection that has gone never names its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle {
    index: u32,
    generation: u32,
}

/// A connection that left the host, for `--stats`.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionRecord {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub stats: TcpStats,
}

/// Frames the host could not use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostCounters {
    /// Not a valid TCP frame (bad checksum, fragment, another protocol).
    pub invalid: u64,
    /// A valid segment for no connection and no listener.
    pub unmatched: u64,
    /// Connections opened by a listener.
    pub accepted: u64,
}

/// What one [`Host::poll`] did, for the loop's idling and `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Step {
    pub received: usize,
    pub sent: usize,
    /// From the start of the step to the start of the transmit batch.
    pub before_transmit: Duration,
    /// The part of `before_transmit` spent in the receive batch: the driver's rings, parsing
    /// and checking the frames, TCP, and the stream bytes handed to the sessions (for a
    /// download, the copy into the sink). The rest is the dispatch of the sessions.
    pub receive: Duration,
    /// The transmit batch without the kick.
    pub transmit: Duration,
    /// The driver's flush.
    pub kick: Duration,
}

/// Makes a session for a connection a listener accepted (`None` refuses it: the SYN is
/// dropped).
pub type Accept<S> = Box<dyn FnMut(&Endpoint) -> Option<S>>;

struct Listener<S> {
    local: SocketAddr,
    config: tcp::Config,
    mtu: usize,
    accept: Accept<S>,
}

struct Live<S> {
    connection: Connection,
    frames: FrameWriter,
    key: FourTuple,
    /// `None` once the session is done: the connection lingers to close.
    session: Option<S>,
    /// The instant this connection has in the deadline queue.
    queued: Option<Instant>,
    /// In `ready` (to poll this step).
    ready: bool,
    /// In the transmit ring.
    sending: bool,
    /// Set when the session is done: the connection goes by then at the latest.
    linger_until: Option<Instant>,
}

struct Slot<S> {
    generation: u32,
    live: Option<Live<S>>,
}

/// Many connections, their sessions, timers and fair transmit. See the module docs.
pub struct Host<S> {
    slots: Vec<Slot<S>>,
    free: Vec<u32>,
    index: FourTupleIndex<Handle>,
    listeners: Vec<Listener<S>>,
    deadlines: DeadlineQueue<Handle>,
    ready: Vec<Handle>,
    /// The transmit ring: slot indexes, served front to back, re-queued at the back.
    ring: VecDeque<u32>,
    finished: Vec<(Handle, S)>,
    history: Vec<ConnectionRecord>,
    counters: HostCounters,
    /// Our MAC, for connections a listener accepts.
    mac: EthernetAddress,
    /// A segment that did not fit its frame (an internal error), reported by the step.
    frame_error: Option<WireError>,
    /// Resets owed to segments that reached a listener's address for no connection.
    strays: VecDeque<(Endpoint, TcpRepr<'static>)>,
}

/// The most stray resets queued at once (more strays are dropped unanswered: a flood of
/// strays must not become a flood of resets).
const STRAY_RESETS: usize = 64;

impl<S: Session> Host<S> {
    /// An empty host whose passive connections send from `mac`.
    pub fn new(mac: EthernetAddress) -> Host<S> {
        Host {
            slots: Vec::new(),
            free: Vec::new(),
            index: FourTupleIndex::default(),
            listeners: Vec::new(),
            deadlines: DeadlineQueue::default(),
            ready: Vec::with_capacity(16),
            ring: VecDeque::with_capacity(16),
            finished: Vec::new(),
            history: Vec::new(),
            counters: HostCounters::default(),
            mac,
            frame_error: None,
            strays: VecDeque::new(),
        }
    }

    /// Opens a connection (active open: the SYN goes out with the next transmit batch) run
    /// by `session`. `config`'s MTU and IP header length are taken from `endpoint`.
    pub fn connect(
        &mut self,
        now: Instant,
        endpoint: &Endpoint,
        config: tcp::Config,
        session: S,
    ) -> Handle {
        let config = tcp::Config {
            mtu: endpoint.mtu,
            ip_header_len: endpoint.ip_header_len(),
            ..config
        };
        let connection = Connection::connect(now, config, endpoint.local, endpoint.remote);
        self.insert(endpoint, connection, session)
    }

    /// Accepts connections to `local` (passive open): each SYN to it that matches no
    /// connection makes one, with the session `accept` returns.
    pub fn listen(
        &mut self,
        local: SocketAddr,
        config: tcp::Config,
        mtu: usize,
        accept: Accept<S>,
    ) {
        self.listeners.push(Listener {
            local,
            config,
            mtu,
            accept,
        });
    }

    fn insert(&mut self, endpoint: &Endpoint, connection: Connection, session: S) -> Handle {
        let key = FourTuple {
            local: endpoint.local,
            remote: endpoint.remote,
        };
        let live = Live {
            connection,
            frames: FrameWriter::new(endpoint),
            key,
            session: Some(session),
            queued: None,
            ready: true,
            sending: false,
            linger_until: None,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    live: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.live = Some(live);
        let handle = Handle {
            index,
            generation: slot.generation,
        };
        self.index.insert(key, handle);
        self.ready.push(handle);
        handle
    }

    fn live(&self, handle: Handle) -> Option<&Live<S>> {
        self.slots
            .get(handle.index as usize)
            .filter(|slot| slot.generation == handle.generation)
            .and_then(|slot| slot.live.as_ref())
    }

    fn live_mut(&mut self, handle: Handle) -> Option<&mut Live<S>> {
        self.slots
            .get_mut(handle.index as usize)
            .filter(|slot| slot.generation == handle.generation)
            .and_then(|slot| slot.live.as_mut())
    }

    /// The connection of `handle`, while it is in the host.
    pub fn connection(&self, handle: Handle) -> Option<&Connection> {
        self.live(handle).map(|live| &live.connection)
    }

    /// The session of `handle`, while it runs.
    pub fn session(&self, handle: Handle) -> Option<&S> {
        self.live(handle).and_then(|live| live.session.as_ref())
    }

    /// The session of `handle`, mutably (wake it afterwards if it has new work).
    pub fn session_mut(&mut self, handle: Handle) -> Option<&mut S> {
        self.live_mut(handle).and_then(|live| live.session.as_mut())
    }

    /// The connection from `local` to `remote`, if the host has it.
    pub fn find(&mut self, local: SocketAddr, remote: SocketAddr) -> Option<Handle> {
        let handle = self.index.get(&FourTuple { local, remote })?;
        self.contains(handle).then_some(handle)
    }

    /// Whether `handle` still names a connection of the host.
    pub fn contains(&self, handle: Handle) -> bool {
        self.live(handle).is_some()
    }

    /// Every connection in the host, with its handle.
    pub fn connections(&self) -> impl Iterator<Item = (Handle, &Connection)> {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let live = slot.live.as_ref()?;
            let handle = Handle {
                index: index as u32,
                generation: slot.generation,
            };
            Some((handle, &live.connection))
        })
    }

    /// Connections that have left the host, oldest first.
    pub fn history(&self) -> &[ConnectionRecord] {
        &self.history
    }

    pub fn counters(&self) -> HostCounters {
        self.counters
    }

    /// Asks for a poll of `handle`'s session in the next dispatch (something outside the
    /// connection changed for it).
    pub fn wake(&mut self, handle: Handle) {
        if let Some(live) = self.live_mut(handle)
            && !live.ready
        {
            live.ready = true;
            self.ready.push(handle);
        }
    }

    /// A session that said it was done, with its handle.
    pub fn take_finished(&mut self) -> Option<(Handle, S)> {
        self.finished.pop()
    }

    /// The session of `handle` if it is done.
    pub fn take_finished_of(&mut self, handle: Handle) -> Option<S> {
        let at = self.finished.iter().position(|(h, _)| *h == handle)?;
        Some(self.finished.swap_remove(at).1)
    }

    /// Whether `handle`'s session is done and waits in [`Host::take_finished_of`].
    pub fn has_finished(&self, handle: Handle) -> bool {
        self.finished.iter().any(|(h, _)| *h == handle)
    }

    /// Hands `session` back as finished (after [`Host::abort`], for whoever waits on it).
    pub fn put_finished(&mut self, handle: Handle, session: S) {
        self.finished.push((handle, session));
    }

    /// Resets `handle`'s connection (one RST goes out with the next transmit batch) and
    /// gives its session back.
    pub fn abort(&mut self, handle: Handle) -> Option<S> {
        if let Some(session) = self.take_finished_of(handle) {
            return Some(session);
        }
        let live = self.live_mut(handle)?;
        live.connection.abort();
        let session = live.session.take();
        let sending = core::mem::replace(&mut live.sending, true);
        if !sending {
            self.ring.push_back(handle.index);
        }
        session
    }

    /// Resets every connection (on a stop signal); their sessions are dropped.
    pub fn abort_all(&mut self) {
        let handles: Vec<Handle> = self.connections().map(|(h, _)| h).collect();
        for handle in handles {
            drop(self.abort(handle));
        }
        self.finished.clear();
    }

    /// When the host next needs a dispatch even if no frame arrives. May be early (a
    /// deadline that moved later since it was queued); never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek()
    }

    /// One step over `driver` at `now`: a receive batch, the dispatch, a transmit batch and
    /// its kick.
    pub fn poll<D: Driver>(&mut self, driver: &mut D, now: Instant) -> Result<Step, EngineError> {
        let started = std::time::Instant::now();
        let received = driver.receive(RX_BATCH, |frame| self.on_frame(now, frame))?;
        let receive = started.elapsed();
        self.dispatch(now);
        let transmit_started = std::time::Instant::now();
        let sent = driver.transmit(TX_BATCH, |buffer| self.next_frame(now, buffer).unwrap_or(0))?;
        if let Some(e) = self.frame_error.take() {
            return Err(e.into());
        }
        let mut kick = Duration::ZERO;
        let kick_started = std::time::Instant::now();
        if sent > 0 {
            driver.flush()?;
            kick = kick_started.elapsed();
        }
        Ok(Step {
            received,
            sent,
            before_transmit: transmit_started - started,
            receive,
            transmit: kick_started - transmit_started,
            kick,
        })
    }

    /// Sends what is queued (a RST after [`Host::abort`]) without receiving.
    pub fn flush<D: Driver>(&mut self, driver: &mut D, now: Instant) -> Result<(), DriverError> {
        let sent = driver.transmit(TX_BATCH, |buffer| self.next_frame(now, buffer).unwrap_or(0))?;
        if sent > 0 {
            driver.flush()?;
        }
        Ok(())
    }

    /// One received frame: to its connection (or a listener), its stream bytes to the
    /// connection's session.
    pub fn on_frame(&mut self, now: Instant, frame: &[u8]) {
        // Bad checksums, fragments and other protocols are dropped before TCP: RFC 9293
        // §3.10.7.1 asks for silent discard of segments that fail the checksum.
        let Ok((eth, ip, segment)) = parse_tcp_frame(frame, true) else {
            self.counters.invalid += 1;
            return;
        };
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let key = FourTuple {
            local: SocketAddr::new(dst, segment.dst_port),
            remote: SocketAddr::new(src, segment.src_port),
        };
        let handle = match self.index.get(&key) {
            Some(handle) => handle,
            None if segment.flags.syn() && !segment.flags.ack() => {
                match self.accept(&key, eth.src_addr) {
                    Some(handle) => handle,
                    None => {
                        self.counters.unmatched += 1;
                        return;
                    }
                }
            }
            None => {
                self.counters.unmatched += 1;
                self.reset_stray(&key, eth.src_addr, &segment);
                return;
            }
        };
        let Some(live) = self.live_mut(handle) else {
            return;
        };
        let delivered = live.connection.on_segment(now, src, dst, &segment);
        if let (Some((offset, bytes)), Some(session)) = (delivered.data, live.session.as_mut()) {
            session.on_stream(offset, bytes);
        }
        if !live.ready {
            live.ready = true;
            self.ready.push(handle);
        }
    }

    /// A segment to a listener's address that belongs to no connection (one we reset or
    /// that closed): answered with a reset as a CLOSED connection would (RFC 9293 §3.10.7.1),
    /// so that a peer that sent a challenge ACK for our reset (RFC 5961 §3.2: our reset's
    /// sequence number was not exactly its RCV.NXT, data being in flight) learns the
    /// connection is gone instead of waiting forever. Only on listeners' addresses: a
    /// client host leaves strays to its ports alone, as before.
    fn reset_stray(&mut self, key: &FourTuple, peer_mac: EthernetAddress, segment: &TcpRepr<'_>) {
        if segment.flags.rst() || self.strays.len() >= STRAY_RESETS {
            return;
        }
        let Some(listener) = self.listeners.iter().find(|l| l.local == key.local) else {
            return;
        };
        let mut reset = TcpRepr {
            src_port: key.local.port(),
            dst_port: key.remote.port(),
            seq_number: SeqNumber(0),
            ack_number: SeqNumber(0),
            flags: TcpFlags::RST,
            window_len: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        if segment.flags.ack() {
            reset.seq_number = segment.ack_number;
        } else {
            reset.flags |= TcpFlags::ACK;
            reset.ack_number = segment.seq_number + segment.segment_len();
        }
        let endpoint = Endpoint {
            local_mac: self.mac,
            next_hop_mac: peer_mac,
            local: key.local,
            remote: key.remote,
            mtu: listener.mtu,
        };
        self.strays.push_back((endpoint, reset));
    }

    /// A SYN for no connection: a connection from the listener on its address, if any.
    fn accept(&mut self, key: &FourTuple, peer_mac: EthernetAddress) -> Option<Handle> {
        let mac = self.mac;
        let listener = self.listeners.iter_mut().find(|l| l.local == key.local)?;
        let endpoint = Endpoint {
            local_mac: mac,
            next_hop_mac: peer_mac,
            local: key.local,
            remote: key.remote,
            mtu: listener.mtu,
        };
        let session = (listener.accept)(&endpoint)?;
        let config = tcp::Config {
            mtu: endpoint.mtu,
            ip_header_len: endpoint.ip_header_len(),
            ..listener.config.clone()
        };
        let connection = Connection::listen(config, key.local);
        self.counters.accepted += 1;
        Some(self.insert(&endpoint, connection, session))
    }

    /// Fires due deadlines and polls every ready session; they all join the transmit ring.
    pub fn dispatch(&mut self, now: Instant) {
        loop {
            let slots = &self.slots;
            let Some(handle) = self
                .deadlines
                .pop_due(now, |h, at| queued_at(slots, h) == Some(at))
            else {
                break;
            };
            let Some(live) = self.live_mut(handle) else {
                continue;
            };
            live.queued = None;
            if live.connection.poll_timeout().is_some_and(|t| t <= now) {
                live.connection.on_timeout(now);
            }
            if !live.ready {
                live.ready = true;
                self.ready.push(handle);
            }
        }
        // Sessions may not add to `ready` while it is drained: they only see their connection.
        let mut ready = core::mem::take(&mut self.ready);
        for handle in ready.drain(..) {
            let Some(live) = self.live_mut(handle) else {
                continue;
            };
            live.ready = false;
            if let Some(session) = live.session.as_mut()
                && session.poll(now, &mut live.connection) == SessionStatus::Done
            {
                let session = live.session.take();
                live.linger_until = Some(now + LINGER);
                self.finished.extend(session.map(|s| (handle, s)));
            }
            let live = self.live_mut(handle).expect("checked above");
            if !live.sending {
                live.sending = true;
                self.ring.push_back(handle.index);
            }
        }
        self.ready = ready;
    }

    /// The next frame of the transmit ring into `buffer`: its length, or `None` when no
    /// connection has anything to send. One segment per connection per turn.
    pub fn next_frame(&mut self, now: Instant, buffer: &mut [u8]) -> Option<usize> {
        if let Some((endpoint, reset)) = self.strays.pop_front() {
            match FrameWriter::new(&endpoint).write(buffer, &reset) {
                Ok(len) => return Some(len),
                Err(e) => {
                    self.frame_error.get_or_insert(e);
                }
            }
        }
        while let Some(index) = self.ring.pop_front() {
            let slot = &mut self.slots[index as usize];
            let generation = slot.generation;
            let Some(live) = slot.live.as_mut() else {
                continue;
            };
            if let Some(segment) = live.connection.poll_transmit(now) {
                match live.frames.write(buffer, &segment) {
                    Ok(len) => {
                        self.ring.push_back(index);
                        return Some(len);
                    }
                    Err(e) => {
                        self.frame_error.get_or_insert(e);
                        live.connection.abort();
                    }
                }
            }
            live.sending = false;
            self.settle(Handle { index, generation }, now);
        }
        None
    }

    /// A connection is through with this step: it goes if it is closed (or lingered long
    /// enough), else its next deadline is queued.
    fn settle(&mut self, handle: Handle, now: Instant) {
        let Some(live) = self.live_mut(handle) else {
            return;
        };
        let closed = live.connection.state() == State::Closed;
        let lingered = live.linger_until.is_some_and(|t| t <= now);
        if closed || lingered {
            self.remove(handle);
            return;
        }
        let deadline = [
            live.connection.poll_timeout(),
            live.session.as_ref().and_then(Session::poll_timeout),
            live.linger_until,
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = deadline
            && live.queued.is_none_or(|queued| at < queued)
        {
            live.queued = Some(at);
            self.deadlines.push(at, handle);
        }
    }

    fn remove(&mut self, handle: Handle) {
        let slot = &mut self.slots[handle.index as usize];
        let Some(live) = slot.live.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(handle.index);
        self.index.remove(&live.key);
        if let Some(session) = live.session {
            // Closed under a running session (it saw the event in its last poll).
            self.finished.push((handle, session));
        }
        self.history.push(ConnectionRecord {
            local: live.key.local,
            remote: live.key.remote,
            stats: *live.connection.stats(),
        });
    }
}

/// The instant `handle` has in the deadline queue (for the queue's staleness check).
fn queued_at<S>(slots: &[Slot<S>], handle: Handle) -> Option<Instant> {
    let slot = slots.get(handle.index as usize)?;
    if slot.generation != handle.generation {
        return None;
    }
    slot.live.as_ref()?.queued
}

#[cfg(test)]
mod tests;
