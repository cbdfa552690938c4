//! The byte ranges of the body that have arrived: the crate's one interval set,
//! [`crate::ranges::RangeSet`].
//!
//! TCP delivers a body mostly in order, with a few holes while losses are repaired, so the
//! set holds a handful of intervals. Touching and overlapping intervals are merged on insert,
//! so the first interval, when it starts at 0, is exactly the contiguous prefix; with several
//! connections writing different parts of one file, the whole set is what the control record
//! keeps for `-c` (`control.rs`).

pub use crate::ranges::RangeSet;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merges_touching_and_overlapping() {
        let mut set = RangeSet::new();
        set.insert(10, 20);
        set.insert(30, 40);
        assert_eq!(set.as_slice(), &[(10, 20), (30, 40)]);
        assert_eq!(set.contiguous_len(), 0);
        set.insert(20, 30);
        assert_eq!(set.as_slice(), &[(10, 40)]);
        set.insert(0, 10);
        assert_eq!(set.contiguous_len(), 40);
        set.insert(5, 50);
        assert_eq!(set.as_slice(), &[(0, 50)]);
        set.insert(60, 60);
        assert_eq!(set.as_slice(), &[(0, 50)]);
        assert_eq!(set.gaps(40, 70).collect::<Vec<_>>(), vec![(50, 70)]);
    }

    #[test]
    fn gaps_and_contains() {
        let mut set = RangeSet::new();
        set.insert(10, 20);
        set.insert(30, 40);
        assert_eq!(
            set.gaps(0, 50).collect::<Vec<_>>(),
            vec![(0, 10), (20, 30), (40, 50)]
        );
        assert_eq!(set.gaps(12, 35).collect::<Vec<_>>(), vec![(20, 30)]);
        assert_eq!(set.gaps(12, 18).collect::<Vec<_>>(), vec![]);
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
            for pair in set.as_slice().windows(2) {
                prop_assert!(pair[0].1 < pair[1].0);
            }
            for &(s, e) in set.as_slice() {
                prop_assert!(s < e);
            }
            let prefix = bits.iter().take_while(|&&b| b).count() as u64;
            prop_assert_eq!(set.contiguous_len(), prefix);
            prop_assert_eq!(set.covered(), bits.iter().filter(|&&b| b).count() as u64);
            let (start, len) = probe;
            let end = (start + len).min(240);
            let start = start.min(end);
            let missing: u64 = set.gaps(start, end).map(|(s, e)| e - s).sum();
            let expected = bits[start as usize..end as usize].iter().filter(|&&b| !b).count() as u64;
            prop_assert_eq!(missing, expected);
            prop_assert_eq!(set.contains(start, end), expected == 0);
        }
    }
}
