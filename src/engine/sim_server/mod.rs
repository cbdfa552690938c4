//! The simulator's HTTP server: a [`Host`] with listeners on port 80 (and, with TLS, a
//! second port), whose sessions serve the generated resources of [`routes`], plugged into
//! the far end of the simulated link as its [`SimPeer`].
//!
//! The same host code as the client's, in passive open: the driver layer (`driver::sim`)
//! only carries frames. Every body byte at offset `i` is `content::fill(CONTENT_SEED, i, …)`,
//! so a test checks a download against `content::sha256(CONTENT_SEED, N)`.

mod routes;
mod session;
mod tls;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use routes::CONTENT_SEED;
use session::HttpSession;

use super::host::{Handle, Host};
use crate::driver::sim::SimPeer;
use crate::tcp::{self, TcpStats};
use crate::time::Instant;
use crate::wire::EthernetAddress;

/// The server address simulations use, and the client's.
pub const SERVER_ADDRESS: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
pub const CLIENT_ADDRESS: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 61000);
pub const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
pub const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);

/// Called after every event with the gauges of the oldest live connection: traces and plots.
pub type TraceHook = Box<dyn FnMut(Instant, &TcpStats)>;

/// The simulated server host.
pub struct SimServer {
    address: SocketAddrV4,
    mac: EthernetAddress,
    config: tcp::Config,
    host: Host<HttpSession>,
    trace: Option<TraceHook>,
    /// Connections in the order they were accepted (the trace follows the oldest live one).
    accepted: Vec<Handle>,
    /// Requests answered so far, shared with every session (`/flaky`).
    requests: Arc<AtomicU64>,
    /// The HTTPS port and its certificate, if any.
    tls: Option<(u16, Arc<rustls::ServerConfig>)>,
    /// Fatal TLS alerts received from clients, every connection's.
    tls_alerts: tls::AlertLog,
    /// Frames arrived since the last dispatch.
    dirty: bool,
}

impl SimServer {
    /// A server at `address` with MAC `mac`, using `config` for every connection, except
    /// that it never offers SACK: its sender is our SACK-less NewReno, which counts duplicate
    /// ACKs and ignores SACK blocks, and a client that sees SACK-permitted may compress its
    /// duplicate ACKs (as Linux does) on the assumption that the blocks are read.
    pub fn new(address: SocketAddrV4, mac: EthernetAddress, config: tcp::Config) -> SimServer {
        let mut server = SimServer {
            address,
            mac,
            config: tcp::Config {
                sack: false,
                ..config
            },
            host: Host::new(mac),
            trace: None,
            accepted: Vec::new(),
            requests: Arc::default(),
            tls: None,
            tls_alerts: Arc::default(),
            dirty: false,
        };
        server.listen();
        server
    }

    /// Also serves HTTPS on `port` of the same address, with `config`'s certificate.
    pub fn with_tls(mut self, port: u16, config: Arc<rustls::ServerConfig>) -> SimServer {
        self.tls = Some((port, config));
        self.listen();
        self
    }

    /// Records the oldest live connection's gauges after every event.
    pub fn with_trace(mut self, hook: TraceHook) -> SimServer {
        self.trace = Some(hook);
        self
    }

    /// A fresh host listening on the HTTP port, and on the HTTPS port with TLS.
    fn listen(&mut self) {
        let mut host = Host::new(self.mac);
        let secure_origin = self
            .tls
            .as_ref()
            .map(|(port, _)| format!("https://{}:{port}", self.address.ip()));
        let requests = Arc::clone(&self.requests);
        let origin = secure_origin.clone();
        host.listen(
            SocketAddr::V4(self.address),
            self.config.clone(),
            self.config.mtu,
            Box::new(move |_| {
                Some(HttpSession::new(
                    Arc::clone(&requests),
                    None,
                    origin.clone(),
                ))
            }),
        );
        if let Some((port, config)) = &self.tls {
            let requests = Arc::clone(&self.requests);
            let config = Arc::clone(config);
            let alerts = Arc::clone(&self.tls_alerts);
            host.listen(
                SocketAddr::V4(SocketAddrV4::new(*self.address.ip(), *port)),
                self.config.clone(),
                self.config.mtu,
                Box::new(move |_| {
                    let tls = tls::TlsServerSession::new(Arc::clone(&config), Arc::clone(&alerts))?;
                    Some(HttpSession::new(
                        Arc::clone(&requests),
                        Some(tls),
                        secure_origin.clone(),
                    ))
                }),
            );
        }
        self.host = host;
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
            .map_or_else(|_| Vec::new(), |alerts| alerts.clone())
    }

    /// Statistics of every connection so far (the sender's side of each transfer): those
    /// that have gone, then the live ones.
    pub fn connection_stats(&self) -> Vec<TcpStats> {
        let mut all: Vec<TcpStats> = self.host.history().iter().map(|r| r.stats).collect();
        all.extend(self.host.connections().map(|(_, c)| *c.stats()));
        all
    }

    /// What the server's host did with the frames it got.
    pub fn counters(&self) -> crate::engine::host::HostCounters {
        self.host.counters()
    }

    fn trace(&mut self, now: Instant) {
        let Some(hook) = self.trace.as_mut() else {
            return;
        };
        let host = &self.host;
        self.accepted.retain(|h| host.contains(*h));
        if let Some(first) = self.accepted.first().and_then(|h| host.connection(*h)) {
            hook(now, first.stats());
        }
    }

    /// Forgets sessions that are over (their connection closed).
    fn reap(&mut self) {
        while self.host.take_finished().is_some() {}
    }

    fn note_accepted(&mut self, before: u64) {
        if self.trace.is_some() && self.host.counters().accepted > before {
            let known = &self.accepted;
            let new: Vec<Handle> = self
                .host
                .connections()
                .map(|(h, _)| h)
                .filter(|h| !known.contains(h))
                .collect();
            self.accepted.extend(new);
        }
    }
}

impl SimPeer for SimServer {
    fn on_frame(&mut self, now: Instant, frame: &[u8]) {
        let before = self.host.counters().accepted;
        self.host.on_frame(now, frame);
        self.note_accepted(before);
        self.dirty = true;
        self.trace(now);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if core::mem::take(&mut self.dirty) {
            self.host.dispatch(now);
        }
        let frame = self.host.next_frame(now, buf);
        // Finished sessions only wait to be collected: once per call is enough.
        self.reap();
        frame
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.host.poll_timeout()
    }

    fn on_timeout(&mut self, now: Instant) {
        self.host.dispatch(now);
        self.reap();
        self.trace(now);
    }
}
