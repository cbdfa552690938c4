//! Interface discovery: index, MAC, MTU, addresses, state, attached XDP program.
//!
//! Reads the kernel's view through rtnetlink (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE) with
//! `netlink-packet-route`'s typed messages; `<linux/if_link.h>` and `<linux/if_addr.h>` are
//! the reference for what the attributes mean.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::NLM_F_DUMP;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, LinkXdp};
use netlink_packet_route::route::{RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::netlink::{NetError, Netlink, failed};
use super::route::{MAIN_TABLE, parse_route};

/// What xdpget needs to know about the interface it downloads through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    /// IP MTU (the Ethernet header is not counted).
    pub mtu: u32,
    /// The primary IPv4 address, if the interface has one.
    pub ipv4: Option<Ipv4Addr>,
    /// The first global-scope, usable (not tentative, deprecated or failed) IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// The id of an XDP program attached to the interface, if any.
    pub xdp_prog_id: Option<u32>,
}

/// Link-level facts from one RTM_NEWLINK message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkInfo {
    pub name: String,
    pub index: u32,
    pub flags: LinkFlags,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub xdp_prog_id: Option<u32>,
}

impl LinkInfo {
    /// Administratively up and with carrier.
    pub fn is_up(&self) -> bool {
        self.flags.contains(LinkFlags::Up | LinkFlags::Running)
    }
}

impl Interface {
    /// Looks `name` up and checks that it can carry a download: it must exist and be up.
    /// Which of its addresses a connection uses is the route's business
    /// ([`Route::source_address`](super::route::Route::source_address)).
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
        let addresses = addresses_of(&mut netlink, link.index)?;
        let ipv4 = addresses.iter().find_map(|address| match address {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        });
        let ipv6 = addresses.iter().find_map(|address| match address {
            IpAddr::V6(v6) => Some(*v6),
            IpAddr::V4(_) => None,
        });
        Ok(Interface {
            name: link.name,
            index: link.index,
            mac,
            mtu,
            ipv4,
            ipv6,
            xdp_prog_id: link.xdp_prog_id,
        })
    }

    /// The primary IPv4 address, or the error that says there is none.
    pub fn require_ipv4(&self) -> Result<Ipv4Addr, NetError> {
        self.ipv4
            .ok_or_else(|| NetError::NoIpv4Address(self.name.clone()))
    }

    /// The interface the main table's default IPv4 route leaves through (the lowest metric
    /// wins).
    pub fn default_route_name() -> Result<String, NetError> {
        let mut netlink = Netlink::open()?;
        let mut request = RouteMessage::default();
        request.header.address_family = AddressFamily::Inet;
        let replies = netlink
            .request(RouteNetlinkMessage::GetRoute(request), NLM_F_DUMP)
            .map_err(failed("route dump"))?;
        let index = replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewRoute(route) => default_route(route),
                _ => None,
            })
            .min_by_key(|&(_, metric)| metric)
            .map(|(index, _)| index)
            .ok_or(NetError::NoDefaultRoute)?;
        Ok(link_by_index(&mut netlink, index)?.name)
    }
}

/// RTM_GETLINK for one name; ENODEV becomes "interface X does not exist".
pub(crate) fn link_by_name(netlink: &mut Netlink, name: &str) -> Result<LinkInfo, NetError> {
    // IFNAMSIZ is 16 including the NUL: a longer name cannot exist.
    if name.is_empty() || name.len() > 15 || name.contains(['/', '\0', ' ']) {
        return Err(NetError::NoSuchInterface(name.to_string()));
    }
    let mut request = LinkMessage::default();
    request
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    let replies = netlink
        .request(RouteNetlinkMessage::GetLink(request), 0)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ENODEV) => NetError::NoSuchInterface(name.to_string()),
            _ => failed("link query")(source),
        })?;
    first_link(&replies).ok_or_else(|| NetError::NoSuchInterface(name.to_string()))
}

/// RTM_GETLINK for one index.
pub(crate) fn link_by_index(netlink: &mut Netlink, index: u32) -> Result<LinkInfo, NetError> {
    let mut request = LinkMessage::default();
    request.header.index = index;
    let replies = netlink
        .request(RouteNetlinkMessage::GetLink(request), 0)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ENODEV) => NetError::NoSuchInterface(format!("#{index}")),
            _ => failed("link query")(source),
        })?;
    first_link(&replies).ok_or_else(|| NetError::NoSuchInterface(format!("#{index}")))
}

fn first_link(replies: &[RouteNetlinkMessage]) -> Option<LinkInfo> {
    replies.iter().find_map(|reply| match reply {
        RouteNetlinkMessage::NewLink(link) => Some(parse_link(link)),
        _ => None,
    })
}

/// The usable addresses of interface `index`, primary IPv4 first, in the kernel's order.
fn addresses_of(netlink: &mut Netlink, index: u32) -> Result<Vec<IpAddr>, NetError> {
    let replies = netlink
        .request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )
        .map_err(failed("address dump"))?;
    Ok(replies
        .iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewAddress(address) => parse_address(address),
            _ => None,
        })
        .filter(|address| address.index == index && address.usable())
        .map(|address| address.address)
        .collect())
}

/// The facts of one RTM_NEWLINK message that xdpget uses.
pub(crate) fn parse_link(link: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        name: String::new(),
        index: link.header.index,
        flags: link.header.flags,
        mac: None,
        mtu: None,
        xdp_prog_id: None,
    };
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::IfName(name) => info.name = name.clone(),
            LinkAttribute::Address(mac) => info.mac = mac.as_slice().try_into().ok(),
            LinkAttribute::Mtu(mtu) => info.mtu = Some(*mtu),
            LinkAttribute::Xdp(xdp) => {
                info.xdp_prog_id = xdp.iter().find_map(|nested| match nested {
                    LinkXdp::ProgId(id) if *id != 0 => Some(*id),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    info
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddressInfo {
    pub index: u32,
    pub prefix_len: u8,
    /// IFA_F_SECONDARY (IPv4 aliases), or an IPv6 address not fit for new connections:
    /// tentative (duplicate address detection still running), deprecated or failed DAD.
    pub unusable: bool,
    /// Global scope (not link- or host-local).
    pub global: bool,
    pub address: IpAddr,
}

impl AddressInfo {
    /// A primary, global address a new connection may use as its source.
    fn usable(&self) -> bool {
        !self.unusable && self.global
    }
}

/// Decodes one RTM_NEWADDR message; IFA_LOCAL is the interface's own address (IFA_ADDRESS is
/// the peer's on point-to-point links), so it wins when both are present. The 32-bit
/// IFA_FLAGS attribute, when present, supersedes the header's 8-bit flags.
pub(crate) fn parse_address(message: &AddressMessage) -> Option<AddressInfo> {
    let mut local = None;
    let mut address = None;
    let header_flags = message.header.flags;
    let mut unusable = header_flags.intersects(
        AddressHeaderFlags::Secondary
            | AddressHeaderFlags::Tentative
            | AddressHeaderFlags::Deprecated
            | AddressHeaderFlags::Dadfailed,
    );
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(flags) => {
                unusable = flags.intersects(
                    AddressFlags::Secondary
                        | AddressFlags::Tentative
                        | AddressFlags::Deprecated
                        | AddressFlags::Dadfailed,
                );
            }
            _ => {}
        }
    }
    Some(AddressInfo {
        index: message.header.index,
        prefix_len: message.header.prefix_len,
        unusable,
        global: message.header.scope == AddressScope::Universe,
        address: local.or(address)?,
    })
}

/// (output interface, metric) of a main-table unicast IPv4 default route.
fn default_route(route: &RouteMessage) -> Option<(u32, u32)> {
    if route.header.address_family != AddressFamily::Inet {
        return None;
    }
    let parsed = parse_route(route);
    let default = parsed.destination_prefix_len == 0
        && parsed.route_type == RouteType::Unicast
        && parsed.table == MAIN_TABLE;
    default.then_some(())?;
    Some((parsed.oif?, parsed.priority))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::route::RouteAttribute;

    #[test]
    fn parses_link_with_nested_xdp() {
        let mut link = LinkMessage::default();
        link.header.index = 5;
        link.header.flags = LinkFlags::Up | LinkFlags::Running;
        link.attributes = vec![
            LinkAttribute::IfName("veth0".into()),
            LinkAttribute::Mtu(1500),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
            LinkAttribute::Xdp(vec![LinkXdp::ProgId(42)]),
        ];
        let info = parse_link(&link);
        assert_eq!(info.name, "veth0");
        assert_eq!(info.index, 5);
        assert!(info.is_up());
        assert_eq!(info.mtu, Some(1500));
        assert_eq!(info.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(info.xdp_prog_id, Some(42));
    }

    #[test]
    fn link_without_xdp_or_carrier() {
        let mut link = LinkMessage::default();
        link.header.flags = LinkFlags::Up;
        link.attributes = vec![LinkAttribute::Xdp(vec![LinkXdp::ProgId(0)])];
        let info = parse_link(&link);
        assert!(!info.is_up());
        assert_eq!(info.xdp_prog_id, None);
    }

    fn address(family: AddressFamily, attributes: Vec<AddressAttribute>) -> AddressMessage {
        let mut message = AddressMessage::default();
        message.header.family = family;
        message.header.prefix_len = 24;
        message.header.index = 3;
        message.attributes = attributes;
        message
    }

    #[test]
    fn parses_address_preferring_local() {
        let message = address(
            AddressFamily::Inet,
            vec![
                AddressAttribute::Address(Ipv4Addr::new(10, 9, 9, 9).into()),
                AddressAttribute::Local(Ipv4Addr::new(10, 0, 0, 2).into()),
            ],
        );
        let info = parse_address(&message).unwrap();
        assert_eq!((info.index, info.prefix_len), (3, 24));
        assert!(info.usable());
        assert_eq!(info.address, IpAddr::from(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(parse_address(&address(AddressFamily::Inet, vec![])), None);
    }

    #[test]
    fn tentative_secondary_and_link_local_addresses_are_not_usable() {
        let v6: IpAddr = "fd00::1".parse().unwrap();
        let fresh = address(
            AddressFamily::Inet6,
            vec![
                AddressAttribute::Address(v6),
                AddressAttribute::Flags(AddressFlags::Tentative),
            ],
        );
        assert!(!parse_address(&fresh).unwrap().usable());
        let mut secondary = address(AddressFamily::Inet, vec![AddressAttribute::Local(v6)]);
        secondary.header.flags = AddressHeaderFlags::Secondary;
        assert!(!parse_address(&secondary).unwrap().usable());
        let mut link_local = address(AddressFamily::Inet6, vec![AddressAttribute::Address(v6)]);
        link_local.header.scope = AddressScope::Link;
        assert!(!parse_address(&link_local).unwrap().usable());
        let settled = address(
            AddressFamily::Inet6,
            vec![
                AddressAttribute::Address(v6),
                AddressAttribute::Flags(AddressFlags::Permanent),
            ],
        );
        assert!(parse_address(&settled).unwrap().usable());
    }

    #[test]
    fn parses_default_route_only() {
        let mut route = RouteMessage::default();
        route.header.address_family = AddressFamily::Inet;
        route.header.table = 254;
        route.header.kind = RouteType::Unicast;
        route.attributes = vec![RouteAttribute::Oif(7), RouteAttribute::Priority(100)];
        assert_eq!(default_route(&route), Some((7, 100)));
        let mut not_default = route.clone();
        not_default.header.destination_prefix_length = 24;
        assert_eq!(default_route(&not_default), None);
        let mut local_table = route.clone();
        local_table.header.table = 255;
        assert_eq!(default_route(&local_table), None);
        let mut v6 = route;
        v6.header.address_family = AddressFamily::Inet6;
        assert_eq!(default_route(&v6), None);
    }
}
