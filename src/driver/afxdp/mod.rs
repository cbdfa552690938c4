//! The AF_XDP driver: our XDP program steers the reserved port range into AF_XDP sockets,
//! one per rx queue, and frames are read and written in place in their UMEM.
//!
//! - [`loader`]: loads, configures and attaches `ebpf/xdp_steer.c`, reads its counters.
//! - `queue`: one socket, its UMEM and its four rings.
//! - `sys`: the clock, poll(2) and the busy-poll socket options.
//!
//! Kernel reference: Documentation/networking/af_xdp.rst (rings, need_wakeup, bind modes).
//! Nothing on the receive/transmit path allocates: scratch descriptor arrays and free
//! lists are sized once, in [`AfXdpDriver::open`].

mod bpf;
mod features;
pub mod loader;
mod queue;
mod sys;
mod teardown;

pub(crate) use teardown::{Release, hand_off_unnoted, held_by_teardown};

#[cfg(test)]
mod tests;

use std::time::Duration;

use xsk_rs::FrameDesc;

use self::loader::{AttachMode, LoaderError, MAX_QUEUES, SteerConfig, SteerCounters, SteerProgram};
pub use self::queue::BindMode;
use self::queue::{QueueError, QueueSocket, SharedUmem, UmemLayout};
use super::{Driver, DriverError, DriverStats};
use crate::net::iface::Interface;
use crate::time::Instant;

/// Ethernet II header: two MACs and the EtherType.
const ETHERNET_HEADER_LEN: usize = 14;

/// How long a new run waits for the teardown child of the last one to leave its interface.
const TEARDOWN_WAIT_LIMIT: Duration = Duration::from_secs(1);

/// How long a run that waited for a teardown child waits for its program to leave.
const PROGRAM_GONE_WAIT_LIMIT: Duration = Duration::from_millis(100);

/// How long a bind retries a queue that is busy (EBUSY), for a socket of the last run to
/// be released by the kernel (from a worker, after a grace period: more than 1 s when the
/// machine is loaded).
const QUEUE_RELEASE_WAIT_LIMIT: Duration = Duration::from_secs(3);

/// Sizing and behaviour of the AF_XDP sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// UMEM frames per socket, a power of two: half receive, half transmit. Each ring is
    /// as large as its half. See [`AfXdpConfig::for_bandwidth_delay`].
    pub frame_count: u32,
    /// Bytes per UMEM frame, a power of two (4096: one page, room for a 3.5 KB MTU).
    pub frame_size: u32,
    /// Bind only this rx queue (`--queue`); `None` binds every rx queue of the interface.
    pub queue: Option<u32>,
    /// Try zero-copy before copy mode.
    pub zero_copy: bool,
    /// Ask for busy polling (SO_PREFER_BUSY_POLL and friends) where the kernel has it.
    pub busy_poll: bool,
    /// SO_BUSY_POLL: microseconds a blocking call may busy-poll.
    pub busy_poll_micros: u32,
    /// Frames per receive/transmit batch (and SO_BUSY_POLL_BUDGET).
    pub batch_size: u32,
    /// Close the sockets and detach the program in a forked child when the driver is
    /// dropped, so that the process can exit without waiting for the kernel's RCU grace
    /// periods (`teardown.rs`). Off for library use, where a caller expects the program
    /// gone when the drop returns.
    pub background_teardown: bool,
    /// A segment of the port range that finds no socket on its rx queue goes to the
    /// kernel instead of being dropped: for a hand-over from the raw driver, whose packet
    /// socket takes those segments until the sockets are in the XSKMAP and whose nftables
    /// guard keeps the kernel's TCP quiet (`driver::handover`). Off: dropped.
    pub pass_without_socket: bool,
}

impl Default for AfXdpConfig {
    fn default() -> Self {
        AfXdpConfig {
            frame_count: 4096,
            // Holds a 1500-byte-MTU frame after the kernel's 256-byte XDP headroom; see
            // `frame_size_for_mtu` for other MTUs.
            frame_size: 2048,
            queue: None,
            zero_copy: true,
            busy_poll: true,
            busy_poll_micros: 20,
            batch_size: 64,
            background_teardown: false,
            pass_without_socket: false,
        }
    }
}

impl AfXdpConfig {
    /// Sizes the UMEM for a path of `bits_per_second` and round-trip time `rtt`: enough
    /// receive frames to hold two bandwidth-delay products of full-size segments (the
    /// window plus what arrives while we process a batch), rounded up to a power of two and
    /// kept between 512 and 262144 frames in all.
    pub fn for_bandwidth_delay(bits_per_second: u64, rtt: Duration) -> AfXdpConfig {
        const SEGMENT_BYTES: u128 = 1448; // a typical MSS; smaller segments need more frames
        let bdp_bytes = u128::from(bits_per_second) * rtt.as_micros() / 8 / 1_000_000;
        let receive_frames = (2 * bdp_bytes).div_ceil(SEGMENT_BYTES);
        let total = u32::try_from(receive_frames.saturating_mul(2))
            .unwrap_or(u32::MAX)
            .clamp(512, 262_144)
            .next_power_of_two();
        AfXdpConfig {
            frame_count: total,
            ..AfXdpConfig::default()
        }
    }

    /// The default sizing for `connections` open at once: 2048 receive frames (~3 MB of
    /// full-size segments) per connection, up to four connections (16384 frames in all,
    /// 32 MiB of UMEM with 2 KiB frames).
    ///
    /// Why per connection: on a link where the sender's stack runs inside our transmit
    /// kick (veth: our ACK reaches the server's TCP in the same system call, and it sends
    /// its next burst at once), every connection's burst lands in the receive ring while
    /// the kick still runs and nothing drains it. Measured on the testbed (`-x 4`, 1 GiB):
    /// 4096 frames in all lost 197–8,589 frames a run to an empty fill ring, 16384 none. The
    /// cap keeps the UMEM, which the kernel pins and counts as our anonymous memory, at
    /// 32 MiB for any `-x`.
    pub fn for_connections(connections: usize) -> AfXdpConfig {
        const PER_CONNECTION: u32 = 4096;
        let connections = u32::try_from(connections.clamp(1, 4)).unwrap_or(4);
        AfXdpConfig {
            frame_count: (PER_CONNECTION * connections).next_power_of_two(),
            ..AfXdpConfig::default()
        }
    }

    /// The smallest UMEM frame size that holds a frame of an interface with this `mtu`
    /// (Ethernet header and the kernel's XDP headroom included): 2048 up to MTU 1778.
    /// Half the old fixed 4096 halves the UMEM, which the kernel pins and zeroes at start.
    pub fn frame_size_for_mtu(mtu: u32) -> u32 {
        const XDP_PACKET_HEADROOM: u32 = 256;
        (mtu.saturating_add(ETHERNET_HEADER_LEN as u32 + XDP_PACKET_HEADROOM))
            .clamp(2048, 65536)
            .next_power_of_two()
    }

    fn validate(&self) -> Result<(), AfXdpError> {
        let power_of_two = |n: u32| n >= 2 && n.is_power_of_two();
        if !power_of_two(self.frame_count) || self.frame_count < 64 {
            return Err(AfXdpError::Config(format!(
                "the UMEM frame count must be a power of two of at least 64, not {}",
                self.frame_count
            )));
        }
        if !power_of_two(self.frame_size) || !(2048..=65536).contains(&self.frame_size) {
            return Err(AfXdpError::Config(format!(
                "the UMEM frame size must be a power of two from 2048 to 65536, not {}",
                self.frame_size
            )));
        }
        if self.batch_size == 0 || self.batch_size > self.frame_count / 2 {
            return Err(AfXdpError::Config(format!(
                "the batch size must be between 1 and half the frame count, not {}",
                self.batch_size
            )));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AfXdpError {
    #[error(transparent)]
    Loader(#[from] LoaderError),
    #[error("{0}")]
    Socket(String),
    #[error("{0}")]
    Config(String),
    #[error("interface {interface} has {available} rx queue(s); there is no queue {queue}")]
    NoSuchQueue {
        interface: String,
        queue: u32,
        available: u32,
    },
}

/// AF_XDP sockets on one interface, with our XDP program steering into them.
pub struct AfXdpDriver {
    // Field order is drop order: sockets close before the program detaches.
    queues: Vec<QueueSocket>,
    program: SteerProgram,
    /// Scratch descriptors for one batch (receive, transmit, completion).
    batch: Vec<FrameDesc>,
    /// Scratch pollfds, one per socket.
    pollfds: Vec<libc::pollfd>,
    /// The queue to look at first on the next receive (round robin across queues).
    next_rx_queue: usize,
    tx_pending: bool,
    max_frame_len: usize,
    stats: DriverStats,
    notes: Vec<String>,
    /// How long each step of [`AfXdpDriver::open`] took (`--stats`).
    setup: Vec<(&'static str, Duration)>,
    interface_index: u32,
    background_teardown: bool,
    /// Set by `drop` when a child took over the teardown; dropped last, after the sockets
    /// and the link above, so that the child's closes are the final ones.
    release: Option<teardown::Release>,
}

impl Drop for AfXdpDriver {
    fn drop(&mut self) {
        if !self.background_teardown {
            return;
        }
        let mut keep = vec![self.program.link_fd()];
        keep.extend(self.queues.iter().map(QueueSocket::raw_fd));
        self.release = teardown::hand_off(&keep, self.interface_index);
    }
}

impl std::fmt::Debug for AfXdpDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfXdpDriver")
            .field("program", &self.program)
            .field("queues", &self.queues.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl AfXdpDriver {
    /// Attaches the steering program to `interface` and opens one socket per rx queue (or
    /// the one `config.queue` names). Notices (generic XDP, no busy polling) are printed
    /// as one line each on stderr and kept in [`AfXdpDriver::notes`].
    pub fn open(
        interface: &Interface,
        steer: &SteerConfig,
        config: &AfXdpConfig,
    ) -> Result<AfXdpDriver, AfXdpError> {
        config.validate()?;
        let mut clock = StepClock::start();
        // A teardown child of a run that just ended may still hold the interface: its
        // program, or (after the program is gone) a socket bound to a queue we need.
        let refreshed;
        let waited = teardown::wait_for_others(interface.index, TEARDOWN_WAIT_LIMIT);
        // The caller read the interface before that check: a child that finished in
        // between left a program id behind that is gone by now.
        let interface = if waited || interface.xdp_prog_id.is_some() {
            // The child's link may outlive it for a moment (the detach finishes, or a copy
            // of the descriptor held by a process forked meanwhile closes): read the
            // interface again until the program is gone, briefly.
            let started = std::time::Instant::now();
            loop {
                let fresh = Interface::by_name(&interface.name)
                    .map_err(|error| AfXdpError::Socket(error.to_string()))?;
                if !waited
                    || fresh.xdp_prog_id.is_none()
                    || started.elapsed() >= PROGRAM_GONE_WAIT_LIMIT
                {
                    break refreshed = fresh;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            clock.lap(if waited {
                "wait for the last run's teardown"
            } else {
                "interface read again"
            });
            &refreshed
        } else {
            interface
        };
        // Without channel information, queue 0 is the only one we know exists.
        let rx_queues = sys::rx_queue_count(&interface.name).unwrap_or(1);
        let queue_ids: Vec<u32> = match config.queue {
            Some(queue) if queue >= rx_queues => {
                return Err(AfXdpError::NoSuchQueue {
                    interface: interface.name.clone(),
                    queue,
                    available: rx_queues,
                });
            }
            Some(queue) => vec![queue],
            None => (0..rx_queues.min(MAX_QUEUES)).collect(),
        };
        clock.lap("rx queue count");

        // Zero-copy needs the program in the driver and a driver that has it: without both
        // the bind fails after the UMEM is made, and the copy-mode bind makes it again.
        let zero_copy_possible = config.zero_copy
            && features::zero_copy(interface.index) != features::ZeroCopy::Unsupported;
        clock.lap("zero-copy support query");
        let layout = UmemLayout::new(config.frame_count, queue_ids.len() as u32);
        let open_sockets = |attempts: &[(BindMode, bool)]| {
            open_sockets(interface, &queue_ids, layout, config.frame_size, attempts)
        };
        let (program, queues) = if zero_copy_possible {
            // Rare (a NIC with zero-copy AF_XDP): whether to try it depends on where the
            // program runs, so attach first.
            let mut unattached = SteerProgram::load(interface, steer)?;
            if config.pass_without_socket {
                unattached.pass_without_socket(steer)?;
            }
            let program = unattached.attach()?;
            clock.skip(program.timings());
            let attempts = if program.mode() == AttachMode::Native {
                BIND_ZERO_COPY_FIRST
            } else {
                BIND_COPY
            };
            let queues = open_sockets(attempts).map_err(|e| AfXdpError::Socket(e.reason))?;
            clock.lap("AF_XDP sockets and UMEM");
            (program, queues)
        } else {
            // Copy mode either way. The native attach holds the RTNL lock through an RCU
            // grace period (bpf_dispatcher_update) and a bind needs that lock, so the
            // attach goes first, here, and a second thread makes the UMEM (whose pages the
            // kernel zeroes and pins) meanwhile, then binds once the lock is free. That way
            // round: this thread allocates nothing while the other one's populating mmap
            // holds the address-space lock.
            let mut unattached = SteerProgram::load(interface, steer)?;
            if config.pass_without_socket {
                unattached.pass_without_socket(steer)?;
            }
            clock.lap("XDP program load");
            std::thread::scope(|scope| {
                let sockets = std::thread::Builder::new()
                    .name("xdpget-umem".into())
                    .spawn_scoped(scope, || open_sockets(BIND_COPY));
                let program = unattached.attach();
                clock.lap("XDP program attach, beside the UMEM");
                let queues = match sockets {
                    Ok(handle) => handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    // No thread to be had: one after the other.
                    Err(_) => open_sockets(BIND_COPY),
                };
                clock.lap("AF_XDP sockets and UMEM (rest)");
                let queues = queues.map_err(|e| AfXdpError::Socket(e.reason))?;
                Ok::<_, AfXdpError>((program?, queues))
            })?
        };
        let mut program = program;
        let mut notes = Vec::new();
        if program.mode() == AttachMode::Generic {
            notes.push(format!(
                "{}: XDP runs in generic (SKB) mode",
                interface.name
            ));
        }
        for socket in &queues {
            program.set_socket(socket.queue_id, socket.raw_fd())?;
            let busy_poll = config.busy_poll.then(|| {
                sys::enable_busy_poll(socket.raw_fd(), config.busy_poll_micros, config.batch_size)
            });
            if let Some(Err((option, error))) = busy_poll {
                let note = format!("busy polling is off: the kernel refused {option} ({error})");
                eprintln!("xdpget: {note}");
                notes.push(note);
            }
        }
        clock.lap("XSKMAP entries and busy-poll options");
        let frame_capacity = queues.first().map_or(0, |q| q.frame_capacity);
        let max_frame_len = frame_capacity.min(interface.mtu as usize + ETHERNET_HEADER_LEN);
        let pollfds = queues.iter().map(|q| sys::pollfd(q.raw_fd())).collect();
        Ok(AfXdpDriver {
            queues,
            program,
            batch: vec![FrameDesc::default(); config.batch_size as usize],
            pollfds,
            next_rx_queue: 0,
            tx_pending: false,
            max_frame_len,
            stats: DriverStats::default(),
            notes,
            setup: clock.steps,
            interface_index: interface.index,
            background_teardown: config.background_teardown,
            release: None,
        })
    }

    /// How long each step of opening took, in order (steps of several queues add up).
    pub fn setup_steps(&self) -> &[(&'static str, Duration)] {
        &self.setup
    }

    /// Where the XDP program runs.
    pub fn attach_mode(&self) -> AttachMode {
        self.program.mode()
    }

    /// Frames received so far on each socket, by rx queue: which queues the flows landed
    /// on (`--stats`).
    pub fn frames_by_queue(&self) -> Vec<(u32, u64)> {
        self.queues
            .iter()
            .map(|q| (q.queue_id, q.received))
            .collect()
    }

    /// How each socket is bound, by rx queue.
    pub fn bind_modes(&self) -> Vec<(u32, BindMode)> {
        self.queues
            .iter()
            .map(|q| (q.queue_id, q.bind_mode))
            .collect()
    }

    /// The XDP program's counters (`--stats`).
    pub fn steer_counters(&self) -> Result<SteerCounters, LoaderError> {
        self.program.counters()
    }

    /// One-line notices about degraded modes, already printed on stderr.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

/// Bind attempts, best first: (mode, need_wakeup).
const BIND_ZERO_COPY_FIRST: &[(BindMode, bool)] = &[
    (BindMode::ZeroCopy, true),
    (BindMode::Copy, true),
    (BindMode::Copy, false),
];
const BIND_COPY: &[(BindMode, bool)] = &[(BindMode::Copy, true), (BindMode::Copy, false)];

/// Makes the shared UMEM and binds a socket on each of `queue_ids`, trying `attempts` in
/// order; each attempt starts from a new UMEM (a failed bind leaves the first socket's
/// rings set up).
fn open_sockets(
    interface: &Interface,
    queue_ids: &[u32],
    layout: UmemLayout,
    frame_size: u32,
    attempts: &[(BindMode, bool)],
) -> Result<Vec<QueueSocket>, QueueError> {
    let mut last_error = QueueError {
        reason: "no bind mode to try".into(),
        errno: None,
    };
    let started = std::time::Instant::now();
    for &(bind_mode, need_wakeup) in attempts {
        loop {
            let bound = SharedUmem::new(layout, frame_size)
                .and_then(|umem| umem.bind(&interface.name, queue_ids, bind_mode, need_wakeup));
            match bound {
                Ok(sockets) => return Ok(sockets),
                // A socket of a run that just ended releases its queue from a kernel
                // worker shortly after its last descriptor closed (xp_release_deferred).
                Err(error)
                    if error.errno == Some(libc::EBUSY)
                        && started.elapsed() < QUEUE_RELEASE_WAIT_LIMIT =>
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(error) => {
                    last_error = error;
                    break;
                }
            }
        }
    }
    Err(last_error)
}

/// Times the steps of [`AfXdpDriver::open`]; a step that runs once per queue adds up.
struct StepClock {
    steps: Vec<(&'static str, Duration)>,
    mark: std::time::Instant,
}

impl StepClock {
    fn start() -> StepClock {
        StepClock {
            steps: Vec::new(),
            mark: std::time::Instant::now(),
        }
    }

    /// Ends step `name` now.
    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        let took = now - self.mark;
        self.mark = now;
        match self.steps.iter_mut().find(|(step, _)| *step == name) {
            Some((_, total)) => *total += took,
            None => self.steps.push((name, took)),
        }
    }

    /// Takes steps timed elsewhere, which together ran from the last mark to now.
    fn skip(&mut self, timed: &[(&'static str, Duration)]) {
        self.steps.extend_from_slice(timed);
        self.mark = std::time::Instant::now();
    }
}

fn io_error(context: &'static str) -> impl Fn(std::io::Error) -> DriverError {
    move |source| DriverError::Io { context, source }
}

impl Driver for AfXdpDriver {
    fn now(&self) -> Instant {
        sys::monotonic_now()
    }

    fn receive<F: FnMut(&[u8])>(&mut self, max: usize, mut f: F) -> Result<usize, DriverError> {
        let queue_count = self.queues.len();
        let mut total = 0;
        for step in 0..queue_count {
            let remaining = max - total;
            if remaining == 0 {
                break;
            }
            let index = (self.next_rx_queue + step) % queue_count;
            let batch_len = remaining.min(self.batch.len());
            let (frames, bytes) = self.queues[index]
                .receive(&mut self.batch[..batch_len], &mut f)
                .map_err(io_error("AF_XDP rx wake-up"))?;
            total += frames;
            self.stats.rx_frames += frames as u64;
            self.stats.rx_bytes += bytes;
        }
        if queue_count > 0 {
            self.next_rx_queue = (self.next_rx_queue + 1) % queue_count;
        }
        Ok(total)
    }

    fn transmit<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        mut f: F,
    ) -> Result<usize, DriverError> {
        // Transmit always leaves through the first socket: one flow, one tx ring.
        let Some(queue) = self.queues.first_mut() else {
            return Ok(0);
        };
        queue.reclaim_completed(&mut self.batch);
        let batch_len = max.min(self.batch.len());
        let (frames, bytes, refused) = queue.transmit(&mut self.batch[..batch_len], &mut f);
        self.stats.tx_frames += frames as u64;
        self.stats.tx_bytes += bytes;
        self.stats.tx_dropped += refused;
        self.tx_pending |= frames > 0;
        Ok(frames)
    }

    fn flush(&mut self) -> Result<(), DriverError> {
        if !self.tx_pending {
            return Ok(());
        }
        if let Some(queue) = self.queues.first_mut() {
            let drained = queue.kick_tx().map_err(io_error("AF_XDP tx wake-up"))?;
            // Frames still on the ring get another kick at the next flush or wait.
            self.tx_pending = !drained;
        }
        Ok(())
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DriverError> {
        self.stats.idle_waits += 1;
        self.flush()?;
        let timeout_ms = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(self.now());
                // Round up so that we never wake before the deadline and spin.
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        sys::poll_readable(&mut self.pollfds, timeout_ms)
            .map_err(io_error("poll on AF_XDP sockets"))?;
        Ok(())
    }

    fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Our counters plus the drops the kernel counted on each socket (one getsockopt per
    /// socket: for reports, not for the hot loop).
    fn stats(&self) -> DriverStats {
        let mut stats = self.stats;
        for queue in &self.queues {
            let (rx_dropped, tx_dropped, fill_ring_empty) = queue.kernel_counters();
            stats.rx_dropped += rx_dropped;
            stats.tx_dropped += tx_dropped;
            stats.fill_ring_empty += fill_ring_empty;
        }
        stats
    }
}
