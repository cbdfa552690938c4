//! Whom we trust, as wget's options say, turned into one rustls `ClientConfig`.
//!
//! - the system's certificate authorities (Debian: `/etc/ssl/certs`, or `SSL_CERT_FILE` /
//!   `SSL_CERT_DIR`), as wget uses them;
//! - `--ca-certificate FILE` and `--ca-directory DIR` add authorities (PEM), as wget built
//!   with OpenSSL does;
//! - `--no-check-certificate` accepts any certificate for any name, but still checks the
//!   handshake's signatures, so that the connection is at least with the holder of the
//!   presented key.
//!
//! TLS 1.3 and 1.2 (RFC 8446, RFC 5246) with the aws-lc-rs provider; ALPN offers only
//! `http/1.1` (RFC 7301), since we speak nothing else. The config is built once per run, on
//! the first `https://` URL, and shared by every connection (it also holds the session
//! cache, so a retry or a redirect to the same host resumes its session, RFC 8446 §2.2).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::TlsError;

/// wget's certificate options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustOptions {
    /// `--ca-certificate FILE`: more authorities, PEM.
    pub ca_certificate: Option<PathBuf>,
    /// `--ca-directory DIR`: more authorities, one or more PEM files per entry.
    pub ca_directory: Option<PathBuf>,
    /// `--no-check-certificate`.
    pub no_check_certificate: bool,
}

/// The TLS client settings of a run: the options, and the config built from them on first
/// use (cheap to clone; clones share the config).
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    pub trust: TrustOptions,
    built: Arc<OnceLock<Result<Arc<ClientConfig>, TlsError>>>,
}

impl TlsSettings {
    pub fn new(trust: TrustOptions) -> TlsSettings {
        TlsSettings {
            trust,
            built: Arc::default(),
        }
    }

    /// The client config, built on the first call (loading the system's authorities takes
    /// a few milliseconds, which a plain `http://` run never pays).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        self.built
            .get_or_init(|| client_config(&self.trust).map(Arc::new))
            .clone()
    }
}

/// The aws-lc-rs provider: AES-GCM and ChaCha20-Poly1305 with hardware acceleration.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn client_config(trust: &TrustOptions) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Trust {
            reason: e.to_string(),
        })?;
    let mut config = if trust.no_check_certificate {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(root_store(trust)?)
            .with_no_client_auth()
    };
    // RFC 7301: the only application protocol we speak.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // After the handshake `TlsStream` takes the traffic secrets and opens the records itself,
    // in place (`records.rs`); they never leave the process.
    config.enable_secret_extraction = true;
    Ok(config)
}

/// The system's authorities plus the user's.
fn root_store(trust: &TrustOptions) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    store.add_parsable_certificates(system.certs);
    let explicit = trust.ca_certificate.is_some() || trust.ca_directory.is_some();
    if explicit {
        let user = rustls_native_certs::load_certs_from_paths(
            trust.ca_certificate.as_deref(),
            trust.ca_directory.as_deref(),
        );
        if let Some(error) = user.errors.first() {
            return Err(TlsError::Trust {
                reason: error.to_string(),
            });
        }
        let given = user.certs.len();
        let (added, _) = store.add_parsable_certificates(user.certs);
        if added == 0 {
            let place = trust
                .ca_certificate
                .as_ref()
                .or(trust.ca_directory.as_ref())
                .map_or_else(String::new, |p| p.display().to_string());
            return Err(TlsError::Trust {
                reason: format!("no usable PEM certificate in {place} ({given} found)"),
            });
        }
    }
    if store.is_empty() {
        return Err(TlsError::Trust {
            reason: "the system has no certificate authorities (install ca-certificates, or \
                     give --ca-certificate FILE)"
                .to_string(),
        });
    }
    Ok(store)
}

/// `--no-check-certificate`: any chain, any name; the handshake signature is still checked
/// against the presented certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The name rustls checks the certificate against and sends as SNI (RFC 6066 §3: only for
/// DNS names; an IP address is checked against the certificate's IP addresses).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_string()).map_err(|_| TlsError::InvalidServerName {
        host: host.to_string(),
    })
}
