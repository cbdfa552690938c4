//! One TCP connection as a sans-IO state machine.
//!
//! RFCs: 9293 (state machine, §3.10 event processing), 5961 (blind RST/SYN/ACK protections),
//! 6298 (retransmission timer), 5681 + 6582 (congestion control, ACK policy §4.2),
//! 7323 (window scaling, timestamps, PAWS), 6528 (ISN), 6691 (MSS).
//!
//! The work is split by direction: `input.rs` handles arriving segments (RFC 9293 §3.10.7),
//! `output.rs` decides the next segment to send, `timers.rs` runs the RTO, persist,
//! delayed-ACK and TIME-WAIT timers.

mod input;
mod output;
mod path_mtu;
mod timers;

use core::time::Duration;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use super::assembler::Assembler;
use super::cc::{AckContext, CongestionControl};
use super::config::Config;
use super::isn;
use super::rtt::RttEstimator;
use super::sack_report::SackReport;
use super::send_buffer::{SendBuffer, SharedBytes};
use super::stats::TcpStats;
use crate::time::Instant;
use crate::wire::{SackBlocks, SeqNumber};

/// RFC 9293 §3.3.2 connection states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    /// States in which both sequence spaces are synchronized (RFC 9293 §3.10.7.4 applies).
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::Closed | State::Listen | State::SynSent)
    }

    /// States in which we may send data: before our FIN and until it is acknowledged.
    fn sends_data(self) -> bool {
        matches!(
            self,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }

    /// States in which the peer's data is accepted (RFC 9293 §3.10.7.4 seventh).
    fn receives_data(self) -> bool {
        matches!(self, State::Established | State::FinWait1 | State::FinWait2)
    }
}

/// Things the application learns about, in order, from `poll_event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The three-way handshake completed (either end).
    Connected,
    /// The peer sent FIN: its stream is exactly `stream_len` bytes long and every byte of it
    /// has been delivered.
    PeerFin { stream_len: u64 },
    /// The peer reset the connection (an acceptable RST, RFC 9293 §3.10.7 and RFC 5961 §3).
    Reset,
    /// Retransmissions of the SYN, SYN-ACK or data ran out (`Config::*_retries`).
    TimedOut,
    /// The connection closed gracefully (after TIME-WAIT, or when our FIN was acknowledged in
    /// LAST-ACK).
    Closed,
}

/// What an arriving segment delivered to the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Delivered<'a> {
    /// Stream bytes `[offset, offset + bytes.len())` of the peer's stream (offset 0 is the
    /// first byte after its SYN), borrowed from the segment, already trimmed to our receive
    /// window and to what was not yet known to have arrived. They may lie beyond bytes still
    /// missing: write them at their offset. A byte may be delivered twice only if the peer
    /// retransmits it while it was held out of order; it is the same byte.
    pub data: Option<(u64, &'a [u8])>,
}

/// A cumulative ACK owed to the peer, with the ack number and SACK blocks it must carry.
/// Recording them when the ACK becomes due (rather than when it is sent, at the end of the
/// batch) keeps the ACKs of one batch distinct and increasing (RFC 5681 §4.2), and makes each
/// report what had arrived at its moment, as a receiver that sends at once would: an earlier
/// ACK of the batch never reports a range that arrived after it, which a Linux sender would
/// take for reordering, and for the loss of the ranges in between (RACK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AckPoint {
    ack: SeqNumber,
    /// An immediate duplicate ACK for an out-of-order or stale segment (RFC 5681 §4.2).
    duplicate: bool,
    /// The SACK blocks (empty without SACK): the block of the segment that made the ACK due
    /// first (RFC 2018 §4), after a D-SACK block if it reports a duplicate (RFC 2883).
    sack_blocks: SackBlocks,
}

/// A reset to send in reply to a segment (RFC 9293 §3.10.7.1, §3.10.7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PendingReset {
    seq: SeqNumber,
    /// `Some` when the reset must carry ACK (reply to a segment that had no ACK).
    ack: Option<SeqNumber>,
}

/// Initial room for owed ACKs; grows once if a receive batch owes more.
const ACK_POINTS_CAPACITY: usize = 64;

/// RFC 7323 §5.5: a TS.Recent older than 24 days is invalid.
const TS_RECENT_MAX_AGE: Duration = Duration::from_secs(24 * 24 * 3600);

/// RFC 9293 §3.7.1: the MSS to assume when the peer's SYN carries none.
const DEFAULT_PEER_MSS: u16 = 536;

/// Bytes of the timestamps option in every segment once negotiated (10, padded to 12).
const TIMESTAMPS_OPTION_LEN: usize = 12;

/// A TCP connection driven entirely by its caller.
///
/// Calling order, as in quinn's `Connection`:
/// 1. Create with [`Connection::connect`] (active open, SYN goes out on the first poll) or
///    [`Connection::listen`] (passive open, accepts one SYN).
/// 2. For every received segment of this four-tuple (checksum already verified by the caller:
///    the engine never sees bytes, only `TcpRepr`s) call [`Connection::on_segment`] and write
///    the delivered bytes at their stream offset.
/// 3. After each receive batch call [`Connection::poll_transmit`] until it returns `None`,
///    emitting every segment (to [`Connection::remote`]). That `None` marks the end of the
///    batch for the ACK policy, so call it even when nothing was received. A segment taken
///    but never emitted (transmit ring full) is simply lost: stop polling instead, the
///    engine recovers it like any loss.
/// 4. Drain [`Connection::poll_event`].
/// 5. Sleep until [`Connection::poll_timeout`] or the next packet; when the deadline passes
///    call [`Connection::on_timeout`] and go back to 3.
///
/// `send`, `close`, `abort` and `set_receive_window` may be called at any time; their effects
/// appear on the next `poll_transmit`.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    state: State,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    /// Opened with `listen` (a RST in SYN-RECEIVED returns to LISTEN, RFC 9293 §3.10.7.4).
    passive: bool,

    // Send sequence space (RFC 9293 §3.3.1), plus SND.MAX: the highest sequence sent + 1.
    iss: SeqNumber,
    snd_una: SeqNumber,
    snd_nxt: SeqNumber,
    snd_max: SeqNumber,
    /// The peer's window in bytes, already scaled.
    snd_wnd: usize,
    snd_wl1: SeqNumber,
    snd_wl2: SeqNumber,
    /// The largest window the peer has offered (RFC 5961 §5.2 MAX.SND.WND).
    max_snd_wnd: usize,
    /// Shift applied to the peer's window fields (its RFC 7323 Snd.Wind.Shift).
    snd_wscale: u8,
    /// Payload bytes per full segment we send (Eff.snd.MSS minus the options we always send).
    snd_mss: usize,
    send_buffer: SendBuffer,
    /// `close` was called: a FIN follows the buffered data.
    fin_queued: bool,
    /// The sequence number our FIN occupies, once it has been sent.
    fin_seq: Option<SeqNumber>,
    /// Retransmit the segment at SND.UNA on the next poll (fast retransmit, partial ACK).
    fast_retransmit_pending: bool,
    /// Duplicate ACKs in a row (RFC 5681 §2).
    dup_acks: u32,
    cc: Box<dyn CongestionControl>,

    // Receive sequence space.
    irs: SeqNumber,
    rcv_nxt: SeqNumber,
    /// Stream offset of RCV.NXT (0 = first byte after the peer's SYN), 64 bits wide.
    rcv_offset: u64,
    /// The receive window the caller can take beyond RCV.NXT, in bytes.
    rcv_wnd: usize,
    /// Shift applied to the windows we advertise (our RFC 7323 Rcv.Wind.Shift).
    rcv_wscale: u8,
    window_scaling: bool,
    /// Both sides offered SACK-permitted (RFC 2018 §2): our ACKs carry SACK blocks.
    sack: bool,
    assembler: Assembler,
    /// The recency order of the held ranges, for the order of SACK blocks.
    sack_report: SackReport,
    /// Immediate duplicate ACKs sent for the current RCV.NXT (batch policy: the first three
    /// go out at once, later ones may be compressed).
    dup_acks_out: u32,
    /// Out-of-order segments whose SACK-carrying ACK is being compressed.
    compressed_sacks: u32,
    /// When the compressed SACK ACK must go out at the latest.
    sack_compress_at: Option<Instant>,
    /// Stream offset at which the peer's FIN sits, once seen (possibly out of order).
    peer_fin_offset: Option<u64>,
    peer_fin_received: bool,
    /// Largest payload seen from the peer, our estimate of its full segment size.
    rcv_mss_estimate: usize,
    /// In-order bytes received since the last ACK point.
    unacked_bytes: usize,
    /// In-order data segments received since the last end of batch.
    batch_segments: u32,
    ack_points: VecDeque<AckPoint>,
    /// The highest ack number sent or queued.
    last_ack_queued: SeqNumber,
    /// An ACK for RCV.NXT must go out at the end of this batch (FIN, challenge, window update).
    ack_now: bool,
    /// The window (bytes) in the last segment we sent.
    last_window_advertised: usize,
    /// The right edge (ack + window) of the last window we advertised.
    rcv_adv_right: SeqNumber,

    // RFC 7323 timestamps.
    timestamps: bool,
    ts_offset: u32,
    ts_recent: u32,
    ts_recent_at: Instant,

    // Timers.
    rtt: RttEstimator,
    /// RTT measurement of one segment when timestamps are off: (end sequence, sent at).
    /// Cleared on any retransmission (Karn's algorithm).
    rtt_timing: Option<(SeqNumber, Instant)>,
    rto_at: Option<Instant>,
    consecutive_rtos: u32,
    syn_retransmitted: bool,
    persist_at: Option<Instant>,
    persist_backoff: u32,
    probe_pending: bool,
    delayed_ack_at: Option<Instant>,
    time_wait_at: Option<Instant>,
    challenge_window_start: Instant,
    challenge_acks_in_window: u32,

    pending_reset: Option<PendingReset>,
    events: VecDeque<Event>,
    stats: TcpStats,
}

impl Connection {
    /// An active open from `local` to `remote`; the SYN leaves on the first `poll_transmit`.
    pub fn connect(
        now: Instant,
        config: Config,
        local: impl Into<SocketAddr>,
        remote: impl Into<SocketAddr>,
    ) -> Connection {
        let mut connection = Connection::new(config, local.into(), State::SynSent);
        connection.choose_iss(now, remote.into());
        connection
    }

    /// A passive open on `local`: waits for one SYN. Other segments are ignored (the caller's
    /// demultiplexer may answer them with RST).
    pub fn listen(config: Config, local: impl Into<SocketAddr>) -> Connection {
        let mut connection = Connection::new(config, local.into(), State::Listen);
        connection.passive = true;
        connection
    }

    fn new(config: Config, local: SocketAddr, state: State) -> Connection {
        let mss = usize::from(config.advertised_mss());
        let rtt = RttEstimator::new(config.rto_initial, config.rto_min, config.rto_max);
        let send_buffer = SendBuffer::new(config.send_buffer_capacity);
        let rcv_wnd = config.initial_receive_window.min(config.max_receive_window);
        let cc = config.congestion_control.build(mss, mss, SeqNumber(0));
        Connection {
            state,
            local,
            remote: None,
            passive: false,
            iss: SeqNumber(0),
            snd_una: SeqNumber(0),
            snd_nxt: SeqNumber(0),
            snd_max: SeqNumber(0),
            snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: SeqNumber(0),
            max_snd_wnd: 0,
            snd_wscale: 0,
            snd_mss: usize::from(DEFAULT_PEER_MSS),
            send_buffer,
            fin_queued: false,
            fin_seq: None,
            fast_retransmit_pending: false,
            dup_acks: 0,
            cc,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rcv_offset: 0,
            rcv_wnd,
            rcv_wscale: config.window_scale_shift(),
            window_scaling: config.window_scaling,
            sack: false,
            assembler: Assembler::new(),
            sack_report: SackReport::new(),
            dup_acks_out: 0,
            compressed_sacks: 0,
            sack_compress_at: None,
            peer_fin_offset: None,
            peer_fin_received: false,
            rcv_mss_estimate: 0,
            unacked_bytes: 0,
            batch_segments: 0,
            ack_points: VecDeque::with_capacity(ACK_POINTS_CAPACITY),
            last_ack_queued: SeqNumber(0),
            ack_now: false,
            last_window_advertised: 0,
            rcv_adv_right: SeqNumber(0),
            timestamps: config.timestamps,
            ts_offset: 0,
            ts_recent: 0,
            ts_recent_at: Instant::ZERO,
            rtt,
            rtt_timing: None,
            rto_at: None,
            consecutive_rtos: 0,
            syn_retransmitted: false,
            persist_at: None,
            persist_backoff: 0,
            probe_pending: false,
            delayed_ack_at: None,
            time_wait_at: None,
            challenge_window_start: Instant::ZERO,
            challenge_acks_in_window: 0,
            pending_reset: None,
            events: VecDeque::with_capacity(4),
            stats: TcpStats::default(),
            config,
        }
    }

    /// Fixes the remote end and the RFC 6528 ISN; the SYN (or SYN-ACK) is then due.
    fn choose_iss(&mut self, now: Instant, remote: SocketAddr) {
        self.remote = Some(remote);
        self.iss = isn::initial_sequence_number(now, &self.config.isn_secret, self.local, remote);
        self.ts_offset = isn::timestamp_offset(&self.config.isn_secret, self.local, remote);
        self.snd_una = self.iss;
        self.snd_nxt = self.iss;
        self.snd_max = self.iss;
    }

    /// The current RFC 9293 state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Our address and port.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The peer's address and port (`None` while listening).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Counters and gauges.
    pub fn stats(&self) -> &TcpStats {
        &self.stats
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Queues as much of `data` as the send buffer takes; returns how many bytes it took.
    /// Takes nothing once `close` or `abort` was called or the connection is gone.
    pub fn send(&mut self, data: &[u8]) -> usize {
        let open = matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        );
        if !open || self.fin_queued {
            return 0;
        }
        self.send_buffer.push(data)
    }

    /// Queues as much of `lent.bytes()[range]` as the send buffer takes, by reference (no
    /// copy): segments read their payload from `lent` when they are built, retransmissions
    /// again from the same offsets, until the peer acknowledges them. Returns how many bytes
    /// it took; like `send`, nothing once `close` or `abort` was called. `lent` must keep
    /// its bytes unchanged while referenced ([`SharedBytes`]); the reference is dropped
    /// when they are acknowledged or the connection closes.
    pub fn lend(&mut self, lent: &Arc<dyn SharedBytes>, range: core::ops::Range<usize>) -> usize {
        let open = matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        );
        if !open || self.fin_queued {
            return 0;
        }
        self.send_buffer.lend(lent, range)
    }

    /// How many bytes `send` would take now.
    pub fn send_capacity(&self) -> usize {
        if self.fin_queued {
            0
        } else {
            self.send_buffer.free()
        }
    }

    /// Bytes given to `send` that the peer has not acknowledged yet.
    pub fn send_queue_len(&self) -> usize {
        self.send_buffer.len()
    }

    /// Sends FIN after the data already queued (RFC 9293 §3.10.4 CLOSE).
    pub fn close(&mut self) {
        match self.state {
            State::Listen | State::SynSent => self.state = State::Closed,
            // RFC 9293 §3.10.4: the FIN waits until the handshake completes.
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Resets the connection: one RST goes out on the next poll (RFC 9293 §3.10.5 ABORT).
    pub fn abort(&mut self) {
        if self.state.is_synchronized() && self.state != State::TimeWait {
            self.pending_reset = Some(PendingReset {
                seq: self.snd_nxt,
                ack: None,
            });
        }
        self.enter_closed();
    }

    /// Sets how many bytes beyond what has arrived in order the caller can accept. It is
    /// clamped to `Config::max_receive_window` and to what the window field can express.
    pub fn set_receive_window(&mut self, bytes: usize) {
        self.rcv_wnd = bytes.min(self.config.max_receive_window);
        if !self.state.receives_data() || !self.ack_points.is_empty() {
            // Closed, no more data to come, or ACKs already owed will carry the new window.
            return;
        }
        // RFC 9293 §3.8.6.2.2 receiver SWS avoidance: announce the window when it has opened by
        // at least a full segment from (nearly) closed, or when its right edge has moved by two
        // full segments: a sender stuck on a small window resumes without waiting for a
        // delayed ACK. (Received data alone moves the edge by less: it is ACKed every second
        // segment.)
        let mss = self.receive_mss();
        let window = self.advertised_window_bytes(self.rcv_nxt);
        let reopened = self.last_window_advertised < mss && window >= mss;
        let grown = if self.config.strict_acks() {
            let right_edge = self.rcv_nxt + window.min(1 << 30);
            right_edge
                .distance_since(self.rcv_adv_right)
                .is_some_and(|growth| growth as usize >= 2 * mss)
        } else {
            // The batch policy ACKs data rarely, so received data alone moves the edge far:
            // only a window that at least doubled is worth an update of its own (as Linux's
            // __tcp_ack_snd_check: "rcv window grew enough").
            window >= 2 * self.last_window_advertised.max(mss)
        };
        if reopened || grown {
            self.ack_now = true;
        }
    }

    /// Stream bytes received in order so far (the stream offset of RCV.NXT).
    pub fn received_in_order(&self) -> u64 {
        self.rcv_offset
    }

    /// The largest payload we put in one segment (known after the handshake).
    pub fn send_mss(&self) -> usize {
        self.snd_mss
    }

    /// Payload bytes per full segment the peer may send us.
    fn receive_mss(&self) -> usize {
        let mss = usize::from(self.config.advertised_mss());
        if self.timestamps {
            mss - TIMESTAMPS_OPTION_LEN
        } else {
            mss
        }
    }

    /// Our receive window in bytes as the window field can express it.
    fn receive_window(&self) -> usize {
        self.rcv_wnd.min(0xffff << self.rcv_wscale)
    }

    /// The window in bytes to advertise in a segment acknowledging `ack` (<= RCV.NXT): the
    /// right edge RCV.NXT + window stays where it is.
    ///
    /// The edge never moves left while holes are open (RFC 9293 §3.8.6.2.2 "SHOULD NOT
    /// shrink"): every ACK of a batch, whatever its ack number, announces the same edge, and
    /// RCV.NXT only grows, so with the caller's window constant during a body (the file and
    /// null sinks take the maximum, the stream sink its fixed reorder limit) the edge only
    /// moves right; only the rounding of the window scale (RFC 7323 §2.3) can take back
    /// less than one unit of it when the ack number moves.
    fn advertised_window_bytes(&self, ack: SeqNumber) -> usize {
        let behind = self.rcv_nxt.distance_since(ack).unwrap_or(0) as usize;
        let bytes = self.receive_window() + behind;
        ((bytes >> self.rcv_wscale).min(0xffff)) << self.rcv_wscale
    }

    /// Bytes sent and not yet acknowledged (RFC 5681 FlightSize).
    fn flight_size(&self) -> usize {
        self.snd_max.distance_since(self.snd_una).unwrap_or(0) as usize
    }

    /// What the congestion controller is told about an ACK (or a timeout, with nothing
    /// acknowledged).
    fn ack_context(&self, now: Instant, bytes_acked: usize, flight_size: usize) -> AckContext {
        AckContext {
            now,
            srtt: self.rtt.srtt(),
            snd_una: self.snd_una,
            snd_max: self.snd_max,
            bytes_acked,
            flight_size,
            mss: self.snd_mss,
        }
    }

    /// Our timestamp clock: milliseconds plus the per-connection offset (RFC 7323 §5.4).
    fn ts_now(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// The first sequence number of the send buffer (the SYN occupies ISS).
    fn send_buffer_seq(&self) -> SeqNumber {
        if self.snd_una == self.iss {
            self.iss + 1u32
        } else {
            self.snd_una
        }
    }

    /// Whether the peer has acknowledged our FIN.
    fn our_fin_acked(&self) -> bool {
        self.fin_seq.is_some_and(|fin| self.snd_una > fin)
    }

    fn push_event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// The handshake finished (RFC 9293 §3.10.7.3 / §3.10.7.4 SYN-RECEIVED).
    fn enter_established(&mut self) {
        self.state = State::Established;
        let initial_segments = if self.syn_retransmitted {
            // RFC 6928 §2 / RFC 5681 §3.1: IW is one segment when the SYN or SYN-ACK was lost.
            1
        } else {
            self.config.initial_window_segments.max(1)
        };
        self.cc = self.config.congestion_control.build(
            self.snd_mss,
            initial_segments * self.snd_mss,
            self.iss,
        );
        if self.syn_retransmitted {
            self.rtt.after_syn_retransmission();
        }
        self.consecutive_rtos = 0;
        if self.snd_una == self.snd_max {
            self.rto_at = None;
        }
        self.push_event(Event::Connected);
        if self.fin_queued {
            // `close` was called in SYN-RECEIVED.
            self.state = State::FinWait1;
        }
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.time_wait_at = Some(now + self.config.msl * 2);
        self.rto_at = None;
        self.persist_at = None;
        self.fast_retransmit_pending = false;
    }

    /// CLOSED: no timers, nothing more to send but a pending reset.
    fn enter_closed(&mut self) {
        self.state = State::Closed;
        self.rto_at = None;
        self.persist_at = None;
        self.delayed_ack_at = None;
        self.sack_compress_at = None;
        self.time_wait_at = None;
        self.ack_points.clear();
        self.ack_now = false;
        self.probe_pending = false;
        self.fast_retransmit_pending = false;
        // Nothing will be sent again: lent bytes go back to their owner now.
        self.send_buffer.clear();
    }

    /// Back to LISTEN after a reset in SYN-RECEIVED of a passive open (RFC 9293 §3.10.7.4).
    fn return_to_listen(&mut self) {
        let mut fresh = Connection::listen(self.config.clone(), self.local);
        fresh.stats = self.stats;
        fresh.events = core::mem::take(&mut self.events);
        *self = fresh;
    }

    /// Refreshes the gauges of `stats`.
    fn refresh_gauges(&mut self) {
        let stats = &mut self.stats;
        stats.cwnd = self.cc.window() as u64;
        stats.ssthresh = u64::try_from(self.cc.ssthresh()).unwrap_or(u64::MAX);
        stats.rwnd = self.snd_wnd as u64;
        stats.bytes_in_flight = u64::from(self.snd_nxt.distance_since(self.snd_una).unwrap_or(0));
        stats.srtt_micros = self.rtt.srtt().map_or(0, |d| d.as_micros() as u64);
        stats.rto_micros = self.rtt.rto().as_micros() as u64;
        stats.snd_mss = self.snd_mss as u64;
        stats.lent_bytes_sent = self.send_buffer.lent_bytes_sent();
    }
}
