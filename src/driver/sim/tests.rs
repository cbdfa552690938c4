//! Tests of `SimDriver` with tiny peers: an echo server and a timer-driven pinger.

use core::time::Duration;
use std::collections::VecDeque;

use super::*;

/// Sends every frame it receives straight back, and remembers when each arrived.
#[derive(Default)]
pub(crate) struct EchoPeer {
    pub(crate) arrivals: Vec<(Instant, u32)>,
    outbox: VecDeque<Vec<u8>>,
}

impl SimPeer for EchoPeer {
    fn on_frame(&mut self, now: Instant, frame: &[u8]) {
        self.arrivals.push((now, id_of(frame)));
        self.outbox.push_back(frame.to_vec());
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
        let frame = self.outbox.pop_front()?;
        buf[..frame.len()].copy_from_slice(&frame);
        Some(frame.len())
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn on_timeout(&mut self, _now: Instant) {}
}

/// Sends `remaining` frames, one every `interval`, driven by its timer.
struct PingPeer {
    next_at: Instant,
    interval: Duration,
    remaining: u32,
    due: bool,
    sent: u32,
}

impl SimPeer for PingPeer {
    fn on_frame(&mut self, _now: Instant, _frame: &[u8]) {}
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
        if !self.due {
            return None;
        }
        self.due = false;
        buf[..100].fill(0);
        buf[..4].copy_from_slice(&self.sent.to_be_bytes());
        self.sent += 1;
        Some(100)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (self.remaining > 0).then_some(self.next_at)
    }
    fn on_timeout(&mut self, _now: Instant) {
        self.remaining -= 1;
        self.due = true;
        self.next_at += self.interval;
    }
}

/// A peer whose timer is always due and never moves: a livelock.
struct StuckTimerPeer;

impl SimPeer for StuckTimerPeer {
    fn on_frame(&mut self, _now: Instant, _frame: &[u8]) {}
    fn poll_transmit(&mut self, _now: Instant, _buf: &mut [u8]) -> Option<usize> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(Instant::ZERO)
    }
    fn on_timeout(&mut self, _now: Instant) {}
}

/// A `len`-byte test frame whose first four bytes number it.
pub(crate) fn frame(id: u32, len: usize) -> Vec<u8> {
    let mut frame = vec![0u8; len.max(4)];
    frame[..4].copy_from_slice(&id.to_be_bytes());
    frame
}

/// The number of a frame made by [`frame`].
pub(crate) fn id_of(frame: &[u8]) -> u32 {
    u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]])
}

fn path(rate_bps: Option<u64>, delay_ms: u64) -> PathConfig {
    PathConfig {
        rate_bps,
        delay: Duration::from_millis(delay_ms),
        ..PathConfig::IDEAL
    }
}

fn driver<P: SimPeer>(seed: u64, path: PathConfig, peer: P) -> SimDriver<P> {
    SimDriver::new(Link::new(LinkConfig::symmetric(seed, path)).unwrap(), peer)
}

/// Transmits the given frames in one batch and flushes.
fn send_all<P: SimPeer>(driver: &mut SimDriver<P>, frames: &[Vec<u8>]) {
    let mut next = frames.iter();
    let queued = driver
        .transmit(frames.len(), |buf| match next.next() {
            Some(frame) => {
                buf[..frame.len()].copy_from_slice(frame);
                frame.len()
            }
            None => 0,
        })
        .unwrap();
    assert_eq!(queued, frames.len());
    driver.flush().unwrap();
}

/// The engine's loop reduced to receiving: waits and receives until `deadline`.
fn receive_until<P: SimPeer>(
    driver: &mut SimDriver<P>,
    deadline: Instant,
) -> Vec<(Instant, Vec<u8>)> {
    let mut received = Vec::new();
    for _ in 0..1_000_000 {
        let now = driver.now();
        let count = driver
            .receive(8, |frame| received.push((now, frame.to_vec())))
            .unwrap();
        if count == 0 {
            if now >= deadline {
                return received;
            }
            driver.wait(Some(deadline)).unwrap();
        }
    }
    panic!(
        "the loop did not reach {deadline}: stuck at {}",
        driver.now()
    );
}

fn sim_error(error: DriverError) -> SimError {
    match error {
        DriverError::Io { context, source } => {
            assert_eq!(context, ERROR_CONTEXT);
            source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<SimError>())
                .cloned()
                .expect("a SimError inside")
        }
        other => panic!("not a simulation error: {other}"),
    }
}

#[test]
fn echo_round_trip_takes_delay_and_serialization_both_ways() {
    // 1000 bytes at 1 Mbit/s: 8 ms to serialize, plus 10 ms of wire, each way.
    let mut sim = driver(1, path(Some(1_000_000), 10), EchoPeer::default());
    send_all(&mut sim, &[frame(7, 1000)]);
    sim.wait(None).unwrap();
    assert_eq!(sim.now(), Instant::from_millis(36));
    assert_eq!(sim.peer().arrivals, vec![(Instant::from_millis(18), 7)]);
    let mut got = Vec::new();
    assert_eq!(sim.receive(4, |f| got.push(f.to_vec())).unwrap(), 1);
    assert_eq!(got, vec![frame(7, 1000)]);
    let stats = sim.stats();
    assert_eq!((stats.tx_frames, stats.rx_frames), (1, 1));
    assert_eq!((stats.tx_bytes, stats.rx_bytes), (1000, 1000));
}

#[test]
fn rate_limits_throughput() {
    // 100 frames of 1250 bytes (10 kbit) at 10 Mbit/s: one per millisecond.
    let mut sim = driver(1, path(Some(10_000_000), 5), EchoPeer::default());
    let frames: Vec<Vec<u8>> = (0..100).map(|id| frame(id, 1250)).collect();
    send_all(&mut sim, &frames);
    let received = receive_until(&mut sim, Instant::from_millis(1000));
    let peer_times: Vec<Instant> = sim.peer().arrivals.iter().map(|(t, _)| *t).collect();
    let expected: Vec<Instant> = (0..100).map(|k| Instant::from_millis(k + 6)).collect();
    assert_eq!(peer_times, expected);
    // Back through the other transmitter: 1 ms + 5 ms more, and still one per millisecond.
    assert_eq!(received.len(), 100);
    assert_eq!(received[0].0, Instant::from_millis(12));
    assert_eq!(received[99].0, Instant::from_millis(111));
    let ids: Vec<u32> = received.iter().map(|(_, f)| id_of(f)).collect();
    assert_eq!(ids, (0..100).collect::<Vec<u32>>());
}

#[test]
fn frames_wait_for_flush() {
    let mut sim = driver(1, PathConfig::IDEAL, EchoPeer::default());
    let queued = sim
        .transmit(1, |buf| {
            buf[..4].copy_from_slice(&9u32.to_be_bytes());
            60
        })
        .unwrap();
    assert_eq!(queued, 1);
    sim.wait(Some(Instant::from_millis(5))).unwrap();
    assert!(
        sim.peer().arrivals.is_empty(),
        "nothing leaves before flush"
    );
    assert_eq!(sim.now(), Instant::from_millis(5));
    sim.flush().unwrap();
    sim.wait(Some(Instant::from_millis(10))).unwrap();
    assert_eq!(sim.peer().arrivals, vec![(Instant::from_millis(5), 9)]);
    // Zero delay: the echo is already there, so wait returned without moving the clock.
    assert_eq!(sim.now(), Instant::from_millis(5));
}

#[test]
fn peer_timers_drive_the_clock() {
    let peer = PingPeer {
        next_at: Instant::from_millis(1),
        interval: Duration::from_millis(10),
        remaining: 5,
        due: false,
        sent: 0,
    };
    let mut sim = driver(1, path(None, 2), peer);
    let received = receive_until(&mut sim, Instant::from_millis(100));
    let summary: Vec<(Instant, u32)> = received.iter().map(|(t, f)| (*t, id_of(f))).collect();
    let expected: Vec<(Instant, u32)> = (0..5)
        .map(|k| (Instant::from_millis(3 + 10 * u64::from(k)), k))
        .collect();
    assert_eq!(summary, expected);
    assert_eq!(sim.now(), Instant::from_millis(100));
    // With nothing left to happen and no deadline, the simulation says it is stuck.
    let error = sim_error(sim.wait(None).unwrap_err());
    assert_eq!(
        error,
        SimError::Stalled {
            now: Instant::from_millis(100)
        }
    );
}

#[test]
fn step_bound_stops_a_livelock() {
    let mut sim = driver(1, PathConfig::IDEAL, StuckTimerPeer).with_max_events(1000);
    let error = sim_error(sim.wait(Some(Instant::from_millis(1))).unwrap_err());
    assert!(matches!(
        error,
        SimError::StepLimit {
            max_events: 1000,
            ..
        }
    ));
    assert!(error.to_string().contains("1000 events"));
}

#[test]
fn oversized_peer_frame_is_an_error() {
    struct Liar;
    impl SimPeer for Liar {
        fn on_frame(&mut self, _now: Instant, _frame: &[u8]) {}
        fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
            Some(buf.len() + 1)
        }
        fn poll_timeout(&self) -> Option<Instant> {
            None
        }
        fn on_timeout(&mut self, _now: Instant) {}
    }
    let mut sim = driver(1, PathConfig::IDEAL, Liar).with_max_frame_len(100);
    let error = sim_error(sim.wait(None).unwrap_err());
    assert_eq!(error, SimError::PeerFrameTooLong { len: 101, max: 100 });
}

/// Sends `count` frames, one every 100 µs, and collects what comes back.
fn ping_run(
    seed: u64,
    path: PathConfig,
    count: u32,
) -> (Vec<(Instant, Vec<u8>)>, SimDriver<EchoPeer>) {
    let mut sim = driver(seed, path, EchoPeer::default());
    let mut received = Vec::new();
    for id in 0..count {
        send_all(&mut sim, &[frame(id, 100 + (id as usize % 200))]);
        let next = sim.now() + Duration::from_micros(100);
        received.extend(receive_until(&mut sim, next));
    }
    let end = sim.now() + Duration::from_secs(1);
    received.extend(receive_until(&mut sim, end));
    (received, sim)
}

#[test]
fn impairments_through_the_driver_are_close_to_configured() {
    let config = PathConfig {
        impairments: Impairments {
            loss: 0.01,
            duplicate: 0.01,
            reorder: 0.02,
            reorder_delay: Duration::from_micros(250),
            corrupt: 0.01,
        },
        ..path(Some(100_000_000), 1)
    };
    let n = 20_000;
    let (received, sim) = ping_run(3, config, n);
    for direction in [Direction::AToB, Direction::BToA] {
        let c = sim.link().counters(direction);
        // About 200 ± 14 lost, duplicated and corrupted each way; 400 ± 20 reordered.
        assert!((130..270).contains(&c.lost), "{direction:?} {c:?}");
        assert!((130..270).contains(&c.duplicated), "{direction:?} {c:?}");
        assert!((130..270).contains(&c.corrupted), "{direction:?} {c:?}");
        assert!((300..500).contains(&c.reordered), "{direction:?} {c:?}");
    }
    let a = sim.link().counters(Direction::AToB);
    let b = sim.link().counters(Direction::BToA);
    assert_eq!(b.sent, a.delivered, "the echo sent back all it got");
    assert_eq!(received.len() as u64, b.delivered);
    let ids: Vec<u32> = received.iter().map(|(_, f)| id_of(f)).collect();
    let out_of_order = ids.windows(2).filter(|pair| pair[0] > pair[1]).count();
    assert!(out_of_order > 100, "{out_of_order}");
}

#[test]
fn same_seed_same_trace() {
    let config = PathConfig {
        impairments: Impairments {
            loss: 0.03,
            duplicate: 0.03,
            reorder: 0.03,
            reorder_delay: Duration::from_micros(300),
            corrupt: 0.03,
        },
        queue_limit_packets: Some(4),
        ..path(Some(10_000_000), 1)
    };
    let (first, _) = ping_run(21, config, 2000);
    let (second, _) = ping_run(21, config, 2000);
    let (other_seed, _) = ping_run(22, config, 2000);
    assert!(!first.is_empty());
    assert_eq!(first, second);
    assert_ne!(first, other_seed);
}

/// Sends `remaining` full-size frames, one every `interval`: a paced bulk sender.
struct PacedSender {
    next_at: Instant,
    interval: Duration,
    remaining: u32,
    due: u32,
    sent: u32,
}

impl SimPeer for PacedSender {
    fn on_frame(&mut self, _now: Instant, _frame: &[u8]) {}
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.due == 0 {
            return None;
        }
        self.due -= 1;
        buf[..4].copy_from_slice(&self.sent.to_be_bytes());
        self.sent += 1;
        Some(buf.len())
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (self.remaining > 0).then_some(self.next_at)
    }
    fn on_timeout(&mut self, _now: Instant) {
        self.remaining -= 1;
        self.due += 1;
        self.next_at += self.interval;
    }
}

#[test]
fn a_64_mib_sized_run_conserves_frames() {
    // 46 000 full frames (64 MiB of payload) at 1 Gbit/s, 20 ms RTT, 1 % loss, sent 10 %
    // faster than the link drains them, so the BDP-sized queue fills and overflows too.
    let frames = 46_000;
    let config = LinkConfig::bottleneck(
        64,
        1_000_000_000,
        Duration::from_millis(20),
        Impairments::loss(0.01),
    );
    let peer = PacedSender {
        next_at: Instant::ZERO,
        interval: Duration::from_nanos(11_000),
        remaining: frames,
        due: 0,
        sent: 0,
    };
    let mut sim = SimDriver::new(Link::new(config).unwrap(), peer).with_max_events(1_000_000);
    let mut received = 0u64;
    let mut in_order = true;
    let mut last_id = None;
    for _ in 0..1_000_000 {
        let count = sim
            .receive(64, |frame| {
                let id = id_of(frame);
                in_order &= last_id.is_none_or(|last| id > last);
                last_id = Some(id);
                received += 1;
            })
            .unwrap();
        if count == 0 {
            match sim.wait(None) {
                Ok(()) => {}
                Err(error) => {
                    assert!(matches!(sim_error(error), SimError::Stalled { .. }));
                    break;
                }
            }
        }
    }
    let c = sim.link().counters(Direction::BToA);
    assert_eq!(c.sent, u64::from(frames));
    assert_eq!(c.sent, c.dropped_by_queue + c.lost + c.delivered);
    assert_eq!(received, c.delivered);
    assert!(in_order, "no reordering configured, none seen");
    // Sending at 110 % of the rate into a queue of 2.5 MB (~1650 frames): after the queue
    // fills, about one frame in eleven is dropped.
    assert!(
        c.dropped_by_queue > 2000 && c.dropped_by_queue < 4500,
        "{c:?}"
    );
    assert!(c.max_queue_packets >= 1600, "{c:?}");
    // The last frame reaches the client after the link drained everything at line rate.
    let line_rate_time = (c.sent - c.dropped_by_queue) as f64 * 1514.0 * 8.0 / 1e9;
    assert!(sim.now().total_micros() as f64 / 1e6 > line_rate_time);
    assert!(sim.events() < 200_000, "{}", sim.events());
}
