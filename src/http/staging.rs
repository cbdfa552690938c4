//! The in-order reassembly buffer for stream bytes that must be read in order: the response
//! head and a chunked body.
//!
//! Bytes are stored at their stream offset, in any order and overlapping; the contiguous run
//! from the consumption point is read with `contiguous` and released with `consume`. The
//! buffer holds at most `window` bytes past the consumption point, so memory stays bounded
//! whatever the peer sends.

use super::error::HttpError;
use super::ranges::RangeSet;

#[derive(Debug)]
pub(crate) struct Staging {
    /// Stream offset of `data[0]`.
    base: u64,
    /// Stream offset up to which bytes have been consumed (`base <= consumed`).
    consumed: u64,
    data: Vec<u8>,
    /// Which stream offsets (all `>= consumed`) hold staged bytes.
    filled: RangeSet,
    window: u64,
}

impl Staging {
    pub(crate) fn new(window: usize) -> Staging {
        Staging {
            base: 0,
            consumed: 0,
            data: Vec::new(),
            filled: RangeSet::with_capacity(16),
            window: window as u64,
        }
    }

    /// The stream offset up to which bytes have been consumed.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The first stream offset that cannot be staged now.
    pub(crate) fn window_end(&self) -> u64 {
        self.consumed.saturating_add(self.window)
    }

    /// True when no bytes past the consumption point are staged.
    pub(crate) fn is_empty(&self) -> bool {
        self.filled.is_empty()
    }

    /// Stages `bytes` found at stream `offset`. Bytes already consumed are dropped; bytes
    /// beyond the window are an error.
    pub(crate) fn insert(&mut self, offset: u64, bytes: &[u8]) -> Result<(), HttpError> {
        let end = offset.saturating_add(bytes.len() as u64);
        if end <= self.consumed {
            return Ok(());
        }
        if end > self.window_end() {
            return Err(HttpError::ReassemblyWindowExceeded {
                end,
                consumed: self.consumed,
                window: self.window,
            });
        }
        let skip = self.consumed.saturating_sub(offset);
        let (offset, bytes) = (offset + skip, &bytes[skip as usize..]);
        // Both fit in usize: end - base <= (consumed - base) + window, see `consume`.
        let relative_start = (offset - self.base) as usize;
        let relative_end = (end - self.base) as usize;
        if self.data.len() < relative_end {
            self.data.resize(relative_end, 0);
        }
        self.data[relative_start..relative_end].copy_from_slice(bytes);
        self.filled.insert(offset, end);
        Ok(())
    }

    /// The staged bytes that follow the consumption point without a gap.
    pub(crate) fn contiguous(&self) -> &[u8] {
        let end = self.filled.contiguous_end(self.consumed);
        &self.data[(self.consumed - self.base) as usize..(end - self.base) as usize]
    }

    /// Every staged run past the consumption point, with its stream offset.
    pub(crate) fn staged(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.filled.iter().map(|(start, end)| {
            let bytes = &self.data[(start - self.base) as usize..(end - self.base) as usize];
            (start, bytes)
        })
    }

    /// Moves the consumption point `count` bytes on (past bytes that may or may not be
    /// staged: a caller that read them elsewhere skips them here).
    pub(crate) fn consume(&mut self, count: usize) {
        self.consumed = self.consumed.saturating_add(count as u64);
        self.filled.remove_below(self.consumed);
        if self.filled.is_empty() {
            self.data.clear();
            self.base = self.consumed;
        } else if self.consumed - self.base >= self.window / 2 {
            // Keeps `data` under 1.5 windows; in-order traffic rarely gets here.
            let dead = ((self.consumed - self.base) as usize).min(self.data.len());
            self.data.drain(..dead);
            self.base = self.consumed;
        }
    }

    /// Drops everything staged and gives the memory back.
    pub(crate) fn release(&mut self) {
        self.filled.clear();
        self.data = Vec::new();
        self.base = self.consumed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_then_contiguous() {
        let mut staging = Staging::new(100);
        staging.insert(5, b"fghij").unwrap();
        assert_eq!(staging.contiguous(), b"");
        staging.insert(0, b"abcd").unwrap();
        assert_eq!(staging.contiguous(), b"abcd");
        staging.insert(3, b"de").unwrap();
        assert_eq!(staging.contiguous(), b"abcdefghij");
        staging.consume(4);
        assert_eq!(staging.contiguous(), b"efghij");
        // Overlapping old bytes are dropped.
        staging.insert(0, b"abcdefghijk").unwrap();
        assert_eq!(staging.contiguous(), b"efghijk");
        staging.consume(7);
        assert!(staging.is_empty());
        assert_eq!(staging.consumed(), 11);
    }

    #[test]
    fn window_is_enforced_from_the_consumption_point() {
        let mut staging = Staging::new(10);
        assert!(staging.insert(5, b"12345").is_ok());
        assert_eq!(
            staging.insert(9, b"xx"),
            Err(HttpError::ReassemblyWindowExceeded {
                end: 11,
                consumed: 0,
                window: 10
            })
        );
        staging.insert(0, b"abcde").unwrap();
        staging.consume(6);
        staging.insert(10, b"abcdef").unwrap();
        assert_eq!(staging.contiguous(), b"2345abcdef");
        let runs: Vec<(u64, Vec<u8>)> = staging.staged().map(|(o, b)| (o, b.to_vec())).collect();
        assert_eq!(runs, vec![(6, b"2345abcdef".to_vec())]);
    }

    #[test]
    fn compaction_keeps_content() {
        let mut staging = Staging::new(8);
        for round in 0u8..50 {
            let offset = u64::from(round) * 4;
            // Leave a later run staged so that compaction (not clear) happens.
            staging.insert(offset + 5, &[round; 2]).unwrap();
            staging.insert(offset, &[round; 4]).unwrap();
            assert_eq!(staging.contiguous(), &[round; 4]);
            staging.consume(4);
        }
    }
}
