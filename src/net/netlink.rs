//! A small rtnetlink client: just enough of NETLINK_ROUTE for interface, address, route and
//! neighbour discovery.
//!
//! Follows RFC 3549 (Linux Netlink as an IP Services Protocol) §2.2 (message format) and
//! the kernel's uapi headers `<linux/netlink.h>` and `<linux/rtnetlink.h>`, which are the
//! real reference for the per-family headers and attribute numbers below.
//!
//! Encoding and decoding are pure functions over byte slices (unit-tested below); the socket
//! is `netlink-sys`'s, so this file holds no `unsafe`. None of this is on the hot path:
//! requests allocate freely.

use std::io;
use std::net::Ipv4Addr;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// Errors of the discovery layer (`net/iface`, `net/route`, `net/neigh`); one sentence each.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("netlink {context} failed: {source}")]
    Netlink {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the kernel sent a malformed netlink reply ({0})")]
    Malformed(&'static str),
    #[error("interface {0} does not exist")]
    NoSuchInterface(String),
    #[error("interface {0} is down")]
    InterfaceDown(String),
    #[error("interface {0} has no IPv4 address")]
    NoIpv4Address(String),
    #[error("there is no default IPv4 route, so no interface to pick: pass --iface")]
    NoDefaultRoute,
    #[error("there is no route to {0}")]
    NoRoute(Ipv4Addr),
    #[error("{0} is an address of this host; xdpget downloads from other hosts only")]
    LocalDestination(Ipv4Addr),
    #[error("the route to {destination} leaves through {actual}, not through {expected}")]
    RouteViaOtherInterface {
        destination: Ipv4Addr,
        actual: String,
        expected: String,
    },
    #[error(
        "could not resolve the MAC address of next hop {next_hop} on {interface}: no ARP reply"
    )]
    NeighbourUnresolved {
        next_hop: Ipv4Addr,
        interface: String,
    },
}

// <linux/netlink.h>
const NLMSG_HEADER_LEN: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_MULTI: u16 = 0x2;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_CREATE: u16 = 0x400;

// <linux/rtnetlink.h>
pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_GETADDR: u16 = 22;
pub(crate) const RTM_NEWROUTE: u16 = 24;
pub(crate) const RTM_GETROUTE: u16 = 26;
pub(crate) const RTM_NEWNEIGH: u16 = 28;
pub(crate) const RTM_GETNEIGH: u16 = 30;

pub(crate) const AF_UNSPEC: u8 = 0;
pub(crate) const AF_INET: u8 = 2;

/// Rounds `len` up to netlink's 4-byte alignment (NLMSG_ALIGN / RTA_ALIGN).
const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Encodes one request: `nlmsghdr`, the family header (`ifinfomsg`, `rtmsg`, ...) and
/// route attributes, each padded to 4 bytes. RFC 3549 §2.3.2.
pub(crate) fn encode_request(
    msg_type: u16,
    flags: u16,
    seq: u32,
    family_header: &[u8],
    attributes: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut message = vec![0u8; NLMSG_HEADER_LEN];
    message.extend_from_slice(family_header);
    message.resize(align4(message.len()), 0);
    for (kind, value) in attributes {
        let attribute_len = 4 + value.len();
        // Attribute values here are addresses and names, far below u16::MAX.
        let attribute_len16 = u16::try_from(attribute_len).unwrap_or(u16::MAX);
        message.extend_from_slice(&attribute_len16.to_ne_bytes());
        message.extend_from_slice(&kind.to_ne_bytes());
        message.extend_from_slice(value);
        message.resize(align4(message.len()), 0);
    }
    let total = u32::try_from(message.len()).unwrap_or(u32::MAX);
    message[0..4].copy_from_slice(&total.to_ne_bytes());
    message[4..6].copy_from_slice(&msg_type.to_ne_bytes());
    message[6..8].copy_from_slice(&flags.to_ne_bytes());
    message[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid stays 0: the message is for the kernel.
    message
}

/// One decoded netlink message header and its payload (family header plus attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub msg_type: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Splits a datagram into its netlink messages. A truncated or overlong length is an error,
/// never a panic.
pub(crate) fn decode_messages(mut buf: &[u8]) -> Result<Vec<Message<'_>>, NetError> {
    let mut messages = Vec::new();
    while buf.len() >= NLMSG_HEADER_LEN {
        let len = read_u32(buf, 0).ok_or(NetError::Malformed("short header"))? as usize;
        if len < NLMSG_HEADER_LEN || len > buf.len() {
            return Err(NetError::Malformed("message length out of bounds"));
        }
        messages.push(Message {
            msg_type: read_u16(buf, 4).unwrap_or_default(),
            flags: read_u16(buf, 6).unwrap_or_default(),
            seq: read_u32(buf, 8).unwrap_or_default(),
            payload: &buf[NLMSG_HEADER_LEN..len],
        });
        buf = buf.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(messages)
}

/// The errno of an NLMSG_ERROR payload: 0 for an acknowledgement, else a positive errno.
pub(crate) fn decode_error(payload: &[u8]) -> Result<i32, NetError> {
    let raw = read_u32(payload, 0).ok_or(NetError::Malformed("short error message"))?;
    // The kernel sends the negated errno as a signed 32-bit integer.
    Ok((raw as i32).saturating_neg())
}

/// Iterates over the route attributes (`struct rtattr`) in `buf`; stops at the first
/// malformed one. RFC 3549 §2.3.2.
pub(crate) fn attributes(buf: &[u8]) -> Attributes<'_> {
    Attributes { rest: buf }
}

pub(crate) struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    /// (attribute type with the NLA_F_NESTED/NLA_F_NET_BYTEORDER bits cleared, value)
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let len = usize::from(read_u16(self.rest, 0)?);
        let kind = read_u16(self.rest, 2)? & 0x3fff;
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let value = &self.rest[4..len];
        self.rest = self.rest.get(align4(len)..).unwrap_or(&[]);
        Some((kind, value))
    }
}

pub(crate) fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at + 2)?;
    Some(u16::from_ne_bytes([bytes[0], bytes[1]]))
}

pub(crate) fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at + 4)?;
    Some(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// An attribute value as an IPv4 address (4 bytes, network order).
pub(crate) fn attribute_ipv4(value: &[u8]) -> Option<Ipv4Addr> {
    let octets: [u8; 4] = value.try_into().ok()?;
    Some(Ipv4Addr::from(octets))
}

/// An attribute value as a NUL-terminated string.
pub(crate) fn attribute_string(value: &[u8]) -> String {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

/// Wraps an I/O error from a netlink exchange as `NetError::Netlink` with `context`.
pub(crate) fn failed(context: &'static str) -> impl Fn(io::Error) -> NetError {
    move |source| NetError::Netlink { context, source }
}

/// A NETLINK_ROUTE socket that sends one request at a time and collects its replies.
pub(crate) struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// A reply message, copied out of the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub msg_type: u16,
    pub payload: Vec<u8>,
}

impl Netlink {
    pub(crate) fn open() -> Result<Netlink, NetError> {
        let netlink_error = |context| move |source| NetError::Netlink { context, source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(netlink_error("socket"))?;
        socket.bind_auto().map_err(netlink_error("bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(netlink_error("connect"))?;
        Ok(Netlink {
            socket,
            seq: 0,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sends one request and returns its reply messages (all parts of a dump). An
    /// NLMSG_ERROR with a non-zero errno becomes `Err` with that errno, so callers can map
    /// ENODEV and friends to their own sentences.
    pub(crate) fn request(
        &mut self,
        msg_type: u16,
        flags: u16,
        family_header: &[u8],
        attributes: &[(u16, &[u8])],
    ) -> Result<Vec<Reply>, io::Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let flags = flags | NLM_F_REQUEST;
        let request = encode_request(msg_type, flags, seq, family_header, attributes);
        self.socket.send(&request, 0)?;

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let ack = flags & NLM_F_ACK != 0;
        let mut replies = Vec::new();
        loop {
            self.buf.clear();
            self.buf.reserve(64 * 1024);
            self.socket.recv(&mut self.buf, 0)?;
            let messages = decode_messages(&self.buf)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
            for message in messages {
                if message.seq != seq {
                    continue; // a late reply to an earlier request
                }
                match message.msg_type {
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => {
                        let errno = decode_error(message.payload)
                            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
                        if errno != 0 {
                            return Err(io::Error::from_raw_os_error(errno));
                        }
                        return Ok(replies); // the acknowledgement ends the exchange
                    }
                    msg_type => {
                        replies.push(Reply {
                            msg_type,
                            payload: message.payload.to_vec(),
                        });
                        let more = message.flags & NLM_F_MULTI != 0;
                        if !dump && !ack && !more {
                            return Ok(replies);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_pads_header_and_attributes() {
        let request = encode_request(
            RTM_GETLINK,
            NLM_F_REQUEST,
            7,
            &[0u8; 16],
            &[(3, b"veth0\0")],
        );
        // 16 nlmsghdr + 16 ifinfomsg + (4 + 6 -> padded to 12)
        assert_eq!(request.len(), 44);
        assert_eq!(read_u32(&request, 0), Some(44));
        assert_eq!(read_u16(&request, 4), Some(RTM_GETLINK));
        assert_eq!(read_u16(&request, 6), Some(NLM_F_REQUEST));
        assert_eq!(read_u32(&request, 8), Some(7));
        assert_eq!(read_u16(&request, 32), Some(10)); // rta_len excludes padding
        assert_eq!(read_u16(&request, 34), Some(3));
        assert_eq!(&request[36..42], b"veth0\0");
        assert_eq!(&request[42..44], &[0, 0]);
    }

    #[test]
    fn decode_round_trips_and_splits_messages() {
        let mut datagram = encode_request(RTM_NEWADDR, NLM_F_MULTI, 1, &[1, 2, 3], &[]);
        datagram.extend(encode_request(NLMSG_DONE, NLM_F_MULTI, 1, &[0; 4], &[]));
        let messages = decode_messages(&datagram).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].msg_type, RTM_NEWADDR);
        assert_eq!(messages[0].payload, &[1, 2, 3, 0]); // padded family header
        assert_eq!(messages[1].msg_type, NLMSG_DONE);
        assert_eq!(messages[1].seq, 1);
    }

    #[test]
    fn decode_rejects_bad_lengths_without_panicking() {
        let mut message = encode_request(RTM_NEWLINK, 0, 1, &[0; 16], &[]);
        message[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(matches!(
            decode_messages(&message),
            Err(NetError::Malformed(_))
        ));
        message[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(matches!(
            decode_messages(&message),
            Err(NetError::Malformed(_))
        ));
        // a tail shorter than a header is ignored
        assert_eq!(decode_messages(&[0u8; 7]).unwrap(), vec![]);
    }

    #[test]
    fn error_payload_gives_positive_errno() {
        let mut payload = (-19i32).to_ne_bytes().to_vec(); // -ENODEV
        payload.extend_from_slice(&[0; 16]); // the echoed request header
        assert_eq!(decode_error(&payload).unwrap(), 19);
        assert_eq!(decode_error(&0i32.to_ne_bytes()).unwrap(), 0);
        assert!(decode_error(&[1, 2]).is_err());
    }

    #[test]
    fn attributes_iterate_and_stop_at_garbage() {
        let request = encode_request(
            RTM_NEWROUTE,
            0,
            1,
            &[],
            &[
                (5, &[10, 0, 0, 1]),
                (0x8000 | 43, &[]),
                (4, &7u32.to_ne_bytes()),
            ],
        );
        let found: Vec<_> = attributes(&request[NLMSG_HEADER_LEN..]).collect();
        assert_eq!(found.len(), 3);
        assert_eq!(attribute_ipv4(found[0].1), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(found[1], (43, &[][..])); // NLA_F_NESTED cleared
        assert_eq!(read_u32(found[2].1, 0), Some(7));

        // rta_len larger than what is left: iteration ends, no panic
        let garbage = [200u8, 0, 1, 0, 9, 9];
        assert_eq!(attributes(&garbage).count(), 0);
        let tiny = [2u8, 0, 1, 0];
        assert_eq!(attributes(&tiny).count(), 0);
    }

    #[test]
    fn attribute_helpers() {
        assert_eq!(attribute_string(b"eth0\0\0"), "eth0");
        assert_eq!(attribute_string(b"lo"), "lo");
        assert_eq!(attribute_ipv4(&[1, 2, 3]), None);
    }
}
