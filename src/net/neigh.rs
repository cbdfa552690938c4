//! Next-hop MAC resolution from the kernel's neighbour table, IPv4 (ARP) and IPv6 (neighbour
//! discovery).
//!
//! RFC 826 (ARP), RFC 1122 §2.3.2.1 (ARP cache) and RFC 4861 §7 (IPv6 address resolution)
//! are the kernel's business: we read its table (RTM_GETNEIGH) and, when the entry is
//! missing, ask the kernel itself to resolve it (RTM_NEWNEIGH with NTF_USE, which runs
//! `neigh_event_send` exactly as an outgoing packet would, so the kernel sends the ARP
//! request or neighbour solicitation and no datagram of ours leaves), then poll the table
//! with a bounded wait. See `<linux/neighbour.h>`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use netlink_packet_core::NLM_F_DUMP;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::netlink::{NLM_F_ACK, NLM_F_CREATE, NetError, Netlink, failed};

/// How often the table is read while waiting for a reply.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// One entry of the neighbour table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Neighbour {
    pub interface_index: u32,
    pub address: IpAddr,
    pub state: NeighbourState,
    pub mac: Option<[u8; 6]>,
}

impl Neighbour {
    /// The link-layer address, in the states whose address the kernel itself would use to
    /// send (REACHABLE, STALE, DELAY, PROBE, NOARP, PERMANENT).
    fn usable_mac(&self) -> Option<[u8; 6]> {
        let usable = matches!(
            self.state,
            NeighbourState::Reachable
                | NeighbourState::Stale
                | NeighbourState::Delay
                | NeighbourState::Probe
                | NeighbourState::Noarp
                | NeighbourState::Permanent
        );
        usable.then_some(self.mac).flatten()
    }
}

/// The MAC address of `next_hop` on interface `interface_index` (named `interface_name` in
/// errors), resolving it through the kernel when the table has no usable entry. Waits at
/// most `timeout` for the ARP reply or neighbour advertisement.
pub fn resolve_mac(
    interface_index: u32,
    interface_name: &str,
    next_hop: IpAddr,
    timeout: Duration,
) -> Result<[u8; 6], NetError> {
    let mut netlink = Netlink::open()?;
    if let Some(mac) = lookup(&mut netlink, interface_index, next_hop)?.and_then(|n| n.usable_mac())
    {
        return Ok(mac);
    }

    provoke_resolution(&mut netlink, interface_index, next_hop)?;

    let deadline = Instant::now() + timeout;
    loop {
        let entry = lookup(&mut netlink, interface_index, next_hop)?;
        if let Some(mac) = entry.as_ref().and_then(Neighbour::usable_mac) {
            return Ok(mac);
        }
        let failed_now = entry.is_some_and(|n| n.state == NeighbourState::Failed);
        if failed_now || Instant::now() >= deadline {
            return Err(NetError::NeighbourUnresolved {
                next_hop,
                interface: interface_name.to_string(),
                protocol: match next_hop {
                    IpAddr::V4(_) => "ARP",
                    IpAddr::V6(_) => "neighbour advertisement",
                },
            });
        }
        thread::sleep(POLL_INTERVAL);
    }
}

fn family_of(address: IpAddr) -> AddressFamily {
    match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The table entry for `address` on `interface_index`, whatever its state.
fn lookup(
    netlink: &mut Netlink,
    interface_index: u32,
    address: IpAddr,
) -> Result<Option<Neighbour>, NetError> {
    let mut request = NeighbourMessage::default();
    request.header.family = family_of(address);
    let replies = netlink
        .request(RouteNetlinkMessage::GetNeighbour(request), NLM_F_DUMP)
        .map_err(failed("neighbour dump"))?;
    Ok(replies
        .iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewNeighbour(neighbour) => parse_neighbour(neighbour),
            _ => None,
        })
        .find(|n| n.interface_index == interface_index && n.address == address))
}

/// The RTM_NEWNEIGH request that makes the kernel start resolving `address`: NTF_USE
/// creates an INCOMPLETE entry and fires the resolution timer, as a packet queued to it
/// would.
fn resolution_request(interface_index: u32, address: IpAddr) -> NeighbourMessage {
    let mut request = NeighbourMessage::default();
    request.header.family = family_of(address);
    request.header.ifindex = interface_index;
    request.header.state = NeighbourState::Incomplete;
    request.header.flags = NeighbourFlags::Use;
    request
        .attributes
        .push(NeighbourAttribute::Destination(address.into()));
    request
}

/// Makes the kernel resolve `address`; where a kernel refuses NTF_USE, one empty UDP
/// datagram to the discard port (RFC 863) makes it resolve the next hop on its way out.
fn provoke_resolution(
    netlink: &mut Netlink,
    interface_index: u32,
    address: IpAddr,
) -> Result<(), NetError> {
    let asked = netlink.request(
        RouteNetlinkMessage::NewNeighbour(resolution_request(interface_index, address)),
        NLM_F_CREATE | NLM_F_ACK,
    );
    if asked.is_ok() {
        return Ok(());
    }
    let (local, remote): (SocketAddr, SocketAddr) = match address {
        IpAddr::V4(v4) => ((Ipv4Addr::UNSPECIFIED, 0).into(), (v4, 9).into()),
        // A link-local next hop (a router's fe80:: address) needs its interface.
        IpAddr::V6(v6) => (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            SocketAddrV6::new(v6, 9, 0, interface_index).into(),
        ),
    };
    let socket = UdpSocket::bind(local).map_err(failed("udp probe"))?;
    socket.connect(remote).map_err(failed("udp probe"))?;
    // A send error (EHOSTUNREACH after failed resolution, ...) is reported by the wait.
    let _ = socket.send(&[]);
    Ok(())
}

/// The facts of one RTM_NEWNEIGH message; entries without a destination are skipped.
pub(crate) fn parse_neighbour(message: &NeighbourMessage) -> Option<Neighbour> {
    let mut address = None;
    let mut mac = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                address = Some(IpAddr::V4(*v4));
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                address = Some(IpAddr::V6(*v6));
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = bytes.as_slice().try_into().ok(),
            _ => {}
        }
    }
    Some(Neighbour {
        interface_index: message.header.ifindex,
        address: address?,
        state: message.header.state,
        mac,
    })
}

#[cfg(test)]
mod tests {
    use super::super::netlink::{decode_messages, encode_request};
    use super::*;
    use netlink_packet_core::NetlinkPayload;

    fn neighbour_message(state: NeighbourState, attributes: Vec<NeighbourAttribute>) -> Neighbour {
        let mut message = NeighbourMessage::default();
        // The kernel's family field says how long NDA_DST is.
        let v4 = attributes.iter().any(|attribute| {
            matches!(
                attribute,
                NeighbourAttribute::Destination(NeighbourAddress::Inet(_))
            )
        });
        message.header.family = if v4 {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        message.header.ifindex = 4;
        message.header.state = state;
        message.attributes = attributes;
        // Through the wire encoding and back, as the kernel's reply would come.
        let bytes = encode_request(RouteNetlinkMessage::NewNeighbour(message), 0, 1);
        match decode_messages(&bytes).unwrap().remove(0).payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) => {
                parse_neighbour(&n).unwrap()
            }
            other => panic!("not a neighbour: {other:?}"),
        }
    }

    fn fd00_1() -> Ipv6Addr {
        "fd00::1".parse().unwrap()
    }

    #[test]
    fn reachable_entry_gives_mac() {
        let mac = [0x02, 0, 0, 0, 0, 0x0b];
        let neighbour = neighbour_message(
            NeighbourState::Reachable,
            vec![
                NeighbourAttribute::Destination(fd00_1().into()),
                NeighbourAttribute::LinkLayerAddress(mac.to_vec()),
            ],
        );
        assert_eq!(neighbour.interface_index, 4);
        assert_eq!(neighbour.address, IpAddr::V6(fd00_1()));
        assert_eq!(neighbour.usable_mac(), Some(mac));
    }

    #[test]
    fn incomplete_or_failed_entry_has_no_usable_mac() {
        let incomplete = neighbour_message(
            NeighbourState::Incomplete,
            vec![NeighbourAttribute::Destination(fd00_1().into())],
        );
        assert_eq!(incomplete.usable_mac(), None);
        let failed = neighbour_message(
            NeighbourState::Failed,
            vec![
                NeighbourAttribute::Destination(Ipv4Addr::new(10, 0, 0, 1).into()),
                NeighbourAttribute::LinkLayerAddress(vec![0; 6]),
            ],
        );
        assert_eq!(failed.usable_mac(), None);
    }

    #[test]
    fn entry_without_destination_is_skipped() {
        let mut message = NeighbourMessage::default();
        message.attributes = vec![NeighbourAttribute::LinkLayerAddress(vec![1; 6])];
        assert_eq!(parse_neighbour(&message), None);
    }

    #[test]
    fn resolution_request_uses_ntf_use_and_the_family() {
        let request = resolution_request(7, IpAddr::V6(fd00_1()));
        let bytes = encode_request(RouteNetlinkMessage::NewNeighbour(request), 0, 1);
        // ndmsg: family, pad, pad, pad, ifindex, state (u16), flags, type
        assert_eq!(bytes[16], libc::AF_INET6 as u8);
        assert_eq!(u32::from_ne_bytes(bytes[20..24].try_into().unwrap()), 7);
        assert_eq!(u16::from_ne_bytes([bytes[24], bytes[25]]), 0x01); // NUD_INCOMPLETE
        assert_eq!(bytes[26], 0x01); // NTF_USE
        assert_eq!(&bytes[32..34], &[0xfd, 0]); // NDA_DST value
    }
}
