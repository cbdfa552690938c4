//! Either IP version's header, for the code that carries TCP over both.

use core::net::IpAddr;

use super::ethernet::EtherType;
use super::ipv4::{self, Ipv4Repr};
use super::ipv6::{self, Ipv6Repr};

/// A validated IPv4 or IPv6 header carrying a TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpRepr {
    Ipv4(Ipv4Repr),
    Ipv6(Ipv6Repr),
}

impl IpRepr {
    /// The source address.
    pub const fn src_addr(&self) -> IpAddr {
        match self {
            IpRepr::Ipv4(ip) => IpAddr::V4(ip.src_addr),
            IpRepr::Ipv6(ip) => IpAddr::V6(ip.src_addr),
        }
    }

    /// The destination address.
    pub const fn dst_addr(&self) -> IpAddr {
        match self {
            IpRepr::Ipv4(ip) => IpAddr::V4(ip.dst_addr),
            IpRepr::Ipv6(ip) => IpAddr::V6(ip.dst_addr),
        }
    }

    /// The length of the header xdpget emits: 20 bytes for IPv4, 40 for IPv6.
    pub const fn header_len(&self) -> usize {
        match self {
            IpRepr::Ipv4(_) => ipv4::HEADER_LEN,
            IpRepr::Ipv6(_) => ipv6::HEADER_LEN,
        }
    }

    /// The ethertype of a frame carrying this header.
    pub const fn ethertype(&self) -> EtherType {
        match self {
            IpRepr::Ipv4(_) => EtherType::Ipv4,
            IpRepr::Ipv6(_) => EtherType::Ipv6,
        }
    }
}

impl From<Ipv4Repr> for IpRepr {
    fn from(ip: Ipv4Repr) -> IpRepr {
        IpRepr::Ipv4(ip)
    }
}

impl From<&Ipv4Repr> for IpRepr {
    fn from(ip: &Ipv4Repr) -> IpRepr {
        IpRepr::Ipv4(*ip)
    }
}

impl From<Ipv6Repr> for IpRepr {
    fn from(ip: Ipv6Repr) -> IpRepr {
        IpRepr::Ipv6(ip)
    }
}

impl From<&Ipv6Repr> for IpRepr {
    fn from(ip: &Ipv6Repr) -> IpRepr {
        IpRepr::Ipv6(*ip)
    }
}

impl From<&IpRepr> for IpRepr {
    fn from(ip: &IpRepr) -> IpRepr {
        *ip
    }
}
