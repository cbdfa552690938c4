//! Hand-built frames for the raw driver's tests (the `wire` layer is not used on purpose:
//! these tests check the driver and the filter, not the parser).
//!
//! Follows: RFC 791 (IPv4 header), RFC 9293 §3.1 (TCP header), RFC 1071 (Internet
//! checksum), RFC 826 (ARP), RFC 768 (UDP).

use std::net::Ipv4Addr;

pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const TCP_SYN: u8 = 0x02;
pub(crate) const TCP_RST: u8 = 0x04;
pub(crate) const TCP_ACK: u8 = 0x10;

/// RFC 1071 one's-complement sum over `chunks`, folded and inverted.
pub(crate) fn internet_checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for chunk in chunks {
        let mut pairs = chunk.chunks_exact(2);
        for pair in &mut pairs {
            sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
        if let [last] = pairs.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet + IPv4 + TCP frame with every field settable.
#[derive(Clone, Debug)]
pub(crate) struct TcpFrame {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub tcp_options: Vec<u8>,
    pub ip_options: Vec<u8>,
    pub payload: Vec<u8>,
}

impl TcpFrame {
    pub(crate) fn new(
        src_addr: Ipv4Addr,
        src_port: u16,
        dst_addr: Ipv4Addr,
        dst_port: u16,
    ) -> Self {
        TcpFrame {
            src_mac: [0x02, 0, 0, 0, 0, 1],
            dst_mac: [0x02, 0, 0, 0, 0, 2],
            src_addr,
            dst_addr,
            src_port,
            dst_port,
            seq: 1,
            ack: 0,
            flags: TCP_ACK,
            window: 65535,
            tcp_options: Vec::new(),
            ip_options: Vec::new(),
            payload: Vec::new(),
        }
    }

    pub(crate) fn with_ip_options(mut self, options: &[u8]) -> Self {
        assert_eq!(options.len() % 4, 0);
        self.ip_options = options.to_vec();
        self
    }

    /// The frame's bytes with correct IPv4 and TCP checksums.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        assert_eq!(self.tcp_options.len() % 4, 0);
        let ip_header_len = 20 + self.ip_options.len();
        let tcp_header_len = 20 + self.tcp_options.len();
        let total_len = ip_header_len + tcp_header_len + self.payload.len();
        let mut frame = Vec::with_capacity(14 + total_len);
        frame.extend_from_slice(&self.dst_mac);
        frame.extend_from_slice(&self.src_mac);
        frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());

        let mut ip = Vec::with_capacity(ip_header_len);
        ip.push(0x40 | (ip_header_len / 4) as u8);
        ip.push(0);
        ip.extend_from_slice(&(total_len as u16).to_be_bytes());
        ip.extend_from_slice(&0x1234u16.to_be_bytes()); // identification
        ip.extend_from_slice(&0x4000u16.to_be_bytes()); // DF, offset 0
        ip.push(64);
        ip.push(6);
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(&self.src_addr.octets());
        ip.extend_from_slice(&self.dst_addr.octets());
        ip.extend_from_slice(&self.ip_options);
        let ip_checksum = internet_checksum(&[&ip]);
        ip[10..12].copy_from_slice(&ip_checksum.to_be_bytes());

        let mut tcp = Vec::with_capacity(tcp_header_len + self.payload.len());
        tcp.extend_from_slice(&self.src_port.to_be_bytes());
        tcp.extend_from_slice(&self.dst_port.to_be_bytes());
        tcp.extend_from_slice(&self.seq.to_be_bytes());
        tcp.extend_from_slice(&self.ack.to_be_bytes());
        tcp.push(((tcp_header_len / 4) as u8) << 4);
        tcp.push(self.flags);
        tcp.extend_from_slice(&self.window.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        tcp.extend_from_slice(&self.tcp_options);
        tcp.extend_from_slice(&self.payload);
        // RFC 9293 §3.1: the pseudo-header covers addresses, protocol and TCP length.
        let mut pseudo = Vec::with_capacity(12);
        pseudo.extend_from_slice(&self.src_addr.octets());
        pseudo.extend_from_slice(&self.dst_addr.octets());
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        let tcp_checksum = internet_checksum(&[&pseudo, &tcp]);
        tcp[16..18].copy_from_slice(&tcp_checksum.to_be_bytes());

        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&tcp);
        frame
    }
}

/// The fields of an Ethernet + IPv4 + TCP frame the tests look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpSummary {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// Whether both checksums verify.
    pub checksums_ok: bool,
}

/// Reads an Ethernet + IPv4 + TCP frame, or None if it is anything else.
pub(crate) fn summarize(frame: &[u8]) -> Option<TcpSummary> {
    if frame.len() < 14 + 20 || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[9] != 6 || ihl < 20 || total < ihl + 20 || ip.len() < total {
        return None;
    }
    let addr = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
    let (src_addr, dst_addr) = (addr(12), addr(16));
    let tcp = &ip[ihl..total];
    let word = |at: usize| u32::from_be_bytes([tcp[at], tcp[at + 1], tcp[at + 2], tcp[at + 3]]);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src_addr.octets());
    pseudo.extend_from_slice(&dst_addr.octets());
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    let checksums_ok =
        internet_checksum(&[&ip[..ihl]]) == 0 && internet_checksum(&[&pseudo, tcp]) == 0;
    Some(TcpSummary {
        src_addr,
        dst_addr,
        src_port: u16::from_be_bytes([tcp[0], tcp[1]]),
        dst_port: u16::from_be_bytes([tcp[2], tcp[3]]),
        seq: word(4),
        ack: word(8),
        flags: tcp[13],
        checksums_ok,
    })
}

/// A broadcast ARP request from `sender` asking for `target`.
pub(crate) fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    frame.extend_from_slice(&0x0806u16.to_be_bytes());
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    frame.extend_from_slice(&sender.octets());
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&target.octets());
    frame
}

/// A UDP datagram to `dst:port` (checksum 0: none, as RFC 768 allows).
pub(crate) fn udp_frame(src: Ipv4Addr, dst: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut frame = TcpFrame::new(src, 1, dst, port).bytes();
    frame.truncate(14 + 20);
    frame[14 + 9] = 17;
    frame[14 + 2..14 + 4].copy_from_slice(&28u16.to_be_bytes());
    frame[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let checksum = internet_checksum(&[&frame[14..34]]);
    frame[14 + 10..14 + 12].copy_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(&1u16.to_be_bytes());
    frame.extend_from_slice(&port.to_be_bytes());
    frame.extend_from_slice(&8u16.to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame
}

#[test]
fn built_frames_verify() {
    let mut f = TcpFrame::new(
        Ipv4Addr::new(10, 0, 0, 1),
        1234,
        Ipv4Addr::new(10, 0, 0, 2),
        80,
    );
    f.payload = b"odd".to_vec();
    f.tcp_options = vec![2, 4, 5, 0xb4];
    let s = summarize(&f.bytes()).expect("tcp frame");
    assert!(s.checksums_ok);
    assert_eq!((s.src_port, s.dst_port, s.flags), (1234, 80, TCP_ACK));
    let mut corrupt = f.bytes();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert!(!summarize(&corrupt).expect("tcp frame").checksums_ok);
}
