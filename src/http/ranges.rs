//! Which stream or body bytes have arrived: the crate's one interval set,
//! [`crate::ranges::RangeSet`].
//!
//! The exchange records the body offsets it handed on, the staging buffer the stream bytes
//! it holds past its consumption point. In-order arrivals extend the last range in place, so
//! the common case neither allocates nor moves anything.

pub(crate) use crate::ranges::RangeSet;

#[cfg(test)]
mod tests {
    use super::*;
    use core::ops::Range;
    use proptest::prelude::*;

    fn ranges(set: &RangeSet) -> Vec<Range<u64>> {
        set.iter().map(|(start, end)| start..end).collect()
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
            for (s, e) in set.gaps(cut / 2, cut) {
                prop_assert!(s < e && s >= last_end, "gaps are ordered and disjoint");
                last_end = e;
                for g in &mut gaps[s as usize..e as usize] {
                    *g = true;
                }
            }
            for (i, &gap) in gaps.iter().enumerate() {
                let inside = (cut / 2..cut).contains(&(i as u64));
                prop_assert_eq!(gap, inside && !bitmap[i]);
            }
            set.remove_below(cut);
            for (i, &b) in bitmap.iter().enumerate() {
                let expected = b && i as u64 >= cut;
                prop_assert_eq!(expected, ranges(&set).iter().any(|r| r.contains(&(i as u64))));
            }
        }
    }
}
