//! The file sink: body bytes placed at their final offset in `NAME.part`, in order or not;
//! `NAME.part` becomes `NAME` only when complete. By default they are copied once, into a
//! staging buffer, and a writer thread hands whole pieces to the disk with `O_DIRECT`
//! (`stage.rs`); with helper threads turned off or `--prefault populate|willneed|off`, they
//! are copied into a memory mapping of the file instead, as described below.
//!
//! Life of a download (docs/sink.md tells the same from the user's side):
//!
//! 1. **open**: `NAME.part` is created (or a resumable one reopened) and locked, the control
//!    record `NAME.part.xdpget` is written with the finished ranges, and a known length is
//!    preallocated with `fallocate`, so a full disk is an error before the transfer starts.
//!    An unknown length starts at 64 MiB and grows by doubling (at most 1 GiB a step): each
//!    step is one `fallocate` of the new tail (metadata only on ext4/xfs) and one `mremap`,
//!    which moves page tables rather than data; at most 1 GiB (or the size so far) is
//!    reserved beyond the body until `finish` trims it.
//! 2. **write_at**: a `memcpy` into the mapping. The preparer thread (`prepare.rs`) keeps
//!    the mapping populated (`MADV_POPULATE_WRITE`) a window ahead of the write front; only
//!    when the writer outruns it does `write_at` populate the next window itself (see
//!    [`Prefault`] and [`Background`]).
//! 3. **poll_checkpoint**: every 64 MiB of progress or 250 ms, the ranges that arrived are
//!    recorded as trusted, by the flusher thread (`flush.rs`), so the busy-poll thread only
//!    asks. By default ([`FsyncPolicy::Off`]) that is one `pwrite` of the record: the bytes it
//!    claims are in the page cache already, which outlives the process (`durability.rs`).
//!    Under [`FsyncPolicy::On`] each new range is msynced (a staged file: fdatasync'd)
//!    *before* it is recorded. On the staged path the set recorded is the one the writer
//!    thread has written (`stage.rs`), never bytes still in a staging buffer. Without a
//!    flusher the writer does it itself: without syncs at once; with syncs in two phases so
//!    the writer never waits for much: the range whose writeback was started at the previous
//!    checkpoint is msynced (mostly clean by then) and recorded, and writeback of the newly
//!    contiguous bytes is started (sync_file_range).
//! 4. **finish**: trim to the exact length (if the file is longer), rename to `NAME`, delete
//!    the control record; under `On` with an msync and fsync before the rename and a sync of
//!    the directory after it. The mapping is unmapped on a thread of its own, off the path to
//!    the process's exit. **abandon** (failure, Ctrl-C, Drop): (under `On` msync) every range
//!    that arrived and record them, so `-c` fetches only the holes; a file holding one prefix
//!    is cut to it, any other keeps its length.
//!
//! [`FsyncPolicy::Off`]: super::FsyncPolicy::Off
//! [`FsyncPolicy::On`]: super::FsyncPolicy::On

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::control::{ControlFile, Identity, MAX_RANGES, ResumeInfo, control_path, part_path};
use super::durability::{Durability, SyncCalls};
use super::flush::{Flusher, Target};
use super::prepare::Preparer;
use super::stage::Stager;
use super::stream::{check_bounds, check_complete};
use super::sys::{self, Mapping};
use super::{Background, Prefault, RangeSet, SinkError, SinkOptions, directory_of};
use crate::time::Instant;

/// Largest growth step of an unknown-length body.
const MAX_GROWTH_STEP: u64 = 1024 * 1024 * 1024;
/// Growth rounds up to whole MiB...
const GROWTH_ALIGN: u64 = 1024 * 1024;
/// ...or, on a disk too full for that, to whole pages.
const LAST_RESORT_ALIGN: u64 = 4096;

/// How soon the engine looks again at a staged sink whose writer holds most buffers.
const STAGED_REPOLL: std::time::Duration = std::time::Duration::from_millis(1);

/// A download into `NAME.part`, renamed to `NAME` on success.
#[derive(Debug)]
pub struct FileSink {
    final_path: PathBuf,
    part_path: PathBuf,
    file: File,
    backing: Backing,
    /// The control record; with the flusher while it runs.
    control: Option<ControlFile>,
    control_path: PathBuf,
    /// Full body length, when known.
    length: Option<u64>,
    /// Bytes of the file allocated (and mapped, in mmap mode).
    capacity: u64,
    arrived: RangeSet,
    options: SinkOptions,
    /// Current prefault policy (may fall back at run time).
    prefault: Prefault,
    /// The mapping is prefaulted up to here.
    prefaulted_end: u64,
    /// The ranges the control record lists (under `On`: on disk too). While a flusher runs
    /// it knows more: this is what it started from.
    recorded: RangeSet,
    /// Writeback of these ranges has been started (with a flusher: they were asked for).
    kicked: RangeSet,
    last_checkpoint: Option<Instant>,
    /// On the staged path: where the receive window may end (a file offset). It only moves
    /// right, so the advertised window never shrinks (RFC 9293 §3.8.6.2.1).
    window_end: u64,
    /// The `now` of the last [`FileSink::poll_checkpoint`].
    last_poll: Option<Instant>,
    /// A write-back failed. Linux reports such an error once per open file, so a later
    /// msync can succeed without the lost pages on disk: from here on nothing more is
    /// synced or recorded (the record keeps the last prefix known to be on disk).
    sync_failed: bool,
    /// Finished or abandoned: Drop has nothing left to do.
    closed: bool,
    /// The sync calls `--fsync-policy` asks for, and their count.
    durability: Durability,
}

enum Backing {
    /// Nothing mapped yet (capacity 0).
    Unmapped,
    /// Mapped, with the helper threads that work in the mapping: the preparer ahead of the
    /// write front, the flusher behind it. Fields drop in order: both are joined before the
    /// mapping goes away (`join_helpers` takes the control record back first).
    Mapped {
        preparer: Option<Preparer>,
        flusher: Option<Flusher>,
        mapping: Mapping,
    },
    /// Staged (the default with helper threads, `stage.rs`): copied into staging buffers,
    /// written by the writer thread with `pwrite` a whole piece at a time; the flusher
    /// records what the writer has written.
    Staged {
        stager: Stager,
        flusher: Option<Flusher>,
    },
    /// Written with pwrite: by choice, or because the file system has no fallocate.
    Pwrite,
}

impl fmt::Debug for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backing::Unmapped => f.write_str("Unmapped"),
            Backing::Mapped {
                preparer,
                flusher,
                mapping,
            } => write!(
                f,
                "Mapped({} bytes, preparer: {}, flusher: {})",
                mapping.len(),
                preparer.is_some(),
                flusher.is_some()
            ),
            Backing::Staged { flusher, .. } => {
                write!(f, "Staged(flusher: {})", flusher.is_some())
            }
            Backing::Pwrite => f.write_str("Pwrite"),
        }
    }
}

impl FileSink {
    /// Opens `final_path.part` for a download of `identity`, resuming as `resume` says
    /// ([`ResumeInfo::Fresh`] unless `-c`). A known length is preallocated now.
    pub fn open(
        final_path: &Path,
        identity: &Identity,
        resume: &ResumeInfo,
        options: &SinkOptions,
    ) -> Result<FileSink, SinkError> {
        let part_path = part_path(final_path);
        let control_path = control_path(final_path);
        let durability = Durability::new(options.fsync);
        // A full disk while writing the record is reported with what the body still needs.
        let remaining = |start: u64| identity.length.unwrap_or(0).saturating_sub(start);
        let control_error = |start: u64, e: io::Error| {
            SinkError::from_io("write", &control_path, remaining(start), e)
        };
        let too_large = |have: u64| match identity.length {
            Some(length) if have > length => Err(SinkError::LocalLarger {
                path: final_path.to_path_buf(),
                have,
                length,
            }),
            _ => Ok(()),
        };
        let (file, finished, control) = match resume {
            ResumeInfo::Partial { finished, .. } => {
                let file = open_part(&part_path, false)?;
                let mut finished = finished.clone();
                finished.remove(file_len(&file, &part_path)?, u64::MAX);
                too_large(finished.end())?;
                // Bytes past the last finished range may be holes or stale: drop them.
                file.set_len(finished.end())
                    .map_err(|e| SinkError::from_io("truncate", &part_path, 0, e))?;
                let control =
                    ControlFile::open(&control_path, identity, &finished, durability.clone())
                        .map_err(|e| control_error(finished.covered(), e))?;
                (file, finished, control)
            }
            ResumeInfo::Plain { offset } => {
                too_large(*offset)?;
                // Record first, rename second: a crash in between leaves `NAME` and a record
                // without `.part`, which lookup reads as a plain file again.
                let recorded = RangeSet::from_range(0, *offset);
                let control =
                    ControlFile::open(&control_path, identity, &recorded, durability.clone())
                        .map_err(|e| control_error(*offset, e))?;
                std::fs::rename(final_path, &part_path)
                    .map_err(|e| SinkError::from_io("rename", final_path, 0, e))?;
                let file = open_part(&part_path, false)?;
                let start = (*offset).min(file_len(&file, &part_path)?);
                (file, RangeSet::from_range(0, start), control)
            }
            ResumeInfo::Fresh | ResumeInfo::Untrusted { .. } => {
                let file = open_part(&part_path, true)?;
                file.set_len(0)
                    .map_err(|e| SinkError::from_io("truncate", &part_path, 0, e))?;
                // Recorded (as 0) before any byte is written, so a stale record of an
                // earlier run can never vouch for the new bytes.
                let control = match ControlFile::open(
                    &control_path,
                    identity,
                    &RangeSet::new(),
                    durability.clone(),
                ) {
                    Ok(control) => control,
                    Err(e) => {
                        // Leave nothing behind for a download that never started.
                        let _ = std::fs::remove_file(&part_path);
                        return Err(control_error(0, e));
                    }
                };
                (file, RangeSet::new(), control)
            }
        };
        let start = finished.contiguous_len();
        let end = finished.end();
        let mut sink = FileSink {
            final_path: final_path.to_path_buf(),
            part_path,
            file,
            backing: if options.use_pwrite {
                Backing::Pwrite
            } else {
                Backing::Unmapped
            },
            control_path: control.path().to_path_buf(),
            control: Some(control),
            length: identity.length,
            // Allocated from the prefix on, over the holes between finished ranges too: a
            // hole may be sparse (a copied `.part`), and a write into it must not find the
            // disk full. `fallocate` leaves the bytes of the finished ranges as they are.
            capacity: start,
            arrived: finished.clone(),
            options: *options,
            prefault: options.prefault,
            prefaulted_end: start,
            recorded: finished.clone(),
            kicked: finished.clone(),
            last_checkpoint: None,
            window_end: 0,
            last_poll: None,
            sync_failed: false,
            closed: false,
            durability,
        };
        // From here on, an error drops `sink`, whose Drop keeps the finished ranges (trims
        // the file to them when they are one prefix; removes a fresh one).
        match identity.length {
            // All of it now: a full disk is an error before the transfer starts.
            Some(length) => sink.reserve(length, length.saturating_sub(finished.covered()))?,
            // A head start, as much of it as fits; growth steps reserve what the body needs.
            None => sink.reserve_flexibly(end.max(options.initial_capacity), end)?,
        }
        // Under `On`, make the allocation and size durable once, so later msyncs of data
        // ranges are all a power loss needs.
        sink.durability
            .all(&sink.file)
            .map_err(|e| SinkError::from_io("sync", &sink.part_path, 0, e))?;
        Ok(sink)
    }

    /// Copies `bytes` to `offset..offset+len` of the file. Any order; overlaps are rewritten.
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), SinkError> {
        let end = check_bounds(&self.final_path, self.length, offset, bytes)?;
        if end <= offset {
            return Ok(());
        }
        if end > self.capacity && !matches!(self.backing, Backing::Pwrite) {
            self.grow_for(end)?;
        }
        if let Backing::Staged { stager, .. } = &mut self.backing {
            stager
                .write(offset, bytes)
                .map_err(|e| SinkError::from_io("write", &self.part_path, 0, e))?;
            self.arrived.insert(offset, end);
            return Ok(());
        }
        if let Backing::Mapped {
            preparer: Some(preparer),
            ..
        } = &mut self.backing
        {
            preparer.advance(end);
            self.prefaulted_end = self.prefaulted_end.max(preparer.prepared());
        }
        if matches!(self.backing, Backing::Mapped { .. }) {
            self.prefault_ahead(end)?;
        }
        let (from, to) = (self.to_usize(offset)?, self.to_usize(end)?);
        match &mut self.backing {
            Backing::Mapped { mapping, .. } => match mapping.bytes_mut().get_mut(from..to) {
                Some(target) => target.copy_from_slice(bytes),
                None => return Err(self.beyond_capacity(offset, end)),
            },
            Backing::Pwrite => self
                .file
                .write_all_at(bytes, offset)
                .map_err(|e| SinkError::from_io("write", &self.part_path, bytes.len() as u64, e))?,
            // Staged writes returned above.
            Backing::Unmapped | Backing::Staged { .. } => {
                return Err(self.beyond_capacity(offset, end));
            }
        }
        self.arrived.insert(offset, end);
        Ok(())
    }

    /// Bytes `0..contiguous_len()` have arrived (not necessarily on disk yet).
    pub fn contiguous_len(&self) -> u64 {
        self.arrived.contiguous_len()
    }

    /// Bytes `0..durable_len()` are recorded (and under `--fsync-policy on` on disk): the
    /// prefix `-c` would trust after a crash right now.
    pub fn durable_len(&self) -> u64 {
        self.flusher()
            .map_or(self.recorded.contiguous_len(), Flusher::durable)
    }

    /// The byte ranges that have arrived.
    pub fn arrived(&self) -> &RangeSet {
        &self.arrived
    }

    /// `NAME.part`, where the bytes are until `finish`.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// The count of msync, fsync and fdatasync calls this download makes (none under
    /// `--fsync-policy off`); readable after `finish` or `abandon` too.
    pub fn sync_calls(&self) -> SyncCalls {
        self.durability.calls()
    }

    /// Runs a checkpoint if one is due (see the module docs), or asks the flusher to. Cheap
    /// when none is; with a flusher it never waits. A flusher's error is returned here.
    pub fn poll_checkpoint(&mut self, now: Instant) -> Result<(), SinkError> {
        if self.flusher().is_some_and(Flusher::failed) {
            return self.join_helpers();
        }
        self.last_poll = Some(now);
        if let Backing::Staged { stager, .. } = &mut self.backing {
            stager
                .poll()
                .map_err(|e| SinkError::from_io("write", &self.part_path, 0, e))?;
            let room = stager.room_end(self.arrived.contiguous_len());
            self.window_end = self.window_end.max(room);
        }
        // Sets of a handful of ranges: counting them is a few additions.
        let covered = self.arrived.covered();
        let last = *self.last_checkpoint.get_or_insert(now);
        let grown = covered.saturating_sub(self.kicked.covered());
        // Arrived bytes the record does not list yet (with a flusher: as of its last report;
        // on the staged path they may still wait in a staging buffer).
        let unrecorded = covered
            > self
                .flusher()
                .map_or(self.recorded.covered(), Flusher::covered);
        let due = grown >= self.options.checkpoint_bytes
            || (unrecorded && now - last >= self.options.checkpoint_interval);
        if !due {
            return Ok(());
        }
        self.last_checkpoint = Some(now);
        if let Backing::Staged { stager, .. } = &mut self.backing {
            // The writer has the flusher record what it has written, once it has written the
            // open pieces below the contiguous prefix.
            stager
                .checkpoint(self.arrived.contiguous_len())
                .map_err(|e| SinkError::from_io("write", &self.part_path, 0, e))?;
            self.kicked.clone_from(&self.arrived);
            return Ok(());
        }
        match self.flusher() {
            Some(flusher) => {
                flusher.request(&self.arrived);
                self.kicked.clone_from(&self.arrived);
                Ok(())
            }
            None => self.checkpoint(),
        }
    }

    /// How many bytes past the contiguous prefix the engine may let the sender send (see
    /// `Sink::reorder_capacity`). On the staged path: as many as the staging buffers the
    /// writer does not hold can take (`Stager::room_end`), never less than was granted
    /// before; `None` (no limit) for a mapping or `pwrite`, which never wait.
    pub fn reorder_capacity(&self) -> Option<u64> {
        match self.backing {
            Backing::Staged { .. } => Some(
                self.window_end
                    .saturating_sub(self.arrived.contiguous_len()),
            ),
            _ => None,
        }
    }

    /// When the engine should poll again even if no bytes arrive: while the writer holds
    /// more than half of the staging buffers the window is narrowed, and it opens again only
    /// when they come back, which no segment announces. 1 ms after the last poll.
    pub fn poll_again_at(&self) -> Option<Instant> {
        match &self.backing {
            Backing::Staged { stager, .. } if stager.behind() => {
                self.last_poll.map(|at| at + STAGED_REPOLL)
            }
            _ => None,
        }
    }

    /// The flusher thread, when one runs.
    fn flusher(&self) -> Option<&Flusher> {
        match &self.backing {
            Backing::Mapped { flusher, .. } | Backing::Staged { flusher, .. } => flusher.as_ref(),
            _ => None,
        }
    }

    /// The ranges a record may claim now: bytes that arrived and are in the file (in the
    /// staged write path, bytes still in a staging buffer, or whose write failed, are not).
    fn recordable(&self) -> RangeSet {
        match &self.backing {
            Backing::Staged { stager, .. } => stager.stored().clone(),
            _ => self.arrived.clone(),
        }
    }

    /// The staged write path is taken for a new file when the options ask for it and give
    /// it its threads.
    fn stages(&self) -> bool {
        self.options.staging && self.options.background.is_some() && !self.options.use_pwrite
    }

    /// Starts the staged write path: the writer thread (`stage.rs`) and the flusher, each
    /// with a handle of its own on the file. Without threads, the mapping is used instead.
    fn start_staged(&mut self) -> Result<bool, SinkError> {
        let core = self.options.background.and_then(|b| b.core);
        let clone = |file: &File| {
            file.try_clone()
                .map_err(|e| SinkError::from_io("open", &self.part_path, 0, e))
        };
        let Some(control) = self.control.take() else {
            return Ok(false);
        };
        let flusher = match Flusher::start(
            Target::File(clone(&self.file)?),
            control,
            self.recorded.clone(),
            core,
        ) {
            Ok(flusher) => flusher,
            Err(control) => {
                self.control = Some(*control);
                return Ok(false);
            }
        };
        let started = Stager::start(
            clone(&self.file)?,
            &self.part_path,
            &self.recorded,
            self.length,
            Some(flusher.requester()),
            core,
        );
        match started {
            Ok(stager) => {
                self.window_end = stager.room_end(self.arrived.contiguous_len());
                self.backing = Backing::Staged {
                    stager,
                    flusher: Some(flusher),
                };
                Ok(true)
            }
            Err(_) => {
                self.control = Some(flusher.stop().control);
                Ok(false)
            }
        }
    }

    /// Starts the helper threads a mapping gets when the options ask for them: the preparer
    /// (with `PopulateWrite`) from the inline prefault front, the flusher with the control
    /// record. A helper that cannot be started is done without, on the writer's thread.
    fn start_helpers(&mut self) {
        let Some(Background { window, core }) = self.options.background else {
            return;
        };
        let Backing::Mapped {
            preparer,
            flusher,
            mapping,
        } = &mut self.backing
        else {
            return;
        };
        if preparer.is_none() && matches!(self.prefault, Prefault::PopulateWrite { .. }) {
            *preparer = Preparer::start(mapping.range(), self.prefaulted_end, window, core).ok();
        }
        // Also without syncs, where a checkpoint is one pwrite of the record: it keeps that
        // call (and the record's encoding) off the busy-poll thread.
        if flusher.is_none()
            && let Some(control) = self.control.take()
        {
            let target = Target::Mapped(mapping.range());
            match Flusher::start(target, control, self.recorded.clone(), core) {
                Ok(started) => *flusher = Some(started),
                Err(control) => self.control = Some(*control),
            }
        }
    }

    /// Stops the helper threads and takes the control record back, with how far the flusher
    /// got; returns the error that stopped the flusher, if one did.
    fn join_helpers(&mut self) -> Result<(), SinkError> {
        let (flusher, written) = match &mut self.backing {
            Backing::Mapped {
                preparer, flusher, ..
            } => {
                *preparer = None;
                (flusher, Ok(()))
            }
            // Every staged byte is written (or the write failed) before the flusher stops.
            Backing::Staged { stager, flusher } => (flusher, stager.finish()),
            _ => return Ok(()),
        };
        if let Err(error) = written {
            // The record stays with what the flusher recorded; nothing more is recorded.
            if let Some(flusher) = flusher.take() {
                let stopped = flusher.stop();
                self.control = Some(stopped.control);
                self.recorded = stopped.recorded;
            }
            return Err(SinkError::from_io("write", &self.part_path, 0, error));
        }
        let Some(flusher) = flusher.take() else {
            return Ok(());
        };
        let stopped = flusher.stop();
        self.control = Some(stopped.control);
        self.recorded = stopped.recorded;
        // A request the flusher had not taken up yet is asked for again at the next poll.
        self.kicked.clone_from(&self.recorded);
        match stopped.error {
            Some(error) => {
                self.sync_failed = true;
                Err(SinkError::from_io("sync", &self.part_path, 0, error))
            }
            None => Ok(()),
        }
    }

    /// A checkpoint on the writer's thread. Without syncs: record what has arrived now (it
    /// is all in the page cache). With syncs, in two phases: record what was kicked last time
    /// (after waiting for it), then kick writeback of what arrived since.
    fn checkpoint(&mut self) -> Result<(), SinkError> {
        if !self.durability.syncs() {
            self.kicked.clone_from(&self.arrived);
            let arrived = self.arrived.clone();
            return self.record(&arrived);
        }
        if self.kicked != self.recorded {
            let (recorded, kicked) = (self.recorded.clone(), self.kicked.clone());
            self.sync_new(&recorded, &kicked)?;
            self.record(&kicked)?;
        }
        if self.arrived != self.kicked {
            for (start, end) in self.arrived.iter() {
                for (from, to) in self.kicked.gaps(start, end) {
                    // Only a head start for the msync of the next checkpoint, which does the
                    // real work either way: a file system that refuses it costs time, not
                    // correctness.
                    let _ = sys::start_writeback(&self.file, from, to - from);
                }
            }
            self.kicked.clone_from(&self.arrived);
        }
        Ok(())
    }

    /// Complete: trim, (under `On`) make durable, rename to the final name, drop the control
    /// record. Returns the body length. If bytes are missing this fails and the sink is
    /// abandoned.
    pub fn finish(mut self) -> Result<u64, SinkError> {
        let total = check_complete(&self.final_path, self.length, &self.arrived)?;
        self.join_helpers()?;
        let recorded = self.recorded.clone();
        self.sync_new(&recorded, &RangeSet::from_range(0, total))?;
        // A mapped file is exactly `capacity` long (fallocate made it so); any other may be
        // longer than the body and is cut.
        let exact = matches!(
            self.backing,
            Backing::Mapped { .. } | Backing::Staged { .. }
        ) && self.capacity == total;
        // Every byte is in the page cache (and under `On` on disk): the mapping has done its
        // job. Nothing touches it again, so a page of it past a new end of file is harmless.
        if let Backing::Mapped { mapping, .. } =
            std::mem::replace(&mut self.backing, Backing::Unmapped)
        {
            unmap_in_background(mapping);
        }
        if !exact {
            self.file
                .set_len(total)
                .map_err(|e| SinkError::from_io("truncate", &self.part_path, 0, e))?;
        }
        self.durability
            .all(&self.file)
            .map_err(|e| SinkError::from_io("sync", &self.part_path, 0, e))?;
        std::fs::rename(&self.part_path, &self.final_path)
            .map_err(|e| SinkError::from_io("rename", &self.part_path, 0, e))?;
        // The file under its final name is complete: nothing may trim it any more.
        self.closed = true;
        let dir = directory_of(&self.final_path);
        self.durability
            .directory(dir)
            .map_err(|e| SinkError::from_io("sync", dir, 0, e))?;
        remove_if_present(&self.control_path)?;
        Ok(total)
    }

    /// Failure or interruption: make every finished range durable (under `On`) and record it
    /// for `-c` (the [`MAX_RANGES`] longest). When that is one prefix, the file is trimmed to
    /// it; otherwise it keeps its length and the record says which ranges are good. Returns
    /// the bytes kept. A download that kept nothing leaves no files behind.
    pub fn abandon(mut self) -> Result<u64, SinkError> {
        self.abandon_in_place()
    }

    fn abandon_in_place(&mut self) -> Result<u64, SinkError> {
        if self.closed {
            return Ok(self.recorded.covered());
        }
        self.closed = true;
        // A flusher's error is reported after the ranges are kept as well as they can be.
        let joined = self.join_helpers();
        // After a failed staged write, only what reached the file is kept.
        let mut keep = self.recordable();
        keep.retain_largest(MAX_RANGES);
        let recorded = self.recorded.clone();
        let synced = self.sync_new(&recorded, &keep);
        self.backing = Backing::Unmapped;
        // One prefix: the file is cut to it, as it always was, so it has no hole inside.
        // Trimming is safe even if the sync failed: the record still lists less than `keep`.
        let trimmed = if keep.range_count() <= 1 && keep.contiguous_len() == keep.end() {
            self.file.set_len(keep.end())
        } else {
            Ok(())
        };
        trimmed
            .and_then(|()| self.durability.all(&self.file))
            .map_err(|e| SinkError::from_io("truncate", &self.part_path, 0, e))?;
        synced?;
        if keep.is_empty() {
            remove_if_present(&self.part_path)?;
            remove_if_present(&self.control_path)?;
            return joined.map(|()| 0);
        }
        self.record(&keep)?;
        joined.map(|()| keep.covered())
    }

    /// Waits until `from..to` of the file is on disk, under `--fsync-policy on`; does
    /// nothing under `off`. After one failure every later call fails too (see `sync_failed`).
    fn sync_range(&mut self, from: u64, to: u64) -> Result<(), SinkError> {
        if to <= from {
            return Ok(());
        }
        let result = if self.sync_failed {
            Err(io::Error::other(
                "an earlier write-back to this file failed",
            ))
        } else {
            match &self.backing {
                Backing::Mapped { mapping, .. } => {
                    let (from, to) = (self.to_usize(from)?, self.to_usize(to)?);
                    self.durability.mapped(&mapping.range(), from, to - from)
                }
                Backing::Pwrite | Backing::Staged { .. } => self.durability.data(&self.file),
                Backing::Unmapped => Ok(()),
            }
        };
        self.sync_failed |= result.is_err();
        result.map_err(|e| SinkError::from_io("sync", &self.part_path, 0, e))
    }

    /// Waits until the bytes of `new` that `old` lacks are on disk, under
    /// `--fsync-policy on` (one msync per range of a mapping, one fdatasync of any other
    /// file); does nothing under `off`.
    fn sync_new(&mut self, old: &RangeSet, new: &RangeSet) -> Result<(), SinkError> {
        let mut missing = new.iter().flat_map(|(start, end)| old.gaps(start, end));
        if !matches!(self.backing, Backing::Mapped { .. }) {
            return missing
                .next()
                .map_or(Ok(()), |(from, to)| self.sync_range(from, to));
        }
        missing.try_for_each(|(from, to)| self.sync_range(from, to))
    }

    /// Records `finished` as trusted; its bytes must be stored (and under `On` durable)
    /// already. Only while no flusher holds the record (callers run `join_helpers` first).
    fn record(&mut self, finished: &RangeSet) -> Result<(), SinkError> {
        let result = match self.control.as_mut() {
            Some(control) => control.record(finished),
            None => Err(io::Error::other(
                "the control record is with the flusher thread",
            )),
        };
        result.map_err(|e| SinkError::from_io("write", &self.control_path, 0, e))?;
        self.recorded.clone_from(finished);
        Ok(())
    }

    /// Grows an unknown-length file so that `end` fits: double (at most 1 GiB more), or as
    /// much of that as the disk can hold.
    fn grow_for(&mut self, end: u64) -> Result<(), SinkError> {
        let just_enough = end.div_ceil(GROWTH_ALIGN).saturating_mul(GROWTH_ALIGN);
        let doubled = self
            .capacity
            .saturating_mul(2)
            .min(self.capacity.saturating_add(MAX_GROWTH_STEP))
            .max(self.options.initial_capacity)
            .max(just_enough);
        self.reserve_flexibly(doubled, end)
    }

    /// Makes the file `goal` bytes long, or, when the disk cannot hold that, the most of it
    /// that fits, halving the growth down to `minimum` (rounded up to a page). `minimum` at
    /// or below the capacity means nothing is needed now, and a full disk is no error yet.
    /// A full disk is reported with the bytes `minimum` needed.
    fn reserve_flexibly(&mut self, goal: u64, minimum: u64) -> Result<(), SinkError> {
        let floor = if minimum <= self.capacity {
            self.capacity
        } else {
            minimum.next_multiple_of(LAST_RESORT_ALIGN)
        };
        let mut goal = goal.max(floor);
        loop {
            match self.reserve(goal, goal.saturating_sub(self.capacity)) {
                Err(SinkError::NoSpace { .. }) if goal > floor => {
                    let half = self.capacity + (goal - self.capacity) / 2;
                    let next = half.next_multiple_of(LAST_RESORT_ALIGN).max(floor);
                    goal = if next < goal { next } else { floor };
                }
                other => return other,
            }
        }
    }

    /// Makes the file `new_capacity` bytes long, allocated, and (in mmap mode) mapped.
    /// `needed` is the byte count a full disk is reported with.
    fn reserve(&mut self, new_capacity: u64, needed: u64) -> Result<(), SinkError> {
        if new_capacity <= self.capacity {
            return Ok(());
        }
        match sys::allocate(&self.file, self.capacity, new_capacity - self.capacity) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                // No fallocate here: a mapping could hit SIGBUS on a full disk, pwrite gets
                // an error instead. Unmapping keeps the data (it is in the page cache).
                self.join_helpers()?;
                self.backing = Backing::Pwrite;
                self.capacity = new_capacity;
                return Ok(());
            }
            Err(e) => return Err(SinkError::from_io("allocate", &self.part_path, needed, e)),
        }
        if matches!(self.backing, Backing::Staged { .. })
            || (matches!(self.backing, Backing::Unmapped)
                && self.stages()
                && self.start_staged()?)
        {
            // Nothing is mapped: the allocation is all a growth step needs.
            self.capacity = new_capacity;
            return Ok(());
        }
        let len = self.to_usize(new_capacity)?;
        if matches!(self.backing, Backing::Mapped { .. }) {
            // The mapping may move: the helpers are joined first and restarted after.
            self.join_helpers()?;
        }
        let map_error = |e| SinkError::from_io("map", &self.part_path, 0, e);
        match &mut self.backing {
            Backing::Pwrite | Backing::Staged { .. } => {}
            Backing::Mapped { mapping, .. } => mapping.grow(len).map_err(map_error)?,
            Backing::Unmapped => {
                let mapping = Mapping::new(&self.file, len).map_err(map_error)?;
                if self.options.huge_pages {
                    mapping.hint_huge_pages();
                }
                self.backing = Backing::Mapped {
                    preparer: None,
                    flusher: None,
                    mapping,
                };
            }
        }
        // Only now: the mapping covers it (the file may already be longer; finish trims).
        self.capacity = new_capacity;
        self.start_helpers();
        Ok(())
    }

    /// Prepares the mapping a window ahead of `end` (see [`Prefault`]).
    fn prefault_ahead(&mut self, end: u64) -> Result<(), SinkError> {
        let window = match self.prefault {
            Prefault::Off => return Ok(()),
            Prefault::WillNeed { window } | Prefault::PopulateWrite { window } => window,
        };
        if self.prefaulted_end >= self.capacity
            || end.saturating_add(window / 2) <= self.prefaulted_end
        {
            return Ok(());
        }
        // Never prepare more than a window behind the front, even after a jump.
        let from = self.prefaulted_end.max(end.saturating_sub(window));
        let to = end.saturating_add(window).min(self.capacity);
        let (start, len) = (self.to_usize(from)?, self.to_usize(to - from)?);
        let Backing::Mapped { mapping, .. } = &self.backing else {
            return Ok(());
        };
        match self.prefault {
            Prefault::PopulateWrite { window } => match mapping.populate_write(start, len) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // Kernel before 5.14: fall back to read-ahead hints.
                    self.prefault = Prefault::WillNeed { window };
                    return Ok(());
                }
                // EFAULT here is a SIGBUS that did not happen: the page could not be made.
                Err(e) => {
                    return Err(SinkError::from_io(
                        "prepare",
                        &self.part_path,
                        len as u64,
                        e,
                    ));
                }
            },
            Prefault::WillNeed { .. } => {
                if mapping.will_need(start, len).is_err() {
                    // Only a hint; stop giving it.
                    self.prefault = Prefault::Off;
                }
            }
            Prefault::Off => {}
        }
        self.prefaulted_end = to;
        Ok(())
    }

    /// A write the allocation does not cover (only reachable through a bug in this file).
    fn beyond_capacity(&self, start: u64, end: u64) -> SinkError {
        SinkError::BeyondEnd {
            path: self.final_path.clone(),
            start,
            end,
            length: self.capacity,
        }
    }

    fn to_usize(&self, value: u64) -> Result<usize, SinkError> {
        usize::try_from(value).map_err(|_| SinkError::TooLarge {
            path: self.part_path.clone(),
            bytes: value,
        })
    }
}

impl Drop for FileSink {
    /// An unfinished sink is abandoned: every range that arrived is kept for `-c`. Errors are
    /// lost here; call [`FileSink::abandon`] to see them.
    fn drop(&mut self) {
        let _ = self.abandon_in_place();
    }
}

/// Opens (or creates) `NAME.part` read-write and takes its lock.
fn open_part(path: &Path, create: bool) -> Result<File, SinkError> {
    let file = File::options()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .map_err(|e| SinkError::from_io(if create { "create" } else { "open" }, path, 0, e))?;
    match sys::try_lock_exclusive(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(SinkError::InUse {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(SinkError::from_io("lock", path, 0, e)),
    }
}

fn file_len(file: &File, path: &Path) -> Result<u64, SinkError> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| SinkError::from_io("read", path, 0, e))
}

/// Unmaps `mapping` on a thread of its own: tearing down the page tables of a 1 GiB mapping
/// takes tens of milliseconds, which would otherwise delay the process's exit (and whatever
/// the caller does next) for nothing. The file is complete and renamed already; the mapping
/// is not used again. If no thread can be made, the failed spawn drops the closure, and the
/// mapping with it, on the spot.
fn unmap_in_background(mapping: Mapping) {
    // The handle is dropped: nobody waits for the thread; process exit would finish its
    // work anyway.
    let _ = std::thread::Builder::new()
        .name("xdpget-unmap".into())
        .spawn(move || drop(mapping));
}

fn remove_if_present(path: &Path) -> Result<(), SinkError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SinkError::from_io("remove", path, 0, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::FsyncPolicy;
    use crate::sink::control::read_record;
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    use std::time::Duration;

    fn body(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn identity(length: Option<u64>) -> Identity {
        Identity {
            url: "http://server.test/file.bin".to_string(),
            length,
            etag: Some("\"v1\"".to_string()),
            last_modified: None,
        }
    }

    fn small_options() -> SinkOptions {
        SinkOptions {
            prefault: Prefault::PopulateWrite { window: 64 * 1024 },
            initial_capacity: 64 * 1024,
            checkpoint_bytes: 1 << 40,
            ..SinkOptions::default()
        }
    }

    /// [`small_options`] under `--fsync-policy on`.
    fn synced_options() -> SinkOptions {
        SinkOptions {
            fsync: FsyncPolicy::On,
            ..small_options()
        }
    }

    /// A fresh download of `len` bytes of [`body`] into `dir/file.bin`: its name, its bytes
    /// and the open sink.
    fn open_fresh(dir: &Path, len: usize, options: &SinkOptions) -> (PathBuf, Vec<u8>, FileSink) {
        let name = dir.join("file.bin");
        let sink = FileSink::open(
            &name,
            &identity(Some(len as u64)),
            &ResumeInfo::Fresh,
            options,
        )
        .expect("open");
        (name, body(len), sink)
    }

    /// Waits (bounded) until the sink reports `want` bytes recorded, for checkpoints that a
    /// flusher thread makes; returns what it reports then.
    fn wait_durable(sink: &FileSink, want: u64) -> u64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.durable_len() < want && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        sink.durable_len()
    }

    /// The staged path's receive window: a whole pool of staging buffers at the start; as
    /// the body arrives in order its right edge (prefix + capacity) never moves left and
    /// never runs further than the buffers reach from the prefix's piece; once the writer has
    /// given the buffers back it reaches a whole pool past that piece again.
    #[test]
    fn the_staged_window_follows_the_free_buffers_and_never_shrinks() {
        use crate::sink::stage::{CHUNK, POOL};
        let dir = tempfile::tempdir().expect("temp dir");
        let len = 40 * CHUNK as usize + 5000;
        let (_, data, mut sink) = open_fresh(dir.path(), len, &SinkOptions::default());
        let pool = POOL as u64 * CHUNK;
        assert_eq!(sink.reorder_capacity(), Some(pool));
        let mut edge = pool;
        let mut now = Instant::ZERO;
        let halfway = 20 * CHUNK as usize;
        for (start, end) in (0..len).step_by(1448).map(|s| (s, (s + 1448).min(len))) {
            sink.write_at(start as u64, &data[start..end])
                .expect("write");
            now += Duration::from_micros(3);
            sink.poll_checkpoint(now).expect("poll");
            let prefix = sink.contiguous_len();
            let next = prefix + sink.reorder_capacity().expect("staged");
            assert!(
                next >= edge,
                "the edge moved left at {prefix}: {edge} -> {next}"
            );
            let reach = prefix - prefix % CHUNK + pool;
            assert!(
                next <= reach,
                "the edge {next} runs past the buffers' {reach}"
            );
            edge = next;
            if end == halfway {
                // Everything handed over is written soon: the window opens to a whole pool.
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while edge < prefix + pool && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                    sink.poll_checkpoint(now).expect("poll");
                    edge = prefix + sink.reorder_capacity().expect("staged");
                }
                assert_eq!(edge, prefix + pool);
                assert_eq!(sink.poll_again_at(), None, "a writer that caught up");
            }
        }
        sink.finish().expect("finish");
    }

    /// Writes `data[range]` for each range in `chunks`.
    fn write_chunks(sink: &mut FileSink, data: &[u8], chunks: &[(usize, usize)]) {
        for &(start, end) in chunks {
            sink.write_at(start as u64, &data[start..end])
                .expect("write");
        }
    }

    /// `len` split in `chunk`-sized pieces, shuffled with a fixed seed.
    fn shuffled_chunks(len: usize, chunk: usize, seed: u64) -> Vec<(usize, usize)> {
        let mut chunks: Vec<_> = (0..len)
            .step_by(chunk)
            .map(|s| (s, (s + chunk).min(len)))
            .collect();
        chunks.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        chunks
    }

    #[test]
    fn out_of_order_writes_produce_the_right_file_and_success_renames() {
        let variants = [
            small_options(),
            // The preparer thread only a little ahead of the writer, and no preparer at all.
            SinkOptions {
                background: Some(Background {
                    window: 16 * 1024,
                    core: None,
                }),
                ..small_options()
            },
            SinkOptions {
                background: None,
                ..small_options()
            },
            SinkOptions {
                prefault: Prefault::Off,
                ..small_options()
            },
            SinkOptions {
                prefault: Prefault::WillNeed { window: 8192 },
                ..small_options()
            },
            SinkOptions {
                use_pwrite: true,
                ..small_options()
            },
            SinkOptions {
                huge_pages: false,
                ..small_options()
            },
        ];
        let both_policies = variants.iter().flat_map(|&options| {
            [FsyncPolicy::Off, FsyncPolicy::On].map(|fsync| SinkOptions { fsync, ..options })
        });
        for options in both_policies {
            let dir = tempfile::tempdir().expect("temp dir");
            let name = dir.path().join("file.bin");
            let data = body(300_001);
            let mut sink = FileSink::open(
                &name,
                &identity(Some(300_001)),
                &ResumeInfo::Fresh,
                &options,
            )
            .expect("open");
            // Preallocated at once: the .part has its full size before any byte arrives.
            assert_eq!(
                std::fs::metadata(part_path(&name)).expect("part").len(),
                300_001
            );
            write_chunks(&mut sink, &data, &shuffled_chunks(data.len(), 1448, 7));
            // Overlapping retransmissions rewrite the same bytes.
            write_chunks(&mut sink, &data, &[(1000, 5000), (299_000, 300_001)]);
            assert_eq!(sink.contiguous_len(), 300_001);
            assert_eq!(sink.finish().expect("finish"), 300_001);
            assert_eq!(std::fs::read(&name).expect("final"), data, "{options:?}");
            assert!(!part_path(&name).exists());
            assert!(!control_path(&name).exists());
            assert_eq!(
                ResumeInfo::lookup(&name).expect("lookup"),
                ResumeInfo::Plain { offset: 300_001 }
            );
        }
    }

    /// A prefix alone is kept as it always was: the file is cut to it.
    #[test]
    fn failure_with_only_a_prefix_truncates_to_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (name, data, mut sink) = open_fresh(dir.path(), 100_000, &small_options());
        write_chunks(&mut sink, &data, &[(0, 30_000), (30_000, 40_000)]);
        assert_eq!(sink.abandon().expect("abandon"), 40_000);
        assert!(!name.exists());
        assert_eq!(
            std::fs::read(part_path(&name)).expect("part"),
            &data[..40_000]
        );
        assert_eq!(ResumeInfo::lookup(&name).expect("lookup").offset(), 40_000);
    }

    /// Ranges past a hole (another connection's, or TCP's out-of-order bytes) are kept: the
    /// file keeps its length, the record lists the ranges, and a resume fetches only holes.
    #[test]
    fn failure_keeps_every_finished_range_and_resume_completes_the_holes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("file.bin");
        let data = body(100_000);
        let mut sink = FileSink::open(
            &name,
            &identity(Some(100_000)),
            &ResumeInfo::Fresh,
            &small_options(),
        )
        .expect("open");
        write_chunks(
            &mut sink,
            &data,
            &[(0, 30_000), (50_000, 60_000), (30_000, 40_000)],
        );
        assert_eq!(sink.abandon().expect("abandon"), 50_000);
        // No file under the final name; the .part keeps its length and both ranges.
        assert!(!name.exists());
        let part = std::fs::read(part_path(&name)).expect("part");
        assert_eq!(part.len(), 100_000);
        assert_eq!(&part[..40_000], &data[..40_000]);
        assert_eq!(&part[50_000..60_000], &data[50_000..60_000]);
        let info = ResumeInfo::lookup(&name).expect("lookup");
        assert_eq!(
            info,
            ResumeInfo::Partial {
                offset: 40_000,
                identity: identity(Some(100_000)),
                finished: [(0, 40_000), (50_000, 60_000)].into_iter().collect(),
            }
        );

        let mut resumed = FileSink::open(&name, &identity(Some(100_000)), &info, &small_options())
            .expect("resume");
        assert_eq!(resumed.contiguous_len(), 40_000);
        assert_eq!(resumed.arrived(), &info.finished());
        let holes: Vec<(usize, usize)> = info
            .finished()
            .gaps(0, 100_000)
            .flat_map(|(start, end)| {
                shuffled_chunks((end - start) as usize, 1000, start)
                    .into_iter()
                    .map(move |(s, e)| (s + start as usize, e + start as usize))
            })
            .collect();
        write_chunks(&mut resumed, &data, &holes);
        assert_eq!(resumed.finish().expect("finish"), 100_000);
        assert_eq!(std::fs::read(&name).expect("final"), data);
        assert!(!control_path(&name).exists());
    }

    #[test]
    fn drop_abandons_and_an_empty_download_leaves_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("file.bin");
        let data = body(10_000);
        let mut sink = FileSink::open(
            &name,
            &identity(Some(10_000)),
            &ResumeInfo::Fresh,
            &small_options(),
        )
        .expect("open");
        write_chunks(&mut sink, &data, &[(0, 1234), (5000, 6000)]);
        drop(sink);
        let part = std::fs::read(part_path(&name)).expect("part");
        assert_eq!(
            (&part[..1234], &part[5000..6000]),
            (&data[..1234], &data[5000..6000])
        );
        let info = ResumeInfo::lookup(&name).expect("lookup");
        assert_eq!(info.offset(), 1234);
        assert_eq!(info.finished().as_slice(), [(0, 1234), (5000, 6000)]);

        let other = dir.path().join("empty.bin");
        let sink = FileSink::open(
            &other,
            &identity(Some(10_000)),
            &ResumeInfo::Fresh,
            &small_options(),
        )
        .expect("open");
        assert_eq!(sink.abandon().expect("abandon"), 0);
        assert!(!part_path(&other).exists() && !control_path(&other).exists() && !other.exists());
    }

    #[test]
    fn a_crash_leaves_a_part_that_resume_trusts_only_up_to_the_flushed_prefix() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("file.bin");
        let data = body(200_000);
        // Checkpoints on the writer's thread, step by step (the flusher's are below).
        let options = SinkOptions {
            checkpoint_bytes: 1 << 40,
            checkpoint_interval: Duration::from_millis(250),
            background: None,
            ..synced_options()
        };
        let mut sink = FileSink::open(
            &name,
            &identity(Some(200_000)),
            &ResumeInfo::Fresh,
            &options,
        )
        .expect("open");
        let t0 = Instant::from_millis(1000);
        write_chunks(&mut sink, &data, &[(0, 50_000)]);
        sink.poll_checkpoint(t0)
            .expect("first poll only starts the clock");
        sink.poll_checkpoint(t0 + Duration::from_millis(300))
            .expect("kicks writeback of 0..50000");
        assert_eq!(sink.durable_len(), 0, "writeback started, not yet recorded");
        write_chunks(&mut sink, &data, &[(50_000, 80_000), (120_000, 150_000)]);
        sink.poll_checkpoint(t0 + Duration::from_millis(400))
            .expect("not due yet");
        assert_eq!(sink.durable_len(), 0);
        sink.poll_checkpoint(t0 + Duration::from_millis(600))
            .expect("records 0..50000");
        assert_eq!(sink.durable_len(), 50_000);
        write_chunks(&mut sink, &data, &[(80_000, 100_000)]);
        assert_eq!(sink.contiguous_len(), 100_000);

        // kill -9: no Drop, no truncation, no final record.
        std::mem::forget(sink);

        // The .part is still preallocated to the full length and holds out-of-order bytes,
        // yet neither the user (no file.bin) nor -c (record says 50000) takes it as more.
        assert!(!name.exists());
        assert_eq!(
            std::fs::metadata(part_path(&name)).expect("part").len(),
            200_000
        );
        let info = ResumeInfo::lookup(&name).expect("lookup");
        assert_eq!(info.offset(), 50_000);
        let part = std::fs::read(part_path(&name)).expect("part");
        assert_eq!(&part[..50_000], &data[..50_000]);
    }

    #[test]
    fn checkpoints_by_bytes_record_only_what_was_flushed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("file.bin");
        let data = body(100_000);
        let options = SinkOptions {
            checkpoint_bytes: 10_000,
            checkpoint_interval: Duration::from_secs(3600),
            background: None,
            ..synced_options()
        };
        let mut sink = FileSink::open(
            &name,
            &identity(Some(100_000)),
            &ResumeInfo::Fresh,
            &options,
        )
        .expect("open");
        let now = Instant::ZERO;
        write_chunks(&mut sink, &data, &[(0, 5_000)]);
        sink.poll_checkpoint(now).expect("not due: 5000 bytes");
        write_chunks(&mut sink, &data, &[(5_000, 20_000), (30_000, 90_000)]);
        sink.poll_checkpoint(now)
            .expect("due: starts writeback of 0..20000");
        assert_eq!(sink.durable_len(), 0);
        assert_eq!(ResumeInfo::lookup(&name).expect("lookup").offset(), 0);
        write_chunks(&mut sink, &data, &[(20_000, 30_000)]);
        sink.poll_checkpoint(now)
            .expect("due: records 0..20000, starts 20000..90000");
        assert_eq!(sink.durable_len(), 20_000);
        assert_eq!(ResumeInfo::lookup(&name).expect("lookup").offset(), 20_000);
        sink.poll_checkpoint(now).expect("not due: nothing new");
        assert_eq!(sink.durable_len(), 20_000);
        assert_eq!(sink.abandon().expect("abandon"), 90_000);
        assert_eq!(ResumeInfo::lookup(&name).expect("lookup").offset(), 90_000);
    }

    /// With the flusher, a due checkpoint is only asked for; the flusher records it soon
    /// after, never beyond what was asked, and finish takes the record back.
    #[test]
    fn the_flusher_records_checkpoints_behind_the_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = SinkOptions {
            checkpoint_bytes: 10_000,
            checkpoint_interval: Duration::from_secs(3600),
            ..synced_options()
        };
        let (name, data, mut sink) = open_fresh(dir.path(), 100_000, &options);
        let now = Instant::ZERO;
        write_chunks(&mut sink, &data, &[(0, 20_000), (30_000, 90_000)]);
        sink.poll_checkpoint(now).expect("due: asks for 0..20000");
        assert_eq!(wait_durable(&sink, 20_000), 20_000);
        assert_eq!(ResumeInfo::lookup(&name).expect("lookup").offset(), 20_000);
        write_chunks(&mut sink, &data, &[(20_000, 30_000), (90_000, 100_000)]);
        assert_eq!(sink.finish().expect("finish"), 100_000);
        assert_eq!(std::fs::read(&name).expect("final"), data);
        assert!(!control_path(&name).exists());
    }

    /// The default policy makes no msync, fsync or fdatasync call, from open through
    /// checkpoints to finish or abandon, and records all that is contiguous when a checkpoint
    /// is due (with a flusher: moments later), not what the previous one started to write
    /// back: the bytes are in the page cache, which outlives the process. `On` syncs.
    #[test]
    fn without_fsync_no_sync_call_is_made_and_checkpoints_record_at_once() {
        for background in [None, SinkOptions::default().background] {
            let options = SinkOptions {
                checkpoint_bytes: 10_000,
                checkpoint_interval: Duration::from_secs(3600),
                background,
                ..small_options()
            };
            let dir = tempfile::tempdir().expect("temp dir");
            let (name, data, mut sink) = open_fresh(dir.path(), 100_000, &options);
            let calls = sink.sync_calls();
            write_chunks(&mut sink, &data, &[(0, 20_000), (30_000, 90_000)]);
            sink.poll_checkpoint(Instant::ZERO).expect("due");
            assert_eq!(wait_durable(&sink, 20_000), 20_000, "{background:?}");
            assert_eq!(ResumeInfo::lookup(&name).expect("lookup").offset(), 20_000);
            write_chunks(&mut sink, &data, &[(20_000, 30_000), (90_000, 100_000)]);
            sink.poll_checkpoint(Instant::ZERO).expect("due");
            assert_eq!(wait_durable(&sink, 100_000), 100_000, "{background:?}");
            assert_eq!(sink.finish().expect("finish"), 100_000);
            assert_eq!(std::fs::read(&name).expect("final"), data);
            assert_eq!(calls.get(), 0, "{background:?}");

            let dir = tempfile::tempdir().expect("temp dir");
            let (name, data, mut sink) = open_fresh(dir.path(), 100_000, &options);
            let calls = sink.sync_calls();
            write_chunks(&mut sink, &data, &[(0, 40_000), (50_000, 60_000)]);
            assert_eq!(sink.abandon().expect("abandon"), 50_000);
            assert_eq!(ResumeInfo::lookup(&name).expect("lookup").offset(), 40_000);
            assert_eq!(calls.get(), 0, "{background:?}");

            let dir = tempfile::tempdir().expect("temp dir");
            let synced = SinkOptions {
                fsync: FsyncPolicy::On,
                ..options
            };
            let (_, data, mut sink) = open_fresh(dir.path(), 100_000, &synced);
            let calls = sink.sync_calls();
            // Two record slots and the allocation at open.
            assert_eq!(calls.get(), 3, "{background:?}");
            write_chunks(&mut sink, &data, &[(0, 100_000)]);
            sink.finish().expect("finish");
            // At least the data, the file and the directory before and after the rename.
            assert!(calls.get() >= 6, "{background:?}: {} calls", calls.get());
        }
    }

    /// Set in the child process that the `kill -9` test below kills.
    const KILLED_CHILD: &str = "XDPGET_SINK_TEST_KILLED_CHILD";
    /// What the child prints once its checkpoint is recorded.
    const CHECKPOINTED: &str = "xdpget-sink-test: checkpointed";

    /// `kill -9` for real, under the default policy (no msync, no fdatasync): a child process
    /// stores bytes in the mapping, records a checkpoint and is killed. The page cache
    /// outlives it, so `-c` afterwards trusts exactly the recorded prefix and finds those
    /// bytes in the `.part`.
    #[test]
    fn after_kill_9_without_fsync_the_record_claims_only_bytes_that_are_there() {
        use std::io::BufRead;
        use std::os::unix::process::ExitStatusExt;
        if let Some(dir) = std::env::var_os(KILLED_CHILD) {
            return checkpoint_and_wait_to_be_killed(Path::new(&dir));
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "sink::file::tests::after_kill_9_without_fsync_the_record_claims_only_bytes_that_are_there",
                "--nocapture",
            ])
            .env(KILLED_CHILD, dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run the test binary again");
        let stdout = child.stdout.take().expect("piped");
        let checkpointed = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains(CHECKPOINTED));
        child.kill().expect("kill -9");
        let status = child.wait().expect("wait");
        assert!(checkpointed, "the child never checkpointed: {status:?}");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let name = dir.path().join("file.bin");
        assert!(!name.exists());
        let info = ResumeInfo::lookup(&name).expect("lookup");
        assert_eq!(info.offset(), 3_000_000);
        // The piece past the hole was complete and written before the record asked for;
        // the open piece at 4.5 MB was still in a staging buffer and is not claimed.
        assert_eq!(
            info.finished().as_slice(),
            [(0, 3_000_000), (3_145_728, 4_194_304)]
        );
        let part = std::fs::read(part_path(&name)).expect("part");
        assert_eq!(part.len(), 5_000_000, "still preallocated");
        let data = body(5_000_000);
        for (start, end) in info.finished().iter() {
            let (start, end) = (start as usize, end as usize);
            assert!(part[start..end] == data[start..end], "{start}..{end}");
        }
    }

    /// The child's half: the CLI's options with a checkpoint every 1 MB.
    fn checkpoint_and_wait_to_be_killed(dir: &Path) {
        let options = SinkOptions {
            checkpoint_bytes: 1_000_000,
            checkpoint_interval: Duration::from_secs(3600),
            ..SinkOptions::default()
        };
        let (_, data, mut sink) = open_fresh(dir, 5_000_000, &options);
        // A prefix, the whole fourth 1 MiB piece past a hole, part of the fifth.
        write_chunks(
            &mut sink,
            &data,
            &[
                (0, 3_000_000),
                (3_145_728, 4_194_304),
                (4_500_000, 5_000_000),
            ],
        );
        sink.poll_checkpoint(Instant::ZERO).expect("due");
        assert_eq!(wait_durable(&sink, 3_000_000), 3_000_000);
        assert_eq!(sink.sync_calls().get(), 0);
        println!("{CHECKPOINTED}");
        // The parent kills us long before this ends; if it does not, fail.
        std::thread::sleep(Duration::from_secs(60));
        panic!("not killed within a minute");
    }

    /// After a failed write-back nothing more is synced or recorded: Linux reports such an
    /// error once per file, so a second msync could succeed without the pages on disk.
    #[test]
    fn after_a_failed_write_back_the_record_stays_where_it_was() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = SinkOptions {
            background: None,
            ..synced_options()
        };
        let (name, data, mut sink) = open_fresh(dir.path(), 100_000, &options);
        write_chunks(&mut sink, &data, &[(0, 50_000)]);
        // As if a checkpoint's msync had failed.
        sink.sync_failed = true;
        assert!(matches!(
            sink.abandon(),
            Err(SinkError::Io { action: "sync", .. })
        ));
        assert_eq!(ResumeInfo::lookup(&name).expect("lookup").offset(), 0);
    }

    /// A resumed `.part` with holes keeps its length and its ranges: the writer's records
    /// list them with what it writes into a hole, also after `kill -9` (no Drop), under
    /// either fsync policy.
    #[test]
    fn a_resumed_file_keeps_its_ranges_in_every_record() {
        for options in [small_options(), synced_options()] {
            let options = SinkOptions {
                checkpoint_bytes: 10_000,
                ..options
            };
            let dir = tempfile::tempdir().expect("temp dir");
            let (name, data, mut sink) = open_fresh(dir.path(), 3_000_000, &options);
            write_chunks(&mut sink, &data, &[(0, 100_000), (2_097_152, 3_000_000)]);
            assert_eq!(sink.abandon().expect("abandon"), 1_002_848);
            let info = ResumeInfo::lookup(&name).expect("lookup");
            let mut resumed =
                FileSink::open(&name, &identity(Some(3_000_000)), &info, &options).expect("resume");
            assert_eq!(resumed.arrived(), &info.finished());
            let part_len = || std::fs::metadata(part_path(&name)).expect("part").len();
            assert_eq!(part_len(), 3_000_000);
            // A whole 1 MiB piece inside the hole, then a checkpoint.
            write_chunks(&mut resumed, &data, &[(1_048_576, 2_097_152)]);
            resumed.poll_checkpoint(Instant::ZERO).expect("due");
            let want: RangeSet = [(0, 100_000), (1_048_576, 3_000_000)].into_iter().collect();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let recorded = || ResumeInfo::lookup(&name).expect("lookup").finished();
            while recorded() != want && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            // kill -9: no Drop, no final record.
            std::mem::forget(resumed);
            assert_eq!(recorded(), want, "{options:?}");
            assert_eq!(part_len(), 3_000_000);
            let part = std::fs::read(part_path(&name)).expect("part");
            for (start, end) in want.iter() {
                let (start, end) = (start as usize, end as usize);
                assert!(part[start..end] == data[start..end], "{start}..{end}");
            }
        }
    }

    /// Abandoning with a flusher running keeps every finished range, synced and recorded.
    #[test]
    fn abandon_takes_the_record_back_from_the_flusher() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (name, data, mut sink) = open_fresh(dir.path(), 100_000, &synced_options());
        let calls = sink.sync_calls();
        write_chunks(&mut sink, &data, &[(0, 60_000), (70_000, 80_000)]);
        sink.poll_checkpoint(Instant::ZERO).expect("poll");
        let before = calls.get();
        assert_eq!(sink.abandon().expect("abandon"), 70_000);
        // Whatever the flusher had not synced yet was synced before the record said so.
        assert!(calls.get() > before);
        let info = ResumeInfo::lookup(&name).expect("lookup");
        assert_eq!(info.offset(), 60_000);
        assert_eq!(info.finished().as_slice(), [(0, 60_000), (70_000, 80_000)]);
        let part = std::fs::read(part_path(&name)).expect("part");
        assert_eq!(&part[..60_000], &data[..60_000]);
        assert_eq!(&part[70_000..80_000], &data[70_000..80_000]);
    }

    #[test]
    fn a_fresh_download_over_a_stale_record_is_never_trusted_beyond_what_it_wrote() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("file.bin");
        let data = body(20_000);
        let mut old = FileSink::open(
            &name,
            &identity(Some(20_000)),
            &ResumeInfo::Fresh,
            &small_options(),
        )
        .expect("open");
        write_chunks(&mut old, &data, &[(0, 15_000)]);
        assert_eq!(old.abandon().expect("abandon"), 15_000);
        // A new run without -c starts over on the same name (e.g. -O file.bin)...
        let mut new = FileSink::open(
            &name,
            &identity(Some(20_000)),
            &ResumeInfo::Fresh,
            &small_options(),
        )
        .expect("open");
        write_chunks(&mut new, &data, &[(10_000, 20_000)]);
        // ...and is killed: the old record's 15000 must not vouch for the new file.
        std::mem::forget(new);
        assert_eq!(ResumeInfo::lookup(&name).expect("lookup").offset(), 0);
        let record = read_record(&control_path(&name))
            .expect("read")
            .expect("record");
        assert_eq!(record.prefix(), 0);
    }

    #[test]
    fn resume_from_a_plain_file_goes_through_part() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("file.bin");
        let data = body(70_000);
        std::fs::write(&name, &data[..25_000]).expect("wget's partial file");
        let info = ResumeInfo::lookup(&name).expect("lookup");
        assert_eq!(info, ResumeInfo::Plain { offset: 25_000 });
        let mut sink = FileSink::open(&name, &identity(Some(70_000)), &info, &small_options())
            .expect("resume");
        // While it downloads, the incomplete file is NAME.part, not NAME.
        assert!(!name.exists());
        assert_eq!(ResumeInfo::lookup(&name).expect("lookup").offset(), 25_000);
        write_chunks(
            &mut sink,
            &data,
            &shuffled_chunks(45_000, 4000, 9)
                .iter()
                .map(|&(s, e)| (s + 25_000, e + 25_000))
                .collect::<Vec<_>>(),
        );
        sink.finish().expect("finish");
        assert_eq!(std::fs::read(&name).expect("final"), data);
    }

    #[test]
    fn local_file_larger_than_the_resource_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("file.bin");
        std::fs::write(&name, body(500)).expect("write");
        let error = FileSink::open(
            &name,
            &identity(Some(400)),
            &ResumeInfo::Plain { offset: 500 },
            &small_options(),
        )
        .expect_err("larger");
        assert!(matches!(
            error,
            SinkError::LocalLarger {
                have: 500,
                length: 400,
                ..
            }
        ));
        assert_eq!(std::fs::read(&name).expect("untouched"), body(500));
    }

    #[test]
    fn unknown_length_grows_and_is_trimmed_on_finish() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("stream.bin");
        let data = body(1_000_003);
        let mut sink = FileSink::open(&name, &identity(None), &ResumeInfo::Fresh, &small_options())
            .expect("open");
        assert_eq!(
            std::fs::metadata(part_path(&name)).expect("part").len(),
            64 * 1024
        );
        // In order with a little reordering, as TCP delivers.
        let mut chunks: Vec<_> = (0..data.len())
            .step_by(1448)
            .map(|s| (s, (s + 1448).min(data.len())))
            .collect();
        for pair in chunks.chunks_mut(2) {
            pair.reverse();
        }
        write_chunks(&mut sink, &data, &chunks);
        assert!(std::fs::metadata(part_path(&name)).expect("part").len() >= 1_000_003);
        assert_eq!(sink.finish().expect("finish"), 1_000_003);
        assert_eq!(std::fs::read(&name).expect("final"), data);
    }

    #[test]
    fn unknown_length_with_a_hole_is_incomplete() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("stream.bin");
        let data = body(3000);
        let mut sink = FileSink::open(&name, &identity(None), &ResumeInfo::Fresh, &small_options())
            .expect("open");
        write_chunks(&mut sink, &data, &[(0, 1000), (2000, 3000)]);
        let error = sink.finish().expect_err("hole");
        assert!(matches!(
            error,
            SinkError::Incomplete {
                have: 1000,
                expected: 3000,
                ..
            }
        ));
        // Failing to finish abandons: both ranges stay resumable, no complete-looking file.
        assert!(!name.exists());
        let part = std::fs::read(part_path(&name)).expect("part");
        assert_eq!(&part[..1000], &data[..1000]);
        assert_eq!(&part[2000..3000], &data[2000..3000]);
        let info = ResumeInfo::lookup(&name).expect("lookup");
        assert_eq!(info.finished().as_slice(), [(0, 1000), (2000, 3000)]);
    }

    #[test]
    fn writes_past_the_length_and_a_second_writer_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("file.bin");
        let mut sink = FileSink::open(
            &name,
            &identity(Some(100)),
            &ResumeInfo::Fresh,
            &small_options(),
        )
        .expect("open");
        let error = sink.write_at(90, &[0; 20]).expect_err("past the end");
        assert_eq!(
            error.to_string(),
            format!(
                "{} got bytes 90..110 but the body is only 100 bytes long",
                name.display()
            )
        );
        let second = FileSink::open(
            &name,
            &identity(Some(100)),
            &ResumeInfo::Fresh,
            &small_options(),
        )
        .expect_err("locked");
        assert!(matches!(second, SinkError::InUse { .. }), "{second}");
    }

    #[test]
    fn empty_body_finishes_to_an_empty_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("empty");
        let sink = FileSink::open(
            &name,
            &identity(Some(0)),
            &ResumeInfo::Fresh,
            &small_options(),
        )
        .expect("open");
        assert_eq!(sink.finish().expect("finish"), 0);
        assert_eq!(std::fs::metadata(&name).expect("final").len(), 0);
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let name = Path::new("/nonexistent-xdpget-dir/file.bin");
        let error = FileSink::open(
            name,
            &identity(Some(10)),
            &ResumeInfo::Fresh,
            &small_options(),
        )
        .expect_err("no dir");
        assert_eq!(
            error.to_string(),
            "cannot write /nonexistent-xdpget-dir/file.bin.part: its directory does not exist"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Any order of overlapping pieces, with the transfer stopped after any of them,
        /// leaves exactly the ranges that arrived, recorded, and the file cut to them when
        /// they are one prefix (or the whole file, once everything arrived and `finish` is
        /// called).
        #[test]
        fn any_delivery_order_gives_the_prefix_or_the_file(
            pieces in proptest::collection::vec((0usize..20_000, 1usize..3_000), 1..40),
            stop_after in 0usize..45,
            seed in 0u64..1000,
        ) {
            let dir = tempfile::tempdir().expect("temp dir");
            let name = dir.path().join("p.bin");
            let len = 20_000;
            let data = body(len);
            let mut order: Vec<(usize, usize)> = pieces
                .iter()
                .map(|&(start, size)| (start, (start + size).min(len)))
                .collect();
            // Every byte is covered by some piece too, after the random ones, shuffled in.
            order.extend(shuffled_chunks(len, 2_500, seed));
            order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            let mut sink = FileSink::open(&name, &identity(Some(len as u64)), &ResumeInfo::Fresh, &small_options())
                .expect("open");
            let mut model = RangeSet::new();
            let stopped = stop_after < order.len();
            for &(start, end) in order.iter().take(stop_after) {
                sink.write_at(start as u64, &data[start..end]).expect("write");
                model.insert(start as u64, end as u64);
            }
            proptest::prop_assert_eq!(sink.contiguous_len(), model.contiguous_len());
            if stopped {
                let kept = sink.abandon().expect("abandon");
                proptest::prop_assert_eq!(kept, model.covered());
                if kept > 0 {
                    let part = std::fs::read(part_path(&name)).expect("part");
                    for (start, end) in model.iter() {
                        let (start, end) = (start as usize, end as usize);
                        proptest::prop_assert_eq!(&part[start..end], &data[start..end]);
                    }
                    if model.range_count() == 1 && model.contiguous_len() > 0 {
                        proptest::prop_assert_eq!(part.len() as u64, model.end());
                    }
                    let info = ResumeInfo::lookup(&name).expect("lookup");
                    proptest::prop_assert_eq!(&info.finished(), &model);
                } else {
                    proptest::prop_assert!(!part_path(&name).exists());
                }
                proptest::prop_assert!(!name.exists());
            } else {
                proptest::prop_assert_eq!(sink.finish().expect("finish"), len as u64);
                proptest::prop_assert_eq!(std::fs::read(&name).expect("final"), data);
            }
        }
    }

    /// Set in the child process that runs inside its own mount namespace.
    const TINY_TMPFS: &str = "XDPGET_SINK_TEST_TINY_TMPFS";

    /// A full disk is reported as an error, never a SIGBUS: before the transfer for a known
    /// length, at a growth step for an unknown one. Runs itself again inside `unshare -m`
    /// with a 1 MiB tmpfs mounted on a temp dir (needs root; skips with a reason otherwise).
    #[test]
    fn disk_full_is_an_error_not_a_crash() {
        if let Some(dir) = std::env::var_os(TINY_TMPFS) {
            return disk_full_checks(Path::new(&dir));
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let exe = std::env::current_exe().expect("test binary");
        let output = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o size=1m xdpget-sink-test \"$0\" || exit 77; \
                  exec \"$1\" --exact sink::file::tests::disk_full_is_an_error_not_a_crash --nocapture")
            .arg(dir.path())
            .arg(exe)
            .env(TINY_TMPFS, dir.path())
            .output();
        let output = match output {
            Ok(output) => output,
            Err(error) => {
                eprintln!(
                    "skipped: cannot run unshare ({error}); the error mapping is covered by sink::tests"
                );
                return;
            }
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() == Some(77) || stderr.contains("unshare failed") {
            eprintln!(
                "skipped: no private mount namespace with a tmpfs here (needs root): {stderr}"
            );
            return;
        }
        assert!(
            output.status.success(),
            "child failed: {}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
    }

    fn disk_full_checks(dir: &Path) {
        // Known length larger than the file system: refused at open, nothing left behind.
        let name = dir.join("big.iso");
        let error = FileSink::open(
            &name,
            &identity(Some(4 << 20)),
            &ResumeInfo::Fresh,
            &small_options(),
        )
        .expect_err("does not fit");
        assert_eq!(
            error.to_string(),
            format!("not enough space on {} for 4194304 bytes", dir.display())
        );
        assert!(!part_path(&name).exists() && !control_path(&name).exists());

        // A length that fits works.
        let small = dir.join("small.bin");
        let data = body(300_000);
        let mut sink = FileSink::open(
            &small,
            &identity(Some(300_000)),
            &ResumeInfo::Fresh,
            &small_options(),
        )
        .expect("fits");
        write_chunks(&mut sink, &data, &[(0, 300_000)]);
        sink.finish().expect("finish");

        // Unknown length with the CLI's options: the 64 MiB head start does not fit, yet a
        // body that does is saved.
        let small_stream = dir.join("small-stream.bin");
        let mut sink = FileSink::open(
            &small_stream,
            &identity(None),
            &ResumeInfo::Fresh,
            &SinkOptions::default(),
        )
        .expect("the head start shrinks to what fits");
        write_chunks(&mut sink, &data, &[(0, 300_000)]);
        assert_eq!(sink.finish().expect("finish"), 300_000);
        std::fs::remove_file(&small).expect("make room");
        std::fs::remove_file(&small_stream).expect("make room");

        // Unknown length that outgrows the disk: an error at a growth step, the prefix kept,
        // and only a little of the disk left unused (growth halves down to single pages).
        for options in [small_options(), SinkOptions::default()] {
            let stream = dir.join("stream.bin");
            let mut sink = FileSink::open(&stream, &identity(None), &ResumeInfo::Fresh, &options)
                .expect("open");
            let chunk = body(1448);
            let mut offset = 0u64;
            let error = loop {
                match sink.write_at(offset, &chunk) {
                    Ok(()) => offset += chunk.len() as u64,
                    Err(error) => break error,
                }
                assert!(offset < 4 << 20, "a 1 MiB file system took 4 MiB");
            };
            assert!(matches!(error, SinkError::NoSpace { .. }), "{error}");
            assert!(offset > 900_000, "{offset} bytes of 1 MiB, {options:?}");
            assert_eq!(sink.abandon().expect("abandon"), offset);
            assert_eq!(
                ResumeInfo::lookup(&stream).expect("lookup").offset(),
                offset
            );
            std::fs::remove_file(part_path(&stream)).expect("make room");
            std::fs::remove_file(control_path(&stream)).expect("make room");
        }
    }
}
