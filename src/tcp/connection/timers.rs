//! Timers: retransmission (RFC 6298 §5), persist (RFC 9293 §3.8.6.1), delayed ACK
//! (RFC 5681 §4.2), compressed SACK reports and TIME-WAIT (RFC 9293 §3.10.7.4, 2*MSL). One deadline is exposed:
//! the earliest of them.

use super::{Connection, Event, State};
use crate::time::Instant;

/// Cap of the persist backoff exponent; the interval is clamped to `rto_max` anyway.
const MAX_PERSIST_BACKOFF: u32 = 16;

impl Connection {
    /// When `on_timeout` must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.rto_at,
            self.persist_at,
            self.delayed_ack_at,
            self.sack_compress_at,
            self.time_wait_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs every timer whose deadline is at or before `now`.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.time_wait_at.is_some_and(|at| at <= now) {
            self.enter_closed();
            self.push_event(Event::Closed);
        }
        if self.rto_at.is_some_and(|at| at <= now) {
            self.rto_at = None;
            self.on_retransmission_timeout(now);
        }
        if self.persist_at.is_some_and(|at| at <= now) {
            // RFC 9293 §3.8.6.1: probe the zero window, backing off like the RTO.
            self.probe_pending = true;
            self.persist_backoff = (self.persist_backoff + 1).min(MAX_PERSIST_BACKOFF);
            self.persist_at = Some(now + self.persist_interval());
        }
        if self.delayed_ack_at.is_some_and(|at| at <= now) {
            self.delayed_ack_at = None;
            self.ack_now = true;
        }
        if self.sack_compress_at.is_some_and(|at| at <= now) {
            // RFC 2018 compressed reports: the SACK ACK that waited goes out now.
            self.sack_compress_at = None;
            self.ack_now = true;
        }
        self.update_persist_timer(now);
        self.refresh_gauges();
    }

    /// RFC 6298 (5.4)-(5.6), RFC 5681 §3.1 (loss window), RFC 6582 (recover after timeout).
    fn on_retransmission_timeout(&mut self, now: Instant) {
        if self.snd_una == self.snd_max {
            return;
        }
        self.stats.rtos += 1;
        self.consecutive_rtos += 1;
        let limit = match self.state {
            State::SynSent => self.config.syn_retries,
            State::SynReceived => self.config.synack_retries,
            _ => self.config.max_retransmissions,
        };
        if self.consecutive_rtos > limit {
            self.enter_closed();
            self.push_event(Event::TimedOut);
            return;
        }
        // RFC 6298 (5.5); the timer restarts with the new value when the retransmission
        // leaves (5.6).
        self.rtt.back_off();
        self.rtt_timing = None;
        if matches!(self.state, State::SynSent | State::SynReceived) {
            self.syn_retransmitted = true;
            self.snd_nxt = self.iss;
            return;
        }
        let context = self.ack_context(now, 0, self.flight_size());
        self.cc.on_rto(&context, self.consecutive_rtos > 1);
        // Go back to SND.UNA: everything outstanding is sent again as the window allows.
        self.snd_nxt = self.snd_una;
        self.fast_retransmit_pending = false;
        self.dup_acks = 0;
    }

    /// The persist timer runs while the peer's window is zero, data waits and nothing is in
    /// flight to draw an ACK (RFC 9293 §3.8.6.1); it stops when the window opens.
    pub(super) fn update_persist_timer(&mut self, now: Instant) {
        let sending_state = self.state.sends_data();
        let unsent = {
            let sent = self
                .snd_nxt
                .distance_since(self.send_buffer_seq())
                .unwrap_or(0) as usize;
            self.send_buffer.len().saturating_sub(sent)
        };
        if sending_state && self.snd_wnd == 0 && self.snd_nxt == self.snd_una && unsent > 0 {
            if self.persist_at.is_none() {
                self.persist_at = Some(now + self.persist_interval());
            }
        } else {
            self.persist_at = None;
            self.persist_backoff = 0;
            self.probe_pending = false;
        }
    }

    fn persist_interval(&self) -> core::time::Duration {
        self.rtt
            .rto()
            .saturating_mul(1 << self.persist_backoff)
            .min(self.config.rto_max)
    }
}
