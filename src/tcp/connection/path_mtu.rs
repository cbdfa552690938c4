//! A smaller path MTU learnt mid-connection (RFC 1191 §6.4 for IPv4, RFC 8201 §5.2 for IPv6).
//!
//! The filters leave ICMP to the kernel, which records a Packet Too Big (or Fragmentation
//! Needed) as the route's MTU. The caller reads that and tells the connection; from then on
//! every segment is cut to fit, and what is in flight at the old size is sent again at once
//! (go-back-N from SND.UNA, as Linux's `tcp_simple_retransmit`): the router dropped it, and
//! waiting for the retransmission timeout would stall the connection for no reason. The
//! congestion window is untouched: a too-big drop is not congestion (RFC 1191 §6.4).

use super::{Connection, TIMESTAMPS_OPTION_LEN};

/// The smallest MTU taken from a Packet Too Big: IPv6's minimum link MTU (RFC 8200 §5); for
/// IPv4 RFC 1191 §3's 68 is far below what any path carries, so 576 (RFC 791's datagram
/// every host accepts), as Linux's `min_pmtu`.
const MIN_MTU_IPV6: usize = 1280;
const MIN_MTU_IPV4: usize = 576;

impl Connection {
    /// The path to the peer carries IP packets of at most `mtu` bytes. Returns true when
    /// segments shrink (and any in flight are sent again at the new size); false when they
    /// already fit. An MTU below the protocol's minimum is raised to it (RFC 8201 §4).
    pub fn on_path_mtu(&mut self, mtu: usize) -> bool {
        let min_mtu = if self.config.ip_header_len >= 40 {
            MIN_MTU_IPV6
        } else {
            MIN_MTU_IPV4
        };
        let options = if self.timestamps {
            TIMESTAMPS_OPTION_LEN
        } else {
            0
        };
        let headers = self.config.ip_header_len + 20 + options;
        let mss = mtu.max(min_mtu).saturating_sub(headers);
        if mss >= self.snd_mss {
            return false;
        }
        self.snd_mss = mss;
        if self.snd_nxt != self.snd_una {
            // Go back: the segments from SND.UNA are cut again at the new size. An RTT
            // sample across this resend would be wrong (Karn's rule, RFC 6298 §3).
            self.snd_nxt = self.snd_una;
            self.rtt_timing = None;
        }
        true
    }
}
