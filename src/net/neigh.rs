//! Next-hop MAC resolution from the kernel's neighbour (ARP) table.
//!
//! RFC 826 (ARP) and RFC 1122 §2.3.2.1 (ARP cache) are the kernel's business: we read its
//! table (RTM_GETNEIGH) and, when the entry is missing, ask the kernel itself to resolve it
//! (RTM_NEWNEIGH with NTF_USE, which runs `neigh_event_send` exactly as an outgoing packet
//! would, so the kernel sends the ARP request and no datagram of ours leaves), then poll the
//! table with a bounded wait. See `<linux/neighbour.h>`.

use std::net::{Ipv4Addr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use super::netlink::{
    AF_INET, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NetError, Netlink, RTM_GETNEIGH, RTM_NEWNEIGH,
    attribute_ipv4, attributes, failed, read_u16, read_u32,
};

const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NUD_INCOMPLETE: u16 = 0x01;
const NUD_REACHABLE: u16 = 0x02;
const NUD_STALE: u16 = 0x04;
const NUD_DELAY: u16 = 0x08;
const NUD_PROBE: u16 = 0x10;
const NUD_FAILED: u16 = 0x20;
const NUD_NOARP: u16 = 0x40;
const NUD_PERMANENT: u16 = 0x80;
/// States whose link-layer address the kernel itself would use to send.
const NUD_USABLE: u16 =
    NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_NOARP | NUD_PERMANENT;
const NTF_USE: u8 = 0x01;

/// How often the table is read while waiting for an ARP reply.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// One IPv4 entry of the neighbour table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Neighbour {
    pub interface_index: u32,
    pub address: Ipv4Addr,
    pub state: u16,
    pub mac: Option<[u8; 6]>,
}

impl Neighbour {
    fn usable_mac(&self) -> Option<[u8; 6]> {
        (self.state & NUD_USABLE != 0).then_some(self.mac).flatten()
    }
}

/// The MAC address of `next_hop` on interface `interface_index` (named `interface_name` in
/// errors), resolving it through the kernel when the table has no usable entry. Waits at
/// most `timeout` for the ARP reply.
pub fn resolve_mac(
    interface_index: u32,
    interface_name: &str,
    next_hop: Ipv4Addr,
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
        let failed_now = entry.is_some_and(|n| n.state & NUD_FAILED != 0);
        if failed_now || Instant::now() >= deadline {
            return Err(NetError::NeighbourUnresolved {
                next_hop,
                interface: interface_name.to_string(),
            });
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// The table entry for `address` on `interface_index`, whatever its state.
fn lookup(
    netlink: &mut Netlink,
    interface_index: u32,
    address: Ipv4Addr,
) -> Result<Option<Neighbour>, NetError> {
    let mut ndmsg = [0u8; 12];
    ndmsg[0] = AF_INET;
    let replies = netlink
        .request(RTM_GETNEIGH, NLM_F_DUMP, &ndmsg, &[])
        .map_err(failed("neighbour dump"))?;
    Ok(replies
        .iter()
        .filter(|reply| reply.msg_type == RTM_NEWNEIGH)
        .filter_map(|reply| parse_neighbour(&reply.payload))
        .find(|n| n.interface_index == interface_index && n.address == address))
}

/// Makes the kernel start ARP for `address`: RTM_NEWNEIGH with NTF_USE creates an
/// INCOMPLETE entry and fires the resolution timer, as a packet queued to it would. Where a
/// kernel refuses that, one empty UDP datagram to the discard port (RFC 863) makes the
/// kernel resolve the next hop on its way out.
fn provoke_resolution(
    netlink: &mut Netlink,
    interface_index: u32,
    address: Ipv4Addr,
) -> Result<(), NetError> {
    let mut ndmsg = [0u8; 12];
    ndmsg[0] = AF_INET;
    ndmsg[4..8].copy_from_slice(&interface_index.to_ne_bytes());
    ndmsg[8..10].copy_from_slice(&NUD_INCOMPLETE.to_ne_bytes());
    ndmsg[10] = NTF_USE;
    let asked = netlink.request(
        RTM_NEWNEIGH,
        NLM_F_CREATE | NLM_F_ACK,
        &ndmsg,
        &[(NDA_DST, &address.octets())],
    );
    if asked.is_ok() {
        return Ok(());
    }
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(failed("udp probe"))?;
    socket.connect((address, 9)).map_err(failed("udp probe"))?;
    // A send error (EHOSTUNREACH after failed ARP, ...) is reported by the wait instead.
    let _ = socket.send(&[]);
    Ok(())
}

/// Decodes `struct ndmsg` (12 bytes) and its NDA_DST / NDA_LLADDR attributes.
pub(crate) fn parse_neighbour(payload: &[u8]) -> Option<Neighbour> {
    if *payload.first()? != AF_INET {
        return None;
    }
    let interface_index = read_u32(payload, 4)?;
    let state = read_u16(payload, 8)?;
    let mut address = None;
    let mut mac = None;
    for (kind, value) in attributes(payload.get(12..)?) {
        match kind {
            NDA_DST => address = attribute_ipv4(value),
            NDA_LLADDR => mac = value.try_into().ok(),
            _ => {}
        }
    }
    Some(Neighbour {
        interface_index,
        address: address?,
        state,
        mac,
    })
}

#[cfg(test)]
mod tests {
    use super::super::netlink::{decode_messages, encode_request};
    use super::*;

    fn neighbour_message(state: u16, attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let mut ndmsg = [0u8; 12];
        ndmsg[0] = AF_INET;
        ndmsg[4..8].copy_from_slice(&4u32.to_ne_bytes());
        ndmsg[8..10].copy_from_slice(&state.to_ne_bytes());
        let message = encode_request(RTM_NEWNEIGH, 0, 1, &ndmsg, attributes);
        decode_messages(&message).unwrap()[0].payload.to_vec()
    }

    #[test]
    fn reachable_entry_gives_mac() {
        let mac = [0x02, 0, 0, 0, 0, 0x0b];
        let payload = neighbour_message(
            NUD_REACHABLE,
            &[(NDA_DST, &[10, 0, 0, 1]), (NDA_LLADDR, &mac)],
        );
        let neighbour = parse_neighbour(&payload).unwrap();
        assert_eq!(neighbour.interface_index, 4);
        assert_eq!(neighbour.address, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(neighbour.usable_mac(), Some(mac));
    }

    #[test]
    fn incomplete_or_failed_entry_has_no_usable_mac() {
        let payload = neighbour_message(NUD_INCOMPLETE, &[(NDA_DST, &[10, 0, 0, 1])]);
        assert_eq!(parse_neighbour(&payload).unwrap().usable_mac(), None);
        let payload = neighbour_message(
            NUD_FAILED,
            &[(NDA_DST, &[10, 0, 0, 1]), (NDA_LLADDR, &[0; 6])],
        );
        assert_eq!(parse_neighbour(&payload).unwrap().usable_mac(), None);
    }

    #[test]
    fn entry_without_destination_is_skipped() {
        let payload = neighbour_message(NUD_REACHABLE, &[(NDA_LLADDR, &[1; 6])]);
        assert_eq!(parse_neighbour(&payload), None);
        assert_eq!(parse_neighbour(&payload[..6]), None);
    }
}
