//! The crate's one interval set: which byte offsets of a stream, a body or a file are "in".
//!
//! Four places ask the same question: the TCP receive side (which stream ranges beyond
//! RCV.NXT arrived, `tcp::assembler`), the HTTP exchange and its staging buffer (which stream
//! or body bytes arrived, `http::ranges`), the sinks (which body bytes are in the file,
//! `sink::ranges`, and the finished ranges of the control record) and the segment planner
//! (which bytes are finished, `engine::segments`). They all use [`RangeSet`].
//!
//! A [`RangeSet`] is a sorted `Vec` of disjoint, non-touching, non-empty half-open ranges
//! `[start, end)` of `u64` offsets, merged on insert. Data arrives mostly in order with a
//! handful of holes, so the set holds few ranges and a `Vec` beats a tree: an in-order
//! arrival extends the last range in place (no search, no move), and a lookup is a binary
//! search over a few cache lines. Once its capacity has grown to the largest number of
//! ranges it held, no operation allocates (only [`RangeSet::gaps`] is lazy, and
//! [`RangeSet::retain_largest`], which is not for the hot path).

/// A set of `u64` offsets kept as sorted, disjoint, non-touching half-open ranges
/// `(start, end)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// Invariant: `start < end` for each, and `a.end < b.start` for each neighbour pair.
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    /// The empty set.
    pub const fn new() -> RangeSet {
        RangeSet { ranges: Vec::new() }
    }

    /// The empty set, with room for `capacity` ranges before it allocates.
    pub fn with_capacity(capacity: usize) -> RangeSet {
        RangeSet {
            ranges: Vec::with_capacity(capacity),
        }
    }

    /// The set holding `start..end` (empty if `end <= start`).
    pub fn from_range(start: u64, end: u64) -> RangeSet {
        let mut set = RangeSet::new();
        set.insert(start, end);
        set
    }

    /// Adds `start..end` (nothing if `end <= start`), merging with ranges it overlaps or
    /// touches.
    pub fn insert(&mut self, start: u64, end: u64) {
        if end <= start {
            return;
        }
        // Fast path: extends the last range, or lies beyond it (in-order arrival).
        if let Some(last) = self.ranges.last_mut()
            && start >= last.0
        {
            if start <= last.1 {
                last.1 = last.1.max(end);
            } else {
                self.ranges.push((start, end));
            }
            return;
        }
        // The first range whose end reaches `start`; one past the last that starts by `end`.
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        let after = self.ranges.partition_point(|&(s, _)| s <= end);
        if first == after {
            self.ranges.insert(first, (start, end));
            return;
        }
        let merged = (
            start.min(self.ranges[first].0),
            end.max(self.ranges[after - 1].1),
        );
        self.ranges[first] = merged;
        self.ranges.drain(first + 1..after);
    }

    /// Takes `start..end` out of the set (nothing if `end <= start`), splitting a range that
    /// holds it in the middle.
    pub fn remove(&mut self, start: u64, end: u64) {
        if end <= start {
            return;
        }
        // Ranges `first..after` overlap `start..end` (touching is not overlapping here).
        let first = self.ranges.partition_point(|&(_, e)| e <= start);
        let after = self.ranges.partition_point(|&(s, _)| s < end);
        if first >= after {
            return;
        }
        let (left, right) = (self.ranges[first], self.ranges[after - 1]);
        match (left.0 < start, right.1 > end) {
            (true, true) if first + 1 == after => {
                self.ranges[first].1 = start;
                self.ranges.insert(first + 1, (end, right.1));
            }
            (true, true) => {
                self.ranges[first].1 = start;
                self.ranges[after - 1].0 = end;
                self.ranges.drain(first + 1..after - 1);
            }
            (true, false) => {
                self.ranges[first].1 = start;
                self.ranges.drain(first + 1..after);
            }
            (false, true) => {
                self.ranges[after - 1].0 = end;
                self.ranges.drain(first..after - 1);
            }
            (false, false) => {
                self.ranges.drain(first..after);
            }
        }
    }

    /// Forgets every offset below `at`.
    pub fn remove_below(&mut self, at: u64) {
        self.remove(0, at);
    }

    /// Given that every offset below `from` is in (elsewhere), forgets the set below the end
    /// of the run that starts at `from`, and returns that end. This is how RCV.NXT jumps over
    /// data that arrived out of order.
    pub fn advance(&mut self, from: u64) -> u64 {
        if self.ranges.is_empty() {
            return from;
        }
        let end = self.contiguous_end(from);
        self.remove_below(end);
        end
    }

    /// The end of the run of offsets that starts at `from` (`from` itself when `from` is
    /// not in the set).
    pub fn contiguous_end(&self, from: u64) -> u64 {
        let index = self.ranges.partition_point(|&(_, e)| e < from);
        match self.ranges.get(index) {
            Some(&(s, e)) if s <= from => e.max(from),
            _ => from,
        }
    }

    /// The length of the run that starts at offset 0: the contiguous prefix.
    pub fn contiguous_len(&self) -> u64 {
        match self.ranges.first() {
            Some(&(0, end)) => end,
            _ => 0,
        }
    }

    /// Whether every offset of `start..end` is in the set (true when empty).
    pub fn contains(&self, start: u64, end: u64) -> bool {
        if end <= start {
            return true;
        }
        self.range_containing(start).is_some_and(|(_, e)| end <= e)
    }

    /// The range that holds `offset`, if any.
    pub fn range_containing(&self, offset: u64) -> Option<(u64, u64)> {
        let index = self.ranges.partition_point(|&(_, e)| e <= offset);
        self.ranges
            .get(index)
            .copied()
            .filter(|&(s, _)| s <= offset)
    }

    /// The parts of `start..end` that are not in the set, in order. Lazy: allocates nothing.
    pub fn gaps(&self, start: u64, end: u64) -> Gaps<'_> {
        let first = self.ranges.partition_point(|&(_, e)| e <= start);
        Gaps {
            ranges: &self.ranges[first..],
            cursor: start,
            end,
        }
    }

    /// Calls `f` with each part of `start..end` that is not in the set, in order (the
    /// callback form of [`RangeSet::gaps`]).
    pub fn for_each_gap(&self, start: u64, end: u64, mut f: impl FnMut(u64, u64)) {
        for (gap_start, gap_end) in self.gaps(start, end) {
            f(gap_start, gap_end);
        }
    }

    /// The number of offsets in the set.
    pub fn covered(&self) -> u64 {
        self.ranges.iter().map(|&(s, e)| e - s).sum()
    }

    /// The number of offsets of `start..end` in the set.
    pub fn covered_within(&self, start: u64, end: u64) -> u64 {
        let first = self.ranges.partition_point(|&(_, e)| e <= start);
        self.ranges[first..]
            .iter()
            .take_while(|&&(s, _)| s < end)
            .map(|&(s, e)| e.min(end) - s.max(start))
            .sum()
    }

    /// One past the highest offset in the set (0 when empty).
    pub fn end(&self) -> u64 {
        self.ranges.last().map_or(0, |&(_, end)| end)
    }

    /// The lowest range.
    pub fn first(&self) -> Option<(u64, u64)> {
        self.ranges.first().copied()
    }

    /// The highest range.
    pub fn last(&self) -> Option<(u64, u64)> {
        self.ranges.last().copied()
    }

    /// The number of disjoint ranges (one more than the holes between them).
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Empties the set, keeping its capacity.
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// The ranges, lowest first (`.rev()` for highest first).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, u64)> + ExactSizeIterator + '_ {
        self.ranges.iter().copied()
    }

    /// The ranges as a slice, lowest first.
    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Keeps at most `max` ranges by dropping the shortest ones (the later of equals first),
    /// so the set only ever shrinks: a bounded record under-claims, never over-claims.
    /// Not for the hot path: sorts a copy of the lengths.
    pub fn retain_largest(&mut self, max: usize) {
        if self.ranges.len() <= max {
            return;
        }
        // The length of the `max`-th longest range; ranges shorter than it go, and of those
        // exactly as long, the earliest stay.
        let mut lengths: Vec<u64> = self.ranges.iter().map(|&(s, e)| e - s).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&threshold) = lengths.get(max.wrapping_sub(1)) else {
            self.ranges.clear();
            return;
        };
        let longer = lengths.iter().filter(|&&l| l > threshold).count();
        let mut equal_room = max - longer;
        self.ranges.retain(|&(s, e)| {
            let length = e - s;
            if length > threshold {
                true
            } else if length == threshold && equal_room > 0 {
                equal_room -= 1;
                true
            } else {
                false
            }
        });
    }
}

impl FromIterator<(u64, u64)> for RangeSet {
    fn from_iter<I: IntoIterator<Item = (u64, u64)>>(iter: I) -> RangeSet {
        let mut set = RangeSet::new();
        for (start, end) in iter {
            set.insert(start, end);
        }
        set
    }
}

/// The holes of a [`RangeSet`] within a span, from [`RangeSet::gaps`].
#[derive(Clone, Debug)]
pub struct Gaps<'a> {
    /// The ranges not yet passed, starting with the first that ends after the cursor.
    ranges: &'a [(u64, u64)],
    cursor: u64,
    end: u64,
}

impl Iterator for Gaps<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        while self.cursor < self.end {
            match self.ranges.split_first() {
                Some((&(s, e), rest)) if s < self.end => {
                    self.ranges = rest;
                    let gap = (self.cursor, s);
                    self.cursor = self.cursor.max(e);
                    if gap.0 < gap.1 {
                        return Some(gap);
                    }
                }
                _ => {
                    let gap = (self.cursor, self.end);
                    self.cursor = self.end;
                    return Some(gap);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn list(set: &RangeSet) -> Vec<(u64, u64)> {
        set.iter().collect()
    }

    #[test]
    fn merges_overlapping_and_touching() {
        let mut set = RangeSet::new();
        set.insert(10, 20);
        set.insert(30, 40);
        set.insert(0, 5);
        assert_eq!(list(&set), [(0, 5), (10, 20), (30, 40)]);
        set.insert(5, 10);
        assert_eq!(list(&set), [(0, 20), (30, 40)]);
        set.insert(15, 35);
        assert_eq!(list(&set), [(0, 40)]);
        set.insert(3, 3);
        set.insert(9, 2);
        assert_eq!(list(&set), [(0, 40)]);
        assert_eq!(set.contiguous_len(), 40);
        assert_eq!(set.contiguous_end(41), 41);
    }

    #[test]
    fn remove_splits_trims_and_drops() {
        let mut set: RangeSet = [(0, 100), (200, 300), (400, 500)].into_iter().collect();
        set.remove(50, 60);
        assert_eq!(list(&set), [(0, 50), (60, 100), (200, 300), (400, 500)]);
        set.remove(90, 450);
        assert_eq!(list(&set), [(0, 50), (60, 90), (450, 500)]);
        set.remove(0, 50);
        assert_eq!(list(&set), [(60, 90), (450, 500)]);
        set.remove(100, 200);
        assert_eq!(list(&set), [(60, 90), (450, 500)]);
        set.remove(0, 1000);
        assert!(set.is_empty());
    }

    #[test]
    fn gaps_contains_and_counts() {
        let set: RangeSet = [(10, 20), (30, 40)].into_iter().collect();
        assert_eq!(
            set.gaps(0, 50).collect::<Vec<_>>(),
            [(0, 10), (20, 30), (40, 50)]
        );
        assert_eq!(set.gaps(12, 35).collect::<Vec<_>>(), [(20, 30)]);
        assert_eq!(set.gaps(12, 18).count(), 0);
        assert_eq!(set.gaps(20, 30).collect::<Vec<_>>(), [(20, 30)]);
        assert!(set.contains(10, 20));
        assert!(!set.contains(15, 25));
        assert!(set.contains(5, 5));
        assert_eq!(set.covered(), 20);
        assert_eq!(set.covered_within(15, 35), 10);
        assert_eq!(set.end(), 40);
        assert_eq!(set.range_containing(19), Some((10, 20)));
        assert_eq!(set.range_containing(20), None);
        assert_eq!(set.iter().next_back(), Some((30, 40)));
    }

    #[test]
    fn retain_largest_only_drops() {
        let mut set: RangeSet = [(0, 10), (20, 21), (30, 35), (40, 41), (50, 60)]
            .into_iter()
            .collect();
        set.retain_largest(3);
        assert_eq!(list(&set), [(0, 10), (30, 35), (50, 60)]);
        let mut ties: RangeSet = [(0, 1), (2, 3), (4, 5)].into_iter().collect();
        ties.retain_largest(2);
        assert_eq!(list(&ties), [(0, 1), (2, 3)]);
        ties.retain_largest(0);
        assert!(ties.is_empty());
    }

    /// Random inserts and removes against a bitmap model: every query agrees, and the
    /// invariant (sorted, disjoint, not touching, not empty) holds after each step. Seeded and
    /// bounded: 300 rounds of up to 60 operations over 256 offsets.
    #[test]
    fn agrees_with_a_bitmap_model() {
        const SPACE: u64 = 256;
        let mut rng = ChaCha8Rng::seed_from_u64(0x5e7);
        for _ in 0..300 {
            let mut set = RangeSet::new();
            let mut model = [false; SPACE as usize];
            for _ in 0..rng.gen_range(0..60) {
                let start = rng.gen_range(0..SPACE);
                let end = (start + rng.gen_range(0..40)).min(SPACE);
                let op = rng.gen_range(0..10);
                let value = match op {
                    0..=6 => {
                        set.insert(start, end);
                        true
                    }
                    7 | 8 => {
                        set.remove(start, end);
                        false
                    }
                    _ => {
                        set.remove_below(start);
                        model[..start as usize].fill(false);
                        continue;
                    }
                };
                model[start as usize..end as usize].fill(value);
                check_against(&set, &model, &mut rng);
            }
        }
    }

    fn check_against(set: &RangeSet, model: &[bool], rng: &mut ChaCha8Rng) {
        let space = model.len() as u64;
        let slice = set.as_slice();
        for &(s, e) in slice {
            assert!(s < e, "{slice:?}");
        }
        for pair in slice.windows(2) {
            assert!(pair[0].1 < pair[1].0, "{slice:?}");
        }
        let bit = |i: u64| model.get(i as usize).copied().unwrap_or(false);
        for i in 0..space {
            assert_eq!(
                set.range_containing(i).is_some(),
                bit(i),
                "{i} in {slice:?}"
            );
        }
        assert_eq!(set.covered(), model.iter().filter(|&&b| b).count() as u64);
        assert_eq!(
            set.contiguous_len(),
            model.iter().take_while(|&&b| b).count() as u64
        );
        let from = rng.gen_range(0..space);
        let run = (from..space).take_while(|&i| bit(i)).count() as u64;
        assert_eq!(set.contiguous_end(from), from + run);
        let start = rng.gen_range(0..space);
        let end = rng.gen_range(start..=space);
        let mut gap_model = vec![false; model.len()];
        let mut last_end = start;
        for (s, e) in set.gaps(start, end) {
            assert!(s < e && s >= last_end && e <= end, "gap {s}..{e}");
            last_end = e;
            gap_model[s as usize..e as usize].fill(true);
        }
        for i in 0..space {
            let expected = (start..end).contains(&i) && !bit(i);
            assert_eq!(gap_model[i as usize], expected, "gap at {i}");
        }
        let inside = (start..end).filter(|&i| bit(i)).count() as u64;
        assert_eq!(set.covered_within(start, end), inside);
        assert_eq!(set.contains(start, end), inside == end - start);
        let mut bounded = set.clone();
        let max = rng.gen_range(0..4);
        bounded.retain_largest(max);
        assert!(bounded.range_count() <= max);
        for (s, e) in bounded.iter() {
            assert!(set.contains(s, e), "retain_largest never claims more");
        }
    }
}
