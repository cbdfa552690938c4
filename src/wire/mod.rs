//! `wire/` — zero-copy views and validated representations of the frames xdpget speaks:
//! Ethernet II, ARP, IPv4, TCP (with options) and the Internet checksum.
//!
//! Contract: no I/O, no clock, no allocation on the parse path. Every view is built with
//! `new_checked`, after which no accessor panics; a `*Repr` is a validated, owned-or-borrowed
//! description with `parse`, `emit` and `buffer_len`. Parsing never panics on any input.

pub mod seq;
pub mod tcp;

pub use seq::SeqNumber;
pub use tcp::{TcpFlags, TcpOptions, TcpRepr};
