//! `wire/` — zero-copy views and validated representations of the frames xdpget speaks:
//! Ethernet II, ARP, IPv4, IPv6, TCP (with options) and the Internet checksum.
//!
//! Contract: no I/O, no clock, no allocation on the parse path. Every view is built with
//! `new_checked`, after which no accessor panics; a `*Repr` is a validated, owned-or-borrowed
//! description with `parse`, `emit` and `buffer_len`. Parsing never panics on any input, and
//! emitting into a buffer that is too short returns [`WireError::Truncated`] instead.
//!
//! Per packet, the engine calls [`parse_tcp_frame`] on receive and [`emit_tcp_frame`] (or a
//! connection's [`FrameTemplate`], which reuses the constant header bytes and their checksum
//! sums) on transmit; [`refresh_in_place`] re-stamps a stored frame for retransmission.
//! The neighbour code has [`parse_arp_frame`] and [`emit_arp_frame`].
//!
//! | file | what |
//! |---|---|
//! | `checksum.rs` | Internet checksum (RFC 1071), pseudo-headers (IPv4, IPv6), incremental update (RFC 1624) |
//! | `ethernet.rs` | Ethernet II frames and MAC addresses |
//! | `arp.rs` | ARP for Ethernet/IPv4 (RFC 826) |
//! | `ipv4.rs` | IPv4 headers (RFC 791); fragments are rejected |
//! | `ipv6.rs` | IPv6 headers (RFC 8200); options headers skipped, fragments and routing type 0 rejected |
//! | `ip.rs` | `IpRepr`: either version's header |
//! | `tcp.rs` | TCP headers and options (RFC 9293, 7323, 2018, 6691) |
//! | `seq.rs` | `SeqNumber`, modulo-2^32 sequence arithmetic |
//! | `frame.rs` | whole Ethernet+IP+TCP frames in one call |
//! | `template.rs` | per-connection prebuilt headers for fast transmit |
//! | `error.rs` | `WireError` |

pub mod arp;
pub mod checksum;
pub mod error;
pub mod ethernet;
pub mod frame;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod seq;
pub mod tcp;
pub mod template;

#[cfg(test)]
pub(crate) mod fixtures;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use error::WireError;
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use frame::{emit_arp_frame, emit_tcp_frame, parse_arp_frame, parse_tcp_frame, tcp_frame_len};
pub use ip::IpRepr;
pub use ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use seq::SeqNumber;
pub use tcp::{SackBlocks, TcpFlags, TcpOptions, TcpPacket, TcpRepr};
pub use template::{FrameTemplate, refresh_in_place};

/// A byte range of a header field (smoltcp's `field` idiom).
pub(crate) type Field = core::ops::Range<usize>;

/// Reads a big-endian `u16` from a two-byte field. Callers index only checked buffers.
pub(crate) fn read_u16(data: &[u8], field: Field) -> u16 {
    let bytes = &data[field];
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// Reads a big-endian `u32` from a four-byte field. Callers index only checked buffers.
pub(crate) fn read_u32(data: &[u8], field: Field) -> u32 {
    let bytes = &data[field];
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Writes a big-endian `u16` into a two-byte field.
pub(crate) fn write_u16(data: &mut [u8], field: Field, value: u16) {
    data[field].copy_from_slice(&value.to_be_bytes());
}

/// Writes a big-endian `u32` into a four-byte field.
pub(crate) fn write_u32(data: &mut [u8], field: Field, value: u32) {
    data[field].copy_from_slice(&value.to_be_bytes());
}
