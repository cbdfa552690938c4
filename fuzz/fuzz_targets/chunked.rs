//! Chunked bodies: decoding never panics, and feeding the input in two pieces gives the
//! same body as feeding it whole (the first byte chooses the split point).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpget::http::ChunkedDecoder;

fn decode(pieces: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut decoder = ChunkedDecoder::new();
    let mut body = Vec::new();
    for piece in pieces {
        let used = decoder
            .decode(piece, &mut |bytes| body.extend_from_slice(bytes))
            .map_err(|e| e.to_string())?;
        if used < piece.len() {
            break;
        }
    }
    Ok(body)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(input.len());
    let whole = decode(&[input]);
    let halves = decode(&[&input[..split], &input[split..]]);
    if let (Ok(a), Ok(b)) = (&whole, &halves) {
        assert_eq!(a, b);
    }
    assert_eq!(whole.is_ok(), halves.is_ok());
});
