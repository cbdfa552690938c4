//! HTTP request heads (the server side): parsing never panics, a head that parses says how
//! long it is, and the stream reader gives the same heads whatever order the bytes come in.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::http_request(data));
