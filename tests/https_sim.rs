//! HTTPS over our own TCP engine in the simulator: `engine::fetch::fetch`, as the CLI calls
//! it, against the simulated server's TLS port (rustls server side, `engine::sim_server`)
//! behind a simulated link with loss, reordering, duplication and corruption.
//!
//! Covered: TLS 1.3 and 1.2 with Content-Length, chunked and close-delimited bodies, byte
//! for byte; a stream cut without `close_notify` (exit 4, `.part` kept) continued by `-c`;
//! redirect http → https (wget follows it); an unknown authority and a wrong name (exit 5,
//! no file, and the server receives our alert); `--no-check-certificate`; `--https-only`;
//! `--spider`. The certificates are made here, at test time (rcgen): no private key is
//! committed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
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
use xdpget::tls::{TlsError, TlsSettings, TrustOptions};

#[path = "common/sim.rs"]
mod sim;
use sim::{fetch_options, sim_network};

const TLS_PORT: u16 = 443;

/// 1 % loss, 2 % reordering beyond the RTT, 0.5 % duplicates, 0.2 % corrupted, each way.
const LOSSY: Impairments = Impairments {
    loss: 0.01,
    duplicate: 0.005,
    reorder: 0.02,
    reorder_delay: Duration::from_millis(3),
    corrupt: 0.002,
};

/// A CA and a server certificate for `names`, made for one test.
struct Pki {
    ca_pem: String,
    cert: rustls::pki_types::CertificateDer<'static>,
    key: KeyPair,
}

impl Pki {
    fn new(names: &[&str]) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "sim CA");
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).unwrap();
        let cert = params
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .unwrap()
            .der()
            .clone();
        Pki { ca_pem, cert, key }
    }

    fn server_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .unwrap();
        Arc::new(config)
    }

    fn ca_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

fn network(
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
    impairments: Impairments,
    seed: u64,
) -> SimNetwork {
    sim_network(impairments, seed, |server| {
        server.with_tls(TLS_PORT, pki.server_config(versions))
    })
}

/// The CLI's defaults for virtual time, trusting `trust`.
fn options(dir: &Path, trust: TrustOptions, seed: u64) -> FetchOptions {
    let output = Output::Auto {
        directory: Some(dir.to_path_buf()),
    };
    let mut options = fetch_options(output, seed);
    options.transfer.tls = TlsSettings::new(trust);
    options
}

fn trust_file(path: PathBuf) -> TrustOptions {
    TrustOptions {
        ca_certificate: Some(path),
        ..TrustOptions::default()
    }
}

fn https(path: &str) -> String {
    format!("https://{}{path}", SERVER_ADDRESS.ip())
}

fn http(path: &str) -> String {
    format!("http://{}{path}", SERVER_ADDRESS.ip())
}

fn fetch(
    network: &mut SimNetwork,
    url: &str,
    options: &FetchOptions,
) -> (Result<Fetched, EngineError>, Vec<String>) {
    let mut notices = Vec::new();
    let result = fetch::fetch(
        network,
        url,
        options,
        &Progress::default(),
        &mut EngineStats::default(),
        &mut |line: String| notices.push(line),
    );
    (result, notices)
}

fn assert_content(path: &Path, len: u64, what: &str) {
    let actual = std::fs::read(path).unwrap_or_else(|e| panic!("{what}: {path:?}: {e}"));
    assert_eq!(actual.len() as u64, len, "{what}: length");
    let mut wanted = vec![0u8; len as usize];
    content::fill(CONTENT_SEED, 0, &mut wanted);
    if let Some(at) = actual.iter().zip(&wanted).position(|(a, b)| a != b) {
        panic!("{what}: differs from the server's contents first at byte {at}");
    }
}

fn impaired(network: &SimNetwork) -> u64 {
    let link = network.driver().link();
    [Direction::AToB, Direction::BToA]
        .into_iter()
        .map(|d| {
            let c = link.counters(d);
            c.lost + c.reordered + c.duplicated + c.corrupted
        })
        .sum()
}

#[test]
fn bodies_arrive_intact_over_tls13_and_tls12_on_clean_and_lossy_links() {
    let pki = Pki::new(&["10.0.0.2"]);
    let versions: [&[&'static rustls::SupportedProtocolVersion]; 2] =
        [&[&rustls::version::TLS13], &[&rustls::version::TLS12]];
    let mut seed = 1;
    for version in versions {
        for impairments in [Impairments::NONE, LOSSY] {
            let mut total_impaired = 0;
            for (kind, len) in [
                ("file", 1_048_576u64),
                ("chunked", 300_001),
                ("close", 200_003),
            ] {
                seed += 1;
                let what = format!("{kind}/{len} over {version:?}, loss {}", impairments.loss);
                let dir = TempDir::new().unwrap();
                let mut network = network(&pki, version, impairments, seed);
                let options = options(dir.path(), trust_file(pki.ca_file(dir.path())), seed);
                let url = https(&format!("/{kind}/{len}/body.bin"));
                let (result, notices) = fetch(&mut network, &url, &options);
                let fetched = result.unwrap_or_else(|e| panic!("{what}: {e} ({notices:?})"));
                assert_eq!(fetched.file_len, len, "{what}");
                assert_content(&dir.path().join("body.bin"), len, &what);
                total_impaired += impaired(&network);
            }
            if impairments.loss > 0.0 {
                assert!(
                    total_impaired > 20,
                    "the lossy link impaired {total_impaired} frames"
                );
            }
        }
    }
}

#[test]
fn a_cut_without_close_notify_fails_with_exit_4_and_resume_completes_it() {
    let pki = Pki::new(&["10.0.0.2"]);
    for (index, impairments) in [Impairments::NONE, LOSSY].into_iter().enumerate() {
        let seed = 100 + index as u64;
        let dir = TempDir::new().unwrap();
        let file = dir.path().join("cut.bin");
        let mut network = network(&pki, &[&rustls::version::TLS13], impairments, seed);
        let trust = trust_file(pki.ca_file(dir.path()));
        let first = FetchOptions {
            tries: 1,
            ..options(dir.path(), trust.clone(), seed)
        };
        let (result, notices) = fetch(&mut network, &https("/short/500000/180000/cut.bin"), &first);
        let error = result.expect_err("a cut stream fails");
        assert!(
            matches!(error, EngineError::Tls(TlsError::Truncated { .. })),
            "{error:?}"
        );
        assert_eq!(error.exit_code(), 4);
        assert!(notices.iter().any(|l| l.contains(" keeps ")), "{notices:?}");
        assert!(!file.exists());

        let second = FetchOptions {
            resume: true,
            ..options(dir.path(), trust, seed + 1000)
        };
        let (result, notices) = fetch(&mut network, &https("/file/500000/cut.bin"), &second);
        let fetched = result.unwrap_or_else(|e| panic!("-c: {e} ({notices:?})"));
        assert!(fetched.transferred < 500_000, "resumed: {fetched:?}");
        assert_content(&file, 500_000, "-c over TLS");
    }
}

#[test]
fn a_redirect_from_http_to_https_is_followed() {
    let pki = Pki::new(&["10.0.0.2"]);
    let dir = TempDir::new().unwrap();
    let mut network = network(&pki, &[&rustls::version::TLS13], Impairments::NONE, 7);
    let options = options(dir.path(), trust_file(pki.ca_file(dir.path())), 7);
    let (result, notices) = fetch(&mut network, &http("/tohttps/file/70000/r.bin"), &options);
    let fetched = result.unwrap_or_else(|e| panic!("{e} ({notices:?})"));
    assert!(fetched.final_url.starts_with("https://"), "{fetched:?}");
    // wget names the file after the URL the user gave.
    assert_content(&dir.path().join("r.bin"), 70_000, "http → https");

    // --https-only refuses the plain URL before connecting.
    let https_only = FetchOptions {
        https_only: true,
        ..options.clone()
    };
    let (result, _) = fetch(
        &mut network,
        &http("/tohttps/file/70000/s.bin"),
        &https_only,
    );
    let error = result.expect_err("--https-only refuses http://");
    assert!(
        matches!(error, EngineError::Tls(TlsError::HttpsOnly { .. })),
        "{error:?}"
    );
}

#[test]
fn untrusted_or_misnamed_certificates_fail_with_exit_5_and_leave_no_file() {
    let right = Pki::new(&["10.0.0.2"]);
    let stranger = Pki::new(&["10.0.0.2"]);
    let misnamed = Pki::new(&["10.0.0.9", "files.example"]);
    let cases: [(&Pki, &Pki, &str, rustls::AlertDescription); 2] = [
        (
            &right,
            &stranger,
            "unknown authority",
            // Both CAs are named "sim CA": the chain leads to the trusted one's name, and
            // its signature does not verify (RFC 8446 §6.2 decrypt_error).
            rustls::AlertDescription::DecryptError,
        ),
        (
            &misnamed,
            &misnamed,
            "wrong name",
            rustls::AlertDescription::BadCertificate,
        ),
    ];
    for (index, (server, trusted, what, alert)) in cases.into_iter().enumerate() {
        let dir = TempDir::new().unwrap();
        let mut network = network(
            server,
            &[&rustls::version::TLS13],
            Impairments::NONE,
            20 + index as u64,
        );
        let options = options(dir.path(), trust_file(trusted.ca_file(dir.path())), 20);
        let (result, _) = fetch(&mut network, &https("/file/1000/x.bin"), &options);
        let error = result.expect_err(what);
        assert_eq!(error.exit_code(), 5, "{what}: {error}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["ca.pem"], "{what}: no output file");
        // Fatal: not retried.
        assert_eq!(
            network.driver().peer().connection_stats().len(),
            1,
            "{what}"
        );

        let insecure = TrustOptions {
            no_check_certificate: true,
            ..TrustOptions::default()
        };
        let options = options_with(dir.path(), insecure, 30);
        let (result, notices) = fetch(&mut network, &https("/file/1000/x.bin"), &options);
        result.unwrap_or_else(|e| panic!("{what} with --no-check-certificate: {e}"));
        // The rejection was said, not just a reset: the server's session received our alert
        // (it crossed the link while the second download ran).
        assert_eq!(
            network.driver().peer().tls_alerts_received(),
            [alert],
            "{what}"
        );
        assert!(
            notices.iter().any(|l| l.starts_with("WARNING")),
            "{notices:?}"
        );
        assert_content(&dir.path().join("x.bin"), 1000, what);
    }
}

fn options_with(dir: &Path, trust: TrustOptions, seed: u64) -> FetchOptions {
    options(dir, trust, seed)
}

#[test]
fn spider_over_https_checks_without_writing() {
    let pki = Pki::new(&["10.0.0.2"]);
    let dir = TempDir::new().unwrap();
    let mut network = network(&pki, &[&rustls::version::TLS12], Impairments::NONE, 40);
    let options = FetchOptions {
        spider: true,
        ..options(dir.path(), trust_file(pki.ca_file(dir.path())), 40)
    };
    let (result, _) = fetch(&mut network, &https("/file/5000/s.bin"), &options);
    let fetched = result.unwrap();
    assert_eq!(fetched.path, None);
    assert!(!dir.path().join("s.bin").exists());
    let (result, _) = fetch(&mut network, &https("/status/404"), &options);
    assert_eq!(result.unwrap_err().exit_code(), 8);
}

/// Issue 11: `-x N` and `--parallel` work over TLS too: every connection its own TLS
/// session, byte-exact on a lossy link.
#[test]
fn segmented_and_parallel_downloads_over_tls() {
    use xdpget::engine::runtime::{self, Executor, LoopSettings, Reactor};

    let pki = Pki::new(&["10.0.0.2"]);
    let len = 8u64 << 20;
    // -x 4 over TLS 1.3.
    let dir = TempDir::new().unwrap();
    let mut tls13 = network(&pki, &[&rustls::version::TLS13], LOSSY, 41);
    let mut segmented = options(dir.path(), trust_file(pki.ca_file(dir.path())), 41);
    segmented.connections = 4;
    let (result, notices) = fetch(
        &mut tls13,
        &https(&format!("/etag/t/file/{len}")),
        &segmented,
    );
    result.unwrap_or_else(|e| panic!("-x 4 over TLS: {e} ({notices:?})"));
    assert_content(&dir.path().join(len.to_string()), len, "-x 4 over TLS");
    let connections = tls13.driver().peer().connection_stats().len();
    assert!(
        connections >= 4,
        "-x 4 over TLS used {connections} connections"
    );

    // --parallel 3 over TLS 1.2: three files at once on one loop.
    let dir = TempDir::new().unwrap();
    let mut tls12 = network(&pki, &[&rustls::version::TLS12], LOSSY, 42);
    let options = options(dir.path(), trust_file(pki.ca_file(dir.path())), 42);
    let sizes = [1_000_000u64, 2_000_000, 3_000_000];
    let urls: Vec<String> = sizes.iter().map(|n| https(&format!("/file/{n}"))).collect();
    let progresses: Vec<Progress> = sizes.iter().map(|_| Progress::default()).collect();
    let reactor = Reactor::default();
    let results: Vec<std::cell::RefCell<Option<Result<Fetched, EngineError>>>> =
        sizes.iter().map(|_| Default::default()).collect();
    let mut executor = Executor::new(3);
    for (i, url) in urls.iter().enumerate() {
        let (reactor, progress, result, options) =
            (&reactor, &progresses[i], &results[i], &options);
        executor.spawn(async move {
            let mut ignore = |_: String| {};
            *result.borrow_mut() =
                Some(fetch::fetch_on(reactor, url, options, progress, &mut ignore).await);
        });
    }
    runtime::run(
        &reactor,
        &mut tls12,
        &mut executor,
        &LoopSettings::of(&options.transfer),
    )
    .expect("the loop ends without a driver error");
    drop(executor);
    for (i, (result, size)) in results.into_iter().zip(sizes).enumerate() {
        let result = result.into_inner().expect("every task ended");
        result.unwrap_or_else(|e| panic!("--parallel over TLS, {}: {e}", urls[i]));
        assert_content(&dir.path().join(size.to_string()), size, &urls[i]);
    }
}
