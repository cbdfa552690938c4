//! Segmented downloads (`-x N`, `engine::segmented`) in the simulator: the fetch task as the
//! CLI runs it, over a simulated link to the simulated server, with virtual time.
//!
//! - 16 connections fill one file byte-exact under 5 % loss with reordering.
//! - On a long lossy path, 8 connections beat one by far (each is Mathis-bound).
//! - Without a validator (or ranges), one connection, with a notice.
//! - A file that changes on the server mid-download stops it: never stitched.
//! - A download that fails part-way keeps its finished ranges; `-c -x` fetches the holes.

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;
use xdpget::driver::Driver;
use xdpget::driver::sim::content;
use xdpget::driver::sim::impair::Impairments;
use xdpget::driver::sim::link::PathConfig;
use xdpget::engine::EngineError;
use xdpget::engine::fetch::{FetchOptions, Fetched, Output, fetch};
use xdpget::engine::network::SimNetwork;
use xdpget::engine::progress::Progress;
use xdpget::engine::sim_server::{CONTENT_SEED, SERVER_ADDRESS};
use xdpget::engine::stats::EngineStats;
use xdpget::engine::transfer::MinSpeed;
use xdpget::time::Instant;

#[path = "common/sim.rs"]
mod sim;
use sim::{fetch_options, sim_network, sim_network_on};

const MIB: u64 = 1 << 20;

fn url(path: &str) -> String {
    format!("http://{}{path}", SERVER_ADDRESS.ip())
}

/// Downloads `path` with `options`; the result and the notices printed.
fn download(
    network: &mut SimNetwork,
    path: &str,
    options: &FetchOptions,
) -> (Result<Fetched, EngineError>, Vec<String>) {
    let progress = Progress::default();
    let mut stats = EngineStats::default();
    let mut notices = Vec::new();
    let mut notice = |line: String| {
        eprintln!("{line}");
        notices.push(line);
    };
    let result = fetch(
        network,
        &url(path),
        options,
        &progress,
        &mut stats,
        &mut notice,
    );
    (result, notices)
}

fn options(output: &Path, connections: usize, seed: u64) -> FetchOptions {
    let mut options = fetch_options(Output::Path(output.to_path_buf()), seed);
    options.connections = connections;
    options
}

fn assert_content(path: &Path, len: u64) {
    let bytes = std::fs::read(path).expect("downloaded file");
    assert_eq!(bytes.len() as u64, len, "{}", path.display());
    let mut expected = vec![0u8; len as usize];
    content::fill(CONTENT_SEED, 0, &mut expected);
    // Not assert_eq!: a mismatch would print two 16 MiB vectors.
    let first_difference = bytes.iter().zip(&expected).position(|(a, b)| a != b);
    assert!(
        first_difference.is_none(),
        "{} differs from the server's at byte {first_difference:?}",
        path.display()
    );
}

/// How many connections the server saw.
fn server_connections(network: &SimNetwork) -> usize {
    network.driver().peer().connection_stats().len()
}

#[test]
fn sixteen_connections_fill_one_file_under_loss_and_reordering() {
    let impaired = Impairments {
        loss: 0.05,
        duplicate: 0.005,
        reorder: 0.02,
        reorder_delay: Duration::from_millis(3),
        corrupt: 0.002,
    };
    let size = 24 * MIB + 12345;
    for seed in [11u64, 12] {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("x16");
        let mut network = sim_network(impaired, seed, |server| server);
        let (result, notices) = download(
            &mut network,
            &format!("/etag/s{seed}/file/{size}"),
            &options(&path, 16, seed),
        );
        let fetched = result.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(fetched.file_len, size);
        assert_content(&path, size);
        assert!(
            server_connections(&network) >= 16,
            "seed {seed}: {} connections",
            server_connections(&network)
        );
        assert!(
            !notices.iter().any(|n| n.contains("one connection")),
            "{notices:?}"
        );
    }
}

#[test]
fn eight_connections_beat_one_on_a_long_lossy_path() {
    let rtt = Duration::from_millis(20);
    let path_config = PathConfig {
        rate_bps: Some(1_000_000_000),
        delay: rtt / 2,
        queue_limit_bytes: Some(16 << 20),
        queue_limit_packets: None,
        impairments: Impairments::loss(0.01),
    };
    let size = 32 * MIB;
    let mut took = Vec::new();
    for connections in [1, 8] {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("f");
        let mut network = sim_network_on(path_config, 21, 200_000_000, |server| server);
        let mut options = options(&path, connections, 21);
        options.transfer.tcp.max_receive_window = 16 << 20;
        options.transfer.tcp.initial_receive_window = 16 << 20;
        let (result, _) = download(&mut network, &format!("/etag/a/file/{size}"), &options);
        result.unwrap_or_else(|e| panic!("-x {connections}: {e}"));
        assert_content(&path, size);
        // Virtual time: the network starts at zero.
        let elapsed = network.driver().now() - Instant::ZERO;
        took.push(elapsed);
        eprintln!("-x {connections}: {elapsed:?} of simulated time");
    }
    // Each connection is bound by Mathis (about 7 Mbit/s here): eight get far more.
    assert!(
        took[1] * 4 < took[0],
        "-x 8 took {:?}, -x 1 {:?}",
        took[1],
        took[0]
    );
}

#[test]
fn without_a_validator_or_ranges_one_connection_does_it_all() {
    for (route, why) in [
        ("/file/8388608", "no validator"),
        ("/etag/v/norange/8388608", "does not send ranges"),
    ] {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("one");
        let mut network = sim_network(Impairments::NONE, 5, |server| server);
        let (result, notices) = download(&mut network, route, &options(&path, 4, 5));
        result.unwrap_or_else(|e| panic!("{route}: {e}"));
        assert_content(&path, 8 * MIB);
        assert_eq!(server_connections(&network), 1, "{route}");
        let expected = match why {
            "no validator" => "no validator",
            _ => "does not send ranges",
        };
        assert!(
            notices
                .iter()
                .any(|n| n.starts_with("Downloading over one connection") && n.contains(expected)),
            "{route}: {notices:?}"
        );
    }
}

#[test]
fn a_file_that_changes_on_the_server_is_never_stitched() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("changing");
    let mut network = sim_network(Impairments::NONE, 6, |server| server);
    // The ETag is "v1" for the first request and "v2" after: the second connection's
    // If-Range no longer matches, and the server answers 200 with the whole file.
    let mut options = options(&path, 4, 6);
    options.tries = 1;
    let (result, _) = download(&mut network, "/etagafter/1/file/8388608", &options);
    match result {
        Err(EngineError::Changed(_)) => {}
        other => panic!("expected a changed-file error, got {other:?}"),
    }
    assert!(!path.exists(), "no complete-looking file");
}

#[test]
fn a_failed_segmented_download_resumes_exactly_its_holes() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("holes");
    let size = 16 * MIB;
    let mut network = sim_network(Impairments::NONE, 7, |server| server);
    // Past 10 MiB the server drips a byte a second: those connections are too slow and
    // fail; the try fails with the rest of the file finished.
    let mut first = options(&path, 4, 7);
    first.tries = 1;
    first.transfer.min_speed = Some(MinSpeed {
        bytes_per_second: 10_000,
        period: Duration::from_secs(1),
    });
    let (result, _) = download(
        &mut network,
        &format!("/etag/h/drip/{size}/{}", 10 * MIB),
        &first,
    );
    assert!(result.is_err(), "the dripping part fails: {result:?}");
    assert!(!path.exists());
    let served_first: u64 = sent_bytes(&network);

    let mut network = sim_network(Impairments::NONE, 8, |server| server);
    let mut resume = options(&path, 4, 8);
    resume.resume = true;
    let (result, _) = download(&mut network, &format!("/etag/h/file/{size}"), &resume);
    let fetched = result.expect("-c -x 4 completes");
    assert_eq!(fetched.file_len, size);
    assert_content(&path, size);
    let served_again = sent_bytes(&network);
    // The holes only: at most the 6 MiB past the drip (and some heads and repeats).
    assert!(
        served_again < 7 * MIB,
        "resume fetched {served_again} bytes (first run: {served_first})"
    );
}

/// Bytes the server sent over all its connections.
fn sent_bytes(network: &SimNetwork) -> u64 {
    network
        .driver()
        .peer()
        .connection_stats()
        .iter()
        .map(|s| s.bytes_sent)
        .sum()
}
