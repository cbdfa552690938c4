//! The byte ranges of the body that have arrived: a small sorted set of half-open intervals.
//!
//! TCP delivers a body mostly in order, with a few holes while losses are repaired, so the
//! set holds a handful of intervals and a sorted `Vec` beats any tree. Touching and
//! overlapping intervals are merged on insert, so the first interval, when it starts at 0, is
//! exactly the contiguous prefix that `-c` may resume from.

/// A set of byte offsets kept as disjoint, non-touching, sorted half-open ranges `start..end`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    /// The empty set.
    pub const fn new() -> RangeSet {
        RangeSet { ranges: Vec::new() }
    }

    /// Adds `start..end` (nothing if `end <= start`), merging with neighbours it touches.
    pub fn insert(&mut self, start: u64, end: u64) {
        if end <= start {
            return;
        }
        // The first range that could touch the new one: the first whose end reaches `start`.
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        // One past the last range that could touch it: the first that starts after `end`.
        let last = self.ranges.partition_point(|&(s, _)| s <= end);
        if first == last {
            self.ranges.insert(first, (start, end));
            return;
        }
        let merged_start = start.min(self.ranges[first].0);
        let merged_end = end.max(self.ranges[last - 1].1);
        self.ranges[first] = (merged_start, merged_end);
        self.ranges.drain(first + 1..last);
    }

    /// Length of the run of bytes starting at offset 0: the contiguous prefix.
    pub fn contiguous_len(&self) -> u64 {
        match self.ranges.first() {
            Some(&(0, end)) => end,
            _ => 0,
        }
    }

    /// One past the highest byte in the set (0 when empty).
    pub fn end(&self) -> u64 {
        self.ranges.last().map_or(0, |&(_, end)| end)
    }

    /// Number of bytes in the set.
    pub fn covered(&self) -> u64 {
        self.ranges.iter().map(|&(s, e)| e - s).sum()
    }

    /// Whether every byte of `start..end` is in the set.
    pub fn contains(&self, start: u64, end: u64) -> bool {
        if end <= start {
            return true;
        }
        let index = self.ranges.partition_point(|&(_, e)| e <= start);
        self.ranges
            .get(index)
            .is_some_and(|&(s, e)| s <= start && end <= e)
    }

    /// The parts of `start..end` that are not in the set, in order.
    pub fn gaps(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut cursor = start;
        let first = self.ranges.partition_point(|&(_, e)| e <= start);
        for &(s, e) in &self.ranges[first..] {
            if s >= end {
                break;
            }
            if s > cursor {
                gaps.push((cursor, s));
            }
            cursor = cursor.max(e);
        }
        if cursor < end {
            gaps.push((cursor, end));
        }
        gaps
    }

    /// The ranges, sorted, disjoint and not touching.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merges_touching_and_overlapping() {
        let mut set = RangeSet::new();
        set.insert(10, 20);
        set.insert(30, 40);
        assert_eq!(set.ranges(), &[(10, 20), (30, 40)]);
        assert_eq!(set.contiguous_len(), 0);
        set.insert(20, 30);
        assert_eq!(set.ranges(), &[(10, 40)]);
        set.insert(0, 10);
        assert_eq!(set.contiguous_len(), 40);
        set.insert(5, 50);
        assert_eq!(set.ranges(), &[(0, 50)]);
        set.insert(60, 60);
        assert_eq!(set.ranges(), &[(0, 50)]);
        assert_eq!(set.gaps(40, 70), vec![(50, 70)]);
    }

    #[test]
    fn gaps_and_contains() {
        let mut set = RangeSet::new();
        set.insert(10, 20);
        set.insert(30, 40);
        assert_eq!(set.gaps(0, 50), vec![(0, 10), (20, 30), (40, 50)]);
        assert_eq!(set.gaps(12, 35), vec![(20, 30)]);
        assert_eq!(set.gaps(12, 18), vec![]);
        assert!(set.contains(10, 20));
        assert!(!set.contains(15, 25));
        assert!(set.contains(5, 5));
        assert_eq!(set.covered(), 20);
        assert_eq!(set.end(), 40);
    }

    proptest! {
        /// The set agrees with a bitmap after any sequence of inserts.
        #[test]
        fn agrees_with_a_bitmap(inserts in proptest::collection::vec((0u64..200, 0u64..40), 0..40),
                                probe in (0u64..240, 0u64..60)) {
            let mut set = RangeSet::new();
            let mut bits = [false; 240];
            for (start, len) in inserts {
                set.insert(start, start + len);
                for b in &mut bits[start as usize..(start + len) as usize] {
                    *b = true;
                }
            }
            // Invariant: sorted, disjoint, not touching, not empty.
            for pair in set.ranges().windows(2) {
                prop_assert!(pair[0].1 < pair[1].0);
            }
            for &(s, e) in set.ranges() {
                prop_assert!(s < e);
            }
            let prefix = bits.iter().take_while(|&&b| b).count() as u64;
            prop_assert_eq!(set.contiguous_len(), prefix);
            prop_assert_eq!(set.covered(), bits.iter().filter(|&&b| b).count() as u64);
            let (start, len) = probe;
            let end = (start + len).min(240);
            let start = start.min(end);
            let missing: u64 = set.gaps(start, end).iter().map(|&(s, e)| e - s).sum();
            let expected = bits[start as usize..end as usize].iter().filter(|&&b| !b).count() as u64;
            prop_assert_eq!(missing, expected);
            prop_assert_eq!(set.contains(start, end), expected == 0);
        }
    }
}
