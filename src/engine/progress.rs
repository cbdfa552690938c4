//! Progress counters the engine publishes for the main thread to draw.
//!
//! The engine thread only stores into relaxed atomics (one store per receive batch), so
//! drawing a progress bar never slows the busy-poll loop.

use std::sync::atomic::{AtomicU64, Ordering};

const UNKNOWN: u64 = u64::MAX;

/// Shared between the engine thread (writer) and the progress display (reader).
#[derive(Debug)]
pub struct Progress {
    /// Body bytes of the current file in the contiguous prefix (including a resumed part).
    received: AtomicU64,
    /// Expected length of the current file, or `UNKNOWN`.
    total: AtomicU64,
    /// Body bytes this run has received, whatever file they went to.
    transferred: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            received: AtomicU64::new(0),
            total: AtomicU64::new(UNKNOWN),
            transferred: AtomicU64::new(0),
        }
    }
}

/// One consistent-enough reading of the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub received: u64,
    pub total: Option<u64>,
    pub transferred: u64,
}

impl Progress {
    /// A new file starts: `already` bytes are on disk from an earlier run, `total` expected.
    pub fn start_file(&self, already: u64, total: Option<u64>) {
        self.received.store(already, Ordering::Relaxed);
        self.total
            .store(total.unwrap_or(UNKNOWN), Ordering::Relaxed);
    }

    /// The contiguous prefix of the current file grew to `received` bytes; `delta` new
    /// bytes arrived in this batch.
    pub fn advance(&self, received: u64, delta: u64) {
        self.received.store(received, Ordering::Relaxed);
        self.transferred.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let total = self.total.load(Ordering::Relaxed);
        Snapshot {
            received: self.received.load(Ordering::Relaxed),
            total: (total != UNKNOWN).then_some(total),
            transferred: self.transferred.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_the_file_in_progress() {
        let p = Progress::default();
        assert_eq!(p.snapshot().total, None);
        p.start_file(100, Some(1000));
        p.advance(600, 500);
        assert_eq!(
            p.snapshot(),
            Snapshot {
                received: 600,
                total: Some(1000),
                transferred: 500
            }
        );
    }
}
