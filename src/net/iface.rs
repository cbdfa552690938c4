//! Interface discovery: index, MAC, MTU, IPv4 address, state, attached XDP program.
//!
//! Reads the kernel's view through rtnetlink (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE);
//! see `<linux/if_link.h>` and `<linux/if_addr.h>` for the attribute numbers.

use std::net::Ipv4Addr;

use super::netlink::{
    AF_INET, AF_UNSPEC, NLM_F_DUMP, NetError, Netlink, RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE,
    RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, attribute_ipv4, attribute_string, attributes, read_u32,
};

// <linux/if_link.h>
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_PROG_ID: u16 = 4;
// <linux/if.h>
const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;
// <linux/if_addr.h>
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_F_SECONDARY: u8 = 0x01;
// <linux/rtnetlink.h>
const RTA_OIF: u16 = 4;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;

/// What xdpget needs to know about the interface it downloads through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    /// IP MTU (the Ethernet header is not counted).
    pub mtu: u32,
    /// The primary IPv4 address and its prefix length.
    pub ipv4: Ipv4Addr,
    pub prefix_len: u8,
    /// The id of an XDP program attached to the interface, if any.
    pub xdp_prog_id: Option<u32>,
}

/// Link-level facts from one RTM_NEWLINK message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkInfo {
    pub name: String,
    pub index: u32,
    pub flags: u32,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub xdp_prog_id: Option<u32>,
}

impl LinkInfo {
    /// Administratively up and with carrier.
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0 && self.flags & IFF_RUNNING != 0
    }
}

impl Interface {
    /// Looks `name` up and checks that it can carry a download: it must exist, be up and
    /// have an IPv4 address.
    pub fn by_name(name: &str) -> Result<Interface, NetError> {
        let mut netlink = Netlink::open()?;
        let link = link_by_name(&mut netlink, name)?;
        if !link.is_up() {
            return Err(NetError::InterfaceDown(link.name));
        }
        let mac = link
            .mac
            .ok_or(NetError::Malformed("interface without MAC address"))?;
        let mtu = link
            .mtu
            .ok_or(NetError::Malformed("interface without MTU"))?;
        let (ipv4, prefix_len) = ipv4_of(&mut netlink, link.index)?
            .ok_or_else(|| NetError::NoIpv4Address(link.name.clone()))?;
        Ok(Interface {
            name: link.name,
            index: link.index,
            mac,
            mtu,
            ipv4,
            prefix_len,
            xdp_prog_id: link.xdp_prog_id,
        })
    }

    /// The interface the main table's default IPv4 route leaves through (the lowest metric
    /// wins); the `--iface` default.
    pub fn default_route_name() -> Result<String, NetError> {
        let mut netlink = Netlink::open()?;
        let mut rtmsg = [0u8; 12];
        rtmsg[0] = AF_INET;
        let replies = netlink
            .request(RTM_GETROUTE, NLM_F_DUMP, &rtmsg, &[])
            .map_err(|source| NetError::Netlink {
                context: "route dump",
                source,
            })?;
        let index = replies
            .iter()
            .filter(|reply| reply.msg_type == RTM_NEWROUTE)
            .filter_map(|reply| parse_default_route(&reply.payload))
            .min_by_key(|&(_, metric)| metric)
            .map(|(index, _)| index)
            .ok_or(NetError::NoDefaultRoute)?;
        Ok(link_by_index(&mut netlink, index)?.name)
    }
}

/// RTM_GETLINK for one name; ENODEV becomes "interface X does not exist".
pub(crate) fn link_by_name(netlink: &mut Netlink, name: &str) -> Result<LinkInfo, NetError> {
    let mut name_attribute = name.as_bytes().to_vec();
    name_attribute.push(0);
    // IFNAMSIZ is 16 including the NUL: a longer name cannot exist.
    if name.is_empty() || name_attribute.len() > 16 || name.contains(['/', '\0', ' ']) {
        return Err(NetError::NoSuchInterface(name.to_string()));
    }
    let ifinfomsg = [0u8; 16];
    let replies = netlink
        .request(
            RTM_GETLINK,
            0,
            &ifinfomsg,
            &[(IFLA_IFNAME, &name_attribute)],
        )
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ENODEV) => NetError::NoSuchInterface(name.to_string()),
            _ => NetError::Netlink {
                context: "link query",
                source,
            },
        })?;
    first_link(&replies).ok_or_else(|| NetError::NoSuchInterface(name.to_string()))
}

/// RTM_GETLINK for one index.
pub(crate) fn link_by_index(netlink: &mut Netlink, index: u32) -> Result<LinkInfo, NetError> {
    let mut ifinfomsg = [0u8; 16];
    ifinfomsg[0] = AF_UNSPEC;
    ifinfomsg[4..8].copy_from_slice(&index.to_ne_bytes());
    let replies =
        netlink
            .request(RTM_GETLINK, 0, &ifinfomsg, &[])
            .map_err(|source| match source.raw_os_error() {
                Some(libc::ENODEV) => NetError::NoSuchInterface(format!("#{index}")),
                _ => NetError::Netlink {
                    context: "link query",
                    source,
                },
            })?;
    first_link(&replies).ok_or_else(|| NetError::NoSuchInterface(format!("#{index}")))
}

fn first_link(replies: &[super::netlink::Reply]) -> Option<LinkInfo> {
    replies
        .iter()
        .filter(|reply| reply.msg_type == RTM_NEWLINK)
        .find_map(|reply| parse_link(&reply.payload))
}

/// The primary IPv4 address of interface `index`, if it has one.
fn ipv4_of(netlink: &mut Netlink, index: u32) -> Result<Option<(Ipv4Addr, u8)>, NetError> {
    let mut ifaddrmsg = [0u8; 8];
    ifaddrmsg[0] = AF_INET;
    let replies = netlink
        .request(RTM_GETADDR, NLM_F_DUMP, &ifaddrmsg, &[])
        .map_err(|source| NetError::Netlink {
            context: "address dump",
            source,
        })?;
    Ok(replies
        .iter()
        .filter(|reply| reply.msg_type == RTM_NEWADDR)
        .filter_map(|reply| parse_address(&reply.payload))
        .find(|address| address.index == index && !address.secondary)
        .map(|address| (address.address, address.prefix_len)))
}

/// Decodes `struct ifinfomsg` and its attributes.
pub(crate) fn parse_link(payload: &[u8]) -> Option<LinkInfo> {
    let index = read_u32(payload, 4)?;
    let flags = read_u32(payload, 8)?;
    let mut link = LinkInfo {
        name: String::new(),
        index,
        flags,
        mac: None,
        mtu: None,
        xdp_prog_id: None,
    };
    for (kind, value) in attributes(payload.get(16..)?) {
        match kind {
            IFLA_IFNAME => link.name = attribute_string(value),
            IFLA_ADDRESS => link.mac = value.try_into().ok(),
            IFLA_MTU => link.mtu = read_u32(value, 0),
            IFLA_XDP => {
                link.xdp_prog_id = attributes(value)
                    .find(|&(nested, _)| nested == IFLA_XDP_PROG_ID)
                    .and_then(|(_, id)| read_u32(id, 0))
                    .filter(|&id| id != 0);
            }
            _ => {}
        }
    }
    Some(link)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddressInfo {
    pub index: u32,
    pub prefix_len: u8,
    pub secondary: bool,
    pub address: Ipv4Addr,
}

/// Decodes `struct ifaddrmsg`; IFA_LOCAL is the interface's own address (IFA_ADDRESS is the
/// peer's on point-to-point links), so it wins when both are present.
pub(crate) fn parse_address(payload: &[u8]) -> Option<AddressInfo> {
    if *payload.first()? != AF_INET {
        return None;
    }
    let prefix_len = *payload.get(1)?;
    let secondary = payload.get(2)? & IFA_F_SECONDARY != 0;
    let index = read_u32(payload, 4)?;
    let mut local = None;
    let mut address = None;
    for (kind, value) in attributes(payload.get(8..)?) {
        match kind {
            IFA_LOCAL => local = attribute_ipv4(value),
            IFA_ADDRESS => address = attribute_ipv4(value),
            _ => {}
        }
    }
    Some(AddressInfo {
        index,
        prefix_len,
        secondary,
        address: local.or(address)?,
    })
}

/// (output interface, metric) of a main-table unicast default route.
fn parse_default_route(payload: &[u8]) -> Option<(u32, u32)> {
    let (family, dst_len, table, route_type) = (
        *payload.first()?,
        *payload.get(1)?,
        *payload.get(4)?,
        *payload.get(7)?,
    );
    if family != AF_INET || dst_len != 0 || route_type != RTN_UNICAST {
        return None;
    }
    let mut table = u32::from(table);
    let mut oif = None;
    let mut metric = 0;
    for (kind, value) in attributes(payload.get(12..)?) {
        match kind {
            RTA_TABLE => table = read_u32(value, 0).unwrap_or(table),
            RTA_OIF => oif = read_u32(value, 0),
            RTA_PRIORITY => metric = read_u32(value, 0).unwrap_or(0),
            _ => {}
        }
    }
    (table == RT_TABLE_MAIN).then_some(())?;
    Some((oif?, metric))
}

#[cfg(test)]
mod tests {
    use super::super::netlink::{NLMSG_DONE, decode_messages, encode_request};
    use super::*;

    fn payload(message: &[u8]) -> Vec<u8> {
        decode_messages(message).unwrap()[0].payload.to_vec()
    }

    #[test]
    fn parses_link_with_nested_xdp() {
        let mut ifinfomsg = [0u8; 16];
        ifinfomsg[4..8].copy_from_slice(&5u32.to_ne_bytes());
        ifinfomsg[8..12].copy_from_slice(&(IFF_UP | IFF_RUNNING).to_ne_bytes());
        // nested IFLA_XDP: IFLA_XDP_ATTACHED (u8) then IFLA_XDP_PROG_ID (u32)
        let mut xdp = vec![5, 0, 2, 0, 1, 0, 0, 0];
        xdp.extend_from_slice(&[8, 0, 4, 0]);
        xdp.extend_from_slice(&42u32.to_ne_bytes());
        let message = encode_request(
            RTM_NEWLINK,
            0,
            1,
            &ifinfomsg,
            &[
                (IFLA_IFNAME, b"veth0\0"),
                (IFLA_MTU, &1500u32.to_ne_bytes()),
                (IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]),
                (IFLA_XDP | 0x8000, &xdp),
            ],
        );
        let link = parse_link(&payload(&message)).unwrap();
        assert_eq!(link.name, "veth0");
        assert_eq!(link.index, 5);
        assert!(link.is_up());
        assert_eq!(link.mtu, Some(1500));
        assert_eq!(link.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(link.xdp_prog_id, Some(42));
    }

    #[test]
    fn link_without_xdp_or_carrier() {
        let mut ifinfomsg = [0u8; 16];
        ifinfomsg[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
        let message = encode_request(RTM_NEWLINK, 0, 1, &ifinfomsg, &[]);
        let link = parse_link(&payload(&message)).unwrap();
        assert!(!link.is_up());
        assert_eq!(link.xdp_prog_id, None);
        assert_eq!(parse_link(&[0; 5]), None);
    }

    #[test]
    fn parses_address_preferring_local() {
        let ifaddrmsg = [AF_INET, 24, 0, 0, 3, 0, 0, 0];
        let message = encode_request(
            RTM_NEWADDR,
            0,
            1,
            &ifaddrmsg,
            &[(IFA_ADDRESS, &[10, 9, 9, 9]), (IFA_LOCAL, &[10, 0, 0, 2])],
        );
        let address = parse_address(&payload(&message)).unwrap();
        assert_eq!(address.index, u32::from_ne_bytes([3, 0, 0, 0]));
        assert_eq!(address.prefix_len, 24);
        assert!(!address.secondary);
        assert_eq!(address.address, Ipv4Addr::new(10, 0, 0, 2));
        // IPv6 entries are skipped
        let mut v6 = payload(&message);
        v6[0] = 10;
        assert_eq!(parse_address(&v6), None);
    }

    #[test]
    fn parses_default_route_only() {
        let rtmsg = [AF_INET, 0, 0, 0, 254, 3, 0, RTN_UNICAST, 0, 0, 0, 0];
        let message = encode_request(
            RTM_NEWROUTE,
            0,
            1,
            &rtmsg,
            &[
                (RTA_OIF, &7u32.to_ne_bytes()),
                (RTA_PRIORITY, &100u32.to_ne_bytes()),
            ],
        );
        assert_eq!(parse_default_route(&payload(&message)), Some((7, 100)));
        let mut not_default = payload(&message);
        not_default[1] = 24;
        assert_eq!(parse_default_route(&not_default), None);
        let mut local_table = payload(&message);
        local_table[4] = 255;
        assert_eq!(parse_default_route(&local_table), None);
        let done = encode_request(NLMSG_DONE, 0, 1, &[0; 4], &[]);
        assert_eq!(parse_default_route(&payload(&done)), None);
    }
}
