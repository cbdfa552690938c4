//! The netlink message format itself (RFC 3549 §2.3.2: `nlmsghdr`, a family header,
//! 4-byte aligned attributes), for the families `netlink-packet-route` does not cover:
//! generic netlink (`driver/afxdp/features.rs` asks the `netdev` family what a device
//! supports) and nf_tables (`net/nft/owned.rs` writes the raw driver's guard). Route, link,
//! address and neighbour messages go through `net/netlink.rs` and its crate instead.

use super::netlink::NetError;

const NLMSG_HEADER_LEN: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_CREATE: u16 = 0x400;

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

/// An attribute value as a NUL-terminated string.
#[cfg(test)]
pub(crate) fn attribute_string(value: &[u8]) -> String {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}
