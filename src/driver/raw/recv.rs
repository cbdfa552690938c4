//! Receive without a ring: frames copied out of the packet socket's queue, up to 64 in one
//! recvmmsg(2).
//!
//! Follows: packet(7), recvmmsg(2).
//!
//! Why a second receive path: setting up a TPACKET ring costs an RCU grace period
//! (`packet_set_ring` calls `synchronize_net()` unconditionally, 10-20 ms on the testbed),
//! and a socket with a ring waits for a second one when it closes. A socket without one
//! is ready as soon as it is bound. The start of the hand-over driver (`driver::handover`)
//! uses it: the first megabytes of a download arrive here while AF_XDP is still being set
//! up, or all of a small download. The price is one copy and one system call per batch,
//! which a few megabytes can afford; `--driver raw` keeps the ring for long transfers.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

use super::socket::PacketSocket;

/// The most frames one recvmmsg(2) takes.
pub(super) const MAX_BATCH: usize = 64;

/// `PACKET_OUTGOING` from `linux/if_packet.h`: a frame this host sent.
const PACKET_OUTGOING: u8 = 4;

/// Buffers for one recvmmsg(2), allocated once.
#[derive(Debug)]
pub(super) struct RecvBatch {
    buffers: Vec<u8>,
    frame_capacity: usize,
}

/// What one batch handed out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Received {
    pub frames: usize,
    pub bytes: u64,
    /// Frames longer than a buffer (cut short by the kernel): unusable, dropped.
    pub truncated: u64,
    /// Whether the socket's queue may hold more (the batch was full).
    pub more: bool,
}

impl RecvBatch {
    /// Buffers for 64 frames of up to `frame_capacity` bytes.
    pub(super) fn new(frame_capacity: usize) -> RecvBatch {
        RecvBatch {
            buffers: vec![0; MAX_BATCH * frame_capacity],
            frame_capacity,
        }
    }

    /// Takes up to `max` (at most 64) queued frames without blocking and hands each to `f`
    /// in place; frames this host sent and truncated frames are skipped.
    pub(super) fn receive<F: FnMut(&[u8])>(
        &mut self,
        socket: &PacketSocket,
        max: usize,
        mut f: F,
    ) -> io::Result<Received> {
        let want = max.min(MAX_BATCH);
        if want == 0 {
            return Ok(Received::default());
        }
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut names: [libc::sockaddr_ll; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let mut iovecs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_BATCH];
        // SAFETY: as above.
        let mut messages: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for (index, chunk) in self
            .buffers
            .chunks_exact_mut(self.frame_capacity)
            .take(want)
            .enumerate()
        {
            iovecs[index] = libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: chunk.len(),
            };
            let header = &mut messages[index].msg_hdr;
            header.msg_name = (&raw mut names[index]).cast();
            header.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            header.msg_iov = &raw mut iovecs[index];
            header.msg_iovlen = 1;
        }
        // SAFETY: `messages` holds `want` headers whose name and iovec pointers point into
        // `names`, `iovecs` and `self.buffers`, all live and writable for the call; MSG_TRUNC
        // makes the kernel report a frame's real length, never write past a buffer.
        let got = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                messages.as_mut_ptr(),
                want as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            let error = io::Error::last_os_error();
            return match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(Received::default()),
                _ => Err(error),
            };
        }
        let got = got as usize;
        let mut received = Received {
            more: got == want,
            ..Received::default()
        };
        for (index, message) in messages.iter().take(got).enumerate() {
            if names[index].sll_pkttype == PACKET_OUTGOING {
                continue;
            }
            let len = message.msg_len as usize;
            if len > self.frame_capacity {
                received.truncated += 1;
                continue;
            }
            let start = index * self.frame_capacity;
            f(&self.buffers[start..start + len]);
            received.frames += 1;
            received.bytes += len as u64;
        }
        Ok(received)
    }
}
