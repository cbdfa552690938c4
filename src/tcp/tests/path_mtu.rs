//! A path MTU that drops mid-upload (`Connection::on_path_mtu`): segments shrink at once,
//! what was in flight is sent again at the new size, and the bytes arrive intact.

use core::time::Duration;

use super::pair::Pair;
use crate::tcp::{Config, State};

/// An established pair whose client queued a 64 KiB upload and sent its first flight at
/// the full MSS, which a router with a 1280-byte MTU dropped (the segments never reach the
/// link) and reported: the client has been told the new MTU. Returns the pair, the bytes
/// queued and the old MSS.
fn first_flight_too_big() -> (Pair, Vec<u8>, usize) {
    let config = Config {
        isn_secret: [1; 16],
        msl: Duration::from_millis(100),
        ..Config::default()
    };
    let mut pair = Pair::new(config, Vec::new(), 1e9, Duration::from_millis(5), 0.0, 1);
    for _ in 0..20 {
        pair.drive(1);
        if pair.client.state() == State::Established {
            break;
        }
    }
    assert_eq!(pair.client.state(), State::Established);
    let old_mss = pair.client.send_mss();
    let upload: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let queued = pair.client.send(&upload);
    let mut first = Vec::new();
    while let Some(seg) = pair.client.poll_transmit(pair.now) {
        first.push(seg.payload.len());
    }
    assert!(
        first.iter().filter(|len| **len == old_mss).count() >= 2,
        "{first:?}"
    );
    assert!(pair.client.on_path_mtu(1280));
    (pair, upload[..queued].to_vec(), old_mss)
}

#[test]
fn a_smaller_path_mtu_resends_the_flight_at_once_in_smaller_segments() {
    let (mut pair, _, old_mss) = first_flight_too_big();
    let new_mss = pair.client.send_mss();
    assert_eq!(
        new_mss,
        1280 - 20 - 20 - 12,
        "IPv4 and TCP headers, timestamps"
    );
    assert!(new_mss < old_mss);
    assert!(
        !pair.client.on_path_mtu(1400),
        "a larger MTU changes nothing"
    );
    // At once, without a timeout: the bytes from SND.UNA again, cut to the new size.
    let mut again = Vec::new();
    while let Some(seg) = pair.client.poll_transmit(pair.now) {
        again.push(seg.payload.len());
    }
    assert!(again.len() >= 2, "{again:?}");
    assert!(again.iter().all(|len| *len <= new_mss), "{again:?}");
}

#[test]
fn the_upload_completes_without_a_timeout_after_a_smaller_path_mtu() {
    let (mut pair, queued, _) = first_flight_too_big();
    let new_mss = pair.client.send_mss();
    let started = pair.now;
    // Only the server's receipt of the whole upload matters; the pair keeps going
    // until both ends close, and the client never closes here.
    for _ in 0..100_000 {
        pair.drive(1);
        if pair.server_received.len() >= queued.len() {
            break;
        }
    }
    assert_eq!(pair.server_received, queued);
    assert_eq!(pair.client.stats().rtos, 0);
    assert_eq!(pair.client.send_mss(), new_mss);
    // Well under the 200 ms RTO floor: nothing waited for a timeout.
    assert!(pair.now.saturating_duration_since(started) < Duration::from_millis(150));
}

#[test]
fn an_ipv6_path_mtu_is_never_taken_below_1280() {
    let config = Config {
        isn_secret: [1; 16],
        ip_header_len: 40,
        ..Config::default()
    };
    let mut pair = Pair::new(config, vec![0; 1000], 1e9, Duration::from_millis(5), 0.0, 1);
    for _ in 0..20 {
        pair.drive(1);
        if pair.client.state() == State::Established {
            break;
        }
    }
    assert!(pair.client.on_path_mtu(600));
    assert_eq!(pair.client.send_mss(), 1280 - 40 - 20 - 12);
}
