//! IPv6 headers: a zero-copy view and a validated representation.
//!
//! RFC 8200 (IPv6: the fixed header §3, extension headers §4), RFC 5095 (routing header
//! type 0 deprecated: a packet carrying one is discarded). xdpget emits only the 40-byte
//! fixed header. On receive it skips the extension headers a server's stack may add
//! (hop-by-hop and destination options, a routing header with no segments left), rejects
//! type-0 routing headers and refuses fragments ([`WireError::Fragmented`]): like IPv4, it
//! does not reassemble, and its segments never need it (MSS = path MTU − 60).

use core::net::Ipv6Addr;

use super::error::WireError;
use super::ipv4::IpProtocol;
use super::{read_u16, read_u32, write_u16, write_u32};

/// The length of the fixed header, the only one xdpget emits.
pub const HEADER_LEN: usize = 40;

/// Next-header values of the extension headers xdpget knows (IANA "IPv6 Extension Header
/// Types").
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DESTINATION_OPTIONS: u8 = 60;
}

/// How many extension headers are walked before a packet is called malformed; real
/// traffic has at most two or three (RFC 8200 §4.1 order).
const MAX_EXTENSION_HEADERS: usize = 8;

mod field {
    use crate::wire::Field;
    pub const VERSION_CLASS_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// A read/write view of an IPv6 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic until
    /// [`check_len`](Self::check_len) passed.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer that holds the fixed header and the declared payload; no accessor
    /// panics afterwards.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the fixed header and the payload length fit in the buffer. Bytes after the
    /// payload (Ethernet padding) are allowed and ignored.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The version field (6 for IPv6).
    pub fn version(&self) -> u8 {
        self.data()[0] >> 4
    }

    /// The traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        ((read_u32(self.data(), field::VERSION_CLASS_FLOW) >> 20) & 0xff) as u8
    }

    /// The 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        read_u32(self.data(), field::VERSION_CLASS_FLOW) & 0x000f_ffff
    }

    /// The payload length: everything after the fixed header, extension headers included.
    pub fn payload_len(&self) -> u16 {
        read_u16(self.data(), field::PAYLOAD_LEN)
    }

    /// The next header of the fixed header (an extension header or the upper layer).
    pub fn next_header(&self) -> u8 {
        self.data()[field::NEXT_HEADER]
    }

    /// The hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.data()[field::HOP_LIMIT]
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(address(&self.data()[field::SRC_ADDR]))
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(address(&self.data()[field::DST_ADDR]))
    }

    /// The payload: from the end of the fixed header to the payload length (padding
    /// excluded), extension headers included.
    pub fn payload(&self) -> &[u8] {
        &self.data()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

fn address(bytes: &[u8]) -> [u8; 16] {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(bytes);
    octets
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The payload, borrowed for as long as the underlying buffer.
    pub fn payload_ref(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[HEADER_LEN..HEADER_LEN + usize::from(read_u16(data, field::PAYLOAD_LEN))]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets version 6, traffic class 0 and flow label 0.
    pub fn set_version_class_flow(&mut self) {
        write_u32(self.data_mut(), field::VERSION_CLASS_FLOW, 6 << 28);
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, value: u16) {
        write_u16(self.data_mut(), field::PAYLOAD_LEN, value);
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.data_mut()[field::NEXT_HEADER] = value.into();
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, value: u8) {
        self.data_mut()[field::HOP_LIMIT] = value;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        self.data_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        self.data_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }
}

/// Walks the extension headers of `payload` (the bytes after the fixed header), starting
/// with `next`, to the upper layer: returns its protocol and where it starts.
///
/// RFC 8200 §4.3 and §4.6: hop-by-hop and destination options are `(length + 1) × 8` bytes
/// and are skipped (their options are for routers or would ask us to discard only when we
/// must understand them, which an HTTP server never sends). §4.4: a routing header with
/// segments left 0 is ignored, one of type 0 is discarded (RFC 5095 §3). §4.5: fragments are
/// [`WireError::Fragmented`].
fn upper_layer(mut next: u8, payload: &[u8]) -> Result<(IpProtocol, usize), WireError> {
    let mut offset = 0;
    for _ in 0..MAX_EXTENSION_HEADERS {
        match next {
            next_header::HOP_BY_HOP | next_header::DESTINATION_OPTIONS | next_header::ROUTING => {
                let Some(header) = payload.get(offset..offset + 8) else {
                    return Err(WireError::Truncated);
                };
                let len = (usize::from(header[1]) + 1) * 8;
                if payload.len() < offset + len {
                    return Err(WireError::Truncated);
                }
                if next == next_header::ROUTING {
                    let (routing_type, segments_left) = (header[2], header[3]);
                    if routing_type == 0 {
                        return Err(WireError::Malformed(
                            "IPv6 routing header of type 0 (RFC 5095)",
                        ));
                    }
                    if segments_left != 0 {
                        return Err(WireError::Unsupported(
                            "IPv6 routing header with segments left",
                        ));
                    }
                }
                next = header[0];
                offset += len;
            }
            next_header::FRAGMENT => return Err(WireError::Fragmented),
            next_header::NO_NEXT_HEADER => {
                return Err(WireError::Unsupported("IPv6 packet without upper layer"));
            }
            upper => return Ok((IpProtocol::from(upper), offset)),
        }
    }
    Err(WireError::Malformed("too many IPv6 extension headers"))
}

/// A validated, unfragmented IPv6 packet's header, extension headers skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    /// The upper-layer protocol, after any extension headers.
    pub next_header: IpProtocol,
    /// The upper-layer length in bytes (payload length minus extension headers).
    pub payload_len: usize,
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Validates and reads a checked packet's header: version 6, extension headers walked
    /// as [`upper_layer`] describes.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6Repr, WireError> {
        Ok(Self::parse_with_offset(packet)?.0)
    }

    /// Like [`parse`](Self::parse), also giving the upper-layer bytes, borrowed for as long
    /// as the packet's buffer.
    pub fn parse_upper<'a, T: AsRef<[u8]> + ?Sized>(
        packet: &Ipv6Packet<&'a T>,
    ) -> Result<(Ipv6Repr, &'a [u8]), WireError> {
        let (repr, offset) = Self::parse_with_offset(packet)?;
        Ok((repr, &packet.payload_ref()[offset..]))
    }

    fn parse_with_offset<T: AsRef<[u8]>>(
        packet: &Ipv6Packet<T>,
    ) -> Result<(Ipv6Repr, usize), WireError> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(WireError::Malformed("IP version is not 6"));
        }
        let payload = packet.payload();
        let (next_header, offset) = upper_layer(packet.next_header(), payload)?;
        let repr = Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header,
            payload_len: payload.len() - offset,
            hop_limit: packet.hop_limit(),
        };
        Ok((repr, offset))
    }

    /// The length of the header `emit` writes: always [`HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header (traffic class and flow label 0, no extension headers) into
    /// the first [`HEADER_LEN`] bytes of `packet`; the payload is the caller's.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Ipv6Packet<T>,
    ) -> Result<(), WireError> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let Ok(payload_len) = u16::try_from(self.payload_len) else {
            return Err(WireError::Malformed(
                "IPv6 payload longer than 65535 bytes (jumbograms are not sent)",
            ));
        };
        packet.set_version_class_flow();
        packet.set_payload_len(payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{V6_DATA, V6_SYN};
    use proptest::prelude::*;

    fn client() -> Ipv6Addr {
        "fd00:77::2".parse().unwrap()
    }

    fn server() -> Ipv6Addr {
        "fd00:77::1".parse().unwrap()
    }

    fn syn_repr() -> Ipv6Repr {
        Ipv6Repr {
            src_addr: client(),
            dst_addr: server(),
            next_header: IpProtocol::Tcp,
            payload_len: 40,
            hop_limit: 64,
        }
    }

    #[test]
    fn test_deconstruct() {
        let packet = Ipv6Packet::new_checked(&V6_SYN[14..]).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.payload_len(), 40);
        assert_eq!(packet.next_header(), 6);
        assert_eq!(packet.payload(), &V6_SYN[54..]);
        assert_eq!(Ipv6Repr::parse(&packet), Ok(syn_repr()));

        let data = Ipv6Repr::parse(&Ipv6Packet::new_checked(&V6_DATA[14..]).unwrap()).unwrap();
        assert_eq!((data.src_addr, data.dst_addr), (server(), client()));
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 40];
        syn_repr()
            .emit(&mut Ipv6Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        // Linux sends a flow label (RFC 6437); ours is zero, the rest is identical.
        let mut linux = V6_SYN[14..54].to_vec();
        linux[1] &= 0xf0;
        linux[2] = 0;
        linux[3] = 0;
        assert_eq!(&bytes[..], &linux[..]);
    }

    #[test]
    fn test_truncated() {
        for len in 0..V6_SYN.len() - 14 {
            let result = Ipv6Packet::new_checked(&V6_SYN[14..14 + len]);
            assert_eq!(result.unwrap_err(), WireError::Truncated, "length {len}");
        }
        let mut small = [0u8; 39];
        let result = syn_repr().emit(&mut Ipv6Packet::new_unchecked(&mut small[..]));
        assert_eq!(result, Err(WireError::Truncated));
    }

    /// The SYN with one extension header of `next` spliced in before TCP.
    fn with_extension(next: u8, body: [u8; 6]) -> Vec<u8> {
        let mut bytes = V6_SYN[14..54].to_vec();
        bytes[6] = next;
        bytes[4..6].copy_from_slice(&48u16.to_be_bytes());
        bytes.extend_from_slice(&[6, 0]);
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&V6_SYN[54..]);
        bytes
    }

    #[test]
    fn options_headers_are_skipped() {
        for next in [next_header::HOP_BY_HOP, next_header::DESTINATION_OPTIONS] {
            // PadN over the six option bytes (RFC 8200 §4.2)
            let bytes = with_extension(next, [1, 4, 0, 0, 0, 0]);
            let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(Ipv6Repr::parse(&packet), Ok(syn_repr()));
            let (_, upper) = Ipv6Repr::parse_upper(&packet).unwrap();
            assert_eq!(upper, &V6_SYN[54..]);
        }
        // a routing header of type 4 (SRH) with nothing left to visit is ignored
        let bytes = with_extension(next_header::ROUTING, [4, 0, 0, 0, 0, 0]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&packet), Ok(syn_repr()));
    }

    #[test]
    fn routing_type_0_fragments_and_garbage_are_rejected() {
        let bytes = with_extension(next_header::ROUTING, [0, 0, 0, 0, 0, 0]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert!(matches!(
            Ipv6Repr::parse(&packet),
            Err(WireError::Malformed(_))
        ));
        let bytes = with_extension(next_header::ROUTING, [4, 1, 0, 0, 0, 0]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert!(matches!(
            Ipv6Repr::parse(&packet),
            Err(WireError::Unsupported(_))
        ));
        let bytes = with_extension(next_header::FRAGMENT, [0, 0, 0, 0, 0, 1]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&packet), Err(WireError::Fragmented));

        // an options header claiming more bytes than the packet has
        let mut bytes = with_extension(next_header::HOP_BY_HOP, [1, 4, 0, 0, 0, 0]);
        bytes[41] = 200;
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&packet), Err(WireError::Truncated));

        let mut bytes = V6_SYN[14..].to_vec();
        bytes[0] = 0x45;
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert!(matches!(
            Ipv6Repr::parse(&packet),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn a_chain_of_options_headers_ends() {
        // nine hop-by-hop headers in a row: more than any real packet carries
        let mut bytes = V6_SYN[14..54].to_vec();
        bytes[6] = next_header::HOP_BY_HOP;
        for _ in 0..9 {
            bytes.extend_from_slice(&[next_header::HOP_BY_HOP, 0, 1, 4, 0, 0, 0, 0]);
        }
        let payload_len = (bytes.len() - 40) as u16;
        bytes[4..6].copy_from_slice(&payload_len.to_be_bytes());
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert!(matches!(
            Ipv6Repr::parse(&packet),
            Err(WireError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(
            src: [u8; 16],
            dst: [u8; 16],
            protocol in any::<u8>().prop_filter("not an extension header", |p| {
                ![0u8, 43, 44, 59, 60].contains(p)
            }),
            payload_len in 0usize..200,
            hop_limit: u8,
        ) {
            let repr = Ipv6Repr {
                src_addr: Ipv6Addr::from(src),
                dst_addr: Ipv6Addr::from(dst),
                next_header: IpProtocol::from(protocol),
                payload_len,
                hop_limit,
            };
            let mut bytes = vec![0u8; HEADER_LEN + payload_len];
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut bytes[..])).unwrap();
            let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(Ipv6Repr::parse(&packet), Ok(repr));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            if let Ok(packet) = Ipv6Packet::new_checked(&bytes[..]) {
                let _ = Ipv6Repr::parse_upper(&packet);
            }
        }
    }
}
