//! RFC 2018 on the receive side (`Config::sack`, on by default): SACK-permitted is offered
//! and accepted only when configured, and then every ACK lists the out-of-order blocks held:
//! the one that made it due first, then the others most recently grown first (§4), every one
//! of them in one of the first two slots at least once; RFC 2883 D-SACK blocks report
//! duplicates. The ACK policy is the default one (`batch_config`).

use super::{IRS, Seg, Trace, batch_config, recv, send, trace_config};
use crate::tcp::{Config, Event};
use crate::wire::{SackBlocks, SeqNumber};

fn sack_config() -> Config {
    batch_config()
}

/// Opens a client with `config` against a peer whose SYN-ACK offers SACK if `peer_sack`.
/// Returns the trace and our ISS.
fn open(config: Config, peer_sack: bool) -> (Trace, u32) {
    let mut t = Trace::client(config);
    let iss = t.recv().expect("a SYN").seq;
    let mut syn_ack = Seg::syn(IRS).acking(iss + 1).mss(1000);
    syn_ack.options.sack_permitted = peer_sack;
    send!(t, syn_ack);
    recv!(t, [Seg::ack(iss + 1, IRS + 1)]);
    assert_eq!(t.events(), [Event::Connected]);
    (t, iss)
}

/// A full-sized data segment number `n` from the peer (bytes n*1000 .. n*1000+1000).
fn data(n: u32, ack: u32) -> Seg {
    Seg::ack(IRS + 1 + n * 1000, ack).data(&[n as u8; 1000])
}

/// SACK blocks of segments `[from, to)` (in segment numbers), in the given order.
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

/// Takes the ACKs of one batch: their ack numbers (relative to IRS + 1) and blocks.
fn acks(t: &mut Trace) -> Vec<(u32, SackBlocks)> {
    t.recv_all()
        .into_iter()
        .map(|seg| {
            assert!(seg.payload.is_empty(), "{seg:?}");
            (seg.ack.expect("an ACK") - IRS - 1, seg.options.sack_blocks)
        })
        .collect()
}

#[test]
fn sack_permitted_is_offered_only_when_configured() {
    let mut t = Trace::client(trace_config());
    assert!(!t.recv().expect("a SYN").options.sack_permitted);
    let mut t = Trace::client(sack_config());
    assert!(t.recv().expect("a SYN").options.sack_permitted);
}

#[test]
fn a_passive_open_answers_sack_permitted_only_to_a_syn_that_offers_it() {
    for (config, offered, answered) in [
        (sack_config(), true, true),
        (sack_config(), false, false),
        (trace_config(), true, false),
    ] {
        let mut t = Trace::server(config);
        let mut syn = Seg::syn(IRS).mss(1000);
        syn.options.sack_permitted = offered;
        send!(t, syn);
        let syn_ack = t.recv().expect("a SYN-ACK");
        assert_eq!(
            syn_ack.options.sack_permitted, answered,
            "offered {offered}"
        );
    }
}

#[test]
fn dup_acks_carry_the_block_that_made_them_due_first() {
    let (mut t, iss) = open(sack_config(), true);
    let ack = iss + 1;
    send!(t, data(0, ack));
    send!(t, data(1, ack));
    assert_eq!(acks(&mut t), [(2000, SackBlocks::default())]);
    // Segments 2 and 3 are lost; 4 and 6 arrive: one dup ACK each, its own block first.
    send!(t, data(4, ack));
    send!(t, data(6, ack));
    // Each reports what had arrived when it became due, as if sent at once: the first ACK
    // never reports 6, which arrived after it (a sender would infer reordering).
    assert_eq!(
        acks(&mut t),
        [(2000, blocks(&[(4, 5)])), (2000, blocks(&[(6, 7), (4, 5)])),]
    );
    // 5 joins 4 and 6 into one block.
    send!(t, data(5, ack));
    assert_eq!(acks(&mut t), [(2000, blocks(&[(4, 7)]))]);
    // 2 fills part of the hole (an immediate ACK), 3 is still missing: the block stays.
    send!(t, data(2, ack));
    assert_eq!(acks(&mut t), [(3000, blocks(&[(4, 7)]))]);
    // 3 fills the last hole: nothing is held beyond RCV.NXT, no blocks.
    send!(t, data(3, ack));
    assert_eq!(acks(&mut t), [(7000, SackBlocks::default())]);
    assert_eq!(t.conn.received_in_order(), 7000);
}

/// The ACKs of one batch each report the state of their own moment, not the batch's end.
#[test]
fn earlier_acks_of_a_batch_report_only_what_had_arrived_then() {
    let (mut t, iss) = open(sack_config(), true);
    let ack = iss + 1;
    send!(t, data(0, ack));
    send!(t, data(1, ack));
    assert_eq!(acks(&mut t), [(2000, SackBlocks::default())]);
    // One batch: 3 and 5 out of order, then 2 fills the hole below 3.
    send!(t, data(3, ack));
    send!(t, data(5, ack));
    send!(t, data(2, ack));
    assert_eq!(
        acks(&mut t),
        [
            (2000, blocks(&[(3, 4)])),
            (2000, blocks(&[(5, 6), (3, 4)])),
            (4000, blocks(&[(5, 6)])),
        ]
    );
}

#[test]
fn at_most_four_blocks_without_timestamps_newest_first() {
    let (mut t, iss) = open(sack_config(), true);
    let ack = iss + 1;
    // Holes at 0, 2, 4, 6, 8: five blocks held, each a new block, so five immediate ACKs.
    for n in [1, 3, 5, 7, 9] {
        send!(t, data(n, ack));
    }
    let all = acks(&mut t);
    // Each ACK: its own block first, then the others newest first; the oldest drops out of
    // the fifth. Every block was first once.
    assert_eq!(
        all,
        [
            (0, blocks(&[(1, 2)])),
            (0, blocks(&[(3, 4), (1, 2)])),
            (0, blocks(&[(5, 6), (3, 4), (1, 2)])),
            (0, blocks(&[(7, 8), (5, 6), (3, 4), (1, 2)])),
            (0, blocks(&[(9, 10), (7, 8), (5, 6), (3, 4)])),
        ]
    );
}

#[test]
fn a_duplicate_below_the_ack_is_reported_first_as_d_sack() {
    let (mut t, ack) = open(sack_config(), true);
    let ack = ack + 1;
    send!(t, data(0, ack));
    send!(t, data(1, ack));
    assert_eq!(acks(&mut t), [(2000, SackBlocks::default())]);
    // A spurious retransmission of 1: RFC 2883 §4.1.1, one block below the ACK.
    send!(t, data(1, ack));
    assert_eq!(acks(&mut t), [(2000, blocks(&[(1, 2)]))]);
    // A segment of 1 and 2: the old half is the duplicate, reported at once with the ACK of
    // the new half (RFC 2883 §4.1.3 reports partial duplicates too).
    let mut both = data(1, ack);
    both.payload = vec![7; 2000];
    send!(t, both);
    assert_eq!(acks(&mut t), [(3000, blocks(&[(1, 2)]))]);
    // Reported once: the next ACK has no D-SACK.
    send!(t, data(3, ack));
    send!(t, data(4, ack));
    assert_eq!(acks(&mut t), [(5000, SackBlocks::default())]);
}

#[test]
fn a_duplicate_of_a_held_block_is_followed_by_that_block() {
    let (mut t, iss) = open(sack_config(), true);
    let ack = iss + 1;
    send!(t, data(0, ack));
    send!(t, data(1, ack));
    assert_eq!(acks(&mut t), [(2000, SackBlocks::default())]);
    send!(t, data(4, ack));
    send!(t, data(5, ack));
    send!(t, data(7, ack));
    acks(&mut t);
    // 5 again: RFC 2883 §4.2, the D-SACK block, then the block containing it, then the rest.
    send!(t, data(5, ack));
    assert_eq!(acks(&mut t), [(2000, blocks(&[(5, 6), (4, 6), (7, 8)]))]);
    // 7 again: the duplicate is a whole block; it is repeated as its own container, which
    // is how a sender tells a D-SACK above the ACK (the second block contains the first).
    send!(t, data(7, ack));
    assert_eq!(acks(&mut t), [(2000, blocks(&[(7, 8), (7, 8), (4, 6)]))]);
}

#[test]
fn at_most_three_blocks_next_to_timestamps() {
    let config = Config {
        timestamps: true,
        ..sack_config()
    };
    let mut t = Trace::client(config);
    let iss = t.recv().expect("a SYN").seq;
    let mut syn_ack = Seg::syn(IRS).acking(iss + 1).mss(1000).timestamps(1, 0);
    syn_ack.options.sack_permitted = true;
    send!(t, syn_ack);
    t.recv_all();
    for n in [1, 3, 5, 7] {
        send!(t, data(n, iss + 1).timestamps(2, 0));
    }
    let last = t.recv_all().pop().expect("dup ACKs");
    assert!(last.options.timestamps.is_some());
    assert_eq!(last.options.sack_blocks, blocks(&[(7, 8), (5, 6), (3, 4)]));
}

#[test]
fn no_blocks_unless_the_peer_offered_sack() {
    for (config, peer_sack) in [(sack_config(), false), (trace_config(), true)] {
        let (mut t, iss) = open(config, peer_sack);
        send!(t, data(2, iss + 1));
        assert_eq!(acks(&mut t), [(0, SackBlocks::default())]);
    }
}
