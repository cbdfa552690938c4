//! The operating-system calls of the file sink, and the only `unsafe` code in `sink/`:
//! the shared file mapping (mmap, mremap), `fallocate`, `sync_file_range` and `flock`.
//!
//! Follows: mmap(2), mremap(2), madvise(2) (`MADV_POPULATE_WRITE`, Linux 5.14),
//! msync(2), fallocate(2), sync_file_range(2), flock(2).
//!
//! # Why the mapping is sound, and the one thing that can still go wrong
//!
//! A `MAP_SHARED` mapping of a file is memory that other processes can change under us. Rust
//! only needs that nobody else makes *our* references invalid, and here nobody does: the
//! mapping is created, written and unmapped by this one [`Mapping`], which hands out a
//! `&mut [u8]` only while borrowed mutably, and we never read back what other processes wrote.
//! The file is ours: the sink opened it with `O_CREAT` under a name (`NAME.part`) that no
//! other program writes, and holds an exclusive `flock` on it for its whole life.
//!
//! What remains is `SIGBUS`: if the pages under the mapping stop existing, a write to them
//! kills the process. That happens when
//! - **the file is truncated by someone else** while mapped (another program ignoring our
//!   `flock`, or a user running `truncate` on the `.part` file). We cannot stop that; the
//!   advisory lock keeps other xdpget runs away and the `.part` name keeps casual users away.
//! - **the file system runs out of blocks** while a page fault fills a hole. We never map a
//!   hole: every byte of the mapping is allocated with `fallocate` (mode 0) before it is
//!   mapped, so a full disk is an error at allocation time, before the transfer starts (or
//!   before a growth step of an unknown-length body). File systems without `fallocate` get no
//!   mapping at all: the sink falls back to `pwrite`, which reports a full disk as an error.
//!
//! A `SIGBUS` or `kill -9` never corrupts what `-c` trusts: see `control.rs`.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use memmap2::{Advice, MmapMut, MmapOptions, RemapOptions};

/// A writable shared mapping of a whole file, from offset 0 to `len()`.
///
/// Invariant: the file is at least `len()` bytes long and every byte of it is allocated.
pub(super) struct Mapping {
    map: MmapMut,
}

impl Mapping {
    /// Maps the first `len` bytes of `file`, which must be at least `len > 0` bytes long and
    /// fully allocated (see [`allocate`]).
    pub(super) fn new(file: &File, len: usize) -> io::Result<Mapping> {
        // SAFETY: `file` is the sink's own `.part` file, opened read-write with O_CREAT and
        // locked with flock(LOCK_EX); the caller has allocated `len` bytes of it with
        // fallocate, so every page of the mapping is backed by a block (no SIGBUS on a full
        // disk). The mapping is only reached through this `Mapping` (no aliasing `&mut`).
        // The remaining risk, another process truncating the file, is documented above.
        let map = unsafe { MmapOptions::new().len(len).map_mut(file) }?;
        Ok(Mapping { map })
    }

    /// Asks for the mapping to be backed by huge pages where the file system can (ext4 and
    /// xfs with large folios, Linux 6.16+ for ext4): the page cache then takes the file in
    /// 2 MiB folios, each mapped by one page-middle-directory entry, so populating, copying
    /// and unmapping touch 512 times fewer entries. Measured for 1 GiB (docs/sink.md):
    /// populating took 0.14–0.40 s instead of 0.16–3.1 s. Only a hint: kernels and file
    /// systems that cannot do it keep small pages, and an error is not worth reporting.
    /// The flag belongs to the mapping and survives [`Mapping::grow`].
    pub(super) fn hint_huge_pages(&self) {
        let _ = self.map.advise(Advice::HugePage);
    }

    /// The mapped length in bytes.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Where the mapping lies, for the preparer thread (see [`MappedRange`]).
    pub(super) fn range(&self) -> MappedRange {
        MappedRange {
            addr: self.map.as_ptr() as usize,
            len: self.map.len(),
        }
    }

    /// Grows the mapping to `new_len` bytes; it may move in memory (mremap with MAYMOVE keeps
    /// the page tables, so nothing is faulted again). The file must already be `new_len`
    /// bytes long and allocated.
    pub(super) fn grow(&mut self, new_len: usize) -> io::Result<()> {
        // SAFETY: the caller extended and allocated the file to at least `new_len` bytes
        // before this call, so no page of the grown mapping lies beyond the end of the file.
        // `&mut self` guarantees no slice into the old address range is alive.
        unsafe { self.map.remap(new_len, RemapOptions::new().may_move(true)) }
    }

    /// The mapped bytes, to copy body bytes into.
    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// Writes `offset..offset+len` back to the file and waits for it (msync MS_SYNC, which on
    /// Linux is an fdatasync of that range: the data and the size needed to read it back).
    /// The same calls as the helper threads make ([`MappedRange::flush`]); the sink itself
    /// syncs through `durability.rs`.
    #[cfg(test)]
    pub(super) fn flush(&self, offset: usize, len: usize) -> io::Result<()> {
        self.range().flush(offset, len)
    }

    /// Prefaults `offset..offset+len` writable (MADV_POPULATE_WRITE) so that the copies that
    /// follow take no page faults. Fails with `EINVAL` on kernels before 5.14.
    pub(super) fn populate_write(&self, offset: usize, len: usize) -> io::Result<()> {
        self.range().populate_write(offset, len)
    }

    /// Asks the kernel to read ahead `offset..offset+len` (MADV_WILLNEED): the pages land in
    /// the page cache, but each still takes a (minor) fault on first write.
    pub(super) fn will_need(&self, offset: usize, len: usize) -> io::Result<()> {
        self.map.advise_range(Advice::WillNeed, offset, len)
    }
}

/// The address range of a [`Mapping`], handed to the sink's helper threads (`prepare.rs`,
/// `flush.rs`) so that they can prefault and write back pages while the writer copies into
/// others. It is only an address: it never dereferences, so it cannot make a reference
/// invalid. Its owners stop using it before the mapping is unmapped or moved (`FileSink`
/// joins the helpers first); even a late call would only prefault, write back or fail, never
/// change a byte of memory (madvise and msync on a range that is not mapped are ENOMEM).
#[derive(Clone, Copy, Debug)]
pub(super) struct MappedRange {
    addr: usize,
    len: usize,
}

impl MappedRange {
    /// The mapped length in bytes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Prefaults `offset..offset+len` writable, like [`Mapping::populate_write`]. `offset` is
    /// rounded down to its page; the range is clipped to the mapping.
    pub(super) fn populate_write(&self, offset: usize, len: usize) -> io::Result<()> {
        let Some((start, len)) = self.pages(offset, len) else {
            return Ok(());
        };
        // SAFETY: madvise(MADV_POPULATE_WRITE) reads and writes no memory through this
        // pointer that a Rust reference could observe: it only makes the page-table entries
        // of our own shared file mapping present and writable, which leaves the content of
        // every page as it was (see the struct docs for why the range is still mapped).
        let result = unsafe { libc::madvise(start, len, libc::MADV_POPULATE_WRITE) };
        os_result(result)
    }

    /// Writes `offset..offset+len` back to the file and waits for it, like
    /// [`Mapping::flush`] (msync MS_SYNC), from another thread than the writer's. A range
    /// past the mapping is an error, never silently shortened: a caller records what it
    /// flushed.
    pub(super) fn flush(&self, offset: usize, len: usize) -> io::Result<()> {
        if offset.saturating_add(len) > self.len {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let Some((start, len)) = self.pages(offset, len) else {
            return Ok(());
        };
        // SAFETY: msync reads the pages of our own shared file mapping to write them to the
        // file; it changes no memory and keeps no pointer. Bytes the writer copies into the
        // same pages meanwhile are simply written now or by a later msync (the struct docs say
        // why the range is still mapped).
        let result = unsafe { libc::msync(start, len, libc::MS_SYNC) };
        os_result(result)
    }

    /// A range where nothing is mapped (just above the zero page, below `mmap_min_addr`),
    /// for tests of the error paths.
    #[cfg(test)]
    pub(super) fn unmapped_for_tests() -> MappedRange {
        MappedRange {
            addr: 0x1000,
            len: 1 << 20,
        }
    }

    /// `offset..offset+len` clipped to the mapping and widened to whole pages, as the
    /// address and length madvise and msync take; `None` when empty (no call at all).
    fn pages(&self, offset: usize, len: usize) -> Option<(*mut libc::c_void, usize)> {
        let end = offset.saturating_add(len).min(self.len);
        let start = offset - offset % page_size();
        (len > 0 && end > start).then(|| ((self.addr + start) as *mut libc::c_void, end - start))
    }
}

/// `Ok` for a libc return value of 0, else the thread's `errno`.
fn os_result(result: libc::c_int) -> io::Result<()> {
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The size of a memory page.
fn page_size() -> usize {
    // SAFETY: sysconf only reads its integer argument.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(1)
}

/// Allocates `offset..offset+len` of `file` (fallocate mode 0: blocks are reserved and the
/// file size grows to cover them). `len` must be positive. A full disk is `ENOSPC`; a file
/// system that cannot do it is `EOPNOTSUPP`.
pub(super) fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: fallocate only reads its integer arguments; the descriptor is open and owned
    // by `file` for the duration of the call.
    let result = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Starts writeback of the dirty pages of `offset..offset+len` without waiting for it
/// (sync_file_range SYNC_FILE_RANGE_WRITE), so that a later msync of the same range finds
/// them (mostly) clean and returns quickly. Gives no durability by itself.
pub(super) fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let offset =
        libc::off64_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    let len =
        libc::off64_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is open and
    // owned by `file` for the duration of the call.
    let result = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Takes an exclusive advisory lock on `file` without waiting (flock LOCK_EX|LOCK_NB).
/// Returns `Ok(false)` when another open file description holds it. The lock goes away when
/// the last descriptor of this open file closes, also on `kill -9`.
pub(super) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: flock only reads its integer arguments; the descriptor is open and owned by
    // `file` for the duration of the call.
    let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if result == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn mapping_writes_reach_the_file_and_grow_keeps_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("m.part");
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("open");
        allocate(&file, 0, 4096).expect("allocate");
        let mut mapping = Mapping::new(&file, 4096).expect("map");
        mapping
            .populate_write(0, 4096)
            .or_else(|e| {
                // Kernels before 5.14 do not know MADV_POPULATE_WRITE.
                if e.raw_os_error() == Some(libc::EINVAL) {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .expect("populate");
        mapping.bytes_mut()[10..13].copy_from_slice(b"abc");
        allocate(&file, 4096, 8192).expect("allocate more");
        mapping.grow(12288).expect("grow");
        assert_eq!(mapping.len(), 12288);
        mapping.bytes_mut()[12000..12003].copy_from_slice(b"xyz");
        mapping.flush(0, 12288).expect("flush");
        start_writeback(&file, 0, 12288).expect("writeback");
        drop(mapping);
        let mut content = Vec::new();
        file.read_to_end(&mut content).expect("read");
        assert_eq!(content.len(), 12288);
        assert_eq!(&content[10..13], b"abc");
        assert_eq!(&content[12000..12003], b"xyz");
        assert!(content[13..12000].iter().all(|&b| b == 0));
    }

    #[test]
    fn lock_excludes_a_second_open_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("l.part");
        let first = File::create(&path).expect("create");
        let second = File::options().write(true).open(&path).expect("open");
        assert!(try_lock_exclusive(&first).expect("lock"));
        assert!(!try_lock_exclusive(&second).expect("lock"));
        drop(first);
        assert!(try_lock_exclusive(&second).expect("lock after release"));
    }
}
