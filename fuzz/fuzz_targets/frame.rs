//! Whole frames: parse any bytes; a TCP frame (over IPv4 or IPv6) that parses must emit, by
//! `emit_tcp_frame` and by a `FrameTemplate`, to identical bytes that parse back to the same
//! segment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpget::wire::frame::parse_arp_frame;
use xdpget::wire::{FrameTemplate, IpRepr, emit_tcp_frame, parse_tcp_frame, tcp_frame_len};

fuzz_target!(|data: &[u8]| {
    let _ = parse_arp_frame(data);
    let _ = parse_tcp_frame(data, true);
    let Ok((eth, ip, tcp)) = parse_tcp_frame(data, false) else {
        return;
    };
    let ident = match ip {
        IpRepr::Ipv4(v4) => v4.ident,
        IpRepr::Ipv6(_) => 0,
    };
    let len = tcp_frame_len(ip, &tcp);
    let mut full = vec![0u8; len];
    assert_eq!(emit_tcp_frame(&mut full, &eth, ip, &tcp), Ok(len));
    let template = FrameTemplate::new(&eth, ip, tcp.src_port, tcp.dst_port);
    let mut fast = vec![0u8; len];
    assert_eq!(template.emit(&mut fast, ident, &tcp), Ok(len));
    assert_eq!(full, fast);
    let (_, ip2, tcp2) = parse_tcp_frame(&full, true).expect("emitted frames parse");
    assert_eq!(
        (ip2.src_addr(), ip2.dst_addr()),
        (ip.src_addr(), ip.dst_addr())
    );
    assert_eq!(
        (tcp2.seq_number, tcp2.ack_number, tcp2.flags),
        (tcp.seq_number, tcp.ack_number, tcp.flags)
    );
    assert_eq!(tcp2.payload, tcp.payload);
});
