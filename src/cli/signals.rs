//! Stopping on a signal: SIGINT (Ctrl-C), SIGTERM (`kill`, `timeout`, service managers),
//! SIGHUP (the terminal went away) and SIGQUIT (Ctrl-\) all ask a download to stop the same
//! way.
//!
//! The handler only sets a flag (an atomic store is async-signal-safe; nothing else is
//! done in signal context). The busy-poll loop checks the flag once per iteration and at
//! least every `max_wait` (100 ms), aborts the connection with a RST and returns
//! `EngineError::Interrupted`; the caller then trims the partial file to its verified
//! prefix and brings the control record up to date (docs/sink.md), and the network's guards
//! drop on the engine thread: XDP program, nftables table, port reservation. The process
//! exits through `main` with exit status 1, as wget does on Ctrl-C.
//!
//! A second signal while that clean-up runs only sets the flag again: the clean-up is
//! never cut short half-way, so it cannot leave a half-written control record or a table
//! without its ledger note. Clean-up is bounded (one `nft` run, one sysctl write, one
//! `fsync`); `kill -9` remains the way to stop at once, and the next run undoes what it
//! leaves (src/ledger.rs).
#![allow(unsafe_code)] // sigaction(2): two calls with SAFETY comments, nothing else

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering};

/// The signals that stop a download cleanly.
pub const STOP_SIGNALS: [libc::c_int; 4] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The flag the handler sets: the inside of an `Arc<AtomicBool>` that is never freed (one
/// reference is leaked on installation), so the pointer stays valid for the whole process.
static FLAG: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());

/// The first stop signal received, 0 before any.
static FIRST: AtomicI32 = AtomicI32::new(0);

/// Routes every signal of [`STOP_SIGNALS`] to `flag`. Call once, before any thread that
/// must see the flag starts; a second call replaces the flag (the old one stays leaked).
pub fn install(flag: &Arc<AtomicBool>) -> io::Result<()> {
    let raw = Arc::into_raw(Arc::clone(flag)).cast_mut();
    FLAG.store(raw, Ordering::SeqCst);
    for signal in STOP_SIGNALS {
        // SAFETY: an all-zero `sigaction` is a valid value (no flags, empty mask, SIG_DFL);
        // the fields that matter are set below.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // Restart interrupted system calls: every loop that must notice the flag wakes at
        // least every 100 ms anyway, and code that does not expect EINTR never sees it.
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action` is a fully initialised sigaction whose handler only does atomic
        // loads and stores (async-signal-safe); a null old-action pointer is allowed.
        let result = unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_signal(signal: libc::c_int) {
    let _ = FIRST.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    let flag = FLAG.load(Ordering::SeqCst);
    if !flag.is_null() {
        // SAFETY: FLAG only ever holds a pointer from `Arc::into_raw` whose reference is
        // never given back, so the AtomicBool it points to lives until the process ends.
        unsafe { (*flag).store(true, Ordering::SeqCst) };
    }
}

/// The name of the first stop signal received ("SIGTERM"), if any arrived.
pub fn received() -> Option<&'static str> {
    name(FIRST.load(Ordering::SeqCst))
}

/// `SIGINT`, `SIGTERM`, `SIGHUP`, `SIGQUIT`; `None` for any other number.
pub fn name(signal: libc::c_int) -> Option<&'static str> {
    match signal {
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        libc::SIGHUP => Some("SIGHUP"),
        libc::SIGQUIT => Some("SIGQUIT"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signal this process sends itself sets the flag and is remembered by name, and a
    /// second one neither kills the process nor changes which came first.
    #[test]
    fn a_stop_signal_sets_the_flag_and_a_second_one_is_absorbed() {
        let flag = Arc::new(AtomicBool::new(false));
        install(&flag).expect("sigaction");
        assert!(!flag.load(Ordering::SeqCst));
        // SAFETY: raise(3) only delivers a signal to this thread; its handler is ours.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        assert!(flag.load(Ordering::SeqCst));
        assert_eq!(received(), Some("SIGHUP"));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        assert_eq!(received(), Some("SIGHUP"));
        assert_eq!(name(libc::SIGQUIT), Some("SIGQUIT"));
        assert_eq!(name(libc::SIGKILL), None);
        for signal in STOP_SIGNALS {
            // SAFETY: SIG_DFL is a valid disposition; Ctrl-C stops the test binary again.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
}
