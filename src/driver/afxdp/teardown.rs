//! Teardown off the critical path: a forked child holds the last references to the AF_XDP
//! sockets and the XDP link and closes them after the download's process has exited.
//!
//! Closing an AF_XDP socket waits in `xsk_unbind_dev` for `synchronize_net()` (an RCU grace
//! period), and closing the bpf_link detaches the program, which waits for another one in
//! the XDP dispatcher's update (`bpf_dispatcher_update`, kernel/bpf/dispatcher.c): 20-60 ms
//! on the testbed, after the last byte is already on disk. A process cannot exit before
//! its files are closed, so instead the driver forks a child that shares those files; the
//! parent's closes then only drop a reference (microseconds), and the child, released by
//! the parent's exit (or its drop of the driver), makes the final, slow closes.
//!
//! Nothing outlives the child: it holds no state of its own, and if either process is
//! killed (`kill -9` included) the kernel closes what it held. The child closes every other
//! descriptor at once (stdout and stderr pipes see EOF when the parent exits; file locks
//! are not held past the parent).
//!
//! A run that starts while a child still holds the program would find the interface taken.
//! So each child is noted in the ledger (`/run/xdpget/xdp-teardown/<netns>.<pid>`, the
//! content the interface index), and [`wait_for_others`] lets a new run wait, bounded,
//! for the children on its interface to finish before it attaches.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::ledger;

/// Ledger kind of the notes: one per live teardown child.
const LEDGER_KIND: &str = "xdp-teardown";

/// The parent's end of a handed-off teardown: dropping it (or exiting) releases the child,
/// which then makes the final closes. Drop it only after the driver's own descriptors are
/// closed, so that the child's closes are the last ones.
#[derive(Debug)]
pub(crate) struct Release {
    _write_end: OwnedFd,
}

/// Forks a child that keeps `keep` (the link first, then the sockets) open until the
/// returned [`Release`] is dropped, and then closes them, link first. `None` when the fork
/// failed: the caller's own closes then do the teardown, as before.
pub(crate) fn hand_off(keep: &[RawFd], ifindex: u32) -> Option<Release> {
    hand_off_noted(keep, Some(ifindex))
}

/// As [`hand_off`], for descriptors whose closes no later run needs to wait for (a packet
/// socket, the netlink socket of an owned nftables table): no ledger note.
pub(crate) fn hand_off_unnoted(keep: &[RawFd]) -> Option<Release> {
    hand_off_noted(keep, None)
}

fn hand_off_noted(keep: &[RawFd], ifindex: Option<u32>) -> Option<Release> {
    let mut ends = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the live two-element array.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: pipe2 succeeded, so this is a new descriptor that nothing else owns.
    let read_end = unsafe { OwnedFd::from_raw_fd(ends[0]) };
    // SAFETY: as above, the other end.
    let write_end = unsafe { OwnedFd::from_raw_fd(ends[1]) };
    // Everything the child needs is computed before the fork: after it, in a copy of a
    // multi-threaded process, the child may only make async-signal-safe calls (no locks,
    // no allocation).
    let mut kept: Vec<RawFd> = keep.to_vec();
    kept.push(read_end.as_raw_fd());
    kept.sort_unstable();
    kept.dedup();
    // SAFETY: fork(2) has no memory-safety preconditions; the child below only calls
    // close_range, close, read and _exit, all async-signal-safe, on data prepared above.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => None,
        0 => {
            // SAFETY: we are the child; `kept` and `keep` are valid slices copied with the
            // address space, and `run_child` never returns.
            unsafe { run_child(&kept, keep, read_end.as_raw_fd()) }
        }
        child => {
            drop(read_end);
            let Some(ifindex) = ifindex else {
                return Some(Release {
                    _write_end: write_end,
                });
            };
            let pid = u32::try_from(child).unwrap_or(0);
            // Best effort: without the note a run that starts within the next few
            // milliseconds finds the interface taken and uses the raw driver.
            let _ = ledger::take_stale(LEDGER_KIND);
            if let Ok(note) = ledger::Note::write_for(pid, LEDGER_KIND, &ifindex.to_string()) {
                // The note stays until the child is gone; a later run takes it then.
                std::mem::forget(note);
            }
            Some(Release {
                _write_end: write_end,
            })
        }
    }
}

/// The child's whole life: close everything but `kept`, wait for the parent to let go,
/// close `keep` in order, exit.
///
/// # Safety
/// Only in the child of `fork`, with `kept` sorted.
unsafe fn run_child(kept: &[RawFd], keep: &[RawFd], read_end: RawFd) -> ! {
    let mut next: libc::c_uint = 0;
    for &fd in kept {
        let fd = fd as libc::c_uint;
        if fd > next {
            // SAFETY: close_range(2) on descriptors this process may close; no flags.
            unsafe { libc::syscall(libc::SYS_close_range, next, fd - 1, 0) };
        }
        next = fd + 1;
    }
    // SAFETY: as above, everything above the highest kept descriptor.
    unsafe { libc::syscall(libc::SYS_close_range, next, libc::c_uint::MAX, 0) };
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into a live local.
        let read = unsafe { libc::read(read_end, (&raw mut byte).cast(), 1) };
        // EOF: every write end is closed (the parent dropped the driver, or died).
        // SAFETY: __errno_location returns this thread's errno slot, always valid.
        let errno = unsafe { libc::__errno_location() };
        // SAFETY: a valid, aligned pointer to a thread-local int (read signal-safely).
        let interrupted = read < 0 && unsafe { *errno } == libc::EINTR;
        if read == 0 || (read < 0 && !interrupted) {
            break;
        }
    }
    for &fd in keep {
        // SAFETY: closing descriptors this process holds; the link goes first so that the
        // program leaves the interface before the sockets unbind.
        unsafe { libc::close(fd) };
    }
    // SAFETY: _exit runs no destructors or atexit handlers, which must not run here.
    unsafe { libc::_exit(0) }
}

/// Whether a live teardown child of another run holds interface `ifindex` of this network
/// namespace (its program, still attached, is on its way out).
pub(crate) fn held_by_teardown(ifindex: u32) -> bool {
    let wanted = ifindex.to_string();
    ledger::held_by_others(LEDGER_KIND)
        .iter()
        .any(|held| held.trim() == wanted)
}

/// Waits until no teardown child of another run holds interface `ifindex` of this network
/// namespace, or `limit` passes. Returns whether there was one to wait for.
pub(crate) fn wait_for_others(ifindex: u32, limit: Duration) -> bool {
    let busy = || held_by_teardown(ifindex);
    if !busy() {
        return false;
    }
    let started = Instant::now();
    while busy() && started.elapsed() < limit {
        std::thread::sleep(Duration::from_micros(500));
    }
    true
}
