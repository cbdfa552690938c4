//! The ciphertext staging buffer: TCP payload at its stream offset, in any order, handed to
//! rustls as one contiguous in-order slice that it decrypts in place.
//!
//! The plain HTTP path needs no such buffer (every body byte goes straight to its file
//! offset); TLS does, because a record can only be decrypted whole and in order
//! (RFC 8446 §5.2: the record's sequence number is the nonce). Out-of-order segments wait
//! here at their offset; `tcp::assembler` remembers which ranges are present.
//!
//! ```text
//!  buffer:  [ consumed | live: in order ........ | holes and out-of-order | free ]
//!           0        start                in_order                              capacity
//! ```
//!
//! Consumed bytes (records rustls is done with) are reclaimed once per batch by moving the
//! live tail to the front, only when that is cheap (a partial record) or half the buffer is
//! spent, so no byte is moved more than about once on average.

use crate::tcp::assembler::Assembler;

/// Compacting is always allowed when at most this much would move (a partial record or two).
const CHEAP_MOVE: usize = 64 * 1024;

/// Stream bytes from `consumed` on, at their offset.
pub(crate) struct Staging {
    buffer: Vec<u8>,
    /// Stream offset of `buffer[0]`.
    base: u64,
    /// Index of the first byte not yet consumed (stream offset `base + start`).
    start: usize,
    /// Every byte before this stream offset has arrived.
    in_order: u64,
    /// The highest stream offset written, plus one.
    written_end: u64,
    /// Ranges that arrived beyond `in_order`.
    out_of_order: Assembler,
}

impl Staging {
    /// A buffer of `capacity` bytes, allocated once.
    pub(crate) fn new(capacity: usize) -> Staging {
        Staging {
            buffer: vec![0; capacity],
            base: 0,
            start: 0,
            in_order: 0,
            written_end: 0,
            out_of_order: Assembler::new(),
        }
    }

    /// The first stream offset that does not fit (what the TCP window may reach).
    pub(crate) fn window_end(&self) -> u64 {
        self.base + self.buffer.len() as u64
    }

    /// Every byte before this stream offset has arrived.
    #[cfg(test)]
    pub(crate) fn in_order(&self) -> u64 {
        self.in_order
    }

    /// Places `bytes` found at stream `offset`. Bytes already consumed are ignored. Returns
    /// false if some did not fit (past `window_end`): the caller advertised more window
    /// than this buffer has.
    pub(crate) fn store(&mut self, offset: u64, bytes: &[u8]) -> bool {
        let consumed = self.base + self.start as u64;
        let end = offset.saturating_add(bytes.len() as u64);
        if end <= consumed.max(self.in_order) {
            return true;
        }
        let skip = consumed.saturating_sub(offset) as usize;
        let (offset, bytes) = (offset + skip as u64, &bytes[skip..]);
        if end > self.window_end() {
            self.compact();
        }
        let fits = end <= self.window_end();
        let end = end.min(self.window_end());
        if end <= offset {
            return fits;
        }
        let from = (offset - self.base) as usize;
        let to = (end - self.base) as usize;
        self.buffer[from..to].copy_from_slice(&bytes[..to - from]);
        self.written_end = self.written_end.max(end);
        if offset <= self.in_order {
            self.in_order = self.out_of_order.advance(end.max(self.in_order));
        } else {
            self.out_of_order.insert(offset, end);
        }
        fits
    }

    /// The in-order bytes not yet consumed: what rustls may read (and decrypt in place).
    pub(crate) fn live_mut(&mut self) -> &mut [u8] {
        let end = (self.in_order - self.base) as usize;
        &mut self.buffer[self.start..end]
    }

    /// Drops `count` bytes from the front of the live slice.
    pub(crate) fn consume(&mut self, count: usize) {
        let live = (self.in_order - self.base) as usize - self.start;
        self.start += count.min(live);
    }

    /// Gives the consumed bytes' room back to the window, if moving what follows them is
    /// cheap or half the buffer is spent. Called once per batch, after every complete
    /// record was consumed, when usually only a partial record is left to move.
    pub(crate) fn reclaim(&mut self) {
        let tail = (self.written_end - self.base) as usize - self.start;
        if self.start > 0 && (tail <= CHEAP_MOVE || self.start >= self.buffer.len() / 2) {
            self.compact();
        }
    }

    /// Moves everything from `start` on to the front of the buffer.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        let tail_end = (self.written_end - self.base) as usize;
        self.buffer.copy_within(self.start..tail_end, 0);
        self.base += self.start as u64;
        self.start = 0;
    }
}

impl core::fmt::Debug for Staging {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Staging")
            .field("capacity", &self.buffer.len())
            .field("consumed", &(self.base + self.start as u64))
            .field("in_order", &self.in_order)
            .field("written_end", &self.written_end)
            .field("out_of_order", &self.out_of_order)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_bytes_become_live_and_are_reclaimed() {
        let mut staging = Staging::new(16);
        assert!(staging.store(0, b"abcdef"));
        assert_eq!(staging.live_mut(), b"abcdef");
        staging.consume(4);
        assert_eq!(staging.live_mut(), b"ef");
        assert_eq!(staging.window_end(), 16);
        staging.reclaim();
        // Cheap to move: the two live bytes went to the front.
        assert_eq!(staging.window_end(), 4 + 16);
        assert!(staging.store(6, b"ghij"));
        assert_eq!(staging.live_mut(), b"efghij");
    }

    #[test]
    fn a_hole_holds_later_bytes_back_until_it_fills() {
        let mut staging = Staging::new(32);
        assert!(staging.store(4, b"efgh"));
        assert!(staging.store(12, b"mn"));
        assert_eq!(staging.live_mut(), b"");
        assert!(staging.store(0, b"abcd"));
        assert_eq!(staging.live_mut(), b"abcdefgh");
        assert!(staging.store(8, b"ijkl"));
        assert_eq!(staging.live_mut(), b"abcdefghijklmn");
        assert_eq!(staging.in_order(), 14);
        // Duplicates and overlaps change nothing.
        assert!(staging.store(2, b"cdefgh"));
        assert_eq!(staging.live_mut(), b"abcdefghijklmn");
    }

    #[test]
    fn bytes_past_the_window_are_reported() {
        let mut staging = Staging::new(8);
        assert!(!staging.store(4, b"efghijkl"));
        assert!(staging.store(0, b"abcd"));
        assert_eq!(staging.live_mut(), b"abcdefgh");
        staging.consume(8);
        staging.reclaim();
        assert_eq!(staging.window_end(), 16);
        assert!(staging.store(8, b"ijklmnop"));
        assert_eq!(staging.live_mut(), b"ijklmnop");
    }
}
