//! The default ACK policy, trace by trace: which segment draws which ACK.
//!
//! A Linux receiver with GRO sends about one ACK per batch of segments (tcp_cong.c senders
//! count the bytes it covers); ours does the same (`Config::ack_every_segments = 0`):
//! - in order: one cumulative ACK at the end of a receive batch once two full segments are
//!   new, one every `ack_max_bytes` within a batch, never later than `delayed_ack` (1 ms);
//! - out of order: the first three duplicate ACKs for one RCV.NXT at once, later SACK
//!   reports that only grow a block compressed (at most 1 ms or 5 % of the RTT), a new block
//!   or a filled hole at once;
//! - a window update when the window at least doubles.
//!
//! Each `send!` below is one receive batch unless several are sent before one `recv!`.

use super::{IRS, Seg, Trace, batch_config, recv, send};
use crate::tcp::{Config, Event};
use crate::wire::{SackBlocks, SeqNumber};

/// A client with `config`, its handshake taking 10 ms (so SRTT = 10 ms), SACK offered by the
/// peer. Returns the trace (at 10 ms) and the ack number the peer's segments carry.
fn open(config: Config) -> (Trace, u32) {
    let mut t = Trace::client(config);
    let iss = t.recv().expect("a SYN").seq;
    t.at(10);
    let mut syn_ack = Seg::syn(IRS).acking(iss + 1).mss(1000);
    syn_ack.options.sack_permitted = true;
    send!(t, syn_ack);
    recv!(t, [Seg::ack(iss + 1, IRS + 1)]);
    assert_eq!(t.events(), [Event::Connected]);
    (t, iss + 1)
}

/// A batch-policy client that has received and acknowledged segments 0 and 1.
fn two_in_order() -> (Trace, u32) {
    let (mut t, ack) = open(batch_config());
    send!(t, data(0, ack));
    send!(t, data(1, ack));
    recv!(t, [ack_of(ack, 2)]);
    (t, ack)
}

/// Full-sized data segment number `n` (stream bytes n*1000 .. n*1000 + 1000).
fn data(n: u32, ack: u32) -> Seg {
    Seg::ack(IRS + 1 + n * 1000, ack).data(&[n as u8; 1000])
}

/// The ACK of stream offset `segments * 1000` from us.
fn ack_of(our_seq: u32, segments: u32) -> Seg {
    Seg::ack(our_seq, IRS + 1 + segments * 1000)
}

/// SACK blocks of segments `[from, to)`, in the given order.
fn blocks(list: &[(u32, u32)]) -> SackBlocks {
    let mut blocks = SackBlocks::default();
    for &(from, to) in list {
        assert!(blocks.push(
            SeqNumber(IRS + 1 + from * 1000),
            SeqNumber(IRS + 1 + to * 1000)
        ));
    }
    blocks
}

fn sacked(our_seq: u32, segments: u32, list: &[(u32, u32)]) -> Seg {
    let mut seg = ack_of(our_seq, segments);
    seg.options.sack_blocks = blocks(list);
    seg
}

#[test]
fn one_ack_per_batch() {
    let (mut t, ack) = open(batch_config());
    for n in 0..5 {
        send!(t, data(n, ack));
    }
    recv!(t, [ack_of(ack, 5)]);
    // Strict RFC 5681 (--ack-every 2) acknowledges every second segment of the same batch.
    let (mut t, ack) = open(Config {
        ack_every_segments: 2,
        ..batch_config()
    });
    for n in 0..5 {
        send!(t, data(n, ack));
    }
    recv!(t, [ack_of(ack, 2), ack_of(ack, 4), ack_of(ack, 5)]);
}

#[test]
fn a_lone_segment_waits_for_a_second_one_at_most_the_delay() {
    let (mut t, ack) = open(batch_config());
    send!(t, data(0, ack));
    recv!(t, []);
    // Two batches of one segment each: the second makes two new segments, one ACK.
    send!(t, data(1, ack));
    recv!(t, [ack_of(ack, 2)]);
    send!(t, data(2, ack));
    recv!(t, []);
    assert_eq!(
        t.conn.poll_timeout(),
        Some(crate::time::Instant::from_millis(11))
    );
    t.at(11);
    recv!(t, [ack_of(ack, 3)]);
}

#[test]
fn no_ack_covers_more_than_ack_max_bytes() {
    let (mut t, ack) = open(Config {
        ack_max_bytes: 8000,
        ..batch_config()
    });
    for n in 0..19 {
        send!(t, data(n, ack));
    }
    recv!(t, [ack_of(ack, 8), ack_of(ack, 16), ack_of(ack, 19)]);
}

#[test]
fn three_dup_acks_at_once_then_compressed_sack_reports() {
    let (mut t, ack) = two_in_order();
    // Segment 2 is lost. 3, 4 and 5 each draw a duplicate ACK at once (the sender's fast
    // retransmit needs three), even one batch each.
    send!(t, data(3, ack));
    recv!(t, [sacked(ack, 2, &[(3, 4)])]);
    send!(t, data(4, ack));
    recv!(t, [sacked(ack, 2, &[(3, 5)])]);
    send!(t, data(5, ack));
    recv!(t, [sacked(ack, 2, &[(3, 6)])]);
    // 6 only grows the block: compressed. 7 makes two compressed: the batch's ACK goes.
    send!(t, data(6, ack));
    recv!(t, []);
    send!(t, data(7, ack));
    recv!(t, [sacked(ack, 2, &[(3, 8)])]);
    // A lone compressed report waits 5 % of the 10 ms RTT (0.5 ms), less than 1 ms.
    send!(t, data(8, ack));
    recv!(t, []);
    assert_eq!(
        t.conn.poll_timeout(),
        Some(crate::time::Instant::from_micros(10_500))
    );
    t.at(11);
    recv!(t, [sacked(ack, 2, &[(3, 9)])]);
    // A segment that opens a new block (10, after a second loss at 9) goes at once.
    send!(t, data(10, ack));
    recv!(t, [sacked(ack, 2, &[(10, 11), (3, 9)])]);
    // The retransmission of 2 fills the first hole: an immediate ACK, in the same batch as
    // a segment that grows the block above the second hole.
    send!(t, data(2, ack));
    send!(t, data(11, ack));
    // Each ACK reports what had arrived when it became due.
    recv!(
        t,
        [sacked(ack, 9, &[(10, 11)]), sacked(ack, 9, &[(10, 12)])]
    );
}

#[test]
fn a_burst_behind_a_hole_is_reported_whole_after_the_three_dup_acks() {
    // Found against a Reno server on the testbed (session 6): a burst of 30 segments behind
    // a loss arrived in one receive batch; the three duplicate ACKs went out, each with the
    // blocks of its moment, and sending them cleared the compressed reports of the 27
    // segments that came after, so those were never acknowledged and the server waited
    // for its retransmission timer (215 ms).
    let (mut t, ack) = two_in_order();
    // Segment 2 is lost; 3..=12 arrive in one batch.
    for n in 3..=12 {
        send!(t, data(n, ack));
    }
    recv!(
        t,
        [
            sacked(ack, 2, &[(3, 4)]),
            sacked(ack, 2, &[(3, 5)]),
            sacked(ack, 2, &[(3, 6)]),
            sacked(ack, 2, &[(3, 13)]),
        ]
    );
    // One compressed report after that still goes when its short timer runs out.
    send!(t, data(13, ack));
    recv!(t, []);
    t.at(11);
    recv!(t, [sacked(ack, 2, &[(3, 14)])]);
}

#[test]
fn without_sack_every_out_of_order_segment_draws_a_dup_ack() {
    let (mut t, ack) = open(Config {
        sack: false,
        ..batch_config()
    });
    send!(t, data(0, ack));
    send!(t, data(1, ack));
    recv!(t, [ack_of(ack, 2)]);
    for n in 3..9 {
        send!(t, data(n, ack));
    }
    // The sender is told nothing but duplicates: it needs every one of them (RFC 5681 §3.2
    // inflates cwnd per duplicate).
    let dups = t.recv_all();
    assert_eq!(dups.len(), 6, "{dups:#?}");
    assert!(dups.iter().all(|seg| seg.ack == Some(IRS + 1 + 2000)));
}

#[test]
fn a_window_update_when_the_window_doubles() {
    let (mut t, ack) = open(batch_config());
    t.conn.set_receive_window(3000);
    send!(t, data(0, ack));
    send!(t, data(1, ack));
    recv!(t, [ack_of(ack, 2).window(3000)]);
    t.conn.set_receive_window(5000);
    recv!(t, []);
    t.conn.set_receive_window(6000);
    recv!(t, [ack_of(ack, 2).window(6000)]);
}

#[test]
fn the_window_does_not_shrink_while_holes_are_open() {
    let (mut t, ack) = open(batch_config());
    send!(t, data(0, ack));
    send!(t, data(1, ack));
    let first = recv!(t, [ack_of(ack, 2)]);
    let edge = |seg: &Seg| seg.ack.unwrap() + u32::from(seg.window.unwrap());
    let mut edges = vec![edge(&first[0])];
    // Holes at 2 and 4; 3, 5, 6 held; then 2 arrives. Every ACK's right edge is at least
    // the one before.
    for n in [3, 5, 6, 2, 7] {
        send!(t, data(n, ack));
        edges.extend(t.recv_all().iter().map(edge));
    }
    assert!(edges.windows(2).all(|w| w[0] <= w[1]), "{edges:?}");
}
