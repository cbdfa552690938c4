//! A simulated HTTP/1.1 server host: our TCP engine in passive open, behind the far end of
//! the simulated link, serving generated resources. It plays nginx's part in the simulator,
//! with the misbehaviours tests need on demand.
//!
//! Routes (`N` and `CUT` are byte counts, `CODE` a status, `REST` any path):
//!
//! | path | answer |
//! |---|---|
//! | `/file/N` | N bytes with Content-Length; honours `Range: bytes=S-` (206, or 416 past the end) |
//! | `/norange/N` | like `/file/N` but ignores Range (always 200) |
//! | `/chunked/N` | N bytes, `Transfer-Encoding: chunked`, chunks of varying size |
//! | `/close/N` | N bytes delimited by closing the connection (no length) |
//! | `/short/N/CUT` | announces N bytes, sends CUT, then closes |
//! | `/redirect/CODE/REST` | CODE with a relative `Location: /REST` |
//! | `/status/CODE` | CODE with a short text body |
//!
//! Every body byte at offset `i` is `content::fill(CONTENT_SEED, i, …)`, so a test checks a
//! download against `content::sha256(CONTENT_SEED, N)`.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::SimPeer;
use super::content;
use crate::tcp::{self, Connection, State, TcpStats};
use crate::time::Instant;
use crate::wire::{
    EtherType, EthernetAddress, EthernetRepr, FrameTemplate, IpProtocol, Ipv4Repr, parse_tcp_frame,
};

/// The seed of every resource's contents.
pub const CONTENT_SEED: u64 = 0x7864_7067_6574;

/// Bytes generated per body piece handed to the connection.
const PIECE: usize = 64 * 1024;

/// Called after every event of the first connection with its gauges: traces and plots.
pub type TraceHook = Box<dyn FnMut(Instant, &TcpStats)>;

/// The simulated server host.
pub struct SimServer {
    address: SocketAddrV4,
    mac: EthernetAddress,
    config: tcp::Config,
    connections: Vec<ServerConnection>,
    trace: Option<TraceHook>,
    /// Statistics of connections that have gone away, and of the live ones, summed.
    finished_stats: Vec<TcpStats>,
}

struct ServerConnection {
    connection: Connection,
    template: FrameTemplate,
    ident: u16,
    request: Vec<u8>,
    response: Option<Response>,
    closed: bool,
}

/// The bytes of one response still to be queued.
struct Response {
    head: Vec<u8>,
    head_queued: usize,
    /// Content offsets `[next, end)` still to queue.
    next: u64,
    end: u64,
    /// Close after queueing up to here (`/short`), or after the whole response.
    chunked: bool,
    chunked_done: bool,
    /// A generated piece waiting for room in the send buffer.
    outbox: Vec<u8>,
    outbox_sent: usize,
}

impl SimServer {
    /// A server at `address` with MAC `mac`, using `config` for every connection, except
    /// that it never offers SACK: its sender is our SACK-less NewReno, which counts duplicate
    /// ACKs and ignores SACK blocks, and a client that sees SACK-permitted may compress its
    /// duplicate ACKs (as Linux does) on the assumption that the blocks are read.
    pub fn new(address: SocketAddrV4, mac: EthernetAddress, config: tcp::Config) -> SimServer {
        SimServer {
            address,
            mac,
            config: tcp::Config {
                sack: false,
                ..config
            },
            connections: Vec::new(),
            trace: None,
            finished_stats: Vec::new(),
        }
    }

    /// Records the first connection's gauges after every event.
    pub fn with_trace(mut self, hook: TraceHook) -> SimServer {
        self.trace = Some(hook);
        self
    }

    /// Statistics of every connection so far (the sender's side of each transfer).
    pub fn connection_stats(&self) -> Vec<TcpStats> {
        let mut all = self.finished_stats.clone();
        all.extend(self.connections.iter().map(|c| *c.connection.stats()));
        all
    }

    fn trace(&mut self, now: Instant) {
        if let (Some(hook), Some(first)) = (self.trace.as_mut(), self.connections.first()) {
            hook(now, first.connection.stats());
        }
    }

    fn connection_for(
        &mut self,
        now: Instant,
        client_mac: EthernetAddress,
        remote: SocketAddrV4,
        syn: bool,
    ) -> Option<&mut ServerConnection> {
        let index = self
            .connections
            .iter()
            .position(|c| c.connection.remote() == Some(remote));
        let index = match index {
            Some(i) => i,
            None if syn => {
                let eth = EthernetRepr {
                    src_addr: self.mac,
                    dst_addr: client_mac,
                    ethertype: EtherType::Ipv4,
                };
                let ip = Ipv4Repr {
                    src_addr: *self.address.ip(),
                    dst_addr: *remote.ip(),
                    protocol: IpProtocol::Tcp,
                    payload_len: 0,
                    ttl: 64,
                    ident: 0,
                    dont_fragment: true,
                };
                let _ = now;
                self.connections.push(ServerConnection {
                    connection: Connection::listen(self.config.clone(), self.address),
                    template: FrameTemplate::new(&eth, &ip, self.address.port(), remote.port()),
                    ident: 0,
                    request: Vec::new(),
                    response: None,
                    closed: false,
                });
                self.connections.len() - 1
            }
            None => return None,
        };
        self.connections.get_mut(index)
    }
}

impl SimPeer for SimServer {
    fn on_frame(&mut self, now: Instant, frame: &[u8]) {
        // A corrupted frame fails its checksum here and is dropped, as a real host would.
        let Ok((eth, ip, segment)) = parse_tcp_frame(frame, true) else {
            return;
        };
        if ip.dst_addr != *self.address.ip() || segment.dst_port != self.address.port() {
            return;
        }
        let remote = SocketAddrV4::new(ip.src_addr, segment.src_port);
        let syn = segment.flags.syn() && !segment.flags.ack();
        let Some(server) = self.connection_for(now, eth.src_addr, remote, syn) else {
            return;
        };
        let delivered = server
            .connection
            .on_segment(now, ip.src_addr, ip.dst_addr, &segment);
        if let Some((offset, bytes)) = delivered.data {
            server.take_request_bytes(offset, bytes);
        }
        self.trace(now);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let mut result = None;
        for server in &mut self.connections {
            server.pump();
            if let Some(segment) = server.connection.poll_transmit(now) {
                server.ident = server.ident.wrapping_add(1);
                result = server.template.emit(buf, server.ident, &segment).ok();
                break;
            }
        }
        // Forget connections that are completely closed.
        let mut index = 0;
        while index < self.connections.len() {
            if self.connections[index].connection.state() == State::Closed {
                let gone = self.connections.remove(index);
                self.finished_stats.push(*gone.connection.stats());
            } else {
                index += 1;
            }
        }
        result
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.connections
            .iter()
            .filter_map(|c| c.connection.poll_timeout())
            .min()
    }

    fn on_timeout(&mut self, now: Instant) {
        for server in &mut self.connections {
            if server.connection.poll_timeout().is_some_and(|t| t <= now) {
                server.connection.on_timeout(now);
            }
        }
        self.trace(now);
    }
}

impl ServerConnection {
    /// Places request bytes at their stream offset; answers once the head is complete.
    fn take_request_bytes(&mut self, offset: u64, bytes: &[u8]) {
        let Ok(offset) = usize::try_from(offset) else {
            return;
        };
        let end = offset + bytes.len();
        if end > 64 * 1024 || self.response.is_some() {
            return;
        }
        if self.request.len() < end {
            self.request.resize(end, 0);
        }
        self.request[offset..end].copy_from_slice(bytes);
        let in_order = (self.connection.received_in_order() as usize).min(self.request.len());
        if let Some(response) = respond(&self.request[..in_order]) {
            self.response = Some(response);
        }
    }

    /// Moves response bytes into the connection's send buffer as room allows.
    fn pump(&mut self) {
        let Some(response) = self.response.as_mut() else {
            return;
        };
        loop {
            if response.outbox_sent == response.outbox.len() && !response.refill() {
                if !self.closed {
                    self.connection.close();
                    self.closed = true;
                }
                return;
            }
            let pending = &response.outbox[response.outbox_sent..];
            let taken = self.connection.send(pending);
            response.outbox_sent += taken;
            if taken < pending.len() {
                return;
            }
        }
    }
}

impl Response {
    /// Generates the next piece into the outbox; false when the response is all queued.
    fn refill(&mut self) -> bool {
        self.outbox.clear();
        self.outbox_sent = 0;
        if self.head_queued < self.head.len() {
            self.outbox.extend_from_slice(&self.head);
            self.head_queued = self.head.len();
            return true;
        }
        if self.next < self.end {
            // Vary chunk sizes so chunk boundaries fall everywhere in segments.
            let size = if self.chunked {
                (PIECE as u64 - (self.next % 4093)).min(self.end - self.next)
            } else {
                (PIECE as u64).min(self.end - self.next)
            } as usize;
            if self.chunked {
                self.outbox
                    .extend_from_slice(format!("{size:x};sim=1\r\n").as_bytes());
            }
            let start = self.outbox.len();
            self.outbox.resize(start + size, 0);
            content::fill(CONTENT_SEED, self.next, &mut self.outbox[start..]);
            if self.chunked {
                self.outbox.extend_from_slice(b"\r\n");
            }
            self.next += size as u64;
            return true;
        }
        if self.chunked && !self.chunked_done {
            self.chunked_done = true;
            self.outbox
                .extend_from_slice(b"0\r\nX-Trailer: done\r\n\r\n");
            return true;
        }
        false
    }
}

/// Parses a complete request head and builds the response, or `None` while incomplete.
fn respond(request: &[u8]) -> Option<Response> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let status = parsed.parse(request).ok()?;
    if status.is_partial() {
        return None;
    }
    let head_only = parsed.method == Some("HEAD");
    let path = parsed.path.unwrap_or("/");
    let range_start = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("range"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<u64>().ok());
    Some(route(path, range_start, head_only))
}

fn route(path: &str, range_start: Option<u64>, head_only: bool) -> Response {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let number = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
    let (status, mut headers, body, chunked) = match (parts.first().copied(), number(1)) {
        (Some("file"), Some(len)) => match range_start {
            Some(start) if start >= len => (
                416,
                format!("Content-Range: bytes */{len}\r\nContent-Length: 0\r\n"),
                0..0,
                false,
            ),
            Some(start) => (
                206,
                format!(
                    "Content-Range: bytes {start}-{}/{len}\r\nContent-Length: {}\r\n",
                    len - 1,
                    len - start
                ),
                start..len,
                false,
            ),
            None => (200, format!("Content-Length: {len}\r\n"), 0..len, false),
        },
        (Some("norange"), Some(len)) => (200, format!("Content-Length: {len}\r\n"), 0..len, false),
        (Some("chunked"), Some(len)) => (
            200,
            "Transfer-Encoding: chunked\r\n".to_string(),
            0..len,
            true,
        ),
        (Some("close"), Some(len)) => (200, String::new(), 0..len, false),
        (Some("short"), Some(len)) => {
            let cut = number(2).unwrap_or(len / 2).min(len);
            (200, format!("Content-Length: {len}\r\n"), 0..cut, false)
        }
        (Some("redirect"), Some(code)) => {
            let rest = parts.get(2..).map(|p| p.join("/")).unwrap_or_default();
            (
                code as u16,
                format!("Location: /{rest}\r\nContent-Length: 0\r\n"),
                0..0,
                false,
            )
        }
        (Some("status"), Some(code)) => (
            code as u16,
            "Content-Length: 10\r\n".to_string(),
            0..10,
            false,
        ),
        _ => (404, "Content-Length: 10\r\n".to_string(), 0..10, false),
    };
    headers.push_str("Connection: close\r\nServer: xdpget-sim\r\n");
    let head = format!("HTTP/1.1 {status} {}\r\n{headers}\r\n", reason(status)).into_bytes();
    let body = if head_only { 0..0 } else { body };
    Response {
        head,
        head_queued: 0,
        next: body.start,
        end: body.end,
        chunked: chunked && !head_only,
        chunked_done: false,
        outbox: Vec::with_capacity(PIECE + 64),
        outbox_sent: 0,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// The server address simulations use, and the client's.
pub const SERVER_ADDRESS: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
pub const CLIENT_ADDRESS: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 61000);
pub const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
pub const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
