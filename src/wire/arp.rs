//! ARP for Ethernet and IPv4: a zero-copy view and a validated representation.
//!
//! RFC 826 (packet format and operations). Only hardware type 1 (Ethernet, 6-byte
//! addresses) with protocol type 0x0800 (IPv4, 4-byte addresses) is supported; anything
//! else parses as [`WireError::Unsupported`].

use core::net::Ipv4Addr;

use super::error::WireError;
use super::ethernet::EthernetAddress;
use super::{read_u16, read_u32, write_u16, write_u32};

/// ar$hrd for Ethernet (RFC 826, "Packet format"; IANA hardware type 1).
pub const HARDWARE_ETHERNET: u16 = 1;
/// ar$pro for IPv4: the IPv4 ethertype.
pub const PROTOCOL_IPV4: u16 = 0x0800;

mod field {
    use crate::wire::Field;
    pub const HARDWARE_TYPE: Field = 0..2;
    pub const PROTOCOL_TYPE: Field = 2..4;
    pub const HARDWARE_LEN: usize = 4;
    pub const PROTOCOL_LEN: usize = 5;
    pub const OPERATION: Field = 6..8;
    // The address fields below are laid out for hlen 6, plen 4 (Ethernet/IPv4).
    pub const SOURCE_HARDWARE_ADDR: Field = 8..14;
    pub const SOURCE_PROTOCOL_ADDR: Field = 14..18;
    pub const TARGET_HARDWARE_ADDR: Field = 18..24;
    pub const TARGET_PROTOCOL_ADDR: Field = 24..28;
}

/// The length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TARGET_PROTOCOL_ADDR.end;

/// ar$op: the ARP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// 1: who has this protocol address?
    Request,
    /// 2: this protocol address is at this hardware address.
    Reply,
    /// Anything else (RARP, InARP, …).
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(value: u16) -> Self {
        match value {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(value: ArpOperation) -> u16 {
        match value {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

/// A read/write view of an ARP packet with Ethernet/IPv4 address sizes.
#[derive(Debug, Clone, Copy)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic until [`check_len`](Self::check_len) passed.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer long enough for an Ethernet/IPv4 ARP packet; no accessor panics afterwards.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the buffer holds [`PACKET_LEN`] bytes. Trailing bytes (Ethernet padding
    /// to the 60-byte minimum frame) are allowed and ignored.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < PACKET_LEN {
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

    fn hardware_addr(&self, range: crate::wire::Field) -> EthernetAddress {
        let bytes = &self.data()[range];
        EthernetAddress([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]])
    }

    /// ar$hrd.
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.data(), field::HARDWARE_TYPE)
    }

    /// ar$pro.
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.data(), field::PROTOCOL_TYPE)
    }

    /// ar$hln.
    pub fn hardware_len(&self) -> u8 {
        self.data()[field::HARDWARE_LEN]
    }

    /// ar$pln.
    pub fn protocol_len(&self) -> u8 {
        self.data()[field::PROTOCOL_LEN]
    }

    /// ar$op.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(read_u16(self.data(), field::OPERATION))
    }

    /// ar$sha.
    pub fn source_hardware_addr(&self) -> EthernetAddress {
        self.hardware_addr(field::SOURCE_HARDWARE_ADDR)
    }

    /// ar$spa.
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(read_u32(self.data(), field::SOURCE_PROTOCOL_ADDR))
    }

    /// ar$tha.
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        self.hardware_addr(field::TARGET_HARDWARE_ADDR)
    }

    /// ar$tpa.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(read_u32(self.data(), field::TARGET_PROTOCOL_ADDR))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets ar$hrd, ar$pro, ar$hln and ar$pln for Ethernet/IPv4.
    pub fn set_ethernet_ipv4_types(&mut self) {
        write_u16(self.data_mut(), field::HARDWARE_TYPE, HARDWARE_ETHERNET);
        write_u16(self.data_mut(), field::PROTOCOL_TYPE, PROTOCOL_IPV4);
        self.data_mut()[field::HARDWARE_LEN] = 6;
        self.data_mut()[field::PROTOCOL_LEN] = 4;
    }

    /// Sets ar$op.
    pub fn set_operation(&mut self, operation: ArpOperation) {
        write_u16(self.data_mut(), field::OPERATION, operation.into());
    }

    /// Sets ar$sha.
    pub fn set_source_hardware_addr(&mut self, addr: EthernetAddress) {
        self.data_mut()[field::SOURCE_HARDWARE_ADDR].copy_from_slice(&addr.0);
    }

    /// Sets ar$spa.
    pub fn set_source_protocol_addr(&mut self, addr: Ipv4Addr) {
        write_u32(self.data_mut(), field::SOURCE_PROTOCOL_ADDR, addr.to_bits());
    }

    /// Sets ar$tha.
    pub fn set_target_hardware_addr(&mut self, addr: EthernetAddress) {
        self.data_mut()[field::TARGET_HARDWARE_ADDR].copy_from_slice(&addr.0);
    }

    /// Sets ar$tpa.
    pub fn set_target_protocol_addr(&mut self, addr: Ipv4Addr) {
        write_u32(self.data_mut(), field::TARGET_PROTOCOL_ADDR, addr.to_bits());
    }
}

/// A validated Ethernet/IPv4 ARP request or reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// [`ArpOperation::Request`] or [`ArpOperation::Reply`]; never `Unknown` after `parse`.
    pub operation: ArpOperation,
    pub source_hardware_addr: EthernetAddress,
    pub source_protocol_addr: Ipv4Addr,
    /// All zeros in a request (RFC 826 leaves it unspecified; Linux sends zeros).
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Validates and reads an Ethernet/IPv4 request or reply.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr, WireError> {
        packet.check_len()?;
        if packet.hardware_type() != HARDWARE_ETHERNET || packet.hardware_len() != 6 {
            return Err(WireError::Unsupported(
                "ARP for a hardware type other than Ethernet",
            ));
        }
        if packet.protocol_type() != PROTOCOL_IPV4 || packet.protocol_len() != 4 {
            return Err(WireError::Unsupported("ARP for a protocol other than IPv4"));
        }
        let operation = packet.operation();
        if let ArpOperation::Unknown(_) = operation {
            return Err(WireError::Unsupported(
                "ARP operation other than request or reply",
            ));
        }
        Ok(ArpRepr {
            operation,
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// The packet length: always [`PACKET_LEN`].
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet into the first [`PACKET_LEN`] bytes of `packet`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut ArpPacket<T>,
    ) -> Result<(), WireError> {
        packet.check_len()?;
        packet.set_ethernet_ipv4_types();
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{ARP_REPLY, ARP_REQUEST};
    use proptest::prelude::*;

    const CLIENT_MAC: EthernetAddress = EthernetAddress([0x16, 0x38, 0x6f, 0x9c, 0x48, 0x75]);
    const SERVER_MAC: EthernetAddress = EthernetAddress([0x7a, 0x22, 0x7b, 0x62, 0x1f, 0x27]);
    const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
    const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);

    fn request() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: CLIENT_MAC,
            source_protocol_addr: CLIENT_IP,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: SERVER_IP,
        }
    }

    fn reply() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: SERVER_MAC,
            source_protocol_addr: SERVER_IP,
            target_hardware_addr: CLIENT_MAC,
            target_protocol_addr: CLIENT_IP,
        }
    }

    #[test]
    fn test_deconstruct() {
        let packet = ArpPacket::new_checked(&ARP_REQUEST[14..]).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), 0x0800);
        assert_eq!(ArpRepr::parse(&packet), Ok(request()));
        let packet = ArpPacket::new_checked(&ARP_REPLY[14..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet), Ok(reply()));
    }

    #[test]
    fn test_construct() {
        for (repr, fixture) in [(request(), &ARP_REQUEST[14..]), (reply(), &ARP_REPLY[14..])] {
            let mut bytes = [0xa5u8; PACKET_LEN];
            repr.emit(&mut ArpPacket::new_unchecked(&mut bytes[..]))
                .unwrap();
            assert_eq!(&bytes[..], fixture);
        }
    }

    #[test]
    fn test_truncated() {
        let short = &ARP_REQUEST[14..41];
        assert_eq!(
            ArpPacket::new_checked(short).unwrap_err(),
            WireError::Truncated
        );
        let mut small = [0u8; PACKET_LEN - 1];
        let result = request().emit(&mut ArpPacket::new_unchecked(&mut small[..]));
        assert_eq!(result, Err(WireError::Truncated));
    }

    #[test]
    fn padded_packet_parses() {
        let mut padded = ARP_REPLY[14..].to_vec();
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_checked(&padded[..]).unwrap()),
            Ok(reply())
        );
    }

    #[test]
    fn rejects_other_types_and_operations() {
        let mut bytes = ARP_REQUEST[14..].to_vec();
        bytes[7] = 3; // RARP request
        let packet = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert!(matches!(
            ArpRepr::parse(&packet),
            Err(WireError::Unsupported(_))
        ));
        let mut bytes = ARP_REQUEST[14..].to_vec();
        bytes[1] = 6; // IEEE 802 hardware
        let packet = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert!(matches!(
            ArpRepr::parse(&packet),
            Err(WireError::Unsupported(_))
        ));
        let mut bytes = ARP_REQUEST[14..].to_vec();
        bytes[5] = 16; // IPv6-sized protocol addresses
        let packet = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert!(matches!(
            ArpRepr::parse(&packet),
            Err(WireError::Unsupported(_))
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(packet) = ArpPacket::new_checked(&bytes[..])
                && let Ok(repr) = ArpRepr::parse(&packet)
            {
                let mut out = [0u8; PACKET_LEN];
                repr.emit(&mut ArpPacket::new_unchecked(&mut out[..])).unwrap();
                prop_assert_eq!(&out[..], &bytes[..PACKET_LEN]);
            }
        }
    }
}
