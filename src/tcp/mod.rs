//! `tcp/` — the sans-IO TCP engine (RFC 9293 with RFC 5681/6582/6298/7323/5961/6528).
//!
//! Never reads the clock and never touches I/O: time is a parameter, segments come in and go
//! out as [`crate::wire::TcpRepr`] values. The caller verifies checksums and drops bad
//! segments before they get here.
//!
//! - [`connection`]: the state machine and its calling order ([`Connection`]).
//! - [`cc`]: congestion control behind a trait; [`cc::Reno`] is Reno with NewReno recovery.
//! - [`rtt`]: the RFC 6298 RTO estimator.
//! - [`assembler`]: which out-of-order stream ranges have arrived (the engine never buffers
//!   received payload: the caller writes it at its stream offset).
//! - [`send_buffer`]: unacknowledged bytes, from which outgoing segments borrow.
//! - [`isn`]: RFC 6528 initial sequence numbers.
//!
//! Design choice: no SACK. xdpget never offers SACK-permitted; loss recovery is NewReno.

pub mod assembler;
pub mod cc;
pub mod config;
pub mod connection;
pub mod isn;
pub mod rtt;
pub mod send_buffer;
pub mod stats;

#[cfg(test)]
mod tests;

pub use config::Config;
pub use connection::{Connection, Delivered, Event, State};
pub use stats::TcpStats;
