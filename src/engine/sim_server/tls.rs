//! The TLS side of the simulated server host: a rustls server session (the buffered API;
//! the server side is test equipment, not the data path) between the server's TCP
//! connection and its HTTP answers.
//!
//! The server sends `close_notify` (RFC 8446 §6.1) after a complete response, and leaves it
//! out when it cuts a response short, as a truncation on the path would look.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use rustls::{AlertDescription, ServerConfig, ServerConnection};

/// The fatal alerts clients sent the server's sessions, in arrival order, shared by every
/// session of one server (a client that rejects the certificate says why, RFC 8446 §6.2).
pub type AlertLog = Arc<Mutex<Vec<AlertDescription>>>;

/// One server session.
pub(super) struct TlsServerSession {
    session: ServerConnection,
    /// Ciphertext bytes of the request stream already given to rustls.
    fed: usize,
    /// The decrypted request so far.
    plaintext: Vec<u8>,
    /// The session failed (the client rejected us, or sent garbage): answer nothing more.
    failed: bool,
    alerts: AlertLog,
}

impl TlsServerSession {
    pub(super) fn new(config: Arc<ServerConfig>, alerts: AlertLog) -> Option<TlsServerSession> {
        let mut session = ServerConnection::new(config).ok()?;
        // Whole 64 KiB pieces are sealed at once.
        session.set_buffer_limit(None);
        Some(TlsServerSession {
            session,
            fed: 0,
            plaintext: Vec::new(),
            failed: false,
            alerts,
        })
    }

    /// Takes the in-order ciphertext received so far (`stream[..in_order]`), decrypts what
    /// is new, and appends the handshake's answers to `out`. Returns the request plaintext.
    pub(super) fn on_ciphertext(&mut self, stream: &[u8], out: &mut Vec<u8>) -> &[u8] {
        if !self.failed && stream.len() > self.fed {
            let mut new = &stream[self.fed..];
            while !new.is_empty() {
                match self.session.read_tls(&mut new) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if let Err(error) = self.session.process_new_packets() {
                    if let rustls::Error::AlertReceived(alert) = error
                        && let Ok(mut alerts) = self.alerts.lock()
                    {
                        alerts.push(alert);
                    }
                    self.failed = true;
                    break;
                }
            }
            self.fed = stream.len() - new.len();
            let mut buffer = [0u8; 4096];
            while let Ok(n) = self.session.reader().read(&mut buffer) {
                if n == 0 {
                    break;
                }
                self.plaintext.extend_from_slice(&buffer[..n]);
            }
        }
        // Alerts too: a failed handshake tells the client why.
        self.flush(out);
        if self.failed { &[] } else { &self.plaintext }
    }

    /// Encrypts `plaintext` into records appended to `out`.
    pub(super) fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        let _ = self.session.writer().write_all(plaintext);
        self.flush(out);
    }

    /// Appends a close_notify alert to `out`.
    pub(super) fn close_notify(&mut self, out: &mut Vec<u8>) {
        self.session.send_close_notify();
        self.flush(out);
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        while self.session.wants_write() {
            if self.session.write_tls(out).is_err() {
                break;
            }
        }
    }
}
