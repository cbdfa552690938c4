//! CUBIC (RFC 9438) as Linux runs it: the window grows as a cubic function of the time since
//! the last congestion event, counts acknowledged bytes (so stretch ACKs cost nothing), and
//! backs off by β = 0.7. Loss detection and NewReno fast recovery are [`Reno`]'s, shared.
//!
//! It exists so that the simulator can stand in for the Linux servers xdpget downloads from:
//! the receive side's ACK policy is proved against it (src/tcp/tests/goodput.rs).
//!
//! Simplifications (none matters for an ACK-policy comparison): no HyStart, no fast
//! convergence across flows beyond RFC 9438 §4.7, no spurious-loss undo.

use core::time::Duration;

use super::{AckContext, CongestionControl, Reno, Response};
use crate::time::Instant;
use crate::wire::SeqNumber;

/// RFC 9438 §4.5 β_cubic: the window after a congestion event is 0.7 of the one before.
const BETA: f64 = 0.7;
/// RFC 9438 §4.2 C, in segments per second cubed.
const C: f64 = 0.4;
/// RFC 9438 §4.3 α_cubic = 3(1 - β)/(1 + β): the Reno-friendly estimate's growth per RTT.
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);
/// The RTT assumed before any sample.
const DEFAULT_RTT: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
pub struct Cubic {
    /// Slow start, fast recovery and the loss window, with Linux byte counting.
    reno: Reno,
    /// W_max in segments: the window before the last congestion event.
    w_max: f64,
    /// The start of the current congestion avoidance epoch, with K and cwnd_epoch.
    epoch: Option<Epoch>,
}

#[derive(Clone, Copy, Debug)]
struct Epoch {
    start: Instant,
    /// RFC 9438 §4.2 K: seconds until the window is back at W_max.
    k: f64,
    /// RFC 9438 §4.3 W_est, in segments.
    w_est: f64,
}

impl Cubic {
    pub fn new(mss: usize, initial_window: usize, iss: SeqNumber) -> Cubic {
        Cubic {
            reno: Reno::linux(mss, initial_window, iss),
            w_max: 0.0,
            epoch: None,
        }
    }

    /// RFC 9438 §4.6: a congestion event. W_max (with §4.7 fast convergence) and the new
    /// ssthresh = β·cwnd; the epoch restarts with the next congestion-avoidance ACK.
    fn on_congestion(&mut self, cwnd_before: usize, mss: usize) {
        let segments = cwnd_before as f64 / mss as f64;
        self.w_max = if segments < self.w_max {
            segments * (1.0 + BETA) / 2.0
        } else {
            segments
        };
        self.reno.ssthresh = ((cwnd_before as f64 * BETA) as usize).max(2 * mss);
        self.epoch = None;
    }

    /// RFC 9438 §4.2-4.4 congestion avoidance for one ACK of `ack.bytes_acked` bytes.
    fn grow(&mut self, ack: &AckContext) {
        let mss = ack.mss as f64;
        let cwnd = self.reno.cwnd as f64 / mss;
        let w_max = self.w_max;
        let epoch = *self.epoch.get_or_insert_with(|| Epoch {
            start: ack.now,
            k: ((w_max - cwnd).max(0.0) / C).cbrt(),
            w_est: cwnd,
        });
        let rtt = ack.srtt.unwrap_or(DEFAULT_RTT).as_secs_f64();
        let t = ack.now.saturating_duration_since(epoch.start).as_secs_f64();
        let acked = ack.bytes_acked as f64 / mss;
        // §4.3 the Reno-friendly region: W_est grows by α per window of acknowledged data.
        let w_est = epoch.w_est + ALPHA * acked / cwnd;
        self.epoch = Some(Epoch { w_est, ..epoch });
        // §4.4: aim at W_cubic(t + RTT), clamped to [cwnd, 1.5 cwnd], approached in
        // proportion to the acknowledged data.
        let target = (C * (t + rtt - epoch.k).powi(3) + w_max.max(cwnd)).clamp(cwnd, 1.5 * cwnd);
        let cubic = cwnd + (target - cwnd) * acked / cwnd;
        let next = cubic.max(w_est);
        self.reno.cwnd = ((next * mss) as usize).max(self.reno.cwnd);
    }
}

impl CongestionControl for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }

    fn window(&self) -> usize {
        self.reno.window()
    }

    fn ssthresh(&self) -> usize {
        self.reno.ssthresh()
    }

    fn in_recovery(&self) -> bool {
        self.reno.in_recovery()
    }

    fn on_ack(&mut self, ack: &AckContext) -> Response {
        if self.reno.in_recovery() || self.reno.cwnd < self.reno.ssthresh {
            let response = self.reno.on_ack(ack);
            if !self.reno.in_recovery() {
                self.epoch = None;
            }
            return response;
        }
        // Keep Reno's `recover` dragged along (it does that on every ACK outside recovery).
        let cwnd = self.reno.cwnd;
        let probe = AckContext {
            bytes_acked: 0,
            ..*ack
        };
        self.reno.on_ack(&probe);
        self.reno.cwnd = cwnd;
        self.grow(ack);
        Response::Continue
    }

    fn on_dup_ack(&mut self, count: u32, ack: &AckContext) -> Response {
        let cwnd_before = self.reno.cwnd;
        let response = self.reno.on_dup_ack(count, ack);
        if response == Response::FastRetransmit {
            // Reno halved FlightSize; CUBIC takes β of cwnd instead, then inflates the same.
            self.on_congestion(cwnd_before, ack.mss);
            self.reno.cwnd = self.reno.ssthresh + 3 * ack.mss;
        }
        response
    }

    fn on_rto(&mut self, ack: &AckContext, repeated: bool) {
        let cwnd_before = self.reno.cwnd;
        let in_recovery = self.reno.in_recovery();
        self.reno.on_rto(ack, repeated);
        if !repeated && !in_recovery {
            self.on_congestion(cwnd_before, ack.mss);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    fn ack(millis: u64, snd_una: u32, bytes_acked: usize) -> AckContext {
        AckContext {
            now: Instant::from_millis(millis),
            srtt: Some(Duration::from_millis(100)),
            snd_una: SeqNumber(snd_una),
            snd_max: SeqNumber(snd_una + 100 * MSS as u32),
            bytes_acked,
            flight_size: 200 * MSS,
            mss: MSS,
        }
    }

    #[test]
    fn backs_off_by_beta_and_grows_back_to_w_max_in_k_seconds() {
        let mut cubic = Cubic::new(MSS, 100 * MSS, SeqNumber(0));
        for count in 1..=3 {
            cubic.on_dup_ack(count, &ack(0, 1, 0));
        }
        assert_eq!(cubic.ssthresh(), 70 * MSS);
        // A full ACK ends recovery at ssthresh.
        cubic.on_ack(&ack(1, 200_001, 100 * MSS));
        assert!(!cubic.in_recovery());
        assert_eq!(cubic.window(), 70 * MSS);
        // K = cbrt(100 · 0.3 / 0.4) ≈ 4.2 s. Feed one stretch ACK of a whole window per RTT
        // (100 ms, long enough that the Reno-friendly estimate stays below W_max): the window
        // is concave up to W_max = 100 segments and passes it only after K.
        let (mut una, mut millis) = (200_001u32, 1u64);
        let mut at_k = 0;
        while millis < 8000 {
            millis += 100;
            let bytes = cubic.window();
            una = una.wrapping_add(bytes as u32);
            cubic.on_ack(&ack(millis, una, bytes));
            if millis <= 4000 {
                assert!(
                    cubic.window() < 100 * MSS,
                    "{millis} ms: {}",
                    cubic.window()
                );
            }
            if millis == 4301 {
                at_k = cubic.window();
            }
        }
        assert!((95 * MSS..=110 * MSS).contains(&at_k), "{at_k}");
        assert!(cubic.window() > 110 * MSS, "{}", cubic.window());
    }

    #[test]
    fn a_timeout_takes_the_loss_window() {
        let mut cubic = Cubic::new(MSS, 50 * MSS, SeqNumber(0));
        cubic.on_rto(&ack(0, 1, 0), false);
        assert_eq!(cubic.window(), MSS);
        assert_eq!(cubic.ssthresh(), 35 * MSS);
    }
}
