//! IPv6: parse any bytes (extension headers walked); a header that parses must emit (without
//! extension headers) and parse back to the same repr.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpget::wire::{Ipv6Packet, Ipv6Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Ipv6Packet::new_checked(data) else {
        return;
    };
    let _ = (packet.payload(), packet.flow_label(), packet.traffic_class());
    let Ok((repr, upper)) = Ipv6Repr::parse_upper(&packet) else {
        return;
    };
    assert_eq!(upper.len(), repr.payload_len);
    let mut bytes = vec![0u8; repr.buffer_len() + repr.payload_len];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut bytes[..]))
        .expect("the buffer holds the header");
    let again = Ipv6Packet::new_checked(&bytes[..]).expect("emitted lengths are consistent");
    assert_eq!(Ipv6Repr::parse(&again), Ok(repr));
});
