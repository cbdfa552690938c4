//! The client session against an in-memory rustls server: certificates made here, at test
//! time (rcgen), ciphertext carried as TCP would, in segments, out of order and twice.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};
use tempfile::TempDir;

use super::{TlsError, TlsSettings, TlsStream, TrustOptions};

const HOST: &str = "files.example";
const REQUEST: &[u8] = b"GET /f HTTP/1.1\r\nHost: files.example\r\nConnection: close\r\n\r\n";

/// A certificate authority made for one test.
struct Authority {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Authority { params, key, pem }
    }

    /// A server certificate for `names`, valid from `from` to `until` (years).
    fn issue(&self, names: &[&str], from: i32, until: i32) -> (CertificateDer<'static>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, "server");
        params.not_before = date_time_ymd(from, 1, 1);
        params.not_after = date_time_ymd(until, 1, 1);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.der().clone(), key)
    }

    /// The CA's PEM in a file of `dir`, for `--ca-certificate`.
    fn file(&self, dir: &TempDir) -> PathBuf {
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

fn server_config(
    cert: CertificateDer<'static>,
    key: &KeyPair,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

fn trusting(ca_file: Option<PathBuf>, no_check: bool) -> TlsSettings {
    TlsSettings::new(TrustOptions {
        ca_certificate: ca_file,
        ca_directory: None,
        no_check_certificate: no_check,
    })
}

/// How the server ends its side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    CloseNotify,
    /// Close without close_notify after `n` response bytes.
    Cut(usize),
}

/// The result of one exchange: the request the server read, the plaintext the client got,
/// and the client's verdict at the end of the stream.
struct Outcome {
    request: Vec<u8>,
    plaintext: Vec<u8>,
    end: Result<u64, TlsError>,
}

/// Runs a client session against `server` until both are done. Server ciphertext reaches
/// the client in segments of `segment` bytes; with `shuffle`, every other pair of segments
/// is swapped and every fifth sent twice.
fn converse(
    client: TlsSettings,
    server: Arc<ServerConfig>,
    response: &[u8],
    ending: Ending,
    segment: usize,
    shuffle: bool,
) -> Result<Outcome, TlsError> {
    let talked = talk(
        &client.client_config()?,
        server,
        Script {
            segment,
            shuffle,
            ending,
            ..Script::new(response)
        },
    );
    talked.error.map_or(
        Ok(Outcome {
            request: talked.request,
            plaintext: talked.plaintext,
            end: talked.end,
        }),
        Err,
    )
}

/// What the server does and how its bytes travel, for [`talk`].
struct Script<'a> {
    response: &'a [u8],
    ending: Ending,
    segment: usize,
    shuffle: bool,
    /// Response bytes the server writes before it has read the request (TLS 1.3 half-RTT
    /// data, sent with its Finished when the config allows it).
    early: usize,
    /// Called on the server once the response's first half is written, before the rest.
    midway: Option<&'a mut dyn FnMut(&mut ServerConnection)>,
    /// Flips this byte of the server's stream on the way.
    tamper: Option<u64>,
}

impl<'a> Script<'a> {
    fn new(response: &'a [u8]) -> Script<'a> {
        Script {
            response,
            ending: Ending::CloseNotify,
            segment: 1448,
            shuffle: false,
            early: 0,
            midway: None,
            tamper: None,
        }
    }
}

/// Everything one [`talk`] shows.
struct Talked {
    request: Vec<u8>,
    plaintext: Vec<u8>,
    /// The client's verdict at the end of the stream (when `error` is `None`).
    end: Result<u64, TlsError>,
    /// The error `process` returned, which ended the talk.
    error: Option<TlsError>,
    /// Our record layer, not rustls's, opened the records at the end.
    ours: bool,
    /// The server resumed a session (RFC 8446 §2.2).
    resumed: bool,
    /// What the server made of the client's bytes after an error (its alert).
    server_saw: Option<rustls::Error>,
}

/// Runs a client session with `client` against a server with `server`, as `script` says.
fn talk(
    client: &Arc<rustls::ClientConfig>,
    server: Arc<ServerConfig>,
    script: Script<'_>,
) -> Talked {
    let Script {
        response,
        ending,
        segment,
        shuffle,
        early,
        mut midway,
        tamper,
    } = script;
    let mut tls = TlsStream::new(Arc::clone(client), HOST, REQUEST.to_vec(), 1 << 20).unwrap();
    let mut server = ServerConnection::new(server).unwrap();
    server.set_buffer_limit(None);
    let mut request = Vec::new();
    let mut plaintext = Vec::new();
    let mut offset = 0u64;
    let mut responded = false;
    let mut wrote_early = early == 0;
    let feed = |server: &mut ServerConnection, tls: &mut TlsStream| {
        let out = tls.pending_output().to_vec();
        tls.consume_output(out.len());
        let mut reader = &out[..];
        while !reader.is_empty() {
            server.read_tls(&mut reader).unwrap();
        }
        server.process_new_packets().err()
    };
    let upto = match ending {
        Ending::CloseNotify => response.len(),
        Ending::Cut(n) => n,
    };
    for _ in 0..10_000 {
        // Client → server. An error: the server's alert still goes out below.
        let _ = feed(&mut server, &mut tls);
        let mut buffer = [0u8; 4096];
        while let Ok(n) = server.reader().read(&mut buffer) {
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buffer[..n]);
        }
        if !wrote_early && server.wants_write() {
            // The server's first flight is queued: the early bytes follow its Finished.
            server.writer().write_all(&response[..early]).unwrap();
            wrote_early = true;
        }
        if !responded && request.ends_with(b"\r\n\r\n") {
            responded = true;
            let half = early.max(upto / 2).min(upto);
            server.writer().write_all(&response[early..half]).unwrap();
            if let Some(midway) = midway.as_mut() {
                midway(&mut server);
            }
            server.writer().write_all(&response[half..upto]).unwrap();
            if ending == Ending::CloseNotify {
                server.send_close_notify();
            }
        }
        // Server → client, as TCP segments.
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        if let Some(at) = tamper
            && (offset..offset + wire.len() as u64).contains(&at)
        {
            wire[(at - offset) as usize] ^= 0x40;
        }
        let mut segments: Vec<(u64, Vec<u8>)> = wire
            .chunks(segment)
            .map(|chunk| {
                let at = offset;
                offset += chunk.len() as u64;
                (at, chunk.to_vec())
            })
            .collect();
        if shuffle {
            for pair in segments.chunks_mut(4) {
                if pair.len() >= 2 {
                    pair.swap(0, 1);
                }
            }
            let again: Vec<_> = segments.iter().step_by(5).cloned().collect();
            segments.extend(again);
        }
        let mut failed = None;
        for (at, bytes) in &segments {
            if let Err(e) = tls.on_stream(*at, bytes) {
                failed = Some(e);
                break;
            }
        }
        if failed.is_none()
            && let Err(e) = tls.process(&mut |at, bytes| {
                assert_eq!(at, plaintext.len() as u64, "plaintext arrives in order");
                plaintext.extend_from_slice(bytes);
            })
        {
            failed = Some(e);
        }
        let done = responded && wire.is_empty() && tls.pending_output().is_empty();
        if failed.is_some() || done {
            let server_saw = if failed.is_some() {
                feed(&mut server, &mut tls)
            } else {
                None
            };
            return Talked {
                request,
                plaintext,
                end: tls.end_of_stream(),
                error: failed,
                ours: tls.opens_records_itself(),
                resumed: server.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
                server_saw,
            };
        }
    }
    panic!("the conversation did not end");
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn tls13_and_tls12_carry_request_and_body() {
    let ca = Authority::new("test CA");
    let dir = TempDir::new().unwrap();
    let (cert, key) = ca.issue(&[HOST], 2020, 2090);
    let response = body(300_000);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        for (segment, shuffle) in [(1448, false), (1000, true), (1, false)] {
            let server = server_config(cert.clone(), &key, &[version]);
            let client = trusting(Some(ca.file(&dir)), false);
            let outcome = converse(
                client,
                server,
                &response,
                Ending::CloseNotify,
                segment,
                shuffle,
            )
            .unwrap_or_else(|e| panic!("{version:?} {segment}: {e}"));
            assert_eq!(outcome.request, REQUEST);
            assert!(
                outcome.plaintext == response,
                "{version:?} {segment} {shuffle}"
            );
            assert_eq!(outcome.end, Ok(response.len() as u64));
            if segment == 1 {
                break; // one byte at a time is slow; once is enough
            }
        }
    }
}

#[test]
fn a_stream_cut_without_close_notify_is_truncated() {
    let ca = Authority::new("test CA");
    let dir = TempDir::new().unwrap();
    let (cert, key) = ca.issue(&[HOST], 2020, 2090);
    let response = body(50_000);
    let server = server_config(cert, &key, &[&rustls::version::TLS13]);
    let outcome = converse(
        trusting(Some(ca.file(&dir)), false),
        server,
        &response,
        Ending::Cut(20_000),
        1448,
        false,
    )
    .unwrap();
    assert_eq!(outcome.plaintext, response[..20_000]);
    let error = outcome.end.unwrap_err();
    assert_eq!(error, TlsError::Truncated { host: HOST.into() });
    assert_eq!(error.exit_code(), 4);
}

/// The error the client ends with against a server with `cert`, trusting `ca_file`.
fn failure(cert: CertificateDer<'static>, key: &KeyPair, client: TlsSettings) -> TlsError {
    let server = server_config(
        cert,
        key,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    );
    match converse(
        client,
        server,
        b"HTTP/1.1 200 OK\r\n\r\n",
        Ending::CloseNotify,
        1448,
        false,
    ) {
        Ok(_) => panic!("the handshake succeeded"),
        Err(e) => e,
    }
}

#[test]
fn each_certificate_problem_is_one_sentence_and_exit_5() {
    let ca = Authority::new("test CA");
    let stranger = Authority::new("another CA");
    let dir = TempDir::new().unwrap();
    let trust = || trusting(Some(ca.file(&dir)), false);

    let (cert, key) = stranger.issue(&[HOST], 2020, 2090);
    let error = failure(cert, &key, trust());
    assert_eq!(error, TlsError::UnknownIssuer { host: HOST.into() });

    let (cert, key) = ca.issue(&[HOST], 2000, 2001);
    let error = failure(cert, &key, trust());
    assert!(matches!(error, TlsError::Expired { .. }), "{error:?}");
    assert!(
        error.to_string().contains("valid until 2001-01-01"),
        "{error}"
    );

    let (cert, key) = ca.issue(&[HOST], 2090, 2091);
    let error = failure(cert, &key, trust());
    assert!(matches!(error, TlsError::NotValidYet { .. }), "{error:?}");

    let (cert, key) = ca.issue(&["other.example"], 2020, 2090);
    let error = failure(cert, &key, trust());
    assert!(matches!(error, TlsError::NameMismatch { .. }), "{error:?}");
    assert!(error.to_string().contains("other.example"), "{error}");

    // Signed by a key that is not the trusted CA's, under the CA's name.
    let impostor = Authority {
        params: ca.params.clone(),
        key: KeyPair::generate().unwrap(),
        pem: String::new(),
    };
    let (cert, key) = impostor.issue(&[HOST], 2020, 2090);
    let error = failure(cert, &key, trust());
    assert!(matches!(error, TlsError::BadSignature { .. }), "{error:?}");

    for error in [
        TlsError::UnknownIssuer { host: HOST.into() },
        TlsError::BadSignature { host: HOST.into() },
    ] {
        assert_eq!(error.exit_code(), 5);
    }
}

#[test]
fn no_check_certificate_accepts_any_certificate() {
    let stranger = Authority::new("another CA");
    let response = body(10_000);
    for (names, from, until) in [
        (&[HOST][..], 2020, 2090),
        (&["other.example"][..], 2020, 2090),
        (&[HOST][..], 2000, 2001),
    ] {
        let (cert, key) = stranger.issue(names, from, until);
        let server = server_config(cert, &key, &[&rustls::version::TLS13]);
        let outcome = converse(
            trusting(None, true),
            server,
            &response,
            Ending::CloseNotify,
            1448,
            false,
        )
        .unwrap();
        assert!(outcome.plaintext == response);
    }
}

#[test]
fn a_server_alert_is_a_handshake_failure() {
    let ca = Authority::new("test CA");
    let dir = TempDir::new().unwrap();
    let (cert, key) = ca.issue(&[HOST], 2020, 2090);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    // A server that only speaks h2 refuses our ALPN (RFC 7301 §3.2).
    config.alpn_protocols = vec![b"h2".to_vec()];
    let outcome = converse(
        trusting(Some(ca.file(&dir)), false),
        Arc::new(config),
        b"",
        Ending::CloseNotify,
        1448,
        false,
    );
    let error = match outcome {
        Ok(_) => panic!("the handshake succeeded"),
        Err(e) => e,
    };
    assert_eq!(
        error,
        TlsError::Alert {
            host: HOST.into(),
            alert: "no application protocol".into()
        }
    );
    assert_eq!(error.exit_code(), 5);
}

#[test]
fn an_unreadable_ca_file_is_a_clear_error() {
    let settings = trusting(Some(PathBuf::from("/nonexistent/ca.pem")), false);
    let error = settings.client_config().unwrap_err();
    assert!(matches!(error, TlsError::Trust { .. }), "{error:?}");
    assert_eq!(error.exit_code(), 5);
    let dir = TempDir::new().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let error = trusting(Some(empty), false).client_config().unwrap_err();
    assert!(
        error.to_string().contains("no usable PEM certificate"),
        "{error}"
    );
}

#[test]
fn ip_address_hosts_are_checked_against_ip_names() {
    assert!(super::config::server_name("10.0.0.2").is_ok());
    assert!(super::config::server_name("bad name!").is_err());
}

#[test]
fn a_ca_directory_is_trusted_like_a_ca_file() {
    let ca = Authority::new("test CA");
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("a.pem"), &ca.pem).unwrap();
    std::fs::write(dir.path().join("b.pem"), &Authority::new("other").pem).unwrap();
    let (cert, key) = ca.issue(&[HOST], 2020, 2090);
    let server = server_config(cert, &key, &[&rustls::version::TLS13]);
    let client = TlsSettings::new(TrustOptions {
        ca_directory: Some(dir.path().to_path_buf()),
        ..TrustOptions::default()
    });
    let response = body(5000);
    let outcome = converse(client, server, &response, Ending::CloseNotify, 1448, false).unwrap();
    assert!(outcome.plaintext == response);
}

/// Runs a handshake that our side rejects, then gives the server what the client has left
/// to send after the error. Returns the client's error and what the server made of those
/// bytes (the alert it received, or `None` if it found nothing wrong).
fn rejection_seen_by_server(
    cert: CertificateDer<'static>,
    key: &KeyPair,
    client: TlsSettings,
    version: &'static rustls::SupportedProtocolVersion,
) -> (TlsError, Option<rustls::Error>) {
    let mut tls = TlsStream::new(
        client.client_config().unwrap(),
        HOST,
        REQUEST.to_vec(),
        1 << 20,
    )
    .unwrap();
    let mut server = ServerConnection::new(server_config(cert, key, &[version])).unwrap();
    let mut offset = 0u64;
    for _ in 0..100 {
        let mut out = &tls.pending_output().to_vec()[..];
        tls.consume_output(out.len());
        while !out.is_empty() {
            server.read_tls(&mut out).unwrap();
        }
        server.process_new_packets().unwrap();
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        tls.on_stream(offset, &wire).unwrap();
        offset += wire.len() as u64;
        if let Err(error) = tls.process(&mut |_, _| {}) {
            // Everything the client queued after the error: the alert, if any.
            let mut alert = &tls.pending_output().to_vec()[..];
            assert!(
                !alert.is_empty(),
                "{version:?}: no alert queued after {error}"
            );
            while !alert.is_empty() {
                server.read_tls(&mut alert).unwrap();
            }
            return (error, server.process_new_packets().err());
        }
    }
    panic!("the handshake did not end");
}

#[test]
fn a_rejected_certificate_is_answered_with_the_matching_alert() {
    use rustls::AlertDescription as A;
    let ca = Authority::new("test CA");
    let stranger = Authority::new("another CA");
    let dir = TempDir::new().unwrap();
    let trust = || trusting(Some(ca.file(&dir)), false);
    // RFC 8446 §6.2 (and RFC 5246 §7.2.2): the alert names the problem.
    let cases = [
        (stranger.issue(&[HOST], 2020, 2090), A::UnknownCA),
        (ca.issue(&[HOST], 2000, 2001), A::CertificateExpired),
        (ca.issue(&["other.example"], 2020, 2090), A::BadCertificate),
    ];
    for ((cert, key), expected) in cases {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let (client_error, server_saw) =
                rejection_seen_by_server(cert.clone(), &key, trust(), version);
            assert_eq!(client_error.exit_code(), 5, "{client_error}");
            assert_eq!(
                server_saw,
                Some(rustls::Error::AlertReceived(expected)),
                "{version:?}: {client_error}"
            );
        }
    }
}

/// Every AEAD suite of the aws-lc-rs provider, TLS 1.3 and 1.2 (ECDSA: rcgen's keys).
const SUITES: [rustls::SupportedCipherSuite; 6] = {
    use rustls::crypto::aws_lc_rs::cipher_suite as s;
    [
        s::TLS13_AES_128_GCM_SHA256,
        s::TLS13_AES_256_GCM_SHA384,
        s::TLS13_CHACHA20_POLY1305_SHA256,
        s::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        s::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        s::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ]
};

/// A server that speaks only `suite`, with `edit` applied to its config.
fn suite_server(
    cert: CertificateDer<'static>,
    key: &KeyPair,
    suite: rustls::SupportedCipherSuite,
    edit: impl FnOnce(&mut ServerConfig),
) -> Arc<ServerConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites = vec![suite];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[suite.version()])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    edit(&mut config);
    Arc::new(config)
}

/// A CA, a certificate for HOST, and a client config trusting the CA.
struct Setup {
    cert: CertificateDer<'static>,
    key: KeyPair,
    client: Arc<rustls::ClientConfig>,
    _dir: TempDir,
}

fn setup() -> Setup {
    let ca = Authority::new("test CA");
    let dir = TempDir::new().unwrap();
    let (cert, key) = ca.issue(&[HOST], 2020, 2090);
    let client = trusting(Some(ca.file(&dir)), false)
        .client_config()
        .unwrap();
    Setup {
        cert,
        key,
        client,
        _dir: dir,
    }
}

#[test]
fn every_suite_is_opened_in_place_after_the_handshake() {
    let Setup {
        cert, key, client, ..
    } = setup();
    let response = body(70_000);
    for suite in SUITES {
        let server = suite_server(cert.clone(), &key, suite, |_| {});
        // Records cut at odd places, out of order and twice (`talk`'s shuffle).
        for (segment, shuffle) in [
            (1, false),
            (3, true),
            (7, false),
            (13, true),
            (1447, true),
            (16_389, true),
        ] {
            let script = Script {
                segment,
                shuffle,
                ..Script::new(&response)
            };
            let talked = talk(&client, Arc::clone(&server), script);
            let case = format!("{:?} segment {segment}", suite.suite());
            assert_eq!(talked.error, None, "{case}");
            assert_eq!(talked.request, REQUEST, "{case}");
            assert!(talked.plaintext == response, "{case}");
            assert_eq!(talked.end, Ok(response.len() as u64), "{case}");
            assert!(talked.ours, "{case}: rustls kept the records");
        }
    }
}

#[test]
fn without_secret_extraction_rustls_keeps_the_records() {
    let Setup {
        cert, key, client, ..
    } = setup();
    let mut config = (*client).clone();
    config.enable_secret_extraction = false;
    let response = body(40_000);
    for suite in [SUITES[0], SUITES[3]] {
        let server = suite_server(cert.clone(), &key, suite, |_| {});
        let talked = talk(&Arc::new(config.clone()), server, Script::new(&response));
        assert_eq!(talked.error, None);
        assert!(talked.plaintext == response);
        assert!(!talked.ours);
    }
}

#[test]
fn tickets_after_the_take_over_resume_the_next_connection() {
    let Setup {
        cert, key, client, ..
    } = setup();
    let response = body(60_000);
    for suite in &SUITES[..3] {
        // Half-RTT data: 20 000 response bytes come with the server's Finished, so rustls
        // opens them; the tickets follow the client's Finished, when our layer has taken
        // over, and before the rest of the body.
        let server = suite_server(cert.clone(), &key, *suite, |c| c.send_half_rtt_data = true);
        let script = || Script {
            early: 20_000,
            segment: 1000,
            ..Script::new(&response)
        };
        let first = talk(&client, Arc::clone(&server), script());
        assert_eq!(first.error, None);
        assert!(first.plaintext == response && first.ours && !first.resumed);
        let second = talk(&client, server, script());
        assert_eq!(second.error, None);
        assert!(second.plaintext == response && second.ours);
        assert!(second.resumed, "{:?}: the ticket was lost", suite.suite());
    }
}

#[test]
fn a_key_update_from_the_server_is_followed() {
    let Setup {
        cert, key, client, ..
    } = setup();
    let response = body(100_000);
    for suite in &SUITES[..3] {
        let server = suite_server(cert.clone(), &key, *suite, |_| {});
        let mut updates = 0;
        let mut update = |server: &mut ServerConnection| {
            // A KeyUpdate with update_requested between two records of the body.
            server.refresh_traffic_keys().unwrap();
            updates += 1;
        };
        let script = Script {
            midway: Some(&mut update),
            segment: 999,
            shuffle: true,
            ..Script::new(&response)
        };
        let talked = talk(&client, server, script);
        assert_eq!(updates, 1);
        assert_eq!(talked.error, None, "{:?}", suite.suite());
        assert!(talked.plaintext == response && talked.ours);
        assert_eq!(talked.end, Ok(response.len() as u64));
    }
}

#[test]
fn an_altered_record_is_refused_with_bad_record_mac() {
    let Setup {
        cert, key, client, ..
    } = setup();
    let response = body(100_000);
    for suite in [SUITES[0], SUITES[3], SUITES[5]] {
        let server = suite_server(cert.clone(), &key, suite, |_| {});
        let script = Script {
            tamper: Some(60_000),
            ..Script::new(&response)
        };
        let talked = talk(&client, server, script);
        let case = format!("{:?}", suite.suite());
        let error = talked.error.expect("the altered record was accepted");
        assert!(
            matches!(error, TlsError::Record { .. }),
            "{case}: {error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "TLS connection with {HOST} failed: a record failed authentication \
                 (bad_record_mac): it was altered on the way"
            )
        );
        assert_eq!(error.exit_code(), 5);
        // The records before it were handed out, nothing of it (a flipped bit would show).
        assert!(!talked.plaintext.is_empty(), "{case}");
        assert!(response.starts_with(&talked.plaintext), "{case}");
        assert!(talked.plaintext.len() < 60_000, "{case}");
        // The server read our fatal alert (RFC 8446 §6.2).
        assert_eq!(
            talked.server_saw,
            Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::BadRecordMac
            )),
            "{case}"
        );
    }
}

#[test]
fn close_notify_ends_the_stream_and_a_cut_is_truncation() {
    let Setup {
        cert, key, client, ..
    } = setup();
    let response = body(50_000);
    for suite in [SUITES[1], SUITES[4]] {
        let server = suite_server(cert.clone(), &key, suite, |_| {});
        let closed = talk(&client, Arc::clone(&server), Script::new(&response));
        assert!(closed.ours);
        assert_eq!(closed.end, Ok(response.len() as u64));
        let script = Script {
            ending: Ending::Cut(30_000),
            ..Script::new(&response)
        };
        let cut = talk(&client, server, script);
        assert!(cut.ours);
        assert_eq!(cut.plaintext, response[..30_000]);
        let error = cut.end.unwrap_err();
        assert_eq!(error, TlsError::Truncated { host: HOST.into() });
        assert_eq!(error.exit_code(), 4);
    }
}
