//! ARP: parse any bytes; a request or reply that parses must emit back to its own bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::arp(data));
