//! Route lookup: which interface and next hop the kernel would use to reach a destination.
//!
//! One RTM_GETROUTE request with RTA_DST (what `ip route get` does); the kernel runs its
//! full policy routing and answers with the chosen route. See `<linux/rtnetlink.h>`.

use std::net::Ipv4Addr;

use super::iface::link_by_index;
use super::netlink::{
    AF_INET, NetError, Netlink, RTM_GETROUTE, RTM_NEWROUTE, attribute_ipv4, attributes, failed,
    read_u32,
};

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PREFSRC: u16 = 7;
const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;

/// The kernel's answer to "how do I reach `destination`?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Addr,
    /// Output interface index and name.
    pub interface_index: u32,
    pub interface_name: String,
    /// The gateway, when the destination is not on a directly attached network.
    pub gateway: Option<Ipv4Addr>,
    /// The source address the kernel would pick.
    pub source: Option<Ipv4Addr>,
}

impl Route {
    /// Asks the kernel for its route to `destination`.
    pub fn to(destination: Ipv4Addr) -> Result<Route, NetError> {
        let mut netlink = Netlink::open()?;
        let mut rtmsg = [0u8; 12];
        rtmsg[0] = AF_INET;
        rtmsg[1] = 32; // rtm_dst_len: a host route lookup
        let replies = netlink
            .request(RTM_GETROUTE, 0, &rtmsg, &[(RTA_DST, &destination.octets())])
            .map_err(|source| match source.raw_os_error() {
                Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ESRCH) => {
                    NetError::NoRoute(destination)
                }
                _ => failed("route lookup")(source),
            })?;
        let parsed = replies
            .iter()
            .filter(|reply| reply.msg_type == RTM_NEWROUTE)
            .find_map(|reply| parse_route(&reply.payload))
            .ok_or(NetError::NoRoute(destination))?;
        match parsed.route_type {
            RTN_UNICAST => {}
            RTN_LOCAL => return Err(NetError::LocalDestination(destination)),
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
        })
    }

    /// The address whose MAC the first hop must carry: the gateway, or the destination
    /// itself when it is on-link.
    pub fn next_hop(&self) -> Ipv4Addr {
        self.gateway.unwrap_or(self.destination)
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedRoute {
    pub route_type: u8,
    pub oif: Option<u32>,
    pub gateway: Option<Ipv4Addr>,
    pub prefsrc: Option<Ipv4Addr>,
}

/// Decodes `struct rtmsg` (12 bytes) and the attributes we use.
pub(crate) fn parse_route(payload: &[u8]) -> Option<ParsedRoute> {
    if *payload.first()? != AF_INET {
        return None;
    }
    let mut route = ParsedRoute {
        route_type: *payload.get(7)?,
        oif: None,
        gateway: None,
        prefsrc: None,
    };
    for (kind, value) in attributes(payload.get(12..)?) {
        match kind {
            RTA_OIF => route.oif = read_u32(value, 0),
            RTA_GATEWAY => route.gateway = attribute_ipv4(value),
            RTA_PREFSRC => route.prefsrc = attribute_ipv4(value),
            _ => {}
        }
    }
    Some(route)
}

#[cfg(test)]
mod tests {
    use super::super::netlink::{decode_messages, encode_request};
    use super::*;

    #[test]
    fn parses_gateway_route() {
        let rtmsg = [AF_INET, 32, 0, 0, 254, 3, 0, RTN_UNICAST, 0, 0, 0, 0];
        let message = encode_request(
            RTM_NEWROUTE,
            0,
            1,
            &rtmsg,
            &[
                (RTA_DST, &[192, 0, 2, 7]),
                (RTA_OIF, &2u32.to_ne_bytes()),
                (RTA_GATEWAY, &[10, 0, 0, 1]),
                (RTA_PREFSRC, &[10, 0, 0, 2]),
            ],
        );
        let payload = decode_messages(&message).unwrap()[0].payload;
        let route = parse_route(payload).unwrap();
        assert_eq!(route.route_type, RTN_UNICAST);
        assert_eq!(route.oif, Some(2));
        assert_eq!(route.gateway, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(route.prefsrc, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(parse_route(&payload[..5]), None);
    }

    #[test]
    fn next_hop_is_gateway_or_destination() {
        let mut route = Route {
            destination: Ipv4Addr::new(192, 0, 2, 7),
            interface_index: 2,
            interface_name: "eth0".into(),
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
            source: None,
        };
        assert_eq!(route.next_hop(), Ipv4Addr::new(10, 0, 0, 1));
        route.gateway = None;
        assert_eq!(route.next_hop(), route.destination);
        assert!(route.expect_interface("eth0").is_ok());
        let error = route.expect_interface("eth1").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the route to 192.0.2.7 leaves through eth0, not through eth1"
        );
    }
}
