//! Arriving segments: RFC 9293 §3.10.7 "SEGMENT ARRIVES", with the RFC 5961 checks on RST,
//! SYN and ACK, RFC 7323 PAWS, and the RFC 5681 §4.2 ACK policy on the receive path.

use core::time::Duration;
use std::net::{IpAddr, SocketAddr};

use super::{
    AckPoint, Connection, DEFAULT_PEER_MSS, Delivered, Event, PendingReset, State,
    TIMESTAMPS_OPTION_LEN, TS_RECENT_MAX_AGE,
};
use crate::tcp::cc::Response;
use crate::time::Instant;
use crate::wire::{SackBlocks, SeqNumber, TcpRepr};

/// Most ACKs owed at once (a receive batch of this many segments is far beyond any ring).
const MAX_ACK_POINTS: usize = 4096;

/// TSval ticks by which a segment may lag TS.Recent before PAWS drops it.
const PAWS_TOLERANCE: i32 = 1;

/// RTT samples above this are treated as garbage (a bogus TSecr).
const MAX_RTT_SAMPLE: Duration = Duration::from_secs(60);

impl Connection {
    /// Processes one received segment addressed from `src` to `dst`. Returns the payload bytes
    /// it delivers, borrowed from `seg`. Segments of another four-tuple are ignored.
    pub fn on_segment<'a>(
        &mut self,
        now: Instant,
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        seg: &TcpRepr<'a>,
    ) -> Delivered<'a> {
        let data = self.dispatch(now, src.into(), dst.into(), seg);
        self.update_persist_timer(now);
        self.refresh_gauges();
        Delivered { data }
    }

    fn dispatch<'a>(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        seg: &TcpRepr<'a>,
    ) -> Option<(u64, &'a [u8])> {
        if dst != self.local.ip() || seg.dst_port != self.local.port() {
            return None;
        }
        if let Some(remote) = self.remote
            && (src != remote.ip() || seg.src_port != remote.port())
        {
            return None;
        }
        self.stats.segments_received += 1;
        match self.state {
            State::Closed => {
                self.reply_with_reset(seg);
                None
            }
            State::Listen => {
                self.on_listen(now, SocketAddr::new(src, seg.src_port), seg);
                None
            }
            State::SynSent => {
                self.on_syn_sent(now, seg);
                None
            }
            _ => self.on_synchronized(now, seg),
        }
    }

    /// RFC 9293 §3.10.7.1: a segment for a closed connection draws a reset (unless it is one).
    fn reply_with_reset(&mut self, seg: &TcpRepr<'_>) {
        if seg.flags.rst() || self.remote.is_none() {
            return;
        }
        self.pending_reset = Some(if seg.flags.ack() {
            PendingReset {
                seq: seg.ack_number,
                ack: None,
            }
        } else {
            PendingReset {
                seq: SeqNumber(0),
                ack: Some(seg.seq_number + seg.segment_len()),
            }
        });
    }

    /// RFC 9293 §3.10.7.2 LISTEN: only a SYN is of interest.
    fn on_listen(&mut self, now: Instant, remote: SocketAddr, seg: &TcpRepr<'_>) {
        if seg.flags.rst() || seg.flags.ack() || !seg.flags.syn() {
            return;
        }
        self.choose_iss(now, remote);
        self.accept_syn(now, seg);
        // The SYN-ACK is due: SND.NXT = ISS means "send the SYN" in output.rs.
        self.state = State::SynReceived;
    }

    /// Takes the peer's ISN and SYN options (RFC 9293 §3.7.1 MSS, RFC 7323 §2.2 and §3.2).
    fn accept_syn(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        self.irs = seg.seq_number;
        self.rcv_nxt = self.irs + 1u32;
        self.rcv_offset = 0;
        self.last_ack_queued = self.irs;
        let options = &seg.options;
        match options.window_scale {
            Some(shift) if self.config.window_scaling => {
                // RFC 7323 §2.3: a shift above 14 is treated as 14.
                self.snd_wscale = shift.min(14);
                self.window_scaling = true;
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
                self.window_scaling = false;
            }
        }
        // RFC 2018 §2: SACK only when both SYNs carried SACK-permitted.
        self.sack = self.config.sack && options.sack_permitted;
        match options.timestamps {
            Some((tsval, _)) if self.config.timestamps => {
                self.timestamps = true;
                self.ts_recent = tsval;
                self.ts_recent_at = now;
            }
            _ => self.timestamps = false,
        }
        let peer_mss = options.mss.unwrap_or(DEFAULT_PEER_MSS).max(64);
        let mss = peer_mss.min(self.config.advertised_mss());
        let option_bytes = if self.timestamps {
            TIMESTAMPS_OPTION_LEN
        } else {
            0
        };
        self.snd_mss = usize::from(mss) - option_bytes;
        // RFC 7323 §2.2: the window field of a SYN is never scaled.
        self.snd_wnd = usize::from(seg.window_len);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq_number;
        self.snd_wl2 = seg.ack_number;
    }

    /// RFC 9293 §3.10.7.3 SYN-SENT.
    fn on_syn_sent(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        let flags = seg.flags;
        // An acceptable ACK acknowledges our SYN: ISS < SEG.ACK =< SND.NXT.
        let ack_acceptable =
            flags.ack() && self.iss < seg.ack_number && seg.ack_number <= self.snd_max;
        if flags.ack() && !ack_acceptable {
            if !flags.rst() {
                self.pending_reset = Some(PendingReset {
                    seq: seg.ack_number,
                    ack: None,
                });
            }
            return;
        }
        if flags.rst() {
            // RFC 5961 §3.2: in SYN-SENT a RST is acceptable only if it acknowledges our SYN.
            if ack_acceptable {
                self.push_event(Event::Reset);
                self.enter_closed();
            }
            return;
        }
        if !flags.syn() {
            return;
        }
        self.accept_syn(now, seg);
        if ack_acceptable {
            self.snd_una = seg.ack_number;
            self.take_rtt_sample(now, seg);
            self.enter_established();
            self.ack_now = true;
        } else {
            // Simultaneous open (RFC 9293 §3.10.7.3, figure 8): answer with SYN-ACK, same ISS.
            self.state = State::SynReceived;
            self.snd_nxt = self.iss;
        }
    }

    /// RFC 9293 §3.10.7.4: SYN-RECEIVED and every later state.
    fn on_synchronized<'a>(&mut self, now: Instant, seg: &TcpRepr<'a>) -> Option<(u64, &'a [u8])> {
        let flags = seg.flags;
        if self.state == State::SynReceived && flags.syn() && seg.seq_number == self.irs {
            if flags.ack() && !flags.rst() {
                // Simultaneous open: the peer's SYN-ACK completes our half (figure 8, line 6).
                if self.iss < seg.ack_number && seg.ack_number <= self.snd_max {
                    self.snd_una = seg.ack_number;
                    self.update_send_window(seg);
                    self.take_rtt_sample(now, seg);
                    self.enter_established();
                }
                return None;
            }
            if !flags.ack() && !flags.rst() {
                // The peer did not get our SYN-ACK and repeats its SYN: repeat the SYN-ACK.
                self.snd_nxt = self.iss;
                return None;
            }
        }

        // RFC 7323 §5.3 R1: PAWS. RST segments are exempt (§5.3, last paragraph). Like Linux
        // (TCP_PAWS_WINDOW) we tolerate one tick of our 1 ms clock's worth of disorder, so
        // that mere reordering within a millisecond is never taken for an old duplicate.
        if let Some((tsval, _)) = seg.options.timestamps
            && self.timestamps
            && !flags.rst()
            && !self.is_disordered_dup_ack(seg)
            && (tsval.wrapping_sub(self.ts_recent) as i32) < -PAWS_TOLERANCE
        {
            if now.saturating_duration_since(self.ts_recent_at) > TS_RECENT_MAX_AGE {
                // RFC 7323 §5.5: an idle connection's TS.Recent is no longer valid.
                self.ts_recent = tsval;
                self.ts_recent_at = now;
            } else {
                self.stats.paws_drops += 1;
                self.stats.segments_dropped += 1;
                self.ack_unacceptable(seg);
                return None;
            }
        }

        // RFC 9293 §3.10.7.4 first: sequence number acceptability.
        let seg_len = seg.segment_len();
        let acceptable = self.sequence_acceptable(seg.seq_number, seg_len);
        // "If the RCV.WND is zero, no segments will be acceptable, but special allowance
        // should be made to accept valid ACKs, URGs, and RSTs": a probe at RCV.NXT.
        let zero_window_probe =
            !acceptable && self.receive_window() == 0 && seg.seq_number == self.rcv_nxt;
        if !acceptable && !zero_window_probe {
            self.stats.segments_dropped += 1;
            if !flags.rst() {
                self.ack_unacceptable(seg);
                if self.state == State::TimeWait && flags.fin() {
                    // RFC 9293 §3.10.7.4 eighth: a retransmitted FIN restarts the 2 MSL timeout.
                    self.time_wait_at = Some(now + self.config.msl * 2);
                }
            }
            return None;
        }
        if zero_window_probe && !flags.rst() {
            self.ack_now = true;
        }

        // RFC 7323 §4.3 (2) / §5.3 R3: remember the timestamp to echo.
        if let Some((tsval, _)) = seg.options.timestamps
            && self.timestamps
            && (tsval.wrapping_sub(self.ts_recent) as i32) >= 0
            && seg.seq_number <= self.last_ack_queued
        {
            self.ts_recent = tsval;
            self.ts_recent_at = now;
        }

        // Second: RST (RFC 5961 §3.2). The segment is in the window here.
        if flags.rst() {
            if seg.seq_number == self.rcv_nxt {
                self.on_acceptable_reset();
            } else {
                self.send_challenge_ack(now);
            }
            return None;
        }

        // Fourth: SYN. A passive open in SYN-RECEIVED goes back to LISTEN; elsewhere
        // (RFC 5961 §4.2) a challenge ACK, and the segment is dropped.
        if flags.syn() {
            if self.state == State::SynReceived && self.passive {
                self.return_to_listen();
            } else {
                self.send_challenge_ack(now);
            }
            return None;
        }

        // Fifth: the ACK field.
        if !flags.ack() {
            return None;
        }
        if self.state == State::SynReceived {
            if self.iss < seg.ack_number && seg.ack_number <= self.snd_max {
                self.snd_una = seg.ack_number;
                self.update_send_window(seg);
                self.take_rtt_sample(now, seg);
                self.enter_established();
            } else {
                self.pending_reset = Some(PendingReset {
                    seq: seg.ack_number,
                    ack: None,
                });
                return None;
            }
        }
        if !self.process_ack(now, seg) {
            return None;
        }
        if self.state == State::Closed {
            return None;
        }

        // Seventh and eighth: segment text and FIN.
        self.process_text(now, seg)
    }

    /// A pure duplicate ACK (nothing but an ACK of SND.UNA at RCV.NXT) overtaken by a newer
    /// segment. Such an ACK can do no harm and its loss would hide a duplicate from the loss
    /// detection, so PAWS lets it through (Linux `tcp_disordered_ack` does the same).
    fn is_disordered_dup_ack(&self, seg: &TcpRepr<'_>) -> bool {
        seg.segment_len() == 0
            && seg.flags.ack()
            && seg.seq_number == self.rcv_nxt
            && seg.ack_number == self.snd_una
    }

    /// RFC 9293 §3.3 acceptance test for a segment of `len` sequence numbers at `seq`.
    fn sequence_acceptable(&self, seq: SeqNumber, len: usize) -> bool {
        let window = self.receive_window();
        let window_end = self.rcv_nxt + window.min(1 << 30);
        match (len, window) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => seq.in_range(self.rcv_nxt, window_end),
            (_, 0) => false,
            (len, _) => {
                let last = seq + (len.min(1 << 30) - 1);
                seq.in_range(self.rcv_nxt, window_end) || last.in_range(self.rcv_nxt, window_end)
            }
        }
    }

    /// "If an incoming segment is not acceptable, an acknowledgment should be sent in reply"
    /// (RFC 9293 §3.10.7.4 first). For a segment that carried data this is a duplicate ACK
    /// the peer may count, so it gets its own ACK point.
    fn ack_unacceptable(&mut self, seg: &TcpRepr<'_>) {
        if seg.segment_len() > 0 {
            // RFC 2883 §4: a segment wholly below RCV.NXT is a duplicate: report it.
            let dsack = (!seg.payload.is_empty())
                .then(|| self.stream_offset(seg.seq_number))
                .flatten()
                .filter(|&start| start < self.rcv_offset)
                .map(|start| {
                    (
                        start,
                        (start + seg.payload.len() as u64).min(self.rcv_offset),
                    )
                });
            self.push_ack_point(true, None, dsack);
        } else {
            self.ack_now = true;
        }
    }

    /// An RST exactly at RCV.NXT (RFC 5961 §3.2) ends the connection.
    fn on_acceptable_reset(&mut self) {
        match self.state {
            State::SynReceived if self.passive => self.return_to_listen(),
            State::TimeWait => {
                self.enter_closed();
                self.push_event(Event::Closed);
            }
            _ => {
                self.enter_closed();
                self.push_event(Event::Reset);
            }
        }
    }

    /// RFC 5961 §3.2 / §4.2 challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, rate limited
    /// per RFC 5961 §7.
    fn send_challenge_ack(&mut self, now: Instant) {
        if now.saturating_duration_since(self.challenge_window_start) >= Duration::from_secs(1) {
            self.challenge_window_start = now;
            self.challenge_acks_in_window = 0;
        }
        if self.challenge_acks_in_window < self.config.challenge_ack_limit {
            self.challenge_acks_in_window += 1;
            self.stats.challenge_acks += 1;
            self.ack_now = true;
        }
    }

    /// RFC 9293 §3.10.7.4 fifth, with RFC 5961 §5.2 ACK acceptability. Returns whether the
    /// segment survives for text processing.
    fn process_ack(&mut self, now: Instant, seg: &TcpRepr<'_>) -> bool {
        let ack = seg.ack_number;
        // RFC 5961 §5.2: acceptable iff SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.NXT (SND.MAX).
        let oldest_acceptable = SeqNumber(
            self.snd_una
                .0
                .wrapping_sub(self.max_snd_wnd.min(1 << 30) as u32),
        );
        if ack > self.snd_max || ack < oldest_acceptable {
            self.stats.segments_dropped += 1;
            self.send_challenge_ack(now);
            return false;
        }
        let old_una = self.snd_una;
        let new_window = usize::from(seg.window_len) << self.snd_wscale;
        if ack > self.snd_una {
            self.on_new_ack(now, seg);
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.flags.syn()
            && !seg.flags.fin()
            && self.snd_max > self.snd_una
            && new_window == self.snd_wnd
            && self.state != State::SynReceived
        {
            self.on_dup_ack(now);
        }
        // Window update: "If SND.UNA =< SEG.ACK =< SND.NXT".
        if ack >= old_una {
            self.update_send_window(seg);
        }
        // Our FIN acknowledged?
        if self.our_fin_acked() {
            match self.state {
                State::FinWait1 => self.state = State::FinWait2,
                State::Closing => self.enter_time_wait(now),
                State::LastAck => {
                    self.enter_closed();
                    self.push_event(Event::Closed);
                    return false;
                }
                _ => {}
            }
        }
        true
    }

    /// SND.WND <- SEG.WND if the segment is newer than the last window update
    /// (RFC 9293 §3.10.7.4: SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)).
    fn update_send_window(&mut self, seg: &TcpRepr<'_>) {
        if self.snd_wl1 < seg.seq_number
            || (self.snd_wl1 == seg.seq_number && self.snd_wl2 <= seg.ack_number)
        {
            // RFC 7323 §2.3: the window of a non-SYN segment is scaled.
            let scale = if seg.flags.syn() { 0 } else { self.snd_wscale };
            self.snd_wnd = usize::from(seg.window_len) << scale;
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = seg.ack_number;
        }
    }

    /// An ACK that acknowledges new data (SND.UNA < SEG.ACK =< SND.MAX).
    fn on_new_ack(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        let ack = seg.ack_number;
        let flight_size = self.flight_size();
        let bytes_acked = ack.distance_since(self.snd_una).unwrap_or(0) as usize;
        // Data bytes leave the send buffer; SYN and FIN occupy no buffer space.
        let buffer_start = self.send_buffer_seq();
        let buffer_end = buffer_start + self.send_buffer.len();
        let acked_data = ack
            .min(buffer_end)
            .distance_since(buffer_start)
            .unwrap_or(0);
        self.send_buffer.consume(acked_data as usize);
        self.snd_una = ack;
        if self.snd_nxt < self.snd_una {
            // The peer had data we were about to send again after a timeout.
            self.snd_nxt = self.snd_una;
        }
        self.dup_acks = 0;
        self.consecutive_rtos = 0;
        self.take_rtt_sample(now, seg);

        let context = self.ack_context(now, bytes_acked, flight_size);
        let mut restart_timer = true;
        match self.cc.on_ack(&context) {
            Response::Continue => {}
            Response::FastRetransmit => self.fast_retransmit_pending = true,
            Response::PartialAck { first } => {
                // RFC 6582 §3.2 step 5: retransmit the next hole; only the first partial ACK
                // restarts the timer ("Impatient" variant, RFC 6582 §4).
                self.fast_retransmit_pending = true;
                self.stats.partial_ack_retransmits += 1;
                restart_timer = first;
            }
        }
        // RFC 6298 (5.2) / (5.3).
        if self.snd_una == self.snd_max {
            self.rto_at = None;
        } else if restart_timer || self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        }
    }

    /// An RFC 5681 §2 duplicate ACK.
    fn on_dup_ack(&mut self, now: Instant) {
        self.dup_acks += 1;
        self.stats.dup_acks_received += 1;
        let context = self.ack_context(now, 0, self.flight_size());
        if self.cc.on_dup_ack(self.dup_acks, &context) == Response::FastRetransmit {
            self.fast_retransmit_pending = true;
            self.stats.fast_retransmits += 1;
        }
    }

    /// One RTT sample per ACK of new data: from TSecr when timestamps are on (RFC 7323 §4.1),
    /// else from the one timed segment, never a retransmitted one (Karn, RFC 6298 §3).
    fn take_rtt_sample(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        if self.timestamps {
            if let Some((_, tsecr)) = seg.options.timestamps
                && tsecr != 0
            {
                let millis = self.ts_now(now).wrapping_sub(tsecr);
                let rtt = Duration::from_millis(u64::from(millis));
                if rtt <= MAX_RTT_SAMPLE {
                    self.rtt.on_sample(rtt);
                }
            }
        } else if let Some((end, sent_at)) = self.rtt_timing
            && seg.ack_number >= end
        {
            self.rtt.on_sample(now.saturating_duration_since(sent_at));
            self.rtt_timing = None;
        }
    }

    /// RFC 9293 §3.10.7.4 seventh (segment text) and eighth (FIN), and the RFC 5681 §4.2 ACK
    /// policy. Nothing is copied: the delivered slice borrows from the segment.
    fn process_text<'a>(&mut self, now: Instant, seg: &TcpRepr<'a>) -> Option<(u64, &'a [u8])> {
        if !self.state.receives_data() || self.peer_fin_received {
            return None;
        }
        let mut payload = seg.payload;
        let mut fin = seg.flags.fin();
        // Where the payload starts relative to RCV.NXT; trim what we already have.
        let mut start = self.rcv_offset;
        let relative = seg.seq_number - self.rcv_nxt;
        if relative < 0 {
            let skip = relative.unsigned_abs() as usize;
            if skip > payload.len() {
                // Even the FIN is old (it was acceptable only for its ACK).
                payload = &[];
                fin = false;
            } else {
                payload = &payload[skip..];
            }
        } else {
            start += relative as u64;
        }
        // Trim to the receive window, and to the peer's FIN if we know where it is.
        let mut limit = self.rcv_offset + self.receive_window() as u64;
        if let Some(fin_offset) = self.peer_fin_offset {
            limit = limit.min(fin_offset);
        }
        let room = limit.saturating_sub(start) as usize;
        if payload.len() > room {
            payload = &payload[..room];
            fin = false;
        }
        let end = start + payload.len() as u64;

        // RFC 2883 §4: the part of a segment below RCV.NXT was a duplicate.
        let old_part = (relative < 0 && !seg.payload.is_empty()).then(|| {
            let skip = relative.unsigned_abs().min(seg.payload.len() as u32);
            (
                self.rcv_offset.saturating_sub(u64::from(skip)),
                self.rcv_offset,
            )
        });
        let delivered = if start > self.rcv_offset && (!payload.is_empty() || fin) {
            self.on_out_of_order(now, start, payload)
        } else if !payload.is_empty() {
            self.on_in_order(now, start, payload, old_part);
            Some((start, payload))
        } else {
            None
        };
        if let Some((_, bytes)) = delivered {
            self.stats.bytes_delivered += bytes.len() as u64;
        }
        if fin && self.peer_fin_offset.is_none() {
            self.peer_fin_offset = Some(end);
        }
        self.consume_peer_fin(now);
        delivered
    }

    /// In-order payload at `start` (= RCV.NXT's offset): RCV.NXT moves past it and past
    /// every range already held, and the ACK policy decides when the ACK goes out.
    fn on_in_order(
        &mut self,
        now: Instant,
        start: u64,
        payload: &[u8],
        duplicate: Option<(u64, u64)>,
    ) {
        let end = start + payload.len() as u64;
        let filled_hole = !self.assembler.is_empty();
        let new_offset = self.assembler.advance(end);
        self.advance_rcv_nxt(new_offset);
        self.rcv_mss_estimate = self
            .rcv_mss_estimate
            .max(payload.len())
            .min(self.receive_mss());
        self.unacked_bytes += payload.len();
        self.batch_segments += 1;
        let dsack = duplicate.filter(|_| self.sack);
        if filled_hole || dsack.is_some() {
            // RFC 5681 §4.2: "an immediate ACK" when a segment fills all or part of a gap;
            // and a duplicate is reported at once (RFC 2883), so the sender can undo.
            self.push_ack_point(false, None, dsack);
        } else if self.config.strict_acks() {
            if self.unacked_bytes >= self.config.ack_every_segments * self.rcv_mss_estimate {
                // RFC 5681 §4.2: at least every second full-sized segment (by default).
                self.push_ack_point(false, None, None);
            } else if self.delayed_ack_at.is_none() {
                self.delayed_ack_at = Some(now + self.config.delayed_ack);
            }
        } else if self.unacked_bytes >= self.config.ack_max_bytes.max(self.rcv_mss_estimate) {
            // Batch policy: no ACK covers more than a GRO batch (64 KiB).
            self.push_ack_point(false, None, None);
        } else if self.delayed_ack_at.is_none() {
            // The end of the batch decides (output.rs); this bounds the wait.
            self.delayed_ack_at = Some(now + self.config.delayed_ack);
        }
    }

    /// Payload (or a FIN) beyond RCV.NXT. Returns what it delivers: only bytes not already
    /// held.
    fn on_out_of_order<'a>(
        &mut self,
        now: Instant,
        start: u64,
        payload: &'a [u8],
    ) -> Option<(u64, &'a [u8])> {
        self.stats.out_of_order_segments += 1;
        let end = start + payload.len() as u64;
        if !payload.is_empty() && self.assembler.contains(start, end) {
            // A duplicate of bytes we hold: RFC 2883 §4 reports it, first, with its block.
            let dsack = self.sack.then_some((start, end));
            self.push_ack_point(true, Some(start), dsack);
            return None;
        }
        let mut delivered = None;
        let mut new_range = true;
        if !payload.is_empty() {
            let ranges_before = self.assembler.range_count();
            // A segment that only extends a held range leaves the count as it is.
            new_range = self
                .assembler
                .range_containing(start.saturating_sub(1))
                .is_none()
                && self.assembler.range_containing(end).is_none();
            self.assembler.insert(start, end);
            let merged_two = self.assembler.range_count() < ranges_before;
            new_range |= merged_two;
            if let Some((range_start, range_end)) = self.assembler.range_containing(start) {
                self.sack_report.on_arrival(range_start, range_end);
            }
            delivered = Some((start, payload));
        }
        // RFC 5681 §4.2: an immediate duplicate ACK, which lets the sender count duplicates.
        // With SACK and the batch policy, only the first three for one RCV.NXT must go at
        // once (they trigger fast retransmit); after that an ACK that only reports a block
        // grown by one segment may wait a little (Linux tcp_comp_sack), while one that
        // reports a new block or two blocks joined still goes at once.
        let compress = self.sack && !self.config.strict_acks() && self.dup_acks_out >= 3;
        if compress && !new_range {
            self.compressed_sacks += 1;
            if self.sack_compress_at.is_none() {
                let rtt_share = self
                    .rtt
                    .srtt()
                    .map_or(self.config.sack_compress_max, |srtt| srtt / 20);
                self.sack_compress_at = Some(now + rtt_share.min(self.config.sack_compress_max));
            }
        } else {
            self.dup_acks_out += 1;
            self.push_ack_point(true, Some(start), None);
        }
        delivered
    }

    /// The stream offset of sequence number `seq`, if it lies after the peer's SYN.
    pub(super) fn stream_offset(&self, seq: SeqNumber) -> Option<u64> {
        // Once the peer's FIN is in, RCV.NXT counts it: offset RCV.OFFSET is one below.
        let base = if self.peer_fin_received {
            SeqNumber(self.rcv_nxt.0.wrapping_sub(1))
        } else {
            self.rcv_nxt
        };
        u64::try_from(self.rcv_offset as i64 + i64::from(seq - base)).ok()
    }

    /// The sequence number of stream offset `offset` (offset 0 is IRS + 1).
    pub(super) fn sequence_of(&self, offset: u64) -> SeqNumber {
        SeqNumber(self.irs.0.wrapping_add(1).wrapping_add(offset as u32))
    }

    /// RCV.NXT moves to stream offset `offset`.
    fn advance_rcv_nxt(&mut self, offset: u64) {
        let step = offset.saturating_sub(self.rcv_offset);
        if step > 0 {
            self.dup_acks_out = 0;
            self.sack_report.forget_below(offset);
        }
        // A step is bounded by the receive window (< 2^30).
        self.rcv_nxt += step as u32;
        self.rcv_offset = offset;
    }

    /// RFC 9293 §3.10.7.4 eighth: once every byte before the FIN is here, the FIN counts.
    fn consume_peer_fin(&mut self, now: Instant) {
        if self.peer_fin_received || self.peer_fin_offset != Some(self.rcv_offset) {
            return;
        }
        self.peer_fin_received = true;
        self.rcv_nxt += 1u32;
        self.ack_now = true;
        self.push_event(Event::PeerFin {
            stream_len: self.rcv_offset,
        });
        match self.state {
            State::SynReceived | State::Established => self.state = State::CloseWait,
            State::FinWait1 => {
                if self.our_fin_acked() {
                    self.enter_time_wait(now);
                } else {
                    // Simultaneous close (RFC 9293 figure 13).
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    /// Records that an ACK for the current RCV.NXT is owed (see `AckPoint`), made due by the
    /// out-of-order segment at stream offset `trigger`, if any, reporting `dsack` first.
    pub(super) fn push_ack_point(
        &mut self,
        duplicate: bool,
        trigger: Option<u64>,
        dsack: Option<(u64, u64)>,
    ) {
        if self.ack_points.len() >= MAX_ACK_POINTS {
            // A caller that never polls must not make us grow without bound; one cumulative
            // ACK at the end of the batch covers everything.
            self.ack_now = true;
            return;
        }
        if duplicate {
            self.stats.dup_acks_sent += 1;
        }
        let sack_blocks = if self.sack {
            self.sack_blocks(trigger, dsack)
        } else {
            SackBlocks::default()
        };
        self.ack_points.push_back(AckPoint {
            ack: self.rcv_nxt,
            duplicate,
            sack_blocks,
        });
        self.last_ack_queued = self.rcv_nxt;
        self.unacked_bytes = 0;
        self.delayed_ack_at = None;
        self.compressed_sacks = 0;
        self.sack_compress_at = None;
    }
}
