//! A small rtnetlink client: one request at a time over NETLINK_ROUTE, for interface,
//! address, route and neighbour discovery.
//!
//! RFC 3549 (Linux Netlink as an IP Services Protocol) §2.2 describes the message format;
//! the kernel's uapi headers `<linux/netlink.h>` and `<linux/rtnetlink.h>` are the real
//! reference. Messages are built and parsed by `netlink-packet-route` (typed headers and
//! attributes, no hand-counted offsets); the socket is `netlink-sys`'s, so this file holds
//! no `unsafe`. None of this is on the hot path: requests allocate freely.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_MULTIPART, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

pub(crate) use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE};

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
    NoRoute(IpAddr),
    #[error("{0} is an address of this host; xdpget downloads from other hosts only")]
    LocalDestination(IpAddr),
    #[error("the kernel picked no source address for {0}: give the interface an address")]
    NoSourceAddress(IpAddr),
    #[error("the route to {destination} leaves through {actual}, not through {expected}")]
    RouteViaOtherInterface {
        destination: IpAddr,
        actual: String,
        expected: String,
    },
    #[error(
        "could not resolve the MAC address of next hop {next_hop} on {interface}: no {protocol} reply"
    )]
    NeighbourUnresolved {
        next_hop: IpAddr,
        interface: String,
        /// "ARP" for IPv4, "neighbour advertisement" for IPv6 (RFC 4861 §7.2).
        protocol: &'static str,
    },
}

/// Wraps an I/O error from a netlink exchange as `NetError::Netlink` with `context`.
pub(crate) fn failed(context: &'static str) -> impl Fn(io::Error) -> NetError {
    move |source| NetError::Netlink { context, source }
}

/// Rounds `len` up to netlink's 4-byte alignment (NLMSG_ALIGN).
const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Serialises one request with `flags` (NLM_F_REQUEST is added) and sequence number `seq`.
pub(crate) fn encode_request(message: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags | NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    packet.finalize();
    let mut buffer = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buffer);
    buffer
}

/// Splits a datagram into its netlink messages and decodes each. A truncated or overlong
/// length is an error, never a panic.
pub(crate) fn decode_messages(
    mut buf: &[u8],
) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>, NetError> {
    let mut messages = Vec::new();
    while !buf.is_empty() {
        let length = NetlinkBuffer::new_checked(buf)
            .map_err(|_| NetError::Malformed("message length out of bounds"))?
            .length() as usize;
        let message = NetlinkMessage::deserialize(&buf[..length])
            .map_err(|_| NetError::Malformed("undecodable message"))?;
        messages.push(message);
        buf = buf.get(align4(length)..).unwrap_or(&[]);
    }
    Ok(messages)
}

/// A NETLINK_ROUTE socket that sends one request at a time and collects its replies.
pub(crate) struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    pub(crate) fn open() -> Result<Netlink, NetError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(failed("socket"))?;
        socket.bind_auto().map_err(failed("bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(failed("connect"))?;
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
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, io::Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.socket.send(&encode_request(message, flags, seq), 0)?;

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
                if message.header.sequence_number != seq {
                    continue; // a late reply to an earlier request
                }
                let more = message.header.flags & NLM_F_MULTIPART != 0;
                match message.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            Some(_) => Err(error.to_io()),
                            None => Ok(replies), // the acknowledgement ends the exchange
                        };
                    }
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.push(inner);
                        if !dump && !ack && !more {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{ErrorMessage, NLMSG_DONE};
    use netlink_packet_route::link::{LinkAttribute, LinkMessage};

    fn link_named(name: &str) -> RouteNetlinkMessage {
        let mut link = LinkMessage::default();
        link.header.index = 5;
        link.attributes.push(LinkAttribute::IfName(name.into()));
        RouteNetlinkMessage::GetLink(link)
    }

    #[test]
    fn encode_sets_request_header_and_pads() {
        let request = encode_request(link_named("veth0"), 0, 7);
        // 16 nlmsghdr + 16 ifinfomsg + (4 + 6 -> padded to 12)
        assert_eq!(request.len(), 44);
        let buffer = NetlinkBuffer::new_checked(&request[..]).unwrap();
        assert_eq!(buffer.length(), 44);
        assert_eq!(buffer.message_type(), 18); // RTM_GETLINK
        assert_eq!(buffer.flags(), NLM_F_REQUEST);
        assert_eq!(buffer.sequence_number(), 7);
        assert_eq!(&request[36..42], b"veth0\0");
    }

    #[test]
    fn decode_round_trips_and_splits_messages() {
        let mut datagram = encode_request(link_named("eth0"), NLM_F_MULTIPART, 1);
        let mut done = NetlinkMessage::<RouteNetlinkMessage>::new(
            NetlinkHeader::default(),
            NetlinkPayload::Done(Default::default()),
        );
        done.finalize();
        let mut done_bytes = vec![0u8; done.buffer_len()];
        done.serialize(&mut done_bytes);
        datagram.extend(&done_bytes);
        let messages = decode_messages(&datagram).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[0].payload,
            NetlinkPayload::InnerMessage(link_named("eth0"))
        );
        assert_eq!(messages[1].header.message_type, NLMSG_DONE);
    }

    #[test]
    fn decode_rejects_bad_lengths_without_panicking() {
        let mut message = encode_request(link_named("eth0"), 0, 1);
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
        assert!(decode_messages(&[0u8; 7]).is_err());
        assert!(decode_messages(&[]).unwrap().is_empty());
    }

    #[test]
    fn error_message_gives_positive_errno() {
        let mut error = ErrorMessage::default();
        error.code = std::num::NonZeroI32::new(-19); // -ENODEV
        assert_eq!(error.to_io().raw_os_error(), Some(19));
    }
}
