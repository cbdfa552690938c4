//! A whole download through the simulator: `xdpget sim` and the loss-matrix tests.
//!
//! The client is the CLI's own [`super::fetch`] over [`SimNetwork`], so the real engine loop
//! ([`super::transfer`]) writes into the real file sink;
//! the far end is [`SimServer`] (our TCP engine in passive open serving generated content)
//! behind a [`Link`] with rate, delay, queue and impairments. Everything random derives from
//! one seed, and time is virtual: the same seed gives the same run, packet for packet.

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::EngineError;
use super::fetch::{self, FetchOptions, Output};
use super::network::SimNetwork;
use super::progress::Progress;
use super::stats::EngineStats;
use super::transfer::TransferOptions;
use crate::driver::sim::content;
use crate::driver::sim::link::{Link, LinkConfig, LinkCounters, PathConfig};
use crate::driver::sim::{SimDriver, link::Direction};
use crate::driver::{Driver, DriverStats};
use crate::engine::sim_server::{CONTENT_SEED, SERVER_ADDRESS, SERVER_MAC, SimServer, TraceHook};
use crate::tcp::{self, TcpStats};

/// What to simulate.
pub struct Simulation {
    /// Body bytes to transfer.
    pub size: u64,
    /// The path in each direction (rate, delay, queue, impairments).
    pub path: PathConfig,
    pub seed: u64,
    /// Link MTU (largest IPv4 packet).
    pub mtu: usize,
    /// The step bound: events the simulator may process before it gives up.
    pub max_events: u64,
    /// The receiver's largest advertised window. `None`: the bandwidth-delay product plus
    /// the bottleneck queue, the largest window slow start cannot overflow the queue with.
    pub receive_window: Option<usize>,
    /// Where the body is written; `None` for a temporary file removed afterwards.
    pub output: Option<PathBuf>,
    /// Gauges of the sender after every event, for traces and plots.
    pub trace: Option<TraceHook>,
}

/// What happened, in the terms `xdpget sim --json` reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SimulationReport {
    /// Body bytes that arrived in the output file.
    pub bytes: u64,
    /// Whether the file's SHA-256 equals the SHA-256 of what the server sent.
    pub intact: bool,
    /// Body bits per second of simulated time, from our SYN to the last body byte.
    pub goodput_bps: f64,
    /// Segments the sender sent again (all causes).
    pub retransmits: u64,
    pub fast_retransmits: u64,
    pub rtos: u64,
    /// Simulated seconds from our SYN to the end of the exchange.
    pub sim_seconds: f64,
    /// Real seconds the simulation took.
    pub wall_seconds: f64,
    /// The sender's TCP counters (server side of the transfer).
    pub sender: TcpStats,
    /// The receiver's driver counters.
    pub receiver: DriverStats,
    /// Link counters, server to client (data) and client to server (ACKs).
    pub data_path: LinkCounters,
    pub ack_path: LinkCounters,
    /// Simulator events processed (bounded by `max_events`).
    pub events: u64,
}

/// Simulations started by this process, to give each its own temporary file.
static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs the simulation to the end (or to its step bound, which is an error).
pub fn run(simulation: Simulation) -> Result<SimulationReport, EngineError> {
    let wall_start = std::time::Instant::now();
    let Simulation {
        size,
        path,
        seed,
        mtu,
        max_events,
        receive_window,
        output,
        trace,
    } = simulation;

    let secret = seed_secret(seed);
    let rtt = path.delay * 2;
    let bdp = path.rate_bps.map_or(16 << 20, |rate| {
        (rate as u128 * rtt.as_micros() / 8_000_000) as usize
    });
    let queue = path.queue_limit_bytes.unwrap_or(bdp);
    // The rate, the BDP and the queue count frame bytes; the window counts payload bytes.
    let payload_share = |bytes: usize| bytes * (mtu - 52) / (mtu + 14);
    let receive_window = receive_window
        .unwrap_or_else(|| payload_share(bdp + queue))
        .clamp(64 << 10, 1 << 30);
    let server_config = tcp::Config {
        mtu,
        send_buffer_capacity: (4 * bdp).max(4 << 20),
        isn_secret: secret,
        msl: Duration::from_millis(100),
        ..tcp::Config::default()
    };
    let mut server = SimServer::new(SERVER_ADDRESS, SERVER_MAC, server_config);
    if let Some(hook) = trace {
        server = server.with_trace(hook);
    }
    let link = Link::new(LinkConfig::symmetric(seed, path))
        .map_err(|e| EngineError::Setup(format!("invalid simulated link: {e}")))?;
    let driver = SimDriver::new(link, server)
        .with_max_frame_len(mtu + 14)
        .with_max_events(max_events);
    let mut network = SimNetwork::new(driver, mtu);

    let url = format!("http://{}/file/{size}", SERVER_ADDRESS.ip());
    let (path_on_disk, temporary) = match output {
        Some(p) => (p, false),
        None => (
            std::env::temp_dir().join(format!(
                "xdpget-sim-{}-{seed}-{}.bin",
                std::process::id(),
                RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )),
            true,
        ),
    };
    // The client is the CLI's own fetch, once: a failed try is the simulation's result.
    let options = FetchOptions {
        output: Output::Path(path_on_disk.clone()),
        tries: 1,
        transfer: TransferOptions {
            tcp: tcp::Config {
                isn_secret: secret,
                max_receive_window: receive_window,
                initial_receive_window: receive_window,
                ..tcp::Config::default()
            },
            idle_before_wait: Duration::ZERO,
            ..TransferOptions::default()
        },
        ..FetchOptions::default()
    };
    let started = network.driver().now();
    let fetched = fetch::fetch(
        &mut network,
        &url,
        &options,
        &Progress::default(),
        &mut EngineStats::default(),
        &mut |_: String| {},
    )?;
    let finished = network.driver().now();
    let bytes = fetched.file_len;
    let intact = file_sha256(&path_on_disk)? == content::sha256(CONTENT_SEED, size);
    if temporary {
        let _ = std::fs::remove_file(&path_on_disk);
    }

    let sim_seconds = (finished - started).as_secs_f64();
    let driver = network.driver();
    let sender = driver
        .peer()
        .connection_stats()
        .first()
        .copied()
        .unwrap_or_default();
    Ok(SimulationReport {
        bytes,
        intact,
        goodput_bps: if sim_seconds > 0.0 {
            bytes as f64 * 8.0 / sim_seconds
        } else {
            0.0
        },
        retransmits: sender.retransmits,
        fast_retransmits: sender.fast_retransmits,
        rtos: sender.rtos,
        sim_seconds,
        wall_seconds: wall_start.elapsed().as_secs_f64(),
        sender,
        receiver: driver.stats(),
        data_path: driver.link().counters(Direction::BToA),
        ack_path: driver.link().counters(Direction::AToB),
        events: driver.events(),
    })
}

/// The RFC 6528 secret both ends use, from the simulation's seed.
fn seed_secret(seed: u64) -> [u8; 16] {
    let mut secret = [0u8; 16];
    secret[..8].copy_from_slice(&seed.to_le_bytes());
    secret[8..].copy_from_slice(&(!seed).to_le_bytes());
    secret
}

fn file_sha256(path: &std::path::Path) -> Result<[u8; 32], EngineError> {
    use std::io::Read;
    let read_error = |e| EngineError::Sink(crate::sink::SinkError::from_io("read", path, 0, e));
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(read_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::sim::impair::Impairments;

    fn path(rate_bps: u64, rtt_ms: u64, impairments: Impairments) -> PathConfig {
        PathConfig {
            rate_bps: Some(rate_bps),
            delay: Duration::from_millis(rtt_ms / 2),
            queue_limit_bytes: Some(1 << 20),
            queue_limit_packets: None,
            impairments,
        }
    }

    #[test]
    fn a_clean_link_delivers_the_file_intact() {
        let report = run(Simulation {
            size: 1 << 20,
            path: path(100_000_000, 10, Impairments::NONE),
            seed: 1,
            mtu: 1500,
            max_events: 1_000_000,
            receive_window: None,
            output: None,
            trace: None,
        })
        .unwrap();
        assert!(report.intact, "{report:#?}");
        assert_eq!(report.bytes, 1 << 20);
    }
}
