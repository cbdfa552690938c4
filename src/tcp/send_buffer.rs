//! The bytes the application has handed to the connection and the peer has not acknowledged
//! yet: copied in ([`SendBuffer::push`]) or lent ([`SendBuffer::lend`]).
//!
//! The send stream is a queue of *pieces*, in stream order:
//!
//! - **Owned** bytes were copied in by `push` (a client's request, a server's response head)
//!   and live in one `Vec` in stream order, whose acknowledged front is dropped lazily:
//!   compaction happens only once the acknowledged front is at least as long as what
//!   remains, so it moves at most as many bytes as were acknowledged since the last one
//!   (every byte is copied O(1) times on average) and capacity is reused: no allocation in
//!   steady state.
//! - **Lent** bytes stay where the application keeps them ([`SharedBytes`], e.g. a read-only
//!   mapping of a file): the buffer holds a reference and a range, never a copy. A segment's
//!   payload is read from there when the segment is built, and again, from the same offsets,
//!   when it is retransmitted; the frame writer's copy is then the only copy of the byte.
//!
//! A segment's payload must be one slice ([`crate::wire::TcpRepr`]): [`SendBuffer::segment`]
//! borrows it straight from its piece, and only a segment that straddles two pieces (a
//! response head and the start of its body, once per response) is assembled in a small
//! per-buffer scratch first.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

/// Bytes the application lends the connection instead of copying them into the send buffer.
///
/// The contract: `bytes()` returns the same bytes every time, for as long as any piece of
/// the send buffer refers to them (the reference keeps them alive; what keeps their
/// *content* from changing, e.g. a lease on a mapped file, is the lender's job).
pub trait SharedBytes: Send + Sync + fmt::Debug {
    fn bytes(&self) -> &[u8];
}

/// Where a piece's bytes are.
#[derive(Clone, Debug)]
enum Source {
    /// In `storage`, from absolute owned offset `at` on (owned bytes counted since the start).
    Owned { at: u64 },
    /// `lent.bytes()[from..]`.
    Lent {
        lent: Arc<dyn SharedBytes>,
        from: usize,
    },
}

/// A run of the send stream with one source.
#[derive(Clone, Debug)]
struct Piece {
    /// Absolute stream offset of its first byte (bytes counted since the buffer was made).
    start: u64,
    len: usize,
    source: Source,
}

impl Piece {
    fn end(&self) -> u64 {
        self.start + self.len as u64
    }
}

/// A bounded FIFO of unacknowledged bytes; index 0 is the first unacknowledged byte.
#[derive(Clone, Debug)]
pub struct SendBuffer {
    /// Owned bytes, in stream order.
    storage: Vec<u8>,
    /// Bytes of `storage` before `head` are acknowledged and wait for compaction.
    head: usize,
    /// The absolute owned offset of `storage[head]`.
    owned_front: u64,
    /// The stream, in order; the first piece starts at `front`.
    pieces: VecDeque<Piece>,
    /// Absolute stream offset of index 0 (bytes acknowledged so far).
    front: u64,
    /// Bytes held (owned and lent).
    len: usize,
    capacity: usize,
    /// A segment that straddles pieces, assembled (at most one MSS).
    scratch: Vec<u8>,
    /// Payload bytes read from lent pieces into segments, retransmissions included.
    lent_bytes_sent: u64,
}

impl SendBuffer {
    /// A buffer of at most `capacity` bytes, clamped to [`SendBuffer::MAX_CAPACITY`].
    pub fn new(capacity: usize) -> SendBuffer {
        SendBuffer {
            storage: Vec::new(),
            head: 0,
            owned_front: 0,
            pieces: VecDeque::new(),
            front: 0,
            len: 0,
            capacity: capacity.min(Self::MAX_CAPACITY),
            scratch: Vec::new(),
            lent_bytes_sent: 0,
        }
    }

    /// Unacknowledged data must stay well inside half the sequence space (RFC 9293 §3.4).
    pub const MAX_CAPACITY: usize = 1 << 30;

    /// Unacknowledged bytes held, owned and lent.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many more bytes `push` or `lend` would take now (lent bytes count like owned
    /// ones: the capacity bounds how far the application may run ahead of the peer).
    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    /// Payload bytes read from lent pieces into segments so far, retransmissions included.
    pub fn lent_bytes_sent(&self) -> u64 {
        self.lent_bytes_sent
    }

    /// Appends as much of `bytes` as fits (a copy); returns how many bytes were taken.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let taken = bytes.len().min(self.free());
        if taken == 0 {
            return 0;
        }
        // No compaction here: `consume` keeps `head < len`, so the storage never holds more
        // than twice the capacity, and compacting a nearly full buffer on every push would
        // move megabytes per ACK.
        let owned_end = self.owned_front + (self.storage.len() - self.head) as u64;
        self.storage.extend_from_slice(&bytes[..taken]);
        let end = self.front + self.len as u64;
        match self.pieces.back_mut() {
            // Owned bytes are stored in stream order, so a run of them is one piece.
            Some(last) if matches!(last.source, Source::Owned { .. }) => last.len += taken,
            _ => self.pieces.push_back(Piece {
                start: end,
                len: taken,
                source: Source::Owned { at: owned_end },
            }),
        }
        self.len += taken;
        taken
    }

    /// Appends as much of `lent.bytes()[range]` as fits, by reference; returns how many
    /// bytes were taken. A range that continues the last lent piece extends it.
    pub fn lend(&mut self, lent: &Arc<dyn SharedBytes>, range: core::ops::Range<usize>) -> usize {
        let available = lent.bytes().len();
        let range = range.start.min(available)..range.end.min(available);
        let taken = range.len().min(self.free());
        if taken == 0 {
            return 0;
        }
        let end = self.front + self.len as u64;
        match self.pieces.back_mut() {
            Some(Piece {
                len,
                source: Source::Lent { lent: last, from },
                ..
            }) if Arc::ptr_eq(last, lent) && *from + *len == range.start => *len += taken,
            _ => self.pieces.push_back(Piece {
                start: end,
                len: taken,
                source: Source::Lent {
                    lent: Arc::clone(lent),
                    from: range.start,
                },
            }),
        }
        self.len += taken;
        taken
    }

    /// Drops the first `count` bytes (they were acknowledged), and with them the
    /// references to lent bytes no longer needed.
    pub fn consume(&mut self, count: usize) {
        let count = count.min(self.len);
        self.front += count as u64;
        self.len -= count;
        let mut owned_dropped = 0;
        while let Some(piece) = self.pieces.front_mut() {
            if piece.end() <= self.front {
                if matches!(piece.source, Source::Owned { .. }) {
                    owned_dropped += piece.len;
                }
                self.pieces.pop_front();
                continue;
            }
            if piece.start < self.front {
                let cut = (self.front - piece.start) as usize;
                piece.start = self.front;
                piece.len -= cut;
                match &mut piece.source {
                    Source::Owned { at } => {
                        *at += cut as u64;
                        owned_dropped += cut;
                    }
                    Source::Lent { from, .. } => *from += cut,
                }
            }
            break;
        }
        self.owned_front += owned_dropped as u64;
        self.head += owned_dropped;
        if self.head == self.storage.len() {
            self.storage.clear();
            self.head = 0;
        } else if self.head >= self.storage.len() - self.head {
            // Amortised: the bytes moved are no more than the bytes dropped since last time.
            self.storage.drain(..self.head);
            self.head = 0;
        }
    }

    /// Drops everything held (the connection is gone): lent bytes are released at once.
    pub fn clear(&mut self) {
        self.consume(self.len);
        self.scratch = Vec::new();
    }

    /// The piece holding absolute stream offset `at` (which must be held).
    fn piece_at(&self, at: u64) -> usize {
        self.pieces.partition_point(|piece| piece.end() <= at)
    }

    /// The bytes of `piece` from absolute stream offset `at` on, to the piece's end.
    fn piece_bytes<'a>(&'a self, piece: &'a Piece, at: u64) -> &'a [u8] {
        let skip = (at - piece.start) as usize;
        match &piece.source {
            Source::Owned { at: owned } => {
                let start = self.head + (owned - self.owned_front) as usize + skip;
                &self.storage[start..start + piece.len - skip]
            }
            Source::Lent { lent, from } => &lent.bytes()[from + skip..from + piece.len],
        }
    }

    /// `len` bytes starting `offset` bytes after the first unacknowledged one, clipped to
    /// what is held and to the piece that holds `offset` (so possibly shorter; see
    /// [`SendBuffer::segment`] for a payload of exactly `len` bytes).
    pub fn slice(&self, offset: usize, len: usize) -> &[u8] {
        if offset >= self.len {
            return &[];
        }
        let at = self.front + offset as u64;
        let piece = &self.pieces[self.piece_at(at)];
        let bytes = self.piece_bytes(piece, at);
        &bytes[..len.min(bytes.len())]
    }

    /// The payload of a segment: `len` bytes from `offset` (clipped to what is held), as
    /// one slice. Borrowed from its piece when one piece holds it all (owned or lent: the
    /// caller's copy into the frame is then the only copy); assembled in the scratch when
    /// it straddles pieces.
    pub fn segment(&mut self, offset: usize, len: usize) -> &[u8] {
        let len = len.min(self.len.saturating_sub(offset));
        if len == 0 {
            return &[];
        }
        let at = self.front + offset as u64;
        let first = self.piece_at(at);
        // Count what comes from lent pieces (for `TcpStats::lent_bytes_sent`).
        let mut lent = 0;
        let mut covered = 0;
        for piece in self.pieces.range(first..) {
            if covered >= len {
                break;
            }
            let here = ((piece.end() - at) as usize).min(len) - covered;
            if matches!(piece.source, Source::Lent { .. }) {
                lent += here;
            }
            covered += here;
        }
        self.lent_bytes_sent += lent as u64;
        if self.pieces[first].end() >= at + len as u64 {
            let piece = &self.pieces[first];
            return &self.piece_bytes(piece, at)[..len];
        }
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch.clear();
        let mut next = at;
        for piece in self.pieces.range(first..) {
            let want = len - scratch.len();
            if want == 0 {
                break;
            }
            let bytes = self.piece_bytes(piece, next);
            let n = want.min(bytes.len());
            scratch.extend_from_slice(&bytes[..n]);
            next += n as u64;
        }
        self.scratch = scratch;
        &self.scratch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[derive(Debug)]
    struct Lent(Vec<u8>);

    impl SharedBytes for Lent {
        fn bytes(&self) -> &[u8] {
            &self.0
        }
    }

    fn lent(bytes: &[u8]) -> Arc<dyn SharedBytes> {
        Arc::new(Lent(bytes.to_vec()))
    }

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

    #[test]
    fn lent_bytes_are_referenced_and_segments_straddle_pieces() {
        let body = lent(b"0123456789abcdefghij");
        let mut buffer = SendBuffer::new(100);
        assert_eq!(buffer.push(b"HEAD:"), 5);
        assert_eq!(buffer.lend(&body, 0..10), 10);
        // The next range of the same bytes extends the piece; a gap starts a new one.
        assert_eq!(buffer.lend(&body, 10..15), 5);
        assert_eq!(buffer.pieces.len(), 2);
        assert_eq!(buffer.lend(&body, 16..18), 2);
        assert_eq!(buffer.push(b"!"), 1);
        assert_eq!(buffer.len(), 23);
        // Inside one piece: borrowed from the lender's bytes, no scratch.
        let direct = buffer.segment(6, 4);
        assert_eq!(direct, b"1234");
        assert_eq!(direct.as_ptr(), body.bytes()[1..].as_ptr());
        // Across the head and the body, and across three pieces.
        assert_eq!(buffer.segment(3, 4), b"D:01");
        assert_eq!(buffer.segment(18, 100), b"degh!");
        assert_eq!(buffer.lent_bytes_sent(), 4 + 2 + 4);
        // Acknowledging the head and part of the body keeps the rest addressable.
        buffer.consume(8);
        assert_eq!(buffer.segment(0, 100), b"3456789abcdegh!");
        buffer.consume(14);
        assert_eq!(buffer.segment(0, 100), b"!");
        assert_eq!(buffer.pieces.len(), 1);
        buffer.clear();
        assert!(buffer.is_empty());
        assert_eq!(Arc::strong_count(&body), 1, "the reference is dropped");
    }

    #[test]
    fn lend_is_bounded_by_the_capacity_and_the_lender() {
        let body = lent(&[7; 50]);
        let mut buffer = SendBuffer::new(30);
        assert_eq!(buffer.lend(&body, 40..80), 10);
        assert_eq!(buffer.lend(&body, 0..50), 20);
        assert_eq!(buffer.lend(&body, 0..50), 0);
        assert_eq!(buffer.push(b"x"), 0);
    }

    /// Random pushes, loans, reads and acknowledgements against a model of the stream.
    #[test]
    fn mixed_pieces_match_a_model_under_random_use() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let sources: Vec<Arc<dyn SharedBytes>> = (0..3)
            .map(|s| {
                let bytes: Vec<u8> = (0..5000).map(|i| ((i * 31 + s * 7) % 256) as u8).collect();
                lent(&bytes)
            })
            .collect();
        let mut buffer = SendBuffer::new(4000);
        let mut model: VecDeque<u8> = VecDeque::new();
        for _ in 0..5000 {
            match rng.gen_range(0..4) {
                0 => {
                    let len = rng.gen_range(0..300);
                    let bytes: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
                    let taken = buffer.push(&bytes);
                    model.extend(&bytes[..taken]);
                }
                1 => {
                    let source = &sources[rng.gen_range(0..3)];
                    let start = rng.gen_range(0..5000);
                    let end = rng.gen_range(start..=5000);
                    let taken = buffer.lend(source, start..end);
                    model.extend(&source.bytes()[start..start + taken]);
                }
                2 => {
                    let offset = rng.gen_range(0..=model.len());
                    let len = rng.gen_range(0..3000);
                    let expect: Vec<u8> = model.iter().skip(offset).take(len).copied().collect();
                    assert_eq!(buffer.segment(offset, len), &expect[..]);
                    let part = buffer.slice(offset, len);
                    assert_eq!(part, &expect[..part.len()]);
                }
                _ => {
                    let count = rng.gen_range(0..=model.len());
                    buffer.consume(count);
                    model.drain(..count);
                }
            }
            assert_eq!(buffer.len(), model.len());
            assert!(buffer.storage.len() <= 2 * 4000 + 300);
        }
    }
}
