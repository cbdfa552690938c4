//! No input makes the engine panic or break its invariants: random segments, in every state,
//! at random times.

use proptest::prelude::*;

use super::{IRS, Seg, Trace, established_client, established_server, send, trace_config};
use crate::tcp::Config;
use crate::wire::{TcpFlags, TcpOptions};

/// A segment somewhere near the interesting sequence and acknowledgment numbers.
#[derive(Clone, Debug)]
struct Fuzz {
    flags: u8,
    seq_delta: i32,
    ack_delta: i32,
    window: u16,
    payload_len: usize,
    mss: Option<u16>,
    window_scale: Option<u8>,
    timestamps: Option<(u32, u32)>,
    advance_millis: u64,
    app_send: usize,
    close: bool,
}

fn fuzz() -> impl Strategy<Value = Fuzz> {
    (
        any::<u8>(),
        prop_oneof![-3000i32..3000, any::<i32>()],
        prop_oneof![-3000i32..3000, any::<i32>()],
        any::<u16>(),
        0usize..3000,
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of((any::<u32>(), any::<u32>())),
        prop_oneof![Just(0u64), 0u64..2000],
        prop_oneof![Just(0usize), 0usize..5000],
        proptest::bool::weighted(0.02),
    )
        .prop_map(
            |(
                flags,
                seq_delta,
                ack_delta,
                window,
                payload_len,
                mss,
                window_scale,
                timestamps,
                advance_millis,
                app_send,
                close,
            )| Fuzz {
                flags,
                seq_delta,
                ack_delta,
                window,
                payload_len,
                mss,
                window_scale,
                timestamps,
                advance_millis,
                app_send,
                close,
            },
        )
}

/// Applies one fuzz step and checks what the connection emits.
fn step(t: &mut Trace, iss: u32, input: &Fuzz) {
    let millis = t.now.total_millis() + input.advance_millis;
    t.at(millis);
    if input.app_send > 0 {
        let taken = t.conn.send(&vec![0xab; input.app_send]);
        assert!(taken <= input.app_send);
    }
    if input.close {
        t.conn.close();
    }
    let options = TcpOptions {
        mss: input.mss,
        window_scale: input.window_scale,
        timestamps: input.timestamps,
        ..TcpOptions::default()
    };
    let seg = Seg {
        seq: (IRS as i64 + 1 + i64::from(input.seq_delta)) as u32,
        ack: Some((iss as i64 + 1 + i64::from(input.ack_delta)) as u32),
        flags: TcpFlags(input.flags),
        window: Some(input.window),
        options,
        payload: vec![0x5a; input.payload_len],
    };
    if let Some((offset, bytes)) = send!(t, seg) {
        // Delivered bytes are payload bytes, inside the receive window.
        assert!(bytes.len() <= input.payload_len);
        assert!(offset + bytes.len() as u64 <= t.conn.received_in_order() + (1 << 30));
        assert!(bytes.iter().all(|&b| b == 0x5a));
    }
    let mut count = 0;
    while let Some(out) = t.recv() {
        count += 1;
        assert!(count < 10_000, "poll_transmit never ends");
        assert!(
            out.payload.len() <= 1000,
            "a segment above the MSS: {}",
            out.payload.len()
        );
        assert!(!out.options.sack_permitted);
        assert!(out.payload.iter().all(|&b| b == 0xab));
    }
    let stats = t.conn.stats();
    assert!(stats.bytes_in_flight < 1 << 31);
    let _ = t.events();
    let _ = t.conn.poll_timeout();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn established_client_survives_random_segments(inputs in proptest::collection::vec(fuzz(), 1..60)) {
        let (mut t, iss) = established_client(trace_config());
        for input in &inputs {
            step(&mut t, iss, input);
        }
    }

    #[test]
    fn server_survives_random_segments_from_listen_on(inputs in proptest::collection::vec(fuzz(), 1..60)) {
        let config = Config { timestamps: true, window_scaling: true, ..trace_config() };
        let mut t = Trace::server(config);
        // The first segments may or may not open the connection.
        for input in &inputs {
            step(&mut t, 0, input);
        }
    }

    #[test]
    fn established_server_with_options_survives_random_segments(inputs in proptest::collection::vec(fuzz(), 1..60)) {
        let config = Config { timestamps: true, window_scaling: true, ..trace_config() };
        let (mut t, iss) = established_server(config);
        for input in &inputs {
            step(&mut t, iss, input);
        }
    }
}
