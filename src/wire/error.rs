//! The one error type of the wire layer.

/// Why a frame could not be parsed or emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the header, or than the length a header declares.
    #[error("the buffer is shorter than the header or the length it declares")]
    Truncated,
    /// A header field holds a value the protocol does not allow.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The checksum does not match the bytes it covers.
    #[error("the checksum does not match the packet's contents")]
    BadChecksum,
    /// The IPv4 packet is a fragment (MF set or a nonzero offset); xdpget does not reassemble.
    #[error("the IPv4 packet is a fragment, which xdpget does not reassemble")]
    Fragmented,
    /// The frame is valid but of a kind xdpget does not speak (another ethertype, protocol, …).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}
