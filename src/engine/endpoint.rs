//! One connection's addresses, and the frames they make.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::wire::{
    EtherType, EthernetAddress, EthernetRepr, FrameTemplate, IpProtocol, IpRepr, Ipv4Repr,
    Ipv6Repr, TcpRepr, WireError,
};

/// Who talks to whom, at every layer: our MAC, the next hop's MAC, and the TCP four-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub local_mac: EthernetAddress,
    /// The MAC of the next hop towards `remote` (the server itself on the same link).
    pub next_hop_mac: EthernetAddress,
    /// Both of one IP version (the kernel's route picks a source of the destination's).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The path MTU: the largest IP packet we send, header included.
    pub mtu: usize,
}

impl Endpoint {
    /// The IP header of this connection's packets.
    fn ip(&self) -> IpRepr {
        match (self.local.ip(), self.remote.ip()) {
            (IpAddr::V4(src_addr), IpAddr::V4(dst_addr)) => IpRepr::Ipv4(Ipv4Repr {
                src_addr,
                dst_addr,
                protocol: IpProtocol::Tcp,
                payload_len: 0,
                ttl: 64,
                ident: 0,
                dont_fragment: true,
            }),
            // Mixed families cannot come out of a route lookup; mapped, they stay total.
            (src, dst) => IpRepr::Ipv6(Ipv6Repr {
                src_addr: ipv6_of(src),
                dst_addr: ipv6_of(dst),
                next_header: IpProtocol::Tcp,
                payload_len: 0,
                hop_limit: 64,
            }),
        }
    }

    /// The IP header length of this connection's packets: 20 (IPv4) or 40 (IPv6).
    pub fn ip_header_len(&self) -> usize {
        self.ip().header_len()
    }

    /// The prebuilt headers of this connection's outgoing frames.
    pub fn template(&self) -> FrameTemplate {
        let eth = EthernetRepr {
            src_addr: self.local_mac,
            dst_addr: self.next_hop_mac,
            ethertype: EtherType::Ipv4,
        };
        FrameTemplate::new(&eth, self.ip(), self.local.port(), self.remote.port())
    }

    /// Whether a parsed segment belongs to this connection.
    pub fn accepts(&self, src: IpAddr, dst: IpAddr, segment: &TcpRepr<'_>) -> bool {
        src == self.remote.ip()
            && dst == self.local.ip()
            && segment.src_port == self.remote.port()
            && segment.dst_port == self.local.port()
    }
}

fn ipv6_of(address: IpAddr) -> Ipv6Addr {
    match address {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Writes outgoing segments of one connection into transmit buffers.
pub struct FrameWriter {
    template: FrameTemplate,
    /// IPv4 identification: any value is fine with DF set (RFC 6864 §4.1); a counter helps
    /// reading captures.
    ident: u16,
}

impl FrameWriter {
    pub fn new(endpoint: &Endpoint) -> FrameWriter {
        FrameWriter {
            template: endpoint.template(),
            ident: 0,
        }
    }

    /// Writes the frame of `segment` into `buffer` and returns its length.
    pub fn write(&mut self, buffer: &mut [u8], segment: &TcpRepr<'_>) -> Result<usize, WireError> {
        self.ident = self.ident.wrapping_add(1);
        self.template.emit(buffer, self.ident, segment)
    }
}
