//! Whole frames in one call: what the engine does per packet.
//!
//! Receive: Ethernet II → IPv4 (RFC 791) or IPv6 (RFC 8200) → TCP (RFC 9293), each layer
//! validated, checksums verified on request. Transmit: all three headers, the payload and
//! the checksums. ARP (RFC 826) frames get the same pair of calls for the neighbour code.

use super::arp::{self, ArpPacket, ArpRepr};
use super::error::WireError;
use super::ethernet::{self, EtherType, EthernetFrame, EthernetRepr};
use super::ip::IpRepr;
use super::ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
use super::ipv6::{Ipv6Packet, Ipv6Repr};
use super::tcp::{TcpPacket, TcpRepr};

/// Parses an Ethernet frame carrying TCP over IPv4 or IPv6. The payload borrows from
/// `frame`.
///
/// With `verify_checksums` the IPv4 header checksum (IPv6 has none) and the TCP checksum
/// must be right; pass `false` only when the NIC already verified them. Ethernet padding
/// after the IP length is ignored; IPv6 extension headers are skipped as
/// [`Ipv6Repr::parse`] describes. Other ethertypes and protocols are
/// [`WireError::Unsupported`]; fragments of either version are [`WireError::Fragmented`].
pub fn parse_tcp_frame(
    frame: &[u8],
    verify_checksums: bool,
) -> Result<(EthernetRepr, IpRepr, TcpRepr<'_>), WireError> {
    let ethernet_frame = EthernetFrame::new_checked(frame)?;
    let ethernet = EthernetRepr::parse(&ethernet_frame)?;
    let (ip, segment) = match ethernet.ethertype {
        EtherType::Ipv4 => {
            let packet = Ipv4Packet::new_checked(ethernet_frame.payload_ref())?;
            let ip = Ipv4Repr::parse(&packet, verify_checksums)?;
            if ip.protocol != IpProtocol::Tcp {
                return Err(WireError::Unsupported("IPv4 packet does not carry TCP"));
            }
            (IpRepr::Ipv4(ip), packet.payload_ref())
        }
        EtherType::Ipv6 => {
            let packet = Ipv6Packet::new_checked(ethernet_frame.payload_ref())?;
            let (ip, upper) = Ipv6Repr::parse_upper(&packet)?;
            if ip.next_header != IpProtocol::Tcp {
                return Err(WireError::Unsupported("IPv6 packet does not carry TCP"));
            }
            (IpRepr::Ipv6(ip), upper)
        }
        _ => return Err(WireError::Unsupported("Ethernet frame does not carry IP")),
    };
    let tcp_packet = TcpPacket::new_checked(segment)?;
    let tcp = TcpRepr::parse(&tcp_packet, ip.src_addr(), ip.dst_addr(), verify_checksums)?;
    Ok((ethernet, ip, tcp))
}

/// The length of the frame [`emit_tcp_frame`] writes for `tcp` over `ip`: Ethernet and IP
/// headers (no IPv4 options, no IPv6 extension headers) plus the TCP segment.
pub fn tcp_frame_len(ip: impl Into<IpRepr>, tcp: &TcpRepr<'_>) -> usize {
    ethernet::HEADER_LEN + ip.into().header_len() + tcp.buffer_len()
}

/// Writes a whole frame (Ethernet, IP, TCP headers, payload, checksums) at the start of
/// `buffer` and returns its length, [`tcp_frame_len`].
///
/// `eth.ethertype`, the IP protocol / next header and the IP payload length are not read:
/// the frame carries TCP and the IP length comes from `tcp`. `buffer` shorter than the
/// frame is [`WireError::Truncated`]; a segment too long for IP is [`WireError::Malformed`].
pub fn emit_tcp_frame(
    buffer: &mut [u8],
    eth: &EthernetRepr,
    ip: impl Into<IpRepr>,
    tcp: &TcpRepr<'_>,
) -> Result<usize, WireError> {
    let ip = ip.into();
    let frame_len = tcp_frame_len(ip, tcp);
    let Some(frame) = buffer.get_mut(..frame_len) else {
        return Err(WireError::Truncated);
    };
    let (ethernet_header, packet) = frame.split_at_mut(ethernet::HEADER_LEN);
    let (ip_header, segment) = packet.split_at_mut(ip.header_len());
    match ip {
        IpRepr::Ipv4(ip) => Ipv4Repr {
            protocol: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            ..ip
        }
        .emit(&mut Ipv4Packet::new_unchecked(ip_header))?,
        IpRepr::Ipv6(ip) => Ipv6Repr {
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            ..ip
        }
        .emit(&mut Ipv6Packet::new_unchecked(ip_header))?,
    }
    let eth = EthernetRepr {
        ethertype: ip.ethertype(),
        ..*eth
    };
    eth.emit(&mut EthernetFrame::new_unchecked(ethernet_header))?;
    tcp.emit(
        &mut TcpPacket::new_unchecked(segment),
        ip.src_addr(),
        ip.dst_addr(),
    )?;
    Ok(frame_len)
}

/// Parses an Ethernet frame carrying an Ethernet/IPv4 ARP request or reply.
pub fn parse_arp_frame(frame: &[u8]) -> Result<(EthernetRepr, ArpRepr), WireError> {
    let ethernet_frame = EthernetFrame::new_checked(frame)?;
    let ethernet = EthernetRepr::parse(&ethernet_frame)?;
    if ethernet.ethertype != EtherType::Arp {
        return Err(WireError::Unsupported("Ethernet frame does not carry ARP"));
    }
    let arp = ArpRepr::parse(&ArpPacket::new_checked(ethernet_frame.payload_ref())?)?;
    Ok((ethernet, arp))
}

/// The length of an ARP frame without padding: 42 bytes.
pub const ARP_FRAME_LEN: usize = ethernet::HEADER_LEN + arp::PACKET_LEN;

/// Writes an ARP frame (ethertype set to ARP) at the start of `buffer` and returns its
/// length, [`ARP_FRAME_LEN`]. NICs pad it to the 60-byte minimum.
pub fn emit_arp_frame(
    buffer: &mut [u8],
    eth: &EthernetRepr,
    arp: &ArpRepr,
) -> Result<usize, WireError> {
    let Some(frame) = buffer.get_mut(..ARP_FRAME_LEN) else {
        return Err(WireError::Truncated);
    };
    let (ethernet_header, packet) = frame.split_at_mut(ethernet::HEADER_LEN);
    let eth = EthernetRepr {
        ethertype: EtherType::Arp,
        ..*eth
    };
    eth.emit(&mut EthernetFrame::new_unchecked(ethernet_header))?;
    arp.emit(&mut ArpPacket::new_unchecked(packet))?;
    Ok(ARP_FRAME_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::arp::ArpOperation;
    use crate::wire::ethernet::EthernetAddress;
    use crate::wire::fixtures::{
        ARP_REPLY, ARP_REQUEST, DATA, FIN, IPV6_ROUTER_SOLICIT, RST, SYN, SYN_ACK, V6_DATA, V6_FIN,
        V6_MLD_REPORT, V6_NEIGHBOUR_SOLICIT, V6_RST, V6_SYN, V6_SYN_ACK, V6_TCP_FRAMES,
        without_flow_label,
    };
    use crate::wire::seq::SeqNumber;
    use crate::wire::tcp::{TcpFlags, TcpOptions};
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    fn v4(ip: IpRepr) -> Ipv4Repr {
        match ip {
            IpRepr::Ipv4(ip) => ip,
            IpRepr::Ipv6(ip) => panic!("expected IPv4, got {ip:?}"),
        }
    }

    fn v6(ip: IpRepr) -> Ipv6Repr {
        match ip {
            IpRepr::Ipv6(ip) => ip,
            IpRepr::Ipv4(ip) => panic!("expected IPv6, got {ip:?}"),
        }
    }

    const CLIENT_MAC: EthernetAddress = EthernetAddress([0x16, 0x38, 0x6f, 0x9c, 0x48, 0x75]);
    const SERVER_MAC: EthernetAddress = EthernetAddress([0x7a, 0x22, 0x7b, 0x62, 0x1f, 0x27]);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);

    #[test]
    fn test_deconstruct() {
        let (eth, ip, tcp) = parse_tcp_frame(&SYN, true).unwrap();
        let ip = v4(ip);
        assert_eq!((eth.src_addr, eth.dst_addr), (CLIENT_MAC, SERVER_MAC));
        assert_eq!((ip.src_addr, ip.dst_addr, ip.ttl), (CLIENT, SERVER, 64));
        assert_eq!(
            (tcp.src_port, tcp.dst_port, tcp.flags),
            (58316, 8080, TcpFlags::SYN)
        );
        assert_eq!(tcp.options.mss, Some(1460));

        let (_, ip, tcp) = parse_tcp_frame(&DATA, true).unwrap();
        let ip = v4(ip);
        assert_eq!((ip.src_addr, ip.ident), (SERVER, 20294));
        assert_eq!(tcp.payload, b"hello from xdpget wire fixtures\n");
        assert_eq!(tcp.flags, TcpFlags::PSH | TcpFlags::ACK);

        for frame in [&SYN_ACK[..], &FIN[..], &RST[..]] {
            assert!(parse_tcp_frame(frame, true).is_ok());
        }

        let (eth, arp) = parse_arp_frame(&ARP_REQUEST).unwrap();
        assert!(eth.dst_addr.is_broadcast());
        assert_eq!(arp.operation, ArpOperation::Request);
        assert_eq!(arp.target_protocol_addr, SERVER);
        let (_, arp) = parse_arp_frame(&ARP_REPLY).unwrap();
        assert_eq!(
            (arp.operation, arp.source_hardware_addr),
            (ArpOperation::Reply, SERVER_MAC)
        );
    }

    #[test]
    fn test_construct() {
        for frame in [&DATA[..], &FIN[..], &RST[..]] {
            let (eth, ip, tcp) = parse_tcp_frame(frame, true).unwrap();
            let mut buffer = [0xa5u8; 128];
            let len = emit_tcp_frame(&mut buffer, &eth, ip, &tcp).unwrap();
            assert_eq!(len, tcp_frame_len(ip, &tcp));
            assert_eq!(&buffer[..len], frame);
        }
        for frame in [&ARP_REQUEST[..], &ARP_REPLY[..]] {
            let (eth, arp) = parse_arp_frame(frame).unwrap();
            let mut buffer = [0u8; 60];
            assert_eq!(emit_arp_frame(&mut buffer, &eth, &arp), Ok(ARP_FRAME_LEN));
            assert_eq!(&buffer[..ARP_FRAME_LEN], frame);
        }
    }

    #[test]
    fn test_truncated() {
        for frame in [&SYN[..], &DATA[..], &RST[..]] {
            // Every cut inside the headers or the declared IPv4 length is caught.
            for len in 0..frame.len() {
                assert_eq!(
                    parse_tcp_frame(&frame[..len], false),
                    Err(WireError::Truncated)
                );
            }
        }
        let (eth, ip, tcp) = parse_tcp_frame(&DATA, true).unwrap();
        let mut small = [0u8; 97];
        assert_eq!(
            emit_tcp_frame(&mut small, &eth, ip, &tcp),
            Err(WireError::Truncated)
        );
        let (eth, arp) = parse_arp_frame(&ARP_REPLY).unwrap();
        assert_eq!(parse_arp_frame(&ARP_REPLY[..41]), Err(WireError::Truncated));
        assert_eq!(
            emit_arp_frame(&mut small[..41], &eth, &arp),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn padding_is_ignored_and_checksums_checked() {
        let mut padded = RST.to_vec();
        padded.resize(60, 0);
        let (_, _, tcp) = parse_tcp_frame(&padded, true).unwrap();
        assert!(tcp.flags.rst() && tcp.payload.is_empty());

        let mut corrupt = DATA.to_vec();
        corrupt[22] -= 1; // TTL: IPv4 checksum breaks, TCP's does not cover it
        assert_eq!(parse_tcp_frame(&corrupt, true), Err(WireError::BadChecksum));
        assert!(parse_tcp_frame(&corrupt, false).is_ok());
        let mut corrupt = DATA.to_vec();
        corrupt[70] ^= 1; // payload: TCP checksum breaks
        assert_eq!(parse_tcp_frame(&corrupt, true), Err(WireError::BadChecksum));
    }

    #[test]
    fn other_frames_are_unsupported() {
        for frame in [&ARP_REQUEST[..], &IPV6_ROUTER_SOLICIT[..]] {
            assert!(matches!(
                parse_tcp_frame(frame, true),
                Err(WireError::Unsupported(_))
            ));
        }
        assert!(matches!(
            parse_arp_frame(&SYN),
            Err(WireError::Unsupported(_))
        ));
        let mut udp = DATA.to_vec();
        udp[23] = 17;
        assert!(matches!(
            parse_tcp_frame(&udp, false),
            Err(WireError::Unsupported(_))
        ));
    }

    #[test]
    fn emits_our_syn() {
        let eth = EthernetRepr {
            src_addr: CLIENT_MAC,
            dst_addr: SERVER_MAC,
            ethertype: EtherType::Unknown(0),
        };
        let ip = Ipv4Repr {
            src_addr: CLIENT,
            dst_addr: SERVER,
            protocol: IpProtocol::Udp,
            payload_len: 0,
            ttl: 64,
            ident: 7,
            dont_fragment: true,
        };
        let tcp = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq_number: SeqNumber(1),
            ack_number: SeqNumber(0),
            flags: TcpFlags::SYN,
            window_len: 65535,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: false,
                timestamps: Some((5, 0)),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        let mut buffer = [0u8; 100];
        let len = emit_tcp_frame(&mut buffer, &eth, ip, &tcp).unwrap();
        assert_eq!(len, 74);
        let (eth2, ip2, tcp2) = parse_tcp_frame(&buffer[..len], true).unwrap();
        assert_eq!(
            eth2,
            EthernetRepr {
                ethertype: EtherType::Ipv4,
                ..eth
            }
        );
        assert_eq!(
            v4(ip2),
            Ipv4Repr {
                protocol: IpProtocol::Tcp,
                payload_len: 40,
                ..ip
            }
        );
        assert_eq!(tcp2, tcp);
    }

    #[test]
    fn ipv6_deconstruct() {
        let client: Ipv6Addr = "fd00:77::2".parse().unwrap();
        let server: Ipv6Addr = "fd00:77::1".parse().unwrap();
        let (eth, ip, tcp) = parse_tcp_frame(&V6_SYN, true).unwrap();
        assert_eq!(eth.ethertype, EtherType::Ipv6);
        assert_eq!((eth.src_addr, eth.dst_addr), (CLIENT_MAC, SERVER_MAC));
        let ip = v6(ip);
        assert_eq!(
            (ip.src_addr, ip.dst_addr, ip.hop_limit),
            (client, server, 64)
        );
        assert_eq!((tcp.src_port, tcp.dst_port), (40272, 8080));
        // Linux advertises MSS = MTU - 60 over IPv6 (RFC 8200 §5, RFC 9293 §3.7.1)
        assert_eq!(tcp.options.mss, Some(1440));

        let (_, ip, tcp) = parse_tcp_frame(&V6_DATA, true).unwrap();
        assert_eq!(
            (ip.src_addr(), ip.dst_addr()),
            (server.into(), client.into())
        );
        assert_eq!(tcp.payload, b"hello from xdpget wire fixtures\n");
        let (_, _, tcp) = parse_tcp_frame(&V6_RST, true).unwrap();
        assert!(tcp.flags.rst());
        assert!(parse_tcp_frame(&V6_SYN_ACK, true).is_ok());
        assert!(parse_tcp_frame(&V6_FIN, true).unwrap().2.flags.fin());

        // ICMPv6 (neighbour discovery, MLD behind a hop-by-hop header) stays the kernel's
        for frame in [&V6_NEIGHBOUR_SOLICIT[..], &V6_MLD_REPORT[..]] {
            assert!(matches!(
                parse_tcp_frame(frame, true),
                Err(WireError::Unsupported(_))
            ));
        }
    }

    #[test]
    fn ipv6_construct_equals_linux() {
        for frame in V6_TCP_FRAMES {
            let expected = without_flow_label(frame);
            let (eth, ip, tcp) = parse_tcp_frame(frame, true).unwrap();
            let mut buffer = [0xa5u8; 160];
            let len = emit_tcp_frame(&mut buffer, &eth, ip, &tcp).unwrap();
            assert_eq!(len, tcp_frame_len(ip, &tcp));
            assert_eq!(&buffer[..len], &expected[..]);
        }
    }

    #[test]
    fn ipv6_truncated_and_corrupt() {
        for frame in [&V6_SYN[..], &V6_DATA[..], &V6_RST[..]] {
            for len in 0..frame.len() {
                assert_eq!(
                    parse_tcp_frame(&frame[..len], false),
                    Err(WireError::Truncated)
                );
            }
        }
        let mut padded = V6_RST.to_vec();
        padded.resize(80, 0);
        assert!(parse_tcp_frame(&padded, true).is_ok());

        let mut corrupt = V6_DATA.to_vec();
        corrupt[40] ^= 1; // the destination address: only the pseudo-header covers it
        assert_eq!(parse_tcp_frame(&corrupt, true), Err(WireError::BadChecksum));
        assert!(parse_tcp_frame(&corrupt, false).is_ok());
        let mut udp = V6_DATA.to_vec();
        udp[20] = 17;
        assert!(matches!(
            parse_tcp_frame(&udp, false),
            Err(WireError::Unsupported(_))
        ));
        let mut fragment = V6_DATA.to_vec();
        fragment[20] = 44;
        assert_eq!(
            parse_tcp_frame(&fragment, false),
            Err(WireError::Fragmented)
        );
    }

    fn mutated(frame: &[u8], cut: usize, flips: &[(usize, u8)]) -> Vec<u8> {
        let mut bytes = frame.to_vec();
        for &(at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        bytes.truncate(cut);
        bytes
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse_tcp_frame(&bytes, true);
            let _ = parse_tcp_frame(&bytes, false);
            let _ = parse_arp_frame(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_captures(
            which in 0usize..14,
            cut in 0usize..130,
            flips in proptest::collection::vec((0usize..130, any::<u8>()), 0..8),
        ) {
            let frames: [&[u8]; 14] = [
                &SYN, &SYN_ACK, &DATA, &FIN, &RST, &ARP_REQUEST, &ARP_REPLY, &V6_SYN, &V6_SYN_ACK,
                &V6_DATA, &V6_FIN, &V6_RST, &V6_NEIGHBOUR_SOLICIT, &V6_MLD_REPORT,
            ];
            let bytes = mutated(frames[which], cut, &flips);
            let _ = parse_tcp_frame(&bytes, true);
            if let Ok((eth, ip, tcp)) = parse_tcp_frame(&bytes, false) {
                // Whatever parses can be emitted again.
                let mut buffer = vec![0u8; tcp_frame_len(ip, &tcp)];
                prop_assert!(emit_tcp_frame(&mut buffer, &eth, ip, &tcp).is_ok());
            }
            let _ = parse_arp_frame(&bytes);
        }

        #[test]
        fn ipv6_emit_parse_round_trip(
            src: [u8; 16],
            dst: [u8; 16],
            ports in (1u16.., 1u16..),
            seq: u32,
            ack: u32,
            hop_limit: u8,
            len in 0usize..64,
        ) {
            let payload = [0x5au8; 64];
            let eth = EthernetRepr {
                src_addr: CLIENT_MAC,
                dst_addr: SERVER_MAC,
                ethertype: EtherType::Ipv6,
            };
            let ip = Ipv6Repr {
                src_addr: Ipv6Addr::from(src),
                dst_addr: Ipv6Addr::from(dst),
                next_header: IpProtocol::Tcp,
                payload_len: 0,
                hop_limit,
            };
            let tcp = TcpRepr {
                src_port: ports.0,
                dst_port: ports.1,
                seq_number: SeqNumber(seq),
                ack_number: SeqNumber(ack),
                flags: TcpFlags::ACK,
                window_len: 512,
                options: TcpOptions::default(),
                payload: &payload[..len],
            };
            let mut buffer = vec![0u8; tcp_frame_len(ip, &tcp)];
            emit_tcp_frame(&mut buffer, &eth, ip, &tcp).unwrap();
            let (eth2, ip2, tcp2) = parse_tcp_frame(&buffer, true).unwrap();
            prop_assert_eq!(eth2, eth);
            prop_assert_eq!(v6(ip2), Ipv6Repr { payload_len: tcp.buffer_len(), ..ip });
            prop_assert_eq!(tcp2, tcp);
        }
    }
}
