//! Why a TLS connection failed, as one sentence for the user and wget's exit code.
//!
//! wget(1) "EXIT STATUS": 5 is "SSL verification failure"; wget uses it for every
//! certificate problem and for a failed handshake. A connection that ends without the
//! peer's `close_notify` alert (RFC 8446 §6.1) before the body is complete is a network
//! failure (4): a retry, or `-c`, continues the file.

use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, CertificateError};

/// Everything that can go wrong between the first TLS byte and the last plaintext byte.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The chain does not lead to a certificate authority we trust.
    #[error(
        "cannot verify {host}'s certificate: it is not issued by a trusted certificate authority \
         (give the authority with --ca-certificate FILE, or skip the check with \
         --no-check-certificate)"
    )]
    UnknownIssuer { host: String },
    /// The certificate's validity period ended.
    #[error("{host}'s certificate has expired{}", since(.not_after))]
    Expired {
        host: String,
        not_after: Option<String>,
    },
    /// The certificate's validity period has not begun.
    #[error("{host}'s certificate is not valid yet{}", from(.not_before))]
    NotValidYet {
        host: String,
        not_before: Option<String>,
    },
    /// The certificate is for other names than the one in the URL (RFC 6125).
    #[error("{host}'s certificate does not name '{host}'{}", presented_names(.presented))]
    NameMismatch {
        host: String,
        presented: Vec<String>,
    },
    /// A signature in the chain does not verify.
    #[error("{host}'s certificate has a bad signature")]
    BadSignature { host: String },
    /// The certificate was revoked.
    #[error("{host}'s certificate has been revoked")]
    Revoked { host: String },
    /// Any other certificate problem (bad encoding, wrong purpose, unknown critical
    /// extension, unsupported algorithm).
    #[error("{host}'s certificate is not acceptable: {reason}")]
    InvalidCertificate { host: String, reason: String },
    /// The server ended the handshake with an alert (RFC 8446 §6.2).
    #[error("{host} refused the TLS connection (alert: {alert})")]
    Alert { host: String, alert: String },
    /// The handshake failed on our side: no common version or cipher suite, a malformed
    /// or unexpected message.
    #[error("TLS handshake with {host} failed: {reason}")]
    Handshake { host: String, reason: String },
    /// After the handshake, the server sent a record we refuse (altered, oversized, or a
    /// message with no place there); the session ends with a fatal alert (RFC 8446 §6.2).
    #[error("TLS connection with {host} failed: {reason}")]
    Record { host: String, reason: String },
    /// The stream ended without `close_notify` before the response was complete: the
    /// response may have been cut short by anyone on the path (RFC 8446 §6.1).
    #[error(
        "{host} closed the TLS connection without close_notify before the response was complete"
    )]
    Truncated { host: String },
    /// The certificate authorities could not be loaded.
    #[error("cannot load trusted certificates: {reason}")]
    Trust { reason: String },
    /// A host name rustls cannot use as a TLS server name.
    #[error("'{host}' is not a valid TLS server name")]
    InvalidServerName { host: String },
    /// `--https-only` and an `http://` URL (given, or a redirect's).
    #[error("refusing '{url}': --https-only allows only https:// URLs")]
    HttpsOnly { url: String },
}

impl TlsError {
    /// wget's exit code: 5 for verification and handshake failures, 4 for a truncated
    /// stream (a network failure, retried), 1 for `--https-only`.
    pub fn exit_code(&self) -> u8 {
        match self {
            TlsError::Truncated { .. } => 4,
            TlsError::HttpsOnly { .. } => 1,
            _ => 5,
        }
    }

    /// The user's sentence for a rustls error met while talking to `host`.
    pub fn from_rustls(host: &str, error: rustls::Error) -> TlsError {
        let host = host.to_string();
        match error {
            rustls::Error::InvalidCertificate(certificate) => from_certificate(host, certificate),
            rustls::Error::AlertReceived(alert) => TlsError::Alert {
                host,
                alert: alert_name(alert),
            },
            rustls::Error::NoCertificatesPresented => TlsError::InvalidCertificate {
                host,
                reason: "the server presented no certificate".to_string(),
            },
            other => TlsError::Handshake {
                host,
                reason: other.to_string(),
            },
        }
    }
}

impl TlsError {
    /// The user's sentence for a record our own record layer refused.
    pub(crate) fn from_record(host: &str, error: super::records::RecordError) -> TlsError {
        let host = host.to_string();
        match error {
            super::records::RecordError::AlertReceived(alert) => TlsError::Alert {
                host,
                alert: alert_name(alert),
            },
            other => TlsError::Record {
                host,
                reason: other.to_string(),
            },
        }
    }
}

fn from_certificate(host: String, error: CertificateError) -> TlsError {
    match error {
        CertificateError::UnknownIssuer => TlsError::UnknownIssuer { host },
        CertificateError::Expired => TlsError::Expired {
            host,
            not_after: None,
        },
        CertificateError::ExpiredContext { not_after, .. } => TlsError::Expired {
            host,
            not_after: Some(date(not_after)),
        },
        CertificateError::NotValidYet => TlsError::NotValidYet {
            host,
            not_before: None,
        },
        CertificateError::NotValidYetContext { not_before, .. } => TlsError::NotValidYet {
            host,
            not_before: Some(date(not_before)),
        },
        CertificateError::NotValidForName => TlsError::NameMismatch {
            host,
            presented: Vec::new(),
        },
        CertificateError::NotValidForNameContext { presented, .. } => {
            TlsError::NameMismatch { host, presented }
        }
        CertificateError::BadSignature => TlsError::BadSignature { host },
        CertificateError::Revoked => TlsError::Revoked { host },
        other => TlsError::InvalidCertificate {
            host,
            reason: rustls::Error::InvalidCertificate(other).to_string(),
        },
    }
}

/// `HandshakeFailure` → "handshake failure".
fn alert_name(alert: AlertDescription) -> String {
    let name = format!("{alert:?}");
    let mut words = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

/// A certificate time as `YYYY-MM-DD` (UTC), from days since 1970 (the proleptic
/// Gregorian civil calendar of Hinnant's `civil_from_days`).
fn date(time: UnixTime) -> String {
    let days = (time.as_secs() / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn since(not_after: &Option<String>) -> String {
    not_after
        .as_ref()
        .map_or_else(String::new, |d| format!(" (valid until {d})"))
}

fn from(not_before: &Option<String>) -> String {
    not_before
        .as_ref()
        .map_or_else(String::new, |d| format!(" (valid from {d})"))
}

fn presented_names(presented: &[String]) -> String {
    if presented.is_empty() {
        String::new()
    } else {
        format!(" (it is for {})", presented.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(
            date(UnixTime::since_unix_epoch(core::time::Duration::ZERO)),
            "1970-01-01"
        );
        // 2024-02-29 00:00:00 UTC, a leap day.
        let leap = UnixTime::since_unix_epoch(core::time::Duration::from_secs(1_709_164_800));
        assert_eq!(date(leap), "2024-02-29");
        let new_year = UnixTime::since_unix_epoch(core::time::Duration::from_secs(1_735_689_599));
        assert_eq!(date(new_year), "2024-12-31");
    }

    #[test]
    fn every_certificate_problem_is_exit_5_and_names_the_host() {
        let cases = [
            CertificateError::UnknownIssuer,
            CertificateError::Expired,
            CertificateError::NotValidYet,
            CertificateError::NotValidForName,
            CertificateError::BadSignature,
            CertificateError::Revoked,
            CertificateError::BadEncoding,
        ];
        for case in cases {
            let error = TlsError::from_rustls("h.example", rustls::Error::InvalidCertificate(case));
            assert_eq!(error.exit_code(), 5, "{error}");
            assert!(error.to_string().contains("h.example"), "{error}");
        }
    }

    #[test]
    fn alerts_read_as_words() {
        let error = TlsError::from_rustls(
            "h",
            rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
        );
        assert_eq!(
            error.to_string(),
            "h refused the TLS connection (alert: protocol version)"
        );
        assert_eq!(error.exit_code(), 5);
    }

    #[test]
    fn truncation_is_a_network_failure() {
        let error = TlsError::Truncated { host: "h".into() };
        assert_eq!(error.exit_code(), 4);
    }
}
