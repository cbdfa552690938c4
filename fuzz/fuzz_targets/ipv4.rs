//! IPv4: parse any bytes; a header that parses must emit and parse back to the same repr.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpget::wire::{Ipv4Packet, Ipv4Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = (
        packet.payload(),
        packet.verify_checksum(),
        packet.fragment_offset(),
    );
    let _ = Ipv4Repr::parse(&packet, true);
    let Ok(repr) = Ipv4Repr::parse(&packet, false) else {
        return;
    };
    let mut bytes = vec![0u8; repr.buffer_len() + repr.payload_len];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]))
        .expect("the buffer holds the header");
    let again = Ipv4Packet::new_checked(&bytes[..]).expect("emitted lengths are consistent");
    assert_eq!(Ipv4Repr::parse(&again, true), Ok(repr));
});
