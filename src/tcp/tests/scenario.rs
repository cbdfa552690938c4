//! RFC scenarios as packet traces. `send!` feeds the connection a segment from its peer,
//! `recv!` lists exactly what it emits in reply (ending the batch). Time moves by `at(ms)`.
//! Traces use MSS 1000, no options unless a test turns them on, and IRS = 5000 for the peer.

use super::{
    CLIENT, IRS, SERVER, Seg, Trace, client_iss, established_client, established_server, recv,
    send, trace_config,
};
use crate::tcp::{Config, Event, State, isn};
use crate::time::Instant;
use crate::wire::TcpFlags;

const FIN: TcpFlags = TcpFlags::FIN;
const RST: TcpFlags = TcpFlags::RST;
const PSH: TcpFlags = TcpFlags::PSH;

/// A full-sized data segment number `n` from the peer (bytes n*1000 .. n*1000+1000).
fn data(n: u32, ack: u32) -> Seg {
    Seg::ack(IRS + 1 + n * 1000, ack).data(&[n as u8; 1000])
}

// ---------------------------------------------------------------- handshakes (RFC 9293 §3.5)

#[test]
fn active_open_three_way_handshake() {
    let mut t = Trace::client(trace_config());
    let iss = client_iss();
    let syn = recv!(t, [Seg::syn(iss).window(65535).mss(1000)]);
    assert!(!syn[0].options.sack_permitted, "SACK is off by default");
    assert_eq!(t.state(), State::SynSent);
    send!(t, Seg::syn(IRS).acking(iss + 1).mss(1000));
    assert_eq!(t.state(), State::Established);
    recv!(t, [Seg::ack(iss + 1, IRS + 1).window(65535)]);
    assert_eq!(t.events(), [Event::Connected]);
    assert_eq!(t.conn.send_mss(), 1000);
}

#[test]
fn passive_open_three_way_handshake() {
    let mut t = Trace::server(trace_config());
    // A stray ACK does not open anything.
    send!(t, Seg::ack(1, 2));
    recv!(t, []);
    assert_eq!(t.state(), State::Listen);
    send!(t, Seg::syn(IRS).mss(536));
    assert_eq!(t.state(), State::SynReceived);
    let iss =
        isn::initial_sequence_number(Instant::ZERO, &[42; 16], SERVER.into(), CLIENT.into()).0;
    recv!(t, [Seg::syn(iss).acking(IRS + 1).window(65535).mss(1000)]);
    // The handshake's ACK carries the request.
    let request = b"GET / HTTP/1.1\r\n\r\n";
    let delivered = send!(t, Seg::ack(IRS + 1, iss + 1).data(request));
    assert_eq!(delivered, Some((0, request.to_vec())));
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.events(), [Event::Connected]);
    // No peer MSS beyond 536 was offered, so we send at most 536 bytes per segment.
    assert_eq!(t.conn.send_mss(), 536);
}

#[test]
fn syn_received_resends_syn_ack_and_returns_to_listen_on_reset() {
    let mut t = Trace::server(trace_config());
    send!(t, Seg::syn(IRS));
    let iss = t.recv().expect("SYN-ACK").seq;
    recv!(t, []);
    // The client did not get our SYN-ACK and repeats its SYN.
    send!(t, Seg::syn(IRS));
    recv!(t, [Seg::syn(iss).acking(IRS + 1)]);
    // A reset exactly at RCV.NXT sends a passive open back to LISTEN (RFC 9293 §3.10.7.4).
    send!(t, Seg::new(RST, IRS + 1));
    assert_eq!(t.state(), State::Listen);
    recv!(t, []);
    send!(t, Seg::syn(IRS + 7));
    assert_eq!(t.state(), State::SynReceived);
    // A different SYN in the window also sends a passive open back to LISTEN
    // (RFC 9293 §3.10.7.4 fourth).
    t.recv_all();
    send!(t, Seg::syn(IRS + 100));
    assert_eq!(t.state(), State::Listen);
    recv!(t, []);
}

#[test]
fn simultaneous_open() {
    // RFC 9293 figure 8.
    let mut t = Trace::client(trace_config());
    let iss = client_iss();
    recv!(t, [Seg::syn(iss)]);
    send!(t, Seg::syn(IRS).mss(1000));
    assert_eq!(t.state(), State::SynReceived);
    recv!(t, [Seg::syn(iss).acking(IRS + 1).mss(1000)]);
    send!(t, Seg::syn(IRS).acking(iss + 1).mss(1000));
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.events(), [Event::Connected]);
    recv!(t, []);
}

#[test]
fn syn_sent_answers_a_bad_ack_with_reset() {
    let mut t = Trace::client(trace_config());
    let iss = client_iss();
    recv!(t, [Seg::syn(iss)]);
    send!(t, Seg::syn(IRS).acking(iss + 77));
    recv!(t, [Seg::new(RST, iss + 77)]);
    assert_eq!(t.state(), State::SynSent);
    // A RST that does not acknowledge our SYN is ignored (RFC 5961 §3.2)...
    send!(t, Seg::new(RST, IRS));
    assert_eq!(t.state(), State::SynSent);
    // ...one that does means "connection refused".
    send!(t, Seg::new(RST, 0).acking(iss + 1));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.events(), [Event::Reset]);
}

#[test]
fn syn_retries_run_out_with_timed_out() {
    let config = Config {
        syn_retries: 2,
        ..trace_config()
    };
    let mut t = Trace::client(config);
    let iss = client_iss();
    recv!(t, [Seg::syn(iss)]);
    // RTO 1 s, then 2 s (RFC 6298 (2.1), (5.5)).
    assert_eq!(t.conn.poll_timeout(), Some(Instant::from_millis(1000)));
    t.at(1000);
    recv!(t, [Seg::syn(iss)]);
    assert_eq!(t.conn.poll_timeout(), Some(Instant::from_millis(3000)));
    t.at(3000);
    recv!(t, [Seg::syn(iss)]);
    assert_eq!(t.conn.poll_timeout(), Some(Instant::from_millis(7000)));
    t.at(7000);
    recv!(t, []);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.events(), [Event::TimedOut]);
    assert_eq!(t.conn.stats().rtos, 3);
}

// ------------------------------------------------------------------ receive path and ACKs

#[test]
fn acks_every_second_full_segment_with_distinct_ack_numbers() {
    let (mut t, iss) = established_client(trace_config());
    let ack = iss + 1;
    // A lone segment waits for the delayed-ACK timer.
    assert_eq!(send!(t, data(0, ack)), Some((0, vec![0; 1000])));
    recv!(t, []);
    assert_eq!(t.conn.poll_timeout(), Some(Instant::from_millis(40)));
    // The second full-sized segment is acknowledged at once.
    send!(t, data(1, ack));
    recv!(t, [Seg::ack(ack, IRS + 1 + 2000)]);
    // One batch of five: ACKs after the 2nd and 4th carry their own ack numbers, and the
    // end of the batch acknowledges the 5th. No ack number repeats.
    for n in 2..7 {
        assert!(send!(t, data(n, ack)).is_some());
    }
    recv!(
        t,
        [
            Seg::ack(ack, IRS + 1 + 4000),
            Seg::ack(ack, IRS + 1 + 6000),
            Seg::ack(ack, IRS + 1 + 7000),
        ]
    );
    assert_eq!(t.conn.poll_timeout(), None);
    // A lone segment later: ACKed when the 40 ms delayed-ACK timer fires.
    t.at(100);
    send!(t, data(7, ack));
    recv!(t, []);
    t.at(139);
    recv!(t, []);
    t.at(140);
    recv!(t, [Seg::ack(ack, IRS + 1 + 8000)]);
    assert_eq!(t.conn.stats().dup_acks_sent, 0);
    assert_eq!(t.conn.received_in_order(), 8000);
}

#[test]
fn stretch_acks_come_every_n_segments_and_at_the_end_of_the_batch() {
    let (mut t, iss) = established_client(Config {
        ack_every_segments: 4,
        ..trace_config()
    });
    let ack = iss + 1;
    // A batch of ten: ACKs after the 4th and 8th, and the end of the batch covers the rest.
    for n in 0..10 {
        assert!(send!(t, data(n, ack)).is_some());
    }
    recv!(
        t,
        [
            Seg::ack(ack, IRS + 1 + 4000),
            Seg::ack(ack, IRS + 1 + 8000),
            Seg::ack(ack, IRS + 1 + 10000),
        ]
    );
    // Out-of-order segments are still answered at once, one duplicate ACK each.
    send!(t, data(11, ack));
    recv!(t, [Seg::ack(ack, IRS + 1 + 10000)]);
    assert_eq!(t.conn.stats().dup_acks_sent, 1);
}

#[test]
fn out_of_order_segments_draw_dup_acks_and_a_filled_hole_an_immediate_ack() {
    let (mut t, iss) = established_client(trace_config());
    let ack = iss + 1;
    send!(t, data(0, ack));
    send!(t, data(1, ack));
    recv!(t, [Seg::ack(ack, IRS + 1 + 2000)]);
    // Segment 2 is lost; 3 and 4 are delivered at their offsets, each with a dup ACK.
    assert_eq!(send!(t, data(3, ack)), Some((3000, vec![3; 1000])));
    assert_eq!(send!(t, data(4, ack)), Some((4000, vec![4; 1000])));
    // A duplicate of data already held is not delivered again, but still ACKed.
    assert_eq!(send!(t, data(3, ack)), None);
    recv!(
        t,
        [
            Seg::ack(ack, IRS + 1 + 2000),
            Seg::ack(ack, IRS + 1 + 2000),
            Seg::ack(ack, IRS + 1 + 2000),
        ]
    );
    // The hole fills: RCV.NXT jumps over 3 and 4 and the ACK leaves at once.
    assert_eq!(send!(t, data(2, ack)), Some((2000, vec![2; 1000])));
    recv!(t, [Seg::ack(ack, IRS + 1 + 5000)]);
    assert_eq!(t.conn.received_in_order(), 5000);
    assert_eq!(t.conn.stats().dup_acks_sent, 3);
    // An old duplicate (before RCV.NXT) is dropped with an ACK (RFC 9293 §3.10.7.4 first).
    assert_eq!(send!(t, data(1, ack)), None);
    recv!(t, [Seg::ack(ack, IRS + 1 + 5000)]);
}

#[test]
fn data_is_trimmed_to_the_receive_window() {
    let (mut t, iss) = established_client(trace_config());
    // 65535-byte window: a segment at offset 65000 keeps 535 bytes.
    let seg = Seg::ack(IRS + 1 + 65000, iss + 1).data(&[7; 1000]);
    assert_eq!(send!(t, seg), Some((65000, vec![7; 535])));
    // Entirely beyond the window: dropped with an ACK.
    let seg = Seg::ack(IRS + 1 + 70000, iss + 1).data(&[7; 1000]);
    assert_eq!(send!(t, seg), None);
    recv!(t, [Seg::ack(iss + 1, IRS + 1), Seg::ack(iss + 1, IRS + 1)]);
}

#[test]
fn sequence_numbers_wrap_and_offsets_keep_counting() {
    let mut t = Trace::client(trace_config());
    let iss = t.recv().expect("SYN").seq;
    let irs = u32::MAX - 500;
    send!(t, Seg::syn(irs).acking(iss + 1));
    recv!(t, [Seg::ack(iss + 1, irs.wrapping_add(1))]);
    for n in 0..3u32 {
        let seq = irs.wrapping_add(1 + n * 1000);
        let delivered = send!(t, Seg::ack(seq, iss + 1).data(&[n as u8; 1000]));
        assert_eq!(delivered, Some((u64::from(n) * 1000, vec![n as u8; 1000])));
    }
    assert_eq!(t.conn.received_in_order(), 3000);
    recv!(
        t,
        [
            Seg::ack(iss + 1, irs.wrapping_add(2001)),
            Seg::ack(iss + 1, irs.wrapping_add(3001))
        ]
    );
}

// ------------------------------------------------------------------------------ closing

#[test]
fn active_close_through_time_wait() {
    let (mut t, iss) = established_client(trace_config());
    t.conn.close();
    assert_eq!(t.state(), State::FinWait1);
    recv!(t, [Seg::ack(iss + 1, IRS + 1).with(FIN)]);
    send!(t, Seg::ack(IRS + 1, iss + 2));
    assert_eq!(t.state(), State::FinWait2);
    send!(t, Seg::ack(IRS + 1, iss + 2).with(FIN));
    assert_eq!(t.state(), State::TimeWait);
    recv!(t, [Seg::ack(iss + 2, IRS + 2)]);
    assert_eq!(t.events(), [Event::PeerFin { stream_len: 0 }]);
    // 2*MSL = 1 s. A retransmitted FIN is ACKed again and restarts the timer.
    t.at(500);
    send!(t, Seg::ack(IRS + 1, iss + 2).with(FIN));
    recv!(t, [Seg::ack(iss + 2, IRS + 2)]);
    t.at(1499);
    assert_eq!(t.state(), State::TimeWait);
    t.at(1500);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.events(), [Event::Closed]);
    // A segment for a closed connection draws a reset.
    send!(t, Seg::ack(IRS + 2, iss + 2).data(b"late"));
    recv!(t, [Seg::new(RST, iss + 2)]);
}

#[test]
fn passive_close_through_last_ack() {
    let (mut t, iss) = established_server(trace_config());
    assert_eq!(t.conn.send(b"body"), 4);
    send!(t, Seg::ack(IRS + 1, iss + 1).with(FIN));
    assert_eq!(t.state(), State::CloseWait);
    assert_eq!(t.events(), [Event::PeerFin { stream_len: 0 }]);
    t.conn.close();
    assert_eq!(t.state(), State::LastAck);
    // Data, FIN and the ACK of the peer's FIN travel in one segment.
    recv!(
        t,
        [Seg::ack(iss + 1, IRS + 2).with(PSH | FIN).data(b"body")]
    );
    send!(t, Seg::ack(IRS + 2, iss + 6));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.events(), [Event::Closed]);
}

#[test]
fn simultaneous_close() {
    // RFC 9293 figure 13.
    let (mut t, iss) = established_client(trace_config());
    t.conn.close();
    recv!(t, [Seg::ack(iss + 1, IRS + 1).with(FIN)]);
    // The peer's FIN crosses ours: it does not acknowledge our FIN.
    send!(t, Seg::ack(IRS + 1, iss + 1).with(FIN));
    assert_eq!(t.state(), State::Closing);
    recv!(t, [Seg::ack(iss + 2, IRS + 2)]);
    send!(t, Seg::ack(IRS + 2, iss + 2));
    assert_eq!(t.state(), State::TimeWait);
    t.at(1000);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        [Event::PeerFin { stream_len: 0 }, Event::Closed]
    );
}

#[test]
fn abort_sends_reset() {
    let (mut t, iss) = established_client(trace_config());
    t.conn.abort();
    assert_eq!(t.state(), State::Closed);
    recv!(t, [Seg::new(RST, iss + 1)]);
}

// ------------------------------------------------------------------------ RFC 5961 and RST

#[test]
fn reset_exactly_at_rcv_nxt_resets() {
    let (mut t, _) = established_client(trace_config());
    send!(t, Seg::new(RST, IRS + 1));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.events(), [Event::Reset]);
    recv!(t, []);
}

#[test]
fn reset_in_window_but_not_exact_draws_a_challenge_ack() {
    let (mut t, iss) = established_client(trace_config());
    send!(t, Seg::new(RST, IRS + 1 + 100));
    assert_eq!(t.state(), State::Established);
    recv!(t, [Seg::ack(iss + 1, IRS + 1)]);
    assert_eq!(t.conn.stats().challenge_acks, 1);
    assert_eq!(t.events(), []);
}

#[test]
fn reset_outside_the_window_is_dropped_silently() {
    let (mut t, _) = established_client(trace_config());
    send!(t, Seg::new(RST, IRS + 1 + 100_000));
    send!(t, Seg::new(RST, IRS - 10));
    assert_eq!(t.state(), State::Established);
    recv!(t, []);
}

#[test]
fn blind_syn_draws_a_challenge_ack_and_does_not_kill() {
    let (mut t, iss) = established_client(trace_config());
    send!(t, Seg::syn(IRS + 1 + 10));
    assert_eq!(t.state(), State::Established);
    recv!(t, [Seg::ack(iss + 1, IRS + 1)]);
    assert_eq!(t.conn.stats().challenge_acks, 1);
    // The connection still works.
    assert!(send!(t, data(0, iss + 1)).is_some());
}

#[test]
fn unacceptable_acks_are_dropped_with_an_ack() {
    let (mut t, iss) = established_client(trace_config());
    // RFC 5961 §5.2: SEG.ACK beyond SND.NXT: drop (the data too), send an ACK.
    assert_eq!(send!(t, data(0, iss + 1000)), None);
    recv!(t, [Seg::ack(iss + 1, IRS + 1)]);
    // SEG.ACK older than SND.UNA - MAX.SND.WND: same.
    assert_eq!(send!(t, data(0, iss.wrapping_sub(70_000))), None);
    recv!(t, [Seg::ack(iss + 1, IRS + 1)]);
    // A merely old ACK within MAX.SND.WND is fine: its data is delivered.
    assert!(send!(t, data(0, iss.wrapping_sub(100))).is_some());
    assert_eq!(t.state(), State::Established);
}

// --------------------------------------------------------------------- windows and PAWS

#[test]
fn zero_window_is_probed_with_backoff_until_it_opens() {
    let (mut t, iss) = established_client(trace_config());
    send!(t, Seg::ack(IRS + 1, iss + 1).window(0));
    assert_eq!(t.conn.send(b"hello"), 5);
    recv!(t, []);
    // The RTO from the handshake sample is the 200 ms floor; probes back off from there.
    assert_eq!(t.conn.poll_timeout(), Some(Instant::from_millis(200)));
    t.at(200);
    recv!(t, [Seg::ack(iss, IRS + 1)]);
    send!(t, Seg::ack(IRS + 1, iss + 1).window(0));
    assert_eq!(t.conn.poll_timeout(), Some(Instant::from_millis(600)));
    t.at(600);
    recv!(t, [Seg::ack(iss, IRS + 1)]);
    assert_eq!(t.conn.poll_timeout(), Some(Instant::from_millis(1400)));
    // The window opens: the data goes.
    send!(t, Seg::ack(IRS + 1, iss + 1).window(1000));
    recv!(t, [Seg::ack(iss + 1, IRS + 1).with(PSH).data(b"hello")]);
    assert_eq!(t.conn.stats().window_probes, 2);
}

#[test]
fn our_zero_window_is_announced_and_reopened() {
    let (mut t, iss) = established_client(trace_config());
    t.conn.set_receive_window(0);
    // A probe byte at RCV.NXT is not accepted, but answered with our (zero) window.
    assert_eq!(send!(t, Seg::ack(IRS + 1, iss + 1).data(b"x")), None);
    recv!(t, [Seg::ack(iss + 1, IRS + 1).window(0)]);
    // Reopening the window sends a window update at once.
    t.conn.set_receive_window(20_000);
    recv!(t, [Seg::ack(iss + 1, IRS + 1).window(20_000)]);
    assert!(send!(t, Seg::ack(IRS + 1, iss + 1).data(b"x")).is_some());
}

#[test]
fn window_scaling_is_negotiated_and_applied() {
    let config = Config {
        window_scaling: true,
        max_receive_window: 1 << 20,
        initial_receive_window: 1 << 20,
        ..trace_config()
    };
    let mut t = Trace::client(config.clone());
    let iss = client_iss();
    // 1 MiB needs a shift of 5 to fit in 16 bits; the SYN's own window is not scaled.
    let syn = recv!(t, [Seg::syn(iss).window(65535)]);
    assert_eq!(syn[0].options.window_scale, Some(5));
    send!(t, Seg::syn(IRS).acking(iss + 1).window(100).window_scale(7));
    recv!(t, [Seg::ack(iss + 1, IRS + 1).window(32768)]);
    assert_eq!(t.conn.stats().rwnd, 100);
    send!(t, Seg::ack(IRS + 1, iss + 1).window(100));
    assert_eq!(t.conn.stats().rwnd, 100 << 7);

    // A peer without window scaling: neither side scales, our window stops at 65535.
    let mut t = Trace::client(config);
    t.recv();
    send!(t, Seg::syn(IRS).acking(iss + 1).window(100));
    recv!(t, [Seg::ack(iss + 1, IRS + 1).window(65535)]);
    send!(t, Seg::ack(IRS + 1, iss + 1).window(100));
    assert_eq!(t.conn.stats().rwnd, 100);
}

#[test]
fn paws_drops_old_duplicates_with_an_ack() {
    let config = Config {
        timestamps: true,
        ..trace_config()
    };
    let mut t = Trace::client(config);
    let iss = client_iss();
    let syn = t.recv().expect("SYN");
    let (our_tsval, echo) = syn.options.timestamps.expect("timestamps offered");
    assert_eq!(echo, 0);
    send!(
        t,
        Seg::syn(IRS)
            .acking(iss + 1)
            .mss(1000)
            .timestamps(100, our_tsval)
    );
    let ack = recv!(t, [Seg::ack(iss + 1, IRS + 1)]);
    assert_eq!(ack[0].options.timestamps, Some((our_tsval, 100)));
    // 1000 - 12 bytes of timestamps option.
    assert_eq!(t.conn.send_mss(), 988);
    let seg = |n: u32, tsval: u32| {
        Seg::ack(IRS + 1 + n * 988, iss + 1)
            .data(&[n as u8; 988])
            .timestamps(tsval, our_tsval)
    };
    assert!(send!(t, seg(0, 200)).is_some());
    // An older TSval: an old duplicate from a previous wrap of the sequence space. Dropped,
    // acknowledged (RFC 7323 §5.3 R1), never delivered.
    assert_eq!(send!(t, seg(1, 150)), None);
    let reply = recv!(t, [Seg::ack(iss + 1, IRS + 1 + 988)]);
    assert_eq!(reply[0].options.timestamps, Some((our_tsval, 200)));
    assert_eq!(t.conn.stats().paws_drops, 1);
    // The genuine segment with a fresh TSval is accepted.
    assert!(send!(t, seg(1, 201)).is_some());
    // A pure duplicate ACK overtaken by newer segments is let through (Linux does the same).
    send!(
        t,
        Seg::ack(IRS + 1 + 2 * 988, iss + 1).timestamps(150, our_tsval)
    );
    assert_eq!(t.conn.stats().paws_drops, 1);
    // A RST is exempt from PAWS (RFC 7323 §5.3).
    send!(t, Seg::new(RST, IRS + 1 + 2 * 988).timestamps(1, 0));
    assert_eq!(t.state(), State::Closed);
}

#[test]
fn rtt_is_measured_from_the_timestamp_echo() {
    let config = Config {
        timestamps: true,
        ..trace_config()
    };
    let mut t = Trace::client(config);
    let iss = client_iss();
    let (tsval, _) = t.recv().expect("SYN").options.timestamps.expect("TS");
    t.at(30);
    send!(t, Seg::syn(IRS).acking(iss + 1).timestamps(100, tsval));
    // The SYN-ACK echoes the SYN's TSval sent at 0 ms: a 30 ms sample.
    assert_eq!(t.conn.stats().srtt_micros, 30_000);
    recv!(t, [Seg::ack(iss + 1, IRS + 1)]);
    assert_eq!(t.conn.send(&[1; 100]), 100);
    let sent = t.recv().expect("data");
    let (data_tsval, _) = sent.options.timestamps.expect("TS");
    t.at(40);
    send!(t, Seg::ack(IRS + 1, iss + 101).timestamps(101, data_tsval));
    // 7/8 * 30 + 1/8 * 10 = 27.5 ms
    assert_eq!(t.conn.stats().srtt_micros, 27_500);
}

#[test]
fn blind_data_at_syn_is_ignored() {
    // A segment without ACK in a synchronized state is dropped (RFC 9293 §3.10.7.4 fifth).
    let (mut t, _) = established_client(trace_config());
    assert_eq!(
        send!(t, Seg::new(TcpFlags::NONE, IRS + 1).data(b"abc")),
        None
    );
    recv!(t, []);
}

#[test]
fn fin_out_of_order_counts_once_the_hole_fills() {
    let (mut t, iss) = established_client(trace_config());
    let ack = iss + 1;
    // Data 1 and the FIN arrive before data 0.
    assert_eq!(
        send!(t, data(1, ack).with(FIN)),
        Some((1000, vec![1; 1000]))
    );
    recv!(t, [Seg::ack(ack, IRS + 1)]);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.events(), []);
    assert_eq!(send!(t, data(0, ack)), Some((0, vec![0; 1000])));
    // The hole fills (immediate ACK up to the FIN), then the FIN itself is acknowledged.
    recv!(
        t,
        [Seg::ack(ack, IRS + 1 + 2000), Seg::ack(ack, IRS + 2 + 2000)]
    );
    assert_eq!(t.state(), State::CloseWait);
    assert_eq!(t.events(), [Event::PeerFin { stream_len: 2000 }]);
    // Data the peer claims after its FIN is never delivered.
    assert_eq!(send!(t, data(2, ack)), None);
}

#[test]
fn lost_fin_is_retransmitted_by_the_timer() {
    let (mut t, iss) = established_server(trace_config());
    assert_eq!(t.conn.send(b"bye"), 3);
    t.conn.close();
    recv!(t, [Seg::ack(iss + 1, IRS + 1).with(PSH | FIN).data(b"bye")]);
    // The data is acknowledged, the FIN is not.
    send!(t, Seg::ack(IRS + 1, iss + 4));
    assert_eq!(t.state(), State::FinWait1);
    let deadline = t.conn.poll_timeout().expect("the FIN is timed");
    t.at(deadline.total_millis());
    recv!(t, [Seg::ack(iss + 4, IRS + 1).with(FIN)]);
    send!(t, Seg::ack(IRS + 1, iss + 5));
    assert_eq!(t.state(), State::FinWait2);
    assert_eq!(t.conn.poll_timeout(), None);
}

#[test]
fn send_takes_what_fits_and_nothing_after_close() {
    let config = Config {
        send_buffer_capacity: 1500,
        ..trace_config()
    };
    let (mut t, iss) = established_client(config);
    assert_eq!(t.conn.send(&[5; 1000]), 1000);
    assert_eq!(t.conn.send(&[6; 1000]), 500);
    assert_eq!(t.conn.send_capacity(), 0);
    recv!(
        t,
        [
            Seg::ack(iss + 1, IRS + 1).data(&[5; 1000]),
            Seg::ack(iss + 1001, IRS + 1).with(PSH).data(&[6; 500]),
        ]
    );
    send!(t, Seg::ack(IRS + 1, iss + 1001));
    assert_eq!(t.conn.send_capacity(), 1000);
    t.conn.close();
    assert_eq!(t.conn.send(b"more"), 0);
    assert_eq!(t.conn.send_capacity(), 0);
}

#[test]
fn segments_of_other_connections_are_ignored() {
    let (mut t, iss) = established_client(trace_config());
    let seg = data(0, iss + 1);
    let mut repr = seg.repr(SERVER.port() + 1, CLIENT.port());
    let delivered = t.conn.on_segment(t.now, *SERVER.ip(), *CLIENT.ip(), &repr);
    assert_eq!(delivered.data, None);
    repr = seg.repr(SERVER.port(), CLIENT.port());
    let other_host = std::net::Ipv4Addr::new(10, 0, 0, 9);
    let delivered = t.conn.on_segment(t.now, other_host, *CLIENT.ip(), &repr);
    assert_eq!(delivered.data, None);
    recv!(t, []);
    assert_eq!(
        t.conn.stats().segments_received,
        1,
        "only the SYN-ACK counted"
    );
}

#[test]
fn close_in_syn_received_sends_fin_after_the_handshake() {
    let mut t = Trace::server(trace_config());
    send!(t, Seg::syn(IRS));
    let iss = t.recv().expect("SYN-ACK").seq;
    assert_eq!(t.conn.send(b"hi"), 2);
    t.conn.close();
    assert_eq!(t.state(), State::SynReceived);
    recv!(t, []);
    send!(t, Seg::ack(IRS + 1, iss + 1));
    assert_eq!(t.state(), State::FinWait1);
    assert_eq!(t.events(), [Event::Connected]);
    recv!(t, [Seg::ack(iss + 1, IRS + 1).with(PSH | FIN).data(b"hi")]);
}

#[test]
fn a_window_opened_by_two_segments_is_announced_at_once() {
    let config = Config {
        initial_receive_window: 10_000,
        ..trace_config()
    };
    let (mut t, iss) = established_client(config);
    // One segment more: not worth a segment of its own (RFC 9293 §3.8.6.2.2).
    t.conn.set_receive_window(11_000);
    recv!(t, []);
    // Two segments more than advertised: a window update (not a duplicate: the window moved).
    t.conn.set_receive_window(12_000);
    recv!(t, [Seg::ack(iss + 1, IRS + 1).window(12_000)]);
    // The same window again: nothing.
    t.conn.set_receive_window(12_000);
    recv!(t, []);
}

#[test]
fn stream_offsets_go_past_four_gibibytes() {
    let config = Config {
        window_scaling: true,
        max_receive_window: 64 << 20,
        initial_receive_window: 64 << 20,
        ..trace_config()
    };
    let mut t = Trace::client(config);
    let iss = t.recv().expect("SYN").seq;
    send!(t, Seg::syn(IRS).acking(iss + 1).window_scale(7));
    t.recv_all();
    // 70,000 segments of 65,000 bytes: 4.55 GB, so RCV.NXT wraps once. The payload is
    // borrowed, never copied, so this is quick.
    let payload = vec![0x42u8; 65_000];
    let mut seq = IRS.wrapping_add(1);
    let mut last_ack = None;
    for n in 0..70_000u64 {
        let repr = crate::wire::TcpRepr {
            src_port: SERVER.port(),
            dst_port: CLIENT.port(),
            seq_number: crate::wire::SeqNumber(seq),
            ack_number: crate::wire::SeqNumber(iss + 1),
            flags: TcpFlags::ACK,
            window_len: 1000,
            options: crate::wire::TcpOptions::default(),
            payload: &payload,
        };
        let delivered = t.conn.on_segment(t.now, *SERVER.ip(), *CLIENT.ip(), &repr);
        assert_eq!(
            delivered.data.map(|(offset, bytes)| (offset, bytes.len())),
            Some((n * 65_000, 65_000))
        );
        seq = seq.wrapping_add(65_000);
        if n % 8 == 7 {
            // Each of these oversized segments is worth many full-sized ones, so each is
            // ACKed, and every ACK of the batch carries a new ack number.
            let acks = t.recv_all();
            assert_eq!(acks.len(), 8);
            assert!(acks.windows(2).all(|pair| pair[0].ack != pair[1].ack));
            last_ack = acks.last().and_then(|seg| seg.ack);
        }
    }
    assert_eq!(t.conn.received_in_order(), 4_550_000_000);
    assert!(t.conn.received_in_order() > u64::from(u32::MAX));
    assert_eq!(last_ack, Some(seq));
}
