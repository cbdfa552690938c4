//! One connection's addresses, and the frames they make.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::wire::{
    EtherType, EthernetAddress, EthernetRepr, FrameTemplate, IpProtocol, Ipv4Repr, TcpRepr,
    WireError,
};

/// Who talks to whom, at every layer: our MAC, the next hop's MAC, and the TCP four-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub local_mac: EthernetAddress,
    /// The MAC of the next hop towards `remote` (the server itself on the same link).
    pub next_hop_mac: EthernetAddress,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// The link MTU (largest IPv4 packet).
    pub mtu: usize,
}

impl Endpoint {
    /// The prebuilt headers of this connection's outgoing frames.
    pub fn template(&self) -> FrameTemplate {
        let eth = EthernetRepr {
            src_addr: self.local_mac,
            dst_addr: self.next_hop_mac,
            ethertype: EtherType::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: *self.local.ip(),
            dst_addr: *self.remote.ip(),
            protocol: IpProtocol::Tcp,
            payload_len: 0,
            ttl: 64,
            ident: 0,
            dont_fragment: true,
        };
        FrameTemplate::new(&eth, &ip, self.local.port(), self.remote.port())
    }

    /// Whether a parsed segment belongs to this connection.
    pub fn accepts(&self, src: Ipv4Addr, dst: Ipv4Addr, segment: &TcpRepr<'_>) -> bool {
        src == *self.remote.ip()
            && dst == *self.local.ip()
            && segment.src_port == self.remote.port()
            && segment.dst_port == self.local.port()
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
