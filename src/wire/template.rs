//! Per-connection prebuilt headers: the fast way to emit a connection's segments.
//!
//! RFC 1071 §2 (sums of parts combine), RFC 1624 (incremental update, eqn. 3),
//! RFC 9293 §3.1 (pseudo-header), RFC 791 §3.1 (IPv4 header checksum).
//!
//! A connection's MACs, addresses, ports and TTL never change, so [`FrameTemplate::new`]
//! writes those header bytes once and sums them once. Per segment, [`FrameTemplate::emit`]
//! copies the prefix, writes the fields that change and finishes both checksums from the
//! precomputed sums: the IPv4 checksum costs two additions instead of a pass over the
//! header. [`refresh_in_place`] updates a frame that was already emitted (a retransmission)
//! with a new IP id, ACK, window and timestamps, fixing the checksums incrementally without
//! reading the payload again. Both produce exactly the bytes of [`emit_tcp_frame`].
//!
//! [`emit_tcp_frame`]: super::frame::emit_tcp_frame

use core::net::Ipv4Addr;

use super::checksum;
use super::error::WireError;
use super::ethernet::{self, EtherType, EthernetFrame, EthernetRepr};
use super::ipv4::{self, IpProtocol, Ipv4Packet, Ipv4Repr};
use super::seq::SeqNumber;
use super::tcp::{self, TcpPacket, TcpRepr};
use super::{read_u16, read_u32, write_u16, write_u32};

/// Bytes of a frame that are the same for every segment of a connection: the Ethernet
/// header, the IPv4 header (with zero total length, id and checksum) and the TCP ports.
const PREFIX_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + 4;
const IP_START: usize = ethernet::HEADER_LEN;
const TCP_START: usize = IP_START + ipv4::HEADER_LEN;

/// Absolute positions of the per-segment fields in a frame with a 20-byte IPv4 header.
mod field {
    use crate::wire::Field;
    pub const IP_TOTAL_LEN: Field = 16..18;
    pub const IP_IDENT: Field = 18..20;
    pub const IP_CHECKSUM: Field = 24..26;
    pub const TCP_ACK_NUMBER: Field = 42..46;
    pub const TCP_WINDOW: Field = 48..50;
    pub const TCP_CHECKSUM: Field = 50..52;
    pub const TCP_OPTIONS: usize = 54;
}

/// The constant part of one connection's frames, with its checksum sums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameTemplate {
    prefix: [u8; PREFIX_LEN],
    src_port: u16,
    dst_port: u16,
    /// Sum of the IPv4 header with total length, id and checksum zero.
    ip_header_sum: u16,
    /// Sum of the pseudo-header without its length, plus both ports.
    tcp_constant_sum: u16,
}

impl FrameTemplate {
    /// Builds the template of a connection. From `ip` only the addresses, TTL and DF are
    /// used; from `eth` only the addresses.
    pub fn new(eth: &EthernetRepr, ip: &Ipv4Repr, src_port: u16, dst_port: u16) -> Self {
        let mut prefix = [0u8; PREFIX_LEN];
        let (ethernet_header, rest) = prefix.split_at_mut(ethernet::HEADER_LEN);
        let (ip_header, ports) = rest.split_at_mut(ipv4::HEADER_LEN);

        let mut frame = EthernetFrame::new_unchecked(ethernet_header);
        frame.set_dst_addr(eth.dst_addr);
        frame.set_src_addr(eth.src_addr);
        frame.set_ethertype(EtherType::Ipv4);

        let mut packet = Ipv4Packet::new_unchecked(ip_header);
        packet.set_version_and_header_len(ipv4::HEADER_LEN);
        packet.set_unfragmented(ip.dont_fragment);
        packet.set_ttl(ip.ttl);
        packet.set_protocol(IpProtocol::Tcp);
        packet.set_src_addr(ip.src_addr);
        packet.set_dst_addr(ip.dst_addr);
        let ip_header_sum = checksum::sum(packet.into_inner());

        ports[0..2].copy_from_slice(&src_port.to_be_bytes());
        ports[2..4].copy_from_slice(&dst_port.to_be_bytes());
        let pseudo_header =
            checksum::pseudo_header_sum(ip.src_addr, ip.dst_addr, ipv4::PROTOCOL_TCP, 0);
        let tcp_constant_sum = checksum::add(pseudo_header, checksum::sum(ports));

        FrameTemplate {
            prefix,
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
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Packet::new_unchecked(&self.prefix[IP_START..TCP_START]).src_addr()
    }

    /// The destination address of the frames.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Packet::new_unchecked(&self.prefix[IP_START..TCP_START]).dst_addr()
    }

    /// Writes the frame of segment `tcp` with IPv4 identification `ident` at the start of
    /// `buffer` and returns its length ([`tcp_frame_len`](super::frame::tcp_frame_len)).
    /// The bytes equal those of [`emit_tcp_frame`](super::frame::emit_tcp_frame).
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
        let segment_len = tcp.buffer_len();
        let frame_len = TCP_START + segment_len;
        let Ok(total_len) = u16::try_from(ipv4::HEADER_LEN + segment_len) else {
            return Err(WireError::Malformed("IPv4 payload longer than 65515 bytes"));
        };
        let Some(frame) = buffer.get_mut(..frame_len) else {
            return Err(WireError::Truncated);
        };
        frame[..PREFIX_LEN].copy_from_slice(&self.prefix);

        // RFC 791 §3.1: only total length and id differ from the template's header.
        write_u16(frame, field::IP_TOTAL_LEN, total_len);
        write_u16(frame, field::IP_IDENT, ident);
        let ip_sum = checksum::add(checksum::add(self.ip_header_sum, total_len), ident);
        write_u16(frame, field::IP_CHECKSUM, !ip_sum);

        // RFC 9293 §3.1: pseudo-header length + ports (precomputed) + the rest of the header
        // + payload; the header length is a multiple of 4, so the payload sum just adds on.
        let header_len = tcp.header_len();
        let segment = &mut frame[TCP_START..];
        tcp.emit_header(&mut TcpPacket::new_unchecked(&mut *segment));
        segment[header_len..].copy_from_slice(tcp.payload);
        let header_sum = checksum::sum(&segment[4..header_len]);
        let tcp_sum = checksum::add(
            checksum::add(self.tcp_constant_sum, segment_len as u16),
            checksum::add(header_sum, checksum::sum(tcp.payload)),
        );
        write_u16(frame, field::TCP_CHECKSUM, !tcp_sum);
        Ok(frame_len)
    }
}

/// Updates a frame we emitted earlier (by [`FrameTemplate::emit`] or
/// [`emit_tcp_frame`](super::frame::emit_tcp_frame): 20-byte IPv4 header, options in our
/// layout) for retransmission: new IPv4 id, acknowledgment number, window and timestamps.
/// Both checksums are fixed with RFC 1624 eqn. 3, without summing the payload again.
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
    let frame_len = frame.len();
    if frame_len < TCP_START + tcp::HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let ip_packet = Ipv4Packet::new_checked(&frame[IP_START..])?;
    if ip_packet.header_len() != ipv4::HEADER_LEN {
        return Err(WireError::Unsupported(
            "refreshing a frame with IPv4 options",
        ));
    }
    let tcp_packet = TcpPacket::new_checked(ip_packet.payload())?;
    let syn = tcp_packet.flags().syn();
    let options = tcp::TcpOptions::parse(tcp_packet.options())?;
    let tcp_header_len = tcp_packet.header_len();

    let mut ip_checksum = read_u16(frame, field::IP_CHECKSUM);
    let mut tcp_checksum = read_u16(frame, field::TCP_CHECKSUM);

    // RFC 1624 eqn. 3 for every 16-bit word that changes.
    let old_ident = read_u16(frame, field::IP_IDENT);
    ip_checksum = checksum::update(ip_checksum, old_ident, ident);
    write_u16(frame, field::IP_IDENT, ident);

    let old_ack = read_u32(frame, field::TCP_ACK_NUMBER);
    tcp_checksum = checksum::update_u32(tcp_checksum, old_ack, ack_number.0);
    write_u32(frame, field::TCP_ACK_NUMBER, ack_number.0);

    let old_window = read_u16(frame, field::TCP_WINDOW);
    tcp_checksum = checksum::update(tcp_checksum, old_window, window_len);
    write_u16(frame, field::TCP_WINDOW, window_len);

    match (options.timestamps, timestamps) {
        (None, None) => {}
        (Some(_), Some((tsval, tsecr))) => {
            // Our layout puts NOP NOP TS first, or right after MSS on a SYN.
            let mss_len = if syn && options.mss.is_some() { 4 } else { 0 };
            let tsval_at = field::TCP_OPTIONS + mss_len + 4;
            let tsecr_at = tsval_at + 4;
            if tsecr_at + 4 > TCP_START + tcp_header_len || frame[tsval_at - 2..tsval_at] != [8, 10]
            {
                return Err(WireError::Unsupported(
                    "timestamps option not in xdpget's layout",
                ));
            }
            let old_tsval = read_u32(frame, tsval_at..tsval_at + 4);
            let old_tsecr = read_u32(frame, tsecr_at..tsecr_at + 4);
            tcp_checksum = checksum::update_u32(tcp_checksum, old_tsval, tsval);
            tcp_checksum = checksum::update_u32(tcp_checksum, old_tsecr, tsecr);
            write_u32(frame, tsval_at..tsval_at + 4, tsval);
            write_u32(frame, tsecr_at..tsecr_at + 4, tsecr);
        }
        _ => {
            return Err(WireError::Malformed(
                "timestamps given for a frame without them, or missing",
            ));
        }
    }

    write_u16(frame, field::IP_CHECKSUM, ip_checksum);
    write_u16(frame, field::TCP_CHECKSUM, tcp_checksum);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::EthernetAddress;
    use crate::wire::fixtures::{DATA, FIN, RST, SYN_ACK};
    use crate::wire::frame::{emit_tcp_frame, parse_tcp_frame, tcp_frame_len};
    use crate::wire::tcp::{TcpFlags, TcpOptions};
    use proptest::prelude::*;

    fn template_of(frame: &[u8]) -> (FrameTemplate, EthernetRepr, Ipv4Repr, TcpRepr<'_>) {
        let (eth, ip, tcp) = parse_tcp_frame(frame, true).unwrap();
        (
            FrameTemplate::new(&eth, &ip, tcp.src_port, tcp.dst_port),
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
            let len = template.emit(&mut buffer, ip.ident, &tcp).unwrap();
            assert_eq!(&buffer[..len], frame);
        }
        let (template, _, _, _) = template_of(&SYN_ACK);
        assert_eq!(template.src_addr(), Ipv4Addr::new(10, 200, 0, 2));
        assert_eq!(template.dst_addr(), Ipv4Addr::new(10, 200, 0, 1));
        assert_eq!((template.src_port(), template.dst_port()), (8080, 58316));
    }

    #[test]
    fn test_truncated() {
        let (template, _, ip, tcp) = template_of(&DATA);
        let mut small = [0u8; 97];
        assert_eq!(
            template.emit(&mut small, ip.ident, &tcp),
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

    fn connection() -> (EthernetRepr, Ipv4Repr) {
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 1),
            dst_addr: Ipv4Addr::new(198, 51, 100, 7),
            protocol: IpProtocol::Tcp,
            payload_len: 0,
            ttl: 64,
            ident: 0,
            dont_fragment: true,
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
        fn template_equals_full_emit((ident, tcp) in any_segment(&PAYLOAD)) {
            let (eth, ip) = connection();
            let template = FrameTemplate::new(&eth, &ip, tcp.src_port, tcp.dst_port);
            let mut expected = vec![0u8; tcp_frame_len(&tcp)];
            emit_tcp_frame(&mut expected, &eth, &Ipv4Repr { ident, ..ip }, &tcp).unwrap();
            let mut actual = vec![0xffu8; tcp_frame_len(&tcp) + 3];
            let len = template.emit(&mut actual, ident, &tcp).unwrap();
            prop_assert_eq!(&actual[..len], &expected[..]);
        }

        #[test]
        fn refresh_equals_full_emit(
            (ident, tcp) in any_segment(&PAYLOAD),
            new_ident: u16,
            new_ack: u32,
            new_window: u16,
            new_timestamps: (u32, u32),
        ) {
            let (eth, ip) = connection();
            let mut frame = vec![0u8; tcp_frame_len(&tcp)];
            emit_tcp_frame(&mut frame, &eth, &Ipv4Repr { ident, ..ip }, &tcp).unwrap();
            let timestamps = tcp.options.timestamps.map(|_| new_timestamps);
            refresh_in_place(&mut frame, new_ident, SeqNumber(new_ack), new_window, timestamps).unwrap();

            let refreshed = TcpRepr {
                ack_number: SeqNumber(new_ack),
                window_len: new_window,
                options: TcpOptions { timestamps, ..tcp.options },
                ..tcp
            };
            let mut expected = vec![0u8; tcp_frame_len(&tcp)];
            emit_tcp_frame(&mut expected, &eth, &Ipv4Repr { ident: new_ident, ..ip }, &refreshed).unwrap();
            prop_assert_eq!(&frame, &expected);
            prop_assert!(parse_tcp_frame(&frame, true).is_ok());
        }
    }
}
