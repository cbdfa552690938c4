//! Connection configuration: everything a test, the simulator or the CLI may want to set.
//!
//! RFCs: 6298 (RTO bounds), 6928 (initial window), 7323 (window scale, timestamps),
//! 9293 §3.7.1 (MSS), 6528 (ISN secret), 5681 §4.2 (ACK policy), 2018 + 2883 (SACK).

use core::time::Duration;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use super::cc::Algorithm;

/// Settings of one TCP connection. `Config::default()` gives sane values for a downloader on
/// an Ethernet link; tests override single fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Our link MTU in bytes (IP header included). We advertise MSS = MTU - 40 over IPv4,
    /// MTU - 60 over IPv6 (RFC 9293 §3.7.1, RFC 8200 §5) and send at most that, minus 12
    /// when timestamps are in use.
    pub mtu: usize,
    /// The IP header length of the connection's packets: 20 (IPv4) or 40 (IPv6).
    pub ip_header_len: usize,
    /// The largest receive window we will ever advertise. It picks our window scale shift at
    /// open time (RFC 7323 §2.2): the smallest shift that makes it fit in 16 bits, at most 14.
    pub max_receive_window: usize,
    /// The receive window advertised until the caller calls `set_receive_window`.
    pub initial_receive_window: usize,
    /// How many bytes `send` accepts before the peer has acknowledged them.
    pub send_buffer_capacity: usize,
    /// Offer and accept RFC 7323 window scaling.
    pub window_scaling: bool,
    /// Offer and accept RFC 7323 timestamps (RTT measurement and PAWS).
    pub timestamps: bool,
    /// The congestion control algorithm.
    pub congestion_control: Algorithm,
    /// Initial congestion window in segments. RFC 6928 allows 10 (about 14600 bytes); we use
    /// 10 by default and fall back to 1 when the SYN or SYN-ACK had to be retransmitted.
    pub initial_window_segments: usize,
    /// The RTO before any RTT sample (RFC 6298 (2.1): 1 s).
    pub rto_initial: Duration,
    /// Lower bound of the RTO. RFC 6298 (2.4) says 1 s; we default to 200 ms like Linux,
    /// because a 1 s floor makes every tail loss on a LAN cost a second, and modern stacks
    /// have shown 200 ms to be safe with timestamps-based RTT samples.
    pub rto_min: Duration,
    /// Upper bound of the RTO (RFC 6298 (2.5) allows a maximum of at least 60 s).
    pub rto_max: Duration,
    /// SYN retransmissions before an active open gives up with `Event::TimedOut` (Linux: 6).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before a passive open gives up (Linux: 5).
    pub synack_retries: u32,
    /// Consecutive retransmission timeouts of data before the connection gives up
    /// (Linux `tcp_retries2`: 15).
    pub max_retransmissions: u32,
    /// The longest an in-order byte waits for its ACK. The batch policy (the default) waits
    /// only while less than two full segments are unacknowledged, and never longer than this:
    /// 1 ms, far below 2 x SRTT on any path, so a sender never fires a tail-loss probe because
    /// of us (Linux's delayed ACK is 40 ms, but its GRO batches make it rare). With
    /// `ack_every_segments` set (RFC 5681 strict), a lone segment waits this long for a
    /// second one. `Duration::ZERO` acknowledges at the end of every batch instead.
    pub delayed_ack: Duration,
    /// `0` (the default): the batch policy of a Linux receiver with GRO. One cumulative ACK
    /// per drained receive batch once two full segments are new, and one every
    /// `ack_max_bytes` within a batch; senders that count acknowledged bytes (Linux's
    /// tcp_cong.c, CUBIC, BBR; RFC 3465) lose nothing by it. `N > 0`: RFC 5681 §4.2 strictly,
    /// an ACK every N full-sized segments (2 is the RFC's SHOULD; more sends "stretch ACKs"),
    /// an immediate duplicate ACK for every out-of-order segment; every batch still ends
    /// with an ACK of everything received.
    pub ack_every_segments: usize,
    /// Batch policy: the most in-order bytes one ACK covers (64 KiB, a full GRO batch).
    pub ack_max_bytes: usize,
    /// Batch policy: the full segments that must be new before the end of a receive batch
    /// sends an ACK (2, RFC 5681's "every second segment"); fewer wait for the next batch,
    /// at most `delayed_ack`. A connection that shares every batch with others (one of
    /// `-x N`'s) gets a larger share, so that N connections send about as many ACKs as one.
    pub batch_ack_segments: usize,
    /// Batch policy with SACK: after the first three duplicate ACKs for one RCV.NXT, the ACKs
    /// of segments that only extend a block are compressed for at most this long, or 5 % of
    /// the RTT if that is less (Linux `tcp_comp_sack_delay_ns`: 1 ms).
    pub sack_compress_max: Duration,
    /// Offer SACK-permitted and, when the peer offers it too, report the out-of-order blocks
    /// we hold in every ACK (RFC 2018, the newest block first, RFC 2883 D-SACK for
    /// duplicates). Receive side only: our own sender ignores SACK blocks and stays
    /// Reno/NewReno. On by default; `--no-sack` turns it off.
    pub sack: bool,
    /// Maximum segment lifetime; TIME-WAIT lasts 2*MSL (RFC 9293 §3.4.2). The RFC says 2
    /// minutes; we default to 30 s (a 60 s TIME-WAIT like Linux). Tests use a few ms.
    pub msl: Duration,
    /// Most RFC 5961 challenge ACKs sent per second (RFC 5961 §7 rate limit).
    pub challenge_ack_limit: u32,
    /// Secret key of the RFC 6528 ISN function (and of the timestamp clock offset). The default
    /// is random per process; tests set it to get reproducible sequence numbers.
    pub isn_secret: [u8; 16],
}

impl Default for Config {
    fn default() -> Config {
        Config {
            mtu: 1500,
            ip_header_len: 20,
            max_receive_window: 64 << 20,
            initial_receive_window: 64 << 20,
            send_buffer_capacity: 1 << 20,
            window_scaling: true,
            timestamps: true,
            congestion_control: Algorithm::NewReno,
            initial_window_segments: 10,
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(60),
            syn_retries: 6,
            synack_retries: 5,
            max_retransmissions: 15,
            delayed_ack: Duration::from_millis(1),
            ack_every_segments: 0,
            ack_max_bytes: 64 << 10,
            batch_ack_segments: 2,
            sack_compress_max: Duration::from_millis(1),
            sack: true,
            msl: Duration::from_secs(30),
            challenge_ack_limit: 100,
            isn_secret: random_secret(),
        }
    }
}

impl Config {
    /// Whether ACKs follow RFC 5681 §4.2 strictly (`ack_every_segments > 0`) rather than
    /// the batch policy.
    pub fn strict_acks(&self) -> bool {
        self.ack_every_segments > 0
    }

    /// The MSS we advertise: MTU minus the IP header and the 20-byte TCP header
    /// (RFC 9293 §3.7.1, RFC 6691: options are not subtracted here).
    pub fn advertised_mss(&self) -> u16 {
        let headers = self.ip_header_len + 20;
        u16::try_from(self.mtu.saturating_sub(headers).max(64)).unwrap_or(u16::MAX)
    }

    /// The window scale shift we offer (RFC 7323 §2.2): the smallest shift that lets
    /// `max_receive_window` fit in the 16-bit window field, at most 14.
    pub fn window_scale_shift(&self) -> u8 {
        let mut shift = 0u8;
        while shift < 14 && (self.max_receive_window >> shift) > 0xffff {
            shift += 1;
        }
        shift
    }
}

/// 128 random bits without any I/O: std's `RandomState` is seeded from the OS once per
/// thread and perturbed per instance.
fn random_secret() -> [u8; 16] {
    let mut secret = [0u8; 16];
    for half in secret.chunks_exact_mut(8) {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x7864_7067_6574); // any constant: the keys are what is random
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_scale_fits_the_maximum_window() {
        let mut config = Config {
            max_receive_window: 64 << 20,
            ..Config::default()
        };
        // 64 MiB >> 10 is 65536, one too many for 16 bits.
        assert_eq!(config.window_scale_shift(), 11);
        config.max_receive_window = 65535;
        assert_eq!(config.window_scale_shift(), 0);
        config.max_receive_window = 1 << 40;
        assert_eq!(config.window_scale_shift(), 14);
    }

    #[test]
    fn mss_follows_the_mtu() {
        let config = Config::default();
        assert_eq!(config.advertised_mss(), 1460);
        let ipv6 = Config {
            ip_header_len: 40,
            ..Config::default()
        };
        assert_eq!(ipv6.advertised_mss(), 1440);
        assert_ne!(config.isn_secret, Config::default().isn_secret);
    }
}
