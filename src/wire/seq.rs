//! TCP sequence numbers: 32-bit values compared modulo 2^32.
//!
//! RFC 9293 §3.4: "all arithmetic dealing with sequence numbers must be performed modulo
//! 2**32". Two sequence numbers are ordered by the sign of their wrapping difference, which
//! is meaningful as long as they are less than 2^31 apart (always true inside a window).
//! Never compare raw `u32` sequence numbers; compare `SeqNumber`s.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence number with wrap-around-correct ordering.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// The larger of two sequence numbers (in modular order).
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self > other { self } else { other }
    }

    /// The smaller of two sequence numbers (in modular order).
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if self < other { self } else { other }
    }

    /// `self - earlier` as a byte count, or `None` if `earlier` is after `self`.
    pub fn distance_since(self, earlier: SeqNumber) -> Option<u32> {
        let diff = self.0.wrapping_sub(earlier.0) as i32;
        (diff >= 0).then_some(diff as u32)
    }

    /// Whether `self` lies in the half-open interval `[start, end)`.
    pub fn in_range(self, start: SeqNumber, end: SeqNumber) -> bool {
        start <= self && self < end
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SeqNumber {
    /// Modular order (RFC 1982 serial number arithmetic with SERIAL_BITS = 32). Numbers
    /// exactly 2^31 apart are incomparable in RFC 1982; we order them by the sign bit of the
    /// difference so that `Ord` stays total, which never matters inside a TCP window.
    fn cmp(&self, other: &SeqNumber) -> Ordering {
        (self.0.wrapping_sub(other.0) as i32).cmp(&0)
    }
}

impl Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, rhs: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(rhs))
    }
}

impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    /// # Panics
    /// If `rhs` does not fit in 31 bits: no window or segment is that large.
    fn add(self, rhs: usize) -> SeqNumber {
        assert!(
            rhs < (1 << 31),
            "sequence number increment {rhs} is too large"
        );
        SeqNumber(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<u32> for SeqNumber {
    fn add_assign(&mut self, rhs: u32) {
        *self = *self + rhs;
    }
}

impl AddAssign<usize> for SeqNumber {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl Sub for SeqNumber {
    type Output = i32;
    /// The signed distance from `rhs` to `self`.
    fn sub(self, rhs: SeqNumber) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn orders_across_the_wrap() {
        let before = SeqNumber(u32::MAX - 10);
        let after = before + 20u32;
        assert_eq!(after.0, 9);
        assert!(before < after);
        assert_eq!(after - before, 20);
        assert_eq!(before - after, -20);
        assert_eq!(after.distance_since(before), Some(20));
        assert_eq!(before.distance_since(after), None);
        assert!(SeqNumber(u32::MAX).in_range(before, after));
    }

    proptest! {
        #[test]
        fn adding_less_than_half_the_space_moves_forward(start: u32, step in 1u32..(1 << 31)) {
            let a = SeqNumber(start);
            let b = a + step;
            prop_assert!(a < b);
            prop_assert!(b > a);
            prop_assert_eq!(b - a, step as i32);
            prop_assert_eq!(b.distance_since(a), Some(step));
            prop_assert_eq!(a.max(b), b);
            prop_assert_eq!(a.min(b), a);
        }

        #[test]
        fn order_is_antisymmetric(x: u32, y: u32) {
            // Exactly 2^31 apart is the one pair RFC 1982 leaves undefined (see `cmp`).
            prop_assume!(x.wrapping_sub(y) != 1 << 31);
            let (a, b) = (SeqNumber(x), SeqNumber(y));
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        }
    }
}
