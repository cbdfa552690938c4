//! A set of byte offsets kept as sorted, disjoint, non-adjacent half-open ranges.
//!
//! It records which stream or body bytes have arrived. In-order arrivals extend the last
//! range in place, so the common case neither allocates nor moves anything.

use core::ops::Range;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: Vec<Range<u64>>,
}

impl RangeSet {
    pub(crate) fn with_capacity(capacity: usize) -> RangeSet {
        RangeSet {
            ranges: Vec::with_capacity(capacity),
        }
    }

    /// Adds `start..end`, merging with ranges it overlaps or touches.
    pub(crate) fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // Fast path: extends (or lies beyond) the last range.
        if let Some(last) = self.ranges.last_mut()
            && start >= last.start
        {
            if start <= last.end {
                last.end = last.end.max(end);
            } else {
                self.ranges.push(start..end);
            }
            return;
        }
        // First range that ends at or after `start`, first range that starts after `end`.
        let first = self.ranges.partition_point(|r| r.end < start);
        let after = self.ranges.partition_point(|r| r.start <= end);
        if first == after {
            self.ranges.insert(first, start..end);
            return;
        }
        let merged_start = start.min(self.ranges[first].start);
        let merged_end = end.max(self.ranges[after - 1].end);
        self.ranges[first] = merged_start..merged_end;
        self.ranges.drain(first + 1..after);
    }

    /// Forgets everything below `at`.
    pub(crate) fn remove_below(&mut self, at: u64) {
        let gone = self.ranges.partition_point(|r| r.end <= at);
        self.ranges.drain(..gone);
        if let Some(first) = self.ranges.first_mut() {
            first.start = first.start.max(at);
        }
    }

    /// The end of the run of offsets that starts at `from` (`from` itself when absent).
    pub(crate) fn contiguous_end(&self, from: u64) -> u64 {
        let index = self.ranges.partition_point(|r| r.end < from);
        match self.ranges.get(index) {
            Some(r) if r.start <= from => r.end.max(from),
            _ => from,
        }
    }

    /// Calls `f` with each sub-range of `start..end` that is not in the set, in order.
    pub(crate) fn for_each_gap(&self, start: u64, end: u64, mut f: impl FnMut(u64, u64)) {
        let mut cursor = start;
        let first = self.ranges.partition_point(|r| r.end <= start);
        for range in &self.ranges[first..] {
            if range.start >= end || cursor >= end {
                break;
            }
            if range.start > cursor {
                f(cursor, range.start);
            }
            cursor = cursor.max(range.end);
        }
        if cursor < end {
            f(cursor, end);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Range<u64>> {
        self.ranges.iter()
    }

    pub(crate) fn clear(&mut self) {
        self.ranges.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ranges(set: &RangeSet) -> Vec<Range<u64>> {
        set.iter().cloned().collect()
    }

    #[test]
    fn merges_overlapping_and_touching() {
        let mut set = RangeSet::default();
        set.insert(10, 20);
        set.insert(30, 40);
        set.insert(0, 5);
        assert_eq!(ranges(&set), vec![0..5, 10..20, 30..40]);
        set.insert(5, 10);
        assert_eq!(ranges(&set), vec![0..20, 30..40]);
        set.insert(15, 35);
        assert_eq!(ranges(&set), vec![0..40]);
        set.insert(3, 3);
        assert_eq!(ranges(&set), vec![0..40]);
        assert_eq!(set.contiguous_end(0), 40);
        assert_eq!(set.contiguous_end(41), 41);
        set.remove_below(25);
        assert_eq!(ranges(&set), vec![25..40]);
    }

    proptest! {
        #[test]
        fn matches_a_bitmap(inserts in prop::collection::vec((0u64..200, 0u64..40), 0..40), cut in 0u64..250) {
            let mut set = RangeSet::default();
            let mut bitmap = [false; 256];
            for (start, len) in inserts {
                set.insert(start, start + len);
                for b in &mut bitmap[start as usize..(start + len) as usize] {
                    *b = true;
                }
            }
            let list = ranges(&set);
            for pair in list.windows(2) {
                prop_assert!(pair[0].end < pair[1].start);
            }
            for (i, &b) in bitmap.iter().enumerate() {
                prop_assert_eq!(b, list.iter().any(|r| r.contains(&(i as u64))));
            }
            let run = bitmap.iter().take_while(|&&b| b).count() as u64;
            prop_assert_eq!(set.contiguous_end(0), run);
            let mut gaps = [false; 256];
            let mut last_end = 0;
            set.for_each_gap(cut / 2, cut, |s, e| {
                assert!(s < e && s >= last_end, "gaps are ordered and disjoint");
                last_end = e;
                for g in &mut gaps[s as usize..e as usize] {
                    *g = true;
                }
            });
            for (i, &gap) in gaps.iter().enumerate() {
                let inside = (cut / 2..cut).contains(&(i as u64));
                prop_assert_eq!(gap, inside && !bitmap[i]);
            }
            set.remove_below(cut);
            for (i, &b) in bitmap.iter().enumerate() {
                let expected = b && i as u64 >= cut;
                prop_assert_eq!(expected, set.iter().any(|r| r.contains(&(i as u64))));
            }
        }
    }
}
