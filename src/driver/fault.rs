//! A fault injector: any driver, with seeded loss, duplication, reordering and corruption on
//! the frames it receives and transmits.
//!
//! The simulator's link impairs frames in virtual time; this wrapper brings the same
//! impairments (the same [`Impairer`], so "1 % loss" means the same thing) to a real NIC or
//! veth pair, where the kernel network is perfect and the interesting cases never happen by
//! themselves. The TCP engine then has to prove, on real packets, that it survives a lost
//! SYN-ACK, a duplicated segment, a segment overtaken by later ones, or a flipped bit that
//! only the checksum can catch. See [`crate::driver::sim::impair`] for what each impairment
//! models.
//!
//! Reordering holds a frame back for `reorder_delay` on the driver's own clock; held frames
//! are released by later `receive`/`transmit`/`flush` calls, and `wait` never sleeps past the
//! next release. Frames handed out by the wrapper are counted in [`FaultCounters`]; the inner
//! driver's [`DriverStats`] stay those of the real device.

use std::collections::VecDeque;

use super::sim::impair::{ImpairCounters, Impairer, ImpairmentError, Impairments};
use super::sim::link::FramePool;
use super::{Driver, DriverError, DriverStats};
use crate::time::Instant;

/// The settings of a [`FaultInjector`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// The one seed both directions' decisions derive from.
    pub seed: u64,
    /// Impairments of frames coming up from the inner driver.
    pub receive: Impairments,
    /// Impairments of frames going down to the inner driver.
    pub transmit: Impairments,
}

/// What the injector did, per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounters {
    pub receive: ImpairCounters,
    pub transmit: ImpairCounters,
    /// Frames the inner driver had no transmit buffer for (they are dropped).
    pub transmit_refused: u64,
}

/// A frame held back until `release`.
#[derive(Debug)]
struct Held {
    release: Instant,
    frame: Vec<u8>,
}

/// `D` with seeded faults on both directions.
#[derive(Debug)]
pub struct FaultInjector<D: Driver> {
    inner: D,
    receive_impairer: Impairer,
    transmit_impairer: Impairer,
    pool: FramePool,
    /// Received frames due now: duplicates and released reordered frames.
    receive_ready: VecDeque<Vec<u8>>,
    /// Received frames held back, in release order (the hold time is constant).
    receive_held: VecDeque<Held>,
    transmit_held: VecDeque<Held>,
    transmit_refused: u64,
}

impl<D: Driver> FaultInjector<D> {
    /// Wraps `inner`; fails if a probability is not in `0..=1`.
    pub fn new(inner: D, config: FaultConfig) -> Result<FaultInjector<D>, ImpairmentError> {
        Ok(FaultInjector {
            inner,
            receive_impairer: Impairer::new(config.receive, config.seed, 0)?,
            transmit_impairer: Impairer::new(config.transmit, config.seed, 1)?,
            pool: FramePool::default(),
            receive_ready: VecDeque::new(),
            receive_held: VecDeque::new(),
            transmit_held: VecDeque::new(),
            transmit_refused: 0,
        })
    }

    /// The wrapped driver.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped driver, mutably.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Unwraps the driver; frames still held are dropped.
    pub fn into_inner(self) -> D {
        self.inner
    }

    /// What the injector did so far.
    pub fn counters(&self) -> FaultCounters {
        FaultCounters {
            receive: self.receive_impairer.counters(),
            transmit: self.transmit_impairer.counters(),
            transmit_refused: self.transmit_refused,
        }
    }

    /// Moves received frames whose hold time is over to the ready queue.
    fn release_received(&mut self, now: Instant) {
        while self
            .receive_held
            .front()
            .is_some_and(|held| held.release <= now)
        {
            if let Some(held) = self.receive_held.pop_front() {
                self.receive_ready.push_back(held.frame);
            }
        }
    }

    /// Hands `frame` to the inner driver's transmit ring; counts a refusal.
    fn send_down(&mut self, frame: &[u8]) -> Result<(), DriverError> {
        let mut pending = Some(frame);
        let queued = self.inner.transmit(1, |buf| match pending.take() {
            Some(frame) if frame.len() <= buf.len() => {
                buf[..frame.len()].copy_from_slice(frame);
                frame.len()
            }
            _ => 0,
        })?;
        if queued == 0 {
            self.transmit_refused += 1;
        }
        Ok(())
    }

    /// Sends transmitted frames whose hold time is over.
    fn release_transmitted(&mut self, now: Instant) -> Result<(), DriverError> {
        while self
            .transmit_held
            .front()
            .is_some_and(|held| held.release <= now)
        {
            if let Some(held) = self.transmit_held.pop_front() {
                let result = self.send_down(&held.frame);
                self.pool.give(held.frame);
                result?;
            }
        }
        Ok(())
    }
}

impl<D: Driver> Driver for FaultInjector<D> {
    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn receive<F: FnMut(&[u8])>(&mut self, max: usize, mut f: F) -> Result<usize, DriverError> {
        let now = self.inner.now();
        self.release_received(now);
        let mut handed = 0;
        while handed < max {
            let Some(frame) = self.receive_ready.pop_front() else {
                break;
            };
            f(&frame);
            self.pool.give(frame);
            handed += 1;
        }
        if handed < max {
            let budget = max - handed;
            let impairer = &mut self.receive_impairer;
            let pool = &mut self.pool;
            let (ready, held) = (&mut self.receive_ready, &mut self.receive_held);
            self.inner.receive(budget, |frame| {
                let fate = impairer.roll();
                if fate.lost {
                    return;
                }
                let mut copy = None;
                if fate.duplicated {
                    // The duplicate is pristine and comes right after the original.
                    ready.push_back(pool.take_copy(frame));
                }
                if fate.corrupt.is_some() || fate.reordered {
                    let mut buffer = pool.take_copy(frame);
                    impairer.apply_corruption(&fate, &mut buffer);
                    copy = Some(buffer);
                }
                match (copy, fate.reordered) {
                    (Some(buffer), true) => held.push_back(Held {
                        release: now + impairer.reorder_delay(),
                        frame: buffer,
                    }),
                    (Some(buffer), false) => {
                        f(&buffer);
                        handed += 1;
                        pool.give(buffer);
                    }
                    (None, _) => {
                        f(frame);
                        handed += 1;
                    }
                }
            })?;
        }
        while handed < max {
            let Some(frame) = self.receive_ready.pop_front() else {
                break;
            };
            f(&frame);
            self.pool.give(frame);
            handed += 1;
        }
        Ok(handed)
    }

    fn transmit<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        mut f: F,
    ) -> Result<usize, DriverError> {
        let now = self.inner.now();
        self.release_transmitted(now)?;
        let max_frame_len = self.inner.max_frame_len();
        let mut queued = 0;
        while queued < max {
            let mut buffer = self.pool.take();
            buffer.resize(max_frame_len, 0);
            let len = f(&mut buffer);
            if len == 0 || len > max_frame_len {
                self.pool.give(buffer);
                break;
            }
            buffer.truncate(len);
            queued += 1;
            let fate = self.transmit_impairer.roll();
            if fate.lost {
                self.pool.give(buffer);
                continue;
            }
            if fate.duplicated {
                self.send_down(&buffer)?;
            }
            self.transmit_impairer.apply_corruption(&fate, &mut buffer);
            if fate.reordered {
                self.transmit_held.push_back(Held {
                    release: now + self.transmit_impairer.reorder_delay(),
                    frame: buffer,
                });
                continue;
            }
            let result = self.send_down(&buffer);
            self.pool.give(buffer);
            result?;
        }
        Ok(queued)
    }

    fn flush(&mut self) -> Result<(), DriverError> {
        let now = self.inner.now();
        self.release_transmitted(now)?;
        self.inner.flush()
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DriverError> {
        let now = self.inner.now();
        // Held transmissions that are due leave now, so that none of them is in the past
        // when the deadline below is computed (waiting for it would return at once, forever).
        if self
            .transmit_held
            .front()
            .is_some_and(|held| held.release <= now)
        {
            self.release_transmitted(now)?;
            self.inner.flush()?;
        }
        self.release_received(now);
        if !self.receive_ready.is_empty() {
            return Ok(());
        }
        let next_release = [self.receive_held.front(), self.transmit_held.front()]
            .into_iter()
            .flatten()
            .map(|held| held.release)
            .min();
        let deadline = [deadline, next_release].into_iter().flatten().min();
        self.inner.wait(deadline)
    }

    fn max_frame_len(&self) -> usize {
        self.inner.max_frame_len()
    }

    fn stats(&self) -> DriverStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::sim::tests::{EchoPeer as Echo, frame as sim_frame, id_of};
    use crate::driver::sim::{Link, LinkConfig, PathConfig, SimDriver};
    use core::time::Duration;

    /// The test frames are 80 bytes long.
    fn frame(id: u32) -> Vec<u8> {
        sim_frame(id, 80)
    }

    /// A clean simulated link (1 ms each way) under the injector.
    fn injector(config: FaultConfig) -> FaultInjector<SimDriver<Echo>> {
        let path = PathConfig {
            delay: Duration::from_millis(1),
            ..PathConfig::IDEAL
        };
        let link = Link::new(LinkConfig::symmetric(0, path)).unwrap();
        FaultInjector::new(SimDriver::new(link, Echo::default()), config).unwrap()
    }

    /// The engine loop without an engine: receive, flush, wait, until `until`.
    fn pump_until(
        driver: &mut FaultInjector<SimDriver<Echo>>,
        until: Instant,
        back: &mut Vec<Vec<u8>>,
    ) {
        for _ in 0..10_000 {
            let received = driver.receive(8, |f| back.push(f.to_vec())).unwrap();
            driver.flush().unwrap();
            if received == 0 {
                if driver.now() >= until {
                    return;
                }
                driver.wait(Some(until)).unwrap();
            }
        }
        panic!("the loop did not reach {until}: stuck at {}", driver.now());
    }

    /// Sends `count` frames 100 µs apart and returns (what the peer got, what came back).
    fn run(config: FaultConfig, count: u32) -> (Vec<u32>, Vec<Vec<u8>>, FaultCounters) {
        let mut driver = injector(config);
        let mut back = Vec::new();
        for id in 0..count {
            let mut pending = Some(frame(id));
            let queued = driver
                .transmit(4, |buf| match pending.take() {
                    Some(f) => {
                        buf[..f.len()].copy_from_slice(&f);
                        f.len()
                    }
                    None => 0,
                })
                .unwrap();
            assert_eq!(queued, 1);
            driver.flush().unwrap();
            let until = driver.now() + Duration::from_micros(100);
            pump_until(&mut driver, until, &mut back);
        }
        // Drain: let every held frame out.
        let until = driver.now() + Duration::from_millis(50);
        pump_until(&mut driver, until, &mut back);
        let counters = driver.counters();
        let (_, peer) = driver.into_inner().into_parts();
        let got = peer.arrivals.iter().map(|&(_, id)| id).collect();
        (got, back, counters)
    }

    #[test]
    fn clean_injector_changes_nothing() {
        let (got, back, counters) = run(FaultConfig::default(), 100);
        assert_eq!(got, (0..100).collect::<Vec<u32>>());
        assert_eq!(back, (0..100).map(frame).collect::<Vec<_>>());
        assert_eq!(counters.receive.frames, 100);
        assert_eq!(counters.transmit.frames, 100);
    }

    #[test]
    fn transmit_faults_reach_the_wire() {
        let config = FaultConfig {
            seed: 1,
            transmit: Impairments {
                loss: 0.05,
                duplicate: 0.05,
                reorder: 0.05,
                reorder_delay: Duration::from_micros(350),
                corrupt: 0.0,
            },
            ..FaultConfig::default()
        };
        let (got, _, counters) = run(config, 4000);
        let c = counters.transmit;
        // About 200 ± 14 of each.
        assert!((140..260).contains(&c.lost), "{c:?}");
        assert!((140..260).contains(&c.duplicated), "{c:?}");
        assert!((140..260).contains(&c.reordered), "{c:?}");
        assert_eq!(got.len() as u64, 4000 - c.lost + c.duplicated);
        let overtaken = got.windows(2).filter(|pair| pair[0] > pair[1]).count();
        assert!(overtaken as u64 >= c.reordered / 2, "{overtaken}");
        assert_eq!(counters.transmit_refused, 0);
    }

    #[test]
    fn receive_faults_reach_the_caller() {
        let config = FaultConfig {
            seed: 2,
            receive: Impairments {
                loss: 0.05,
                duplicate: 0.05,
                reorder: 0.05,
                reorder_delay: Duration::from_micros(350),
                corrupt: 0.05,
            },
            ..FaultConfig::default()
        };
        let (got, back, counters) = run(config, 4000);
        assert_eq!(got, (0..4000).collect::<Vec<u32>>(), "transmit was clean");
        let c = counters.receive;
        assert!((140..260).contains(&c.lost), "{c:?}");
        assert!((140..260).contains(&c.duplicated), "{c:?}");
        assert!((140..260).contains(&c.reordered), "{c:?}");
        assert!((130..260).contains(&c.corrupted), "{c:?}");
        assert_eq!(back.len() as u64, 4000 - c.lost + c.duplicated);
        let damaged = back.iter().filter(|f| **f != frame(id_of(f))).count();
        assert_eq!(damaged as u64, c.corrupted);
        let ids: Vec<u32> = back.iter().map(|f| id_of(f)).collect();
        assert!(ids.windows(2).any(|pair| pair[0] > pair[1]));
    }

    #[test]
    fn same_seed_same_faults() {
        let config = |seed| FaultConfig {
            seed,
            receive: Impairments {
                loss: 0.1,
                reorder: 0.1,
                reorder_delay: Duration::from_micros(250),
                ..Impairments::NONE
            },
            transmit: Impairments {
                duplicate: 0.1,
                corrupt: 0.1,
                ..Impairments::NONE
            },
        };
        assert_eq!(run(config(9), 500), run(config(9), 500));
        assert_ne!(run(config(9), 500).1, run(config(10), 500).1);
    }
}
