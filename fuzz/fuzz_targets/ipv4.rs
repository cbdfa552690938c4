//! IPv4: parse any bytes; a header that parses must emit and parse back to the same repr.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::ipv4(data));
