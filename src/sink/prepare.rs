//! The preparer: a thread of its own that prefaults the output mapping ahead of the write
//! front, so that the busy-poll thread that copies body bytes into the mapping neither takes
//! page faults nor makes the `madvise` call itself (issue 5: no syscalls on the hot path).
//!
//! Why a thread: a page of a file mapping must be read in (for a preallocated file: zeroed)
//! before its first write, wherever that happens. Measured on the testbed (docs/benchmarks.md),
//! that zeroing was a fifth of the engine thread's samples for a 1 GiB file and made a
//! download to a file take 2.5× as long as one to /dev/null. On another core it overlaps with
//! the transfer instead.
//!
//! How the two threads meet, without a lock:
//! - the writer publishes its write front (`advance`, one relaxed store when the front moves);
//! - the preparer populates `prepared..front + window` in chunks and publishes `prepared`
//!   (release) after each chunk, then sleeps briefly when it has caught up;
//! - the writer reads `prepared` (acquire) and, only when it has outrun the preparer,
//!   prepares inline as it would without a preparer, so a page that cannot be made
//!   (`EFAULT`, the would-be `SIGBUS`) is still reported by the writer as an error.
//!
//! Preparing is only ever a head start: every byte of the mapping is allocated before it is
//! mapped (`sys.rs`). A preparer that fails just stops, and the writer's inline path takes
//! over and reports.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::sys::MappedRange;

/// Bytes populated per call, so `prepared` moves in steps the writer can use early.
const CHUNK: u64 = 2 * 1024 * 1024;

/// How long the preparer sleeps once it is a full window ahead.
const IDLE_SLEEP: Duration = Duration::from_micros(500);

/// State shared by the writer and the preparer thread.
#[derive(Debug, Default)]
struct Shared {
    /// The writer's write front: the highest offset written so far (relaxed; only a goal).
    front: AtomicU64,
    /// `..prepared` is populated (release by the preparer, acquire by the writer).
    prepared: AtomicU64,
    /// Set by the owner to end the thread.
    stop: AtomicBool,
}

/// A running preparer thread. Dropping it stops and joins the thread, which is what makes
/// it safe to unmap or move the mapping afterwards.
#[derive(Debug)]
pub(super) struct Preparer {
    shared: Arc<Shared>,
    /// The front last published, so that `advance` stores only when it moves.
    front: u64,
    thread: Option<JoinHandle<()>>,
}

impl Preparer {
    /// Starts preparing `range` from offset `from` up to `window` bytes ahead of the front,
    /// on `core` if given (a core other than the writer's).
    pub(super) fn start(
        range: MappedRange,
        from: u64,
        window: u64,
        core: Option<usize>,
    ) -> io::Result<Preparer> {
        let shared = Arc::new(Shared::default());
        shared.front.store(from, Ordering::Relaxed);
        shared.prepared.store(from, Ordering::Relaxed);
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("xdpget-prepare".into())
                .spawn(move || {
                    if let Some(id) = core {
                        core_affinity::set_for_current(core_affinity::CoreId { id });
                    }
                    run(&shared, range, from, window);
                })?
        };
        Ok(Preparer {
            shared,
            front: from,
            thread: Some(thread),
        })
    }

    /// The writer has written up to `end`.
    pub(super) fn advance(&mut self, end: u64) {
        if end > self.front {
            self.front = end;
            self.shared.front.store(end, Ordering::Relaxed);
        }
    }

    /// Everything before this offset is prepared.
    pub(super) fn prepared(&self) -> u64 {
        self.shared.prepared.load(Ordering::Acquire)
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The thread never panics (no indexing, no unwrap); a join error has nothing to
            // report that the writer's inline path would not.
            let _ = thread.join();
        }
    }
}

/// The preparer thread's loop.
fn run(shared: &Shared, range: MappedRange, from: u64, window: u64) {
    let len = range.len() as u64;
    let mut next = from;
    while !shared.stop.load(Ordering::Relaxed) && next < len {
        // Never prepare behind the front: the writer has been there (and prepared inline).
        next = next.max(shared.front.load(Ordering::Relaxed));
        let goal = shared
            .front
            .load(Ordering::Relaxed)
            .saturating_add(window)
            .min(len);
        if next >= goal {
            std::thread::sleep(IDLE_SLEEP);
            continue;
        }
        let to = next.saturating_add(CHUNK).min(goal);
        // Offsets below `len` fit in usize: `len` came from one.
        if range
            .populate_write(next as usize, (to - next) as usize)
            .is_err()
        {
            return;
        }
        next = to;
        shared.prepared.fetch_max(next, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::sys::Mapping;
    use std::time::Instant;

    fn mapped_file(len: u64) -> (tempfile::TempDir, std::fs::File, Mapping) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .expect("create");
        crate::sink::sys::allocate(&file, 0, len).expect("fallocate");
        let mapping = Mapping::new(&file, len as usize).expect("map");
        (dir, file, mapping)
    }

    /// Waits (bounded) until the preparer reports at least `want`.
    fn wait_for(preparer: &Preparer, want: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while preparer.prepared() < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        preparer.prepared()
    }

    #[test]
    fn prepares_a_window_ahead_of_the_front_and_follows_it() {
        let len = 16 * CHUNK;
        let (_dir, _file, mapping) = mapped_file(len);
        let mut preparer =
            Preparer::start(mapping.range(), 0, 4 * CHUNK, None).expect("start preparer");
        assert_eq!(wait_for(&preparer, 4 * CHUNK), 4 * CHUNK);
        // It stops at front + window...
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(preparer.prepared(), 4 * CHUNK);
        // ...and follows the front, up to the end of the mapping.
        preparer.advance(len - 2 * CHUNK);
        assert_eq!(wait_for(&preparer, len), len);
    }

    #[test]
    fn prepared_pages_keep_what_was_written_and_the_thread_stops_on_drop() {
        let len = 4 * CHUNK;
        let (_dir, file, mut mapping) = mapped_file(len);
        mapping.bytes_mut()[..5].copy_from_slice(b"early");
        let preparer = Preparer::start(mapping.range(), 0, len, None).expect("start preparer");
        assert_eq!(wait_for(&preparer, len), len);
        drop(preparer);
        mapping.bytes_mut()[len as usize - 4..].copy_from_slice(b"late");
        mapping.flush(0, len as usize).expect("msync");
        let mut head = [0u8; 5];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0).expect("read");
        assert_eq!(&head, b"early");
        let mut tail = [0u8; 4];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut tail, len - 4).expect("read");
        assert_eq!(&tail, b"late");
    }
}
