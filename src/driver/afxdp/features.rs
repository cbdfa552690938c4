//! Whether an interface's driver can bind AF_XDP sockets in zero-copy mode, asked of the
//! kernel before trying: a refused zero-copy bind costs a UMEM made, pinned and thrown away
//! (about 10 ms on veth) before the copy-mode bind that works.
//!
//! Linux 6.3+ reports each device's XDP features through the generic netlink family
//! `netdev` (`<linux/netdev.h>`: `NETDEV_CMD_DEV_GET`, attribute `NETDEV_A_DEV_XDP_FEATURES`,
//! bit `NETDEV_XDP_ACT_XSK_ZEROCOPY`); the family's number comes from the generic netlink
//! controller (`<linux/genetlink.h>`: `CTRL_CMD_GETFAMILY`). Two requests of a few dozen
//! bytes each. On an older kernel the question has no answer ([`ZeroCopy::Unknown`]) and the
//! caller tries zero-copy as before.

use std::io;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};

use crate::net::nlmsg::{
    NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR, attributes, decode_error, decode_messages,
    encode_request, read_u16,
};

// <linux/genetlink.h>
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
// <linux/netdev.h>
const NETDEV_FAMILY_NAME: &str = "netdev";
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_XDP_ACT_XSK_ZEROCOPY: u64 = 1 << 3;

/// What the kernel says about zero-copy AF_XDP on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ZeroCopy {
    Supported,
    Unsupported,
    /// The kernel cannot say (before 6.3, or the query failed): try and see.
    Unknown,
}

/// Asks the kernel whether the device `ifindex` supports zero-copy AF_XDP.
pub(crate) fn zero_copy(ifindex: u32) -> ZeroCopy {
    match xdp_features(ifindex) {
        Ok(features) if features & NETDEV_XDP_ACT_XSK_ZEROCOPY != 0 => ZeroCopy::Supported,
        Ok(_) => ZeroCopy::Unsupported,
        Err(_) => ZeroCopy::Unknown,
    }
}

/// The device's `NETDEV_A_DEV_XDP_FEATURES` bits.
fn xdp_features(ifindex: u32) -> io::Result<u64> {
    let mut socket = Socket::new(NETLINK_GENERIC)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut name = NETDEV_FAMILY_NAME.as_bytes().to_vec();
    name.push(0);
    let family = request(
        &socket,
        GENL_ID_CTRL,
        1,
        CTRL_CMD_GETFAMILY,
        &[(CTRL_ATTR_FAMILY_NAME, &name)],
    )?;
    let family = attributes(&family)
        .find(|(kind, _)| *kind == CTRL_ATTR_FAMILY_ID)
        .and_then(|(_, value)| read_u16(value, 0))
        .ok_or_else(|| invalid("no family id in the controller's reply"))?;
    let device = request(
        &socket,
        family,
        2,
        NETDEV_CMD_DEV_GET,
        &[(NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes())],
    )?;
    parse_features(&device).ok_or_else(|| invalid("no XDP features in the netdev reply"))
}

/// The `NETDEV_A_DEV_XDP_FEATURES` value (a native-endian u64) in a `DEV_GET` reply's
/// attributes.
fn parse_features(reply_attributes: &[u8]) -> Option<u64> {
    let (_, value) =
        attributes(reply_attributes).find(|(kind, _)| *kind == NETDEV_A_DEV_XDP_FEATURES)?;
    Some(u64::from_ne_bytes(value.get(..8)?.try_into().ok()?))
}

/// Sends one generic netlink request and returns the attributes of its reply (after the
/// 4-byte `genlmsghdr`).
fn request(
    socket: &Socket,
    family: u16,
    seq: u32,
    command: u8,
    attributes: &[(u16, &[u8])],
) -> io::Result<Vec<u8>> {
    let genlmsghdr = [command, 1, 0, 0];
    let message = encode_request(
        family,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        &genlmsghdr,
        attributes,
    );
    socket.send(&message, 0)?;
    let mut buf = Vec::with_capacity(8192);
    let mut reply = None;
    loop {
        buf.clear();
        socket.recv(&mut buf, 0)?;
        let messages = decode_messages(&buf).map_err(|error| invalid(&error.to_string()))?;
        for message in messages {
            if message.seq != seq {
                continue;
            }
            if message.msg_type == NLMSG_ERROR {
                let errno = decode_error(message.payload).map_err(|e| invalid(&e.to_string()))?;
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(errno));
                }
                return reply.ok_or_else(|| invalid("an acknowledgement without a reply"));
            }
            reply = Some(message.payload.get(4..).unwrap_or_default().to_vec());
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_attribute_is_found_among_others() {
        let mut attrs = Vec::new();
        for (kind, value) in [
            (NETDEV_A_DEV_IFINDEX, 7u32.to_ne_bytes().to_vec()),
            (NETDEV_A_DEV_XDP_FEATURES, 0x2bu64.to_ne_bytes().to_vec()),
        ] {
            attrs.extend_from_slice(&(4 + value.len() as u16).to_ne_bytes());
            attrs.extend_from_slice(&kind.to_ne_bytes());
            attrs.extend_from_slice(&value);
        }
        assert_eq!(parse_features(&attrs), Some(0x2b));
        assert_eq!(parse_features(&attrs[..8]), None);
    }

    /// Root not needed: loopback exists in every namespace and has no zero-copy AF_XDP.
    /// On a kernel without the netdev family (before 6.3) the answer is Unknown.
    #[test]
    fn loopback_has_no_zero_copy() {
        let answer = zero_copy(1);
        assert_ne!(answer, ZeroCopy::Supported);
        if answer == ZeroCopy::Unknown {
            eprintln!("loopback_has_no_zero_copy: this kernel has no netdev family (before 6.3)");
        }
    }
}
