//! The AF_XDP sockets of one run: one per rx queue, all sharing one UMEM
//! (`XDP_SHARED_UMEM`, kernel doc networking/af_xdp.rst), each with its own fill and
//! completion ring.
//!
//! Frame ownership (af_xdp.rst, "Rings"): every UMEM frame is at any moment in exactly one
//! place. The UMEM is cut into a transmit part and one receive part per socket
//! ([`UmemLayout`]). A socket's receive frames cycle through its own fill ring → rx ring →
//! (engine reads in place) → its fill ring again, so a queue never takes frames from
//! another; the transmit frames cycle free list → tx ring → completion ring → free list,
//! on the first socket only (one flow, one tx ring). Each ring is as large as the frames
//! that cycle through it, so a ring never refuses a frame that came out of its partner.
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
    /// The errno the kernel returned, when there was one (EBUSY: the queue is taken).
    pub errno: Option<i32>,
}

impl QueueError {
    fn new(reason: String) -> QueueError {
        QueueError {
            reason,
            errno: None,
        }
    }
}

/// How the one UMEM is shared out: `tx_frames` for transmit (tx and completion rings of
/// the first socket), then `rx_frames_per_queue` for each socket's fill and rx rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UmemLayout {
    pub tx_frames: u32,
    pub rx_frames_per_queue: u32,
    pub queues: u32,
}

impl UmemLayout {
    /// Least receive frames a queue gets when several share the UMEM: a queue that
    /// carries a whole download still holds ~740 KB in its rings.
    const MIN_RX_FRAMES_PER_QUEUE: u32 = 512;

    /// Half of `frame_count` (a power of two) transmits; the other half receives, split
    /// evenly over `queues` sockets but never below [`Self::MIN_RX_FRAMES_PER_QUEUE`] (or
    /// the whole half, when that is smaller). One queue gets exactly the old layout; more
    /// queues grow the UMEM by at most 512 frames (1 MiB) each.
    pub(crate) fn new(frame_count: u32, queues: u32) -> UmemLayout {
        let queues = queues.max(1);
        let half = frame_count / 2;
        let floor = Self::MIN_RX_FRAMES_PER_QUEUE.min(half);
        // a power of two: ring sizes must be
        let even_share = (half / queues).max(1);
        let share = if even_share.is_power_of_two() {
            even_share
        } else {
            even_share.next_power_of_two() / 2
        };
        UmemLayout {
            tx_frames: half,
            rx_frames_per_queue: share.max(floor),
            queues,
        }
    }

    pub(crate) fn total_frames(&self) -> u32 {
        self.tx_frames + self.rx_frames_per_queue * self.queues
    }
}

/// The UMEM and the frames nobody holds yet, before any socket is bound.
pub(crate) struct SharedUmem {
    umem: Umem,
    /// Transmit frames first, then the receive frames of each queue in turn.
    frames: Vec<FrameDesc>,
    layout: UmemLayout,
    /// Largest frame a UMEM frame holds (frame size minus the XDP headroom).
    frame_capacity: usize,
}

impl SharedUmem {
    /// Maps and registers the UMEM (the kernel pins its pages: the costly part of the
    /// set-up, which is why `AfXdpDriver::open` does it beside the XDP attach).
    pub(crate) fn new(layout: UmemLayout, frame_size: u32) -> Result<SharedUmem, QueueError> {
        let error = |what: &str| {
            let what = what.to_string();
            move |source: &dyn std::fmt::Display| {
                QueueError::new(format!("AF_XDP {what}: {source}"))
            }
        };
        let umem_config = UmemConfig::builder()
            .frame_size(FrameSize::new(frame_size).map_err(|e| error("frame size")(&e))?)
            // every socket's fill ring holds its receive frames; the completion ring (of
            // the first socket only in use) holds the transmit frames
            .fill_queue_size(
                QueueSize::new(layout.rx_frames_per_queue)
                    .map_err(|e| error("fill ring size")(&e))?,
            )
            .comp_queue_size(
                QueueSize::new(layout.tx_frames).map_err(|e| error("completion ring size")(&e))?,
            )
            .build()
            .map_err(|e| error("UMEM config")(&e))?;
        let frame_capacity = umem_config.mtu() as usize;
        let frames = NonZeroU32::new(layout.total_frames())
            .ok_or_else(|| QueueError::new("the UMEM needs at least one frame".into()))?;
        let (umem, frames) =
            Umem::new(umem_config, frames, false).map_err(|e| error("UMEM")(&e))?;
        Ok(SharedUmem {
            umem,
            frames,
            layout,
            frame_capacity,
        })
    }

    /// Binds one socket per queue of `queue_ids` (as many as the layout has room for), the
    /// first one holding the transmit frames.
    ///
    /// # Safety of the shared binds
    /// Every socket has `XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD` set, which xsk-rs requires when
    /// a UMEM is shared; each `(interface, queue)` pair is bound once.
    pub(crate) fn bind(
        mut self,
        interface: &str,
        queue_ids: &[u32],
        bind_mode: BindMode,
        need_wakeup: bool,
    ) -> Result<Vec<QueueSocket>, QueueError> {
        let layout = self.layout;
        if queue_ids.len() > layout.queues as usize {
            return Err(QueueError::new(format!(
                "the UMEM has room for {} queue(s), not {}",
                layout.queues,
                queue_ids.len()
            )));
        }
        let name = CString::new(interface)
            .map_err(|e| QueueError::new(format!("AF_XDP interface name {interface:?}: {e}")))?;
        let mut receive = self.frames.split_off(layout.tx_frames as usize);
        let mut transmit = Some(std::mem::take(&mut self.frames));
        let mut sockets = Vec::with_capacity(queue_ids.len());
        for &queue_id in queue_ids {
            let rest = receive.split_off(layout.rx_frames_per_queue as usize);
            let own = std::mem::replace(&mut receive, rest);
            let socket = QueueSocket::bind(
                &self.umem,
                &name,
                interface,
                queue_id,
                QueueFrames {
                    receive: own,
                    transmit: transmit.take().unwrap_or_default(),
                    tx_ring: layout.tx_frames,
                },
                self.frame_capacity,
                bind_mode,
                need_wakeup,
            )?;
            sockets.push(socket);
        }
        Ok(sockets)
    }
}

/// The frames one socket starts with, and the size of its tx ring.
struct QueueFrames {
    receive: Vec<FrameDesc>,
    transmit: Vec<FrameDesc>,
    tx_ring: u32,
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
    /// Transmit frames that are ours to write (empty but on the first socket).
    tx_free: Vec<FrameDesc>,
    /// Receive frames the fill ring did not take yet (never happens with rings sized to
    /// their frames, kept so that no frame can be lost if it does).
    fill_backlog: Vec<FrameDesc>,
    /// Largest frame a UMEM frame holds (frame size minus the XDP headroom).
    pub frame_capacity: usize,
    /// Entries in the tx ring.
    tx_ring_size: u32,
    /// Frames this socket received, for `--stats` (which queues the flows landed on).
    pub received: u64,
}

impl QueueSocket {
    #[allow(clippy::too_many_arguments)]
    fn bind(
        umem: &Umem,
        name: &CString,
        interface: &str,
        queue_id: u32,
        frames: QueueFrames,
        frame_capacity: usize,
        bind_mode: BindMode,
        need_wakeup: bool,
    ) -> Result<QueueSocket, QueueError> {
        let error = |what: &str, source: &dyn std::fmt::Display| {
            QueueError::new(format!(
                "AF_XDP {what} on {interface} queue {queue_id}: {source}"
            ))
        };
        let QueueFrames {
            receive,
            transmit,
            tx_ring,
        } = frames;
        let rx_ring = u32::try_from(receive.len()).unwrap_or(u32::MAX);
        let rx_size = QueueSize::new(rx_ring).map_err(|e| error("rx ring size", &e))?;
        let tx_size = QueueSize::new(tx_ring).map_err(|e| error("tx ring size", &e))?;
        let mut bind_flags = match bind_mode {
            BindMode::ZeroCopy => BindFlags::XDP_ZEROCOPY,
            BindMode::Copy => BindFlags::XDP_COPY,
        };
        if need_wakeup {
            bind_flags |= BindFlags::XDP_USE_NEED_WAKEUP;
        }
        let socket_config = SocketConfig::builder()
            .rx_queue_size(rx_size)
            .tx_queue_size(tx_size)
            // Our own program (loader.rs) steers; libxdp must not load its default one.
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind_flags)
            .build();
        // SAFETY: the inhibit flag is set, which xsk-rs requires for a shared UMEM, and
        // `SharedUmem::bind` binds each (interface, queue) pair once, so the fill and
        // completion rings come back (a new pair for every queue).
        let (tx, rx, rings) = unsafe {
            Socket::new(
                socket_config,
                umem,
                &XskInterface::new(name.clone()),
                queue_id,
            )
        }
        .map_err(|e| {
            use std::error::Error as _;
            let source = e.source().and_then(|s| s.downcast_ref::<io::Error>());
            let mut error = match source {
                Some(cause) => error(mode_name(bind_mode), &format_args!("{e} ({cause})")),
                None => error(mode_name(bind_mode), &e),
            };
            error.errno = source.and_then(io::Error::raw_os_error);
            error
        })?;
        let (mut fill, completion) = rings.ok_or_else(|| {
            QueueError::new(format!(
                "AF_XDP on {interface} queue {queue_id}: no fill/completion ring"
            ))
        })?;
        // SAFETY: these descriptors are this socket's share of the UMEM and owned by nobody
        // yet; handing them to its fill ring gives them to the kernel until they come back
        // through its rx ring.
        let filled = unsafe { fill.produce(&receive) };
        let mut fill_backlog = Vec::with_capacity(receive.len());
        if filled == 0 {
            fill_backlog.extend_from_slice(&receive);
        }
        Ok(QueueSocket {
            queue_id,
            bind_mode,
            need_wakeup,
            rx,
            tx,
            fill,
            completion,
            umem: umem.clone(),
            tx_free: transmit,
            fill_backlog,
            frame_capacity,
            tx_ring_size: tx_ring,
            received: 0,
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
        self.received += received as u64;
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
            BindMode::Copy => self.tx_ring_size / COPY_MODE_FRAMES_PER_KICK + 1,
        };
        for _ in 0..kicks {
            if self.tx.nb_free_exact() == self.tx_ring_size {
                return Ok(true);
            }
            if self.need_wakeup && !self.tx.needs_wakeup() {
                break;
            }
            self.tx.wakeup()?;
        }
        Ok(self.tx.nb_free_exact() == self.tx_ring_size)
    }
}

fn mode_name(bind_mode: BindMode) -> &'static str {
    match bind_mode {
        BindMode::ZeroCopy => "zero-copy bind",
        BindMode::Copy => "copy-mode bind",
    }
}
