//! Retransmission timeout estimation.
//!
//! RFC 6298: SRTT/RTTVAR smoothing (§2), Karn's algorithm and exponential backoff (§5).
//! Whether a sample is valid (Karn when timestamps are off, TSecr when they are on,
//! RFC 7323 §4) is the connection's business; this module only does the arithmetic.

use core::time::Duration;

/// Clock granularity G of RFC 6298 (2.2): our RTT samples come from a 1 ms timestamp clock.
const GRANULARITY: Duration = Duration::from_millis(1);

/// Exponent cap for the backoff; the RTO is clamped to `max` long before this matters.
const MAX_BACKOFF_SHIFT: u32 = 16;

/// RFC 6298 RTO estimator with exponential backoff.
#[derive(Clone, Debug)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    /// The RTO computed from the last sample (before backoff).
    base_rto: Duration,
    backoff_shift: u32,
    min: Duration,
    max: Duration,
}

impl RttEstimator {
    /// RFC 6298 (2.1): before any measurement, RTO = `initial` (1 s).
    pub fn new(initial: Duration, min: Duration, max: Duration) -> RttEstimator {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            base_rto: initial.clamp(min, max),
            backoff_shift: 0,
            min,
            max,
        }
    }

    /// Feeds one RTT measurement. A new sample also ends any backoff (RFC 6298 §5, the note
    /// after (5.7): the backed-off RTO is kept only until a valid sample arrives).
    pub fn on_sample(&mut self, rtt: Duration) {
        match self.srtt {
            // RFC 6298 (2.2)
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            // RFC 6298 (2.3), alpha = 1/8, beta = 1/4
            Some(srtt) => {
                let error = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + error) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        // RFC 6298 (2.2)/(2.3): RTO = SRTT + max(G, 4*RTTVAR), then (2.4)/(2.5) bounds.
        self.base_rto = (srtt + GRANULARITY.max(self.rttvar * 4)).clamp(self.min, self.max);
        self.backoff_shift = 0;
    }

    /// RFC 6298 (5.5): double the RTO after a timeout.
    pub fn back_off(&mut self) {
        self.backoff_shift = (self.backoff_shift + 1).min(MAX_BACKOFF_SHIFT);
    }

    /// RFC 6298 (5.7): after a retransmitted SYN with no RTT sample, start data transfer with
    /// an RTO of at least 3 s.
    pub fn after_syn_retransmission(&mut self) {
        if self.srtt.is_none() {
            self.base_rto = self.base_rto.max(Duration::from_secs(3)).min(self.max);
            self.backoff_shift = 0;
        }
    }

    /// The current retransmission timeout, backoff included.
    pub fn rto(&self) -> Duration {
        let factor = 1u32 << self.backoff_shift;
        self.base_rto.saturating_mul(factor).min(self.max)
    }

    /// The smoothed round-trip time, once there is a sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimator() -> RttEstimator {
        RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn first_sample_sets_srtt_and_half_variance() {
        let mut rtt = estimator();
        assert_eq!(rtt.rto(), Duration::from_secs(1));
        rtt.on_sample(Duration::from_millis(100));
        assert_eq!(rtt.srtt(), Some(Duration::from_millis(100)));
        // 100 ms + 4 * 50 ms
        assert_eq!(rtt.rto(), Duration::from_millis(300));
        rtt.on_sample(Duration::from_millis(100));
        // rttvar = 3/4 * 50 = 37.5 ms; 100 + 150 = 250 ms
        assert_eq!(rtt.rto(), Duration::from_millis(250));
    }

    #[test]
    fn lower_bound_and_backoff_to_the_upper_bound() {
        let mut rtt = estimator();
        rtt.on_sample(Duration::from_millis(1));
        assert_eq!(rtt.rto(), Duration::from_millis(200));
        rtt.back_off();
        assert_eq!(rtt.rto(), Duration::from_millis(400));
        for _ in 0..20 {
            rtt.back_off();
        }
        assert_eq!(rtt.rto(), Duration::from_secs(60));
        rtt.on_sample(Duration::from_millis(1));
        assert_eq!(rtt.rto(), Duration::from_millis(200));
    }
}
