//! Route lookup: which interface, source address, next hop and MTU the kernel would use to
//! reach a destination, IPv4 or IPv6.
//!
//! One RTM_GETROUTE request with RTA_DST (what `ip route get ADDR` does); the kernel runs its
//! full policy routing and answers with the chosen route, the source address it would pick
//! (RFC 6724 for IPv6) in RTA_PREFSRC and, when the route or a recorded Packet Too Big /
//! Fragmentation Needed lowered it, the path MTU in RTA_METRICS/RTAX_MTU (RFC 8201, RFC 1191).
//! See `<linux/rtnetlink.h>`.

use std::net::IpAddr;

use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteMetric, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::iface::link_by_index;
use super::netlink::{NetError, Netlink, failed};

/// The kernel's answer to "how do I reach `destination`?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: IpAddr,
    /// Output interface index and name.
    pub interface_index: u32,
    pub interface_name: String,
    /// The gateway, when the destination is not on a directly attached network.
    pub gateway: Option<IpAddr>,
    /// The source address the kernel would pick.
    pub source: Option<IpAddr>,
    /// The route's MTU (RTAX_MTU), when set or learnt from the path; else the interface's
    /// MTU applies.
    pub mtu: Option<u32>,
}

impl Route {
    /// Asks the kernel for its route to `destination`.
    pub fn to(destination: IpAddr) -> Result<Route, NetError> {
        let mut netlink = Netlink::open()?;
        let replies = netlink
            .request(RouteNetlinkMessage::GetRoute(lookup(destination)), 0)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ESRCH) => {
                    NetError::NoRoute(destination)
                }
                _ => failed("route lookup")(source),
            })?;
        let parsed = replies
            .iter()
            .find_map(|reply| match reply {
                RouteNetlinkMessage::NewRoute(route) => Some(parse_route(route)),
                _ => None,
            })
            .ok_or(NetError::NoRoute(destination))?;
        match parsed.route_type {
            RouteType::Unicast => {}
            RouteType::Local => return Err(NetError::LocalDestination(destination)),
            _ => return Err(NetError::NoRoute(destination)),
        }
        let interface_index = parsed.oif.ok_or(NetError::NoRoute(destination))?;
        let interface_name = link_by_index(&mut netlink, interface_index)?.name;
        Ok(Route {
            destination,
            interface_index,
            interface_name,
            gateway: parsed.gateway,
            source: parsed.prefsrc,
            mtu: parsed.mtu,
        })
    }

    /// The address whose MAC the first hop must carry: the gateway, or the destination
    /// itself when it is on-link.
    pub fn next_hop(&self) -> IpAddr {
        self.gateway.unwrap_or(self.destination)
    }

    /// The source address for connections over this route.
    pub fn source_address(&self) -> Result<IpAddr, NetError> {
        self.source
            .ok_or(NetError::NoSourceAddress(self.destination))
    }

    /// The largest IP packet this route carries: the route's MTU, capped by the interface's.
    pub fn path_mtu(&self, interface_mtu: u32) -> u32 {
        self.mtu.map_or(interface_mtu, |mtu| mtu.min(interface_mtu))
    }

    /// Checks that the route leaves through `interface` (the one xdpget listens on).
    pub fn expect_interface(&self, interface: &str) -> Result<(), NetError> {
        if self.interface_name == interface {
            Ok(())
        } else {
            Err(NetError::RouteViaOtherInterface {
                destination: self.destination,
                actual: self.interface_name.clone(),
                expected: interface.to_string(),
            })
        }
    }
}

/// The RTM_GETROUTE request for one destination: a host route lookup (`rtm_dst_len` 32 or
/// 128) with RTA_DST.
pub(crate) fn lookup(destination: IpAddr) -> RouteMessage {
    let mut message = RouteMessage::default();
    let (family, bits) = match destination {
        IpAddr::V4(_) => (AddressFamily::Inet, 32),
        IpAddr::V6(_) => (AddressFamily::Inet6, 128),
    };
    message.header.address_family = family;
    message.header.destination_prefix_length = bits;
    message
        .attributes
        .push(RouteAttribute::Destination(destination.into()));
    message
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedRoute {
    pub route_type: RouteType,
    pub table: u32,
    pub destination_prefix_len: u8,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub prefsrc: Option<IpAddr>,
    pub mtu: Option<u32>,
    pub priority: u32,
}

/// The attributes of a route message that xdpget uses.
pub(crate) fn parse_route(route: &RouteMessage) -> ParsedRoute {
    let mut parsed = ParsedRoute {
        route_type: route.header.kind,
        table: u32::from(route.header.table),
        destination_prefix_len: route.header.destination_prefix_length,
        oif: None,
        gateway: None,
        prefsrc: None,
        mtu: None,
        priority: 0,
    };
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Oif(index) => parsed.oif = Some(*index),
            RouteAttribute::Gateway(address) => parsed.gateway = ip_of(address),
            RouteAttribute::PrefSource(address) => parsed.prefsrc = ip_of(address),
            RouteAttribute::Table(table) => parsed.table = *table,
            RouteAttribute::Priority(metric) => parsed.priority = *metric,
            RouteAttribute::Metrics(metrics) => {
                parsed.mtu = metrics.iter().find_map(|metric| match metric {
                    RouteMetric::Mtu(mtu) if *mtu > 0 => Some(*mtu),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    parsed
}

/// The main table's number (`RT_TABLE_MAIN`).
pub(crate) const MAIN_TABLE: u32 = RouteHeader::RT_TABLE_MAIN as u32;

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::netlink::{decode_messages, encode_request};
    use super::*;
    use netlink_packet_core::NetlinkPayload;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// A route reply as the kernel sends it, through the wire encoding and back.
    fn round_trip(route: RouteMessage) -> RouteMessage {
        let bytes = encode_request(RouteNetlinkMessage::NewRoute(route), 0, 1);
        match decode_messages(&bytes).unwrap().remove(0).payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => route,
            other => panic!("not a route: {other:?}"),
        }
    }

    #[test]
    fn lookup_asks_for_a_host_route() {
        let bytes = encode_request(
            RouteNetlinkMessage::GetRoute(lookup("fd00::2".parse().unwrap())),
            0,
            1,
        );
        // rtmsg: family AF_INET6, dst_len 128; then RTA_DST (type 1) with 16 bytes
        assert_eq!(bytes[16], libc::AF_INET6 as u8);
        assert_eq!(bytes[17], 128);
        assert_eq!(&bytes[28..32], &[20, 0, 1, 0]);
        assert_eq!(bytes[32], 0xfd);
        let v4 = encode_request(
            RouteNetlinkMessage::GetRoute(lookup(Ipv4Addr::new(10, 0, 0, 1).into())),
            0,
            1,
        );
        assert_eq!((v4[16], v4[17]), (libc::AF_INET as u8, 32));
        assert_eq!(&v4[28..36], &[8, 0, 1, 0, 10, 0, 0, 1]);
    }

    #[test]
    fn parses_gateway_route_with_mtu() {
        let mut route = RouteMessage::default();
        route.header.address_family = AddressFamily::Inet6;
        route.header.kind = RouteType::Unicast;
        route.header.table = 254;
        route.attributes = vec![
            RouteAttribute::Destination("2001:db8::7".parse::<IpAddr>().unwrap().into()),
            RouteAttribute::Oif(2),
            RouteAttribute::Gateway("fe80::1".parse::<IpAddr>().unwrap().into()),
            RouteAttribute::PrefSource("fd00::1".parse::<IpAddr>().unwrap().into()),
            RouteAttribute::Metrics(vec![RouteMetric::Mtu(1280)]),
        ];
        let parsed = parse_route(&round_trip(route));
        assert_eq!(parsed.route_type, RouteType::Unicast);
        assert_eq!(parsed.table, MAIN_TABLE);
        assert_eq!(parsed.oif, Some(2));
        assert_eq!(parsed.gateway, Some("fe80::1".parse().unwrap()));
        assert_eq!(parsed.prefsrc, Some("fd00::1".parse().unwrap()));
        assert_eq!(parsed.mtu, Some(1280));
    }

    #[test]
    fn next_hop_source_and_mtu() {
        let mut route = Route {
            destination: Ipv4Addr::new(192, 0, 2, 7).into(),
            interface_index: 2,
            interface_name: "eth0".into(),
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1).into()),
            source: None,
            mtu: Some(1400),
        };
        assert_eq!(route.next_hop(), IpAddr::from(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(route.path_mtu(1500), 1400);
        assert_eq!(route.path_mtu(1300), 1300);
        assert!(matches!(
            route.source_address(),
            Err(NetError::NoSourceAddress(_))
        ));
        route.gateway = None;
        route.mtu = None;
        route.source = Some(Ipv6Addr::LOCALHOST.into());
        assert_eq!(route.next_hop(), route.destination);
        assert_eq!(route.path_mtu(1500), 1500);
        assert!(route.expect_interface("eth0").is_ok());
        let error = route.expect_interface("eth1").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the route to 192.0.2.7 leaves through eth0, not through eth1"
        );
    }
}
