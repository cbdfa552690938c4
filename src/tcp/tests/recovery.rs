//! Loss recovery as packet traces: RTO backoff (RFC 6298), fast retransmit and NewReno
//! partial ACKs (RFC 5681 §3.2, RFC 6582 §3.2).

use super::{IRS, Seg, established_client, recv, send, trace_config};
use crate::time::Instant;
use crate::wire::TcpFlags;

const PSH: TcpFlags = TcpFlags::PSH;

/// The peer's cumulative ACK for the first `n` kilobytes of our stream.
fn ack_of(iss: u32, n: u32) -> Seg {
    Seg::ack(IRS + 1, iss + 1 + n * 1000)
}

/// Our segment number `n` (bytes n*1000 .. n*1000+1000 of a stream of zeros).
fn segment(iss: u32, n: u32) -> Seg {
    Seg::ack(iss + 1 + n * 1000, IRS + 1).data(&[0; 1000])
}

#[test]
fn retransmission_timeout_backs_off_and_sets_the_loss_window() {
    let (mut t, iss) = established_client(trace_config());
    assert_eq!(t.conn.send(&[0; 1000]), 1000);
    recv!(t, [segment(iss, 0).with(PSH)]);
    // The handshake gave an RTT sample of 0: the RTO is the 200 ms floor.
    assert_eq!(t.conn.poll_timeout(), Some(Instant::from_millis(200)));
    t.at(200);
    recv!(t, [segment(iss, 0).with(PSH)]);
    let stats = *t.conn.stats();
    assert_eq!((stats.rtos, stats.retransmits), (1, 1));
    // RFC 5681 §3.1: cwnd = LW = 1 MSS, ssthresh = max(FlightSize / 2, 2*SMSS).
    assert_eq!((stats.cwnd, stats.ssthresh), (1000, 2000));
    // RFC 6298 (5.5): 400 ms, then 800 ms.
    assert_eq!(t.conn.poll_timeout(), Some(Instant::from_millis(600)));
    t.at(600);
    recv!(t, [segment(iss, 0).with(PSH)]);
    assert_eq!(t.conn.poll_timeout(), Some(Instant::from_millis(1400)));
    assert_eq!(
        t.conn.stats().ssthresh,
        2000,
        "a repeated timeout holds ssthresh"
    );
    t.at(700);
    send!(t, ack_of(iss, 1));
    assert_eq!(t.conn.poll_timeout(), None);
    // Karn: the ACK of a retransmitted segment is no RTT sample, so the backed-off RTO
    // (800 ms) stays for the next segment.
    assert_eq!(t.conn.send(&[0; 1000]), 1000);
    recv!(t, [segment(iss, 1).with(PSH)]);
    assert_eq!(t.conn.poll_timeout(), Some(Instant::from_millis(1500)));
}

#[test]
fn timeout_goes_back_to_snd_una_in_slow_start() {
    let (mut t, iss) = established_client(trace_config());
    assert_eq!(t.conn.send(&[0; 10_000]), 10_000);
    assert_eq!(
        t.recv_all().len(),
        10,
        "initial window of 10 segments (RFC 6928)"
    );
    t.at(200);
    recv!(t, [segment(iss, 0)]);
    // Slow start from one segment: the ACK lets two more out.
    send!(t, ack_of(iss, 1));
    recv!(t, [segment(iss, 1), segment(iss, 2)]);
    // The peer had the rest: SND.UNA jumps, nothing is resent twice.
    send!(t, ack_of(iss, 10));
    recv!(t, []);
    assert_eq!(t.conn.stats().retransmits, 3);
    assert_eq!(t.conn.stats().bytes_in_flight, 0);
    assert_eq!(t.conn.poll_timeout(), None);
}

#[test]
fn fast_retransmit_halves_the_window_and_newreno_fills_the_next_hole() {
    let (mut t, iss) = established_client(trace_config());
    assert_eq!(t.conn.send(&[0; 10_000]), 10_000);
    assert_eq!(t.recv_all().len(), 10);
    // Segments 1 and 4 are lost. The peer ACKs segment 0, then each later arrival
    // duplicates that ACK.
    send!(t, ack_of(iss, 1));
    send!(t, ack_of(iss, 1));
    send!(t, ack_of(iss, 1));
    recv!(t, []);
    send!(t, ack_of(iss, 1));
    // Third duplicate: fast retransmit, ssthresh = FlightSize / 2, cwnd = ssthresh + 3*SMSS.
    recv!(t, [segment(iss, 1)]);
    let stats = *t.conn.stats();
    assert_eq!(stats.fast_retransmits, 1);
    assert_eq!(stats.dup_acks_received, 3);
    assert_eq!((stats.ssthresh, stats.cwnd), (4500, 7500));
    // Further duplicates inflate cwnd by one SMSS each.
    send!(t, ack_of(iss, 1));
    assert_eq!(t.conn.stats().cwnd, 8500);
    recv!(t, []);
    // Partial ACK (up to the second hole): retransmit segment 4 at once, deflate cwnd by
    // the newly acknowledged 3000 bytes and add back one SMSS (RFC 6582 §3.2 step 5).
    send!(t, ack_of(iss, 4));
    recv!(t, [segment(iss, 4)]);
    let stats = *t.conn.stats();
    assert_eq!(stats.partial_ack_retransmits, 1);
    assert_eq!(stats.cwnd, 6500);
    assert_eq!(stats.retransmits, 2);
    // Full ACK: leave recovery with cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
    send!(t, ack_of(iss, 10));
    let stats = *t.conn.stats();
    assert_eq!((stats.cwnd, stats.ssthresh), (2000, 4500));
    assert_eq!(stats.rtos, 0);
    assert_eq!(t.conn.poll_timeout(), None);
}

#[test]
fn window_updates_and_data_segments_are_not_duplicate_acks() {
    let (mut t, iss) = established_client(trace_config());
    assert_eq!(t.conn.send(&[0; 5000]), 5000);
    assert_eq!(t.recv_all().len(), 5);
    // Same ack number, but a new window: a window update, not a duplicate (RFC 5681 §2).
    send!(t, ack_of(iss, 1).window(60_000));
    send!(t, ack_of(iss, 1).window(50_000));
    send!(t, ack_of(iss, 1).window(40_000));
    // Same ack number, but carrying data: not a duplicate either.
    for n in 0..3u32 {
        send!(
            t,
            Seg::ack(IRS + 1 + n * 10, iss + 1001)
                .window(40_000)
                .data(&[1; 10])
        );
    }
    assert_eq!(t.conn.stats().dup_acks_received, 0);
    assert_eq!(t.conn.stats().fast_retransmits, 0);
}
