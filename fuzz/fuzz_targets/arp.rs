//! ARP: parse any bytes; a request or reply that parses must emit back to its own bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpget::wire::frame::parse_arp_frame;
use xdpget::wire::{ArpPacket, ArpRepr};

fuzz_target!(|data: &[u8]| {
    let _ = parse_arp_frame(data);
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    let mut bytes = [0u8; 28];
    repr.emit(&mut ArpPacket::new_unchecked(&mut bytes[..]))
        .expect("28 bytes hold an ARP packet");
    assert_eq!(&bytes[..], &data[..28]);
});
