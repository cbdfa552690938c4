//! Chunked bodies: decoding never panics, and feeding the input in two pieces gives the
//! same body as feeding it whole (the first byte chooses the split point).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::chunked(data));
