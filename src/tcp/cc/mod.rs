//! Congestion control behind a small trait, one file per algorithm.
//!
//! The connection tells the algorithm what happened (new data acknowledged, a duplicate ACK,
//! a retransmission timeout) and asks it for the congestion window. Loss *detection*
//! (counting duplicate ACKs, running the timer) and the retransmissions themselves stay in
//! the connection; the algorithm answers whether a retransmission is due.
//!
//! RFCs: 5681 (Reno), 6582 (NewReno), 3465 (appropriate byte counting), 6928 (initial window),
//! 9438 (CUBIC).
//!
//! Byte counting matters to a receiver that sends one ACK per batch (the default ACK policy,
//! `tcp::Config::ack_every_segments`): a sender that grows by segments *per ACK* would slow
//! down, one that grows by segments *acknowledged* does not. Linux counts since 2013
//! (tcp_cong.c: `tcp_slow_start` adds every acknowledged segment, `tcp_cong_avoid_ai`
//! carries the remainder), and so do [`Algorithm::LinuxReno`] and [`Algorithm::Cubic`];
//! [`Algorithm::NewReno`] keeps RFC 3465's L = 2 limit in slow start.

mod reno;

mod cubic;

use core::fmt;
use core::time::Duration;

use crate::time::Instant;
use crate::wire::SeqNumber;

pub use cubic::Cubic;
pub use reno::Reno;

/// What the connection knows when it reports an ACK or a timeout to the algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckContext {
    /// When the ACK (or the timeout) happened.
    pub now: Instant,
    /// The smoothed RTT, once measured (CUBIC's window is a function of time and RTT).
    pub srtt: Option<Duration>,
    /// SND.UNA after this ACK was applied.
    pub snd_una: SeqNumber,
    /// The highest sequence number sent so far, plus one (SND.MAX).
    pub snd_max: SeqNumber,
    /// Bytes newly acknowledged by this ACK (0 for duplicates and timeouts).
    pub bytes_acked: usize,
    /// FlightSize before this ACK (RFC 5681 §2): bytes sent and not yet acknowledged.
    pub flight_size: usize,
    /// The sender's maximum segment size (payload bytes per full segment).
    pub mss: usize,
}

/// What the connection must do after reporting an ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// Keep going: send whatever the new window allows.
    Continue,
    /// Retransmit the first unacknowledged segment now (fast retransmit, RFC 5681 §3.2).
    FastRetransmit,
    /// A NewReno partial ACK (RFC 6582 §3.2 step 5): retransmit the first unacknowledged
    /// segment; `first` says whether it is the first partial ACK of this recovery, the only
    /// one that restarts the retransmission timer.
    PartialAck { first: bool },
}

/// A congestion control algorithm. Windows are in bytes.
pub trait CongestionControl: fmt::Debug + Send {
    /// The algorithm's name, for reports.
    fn name(&self) -> &'static str;

    /// The congestion window, cwnd.
    fn window(&self) -> usize;

    /// The slow start threshold, ssthresh.
    fn ssthresh(&self) -> usize;

    /// Whether a fast recovery is under way.
    fn in_recovery(&self) -> bool;

    /// An ACK acknowledged new data.
    fn on_ack(&mut self, ack: &AckContext) -> Response;

    /// A duplicate ACK (RFC 5681 §2 definition) arrived; `count` is how many in a row.
    fn on_dup_ack(&mut self, count: u32, ack: &AckContext) -> Response;

    /// The retransmission timer expired; `repeated` is true when the segment it retransmits
    /// was already retransmitted by a timeout (RFC 5681 §3.1: ssthresh is then held).
    fn on_rto(&mut self, ack: &AckContext, repeated: bool);
}

/// The algorithms xdpget has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// Reno with NewReno fast recovery (RFC 5681 + RFC 6582), RFC 3465 byte counting with
    /// L = 2 in slow start.
    #[default]
    NewReno,
    /// The same, counting bytes as Linux's tcp_cong.c does: slow start grows by everything a
    /// (stretch) ACK acknowledges.
    LinuxReno,
    /// CUBIC (RFC 9438) with Linux's byte counting and NewReno fast recovery.
    Cubic,
}

impl Algorithm {
    /// A fresh instance: `initial_window` in bytes, `iss` initializes NewReno's `recover`.
    pub fn build(
        self,
        mss: usize,
        initial_window: usize,
        iss: SeqNumber,
    ) -> Box<dyn CongestionControl> {
        match self {
            Algorithm::NewReno => Box::new(Reno::new(mss, initial_window, iss)),
            Algorithm::LinuxReno => Box::new(Reno::linux(mss, initial_window, iss)),
            Algorithm::Cubic => Box::new(Cubic::new(mss, initial_window, iss)),
        }
    }
}
