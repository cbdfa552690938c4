//! The bytes the application has handed to `send` and the peer has not acknowledged yet.
//!
//! Segments borrow their payload straight from here (`poll_transmit` returns a slice), so a
//! segment's bytes must be contiguous: the buffer is a `Vec` whose acknowledged front is
//! dropped lazily: compaction happens only once the acknowledged front is at least as long as
//! what remains, so it moves at most as many bytes as were acknowledged since the last one
//! (every byte is copied O(1) times on average) and capacity is reused: no allocation in
//! steady state.

/// A bounded FIFO of unacknowledged bytes; index 0 is the first unacknowledged byte.
#[derive(Clone, Debug)]
pub struct SendBuffer {
    storage: Vec<u8>,
    /// Bytes of `storage` before `head` are acknowledged and wait for compaction.
    head: usize,
    capacity: usize,
}

impl SendBuffer {
    /// A buffer of at most `capacity` bytes, clamped to [`SendBuffer::MAX_CAPACITY`].
    pub fn new(capacity: usize) -> SendBuffer {
        SendBuffer {
            storage: Vec::new(),
            head: 0,
            capacity: capacity.min(Self::MAX_CAPACITY),
        }
    }

    /// Unacknowledged data must stay well inside half the sequence space (RFC 9293 §3.4).
    pub const MAX_CAPACITY: usize = 1 << 30;

    /// Unacknowledged bytes held.
    pub fn len(&self) -> usize {
        self.storage.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many more bytes `push` would take now.
    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    /// Appends as much of `bytes` as fits; returns how many bytes were taken.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let taken = bytes.len().min(self.free());
        if taken == 0 {
            return 0;
        }
        // No compaction here: `consume` keeps `head < len`, so the storage never holds more
        // than twice the capacity, and compacting a nearly full buffer on every push would
        // move megabytes per ACK.
        self.storage.extend_from_slice(&bytes[..taken]);
        taken
    }

    /// Drops the first `count` bytes (they were acknowledged).
    pub fn consume(&mut self, count: usize) {
        self.head += count.min(self.len());
        if self.head == self.storage.len() {
            self.storage.clear();
            self.head = 0;
        } else if self.head >= self.len() {
            // Amortised: the bytes moved are no more than the bytes dropped since last time.
            self.compact();
        }
    }

    /// `len` bytes starting `offset` bytes after the first unacknowledged one, clipped to what
    /// is held.
    pub fn slice(&self, offset: usize, len: usize) -> &[u8] {
        let start = (self.head + offset).min(self.storage.len());
        let end = start.saturating_add(len).min(self.storage.len());
        &self.storage[start..end]
    }

    fn compact(&mut self) {
        self.storage.drain(..self.head);
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_is_bounded_and_consume_frees_space() {
        let mut buffer = SendBuffer::new(10);
        assert_eq!(buffer.push(b"hello world"), 10);
        assert_eq!(buffer.push(b"!"), 0);
        assert_eq!(buffer.slice(6, 100), b"worl");
        buffer.consume(6);
        assert_eq!(buffer.len(), 4);
        assert_eq!(buffer.push(b"d, hi"), 5);
        assert_eq!(buffer.slice(0, 100), b"world, hi");
        buffer.consume(100);
        assert!(buffer.is_empty());
        assert_eq!(buffer.slice(0, 5), b"");
    }

    #[test]
    fn streams_many_times_its_capacity() {
        let mut buffer = SendBuffer::new(1000);
        let mut next_in = 0u32;
        let mut next_out = 0u32;
        for round in 0..500 {
            while buffer.free() > 0 {
                let byte = [(next_in % 251) as u8];
                assert_eq!(buffer.push(&byte), 1);
                next_in += 1;
            }
            let take = 1 + round % 300;
            let slice = buffer.slice(0, take);
            for &b in slice {
                assert_eq!(b, (next_out % 251) as u8);
                next_out += 1;
            }
            let n = slice.len();
            buffer.consume(n);
        }
    }
}
