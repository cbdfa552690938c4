//! `tls` — HTTPS's TLS layer between our TCP engine and the HTTP exchange, sans I/O.
//!
//! ```text
//! tcp::Connection ──(stream offset, ciphertext)──► TlsStream::on_stream   (any order)
//!                                                  TlsStream::process     (once per batch)
//!                     decrypt in place in Staging ──(plaintext offset, bytes)──► http::Exchange
//! tcp::Connection::send ◄── TlsStream::pending_output (ClientHello, Finished, request)
//! ```
//!
//! - [`stream`]: one client session over one TCP stream ([`TlsStream`]); its calling order
//!   is written on the type.
//! - [`staging`]: the ciphertext buffer, fed out of order, where records are decrypted in
//!   place.
//! - [`records`]: record protection after the handshake: we open the records in place with
//!   the traffic secrets rustls hands over, so the plaintext is copied once.
//! - [`config`]: trust (system store, `--ca-certificate`, `--ca-directory`,
//!   `--no-check-certificate`) → one shared rustls `ClientConfig` ([`TlsSettings`]).
//! - [`error`]: every failure as one sentence and wget's exit code 5 (4 for a stream cut
//!   without `close_notify`).
//!
//! Like `tcp` and `http`, nothing here touches a socket or reads the clock (rustls reads the
//! clock itself, to check certificate validity). TLS 1.3 and 1.2 through rustls with the
//! aws-lc-rs provider; after the handshake, AES-GCM and ChaCha20-Poly1305 records are
//! opened by `records` with aws-lc-rs directly.

pub mod config;
pub mod error;
mod records;
mod staging;
pub mod stream;

pub use config::{TlsSettings, TrustOptions};
pub use error::TlsError;
pub use stream::TlsStream;

#[cfg(test)]
mod tests;
