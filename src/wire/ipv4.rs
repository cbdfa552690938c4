//! IPv4 headers: a zero-copy view and a validated representation.
//!
//! RFC 791 (header format, §3.1), RFC 1071 (header checksum), RFC 6864 (the
//! identification field of atomic datagrams). Options are skipped, never emitted.
//! Fragments are rejected: xdpget sets DF and does not reassemble.

use core::net::Ipv4Addr;

use super::checksum;
use super::error::WireError;
use super::{read_u16, read_u32, write_u16, write_u32};

/// The protocol number of TCP (IANA).
pub const PROTOCOL_TCP: u8 = 6;

/// The length of an IPv4 header without options, the only kind xdpget emits.
pub const HEADER_LEN: usize = 20;

/// The largest total length the 16-bit field can hold.
pub const MAX_PACKET_LEN: usize = u16::MAX as usize;

const FLAG_DONT_FRAGMENT: u16 = 0x4000;
const FLAG_MORE_FRAGMENTS: u16 = 0x2000;
const FRAGMENT_OFFSET_MASK: u16 = 0x1fff;

mod field {
    use crate::wire::Field;
    pub const VERSION_AND_HEADER_LEN: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLAGS_AND_FRAGMENT_OFFSET: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// The protocol field: what the packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// 1.
    Icmp,
    /// 6.
    Tcp,
    /// 17.
    Udp,
    /// Anything else, kept as its number.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(value: u8) -> Self {
        match value {
            1 => IpProtocol::Icmp,
            PROTOCOL_TCP => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(value: IpProtocol) -> u8 {
        match value {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => PROTOCOL_TCP,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(other) => other,
        }
    }
}

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic until [`check_len`](Self::check_len) passed.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer whose header and declared lengths fit; no accessor panics afterwards.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the header length (IHL) and the total length are possible and fit in the
    /// buffer. Bytes after the total length (Ethernet padding) are allowed and ignored.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(WireError::Malformed(
                "IPv4 header length (IHL) below 5 words",
            ));
        }
        if len < header_len {
            return Err(WireError::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(WireError::Malformed(
                "IPv4 total length shorter than its header",
            ));
        }
        if len < total_len {
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

    /// The version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.data()[field::VERSION_AND_HEADER_LEN] >> 4
    }

    /// The header length in bytes (IHL × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.data()[field::VERSION_AND_HEADER_LEN] & 0x0f) * 4
    }

    /// The DSCP and ECN byte (once "type of service").
    pub fn dscp_ecn(&self) -> u8 {
        self.data()[field::DSCP_ECN]
    }

    /// The total length field: header plus payload, in bytes.
    pub fn total_len(&self) -> u16 {
        read_u16(self.data(), field::TOTAL_LEN)
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        read_u16(self.data(), field::IDENT)
    }

    fn flags_and_fragment_offset(&self) -> u16 {
        read_u16(self.data(), field::FLAGS_AND_FRAGMENT_OFFSET)
    }

    /// The DF flag.
    pub fn dont_fragment(&self) -> bool {
        self.flags_and_fragment_offset() & FLAG_DONT_FRAGMENT != 0
    }

    /// The MF flag.
    pub fn more_fragments(&self) -> bool {
        self.flags_and_fragment_offset() & FLAG_MORE_FRAGMENTS != 0
    }

    /// The fragment offset in bytes.
    pub fn fragment_offset(&self) -> u16 {
        (self.flags_and_fragment_offset() & FRAGMENT_OFFSET_MASK) << 3
    }

    /// Whether this packet is a fragment of a larger datagram (RFC 791 §2.3).
    pub fn is_fragment(&self) -> bool {
        self.flags_and_fragment_offset() & (FLAG_MORE_FRAGMENTS | FRAGMENT_OFFSET_MASK) != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.data()[field::TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.data()[field::PROTOCOL])
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.data(), field::CHECKSUM)
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(read_u32(self.data(), field::SRC_ADDR))
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(read_u32(self.data(), field::DST_ADDR))
    }

    /// Whether the header checksum is right: the header, checksum included, sums to all
    /// ones (RFC 791 §3.1, RFC 1071).
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(&self.data()[..self.header_len()]) == 0xffff
    }

    /// The payload: from the end of the header to the total length (padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.data()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload, borrowed for as long as the underlying buffer.
    pub fn payload_ref(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        let header_len = usize::from(data[field::VERSION_AND_HEADER_LEN] & 0x0f) * 4;
        &data[header_len..usize::from(read_u16(data, field::TOTAL_LEN))]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets version 4 and a header length in bytes (a multiple of 4, at most 60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.data_mut()[field::VERSION_AND_HEADER_LEN] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP and ECN byte.
    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.data_mut()[field::DSCP_ECN] = value;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, value: u16) {
        write_u16(self.data_mut(), field::TOTAL_LEN, value);
    }

    /// Sets the identification field.
    pub fn set_ident(&mut self, value: u16) {
        write_u16(self.data_mut(), field::IDENT, value);
    }

    /// Sets the flags to just DF (or nothing) and the fragment offset to zero.
    pub fn set_unfragmented(&mut self, dont_fragment: bool) {
        let value = if dont_fragment { FLAG_DONT_FRAGMENT } else { 0 };
        write_u16(self.data_mut(), field::FLAGS_AND_FRAGMENT_OFFSET, value);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, value: u8) {
        self.data_mut()[field::TTL] = value;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, value: IpProtocol) {
        self.data_mut()[field::PROTOCOL] = value.into();
    }

    /// Sets the header checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.data_mut(), field::CHECKSUM, value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        write_u32(self.data_mut(), field::SRC_ADDR, value.to_bits());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        write_u32(self.data_mut(), field::DST_ADDR, value.to_bits());
    }

    /// Computes and writes the header checksum over the header as it stands.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let value = checksum::checksum(&self.data()[..header_len]);
        self.set_checksum(value);
    }
}

/// A validated, unfragmented IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: IpProtocol,
    /// The payload length in bytes (total length minus header length).
    pub payload_len: usize,
    pub ttl: u8,
    /// The identification field. Only meaningful for fragmentation, which DF rules out,
    /// so any value is fine (RFC 6864 §4.1); Linux sends a per-socket counter.
    pub ident: u16,
    pub dont_fragment: bool,
}

impl Ipv4Repr {
    /// Validates and reads a checked packet's header: version 4, the checksum (unless
    /// `verify_checksum` is false because the caller already trusts it), not a fragment.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Ipv4Packet<T>,
        verify_checksum: bool,
    ) -> Result<Ipv4Repr, WireError> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(WireError::Malformed("IP version is not 4"));
        }
        if verify_checksum && !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        if packet.is_fragment() {
            return Err(WireError::Fragmented);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            ident: packet.ident(),
            dont_fragment: packet.dont_fragment(),
        })
    }

    /// The length of the header `emit` writes: always [`HEADER_LEN`] (no options).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header, checksum included, into the first [`HEADER_LEN`] bytes of
    /// `packet`; the payload is the caller's.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Ipv4Packet<T>,
    ) -> Result<(), WireError> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let total_len = HEADER_LEN + self.payload_len;
        let Ok(total_len) = u16::try_from(total_len) else {
            return Err(WireError::Malformed("IPv4 payload longer than 65515 bytes"));
        };
        packet.set_version_and_header_len(HEADER_LEN);
        packet.set_dscp_ecn(0);
        packet.set_total_len(total_len);
        packet.set_ident(self.ident);
        packet.set_unfragmented(self.dont_fragment);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{DATA, RST, SYN};
    use proptest::prelude::*;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);

    fn syn_repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: CLIENT,
            dst_addr: SERVER,
            protocol: IpProtocol::Tcp,
            payload_len: 40,
            ttl: 64,
            ident: 32400,
            dont_fragment: true,
        }
    }

    #[test]
    fn test_deconstruct() {
        let packet = Ipv4Packet::new_checked(&SYN[14..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 60);
        assert_eq!(packet.checksum(), 0xa699);
        assert!(packet.verify_checksum());
        assert!(packet.dont_fragment() && !packet.more_fragments());
        assert_eq!(packet.fragment_offset(), 0);
        assert_eq!(packet.payload(), &SYN[34..]);
        assert_eq!(Ipv4Repr::parse(&packet, true), Ok(syn_repr()));

        let data = Ipv4Repr::parse(&Ipv4Packet::new_checked(&DATA[14..]).unwrap(), true).unwrap();
        assert_eq!((data.src_addr, data.dst_addr), (SERVER, CLIENT));
        assert_eq!((data.ident, data.payload_len), (20294, 64));
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 20];
        syn_repr()
            .emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes, SYN[14..34]);
    }

    #[test]
    fn test_truncated() {
        for len in 0..60 {
            let result = Ipv4Packet::new_checked(&SYN[14..14 + len]);
            assert_eq!(result.unwrap_err(), WireError::Truncated, "length {len}");
        }
        let mut small = [0u8; 19];
        let result = syn_repr().emit(&mut Ipv4Packet::new_unchecked(&mut small[..]));
        assert_eq!(result, Err(WireError::Truncated));
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        // The RST is 40 bytes of IP in a 54-byte frame; on the wire it is padded to 60.
        let mut padded = RST[14..].to_vec();
        padded.extend_from_slice(&[0; 6]);
        let packet = Ipv4Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload(), &RST[34..]);
        assert_eq!(Ipv4Repr::parse(&packet, true).unwrap().payload_len, 20);
    }

    #[test]
    fn options_are_skipped() {
        // The SYN's header with a 4-byte NOP,NOP,NOP,EOL option block spliced in.
        let mut bytes = SYN[14..34].to_vec();
        bytes.extend_from_slice(&[1, 1, 1, 0]);
        bytes.extend_from_slice(&SYN[34..]);
        bytes[0] = 0x46;
        bytes[3] += 4;
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum();
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), &SYN[34..]);
        assert_eq!(Ipv4Repr::parse(&packet, true), Ok(syn_repr()));
    }

    #[test]
    fn rejects_impossible_lengths() {
        let mut bytes = SYN[14..].to_vec();
        bytes[0] = 0x44; // IHL 4
        assert!(matches!(
            Ipv4Packet::new_checked(&bytes[..]),
            Err(WireError::Malformed(_))
        ));
        let mut bytes = SYN[14..].to_vec();
        bytes[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert!(matches!(
            Ipv4Packet::new_checked(&bytes[..]),
            Err(WireError::Malformed(_))
        ));
        let mut bytes = SYN[14..].to_vec();
        bytes[2..4].copy_from_slice(&61u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::Truncated
        );
        let mut bytes = SYN[14..].to_vec();
        bytes[0] = 0x4f; // 60-byte header but total length 60: no payload, accepted by the view
        assert!(Ipv4Packet::new_checked(&bytes[..]).is_ok());
        bytes[3] = 59;
        assert!(matches!(
            Ipv4Packet::new_checked(&bytes[..]),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_bad_checksum_version_and_fragments() {
        let mut bytes = SYN[14..].to_vec();
        bytes[8] = 63; // TTL changed, checksum not
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&packet, true), Err(WireError::BadChecksum));
        assert_eq!(Ipv4Repr::parse(&packet, false).unwrap().ttl, 63);

        let mut bytes = SYN[14..].to_vec();
        bytes[0] = 0x65;
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert!(matches!(
            Ipv4Repr::parse(&packet, false),
            Err(WireError::Malformed(_))
        ));

        for flags in [[0x20, 0x00], [0x00, 0x01], [0x40, 0x10], [0x3f, 0xff]] {
            let mut bytes = SYN[14..].to_vec();
            bytes[6..8].copy_from_slice(&flags);
            let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
            packet.fill_checksum();
            let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
            assert!(packet.is_fragment());
            assert_eq!(Ipv4Repr::parse(&packet, true), Err(WireError::Fragmented));
        }
    }

    #[test]
    fn emit_rejects_oversized_payloads() {
        let repr = Ipv4Repr {
            payload_len: 65516,
            ..syn_repr()
        };
        let mut bytes = [0u8; 20];
        let result = repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]));
        assert!(matches!(result, Err(WireError::Malformed(_))));
    }

    fn any_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            0usize..200,
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
        )
            .prop_map(
                |(src, dst, protocol, payload_len, ttl, ident, dont_fragment)| Ipv4Repr {
                    src_addr: Ipv4Addr::from_bits(src),
                    dst_addr: Ipv4Addr::from_bits(dst),
                    protocol: IpProtocol::from(protocol),
                    payload_len,
                    ttl,
                    ident,
                    dont_fragment,
                },
            )
    }

    proptest! {
        #[test]
        fn emit_then_parse_round_trips(repr in any_repr()) {
            let mut bytes = vec![0u8; HEADER_LEN + repr.payload_len];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..])).unwrap();
            let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&packet, true), Ok(repr));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(packet) = Ipv4Packet::new_checked(&bytes[..]) {
                let _ = packet.payload();
                let _ = packet.verify_checksum();
                let _ = Ipv4Repr::parse(&packet, true);
                let _ = Ipv4Repr::parse(&packet, false);
            }
        }

        #[test]
        fn parse_never_panics_on_mutated_captures(
            cut in 0usize..80,
            flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..6),
        ) {
            let mut bytes = DATA[14..].to_vec();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            bytes.truncate(cut);
            if let Ok(packet) = Ipv4Packet::new_checked(&bytes[..]) {
                let _ = packet.payload();
                let _ = Ipv4Repr::parse(&packet, true);
            }
        }
    }
}
