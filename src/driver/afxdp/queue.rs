//! One AF_XDP socket bound to one rx queue, with a UMEM of its own.
//!
//! Frame ownership (kernel doc networking/af_xdp.rst, "Rings"): every UMEM frame is at any
//! moment in exactly one place — the fill ring or the rx ring (receive side, owned by the
//! kernel until it comes out of the rx ring), the tx ring or the completion ring (transmit
//! side), or one of our two free lists. The first half of the frames serve receive and
//! cycle fill → rx → (engine reads in place) → fill; the second half serve transmit and
//! cycle free → tx → completion → free. Rings are as large as their half, so a ring never
//! refuses a frame that came out of its partner ring.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};

use xsk_rs::config::{
    BindFlags, FrameSize, Interface as XskInterface, LibxdpFlags, QueueSize, SocketConfig,
    UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// How the socket ended up bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum BindMode {
    /// The NIC DMAs straight into the UMEM.
    ZeroCopy,
    /// The kernel copies each frame into the UMEM (veth, generic XDP, most virtual NICs).
    Copy,
}

#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct QueueError {
    pub reason: String,
}

pub(crate) struct QueueSocket {
    pub queue_id: u32,
    pub bind_mode: BindMode,
    /// Bound with XDP_USE_NEED_WAKEUP (kernels 5.4+): kick only when a ring asks.
    pub need_wakeup: bool,
    // Field order is drop order: the rings (which hold the socket) before the UMEM.
    rx: RxQueue,
    tx: TxQueue,
    fill: FillQueue,
    completion: CompQueue,
    umem: Umem,
    /// Transmit frames that are ours to write.
    tx_free: Vec<FrameDesc>,
    /// Receive frames the fill ring did not take yet (never happens with rings sized to
    /// their half, kept so that no frame can be lost if it does).
    fill_backlog: Vec<FrameDesc>,
    /// Largest frame a UMEM frame holds (frame size minus the XDP headroom).
    pub frame_capacity: usize,
    /// Entries in each of the four rings (half the frames).
    ring_size: u32,
}

impl QueueSocket {
    /// Creates the UMEM and socket for `(interface, queue_id)`: zero-copy with need_wakeup
    /// first, then copy mode with need_wakeup, then plain copy mode. `frame_count` must be a
    /// power of two of at least 2.
    pub(crate) fn open(
        interface: &str,
        queue_id: u32,
        frame_count: u32,
        frame_size: u32,
        allow_zero_copy: bool,
    ) -> Result<QueueSocket, QueueError> {
        let attempts: &[(BindMode, bool)] = if allow_zero_copy {
            &[
                (BindMode::ZeroCopy, true),
                (BindMode::Copy, true),
                (BindMode::Copy, false),
            ]
        } else {
            &[(BindMode::Copy, true), (BindMode::Copy, false)]
        };
        let mut last_error = None;
        for &(bind_mode, need_wakeup) in attempts {
            match Self::try_open(
                interface,
                queue_id,
                frame_count,
                frame_size,
                bind_mode,
                need_wakeup,
            ) {
                Ok(socket) => return Ok(socket),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| QueueError {
            reason: "no bind mode to try".into(),
        }))
    }

    fn try_open(
        interface: &str,
        queue_id: u32,
        frame_count: u32,
        frame_size: u32,
        bind_mode: BindMode,
        need_wakeup: bool,
    ) -> Result<QueueSocket, QueueError> {
        let error = |what: &str| {
            let what = what.to_string();
            move |source: &dyn std::fmt::Display| QueueError {
                reason: format!("AF_XDP {what} on {interface} queue {queue_id}: {source}"),
            }
        };
        let half = frame_count / 2;
        let ring = QueueSize::new(half).map_err(|e| error("ring size")(&e))?;
        let umem_config = UmemConfig::builder()
            .frame_size(FrameSize::new(frame_size).map_err(|e| error("frame size")(&e))?)
            .fill_queue_size(ring)
            .comp_queue_size(ring)
            .build()
            .map_err(|e| error("UMEM config")(&e))?;
        let frame_capacity = umem_config.mtu() as usize;
        let frames = NonZeroU32::new(frame_count).ok_or_else(|| QueueError {
            reason: "the UMEM needs at least one frame".into(),
        })?;
        let (umem, mut descs) =
            Umem::new(umem_config, frames, false).map_err(|e| error("UMEM")(&e))?;

        let mut bind_flags = match bind_mode {
            BindMode::ZeroCopy => BindFlags::XDP_ZEROCOPY,
            BindMode::Copy => BindFlags::XDP_COPY,
        };
        if need_wakeup {
            bind_flags |= BindFlags::XDP_USE_NEED_WAKEUP;
        }
        let socket_config = SocketConfig::builder()
            .rx_queue_size(ring)
            .tx_queue_size(ring)
            // Our own program (loader.rs) steers; libxdp must not load its default one.
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind_flags)
            .build();
        let name = CString::new(interface).map_err(|e| error("interface name")(&e))?;
        // SAFETY: the UMEM was created just above and is not shared with any other socket,
        // so the (interface, queue) pair is bound for the first time from it; the inhibit
        // flag is set as well, which is what the shared case would require.
        let (tx, rx, rings) =
            unsafe { Socket::new(socket_config, &umem, &XskInterface::new(name), queue_id) }
                .map_err(|e| error(mode_name(bind_mode))(&e))?;
        let (mut fill, completion) = rings.ok_or_else(|| QueueError {
            reason: format!("AF_XDP on {interface} queue {queue_id}: no fill/completion ring"),
        })?;

        let tx_free = descs.split_off(half as usize);
        // SAFETY: these descriptors come from this UMEM and are owned by nobody yet; handing
        // them to the fill ring gives them to the kernel until they come back through rx.
        let filled = unsafe { fill.produce(&descs) };
        let mut fill_backlog = Vec::with_capacity(half as usize);
        if filled == 0 {
            fill_backlog.extend_from_slice(&descs);
        }
        Ok(QueueSocket {
            queue_id,
            bind_mode,
            need_wakeup,
            rx,
            tx,
            fill,
            completion,
            umem,
            tx_free,
            fill_backlog,
            frame_capacity,
            ring_size: half,
        })
    }

    /// What the kernel counted on this socket (XDP_STATISTICS): frames dropped on receive
    /// (rx ring full, no fill-ring frame, invalid), on transmit, and how often it found the
    /// fill ring empty.
    pub(crate) fn kernel_counters(&self) -> (u64, u64, u64) {
        match self.rx.fd().xdp_statistics() {
            Ok(stats) => (
                stats.rx_dropped() + stats.rx_ring_full() + stats.rx_invalid_descs(),
                stats.tx_invalid_descs(),
                stats.rx_fill_ring_empty_descs(),
            ),
            // Statistics are best effort: never fail a download over them.
            Err(_) => (0, 0, 0),
        }
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }

    /// Takes up to `batch.len()` received frames, hands each to `f` in place and gives them
    /// back to the fill ring. Returns (frames, bytes).
    pub(crate) fn receive(
        &mut self,
        batch: &mut [FrameDesc],
        f: &mut impl FnMut(&[u8]),
    ) -> io::Result<(usize, u64)> {
        self.refill_backlog();
        // SAFETY: the rx ring belongs to this UMEM; `batch` is scratch we own.
        let received = unsafe { self.rx.consume(batch) };
        let mut bytes = 0u64;
        for desc in &batch[..received] {
            // SAFETY: `desc` came out of this socket's rx ring, so it names a frame of this
            // UMEM that the kernel has finished writing and will not touch until we put it
            // back on the fill ring below; `f` only borrows it for the call.
            let data = unsafe { self.umem.data(desc) };
            bytes += data.len() as u64;
            f(&data);
        }
        if received > 0 {
            // SAFETY: the frames were received from this UMEM and `f` is done with them.
            let filled = unsafe { self.fill.produce(&batch[..received]) };
            if filled == 0 {
                self.fill_backlog.extend_from_slice(&batch[..received]);
            }
        }
        if self.need_wakeup && self.fill.needs_wakeup() {
            // The kernel ran dry of fill entries and sleeps until poked (rx wake-up).
            self.fill.wakeup(self.rx.fd_mut(), 0)?;
        }
        Ok((received, bytes))
    }

    fn refill_backlog(&mut self) {
        if self.fill_backlog.is_empty() {
            return;
        }
        // SAFETY: backlog frames are receive frames of this UMEM that nobody holds.
        let filled = unsafe { self.fill.produce(&self.fill_backlog) };
        if filled > 0 {
            self.fill_backlog.clear();
        }
    }

    /// Moves frames the kernel has finished sending back to the free list.
    pub(crate) fn reclaim_completed(&mut self, scratch: &mut [FrameDesc]) {
        loop {
            // SAFETY: completion entries are transmit frames of this UMEM, now ours again.
            let done = unsafe { self.completion.consume(scratch) };
            self.tx_free.extend_from_slice(&scratch[..done]);
            if done < scratch.len() {
                break;
            }
        }
    }

    /// Offers up to `batch.len()` transmit frames to `f` (see `Driver::transmit`) and puts
    /// the written ones on the tx ring. Returns (frames queued, bytes, frames refused for an
    /// impossible length).
    pub(crate) fn transmit(
        &mut self,
        batch: &mut [FrameDesc],
        f: &mut impl FnMut(&mut [u8]) -> usize,
    ) -> (usize, u64, u64) {
        let want = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        let ring_room = self.tx.nb_free(want) as usize;
        let budget = batch.len().min(ring_room).min(self.tx_free.len());
        let mut count = 0;
        let mut bytes = 0u64;
        let mut refused = 0u64;
        while count < budget {
            let Some(mut desc) = self.tx_free.pop() else {
                break;
            };
            let capacity = self.frame_capacity;
            let written = {
                // SAFETY: `desc` was on our free list: a frame of this UMEM that neither
                // the kernel nor any other reference is using.
                let mut data = unsafe { self.umem.data_mut(&mut desc) };
                data.cursor().set_pos(capacity);
                let written = f(data.contents_mut());
                data.cursor().set_pos(written.min(capacity));
                written
            };
            if written == 0 || written > capacity {
                refused += u64::from(written > capacity);
                self.tx_free.push(desc);
                break;
            }
            batch[count] = desc;
            bytes += written as u64;
            count += 1;
        }
        if count > 0 {
            // SAFETY: each descriptor names a frame of this UMEM that we just wrote and
            // nobody else holds; the ring has room for all of them (checked above).
            let queued = unsafe { self.tx.produce(&batch[..count]) };
            if queued == 0 {
                self.tx_free.extend_from_slice(&batch[..count]);
                return (0, 0, refused + count as u64);
            }
        }
        (count, bytes, refused)
    }

    /// Makes the kernel send what is on the tx ring, if it asked to be woken (or always,
    /// without need_wakeup). Returns true when the tx ring is empty afterwards.
    ///
    /// In copy mode the kernel sends from inside `sendto`, at most 32 frames per call
    /// (`TX_BATCH_SIZE` in net/xdp/xsk.c), so we kick until the ring is drained, a bounded
    /// number of times. In zero-copy mode the kick only schedules the driver, which sends
    /// on its own; one kick is enough and the ring empties later.
    pub(crate) fn kick_tx(&mut self) -> io::Result<bool> {
        const COPY_MODE_FRAMES_PER_KICK: u32 = 32;
        let kicks = match self.bind_mode {
            BindMode::ZeroCopy => 1,
            BindMode::Copy => self.ring_size / COPY_MODE_FRAMES_PER_KICK + 1,
        };
        for _ in 0..kicks {
            if self.tx.nb_free_exact() == self.ring_size {
                return Ok(true);
            }
            if self.need_wakeup && !self.tx.needs_wakeup() {
                break;
            }
            self.tx.wakeup()?;
        }
        Ok(self.tx.nb_free_exact() == self.ring_size)
    }
}

fn mode_name(bind_mode: BindMode) -> &'static str {
    match bind_mode {
        BindMode::ZeroCopy => "zero-copy bind",
        BindMode::Copy => "copy-mode bind",
    }
}
