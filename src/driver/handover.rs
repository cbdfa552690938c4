//! `handover` — the default driver: start on the raw socket at once, move to AF_XDP once
//! the download has shown it is worth it.
//!
//! Setting AF_XDP up costs kernel waits that no user-space trick removes: the native XDP
//! attach waits for an RCU grace period under the RTNL lock, the UMEM is zeroed and pinned,
//! and closing the sockets and the link waits for grace periods again (docs/design.md,
//! "AF_XDP start-up, teardown and queues"). A raw packet socket without a ring
//! (`raw::RawConfig::without_ring`) and the owned nftables guard are ready in well under a
//! millisecond. So a download starts there, and only when the raw socket has received
//! [`Policy::start_after_bytes`] (8 MiB: a download that size or larger) does a background
//! thread set AF_XDP up. A small download never pays for AF_XDP at all.
//!
//! The hand-over, frame by frame:
//! 1. The XDP program is attached with `pass_without_socket`: until our AF_XDP sockets are
//!    in its XSKMAP, a segment of our port range goes on to the kernel, where the packet
//!    socket still takes it (and the nftables guard keeps the kernel's TCP from answering).
//!    Nothing is dropped while the set-up runs.
//! 2. Once the sockets are in the XSKMAP, new segments land in AF_XDP. The packet socket
//!    may still hold a few queued before that: both are drained in every receive for
//!    [`Policy::raw_drain`] after the switch (the engine's TCP reorders whatever
//!    interleaves), then the packet socket is no longer read.
//! 3. Transmit goes through AF_XDP from the switch on.
//!
//! The decisions live in [`HandOver`], which does no I/O (unit-tested below); the driver
//! around it moves frames and threads.
//!
//! Exit: if the download ends while the set-up thread runs (a download just over the
//! threshold), dropping the driver waits for the thread (at most the set-up's own time)
//! so that the program and sockets it made go to the AF_XDP driver's teardown child with
//! everything else, instead of being closed by the process's exit. `kill -9` at any point
//! leaves nothing behind: the bpf_link, the sockets and the owned nftables table all die
//! with the process's descriptors, and the thread's own descriptors are the process's.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::afxdp::{AfXdpDriver, AfXdpError};
use super::raw::RawDriver;
use super::{Driver, DriverError, DriverStats};
use crate::time::Instant;

/// When to start the AF_XDP set-up and how long to keep reading the packet socket after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Start the AF_XDP set-up once the raw socket has received this many bytes.
    pub start_after_bytes: u64,
    /// After the switch, keep reading the packet socket for this long (frames queued on it
    /// before the XSKMAP entry took effect).
    pub raw_drain: Duration,
}

impl Default for Policy {
    /// 8 MiB, then 50 ms of draining. At the testbed's 0.7-1 GB/s the raw socket carries
    /// 8 MiB in ~10 ms and the set-up takes 20-30 ms, so a 1 GiB download spends its first
    /// ~40 MiB on the raw socket; a download under 8 MiB never attaches anything.
    fn default() -> Self {
        Policy {
            start_after_bytes: 8 << 20,
            raw_drain: Duration::from_millis(50),
        }
    }
}

/// Where the hand-over stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Raw socket only; AF_XDP not started.
    Raw,
    /// Raw socket; the AF_XDP set-up runs in the background.
    Preparing,
    /// AF_XDP carries the connection; the packet socket is still drained until `until`.
    Draining { until: Instant },
    /// AF_XDP only.
    AfXdp,
    /// The AF_XDP set-up failed: raw socket to the end.
    RawOnly,
}

/// The hand-over's decisions, without I/O: fed the raw socket's byte count, the clock and
/// the set-up's outcome, it says when to start the set-up and which sockets to read.
#[derive(Clone, Debug)]
pub struct HandOver {
    policy: Policy,
    phase: Phase,
}

impl HandOver {
    pub fn new(policy: Policy) -> HandOver {
        HandOver {
            policy,
            phase: Phase::Raw,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Called after each receive with the raw socket's bytes so far: true exactly once,
    /// when the set-up should start (the phase becomes `Preparing`).
    pub fn should_prepare(&mut self, raw_bytes: u64) -> bool {
        if self.phase == Phase::Raw && raw_bytes >= self.policy.start_after_bytes {
            self.phase = Phase::Preparing;
            return true;
        }
        false
    }

    /// The set-up finished and the sockets are in the XSKMAP: AF_XDP from now on.
    pub fn ready(&mut self, now: Instant) {
        if self.phase == Phase::Preparing {
            self.phase = Phase::Draining {
                until: now + self.policy.raw_drain,
            };
        }
    }

    /// The set-up failed (or could not start): the raw socket carries the rest.
    pub fn failed(&mut self) {
        if self.phase == Phase::Preparing {
            self.phase = Phase::RawOnly;
        }
    }

    /// There will be no set-up (its thread could not be made): the raw socket only.
    pub fn never(&mut self) {
        if self.phase == Phase::Raw {
            self.phase = Phase::RawOnly;
        }
    }

    /// Whether to read the packet socket now; ends the drain once its time is up. The
    /// clock is read only while draining.
    pub fn read_raw(&mut self, now: impl FnOnce() -> Instant) -> bool {
        match self.phase {
            Phase::Raw | Phase::Preparing | Phase::RawOnly => true,
            Phase::Draining { until } if now() < until => true,
            Phase::Draining { .. } => {
                self.phase = Phase::AfXdp;
                false
            }
            Phase::AfXdp => false,
        }
    }

    /// Whether AF_XDP carries the connection (receive from it, transmit through it).
    pub fn on_afxdp(&self) -> bool {
        matches!(self.phase, Phase::Draining { .. } | Phase::AfXdp)
    }

    /// How long a wait may block: while the set-up runs or the packet socket is drained,
    /// at most `step`, so that the switch (or a frame on the other socket) is seen soon.
    pub fn wait_limit(&self, step: Duration) -> Option<Duration> {
        match self.phase {
            Phase::Preparing | Phase::Draining { .. } => Some(step),
            Phase::Raw | Phase::AfXdp | Phase::RawOnly => None,
        }
    }
}

/// Opens the AF_XDP driver, on the set-up thread.
pub type Prepare = Box<dyn FnOnce() -> Result<AfXdpDriver, AfXdpError> + Send>;

/// What the hand-over did, for `--stats`, in milliseconds since the driver opened.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HandOverReport {
    /// When the set-up started, and the raw bytes received by then.
    pub started: Option<(Duration, u64)>,
    /// When AF_XDP took over.
    pub switched: Option<Duration>,
    /// Why the set-up failed, if it did.
    pub failure: Option<String>,
    /// The set-up's own steps (AfXdpDriver::setup_steps).
    pub steps: Vec<(&'static str, Duration)>,
}

/// The driver: see the module documentation.
pub struct HandOverDriver {
    // Field order is drop order: AF_XDP (its teardown child) before the packet socket.
    afxdp: Option<Box<AfXdpDriver>>,
    /// The set-up thread, parked until `go` says start, or running.
    pending: Option<JoinHandle<Option<Result<AfXdpDriver, AfXdpError>>>>,
    /// Starts the set-up (a send); dropping it unparks the thread to exit.
    go: Option<mpsc::Sender<()>>,
    raw: RawDriver,
    state: HandOver,
    opened: Instant,
    report: HandOverReport,
}

/// How long a wait blocks at most while the set-up runs or the packet socket is drained.
const WAIT_STEP: Duration = Duration::from_millis(1);

impl HandOverDriver {
    /// Starts on `raw`; `prepare` opens AF_XDP (with `pass_without_socket`) when `policy`
    /// says so.
    ///
    /// The set-up thread is made here, parked: the caller drops its capabilities once the
    /// network is open (`cli::privileges`), and capabilities belong to threads, so a
    /// thread started at the hand-over would have none left to attach a program with.
    /// This one keeps them while it waits and while it sets AF_XDP up, and they end with
    /// it: it exits when the set-up returns, or at once when the driver is dropped
    /// without a hand-over.
    pub fn new(raw: RawDriver, prepare: Prepare, policy: Policy) -> HandOverDriver {
        let opened = raw.now();
        let (go, parked) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("xdpget-afxdp".into())
            .spawn(move || {
                parked.recv().ok()?;
                leave_the_engine_core();
                Some(prepare())
            });
        let mut report = HandOverReport::default();
        let mut state = HandOver::new(policy);
        let pending = match thread {
            Ok(handle) => Some(handle),
            Err(error) => {
                report.failure = Some(format!("cannot start the set-up thread: {error}"));
                state.never();
                None
            }
        };
        HandOverDriver {
            afxdp: None,
            pending,
            go: Some(go),
            raw,
            state,
            opened,
            report,
        }
    }

    pub fn phase(&self) -> Phase {
        self.state.phase()
    }

    pub fn report(&self) -> &HandOverReport {
        &self.report
    }

    /// The AF_XDP driver, once it took over.
    pub fn afxdp(&self) -> Option<&AfXdpDriver> {
        self.afxdp.as_deref()
    }

    pub fn raw(&self) -> &RawDriver {
        &self.raw
    }

    fn since_open(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.opened)
    }

    fn start_set_up(&mut self, now: Instant) {
        self.report.started = Some((self.since_open(now), self.raw.received_bytes()));
        let sent = self.go.take().is_some_and(|go| go.send(()).is_ok());
        if !sent {
            self.report.failure = Some("the set-up thread is gone".into());
            self.state.failed();
        }
    }

    /// Takes the set-up's outcome once its thread is done (`wait`: block for it).
    fn collect(&mut self, wait: bool) {
        let finished = self
            .pending
            .as_ref()
            .is_some_and(|handle| wait || handle.is_finished());
        if !finished {
            return;
        }
        let Some(handle) = self.pending.take() else {
            return;
        };
        match handle.join() {
            // Parked and released without a start: nothing was set up.
            Ok(None) => {}
            Ok(Some(Ok(driver))) => {
                let now = self.raw.now();
                self.report.switched = Some(self.since_open(now));
                self.report.steps = driver.setup_steps().to_vec();
                self.afxdp = Some(Box::new(driver));
                self.state.ready(now);
            }
            Ok(Some(Err(error))) => {
                self.report.failure = Some(error.to_string());
                self.state.failed();
            }
            Err(_) => {
                self.report.failure = Some("the set-up thread panicked".into());
                self.state.failed();
            }
        }
    }
}

impl Drop for HandOverDriver {
    fn drop(&mut self) {
        // A parked thread wakes and exits; a running set-up is waited for, so that its
        // program and sockets go to the AF_XDP driver's teardown child rather than to this
        // process's exit.
        self.go = None;
        self.collect(true);
    }
}

impl std::fmt::Debug for HandOverDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandOverDriver")
            .field("phase", &self.state.phase())
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Driver for HandOverDriver {
    fn now(&self) -> Instant {
        self.raw.now()
    }

    fn receive<F: FnMut(&[u8])>(&mut self, max: usize, mut f: F) -> Result<usize, DriverError> {
        if self.state.phase() == Phase::Preparing {
            self.collect(false);
        }
        let mut handed = 0;
        // The clock only while draining: the loop has read it already for this step.
        let raw = &self.raw;
        if self.state.read_raw(|| raw.now()) {
            handed += self.raw.receive(max, &mut f)?;
        }
        if let Some(afxdp) = self.afxdp.as_mut()
            && handed < max
        {
            handed += afxdp.receive(max - handed, &mut f)?;
        }
        if self.state.should_prepare(self.raw.received_bytes()) {
            self.start_set_up(self.raw.now());
        }
        Ok(handed)
    }

    fn transmit<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        f: F,
    ) -> Result<usize, DriverError> {
        match self.afxdp.as_mut() {
            Some(afxdp) if self.state.on_afxdp() => afxdp.transmit(max, f),
            _ => self.raw.transmit(max, f),
        }
    }

    fn flush(&mut self) -> Result<(), DriverError> {
        self.raw.flush()?;
        if let Some(afxdp) = self.afxdp.as_mut() {
            afxdp.flush()?;
        }
        Ok(())
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DriverError> {
        let now = self.raw.now();
        let deadline = match self.state.wait_limit(WAIT_STEP) {
            Some(step) => Some(deadline.map_or(now + step, |d| d.min(now + step))),
            None => deadline,
        };
        match self.afxdp.as_mut() {
            Some(afxdp) if self.state.on_afxdp() => {
                self.raw.flush()?;
                afxdp.wait(deadline)
            }
            _ => self.raw.wait(deadline),
        }
    }

    fn max_frame_len(&self) -> usize {
        self.raw.max_frame_len()
    }

    fn stats(&self) -> DriverStats {
        let raw = self.raw.stats();
        let Some(afxdp) = self.afxdp.as_ref() else {
            return raw;
        };
        let x = afxdp.stats();
        DriverStats {
            rx_frames: raw.rx_frames + x.rx_frames,
            tx_frames: raw.tx_frames + x.tx_frames,
            rx_bytes: raw.rx_bytes + x.rx_bytes,
            tx_bytes: raw.tx_bytes + x.tx_bytes,
            rx_dropped: raw.rx_dropped + x.rx_dropped,
            tx_dropped: raw.tx_dropped + x.tx_dropped,
            idle_waits: raw.idle_waits + x.idle_waits,
            fill_ring_empty: x.fill_ring_empty,
        }
    }
}

/// The set-up thread was started by the busy-poll thread and inherited its one-core
/// affinity; it moves to the process's other cores, so that the attach and the UMEM never
/// take time from the download (left as it is on a single core).
#[allow(unsafe_code)]
fn leave_the_engine_core() {
    // SAFETY: sched_getcpu takes no arguments.
    let engine = unsafe { libc::sched_getcpu() };
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    let main_thread = std::process::id() as libc::pid_t;
    // SAFETY: `allowed` is a live cpu_set_t of `size` bytes; pid = the process's main
    // thread, whose mask is the process's, never pinned to the engine's core.
    if unsafe { libc::sched_getaffinity(main_thread, size, &mut allowed) } != 0 {
        return;
    }
    if engine >= 0 {
        // SAFETY: CPU_CLR on a live set, with an index below CPU_SETSIZE.
        unsafe { libc::CPU_CLR(engine as usize, &mut allowed) };
    }
    // SAFETY: CPU_COUNT reads a live set.
    if unsafe { libc::CPU_COUNT(&allowed) } == 0 {
        return;
    }
    // SAFETY: pid 0 is this thread; `allowed` is a live set of `size` bytes.
    unsafe { libc::sched_setaffinity(0, size, &allowed) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    fn policy() -> Policy {
        Policy {
            start_after_bytes: 1000,
            raw_drain: Duration::from_millis(50),
        }
    }

    #[test]
    fn a_small_download_never_starts_the_set_up() {
        let mut hand_over = HandOver::new(policy());
        for bytes in [0, 500, 999] {
            assert!(!hand_over.should_prepare(bytes));
            assert!(hand_over.read_raw(|| at(1)));
            assert!(!hand_over.on_afxdp());
        }
        assert_eq!(hand_over.phase(), Phase::Raw);
        assert_eq!(hand_over.wait_limit(WAIT_STEP), None);
    }

    #[test]
    fn the_set_up_starts_once_at_the_threshold() {
        let mut hand_over = HandOver::new(policy());
        assert!(hand_over.should_prepare(1000));
        assert_eq!(hand_over.phase(), Phase::Preparing);
        // Later receives never start a second set-up.
        assert!(!hand_over.should_prepare(5000));
        // While it runs, the raw socket carries everything, and waits are short.
        assert!(hand_over.read_raw(|| at(2)));
        assert!(!hand_over.on_afxdp());
        assert_eq!(hand_over.wait_limit(WAIT_STEP), Some(WAIT_STEP));
    }

    #[test]
    fn both_sockets_are_read_while_draining_then_only_afxdp() {
        let mut hand_over = HandOver::new(policy());
        assert!(hand_over.should_prepare(2000));
        hand_over.ready(at(10));
        assert!(hand_over.on_afxdp());
        assert_eq!(hand_over.phase(), Phase::Draining { until: at(60) });
        assert!(hand_over.read_raw(|| at(10)));
        assert!(hand_over.read_raw(|| at(59)));
        assert_eq!(hand_over.wait_limit(WAIT_STEP), Some(WAIT_STEP));
        // The drain ends at its deadline: AF_XDP alone from then on.
        assert!(!hand_over.read_raw(|| at(60)));
        assert_eq!(hand_over.phase(), Phase::AfXdp);
        assert!(!hand_over.read_raw(|| at(1000)));
        assert!(hand_over.on_afxdp());
        assert_eq!(hand_over.wait_limit(WAIT_STEP), None);
        assert!(!hand_over.should_prepare(1 << 30));
    }

    #[test]
    fn a_failed_set_up_stays_on_raw() {
        let mut hand_over = HandOver::new(policy());
        assert!(hand_over.should_prepare(1000));
        hand_over.failed();
        assert_eq!(hand_over.phase(), Phase::RawOnly);
        assert!(hand_over.read_raw(|| at(100)));
        assert!(!hand_over.on_afxdp());
        assert!(!hand_over.should_prepare(1 << 30));
        assert_eq!(hand_over.wait_limit(WAIT_STEP), None);
        // A late "ready" (never sent after a failure) changes nothing.
        hand_over.ready(at(200));
        assert_eq!(hand_over.phase(), Phase::RawOnly);
    }

    #[test]
    fn without_a_set_up_thread_the_raw_socket_carries_everything() {
        let mut hand_over = HandOver::new(policy());
        hand_over.never();
        assert_eq!(hand_over.phase(), Phase::RawOnly);
        assert!(!hand_over.should_prepare(1 << 30));
        assert!(hand_over.read_raw(|| at(5)));
        assert!(!hand_over.on_afxdp());
    }

    #[test]
    fn ready_or_failed_before_the_start_change_nothing() {
        let mut hand_over = HandOver::new(policy());
        hand_over.ready(at(1));
        hand_over.failed();
        assert_eq!(hand_over.phase(), Phase::Raw);
    }
}
