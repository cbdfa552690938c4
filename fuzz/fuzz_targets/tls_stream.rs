//! The TCP stream → TLS records → plaintext path: whatever a server sends, in whatever
//! segment order, `TlsStream` never panics, hands plaintext out only in order, and ends
//! the same way as when the same bytes arrive whole and in order (the first byte chooses
//! the segment size; segments arrive in pairs swapped, one of every three twice).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpget::tls::{TlsSettings, TlsStream, TrustOptions};

/// What one run produced: plaintext, and the first error as text.
fn run(settings: &TlsSettings, stream: &[u8], segment: usize) -> (Vec<u8>, Option<String>) {
    let request = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
    let config = settings
        .client_config()
        .expect("a config without roots always builds");
    let mut tls = match TlsStream::new(config, "h.example", request, 1 << 16) {
        Ok(tls) => tls,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let mut segments: Vec<(u64, &[u8])> = stream
        .chunks(segment)
        .enumerate()
        .map(|(i, chunk)| ((i * segment) as u64, chunk))
        .collect();
    if segment < stream.len() {
        for pair in segments.chunks_mut(2) {
            pair.reverse();
        }
        let again: Vec<_> = segments.iter().step_by(3).copied().collect();
        segments.extend(again);
    }
    let mut plaintext = Vec::new();
    for (offset, bytes) in segments {
        if let Err(e) = tls.on_stream(offset, bytes) {
            return (plaintext, Some(e.to_string()));
        }
    }
    let result = tls.process(&mut |offset, bytes| {
        assert_eq!(offset, plaintext.len() as u64, "plaintext in order");
        plaintext.extend_from_slice(bytes);
    });
    tls.consume_output(tls.pending_output().len());
    (plaintext, result.err().map(|e| e.to_string()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let settings = TlsSettings::new(TrustOptions {
        no_check_certificate: true,
        ..TrustOptions::default()
    });
    let whole = run(&settings, stream, stream.len().max(1));
    let pieces = run(&settings, stream, usize::from(size).max(1));
    // The ClientHello's random differs between runs, so only stream-level outcomes are
    // comparable: a record that fails to parse fails the same way in both.
    assert_eq!(whole.0, pieces.0);
    assert_eq!(whole.1.is_some(), pieces.1.is_some());
});
