//! Counters and gauges of one connection, for `--stats` and the simulator's traces.

/// Counters (monotonic) and gauges (current values) of a connection. Gauges are refreshed
/// after every call into the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TcpStats {
    /// Segments handed to `on_segment` for this connection.
    pub segments_received: u64,
    /// Segments returned by `poll_transmit`.
    pub segments_sent: u64,
    /// Payload bytes delivered to the caller. A byte held out of order and retransmitted by
    /// the peer before the hole filled may be counted twice (see `Delivered`).
    pub bytes_delivered: u64,
    /// Payload bytes sent, retransmissions included.
    pub bytes_sent: u64,
    /// Segments sent again (timeouts, fast retransmits, NewReno partial ACKs).
    pub retransmits: u64,
    /// Fast retransmits on the third duplicate ACK (RFC 5681 §3.2).
    pub fast_retransmits: u64,
    /// NewReno partial ACKs that triggered a retransmission (RFC 6582 §3.2 step 5).
    pub partial_ack_retransmits: u64,
    /// Retransmission timer expirations (RFC 6298 §5.4).
    pub rtos: u64,
    /// Duplicate ACKs we sent (out-of-order or old duplicate segments).
    pub dup_acks_sent: u64,
    /// Duplicate ACKs we received (RFC 5681 §2 definition).
    pub dup_acks_received: u64,
    /// Pure ACK segments we sent.
    pub acks_sent: u64,
    /// Segments that arrived ahead of `rcv_nxt`.
    pub out_of_order_segments: u64,
    /// Segments dropped as unacceptable (outside the window, stale duplicates, bad ACK).
    pub segments_dropped: u64,
    /// Segments dropped by PAWS (RFC 7323 §5).
    pub paws_drops: u64,
    /// RFC 5961 challenge ACKs sent.
    pub challenge_acks: u64,
    /// Zero-window probes sent (RFC 9293 §3.8.6.1).
    pub window_probes: u64,

    /// Payload bytes read from lent memory (`Connection::lend`, e.g. a mapped file) into
    /// segments, retransmissions included: bytes copied once, from there into the frame.
    pub lent_bytes_sent: u64,

    /// Gauge: congestion window in bytes.
    pub cwnd: u64,
    /// Gauge: slow start threshold in bytes (`u64::MAX` until the first loss).
    pub ssthresh: u64,
    /// Gauge: the peer's receive window, scaled, in bytes.
    pub rwnd: u64,
    /// Gauge: bytes sent and not yet acknowledged.
    pub bytes_in_flight: u64,
    /// Gauge: smoothed RTT in microseconds (0 before the first sample).
    pub srtt_micros: u64,
    /// Gauge: current retransmission timeout in microseconds.
    pub rto_micros: u64,
    /// Gauge: the effective send MSS in bytes.
    pub snd_mss: u64,
}
