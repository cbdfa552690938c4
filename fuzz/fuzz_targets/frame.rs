//! Whole frames: parse any bytes; a TCP frame that parses must emit, by `emit_tcp_frame`
//! and by a `FrameTemplate`, to identical bytes that parse back to the same segment.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::frame(data));
