//! `sim` — a simulated network in virtual time: the client's [`Driver`] at one end of a
//! [`Link`], a [`SimPeer`] at the other. Only packet I/O lives here; the simulator's HTTP
//! server is a host of the engine (`engine::sim_server`) plugged in as the peer.
//!
//! ```text
//!   engine ◄──► SimDriver (end A) ◄══ Link: rate, delay, queue, loss, … ══► SimPeer (end B)
//! ```
//!
//! Nothing here waits for real time. [`SimDriver::wait`] jumps the clock straight to the next
//! thing that can happen — a frame arriving at either end, the peer's timer, or the caller's
//! deadline — and runs the peer on the way. A simulated minute of a 1 Gbit/s transfer takes
//! as long as the CPU needs to process its packets, and a run with the same seed is the same
//! run, packet for packet: a failure found once can be replayed and debugged.
//!
//! Putting one together (what `xdpget sim --rate 1Gbit --rtt 20ms --loss 1%` does):
//!
//! ```text
//! let impairments = Impairments::loss(parse_percent("1%")?);
//! let config = LinkConfig::bottleneck(seed, parse_rate("1Gbit")?, parse_duration("20ms")?, impairments);
//! let driver = SimDriver::new(Link::new(config)?, server_peer);
//! // optionally: PcapDriver::new(driver, PcapWriter::new(BufWriter::new(file))?)
//! // then run the engine loop on it; driver.link().counters(Direction::AToB) afterwards.
//! ```
//!
//! A step bound stops a simulation that does not converge (two ends ping-ponging forever, a
//! timer that never stops firing): after `max_events` events `wait` returns an error instead
//! of looping. It also errors when nothing can ever happen again (no frame in flight, no
//! timer and no deadline), which in a real network would be a hang.

pub mod content;
pub mod impair;
pub mod link;
pub mod units;

use std::collections::VecDeque;

pub use impair::{ImpairmentError, Impairments};
pub use link::{Direction, Link, LinkConfig, LinkCounters, PathConfig, SendOutcome};
pub use units::{UnitError, parse_duration, parse_percent, parse_rate, parse_size};

use super::{Driver, DriverError, DriverStats};
use crate::time::Instant;
use link::FramePool;

/// The far end of the simulated link, driven in virtual time (sans-IO, like the engine).
///
/// Calling order, whenever the simulated clock reaches `now`: `on_frame` for each frame that
/// arrived, `on_timeout` if `poll_timeout()` has passed, then `poll_transmit` until it
/// returns `None`.
pub trait SimPeer {
    /// A frame (a whole Ethernet frame) arrived from the client.
    fn on_frame(&mut self, now: Instant, frame: &[u8]);
    /// Writes the next frame to send into `buf` and returns its length, or `None`.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize>;
    /// When the peer next needs `on_timeout`, if ever.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The instant from `poll_timeout` has come.
    fn on_timeout(&mut self, now: Instant);
}

impl<P: SimPeer + ?Sized> SimPeer for Box<P> {
    fn on_frame(&mut self, now: Instant, frame: &[u8]) {
        (**self).on_frame(now, frame);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        (**self).poll_transmit(now, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn on_timeout(&mut self, now: Instant) {
        (**self).on_timeout(now);
    }
}

/// The context of the [`DriverError::Io`] that carries a [`SimError`].
pub const ERROR_CONTEXT: &str = "simulated network";

/// Why a simulation stopped. Reaches the engine wrapped in [`DriverError::Io`] (context
/// [`ERROR_CONTEXT`]); `source.get_ref()` downcasts back to this type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("the simulation reached its bound of {max_events} events at {now} without finishing")]
    StepLimit { max_events: u64, now: Instant },
    #[error("the simulation is stuck at {now}: no frame in flight, no peer timer and no deadline")]
    Stalled { now: Instant },
    #[error("the simulated peer wrote a {len}-byte frame into a {max}-byte buffer")]
    PeerFrameTooLong { len: usize, max: usize },
}

impl From<SimError> for DriverError {
    fn from(error: SimError) -> DriverError {
        DriverError::Io {
            context: ERROR_CONTEXT,
            source: std::io::Error::other(error),
        }
    }
}

/// The client end (A) of a simulated link, with `P` at the far end (B).
pub struct SimDriver<P: SimPeer> {
    link: Link,
    peer: P,
    now: Instant,
    stats: DriverStats,
    max_frame_len: usize,
    max_events: u64,
    events: u64,
    /// Frames the client queued with `transmit`, sent into the link at `flush`.
    pending: VecDeque<Vec<u8>>,
    pool: FramePool,
    /// Where the peer writes its frames.
    peer_buffer: Vec<u8>,
}

impl<P: SimPeer> SimDriver<P> {
    /// Ethernet header + 1500-byte MTU.
    pub const DEFAULT_MAX_FRAME_LEN: usize = 1514;
    /// Enough for a transfer of several GiB; far more than any test needs.
    pub const DEFAULT_MAX_EVENTS: u64 = 100_000_000;

    /// A simulation at time zero of `link` with `peer` at end B.
    pub fn new(link: Link, peer: P) -> SimDriver<P> {
        SimDriver {
            link,
            peer,
            now: Instant::ZERO,
            stats: DriverStats::default(),
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
            max_events: Self::DEFAULT_MAX_EVENTS,
            events: 0,
            pending: VecDeque::new(),
            pool: FramePool::default(),
            peer_buffer: vec![0; Self::DEFAULT_MAX_FRAME_LEN],
        }
    }

    /// Sets the largest frame either end may send (both ends' MTU + 14).
    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> SimDriver<P> {
        self.max_frame_len = max_frame_len;
        self.peer_buffer = vec![0; max_frame_len];
        self
    }

    /// Sets the step bound: how many events `wait` may process in the driver's lifetime.
    pub fn with_max_events(mut self, max_events: u64) -> SimDriver<P> {
        self.max_events = max_events;
        self
    }

    /// The link, for its counters.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The peer.
    pub fn peer(&self) -> &P {
        &self.peer
    }

    /// The peer, mutably.
    pub fn peer_mut(&mut self) -> &mut P {
        &mut self.peer
    }

    /// Events processed so far (time jumps and frames in and out of the peer).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Takes the simulation apart.
    pub fn into_parts(self) -> (Link, P) {
        (self.link, self.peer)
    }

    fn count_event(&mut self) -> Result<(), SimError> {
        self.events += 1;
        if self.events > self.max_events {
            return Err(SimError::StepLimit {
                max_events: self.max_events,
                now: self.now,
            });
        }
        Ok(())
    }

    /// Lets the peer act at `self.now`: frames that reached it, its timer, its transmissions.
    fn run_peer(&mut self) -> Result<(), SimError> {
        let now = self.now;
        loop {
            let Some(frame) = self.link.pop_delivered(now, Direction::AToB) else {
                break;
            };
            self.peer.on_frame(now, &frame);
            drop(frame);
            self.count_event()?;
        }
        if self.peer.poll_timeout().is_some_and(|at| at <= now) {
            self.peer.on_timeout(now);
            self.count_event()?;
        }
        while let Some(len) = self.peer.poll_transmit(now, &mut self.peer_buffer) {
            let frame = self
                .peer_buffer
                .get(..len)
                .ok_or(SimError::PeerFrameTooLong {
                    len,
                    max: self.peer_buffer.len(),
                })?;
            self.link.send(now, Direction::BToA, frame);
            self.count_event()?;
        }
        Ok(())
    }

    /// `wait` without the wrapping of errors.
    fn advance(&mut self, deadline: Option<Instant>) -> Result<(), SimError> {
        loop {
            self.run_peer()?;
            let arrived = self
                .link
                .next_delivery_towards(Direction::BToA)
                .is_some_and(|at| at <= self.now);
            if arrived || deadline.is_some_and(|at| at <= self.now) {
                return Ok(());
            }
            let next = [
                deadline,
                self.link.next_delivery(),
                self.peer.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min()
            .ok_or(SimError::Stalled { now: self.now })?;
            self.count_event()?;
            // A peer timer already in the past is served at `now`, never by going back.
            self.now = self.now.max(next);
        }
    }
}

impl<P: SimPeer> Driver for SimDriver<P> {
    fn now(&self) -> Instant {
        self.now
    }

    fn receive<F: FnMut(&[u8])>(&mut self, max: usize, mut f: F) -> Result<usize, DriverError> {
        let mut received = 0;
        while received < max {
            let Some(frame) = self.link.pop_delivered(self.now, Direction::BToA) else {
                break;
            };
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += frame.len() as u64;
            f(&frame);
            received += 1;
        }
        Ok(received)
    }

    fn transmit<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        mut f: F,
    ) -> Result<usize, DriverError> {
        let mut queued = 0;
        while queued < max {
            let mut buffer = self.pool.take();
            buffer.resize(self.max_frame_len, 0);
            let len = f(&mut buffer);
            if len == 0 || len > self.max_frame_len {
                self.stats.tx_dropped += u64::from(len > self.max_frame_len);
                self.pool.give(buffer);
                break;
            }
            buffer.truncate(len);
            self.pending.push_back(buffer);
            queued += 1;
        }
        Ok(queued)
    }

    fn flush(&mut self) -> Result<(), DriverError> {
        while let Some(frame) = self.pending.pop_front() {
            self.stats.tx_frames += 1;
            self.stats.tx_bytes += frame.len() as u64;
            self.link.send(self.now, Direction::AToB, &frame);
            self.pool.give(frame);
        }
        Ok(())
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DriverError> {
        self.stats.idle_waits += 1;
        Ok(self.advance(deadline)?)
    }

    fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    fn stats(&self) -> DriverStats {
        self.stats
    }
}

#[cfg(test)]
pub(crate) mod tests;
