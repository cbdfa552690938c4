//! The chunked transfer coding, decoded incrementally from arbitrary splits of the stream.
//!
//! Follows RFC 9112 §7.1:
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! trailer-section = *( field-line CRLF )
//! ```
//!
//! Chunk extensions are skipped (§7.1.1: a recipient ignores unrecognised ones), trailer
//! fields are read and discarded (§7.1.2 lets a recipient discard them). Line ends must be
//! CRLF: a bare LF is refused, since leniency in chunk framing is how messages get smuggled.
//! Chunk data is handed out as slices of the input: nothing is copied.

use super::error::HttpError;

/// The longest chunk extension (per chunk) and trailer section (in all) accepted.
pub const MAX_CHUNK_METADATA: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk size.
    SizeStart,
    /// Reading hex digits of a chunk size.
    Size { size: u64 },
    /// After the size, in BWS before `;` or the CR.
    SizeSpace { size: u64 },
    /// Skipping a chunk extension up to the CR.
    Extension { size: u64, skipped: usize },
    /// Expecting the LF of the chunk size line.
    SizeLf { size: u64 },
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line, or of the final CRLF.
    TrailerLineStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// Expecting the LF of a trailer field line.
    TrailerLf,
    /// Expecting the LF of the final CRLF.
    FinalLf,
    /// The chunked body is over.
    Done,
}

/// An incremental chunked-body decoder.
///
/// Feed it the bytes after the response head, in order, split anywhere, with
/// [`ChunkedDecoder::decode`]; chunk data comes out as slices of what was fed in.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// Decoded body bytes handed out so far.
    body_len: u64,
    /// Trailer bytes seen so far.
    trailer_len: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::SizeStart,
            body_len: 0,
            trailer_len: 0,
        }
    }

    /// True once the last chunk, the trailer section and the final CRLF are in.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decoded body bytes so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Decodes `input`, the next bytes of the chunked body, handing chunk data to `out` in
    /// order as sub-slices of `input`. Returns how many bytes of `input` belong to the body:
    /// all of them, unless the body ends inside `input` (what follows is not ours).
    ///
    /// After an error the body is unusable; the decoder must not be fed again.
    pub fn decode<'a>(
        &mut self,
        input: &'a [u8],
        out: &mut impl FnMut(&'a [u8]),
    ) -> Result<usize, HttpError> {
        let mut at = 0;
        while at < input.len() {
            if let State::Data { remaining } = self.state {
                let available = input.len() - at;
                let take = usize::try_from(remaining).map_or(available, |r| r.min(available));
                if take > 0 {
                    out(&input[at..at + take]);
                }
                at += take;
                self.body_len += take as u64;
                let remaining = remaining - take as u64;
                self.state = if remaining == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining }
                };
                continue;
            }
            if self.state == State::Done {
                break;
            }
            self.state = self.step(input[at])?;
            at += 1;
        }
        Ok(at)
    }

    /// One byte of framing (everything but chunk data).
    fn step(&mut self, byte: u8) -> Result<State, HttpError> {
        use State::*;
        Ok(match self.state {
            SizeStart => match hex_value(byte) {
                Some(digit) => Size {
                    size: u64::from(digit),
                },
                None => return Err(HttpError::InvalidChunkSize),
            },
            Size { size } => match (hex_value(byte), byte) {
                (Some(digit), _) => {
                    if size > u64::MAX >> 4 {
                        return Err(HttpError::ChunkSizeOverflow);
                    }
                    Size {
                        size: size << 4 | u64::from(digit),
                    }
                }
                (None, b' ' | b'\t') => SizeSpace { size },
                (None, b';') => Extension { size, skipped: 0 },
                (None, b'\r') => SizeLf { size },
                (None, b'\n') => return Err(HttpError::MissingChunkCrlf),
                _ => return Err(HttpError::InvalidChunkSize),
            },
            SizeSpace { size } => match byte {
                b' ' | b'\t' => SizeSpace { size },
                b';' => Extension { size, skipped: 0 },
                b'\r' => SizeLf { size },
                b'\n' => return Err(HttpError::MissingChunkCrlf),
                _ => return Err(HttpError::InvalidChunkSize),
            },
            Extension { size, skipped } => match byte {
                b'\r' => SizeLf { size },
                b'\n' => return Err(HttpError::MissingChunkCrlf),
                _ if skipped >= MAX_CHUNK_METADATA => {
                    return Err(HttpError::ChunkMetadataTooLong {
                        limit: MAX_CHUNK_METADATA,
                    });
                }
                _ => Extension {
                    size,
                    skipped: skipped + 1,
                },
            },
            SizeLf { size } => match byte {
                b'\n' if size == 0 => TrailerLineStart,
                b'\n' => Data { remaining: size },
                _ => return Err(HttpError::MissingChunkCrlf),
            },
            DataCr => match byte {
                b'\r' => DataLf,
                _ => return Err(HttpError::MissingChunkCrlf),
            },
            DataLf => match byte {
                b'\n' => SizeStart,
                _ => return Err(HttpError::MissingChunkCrlf),
            },
            TrailerLineStart => match byte {
                b'\r' => FinalLf,
                b'\n' => return Err(HttpError::MissingChunkCrlf),
                _ => self.count_trailer_byte()?,
            },
            TrailerLine => match byte {
                b'\r' => TrailerLf,
                b'\n' => return Err(HttpError::MissingChunkCrlf),
                _ => self.count_trailer_byte()?,
            },
            TrailerLf => match byte {
                b'\n' => TrailerLineStart,
                _ => return Err(HttpError::MissingChunkCrlf),
            },
            FinalLf => match byte {
                b'\n' => Done,
                _ => return Err(HttpError::MissingChunkCrlf),
            },
            // `decode` handles these before calling `step`.
            Data { .. } | Done => self.state,
        })
    }

    fn count_trailer_byte(&mut self) -> Result<State, HttpError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_CHUNK_METADATA {
            return Err(HttpError::ChunkMetadataTooLong {
                limit: MAX_CHUNK_METADATA,
            });
        }
        Ok(State::TrailerLine)
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `pieces` one after the other; returns the body, the bytes consumed, and
    /// whether the decoder finished.
    fn decode_pieces(pieces: &[&[u8]]) -> Result<(Vec<u8>, usize, bool), HttpError> {
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut consumed = 0;
        for piece in pieces {
            consumed += decoder.decode(piece, &mut |data| body.extend_from_slice(data))?;
        }
        assert_eq!(decoder.body_len(), body.len() as u64);
        Ok((body, consumed, decoder.is_done()))
    }

    const WIKIPEDIA: &[u8] = b"4\r\nWiki\r\n7\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\n\r\n";

    #[test]
    fn rfc_example() {
        let (body, consumed, done) = decode_pieces(&[WIKIPEDIA]).unwrap();
        assert_eq!(body, b"Wikipedia in \r\nchunks.");
        assert_eq!(consumed, WIKIPEDIA.len());
        assert!(done);
    }

    #[test]
    fn extensions_and_trailers_are_skipped() {
        let wire = b"5 ; name=\"va;l\" ;x\r\nhello\r\n000\r\nExpires: never\r\nX-Sum: 1\r\n\r\n";
        let (body, consumed, done) = decode_pieces(&[wire]).unwrap();
        assert_eq!(
            (body.as_slice(), consumed, done),
            (&b"hello"[..], wire.len(), true)
        );
    }

    #[test]
    fn bytes_after_the_body_are_not_consumed() {
        let wire = b"1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK";
        let (body, consumed, done) = decode_pieces(&[wire]).unwrap();
        assert_eq!(
            (body.as_slice(), consumed, done),
            (&b"a"[..], wire.len() - 15, true)
        );
    }

    #[test]
    fn data_is_not_copied() {
        let wire = b"3\r\nabc\r\n0\r\n\r\n";
        let mut decoder = ChunkedDecoder::new();
        let mut pointers = Vec::new();
        decoder
            .decode(wire, &mut |data| pointers.push(data.as_ptr()))
            .unwrap();
        assert_eq!(pointers, vec![wire[3..].as_ptr()]);
    }

    #[test]
    fn unfinished_bodies_are_not_done() {
        for cut in 0..WIKIPEDIA.len() {
            let (_, consumed, done) = decode_pieces(&[&WIKIPEDIA[..cut]]).unwrap();
            assert_eq!(consumed, cut);
            assert!(!done, "cut at {cut}");
        }
    }

    #[test]
    fn bad_sizes() {
        for wire in [
            &b"\r\n"[..],
            b"g\r\n",
            b"-1\r\n",
            b"0x10\r\n",
            b" 5\r\n",
            b"5 5\r\n",
            b"+5\r\n",
        ] {
            assert_eq!(
                decode_pieces(&[wire]),
                Err(HttpError::InvalidChunkSize),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn size_overflow() {
        // 16 hex digits fit in 64 bits, the 17th significant one does not.
        let (_, _, _) = decode_pieces(&[b"ffffffffffffffff\r\nab"]).unwrap();
        assert_eq!(
            decode_pieces(&[b"10000000000000000\r\n"]),
            Err(HttpError::ChunkSizeOverflow)
        );
        // Leading zeros are not an overflow.
        let (body, _, _) = decode_pieces(&[b"00000000000000000000001\r\nz"]).unwrap();
        assert_eq!(body, b"z");
    }

    #[test]
    fn missing_crlfs() {
        for wire in [
            &b"1\na\r\n"[..],
            b"1\r\nab",
            b"1\r\na\rX",
            b"1;ext\n",
            b"0\r\n\n",
            b"0\r\nX: y\n",
            b"0\r\n\rX",
            b"0\r\nX: y\rZ",
        ] {
            assert_eq!(
                decode_pieces(&[wire]),
                Err(HttpError::MissingChunkCrlf),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn metadata_limits() {
        let mut long_ext = b"1;".to_vec();
        long_ext.resize(2 + MAX_CHUNK_METADATA + 1, b'x');
        assert!(matches!(
            decode_pieces(&[&long_ext]),
            Err(HttpError::ChunkMetadataTooLong { .. })
        ));
        let mut long_trailer = b"0\r\nX: ".to_vec();
        long_trailer.resize(3 + MAX_CHUNK_METADATA + 1, b'y');
        assert!(matches!(
            decode_pieces(&[&long_trailer]),
            Err(HttpError::ChunkMetadataTooLong { .. })
        ));
    }

    #[test]
    fn every_single_split_equals_unsplit() {
        let wire = b"a;e=1\r\n0123456789\r\n1\r\n!\r\n0\r\nT: v\r\n\r\n";
        let whole = decode_pieces(&[wire]).unwrap();
        for split in 0..=wire.len() {
            let (a, b) = wire.split_at(split);
            assert_eq!(decode_pieces(&[a, b]).unwrap(), whole, "split at {split}");
        }
    }

    /// Encodes `chunks` (non-empty ones) with random-ish extensions and trailers.
    fn encode(chunks: &[Vec<u8>], with_metadata: bool) -> Vec<u8> {
        let mut wire = Vec::new();
        for (i, chunk) in chunks.iter().filter(|c| !c.is_empty()).enumerate() {
            if with_metadata && i % 2 == 1 {
                wire.extend_from_slice(format!("{:X} ;i={i}\r\n", chunk.len()).as_bytes());
            } else {
                wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            }
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n");
        if with_metadata {
            wire.extend_from_slice(b"Checksum: abc\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        wire
    }

    proptest! {
        #[test]
        fn split_at_every_boundary_equals_unsplit(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6),
            with_metadata in any::<bool>(),
        ) {
            let wire = encode(&chunks, with_metadata);
            let body: Vec<u8> = chunks.concat();
            let whole = decode_pieces(&[&wire]).unwrap();
            prop_assert_eq!(&whole, &(body, wire.len(), true));
            for split in 0..=wire.len() {
                let (a, b) = wire.split_at(split);
                prop_assert_eq!(&decode_pieces(&[a, b]).unwrap(), &whole);
            }
        }

        #[test]
        fn random_multi_splits_equal_unsplit(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let wire = encode(&chunks, true);
            let mut cut_points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
            cut_points.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for cut in cut_points {
                pieces.push(&wire[start..cut]);
                start = cut;
            }
            pieces.push(&wire[start..]);
            prop_assert_eq!(decode_pieces(&pieces).unwrap(), (chunks.concat(), wire.len(), true));
        }

        #[test]
        fn arbitrary_input_never_panics(input in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut decoder = ChunkedDecoder::new();
            let mut seen = 0u64;
            if let Ok(consumed) = decoder.decode(&input, &mut |d| seen += d.len() as u64) {
                prop_assert!(consumed <= input.len());
            }
            prop_assert_eq!(seen, decoder.body_len());
        }
    }
}
