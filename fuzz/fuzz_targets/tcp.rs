//! TCP: the first 8 bytes are the pseudo-header addresses, the rest a segment. A segment
//! that parses must emit and parse back to the same repr, up to what emit leaves out
//! (SACK-permitted always, MSS and window scale without SYN).
#![no_main]

use core::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use xdpget::wire::{TcpOptions, TcpPacket, TcpRepr};

fuzz_target!(|data: &[u8]| {
    let Some((addresses, segment)) = data.split_at_checked(8) else {
        return;
    };
    let src = Ipv4Addr::new(addresses[0], addresses[1], addresses[2], addresses[3]);
    let dst = Ipv4Addr::new(addresses[4], addresses[5], addresses[6], addresses[7]);
    let _ = TcpOptions::parse(segment);
    let Ok(packet) = TcpPacket::new_checked(segment) else {
        return;
    };
    let _ = (
        packet.options(),
        packet.payload(),
        packet.verify_checksum(src, dst),
    );
    let _ = TcpRepr::parse(&packet, src, dst, true);
    let Ok(repr) = TcpRepr::parse(&packet, src, dst, false) else {
        return;
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    let len = repr
        .emit(&mut TcpPacket::new_unchecked(&mut bytes[..]), src, dst)
        .expect("the buffer holds the segment");
    assert_eq!(len, bytes.len());
    let again = TcpPacket::new_checked(&bytes[..]).expect("emitted header length fits");
    let reparsed = TcpRepr::parse(&again, src, dst, true).expect("emitted segments parse");
    let syn = repr.flags.syn();
    let options = TcpOptions {
        mss: repr.options.mss.filter(|_| syn),
        window_scale: repr.options.window_scale.filter(|_| syn),
        sack_permitted: repr.options.sack_permitted && syn,
        timestamps: repr.options.timestamps,
        sack_blocks: if syn {
            Default::default()
        } else {
            repr.options.sack_blocks
        },
    };
    assert_eq!(reparsed, TcpRepr { options, ..repr });
});
