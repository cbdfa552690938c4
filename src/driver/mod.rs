//! `driver/` — packet I/O behind one trait.
//!
//! - `afxdp`: AF_XDP sockets fed by our XDP program (the fast path).
//! - `raw`: AF_PACKET with a TPACKET_V3 ring, for NICs and kernels without XDP.
//! - `sim`: an in-memory link with rate, delay, loss, reordering, duplication and corruption
//!   under virtual time, for tests and `xdpget sim`.
//!
//! All `unsafe` of the crate lives here and in `sink/`.
//!
//! CONTRACT (shared by every driver and by `engine`): frames are whole Ethernet II frames.
//! A driver also supplies the clock, so that the same engine loop runs in real time over a
//! NIC and in virtual time over the simulator.

pub mod afxdp;

use crate::time::Instant;

/// Counters every driver keeps; `--stats` prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DriverStats {
    pub rx_frames: u64,
    pub tx_frames: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Frames the driver could not take or give (ring full, queue overflow, ...).
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    /// Times the engine found nothing to receive and went to a blocking wait.
    pub idle_waits: u64,
    /// Times the kernel had a frame for us but found the fill ring empty (AF_XDP only).
    pub fill_ring_empty: u64,
}

/// Errors a driver can report; each message is one sentence a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
}

/// Packet I/O in batches, frames handed out in place.
///
/// Calling order, once per engine loop iteration:
/// `now()` → `receive(max, f)` → (engine work) → `transmit(max, f)` → `flush()`;
/// when a loop iteration found nothing to do, `wait(deadline)`.
pub trait Driver {
    /// The current time on this driver's clock (monotonic for real NICs, virtual in `sim`).
    fn now(&self) -> Instant;

    /// Hands up to `max` received frames to `f`, one at a time, in place. Each frame is
    /// recycled after `f` returns. Returns how many frames were handed out.
    #[must_use = "the number of frames received tells the loop whether to back off"]
    fn receive<F: FnMut(&[u8])>(&mut self, max: usize, f: F) -> Result<usize, DriverError>;

    /// Offers up to `max` transmit buffers to `f`, one at a time. `f` writes one frame and
    /// returns its length, or returns 0 to say it has nothing more to send (the buffer is
    /// given back unused and the batch ends). Returns how many frames were queued.
    #[must_use = "the number of frames queued tells the loop whether to kick the driver"]
    fn transmit<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        f: F,
    ) -> Result<usize, DriverError>;

    /// Makes queued frames leave (the one transmit kick of a batch).
    fn flush(&mut self) -> Result<(), DriverError>;

    /// Blocks until a frame may have arrived or `deadline` passes, whichever is first.
    /// In `sim` this advances virtual time to the next event.
    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DriverError>;

    /// The largest frame `transmit` accepts, Ethernet header included.
    fn max_frame_len(&self) -> usize;

    /// Counters so far.
    fn stats(&self) -> DriverStats;
}

pub mod fault;
pub mod handover;
pub mod pcap;
pub mod raw;
pub mod sim;
