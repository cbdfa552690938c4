//! The staged write path (the default for a file): the busy-poll thread copies body bytes
//! into staging buffers, one per 1 MiB piece of the file, and a writer thread of its own
//! hands each buffer to the kernel with one `pwrite` once the piece is complete.
//!
//! Why not copy straight into a mapping of the file, as xdpget did before: a page of a
//! mapped file must exist in the page cache before its first store, and for a preallocated
//! file the kernel fills it with zeros first (`ext4_mpage_readpages` → `zero_user_segments`).
//! Measured on the testbed (`perf record`, docs/sink.md "Where the time goes"), that zeroing
//! was 44 % of all of xdpget's samples for 1 GiB, and whenever the engine thread outran the
//! preparer thread that did it, a receive batch paid for it. A `pwrite` of whole pages needs
//! no zeroing, and one with `O_DIRECT` needs no page cache at all: the disk's DMA reads the
//! staging buffer itself. On the test machine, a VM whose fresh memory is slow to touch the
//! first time, filling 1 GiB of new page cache took 2.3–3.5 s where `O_DIRECT` wrote the same
//! in 0.45–1.0 s (docs/sink.md).
//!
//! Which write a piece gets (the writer thread decides, per piece):
//! - a complete piece whose length is a multiple of [`ALIGN`], while the writer keeps up
//!   (fewer than half the buffers wait for it): `O_DIRECT`, straight from the buffer to the
//!   disk;
//! - otherwise (a partly filled piece, the file's last piece, a file system without
//!   `O_DIRECT`, or a disk slower than the network, where the page cache must absorb the
//!   difference): a buffered `pwrite` of the ranges the buffer holds. A partly written page
//!   is zeroed by the kernel around them, and a later write of the missing bytes fills it.
//!
//! The kernel keeps both kinds coherent (a direct write first writes back and drops cached
//! pages of its range), and both complete before the buffer comes back, so a byte the
//! writer has written is in the file for any later reader, whatever happens to xdpget.
//!
//! How the threads meet, without a lock on the hot path: two bounded channels carry the
//! buffers themselves (a `Box` moves; nothing is allocated or copied). The writer takes jobs
//! from one (write this buffer; have what you wrote recorded), and gives each written buffer back
//! through the other. The busy-poll thread waits for the writer only when every buffer is
//! taken (the disk is slower than the network and the page cache is not helping). A buffer
//! that comes back tells it which bytes reached the file ([`Stager::stored`]).
//!
//! Checkpoints keep `-c` exact: a byte in a staging buffer dies with the process, so a record
//! may claim only written bytes. The writer thread keeps the set of ranges it has written
//! (starting from the finished ranges of a resumed file), and only it asks the flusher
//! thread (`flush.rs`) for records. [`Stager::checkpoint`] hands every open piece below the
//! contiguous prefix to the writer (partly filled or not) and then queues "record what you
//! wrote" behind them; the writer passes its set on once it has written them. Pieces past a
//! hole (bytes after a loss, another connection's front) stay open, so they still go to the
//! disk whole, with `O_DIRECT`; a record lists them once they are complete and written.
//!
//! Bytes may come in any order and at any offset: a buffer keeps the ranges it holds, and
//! when every buffer is open at once, the lowest open piece is written as it is.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use super::RangeSet;
use super::flush::Requester;

/// Bytes per staging buffer: the piece of the file one `pwrite` covers. Large writes make
/// `O_DIRECT` fast (256 KiB pieces took 0.86–1.0 s for 1 GiB, 2 MiB pieces 0.45–0.78 s);
/// small pieces keep the cost of a piece that waits for a lost segment low.
pub(super) const CHUNK: u64 = 1024 * 1024;

/// Staging buffers in all: 16 MiB, about 50 ms of a 2.5 Gbit/s transfer, for the writer to
/// fall behind before the busy-poll thread must wait.
pub(super) const POOL: usize = 16;

/// Alignment of buffers, offsets and lengths for `O_DIRECT` (the largest logical block
/// size of common disks; a disk that needs more makes the writer fall back to buffered).
const ALIGN: usize = 4096;

/// One staging buffer: the bytes of the file piece that starts at `start`, and which of
/// them are filled (offsets within the piece, sorted, not touching).
#[derive(Debug)]
struct Buffer {
    start: u64,
    /// Bytes of the piece (the last piece of a known length is shorter than [`CHUNK`]).
    len: usize,
    filled: Vec<(usize, usize)>,
    /// `CHUNK + ALIGN` bytes, of which the [`ALIGN`]-aligned `CHUNK` at `skew` are used.
    memory: Box<[u8]>,
    skew: usize,
}

impl Buffer {
    fn new() -> Buffer {
        let memory = vec![0u8; CHUNK as usize + ALIGN].into_boxed_slice();
        let skew = memory.as_ptr().align_offset(ALIGN).min(ALIGN);
        Buffer {
            start: u64::MAX,
            len: 0,
            // Room for the fragments of a piece that arrives badly out of order, so that
            // filling it allocates nothing on the hot path.
            filled: Vec::with_capacity(16),
            memory,
            skew,
        }
    }

    /// The piece's bytes, aligned for `O_DIRECT`.
    fn data(&self) -> &[u8] {
        &self.memory[self.skew..self.skew + CHUNK as usize]
    }

    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.memory[self.skew..self.skew + CHUNK as usize]
    }

    /// Marks `from..to` (within the piece) filled, merging with its neighbours.
    fn fill(&mut self, from: usize, to: usize) {
        // In order (the common case): the new bytes extend the last range, or start one.
        match self.filled.last_mut() {
            None => return self.filled.push((from, to)),
            Some(last) if last.0 <= from && from <= last.1 => {
                last.1 = last.1.max(to);
                return;
            }
            Some(last) if last.1 < from => return self.filled.push((from, to)),
            Some(_) => {}
        }
        let first = self.filled.partition_point(|&(_, end)| end < from);
        let mut last = first;
        let (mut lo, mut hi) = (from, to);
        while let Some(&(start, end)) = self.filled.get(last) {
            if start > to {
                break;
            }
            lo = lo.min(start);
            hi = hi.max(end);
            last += 1;
        }
        self.filled.splice(first..last, [(lo, hi)]);
    }

    /// Every byte of the piece is filled.
    fn complete(&self) -> bool {
        self.filled.as_slice() == [(0, self.len)]
    }

    /// Adds the filled ranges, as offsets in the file, to `set`.
    fn add_filled_to(&self, set: &mut RangeSet) {
        for &(from, to) in &self.filled {
            set.insert(self.start + from as u64, self.start + to as u64);
        }
    }
}

/// What the writer thread is asked to do, in order.
#[derive(Debug)]
enum Job {
    /// Write the buffer's ranges and give it back.
    Write(Buffer),
    /// Have every range written so far recorded.
    Record,
}

/// State the writer thread shares with the busy-poll thread.
#[derive(Debug, Default)]
struct Shared {
    /// A write failed; the thread has stopped and [`Stager::finish`] returns the error.
    failed: AtomicBool,
    /// Buffers handed over and not yet written: the writer's backlog.
    queued: AtomicUsize,
    /// Records queued and not yet passed on, at most [`RECORDS`].
    records: AtomicUsize,
}

/// Records queued for the writer at most: the job queue holds every buffer and these, so a
/// buffer always finds room. A checkpoint that finds them queued leaves its record to the
/// next one (the earlier ones are passed on soon).
const RECORDS: usize = 2;

/// The staging buffers and the writer thread, as the busy-poll thread sees them.
#[derive(Debug)]
pub(super) struct Stager {
    /// Buffers being filled, at most [`POOL`]; one or two at a time in practice.
    open: Vec<Buffer>,
    /// Written buffers, ready for filling.
    spare: Vec<Buffer>,
    /// Buffers the writer thread gives back (at start: all of them, new).
    free: Receiver<Buffer>,
    /// Buffers with the writer thread (counting the new ones it has not sent yet).
    in_flight: usize,
    /// Of those, the ones handed over for writing and not taken back yet.
    writing: usize,
    /// Jobs for the writer thread. Never full: it holds every buffer and a few records.
    jobs: Option<SyncSender<Job>>,
    /// Bytes written to the file, as far as returned buffers tell.
    stored: RangeSet,
    /// Where a piece ends: the body length when known.
    length: Option<u64>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Stager {
    /// Starts the writer thread on `file` (a handle of the sink's own `.part` at `path`, which
    /// it opens once more with `O_DIRECT` where the file system allows), with the ranges
    /// `stored` already in the file, on `core` if given. Records go to `requester`.
    pub(super) fn start(
        file: File,
        path: &Path,
        stored: &RangeSet,
        length: Option<u64>,
        requester: Option<Requester>,
        core: Option<usize>,
    ) -> io::Result<Stager> {
        // Without O_DIRECT (tmpfs on older kernels, some network file systems) every write
        // is buffered.
        let direct = File::options()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok();
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(POOL + RECORDS);
        let (free_tx, free_rx) = sync_channel::<Buffer>(POOL);
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            let written = stored.clone();
            std::thread::Builder::new()
                .name("xdpget-write".into())
                .spawn(move || {
                    if let Some(id) = core {
                        core_affinity::set_for_current(core_affinity::CoreId { id });
                    }
                    let writer = Writer {
                        file,
                        direct,
                        requester,
                        written,
                        shared: &shared,
                    };
                    let result = writer.run(&jobs_rx, &free_tx);
                    if result.is_err() {
                        shared.failed.store(true, Ordering::Release);
                    }
                    result
                })?
        };
        Ok(Stager {
            open: Vec::with_capacity(POOL),
            spare: Vec::with_capacity(POOL),
            free: free_rx,
            in_flight: POOL,
            writing: 0,
            jobs: Some(jobs_tx),
            stored: stored.clone(),
            length,
            shared,
            thread: Some(thread),
        })
    }

    /// Copies `bytes` to their place at `offset`; hands every piece it completes to the
    /// writer. Waits only when all buffers are taken; fails once the writer has failed.
    pub(super) fn write(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut offset = offset;
        let mut rest = bytes;
        while !rest.is_empty() {
            let start = offset - offset % CHUNK;
            let slot = self.slot(start)?;
            let buffer = &mut self.open[slot];
            // `offset - start < CHUNK` and `buffer.len <= CHUNK` fit in usize.
            let from = (offset - start) as usize;
            let n = rest.len().min(buffer.len.saturating_sub(from));
            if n == 0 {
                // Past the end of a known length: the sink checked bounds before, so this
                // is a bug, reported rather than looped on.
                return Err(io::Error::other("staged write past the end of the piece"));
            }
            let (now, later) = rest.split_at(n);
            buffer.data_mut()[from..from + n].copy_from_slice(now);
            buffer.fill(from, from + n);
            if buffer.complete() {
                let done = self.open.swap_remove(slot);
                self.send(Job::Write(done))?;
            }
            rest = later;
            offset += n as u64;
        }
        Ok(())
    }

    /// Has everything the writer has written recorded, `0..upto` included: hands every open
    /// piece that starts below `upto` to the writer as it is, then the record. Never waits;
    /// while [`RECORDS`] records are queued already, this one is left to the next checkpoint.
    pub(super) fn checkpoint(&mut self, upto: u64) -> io::Result<()> {
        while let Some(slot) = self.open.iter().position(|b| b.start < upto) {
            let partial = self.open.swap_remove(slot);
            self.send(Job::Write(partial))?;
        }
        self.check()?;
        if self.shared.records.load(Ordering::Acquire) < RECORDS
            && let Some(jobs) = &self.jobs
        {
            self.shared.records.fetch_add(1, Ordering::AcqRel);
            if jobs.try_send(Job::Record).is_err() {
                self.shared.records.fetch_sub(1, Ordering::AcqRel);
            }
        }
        Ok(())
    }

    /// Takes back the buffers the writer has written, so that [`Stager::stored`] is up to
    /// date; never waits. Fails once the writer has failed.
    pub(super) fn poll(&mut self) -> io::Result<()> {
        self.check()?;
        while let Ok(buffer) = self.free.try_recv() {
            self.returned(buffer);
        }
        Ok(())
    }

    /// Where the bytes that can be staged without waiting end, with the contiguous prefix at
    /// `prefix`: the pieces from the one that holds `prefix` on, as many as there are buffers
    /// the writer does not hold (as of the last [`Stager::poll`]). Handing a complete piece
    /// below the prefix to the writer leaves this where it is (one buffer fewer, the prefix a
    /// piece further); each buffer the writer gives back moves it a piece on. The receive
    /// window ends here (`FileSink::reorder_capacity`), so a writer that falls behind slows
    /// the sender down instead of making the busy-poll thread wait for a buffer.
    pub(super) fn room_end(&self, prefix: u64) -> u64 {
        let mine = POOL.saturating_sub(self.writing) as u64;
        // Not cut at the body's length: the window counts stream bytes, which may carry
        // more than the body (chunked framing, the FIN) and must never close before them.
        (prefix - prefix % CHUNK).saturating_add(mine * CHUNK)
    }

    /// The writer holds more than half of the buffers: the window is being narrowed by it.
    pub(super) fn behind(&self) -> bool {
        self.writing > POOL / 2
    }

    /// Bytes written to the file (as of the last [`Stager::poll`] or wait).
    pub(super) fn stored(&self) -> &RangeSet {
        &self.stored
    }

    /// Hands every buffer to the writer, waits for all of them to be written and stops the
    /// thread. Afterwards [`Stager::stored`] holds every byte written to the stager, unless
    /// a write failed, which is returned (and `stored` holds what made it).
    pub(super) fn finish(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        while let Some(buffer) = self.open.pop() {
            if let Err(e) = self.send(Job::Write(buffer)) {
                result = Err(e);
                break;
            }
        }
        // Closing the channel ends the thread once it has written what is queued.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let joined = match thread.join() {
                Ok(joined) => joined,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            result = result.and(joined);
        }
        while let Ok(buffer) = self.free.try_recv() {
            self.returned(buffer);
        }
        if result.is_ok() && self.shared.failed.load(Ordering::Acquire) {
            result = Err(io::Error::other("an earlier write to this file failed"));
        }
        result
    }

    /// The index in `open` of the buffer for the piece at `start`, taking a free buffer for
    /// it if none is open.
    fn slot(&mut self, start: u64) -> io::Result<usize> {
        if let Some(slot) = self.open.iter().position(|b| b.start == start) {
            return Ok(slot);
        }
        let mut buffer = self.take_free()?;
        buffer.start = start;
        buffer.len = match self.length {
            Some(length) => length.saturating_sub(start).min(CHUNK) as usize,
            None => CHUNK as usize,
        };
        buffer.filled.clear();
        self.open.push(buffer);
        Ok(self.open.len() - 1)
    }

    /// A free buffer: a spare one, one the writer gave back, or, when every buffer is open,
    /// the lowest open piece written as it is (it waits for bytes a loss delays, the others
    /// are newer). Waits for the writer when it holds the buffers.
    fn take_free(&mut self) -> io::Result<Buffer> {
        loop {
            if let Some(buffer) = self.spare.pop() {
                return Ok(buffer);
            }
            match self.free.try_recv() {
                Ok(buffer) => {
                    self.returned(buffer);
                    continue;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return Err(self.stopped()),
            }
            if self.in_flight == 0 {
                let lowest = (0..self.open.len())
                    .min_by_key(|&i| self.open[i].start)
                    .ok_or_else(|| io::Error::other("no staging buffer left"))?;
                let partial = self.open.swap_remove(lowest);
                self.send(Job::Write(partial))?;
            }
            self.check()?;
            match self.free.recv_timeout(Duration::from_millis(50)) {
                Ok(buffer) => self.returned(buffer),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(self.stopped()),
            }
        }
    }

    /// A buffer came back written: its ranges are in the file, and it is spare.
    fn returned(&mut self, mut buffer: Buffer) {
        self.in_flight = self.in_flight.saturating_sub(1);
        // A new buffer (from the writer's start) was never handed over.
        if buffer.start != u64::MAX {
            self.writing = self.writing.saturating_sub(1);
        }
        buffer.add_filled_to(&mut self.stored);
        buffer.filled.clear();
        self.spare.push(buffer);
    }

    /// The error for a writer thread that went away.
    fn stopped(&mut self) -> io::Error {
        match self.check() {
            Err(e) => e,
            Ok(()) => io::Error::other("the writer thread stopped"),
        }
    }

    /// Hands a job to the writer thread. Never waits: the queue has room for all buffers.
    fn send(&mut self, job: Job) -> io::Result<()> {
        self.check()?;
        let is_write = matches!(job, Job::Write(_));
        if is_write {
            self.shared.queued.fetch_add(1, Ordering::Relaxed);
        }
        let sent = self.jobs.as_ref().map(|jobs| jobs.try_send(job));
        match sent {
            Some(Ok(())) => {
                self.in_flight += usize::from(is_write);
                self.writing += usize::from(is_write);
                Ok(())
            }
            _ => Err(self.stopped()),
        }
    }

    /// The writer's error, once it has failed (the thread is joined to get it).
    fn check(&mut self) -> io::Result<()> {
        if !self.shared.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.jobs = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => Err(e),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            _ => Err(io::Error::other("an earlier write to this file failed")),
        }
    }
}

impl Drop for Stager {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread's side.
struct Writer<'a> {
    file: File,
    /// The same file opened with `O_DIRECT`; `None` once the file system refused it.
    direct: Option<File>,
    requester: Option<Requester>,
    /// Every range written to the file, the resumed ones included: what a record may claim.
    written: RangeSet,
    shared: &'a Shared,
}

impl Writer<'_> {
    /// Makes the pool, then does the jobs that come until the channel closes.
    fn run(mut self, jobs: &Receiver<Job>, free: &SyncSender<Buffer>) -> io::Result<()> {
        for _ in 0..POOL {
            let mut buffer = Buffer::new();
            // Touch every page now, so the busy-poll thread's first copy takes no fault.
            for page in buffer.data_mut().chunks_mut(ALIGN) {
                page[0] = 0xff;
            }
            if free.send(buffer).is_err() {
                return Ok(());
            }
        }
        loop {
            // Asleep until a job comes: the busy-poll thread's send wakes it (a futex wake,
            // only when it sleeps: at most once per 1 MiB piece).
            let Ok(job) = jobs.recv() else {
                return Ok(());
            };
            match job {
                Job::Write(buffer) => {
                    self.write(&buffer)?;
                    buffer.add_filled_to(&mut self.written);
                    self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                    // The owner may be gone (dropped without finish): nothing to tell it.
                    let _ = free.send(buffer);
                }
                Job::Record => {
                    if let Some(requester) = &self.requester {
                        requester.request(&self.written);
                    }
                    self.shared.records.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// Writes the ranges `buffer` holds: at once with `O_DIRECT` when it can (see the
    /// module docs), else through the page cache.
    fn write(&mut self, buffer: &Buffer) -> io::Result<()> {
        let aligned = buffer.complete() && buffer.len.is_multiple_of(ALIGN);
        let keeping_up = self.shared.queued.load(Ordering::Relaxed) <= POOL / 2;
        if aligned
            && keeping_up
            && let Some(direct) = &self.direct
        {
            match direct.write_all_at(&buffer.data()[..buffer.len], buffer.start) {
                Ok(()) => return Ok(()),
                // The disk wants another alignment: buffered from now on.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.direct = None,
                Err(e) => return Err(e),
            }
        }
        for &(from, to) in &buffer.filled {
            self.file
                .write_all_at(&buffer.data()[from..to], buffer.start + from as u64)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::seq::SliceRandom;

    fn body(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 13 % 251) as u8).collect()
    }

    /// A fresh file of `len` bytes (allocated, as the sink makes it) and a second handle.
    fn file(dir: &tempfile::TempDir, len: u64) -> (std::path::PathBuf, File) {
        let path = dir.path().join("f.part");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("create");
        crate::sink::sys::allocate(&file, 0, len).expect("fallocate");
        (path, file)
    }

    #[test]
    fn in_order_pieces_are_written_and_reported_stored_only_once_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let len = 3 * CHUNK + 1000;
        let (path, file) = file(&dir, len);
        let data = body(len as usize);
        let mut stager =
            Stager::start(file, &path, &RangeSet::new(), Some(len), None, None).expect("start");
        for piece in data.chunks(1448).enumerate() {
            let (i, bytes) = piece;
            stager.write(i as u64 * 1448, bytes).expect("write");
        }
        // Nothing is claimed before the writer gave a buffer back.
        assert!(stager.stored().contiguous_len() <= len);
        stager.finish().expect("finish");
        assert_eq!(stager.stored().contiguous_len(), len);
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }

    /// More pieces open at once than there are buffers: the lowest are written partly, and
    /// the bytes that come later land next to them.
    #[test]
    fn any_order_with_more_open_pieces_than_buffers_gives_the_right_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pieces = POOL as u64 + 10;
        let len = pieces * CHUNK - 777;
        let (path, file) = file(&dir, len);
        let data = body(len as usize);
        let mut stager =
            Stager::start(file, &path, &RangeSet::new(), Some(len), None, None).expect("start");
        // One byte into every piece first (all open at once), then the rest shuffled.
        for piece in 0..pieces {
            let at = (piece * CHUNK + 100) as usize;
            stager.write(at as u64, &data[at..at + 1]).expect("write");
        }
        let mut order: Vec<(usize, usize)> = (0..len as usize)
            .step_by(4000)
            .map(|s| (s, (s + 4000).min(len as usize)))
            .collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(5));
        for (start, end) in order {
            stager
                .write(start as u64, &data[start..end])
                .expect("write");
            stager.poll().expect("poll");
        }
        stager.finish().expect("finish");
        assert_eq!(stager.stored().contiguous_len(), len);
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }

    #[test]
    fn resumed_prefix_counts_as_stored_and_a_failed_write_is_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (path, _file) = file(&dir, 2 * CHUNK);
        // Read-only: every pwrite fails (EBADF), as a disk error would.
        let read_only = File::open(&path).expect("open");
        let mut stager = Stager::start(
            read_only,
            &path,
            &RangeSet::from_range(0, 5000),
            None,
            None,
            None,
        )
        .expect("start");
        assert_eq!(stager.stored().contiguous_len(), 5000);
        let bytes = body(30_000);
        // A partly filled piece is written through the page cache (the read-only handle),
        // which fails; the error comes back from a later call, never a hang.
        let mut result = stager
            .write(5000, &bytes[5000..])
            .and_then(|()| stager.checkpoint(30_000));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while result.is_ok() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
            result = stager.poll();
        }
        assert!(result.is_err(), "the failed write was not reported");
        assert!(stager.finish().is_err());
        assert_eq!(stager.stored().contiguous_len(), 5000);
    }

    /// A record queued behind a partly filled piece is passed on only after the piece is
    /// written: whatever the record claims is in the file.
    #[test]
    fn a_checkpoint_writes_the_open_pieces_before_it_asks_for_the_record() {
        use crate::sink::FsyncPolicy;
        use crate::sink::control::{ControlFile, Identity, control_path, read_record};
        use crate::sink::durability::Durability;
        use crate::sink::flush::{Flusher, Target};
        let dir = tempfile::tempdir().expect("temp dir");
        let len = 2 * CHUNK;
        let (path, file) = file(&dir, len);
        let identity = Identity {
            url: "http://server.test/f".to_string(),
            length: Some(len),
            etag: None,
            last_modified: None,
        };
        let record_path = control_path(&dir.path().join("f"));
        let control = ControlFile::open(
            &record_path,
            &identity,
            &RangeSet::new(),
            Durability::new(FsyncPolicy::Off),
        )
        .expect("record");
        let flusher = Flusher::start(
            Target::File(file.try_clone().expect("clone")),
            control,
            RangeSet::new(),
            None,
        )
        .expect("flusher");
        let mut stager = Stager::start(
            file,
            &path,
            &RangeSet::new(),
            Some(len),
            Some(flusher.requester()),
            None,
        )
        .expect("start");
        let data = body(len as usize);
        // The first piece complete (a direct write), 100 bytes of the second.
        let upto = CHUNK as usize + 100;
        stager.write(0, &data[..upto]).expect("write");
        stager.checkpoint(upto as u64).expect("checkpoint");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while flusher.durable() < upto as u64 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(flusher.durable(), upto as u64);
        assert_eq!(
            read_record(&record_path)
                .expect("read")
                .expect("record")
                .prefix(),
            upto as u64
        );
        // Every byte the record claims is in the file, read through a new handle.
        let on_file = std::fs::read(&path).expect("read");
        assert_eq!(&on_file[..upto], &data[..upto]);
        stager.write(upto as u64, &data[upto..]).expect("write");
        stager.finish().expect("finish");
        assert_eq!(stager.stored().contiguous_len(), len);
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }

    /// With a resumed file's ranges and bytes past a hole: the record the writer asks for
    /// lists the resumed ranges and every piece it has written, past the hole too, never the
    /// bytes of a piece still open; writes into a partly finished piece leave its finished
    /// bytes as they are.
    #[test]
    fn a_record_lists_every_written_range_and_never_an_open_piece() {
        use crate::sink::FsyncPolicy;
        use crate::sink::control::{ControlFile, Identity, control_path, read_record};
        use crate::sink::durability::Durability;
        use crate::sink::flush::{Flusher, Target};
        let dir = tempfile::tempdir().expect("temp dir");
        let len = 4 * CHUNK;
        let (path, file) = file(&dir, len);
        let data = body(len as usize);
        // What an earlier run finished: a prefix, and a range inside the last piece.
        let resumed: RangeSet = [(0, 1000), (3 * CHUNK + 50, 3 * CHUNK + 90)]
            .into_iter()
            .collect();
        for (start, end) in resumed.iter() {
            let (start, end) = (start as usize, end as usize);
            file.write_all_at(&data[start..end], start as u64)
                .expect("the earlier run's bytes");
        }
        let identity = Identity {
            url: "http://server.test/f".to_string(),
            length: Some(len),
            etag: None,
            last_modified: None,
        };
        let record_path = control_path(&dir.path().join("f"));
        let control = ControlFile::open(
            &record_path,
            &identity,
            &resumed,
            Durability::new(FsyncPolicy::Off),
        )
        .expect("record");
        let target = Target::File(file.try_clone().expect("clone"));
        let flusher = Flusher::start(target, control, resumed.clone(), None).expect("flusher");
        let requester = Some(flusher.requester());
        let mut stager =
            Stager::start(file, &path, &resumed, Some(len), requester, None).expect("start");
        let (one, two) = (CHUNK as usize, 2 * CHUNK as usize);
        // Piece 1 whole (past the hole 1000..CHUNK), a few bytes of piece 2, and the rest of
        // the last piece around its resumed range: the buffers of pieces 2 and 3 are not
        // complete (the resumed bytes are not in them) and stay open.
        stager.write(CHUNK, &data[one..two]).expect("write");
        stager
            .write(2 * CHUNK + 5, &data[two + 5..two + 100])
            .expect("write");
        let last = 3 * CHUNK as usize;
        stager
            .write(3 * CHUNK, &data[last..last + 50])
            .expect("write");
        stager
            .write(3 * CHUNK + 90, &data[last + 90..])
            .expect("write");
        stager.checkpoint(1000).expect("checkpoint");
        let mut want = resumed.clone();
        want.insert(CHUNK, 2 * CHUNK);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while flusher.covered() < want.covered() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let record = read_record(&record_path).expect("read").expect("record");
        assert_eq!(record.finished, want);
        let on_file = std::fs::read(&path).expect("read");
        for (start, end) in want.iter() {
            let (start, end) = (start as usize, end as usize);
            assert_eq!(&on_file[start..end], &data[start..end], "{start}..{end}");
        }
        drop(flusher);
        stager.finish().expect("finish");
        // Every buffer written now: the open pieces' ranges too, and the resumed bytes of
        // the last piece kept (its buffer held only the bytes around them).
        let mut all = want.clone();
        all.insert(2 * CHUNK + 5, 2 * CHUNK + 100);
        all.insert(3 * CHUNK, len);
        assert_eq!(stager.stored(), &all);
        let on_file = std::fs::read(&path).expect("read");
        for (start, end) in all.iter() {
            let (start, end) = (start as usize, end as usize);
            assert_eq!(&on_file[start..end], &data[start..end], "{start}..{end}");
        }
    }

    /// Checkpoints far faster than the writer looks (a simulated clock, a dripping server)
    /// never crowd out the buffers: records beyond the few queued wait for a later one.
    #[test]
    fn many_checkpoints_in_a_row_leave_room_for_the_buffers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let len = 4 * CHUNK;
        let (path, file) = file(&dir, len);
        let data = body(len as usize);
        let mut stager =
            Stager::start(file, &path, &RangeSet::new(), Some(len), None, None).expect("start");
        for (i, piece) in data.chunks(10_000).enumerate() {
            let at = i as u64 * 10_000;
            stager.write(at, piece).expect("write");
            stager
                .checkpoint(at + piece.len() as u64)
                .expect("checkpoint");
        }
        stager.finish().expect("finish");
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }
}
