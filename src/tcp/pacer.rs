//! `--limit-rate`: the receiver paces the sender by the window it advertises.
//!
//! RFC 9293 §3.8.6 flow control says the receive window is how much the receiver will take
//! beyond RCV.NXT. A downloader that wants to take at most RATE bytes per second can say so
//! with that window instead of dropping data or reading slowly behind a socket buffer: it
//! lets the right edge of the window (RCV.NXT + RCV.WND, a stream offset) advance at RATE.
//! The sender, whatever its congestion control, can never be further ahead than the edge, so
//! over any stretch of time it delivers at most RATE × time + one burst.
//!
//! A token bucket (RFC 2697's idea, counted in bytes) decides how far the edge may go:
//! - tokens accrue at RATE, continuously (the remainder below a byte is carried, so there is
//!   no drift over a long transfer);
//! - the edge moves in steps of one *quantum*: whole multiples of
//!   max(2 full segments, RATE × 1 ms). Small steps often (RFC 9293 §3.8.6.2.2 receiver
//!   silly-window-syndrome avoidance still holds: a step is never below one segment) keep the
//!   sender busy without ever closing the window for long, so it never waits for its persist
//!   timer, let alone a retransmission timeout;
//! - the bucket holds at most `burst` bytes beyond what has arrived (200 ms at RATE, at least
//!   four quanta): a sender that fell behind (slow start, a loss recovery) may catch up that
//!   much at full speed, so the average over a transfer still comes out at RATE, but a long
//!   stall does not buy an unbounded burst afterwards;
//! - the edge never moves left (RFC 9293 §3.8.6.2.2 "SHOULD NOT shrink the window"): it only
//!   grows with tokens, and the window is edge − RCV.NXT.
//!
//! The bucket starts with one quantum, not full: the first window is small and the average
//! from the first byte on is RATE, not RATE plus a burst.
//!
//! A window of zero happens when the sender has used everything the edge allowed; the next
//! step reopens it within one quantum's time (≤ 1 ms at high rates, 2 segments' time at low
//! ones), and [`crate::tcp::Connection::set_receive_window`] sends the window update at once
//! when the window reopens by a segment. Only if that update is lost does the sender's
//! persist timer fetch the window (RFC 9293 §3.8.6.1); nothing is ever dropped.
//!
//! Sans-IO, like the rest of `tcp/`: [`Pacer::poll`] takes `now` and the bytes received in
//! order and answers the window and when to ask again.
//!
//! Calling order (the engine, once per loop turn, before `poll_transmit`):
//! ```text
//! let pace = pacer.poll(now, connection.received_in_order());
//! connection.set_receive_window(pace.window.min(what the sink can take));
//! deadline = deadline.min(pace.next_poll);
//! ```

use core::time::Duration;

use crate::time::Instant;

/// Microseconds per second, for token arithmetic in byte·µs.
const MICROS: u128 = 1_000_000;

/// How long the bucket may save up tokens at RATE (the catch-up burst).
const BURST_TIME_MICROS: u64 = 200_000;

/// The time one quantum of window takes at RATE, unless two segments take longer.
const QUANTUM_TIME_MICROS: u64 = 1_000;

/// What the receiver advertises now and when the pacer next has something to add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Bytes beyond RCV.NXT the sender may send (for `Connection::set_receive_window`).
    pub window: usize,
    /// When the window opens by the next quantum: poll again then.
    pub next_poll: Instant,
}

/// A token bucket that sets the receive window's right edge. See the module documentation.
#[derive(Clone, Debug)]
pub struct Pacer {
    bytes_per_second: u64,
    quantum: u64,
    burst: u64,
    /// The right edge of the window, as a stream offset. `None` before the first poll.
    edge: Option<u64>,
    /// Whole bytes of tokens not yet added to the edge (less than a quantum unless the
    /// bucket is capped), and the fraction of a byte in byte·µs.
    tokens: u64,
    fraction: u128,
    last_poll: Instant,
    /// The bucket was not full at the last poll: the sender was held back.
    held_back: bool,
    window_limited: Duration,
}

impl Pacer {
    /// A pacer for `bytes_per_second` (> 0) on a connection whose full segments carry
    /// `mss` payload bytes.
    pub fn new(bytes_per_second: u64, mss: usize) -> Pacer {
        let bytes_per_second = bytes_per_second.max(1);
        let mss = (mss as u64).max(1);
        let per_millisecond = bytes_per_second * QUANTUM_TIME_MICROS / 1_000_000;
        let quantum = per_millisecond.max(2 * mss);
        let burst = (bytes_per_second * BURST_TIME_MICROS / 1_000_000).max(4 * quantum);
        Pacer {
            bytes_per_second,
            quantum,
            burst,
            edge: None,
            tokens: 0,
            fraction: 0,
            last_poll: Instant::ZERO,
            held_back: false,
            window_limited: Duration::ZERO,
        }
    }

    /// The rate in bytes per second.
    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// The step in bytes by which the window's edge moves.
    pub fn quantum(&self) -> u64 {
        self.quantum
    }

    /// How much the bucket saves up at most beyond what has arrived.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Time during which the bucket was not full, so the window the sender waited for, not
    /// the sender or the path, set the pace (`--stats`: "window-limited").
    pub fn window_limited(&self) -> Duration {
        self.window_limited
    }

    /// Adds the tokens accrued since the last poll, moves the edge by whole quanta, and
    /// answers the window beyond `received_in_order` and when to poll again. `now` must not
    /// go backwards; `received_in_order` (RCV.NXT as a stream offset) must not either.
    pub fn poll(&mut self, now: Instant, received_in_order: u64) -> Pace {
        let edge = match self.edge {
            None => {
                self.last_poll = now;
                received_in_order + self.quantum
            }
            Some(edge) => {
                let elapsed = now.saturating_duration_since(self.last_poll);
                if self.held_back {
                    self.window_limited += elapsed;
                }
                self.last_poll = now;
                self.accrue(elapsed);
                // The bucket is full: unspent window plus tokens reach the burst.
                let cap = (received_in_order + self.burst).saturating_sub(edge);
                if self.tokens >= cap {
                    self.tokens = cap;
                    self.fraction = 0;
                }
                let steps = self.tokens / self.quantum;
                self.tokens -= steps * self.quantum;
                edge + steps * self.quantum
            }
        };
        self.edge = Some(edge);
        let window = edge.saturating_sub(received_in_order);
        // The bucket is not full: the sender took the window as fast as it opened, so the
        // pacer, not the sender or the path, set the pace until the next poll.
        self.held_back = edge + self.tokens < received_in_order + self.burst;
        Pace {
            window: usize::try_from(window).unwrap_or(usize::MAX),
            next_poll: now + self.time_to_next_quantum(),
        }
    }

    fn accrue(&mut self, elapsed: Duration) {
        let byte_micros = self.fraction + u128::from(self.bytes_per_second) * elapsed.as_micros();
        let whole = byte_micros / MICROS;
        self.fraction = byte_micros % MICROS;
        self.tokens = self
            .tokens
            .saturating_add(u64::try_from(whole).unwrap_or(u64::MAX));
    }

    /// Time until the tokens make up one more quantum (at least 1 µs, so a caller's loop
    /// always moves forward).
    fn time_to_next_quantum(&self) -> Duration {
        let missing = self.quantum.saturating_sub(self.tokens);
        let byte_micros = (u128::from(missing) * MICROS).saturating_sub(self.fraction);
        let micros = byte_micros.div_ceil(u128::from(self.bytes_per_second));
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1448;

    #[test]
    fn sizes_follow_the_rate() {
        // 20 MiB/s: a quantum is one millisecond of data, the burst 200 ms.
        let fast = Pacer::new(20 << 20, MSS);
        assert_eq!(fast.quantum(), (20 << 20) / 1000);
        assert_eq!(fast.burst(), (20 << 20) / 5);
        // 10 KiB/s: a millisecond is 10 bytes, so two segments; four quanta of burst.
        let slow = Pacer::new(10 << 10, MSS);
        assert_eq!(slow.quantum(), 2 * MSS as u64);
        assert_eq!(slow.burst(), 8 * MSS as u64);
    }

    #[test]
    fn the_first_window_is_one_quantum_beyond_what_arrived() {
        let mut pacer = Pacer::new(1 << 20, MSS);
        let pace = pacer.poll(Instant::from_millis(5), 300);
        assert_eq!(pace.window as u64, pacer.quantum());
        // The next quantum is a quantum's worth of time away (2 896 bytes at 1 MiB/s).
        let expect = (pacer.quantum() as u128 * MICROS).div_ceil(1 << 20) as u64;
        assert_eq!(
            pace.next_poll,
            Instant::from_millis(5) + Duration::from_micros(expect)
        );
    }

    #[test]
    fn the_edge_moves_in_whole_quanta_at_the_rate() {
        let rate = 1_000_000; // 1 MB/s: a quantum of 2 896 bytes every 2.896 ms
        let mut pacer = Pacer::new(rate, MSS);
        let quantum = pacer.quantum();
        let first = pacer.poll(Instant::ZERO, 0);
        assert_eq!(first.window as u64, quantum);
        // Just before the next quantum: no change.
        let before = pacer.poll(Instant::from_micros(first.next_poll.total_micros() - 1), 0);
        assert_eq!(before.window as u64, quantum);
        assert_eq!(before.next_poll, first.next_poll);
        // At it: one more quantum.
        let at = pacer.poll(first.next_poll, 0);
        assert_eq!(at.window as u64, 2 * quantum);
        // Polled every millisecond by a sender that takes everything: one second later the
        // edge is one second of rate further, to within a quantum.
        let mut greedy = Pacer::new(rate, MSS);
        let mut received = 0;
        let mut edge = 0;
        for millis in 0..=1000 {
            let pace = greedy.poll(Instant::from_millis(millis), received);
            edge = received + pace.window as u64;
            received = edge;
        }
        let expected = quantum + rate;
        assert!(edge <= expected && edge + quantum > expected, "{edge}");
    }

    #[test]
    fn no_drift_over_many_small_polls() {
        // Polled every 7 µs for 10 s at 3 333 333 B/s: the carried fraction makes the edge
        // exactly what one poll at the end would make (within one quantum of rounding).
        let rate = 3_333_333;
        let mut often = Pacer::new(rate, MSS);
        let mut once = Pacer::new(rate, MSS);
        let mut received = 0u64;
        often.poll(Instant::ZERO, 0);
        once.poll(Instant::ZERO, 0);
        let mut now = Instant::ZERO;
        let mut edge = 0;
        for _ in 0..(10_000_000 / 7) {
            now += Duration::from_micros(7);
            let pace = often.poll(now, received);
            edge = received + pace.window as u64;
            // A sender that takes everything it may, so the bucket is never capped.
            received = edge;
        }
        let expected = once.quantum() + rate * now.total_micros() / 1_000_000;
        assert!(
            edge <= expected && edge + once.quantum() > expected,
            "{edge} vs {expected}"
        );
    }

    #[test]
    fn the_edge_never_moves_left_and_the_bucket_caps_a_stall() {
        let rate = 10 << 20;
        let mut pacer = Pacer::new(rate, MSS);
        let mut edge = 0;
        pacer.poll(Instant::ZERO, 0);
        // Nothing arrives for 5 s: the window grows to the burst and no further.
        for millis in 1..=5000 {
            let pace = pacer.poll(Instant::from_millis(millis), 0);
            assert!(pace.window as u64 >= edge, "edge moved left at {millis} ms");
            edge = pace.window as u64;
        }
        assert!(edge <= pacer.burst(), "{edge} > burst {}", pacer.burst());
        assert!(edge + pacer.quantum() > pacer.burst());
        // Nothing arrived, so the sender, not the pacer, was the limit once the bucket was
        // full: only the 200 ms of filling it count as window-limited.
        let filling = Duration::from_micros(BURST_TIME_MICROS);
        assert!(pacer.window_limited() <= filling + Duration::from_millis(2));
        assert!(pacer.window_limited() + Duration::from_millis(2) >= filling);
        // Data arrives: the edge stays, the window shrinks by what arrived (not the edge).
        let pace = pacer.poll(Instant::from_millis(5000), 1000);
        assert_eq!(pace.window as u64, edge - 1000);
    }

    #[test]
    fn a_sender_that_used_the_window_is_counted_as_held_back() {
        let mut pacer = Pacer::new(1 << 20, MSS);
        let pace = pacer.poll(Instant::ZERO, 0);
        // Everything allowed arrived at once: window 0 until the next quantum.
        let received = pace.window as u64;
        let closed = pacer.poll(Instant::from_micros(100), received);
        assert_eq!(closed.window, 0);
        let reopened = pacer.poll(closed.next_poll, received);
        assert_eq!(reopened.window as u64, pacer.quantum());
        // The bucket was never full: all of it was the pacer's pace.
        assert_eq!(
            pacer.window_limited(),
            closed.next_poll.saturating_duration_since(Instant::ZERO)
        );
    }
}
