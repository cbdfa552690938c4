//! Root-only: interface, route and neighbour discovery against real namespaces.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::NetError;
use super::iface::Interface;
use super::neigh::resolve_mac;
use super::route::Route;
use crate::testkit::root_or_skip;
use crate::testkit::veth::{CLIENT_IF, CLIENT_IP, SERVER_IF, SERVER_IP, TestNet};

fn parse_mac(text: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(text.trim().split(':')) {
        *byte = u8::from_str_radix(part, 16).unwrap();
    }
    mac
}

#[test]
fn interface_route_and_neighbour_discovery() {
    if !root_or_skip("interface_route_and_neighbour_discovery") {
        return;
    }
    let net = TestNet::new("disc");
    // A second veth pair inside the client namespace for the "down" and "no IPv4" cases.
    net.client(&[
        "ip", "link", "add", "xgd0", "type", "veth", "peer", "name", "xgd1",
    ]);
    let server_mac_text = net.server(&["cat", &format!("/sys/class/net/{SERVER_IF}/address")]);
    let server_mac = parse_mac(&String::from_utf8_lossy(&server_mac_text.stdout));
    let client_mac_text = net.client(&["cat", &format!("/sys/class/net/{CLIENT_IF}/address")]);
    let client_mac = parse_mac(&String::from_utf8_lossy(&client_mac_text.stdout));

    net.in_client(|| {
        let interface = Interface::by_name(CLIENT_IF).unwrap();
        assert_eq!(interface.ipv4, Some(CLIENT_IP));
        assert_eq!(interface.mtu, 1500);
        assert_eq!(interface.mac, client_mac);
        assert_eq!(interface.xdp_prog_id, None);

        let missing = Interface::by_name("eth9").unwrap_err();
        assert_eq!(missing.to_string(), "interface eth9 does not exist");
        let down = Interface::by_name("xgd0").unwrap_err();
        assert_eq!(down.to_string(), "interface xgd0 is down");

        assert!(matches!(
            Interface::default_route_name(),
            Err(NetError::NoDefaultRoute)
        ));
        let far = Ipv4Addr::new(192, 0, 2, 9);
        assert!(matches!(Route::to(far.into()), Err(NetError::NoRoute(_))));

        let on_link = Route::to(SERVER_IP.into()).unwrap();
        assert_eq!(on_link.interface_name, CLIENT_IF);
        assert_eq!(on_link.gateway, None);
        assert_eq!(on_link.source, Some(CLIENT_IP.into()));
        assert_eq!(on_link.next_hop(), IpAddr::from(SERVER_IP));
        assert!(matches!(
            Route::to(CLIENT_IP.into()),
            Err(NetError::LocalDestination(_))
        ));

        // The table starts empty: this exercises the NTF_USE resolution path.
        let mac = resolve_mac(
            on_link.interface_index,
            CLIENT_IF,
            SERVER_IP.into(),
            Duration::from_secs(3),
        );
        assert_eq!(mac.unwrap(), server_mac);
        let nobody = Ipv4Addr::new(10, 77, 0, 99);
        let unresolved = resolve_mac(
            on_link.interface_index,
            CLIENT_IF,
            nobody.into(),
            Duration::from_millis(500),
        );
        assert_eq!(
            unresolved.unwrap_err().to_string(),
            "could not resolve the MAC address of next hop 10.77.0.99 on xgc0: no ARP reply"
        );
    });

    net.client(&["ip", "link", "set", "xgd0", "up"]);
    net.client(&["ip", "link", "set", "xgd1", "up"]);
    net.client(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        &SERVER_IP.to_string(),
    ]);
    net.in_client(|| {
        let no_address = Interface::by_name("xgd0").unwrap();
        assert_eq!(no_address.ipv4, None);
        assert_eq!(
            no_address.require_ipv4().unwrap_err().to_string(),
            "interface xgd0 has no IPv4 address"
        );
        assert_eq!(Interface::default_route_name().unwrap(), CLIENT_IF);
        let via_gateway = Route::to(Ipv4Addr::new(192, 0, 2, 9).into()).unwrap();
        assert_eq!(via_gateway.gateway, Some(SERVER_IP.into()));
        assert_eq!(via_gateway.next_hop(), IpAddr::from(SERVER_IP));
    });
}
