//! Two connections talking through an in-test link with virtual time, a bandwidth, a delay
//! and seeded random loss (quinn's `Pair`, much reduced: the real simulator is `driver::sim`).

use core::ops::Range;
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{CLIENT, SERVER, Seg};
use crate::tcp::pacer::Pacer;
use crate::tcp::send_buffer::SharedBytes;
use crate::tcp::{Config, Connection, Event, State};
use crate::time::Instant;

/// One direction of the link: segments in flight with their arrival times.
struct Link {
    queue: VecDeque<(Instant, Seg)>,
    /// When the link finishes serializing the last queued segment.
    busy_until: Instant,
    bytes_per_micro: f64,
    delay: Duration,
    loss: f64,
    /// Extra random delay up to this much per segment, which reorders segments.
    jitter: Duration,
    /// Probability that a segment arrives twice.
    duplicate: f64,
}

impl Link {
    fn new(bits_per_second: f64, delay: Duration, loss: f64) -> Link {
        Link {
            queue: VecDeque::new(),
            busy_until: Instant::ZERO,
            bytes_per_micro: bits_per_second / 8e6,
            delay,
            loss,
            jitter: Duration::ZERO,
            duplicate: 0.0,
        }
    }

    fn push(&mut self, now: Instant, seg: Seg, rng: &mut ChaCha8Rng) -> bool {
        let wire_bytes = (seg.payload.len() + 40 + 14) as f64;
        let start = self.busy_until.max(now);
        let done = start + Duration::from_micros((wire_bytes / self.bytes_per_micro).ceil() as u64);
        self.busy_until = done;
        if rng.gen_bool(self.loss) {
            return false;
        }
        if rng.gen_bool(self.duplicate) {
            let again = done + self.delay + self.random_jitter(rng);
            self.insert(again, seg.clone());
        }
        let arrival = done + self.delay + self.random_jitter(rng);
        self.insert(arrival, seg);
        true
    }

    fn random_jitter(&self, rng: &mut ChaCha8Rng) -> Duration {
        let max = self.jitter.as_micros() as u64;
        Duration::from_micros(if max == 0 { 0 } else { rng.gen_range(0..=max) })
    }

    /// Keeps the queue ordered by arrival time (FIFO among equal times).
    fn insert(&mut self, arrival: Instant, seg: Seg) {
        let index = self.queue.partition_point(|(at, _)| *at <= arrival);
        self.queue.insert(index, (arrival, seg));
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _)| *at)
    }
}

pub struct Pair {
    pub now: Instant,
    pub client: Connection,
    pub server: Connection,
    to_server: Link,
    to_client: Link,
    rng: ChaCha8Rng,
    /// What the server sends, and how much of it went into its send buffer.
    pub body: Vec<u8>,
    body_queued: usize,
    /// What the client received, written at the delivered offsets.
    pub received: Vec<u8>,
    /// What the client sends (an upload; empty by default), and what the server received.
    pub request: Vec<u8>,
    request_queued: usize,
    pub server_received: Vec<u8>,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
    pub dropped: u64,
    /// A slow client application: it has a buffer of `capacity` bytes and drains it at
    /// `bytes_per_second`; the receive window is the free part of that buffer.
    pub reader: Option<SlowReader>,
    /// The smallest peer window the server saw while sending.
    pub min_server_rwnd: u64,
    /// Bytes the slow reader has taken out of its buffer, as of `reader_updated`.
    reader_consumed: u64,
    reader_updated: Instant,
    /// How long the client lets segments gather before it takes them as one receive batch
    /// (interrupt coalescing / NAPI); zero: every arrival is a batch of its own.
    pub client_batch: Duration,
    /// When the client had the whole stream (its `PeerFin` event).
    pub client_fin_at: Option<Instant>,
    /// `--limit-rate`: the client's receive window comes from this pacer (`tcp::pacer`),
    /// polled before every transmission and again at its `next_poll`.
    pub pacer: Option<Pacer>,
    pacer_next_poll: Option<Instant>,
    /// The server lends these ranges of the body (`Connection::lend`, from `lent`, which
    /// holds the whole body) instead of copying them in with `send`.
    pub lent: Option<LentRanges>,
}

/// A lender holding the whole body, and the ranges of the body lent from it.
pub type LentRanges = (Arc<dyn SharedBytes>, Vec<Range<usize>>);

#[derive(Clone, Copy, Debug)]
pub struct SlowReader {
    pub capacity: usize,
    pub bytes_per_second: f64,
}

impl Pair {
    pub fn new(
        config: Config,
        body: Vec<u8>,
        bits_per_second: f64,
        delay: Duration,
        loss: f64,
        seed: u64,
    ) -> Pair {
        let server_config = config.clone();
        Pair::with_configs(
            config,
            server_config,
            body,
            bits_per_second,
            delay,
            loss,
            seed,
        )
    }

    /// Like `new`, with a configuration of its own for the server (the sender of `body`).
    pub fn with_configs(
        config: Config,
        mut server_config: Config,
        body: Vec<u8>,
        bits_per_second: f64,
        delay: Duration,
        loss: f64,
        seed: u64,
    ) -> Pair {
        server_config.isn_secret = [9; 16];
        Pair {
            now: Instant::ZERO,
            client: Connection::connect(Instant::ZERO, config, CLIENT, SERVER),
            server: Connection::listen(server_config, SERVER),
            to_server: Link::new(bits_per_second, delay, loss),
            to_client: Link::new(bits_per_second, delay, loss),
            rng: ChaCha8Rng::seed_from_u64(seed),
            body,
            body_queued: 0,
            received: Vec::new(),
            request: Vec::new(),
            request_queued: 0,
            server_received: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            dropped: 0,
            reader: None,
            min_server_rwnd: u64::MAX,
            reader_consumed: 0,
            reader_updated: Instant::ZERO,
            client_batch: Duration::ZERO,
            client_fin_at: None,
            pacer: None,
            pacer_next_poll: None,
            lent: None,
        }
    }

    /// Runs until both ends are closed or `max_steps` events were processed.
    /// Returns the number of steps taken.
    pub fn drive(&mut self, max_steps: usize) -> usize {
        for step in 0..max_steps {
            self.transmit_all();
            if self.client.state() == State::Closed && self.server.state() == State::Closed {
                return step;
            }
            let next = [
                self.reader_wakeup(),
                self.to_server.next_arrival(),
                self.to_client
                    .next_arrival()
                    .map(|at| at + self.client_batch),
                self.client.poll_timeout(),
                self.server.poll_timeout(),
                self.pacer_next_poll,
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return step };
            self.now = self.now.max(next);
            self.deliver_due();
            for conn in [&mut self.client, &mut self.server] {
                if conn.poll_timeout().is_some_and(|at| at <= self.now) {
                    conn.on_timeout(self.now);
                }
            }
        }
        max_steps
    }

    /// The slow reader drains its buffer at its rate, never saving up while it is empty.
    fn run_reader(&mut self, reader: SlowReader) {
        let elapsed = self.now.saturating_duration_since(self.reader_updated);
        let can_drain = (reader.bytes_per_second * elapsed.as_secs_f64()) as u64;
        let buffered = self.client.received_in_order() - self.reader_consumed;
        self.reader_consumed += can_drain.min(buffered);
        self.reader_updated = self.now;
    }

    /// While the slow reader's buffer is not empty, wake up every millisecond to drain it.
    fn reader_wakeup(&self) -> Option<Instant> {
        self.reader?;
        let buffered = self.client.received_in_order() - self.reader_consumed;
        (buffered > 0).then(|| self.now + Duration::from_millis(1))
    }

    fn transmit_all(&mut self) {
        if let Some(reader) = self.reader {
            self.run_reader(reader);
            let buffered = self.client.received_in_order() - self.reader_consumed;
            let free = reader.capacity.saturating_sub(buffered as usize);
            self.client.set_receive_window(free);
        }
        if let Some(pacer) = self.pacer.as_mut() {
            let pace = pacer.poll(self.now, self.client.received_in_order());
            self.client.set_receive_window(pace.window);
            self.pacer_next_poll = Some(pace.next_poll);
        }
        // The server application: keep the send buffer full, close after the body.
        if self.server.state() == State::Established || self.server.state() == State::CloseWait {
            while self.body_queued < self.body.len() {
                let at = self.body_queued;
                let lent = self.lent.as_ref().and_then(|(lent, ranges)| {
                    let range = ranges.iter().find(|r| r.contains(&at))?;
                    Some((lent, range.end))
                });
                let next_lent = self.lent.as_ref().map_or(self.body.len(), |(_, ranges)| {
                    ranges
                        .iter()
                        .map(|r| r.start)
                        .filter(|&start| start > at)
                        .min()
                        .unwrap_or(self.body.len())
                });
                let taken = match lent {
                    Some((lent, end)) => self.server.lend(lent, at..end),
                    None => self.server.send(&self.body[at..next_lent]),
                };
                if taken == 0 {
                    break;
                }
                self.body_queued += taken;
            }
            if self.body_queued == self.body.len() {
                self.server.close();
            }
        }
        while self.request_queued < self.request.len() {
            let taken = self.client.send(&self.request[self.request_queued..]);
            if taken == 0 {
                break;
            }
            self.request_queued += taken;
        }
        while let Some(repr) = self.client.poll_transmit(self.now) {
            let seg = Seg::from_repr(&repr);
            if !self.to_server.push(self.now, seg, &mut self.rng) {
                self.dropped += 1;
            }
        }
        while let Some(repr) = self.server.poll_transmit(self.now) {
            let seg = Seg::from_repr(&repr);
            if !self.to_client.push(self.now, seg, &mut self.rng) {
                self.dropped += 1;
            }
        }
        let before = self.client_events.len();
        self.client_events
            .extend(std::iter::from_fn(|| self.client.poll_event()));
        if self.client_events[before..]
            .iter()
            .any(|e| matches!(e, Event::PeerFin { .. }))
        {
            self.client_fin_at = Some(self.now);
        }
        self.server_events
            .extend(std::iter::from_fn(|| self.server.poll_event()));
        if matches!(self.server.state(), State::Established | State::FinWait1) {
            self.min_server_rwnd = self.min_server_rwnd.min(self.server.stats().rwnd);
        }
        // The client application closes once the server's stream ended and its own upload
        // is queued.
        if self.client.state() == State::CloseWait && self.request_queued == self.request.len() {
            self.client.close();
        }
    }

    /// Hands every segment that has arrived by `now` to its receiver, as one batch each.
    fn deliver_due(&mut self) {
        while self
            .to_server
            .next_arrival()
            .is_some_and(|at| at <= self.now)
        {
            let Some((_, seg)) = self.to_server.queue.pop_front() else {
                break;
            };
            let repr = seg.repr(CLIENT.port(), SERVER.port());
            let delivered = self
                .server
                .on_segment(self.now, *CLIENT.ip(), *SERVER.ip(), &repr);
            if let Some((offset, bytes)) = delivered.data {
                write_at(&mut self.server_received, offset, bytes);
            }
        }
        // The client takes its batch once the first segment has waited `client_batch`.
        let batch_due = self
            .to_client
            .next_arrival()
            .is_some_and(|at| at + self.client_batch <= self.now);
        while batch_due
            && self
                .to_client
                .next_arrival()
                .is_some_and(|at| at <= self.now)
        {
            let Some((_, seg)) = self.to_client.queue.pop_front() else {
                break;
            };
            let repr = seg.repr(SERVER.port(), CLIENT.port());
            let delivered = self
                .client
                .on_segment(self.now, *SERVER.ip(), *CLIENT.ip(), &repr);
            if let Some((offset, bytes)) = delivered.data {
                write_at(&mut self.received, offset, bytes);
            }
        }
    }
}

/// Writes delivered bytes at their stream offset, as the sink does with the output file.
fn write_at(buffer: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    let end = start + bytes.len();
    if buffer.len() < end {
        buffer.resize(end, 0);
    }
    buffer[start..end].copy_from_slice(bytes);
}

pub(super) fn body(len: usize, seed: u64) -> Vec<u8> {
    let mut body = vec![0; len];
    ChaCha8Rng::seed_from_u64(seed).fill(&mut body[..]);
    body
}

fn pair_config() -> Config {
    Config {
        isn_secret: [1; 16],
        msl: Duration::from_millis(100),
        send_buffer_capacity: 256 * 1024,
        max_receive_window: 4 << 20,
        initial_receive_window: 4 << 20,
        ..Config::default()
    }
}

fn assert_transfer_completes(pair: &mut Pair, max_steps: usize) {
    let steps = pair.drive(max_steps);
    assert!(
        steps < max_steps,
        "no completion within {max_steps} steps: client {:?}, server {:?}, received {} of {}",
        pair.client.state(),
        pair.server.state(),
        pair.received.len(),
        pair.body.len()
    );
    assert!(
        pair.received == pair.body,
        "received bytes differ from the body"
    );
    let stream_len = pair.body.len() as u64;
    assert_eq!(
        pair.client_events,
        [
            Event::Connected,
            Event::PeerFin { stream_len },
            Event::Closed
        ]
    );
    assert!(
        pair.server_received == pair.request,
        "the server got a different upload"
    );
    let upload_len = pair.request.len() as u64;
    assert_eq!(pair.server_events[0], Event::Connected);
    assert!(pair.server_events.contains(&Event::PeerFin {
        stream_len: upload_len
    }));
    assert_eq!(pair.server_events.last(), Some(&Event::Closed));
}

#[test]
fn transfers_one_mebibyte_without_loss() {
    let mut pair = Pair::new(
        pair_config(),
        body(1 << 20, 1),
        100e6,
        Duration::from_millis(5),
        0.0,
        1,
    );
    assert_transfer_completes(&mut pair, 100_000);
    let stats = pair.server.stats();
    assert_eq!(stats.retransmits, 0);
    assert_eq!(stats.dup_acks_received, 0);
    assert_eq!(pair.client.stats().dup_acks_sent, 0);
    // The client ACKs at least every second full segment (the data segments are all full
    // but the last).
    let full_segments = (1u64 << 20) / stats.snd_mss;
    assert!(
        pair.client.stats().acks_sent >= full_segments / 2,
        "{} ACKs for {full_segments} segments",
        pair.client.stats().acks_sent
    );
}

#[test]
fn transfers_one_mebibyte_byte_exact_under_random_loss() {
    for (seed, loss) in [(2u64, 0.01), (3, 0.03), (4, 0.05)] {
        let mut pair = Pair::new(
            pair_config(),
            body(1 << 20, seed),
            100e6,
            Duration::from_millis(5),
            loss,
            seed,
        );
        assert_transfer_completes(&mut pair, 400_000);
        assert!(
            pair.dropped > 0,
            "seed {seed}: the link never dropped anything"
        );
        let stats = pair.server.stats();
        assert!(stats.retransmits > 0);
        assert!(stats.fast_retransmits > 0, "seed {seed}: {stats:?}");
    }
}

#[derive(Debug)]
struct LentBody(Vec<u8>);

impl SharedBytes for LentBody {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The serve case: each 64 KiB of the body is a 300-byte "head" copied in and the rest lent
/// by reference. The send buffer holds no copy of a lent byte, so every retransmission
/// after a loss must read it again from the lender at the right offset; a segment that
/// straddles a head and a body is assembled from both.
#[test]
fn lent_bytes_are_retransmitted_from_the_lender_byte_exact_under_loss() {
    for (seed, loss) in [(21u64, 0.02), (22, 0.05)] {
        let body = body(1 << 20, seed);
        let lent: Arc<dyn SharedBytes> = Arc::new(LentBody(body.clone()));
        let ranges: Vec<Range<usize>> = (0..body.len())
            .step_by(64 * 1024)
            .map(|start| start + 300..(start + 64 * 1024).min(body.len()))
            .collect();
        let lent_total: usize = ranges.iter().map(|r| r.len()).sum();
        let mut pair = Pair::new(
            pair_config(),
            body,
            100e6,
            Duration::from_millis(5),
            loss,
            seed,
        );
        pair.lent = Some((Arc::clone(&lent), ranges));
        assert_transfer_completes(&mut pair, 400_000);
        let stats = pair.server.stats();
        assert!(stats.retransmits > 0, "seed {seed}: nothing was lost");
        // Every lent byte was read from the lender at least once, and retransmitted ones
        // again.
        assert!(
            stats.lent_bytes_sent > lent_total as u64,
            "seed {seed}: {} lent bytes sent for {lent_total}",
            stats.lent_bytes_sent
        );
        assert!(stats.lent_bytes_sent < stats.bytes_sent);
        pair.lent = None;
        assert_eq!(
            Arc::strong_count(&lent),
            1,
            "the closed connection keeps no reference"
        );
    }
}

#[test]
fn transfers_byte_exact_through_reordering_and_duplication() {
    for seed in [7u64, 8] {
        let mut pair = Pair::new(
            pair_config(),
            body(512 << 10, seed),
            50e6,
            Duration::from_millis(3),
            0.01,
            seed,
        );
        for link in [&mut pair.to_server, &mut pair.to_client] {
            link.jitter = Duration::from_millis(2);
            link.duplicate = 0.02;
        }
        assert_transfer_completes(&mut pair, 400_000);
        let client = pair.client.stats();
        assert!(client.out_of_order_segments > 0);
        // Duplicates of bytes already in order are dropped as stale, never delivered twice.
        assert!(client.segments_dropped > 0);
        // PAWS may drop an original that a newer retransmission overtook (RFC 7323 §5.3);
        // the transfer must complete anyway. That is all we can say here.
        let _ = client.paws_drops;
    }
}

#[test]
fn transfers_with_timestamps_and_scaling_off_and_tiny_buffers() {
    let config = Config {
        timestamps: false,
        window_scaling: false,
        send_buffer_capacity: 10_000,
        max_receive_window: 30_000,
        initial_receive_window: 30_000,
        ..pair_config()
    };
    let mut pair = Pair::new(
        config,
        body(300_000, 5),
        10e6,
        Duration::from_millis(2),
        0.02,
        5,
    );
    assert_transfer_completes(&mut pair, 200_000);
}

/// The simulator's budget: 64 MiB at 1 Gbit/s with 1% loss. Run with
/// `cargo test --release --lib big_lossy_transfer -- --ignored --nocapture`.
#[test]
#[ignore = "a load test of a few seconds; run by hand in release mode"]
fn big_lossy_transfer() {
    let config = Config {
        send_buffer_capacity: 8 << 20,
        max_receive_window: 64 << 20,
        initial_receive_window: 64 << 20,
        ..pair_config()
    };
    let started = std::time::Instant::now();
    let mut pair = Pair::new(
        config,
        body(64 << 20, 6),
        1e9,
        Duration::from_millis(1),
        0.01,
        6,
    );
    assert_transfer_completes(&mut pair, 20_000_000);
    eprintln!(
        "64 MiB: virtual {}, wall {:?}, server {:?}",
        pair.now,
        started.elapsed(),
        pair.server.stats()
    );
}

#[test]
fn transfers_both_ways_at_once_under_loss_and_reordering() {
    let (mut client_retransmits, mut server_retransmits) = (0, 0);
    for seed in 10..16u64 {
        let mut pair = Pair::new(
            pair_config(),
            body(300_000, seed),
            20e6,
            Duration::from_millis(4),
            0.02,
            seed,
        );
        pair.request = body(200_000 + seed as usize * 1000, seed + 100);
        for link in [&mut pair.to_server, &mut pair.to_client] {
            link.jitter = Duration::from_micros(500);
            link.duplicate = 0.01;
        }
        assert_transfer_completes(&mut pair, 400_000);
        client_retransmits += pair.client.stats().retransmits;
        server_retransmits += pair.server.stats().retransmits;
    }
    // Both directions did recover from losses somewhere in these runs.
    assert!(client_retransmits > 0 && server_retransmits > 0);
}

#[test]
fn many_seeds_of_small_lossy_transfers() {
    for seed in 100..130u64 {
        let loss = [0.0, 0.01, 0.05, 0.1][seed as usize % 4];
        let mut pair = Pair::new(
            pair_config(),
            body(60_000 + seed as usize * 997, seed),
            10e6,
            Duration::from_millis(1 + seed % 7),
            loss,
            seed,
        );
        pair.request = body(seed as usize * 31, seed);
        assert_transfer_completes(&mut pair, 400_000);
    }
}

#[test]
fn a_slow_reader_closes_the_window_and_the_transfer_still_completes() {
    let config = Config {
        initial_receive_window: 32 * 1024,
        ..pair_config()
    };
    let mut pair = Pair::new(
        config,
        body(400_000, 20),
        100e6,
        Duration::from_millis(2),
        0.0,
        20,
    );
    pair.reader = Some(SlowReader {
        capacity: 32 * 1024,
        bytes_per_second: 1e6,
    });
    assert_transfer_completes(&mut pair, 2_000_000);
    // The reader needs 0.4 s for the body: the link (100 Mbit/s) is not the bottleneck, and
    // window updates keep the reader fed (the end adds the server's 200 ms TIME-WAIT).
    assert!(
        pair.now >= Instant::from_millis(390),
        "finished at {}",
        pair.now
    );
    assert!(
        pair.now < Instant::from_millis(700),
        "finished at {}",
        pair.now
    );
    // Window updates are never mistaken for duplicate ACKs.
    assert_eq!(pair.server.stats().dup_acks_received, 0);
    // The window really closed down on the sender (from 32 KiB).
    assert!(
        pair.min_server_rwnd < 8192,
        "smallest window {}",
        pair.min_server_rwnd
    );
}

#[test]
fn a_slow_reader_with_loss_completes() {
    for seed in 21..25u64 {
        let config = Config {
            initial_receive_window: 20_000,
            ..pair_config()
        };
        let mut pair = Pair::new(
            config,
            body(200_000, seed),
            50e6,
            Duration::from_millis(3),
            0.03,
            seed,
        );
        pair.reader = Some(SlowReader {
            capacity: 20_000,
            bytes_per_second: 3e5,
        });
        assert_transfer_completes(&mut pair, 2_000_000);
        assert!(
            pair.min_server_rwnd < 8192,
            "smallest window {}",
            pair.min_server_rwnd
        );
    }
}

#[test]
fn window_scaling_fills_a_long_fat_pipe() {
    // 100 Mbit/s, 20 ms RTT: the bandwidth-delay product (250 KB) is far above 64 KiB.
    let size = 8 << 20;
    let scaled = Pair::new(
        pair_config(),
        body(size, 30),
        100e6,
        Duration::from_millis(10),
        0.0,
        30,
    );
    let unscaled_config = Config {
        window_scaling: false,
        ..pair_config()
    };
    let unscaled = Pair::new(
        unscaled_config,
        body(size, 30),
        100e6,
        Duration::from_millis(10),
        0.0,
        30,
    );
    let mut finish = Vec::new();
    for mut pair in [scaled, unscaled] {
        assert_transfer_completes(&mut pair, 1_000_000);
        finish.push(pair.now);
    }
    // Scaled: about 0.7 s of serialization plus slow start. Unscaled: at most 64 KiB per RTT,
    // 2.6 s at least.
    assert!(
        finish[0] < Instant::from_millis(1500),
        "scaled: {}",
        finish[0]
    );
    assert!(
        finish[1] > Instant::from_millis(2500),
        "unscaled: {}",
        finish[1]
    );
}
