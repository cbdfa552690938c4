//! After the handshake: a rustls server's records, scripted by the input (data, KeyUpdate,
//! an altered byte, close_notify) and cut into pieces out of order, opened by our record
//! layer; the plaintext is always a prefix of what the server wrote (fuzz/checks.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::tls_records(data));
