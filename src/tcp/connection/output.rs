//! The next segment to send: resets, SYN/SYN-ACK, owed ACKs, data and FIN (new or
//! retransmitted), window probes.
//!
//! RFCs: 9293 §3.8.6 (windows, probes, SWS avoidance), 5681 §4.2 (ACK policy), 6298 §5 (timer
//! start), 7323 §3 (timestamps on every segment), 6582 (retransmissions during recovery).

use super::{Connection, State};
use crate::time::Instant;
use crate::wire::{SackBlocks, SeqNumber, TcpFlags, TcpOptions, TcpRepr};

/// One segment decided by `next_segment`, before it borrows its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outgoing {
    Reset {
        seq: SeqNumber,
        ack: Option<SeqNumber>,
    },
    Syn,
    /// A pure ACK carrying `ack` (<= RCV.NXT) and the SACK blocks decided when it became
    /// due (`None`: those of now).
    Ack {
        ack: SeqNumber,
        sack_blocks: Option<SackBlocks>,
    },
    /// `len` bytes at send buffer offset `offset` (sequence `seq`), then FIN if `fin`; the
    /// payload is read from the send buffer (copied or lent bytes) when the segment is built.
    Data {
        seq: SeqNumber,
        offset: usize,
        len: usize,
        fin: bool,
    },
    /// A zero-window probe: an empty segment one below SND.UNA, which the peer must answer
    /// with an ACK carrying its current window (the "retransmit" alternative of
    /// RFC 9293 §3.8.6.1, as Linux does; no byte is pushed past a zero window).
    WindowProbe,
}

impl Connection {
    /// The next segment to emit, or `None` when there is nothing more to send now. `None` also
    /// ends the receive batch: ACKs still owed for it are decided here (RFC 5681 §4.2).
    /// The payload borrows from the send buffer (or from bytes lent to it, `lend`); emit
    /// the segment before calling again.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<TcpRepr<'_>> {
        let outgoing = self.next_segment(now);
        self.update_persist_timer(now);
        self.refresh_gauges();
        match outgoing {
            Some(outgoing) => Some(self.build(now, outgoing)),
            None => {
                self.batch_segments = 0;
                None
            }
        }
    }

    fn next_segment(&mut self, now: Instant) -> Option<Outgoing> {
        if let Some(reset) = self.pending_reset.take() {
            return Some(Outgoing::Reset {
                seq: reset.seq,
                ack: reset.ack,
            });
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => {
                return Some(self.send_syn(now));
            }
            State::SynSent => return None,
            _ => {}
        }
        if let Some(point) = self.ack_points.pop_front() {
            return Some(Outgoing::Ack {
                ack: point.ack,
                sack_blocks: Some(point.sack_blocks),
            });
        }
        if let Some(data) = self.next_data(now) {
            return Some(data);
        }
        if self.probe_pending {
            self.probe_pending = false;
            self.stats.window_probes += 1;
            return Some(Outgoing::WindowProbe);
        }
        let owed = self.ack_now
            || (self.state != State::SynReceived
                && (self.rcv_nxt != self.last_ack_queued || self.compressed_sacks > 0)
                && !self.may_wait());
        owed.then_some(Outgoing::Ack {
            ack: self.rcv_nxt,
            sack_blocks: None,
        })
    }

    /// At the end of a receive batch, with an ACK owed: whether it may still wait for its
    /// timer. RFC 5681 strict: a lone in-order segment waits for the delayed-ACK timer.
    /// Batch policy (a Linux receiver with GRO): the batch's ACK waits only while less than
    /// two full segments are new (in order, or compressed SACK reports), at most
    /// `delayed_ack` (1 ms) or the SACK compression delay.
    fn may_wait(&self) -> bool {
        if self.config.delayed_ack.is_zero() {
            return false;
        }
        let two_segments = 2 * self.rcv_mss_estimate.max(1);
        if self.config.strict_acks() {
            let lone_segment = self.batch_segments <= 1 && self.unacked_bytes < two_segments;
            return lone_segment && self.delayed_ack_at.is_some();
        }
        let timer_running = self.delayed_ack_at.is_some() || self.sack_compress_at.is_some();
        let enough = self.config.batch_ack_segments.max(2) * self.rcv_mss_estimate.max(1);
        timer_running && self.unacked_bytes < enough && self.compressed_sacks < 2
    }

    /// The SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED) at ISS, first or retransmitted.
    fn send_syn(&mut self, now: Instant) -> Outgoing {
        let first = self.snd_max == self.iss;
        self.snd_nxt = self.iss + 1u32;
        self.snd_max = self.snd_nxt;
        if first && !self.timestamps {
            self.rtt_timing = Some((self.snd_nxt, now));
        } else if !first {
            self.stats.retransmits += 1;
            self.rtt_timing = None;
        }
        self.start_retransmission_timer(now);
        Outgoing::Syn
    }

    /// New data, a fast retransmission, or data resent after a timeout (go-back-N from
    /// SND.NXT = SND.UNA), within min(cwnd, peer window).
    fn next_data(&mut self, now: Instant) -> Option<Outgoing> {
        if !self.state.sends_data() {
            return None;
        }
        let buffer_seq = self.send_buffer_seq();
        let buffered = self.send_buffer.len();
        let fin_seq = buffer_seq + buffered;

        if self.fast_retransmit_pending {
            self.fast_retransmit_pending = false;
            let offset = self.snd_una.distance_since(buffer_seq).unwrap_or(0) as usize;
            let outstanding = self.flight_size();
            let len = self
                .snd_mss
                .min(buffered.saturating_sub(offset))
                .min(outstanding);
            let fin = self.fin_queued && self.snd_una + len == fin_seq && outstanding > len;
            if len > 0 || fin {
                self.stats.retransmits += 1;
                self.rtt_timing = None;
                self.start_retransmission_timer(now);
                return Some(Outgoing::Data {
                    seq: self.snd_una,
                    offset,
                    len,
                    fin,
                });
            }
        }

        let in_flight = self.snd_nxt.distance_since(self.snd_una).unwrap_or(0) as usize;
        let window = self.cc.window().min(self.snd_wnd);
        let usable = window.saturating_sub(in_flight);
        let offset = self.snd_nxt.distance_since(buffer_seq).unwrap_or(0) as usize;
        let available = buffered.saturating_sub(offset);
        let len = self.snd_mss.min(available).min(usable);
        let fin = self.fin_queued
            && !self.our_fin_acked()
            && len == available
            && self.snd_nxt + len == fin_seq;
        if len == 0 && !fin {
            return None;
        }
        // RFC 9293 §3.8.6.2.1 sender SWS avoidance: no small segment while more data waits
        // and an ACK is still to come that may open the window.
        if len < self.snd_mss && len < available && in_flight > 0 {
            return None;
        }
        let seq = self.snd_nxt;
        let retransmission = seq < self.snd_max;
        self.snd_nxt = seq + (len + usize::from(fin));
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if fin {
            self.fin_seq = Some(fin_seq);
        }
        if retransmission {
            self.stats.retransmits += 1;
            self.rtt_timing = None;
        } else if !self.timestamps && self.rtt_timing.is_none() {
            self.rtt_timing = Some((self.snd_nxt, now));
        }
        self.start_retransmission_timer(now);
        Some(Outgoing::Data {
            seq,
            offset,
            len,
            fin,
        })
    }

    /// RFC 6298 (5.1): start the timer when sequence space goes out, if it is not running.
    fn start_retransmission_timer(&mut self, now: Instant) {
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        }
    }

    /// Turns a decision into a segment; every segment but a reset acknowledges RCV.NXT (or the
    /// ACK point) and carries timestamps once negotiated.
    fn build(&mut self, now: Instant, outgoing: Outgoing) -> TcpRepr<'_> {
        let remote_port = self.remote.map_or(0, |remote| remote.port());
        let mut repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: remote_port,
            seq_number: self.snd_nxt,
            ack_number: SeqNumber(0),
            flags: TcpFlags::NONE,
            window_len: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        self.stats.segments_sent += 1;
        // Taken last: it may borrow the send buffer mutably (a payload that straddles
        // pieces is assembled there).
        let mut payload = None;
        // What this segment reports of the receive side as it is now. A queued ACK point
        // carries the ACK and SACK blocks of the moment it was queued (`push_ack_point`,
        // which cleared the pending state then); what arrived after it is still owed. A
        // data segment or window probe acknowledges RCV.NXT but carries no SACK blocks.
        let (current_ack, current_sack) = match &outgoing {
            Outgoing::Ack { sack_blocks, .. } => (sack_blocks.is_none(), sack_blocks.is_none()),
            Outgoing::Data { .. } | Outgoing::WindowProbe => (true, !self.sack),
            Outgoing::Reset { .. } | Outgoing::Syn => (false, false),
        };
        let ack = match outgoing {
            Outgoing::Reset { seq, ack } => {
                repr.seq_number = seq;
                repr.flags = TcpFlags::RST;
                if let Some(ack) = ack {
                    repr.flags |= TcpFlags::ACK;
                    repr.ack_number = ack;
                }
                return repr;
            }
            Outgoing::Syn => {
                repr.seq_number = self.iss;
                repr.flags = TcpFlags::SYN;
                repr.options.mss = Some(self.config.advertised_mss());
                // RFC 7323 §2.2: the SYN's own window is never scaled.
                let window = self.receive_window().min(0xffff);
                repr.window_len = window as u16;
                self.last_window_advertised = window;
                self.rcv_adv_right = self.rcv_nxt + window;
                let active = self.state == State::SynSent;
                if (active && self.config.window_scaling) || (!active && self.window_scaling) {
                    repr.options.window_scale = Some(self.rcv_wscale);
                }
                if (active && self.config.timestamps) || (!active && self.timestamps) {
                    let echo = if active { 0 } else { self.ts_recent };
                    repr.options.timestamps = Some((self.ts_now(now), echo));
                }
                repr.options.sack_permitted = if active { self.config.sack } else { self.sack };
                if active {
                    return repr;
                }
                repr.flags |= TcpFlags::ACK;
                repr.ack_number = self.rcv_nxt;
                self.last_ack_queued = self.rcv_nxt;
                return repr;
            }
            Outgoing::Ack { ack, sack_blocks } => {
                self.stats.acks_sent += 1;
                if self.sack {
                    repr.options.sack_blocks =
                        sack_blocks.unwrap_or_else(|| self.sack_blocks(None, None));
                }
                ack
            }
            Outgoing::WindowProbe => {
                repr.seq_number = SeqNumber(self.snd_una.0.wrapping_sub(1));
                self.rcv_nxt
            }
            Outgoing::Data {
                seq,
                offset,
                len,
                fin,
            } => {
                repr.seq_number = seq;
                if fin {
                    repr.flags |= TcpFlags::FIN;
                }
                if len > 0 && offset + len == self.send_buffer.len() {
                    repr.flags |= TcpFlags::PSH;
                }
                self.stats.bytes_sent += len as u64;
                payload = Some((offset, len));
                self.rcv_nxt
            }
        };
        // Acknowledgment and window (RFC 7323 §2.3: scaled down by our shift).
        repr.flags |= TcpFlags::ACK;
        repr.ack_number = ack;
        let window = self.advertised_window_bytes(ack);
        repr.window_len = (window >> self.rcv_wscale) as u16;
        if self.timestamps {
            repr.options.timestamps = Some((self.ts_now(now), self.ts_recent));
        }
        self.rcv_adv_right = self.rcv_adv_right.max(ack + window.min(1 << 30));
        if ack == self.rcv_nxt {
            self.last_window_advertised = window;
            if current_ack {
                self.ack_now = false;
                self.delayed_ack_at = None;
                self.unacked_bytes = 0;
            }
            if current_sack {
                self.compressed_sacks = 0;
                self.sack_compress_at = None;
            }
        }
        if ack > self.last_ack_queued {
            self.last_ack_queued = ack;
        }
        if let Some((offset, len)) = payload {
            repr.payload = self.send_buffer.segment(offset, len);
        }
        repr
    }

    /// The SACK blocks of an ACK of RCV.NXT now, as many as fit (3 next to timestamps, else
    /// 4), in the order of RFC 2018 §4 and RFC 2883 §4 (see [`crate::tcp::sack_report`]): a
    /// D-SACK first, then the block holding the segment that made the ACK due (`trigger`;
    /// by default the most recent arrival), then the others most recent first.
    pub(super) fn sack_blocks(
        &mut self,
        trigger: Option<u64>,
        dsack: Option<(u64, u64)>,
    ) -> SackBlocks {
        let room = if self.timestamps {
            SackBlocks::MAX - 1
        } else {
            SackBlocks::MAX
        };
        let ranges = self
            .sack_report
            .blocks(&self.assembler, dsack, trigger, room);
        let mut blocks = SackBlocks::default();
        for &(start, end) in ranges.as_slice() {
            blocks.push(self.sequence_of(start), self.sequence_of(end));
        }
        blocks
    }
}
