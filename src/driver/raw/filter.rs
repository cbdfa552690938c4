//! The classic-BPF socket filter that narrows the AF_PACKET socket to our connections.
//!
//! Follows: Documentation/networking/filter.rst (classic BPF instruction set), RFC 791
//! (IPv4 header: protocol at byte 9, destination at 16, flags/fragment offset at 6, IHL),
//! RFC 8200 §3 (IPv6 header: next header at byte 6, destination at 24..40), RFC 9293 §3.1
//! (TCP destination port at byte 2), IEEE 802.3 (EtherType at byte 12).
//!
//! The program accepts an Ethernet II frame only if it carries TCP to our address (IPv4, not
//! a non-first fragment, which has no TCP header; or IPv6 with TCP right after the fixed
//! header) and its TCP destination port is in our range. Everything else stays in the
//! kernel and never wakes us. ARP and ICMPv6 (neighbour discovery, Packet Too Big) are not
//! let through: the address is the interface's own, so the kernel keeps answering for it,
//! and neighbour MACs come from the kernel's neighbour table (`net::neigh`). An IPv6 TCP
//! segment behind extension headers stays in the kernel too; servers do not send those.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

/// One classic-BPF instruction, laid out like the kernel's `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Opcode pieces from `linux/filter.h` / `linux/bpf_common.h`.
pub mod op {
    // Instruction classes.
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    // Load sizes.
    pub const W: u16 = 0x00;
    pub const H: u16 = 0x08;
    pub const B: u16 = 0x10;
    // Load modes.
    pub const ABS: u16 = 0x20;
    pub const IND: u16 = 0x40;
    /// `ldxb 4*([k]&0xf)`: the IPv4 header length trick.
    pub const MSH: u16 = 0xa0;
    // Jump tests, against the constant k.
    pub const JEQ: u16 = 0x10;
    pub const JGT: u16 = 0x20;
    pub const JGE: u16 = 0x30;
    pub const JSET: u16 = 0x40;
    pub const K: u16 = 0x00;
}

/// Bytes of an accepted frame to deliver: all of it (the kernel caps at the frame length).
pub const ACCEPT_ALL: u32 = 0x0004_0000;

const ETHERTYPE_OFFSET: u32 = 12;
const ETHERTYPE_IPV4: u32 = 0x0800;
const ETHERTYPE_IPV6: u32 = 0x86dd;
const IP_OFFSET: u32 = 14;
const IP_PROTOCOL_TCP: u32 = 6;
/// Fragment offset bits of the IPv4 flags/fragment field (RFC 791).
const IP_FRAGMENT_OFFSET_MASK: u32 = 0x1fff;

/// Where a conditional jump goes: on to the next test, or to the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Next,
    Drop,
}

/// A program under construction; jump targets are resolved when it is finished.
struct Builder {
    code: Vec<(Instruction, Target, Target)>,
}

impl Builder {
    fn load(&mut self, code: u16, k: u32) {
        let instruction = Instruction {
            code,
            jt: 0,
            jf: 0,
            k,
        };
        self.code.push((instruction, Target::Next, Target::Next));
    }

    fn jump(&mut self, test: u16, k: u32, if_true: Target, if_false: Target) {
        let instruction = Instruction {
            code: op::JMP | test | op::K,
            jt: 0,
            jf: 0,
            k,
        };
        self.code.push((instruction, if_true, if_false));
    }

    /// Appends `ret ACCEPT_ALL; drop: ret 0` and resolves the jumps.
    fn finish(self) -> Vec<Instruction> {
        let accept_at = self.code.len();
        let drop_at = accept_at + 1;
        let offset = |from: usize, target: Target| match target {
            Target::Next => 0,
            // Programs here are a dozen instructions long, far below u8's reach.
            Target::Drop => u8::try_from(drop_at - from - 1).unwrap_or(u8::MAX),
        };
        let mut program: Vec<Instruction> = self
            .code
            .iter()
            .enumerate()
            .map(|(at, &(instruction, if_true, if_false))| Instruction {
                jt: offset(at, if_true),
                jf: offset(at, if_false),
                ..instruction
            })
            .collect();
        for k in [ACCEPT_ALL, 0] {
            program.push(Instruction {
                code: op::RET | op::K,
                jt: 0,
                jf: 0,
                k,
            });
        }
        program
    }
}

/// The filter for TCP to `addr` (IPv4 or IPv6) with destination port in `ports`.
pub fn tcp_to(addr: IpAddr, ports: RangeInclusive<u16>) -> Vec<Instruction> {
    match addr {
        IpAddr::V4(v4) => tcp_to_ipv4(v4, ports),
        IpAddr::V6(v6) => tcp_to_ipv6(v6, ports),
    }
}

/// Appends the port range test on the half-word at `X + k` (or at `k` with X = 0).
fn port_in_range(b: &mut Builder, ports: &RangeInclusive<u16>) {
    use Target::{Drop, Next};
    b.jump(op::JGE, u32::from(*ports.start()), Next, Drop);
    b.jump(op::JGT, u32::from(*ports.end()), Drop, Next);
}

/// IPv6: TCP directly after the 40-byte header, our address as four words, the port at
/// 14 + 40 + 2.
fn tcp_to_ipv6(addr: Ipv6Addr, ports: RangeInclusive<u16>) -> Vec<Instruction> {
    use Target::{Drop, Next};
    const NEXT_HEADER: u32 = IP_OFFSET + 6;
    const DESTINATION: u32 = IP_OFFSET + 24;
    const TCP_DESTINATION_PORT: u32 = IP_OFFSET + 40 + 2;
    let mut b = Builder { code: Vec::new() };
    b.load(op::LD | op::H | op::ABS, ETHERTYPE_OFFSET);
    b.jump(op::JEQ, ETHERTYPE_IPV6, Next, Drop);
    b.load(op::LD | op::B | op::ABS, NEXT_HEADER);
    b.jump(op::JEQ, IP_PROTOCOL_TCP, Next, Drop);
    for (at, word) in (0u32..).step_by(4).zip(addr.octets().chunks_exact(4)) {
        b.load(op::LD | op::W | op::ABS, DESTINATION + at);
        let word = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        b.jump(op::JEQ, word, Next, Drop);
    }
    b.load(op::LD | op::H | op::ABS, TCP_DESTINATION_PORT);
    port_in_range(&mut b, &ports);
    b.finish()
}

fn tcp_to_ipv4(addr: Ipv4Addr, ports: RangeInclusive<u16>) -> Vec<Instruction> {
    use Target::{Drop, Next};
    let mut b = Builder { code: Vec::new() };
    b.load(op::LD | op::H | op::ABS, ETHERTYPE_OFFSET);
    b.jump(op::JEQ, ETHERTYPE_IPV4, Next, Drop);
    b.load(op::LD | op::B | op::ABS, IP_OFFSET + 9);
    b.jump(op::JEQ, IP_PROTOCOL_TCP, Next, Drop);
    b.load(op::LD | op::W | op::ABS, IP_OFFSET + 16);
    b.jump(op::JEQ, u32::from(addr), Next, Drop);
    b.load(op::LD | op::H | op::ABS, IP_OFFSET + 6);
    b.jump(op::JSET, IP_FRAGMENT_OFFSET_MASK, Drop, Next);
    // X = IHL * 4; then the TCP destination port sits at X + 14 + 2.
    b.load(op::LDX | op::B | op::MSH, IP_OFFSET);
    b.load(op::LD | op::H | op::IND, IP_OFFSET + 2);
    port_in_range(&mut b, &ports);
    b.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::driver::raw::testframe::{TcpFrame, arp_request, udp_frame};

    /// Runs `program` on `frame` the way the kernel's classic-BPF interpreter does for the
    /// instructions the builder emits: an out-of-bounds load ends the program with 0.
    pub(crate) fn run(program: &[Instruction], frame: &[u8]) -> u32 {
        let load = |offset: u32, size: usize| -> Option<u32> {
            let start = usize::try_from(offset).ok()?;
            let bytes = frame.get(start..start.checked_add(size)?)?;
            Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
        };
        let (mut a, mut x) = (0u32, 0u32);
        let mut pc = 0usize;
        while let Some(i) = program.get(pc) {
            pc += 1;
            let size = |code: u16| match code & 0x18 {
                op::W => 4,
                op::H => 2,
                _ => 1,
            };
            match i.code & 0x07 {
                op::LD => {
                    let offset = match i.code & 0xe0 {
                        op::ABS => i.k,
                        op::IND => x.wrapping_add(i.k),
                        other => panic!("unsupported load mode {other:#x}"),
                    };
                    match load(offset, size(i.code)) {
                        Some(value) => a = value,
                        None => return 0,
                    }
                }
                op::LDX => {
                    assert_eq!(i.code & 0xe0, op::MSH, "unsupported ldx mode");
                    match load(i.k, 1) {
                        Some(value) => x = 4 * (value & 0xf),
                        None => return 0,
                    }
                }
                op::JMP => {
                    let taken = match i.code & 0xf0 {
                        op::JEQ => a == i.k,
                        op::JGT => a > i.k,
                        op::JGE => a >= i.k,
                        op::JSET => a & i.k != 0,
                        other => panic!("unsupported jump {other:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                op::RET => return i.k,
                other => panic!("unsupported class {other:#x}"),
            }
        }
        panic!("program fell off its end");
    }

    const OURS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

    fn program() -> Vec<Instruction> {
        tcp_to(OURS.into(), 40000..=40999)
    }

    fn to_us(port: u16) -> TcpFrame {
        TcpFrame::new(PEER, 80, OURS, port)
    }

    #[test]
    fn layout_is_resolved() {
        let p = program();
        assert_eq!(p.len(), 14);
        // The last two are the verdicts; every jump lands inside the program.
        assert_eq!(p[12].code, op::RET);
        assert_eq!((p[12].k, p[13].k), (ACCEPT_ALL, 0));
        for (at, i) in p.iter().enumerate() {
            if i.code & 0x07 == op::JMP {
                assert!(at + 1 + usize::from(i.jt.max(i.jf)) < p.len());
            }
        }
        // The address constant is the address in network order, read as a big-endian word.
        assert_eq!(p[5].k, 0x0a4d_0001);
    }

    #[test]
    fn accepts_tcp_to_our_range() {
        let p = program();
        for port in [40000, 40001, 40500, 40999] {
            assert_eq!(run(&p, &to_us(port).bytes()), ACCEPT_ALL, "port {port}");
        }
    }

    #[test]
    fn drops_ports_outside_the_range() {
        let p = program();
        for port in [0, 80, 39999, 41000, 65535] {
            assert_eq!(run(&p, &to_us(port).bytes()), 0, "port {port}");
        }
    }

    #[test]
    fn drops_other_addresses_protocols_and_ethertypes() {
        let p = program();
        let mut other_host = TcpFrame::new(PEER, 80, Ipv4Addr::new(10, 77, 0, 3), 40000);
        assert_eq!(run(&p, &other_host.bytes()), 0);
        // Our own outgoing segment: source is us, destination the peer.
        other_host = TcpFrame::new(OURS, 40000, PEER, 40000);
        assert_eq!(run(&p, &other_host.bytes()), 0);
        assert_eq!(run(&p, &udp_frame(PEER, OURS, 40000)), 0);
        assert_eq!(run(&p, &arp_request(PEER, OURS)), 0);
        let mut ipv6 = to_us(40000).bytes();
        ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(run(&p, &ipv6), 0);
    }

    #[test]
    fn follows_the_ip_header_length() {
        // IHL 6 (4 bytes of options): the port moves 4 bytes further.
        let p = program();
        let frame = to_us(40123).with_ip_options(&[1, 1, 1, 0]).bytes();
        assert_eq!(run(&p, &frame), ACCEPT_ALL);
        let frame = to_us(123).with_ip_options(&[1, 1, 1, 0]).bytes();
        assert_eq!(run(&p, &frame), 0);
    }

    #[test]
    fn drops_non_first_fragments_keeps_first() {
        let p = program();
        let mut frame = to_us(40000).bytes();
        // More-fragments flag alone: a first fragment, still has the TCP header.
        frame[20] = 0x20;
        assert_eq!(run(&p, &frame), ACCEPT_ALL);
        frame[20] = 0x00;
        frame[21] = 0x10;
        assert_eq!(run(&p, &frame), 0);
    }

    #[test]
    fn drops_truncated_frames() {
        let p = program();
        let frame = to_us(40000).bytes();
        for len in [0, 13, 24, 33, 14 + 20 + 3] {
            assert_eq!(run(&p, &frame[..len]), 0, "length {len}");
        }
        assert_eq!(run(&p, &frame[..14 + 20 + 4]), ACCEPT_ALL);
    }

    fn ours_v6() -> Ipv6Addr {
        "fd00:77::2".parse().unwrap()
    }

    /// A TCP frame over IPv6 from `src` to `dst`, built by the wire layer.
    fn v6_frame(src: Ipv6Addr, dst: Ipv6Addr, dst_port: u16) -> Vec<u8> {
        use crate::wire::{
            EtherType, EthernetAddress, EthernetRepr, IpProtocol, Ipv6Repr, SeqNumber, TcpFlags,
            TcpOptions, TcpRepr, emit_tcp_frame, tcp_frame_len,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Ipv6,
        };
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: 0,
            hop_limit: 64,
        };
        let tcp = TcpRepr {
            src_port: 80,
            dst_port,
            seq_number: SeqNumber(1),
            ack_number: SeqNumber(2),
            flags: TcpFlags::ACK,
            window_len: 100,
            options: TcpOptions::default(),
            payload: b"data",
        };
        let mut frame = vec![0u8; tcp_frame_len(ip, &tcp)];
        emit_tcp_frame(&mut frame, &eth, ip, &tcp).unwrap();
        frame
    }

    #[test]
    fn ipv6_accepts_tcp_to_our_address_and_range() {
        let p = tcp_to(ours_v6().into(), 40000..=40999);
        let peer: Ipv6Addr = "fd00:77::1".parse().unwrap();
        for port in [40000, 40500, 40999] {
            assert_eq!(run(&p, &v6_frame(peer, ours_v6(), port)), ACCEPT_ALL);
        }
        for port in [80, 39999, 41000] {
            assert_eq!(run(&p, &v6_frame(peer, ours_v6(), port)), 0);
        }
        // another address differing in each of the four words
        for word in 0..4 {
            let mut other = ours_v6().octets();
            other[word * 4 + 3] ^= 1;
            assert_eq!(run(&p, &v6_frame(peer, other.into(), 40000)), 0);
        }
        // our own outgoing segment, and IPv4 frames, stay out
        assert_eq!(run(&p, &v6_frame(ours_v6(), peer, 40000)), 0);
        assert_eq!(run(&p, &to_us(40000).bytes()), 0);
    }

    #[test]
    fn ipv6_leaves_icmpv6_extension_headers_and_short_frames_to_the_kernel() {
        let p = tcp_to(ours_v6().into(), 40000..=40999);
        let peer: Ipv6Addr = "fd00:77::1".parse().unwrap();
        let frame = v6_frame(peer, ours_v6(), 40000);
        let mut icmp = frame.clone();
        icmp[20] = 58;
        assert_eq!(run(&p, &icmp), 0);
        let mut hop_by_hop = frame.clone();
        hop_by_hop[20] = 0;
        assert_eq!(run(&p, &hop_by_hop), 0);
        for len in [0, 13, 20, 53, 14 + 40 + 3] {
            assert_eq!(run(&p, &frame[..len]), 0, "length {len}");
        }
        assert_eq!(run(&p, &frame[..14 + 40 + 4]), ACCEPT_ALL);
    }
}
