//! HTTP response heads: parsing never panics, and a head that parses says how long it is.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::http_head(data));
