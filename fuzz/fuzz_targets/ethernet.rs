//! Ethernet II: parse any bytes; what parses must emit back to the same header bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::ethernet(data));
