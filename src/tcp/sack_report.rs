//! Which SACK blocks an ACK reports, in which order (RFC 2018 §4, RFC 2883).
//!
//! The [`Assembler`] knows *what* is held beyond RCV.NXT; this remembers *when* each range
//! last grew, because RFC 2018 §4 orders the blocks by recency:
//! - the first block MUST hold the most recently received segment;
//! - the others SHOULD repeat the most recently reported blocks, so that each block goes
//!   out in several ACKs and survives the loss of some of them.
//!
//! Linux adds a reason of its own to get this right: a sender that sees a higher range
//! SACKed before a lower one it was never told about infers *reordering* and raises its
//! reordering threshold, which slows every later loss recovery. So every range is reported
//! in one of the first two slots at least once ([`SackReport::blocks`] puts a range never
//! reported there right after the newest one).
//!
//! A D-SACK block (RFC 2883 §4) reports a duplicate segment: it goes first, followed by the
//! held range that contains it, if any, and is reported once.
//!
//! Everything here is in stream offsets (`u64`); the connection turns them into sequence
//! numbers when it writes the option.

use super::assembler::Assembler;
use crate::wire::SackBlocks;

/// Ranges remembered by recency: more than fit in one ACK (4), few enough to scan.
const RECENT_RANGES: usize = 8;

/// One held range and whether it has been in one of an ACK's first two SACK slots yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Recent {
    start: u64,
    end: u64,
    announced: bool,
}

/// One ACK's blocks in stream offsets, at most [`SackBlocks::MAX`], on the stack: building
/// an ACK allocates nothing.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Ranges {
    ranges: [(u64, u64); SackBlocks::MAX],
    len: usize,
}

impl Ranges {
    /// The blocks in the order to send them.
    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.ranges[..self.len]
    }

    /// Appends `range`; the caller keeps `len` below [`SackBlocks::MAX`].
    fn push(&mut self, range: (u64, u64)) {
        self.ranges[self.len] = range;
        self.len += 1;
    }
}

impl core::fmt::Debug for Ranges {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<const N: usize> PartialEq<[(u64, u64); N]> for Ranges {
    fn eq(&self, other: &[(u64, u64); N]) -> bool {
        self.as_slice() == other
    }
}

/// The recency order of the held ranges.
#[derive(Clone, Debug, Default)]
pub struct SackReport {
    /// Most recently grown first.
    recent: Vec<Recent>,
}

impl SackReport {
    pub fn new() -> SackReport {
        SackReport::default()
    }

    /// A segment arrived into the held range `[start, end)` (the range after merging): it
    /// becomes the most recent. Ranges it swallowed are forgotten; a range that grew is news
    /// again, so it must be announced again.
    pub fn on_arrival(&mut self, start: u64, end: u64) {
        self.recent.retain(|r| r.end < start || r.start > end);
        self.recent.insert(
            0,
            Recent {
                start,
                end,
                announced: false,
            },
        );
        self.recent.truncate(RECENT_RANGES);
    }

    /// RCV.NXT moved to `offset`: ranges below it are no longer held.
    pub fn forget_below(&mut self, offset: u64) {
        self.recent.retain(|r| r.end > offset);
    }

    /// The blocks of one ACK, at most `room`, in the order to send them:
    /// 1. `dsack` (a duplicate, RFC 2883 §4) and then the held range containing it;
    /// 2. the range containing `newest` (the segment that made this ACK due; by default the
    ///    most recent arrival), RFC 2018 §4's MUST;
    /// 3. ranges never yet reported in the first two slots, most recent first;
    /// 4. the other remembered ranges, most recent first;
    /// 5. any other held range, lowest first.
    ///
    /// Ranges that land in one of the first two slots are marked announced. At most
    /// `room` blocks, and never more than [`SackBlocks::MAX`].
    pub fn blocks(
        &mut self,
        held: &Assembler,
        dsack: Option<(u64, u64)>,
        newest: Option<u64>,
        room: usize,
    ) -> Ranges {
        let room = room.min(SackBlocks::MAX);
        let mut out = Ranges::default();
        let add = |range: (u64, u64), out: &mut Ranges| {
            if out.len < room && range.0 < range.1 && !out.as_slice().contains(&range) {
                out.push(range);
            }
        };
        if let Some(duplicate) = dsack {
            add(duplicate, &mut out);
            // Even when equal to the duplicate: a sender recognizes a D-SACK above the ACK
            // only by the second block containing the first (RFC 2883 §4, Linux
            // tcp_check_dsack).
            if let Some(range) = held.range_containing(duplicate.0)
                && out.len < room
            {
                out.push(range);
            }
        }
        let newest = newest
            .and_then(|offset| held.range_containing(offset))
            .or_else(|| self.recent.first().map(|r| (r.start, r.end)));
        if let Some(range) = newest {
            add(range, &mut out);
        }
        let unannounced = self.recent.iter().filter(|r| !r.announced);
        let announced = self.recent.iter().filter(|r| r.announced);
        for r in unannounced.chain(announced) {
            add((r.start, r.end), &mut out);
        }
        for range in held.iter() {
            add(range, &mut out);
        }
        for r in &mut self.recent {
            if out
                .as_slice()
                .iter()
                .take(2)
                .any(|&(s, e)| s == r.start && e == r.end)
            {
                r.announced = true;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(ranges: &[(u64, u64)]) -> Assembler {
        let mut a = Assembler::new();
        for &(s, e) in ranges {
            a.insert(s, e);
        }
        a
    }

    #[test]
    fn newest_first_then_most_recent() {
        let mut report = SackReport::new();
        let a = held(&[(10, 20), (30, 40), (50, 60)]);
        report.on_arrival(10, 20);
        report.on_arrival(50, 60);
        report.on_arrival(30, 40);
        assert_eq!(
            report.blocks(&a, None, None, 4),
            [(30, 40), (50, 60), (10, 20)]
        );
    }

    #[test]
    fn a_range_never_in_the_first_two_slots_comes_second() {
        let mut report = SackReport::new();
        let a = held(&[(10, 20), (30, 40), (50, 60)]);
        // Three ranges appear before any ACK is built (compressed): (10, 20) is the oldest.
        report.on_arrival(10, 20);
        report.on_arrival(30, 40);
        report.on_arrival(50, 60);
        assert_eq!(
            report.blocks(&a, None, None, 3),
            [(50, 60), (30, 40), (10, 20)]
        );
        // The next ACK (50..60 grew) puts the never-announced (10, 20) second.
        let a = held(&[(10, 20), (30, 40), (50, 61)]);
        report.on_arrival(50, 61);
        assert_eq!(
            report.blocks(&a, None, None, 3),
            [(50, 61), (10, 20), (30, 40)]
        );
        // Now everything was announced: plain recency.
        assert_eq!(
            report.blocks(&a, None, None, 3),
            [(50, 61), (30, 40), (10, 20)]
        );
    }

    #[test]
    fn dsack_first_then_its_containing_range() {
        let mut report = SackReport::new();
        let a = held(&[(10, 20), (30, 40)]);
        report.on_arrival(10, 20);
        report.on_arrival(30, 40);
        assert_eq!(
            report.blocks(&a, Some((12, 14)), None, 3),
            [(12, 14), (10, 20), (30, 40)]
        );
        // A duplicate of a whole held range is repeated as its own container.
        assert_eq!(
            report.blocks(&a, Some((30, 40)), None, 3),
            [(30, 40), (30, 40), (10, 20)]
        );
        // Below RCV.NXT: held by nobody, the newest range follows.
        assert_eq!(
            report.blocks(&a, Some((2, 4)), None, 3),
            [(2, 4), (30, 40), (10, 20)]
        );
    }

    #[test]
    fn merged_and_acknowledged_ranges_are_forgotten() {
        let mut report = SackReport::new();
        report.on_arrival(10, 20);
        report.on_arrival(30, 40);
        report.on_arrival(10, 40);
        assert_eq!(report.recent.len(), 1);
        report.forget_below(40);
        assert!(report.recent.is_empty());
    }
}
