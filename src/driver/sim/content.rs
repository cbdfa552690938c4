//! Deterministic file contents for simulated servers: any byte range of a resource can be
//! generated on its own, so a multi-gigabyte body needs no memory and the receiver's copy
//! can be checked against a regenerated one.

use sha2::{Digest, Sha256};

/// SplitMix64 (Steele, Lea, Flood 2014): a cheap, well-mixed function of a counter.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes bytes `[offset, offset + out.len())` of resource `seed` into `out`.
pub fn fill(seed: u64, offset: u64, out: &mut [u8]) {
    let mut position = offset;
    let mut rest = out;
    while !rest.is_empty() {
        let word = splitmix64(seed ^ (position / 8).wrapping_mul(0xA24B_AED4_963E_E407));
        let bytes = word.to_le_bytes();
        let skip = (position % 8) as usize;
        let take = (8 - skip).min(rest.len());
        rest[..take].copy_from_slice(&bytes[skip..skip + take]);
        rest = &mut rest[take..];
        position += take as u64;
    }
}

/// The SHA-256 of the first `len` bytes of resource `seed`.
pub fn sha256(seed: u64, len: u64) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(buffer.len() as u64) as usize;
        fill(seed, offset, &mut buffer[..n]);
        hasher.update(&buffer[..n]);
        offset += n as u64;
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_range_equals_the_same_range_of_the_whole() {
        let mut whole = vec![0u8; 1000];
        fill(7, 0, &mut whole);
        for (start, end) in [(0, 1), (3, 17), (8, 16), (999, 1000), (5, 995)] {
            let mut part = vec![0u8; end - start];
            fill(7, start as u64, &mut part);
            assert_eq!(part, whole[start..end], "range {start}..{end}");
        }
        let mut other = vec![0u8; 1000];
        fill(8, 0, &mut other);
        assert_ne!(whole, other, "seeds give different contents");
        assert!(whole.windows(8).any(|w| w != [0u8; 8]));
    }

    #[test]
    fn hash_covers_exactly_len_bytes() {
        let mut data = vec![0u8; 3 << 20];
        fill(1, 0, &mut data);
        assert_eq!(
            sha256(1, data.len() as u64),
            <[u8; 32]>::from(Sha256::digest(&data))
        );
        assert_ne!(sha256(1, 10), sha256(1, 11));
    }
}
