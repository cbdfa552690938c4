//! The TPACKET_V3 receive ring: blocks of frames shared with the kernel through mmap.
//!
//! Follows: Documentation/networking/packet_mmap.rst ("TPACKET_V3"), linux/if_packet.h.
//!
//! The ring is `block_count` blocks of `block_size` bytes. The kernel fills a block with
//! frames packed back to back, then hands it over by setting `TP_STATUS_USER` in the block
//! descriptor: when the block is full, or when `retire_timeout_ms` passes after its first
//! frame. We read its frames in place and hand the whole block back by writing
//! `TP_STATUS_KERNEL`. Blocks are used strictly in order, so one index is the whole state.
//!
//! Ownership of a block passes with its status word: an acquire load that sees
//! `TP_STATUS_USER` makes the kernel's writes to the block visible, a release store of
//! `TP_STATUS_KERNEL` publishes that we are done reading it.

#![allow(unsafe_code)]

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::socket::PacketSocket;

// Offsets inside `struct tpacket_block_desc` (version, offset_to_priv, then tpacket_hdr_v1).
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_OFFSET_TO_FIRST_PKT: usize = 16;

// Offsets inside `struct tpacket3_hdr`.
const FRAME_NEXT_OFFSET: usize = 0;
const FRAME_SNAPLEN: usize = 12;
const FRAME_LEN: usize = 16;
const FRAME_MAC: usize = 24;
/// `struct sockaddr_ll` follows the header at TPACKET_ALIGN(sizeof(struct tpacket3_hdr)).
const FRAME_SOCKADDR_LL: usize = 48;
/// `sll_pkttype` inside `struct sockaddr_ll`.
const SOCKADDR_LL_PKTTYPE: usize = 10;

/// One received frame as the ring describes it.
pub(super) struct RxFrame<'ring> {
    /// The frame from its Ethernet header on, as captured (`tp_snaplen` bytes).
    pub data: &'ring [u8],
    /// The frame's length on the wire (`tp_len`); more than `data.len()` if truncated.
    pub wire_len: usize,
    /// `sll_pkttype == PACKET_OUTGOING`: a frame this host sent, looped back to us.
    pub outgoing: bool,
}

/// A mapped TPACKET_V3 receive ring.
#[derive(Debug)]
pub(super) struct RxRing {
    map: NonNull<u8>,
    block_size: usize,
    block_count: usize,
    /// The block to read next, in ring order.
    block: usize,
    /// Frames of `block` not handed out yet, and where the next one starts; None while
    /// `block` still belongs to the kernel.
    cursor: Option<(u32, usize)>,
}

// SAFETY: the mapping is owned by this value alone (no aliases outside it), and the kernel
// side of the protocol does not care which thread reads or releases a block.
unsafe impl Send for RxRing {}

/// Ring geometry, checked against the kernel's rules (packet_mmap.rst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RingGeometry {
    pub block_size: usize,
    pub block_count: usize,
    pub frame_size: usize,
    pub retire_timeout_ms: u32,
}

impl RingGeometry {
    /// The request for PACKET_RX_RING, or why the geometry is not one the kernel takes.
    pub(super) fn request(&self) -> Result<libc::tpacket_req3, String> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        if self.block_size == 0
            || !self.block_size.is_multiple_of(page)
            || !self.block_size.is_power_of_two()
        {
            return Err(format!(
                "ring block size {} must be a power of two and a multiple of the page size {page}",
                self.block_size
            ));
        }
        if self.frame_size < 128
            || !self.frame_size.is_multiple_of(libc::TPACKET_ALIGNMENT)
            || self.frame_size > self.block_size
        {
            return Err(format!(
                "ring frame size {} must be a multiple of 16 between 128 and the block size",
                self.frame_size
            ));
        }
        if self.block_count == 0 {
            return Err("the ring needs at least one block".to_owned());
        }
        let frames_per_block = self.block_size / self.frame_size;
        let too_big = || "the ring is too large".to_owned();
        let frame_count = frames_per_block
            .checked_mul(self.block_count)
            .ok_or_else(too_big)?;
        self.block_size
            .checked_mul(self.block_count)
            .ok_or_else(too_big)?;
        let field = |value: usize| u32::try_from(value).map_err(|_| too_big());
        Ok(libc::tpacket_req3 {
            tp_block_size: field(self.block_size)?,
            tp_block_nr: field(self.block_count)?,
            tp_frame_size: field(self.frame_size)?,
            tp_frame_nr: field(frame_count)?,
            tp_retire_blk_tov: self.retire_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        })
    }
}

impl RxRing {
    /// Maps the ring that PACKET_RX_RING set up on `socket` with `geometry`.
    pub(super) fn map(socket: &PacketSocket, geometry: &RingGeometry) -> io::Result<RxRing> {
        use std::os::fd::AsRawFd;
        let len = geometry.block_size * geometry.block_count;
        // SAFETY: a fresh shared mapping of the socket's ring, at an address the kernel
        // chooses; `len` is exactly the ring's size (checked by RingGeometry::request).
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                socket.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = NonNull::new(map.cast::<u8>())
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
        Ok(RxRing {
            map,
            block_size: geometry.block_size,
            block_count: geometry.block_count,
            block: 0,
            cursor: None,
        })
    }

    /// The address `offset` bytes into the current block (plain arithmetic, no access).
    fn at(&self, offset: usize) -> *mut u8 {
        self.map
            .as_ptr()
            .wrapping_add(self.block * self.block_size + offset)
    }

    fn block_status(&self) -> &AtomicU32 {
        // SAFETY: the status word is a 4-aligned u32 inside the mapping (blocks are
        // page-aligned, the field is at offset 8), which lives as long as `self`; the
        // kernel accesses it concurrently, which is what the atomic type is for.
        unsafe { AtomicU32::from_ptr(self.at(BLOCK_STATUS).cast::<u32>()) }
    }

    fn read_u32(&self, offset: usize) -> u32 {
        debug_assert!(offset + 4 <= self.block_size);
        // SAFETY: callers pass offsets inside the current block, which belongs to us (its
        // status was seen as TP_STATUS_USER with acquire ordering, so the kernel no longer
        // writes it); read_unaligned makes no alignment assumption.
        unsafe { self.at(offset).cast::<u32>().read_unaligned() }
    }

    fn read_u16(&self, offset: usize) -> u16 {
        debug_assert!(offset + 2 <= self.block_size);
        // SAFETY: as in read_u32.
        unsafe { self.at(offset).cast::<u16>().read_unaligned() }
    }

    fn read_u8(&self, offset: usize) -> u8 {
        debug_assert!(offset < self.block_size);
        // SAFETY: as in read_u32.
        unsafe { self.at(offset).read() }
    }

    /// Whether the block to read next is ours, without consuming anything.
    pub(super) fn has_frames(&self) -> bool {
        self.cursor.is_some()
            || self.block_status().load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// Hands frames to `f` until it returns false or the ring has no more ready blocks.
    /// A block goes back to the kernel as soon as its last frame has been handed out.
    pub(super) fn for_each<F: FnMut(RxFrame<'_>) -> bool>(&mut self, mut f: F) {
        loop {
            let (remaining, offset) = match self.cursor {
                Some(cursor) => cursor,
                None => {
                    if self.block_status().load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                        return;
                    }
                    let count = self.read_u32(BLOCK_NUM_PKTS);
                    let first = self.read_u32(BLOCK_OFFSET_TO_FIRST_PKT) as usize;
                    (count, first)
                }
            };
            if remaining == 0 || offset + FRAME_SOCKADDR_LL + 12 > self.block_size {
                self.release_block();
                continue;
            }
            let next_offset = self.read_u32(offset + FRAME_NEXT_OFFSET) as usize;
            let snaplen = self.read_u32(offset + FRAME_SNAPLEN) as usize;
            let wire_len = self.read_u32(offset + FRAME_LEN) as usize;
            let mac = usize::from(self.read_u16(offset + FRAME_MAC));
            let outgoing = self.read_u8(offset + FRAME_SOCKADDR_LL + SOCKADDR_LL_PKTTYPE)
                == libc::PACKET_OUTGOING;
            self.cursor = match remaining - 1 {
                0 => None,
                // The kernel's own offsets: a next offset of 0 on a frame that is not the
                // last would loop forever, so it ends the block instead.
                left if next_offset > 0 => Some((left, offset + next_offset)),
                _ => None,
            };
            let data_start = offset + mac;
            let inside_block = data_start
                .checked_add(snaplen)
                .is_some_and(|end| end <= self.block_size);
            let (data, wire_len): (&[u8], usize) = if inside_block {
                // SAFETY: [data_start, data_start + snaplen) lies inside the current block
                // (checked just above), which is ours until release_block; the slice is
                // dropped when `f` returns, before any release.
                let data = unsafe { std::slice::from_raw_parts(self.at(data_start), snaplen) };
                (data, wire_len)
            } else {
                // Offsets that point outside the block: hand out nothing, which reads as a
                // truncated frame and is counted as dropped.
                (&[], wire_len.max(1))
            };
            let keep_going = f(RxFrame {
                data,
                wire_len,
                outgoing,
            });
            if self.cursor.is_none() {
                self.release_block();
            }
            if !keep_going {
                return;
            }
        }
    }

    /// Gives the current block back to the kernel and moves to the next one.
    fn release_block(&mut self) {
        self.block_status()
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.cursor = None;
        self.block = (self.block + 1) % self.block_count;
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no slice into it survives
        // (they borrow `self`).
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.block_size * self.block_count);
        }
    }
}
