//! IPv6: parse any bytes (extension headers walked); a header that parses must emit (without
//! extension headers) and parse back to the same repr.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::ipv6(data));
