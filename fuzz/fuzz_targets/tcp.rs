//! TCP: the first 8 bytes are the pseudo-header addresses, the rest a segment. A segment
//! that parses must emit and parse back to the same repr, up to what emit leaves out
//! (SACK-permitted always, MSS and window scale without SYN).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::tcp(data));
