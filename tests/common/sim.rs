//! The simulated network the simulator tests download over (tests/http_sim.rs,
//! tests/https_sim.rs): a 100 Mbit/s link with 1 ms of delay and a 256 KiB queue to one
//! `SimServer`, everything random derived from one seed.

use std::time::Duration;

use xdpget::driver::sim::SimDriver;
use xdpget::driver::sim::impair::Impairments;
use xdpget::driver::sim::link::{Link, LinkConfig, PathConfig};
use xdpget::engine::fetch::{FetchOptions, Output};
use xdpget::engine::network::SimNetwork;
use xdpget::engine::sim_server::{SERVER_ADDRESS, SERVER_MAC, SimServer};
use xdpget::tcp;

pub const MTU: usize = 1500;
/// A bound on simulator events per network, so a stuck test fails instead of spinning.
pub const MAX_EVENTS: u64 = 20_000_000;

/// The network with `impairments`; `serve` finishes the server (e.g. adds TLS).
pub fn sim_network(
    impairments: Impairments,
    seed: u64,
    serve: impl FnOnce(SimServer) -> SimServer,
) -> SimNetwork {
    let path = PathConfig {
        rate_bps: Some(100_000_000),
        delay: Duration::from_millis(1),
        queue_limit_bytes: Some(256 << 10),
        queue_limit_packets: None,
        impairments,
    };
    sim_network_on(path, seed, MAX_EVENTS, serve)
}

/// A network over `path` (each way), bounded to `max_events` simulator events.
pub fn sim_network_on(
    path: PathConfig,
    seed: u64,
    max_events: u64,
    serve: impl FnOnce(SimServer) -> SimServer,
) -> SimNetwork {
    let server_config = tcp::Config {
        mtu: MTU,
        send_buffer_capacity: 4 << 20,
        isn_secret: secret(seed ^ 0x5e_77e7),
        msl: Duration::from_millis(100),
        ..tcp::Config::default()
    };
    let server = serve(SimServer::new(SERVER_ADDRESS, SERVER_MAC, server_config));
    let link = Link::new(LinkConfig::symmetric(seed, path)).expect("valid link configuration");
    let driver = SimDriver::new(link, server)
        .with_max_frame_len(MTU + 14)
        .with_max_events(max_events);
    SimNetwork::new(driver, MTU)
}

/// The CLI's defaults, tuned for virtual time: never spin before waiting (waiting is how
/// simulated time moves), short pauses between tries, and TCP keys from `seed`.
pub fn fetch_options(output: Output, seed: u64) -> FetchOptions {
    let mut options = FetchOptions {
        output,
        max_retry_pause: Duration::from_millis(50),
        ..FetchOptions::default()
    };
    options.transfer.idle_before_wait = Duration::ZERO;
    options.transfer.tcp.isn_secret = secret(seed);
    options
}

/// A 128-bit TCP key from `seed`, so sequence numbers repeat run to run.
pub fn secret(seed: u64) -> [u8; 16] {
    let mut secret = [0u8; 16];
    secret[..8].copy_from_slice(&seed.to_le_bytes());
    secret[8..].copy_from_slice(&(!seed).to_le_bytes());
    secret
}
