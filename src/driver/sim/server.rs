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
//! | `/auth/HEX/REST` | 401 with `WWW-Authenticate: Basic` unless the request carries `Authorization: Basic` for the `user:password` whose bytes HEX spells in hexadecimal (so the password is not in the URL as text); then `/REST` |
//! | `/lastmod/T/REST` | `/REST` with `Last-Modified` at T (seconds since the epoch); 304 when `If-Modified-Since` is T or later (`T!`: never 304, as a server that ignores the condition) |
//! | `/disposition/NAME/REST` | `/REST` with `Content-Disposition: attachment; filename="NAME"` (NAME percent-decoded) |
//! | `/flaky/K/REST` | 503 to the server's first K requests (of any path), then `/REST` |
//! | `/tohttps/REST` | 301 to `https://ADDRESS:TLS_PORT/REST` (with [`SimServer::with_tls`]) |
//! | `/drip/N/FAST` | like `/file/N`, but content from offset FAST on goes one byte per second |
//!
//! With [`SimServer::with_tls`] the host also serves the same routes over TLS on a second
//! port (`tls_server`): a complete response ends with `close_notify`, a `/short` one
//! without, as a truncation on the path would look.
//!
//! Every body byte at offset `i` is `content::fill(CONTENT_SEED, i, …)`, so a test checks a
//! download against `content::sha256(CONTENT_SEED, N)`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::SimPeer;
use super::content;
use super::tls_server::{AlertLog, TlsServerSession};
use crate::tcp::{self, Connection, State, TcpStats};
use crate::time::Instant;
use crate::wire::{
    EtherType, EthernetAddress, EthernetRepr, FrameTemplate, IpProtocol, IpRepr, Ipv4Repr,
    parse_tcp_frame,
};

/// The seed of every resource's contents.
pub const CONTENT_SEED: u64 = 0x7864_7067_6574;

/// Bytes generated per body piece handed to the connection.
const PIECE: usize = 64 * 1024;

/// The pace of `/drip` past its fast part: one byte per this long.
const DRIP_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Requests answered so far, shared with every connection (`/flaky`).
    requests: Arc<AtomicU64>,
    /// The HTTPS port and its certificate, if any.
    tls: Option<(u16, Arc<rustls::ServerConfig>)>,
    /// Fatal TLS alerts received from clients, every connection's.
    tls_alerts: AlertLog,
}

struct ServerConnection {
    connection: Connection,
    template: FrameTemplate,
    ident: u16,
    request: Vec<u8>,
    response: Option<Response>,
    closed: bool,
    requests: Arc<AtomicU64>,
    /// The TLS session of an HTTPS connection, and its handshake bytes still to queue.
    tls: Option<TlsServerSession>,
    tls_out: Vec<u8>,
    tls_out_sent: usize,
    /// `https://ADDRESS:PORT` of this host, for `/tohttps`.
    secure_origin: Option<String>,
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
    /// The response is cut short on purpose (`/short`): over TLS, no close_notify.
    cut: bool,
    /// Over TLS: the outbox holds ciphertext (sealed), and close_notify is queued.
    sealed: bool,
    close_notify_queued: bool,
    /// A generated piece waiting for room in the send buffer.
    outbox: Vec<u8>,
    outbox_sent: usize,
    /// `/drip`: content from this offset on goes one byte per [`DRIP_INTERVAL`]
    /// (`u64::MAX` for every other route), the next byte not before `drip_at`.
    drip_from: u64,
    drip_at: Option<Instant>,
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
            requests: Arc::default(),
            tls: None,
            tls_alerts: Arc::default(),
        }
    }

    /// Also serves HTTPS on `port` of the same address, with `config`'s certificate.
    pub fn with_tls(mut self, port: u16, config: Arc<rustls::ServerConfig>) -> SimServer {
        self.tls = Some((port, config));
        self
    }

    /// Records the first connection's gauges after every event.
    pub fn with_trace(mut self, hook: TraceHook) -> SimServer {
        self.trace = Some(hook);
        self
    }

    /// How many requests the server has answered.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The fatal TLS alerts clients have sent so far (e.g. `UnknownCA` from a client that
    /// does not trust the certificate).
    pub fn tls_alerts_received(&self) -> Vec<rustls::AlertDescription> {
        self.tls_alerts
            .lock()
            .map_or_else(|_| Vec::new(), |a| a.clone())
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
        local_port: u16,
        syn: bool,
    ) -> Option<&mut ServerConnection> {
        let index = self
            .connections
            .iter()
            .position(|c| c.connection.remote() == Some(remote.into()));
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
                let local = SocketAddrV4::new(*self.address.ip(), local_port);
                let tls = self
                    .tls
                    .as_ref()
                    .filter(|(port, _)| *port == local_port)
                    .and_then(|(_, config)| {
                        TlsServerSession::new(Arc::clone(config), Arc::clone(&self.tls_alerts))
                    });
                let secure_origin = self
                    .tls
                    .as_ref()
                    .map(|(port, _)| format!("https://{}:{port}", self.address.ip()));
                self.connections.push(ServerConnection {
                    connection: Connection::listen(self.config.clone(), local),
                    template: FrameTemplate::new(&eth, ip, local_port, remote.port()),
                    ident: 0,
                    request: Vec::new(),
                    response: None,
                    closed: false,
                    requests: Arc::clone(&self.requests),
                    tls,
                    tls_out: Vec::new(),
                    tls_out_sent: 0,
                    secure_origin,
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
        // The simulated link speaks IPv4 only.
        let Ok((eth, IpRepr::Ipv4(ip), segment)) = parse_tcp_frame(frame, true) else {
            return;
        };
        let tls_port = self.tls.as_ref().map(|(port, _)| *port);
        let port = segment.dst_port;
        if ip.dst_addr != *self.address.ip()
            || (port != self.address.port() && Some(port) != tls_port)
        {
            return;
        }
        let remote = SocketAddrV4::new(ip.src_addr, segment.src_port);
        let syn = segment.flags.syn() && !segment.flags.ack();
        let Some(server) = self.connection_for(now, eth.src_addr, remote, port, syn) else {
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
            server.pump(now);
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
        let dripping = self
            .connections
            .iter()
            .filter_map(|c| c.response.as_ref().and_then(Response::next_drip));
        self.connections
            .iter()
            .filter_map(|c| c.connection.poll_timeout())
            .chain(dripping)
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
        let origin = self.secure_origin.as_deref();
        let served = self.requests.load(Ordering::Relaxed);
        let response = match self.tls.as_mut() {
            Some(tls) => respond(
                tls.on_ciphertext(&self.request[..in_order], &mut self.tls_out),
                served,
                origin,
            ),
            None => respond(&self.request[..in_order], served, origin),
        };
        if let Some(response) = response {
            self.requests.fetch_add(1, Ordering::Relaxed);
            self.response = Some(response);
        }
    }

    /// Queues the TLS handshake's bytes; true when all are queued.
    fn pump_handshake(&mut self) -> bool {
        let pending = &self.tls_out[self.tls_out_sent..];
        self.tls_out_sent += self.connection.send(pending);
        if self.tls_out_sent < self.tls_out.len() {
            return false;
        }
        self.tls_out.clear();
        self.tls_out_sent = 0;
        true
    }

    /// Moves response bytes into the connection's send buffer as room allows.
    fn pump(&mut self, now: Instant) {
        if !self.pump_handshake() {
            return;
        }
        let Some(response) = self.response.as_mut() else {
            return;
        };
        loop {
            if response.outbox_sent == response.outbox.len() {
                if response.next_drip().is_some_and(|at| at > now) {
                    return;
                }
                if response.dripping() {
                    response.drip_at = Some(now + DRIP_INTERVAL);
                }
                if !response.refill() {
                    let complete = !response.cut && !response.close_notify_queued;
                    if let Some(tls) = self.tls.as_mut().filter(|_| !self.closed && complete) {
                        // RFC 8446 §6.1: the response is complete.
                        response.outbox.clear();
                        response.outbox_sent = 0;
                        tls.close_notify(&mut response.outbox);
                        response.sealed = true;
                        response.close_notify_queued = true;
                        continue;
                    }
                    if !self.closed {
                        self.connection.close();
                        self.closed = true;
                    }
                    return;
                }
            }
            if let Some(tls) = self.tls.as_mut()
                && response.outbox_sent == 0
                && !response.sealed
            {
                let plaintext = core::mem::take(&mut response.outbox);
                tls.seal(&plaintext, &mut response.outbox);
                response.sealed = true;
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
    /// Adds one field line (without CRLF) to the head, before the blank line.
    fn add_header(&mut self, line: &str) {
        let end = self.head.len() - 2;
        let mut field = line.as_bytes().to_vec();
        field.extend_from_slice(b"\r\n");
        self.head.splice(end..end, field);
    }

    /// The head is out and the next content byte is one to drip.
    fn dripping(&self) -> bool {
        self.head_queued == self.head.len() && self.next >= self.drip_from && self.next < self.end
    }

    /// When the next dripped byte may be queued, while dripping.
    fn next_drip(&self) -> Option<Instant> {
        self.drip_at.filter(|_| self.dripping())
    }

    /// Generates the next piece into the outbox; false when the response is all queued.
    fn refill(&mut self) -> bool {
        self.outbox.clear();
        self.outbox_sent = 0;
        self.sealed = false;
        if self.head_queued < self.head.len() {
            self.outbox.extend_from_slice(&self.head);
            self.head_queued = self.head.len();
            return true;
        }
        if self.next < self.end {
            // Vary chunk sizes so chunk boundaries fall everywhere in segments.
            let size = if self.next >= self.drip_from {
                1
            } else if self.chunked {
                (PIECE as u64 - (self.next % 4093)).min(self.end - self.next)
            } else {
                (PIECE as u64)
                    .min(self.end - self.next)
                    .min(self.drip_from - self.next)
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
/// `secure_origin` is where `/tohttps` points; `served` counts the requests before this one.
fn respond(request: &[u8], served: u64, secure_origin: Option<&str>) -> Option<Response> {
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
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let request = RequestView {
        range_start,
        head_only,
        authorization: header("authorization"),
        if_modified_since: header("if-modified-since"),
        served,
        secure_origin,
    };
    Some(wrapped_route(path, &request))
}

/// What the wrapping routes look at in a request.
struct RequestView<'a> {
    range_start: Option<u64>,
    head_only: bool,
    authorization: Option<&'a str>,
    if_modified_since: Option<&'a str>,
    served: u64,
    secure_origin: Option<&'a str>,
}

/// The routes that wrap another (`/auth`, `/lastmod`, `/disposition`, `/flaky`): they add a
/// condition or a header field to the route of the rest of the path.
fn wrapped_route(path: &str, request: &RequestView<'_>) -> Response {
    let trimmed = path.trim_start_matches('/');
    let (first, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let (argument, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let inner = |request: &RequestView<'_>| wrapped_route(&format!("/{rest}"), request);
    match first {
        "auth" => {
            let pair: Vec<u8> = (0..argument.len() / 2)
                .filter_map(|i| u8::from_str_radix(argument.get(2 * i..2 * i + 2)?, 16).ok())
                .collect();
            let expected = format!("Basic {}", crate::http::auth::base64(&pair));
            if request.authorization == Some(expected.as_str()) {
                inner(request)
            } else {
                let mut response = route("/status/401", None, request.head_only, None);
                response.add_header("WWW-Authenticate: Basic realm=\"sim\", charset=\"UTF-8\"");
                response
            }
        }
        "lastmod" => {
            let modified = argument.trim_end_matches('!').parse::<i64>().unwrap_or(0);
            let since = request
                .if_modified_since
                .filter(|_| !argument.ends_with('!'))
                .and_then(crate::http::date::parse_http_date);
            let mut response = if since.is_some_and(|since| since >= modified) {
                empty_response(304)
            } else {
                inner(request)
            };
            let date = crate::http::date::format_http_date(modified);
            response.add_header(&format!("Last-Modified: {date}"));
            response
        }
        "disposition" => {
            let mut response = inner(request);
            let name = crate::http::auth::percent_decode(argument);
            response.add_header(&format!(
                "Content-Disposition: attachment; filename=\"{name}\""
            ));
            response
        }
        "flaky" => {
            if request.served < argument.parse::<u64>().unwrap_or(0) {
                route("/status/503", None, request.head_only, None)
            } else {
                inner(request)
            }
        }
        _ => route(
            path,
            request.range_start,
            request.head_only,
            request.secure_origin,
        ),
    }
}

/// A response without a body (304).
fn empty_response(status: u16) -> Response {
    let mut response = route("/status/200", None, true, None);
    response.head = format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\nServer: xdpget-sim\r\n\r\n",
        reason(status)
    )
    .into_bytes();
    response
}

fn route(
    path: &str,
    range_start: Option<u64>,
    head_only: bool,
    secure_origin: Option<&str>,
) -> Response {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let number = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
    let drip_from = match parts.first().copied() {
        Some("drip") => number(2).unwrap_or(0),
        _ => u64::MAX,
    };
    let (status, mut headers, body, chunked) = match (parts.first().copied(), number(1)) {
        (Some("file" | "drip"), Some(len)) => match range_start {
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
        (Some("tohttps"), _) if secure_origin.is_some() => {
            let rest = parts.get(1..).map(|p| p.join("/")).unwrap_or_default();
            let origin = secure_origin.unwrap_or_default();
            (
                301,
                format!("Location: {origin}/{rest}\r\nContent-Length: 0\r\n"),
                0..0,
                false,
            )
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
    let cut = parts.first() == Some(&"short");
    Response {
        head,
        head_queued: 0,
        next: body.start,
        end: body.end,
        chunked: chunked && !head_only,
        chunked_done: false,
        cut,
        sealed: false,
        close_notify_queued: false,
        outbox: Vec::with_capacity(PIECE + 64),
        outbox_sent: 0,
        drip_from,
        drip_at: None,
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
        304 => "Not Modified",
        401 => "Unauthorized",
        416 => "Range Not Satisfiable",
        503 => "Service Unavailable",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// The server address simulations use, and the client's.
pub const SERVER_ADDRESS: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
pub const CLIENT_ADDRESS: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 61000);
pub const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
pub const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
