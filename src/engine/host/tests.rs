//! The host in a pair, frame by frame, without a link: a client host and a server host
//! with a listener, their sessions bulk senders and counters.

use std::net::SocketAddr;

use super::*;
use crate::wire::EthernetAddress;

const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

fn server_address() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], 80))
}

/// Sends `to_send` bytes once connected, and counts what arrives.
#[derive(Default)]
struct Bulk {
    to_send: usize,
    queued: usize,
    received: u64,
}

impl Session for Bulk {
    fn on_stream(&mut self, _offset: u64, bytes: &[u8]) {
        self.received += bytes.len() as u64;
    }
    fn poll(&mut self, _now: Instant, connection: &mut Connection) -> SessionStatus {
        while connection.poll_event().is_some() {}
        if connection.state() == State::Established {
            let chunk = [0x5a_u8; 16 * 1024];
            while self.queued < self.to_send {
                let n = (self.to_send - self.queued).min(chunk.len());
                let taken = connection.send(&chunk[..n]);
                self.queued += taken;
                if taken < n {
                    break;
                }
            }
        }
        SessionStatus::Running
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

fn config() -> tcp::Config {
    tcp::Config {
        isn_secret: [7; 16],
        sack: false,
        ..tcp::Config::default()
    }
}

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        local_mac: CLIENT_MAC,
        next_hop_mac: SERVER_MAC,
        local: SocketAddr::from(([10, 0, 0, 1], port)),
        remote: server_address(),
        mtu: 1500,
    }
}

fn server() -> Host<Bulk> {
    let mut host = Host::new(SERVER_MAC);
    host.listen(
        server_address(),
        config(),
        1500,
        Box::new(|_| Some(Bulk::default())),
    );
    host
}

/// Every frame `from` has now, each with its TCP source port and payload length.
fn drain(from: &mut Host<Bulk>, now: Instant) -> Vec<(Vec<u8>, u16, usize)> {
    from.dispatch(now);
    let mut frames = Vec::new();
    let mut buffer = vec![0u8; 1514];
    while let Some(len) = from.next_frame(now, &mut buffer) {
        let frame = buffer[..len].to_vec();
        let (_, _, segment) = parse_tcp_frame(&frame, true).expect("the host emits valid frames");
        let (port, payload) = (segment.src_port, segment.payload.len());
        frames.push((frame, port, payload));
    }
    frames
}

/// One round trip: `a`'s frames to `b`, then `b`'s to `a`.
fn round(a: &mut Host<Bulk>, b: &mut Host<Bulk>, now: Instant) -> Vec<(u16, usize)> {
    let sent = drain(a, now);
    for (frame, _, _) in &sent {
        b.on_frame(now, frame);
    }
    for (frame, _, _) in drain(b, now) {
        a.on_frame(now, &frame);
    }
    sent.into_iter().map(|(_, port, len)| (port, len)).collect()
}

#[test]
fn two_connections_with_data_alternate_within_a_batch() {
    let now = Instant::ZERO;
    let mut client: Host<Bulk> = Host::new(CLIENT_MAC);
    let mut server = server();
    let first = client.connect(now, &endpoint(61000), config(), Bulk::default());
    let second = client.connect(now, &endpoint(61001), config(), Bulk::default());
    for _ in 0..3 {
        round(&mut client, &mut server, now);
    }
    assert_eq!(
        client.connection(first).unwrap().state(),
        State::Established
    );
    assert_eq!(
        client.connection(second).unwrap().state(),
        State::Established
    );
    assert_eq!(server.counters().accepted, 2);

    for handle in [first, second] {
        client.session_mut(handle).unwrap().to_send = 1 << 20;
        client.wake(handle);
    }
    let sent = round(&mut client, &mut server, now);
    let data: Vec<u16> = sent
        .iter()
        .filter(|(_, len)| *len > 0)
        .map(|(port, _)| *port)
        .collect();
    // Initial window of 10 segments each: 20 data segments, strictly alternating.
    assert_eq!(data.len(), 20, "{sent:?}");
    for pair in data.chunks(2) {
        assert_ne!(
            pair[0], pair[1],
            "one connection sent twice in a row: {data:?}"
        );
    }
}

#[test]
fn each_session_gets_its_own_connections_bytes() {
    let mut now = Instant::ZERO;
    let mut client: Host<Bulk> = Host::new(CLIENT_MAC);
    let mut server = server();
    let sizes = [100_000usize, 250_000, 30_000];
    let handles: Vec<Handle> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let bulk = Bulk {
                to_send: size,
                ..Bulk::default()
            };
            client.connect(now, &endpoint(61000 + i as u16), config(), bulk)
        })
        .collect();
    for _ in 0..200 {
        round(&mut client, &mut server, now);
        now += core::time::Duration::from_millis(1);
    }
    let mut received: Vec<(u16, u64)> = Vec::new();
    for (handle, connection) in server.connections() {
        let port = connection.remote().unwrap().port();
        received.push((port, server.session(handle).unwrap().received));
    }
    received.sort();
    let expected: Vec<(u16, u64)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| (61000 + i as u16, s as u64))
        .collect();
    assert_eq!(received, expected);
    assert!(handles.iter().all(|h| client.contains(*h)));
}

#[test]
fn frames_for_no_connection_are_counted_and_dropped() {
    let now = Instant::ZERO;
    let mut client: Host<Bulk> = Host::new(CLIENT_MAC);
    let mut server = server();
    client.connect(now, &endpoint(61000), config(), Bulk::default());
    let syn = drain(&mut client, now);
    // A host with no listener and no connection takes nothing.
    let mut nobody: Host<Bulk> = Host::new(SERVER_MAC);
    nobody.on_frame(now, &syn[0].0);
    assert_eq!(nobody.counters().unmatched, 1);
    assert_eq!(nobody.connections().count(), 0);
    // Garbage is not a frame.
    server.on_frame(now, &[0u8; 60]);
    assert_eq!(server.counters().invalid, 1);
}

#[test]
fn an_unanswered_syn_is_sent_again_when_its_deadline_comes() {
    let now = Instant::ZERO;
    let mut client: Host<Bulk> = Host::new(CLIENT_MAC);
    client.connect(now, &endpoint(61000), config(), Bulk::default());
    assert_eq!(drain(&mut client, now).len(), 1, "the SYN");
    let deadline = client
        .poll_timeout()
        .expect("the SYN's retransmission timer");
    assert!(deadline > now);
    assert!(
        drain(&mut client, now).is_empty(),
        "nothing before the deadline"
    );
    let again = drain(&mut client, deadline);
    assert_eq!(again.len(), 1, "the SYN again");
}

#[test]
fn a_done_session_is_handed_back_and_its_connection_closes() {
    struct Once;
    impl Session for Once {
        fn on_stream(&mut self, _: u64, _: &[u8]) {}
        fn poll(&mut self, _: Instant, connection: &mut Connection) -> SessionStatus {
            if connection.state() == State::Established {
                connection.close();
                return SessionStatus::Done;
            }
            SessionStatus::Running
        }
        fn poll_timeout(&self) -> Option<Instant> {
            None
        }
    }
    let now = Instant::ZERO;
    let mut client: Host<Once> = Host::new(CLIENT_MAC);
    let handle = client.connect(now, &endpoint(61000), config(), Once);
    let mut nobody: Host<Bulk> = server();
    let mut buffer = vec![0u8; 1514];
    let mut finished = false;
    for step in 0..10 {
        let at = now + core::time::Duration::from_millis(step);
        client.dispatch(at);
        while let Some(len) = client.next_frame(at, &mut buffer) {
            nobody.on_frame(at, &buffer[..len]);
        }
        for (frame, _, _) in drain(&mut nobody, at) {
            client.on_frame(at, &frame);
        }
        finished |= client.take_finished_of(handle).is_some();
    }
    assert!(finished, "the session came back");
    // It lingers at most LINGER to finish closing, then leaves the host.
    let late = now + LINGER + core::time::Duration::from_millis(20);
    client.dispatch(late);
    while client.next_frame(late, &mut buffer).is_some() {}
    assert!(!client.contains(handle));
    assert_eq!(client.history().len(), 1);
}

#[test]
fn a_segment_to_a_listener_for_no_connection_is_answered_with_a_reset() {
    let now = Instant::ZERO;
    let mut client: Host<Bulk> = Host::new(CLIENT_MAC);
    let mut server = server();
    let handle = client.connect(now, &endpoint(61000), config(), Bulk::default());
    for _ in 0..3 {
        round(&mut client, &mut server, now);
    }
    assert_eq!(
        client.connection(handle).unwrap().state(),
        State::Established
    );
    // The server drops its connection and its reset is lost.
    let (server_handle, _) = server.connections().next().unwrap();
    server.abort(server_handle);
    assert_eq!(drain(&mut server, now).len(), 1, "the reset");
    assert_eq!(server.connections().count(), 0);
    // The client's next segment reaches no connection: the listener's address answers
    // with a reset that carries the segment's ack number, which the client accepts.
    client.session_mut(handle).unwrap().to_send = 1000;
    client.wake(handle);
    round(&mut client, &mut server, now);
    assert!(server.counters().unmatched >= 1);
    client.dispatch(now);
    assert!(
        client
            .connection(handle)
            .is_none_or(|c| c.state() == State::Closed),
        "the client learned the connection is gone"
    );
    // A host without a listener leaves strays alone (a client's ports, as before).
    let mut nobody: Host<Bulk> = Host::new(SERVER_MAC);
    let other = client.connect(now, &endpoint(61001), config(), Bulk::default());
    let syn = drain(&mut client, now);
    nobody.on_frame(now, &syn[0].0);
    assert!(drain(&mut nobody, now).is_empty());
    assert!(client.contains(other));
}
