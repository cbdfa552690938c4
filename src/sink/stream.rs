//! Streaming sinks: bytes that cannot be placed at an offset (stdout, a pipe, a device) and
//! bytes that go nowhere (`/dev/null`).
//!
//! A stream must leave in order, so bytes that arrive past a hole wait in a reorder buffer
//! until the hole is filled. The buffer is bounded ([`SinkOptions::reorder_limit`], 32 MiB by
//! default); the engine keeps the TCP receive window within [`StreamSink::reorder_limit`], so
//! a well-behaved connection never fills it, and a full buffer is an error, never a silent
//! drop (the engine believes what the sink accepted is stored).
//!
//! [`SinkOptions::reorder_limit`]: super::SinkOptions::reorder_limit

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use super::{RangeSet, SinkError};

/// Writes the body in order to any `Write`, holding out-of-order bytes until their turn.
#[derive(Debug)]
pub struct StreamSink<W: Write> {
    out: W,
    /// What the user calls it ("standard output", a path), for error messages.
    name: PathBuf,
    length: Option<u64>,
    arrived: RangeSet,
    /// Bytes `0..written` have been handed to `out`.
    written: u64,
    /// Out-of-order pieces by offset; disjoint (only bytes not yet arrived are stored).
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    limit: usize,
}

impl<W: Write> StreamSink<W> {
    /// A stream sink writing to `out`. `length` is the body length when known.
    pub fn new(out: W, name: PathBuf, length: Option<u64>, limit: usize) -> StreamSink<W> {
        StreamSink {
            out,
            name,
            length,
            arrived: RangeSet::new(),
            written: 0,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            limit,
        }
    }

    /// Places `bytes` at `offset`: written now if in order, held otherwise. Bytes already
    /// arrived are ignored.
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), SinkError> {
        let end = check_bounds(&self.name, self.length, offset, bytes)?;
        if end <= offset {
            return Ok(());
        }
        // Fast path: in order, nothing waiting. The common case costs one copy into `out`.
        if self.pending.is_empty() && offset <= self.written && end > self.written {
            let skip = usize::try_from(self.written - offset).unwrap_or(usize::MAX);
            let fresh = bytes.get(skip..).unwrap_or_default();
            self.out.write_all(fresh).map_err(|e| self.write_error(e))?;
            self.written = end;
            self.arrived.insert(offset, end);
            return Ok(());
        }
        let gaps: Vec<_> = self.arrived.gaps(offset, end).collect();
        let new_bytes: u64 = gaps
            .iter()
            .filter(|&&(start, _)| start != self.written)
            .map(|&(start, stop)| stop - start)
            .sum();
        if self.pending_bytes as u64 + new_bytes > self.limit as u64 {
            return Err(SinkError::ReorderBufferFull {
                path: self.name.clone(),
                limit: self.limit,
            });
        }
        for (start, stop) in gaps {
            let from = usize::try_from(start - offset).unwrap_or(usize::MAX);
            let to = usize::try_from(stop - offset).unwrap_or(usize::MAX);
            let piece = bytes.get(from..to).unwrap_or_default();
            if start == self.written {
                self.out.write_all(piece).map_err(|e| self.write_error(e))?;
                self.written = stop;
            } else {
                self.pending.insert(start, piece.to_vec());
                self.pending_bytes += piece.len();
            }
            self.arrived.insert(start, stop);
        }
        self.drain()
    }

    /// Writes out the pieces that the last write made contiguous.
    fn drain(&mut self) -> Result<(), SinkError> {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.written {
                break;
            }
            let piece = entry.remove();
            self.pending_bytes -= piece.len();
            self.written += piece.len() as u64;
            self.out
                .write_all(&piece)
                .map_err(|e| self.write_error(e))?;
        }
        Ok(())
    }

    fn write_error(&self, source: std::io::Error) -> SinkError {
        SinkError::from_io("write to", &self.name, 0, source)
    }

    /// Bytes `0..contiguous_len()` have arrived (and have been handed to the writer).
    pub fn contiguous_len(&self) -> u64 {
        self.arrived.contiguous_len()
    }

    /// The byte ranges that have arrived.
    pub fn arrived(&self) -> &RangeSet {
        &self.arrived
    }

    /// The most bytes held past a hole.
    pub fn reorder_limit(&self) -> usize {
        self.limit
    }

    /// Bytes currently held past a hole.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Flushes the writer and checks that the whole body arrived. Returns its length.
    pub fn finish(mut self) -> Result<u64, SinkError> {
        self.out.flush().map_err(|e| self.write_error(e))?;
        check_complete(&self.name, self.length, &self.arrived)
    }

    /// Flushes what went out in order; pieces past a hole are dropped. Returns the number of
    /// bytes written.
    pub fn abandon(mut self) -> Result<u64, SinkError> {
        self.out.flush().map_err(|e| self.write_error(e))?;
        Ok(self.written)
    }

    /// The writer, for tests and for callers that wrap their own.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Counts the body and tracks its ranges without storing a byte: `-O /dev/null`, so that
/// benchmarks take the disk out of the picture while completeness checks stay honest.
#[derive(Debug)]
pub struct NullSink {
    name: PathBuf,
    length: Option<u64>,
    arrived: RangeSet,
}

impl NullSink {
    /// A sink for a body of `length` bytes (if known) that goes nowhere.
    pub fn new(name: PathBuf, length: Option<u64>) -> NullSink {
        NullSink {
            name,
            length,
            arrived: RangeSet::new(),
        }
    }

    /// Records that `bytes` arrived at `offset`.
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), SinkError> {
        let end = check_bounds(&self.name, self.length, offset, bytes)?;
        self.arrived.insert(offset, end);
        Ok(())
    }

    /// Bytes `0..contiguous_len()` have arrived.
    pub fn contiguous_len(&self) -> u64 {
        self.arrived.contiguous_len()
    }

    /// The byte ranges that have arrived.
    pub fn arrived(&self) -> &RangeSet {
        &self.arrived
    }

    /// Checks that the whole body arrived. Returns its length.
    pub fn finish(self) -> Result<u64, SinkError> {
        check_complete(&self.name, self.length, &self.arrived)
    }
}

/// The body's length if every byte of it arrived: `length`, or (unknown) the end of what
/// arrived; otherwise [`SinkError::Incomplete`].
pub(super) fn check_complete(
    name: &std::path::Path,
    length: Option<u64>,
    arrived: &RangeSet,
) -> Result<u64, SinkError> {
    let expected = length.unwrap_or_else(|| arrived.end());
    let have = arrived.contiguous_len();
    if have != expected {
        return Err(SinkError::Incomplete {
            path: name.to_path_buf(),
            have,
            expected,
        });
    }
    Ok(have)
}

/// The end offset of `bytes` at `offset`, or an error if it passes the known body length.
pub(super) fn check_bounds(
    name: &std::path::Path,
    length: Option<u64>,
    offset: u64,
    bytes: &[u8],
) -> Result<u64, SinkError> {
    let end = offset.checked_add(bytes.len() as u64);
    match (end, length) {
        (Some(end), Some(length)) if end <= length => Ok(end),
        (Some(end), None) => Ok(end),
        (end, length) => Err(SinkError::BeyondEnd {
            path: name.to_path_buf(),
            start: offset,
            end: end.unwrap_or(u64::MAX),
            length: length.unwrap_or(u64::MAX),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(length: Option<u64>, limit: usize) -> StreamSink<Vec<u8>> {
        StreamSink::new(Vec::new(), PathBuf::from("standard output"), length, limit)
    }

    #[test]
    fn out_of_order_bytes_leave_in_order() {
        let body: Vec<u8> = (0..100u8).collect();
        let mut sink = sink(Some(100), 1000);
        sink.write_at(50, &body[50..70]).expect("write");
        sink.write_at(80, &body[80..100]).expect("write");
        assert_eq!(sink.pending_bytes(), 40);
        assert_eq!(sink.contiguous_len(), 0);
        sink.write_at(0, &body[0..30]).expect("write");
        // Overlaps what is held and what went out; only the new bytes count.
        sink.write_at(20, &body[20..60]).expect("write");
        assert_eq!(sink.contiguous_len(), 70);
        assert_eq!(sink.pending_bytes(), 20);
        sink.write_at(65, &body[65..85]).expect("write");
        assert_eq!(sink.pending_bytes(), 0);
        // A repeat of old bytes changes nothing.
        sink.write_at(0, &body[0..10]).expect("write");
        assert_eq!(sink.into_inner(), body);
    }

    #[test]
    fn reorder_buffer_is_bounded_and_refuses_rather_than_drops() {
        let mut sink = sink(None, 10);
        sink.write_at(5, &[1; 8]).expect("fits");
        let error = sink.write_at(20, &[2; 5]).expect_err("over the limit");
        assert!(matches!(
            error,
            SinkError::ReorderBufferFull { limit: 10, .. }
        ));
        // The refused bytes are not recorded as arrived.
        assert_eq!(sink.arrived().covered(), 8);
        // Bytes that fill the hole are always taken: they go straight out.
        sink.write_at(0, &[0; 5]).expect("fills the hole");
        assert_eq!(sink.contiguous_len(), 13);
        assert_eq!(sink.finish().expect("complete"), 13);
    }

    #[test]
    fn finish_reports_a_hole_and_abandon_keeps_the_prefix() {
        let mut incomplete = sink(Some(10), 100);
        incomplete.write_at(0, b"abc").expect("write");
        incomplete.write_at(5, b"fgh").expect("write");
        let error = incomplete.finish().expect_err("hole");
        assert_eq!(
            error.to_string(),
            "standard output is incomplete: 3 bytes arrived in order, 10 were expected"
        );
        let mut abandoned = sink(None, 100);
        abandoned.write_at(0, b"abc").expect("write");
        abandoned.write_at(5, b"fgh").expect("write");
        assert_eq!(abandoned.abandon().expect("abandon"), 3);
    }

    #[test]
    fn writes_past_the_length_are_refused() {
        let mut sink = sink(Some(4), 100);
        assert!(matches!(
            sink.write_at(2, b"xyz"),
            Err(SinkError::BeyondEnd { end: 5, .. })
        ));
        assert!(matches!(
            sink.write_at(u64::MAX, b"x"),
            Err(SinkError::BeyondEnd { .. })
        ));
        let mut null = NullSink::new(PathBuf::from("/dev/null"), Some(4));
        assert!(null.write_at(3, b"ab").is_err());
    }

    #[test]
    fn null_sink_tracks_ranges_honestly() {
        let mut null = NullSink::new(PathBuf::from("/dev/null"), None);
        null.write_at(0, &[0; 10]).expect("write");
        null.write_at(20, &[0; 10]).expect("write");
        assert_eq!(null.contiguous_len(), 10);
        assert!(matches!(
            null.finish(),
            Err(SinkError::Incomplete {
                have: 10,
                expected: 30,
                ..
            })
        ));
    }

    #[test]
    fn write_errors_name_the_stream() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(libc::EPIPE))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut sink = StreamSink::new(Broken, PathBuf::from("standard output"), None, 10);
        let error = sink.write_at(0, b"x").expect_err("broken pipe");
        assert!(
            error
                .to_string()
                .starts_with("cannot write to standard output: "),
            "{error}"
        );
    }
}
