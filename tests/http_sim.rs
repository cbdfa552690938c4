//! The whole client over the simulator: `engine::fetch::fetch`, exactly as the CLI calls it,
//! against the simulated HTTP server (`engine::sim_server`) behind a simulated link.
//!
//! Covered: Content-Length, chunked and close-delimited bodies (RFC 9112 §6.3); redirects
//! 301/302/303/307/308 with relative `Location` (RFC 9110 §15.4) and wget's redirect limit;
//! 4xx/5xx answers (wget exit code 8, no file left behind); `-c` with byte ranges (RFC 9110
//! §14.2, 206 §15.3.7, 416 §15.5.17), a server that ignores ranges, bodies that end early
//! (exit code 4, `.part` kept for `-c`); wget's output naming (`index.html`, no clobbering,
//! `-P`, `-O FILE`). Every scenario runs on a clean link and on one with loss, reordering,
//! duplication and corruption (fixed seeds), and every file is checked byte for byte against
//! the server's generated contents.

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;
use xdpget::driver::sim::content;
use xdpget::driver::sim::impair::Impairments;
use xdpget::driver::sim::link::Direction;
use xdpget::engine::EngineError;
use xdpget::engine::fetch::{self, FetchOptions, Fetched, Output};
use xdpget::engine::network::SimNetwork;
use xdpget::engine::progress::Progress;
use xdpget::engine::sim_server::{CONTENT_SEED, SERVER_ADDRESS};
use xdpget::engine::stats::EngineStats;
use xdpget::http::HttpError;
use xdpget::sink::ResumeInfo;
use xdpget::sink::control::{control_path, part_path};

#[path = "common/sim.rs"]
mod sim;
use sim::{fetch_options as options, sim_network};

/// The two kinds of link every scenario runs on.
#[derive(Clone, Copy, Debug)]
enum Profile {
    Clean,
    /// 1 % loss, 2 % reordering (held back 3 ms, beyond the 2 ms RTT), 0.5 % duplication and
    /// 0.2 % corrupted frames, each way.
    Lossy,
}

const PROFILES: [Profile; 2] = [Profile::Clean, Profile::Lossy];

impl Profile {
    fn impairments(self) -> Impairments {
        match self {
            Profile::Clean => Impairments::NONE,
            Profile::Lossy => Impairments {
                loss: 0.01,
                duplicate: 0.005,
                reorder: 0.02,
                reorder_delay: Duration::from_millis(3),
                corrupt: 0.002,
            },
        }
    }
}

/// A simulated network: 100 Mbit/s, 2 ms RTT, 256 KiB of queue, impairments of `profile`,
/// everything random derived from `seed`.
fn network(profile: Profile, seed: u64) -> SimNetwork {
    network_with(profile.impairments(), seed)
}

/// The same network with any impairments.
fn network_with(impairments: Impairments, seed: u64) -> SimNetwork {
    sim_network(impairments, seed, |server| server)
}

/// `-P dir`.
fn into(dir: &Path) -> Output {
    Output::Auto {
        directory: Some(dir.to_path_buf()),
    }
}

fn url(path: &str) -> String {
    format!("http://{}{path}", SERVER_ADDRESS.ip())
}

/// What one `fetch` call gave, with the lines it printed.
struct Run {
    result: Result<Fetched, EngineError>,
    notices: Vec<String>,
}

impl Run {
    fn ok(self, what: &str) -> Fetched {
        match self.result {
            Ok(fetched) => fetched,
            Err(e) => panic!("{what}: fetch failed: {e} (notices: {:?})", self.notices),
        }
    }

    fn err(self, what: &str) -> EngineError {
        match self.result {
            Ok(fetched) => panic!("{what}: fetch succeeded but should not have: {fetched:?}"),
            Err(e) => e,
        }
    }
}

/// Runs `engine::fetch::fetch` as the CLI does.
fn run(network: &mut SimNetwork, path: &str, options: &FetchOptions) -> Run {
    let progress = Progress::default();
    let mut stats = EngineStats::default();
    let mut notices = Vec::new();
    let result = fetch::fetch(
        network,
        &url(path),
        options,
        &progress,
        &mut stats,
        &mut |line: String| {
            eprintln!("notice: {line}");
            notices.push(line)
        },
    );
    Run { result, notices }
}

/// Frames the link lost, reordered, duplicated or corrupted (both ways), and segments the
/// server sent again: proof that a lossy case was exercised.
fn impairment_evidence(network: &SimNetwork) -> (u64, u64) {
    let link = network.driver().link();
    let impaired: u64 = [Direction::AToB, Direction::BToA]
        .into_iter()
        .map(|direction| {
            let c = link.counters(direction);
            c.lost + c.reordered + c.duplicated + c.corrupted
        })
        .sum();
    let retransmits = network
        .driver()
        .peer()
        .connection_stats()
        .iter()
        .map(|s| s.retransmits)
        .sum();
    (impaired, retransmits)
}

/// How many connections the server has seen.
fn connections(network: &SimNetwork) -> usize {
    network.driver().peer().connection_stats().len()
}

/// Bytes `[start, end)` of the server's resources.
fn expected(start: u64, end: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; (end - start) as usize];
    content::fill(CONTENT_SEED, start, &mut bytes);
    bytes
}

/// Asserts that `path` holds exactly the first `len` bytes of the server's contents.
fn assert_content(path: &Path, len: u64, what: &str) {
    let actual =
        std::fs::read(path).unwrap_or_else(|e| panic!("{what}: cannot read {path:?}: {e}"));
    assert_eq!(
        actual.len() as u64,
        len,
        "{what}: {path:?} has the wrong length"
    );
    let wanted = expected(0, len);
    if let Some(at) = actual.iter().zip(&wanted).position(|(a, b)| a != b) {
        panic!("{what}: {path:?} differs from the server's contents first at byte {at}");
    }
    let digest: [u8; 32] = {
        use sha2::{Digest, Sha256};
        Sha256::digest(&actual).into()
    };
    assert_eq!(
        digest,
        content::sha256(CONTENT_SEED, len),
        "{what}: SHA-256 of {path:?}"
    );
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the temporary directory")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// Writes the first `len` bytes of the server's contents to `path` (an earlier run's file).
fn write_prefix(path: &Path, len: u64) {
    std::fs::write(path, expected(0, len)).expect("write a partial file");
}

/// A seed per (case, profile), so each case is one reproducible run.
fn seed(case: u64, profile: Profile) -> u64 {
    case * 16 + profile as u64 + 1
}

// --- body framings ---------------------------------------------------------------------

#[test]
fn content_length_chunked_and_close_delimited_bodies_arrive_intact() {
    let cases: [(&str, u64); 9] = [
        ("file", 0),
        ("file", 1),
        ("file", 700_001),
        ("chunked", 0),
        ("chunked", 5),
        ("chunked", 400_003),
        ("close", 0),
        ("close", 3),
        ("close", 300_007),
    ];
    for profile in PROFILES {
        let (mut impaired, mut retransmits) = (0, 0);
        for (index, &(kind, len)) in cases.iter().enumerate() {
            let what = format!("{kind} body of {len} bytes, {profile:?}");
            let dir = temp_dir();
            let seed = seed(100 + index as u64, profile);
            let mut network = network(profile, seed);
            let options = options(into(dir.path()), seed);
            let fetched = run(&mut network, &format!("/{kind}/{len}/body.bin"), &options).ok(&what);
            let file = dir.path().join("body.bin");
            assert_eq!(fetched.path.as_deref(), Some(file.as_path()), "{what}");
            assert_eq!(fetched.file_len, len, "{what}");
            assert_eq!(fetched.transferred, len, "{what}");
            assert!(!fetched.already_complete, "{what}");
            assert_content(&file, len, &what);
            assert_eq!(
                listing(dir.path()),
                ["body.bin"],
                "{what}: nothing else left"
            );
            let (i, r) = impairment_evidence(&network);
            impaired += i;
            retransmits += r;
        }
        match profile {
            // Retransmissions happen on the clean link too: slow start overflows the queue.
            Profile::Clean => assert_eq!(impaired, 0, "{profile:?}"),
            Profile::Lossy => assert!(
                impaired > 20 && retransmits > 5,
                "the lossy link barely impaired anything: {impaired} frames, {retransmits} retransmits"
            ),
        }
    }
}

/// Heavier impairment over several seeds: 3 % loss and 5 % reordering each way.
#[test]
fn every_framing_survives_heavy_loss_over_several_seeds() {
    let heavy = Impairments {
        loss: 0.03,
        duplicate: 0.01,
        reorder: 0.05,
        reorder_delay: Duration::from_millis(2),
        corrupt: 0.005,
    };
    for seed in 1..=4u64 {
        for kind in ["file", "chunked", "close"] {
            let what = format!("{kind} body under heavy loss, seed {seed}");
            let dir = temp_dir();
            let mut network = network_with(heavy, 5000 + seed);
            let options = options(into(dir.path()), seed);
            let fetched =
                run(&mut network, &format!("/{kind}/260000/heavy.bin"), &options).ok(&what);
            assert_eq!(fetched.file_len, 260_000, "{what}");
            assert_content(&dir.path().join("heavy.bin"), 260_000, &what);
            let (impaired, retransmits) = impairment_evidence(&network);
            assert!(impaired > 0 && retransmits > 0, "{what}: not impaired");
        }
    }
}

// --- redirects -------------------------------------------------------------------------

#[test]
fn every_redirect_status_is_followed_to_the_relative_location() {
    for profile in PROFILES {
        for (index, code) in [301u16, 302, 303, 307, 308].into_iter().enumerate() {
            let what = format!("{code} redirect, {profile:?}");
            let dir = temp_dir();
            let seed = seed(200 + index as u64, profile);
            let mut network = network(profile, seed);
            let options = options(into(dir.path()), seed);
            let fetched = run(
                &mut network,
                &format!("/redirect/{code}/file/150000/r.bin"),
                &options,
            )
            .ok(&what);
            assert_eq!(fetched.final_url, url("/file/150000/r.bin"), "{what}");
            assert_eq!(fetched.file_len, 150_000, "{what}");
            assert_content(&dir.path().join("r.bin"), 150_000, &what);
            assert_eq!(listing(dir.path()), ["r.bin"], "{what}");
            assert_eq!(
                connections(&network),
                2,
                "{what}: one connection per request"
            );
        }
    }
}

/// A chain of three redirects.
const CHAIN: &str = "/redirect/301/redirect/302/redirect/307/chunked/90000/c.bin";

#[test]
fn a_redirect_chain_within_the_limit_is_followed() {
    for profile in PROFILES {
        let what = format!("three redirects with --max-redirect 3, {profile:?}");
        let dir = temp_dir();
        let seed = seed(300, profile);
        let mut network = network(profile, seed);
        let options = FetchOptions {
            max_redirect: 3,
            ..options(into(dir.path()), seed)
        };
        let run = run(&mut network, CHAIN, &options);
        let following = run
            .notices
            .iter()
            .filter(|line| line.ends_with("[following]"))
            .count();
        assert_eq!(following, 3, "{what}: {:?}", run.notices);
        let fetched = run.ok(&what);
        assert_eq!(fetched.final_url, url("/chunked/90000/c.bin"), "{what}");
        assert_content(&dir.path().join("c.bin"), 90_000, &what);
    }
}

/// wget counts redirects the same way (`++redirection_count > opt.max_redirect` in retr.c)
/// and ends with WRONGCODE, which `get_status_for_err` maps to exit code 8.
#[test]
fn one_redirect_past_the_limit_fails_with_exit_code_8_and_no_file() {
    for profile in PROFILES {
        let what = format!("three redirects with --max-redirect 2, {profile:?}");
        let dir = temp_dir();
        let seed = seed(310, profile);
        let mut network = network(profile, seed);
        let options = FetchOptions {
            max_redirect: 2,
            ..options(into(dir.path()), seed)
        };
        let error = run(&mut network, CHAIN, &options).err(&what);
        assert!(
            matches!(error, EngineError::TooManyRedirects { count: 2 }),
            "{what}: {error:?}"
        );
        assert_eq!(error.exit_code(), 8, "{what}");
        assert_eq!(
            connections(&network),
            3,
            "{what}: the third redirect is not followed, and not retried"
        );
        assert!(
            listing(dir.path()).is_empty(),
            "{what}: {:?}",
            listing(dir.path())
        );
    }
}

// --- server errors ---------------------------------------------------------------------

#[test]
fn error_statuses_fail_with_exit_code_8_and_leave_no_file() {
    let cases: [(&str, u16); 4] = [
        ("/status/404/e.bin", 404),
        ("/status/500/e.bin", 500),
        ("/status/503/e.bin", 503),
        ("/no/such/route", 404),
    ];
    for profile in PROFILES {
        for (index, &(path, status)) in cases.iter().enumerate() {
            for (variant, output) in ["-P", "-O"].into_iter().enumerate() {
                let what = format!("{path} with {output}, {profile:?}");
                let dir = temp_dir();
                let seed = seed(400 + 2 * index as u64 + variant as u64, profile);
                let mut network = network(profile, seed);
                let output = if variant == 0 {
                    into(dir.path())
                } else {
                    Output::Path(dir.path().join("named.out"))
                };
                let error = run(&mut network, path, &options(output, seed)).err(&what);
                match &error {
                    EngineError::Http(HttpError::ServerError { status: got, .. }) => {
                        assert_eq!(*got, status, "{what}")
                    }
                    other => panic!("{what}: expected a server error, got {other:?}"),
                }
                assert_eq!(error.exit_code(), 8, "{what}");
                assert_eq!(connections(&network), 1, "{what}: not retried");
                assert!(
                    listing(dir.path()).is_empty(),
                    "{what}: left {:?}",
                    listing(dir.path())
                );
            }
        }
    }
}

#[test]
fn an_error_status_on_resume_leaves_the_existing_file_alone() {
    for profile in PROFILES {
        let what = format!("-c against a 404, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("e.bin");
        write_prefix(&file, 12_345);
        let seed = seed(450, profile);
        let mut network = network(profile, seed);
        let options = FetchOptions {
            resume: true,
            ..options(into(dir.path()), seed)
        };
        let error = run(&mut network, "/status/404/e.bin", &options).err(&what);
        assert_eq!(error.exit_code(), 8, "{what}");
        assert_eq!(listing(dir.path()), ["e.bin"], "{what}");
        assert_content(&file, 12_345, &what);
    }
}

// --- resume ----------------------------------------------------------------------------

#[test]
fn resume_continues_a_plain_partial_file_with_a_range_request() {
    for profile in PROFILES {
        let what = format!("-c with a 100000-byte prefix, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("big.bin");
        write_prefix(&file, 100_000);
        let seed = seed(500, profile);
        let mut network = network(profile, seed);
        let options = FetchOptions {
            resume: true,
            ..options(into(dir.path()), seed)
        };
        let fetched = run(&mut network, "/file/600000/big.bin", &options).ok(&what);
        assert_eq!(fetched.path.as_deref(), Some(file.as_path()), "{what}");
        assert_eq!(fetched.file_len, 600_000, "{what}");
        assert_eq!(
            fetched.transferred, 500_000,
            "{what}: only the missing bytes are transferred (206)"
        );
        assert_content(&file, 600_000, &what);
        assert_eq!(listing(dir.path()), ["big.bin"], "{what}");
    }
}

#[test]
fn resume_sends_its_range_again_after_a_redirect() {
    for profile in PROFILES {
        let what = format!("-c behind a 302, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("moved.bin");
        write_prefix(&file, 77_777);
        let seed = seed(550, profile);
        let mut network = network(profile, seed);
        let options = FetchOptions {
            resume: true,
            ..options(into(dir.path()), seed)
        };
        let fetched = run(
            &mut network,
            "/redirect/302/file/400000/moved.bin",
            &options,
        )
        .ok(&what);
        assert_eq!(fetched.final_url, url("/file/400000/moved.bin"), "{what}");
        assert_eq!(
            fetched.transferred,
            400_000 - 77_777,
            "{what}: 206 after the redirect"
        );
        assert_content(&file, 400_000, &what);
        assert_eq!(listing(dir.path()), ["moved.bin"], "{what}");
    }
}

#[test]
fn resume_with_an_explicit_output_path_continues_that_file() {
    for profile in PROFILES {
        let what = format!("-c -O FILE, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("given.name");
        write_prefix(&file, 1);
        let seed = seed(560, profile);
        let mut network = network(profile, seed);
        let options = FetchOptions {
            resume: true,
            ..options(Output::Path(file.clone()), seed)
        };
        let fetched = run(&mut network, "/file/150001/other.name", &options).ok(&what);
        assert_eq!(fetched.path.as_deref(), Some(file.as_path()), "{what}");
        assert_eq!(fetched.transferred, 150_000, "{what}");
        assert_content(&file, 150_001, &what);
        assert_eq!(listing(dir.path()), ["given.name"], "{what}");
    }
}

#[test]
fn a_short_body_fails_with_exit_code_4_and_keeps_a_part_file_for_resume() {
    for profile in PROFILES {
        let what = format!("/short with one try, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("cut.bin");
        let seed = seed(600, profile);
        let mut network = network(profile, seed);
        let first = FetchOptions {
            tries: 1,
            ..options(into(dir.path()), seed)
        };
        let run_1 = run(&mut network, "/short/500000/180000/cut.bin", &first);
        let kept_notice = run_1
            .notices
            .iter()
            .any(|line| line.contains("keeps 180000 bytes"));
        assert!(kept_notice, "{what}: {:?}", run_1.notices);
        let error = run_1.err(&what);
        assert!(
            matches!(
                error,
                EngineError::Http(HttpError::Truncated {
                    got: 180_000,
                    expected: Some(500_000)
                })
            ),
            "{what}: {error:?}"
        );
        assert!(
            error.to_string().contains("180000 of 500000"),
            "{what}: {error}"
        );
        assert_eq!(error.exit_code(), 4, "{what}");
        assert_eq!(connections(&network), 1, "{what}: --tries 1");

        // What the failed run left: the prefix in cut.bin.part, vouched for by the record.
        assert!(!file.exists(), "{what}: no final file yet");
        assert!(control_path(&file).exists(), "{what}: control record kept");
        assert_content(&part_path(&file), 180_000, &what);
        match ResumeInfo::lookup(&file).expect("lookup") {
            ResumeInfo::Partial {
                offset, identity, ..
            } => {
                assert_eq!(offset, 180_000, "{what}");
                assert_eq!(identity.length, Some(500_000), "{what}");
            }
            other => panic!("{what}: expected a partial download, found {other:?}"),
        }

        // `-c` against a server that completes the same resource continues it.
        let what = format!("-c after /short, {profile:?}");
        let second = FetchOptions {
            resume: true,
            ..options(into(dir.path()), seed + 1000)
        };
        let fetched = run(&mut network, "/file/500000/cut.bin", &second).ok(&what);
        assert_eq!(fetched.path.as_deref(), Some(file.as_path()), "{what}");
        assert_eq!(fetched.transferred, 320_000, "{what}: resumed at 180000");
        assert_content(&file, 500_000, &what);
        assert_eq!(
            listing(dir.path()),
            ["cut.bin"],
            "{what}: .part and record gone"
        );
    }
}

/// `--tries 3` against a body that always ends early: two retries, each asking for a range
/// that /short ignores, so each try starts over and again keeps the first bytes.
fn short_body_retried_up_to_the_try_limit(profile: Profile) {
    let what = format!("/short with --tries 3, {profile:?}");
    let dir = temp_dir();
    let seed = seed(650, profile);
    let mut network = network(profile, seed);
    let options = FetchOptions {
        tries: 3,
        ..options(into(dir.path()), seed)
    };
    let run = run(&mut network, "/short/200000/50000/s.bin", &options);
    let retries = run
        .notices
        .iter()
        .filter(|line| line.contains("Retrying"))
        .count();
    assert_eq!(retries, 2, "{what}: {:?}", run.notices);
    let error = run.err(&what);
    assert_eq!(error.exit_code(), 4, "{what}: {error}");
    assert_eq!(connections(&network), 3, "{what}");
    let file = dir.path().join("s.bin");
    assert_content(&part_path(&file), 50_000, &what);
    assert_eq!(
        listing(dir.path()),
        ["s.bin.part", "s.bin.part.xdpget"],
        "{what}"
    );
}

#[test]
fn a_short_body_is_retried_up_to_the_try_limit_on_a_clean_link() {
    short_body_retried_up_to_the_try_limit(Profile::Clean);
}

#[test]
fn a_short_body_is_retried_up_to_the_try_limit_on_a_lossy_link() {
    // The bug is a hang, so the case runs on its own thread under a generous watchdog.
    let (done, finished) = std::sync::mpsc::channel();
    let case = std::thread::spawn(move || {
        short_body_retried_up_to_the_try_limit(Profile::Lossy);
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(120)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = case.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the fetch did not end within 120 s of real time: a hang")
        }
    }
}

/// A `.part` left behind by a failed run (`--tries 1`) is continued by a later `-c -O FILE`
/// run from the prefix its control record vouches for.
#[test]
fn an_abandoned_part_file_is_continued_with_an_explicit_output_path() {
    for profile in PROFILES {
        let what = format!("-O with an abandoned .part, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("named.out");
        let seed = seed(700, profile);
        let mut network = network(profile, seed);
        let first = FetchOptions {
            tries: 1,
            ..options(Output::Path(file.clone()), seed)
        };
        let error = run(&mut network, "/short/333333/111111", &first).err(&what);
        assert_eq!(error.exit_code(), 4, "{what}: {error}");
        assert_content(&part_path(&file), 111_111, &what);

        let second = FetchOptions {
            resume: true,
            ..options(Output::Path(file.clone()), seed + 1000)
        };
        let fetched = run(&mut network, "/file/333333", &second).ok(&what);
        assert_eq!(fetched.transferred, 333_333 - 111_111, "{what}");
        assert_content(&file, 333_333, &what);
        assert_eq!(listing(dir.path()), ["named.out"], "{what}");
    }
}

#[test]
fn resuming_a_complete_file_gets_416_and_changes_nothing() {
    for profile in PROFILES {
        let what = format!("-c with the whole file present, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("done.bin");
        write_prefix(&file, 80_000);
        let seed = seed(800, profile);
        let mut network = network(profile, seed);
        let options = FetchOptions {
            resume: true,
            ..options(into(dir.path()), seed)
        };
        let run = run(&mut network, "/file/80000/done.bin", &options);
        assert!(
            run.notices
                .iter()
                .any(|line| line.contains("already fully retrieved")),
            "{what}: {:?}",
            run.notices
        );
        let fetched = run.ok(&what);
        assert!(fetched.already_complete, "{what}");
        assert_eq!(fetched.transferred, 0, "{what}");
        assert_eq!(fetched.file_len, 80_000, "{what}");
        assert_content(&file, 80_000, &what);
        assert_eq!(listing(dir.path()), ["done.bin"], "{what}");
    }
}

#[test]
fn a_server_that_ignores_ranges_makes_resume_start_over() {
    for profile in PROFILES {
        let what = format!("-c against /norange, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("nr.bin");
        write_prefix(&file, 64_000);
        let seed = seed(900, profile);
        let mut network = network(profile, seed);
        let options = FetchOptions {
            resume: true,
            ..options(into(dir.path()), seed)
        };
        let run = run(&mut network, "/norange/250000/nr.bin", &options);
        assert!(
            run.notices
                .iter()
                .any(|line| line.contains("ignored the range")),
            "{what}: {:?}",
            run.notices
        );
        let fetched = run.ok(&what);
        assert_eq!(fetched.file_len, 250_000, "{what}");
        assert_eq!(fetched.transferred, 250_000, "{what}: from byte zero");
        assert_content(&file, 250_000, &what);
        assert_eq!(listing(dir.path()), ["nr.bin"], "{what}");
    }
}

#[test]
fn a_part_file_against_a_server_that_ignores_ranges_is_replaced() {
    for profile in PROFILES {
        let what = format!("abandoned .part, then -c against /norange, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("p.bin");
        let seed = seed(950, profile);
        let mut network = network(profile, seed);
        let first = FetchOptions {
            tries: 1,
            ..options(into(dir.path()), seed)
        };
        let error = run(&mut network, "/short/210000/70000/p.bin", &first).err(&what);
        assert_eq!(error.exit_code(), 4, "{what}: {error}");
        let second = FetchOptions {
            resume: true,
            ..options(into(dir.path()), seed + 1000)
        };
        let fetched = run(&mut network, "/norange/210000/p.bin", &second).ok(&what);
        assert_eq!(fetched.transferred, 210_000, "{what}: from byte zero");
        assert_content(&file, 210_000, &what);
        assert_eq!(listing(dir.path()), ["p.bin"], "{what}");
    }
}

#[test]
fn a_part_file_without_control_record_is_not_trusted() {
    for profile in PROFILES {
        let what = format!("-c with a foreign .part, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("u.bin");
        // Wrong bytes: if they were trusted, the file would not match.
        std::fs::write(part_path(&file), vec![0xAAu8; 40_000]).expect("write .part");
        let seed = seed(980, profile);
        let mut network = network(profile, seed);
        let options = FetchOptions {
            resume: true,
            ..options(into(dir.path()), seed)
        };
        let fetched = run(&mut network, "/file/120000/u.bin", &options).ok(&what);
        assert_eq!(fetched.transferred, 120_000, "{what}");
        assert_content(&file, 120_000, &what);
        assert_eq!(listing(dir.path()), ["u.bin"], "{what}");
    }
}

// --- output naming ---------------------------------------------------------------------

#[test]
fn names_follow_wget_and_never_clobber() {
    for profile in PROFILES {
        let dir = temp_dir();
        let seed = seed(1000, profile);
        let mut network = network(profile, seed);
        let options = options(into(dir.path()), seed);
        // The same URL three times: NAME, NAME.1, NAME.2, each complete.
        for (round, name) in ["n.bin", "n.bin.1", "n.bin.2"].into_iter().enumerate() {
            let what = format!("round {round} of /file/.../n.bin, {profile:?}");
            let fetched = run(&mut network, "/file/70000/n.bin", &options).ok(&what);
            let file = dir.path().join(name);
            assert_eq!(fetched.path.as_deref(), Some(file.as_path()), "{what}");
            assert_content(&file, 70_000, &what);
        }
        // A path ending in `/` is saved as index.html.
        let what = format!("trailing slash, {profile:?}");
        let fetched = run(&mut network, "/chunked/33333/", &options).ok(&what);
        let index = dir.path().join("index.html");
        assert_eq!(fetched.path.as_deref(), Some(index.as_path()), "{what}");
        assert_content(&index, 33_333, &what);
        // The query stays in the name, as wget keeps it.
        let what = format!("query string, {profile:?}");
        let fetched = run(&mut network, "/file/4444/get.php?id=7", &options).ok(&what);
        let queried = dir.path().join("get.php?id=7");
        assert_eq!(fetched.path.as_deref(), Some(queried.as_path()), "{what}");
        assert_content(&queried, 4_444, &what);
        assert_eq!(
            listing(dir.path()),
            ["get.php?id=7", "index.html", "n.bin", "n.bin.1", "n.bin.2"],
            "{profile:?}"
        );
    }
}

#[test]
fn an_unfinished_part_file_is_not_clobbered_without_resume() {
    for profile in PROFILES {
        let what = format!("new download beside an abandoned .part, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("k.bin");
        let seed = seed(1100, profile);
        let mut network = network(profile, seed);
        let first = FetchOptions {
            tries: 1,
            ..options(into(dir.path()), seed)
        };
        let error = run(&mut network, "/short/90000/30000/k.bin", &first).err(&what);
        assert_eq!(error.exit_code(), 4, "{what}: {error}");
        let fetched = run(
            &mut network,
            "/file/90000/k.bin",
            &options(into(dir.path()), seed + 1000),
        )
        .ok(&what);
        let numbered = dir.path().join("k.bin.1");
        assert_eq!(fetched.path.as_deref(), Some(numbered.as_path()), "{what}");
        assert_content(&numbered, 90_000, &what);
        assert_content(&part_path(&file), 30_000, &what);
    }
}

#[test]
fn an_explicit_output_path_replaces_an_existing_longer_file() {
    for profile in PROFILES {
        let what = format!("-O over a longer file, {profile:?}");
        let dir = temp_dir();
        let file = dir.path().join("out.dat");
        std::fs::write(&file, vec![0x55u8; 300_000]).expect("write the old file");
        let seed = seed(1200, profile);
        let mut network = network(profile, seed);
        let fetched = run(
            &mut network,
            "/close/120000/ignored-name",
            &options(Output::Path(file.clone()), seed),
        )
        .ok(&what);
        assert_eq!(fetched.path.as_deref(), Some(file.as_path()), "{what}");
        assert_content(&file, 120_000, &what);
        assert_eq!(listing(dir.path()), ["out.dat"], "{what}");
    }
}

#[test]
fn spider_checks_an_existing_resource_and_writes_nothing() {
    for profile in PROFILES {
        let what = format!("--spider, {profile:?}");
        let dir = temp_dir();
        let seed = seed(1300, profile);
        let mut network = network(profile, seed);
        let options = FetchOptions {
            spider: true,
            ..options(into(dir.path()), seed)
        };
        let fetched = run(&mut network, "/redirect/302/file/5000000/s.bin", &options).ok(&what);
        assert_eq!(fetched.path, None, "{what}");
        assert_eq!(fetched.final_url, url("/file/5000000/s.bin"), "{what}");
        assert!(listing(dir.path()).is_empty(), "{what}");
    }
}

#[test]
fn spider_on_a_missing_resource_fails_with_exit_code_8() {
    for profile in PROFILES {
        let what = format!("--spider on a 404, {profile:?}");
        let dir = temp_dir();
        let seed = seed(1310, profile);
        let mut network = network(profile, seed);
        let options = FetchOptions {
            spider: true,
            ..options(into(dir.path()), seed)
        };
        let error = run(&mut network, "/status/404/s.bin", &options).err(&what);
        assert_eq!(error.exit_code(), 8, "{what}");
        assert!(listing(dir.path()).is_empty(), "{what}");
    }
}

// --- wget's everyday options (issue 15) -------------------------------------------------

/// Runs `fetch` on a whole URL as typed (credentials and all), as the CLI does.
fn run_url(network: &mut SimNetwork, url: &str, options: &FetchOptions) -> Run {
    let progress = Progress::default();
    let mut stats = EngineStats::default();
    let mut notices = Vec::new();
    let result = fetch::fetch(
        network,
        url,
        options,
        &progress,
        &mut stats,
        &mut |line: String| notices.push(line),
    );
    Run { result, notices }
}

/// The server's request count (every connection carries one request).
fn requests(network: &SimNetwork) -> u64 {
    network.driver().peer().requests()
}

fn credentials(user: &str, password: &str) -> Option<xdpget::http::auth::Credentials> {
    Some(xdpget::http::auth::Credentials {
        user: user.into(),
        password: password.into(),
    })
}

/// The simulated server's `/auth` route for `user:password` in front of `rest`.
fn auth_path(pair: &str, rest: &str) -> String {
    let hex: String = pair.bytes().map(|b| format!("{b:02x}")).collect();
    format!("/auth/{hex}{rest}")
}

#[test]
fn server_response_prints_every_head_indented() {
    let dir = temp_dir();
    let mut network = network(Profile::Clean, 1501);
    let mut options = options(into(dir.path()), 1501);
    options.server_response = true;
    let first = run(&mut network, "/redirect/302/file/1000", &options);
    let notices = first.notices.clone();
    first.ok("-S");
    let heads: Vec<&String> = notices
        .iter()
        .filter(|l| l.starts_with("  HTTP/1.1"))
        .collect();
    assert_eq!(
        heads,
        ["  HTTP/1.1 302 Found", "  HTTP/1.1 200 OK"],
        "{notices:?}"
    );
    assert!(
        notices.contains(&"  Location: /file/1000".to_string()),
        "{notices:?}"
    );
    assert!(
        notices.contains(&"  Content-Length: 1000".to_string()),
        "{notices:?}"
    );
    // Without -S: no head lines.
    let mut network = network_with(Impairments::NONE, 1502);
    let plain = run(&mut network, "/file/10", &options_plain(dir.path(), 1502));
    assert!(
        !plain.notices.iter().any(|l| l.starts_with("  HTTP/")),
        "{:?}",
        plain.notices
    );
}

fn options_plain(dir: &Path, seed: u64) -> FetchOptions {
    options(into(dir), seed)
}

#[test]
fn basic_auth_answers_a_challenge_then_goes_up_front_on_every_link() {
    for profile in PROFILES {
        let what = format!("{profile:?}");
        let dir = temp_dir();
        let seed = seed(1510, profile);
        let mut network = network(profile, seed);
        let mut options = options(into(dir.path()), seed);
        options.credentials = credentials("alice", "s3cret");
        let first = run(
            &mut network,
            &auth_path("alice:s3cret", "/file/300000"),
            &options,
        );
        assert!(
            first.notices.iter().all(|l| !l.contains("s3cret")),
            "{what}: the password in a notice: {:?}",
            first.notices
        );
        let fetched = first.ok(&what);
        assert_content(&dir.path().join("300000"), 300_000, &what);
        assert!(!fetched.final_url.contains("s3cret"), "{what}");
        assert_eq!(requests(&network), 2, "{what}: a 401, then the download");
        // The server asked once: the next download sends the credentials up front.
        run(
            &mut network,
            &auth_path("alice:s3cret", "/file/10"),
            &options,
        )
        .ok(&what);
        assert_eq!(requests(&network), 3, "{what}: no second challenge");
    }
}

#[test]
fn credentials_in_the_url_are_used_and_never_shown() {
    let dir = temp_dir();
    let mut network = network(Profile::Clean, 1520);
    let options = options(into(dir.path()), 1520);
    let path = auth_path("bob:p@ss", "/file/5000");
    let url = format!("http://bob:p%40ss@{}{path}", SERVER_ADDRESS.ip());
    let got = run_url(&mut network, &url, &options);
    let notices = got.notices.clone();
    let fetched = got.ok("URL credentials");
    assert_eq!(
        fetched.final_url,
        format!("http://{}{path}", SERVER_ADDRESS.ip())
    );
    assert!(notices.iter().all(|l| !l.contains("p%40ss")), "{notices:?}");
    assert_content(&dir.path().join("5000"), 5000, "URL credentials");
}

#[test]
fn a_401_that_stays_is_exit_6_and_leaves_no_file() {
    for (case, creds) in [(0u64, None), (1, credentials("alice", "wrong"))] {
        let what = format!("credentials {creds:?}");
        let dir = temp_dir();
        let mut network = network(Profile::Clean, 1530 + case);
        let mut options = options(into(dir.path()), 1530 + case);
        options.credentials = creds.clone();
        let error = run(
            &mut network,
            &auth_path("alice:s3cret", "/file/1000"),
            &options,
        )
        .err(&what);
        assert_eq!(error.exit_code(), 6, "{what}: {error}");
        assert!(!error.to_string().contains("wrong"), "{what}: {error}");
        // Without credentials nothing to retry with; with wrong ones exactly one retry.
        assert_eq!(requests(&network), 1 + case, "{what}");
        assert!(
            listing(dir.path()).is_empty(),
            "{what}: {:?}",
            listing(dir.path())
        );
    }
}

/// A file's mtime in seconds since the epoch.
fn mtime(path: &Path) -> i64 {
    let modified = std::fs::metadata(path).unwrap().modified().unwrap();
    modified
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// RFC 9110's example date, 1994-11-06 08:49:37 UTC.
const LAST_MODIFIED: i64 = 784_111_777;

#[test]
fn the_file_gets_the_servers_last_modified_unless_told_not_to() {
    for (case, server_timestamps) in [(0u64, true), (1, false)] {
        let dir = temp_dir();
        let mut network = network(Profile::Clean, 1550 + case);
        let mut options = options(into(dir.path()), 1550 + case);
        options.server_timestamps = server_timestamps;
        let path = format!("/lastmod/{LAST_MODIFIED}/file/3000");
        run(&mut network, &path, &options).ok("Last-Modified");
        let file = dir.path().join("3000");
        assert_content(&file, 3000, "Last-Modified");
        if server_timestamps {
            assert_eq!(mtime(&file), LAST_MODIFIED);
        } else {
            assert!(
                mtime(&file) > LAST_MODIFIED + 86_400 * 365 * 20,
                "download time kept"
            );
        }
    }
}

/// Sets a file's mtime.
fn set_mtime(path: &Path, seconds: i64) {
    let time = std::time::UNIX_EPOCH + Duration::from_secs(seconds as u64);
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(time))
        .unwrap();
}

#[test]
fn timestamping_downloads_only_a_newer_file() {
    for honours_condition in [true, false] {
        let what = format!("server honours If-Modified-Since: {honours_condition}");
        let dir = temp_dir();
        let mut network = network(Profile::Clean, 1560 + u64::from(honours_condition));
        let mut options = options(into(dir.path()), 1560);
        options.timestamping = true;
        let mark = if honours_condition { "" } else { "!" };
        let path = format!("/lastmod/{LAST_MODIFIED}{mark}/file/4000");
        let file = dir.path().join("4000");
        // No local file: downloaded.
        run(&mut network, &path, &options).ok(&what);
        assert_content(&file, 4000, &what);
        assert_eq!(mtime(&file), LAST_MODIFIED, "{what}");
        // As new as the server's: not retrieved (a 304, or wget's size + date check).
        let again = run(&mut network, &path, &options);
        let notices = again.notices.clone();
        let fetched = again.ok(&what);
        assert!(fetched.already_complete, "{what}");
        assert!(
            notices
                .iter()
                .any(|l| l.contains("no newer than local file")),
            "{what}: {notices:?}"
        );
        assert_eq!(requests(&network), 2, "{what}");
        assert_eq!(listing(dir.path()), ["4000"], "{what}: no 4000.1");
        // An older local file (cut short, to see it replaced): downloaded again, same name.
        std::fs::write(&file, b"old").unwrap();
        set_mtime(&file, LAST_MODIFIED - 3600);
        run(&mut network, &path, &options).ok(&what);
        assert_content(&file, 4000, &what);
        assert_eq!(listing(dir.path()), ["4000"], "{what}");
    }
}

#[test]
fn no_clobber_skips_an_existing_file_without_a_request() {
    let dir = temp_dir();
    let mut network = network(Profile::Clean, 1570);
    let mut options = options(into(dir.path()), 1570);
    options.no_clobber = true;
    std::fs::write(dir.path().join("500"), b"mine").unwrap();
    let run1 = run(&mut network, "/file/500", &options);
    assert!(
        run1.notices
            .iter()
            .any(|l| l.contains("already there; not retrieving")),
        "{:?}",
        run1.notices
    );
    assert!(run1.ok("-nc").already_complete);
    assert_eq!(requests(&network), 0);
    assert_eq!(std::fs::read(dir.path().join("500")).unwrap(), b"mine");
    // Without the file it downloads as usual.
    run(&mut network, "/file/700", &options).ok("-nc, new file");
    assert_content(&dir.path().join("700"), 700, "-nc, new file");
}

#[test]
fn content_disposition_names_the_file_safely() {
    let cases = [
        ("report.pdf", "report.pdf"),
        ("..%2F..%2Fevil.txt", "evil.txt"),
        ("%2Ehidden", "hidden"),
        // (Control characters cannot travel in a head; src/sink/naming.rs tests them.)
        ("..%5C..%5Cwin.ini", "win.ini"),
    ];
    for (index, (argument, expected)) in cases.into_iter().enumerate() {
        let what = format!("filename {argument}");
        let dir = temp_dir();
        let inner = dir.path().join("in");
        std::fs::create_dir(&inner).unwrap();
        let seed = 1580 + index as u64;
        let mut network = network(Profile::Clean, seed);
        let mut options = options(into(&inner), seed);
        options.content_disposition = true;
        let path = format!("/disposition/{argument}/file/2000");
        let fetched = run(&mut network, &path, &options).ok(&what);
        assert_eq!(fetched.path, Some(inner.join(expected)), "{what}");
        assert_content(&inner.join(expected), 2000, &what);
        assert_eq!(listing(&inner), [expected], "{what}");
        assert_eq!(listing(dir.path()), ["in"], "{what}: nothing outside -P");
    }
    // An existing file of that name is not clobbered; without the option the URL names it.
    let dir = temp_dir();
    std::fs::write(dir.path().join("report.pdf"), b"mine").unwrap();
    let mut network = network(Profile::Clean, 1590);
    let mut options = options(into(dir.path()), 1590);
    options.content_disposition = true;
    run(&mut network, "/disposition/report.pdf/file/10", &options).ok("clobber");
    assert_eq!(
        std::fs::read(dir.path().join("report.pdf")).unwrap(),
        b"mine"
    );
    assert_content(&dir.path().join("report.pdf.1"), 10, "clobber");
    options.content_disposition = false;
    run(&mut network, "/disposition/report.pdf/file/20", &options).ok("off");
    assert_content(&dir.path().join("20"), 20, "off");
}

#[test]
fn retry_on_http_error_retries_the_listed_statuses_only() {
    for (case, list) in [(0u64, vec![503]), (1, vec![]), (2, vec![500, 504])] {
        let what = format!("--retry-on-http-error={list:?}");
        let dir = temp_dir();
        let mut network = network(Profile::Clean, 1600 + case);
        let mut options = options(into(dir.path()), 1600 + case);
        options.retry_on_http_error = list.clone();
        let result = run(&mut network, "/flaky/2/file/1000", &options);
        if list.contains(&503) {
            let notices = result.notices.clone();
            result.ok(&what);
            assert_content(&dir.path().join("1000"), 1000, &what);
            assert_eq!(requests(&network), 3, "{what}: two 503s, then the file");
            assert_eq!(
                notices.iter().filter(|l| l.contains("Retrying")).count(),
                2,
                "{what}: {notices:?}"
            );
        } else {
            assert_eq!(result.err(&what).exit_code(), 8, "{what}");
            assert_eq!(requests(&network), 1, "{what}: not retried");
        }
    }
}

#[test]
fn ignore_length_reads_to_the_close() {
    // The server announces 1000 bytes, sends 600 and closes.
    let dir = temp_dir();
    let mut network = network(Profile::Clean, 1610);
    let mut trusting = options(into(dir.path()), 1610);
    trusting.tries = 1;
    let error = run(&mut network, "/short/1000/600", &trusting).err("trusting the length");
    assert_eq!(error.exit_code(), 4);
    let dir = temp_dir();
    let mut network = network_with(Impairments::NONE, 1611);
    let mut ignoring = options(into(dir.path()), 1611);
    ignoring.ignore_length = true;
    let fetched = run(&mut network, "/short/1000/600", &ignoring).ok("--ignore-length");
    assert_eq!(fetched.file_len, 600);
    assert_content(&dir.path().join("600"), 600, "--ignore-length");
}

// --- minimum speed -----------------------------------------------------------------------

/// `/drip` sends its first 100 000 bytes at once, then one byte a second. Every byte resets
/// the idle (read) timeout, so without a minimum speed a 3 s read timeout never fires and
/// the 12 dripped bytes arrive after about 12 s. With `--speed-limit 100 --speed-time 5`
/// the same kind of server is given up on: exit code 4, and the fast prefix stays in the
/// `.part` for `-c`, which a server that sends the rest completes. A healthy transfer with
/// a minimum speed far below the link's rate is not disturbed.
#[test]
fn a_dripping_server_trips_the_minimum_speed_and_never_the_read_timeout() {
    use xdpget::driver::Driver;
    use xdpget::engine::transfer::MinSpeed;
    let dir = temp_dir();
    let seed = seed(950, Profile::Clean);
    let mut network = network(Profile::Clean, seed);

    let what = "/drip without a minimum speed";
    let mut patient = FetchOptions {
        tries: 1,
        ..options(into(dir.path()), seed)
    };
    patient.transfer.read_timeout = Duration::from_secs(3);
    let started = network.driver().now();
    run(&mut network, "/drip/100012/100000/patient.bin", &patient).ok(what);
    let took = network.driver().now() - started;
    assert!(
        took >= Duration::from_secs(11),
        "{what}: took only {took:?}"
    );
    assert_content(&dir.path().join("patient.bin"), 100_012, what);

    let what = "/drip with --speed-limit 100 --speed-time 5";
    let file = dir.path().join("slow.bin");
    let mut impatient = FetchOptions {
        tries: 1,
        ..options(into(dir.path()), seed + 1)
    };
    let limit = MinSpeed {
        bytes_per_second: 100,
        period: Duration::from_secs(5),
    };
    impatient.transfer.min_speed = Some(limit);
    let started = network.driver().now();
    let error = run(&mut network, "/drip/500000/100000/slow.bin", &impatient).err(what);
    let took = network.driver().now() - started;
    assert!(
        matches!(
            error,
            EngineError::TooSlow {
                bytes_per_second: 100,
                ..
            }
        ),
        "{what}: {error:?}"
    );
    assert_eq!(error.exit_code(), 4, "{what}: {error}");
    assert!(
        error.to_string().contains("--speed-limit"),
        "{what}: {error}"
    );
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(8),
        "{what}: gave up after {took:?}"
    );
    let kept = match ResumeInfo::lookup(&file).expect("lookup") {
        ResumeInfo::Partial { offset, .. } => offset,
        other => panic!("{what}: expected a partial download, found {other:?}"),
    };
    assert!((100_000..100_010).contains(&kept), "{what}: kept {kept}");
    assert_content(&part_path(&file), kept, what);

    let what = "-c after giving up on /drip";
    let resume = FetchOptions {
        resume: true,
        ..options(into(dir.path()), seed + 2)
    };
    let fetched = run(&mut network, "/file/500000/slow.bin", &resume).ok(what);
    assert_eq!(fetched.transferred, 500_000 - kept, "{what}");
    assert_content(&file, 500_000, what);

    let what = "a healthy transfer with a minimum speed";
    let mut healthy = FetchOptions {
        tries: 1,
        ..options(into(dir.path()), seed + 3)
    };
    healthy.transfer.min_speed = Some(MinSpeed {
        bytes_per_second: 1 << 20,
        period: Duration::from_secs(1),
    });
    // About 1.6 s at 100 Mbit/s: at least one full one-second sample is checked.
    run(&mut network, "/file/20000000/healthy.bin", &healthy).ok(what);
    assert_content(&dir.path().join("healthy.bin"), 20_000_000, what);
}
