//! Batched transmit: frames are written into buffers of our own, then leave in one
//! sendmmsg(2) per batch.
//!
//! Why sendmmsg and not a TPACKET tx ring: the engine writes each frame into a plain
//! `&mut [u8]` that only we can see, with no status word shared with the kernel, so a frame
//! is never half-visible; the kernel's verdict on every frame comes back from the very call
//! that sends the batch (a tx ring reports malformed frames later, in the ring); and the
//! socket keeps TPACKET_V3 for its rx ring, whose tx side has extra constraints. The price
//! is one copy per frame into the socket buffer, which the fallback driver can afford:
//! it is still one system call per batch.

#![allow(unsafe_code)]

use std::io;

use super::socket::PacketSocket;

/// The most frames one batch holds.
pub(super) const MAX_BATCH: usize = 64;

/// What a flush did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct FlushOutcome {
    pub sent_frames: u64,
    pub sent_bytes: u64,
    pub dropped_frames: u64,
}

/// A batch of frames waiting for one sendmmsg.
#[derive(Debug)]
pub(super) struct TxBatch {
    /// `capacity` slots of `frame_capacity` bytes each, allocated once.
    buffers: Vec<u8>,
    lengths: [usize; MAX_BATCH],
    frame_capacity: usize,
    capacity: usize,
    queued: usize,
}

impl TxBatch {
    pub(super) fn new(capacity: usize, frame_capacity: usize) -> TxBatch {
        let capacity = capacity.clamp(1, MAX_BATCH);
        TxBatch {
            buffers: vec![0; capacity * frame_capacity],
            lengths: [0; MAX_BATCH],
            frame_capacity,
            capacity,
            queued: 0,
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.queued == self.capacity
    }

    pub(super) fn queued(&self) -> usize {
        self.queued
    }

    /// The next free buffer, or None when the batch is full.
    pub(super) fn next_buffer(&mut self) -> Option<&mut [u8]> {
        if self.is_full() {
            return None;
        }
        let start = self.queued * self.frame_capacity;
        self.buffers.get_mut(start..start + self.frame_capacity)
    }

    /// Queues the frame written into the buffer `next_buffer` gave out.
    pub(super) fn commit(&mut self, len: usize) {
        if !self.is_full() && len > 0 && len <= self.frame_capacity {
            self.lengths[self.queued] = len;
            self.queued += 1;
        }
    }

    /// Sends every queued frame and empties the batch. Frames the kernel cannot take right
    /// now (socket buffer full, frame refused) are dropped and counted: TCP retransmits.
    pub(super) fn flush(&mut self, socket: &PacketSocket) -> io::Result<FlushOutcome> {
        let mut outcome = FlushOutcome::default();
        let queued = std::mem::take(&mut self.queued);
        let mut iovecs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_BATCH];
        // SAFETY: mmsghdr is plain old data (integers and pointers); all-zero is valid.
        let mut messages: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let slots = self.buffers.chunks_exact_mut(self.frame_capacity);
        for ((iovec, slot), &len) in iovecs.iter_mut().zip(slots).zip(&self.lengths).take(queued) {
            iovec.iov_base = slot.as_mut_ptr().cast();
            iovec.iov_len = len;
        }
        for (message, iovec) in messages.iter_mut().zip(iovecs.iter_mut()).take(queued) {
            message.msg_hdr.msg_iov = iovec;
            message.msg_hdr.msg_iovlen = 1;
        }
        let mut next = 0;
        while next < queued {
            // SAFETY: each message points to its iovec above, each iovec to `lengths[i]`
            // bytes of `buffers`; both arrays and `buffers` outlive the call.
            match unsafe { socket.send_batch(&mut messages[next..queued]) } {
                Ok(sent) if sent > 0 => {
                    outcome.sent_frames += sent as u64;
                    outcome.sent_bytes +=
                        self.lengths[next..next + sent].iter().sum::<usize>() as u64;
                    next += sent;
                }
                Ok(_) => {
                    outcome.dropped_frames += (queued - next) as u64;
                    break;
                }
                Err(error) => match error.raw_os_error() {
                    Some(libc::EINTR) => {}
                    // No room in the socket buffer or the device queue: drop the rest.
                    Some(libc::EAGAIN | libc::ENOBUFS) => {
                        outcome.dropped_frames += (queued - next) as u64;
                        break;
                    }
                    // The kernel refused this one frame (too long, malformed): skip it.
                    Some(libc::EMSGSIZE | libc::EINVAL) => {
                        outcome.dropped_frames += 1;
                        next += 1;
                    }
                    _ => return Err(error),
                },
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_hands_out_slots_until_full() {
        let mut batch = TxBatch::new(2, 100);
        assert_eq!(batch.next_buffer().map(|b| b.len()), Some(100));
        batch.commit(60);
        // A zero or oversized length queues nothing.
        batch.commit(0);
        batch.commit(101);
        assert_eq!(batch.queued(), 1);
        batch.next_buffer().expect("second slot")[0] = 7;
        batch.commit(10);
        assert!(batch.is_full());
        assert!(batch.next_buffer().is_none());
    }

    #[test]
    fn capacity_is_clamped() {
        assert_eq!(TxBatch::new(0, 10).capacity, 1);
        assert_eq!(TxBatch::new(1000, 10).capacity, MAX_BATCH);
    }
}
