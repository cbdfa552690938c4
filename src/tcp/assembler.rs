//! Out-of-order bookkeeping for the receive side: which stream ranges beyond `rcv_nxt`
//! have already arrived.
//!
//! The engine never copies payload: the caller writes every delivered byte at its final
//! stream offset. This set only remembers *which* ranges are there, so that `rcv_nxt` can
//! jump over them when a hole fills (RFC 9293 §3.10.7.4 "segment text", RFC 5681 §4.2), and
//! which blocks the SACK option reports (RFC 2018, `sack_report.rs`). It is the crate's one
//! interval set ([`crate::ranges::RangeSet`]) with the receive side's names on it. There is
//! no fixed limit on the number of holes.
//!
//! # Sequence numbers and stream offsets
//!
//! Sequence numbers are 32 bits and wrap (RFC 9293 §3.4); this set never sees them. The
//! connection keeps RCV.NXT twice: as a [`SeqNumber`](crate::wire::SeqNumber) and as
//! `rcv_offset`, its `u64` stream offset (0 = the first byte after the peer's SYN, so IRS + 1
//! is offset 0). A segment's offset is `rcv_offset + (SEG.SEQ - RCV.NXT)`, the difference
//! taken wrap-aware as a signed 32-bit distance. That is exact because every byte a segment
//! may carry lies within the receive window of RCV.NXT, and a window is below 2^30 bytes
//! (RFC 7323 §2.3), far from the 2^31 where a signed distance would be ambiguous. From there
//! on everything is a plain `u64` that never wraps (2^64 bytes is 584 years at 1 Tbit/s), so
//! ranges of a stream longer than 4 GiB compare and merge like any others.

use crate::ranges::RangeSet;

/// The stream ranges held beyond RCV.NXT: disjoint, non-adjacent half-open `[start, end)`.
#[derive(Clone, Debug, Default)]
pub struct Assembler {
    ranges: RangeSet,
}

impl Assembler {
    pub fn new() -> Assembler {
        Assembler::default()
    }

    /// Whether no out-of-order data is held.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The number of disjoint ranges (one more than the holes between them).
    pub fn range_count(&self) -> usize {
        self.ranges.range_count()
    }

    /// Whether every byte of `[start, end)` has already arrived.
    pub fn contains(&self, start: u64, end: u64) -> bool {
        self.ranges.contains(start, end)
    }

    /// Records `[start, end)` as arrived, merging with any range it overlaps or touches.
    pub fn insert(&mut self, start: u64, end: u64) {
        self.ranges.insert(start, end);
    }

    /// Given that everything before `contiguous_end` has arrived, removes the ranges that
    /// now join it and returns the new end of the contiguous prefix (the new RCV.NXT).
    pub fn advance(&mut self, contiguous_end: u64) -> u64 {
        self.ranges.advance(contiguous_end)
    }

    /// The range that holds `offset`, if any.
    pub fn range_containing(&self, offset: u64) -> Option<(u64, u64)> {
        self.ranges.range_containing(offset)
    }

    /// The ranges, lowest first (SACK blocks, tests and debugging).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, u64)> + '_ {
        self.ranges.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(assembler: &Assembler) -> Vec<(u64, u64)> {
        assembler.iter().collect()
    }

    #[test]
    fn merges_overlapping_and_touching_ranges() {
        let mut a = Assembler::new();
        a.insert(10, 20);
        a.insert(30, 40);
        a.insert(50, 60);
        assert_eq!(ranges(&a), [(10, 20), (30, 40), (50, 60)]);
        a.insert(20, 30);
        assert_eq!(ranges(&a), [(10, 40), (50, 60)]);
        a.insert(5, 55);
        assert_eq!(ranges(&a), [(5, 60)]);
        a.insert(70, 70);
        assert_eq!(ranges(&a), [(5, 60)]);
        assert!(a.contains(5, 60));
        assert!(a.contains(10, 20));
        assert!(!a.contains(50, 61));
        assert!(!a.contains(0, 6));
    }

    #[test]
    fn advance_jumps_over_arrived_ranges() {
        let mut a = Assembler::new();
        a.insert(100, 200);
        a.insert(300, 400);
        assert_eq!(a.advance(50), 50);
        assert_eq!(a.range_count(), 2);
        assert_eq!(a.advance(100), 200);
        assert_eq!(ranges(&a), [(300, 400)]);
        assert_eq!(a.advance(350), 400);
        assert!(a.is_empty());
    }

    #[test]
    fn many_holes_beyond_four_gibibytes() {
        let mut a = Assembler::new();
        let base = 5u64 << 30;
        for i in 0..1000u64 {
            a.insert(base + i * 20 + 10, base + i * 20 + 20);
        }
        assert_eq!(a.range_count(), 1000);
        for i in 0..1000u64 {
            a.insert(base + i * 20, base + i * 20 + 10);
        }
        assert_eq!(ranges(&a), [(base, base + 20_000)]);
    }
}
