//! Per-connection prebuilt headers: the fast way to emit a connection's segments.
//!
//! RFC 1071 §2 (sums of parts combine), RFC 1624 (incremental update, eqn. 3),
//! RFC 9293 §3.1 (pseudo-header), RFC 791 §3.1 (IPv4 header checksum), RFC 8200 §3 and
//! §8.1 (the IPv6 header, which has no checksum, and its pseudo-header).
//!
//! A connection's MACs, addresses, ports and TTL never change, so [`FrameTemplate::new`]
//! writes those header bytes once and sums them once. Per segment, [`FrameTemplate::emit`]
//! copies the prefix, writes the fields that change and finishes the checksums from the
//! precomputed sums: the IPv4 checksum costs two additions instead of a pass over the
//! header. [`refresh_in_place`] updates a frame that was already emitted (a retransmission)
//! with a new IPv4 id, ACK, window and timestamps, fixing the checksums incrementally
//! without reading the payload again. Both produce exactly the bytes of [`emit_tcp_frame`].
//!
//! [`emit_tcp_frame`]: super::frame::emit_tcp_frame

use core::net::IpAddr;

use super::checksum;
use super::error::WireError;
use super::ethernet::{self, EtherType, EthernetFrame, EthernetRepr};
use super::ip::IpRepr;
use super::ipv4::{self, IpProtocol, Ipv4Packet};
use super::ipv6::{self, Ipv6Packet};
use super::seq::SeqNumber;
use super::tcp::{self, TcpPacket, TcpRepr};
use super::{read_u16, read_u32, write_u16, write_u32};

/// Bytes of a frame that are the same for every segment of a connection: the Ethernet
/// header, the IP header (IPv4 with zero total length, id and checksum; IPv6 with zero
/// payload length) and the TCP ports. Sized for the longer, IPv6.
const MAX_PREFIX_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + 4;
const IP_START: usize = ethernet::HEADER_LEN;

/// Positions of the per-segment fields: IP ones absolute, TCP ones from the TCP header.
mod field {
    use crate::wire::Field;
    pub const IPV4_TOTAL_LEN: Field = 16..18;
    pub const IPV4_IDENT: Field = 18..20;
    pub const IPV4_CHECKSUM: Field = 24..26;
    pub const IPV6_PAYLOAD_LEN: Field = 18..20;
    pub const TCP_ACK_NUMBER: usize = 8;
    pub const TCP_WINDOW: usize = 14;
    pub const TCP_CHECKSUM: usize = 16;
    pub const TCP_OPTIONS: usize = 20;
}

/// `at..at + len`, for the TCP fields whose position depends on the IP version.
const fn span(at: usize, len: usize) -> core::ops::Range<usize> {
    at..at + len
}

/// The constant part of one connection's frames, with its checksum sums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameTemplate {
    prefix: [u8; MAX_PREFIX_LEN],
    /// Where the TCP header starts: 34 over IPv4, 54 over IPv6.
    tcp_start: usize,
    ipv6: bool,
    src_port: u16,
    dst_port: u16,
    /// Sum of the IPv4 header with total length, id and checksum zero (unused for IPv6).
    ip_header_sum: u16,
    /// Sum of the pseudo-header without its length, plus both ports.
    tcp_constant_sum: u16,
}

impl FrameTemplate {
    /// Builds the template of a connection. From `ip` only the addresses, and the TTL and
    /// DF (IPv4) or hop limit (IPv6) are used; from `eth` only the addresses.
    pub fn new(eth: &EthernetRepr, ip: impl Into<IpRepr>, src_port: u16, dst_port: u16) -> Self {
        let ip = ip.into();
        let tcp_start = IP_START + ip.header_len();
        let mut prefix = [0u8; MAX_PREFIX_LEN];
        let (ethernet_header, rest) = prefix.split_at_mut(ethernet::HEADER_LEN);
        let (ip_header, rest) = rest.split_at_mut(ip.header_len());

        let mut frame = EthernetFrame::new_unchecked(ethernet_header);
        frame.set_dst_addr(eth.dst_addr);
        frame.set_src_addr(eth.src_addr);
        frame.set_ethertype(ip.ethertype());

        let mut ip_header_sum = 0;
        match ip {
            IpRepr::Ipv4(ip) => {
                let mut packet = Ipv4Packet::new_unchecked(ip_header);
                packet.set_version_and_header_len(ipv4::HEADER_LEN);
                packet.set_unfragmented(ip.dont_fragment);
                packet.set_ttl(ip.ttl);
                packet.set_protocol(IpProtocol::Tcp);
                packet.set_src_addr(ip.src_addr);
                packet.set_dst_addr(ip.dst_addr);
                ip_header_sum = checksum::sum(packet.into_inner());
            }
            IpRepr::Ipv6(ip) => {
                let mut packet = Ipv6Packet::new_unchecked(ip_header);
                packet.set_version_class_flow();
                packet.set_next_header(IpProtocol::Tcp);
                packet.set_hop_limit(ip.hop_limit);
                packet.set_src_addr(ip.src_addr);
                packet.set_dst_addr(ip.dst_addr);
            }
        }

        let ports = &mut rest[..4];
        ports[0..2].copy_from_slice(&src_port.to_be_bytes());
        ports[2..4].copy_from_slice(&dst_port.to_be_bytes());
        let pseudo_header =
            checksum::pseudo_header_sum_ip(ip.src_addr(), ip.dst_addr(), ipv4::PROTOCOL_TCP, 0);
        let tcp_constant_sum = checksum::add(pseudo_header, checksum::sum(ports));

        FrameTemplate {
            prefix,
            tcp_start,
            ipv6: matches!(ip, IpRepr::Ipv6(_)),
            src_port,
            dst_port,
            ip_header_sum,
            tcp_constant_sum,
        }
    }

    /// The local (source) port.
    pub fn src_port(&self) -> u16 {
        self.src_port
    }

    /// The remote (destination) port.
    pub fn dst_port(&self) -> u16 {
        self.dst_port
    }

    /// The source address of the frames.
    pub fn src_addr(&self) -> IpAddr {
        let ip = &self.prefix[IP_START..self.tcp_start];
        if self.ipv6 {
            Ipv6Packet::new_unchecked(ip).src_addr().into()
        } else {
            Ipv4Packet::new_unchecked(ip).src_addr().into()
        }
    }

    /// The destination address of the frames.
    pub fn dst_addr(&self) -> IpAddr {
        let ip = &self.prefix[IP_START..self.tcp_start];
        if self.ipv6 {
            Ipv6Packet::new_unchecked(ip).dst_addr().into()
        } else {
            Ipv4Packet::new_unchecked(ip).dst_addr().into()
        }
    }

    /// The IP and TCP headers' length without TCP options: 40 over IPv4, 60 over IPv6.
    /// The MSS to advertise is the path MTU minus this (RFC 9293 §3.7.1, RFC 8200 §5).
    pub fn ip_tcp_header_len(&self) -> usize {
        self.tcp_start - IP_START + tcp::HEADER_LEN
    }

    /// Writes the frame of segment `tcp` with IPv4 identification `ident` (unused over
    /// IPv6, which has none outside fragments) at the start of `buffer` and returns its
    /// length ([`tcp_frame_len`](super::frame::tcp_frame_len)). The bytes equal those of
    /// [`emit_tcp_frame`](super::frame::emit_tcp_frame).
    ///
    /// `tcp`'s ports must be the template's ([`WireError::Malformed`] otherwise); a short
    /// `buffer` is [`WireError::Truncated`].
    pub fn emit(
        &self,
        buffer: &mut [u8],
        ident: u16,
        tcp: &TcpRepr<'_>,
    ) -> Result<usize, WireError> {
        if tcp.src_port != self.src_port || tcp.dst_port != self.dst_port {
            return Err(WireError::Malformed(
                "segment ports differ from the connection's template",
            ));
        }
        let tcp_start = self.tcp_start;
        let segment_len = tcp.buffer_len();
        let frame_len = tcp_start + segment_len;
        let ip_len = if self.ipv6 {
            segment_len
        } else {
            ipv4::HEADER_LEN + segment_len
        };
        let Ok(ip_len) = u16::try_from(ip_len) else {
            return Err(WireError::Malformed("IP payload longer than 65535 bytes"));
        };
        let Some(frame) = buffer.get_mut(..frame_len) else {
            return Err(WireError::Truncated);
        };
        let prefix_len = tcp_start + 4;
        frame[..prefix_len].copy_from_slice(&self.prefix[..prefix_len]);

        if self.ipv6 {
            // RFC 8200 §3: only the payload length differs from the template's header.
            write_u16(frame, field::IPV6_PAYLOAD_LEN, ip_len);
        } else {
            // RFC 791 §3.1: only total length and id differ from the template's header.
            write_u16(frame, field::IPV4_TOTAL_LEN, ip_len);
            write_u16(frame, field::IPV4_IDENT, ident);
            let ip_sum = checksum::add(checksum::add(self.ip_header_sum, ip_len), ident);
            write_u16(frame, field::IPV4_CHECKSUM, !ip_sum);
        }

        // RFC 9293 §3.1: pseudo-header length + ports (precomputed) + the rest of the header
        // + payload; the header length is a multiple of 4, so the payload sum just adds on.
        // The segment is below 64 KiB, so its length is one 16-bit word of either version's
        // pseudo-header.
        let header_len = tcp.header_len();
        let segment = &mut frame[tcp_start..];
        tcp.emit_header(&mut TcpPacket::new_unchecked(&mut *segment));
        segment[header_len..].copy_from_slice(tcp.payload);
        let header_sum = checksum::sum(&segment[4..header_len]);
        let tcp_sum = checksum::add(
            checksum::add(self.tcp_constant_sum, segment_len as u16),
            checksum::add(header_sum, checksum::sum(tcp.payload)),
        );
        write_u16(frame, span(tcp_start + field::TCP_CHECKSUM, 2), !tcp_sum);
        Ok(frame_len)
    }
}

/// Updates a frame we emitted earlier (by [`FrameTemplate::emit`] or
/// [`emit_tcp_frame`](super::frame::emit_tcp_frame): 20-byte IPv4 header or 40-byte IPv6
/// header, options in our layout) for retransmission: new IPv4 id (ignored over IPv6),
/// acknowledgment number, window and timestamps. The checksums are fixed with RFC 1624
/// eqn. 3, without summing the payload again.
///
/// `timestamps` must be `Some` exactly when the frame carries the timestamps option
/// ([`WireError::Malformed`] otherwise). The frame is checked as it would be on receive.
pub fn refresh_in_place(
    frame: &mut [u8],
    ident: u16,
    ack_number: SeqNumber,
    window_len: u16,
    timestamps: Option<(u32, u32)>,
) -> Result<(), WireError> {
    if frame.len() < IP_START + ipv4::HEADER_LEN + tcp::HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let ipv6 = match EthernetFrame::new_checked(&*frame)?.ethertype() {
        EtherType::Ipv4 => false,
        EtherType::Ipv6 => true,
        _ => return Err(WireError::Unsupported("refreshing a frame that is not IP")),
    };
    let tcp_start = IP_START
        + if ipv6 {
            ipv6::HEADER_LEN
        } else {
            ipv4::HEADER_LEN
        };
    if frame.len() < tcp_start + tcp::HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let segment = if ipv6 {
        let ip_packet = Ipv6Packet::new_checked(&frame[IP_START..])?;
        if ip_packet.next_header() != ipv4::PROTOCOL_TCP {
            return Err(WireError::Unsupported(
                "refreshing a frame with IPv6 extension headers",
            ));
        }
        ip_packet.payload_ref()
    } else {
        let ip_packet = Ipv4Packet::new_checked(&frame[IP_START..])?;
        if ip_packet.header_len() != ipv4::HEADER_LEN {
            return Err(WireError::Unsupported(
                "refreshing a frame with IPv4 options",
            ));
        }
        ip_packet.payload_ref()
    };
    let tcp_packet = TcpPacket::new_checked(segment)?;
    let syn = tcp_packet.flags().syn();
    let options = tcp::TcpOptions::parse(tcp_packet.options())?;
    let tcp_header_len = tcp_packet.header_len();

    let checksum_field = span(tcp_start + field::TCP_CHECKSUM, 2);
    let mut tcp_checksum = read_u16(frame, checksum_field.clone());

    // RFC 1624 eqn. 3 for every 16-bit word that changes.
    if !ipv6 {
        let mut ip_checksum = read_u16(frame, field::IPV4_CHECKSUM);
        let old_ident = read_u16(frame, field::IPV4_IDENT);
        ip_checksum = checksum::update(ip_checksum, old_ident, ident);
        write_u16(frame, field::IPV4_IDENT, ident);
        write_u16(frame, field::IPV4_CHECKSUM, ip_checksum);
    }

    let ack_field = span(tcp_start + field::TCP_ACK_NUMBER, 4);
    let old_ack = read_u32(frame, ack_field.clone());
    tcp_checksum = checksum::update_u32(tcp_checksum, old_ack, ack_number.0);
    write_u32(frame, ack_field, ack_number.0);

    let window_field = span(tcp_start + field::TCP_WINDOW, 2);
    let old_window = read_u16(frame, window_field.clone());
    tcp_checksum = checksum::update(tcp_checksum, old_window, window_len);
    write_u16(frame, window_field, window_len);

    match (options.timestamps, timestamps) {
        (None, None) => {}
        (Some(_), Some((tsval, tsecr))) => {
            // Our layout puts NOP NOP TS first, or right after MSS on a SYN.
            let mss_len = if syn && options.mss.is_some() { 4 } else { 0 };
            let tsval_at = tcp_start + field::TCP_OPTIONS + mss_len + 4;
            let tsecr_at = tsval_at + 4;
            if tsecr_at + 4 > tcp_start + tcp_header_len || frame[tsval_at - 2..tsval_at] != [8, 10]
            {
                return Err(WireError::Unsupported(
                    "timestamps option not in xdpget's layout",
                ));
            }
            let old_tsval = read_u32(frame, span(tsval_at, 4));
            let old_tsecr = read_u32(frame, span(tsecr_at, 4));
            tcp_checksum = checksum::update_u32(tcp_checksum, old_tsval, tsval);
            tcp_checksum = checksum::update_u32(tcp_checksum, old_tsecr, tsecr);
            write_u32(frame, span(tsval_at, 4), tsval);
            write_u32(frame, span(tsecr_at, 4), tsecr);
        }
        _ => {
            return Err(WireError::Malformed(
                "timestamps given for a frame without them, or missing",
            ));
        }
    }

    write_u16(frame, checksum_field, tcp_checksum);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::EthernetAddress;
    use crate::wire::fixtures::{
        DATA, FIN, RST, SYN_ACK, V6_SYN, V6_TCP_FRAMES, without_flow_label,
    };
    use crate::wire::frame::{emit_tcp_frame, parse_tcp_frame, tcp_frame_len};
    use crate::wire::ipv4::Ipv4Repr;
    use crate::wire::ipv6::Ipv6Repr;
    use crate::wire::tcp::{TcpFlags, TcpOptions};
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    /// The IPv4 identification of a parsed header (0 for IPv6, which has none).
    fn ident_of(ip: &IpRepr) -> u16 {
        match ip {
            IpRepr::Ipv4(ip) => ip.ident,
            IpRepr::Ipv6(_) => 0,
        }
    }

    fn template_of(frame: &[u8]) -> (FrameTemplate, EthernetRepr, IpRepr, TcpRepr<'_>) {
        let (eth, ip, tcp) = parse_tcp_frame(frame, true).unwrap();
        (
            FrameTemplate::new(&eth, ip, tcp.src_port, tcp.dst_port),
            eth,
            ip,
            tcp,
        )
    }

    #[test]
    fn test_construct() {
        // Linux's own frames come out of the template byte for byte.
        for frame in [&DATA[..], &FIN[..], &RST[..]] {
            let (template, _, ip, tcp) = template_of(frame);
            let mut buffer = [0x5au8; 128];
            let len = template.emit(&mut buffer, ident_of(&ip), &tcp).unwrap();
            assert_eq!(&buffer[..len], frame);
        }
        let (template, _, _, _) = template_of(&SYN_ACK);
        assert_eq!(
            template.src_addr(),
            IpAddr::from(Ipv4Addr::new(10, 200, 0, 2))
        );
        assert_eq!(
            template.dst_addr(),
            IpAddr::from(Ipv4Addr::new(10, 200, 0, 1))
        );
        assert_eq!((template.src_port(), template.dst_port()), (8080, 58316));
        assert_eq!(template.ip_tcp_header_len(), 40);
    }

    #[test]
    fn ipv6_templates_emit_linux_bytes() {
        // Linux's IPv6 frames, flow label cleared (xdpget sends 0; no checksum covers it).
        for frame in V6_TCP_FRAMES {
            let expected = without_flow_label(frame);
            let (template, _, _, tcp) = template_of(frame);
            let mut buffer = [0x5au8; 160];
            let len = template.emit(&mut buffer, 0, &tcp).unwrap();
            assert_eq!(&buffer[..len], &expected[..]);
        }
        let (template, _, _, _) = template_of(&V6_SYN);
        let client: Ipv6Addr = "fd00:77::2".parse().unwrap();
        assert_eq!(template.src_addr(), IpAddr::from(client));
        assert_eq!(template.ip_tcp_header_len(), 60);
    }

    #[test]
    fn test_truncated() {
        let (template, _, ip, tcp) = template_of(&DATA);
        let mut small = [0u8; 97];
        assert_eq!(
            template.emit(&mut small, ident_of(&ip), &tcp),
            Err(WireError::Truncated)
        );
        let other_port = TcpRepr { dst_port: 1, ..tcp };
        let mut buffer = [0u8; 98];
        assert!(matches!(
            template.emit(&mut buffer, 0, &other_port),
            Err(WireError::Malformed(_))
        ));
        assert_eq!(
            refresh_in_place(&mut buffer[..50], 0, SeqNumber(0), 0, None),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn refresh_rejects_mismatched_timestamps() {
        let mut frame = RST.to_vec();
        let result = refresh_in_place(&mut frame, 1, SeqNumber(2), 3, Some((4, 5)));
        assert!(matches!(result, Err(WireError::Malformed(_))));
        let mut frame = DATA.to_vec();
        let result = refresh_in_place(&mut frame, 1, SeqNumber(2), 3, None);
        assert!(matches!(result, Err(WireError::Malformed(_))));
    }

    fn any_segment(payload: &[u8]) -> impl Strategy<Value = (u16, TcpRepr<'_>)> {
        (
            (
                any::<u32>(),
                any::<u32>(),
                any::<u8>(),
                any::<u16>(),
                any::<u16>(),
            ),
            (
                proptest::option::of(any::<u16>()),
                proptest::option::of(0u8..15),
                proptest::option::of(any::<(u32, u32)>()),
                0..=payload.len(),
            ),
        )
            .prop_map(
                move |(
                    (seq, ack, flags, window_len, ident),
                    (mss, window_scale, timestamps, len),
                )| {
                    let tcp = TcpRepr {
                        src_port: 40001,
                        dst_port: 80,
                        seq_number: SeqNumber(seq),
                        ack_number: SeqNumber(ack),
                        flags: TcpFlags(flags),
                        window_len,
                        options: TcpOptions {
                            mss,
                            window_scale,
                            sack_permitted: false,
                            timestamps,
                            ..TcpOptions::default()
                        },
                        payload: &payload[..len],
                    };
                    (ident, tcp)
                },
            )
    }

    /// A connection over IPv4 or IPv6 (`v6`), and its IP header with identification
    /// `ident` (IPv4 only).
    fn connection(v6: bool, ident: u16) -> (EthernetRepr, IpRepr) {
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Ipv4,
        };
        let ip = if v6 {
            IpRepr::Ipv6(Ipv6Repr {
                src_addr: "2001:db8::1".parse().unwrap(),
                dst_addr: "2001:db8:ff::7".parse().unwrap(),
                next_header: IpProtocol::Tcp,
                payload_len: 0,
                hop_limit: 64,
            })
        } else {
            IpRepr::Ipv4(Ipv4Repr {
                src_addr: Ipv4Addr::new(192, 0, 2, 1),
                dst_addr: Ipv4Addr::new(198, 51, 100, 7),
                protocol: IpProtocol::Tcp,
                payload_len: 0,
                ttl: 64,
                ident,
                dont_fragment: true,
            })
        };
        (eth, ip)
    }

    const PAYLOAD: [u8; 1460] = {
        let mut bytes = [0u8; 1460];
        let mut index = 0;
        while index < bytes.len() {
            bytes[index] = (index * 31 + 17) as u8;
            index += 1;
        }
        bytes
    };

    proptest! {
        #[test]
        fn template_equals_full_emit((ident, tcp) in any_segment(&PAYLOAD), v6: bool) {
            let (eth, ip) = connection(v6, ident);
            let template = FrameTemplate::new(&eth, ip, tcp.src_port, tcp.dst_port);
            let mut expected = vec![0u8; tcp_frame_len(ip, &tcp)];
            emit_tcp_frame(&mut expected, &eth, ip, &tcp).unwrap();
            let mut actual = vec![0xffu8; tcp_frame_len(ip, &tcp) + 3];
            let len = template.emit(&mut actual, ident, &tcp).unwrap();
            prop_assert_eq!(&actual[..len], &expected[..]);
        }

        #[test]
        fn refresh_equals_full_emit(
            (ident, tcp) in any_segment(&PAYLOAD),
            v6: bool,
            new_ident: u16,
            new_ack: u32,
            new_window: u16,
            new_timestamps: (u32, u32),
        ) {
            let (eth, ip) = connection(v6, ident);
            let mut frame = vec![0u8; tcp_frame_len(ip, &tcp)];
            emit_tcp_frame(&mut frame, &eth, ip, &tcp).unwrap();
            let timestamps = tcp.options.timestamps.map(|_| new_timestamps);
            refresh_in_place(&mut frame, new_ident, SeqNumber(new_ack), new_window, timestamps).unwrap();

            let refreshed = TcpRepr {
                ack_number: SeqNumber(new_ack),
                window_len: new_window,
                options: TcpOptions { timestamps, ..tcp.options },
                ..tcp
            };
            let (_, new_ip) = connection(v6, new_ident);
            let mut expected = vec![0u8; tcp_frame_len(ip, &tcp)];
            emit_tcp_frame(&mut expected, &eth, new_ip, &refreshed).unwrap();
            prop_assert_eq!(&frame, &expected);
            prop_assert!(parse_tcp_frame(&frame, true).is_ok());
        }
    }
}
