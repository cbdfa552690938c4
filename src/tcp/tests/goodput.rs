//! The default ACK policy costs senders that count bytes nothing (issue 9 §1).
//!
//! A Linux-like Reno ([`Algorithm::LinuxReno`]: tcp_cong.c byte counting) and a CUBIC
//! ([`Algorithm::Cubic`], RFC 9438 with the same counting) send 8 MiB over the in-test link
//! (1 Gbit/s, 10 ms RTT, seeded random loss on both directions) to a client that takes its
//! segments in receive batches (100 µs of interrupt coalescing, about eight segments at this
//! rate). The client acknowledges either with the default batch policy or with RFC 5681's
//! strict one ACK per two segments (`--ack-every 2`). Goodput (virtual time: no flakiness)
//! must stay within 10 % of the strict policy's, averaged over seeds, while the batch policy
//! sends several times fewer ACKs.
//!
//! The senders here are SACK-less (as all of ours), so the server does not offer SACK and
//! the client sends every duplicate ACK. Numbers are printed with `--nocapture`.

use core::time::Duration;

use super::pair::{Pair, body};
use crate::tcp::{Algorithm, Config};

const SIZE: usize = 32 << 20;
const SEEDS: [u64; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

/// (goodput in Mbit/s, ACKs the client sent) of one transfer.
fn transfer(sender: Algorithm, ack_every_segments: usize, loss: f64, seed: u64) -> (f64, u64) {
    let client = Config {
        isn_secret: [1; 16],
        msl: Duration::from_millis(100),
        // 1.6 BDP: the window, not an ever-growing queue in the unbounded link, limits the
        // flight, so RTT samples stay near 10 ms and a timeout means a real tail loss.
        max_receive_window: 2 << 20,
        initial_receive_window: 2 << 20,
        ack_every_segments,
        ..Config::default()
    };
    let server = Config {
        congestion_control: sender,
        send_buffer_capacity: 4 << 20,
        sack: false,
        ..client.clone()
    };
    let mut pair = Pair::with_configs(
        client,
        server,
        body(SIZE, seed),
        1e9,
        Duration::from_millis(5),
        loss,
        seed,
    );
    pair.client_batch = Duration::from_micros(100);
    let max_steps = 40 * SIZE / 1000;
    let steps = pair.drive(max_steps);
    assert!(steps < max_steps, "{sender:?} seed {seed}: no completion");
    assert!(
        pair.received == pair.body,
        "{sender:?} seed {seed}: bytes differ"
    );
    let done = pair.client_fin_at.expect("the client saw the FIN");
    let seconds = done.total_micros() as f64 / 1e6;
    let goodput = SIZE as f64 * 8.0 / seconds / 1e6;
    let sent = pair.server.stats();
    eprintln!(
        "  {sender:?} ack_every {ack_every_segments} seed {seed}: {goodput:.1} Mbit/s, {} fast \
         retransmits, {} RTOs, {} retransmits, {} ACKs",
        sent.fast_retransmits,
        sent.rtos,
        sent.retransmits,
        pair.client.stats().acks_sent
    );
    (goodput, pair.client.stats().acks_sent)
}

/// Median goodput and ACK count over `SEEDS` (under random loss one seed may hit a
/// retransmission timeout that NewReno without SACK cannot avoid; the median is robust to it).
fn median(sender: Algorithm, ack_every_segments: usize, loss: f64) -> (f64, f64) {
    let (mut goodputs, mut acks): (Vec<f64>, Vec<f64>) = SEEDS
        .iter()
        .map(|&seed| {
            let (goodput, acks) = transfer(sender, ack_every_segments, loss, seed);
            (goodput, acks as f64)
        })
        .unzip();
    goodputs.sort_by(f64::total_cmp);
    acks.sort_by(f64::total_cmp);
    (goodputs[SEEDS.len() / 2], acks[SEEDS.len() / 2])
}

fn batch_policy_keeps_goodput(sender: Algorithm, loss: f64) {
    let (batch, batch_acks) = median(sender, 0, loss);
    let (strict, strict_acks) = median(sender, 2, loss);
    eprintln!(
        "{sender:?} loss {:.1} %: batch policy {batch:.1} Mbit/s with {batch_acks:.0} ACKs, \
         --ack-every 2 {strict:.1} Mbit/s with {strict_acks:.0} ACKs",
        loss * 100.0
    );
    assert!(
        batch >= 0.9 * strict,
        "{sender:?} loss {loss}: {batch:.1} vs {strict:.1} Mbit/s"
    );
    assert!(
        batch_acks * 2.0 <= strict_acks,
        "{sender:?} loss {loss}: {batch_acks} vs {strict_acks} ACKs"
    );
}

#[test]
fn linux_reno_keeps_its_goodput_on_a_clean_path() {
    batch_policy_keeps_goodput(Algorithm::LinuxReno, 0.0);
}

#[test]
fn linux_reno_keeps_its_goodput_under_loss() {
    batch_policy_keeps_goodput(Algorithm::LinuxReno, 0.002);
}

#[test]
fn cubic_keeps_its_goodput_on_a_clean_path() {
    batch_policy_keeps_goodput(Algorithm::Cubic, 0.0);
}

#[test]
fn cubic_keeps_its_goodput_under_loss() {
    batch_policy_keeps_goodput(Algorithm::Cubic, 0.002);
}
