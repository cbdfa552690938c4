//! A deterministic, in-memory, full-duplex link between two ends, A and B, in virtual time.
//!
//! Each direction is a *path* that models what a packet meets between two hosts:
//!
//! ```text
//!  send ──► drop-tail queue ──► transmitter (rate) ──► wire (delay) ──► impairments ──► receiver
//!           (queue limit)       serialization delay     propagation      loss, reordering,
//!                               = len × 8 / rate                         duplication, corruption
//! ```
//!
//! - **Rate and serialization delay.** A link sends one bit after the other: a 1500-byte
//!   frame takes 12 µs to clock out at 1 Gbit/s and 1.2 ms at 10 Mbit/s. Frames sent while
//!   the transmitter is busy wait their turn, so the rate is the path's *bottleneck
//!   bandwidth*: no matter how fast TCP sends, frames leave one serialization time apart.
//!   Serialization is tracked in nanoseconds so that small frames at high rates are not
//!   rounded to whole microseconds.
//! - **Propagation delay.** The time a bit takes to travel the wire (about 5 µs per km in
//!   fibre). Together with the other direction's delay and the serialization times it makes
//!   the round-trip time (RTT). The bandwidth × RTT product is how many bytes must be in
//!   flight to fill the pipe: the window TCP has to open (RFC 7323 §1).
//! - **Drop-tail queue.** The buffer in front of the bottleneck (a router's output queue).
//!   When frames arrive faster than the rate drains them, the queue grows (and so does the
//!   RTT: *queueing delay*); when it is full, newcomers are dropped. This is the loss that
//!   TCP congestion control (RFC 5681) exists to react to: the sawtooth of slow start,
//!   overflow, fast retransmit, halving. The limit counts frames waiting, not the one being
//!   transmitted, as Linux's `pfifo`/`bfifo` do.
//! - **Impairments** (loss, reordering, duplication, corruption): see [`super::impair`],
//!   which says what each one models. They strike after the queue: a frame lost on the wire
//!   still used its slot on the bottleneck.
//!
//! All randomness comes from one seed (one independent stream per direction), so a run is
//! reproducible bit for bit. Frames are copied into buffers taken from a pool and given back
//! when the receiver is done with them: in steady state the link allocates nothing.

use core::cmp::Ordering;
use core::ops::Deref;
use core::time::Duration;
use std::collections::{BinaryHeap, VecDeque};

use super::impair::{ImpairCounters, Impairer, ImpairmentError, Impairments};
use crate::time::Instant;

/// Which way a frame travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    AToB,
    BToA,
}

impl Direction {
    /// The other way.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::AToB => Direction::BToA,
            Direction::BToA => Direction::AToB,
        }
    }

    fn index(self) -> usize {
        match self {
            Direction::AToB => 0,
            Direction::BToA => 1,
        }
    }
}

/// The settings of one direction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathConfig {
    /// Bottleneck rate in bits per second; `None` sends in zero time.
    pub rate_bps: Option<u64>,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Drop-tail limit on the bytes waiting in the queue; `None` for no limit.
    pub queue_limit_bytes: Option<usize>,
    /// Drop-tail limit on the frames waiting in the queue; `None` for no limit.
    pub queue_limit_packets: Option<usize>,
    /// Random impairments after the queue.
    pub impairments: Impairments,
}

impl PathConfig {
    /// A perfect path: infinitely fast, no delay, no queue limit, no impairment.
    pub const IDEAL: PathConfig = PathConfig {
        rate_bps: None,
        delay: Duration::ZERO,
        queue_limit_bytes: None,
        queue_limit_packets: None,
        impairments: Impairments::NONE,
    };
}

/// The settings of the whole link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// The one seed every random decision derives from.
    pub seed: u64,
    pub a_to_b: PathConfig,
    pub b_to_a: PathConfig,
}

impl LinkConfig {
    /// The same settings both ways.
    pub fn symmetric(seed: u64, path: PathConfig) -> LinkConfig {
        LinkConfig {
            seed,
            a_to_b: path,
            b_to_a: path,
        }
    }

    /// A classic dumbbell bottleneck, the usual set-up of congestion-control experiments:
    /// `rate_bps` both ways, half of `rtt` of propagation each way, the same impairments both
    /// ways, and a drop-tail queue of one bandwidth-delay product (rate × RTT), the rule of
    /// thumb for router buffers (Villamizar and Song, 1994) that lets a single Reno flow keep
    /// the link busy through its sawtooth. The queue holds at least 16 full-size frames.
    pub fn bottleneck(
        seed: u64,
        rate_bps: u64,
        rtt: Duration,
        impairments: Impairments,
    ) -> LinkConfig {
        let bdp_bytes = u128::from(rate_bps) * rtt.as_micros() / 8 / 1_000_000;
        let queue_bytes = usize::try_from(bdp_bytes)
            .unwrap_or(usize::MAX)
            .max(16 * 1514);
        LinkConfig::symmetric(
            seed,
            PathConfig {
                rate_bps: Some(rate_bps),
                delay: rtt / 2,
                queue_limit_bytes: Some(queue_bytes),
                queue_limit_packets: None,
                impairments,
            },
        )
    }

    /// The settings of `direction`.
    pub fn path(&self, direction: Direction) -> &PathConfig {
        match direction {
            Direction::AToB => &self.a_to_b,
            Direction::BToA => &self.b_to_a,
        }
    }
}

/// What became of a frame handed to [`Link::send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// On its way; it arrives (maybe late, twice or damaged) at the instant given.
    InFlight { arrival: Instant },
    /// Dropped because the queue was full.
    DroppedByQueue,
    /// Sent, and lost on the way.
    Lost,
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkCounters {
    /// Frames handed to `send`.
    pub sent: u64,
    pub sent_bytes: u64,
    /// Frames refused because the queue was full.
    pub dropped_by_queue: u64,
    /// Frames lost on the way (random loss).
    pub lost: u64,
    /// Frames held back so that later ones overtook them.
    pub reordered: u64,
    /// Frames delivered twice (each counts once here).
    pub duplicated: u64,
    /// Frames delivered with one bit flipped.
    pub corrupted: u64,
    /// Frames popped by the receiver (duplicates included).
    pub delivered: u64,
    pub delivered_bytes: u64,
    /// The longest the queue has been, in frames waiting.
    pub max_queue_packets: u64,
}

/// Buffers for frames, reused instead of allocated per frame.
#[derive(Debug, Default)]
pub struct FramePool {
    free: Vec<Vec<u8>>,
    allocated: u64,
}

impl FramePool {
    /// Room for the largest common frame, so that recycled buffers never need to grow.
    const BUFFER_CAPACITY: usize = 2048;

    /// An empty buffer, from the pool when it has one.
    pub fn take(&mut self) -> Vec<u8> {
        match self.free.pop() {
            Some(mut buffer) => {
                buffer.clear();
                buffer
            }
            None => {
                self.allocated += 1;
                Vec::with_capacity(Self::BUFFER_CAPACITY)
            }
        }
    }

    /// A buffer holding a copy of `data`.
    pub fn take_copy(&mut self, data: &[u8]) -> Vec<u8> {
        let mut buffer = self.take();
        buffer.extend_from_slice(data);
        buffer
    }

    /// Gives a buffer back for reuse.
    pub fn give(&mut self, buffer: Vec<u8>) {
        self.free.push(buffer);
    }

    /// How many buffers the pool has ever allocated: stays flat in steady state.
    pub fn allocated(&self) -> u64 {
        self.allocated
    }
}

/// A frame on the wire, ordered so that the heap's top is the earliest arrival.
#[derive(Debug)]
struct InFlight {
    arrival: Instant,
    /// Tie-breaker: frames arriving at the same instant come out in the order they were sent.
    order: u64,
    frame: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    /// Reversed, because `BinaryHeap` pops the greatest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.arrival, other.order).cmp(&(self.arrival, self.order))
    }
}

/// One frame in the transmitter: queued, or being serialized.
#[derive(Clone, Copy, Debug)]
struct Transmission {
    start_ns: u64,
    end_ns: u64,
    len: usize,
}

/// One direction of the link.
#[derive(Debug)]
struct Path {
    config: PathConfig,
    impairer: Impairer,
    /// When the transmitter finishes the last frame given to it, in nanoseconds.
    busy_until_ns: u64,
    /// Frames not yet fully serialized, oldest first (the front may be on the wire).
    transmitter: VecDeque<Transmission>,
    /// Bytes of the frames in `transmitter`.
    transmitter_bytes: usize,
    in_flight: BinaryHeap<InFlight>,
    counters: LinkCounters,
}

impl Path {
    fn new(config: PathConfig, seed: u64, stream: u64) -> Result<Path, ImpairmentError> {
        Ok(Path {
            config,
            impairer: Impairer::new(config.impairments, seed, stream)?,
            busy_until_ns: 0,
            transmitter: VecDeque::new(),
            transmitter_bytes: 0,
            in_flight: BinaryHeap::new(),
            counters: LinkCounters::default(),
        })
    }

    /// Nanoseconds the transmitter needs to clock out `len` bytes.
    fn serialization_ns(&self, len: usize) -> u64 {
        let Some(rate) = self.config.rate_bps.filter(|&rate| rate > 0) else {
            return 0;
        };
        let bits = (len as u128) * 8 * 1_000_000_000;
        u64::try_from(bits.div_ceil(u128::from(rate))).unwrap_or(u64::MAX)
    }

    /// Forgets frames fully serialized by `now_ns`; returns the frames and bytes still
    /// waiting (not counting the one on the wire). O(1) amortized: frames are serialized one
    /// after the other, so at most the front one can be on the wire.
    fn queue_occupancy(&mut self, now_ns: u64) -> (usize, usize) {
        while let Some(done) = self
            .transmitter
            .front()
            .filter(|transmission| transmission.end_ns <= now_ns)
        {
            self.transmitter_bytes -= done.len;
            self.transmitter.pop_front();
        }
        match self.transmitter.front() {
            Some(on_wire) if on_wire.start_ns <= now_ns => (
                self.transmitter.len() - 1,
                self.transmitter_bytes - on_wire.len,
            ),
            _ => (self.transmitter.len(), self.transmitter_bytes),
        }
    }

    fn counters(&self) -> LinkCounters {
        let ImpairCounters {
            lost,
            duplicated,
            reordered,
            corrupted,
            ..
        } = self.impairer.counters();
        LinkCounters {
            lost,
            duplicated,
            reordered,
            corrupted,
            ..self.counters
        }
    }
}

/// Nanoseconds to the next whole microsecond at or after them.
fn instant_at_or_after_ns(ns: u64) -> Instant {
    Instant::from_micros(ns.div_ceil(1000))
}

fn duration_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The two paths of a full-duplex link, and the pool their frames live in.
///
/// Calling order: `send(now, direction, frame)` whenever an end transmits;
/// `next_delivery()` tells when the next frame arrives anywhere; `pop_delivered(now,
/// direction)` hands out, one at a time, the frames that have arrived by `now`. Time must
/// not go backwards between calls.
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    paths: [Path; 2],
    pool: FramePool,
    next_order: u64,
}

impl Link {
    /// A link with `config`; fails if an impairment probability is not in `0..=1`.
    pub fn new(config: LinkConfig) -> Result<Link, ImpairmentError> {
        Ok(Link {
            config,
            paths: [
                Path::new(config.a_to_b, config.seed, 0)?,
                Path::new(config.b_to_a, config.seed, 1)?,
            ],
            pool: FramePool::default(),
            next_order: 0,
        })
    }

    /// The settings.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Puts `frame` on the link at `now`, travelling `direction`.
    pub fn send(&mut self, now: Instant, direction: Direction, frame: &[u8]) -> SendOutcome {
        let path = &mut self.paths[direction.index()];
        let now_ns = now.total_micros().saturating_mul(1000);
        path.counters.sent += 1;
        path.counters.sent_bytes += frame.len() as u64;

        // Drop-tail: a full queue refuses the newcomer.
        let (waiting_packets, waiting_bytes) = path.queue_occupancy(now_ns);
        let over_packets = path
            .config
            .queue_limit_packets
            .is_some_and(|limit| waiting_packets + 1 > limit);
        let over_bytes = path
            .config
            .queue_limit_bytes
            .is_some_and(|limit| waiting_bytes + frame.len() > limit);
        if over_packets || over_bytes {
            path.counters.dropped_by_queue += 1;
            return SendOutcome::DroppedByQueue;
        }

        // The transmitter clocks the frame out after those before it.
        let start_ns = now_ns.max(path.busy_until_ns);
        let end_ns = start_ns.saturating_add(path.serialization_ns(frame.len()));
        path.busy_until_ns = end_ns;
        if start_ns > now_ns {
            path.counters.max_queue_packets = path
                .counters
                .max_queue_packets
                .max(waiting_packets as u64 + 1);
        }
        if end_ns > now_ns {
            path.transmitter_bytes += frame.len();
            path.transmitter.push_back(Transmission {
                start_ns,
                end_ns,
                len: frame.len(),
            });
        }

        // Then the wire, and whatever the wire does to it.
        let fate = path.impairer.roll();
        if fate.lost {
            return SendOutcome::Lost;
        }
        let mut arrival_ns = end_ns.saturating_add(duration_ns(path.config.delay));
        let mut copy = self.pool.take_copy(frame);
        if fate.duplicated {
            // The duplicate is made on the way, before any damage, and arrives right after.
            let duplicate = self.pool.take_copy(frame);
            path.in_flight.push(InFlight {
                arrival: instant_at_or_after_ns(arrival_ns),
                order: self.next_order + 1,
                frame: duplicate,
            });
        }
        path.impairer.apply_corruption(&fate, &mut copy);
        if fate.reordered {
            arrival_ns = arrival_ns.saturating_add(duration_ns(path.impairer.reorder_delay()));
        }
        let arrival = instant_at_or_after_ns(arrival_ns);
        path.in_flight.push(InFlight {
            arrival,
            order: self.next_order,
            frame: copy,
        });
        self.next_order += 2;
        SendOutcome::InFlight { arrival }
    }

    /// When the next frame arrives, either way.
    pub fn next_delivery(&self) -> Option<Instant> {
        let a = self.next_delivery_towards(Direction::AToB);
        let b = self.next_delivery_towards(Direction::BToA);
        a.into_iter().chain(b).min()
    }

    /// When the next frame travelling `direction` arrives.
    pub fn next_delivery_towards(&self, direction: Direction) -> Option<Instant> {
        let path = &self.paths[direction.index()];
        path.in_flight.peek().map(|frame| frame.arrival)
    }

    /// The next frame travelling `direction` that has arrived by `now`. Its buffer goes back
    /// to the pool when the [`Delivered`] guard is dropped.
    pub fn pop_delivered(&mut self, now: Instant, direction: Direction) -> Option<Delivered<'_>> {
        let path = &mut self.paths[direction.index()];
        if path.in_flight.peek()?.arrival > now {
            return None;
        }
        let InFlight { frame, .. } = path.in_flight.pop()?;
        path.counters.delivered += 1;
        path.counters.delivered_bytes += frame.len() as u64;
        Some(Delivered {
            frame,
            pool: &mut self.pool,
        })
    }

    /// Frames travelling `direction` that have not arrived yet.
    pub fn in_flight(&self, direction: Direction) -> usize {
        self.paths[direction.index()].in_flight.len()
    }

    /// Counters of `direction`.
    pub fn counters(&self, direction: Direction) -> LinkCounters {
        self.paths[direction.index()].counters()
    }

    /// How many frame buffers the link has ever allocated.
    pub fn buffers_allocated(&self) -> u64 {
        self.pool.allocated()
    }
}

/// A delivered frame, lent by the link; its buffer returns to the pool on drop.
#[derive(Debug)]
pub struct Delivered<'a> {
    frame: Vec<u8>,
    pool: &'a mut FramePool,
}

impl Deref for Delivered<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.frame
    }
}

impl Drop for Delivered<'_> {
    fn drop(&mut self) {
        self.pool.give(core::mem::take(&mut self.frame));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: u32, len: usize) -> Vec<u8> {
        let mut frame = vec![0u8; len.max(4)];
        frame[..4].copy_from_slice(&id.to_be_bytes());
        frame
    }

    fn id_of(frame: &[u8]) -> u32 {
        u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]])
    }

    fn drain(link: &mut Link, now: Instant, direction: Direction) -> Vec<(Instant, u32)> {
        let mut out = Vec::new();
        while let Some(frame) = link.pop_delivered(now, direction) {
            out.push((now, id_of(&frame)));
        }
        out
    }

    /// Runs the link until empty, collecting (arrival, id) per direction.
    fn run_to_end(link: &mut Link, direction: Direction) -> Vec<(Instant, u32)> {
        let mut out = Vec::new();
        while let Some(t) = link.next_delivery_towards(direction) {
            out.extend(drain(link, t, direction));
        }
        out
    }

    fn path(rate_bps: Option<u64>, delay_ms: u64) -> PathConfig {
        PathConfig {
            rate_bps,
            delay: Duration::from_millis(delay_ms),
            ..PathConfig::IDEAL
        }
    }

    #[test]
    fn arrival_is_serialization_plus_delay() {
        // 1000 bytes at 1 Mbit/s take 8 ms; plus 10 ms of wire.
        let mut link = Link::new(LinkConfig::symmetric(1, path(Some(1_000_000), 10))).unwrap();
        let outcome = link.send(Instant::ZERO, Direction::AToB, &frame(1, 1000));
        assert_eq!(
            outcome,
            SendOutcome::InFlight {
                arrival: Instant::from_millis(18)
            }
        );
        assert!(
            link.pop_delivered(Instant::from_micros(17_999), Direction::AToB)
                .is_none()
        );
        assert!(
            link.pop_delivered(Instant::from_millis(18), Direction::BToA)
                .is_none()
        );
        let delivered = link
            .pop_delivered(Instant::from_millis(18), Direction::AToB)
            .unwrap();
        assert_eq!(&*delivered, &frame(1, 1000)[..]);
    }

    #[test]
    fn rate_spaces_frames_and_directions_are_independent() {
        // 1250 bytes = 10 kbit = 1 ms at 10 Mbit/s.
        let mut link = Link::new(LinkConfig::symmetric(1, path(Some(10_000_000), 5))).unwrap();
        for id in 0..100 {
            link.send(Instant::ZERO, Direction::AToB, &frame(id, 1250));
        }
        link.send(Instant::ZERO, Direction::BToA, &frame(999, 1250));
        let arrivals = run_to_end(&mut link, Direction::AToB);
        let expected: Vec<(Instant, u32)> = (0..100)
            .map(|id| (Instant::from_millis(u64::from(id) + 1 + 5), id))
            .collect();
        assert_eq!(arrivals, expected);
        // The other direction's transmitter was idle: its frame was not queued behind them.
        assert_eq!(
            run_to_end(&mut link, Direction::BToA),
            vec![(Instant::from_millis(6), 999)]
        );
    }

    #[test]
    fn sub_microsecond_serialization_keeps_the_rate() {
        // 64-byte frames at 1 Gbit/s take 512 ns each: 1000 of them take 512 µs, not 1000.
        let mut link = Link::new(LinkConfig::symmetric(1, path(Some(1_000_000_000), 0))).unwrap();
        for id in 0..1000 {
            link.send(Instant::ZERO, Direction::AToB, &frame(id, 64));
        }
        let arrivals = run_to_end(&mut link, Direction::AToB);
        assert_eq!(arrivals.len(), 1000);
        assert_eq!(arrivals.last().unwrap().0, Instant::from_micros(512));
    }

    #[test]
    fn bottleneck_queue_is_one_bdp() {
        let config = LinkConfig::bottleneck(
            1,
            1_000_000_000,
            Duration::from_millis(20),
            Impairments::loss(0.01),
        );
        assert_eq!(config.a_to_b, config.b_to_a);
        assert_eq!(config.a_to_b.delay, Duration::from_millis(10));
        assert_eq!(config.a_to_b.queue_limit_bytes, Some(2_500_000));
        assert_eq!(config.a_to_b.impairments.loss, 0.01);
        let slow =
            LinkConfig::bottleneck(1, 1_000_000, Duration::from_millis(1), Impairments::NONE);
        assert_eq!(slow.a_to_b.queue_limit_bytes, Some(16 * 1514));
    }

    #[test]
    fn drop_tail_queue_limits() {
        let config = PathConfig {
            queue_limit_packets: Some(10),
            ..path(Some(1_000_000), 1)
        };
        let mut link = Link::new(LinkConfig::symmetric(1, config)).unwrap();
        let outcomes: Vec<SendOutcome> = (0..50)
            .map(|id| link.send(Instant::ZERO, Direction::AToB, &frame(id, 125)))
            .collect();
        // One on the wire plus ten waiting; the other 39 are dropped.
        assert!(
            outcomes[..11]
                .iter()
                .all(|o| matches!(o, SendOutcome::InFlight { .. }))
        );
        assert!(
            outcomes[11..]
                .iter()
                .all(|o| *o == SendOutcome::DroppedByQueue)
        );
        let counters = link.counters(Direction::AToB);
        assert_eq!(counters.dropped_by_queue, 39);
        assert_eq!(counters.max_queue_packets, 10);
        // Once the first frame (1 ms) is out, one slot is free again.
        assert!(matches!(
            link.send(Instant::from_millis(1), Direction::AToB, &frame(50, 125)),
            SendOutcome::InFlight { .. }
        ));
        assert_eq!(
            link.send(Instant::from_millis(1), Direction::AToB, &frame(51, 125)),
            SendOutcome::DroppedByQueue
        );

        let by_bytes = PathConfig {
            queue_limit_bytes: Some(3000),
            ..path(Some(1_000_000), 1)
        };
        let mut link = Link::new(LinkConfig::symmetric(1, by_bytes)).unwrap();
        let queued = (0..10)
            .map(|id| link.send(Instant::ZERO, Direction::AToB, &frame(id, 1000)))
            .filter(|o| matches!(o, SendOutcome::InFlight { .. }))
            .count();
        assert_eq!(queued, 4, "one on the wire and 3000 bytes waiting");
    }

    #[test]
    fn reordered_frames_are_overtaken() {
        let config = PathConfig {
            impairments: Impairments {
                reorder: 0.1,
                reorder_delay: Duration::from_millis(3),
                ..Impairments::NONE
            },
            ..path(Some(8_000_000), 2)
        };
        let mut link = Link::new(LinkConfig::symmetric(3, config)).unwrap();
        // 1000-byte frames, one per millisecond of serialization.
        for id in 0..1000 {
            link.send(Instant::ZERO, Direction::AToB, &frame(id, 1000));
        }
        let ids: Vec<u32> = run_to_end(&mut link, Direction::AToB)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let reordered = link.counters(Direction::AToB).reordered;
        assert!((60..140).contains(&reordered), "{reordered}");
        let overtaken = ids.windows(2).filter(|pair| pair[0] > pair[1]).count();
        assert!(overtaken > 0 && overtaken as u64 <= reordered);
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..1000).collect::<Vec<u32>>(),
            "nothing lost, nothing added"
        );
    }

    #[test]
    fn impairment_rates_over_many_frames() {
        let config = PathConfig {
            impairments: Impairments {
                loss: 0.01,
                duplicate: 0.005,
                reorder: 0.02,
                reorder_delay: Duration::from_micros(100),
                corrupt: 0.003,
            },
            ..path(Some(1_000_000_000), 1)
        };
        let mut link = Link::new(LinkConfig::symmetric(11, config)).unwrap();
        let n: u32 = 100_000;
        let mut now = Instant::ZERO;
        let mut received = Vec::with_capacity(n as usize);
        let mut corrupted_seen = 0;
        for id in 0..n {
            let sent = frame(id, 100);
            link.send(now, Direction::AToB, &sent);
            now += Duration::from_micros(10);
            while let Some(delivered) = link.pop_delivered(now, Direction::AToB) {
                let original = frame(id_of(&delivered), 100);
                corrupted_seen += usize::from(original[4..] != delivered[4..]);
                received.push(id_of(&delivered));
            }
        }
        received.extend(
            run_to_end(&mut link, Direction::AToB)
                .into_iter()
                .map(|(_, id)| id),
        );
        let c = link.counters(Direction::AToB);
        assert_eq!(c.sent, u64::from(n));
        let near = |count: u64, expected: f64, slack: f64| (count as f64 - expected).abs() < slack;
        assert!(near(c.lost, 1000.0, 160.0), "{c:?}");
        assert!(near(c.duplicated, 495.0, 115.0), "{c:?}");
        assert!(near(c.reordered, 1980.0, 220.0), "{c:?}");
        assert!(near(c.corrupted, 297.0, 90.0), "{c:?}");
        assert_eq!(c.delivered, u64::from(n) - c.lost + c.duplicated);
        assert_eq!(received.len() as u64, c.delivered);
        // Corruption never touches the 14-byte Ethernet header, where the id lives, so the
        // frames that differ from what was sent are exactly the corrupted ones.
        assert_eq!(corrupted_seen as u64, c.corrupted);
        assert_eq!(c.dropped_by_queue, 0);
    }

    #[test]
    fn same_seed_same_trace() {
        let config = PathConfig {
            impairments: Impairments {
                loss: 0.05,
                duplicate: 0.05,
                reorder: 0.05,
                reorder_delay: Duration::from_micros(300),
                corrupt: 0.05,
            },
            queue_limit_packets: Some(20),
            ..path(Some(100_000_000), 1)
        };
        let trace = |seed: u64| {
            let mut link = Link::new(LinkConfig::symmetric(seed, config)).unwrap();
            let mut now = Instant::ZERO;
            let mut out = Vec::new();
            for id in 0..5000 {
                link.send(now, Direction::AToB, &frame(id, 200 + (id as usize % 1000)));
                link.send(now, Direction::BToA, &frame(id, 60));
                now += Duration::from_micros(50);
                for direction in [Direction::AToB, Direction::BToA] {
                    while let Some(delivered) = link.pop_delivered(now, direction) {
                        out.push((now, direction, delivered.to_vec()));
                    }
                }
            }
            out
        };
        assert_eq!(trace(5), trace(5));
        assert_ne!(trace(5), trace(6));
    }

    #[test]
    fn no_allocation_in_steady_state() {
        let mut link = Link::new(LinkConfig::symmetric(1, path(Some(1_000_000_000), 1))).unwrap();
        let mut now = Instant::ZERO;
        let mut pump = |link: &mut Link, frames: u32| {
            for id in 0..frames {
                link.send(now, Direction::AToB, &frame(id, 1514));
                now += Duration::from_micros(13);
                while link.pop_delivered(now, Direction::AToB).is_some() {}
            }
        };
        pump(&mut link, 1000);
        let warm = link.buffers_allocated();
        // At most ~1 ms / 13 µs frames are ever in flight.
        assert!(warm <= 100, "{warm}");
        pump(&mut link, 100_000);
        assert_eq!(link.buffers_allocated(), warm);
    }
}
