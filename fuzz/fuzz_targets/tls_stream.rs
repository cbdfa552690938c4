//! The TCP stream → TLS records → plaintext path: whatever a server sends, in whatever
//! segment order, `TlsStream` never panics, hands plaintext out only in order, and ends
//! the same way as when the same bytes arrive whole and in order (the first byte chooses
//! the segment size; segments arrive in pairs swapped, one of every three twice).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::tls_stream(data));
