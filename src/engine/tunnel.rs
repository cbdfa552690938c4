//! The start of an `https://` exchange through an HTTP proxy: our `CONNECT` goes out, the
//! proxy's answer comes back, and from the end of that answer on the connection's stream
//! belongs to TLS with the origin server (RFC 9110 §9.3.6; `http::proxy`).
//!
//! The client session ([`super::transfer::Transfer`]) puts a [`Tunnel`] in front of its TLS
//! stream: stream bytes before the answer's end are the answer; bytes after it are handed
//! on with their offsets moved down by the answer's length, so TLS sees a stream that
//! starts at 0 as it would on a direct connection.

use crate::http::HttpError;
use crate::http::proxy::tunnel_reply;
use crate::ranges::RangeSet;

/// The most the proxy's answer may take: as much as a response head may.
const MAX_REPLY: usize = crate::http::response::MAX_HEAD_LEN;

/// A `CONNECT` on its way, then an open tunnel.
#[derive(Debug)]
pub struct Tunnel {
    request: Vec<u8>,
    sent: usize,
    /// The answer's bytes at their stream offsets, and which of them arrived.
    reply: Vec<u8>,
    arrived: RangeSet,
    /// The stream offset where the tunnel starts (the answer's length), once open.
    open_at: Option<u64>,
}

impl Tunnel {
    /// A tunnel that will open with `request` (from `http::proxy::connect_request`).
    pub fn new(request: Vec<u8>) -> Tunnel {
        Tunnel {
            request,
            sent: 0,
            reply: Vec::new(),
            arrived: RangeSet::default(),
            open_at: None,
        }
    }

    /// The `CONNECT` bytes still to send.
    pub fn pending_request(&self) -> &[u8] {
        &self.request[self.sent..]
    }

    /// TCP took `count` bytes of [`Tunnel::pending_request`].
    pub fn consume_request(&mut self, count: usize) {
        self.sent = (self.sent + count).min(self.request.len());
    }

    /// The offset where the tunnel's own stream starts, once the proxy said yes.
    pub fn open_at(&self) -> Option<u64> {
        self.open_at
    }

    /// Stream bytes at `offset`: the part that belongs to the tunnel, at its offset in the
    /// tunnel's stream (`None` while they are the proxy's answer).
    pub fn on_stream<'b>(
        &mut self,
        offset: u64,
        bytes: &'b [u8],
    ) -> Result<Option<(u64, &'b [u8])>, HttpError> {
        if let Some(base) = self.open_at {
            let end = offset + bytes.len() as u64;
            if end <= base {
                return Ok(None);
            }
            let skip = base.saturating_sub(offset) as usize;
            return Ok(Some(((offset + skip as u64) - base, &bytes[skip..])));
        }
        let end = offset.saturating_add(bytes.len() as u64);
        if end > MAX_REPLY as u64 {
            return Err(HttpError::HeadTooLarge { limit: MAX_REPLY });
        }
        if self.reply.len() < end as usize {
            self.reply.resize(end as usize, 0);
        }
        self.reply[offset as usize..end as usize].copy_from_slice(bytes);
        self.arrived.insert(offset, end);
        Ok(None)
    }

    /// Reads the answer so far: opens the tunnel on a 2xx, fails on anything else. Bytes
    /// past a 2xx answer cannot come (the server speaks TLS only after our ClientHello).
    pub fn poll(&mut self) -> Result<(), HttpError> {
        if self.open_at.is_some() {
            return Ok(());
        }
        let contiguous = self.arrived.contiguous_len() as usize;
        if let Some(head) = tunnel_reply(&self.reply[..contiguous])? {
            self.open_at = Some(head.head_len as u64);
            self.reply = Vec::new();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_in_pieces_then_the_tunnel_from_zero() {
        let mut tunnel = Tunnel::new(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n".to_vec());
        assert_eq!(tunnel.pending_request().len(), 39);
        tunnel.consume_request(39);
        assert!(tunnel.pending_request().is_empty());
        let answer = b"HTTP/1.1 200 Connection established\r\n\r\n";
        // Out of order: the second half first.
        assert_eq!(tunnel.on_stream(20, &answer[20..]).unwrap(), None);
        tunnel.poll().unwrap();
        assert_eq!(tunnel.open_at(), None);
        assert_eq!(tunnel.on_stream(0, &answer[..20]).unwrap(), None);
        tunnel.poll().unwrap();
        let base = answer.len() as u64;
        assert_eq!(tunnel.open_at(), Some(base));
        // A retransmitted piece of the answer is nothing for TLS; a segment that straddles
        // the start gives TLS its tail at offset 0.
        assert_eq!(tunnel.on_stream(0, &answer[..10]).unwrap(), None);
        let mut straddling = answer[30..].to_vec();
        straddling.extend_from_slice(b"\x16\x03\x03");
        assert_eq!(
            tunnel.on_stream(30, &straddling).unwrap(),
            Some((0, &b"\x16\x03\x03"[..]))
        );
        assert_eq!(
            tunnel.on_stream(base + 100, b"xyz").unwrap(),
            Some((100, &b"xyz"[..]))
        );
    }

    #[test]
    fn a_refusal_is_a_tunnel_failure() {
        let mut tunnel = Tunnel::new(Vec::new());
        tunnel
            .on_stream(0, b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n")
            .unwrap();
        let error = tunnel.poll().unwrap_err();
        assert!(
            matches!(error, HttpError::ProxyTunnel { status: 407, .. }),
            "{error}"
        );
        assert_eq!(error.exit_code(), 4);
    }

    #[test]
    fn an_endless_answer_is_bounded() {
        let mut tunnel = Tunnel::new(Vec::new());
        assert!(tunnel.on_stream(MAX_REPLY as u64, b"x").is_err());
    }
}
