//! `xdpget serve` at the far end of the simulated link: a host of [`ServeConnection`]s as
//! the simulator's [`SimPeer`], so the server is tested without root, in virtual time,
//! against any client host (tests/serve_sim.rs).

use std::net::SocketAddr;

use super::connection::{ServeConfig, ServeConnection, listen};
use crate::driver::sim::SimPeer;
use crate::engine::host::{Host, HostCounters};
use crate::tcp::{self, TcpStats};
use crate::time::Instant;
use crate::wire::EthernetAddress;

/// The file server on the simulated link.
pub struct SimFileServer {
    host: Host<ServeConnection>,
    /// Frames arrived since the last dispatch.
    dirty: bool,
    requests: u64,
}

impl SimFileServer {
    /// A server with MAC `mac` listening on `local` with `tcp` (its MTU included).
    pub fn new(
        mac: EthernetAddress,
        local: SocketAddr,
        tcp: tcp::Config,
        config: ServeConfig,
    ) -> SimFileServer {
        let mut host = Host::new(mac);
        let mtu = tcp.mtu;
        listen(&mut host, local, tcp, mtu, config);
        SimFileServer {
            host,
            dirty: false,
            requests: 0,
        }
    }

    /// Connections accepted, and other frame counters.
    pub fn counters(&self) -> HostCounters {
        self.host.counters()
    }

    /// Connections still in the host.
    pub fn live_connections(&self) -> usize {
        self.host.connections().count()
    }

    /// Requests answered on connections that have finished.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// The sender's statistics of every connection so far, gone then live.
    pub fn connection_stats(&self) -> Vec<TcpStats> {
        let mut all: Vec<TcpStats> = self.host.history().iter().map(|r| r.stats).collect();
        all.extend(self.host.connections().map(|(_, c)| *c.stats()));
        all
    }

    fn reap(&mut self) {
        while let Some((_, finished)) = self.host.take_finished() {
            self.requests += u64::from(finished.served());
        }
    }
}

impl SimPeer for SimFileServer {
    fn on_frame(&mut self, now: Instant, frame: &[u8]) {
        self.host.on_frame(now, frame);
        self.dirty = true;
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if std::mem::take(&mut self.dirty) {
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
    }
}
