//! Ethernet II: parse any bytes; what parses must emit back to the same header bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpget::wire::{EthernetFrame, EthernetRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    let _ = frame.payload();
    let repr = EthernetRepr::parse(&frame).expect("a checked frame always parses");
    let mut header = [0u8; 14];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut header[..]))
        .expect("14 bytes hold a header");
    assert_eq!(&header[..], &data[..14]);
});
