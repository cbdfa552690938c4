//! HTTP response heads: parsing never panics, and a head that parses says how long it is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpget::http::parse_head;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(head)) = parse_head(data) {
        assert!(head.head_len <= data.len());
        let _ = head.content_range();
    }
});
