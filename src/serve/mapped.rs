//! A file body lent to TCP: a read-only mapping of the file, guarded by a read lease.
//!
//! The body of a file response is not read into memory: the whole file is mapped read-only,
//! and the connection's send buffer refers to ranges of the mapping
//! ([`crate::tcp::send_buffer::SharedBytes`]); each segment's payload is copied from the
//! mapping into its transmit frame, the only copy of the byte in our process.
//!
//! **Why a lease.** A mapping turns every access past the file's end into SIGBUS, which
//! kills the whole server, and another process may truncate the file at any time (checking
//! the length before each copy is a race). A read lease (`fcntl(F_SETLEASE, F_RDLCK)`,
//! fcntl(2) "Leases") closes the race: while we hold it, a process that opens the file for
//! writing or truncates it *blocks* in the kernel and we are told (the lease is "being
//! broken", which `F_GETLEASE` shows). So the file cannot change under the mapping until we
//! let go. The connection checks [`MappedFile::intact`] at every poll, before it lends more
//! bytes and before the step in which its segments are built; when the lease is being
//! broken it resets the connection (a response whose bytes may change must not be finished:
//! its Content-Length and ETag were promised), which drops every reference to the mapping,
//! and the last reference unmaps it and closes the descriptor, which releases the lease:
//! only then does the writer proceed.
//!
//! The bound of this guarantee is the kernel's `/proc/sys/fs/lease-break-time` (45 s by
//! default): a breaker waits at most that long, then the kernel revokes the lease. Our loop
//! checks the lease within one step (microseconds) of building a segment, so only a server
//! stopped for longer than that between a check and a copy (SIGSTOP, a debugger) could still
//! fault. A file we cannot lease (someone has it open for writing, a file system without
//! leases, a file the process neither owns nor has CAP_LEASE for, leases disabled) is not
//! mapped: it is sent with `pread`, which returns short instead of faulting.
//!
//! The kernel signals a lease break with SIGIO unless told otherwise, and SIGIO's default
//! action ends the process; each leased descriptor is set to signal SIGURG instead, whose
//! default action is to ignore it (we poll `F_GETLEASE` rather than wait for the signal).
//!
//! The only `unsafe` of `serve/`: the mapping itself and three `fcntl` calls.

#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use memmap2::{Advice, Mmap, MmapOptions};

use crate::tcp::send_buffer::SharedBytes;

/// `F_SETSIG` (linux/fcntl.h, asm-generic: 10; the libc crate has it only for some targets).
const F_SETSIG: libc::c_int = 10;

/// A regular file's bytes, mapped read-only under a read lease. Dropping it unmaps the file
/// and then closes it (field order), which releases the lease.
#[derive(Debug)]
pub struct MappedFile {
    map: Mmap,
    file: File,
}

impl MappedFile {
    /// Maps `file` (opened read-only; `expected_len` bytes long when it was resolved) under
    /// a read lease, or gives it back when it cannot be leased, has changed length, or is
    /// empty: the caller then reads it with `pread`.
    pub fn map(file: File, expected_len: u64) -> Result<Arc<MappedFile>, File> {
        let Ok(len) = usize::try_from(expected_len) else {
            return Err(file);
        };
        if len == 0 || !take_read_lease(&file) {
            return Err(file);
        }
        // Leased: the length can no longer change under us; it must still be the one the
        // response head was made with.
        let unchanged = file
            .metadata()
            .is_ok_and(|m| m.is_file() && m.len() == expected_len);
        if !unchanged {
            release_lease(&file);
            return Err(file);
        }
        // SAFETY: the mapping is read-only (PROT_READ) and we never write through it, so no
        // Rust reference can see our own writes. Its bytes are `len` bytes of a regular file
        // that is exactly `len` bytes long now and that nobody can open for writing or
        // truncate while we hold the read lease taken above (a breaker blocks until we
        // close the descriptor, which happens only after this mapping is unmapped: field
        // order in `MappedFile`). A writer that already had it open would have made
        // F_SETLEASE fail. So every access to the mapping stays inside the file and no
        // SIGBUS can be raised by truncation (the remaining bound, lease-break-time, is in
        // the module docs).
        let map = match unsafe { MmapOptions::new().len(len).map(&file) } {
            Ok(map) => map,
            Err(_) => {
                release_lease(&file);
                return Err(file);
            }
        };
        // Read ahead aggressively; a failure only costs speed.
        let _ = map.advise(Advice::Sequential);
        Ok(Arc::new(MappedFile { map, file }))
    }

    /// Whether the file is still ours unchanged: false once another process has started to
    /// open it for writing or to truncate it (the lease is being broken) — stop reading
    /// the mapping and drop it.
    pub fn intact(&self) -> bool {
        // SAFETY: F_GETLEASE only reads the lease state of a descriptor we own.
        unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_GETLEASE) == libc::F_RDLCK }
    }

    /// The mapped length.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl SharedBytes for MappedFile {
    fn bytes(&self) -> &[u8] {
        &self.map
    }
}

/// Takes a read lease on `file`, told to signal a break with SIGURG (ignored by default)
/// instead of SIGIO (which would end the process).
fn take_read_lease(file: &File) -> bool {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let signal_set = unsafe { libc::fcntl(fd, F_SETSIG, libc::SIGURG) } == 0;
    // SAFETY: as above; the lease is released when the descriptor is closed.
    signal_set && unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) } == 0
}

fn release_lease(file: &File) {
    // SAFETY: as above.
    unsafe {
        libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::os::unix::fs::OpenOptionsExt;

    /// Opens `path` for writing without blocking: while our lease holds, the kernel refuses
    /// (EWOULDBLOCK) and starts breaking the lease.
    fn try_open_for_writing(path: &std::path::Path) -> std::io::Result<File> {
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
    }

    #[test]
    fn a_leased_mapping_holds_the_file_and_tells_when_a_writer_comes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"hello, mapping").unwrap();
        let mapped = MappedFile::map(File::open(&path).unwrap(), 14).unwrap();
        assert_eq!(mapped.bytes(), b"hello, mapping");
        assert!(mapped.intact());
        // A writer is held off, and the lease shows it is being broken.
        let error = try_open_for_writing(&path).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EWOULDBLOCK));
        assert!(!mapped.intact());
        // Dropping the mapping releases the lease: the writer gets in.
        drop(mapped);
        try_open_for_writing(&path).unwrap();
    }

    #[test]
    fn a_file_open_for_writing_or_changed_or_empty_is_given_back() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let writer = OpenOptions::new().write(true).open(&path).unwrap();
        assert!(MappedFile::map(File::open(&path).unwrap(), 10).is_err());
        drop(writer);
        // A length other than the one the head promised; the file comes back without a
        // lease left on it (a writer is not held off while it is read with pread).
        let back = MappedFile::map(File::open(&path).unwrap(), 12).unwrap_err();
        try_open_for_writing(&path).unwrap();
        drop(back);
        std::fs::write(&path, b"").unwrap();
        assert!(MappedFile::map(File::open(&path).unwrap(), 0).is_err());
    }
}
