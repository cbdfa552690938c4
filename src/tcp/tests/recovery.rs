//! Loss recovery as packet traces: RTO backoff (RFC 6298), fast retransmit and NewReno
//! partial ACKs (RFC 5681 §3.2, RFC 6582 §3.2).
