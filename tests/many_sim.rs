//! Many downloads on one host over one simulated link (issue 10): the busy-poll thread's
//! tasks (`engine::fetch::fetch_on`) run together on one `engine::runtime` loop, exactly as
//! `xdpget --parallel N` runs them.
//!
//! - N connections over one lossy link share it fairly (Jain's fairness index ≥ 0.9 over
//!   their goodputs) and each still follows the Mathis et al. estimate, as tests/reno.rs
//!   checks for one.
//! - `--parallel 4` over four URLs is byte-exact, on a clean and on an impaired link.
//! - A retry's back-off is a deadline of the loop: another download goes on meanwhile.
//!
//! Time is virtual (the driver's clock), so goodputs are per simulated second.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;
use xdpget::driver::sim::content;
use xdpget::driver::sim::impair::Impairments;
use xdpget::driver::sim::link::PathConfig;
use xdpget::engine::EngineError;
use xdpget::engine::fetch::{FetchOptions, Fetched, Output, fetch_on};
use xdpget::engine::network::SimNetwork;
use xdpget::engine::progress::Progress;
use xdpget::engine::runtime::{self, Executor, LoopSettings, Reactor};
use xdpget::engine::sim_server::{CONTENT_SEED, SERVER_ADDRESS};
use xdpget::time::Instant;

#[path = "common/sim.rs"]
mod sim;
use sim::{fetch_options as options, sim_network, sim_network_on};

/// A network of `rate` and `rtt` with `impairments` each way and a queue of `queue` bytes.
fn network(
    rate: u64,
    rtt: Duration,
    queue: usize,
    impairments: Impairments,
    seed: u64,
) -> SimNetwork {
    let path = PathConfig {
        rate_bps: Some(rate),
        delay: rtt / 2,
        queue_limit_bytes: Some(queue),
        queue_limit_packets: None,
        impairments,
    };
    sim_network_on(path, seed, 200_000_000, |server| server)
}

fn url(path: &str) -> String {
    format!("http://{}{path}", SERVER_ADDRESS.ip())
}

/// What one task of a run did: its result and its start and end on the simulated clock.
struct Outcome {
    result: Result<Fetched, EngineError>,
    started: Instant,
    ended: Instant,
}

impl Outcome {
    fn ok(&self, what: &str) -> &Fetched {
        match &self.result {
            Ok(fetched) => fetched,
            Err(e) => panic!("{what}: {e}"),
        }
    }

    /// Body bits per simulated second.
    fn goodput(&self, bytes: u64) -> f64 {
        bytes as f64 * 8.0 / (self.ended - self.started).as_secs_f64()
    }
}

/// Runs one task per URL, `parallel` at once, on one loop over `network`.
fn run_all(
    network: &mut SimNetwork,
    urls: &[String],
    options: &[FetchOptions],
    parallel: usize,
) -> Vec<Outcome> {
    let progresses: Vec<Progress> = urls.iter().map(|_| Progress::default()).collect();
    let reactor = Reactor::default();
    let outcomes: Vec<RefCell<Option<Outcome>>> = urls.iter().map(|_| RefCell::new(None)).collect();
    let mut executor = Executor::new(parallel);
    for (i, url) in urls.iter().enumerate() {
        let (reactor, progress, outcome, options) =
            (&reactor, &progresses[i], &outcomes[i], &options[i]);
        executor.spawn(async move {
            let started = reactor.now();
            let mut notices = |line: String| eprintln!("[{i}] {line}");
            let result = fetch_on(reactor, url, options, progress, &mut notices).await;
            let ended = reactor.now();
            *outcome.borrow_mut() = Some(Outcome {
                result,
                started,
                ended,
            });
        });
    }
    runtime::run(
        &reactor,
        network,
        &mut executor,
        &LoopSettings::of(&options[0].transfer),
    )
    .expect("the loop ends without a driver error");
    drop(executor);
    outcomes
        .into_iter()
        .map(|o| o.into_inner().expect("every task ended"))
        .collect()
}

fn assert_content(path: &Path, len: u64) {
    let bytes = std::fs::read(path).expect("downloaded file");
    assert_eq!(bytes.len() as u64, len, "{}", path.display());
    let mut expected = vec![0u8; len as usize];
    content::fill(CONTENT_SEED, 0, &mut expected);
    assert!(
        bytes == expected,
        "{} differs from the server's",
        path.display()
    );
}

/// Jain's fairness index: (Σx)² / (n·Σx²), 1 when all are equal, 1/n when one takes all.
fn jain(values: &[f64]) -> f64 {
    let sum: f64 = values.iter().sum();
    let squares: f64 = values.iter().map(|v| v * v).sum();
    sum * sum / (values.len() as f64 * squares)
}

#[test]
fn four_downloads_at_once_are_byte_exact() {
    let lossy = Impairments {
        loss: 0.01,
        duplicate: 0.005,
        reorder: 0.02,
        reorder_delay: Duration::from_millis(3),
        corrupt: 0.002,
    };
    for (impairments, seed) in [(Impairments::NONE, 1), (lossy, 2)] {
        let dir = TempDir::new().unwrap();
        let mut network = sim_network(impairments, seed, |server| server);
        let sizes = [1_000_000u64, 3 << 20, 777_777, 2 << 20];
        let urls: Vec<String> = sizes.iter().map(|n| url(&format!("/file/{n}"))).collect();
        let all: Vec<FetchOptions> = sizes
            .iter()
            .enumerate()
            .map(|(i, _)| options(Output::Path(dir.path().join(format!("f{i}"))), seed))
            .collect();
        let outcomes = run_all(&mut network, &urls, &all, 4);
        for (i, (outcome, size)) in outcomes.iter().zip(sizes).enumerate() {
            let fetched = outcome.ok(&urls[i]);
            assert_eq!(fetched.file_len, size);
            assert_content(&dir.path().join(format!("f{i}")), size);
        }
        // They ran at once: every one started before any ended.
        let first_end = outcomes.iter().map(|o| o.ended).min().unwrap();
        assert!(outcomes.iter().all(|o| o.started < first_end));
        assert_eq!(network.driver().peer().connection_stats().len(), 4);
    }
}

#[test]
fn one_after_another_by_default() {
    let dir = TempDir::new().unwrap();
    let mut network = sim_network(Impairments::NONE, 3, |server| server);
    let urls: Vec<String> = [100_000, 200_000, 300_000]
        .iter()
        .map(|n| url(&format!("/file/{n}")))
        .collect();
    let all: Vec<FetchOptions> = (0..3)
        .map(|i| options(Output::Path(dir.path().join(format!("g{i}"))), 3))
        .collect();
    let outcomes = run_all(&mut network, &urls, &all, 1);
    for pair in outcomes.windows(2) {
        assert!(
            pair[0].ended <= pair[1].started,
            "the next starts after the last ended"
        );
    }
    for (i, size) in [100_000u64, 200_000, 300_000].into_iter().enumerate() {
        assert_content(&dir.path().join(format!("g{i}")), size);
    }
}

#[test]
fn connections_share_a_lossy_link_fairly_and_each_follows_mathis() {
    const N: usize = 4;
    const SIZE: u64 = 8 << 20;
    let p = 0.01;
    let rtt = Duration::from_millis(20);
    for seed in [1u64, 2] {
        let dir = TempDir::new().unwrap();
        let mut network = network(1_000_000_000, rtt, 16 << 20, Impairments::loss(p), seed);
        let urls: Vec<String> = (0..N).map(|_| url(&format!("/file/{SIZE}"))).collect();
        let all: Vec<FetchOptions> = (0..N)
            .map(|i| {
                let mut o = options(Output::Path(dir.path().join(format!("m{i}"))), seed);
                o.transfer.tcp.max_receive_window = 16 << 20;
                o.transfer.tcp.initial_receive_window = 16 << 20;
                o
            })
            .collect();
        let outcomes = run_all(&mut network, &urls, &all, N);
        let goodputs: Vec<f64> = outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| {
                o.ok(&urls[i]);
                o.goodput(SIZE)
            })
            .collect();
        let senders = network.driver().peer().connection_stats();
        let mss = senders[0].snd_mss as f64;
        let mathis = mss * 8.0 / rtt.as_secs_f64() * 1.22 / p.sqrt();
        let index = jain(&goodputs);
        eprintln!(
            "seed {seed}: goodputs {:?} Mbit/s, Mathis {:.2} Mbit/s, Jain {index:.3}",
            goodputs
                .iter()
                .map(|g| (g / 1e4).round() / 100.0)
                .collect::<Vec<_>>(),
            mathis / 1e6
        );
        assert!(
            index >= 0.9,
            "seed {seed}: Jain's index {index} over {goodputs:?}"
        );
        for goodput in &goodputs {
            let ratio = goodput / mathis;
            assert!(
                (0.5..=2.0).contains(&ratio),
                "seed {seed}: ratio {ratio} ({goodputs:?})"
            );
        }
        for i in 0..N {
            assert_content(&dir.path().join(format!("m{i}")), SIZE);
        }
    }
}

#[test]
fn a_retry_back_off_does_not_hold_up_another_download() {
    let dir = TempDir::new().unwrap();
    let mut network = sim_network(Impairments::NONE, 4, |server| server);
    // The server answers its first two requests (of any path) with 503. The first task
    // retries after 1 s, then 2 s; the second is a 2 MiB file, which (should one of the
    // 503s be its) retries after 50 ms.
    let urls = vec![
        url("/flaky/2/file/1000"),
        url(&format!("/file/{}", 2 << 20)),
    ];
    let mut flaky = options(Output::Path(dir.path().join("flaky")), 4);
    flaky.retry_on_http_error = vec![503];
    flaky.max_retry_pause = Duration::from_secs(5);
    let mut plain = options(Output::Path(dir.path().join("plain")), 4);
    plain.retry_on_http_error = vec![503];
    let outcomes = run_all(&mut network, &urls, &[flaky, plain], 2);
    outcomes[0].ok("flaky");
    outcomes[1].ok("plain");
    assert_content(&dir.path().join("flaky"), 1000);
    assert_content(&dir.path().join("plain"), 2 << 20);
    let waited = outcomes[0].ended - outcomes[0].started;
    let plain_took = outcomes[1].ended - outcomes[1].started;
    assert!(
        waited >= Duration::from_secs(1),
        "the flaky one paused: {waited:?}"
    );
    assert!(
        outcomes[1].ended < outcomes[0].ended && plain_took < Duration::from_secs(1),
        "the plain download went on during the pause: it took {plain_took:?}, the flaky one {waited:?}"
    );
}
