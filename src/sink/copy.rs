//! The busy-poll thread's copy into a staging buffer, with stores that bypass the cache.
//!
//! A staging buffer is written once by the busy-poll thread and then read only by the disk
//! (`O_DIRECT`: the device reads the memory itself) or by the kernel's copy into the page
//! cache on the writer thread, never by this thread again. Ordinary stores first fetch every
//! destination line into the cache (a read for ownership), which for a buffer last touched a
//! 16 MiB round ago is a miss to memory per 64 bytes, and then push the lines the busy-poll
//! thread does need (the frames, the rings, TCP state, and on veth the server's kernel that
//! runs on our core) out of the cache. Non-temporal stores (`movntdq`) write whole lines
//! to memory through the write-combining buffers instead: no read, no eviction.
//!
//! Measured on the test machine (a C loop copying 64 segments of 1448 bytes from 64 frames
//! that are in the cache into a 16 MiB ring of buffers, 11,000 batches, one every 200 µs, as
//! the engine does; docs/sink.md): a batch took 7.8 µs at p50 and 11.3 µs at p99 with
//! `memcpy`, 3.1 µs and 5.7 µs with these stores. From frames that are not in the cache both
//! take 11–13 µs (the reads dominate).
//!
//! Non-temporal stores are weakly ordered: [`publish`] (`sfence`) must run before another
//! thread (or the kernel on its behalf) may read what was stored. The stager calls it before
//! every hand-off of a buffer.
//!
//! Elsewhere than x86-64 both functions are the plain copy and nothing.

#![allow(unsafe_code)]

/// Bytes per round of the streaming loop: one cache line, four 16-byte stores.
#[cfg(target_arch = "x86_64")]
const LINE: usize = 64;

/// Copies `src` into `dst` (the same length) with non-temporal stores for every whole cache
/// line of `dst`, ordinary stores for the partial lines at both ends (a partial line written
/// around the cache would cost the memory a read-modify-write; these two stay cached and
/// the neighbouring segment's copy completes them).
///
/// # Panics
/// If the lengths differ, as [`slice::copy_from_slice`].
pub(super) fn copy_streaming(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy_streaming: lengths differ");
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        const LANE: usize = 16;
        let head = dst.as_ptr().align_offset(LINE).min(dst.len());
        let (dst_head, dst_rest) = dst.split_at_mut(head);
        let (src_head, src_rest) = src.split_at(head);
        dst_head.copy_from_slice(src_head);
        let body = dst_rest.len() / LINE * LINE;
        let (dst_body, dst_tail) = dst_rest.split_at_mut(body);
        let (src_body, src_tail) = src_rest.split_at(body);
        for (to, from) in dst_body
            .chunks_exact_mut(LINE)
            .zip(src_body.chunks_exact(LINE))
        {
            for lane in 0..LINE / LANE {
                let at = lane * LANE;
                // SAFETY: `from[at..at + 16]` is in bounds (`from` is LINE bytes); the
                // unaligned load reads exactly those 16 bytes and needs no alignment.
                let value = unsafe { _mm_loadu_si128(from[at..].as_ptr().cast::<__m128i>()) };
                // SAFETY: `to[at..at + 16]` is in bounds and writable (`to` is LINE bytes of
                // a `&mut` slice); it is 16-byte aligned because `dst_rest` starts on a
                // 64-byte boundary and `at` and every chunk's offset are multiples of 16.
                // SSE2, which `movntdq` needs, is part of every x86-64 CPU.
                unsafe { _mm_stream_si128(to[at..].as_mut_ptr().cast::<__m128i>(), value) };
            }
        }
        dst_tail.copy_from_slice(src_tail);
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

/// Makes every earlier [`copy_streaming`] of this thread visible to other threads and to
/// devices before anything this thread does next (an `sfence`; the channel's release alone
/// does not order non-temporal stores).
pub(super) fn publish() {
    // SAFETY: `sfence` only orders stores; SSE, which it needs, is part of every x86-64 CPU.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::x86_64::_mm_sfence();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every alignment of the destination and every length around the 16- and 64-byte
    /// boundaries: the bytes copied are the source's, the bytes around them untouched.
    #[test]
    fn streaming_copy_is_a_copy_at_any_alignment_and_length() {
        let src: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8 + 1).collect();
        let mut dst = vec![0u8; 800];
        for offset in 0..48 {
            for len in (0..200).chain([447, 448, 449, 511, 512, 513, 575]) {
                dst.fill(0);
                let from = &src[offset % 5..offset % 5 + len];
                copy_streaming(&mut dst[offset..offset + len], from);
                publish();
                assert_eq!(
                    &dst[offset..offset + len],
                    from,
                    "offset {offset} len {len}"
                );
                assert!(
                    dst[..offset].iter().all(|&b| b == 0),
                    "before {offset} {len}"
                );
                assert!(
                    dst[offset + len..].iter().all(|&b| b == 0),
                    "after {offset} {len}"
                );
            }
        }
    }
}
