//! `--limit-rate` through the whole download path in the simulator (issue 15): the fetch of
//! a file over a 100 Mbit/s link, paced by the receive window the client advertises
//! (`tcp::pacer` in the engine's client session), holds the average rate within 5 % and
//! never forces the server (our NewReno sender) into a retransmission timeout.

use std::time::Duration;

use xdpget::driver::Driver;
use xdpget::driver::sim::content;
use xdpget::driver::sim::impair::Impairments;
use xdpget::engine::fetch::{self, FetchOptions, Output};
use xdpget::engine::progress::Progress;
use xdpget::engine::sim_server::{CONTENT_SEED, SERVER_ADDRESS};
use xdpget::engine::stats::EngineStats;

#[path = "common/sim.rs"]
mod sim;
use sim::{fetch_options, sim_network};

/// Downloads `len` bytes at `rate` bytes per second (`None`: no limit); returns the virtual
/// time it took, the server's RTOs and the window-limited time `--stats` reports.
fn download(len: u64, rate: Option<u64>, seed: u64) -> (Duration, u64, Duration) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut network = sim_network(Impairments::default(), seed, |server| server);
    let output = Output::Auto {
        directory: Some(dir.path().to_path_buf()),
    };
    let mut options = FetchOptions {
        tries: 1,
        ..fetch_options(output, seed)
    };
    options.transfer.limit_rate = rate;
    let mut stats = EngineStats::default();
    let started = network.driver().now();
    let url = format!("http://{}/file/{len}", SERVER_ADDRESS.ip());
    let fetched = fetch::fetch(
        &mut network,
        &url,
        &options,
        &Progress::default(),
        &mut stats,
        &mut |line: String| eprintln!("notice: {line}"),
    )
    .expect("the paced download completes");
    let took = network.driver().now() - started;
    assert_eq!(fetched.file_len, len);
    let body = std::fs::read(dir.path().join(len.to_string())).expect("the file is there");
    let mut expected = vec![0u8; len as usize];
    content::fill(CONTENT_SEED, 0, &mut expected);
    assert!(body == expected, "the paced download is not byte-exact");
    let rtos = network
        .driver()
        .peer()
        .connection_stats()
        .iter()
        .map(|s| s.rtos)
        .sum();
    (took, rtos, stats.window_limited)
}

#[test]
fn the_average_rate_holds_within_five_percent_without_an_rto() {
    // (bytes, rate): far below the link's 12.5 MB/s, so the window alone sets the pace.
    for (case, (len, rate)) in [
        (4u64 << 20, 1u64 << 20),
        (8 << 20, 4 << 20),
        (1 << 20, 100 << 10),
    ]
    .into_iter()
    .enumerate()
    {
        let (took, rtos, window_limited) = download(len, Some(rate), 40 + case as u64);
        let average = len as f64 / took.as_secs_f64();
        let error = (average - rate as f64).abs() / rate as f64;
        eprintln!(
            "{len} bytes at {rate} B/s: {took:?}, average {average:.0} B/s ({:+.2} %), \
             {rtos} RTOs, window-limited {window_limited:?}",
            100.0 * (average - rate as f64) / rate as f64
        );
        assert!(
            error <= 0.05,
            "average {average:.0} B/s for a limit of {rate} B/s"
        );
        assert_eq!(
            rtos, 0,
            "the pacing forced the server into a retransmission timeout"
        );
        assert!(
            window_limited >= took / 2,
            "the window set the pace for only {window_limited:?} of {took:?}"
        );
    }
}

#[test]
fn without_a_limit_the_same_link_is_much_faster() {
    // The control: the link carries the file far faster than the paced runs above, so the
    // pacer, not the link, made them slow.
    let (took, _, _) = download(4 << 20, None, 7);
    assert!(took < Duration::from_secs(1), "4 MiB took {took:?} unpaced");
}
