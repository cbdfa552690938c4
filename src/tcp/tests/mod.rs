//! Engine tests: scenario traces (`scenario.rs`, `recovery.rs`) and a two-connection pair with
//! virtual time and seeded loss (`pair.rs`).

mod ack_policy;
mod goodput;
mod limit_rate;
mod pair;
mod path_mtu;
mod recovery;
mod robustness;
mod sack;
mod scenario;

use std::net::{Ipv4Addr, SocketAddrV4};

use super::{Config, Connection, Event, State};
use crate::time::Instant;
use crate::wire::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};

pub const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);
pub const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);

/// The peer's initial sequence number in traces.
pub const IRS: u32 = 5000;

/// A small, reproducible configuration: MSS 1000, no options, 64 KiB window, short TIME-WAIT,
/// and the RFC 5681 strict ACK policy (an ACK every second segment, 40 ms delayed ACK, no
/// SACK) that most scenario traces were written for. `batch_config` has the default policy.
pub fn trace_config() -> Config {
    Config {
        ack_every_segments: 2,
        delayed_ack: core::time::Duration::from_millis(40),
        sack: false,
        mtu: 1040,
        max_receive_window: 65535,
        initial_receive_window: 65535,
        send_buffer_capacity: 64 * 1024,
        window_scaling: false,
        timestamps: false,
        msl: core::time::Duration::from_millis(500),
        isn_secret: [42; 16],
        ..Config::default()
    }
}

/// `trace_config` with the default ACK policy (one ACK per batch, 1 ms delay) and SACK.
pub fn batch_config() -> Config {
    let defaults = Config::default();
    Config {
        ack_every_segments: defaults.ack_every_segments,
        delayed_ack: defaults.delayed_ack,
        sack: defaults.sack,
        ..trace_config()
    }
}

/// A segment as a test writes or expects it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Seg {
    pub seq: u32,
    pub ack: Option<u32>,
    pub flags: TcpFlags,
    /// `None` in an expectation: do not check. `None` when sending: 65535.
    pub window: Option<u16>,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
}

impl Seg {
    pub fn new(flags: TcpFlags, seq: u32) -> Seg {
        Seg {
            seq,
            flags,
            ..Seg::default()
        }
    }
    pub fn syn(seq: u32) -> Seg {
        Seg::new(TcpFlags::SYN, seq)
    }
    pub fn ack(seq: u32, ack: u32) -> Seg {
        Seg::new(TcpFlags::ACK, seq).acking(ack)
    }
    pub fn acking(mut self, ack: u32) -> Seg {
        self.flags |= TcpFlags::ACK;
        self.ack = Some(ack);
        self
    }
    pub fn with(mut self, flags: TcpFlags) -> Seg {
        self.flags |= flags;
        self
    }
    pub fn window(mut self, window: u16) -> Seg {
        self.window = Some(window);
        self
    }
    pub fn data(mut self, payload: &[u8]) -> Seg {
        self.payload = payload.to_vec();
        self
    }
    pub fn mss(mut self, mss: u16) -> Seg {
        self.options.mss = Some(mss);
        self
    }
    pub fn timestamps(mut self, tsval: u32, tsecr: u32) -> Seg {
        self.options.timestamps = Some((tsval, tsecr));
        self
    }
    pub fn window_scale(mut self, shift: u8) -> Seg {
        self.options.window_scale = Some(shift);
        self
    }

    pub fn repr(&self, src_port: u16, dst_port: u16) -> TcpRepr<'_> {
        TcpRepr {
            src_port,
            dst_port,
            seq_number: SeqNumber(self.seq),
            ack_number: SeqNumber(self.ack.unwrap_or(0)),
            flags: self.flags,
            window_len: self.window.unwrap_or(65535),
            options: self.options,
            payload: &self.payload,
        }
    }

    pub fn from_repr(repr: &TcpRepr<'_>) -> Seg {
        Seg {
            seq: repr.seq_number.0,
            ack: repr.flags.ack().then_some(repr.ack_number.0),
            flags: repr.flags,
            window: Some(repr.window_len),
            options: repr.options,
            payload: repr.payload.to_vec(),
        }
    }
}

/// One connection under test, seen from its peer: `send` feeds it a segment, `recv` takes
/// what it emits. Time moves only by `at`.
pub struct Trace {
    pub conn: Connection,
    pub now: Instant,
    /// Our (the connection's) port and the peer's port.
    pub local: SocketAddrV4,
    pub peer: SocketAddrV4,
}

impl Trace {
    /// An active open from CLIENT to SERVER at time zero.
    pub fn client(config: Config) -> Trace {
        Trace {
            conn: Connection::connect(Instant::ZERO, config, CLIENT, SERVER),
            now: Instant::ZERO,
            local: CLIENT,
            peer: SERVER,
        }
    }

    /// A passive open on SERVER.
    pub fn server(config: Config) -> Trace {
        Trace {
            conn: Connection::listen(config, SERVER),
            now: Instant::ZERO,
            local: SERVER,
            peer: CLIENT,
        }
    }

    /// Moves time to `millis` and runs due timers.
    pub fn at(&mut self, millis: u64) {
        self.now = Instant::from_millis(millis);
        if self.conn.poll_timeout().is_some_and(|at| at <= self.now) {
            self.conn.on_timeout(self.now);
        }
    }

    /// Feeds one segment from the peer; returns the delivered range as (offset, bytes).
    pub fn send(&mut self, seg: &Seg) -> Option<(u64, Vec<u8>)> {
        let repr = seg.repr(self.peer.port(), self.local.port());
        let delivered = self
            .conn
            .on_segment(self.now, *self.peer.ip(), *self.local.ip(), &repr);
        delivered
            .data
            .map(|(offset, bytes)| (offset, bytes.to_vec()))
    }

    /// Takes the next emitted segment.
    pub fn recv(&mut self) -> Option<Seg> {
        let now = self.now;
        self.conn.poll_transmit(now).map(|repr| {
            assert_eq!(repr.src_port, self.local.port());
            assert_eq!(repr.dst_port, self.peer.port());
            Seg::from_repr(&repr)
        })
    }

    /// Takes every emitted segment until `poll_transmit` says `None`.
    pub fn recv_all(&mut self) -> Vec<Seg> {
        let mut all = Vec::new();
        while let Some(seg) = self.recv() {
            all.push(seg);
            assert!(all.len() < 10_000, "poll_transmit never ends");
        }
        all
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    pub fn state(&self) -> State {
        self.conn.state()
    }
}

/// Compares the fields an expectation sets (window only when given; options when non-empty).
pub fn matches(expected: &Seg, actual: &Seg) -> bool {
    expected.seq == actual.seq
        && expected.ack == actual.ack
        && expected.flags == actual.flags
        && expected.window.is_none_or(|w| Some(w) == actual.window)
        && (expected.options == TcpOptions::default() || expected.options == actual.options)
        && expected.payload == actual.payload
}

/// The test feeds a segment to the connection: `send!(trace, seg)`.
macro_rules! send {
    ($trace:expr, $seg:expr) => {
        $trace.send(&$seg)
    };
}

/// The connection must emit exactly these segments, then nothing: `recv!(trace, [a, b])`,
/// or nothing at all: `recv!(trace, [])`.
macro_rules! recv {
    ($trace:expr, [$($seg:expr),* $(,)?]) => {{
        let actual = $trace.recv_all();
        let expected: Vec<$crate::tcp::tests::Seg> = vec![$($seg),*];
        assert_eq!(actual.len(), expected.len(), "segments: {actual:#?}\nexpected: {expected:#?}");
        for (e, a) in expected.iter().zip(actual.iter()) {
            assert!($crate::tcp::tests::matches(e, a), "expected {e:#?}\ngot {a:#?}");
        }
        actual
    }};
}

pub(crate) use {recv, send};

/// The client's ISS in traces with `trace_config()`.
pub fn client_iss() -> u32 {
    crate::tcp::isn::initial_sequence_number(
        Instant::ZERO,
        &trace_config().isn_secret,
        CLIENT.into(),
        SERVER.into(),
    )
    .0
}

/// An established client trace: handshake done, ISS and IRS known. Returns (trace, iss).
pub fn established_client(config: Config) -> (Trace, u32) {
    let mut t = Trace::client(config);
    let iss = t.recv().expect("a SYN").seq;
    send!(t, Seg::syn(IRS).acking(iss + 1).mss(1000));
    recv!(t, [Seg::ack(iss + 1, IRS + 1)]);
    assert_eq!(t.events(), [Event::Connected]);
    (t, iss)
}

/// An established server trace with the client's ISN = IRS. Returns (trace, server iss).
pub fn established_server(config: Config) -> (Trace, u32) {
    let mut t = Trace::server(config);
    send!(t, Seg::syn(IRS).mss(1000));
    let syn_ack = t.recv().expect("a SYN-ACK");
    let iss = syn_ack.seq;
    send!(t, Seg::ack(IRS + 1, iss + 1));
    assert_eq!(t.events(), [Event::Connected]);
    (t, iss)
}
