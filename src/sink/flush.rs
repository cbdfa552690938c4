//! The flusher: a thread of its own that makes checkpoints durable, so that the busy-poll
//! thread never waits for the disk (issue 5: no syscalls and no allocation on the hot path).
//!
//! A checkpoint (docs/sink.md) is two steps that must happen in this order: the bytes of the
//! finished ranges not recorded yet are written back and waited for (msync MS_SYNC), *then*
//! the control record lists the ranges (written and fdatasync'd). Under `--fsync-policy off` (the
//! default, `durability.rs`) both syncs are skipped and a checkpoint is one `pwrite` of the
//! record, still made here so that the busy-poll thread neither encodes nor writes it. On the busy-poll thread these calls
//! stalled the loop for a few milliseconds every 250 ms, and up to 20 ms at the 99.9th
//! percentile (docs/benchmarks.md). Here the writer only asks:
//!
//! - the writer stores the finished ranges it wants recorded (`request`: a copy under a lock
//!   no one holds for long, then a counter bumped with release; every byte of them was copied
//!   into the mapping before, or, on the staged write path, written to the file by the
//!   writer thread, which asks through a [`Requester`]);
//! - the flusher, polling every [`POLL`], syncs (msync of the new ranges of a mapping, one
//!   fdatasync of a staged file) and records them, then publishes the new durable prefix and
//!   the bytes recorded (release) and looks again;
//! - the first error stops the flusher; the writer sees `failed` at its next poll and takes
//!   the error (and the control record) back with [`Flusher::stop`].
//!
//! The order of sync and record, which `-c` relies on, is the same as in the writer's own
//! checkpoints (`FileSink::checkpoint`): [`checkpoint`] below.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use std::fs::File;

use super::control::ControlFile;
use super::sys::MappedRange;
use crate::ranges::RangeSet;

/// What the flusher makes durable before it records ranges: those ranges of the mapping
/// (msync), or, for the staged write path (`stage.rs`), the file's data (fdatasync).
#[derive(Debug)]
pub(super) enum Target {
    Mapped(MappedRange),
    File(File),
}

/// How often the flusher looks for a request. A checkpoint is due every 250 ms at most, so
/// a few milliseconds of delay cost nothing and keep the thread asleep.
const POLL: Duration = Duration::from_millis(2);

/// State shared by the writer and the flusher thread.
#[derive(Debug, Default)]
struct Shared {
    /// Bumped by the writer each time it puts a new set in `claim`.
    requested: AtomicU64,
    /// The finished ranges the writer asks to be made durable and recorded.
    claim: Mutex<RangeSet>,
    /// `0..durable` is on disk and recorded.
    durable: AtomicU64,
    /// The recorded ranges hold this many bytes.
    covered: AtomicU64,
    /// The flusher stopped on an error; [`Flusher::stop`] returns it.
    failed: AtomicBool,
    /// Set by the owner to end the thread.
    stop: AtomicBool,
}

/// What the thread hands back when it ends: the control record, how far it got (the ranges
/// recorded, and the prefix among them), and the error that stopped it, if any.
#[derive(Debug)]
pub(super) struct Stopped {
    pub control: ControlFile,
    pub recorded: RangeSet,
    pub error: Option<io::Error>,
}

impl Shared {
    fn claim(&self) -> MutexGuard<'_, RangeSet> {
        self.claim.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for `finished` (see [`Flusher::request`]).
    fn request(&self, finished: &RangeSet) {
        self.claim().clone_from(finished);
        self.requested.fetch_add(1, Ordering::Release);
    }

    /// Tells the owner what the record lists now.
    fn publish(&self, recorded: &RangeSet) {
        self.durable
            .store(recorded.contiguous_len(), Ordering::Release);
        self.covered.store(recorded.covered(), Ordering::Release);
    }
}

/// A running flusher thread. It owns the control record until [`Flusher::stop`] returns it;
/// dropping it without `stop` joins the thread and loses the record's handle (the record on
/// disk stays as last written).
#[derive(Debug)]
pub(super) struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Stopped>>,
}

impl Flusher {
    /// Starts flushing `range` (the ranges `recorded` are durable and recorded in `control`
    /// already), on `core` if given. If no thread can be made, the record comes back.
    pub(super) fn start(
        range: Target,
        control: ControlFile,
        recorded: RangeSet,
        core: Option<usize>,
    ) -> Result<Flusher, Box<ControlFile>> {
        let shared = Arc::new(Shared::default());
        shared.publish(&recorded);
        // The record travels through a slot so that a failed spawn can give it back.
        let slot = Arc::new(Mutex::new(Some(control)));
        let take = |slot: &Mutex<Option<ControlFile>>| {
            slot.lock().unwrap_or_else(PoisonError::into_inner).take()
        };
        let spawned = {
            let (shared, slot) = (Arc::clone(&shared), Arc::clone(&slot));
            std::thread::Builder::new()
                .name("xdpget-flush".into())
                .spawn(move || {
                    if let Some(id) = core {
                        core_affinity::set_for_current(core_affinity::CoreId { id });
                    }
                    let control = take(&slot).expect("put in the slot before the spawn");
                    run(&shared, range, control, recorded)
                })
        };
        match spawned {
            Ok(thread) => Ok(Flusher {
                shared,
                thread: Some(thread),
            }),
            Err(_) => Err(Box::new(take(&slot).expect("the thread never ran"))),
        }
    }

    /// Asks for the ranges of `finished` to be made durable and recorded; every byte of them
    /// must already be in the mapping, and each request must hold the previous one. Waits
    /// only for a copy the flusher may be making of the previous request (a few ranges); no
    /// allocation once the copy's capacity has grown to the set's.
    pub(super) fn request(&self, finished: &RangeSet) {
        self.shared.request(finished);
    }

    /// A handle that asks for records from another thread (the staged write path's writer,
    /// which asks once the bytes are written).
    pub(super) fn requester(&self) -> Requester {
        Requester(Arc::clone(&self.shared))
    }

    /// `0..durable()` is on disk and recorded.
    pub(super) fn durable(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// The recorded ranges hold `covered()` bytes.
    pub(super) fn covered(&self) -> u64 {
        self.shared.covered.load(Ordering::Acquire)
    }

    /// The flusher stopped on an error ([`Flusher::stop`] returns it).
    pub(super) fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Stops the thread (a checkpoint under way completes first; one only asked for is left
    /// to the caller) and returns the control record.
    pub(super) fn stop(mut self) -> Stopped {
        self.shared.stop.store(true, Ordering::Release);
        let thread = self.thread.take().expect("joined only here and in Drop");
        match thread.join() {
            Ok(stopped) => stopped,
            // `run` does not panic; if it ever did, the panic belongs to this thread.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// [`Flusher::request`] from another thread.
#[derive(Debug)]
pub(super) struct Requester(Arc<Shared>);

impl Requester {
    /// Asks for the ranges of `written` to be made durable and recorded; every byte of them
    /// must already be written to the file, and each request must hold the previous one.
    /// Waits only for a copy the flusher may be making of the previous request.
    pub(super) fn request(&self, written: &RangeSet) {
        self.0.request(written);
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Makes the bytes of `wanted` that `recorded` lacks durable, then records `wanted`: the
/// order `-c` relies on (docs/sink.md).
fn checkpoint(
    target: &Target,
    control: &mut ControlFile,
    recorded: &RangeSet,
    wanted: &RangeSet,
) -> io::Result<()> {
    if control.durability().syncs() {
        match target {
            Target::Mapped(range) => {
                for (start, end) in wanted.iter() {
                    for (from, to) in recorded.gaps(start, end) {
                        control.durability().mapped(
                            range,
                            to_usize(from)?,
                            to_usize(to - from)?,
                        )?;
                    }
                }
            }
            // One fdatasync covers every range the writer has written.
            Target::File(file) => control.durability().data(file)?,
        }
    }
    control.record(wanted)
}

fn to_usize(value: u64) -> io::Result<usize> {
    usize::try_from(value).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))
}

/// The flusher thread's loop.
fn run(
    shared: &Shared,
    target: Target,
    mut control: ControlFile,
    mut recorded: RangeSet,
) -> Stopped {
    let mut handled = 0;
    let mut wanted = RangeSet::new();
    loop {
        let stop = shared.stop.load(Ordering::Acquire);
        let requested = shared.requested.load(Ordering::Acquire);
        if requested != handled && !stop {
            handled = requested;
            wanted.clone_from(&shared.claim());
            if wanted != recorded {
                if let Err(error) = checkpoint(&target, &mut control, &recorded, &wanted) {
                    shared.failed.store(true, Ordering::Release);
                    return Stopped {
                        control,
                        recorded,
                        error: Some(error),
                    };
                }
                std::mem::swap(&mut recorded, &mut wanted);
                shared.publish(&recorded);
            }
            continue;
        }
        if stop {
            return Stopped {
                control,
                recorded,
                error: None,
            };
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::FsyncPolicy;
    use crate::sink::control::{Identity, control_path, read_record};
    use crate::sink::durability::Durability;
    use crate::sink::sys::{Mapping, allocate};

    use std::time::Instant;

    fn upto(n: u64) -> RangeSet {
        RangeSet::from_range(0, n)
    }

    fn identity() -> Identity {
        Identity {
            url: "http://server.test/f".to_string(),
            length: Some(1 << 20),
            etag: None,
            last_modified: None,
        }
    }

    /// Waits (bounded) until the flusher reports `want` durable.
    fn wait_durable(flusher: &Flusher, want: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while flusher.durable() < want && !flusher.failed() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        flusher.durable()
    }

    #[test]
    fn a_request_is_synced_then_recorded_and_stop_returns_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let data_path = dir.path().join("f.part");
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&data_path)
            .unwrap();
        allocate(&file, 0, 1 << 20).unwrap();
        let mut mapping = Mapping::new(&file, 1 << 20).unwrap();
        let record_path = control_path(&dir.path().join("f"));
        let control = ControlFile::open(
            &record_path,
            &identity(),
            &RangeSet::new(),
            Durability::new(FsyncPolicy::On),
        )
        .unwrap();
        let flusher = Flusher::start(
            Target::Mapped(mapping.range()),
            control,
            RangeSet::new(),
            None,
        )
        .unwrap();
        mapping.bytes_mut()[..300_000].fill(7);
        flusher.request(&upto(300_000));
        assert_eq!(wait_durable(&flusher, 300_000), 300_000);
        let record = read_record(&record_path).unwrap().expect("a record");
        assert_eq!(record.prefix(), 300_000);
        let stopped = flusher.stop();
        assert_eq!(stopped.recorded.contiguous_len(), 300_000);
        assert!(stopped.error.is_none());
        let mut control = stopped.control;
        control.record(&upto(400_000)).unwrap();
        assert_eq!(
            read_record(&record_path).unwrap().unwrap().prefix(),
            400_000
        );
    }

    #[test]
    fn a_failed_sync_is_reported_and_nothing_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        // A range where nothing is mapped: msync fails with ENOMEM.
        let range = MappedRange::unmapped_for_tests();
        let record_path = control_path(&dir.path().join("f"));
        let control = ControlFile::open(
            &record_path,
            &identity(),
            &RangeSet::new(),
            Durability::new(FsyncPolicy::On),
        )
        .unwrap();
        let flusher =
            Flusher::start(Target::Mapped(range), control, RangeSet::new(), None).unwrap();
        flusher.request(&upto(4096));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !flusher.failed() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(flusher.failed());
        assert_eq!(flusher.durable(), 0);
        let stopped = flusher.stop();
        assert!(stopped.error.is_some());
        assert_eq!(read_record(&record_path).unwrap().unwrap().prefix(), 0);
    }
}
