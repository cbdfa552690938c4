//! Out-of-order bookkeeping for the receive side: which stream ranges beyond `rcv_nxt`
//! have already arrived.
//!
//! The engine never copies payload: the caller writes every delivered byte at its final
//! stream offset. This set only remembers *which* ranges are there, so that `rcv_nxt` can
//! jump over them when a hole fills (RFC 9293 §3.10.7.4 "segment text", RFC 5681 §4.2).
//! Offsets are `u64` stream offsets (the first byte after the peer's SYN is 0), so streams
//! longer than 4 GiB need no special care. There is no fixed limit on the number of holes.

use std::collections::BTreeMap;

/// A set of disjoint, non-adjacent half-open ranges `[start, end)` of stream offsets.
#[derive(Clone, Debug, Default)]
pub struct Assembler {
    /// start -> end, every range non-empty, no two ranges touching.
    ranges: BTreeMap<u64, u64>,
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
        self.ranges.len()
    }

    /// Whether every byte of `[start, end)` has already arrived.
    pub fn contains(&self, start: u64, end: u64) -> bool {
        start >= end
            || self
                .ranges
                .range(..=start)
                .next_back()
                .is_some_and(|(_, &range_end)| range_end >= end)
    }

    /// Records `[start, end)` as arrived, merging with any range it overlaps or touches.
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut start, mut end) = (start, end);
        // Every range that starts at or before `end` and ends at or after `start` overlaps or
        // touches the new one. Walk them from the right; each removal is O(log n).
        while let Some((&range_start, &range_end)) = self.ranges.range(..=end).next_back() {
            if range_end < start {
                break;
            }
            self.ranges.remove(&range_start);
            start = start.min(range_start);
            end = end.max(range_end);
        }
        self.ranges.insert(start, end);
    }

    /// Given that everything before `contiguous_end` has arrived, removes the ranges that
    /// now join it and returns the new end of the contiguous prefix.
    pub fn advance(&mut self, contiguous_end: u64) -> u64 {
        let mut end = contiguous_end;
        while let Some(entry) = self.ranges.first_entry() {
            if *entry.key() > end {
                break;
            }
            end = end.max(*entry.get());
            entry.remove();
        }
        end
    }

    /// The range that holds `offset`, if any.
    pub fn range_containing(&self, offset: u64) -> Option<(u64, u64)> {
        self.ranges
            .range(..=offset)
            .next_back()
            .filter(|&(_, &end)| end > offset)
            .map(|(&start, &end)| (start, end))
    }

    /// The ranges, in order (SACK blocks, tests and debugging).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&start, &end)| (start, end))
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
