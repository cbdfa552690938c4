//! Ethernet II frames: a zero-copy view and a validated representation.
//!
//! Standards: IEEE 802.3 (Ethernet II / DIX framing), RFC 894 (IPv4 over Ethernet),
//! RFC 826 (the ARP ethertype), RFC 2464 (IPv6 over Ethernet). No 802.1Q tags: a tagged
//! frame has ethertype 0x8100 and is kept as [`EtherType::Unknown`].

use core::fmt;

use super::error::WireError;
use super::{Field, read_u16, write_u16};

/// A 48-bit Ethernet (MAC) address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// The broadcast address ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit (least significant bit of the first octet) is set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (unicast) address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The address as six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(octets: [u8; 6]) -> Self {
        EthernetAddress(octets)
    }
}

/// The ethertype field: what the frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800, RFC 894.
    Ipv4,
    /// 0x0806, RFC 826.
    Arp,
    /// 0x86DD, RFC 2464.
    Ipv6,
    /// Anything else (VLAN tags, …), kept as its value.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(value: u16) -> Self {
        match value {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> u16 {
        match value {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(other) => other,
        }
    }
}

mod field {
    use crate::wire::Field;
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// The length of an Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// A read/write view of an Ethernet II frame (without the FCS, which NICs strip).
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking it; accessors may panic until [`check_len`](Self::check_len) passed.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer that is long enough for the header; no accessor panics afterwards.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Ensures the buffer holds a whole header.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn address(&self, range: Field) -> EthernetAddress {
        let bytes = &self.buffer.as_ref()[range];
        EthernetAddress([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]])
    }

    /// The destination address.
    pub fn dst_addr(&self) -> EthernetAddress {
        self.address(field::DESTINATION)
    }

    /// The source address.
    pub fn src_addr(&self) -> EthernetAddress {
        self.address(field::SOURCE)
    }

    /// The ethertype.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Everything after the header (for IPv4 possibly followed by Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// The payload, borrowed for as long as the underlying buffer.
    pub fn payload_ref(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the ethertype.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, ethertype.into());
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// A validated Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    pub src_addr: EthernetAddress,
    pub dst_addr: EthernetAddress,
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of a checked frame. Every header is acceptable at this layer.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr, WireError> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// The header length: always [`HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `frame`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        frame: &mut EthernetFrame<T>,
    ) -> Result<(), WireError> {
        frame.check_len()?;
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{ARP_REQUEST, IPV6_ROUTER_SOLICIT, SYN};
    use proptest::prelude::*;

    const CLIENT: EthernetAddress = EthernetAddress([0x16, 0x38, 0x6f, 0x9c, 0x48, 0x75]);
    const SERVER: EthernetAddress = EthernetAddress([0x7a, 0x22, 0x7b, 0x62, 0x1f, 0x27]);

    #[test]
    fn test_deconstruct() {
        let frame = EthernetFrame::new_checked(&SYN[..]).unwrap();
        assert_eq!(frame.dst_addr(), SERVER);
        assert_eq!(frame.src_addr(), CLIENT);
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        assert_eq!(frame.payload(), &SYN[14..]);

        let arp = EthernetRepr::parse(&EthernetFrame::new_checked(&ARP_REQUEST[..]).unwrap());
        let arp = arp.unwrap();
        assert!(arp.dst_addr.is_broadcast());
        assert_eq!(arp.ethertype, EtherType::Arp);

        let ipv6 = EthernetFrame::new_checked(&IPV6_ROUTER_SOLICIT[..]).unwrap();
        assert_eq!(ipv6.ethertype(), EtherType::Ipv6);
        assert!(ipv6.dst_addr().is_multicast());
    }

    #[test]
    fn test_construct() {
        let repr = EthernetRepr {
            src_addr: CLIENT,
            dst_addr: SERVER,
            ethertype: EtherType::Ipv4,
        };
        let mut bytes = [0u8; 14];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes, SYN[..14]);
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&SYN[..13]).unwrap_err(),
            WireError::Truncated
        );
        let mut short = [0u8; 13];
        let repr = EthernetRepr {
            src_addr: CLIENT,
            dst_addr: SERVER,
            ethertype: EtherType::Arp,
        };
        let result = repr.emit(&mut EthernetFrame::new_unchecked(&mut short[..]));
        assert_eq!(result, Err(WireError::Truncated));
    }

    #[test]
    fn displays_like_ip_link() {
        assert_eq!(CLIENT.to_string(), "16:38:6f:9c:48:75");
        assert_eq!(EthernetAddress::BROADCAST.to_string(), "ff:ff:ff:ff:ff:ff");
        assert!(CLIENT.is_unicast());
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(frame) = EthernetFrame::new_checked(&bytes[..]) {
                let repr = EthernetRepr::parse(&frame).unwrap();
                prop_assert_eq!(u16::from(repr.ethertype), u16::from_be_bytes([bytes[12], bytes[13]]));
                let _ = frame.payload();
            }
        }
    }
}
