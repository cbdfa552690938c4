//! Reno congestion control with NewReno fast recovery.
//!
//! RFC 5681 §3.1 (slow start, congestion avoidance, loss window after a timeout),
//! RFC 5681 §3.2 (fast retransmit / fast recovery), RFC 6582 §3.2 (NewReno: partial ACKs,
//! the `recover` guard against repeated fast retransmits), RFC 3465 (byte counting).

use super::{AckContext, CongestionControl, Response};
use crate::wire::SeqNumber;

/// RFC 3465 §2.2: in slow start grow by at most L*SMSS per ACK, with L = 2 so that a receiver
/// that ACKs every second segment does not halve the slow start rate.
const ABC_LIMIT_SEGMENTS: usize = 2;

/// RFC 5681 §3.2: the third duplicate ACK triggers fast retransmit.
const DUP_ACK_THRESHOLD: u32 = 3;

#[derive(Clone, Debug)]
pub struct Reno {
    pub(super) cwnd: usize,
    pub(super) ssthresh: usize,
    /// RFC 6582 `recover`, kept exclusive: the SND.MAX at the time loss was detected.
    recover: SeqNumber,
    pub(super) in_recovery: bool,
    /// RFC 3465 L in segments: the most slow start grows per ACK (`usize::MAX`: no limit).
    abc_limit_segments: usize,
    /// Whether this recovery has seen a partial ACK yet (RFC 6582 §3.2 step 5, timer reset).
    partial_ack_seen: bool,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew (RFC 5681 §3.1, the
    /// byte-counting variant of equation 3).
    bytes_acked_in_avoidance: usize,
}

impl Reno {
    /// RFC 5681 §3.1: ssthresh starts "arbitrarily high"; RFC 6582 §3.2 step 1: recover = ISS.
    pub fn new(mss: usize, initial_window: usize, iss: SeqNumber) -> Reno {
        Reno {
            cwnd: initial_window.max(mss),
            ssthresh: usize::MAX,
            recover: iss,
            in_recovery: false,
            abc_limit_segments: ABC_LIMIT_SEGMENTS,
            partial_ack_seen: false,
            bytes_acked_in_avoidance: 0,
        }
    }

    /// Reno as Linux's tcp_cong.c counts: slow start grows by every byte an ACK acknowledges
    /// (`tcp_slow_start`), so a receiver's stretch ACKs cost it nothing.
    pub fn linux(mss: usize, initial_window: usize, iss: SeqNumber) -> Reno {
        Reno {
            abc_limit_segments: usize::MAX,
            ..Reno::new(mss, initial_window, iss)
        }
    }

    /// RFC 5681 equation (4): ssthresh = max(FlightSize / 2, 2*SMSS).
    fn halve(flight_size: usize, mss: usize) -> usize {
        (flight_size / 2).max(2 * mss)
    }
}

impl CongestionControl for Reno {
    fn name(&self) -> &'static str {
        "newreno"
    }

    fn window(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    fn on_ack(&mut self, ack: &AckContext) -> Response {
        let mss = ack.mss;
        if !self.in_recovery && ack.snd_una > self.recover {
            // Drag `recover` along once it is behind: sequence numbers compare only within
            // 2^31 of each other, and a long transfer without loss would otherwise wrap past it
            // and disable fast retransmit. The guard it implements is unchanged.
            self.recover = ack.snd_una;
        }
        if self.in_recovery {
            if ack.snd_una >= self.recover {
                // RFC 6582 §3.2 step 3, full acknowledgment, option (1):
                // cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS), FlightSize after the ACK.
                let flight_after = ack.flight_size.saturating_sub(ack.bytes_acked);
                self.cwnd = self.ssthresh.min(flight_after.max(mss) + mss);
                self.in_recovery = false;
                self.bytes_acked_in_avoidance = 0;
                return Response::Continue;
            }
            // RFC 6582 §3.2 step 5, partial acknowledgment: deflate cwnd by the amount of new
            // data acknowledged, add back one SMSS if that was at least one SMSS, and
            // retransmit the first unacknowledged segment.
            self.cwnd = self.cwnd.saturating_sub(ack.bytes_acked);
            if ack.bytes_acked >= mss {
                self.cwnd += mss;
            }
            self.cwnd = self.cwnd.max(mss);
            let first = !self.partial_ack_seen;
            self.partial_ack_seen = true;
            return Response::PartialAck { first };
        }
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 slow start, with RFC 3465 byte counting (L = 2, or none).
            let limit = self.abc_limit_segments.saturating_mul(mss);
            self.cwnd += ack.bytes_acked.min(limit);
        } else {
            // RFC 5681 §3.1 congestion avoidance: one SMSS per cwnd of acknowledged bytes,
            // as many as a stretch ACK covers (tcp_cong_avoid_ai).
            self.bytes_acked_in_avoidance += ack.bytes_acked;
            let steps = self.bytes_acked_in_avoidance / self.cwnd;
            self.bytes_acked_in_avoidance -= steps * self.cwnd;
            self.cwnd += steps * mss;
        }
        Response::Continue
    }

    fn on_dup_ack(&mut self, count: u32, ack: &AckContext) -> Response {
        let mss = ack.mss;
        if self.in_recovery {
            // RFC 6582 §3.2 step 4 (RFC 5681 §3.2 step 4): inflate by one SMSS per
            // additional duplicate, which lets new data out as the old leaves the network.
            self.cwnd += mss;
            return Response::Continue;
        }
        if count != DUP_ACK_THRESHOLD {
            return Response::Continue;
        }
        // RFC 6582 §3.2 step 2: only enter fast retransmit if the cumulative ACK covers
        // `recover`, i.e. these duplicates are not echoes of a loss we already reacted to
        // (for example the retransmissions that follow a timeout).
        if ack.snd_una < self.recover {
            return Response::Continue;
        }
        // RFC 5681 §3.2 steps 2 and 3, RFC 6582 §3.2 step 2.
        self.recover = ack.snd_max;
        self.ssthresh = Reno::halve(ack.flight_size, mss);
        self.cwnd = self.ssthresh + DUP_ACK_THRESHOLD as usize * mss;
        self.in_recovery = true;
        self.partial_ack_seen = false;
        Response::FastRetransmit
    }

    fn on_rto(&mut self, ack: &AckContext, repeated: bool) {
        // RFC 5681 §3.1 equation (4) and the loss window LW = 1 SMSS; ssthresh is held when
        // the same segment times out again. It is also held when the timeout interrupts a
        // fast recovery: that loss episode already halved it, and FlightSize is inflated by
        // the segments recovery sent, so halving it again would *raise* ssthresh (as Linux,
        // which recomputes ssthresh in tcp_enter_loss only outside Recovery).
        if !repeated && !self.in_recovery {
            self.ssthresh = Reno::halve(ack.flight_size, ack.mss);
        }
        self.cwnd = ack.mss;
        self.bytes_acked_in_avoidance = 0;
        // RFC 6582 §3.2 step 1 (after a timeout): recover = highest sequence number sent, and
        // any fast recovery ends.
        self.recover = ack.snd_max;
        self.in_recovery = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    fn context(snd_una: u32, snd_max: u32, bytes_acked: usize, flight_size: usize) -> AckContext {
        AckContext {
            now: crate::time::Instant::ZERO,
            srtt: None,
            snd_una: SeqNumber(snd_una),
            snd_max: SeqNumber(snd_max),
            bytes_acked,
            flight_size,
            mss: MSS,
        }
    }

    #[test]
    fn slow_start_then_congestion_avoidance() {
        let mut reno = Reno::new(MSS, 10 * MSS, SeqNumber(0));
        // Slow start: an ACK for two segments grows cwnd by two segments.
        reno.on_ack(&context(2001, 10001, 2 * MSS, 10 * MSS));
        assert_eq!(reno.window(), 12 * MSS);
        // ABC limit: one ACK for 8 segments grows by at most 2.
        reno.on_ack(&context(10001, 10001, 8 * MSS, 8 * MSS));
        assert_eq!(reno.window(), 14 * MSS);
        reno.ssthresh = 14 * MSS;
        // Congestion avoidance: one MSS per cwnd worth of ACKed bytes.
        for _ in 0..13 {
            reno.on_ack(&context(20001, 30001, MSS, 14 * MSS));
        }
        assert_eq!(reno.window(), 14 * MSS);
        reno.on_ack(&context(21001, 30001, MSS, 14 * MSS));
        assert_eq!(reno.window(), 15 * MSS);
    }

    #[test]
    fn linux_byte_counting_takes_a_whole_stretch_ack() {
        let mut reno = Reno::linux(MSS, 10 * MSS, SeqNumber(0));
        // One ACK for 8 segments (a GRO batch) grows slow start by 8, not 2.
        reno.on_ack(&context(8001, 10001, 8 * MSS, 10 * MSS));
        assert_eq!(reno.window(), 18 * MSS);
        reno.ssthresh = 18 * MSS;
        // Congestion avoidance: an ACK for two windows' worth grows by two segments.
        reno.on_ack(&context(44001, 50001, 36 * MSS, 18 * MSS));
        assert_eq!(reno.window(), 20 * MSS);
    }

    #[test]
    fn fast_retransmit_halves_and_newreno_handles_partial_acks() {
        let mut reno = Reno::new(MSS, 10 * MSS, SeqNumber(0));
        let dup = context(1, 20001, 0, 20 * MSS);
        assert_eq!(reno.on_dup_ack(1, &dup), Response::Continue);
        assert_eq!(reno.on_dup_ack(2, &dup), Response::Continue);
        assert_eq!(reno.on_dup_ack(3, &dup), Response::FastRetransmit);
        assert_eq!(reno.ssthresh(), 10 * MSS);
        assert_eq!(reno.window(), 13 * MSS);
        assert!(reno.in_recovery());
        assert_eq!(reno.on_dup_ack(4, &dup), Response::Continue);
        assert_eq!(reno.window(), 14 * MSS);
        // Partial ACK of 5 segments: deflate by 5, add back 1.
        let partial = context(5001, 20001, 5 * MSS, 20 * MSS);
        assert_eq!(reno.on_ack(&partial), Response::PartialAck { first: true });
        assert_eq!(reno.window(), 10 * MSS);
        let partial = context(6001, 20001, MSS, 15 * MSS);
        assert_eq!(reno.on_ack(&partial), Response::PartialAck { first: false });
        // Full ACK: cwnd = min(ssthresh, max(FlightSize, MSS) + MSS), two segments left in flight.
        let full = context(20001, 22001, 14 * MSS, 16 * MSS);
        assert_eq!(reno.on_ack(&full), Response::Continue);
        assert!(!reno.in_recovery());
        assert_eq!(reno.window(), 3 * MSS);
    }

    #[test]
    fn fast_retransmit_still_works_after_gibibytes_without_loss() {
        let mut reno = Reno::new(MSS, 10 * MSS, SeqNumber(0));
        // 2.5 GiB acknowledged, 64 KiB at a time: SND.UNA is now more than 2^31 past the ISS,
        // so a `recover` left at the ISS would look like it lies in the future.
        let mut una = 0u32;
        for _ in 0..(5u64 << 29) / 65536 {
            una = una.wrapping_add(65536);
            reno.on_ack(&context(una, una.wrapping_add(65536), 65536, 65536));
        }
        let dup = context(una, una.wrapping_add(65536), 0, 65536);
        assert_eq!(reno.on_dup_ack(1, &dup), Response::Continue);
        assert_eq!(reno.on_dup_ack(2, &dup), Response::Continue);
        assert_eq!(reno.on_dup_ack(3, &dup), Response::FastRetransmit);
    }

    #[test]
    fn timeout_sets_the_loss_window_and_guards_recover() {
        let mut reno = Reno::new(MSS, 10 * MSS, SeqNumber(0));
        reno.on_rto(&context(1, 30001, 0, 30 * MSS), false);
        assert_eq!(reno.window(), MSS);
        assert_eq!(reno.ssthresh(), 15 * MSS);
        reno.on_rto(&context(1, 30001, 0, 30 * MSS), true);
        assert_eq!(reno.ssthresh(), 15 * MSS);
        // Duplicates below the old SND.MAX do not trigger another fast retransmit.
        let dup = context(10001, 30001, 0, 20 * MSS);
        for count in 1..=5 {
            assert_eq!(reno.on_dup_ack(count, &dup), Response::Continue);
        }
        let dup = context(30001, 40001, 0, 10 * MSS);
        assert_eq!(reno.on_dup_ack(3, &dup), Response::FastRetransmit);
        // ssthresh = max(FlightSize/2, 2*SMSS)
        let mut reno = Reno::new(MSS, 10 * MSS, SeqNumber(0));
        reno.on_rto(&context(1, 2001, 0, 2 * MSS), false);
        assert_eq!(reno.ssthresh(), 2 * MSS);
    }
}
