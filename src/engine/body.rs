//! Where one exchange's body goes: a sink of its own, or one piece of a file that several
//! connections fill (`-x N`, `engine::segmented`).
//!
//! A piece shares the file's one [`Sink`] with the other connections of the download (one
//! thread, so an `Rc<RefCell<_>>`: a borrow per body chunk, never held across an `await`),
//! and ends where the planner says: the end is a `Cell` the coordinator moves down when
//! another connection takes the rest of the range ([`crate::engine::segments::Action::Shorten`]).
//! Bytes past it are dropped, not written: another connection brings them.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::sink::{Sink, SinkError};
use crate::time::Instant;

/// The destination of an exchange's body.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per exchange, built once; boxing the sink would add a pointer chase to every write"
)]
pub enum BodyOut {
    /// The whole body into a sink of its own.
    Whole(Sink),
    /// Bytes `start..end` of a file shared with other connections.
    Piece(Piece),
}

/// One connection's range of a segmented download.
#[derive(Clone, Debug)]
pub struct Piece {
    sink: Rc<RefCell<Sink>>,
    start: u64,
    end: Rc<Cell<u64>>,
}

impl Piece {
    /// Bytes `start..end.get()` of the file in `sink`; `end` moves down when the range is
    /// shortened.
    pub fn new(sink: Rc<RefCell<Sink>>, start: u64, end: Rc<Cell<u64>>) -> Piece {
        Piece { sink, start, end }
    }

    /// Where the range starts.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Where the range ends now.
    pub fn end(&self) -> u64 {
        self.end.get()
    }

    /// Moves the range's end (down: another connection fetches the rest).
    pub fn set_end(&self, end: u64) {
        self.end.set(end);
    }

    /// How far the file has arrived without a gap from the range's start (the planner's
    /// progress of this connection; bytes other connections wrote count too).
    pub fn done_upto(&self) -> u64 {
        self.sink.borrow().arrived().contiguous_end(self.start)
    }

    /// Whether every byte of the range is in the file.
    pub fn is_done(&self) -> bool {
        self.done_upto() >= self.end()
    }
}

impl BodyOut {
    /// Places body bytes at file `offset`; returns how many were taken (a piece drops what
    /// lies past its end).
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<u64, SinkError> {
        match self {
            BodyOut::Whole(sink) => {
                sink.write_at(offset, bytes)?;
                Ok(bytes.len() as u64)
            }
            BodyOut::Piece(piece) => {
                let end = piece.end.get();
                let take = end.saturating_sub(offset).min(bytes.len() as u64);
                if take > 0 {
                    // `take` is at most `bytes.len()`, so it fits a usize.
                    let bytes = &bytes[..take as usize];
                    piece.sink.borrow_mut().write_at(offset, bytes)?;
                }
                Ok(take)
            }
        }
    }

    /// What the progress display shows as arrived: the sink's contiguous prefix for a whole
    /// body; every arrived byte of the file for a piece (the bar shows the whole file).
    pub fn shown_len(&self) -> u64 {
        match self {
            BodyOut::Whole(sink) => sink.contiguous_len(),
            BodyOut::Piece(piece) => piece.sink.borrow().arrived().covered(),
        }
    }

    /// How many bytes past the contiguous prefix the sink can take (`Sink::reorder_capacity`).
    pub fn reorder_capacity(&self) -> Option<u64> {
        match self {
            BodyOut::Whole(sink) => sink.reorder_capacity(),
            BodyOut::Piece(piece) => piece.sink.borrow().reorder_capacity(),
        }
    }

    /// When to poll again without a segment (`Sink::poll_again_at`).
    pub fn poll_again_at(&self) -> Option<Instant> {
        match self {
            BodyOut::Whole(sink) => sink.poll_again_at(),
            BodyOut::Piece(piece) => piece.sink.borrow().poll_again_at(),
        }
    }

    /// `Sink::poll_checkpoint`.
    pub fn poll_checkpoint(&mut self, now: Instant) -> Result<(), SinkError> {
        match self {
            BodyOut::Whole(sink) => sink.poll_checkpoint(now),
            BodyOut::Piece(piece) => piece.sink.borrow_mut().poll_checkpoint(now),
        }
    }

    /// The piece, if this is one.
    pub fn piece(&self) -> Option<&Piece> {
        match self {
            BodyOut::Whole(_) => None,
            BodyOut::Piece(piece) => Some(piece),
        }
    }

    /// The sink of a whole body (a piece's belongs to its download).
    pub fn into_whole(self) -> Option<Box<Sink>> {
        match self {
            BodyOut::Whole(sink) => Some(Box::new(sink)),
            BodyOut::Piece(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{Identity, ResumeInfo, SinkOptions, Target};

    fn null_sink(len: u64) -> Rc<RefCell<Sink>> {
        let identity = Identity {
            url: "http://h/f".into(),
            length: Some(len),
            etag: None,
            last_modified: None,
        };
        let sink = Sink::open(
            &Target::Path("/dev/null".into()),
            &identity,
            &ResumeInfo::Fresh,
            &SinkOptions::default(),
        )
        .unwrap();
        Rc::new(RefCell::new(sink))
    }

    #[test]
    fn a_piece_keeps_to_its_range_as_it_shrinks() {
        let sink = null_sink(100);
        let end = Rc::new(Cell::new(60));
        let mut out = BodyOut::Piece(Piece::new(sink.clone(), 20, end.clone()));
        assert_eq!(out.write_at(20, &[1; 30]).unwrap(), 30);
        // Another connection took 40..60: what lies past 40 is dropped.
        end.set(40);
        assert_eq!(out.write_at(50, &[1; 10]).unwrap(), 0);
        assert_eq!(out.write_at(35, &[1; 10]).unwrap(), 5);
        let piece = out.piece().unwrap();
        // 20..50 arrived before the range shrank: done past the new end.
        assert_eq!(piece.done_upto(), 50);
        assert!(piece.is_done());
        // The bar counts what the other connections wrote too.
        sink.borrow_mut().write_at(80, &[1; 20]).unwrap();
        assert_eq!(out.shown_len(), 50);
        assert!(out.into_whole().is_none());
    }
}
