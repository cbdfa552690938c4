//! `sink/` — where body bytes land: the output file, written at the right offset even out
//! of order (staged and written with `O_DIRECT` by default, or through a mapping), and the
//! streaming sinks (stdout, pipes, /dev/null).
//!
//! | file | job |
//! |---|---|
//! | [`ranges`] | the byte ranges that have arrived (the crate's one interval set) |
//! | [`file`](mod@file) | [`FileSink`]: `NAME.part` preallocated, renamed to `NAME` on success |
//! | `stage` | the default write path: staging buffers and the writer thread (`O_DIRECT`, `pwrite`) |
//! | [`control`] | the control record `NAME.part.xdpget`, [`ResumeInfo`] for `-c` |
//! | [`stream`] | [`StreamSink`] (stdout, pipes: in order, bounded reorder buffer), [`NullSink`] |
//! | [`naming`] | wget's choice of output name (`index.html`, `name.1`, `-P`) |
//! | `prepare` | the preparer thread that prefaults the mapping (`--prefault populate`) ahead of the write front |
//! | `flush` | the flusher thread that makes checkpoints durable off the busy-poll thread |
//! | `durability` | [`FsyncPolicy`] (`--fsync-policy`): the only msync, fsync and fdatasync calls |
//! | `sys` | the only `unsafe`: mmap, mremap, madvise, fallocate, sync_file_range, flock |
//!
//! CONTRACT with `engine`: offsets passed to [`Sink::write_at`] are absolute offsets in the
//! resource (a resumed download that asked for `Range: bytes=R-` writes its first body byte
//! at `R`). Bytes may come in any order, overlap and repeat. Once per loop iteration the
//! engine calls [`Sink::poll_checkpoint`] with the driver's clock (cheap unless a checkpoint
//! is due). A sink that ends any way other than [`Sink::finish`] keeps the ranges that
//! arrived for `-c` (see docs/sink.md). The TCP receive window must not let more bytes past the
//! contiguous prefix than [`Sink::reorder_capacity`] allows, and the engine polls again by
//! [`Sink::poll_again_at`] when it says so (the window may have reopened).
//!
//! No layer above is imported here; time comes in as a [`crate::time::Instant`] value.

pub mod control;
mod durability;
pub mod file;
mod flush;
pub mod naming;
mod prepare;
pub mod ranges;
mod stage;
pub mod stream;
mod sys;

use std::fs::File;
use std::io::{self, BufWriter};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::time::Instant;

pub use control::{Identity, ResumeInfo};
pub use durability::{FsyncPolicy, SyncCalls};
pub use file::FileSink;
pub use ranges::RangeSet;
pub use stream::{NullSink, StreamSink};

/// Errors of the sink; each is one sentence that names the path. The CLI maps all of them to
/// wget's exit status 3 (file I/O error).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("not enough space on {} for {needed} bytes", .dir.display())]
    NoSpace { dir: PathBuf, needed: u64 },
    #[error("cannot write {}: permission denied", .path.display())]
    PermissionDenied { path: PathBuf },
    #[error("cannot write {}: its directory does not exist", .path.display())]
    NoDirectory { path: PathBuf },
    #[error("cannot write {}: it is being written by another xdpget", .path.display())]
    InUse { path: PathBuf },
    #[error("cannot write {}: {bytes} bytes do not fit in this machine's address space", .path.display())]
    TooLarge { path: PathBuf, bytes: u64 },
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} got bytes {start}..{end} but the body is only {length} bytes long", .path.display())]
    BeyondEnd {
        path: PathBuf,
        start: u64,
        end: u64,
        length: u64,
    },
    #[error("{} is incomplete: {have} bytes arrived in order, {expected} were expected", .path.display())]
    Incomplete {
        path: PathBuf,
        have: u64,
        expected: u64,
    },
    #[error("{} has {limit} bytes waiting for a hole to fill; the reorder buffer is full", .path.display())]
    ReorderBufferFull { path: PathBuf, limit: usize },
    #[error("cannot resume {}: it is {have} bytes long but the resource has only {length}", .path.display())]
    LocalLarger {
        path: PathBuf,
        have: u64,
        length: u64,
    },
}

impl SinkError {
    /// Names an I/O error on `path` while doing `action` ("create", "write", "sync", ...),
    /// picking the specific variant a user can act on. `needed` is the number of bytes the
    /// operation tried to place, reported if the disk turns out to be full.
    pub fn from_io(action: &'static str, path: &Path, needed: u64, source: io::Error) -> SinkError {
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => SinkError::NoSpace {
                dir: directory_of(path).to_path_buf(),
                needed,
            },
            Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
                SinkError::PermissionDenied {
                    path: path.to_path_buf(),
                }
            }
            Some(libc::ENOENT) if action == "create" => SinkError::NoDirectory {
                path: path.to_path_buf(),
            },
            _ => SinkError::Io {
                action,
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

/// The directory a path lives in (`.` for a bare name).
pub(crate) fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// How the file sink prepares the mapping ahead of the write front, so that page faults do
/// not dominate the copy. The default is `PopulateWrite`, done by the preparer thread
/// ([`Background`]) 64 MiB ahead, and by the writer itself, a 1 MiB window at a time,
/// whenever it outruns the preparer (or has none). docs/benchmarks.md measures the modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefault {
    /// Nothing: every new page takes a fault on first write.
    Off,
    /// `MADV_WILLNEED` on a window ahead: pages are in the page cache, faults are minor.
    WillNeed { window: u64 },
    /// `MADV_POPULATE_WRITE` on a window ahead: page tables are filled writable, no faults.
    /// Falls back to `WillNeed` on kernels before 5.14.
    PopulateWrite { window: u64 },
}

/// The preparer thread of the file sink (`prepare.rs`): it populates the mapping `window`
/// bytes ahead of the write front, pinned to `core` if given (the CLI picks a core other
/// than the busy-poll thread's). Measured in docs/benchmarks.md: with it, a 1 GiB download
/// to a file no longer zeroes its pages on the engine thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Background {
    pub window: u64,
    pub core: Option<usize>,
}

/// Tuning of the sinks. `Default` is what the CLI uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkOptions {
    /// Page-fault preparation of the mapping.
    pub prefault: Prefault,
    /// With [`Prefault::PopulateWrite`]: prepare on a thread of its own, this far ahead of
    /// the write front. `None` prepares inline, on the writer's thread.
    pub background: Option<Background>,
    /// Write with `pwrite` instead of a mapping (also the fallback on file systems without
    /// `fallocate`).
    pub use_pwrite: bool,
    /// A checkpoint is due when this many more bytes arrived...
    pub checkpoint_bytes: u64,
    /// ...or this much time passed and it grew at all.
    pub checkpoint_interval: Duration,
    /// First size of the file when the body length is unknown; it doubles from there.
    pub initial_capacity: u64,
    /// Most bytes a streaming sink holds while waiting for a hole before them to fill.
    pub reorder_limit: usize,
    /// When the file sink waits for the disk (`--fsync-policy`, off by default).
    pub fsync: FsyncPolicy,
    /// Ask for the mapping to be backed by huge pages (`MADV_HUGEPAGE`, see docs/sink.md).
    pub huge_pages: bool,
    /// With [`SinkOptions::background`]: stage body bytes and write them with `pwrite` from
    /// a writer thread (`stage.rs`) instead of copying them into a mapping of the file.
    pub staging: bool,
}

impl Default for SinkOptions {
    fn default() -> SinkOptions {
        SinkOptions {
            prefault: Prefault::PopulateWrite {
                window: 1024 * 1024,
            },
            background: Some(Background {
                window: 64 * 1024 * 1024,
                core: None,
            }),
            use_pwrite: false,
            checkpoint_bytes: 64 * 1024 * 1024,
            checkpoint_interval: Duration::from_millis(250),
            initial_capacity: 64 * 1024 * 1024,
            reorder_limit: 32 * 1024 * 1024,
            fsync: FsyncPolicy::Off,
            huge_pages: true,
            staging: true,
        }
    }
}

/// Where the body goes, as the command line says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `-O -`.
    Stdout,
    /// A path: a regular file (new or existing) gets a [`FileSink`]; an existing pipe,
    /// character device or anything under `/dev` or `/proc` gets a streaming sink, and
    /// `/dev/null` a [`NullSink`].
    Path(PathBuf),
}

/// Where body bytes land: one of the sinks, behind one interface.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one sink per download, built once and never moved on the hot path; a Box would add a pointer chase to every write"
)]
pub enum Sink {
    /// A regular file, mmapped, resumable.
    File(FileSink),
    /// Standard output, a pipe or a device: bytes leave in order.
    Stream(StreamSink<BufWriter<File>>),
    /// `/dev/null`: bytes are counted, never copied.
    Null(NullSink),
}

/// Buffer between a streaming sink and its file descriptor: large enough that a stream of
/// MSS-sized segments costs one `write` per megabyte.
const STREAM_BUFFER: usize = 1024 * 1024;

impl Sink {
    /// Opens the sink for `target`. `identity.length` is the full length of the resource when
    /// known. `resume` (from [`ResumeInfo::lookup`] for `-c`, else [`ResumeInfo::Fresh`])
    /// applies to regular files only; streams always start at byte 0.
    pub fn open(
        target: &Target,
        identity: &Identity,
        resume: &ResumeInfo,
        options: &SinkOptions,
    ) -> Result<Sink, SinkError> {
        let path = match target {
            Target::Stdout => {
                let name = Path::new("standard output");
                // A duplicate of fd 1, written through our own buffer: std's stdout is
                // line-buffered, which would scan every binary segment for newlines.
                let stdout = io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| SinkError::from_io("open", name, 0, e))?;
                let out = BufWriter::with_capacity(STREAM_BUFFER, File::from(stdout));
                return Ok(Sink::Stream(StreamSink::new(
                    out,
                    name.to_path_buf(),
                    identity.length,
                    options.reorder_limit,
                )));
            }
            Target::Path(path) => path,
        };
        match classify(path) {
            PathKind::Null => Ok(Sink::Null(NullSink::new(path.clone(), identity.length))),
            PathKind::Stream => {
                let file = File::options()
                    .write(true)
                    .open(path)
                    .map_err(|e| SinkError::from_io("open", path, 0, e))?;
                let out = BufWriter::with_capacity(STREAM_BUFFER, file);
                Ok(Sink::Stream(StreamSink::new(
                    out,
                    path.clone(),
                    identity.length,
                    options.reorder_limit,
                )))
            }
            PathKind::Regular => Ok(Sink::File(FileSink::open(path, identity, resume, options)?)),
        }
    }

    /// Places `bytes` at `offset` of the body. Any order; overlaps and repeats are fine.
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), SinkError> {
        match self {
            Sink::File(sink) => sink.write_at(offset, bytes),
            Sink::Stream(sink) => sink.write_at(offset, bytes),
            Sink::Null(sink) => sink.write_at(offset, bytes),
        }
    }

    /// Bytes `0..contiguous_len()` have all arrived.
    pub fn contiguous_len(&self) -> u64 {
        match self {
            Sink::File(sink) => sink.contiguous_len(),
            Sink::Stream(sink) => sink.contiguous_len(),
            Sink::Null(sink) => sink.contiguous_len(),
        }
    }

    /// The byte ranges that have arrived.
    pub fn arrived(&self) -> &RangeSet {
        match self {
            Sink::File(sink) => sink.arrived(),
            Sink::Stream(sink) => sink.arrived(),
            Sink::Null(sink) => sink.arrived(),
        }
    }

    /// How many bytes past the contiguous prefix the sink can take, `None` for no limit.
    /// The engine keeps its receive window within it. A staged file sink gives what its
    /// free staging buffers hold (never shrinking the window it gave before), so a writer
    /// thread that falls behind the network narrows the window instead of making the
    /// busy-poll thread wait (docs/sink.md "When the disk is slower than the network").
    pub fn reorder_capacity(&self) -> Option<u64> {
        match self {
            Sink::File(sink) => sink.reorder_capacity(),
            Sink::Null(_) => None,
            Sink::Stream(sink) => Some(sink.reorder_limit() as u64),
        }
    }

    /// When the engine should poll the sink's session again even if no segment arrives:
    /// while a staged file sink's window is narrowed, it reopens when the writer gives
    /// buffers back, which nothing on the wire announces. `None`: no need.
    pub fn poll_again_at(&self) -> Option<Instant> {
        match self {
            Sink::File(sink) => sink.poll_again_at(),
            Sink::Stream(_) | Sink::Null(_) => None,
        }
    }

    /// Makes progress durable when a checkpoint is due (file sinks only; a no-op otherwise).
    /// Call it once per engine loop iteration.
    pub fn poll_checkpoint(&mut self, now: Instant) -> Result<(), SinkError> {
        match self {
            Sink::File(sink) => sink.poll_checkpoint(now),
            Sink::Stream(_) | Sink::Null(_) => Ok(()),
        }
    }

    /// The body is complete: the file gets its final name, the stream is flushed. Fails with
    /// [`SinkError::Incomplete`] if bytes are missing, and then behaves like `abandon`.
    /// Returns the body length.
    pub fn finish(self) -> Result<u64, SinkError> {
        match self {
            Sink::File(sink) => sink.finish(),
            Sink::Stream(sink) => sink.finish(),
            Sink::Null(sink) => sink.finish(),
        }
    }

    /// The transfer failed or was interrupted: a file keeps every range that arrived for
    /// `-c` (a stream only what it wrote). Returns how many bytes were kept.
    pub fn abandon(self) -> Result<u64, SinkError> {
        match self {
            Sink::File(sink) => sink.abandon(),
            Sink::Stream(sink) => sink.abandon(),
            Sink::Null(sink) => Ok(sink.contiguous_len()),
        }
    }
}

enum PathKind {
    Regular,
    Stream,
    Null,
}

/// Decides which sink a path gets. A missing path is a new regular file.
fn classify(path: &Path) -> PathKind {
    let Ok(meta) = std::fs::metadata(path) else {
        return PathKind::Regular;
    };
    if is_dev_null(&meta) {
        return PathKind::Null;
    }
    // `/dev/stdout` may resolve to a regular file the shell opened; renaming a `.part` over
    // it would be wrong, so anything under /dev or /proc is written as a stream.
    let special_place = std::fs::canonicalize(path)
        .map(|p| p.starts_with("/dev") || p.starts_with("/proc"))
        .unwrap_or(false);
    if meta.is_file() && !special_place {
        PathKind::Regular
    } else {
        PathKind::Stream
    }
}

fn is_dev_null(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !meta.file_type().is_char_device() {
        return false;
    }
    std::fs::metadata("/dev/null").is_ok_and(|null| null.rdev() == meta.rdev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_can_move_to_the_engine_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Sink>();
        assert_send::<SinkError>();
    }

    #[test]
    fn io_errors_map_to_sentences_naming_the_path() {
        let path = Path::new("/data/out.iso");
        let full = SinkError::from_io(
            "allocate",
            path,
            5000,
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert_eq!(full.to_string(), "not enough space on /data for 5000 bytes");
        let denied = SinkError::from_io(
            "create",
            path,
            0,
            io::Error::from_raw_os_error(libc::EACCES),
        );
        assert_eq!(
            denied.to_string(),
            "cannot write /data/out.iso: permission denied"
        );
        let missing = SinkError::from_io(
            "create",
            path,
            0,
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(
            missing.to_string(),
            "cannot write /data/out.iso: its directory does not exist"
        );
        let other = SinkError::from_io("sync", path, 0, io::Error::from_raw_os_error(libc::EIO));
        assert!(
            other.to_string().starts_with("cannot sync /data/out.iso: "),
            "{other}"
        );
        let bare = SinkError::from_io(
            "allocate",
            Path::new("x"),
            1,
            io::Error::from_raw_os_error(libc::EDQUOT),
        );
        assert_eq!(bare.to_string(), "not enough space on . for 1 bytes");
    }

    #[test]
    fn dev_null_is_a_null_sink_and_counts_honestly() {
        let identity = Identity {
            length: Some(10),
            ..Identity::default()
        };
        let mut sink = Sink::open(
            &Target::Path(PathBuf::from("/dev/null")),
            &identity,
            &ResumeInfo::Fresh,
            &SinkOptions::default(),
        )
        .expect("open /dev/null");
        assert!(matches!(sink, Sink::Null(_)));
        sink.write_at(5, b"world").expect("write");
        assert_eq!(sink.contiguous_len(), 0);
        sink.write_at(0, b"hello").expect("write");
        assert_eq!(sink.contiguous_len(), 10);
        assert_eq!(sink.finish().expect("finish"), 10);
    }

    #[test]
    fn regular_path_is_a_file_sink_and_pipe_path_a_stream() {
        let dir = tempfile::tempdir().expect("temp dir");
        let identity = Identity {
            length: Some(3),
            ..Identity::default()
        };
        let path = dir.path().join("out.bin");
        let sink = Sink::open(
            &Target::Path(path.clone()),
            &identity,
            &ResumeInfo::Fresh,
            &SinkOptions::default(),
        )
        .expect("open");
        assert!(matches!(sink, Sink::File(_)));
        drop(sink);
        // A FIFO (opened with a reader present so that open does not block).
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(status.success());
        let reader = File::options()
            .read(true)
            .write(true)
            .open(&fifo)
            .expect("hold fifo open");
        let mut sink = Sink::open(
            &Target::Path(fifo.clone()),
            &identity,
            &ResumeInfo::Fresh,
            &SinkOptions::default(),
        )
        .expect("open fifo");
        assert!(matches!(sink, Sink::Stream(_)));
        assert_eq!(
            sink.reorder_capacity(),
            Some(SinkOptions::default().reorder_limit as u64)
        );
        sink.write_at(1, b"bc").expect("write");
        sink.write_at(0, b"a").expect("write");
        assert_eq!(sink.finish().expect("finish"), 3);
        let mut got = [0u8; 3];
        io::Read::read_exact(&mut &reader, &mut got).expect("read fifo");
        assert_eq!(&got, b"abc");
    }
}
