//! What the file sink makes durable, and the only place it calls msync, fsync or fdatasync:
//! `--fsync-policy` (wget2's option name).
//!
//! Two failures are worth telling apart:
//! - **the process dies** (`kill -9`, a crash, a `SIGBUS`): every byte it stored in a
//!   `MAP_SHARED` mapping and every byte it handed to `pwrite` is already in the page cache,
//!   and the kernel writes the page cache back whether the process lives or not. So a control
//!   record that claims only bytes the process has already stored is exact after any death
//!   of the process, with no sync at all.
//! - **the machine stops** (power loss, a kernel panic): the page cache is gone, and on disk
//!   there is whatever writeback had done by then, in any order. Only a sync *before* the
//!   record claims the bytes (and before the rename that shows `NAME`) keeps the record exact.
//!
//! [`FsyncPolicy::Off`] (the default, as wget, curl and wget2 do) guards against the first;
//! [`FsyncPolicy::On`] against both, at the cost of writing the whole file to the disk
//! before the download may end. docs/sink.md says what each promises.
//!
//! Every sync goes through [`Durability`], which counts the calls it makes, so that tests can
//! see that the default makes none.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::sys::MappedRange;

/// When the file sink waits for the disk (`--fsync-policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Never. Safe against the process dying at any moment; after a power loss the `.part`
    /// may hold less than its control record claims, and `NAME` may be short or empty.
    #[default]
    Off,
    /// Checkpoints are synced before they are recorded, and `NAME` is synced before and after
    /// the rename: safe against a power loss as well.
    On,
}

/// How many msync, fsync and fdatasync calls a download made: a handle that stays readable
/// after the sink is finished or abandoned.
#[derive(Clone, Debug, Default)]
pub struct SyncCalls(Arc<AtomicU64>);

impl SyncCalls {
    /// The calls made so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The sync calls of one download, under one policy, with a count of the calls made. Cheap
/// to clone: the clones (one per helper thread) share the count.
#[derive(Clone, Debug)]
pub(super) struct Durability {
    policy: FsyncPolicy,
    calls: SyncCalls,
}

impl Durability {
    pub(super) fn new(policy: FsyncPolicy) -> Durability {
        Durability {
            policy,
            calls: SyncCalls::default(),
        }
    }

    /// Whether this policy syncs at all.
    pub(super) fn syncs(&self) -> bool {
        self.policy == FsyncPolicy::On
    }

    /// The count of msync, fsync and fdatasync calls made by every clone.
    pub(super) fn calls(&self) -> SyncCalls {
        self.calls.clone()
    }

    /// Runs `sync` when the policy says so, and counts it.
    fn run(&self, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        if !self.syncs() {
            return Ok(());
        }
        self.calls.0.fetch_add(1, Ordering::Relaxed);
        sync()
    }

    /// `offset..offset+len` of a mapping reaches the disk (msync MS_SYNC).
    pub(super) fn mapped(&self, range: &MappedRange, offset: usize, len: usize) -> io::Result<()> {
        self.run(|| range.flush(offset, len))
    }

    /// The data of `file` (and the size needed to read it) reaches the disk (fdatasync).
    pub(super) fn data(&self, file: &File) -> io::Result<()> {
        self.run(|| file.sync_data())
    }

    /// The data and metadata of `file` reach the disk (fsync).
    pub(super) fn all(&self, file: &File) -> io::Result<()> {
        self.run(|| file.sync_all())
    }

    /// The entries of directory `dir` (a rename, a new file) reach the disk.
    pub(super) fn directory(&self, dir: &Path) -> io::Result<()> {
        self.run(|| File::open(dir).and_then(|d| d.sync_all()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_makes_no_call_and_on_counts_every_call_across_clones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = File::create(dir.path().join("f")).expect("create");
        let off = Durability::new(FsyncPolicy::Off);
        off.data(&file).expect("no-op");
        off.all(&file).expect("no-op");
        off.directory(dir.path()).expect("no-op");
        // A range where nothing is mapped: a real msync would fail with ENOMEM.
        off.mapped(&MappedRange::unmapped_for_tests(), 0, 4096)
            .expect("not called");
        assert_eq!(off.calls().get(), 0);

        let on = Durability::new(FsyncPolicy::On);
        let clone = on.clone();
        on.data(&file).expect("fdatasync");
        clone.all(&file).expect("fsync");
        on.directory(dir.path()).expect("directory");
        assert!(
            clone
                .mapped(&MappedRange::unmapped_for_tests(), 0, 4096)
                .is_err(),
            "msync is really called"
        );
        assert_eq!(on.calls().get(), 4);
        assert_eq!(clone.calls().get(), 4);
    }
}
