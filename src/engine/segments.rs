//! The segment planner of `-x N`: which byte range of one file each connection fetches.
//!
//! Sans-IO like the protocol cores: it opens nothing and reads no clock. The host tells it
//! what happened ([`SegmentPlanner::on_progress`], [`SegmentPlanner::on_failed`]) and asks
//! what to do ([`SegmentPlanner::poll_action`]), passing the time in as an [`Instant`].
//!
//! The split follows the best of the anchors (axel's, aria2's):
//! 1. **Start with N ranges over the missing bytes.** The bytes still missing (all of them, or
//!    the holes `-c` found) are cut into pieces of about `missing / N` (at least the minimum
//!    piece, 1 MiB), lowest first, never across a finished range; a remainder smaller than
//!    the minimum stays with its piece. Pieces beyond the first N wait in a pool.
//! 2. **A connection that finishes takes more work**: the lowest waiting piece if there is
//!    one, else half of the largest range still being fetched, the half at the end, so its
//!    owner keeps going undisturbed up to the new end ([`Action::Shorten`]). Only if that
//!    half is at least the minimum piece; otherwise the connection is done
//!    ([`Action::Release`]).
//! 3. **A connection that stays far slower than the others gives up.** Each connection's rate
//!    is measured over windows of 2 s; one whose last window's rate is below a quarter of the
//!    median of the others' gives the rest of its range back to the pool and is restarted
//!    ([`Action::Restart`]): the host closes it and opens a new connection, which the next
//!    [`Action::Fetch`] for the same id sends to the lowest waiting piece.
//! 4. **At the end, a stalled range moves to a new connection.** Once nothing is left to
//!    hand out (the pool is empty and no range is worth halving) and a connection is idle,
//!    a range whose progress has stopped for [`SegmentConfig::stall`] (at least; twice its
//!    longest recent gap between progress if that is longer) is given up and fetched again
//!    on a new connection. Such a stall is a loss at the tail of a connection's flight, which
//!    the server repairs only by its retransmission timer (200 ms at least on Linux): the
//!    whole download would wait for it while the other connections sit idle.
//!
//! The plan never hands out a byte twice, except after a give-up or a failure (the old
//! connection may still deliver some of what the new one fetches; both carry the same bytes,
//! which `If-Range` guarantees, and the sink takes repeats). At every moment the finished
//! bytes, the pool and the ranges being fetched are disjoint and together are the whole file;
//! the tests check that after every step of random runs.
//!
//! A connection reports progress as the end of what it has received without a gap from the
//! start of its range (its exchange's contiguous body, plus the range's start). Progress
//! past a shortened end counts only up to that end.

use std::collections::VecDeque;
use std::time::Duration;

use crate::ranges::RangeSet;
use crate::time::Instant;

/// The most connections one download uses (`-x 16`, as aria2's limit).
pub const MAX_CONNECTIONS: usize = 16;

/// The smallest piece worth a connection of its own: 1 MiB, as axel and aria2.
pub const MIN_PIECE: u64 = 1024 * 1024;

/// Rule 4's least stall: far above the gaps of a connection that is moving (a round trip,
/// or a loss repaired by fast retransmit or a loss probe), far below the 200 ms of Linux's
/// shortest retransmission timeout.
pub const STALL: Duration = Duration::from_millis(20);

/// One connection of a segmented download: an index from 0 to N - 1. After a
/// [`Action::Restart`] the same id names the new connection that replaces the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub usize);

/// What the host should do next; from [`SegmentPlanner::poll_action`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fetch bytes `start..end` on `connection` (opening it if it is not open, or reusing it
    /// after its previous range finished): `Range: bytes=start-(end-1)` with `If-Range`.
    Fetch {
        connection: ConnectionId,
        start: u64,
        end: u64,
    },
    /// `connection`'s range now ends at `end`; another connection fetches the rest. Stop
    /// there (bytes past it that already arrived are harmless repeats).
    Shorten { connection: ConnectionId, end: u64 },
    /// `connection` is far slower than the others: close it. Its unfinished bytes went back
    /// to the pool, and a later `Fetch` for the same id starts a new connection.
    Restart { connection: ConnectionId },
    /// Nothing is left for `connection` to do for now: it may be closed.
    Release { connection: ConnectionId },
    /// Every byte of the file is finished. Reported once.
    Finished,
}

/// Tuning of the planner. `Default` is what `-x N` uses, with `connections` set to N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentConfig {
    /// How many connections, 1 to [`MAX_CONNECTIONS`].
    pub connections: usize,
    /// No piece is cut smaller than this (unless a hole is smaller).
    pub min_piece: u64,
    /// The window a connection's rate is measured over.
    pub rate_window: Duration,
    /// A connection whose rate is below `median of the others / slow_divisor` is restarted.
    pub slow_divisor: u64,
    /// At the end of the download: how long a range may make no progress before it moves to
    /// a new connection (rule 4), at least.
    pub stall: Duration,
}

impl Default for SegmentConfig {
    fn default() -> SegmentConfig {
        SegmentConfig {
            connections: 1,
            min_piece: MIN_PIECE,
            rate_window: Duration::from_secs(2),
            slow_divisor: 4,
            stall: STALL,
        }
    }
}

/// What one connection is doing, for `--stats` and the progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionProgress {
    pub connection: ConnectionId,
    /// The range it was given (its end moves down when another connection takes half).
    pub start: u64,
    pub end: u64,
    /// `start..done` has arrived.
    pub done: u64,
    /// Bytes per second over the last complete measuring window, once there was one.
    pub rate: Option<u64>,
}

/// One connection's state.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The range being fetched, `None` when idle.
    range: Option<Piece>,
    /// When the current measuring window began, and `done` then.
    window_start: Instant,
    window_done: u64,
    /// The rate of the last complete window.
    rate: Option<u64>,
    /// An idle slot that had work and has not been released yet.
    owes_release: bool,
    /// Never given work again ([`SegmentPlanner::retire`]).
    retired: bool,
    /// When its range last made progress (or was given), and whether it progressed since
    /// the last plan (`on_progress` has no clock: the time is taken at the next plan).
    last_progress: Instant,
    progressed: bool,
    /// The longest recent gap between two progress reports (it decays by 1/16 a report),
    /// zero before the first: a range is judged by rule 4 only once it has moved.
    gap: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    start: u64,
    done: u64,
    end: u64,
}

impl Piece {
    fn remaining(&self) -> u64 {
        self.end - self.done
    }
}

/// The plan of one segmented download. See the module docs for the rules.
///
/// Calling order: [`SegmentPlanner::new`]; then, in the host's loop, drain
/// [`SegmentPlanner::poll_action`] until `None` (the first calls hand out the first
/// ranges), and report each connection's progress with [`SegmentPlanner::on_progress`] (or
/// its failure with [`SegmentPlanner::on_failed`]) as it comes. Call `poll_action` at least
/// every few hundred milliseconds even without progress: slow connections are found there.
#[derive(Clone, Debug)]
pub struct SegmentPlanner {
    total: u64,
    config: SegmentConfig,
    /// Pieces are cut to about this size.
    piece_target: u64,
    /// Bytes known to be in the file.
    finished: RangeSet,
    /// Missing bytes no connection is fetching.
    pool: RangeSet,
    slots: Vec<Slot>,
    actions: VecDeque<Action>,
    finished_reported: bool,
    /// Scratch space for the median, so that polling allocates nothing.
    rates: Vec<u64>,
}

impl SegmentPlanner {
    /// A plan for a file of `total` bytes of which `finished` are there already (from `-c`;
    /// empty for a fresh download). `config.connections` is clamped to 1..=16.
    pub fn new(total: u64, finished: &RangeSet, config: SegmentConfig) -> SegmentPlanner {
        let connections = config.connections.clamp(1, MAX_CONNECTIONS);
        let config = SegmentConfig {
            connections,
            min_piece: config.min_piece.max(1),
            slow_divisor: config.slow_divisor.max(1),
            ..config
        };
        let mut done = RangeSet::new();
        for (start, end) in finished.iter() {
            done.insert(start.min(total), end.min(total));
        }
        let pool: RangeSet = done.gaps(0, total).collect();
        let missing = pool.covered();
        let piece_target = missing.div_ceil(connections as u64).max(config.min_piece);
        let idle = Slot {
            range: None,
            window_start: Instant::ZERO,
            window_done: 0,
            rate: None,
            owes_release: false,
            retired: false,
            last_progress: Instant::ZERO,
            progressed: false,
            gap: Duration::ZERO,
        };
        SegmentPlanner {
            total,
            config,
            piece_target,
            finished: done,
            pool,
            slots: vec![idle; connections],
            actions: VecDeque::with_capacity(2 * connections + 1),
            finished_reported: false,
            rates: Vec::with_capacity(connections),
        }
    }

    /// The next thing the host should do, if any. Drain it until `None` after every change.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        if self.actions.is_empty() {
            self.plan(now);
        }
        self.actions.pop_front()
    }

    /// `connection` has received its range from the start up to `upto` without a gap.
    /// Reaching the end of its range makes it idle; the next `poll_action` gives it more.
    pub fn on_progress(&mut self, connection: ConnectionId, upto: u64) {
        let Some(slot) = self.slots.get_mut(connection.0) else {
            return;
        };
        let Some(piece) = slot.range.as_mut() else {
            return;
        };
        let upto = upto.min(piece.end);
        if upto <= piece.done {
            return;
        }
        self.finished.insert(piece.done, upto);
        piece.done = upto;
        slot.progressed = true;
        if piece.done == piece.end {
            slot.range = None;
            slot.rate = None;
            slot.owes_release = true;
        }
    }

    /// `connection` failed (its connection broke, the server refused): the rest of its range
    /// goes back to the pool and the connection is idle. The host decides whether to open it
    /// again; the next `Fetch` for it (or another) takes the bytes.
    pub fn on_failed(&mut self, connection: ConnectionId) {
        if let Some(slot) = self.slots.get_mut(connection.0) {
            if let Some(piece) = slot.range.take() {
                self.pool.insert(piece.done, piece.end);
            }
            slot.rate = None;
            slot.owes_release = false;
        }
    }

    /// `connection` is not to be used again (the server refuses more connections): the rest
    /// of its range goes back to the pool, for the others.
    pub fn retire(&mut self, connection: ConnectionId) {
        self.on_failed(connection);
        if let Some(slot) = self.slots.get_mut(connection.0) {
            slot.retired = true;
        }
    }

    /// Whether work remains but every connection is retired: nothing can finish it.
    pub fn is_stuck(&self) -> bool {
        !self.is_finished() && self.slots.iter().all(|slot| slot.retired)
    }

    /// Whether every byte is finished.
    pub fn is_finished(&self) -> bool {
        self.finished.contains(0, self.total)
    }

    /// The bytes finished so far (the `-c` start and every connection's progress).
    pub fn finished(&self) -> &RangeSet {
        &self.finished
    }

    /// The file's length.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// What each busy connection is doing, lowest id first.
    pub fn connections(&self) -> impl Iterator<Item = ConnectionProgress> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            slot.range.map(|piece| ConnectionProgress {
                connection: ConnectionId(index),
                start: piece.start,
                end: piece.end,
                done: piece.done,
                rate: slot.rate,
            })
        })
    }

    /// Looks at every connection once and queues what follows.
    fn plan(&mut self, now: Instant) {
        if self.is_finished() {
            if !self.finished_reported {
                self.finished_reported = true;
                for index in 0..self.slots.len() {
                    self.release(index);
                }
                self.actions.push_back(Action::Finished);
            }
            return;
        }
        self.measure(now);
        self.give_up_slow(now);
        if self.assign_idle(now) && self.give_up_stalled(now) {
            // The stalled ranges are in the pool: the idle connections take them.
            self.assign_idle(now);
        }
    }

    /// Gives work to every idle slot that can have it and releases the others. Returns
    /// whether any stayed idle: then nothing was left to hand out.
    fn assign_idle(&mut self, now: Instant) -> bool {
        let mut idle = false;
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if slot.range.is_none() && !slot.retired && !self.assign(index, now) {
                idle = true;
                self.release(index);
            }
        }
        idle
    }

    /// When the plan should be looked at again for rule 4, if a stall may come due: the
    /// earliest moment a range being fetched counts as stalled. `None` while work is still
    /// handed out some other way (the pool has pieces) or nothing is being fetched.
    pub fn next_check(&self) -> Option<Instant> {
        if !self.pool.is_empty() {
            return None;
        }
        self.slots
            .iter()
            .filter(|slot| slot.range.is_some())
            .filter_map(|slot| Some(slot.last_progress + self.stall_of(slot)?))
            .min()
    }

    /// Rule 4 for one slot: how long its range may make no progress; `None` before its
    /// first progress (a connection still opening, however slow the path, is not stalled).
    fn stall_of(&self, slot: &Slot) -> Option<Duration> {
        (!slot.gap.is_zero()).then(|| self.config.stall.max(slot.gap * 2))
    }

    /// Rule 4: gives up every range that has made no progress for its stall time. Called
    /// only when a connection found nothing to do (the pool is empty, nothing worth
    /// halving). Returns whether any went back to the pool.
    fn give_up_stalled(&mut self, now: Instant) -> bool {
        let mut any = false;
        for index in 0..self.slots.len() {
            let slot = self.slots[index];
            if slot.range.is_none() {
                continue;
            }
            let Some(stall) = self.stall_of(&slot) else {
                continue;
            };
            if now - slot.last_progress < stall {
                continue;
            }
            self.give_up(index, now);
            any = true;
        }
        any
    }

    /// Queues a `Release` for an idle slot that had work and was not released yet.
    fn release(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if slot.range.is_none() && slot.owes_release {
            slot.owes_release = false;
            self.actions.push_back(Action::Release {
                connection: ConnectionId(index),
            });
        }
    }

    /// Gives idle slot `index` a piece from the pool, or half of the largest range being
    /// fetched. Returns whether it got one.
    fn assign(&mut self, index: usize, now: Instant) -> bool {
        let piece = match self.pool.first() {
            Some((start, end)) => {
                let cut = if end - start >= self.piece_target + self.config.min_piece {
                    start + self.piece_target
                } else {
                    end
                };
                self.pool.remove(start, cut);
                (start, cut)
            }
            None => match self.steal() {
                Some(piece) => piece,
                None => return false,
            },
        };
        let slot = &mut self.slots[index];
        slot.range = Some(Piece {
            start: piece.0,
            done: piece.0,
            end: piece.1,
        });
        slot.window_start = now;
        slot.window_done = piece.0;
        slot.rate = None;
        slot.owes_release = false;
        slot.last_progress = now;
        slot.progressed = false;
        slot.gap = Duration::ZERO;
        self.actions.push_back(Action::Fetch {
            connection: ConnectionId(index),
            start: piece.0,
            end: piece.1,
        });
        true
    }

    /// Takes the end half of the largest range still being fetched, if that half is at least
    /// the minimum piece, and tells its owner (`Shorten`).
    fn steal(&mut self) -> Option<(u64, u64)> {
        let (victim, remaining) = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| slot.range.map(|piece| (index, piece.remaining())))
            // The largest; of equals, the lowest id.
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?;
        let half = remaining / 2;
        if half < self.config.min_piece {
            return None;
        }
        let piece = self.slots[victim].range.as_mut()?;
        let old_end = piece.end;
        piece.end -= half;
        self.actions.push_back(Action::Shorten {
            connection: ConnectionId(victim),
            end: piece.end,
        });
        Some((piece.end, old_end))
    }

    /// Closes every measuring window that is complete: its rate becomes the slot's rate.
    fn measure(&mut self, now: Instant) {
        let window = self.config.rate_window;
        for slot in &mut self.slots {
            if std::mem::take(&mut slot.progressed) {
                let gap = now - slot.last_progress;
                // A decaying maximum: a connection whose data comes in bursts a round trip
                // apart keeps that gap as its measure, not the short ones inside a burst.
                slot.gap = gap.max(slot.gap - slot.gap / 16);
                slot.last_progress = now;
            }
            let Some(piece) = slot.range else { continue };
            let elapsed = now - slot.window_start;
            if elapsed < window {
                continue;
            }
            let bytes = piece.done.saturating_sub(slot.window_done);
            let micros = elapsed.as_micros().max(1);
            let rate = u128::from(bytes) * 1_000_000 / micros;
            slot.rate = Some(u64::try_from(rate).unwrap_or(u64::MAX));
            slot.window_start = now;
            slot.window_done = piece.done;
        }
    }

    /// Restarts each connection whose last window's rate is below the median of the others'
    /// divided by `slow_divisor`, when the rest of its range is worth a new connection.
    fn give_up_slow(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            let Some(piece) = self.slots[index].range else {
                continue;
            };
            let Some(rate) = self.slots[index].rate else {
                continue;
            };
            if piece.remaining() < self.config.min_piece {
                continue;
            }
            self.rates.clear();
            self.rates.extend(
                self.slots
                    .iter()
                    .enumerate()
                    .filter(|&(other, slot)| other != index && slot.range.is_some())
                    .filter_map(|(_, slot)| slot.rate),
            );
            if self.rates.is_empty() {
                continue;
            }
            self.rates.sort_unstable();
            let median = self.rates[self.rates.len() / 2];
            if rate.saturating_mul(self.config.slow_divisor) >= median {
                continue;
            }
            self.give_up(index, now);
        }
    }

    /// Slot `index` gives the rest of its range back to the pool; its connection is
    /// restarted (rules 3 and 4).
    fn give_up(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        let Some(piece) = slot.range.take() else {
            return;
        };
        slot.rate = None;
        slot.owes_release = false;
        slot.window_start = now;
        self.pool.insert(piece.done, piece.end);
        self.actions.push_back(Action::Restart {
            connection: ConnectionId(index),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const MIB: u64 = MIN_PIECE;

    fn config(connections: usize) -> SegmentConfig {
        SegmentConfig {
            connections,
            ..SegmentConfig::default()
        }
    }

    fn drain(planner: &mut SegmentPlanner, now: Instant) -> Vec<Action> {
        std::iter::from_fn(|| planner.poll_action(now)).collect()
    }

    fn fetch(connection: usize, start: u64, end: u64) -> Action {
        Action::Fetch {
            connection: ConnectionId(connection),
            start,
            end,
        }
    }

    #[test]
    fn a_fresh_file_is_split_in_n_equal_ranges() {
        let mut planner = SegmentPlanner::new(64 * MIB, &RangeSet::new(), config(4));
        assert_eq!(
            drain(&mut planner, Instant::ZERO),
            [
                fetch(0, 0, 16 * MIB),
                fetch(1, 16 * MIB, 32 * MIB),
                fetch(2, 32 * MIB, 48 * MIB),
                fetch(3, 48 * MIB, 64 * MIB),
            ]
        );
        // Nothing more until something happens.
        assert_eq!(drain(&mut planner, Instant::ZERO), []);
        // A small file gets fewer connections: no piece under 1 MiB.
        let mut small = SegmentPlanner::new(2 * MIB + 5, &RangeSet::new(), config(8));
        assert_eq!(
            drain(&mut small, Instant::ZERO),
            [fetch(0, 0, MIB), fetch(1, MIB, 2 * MIB + 5)]
        );
    }

    #[test]
    fn resume_fetches_only_the_holes() {
        // -c found 0..10 MiB, 20..30 MiB and 39..40 MiB finished.
        let finished: RangeSet = [(0, 10 * MIB), (20 * MIB, 30 * MIB), (39 * MIB, 40 * MIB)]
            .into_iter()
            .collect();
        let mut planner = SegmentPlanner::new(40 * MIB, &finished, config(2));
        // 19 MiB missing, pieces of 9.5 MiB, never across a finished range; the 0.5 MiB
        // left of the first hole stays with its piece.
        assert_eq!(
            drain(&mut planner, Instant::ZERO),
            [fetch(0, 10 * MIB, 20 * MIB), fetch(1, 30 * MIB, 39 * MIB)]
        );
        planner.on_progress(ConnectionId(0), 20 * MIB);
        planner.on_progress(ConnectionId(1), 39 * MIB);
        assert!(planner.is_finished());
        assert_eq!(
            drain(&mut planner, Instant::ZERO),
            [
                Action::Release {
                    connection: ConnectionId(0)
                },
                Action::Release {
                    connection: ConnectionId(1)
                },
                Action::Finished
            ]
        );
        // Nothing missing at all: finished at once.
        let all = RangeSet::from_range(0, 5);
        let mut done = SegmentPlanner::new(5, &all, config(3));
        assert_eq!(drain(&mut done, Instant::ZERO), [Action::Finished]);
    }

    #[test]
    fn a_finished_connection_takes_the_end_half_of_the_largest_range() {
        let mut planner = SegmentPlanner::new(40 * MIB, &RangeSet::new(), config(2));
        let t = Instant::ZERO;
        assert_eq!(drain(&mut planner, t).len(), 2);
        // Connection 1 is quick: done with 20..40 while 0 is at 4 MiB.
        planner.on_progress(ConnectionId(0), 4 * MIB);
        planner.on_progress(ConnectionId(1), 40 * MIB);
        assert_eq!(
            drain(&mut planner, t),
            [
                Action::Shorten {
                    connection: ConnectionId(0),
                    end: 12 * MIB
                },
                fetch(1, 12 * MIB, 20 * MIB),
            ]
        );
        // Progress past a shortened end counts up to it only.
        planner.on_progress(ConnectionId(0), 15 * MIB);
        assert_eq!(
            planner.finished().as_slice(),
            [(0, 12 * MIB), (20 * MIB, 40 * MIB)]
        );
        // 0 takes half of 1's 12..20 at 13 MiB: 3.5 MiB from the end.
        planner.on_progress(ConnectionId(1), 13 * MIB);
        assert_eq!(
            drain(&mut planner, t),
            [
                Action::Shorten {
                    connection: ConnectionId(1),
                    end: 13 * MIB + 7 * MIB / 2
                },
                fetch(0, 13 * MIB + 7 * MIB / 2, 20 * MIB),
            ]
        );
        // Halves under 1 MiB are not taken: 1 finishes its part while 0 has 1.5 MiB left,
        // whose half is 0.75 MiB: 1 is released.
        planner.on_progress(ConnectionId(1), 13 * MIB + 7 * MIB / 2);
        planner.on_progress(ConnectionId(0), 18 * MIB + MIB / 2);
        assert_eq!(
            drain(&mut planner, t),
            [Action::Release {
                connection: ConnectionId(1)
            }]
        );
        let busy: Vec<_> = planner.connections().collect();
        assert_eq!(
            busy,
            [ConnectionProgress {
                connection: ConnectionId(0),
                start: 13 * MIB + 7 * MIB / 2,
                end: 20 * MIB,
                done: 18 * MIB + MIB / 2,
                rate: None
            }]
        );
    }

    #[test]
    fn a_far_slower_connection_gives_up_its_range() {
        let mut planner = SegmentPlanner::new(300 * MIB, &RangeSet::new(), config(3));
        let mut t = Instant::ZERO;
        assert_eq!(drain(&mut planner, t).len(), 3);
        // One second in: no complete window, nobody judged.
        t += Duration::from_secs(1);
        planner.on_progress(ConnectionId(0), 10 * MIB);
        planner.on_progress(ConnectionId(1), 100 * MIB + MIB);
        planner.on_progress(ConnectionId(2), 200 * MIB + 10 * MIB);
        assert_eq!(drain(&mut planner, t), []);
        // Two seconds: 0 and 2 did 20 MiB (10 MiB/s), 1 did 4 MiB: below a quarter, it goes.
        t += Duration::from_secs(1);
        planner.on_progress(ConnectionId(0), 20 * MIB);
        planner.on_progress(ConnectionId(1), 100 * MIB + 4 * MIB);
        planner.on_progress(ConnectionId(2), 200 * MIB + 20 * MIB);
        assert_eq!(
            drain(&mut planner, t),
            [
                Action::Restart {
                    connection: ConnectionId(1)
                },
                // A new connection on the same id takes what 1 had not done.
                fetch(1, 104 * MIB, 200 * MIB),
            ]
        );
        let rates: Vec<_> = planner.connections().map(|c| c.rate).collect();
        assert_eq!(rates, [Some(10 * MIB), None, Some(10 * MIB)]);
        // The new connection is not judged before it had a window of its own; at 3 MiB/s
        // (above a quarter of 10) it stays.
        t += Duration::from_secs(1);
        planner.on_progress(ConnectionId(1), 107 * MIB);
        assert_eq!(drain(&mut planner, t), []);
        t += Duration::from_secs(1);
        planner.on_progress(ConnectionId(0), 40 * MIB);
        planner.on_progress(ConnectionId(1), 110 * MIB);
        planner.on_progress(ConnectionId(2), 240 * MIB);
        assert_eq!(drain(&mut planner, t), []);
    }

    #[test]
    fn at_the_end_a_stalled_range_moves_to_a_new_connection() {
        let ms = Duration::from_millis;
        let mut planner = SegmentPlanner::new(4 * MIB, &RangeSet::new(), config(2));
        let mut t = Instant::ZERO;
        assert_eq!(
            drain(&mut planner, t),
            [fetch(0, 0, 2 * MIB), fetch(1, 2 * MIB, 4 * MIB)]
        );
        // Both move every millisecond; 0 finishes, 1 stops 100 KiB short of its end.
        for step in 1..=8u64 {
            t += ms(1);
            planner.on_progress(ConnectionId(0), step * MIB / 4);
            planner.on_progress(ConnectionId(1), 2 * MIB + step * (MIB - 12_800) / 4);
            let actions = drain(&mut planner, t);
            assert!(
                actions.is_empty()
                    || actions
                        == [Action::Release {
                            connection: ConnectionId(0)
                        }],
                "{actions:?}"
            );
        }
        let stalled_at = 4 * MIB - 8 * 12_800 / 4;
        assert_eq!(planner.next_check(), Some(t + STALL));
        // Not before the stall time...
        t += STALL - ms(1);
        assert_eq!(drain(&mut planner, t), []);
        // ...then its rest goes to a new connection (the idle one, or its own id anew).
        t += ms(1);
        assert_eq!(
            drain(&mut planner, t),
            [
                Action::Restart {
                    connection: ConnectionId(1)
                },
                fetch(0, stalled_at, 4 * MIB),
            ]
        );
        // The new connection has not moved yet: however long it takes, it is not judged.
        assert_eq!(planner.next_check(), None);
        t += Duration::from_secs(1);
        assert_eq!(drain(&mut planner, t), []);
        planner.on_progress(ConnectionId(0), 4 * MIB);
        assert_eq!(
            drain(&mut planner, t),
            [
                Action::Release {
                    connection: ConnectionId(0)
                },
                Action::Finished
            ]
        );
    }

    #[test]
    fn a_range_that_moves_in_bursts_is_judged_by_its_own_gaps() {
        let ms = Duration::from_millis;
        let mut planner = SegmentPlanner::new(4 * MIB, &RangeSet::new(), config(2));
        let mut t = Instant::ZERO;
        drain(&mut planner, t);
        t += ms(1);
        planner.on_progress(ConnectionId(0), 2 * MIB);
        drain(&mut planner, t);
        // 1 moves once every 100 ms (a long path's round trip): never stalled at 100 ms.
        for step in 1..=5u64 {
            t += ms(100);
            planner.on_progress(ConnectionId(1), 2 * MIB + step * 100_000);
            assert_eq!(drain(&mut planner, t), [], "step {step}");
        }
        assert!(planner.next_check() >= Some(t + ms(180)));
    }

    #[test]
    fn a_failed_connection_returns_its_rest_to_the_pool() {
        let mut planner = SegmentPlanner::new(8 * MIB, &RangeSet::new(), config(2));
        let t = Instant::ZERO;
        assert_eq!(drain(&mut planner, t).len(), 2);
        planner.on_progress(ConnectionId(0), MIB);
        planner.on_failed(ConnectionId(0));
        assert_eq!(drain(&mut planner, t), [fetch(0, MIB, 4 * MIB)]);
    }

    #[test]
    fn a_retired_connection_gets_no_more_work_and_the_others_take_its_range() {
        let mut planner = SegmentPlanner::new(8 * MIB, &RangeSet::new(), config(2));
        let t = Instant::ZERO;
        assert_eq!(drain(&mut planner, t).len(), 2);
        planner.retire(ConnectionId(1));
        assert!(!planner.is_stuck());
        // Connection 1's range waits in the pool until connection 0 is free for it.
        assert_eq!(drain(&mut planner, t), []);
        planner.on_progress(ConnectionId(0), 4 * MIB);
        assert_eq!(
            drain(&mut planner, t),
            [fetch(0, 4 * MIB, 8 * MIB)],
            "the finished connection takes the retired one's range"
        );
        planner.retire(ConnectionId(0));
        assert!(planner.is_stuck(), "work left, nobody to do it");
        assert_eq!(drain(&mut planner, t), []);
    }

    /// Random progress, failures, slow connections and time against the rules: after every
    /// step the finished bytes, the pool and the ranges being fetched are disjoint and cover
    /// the file exactly; no byte is handed out twice unless it came back from a give-up or a
    /// failure; every run finishes. Seeded and bounded: 200 runs, at most 20,000 steps each.
    #[test]
    fn ranges_never_overlap_and_cover_exactly_the_missing_bytes() {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5e9);
        let (mut shortened, mut restarted, mut failed) = (0, 0, 0);
        for _ in 0..200 {
            let total = rng.gen_range(0..200u64) * MIB / 4 + rng.gen_range(0..MIB);
            let mut finished = RangeSet::new();
            for _ in 0..rng.gen_range(0..6) {
                let start = rng.gen_range(0..=total);
                finished.insert(start, (start + rng.gen_range(0..20 * MIB)).min(total));
            }
            let connections = rng.gen_range(1..=MAX_CONNECTIONS);
            let mut planner = SegmentPlanner::new(total, &finished, config(connections));
            // Bytes handed out and not returned, per connection, as the host would track them.
            let mut owned: Vec<Option<(u64, u64)>> = vec![None; connections];
            let mut handed = finished.clone();
            let mut t = Instant::ZERO;
            let mut done = false;
            for _ in 0..20_000 {
                while let Some(action) = planner.poll_action(t) {
                    match action {
                        Action::Fetch {
                            connection,
                            start,
                            end,
                        } => {
                            assert!(start < end && end <= total);
                            assert!(owned[connection.0].is_none());
                            assert_eq!(
                                handed.covered_within(start, end),
                                0,
                                "{start}..{end} handed out twice"
                            );
                            handed.insert(start, end);
                            owned[connection.0] = Some((start, end));
                        }
                        Action::Shorten { connection, end } => {
                            let (start, old_end) = owned[connection.0].expect("busy");
                            assert!(start < end && end < old_end);
                            handed.remove(end, old_end);
                            owned[connection.0] = Some((start, end));
                            shortened += 1;
                        }
                        Action::Restart { connection } => {
                            let (start, end) = owned[connection.0].take().expect("busy");
                            let progress = planner.finished().contiguous_end(start).min(end);
                            handed.remove(progress, end);
                            restarted += 1;
                        }
                        Action::Release { connection } => {
                            assert!(owned[connection.0].is_none());
                        }
                        Action::Finished => {
                            assert!(!done, "reported once");
                            done = true;
                        }
                    }
                }
                check_partition(&planner);
                if done {
                    break;
                }
                // Each busy connection moves on at its own pace; some stall, some fail.
                t += Duration::from_millis(rng.gen_range(1..500));
                for (index, range) in owned.clone().iter().enumerate() {
                    let Some((start, end)) = *range else { continue };
                    let id = ConnectionId(index);
                    let at = planner.finished().contiguous_end(start).min(end);
                    match rng.gen_range(0..100) {
                        0 => {
                            planner.on_failed(id);
                            failed += 1;
                            handed.remove(at, end);
                            owned[index] = None;
                        }
                        1..=20 => {}
                        _ => {
                            let pace = if index % 5 == 4 { MIB / 16 } else { 2 * MIB };
                            let step = rng.gen_range(0..=pace);
                            planner.on_progress(id, at + step);
                            if at + step >= end {
                                owned[index] = None;
                            }
                        }
                    }
                }
            }
            assert!(
                done,
                "finished within the bound: {total} bytes, {connections} connections"
            );
            assert!(planner.finished().contains(0, total));
        }
        // The runs went through every rule.
        assert!(
            shortened > 100 && restarted > 10 && failed > 10,
            "{shortened} {restarted} {failed}"
        );
    }

    /// Finished, pool and busy ranges are disjoint and cover `0..total` exactly.
    fn check_partition(planner: &SegmentPlanner) {
        let mut parts: Vec<(u64, u64)> = planner.finished.iter().collect();
        parts.extend(planner.pool.iter());
        parts.extend(
            planner
                .slots
                .iter()
                .filter_map(|s| s.range)
                .filter(|p| p.done < p.end)
                .map(|p| (p.done, p.end)),
        );
        parts.sort_unstable();
        let mut cursor = 0;
        for (start, end) in parts {
            assert_eq!(start, cursor, "a hole or an overlap at {cursor}");
            cursor = end;
        }
        assert_eq!(cursor, planner.total);
    }
}
