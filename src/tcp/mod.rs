//! `tcp/` — the sans-IO TCP engine (RFC 9293 with RFC 5681/6582/6298/7323/5961/6528).
//!
//! Never reads the clock and never touches I/O: time is a parameter, segments come in and go
//! out as [`crate::wire::TcpRepr`] values. One [`Connection`] serves either end: active open
//! (the downloader) or passive open (the simulator's server, a later serve mode).
//!
//! | file | job |
//! |---|---|
//! | [`connection`] | the state machine; its type documents the calling order |
//! | `connection/input.rs` | RFC 9293 §3.10.7 segment arrival, RFC 5961 checks, PAWS, ACK policy |
//! | `connection/output.rs` | the next segment: SYN, owed ACKs, data, retransmissions, probes |
//! | `connection/timers.rs` | RTO, persist, delayed ACK, TIME-WAIT |
//! | [`cc`] | congestion control trait; [`cc::Reno`] is Reno with NewReno recovery, [`cc::Cubic`] CUBIC |
//! | [`rtt`] | RFC 6298 SRTT/RTTVAR/RTO with backoff |
//! | [`assembler`] | which out-of-order stream ranges have arrived |
//! | [`sack_report`] | which SACK blocks an ACK reports, newest first (RFC 2018, 2883) |
//! | [`send_buffer`] | unacknowledged bytes, copied in (`send`) or lent by reference (`lend`); payloads borrow from it |
//! | [`isn`] | RFC 6528 initial sequence numbers |
//! | [`pacer`] | `--limit-rate`: a token bucket that moves the receive window's edge at the rate |
//! | [`config`], [`stats`] | knobs with defaults; counters and gauges |
//!
//! Contracts and design choices:
//! - The caller verifies checksums and drops bad segments before `on_segment`; the engine
//!   only ever sees valid `TcpRepr`s of its own four-tuple (others are ignored).
//! - The engine never copies received payload: `on_segment` returns the stream offset and a
//!   slice of the segment, trimmed to the receive window, and the caller writes it at that
//!   offset (in order or not). Offsets are `u64`, counted from the first byte after the
//!   peer's SYN. The receive window is whatever the caller says (`set_receive_window`).
//! - Receive-side SACK (RFC 2018, on by default): blocks newest first, RFC 2883 D-SACK for
//!   duplicates ([`sack_report`]). Our own sender ignores SACK blocks: loss recovery is
//!   NewReno (RFC 6582).
//! - ACK policy, by default that of a Linux receiver with GRO: one cumulative ACK per receive
//!   batch (the `None` of `poll_transmit`) once two full segments are new, one per 64 KiB
//!   within a batch, never more than 1 ms late; an immediate duplicate ACK for the first three
//!   out-of-order segments per RCV.NXT, later SACK reports compressed for at most 1 ms or 5 %
//!   of SRTT; an immediate ACK when a hole fills or a duplicate arrives. ACK points record
//!   their ack number and SACK blocks as segments are processed, so the ACKs of one batch are
//!   distinct and increasing, and each reports what had arrived at its moment. `Config::ack_every_segments = N > 0` is RFC 5681 §4.2 strictly instead.
//! - RTO floor 200 ms (Linux) rather than RFC 6298's 1 s; initial window 10 segments
//!   (RFC 6928), 1 after a lost SYN/SYN-ACK; slow start counts bytes with L = 2 (RFC 3465).
//! - Timestamps tick in milliseconds, so RTT samples have 1 ms resolution. Segments without
//!   a timestamp on a connection that negotiated them are accepted (as Linux does; RFC 7323
//!   §3.2 says SHOULD drop). PAWS tolerates one tick of disorder (Linux TCP_PAWS_WINDOW).
//! - Zero-window probes are empty segments at SND.UNA - 1 (the "retransmit" form of
//!   RFC 9293 §3.8.6.1, as Linux sends them), backed off like the RTO; they never time out.
//! - Payload on a SYN is ignored (the peer retransmits it). A listening connection ignores
//!   everything but a SYN; the caller's demultiplexer may answer strays with RST.
//! - Not implemented (not needed by a downloader): keep-alive, a FIN-WAIT-2 timeout, cwnd
//!   reset after idle (RFC 5681 §4.1), limited transmit (RFC 3042), urgent data.

pub mod assembler;
pub mod cc;
pub mod config;
pub mod connection;
pub mod isn;
pub mod pacer;
pub mod rtt;
pub mod sack_report;
pub mod send_buffer;
pub mod stats;

#[cfg(test)]
mod tests;

pub use cc::{Algorithm, CongestionControl};
pub use config::Config;
pub use connection::{Connection, Delivered, Event, State};
pub use stats::TcpStats;
