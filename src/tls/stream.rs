//! One TLS client session over one TCP stream, sans I/O: ciphertext in at stream offsets,
//! plaintext out at plaintext offsets, ciphertext out for the TCP send buffer.
//!
//! Follows RFC 8446 (TLS 1.3) and RFC 5246 (TLS 1.2): rustls's unbuffered API runs the
//! handshake over our [`Staging`] buffer; once the request is encrypted, the session becomes
//! rustls's `KernelConnection` and [`RecordLayer`] opens the records itself, in place in
//! [`Staging`], handing out plaintext that is a slice of that buffer (one copy of each
//! plaintext byte in all: the caller's, to its file offset). RFC 8446 §6.1 for the end of
//! the stream (`close_notify`).
//!
//! ```text
//!  new ─► Session::Rustls ──(WriteTraffic, request queued, suite we implement,
//!                            no record half-read by rustls)──► Session::Records
//!              │ otherwise: rustls keeps the records (it copies each into a Vec)
//! ```
//!
//! # Calling order
//!
//! ```text
//! let mut tls = TlsStream::new(config, host, request_bytes, window)?;   // ClientHello queued
//! loop:
//!     for every TCP delivery (offset, bytes), in any order:   tls.on_stream(offset, bytes)?
//!     once per receive batch:    tls.process(&mut |plain_offset, plaintext| …)?
//!     while the TCP connection is open:
//!         let n = tcp.send(tls.pending_output());  tls.consume_output(n)
//!     advertise at most tls.window_end() − received_in_order as the receive window
//! on the peer's FIN:   tls.end_of_stream()? → plaintext length (or Truncated)
//! on an error from process (we rejected the server):
//!     send tls.pending_output() (the fatal alert rustls chose), then close with a FIN
//! ```
//!
//! The request is encrypted as soon as the handshake allows (after the server's Finished,
//! TLS 1.3 §4.4.4; after the server's ChangeCipherSpec + Finished in TLS 1.2). Plaintext is
//! handed out in order, each byte once, so the HTTP exchange above sees an ordinary
//! in-order stream.

use std::mem;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::client::UnbufferedClientConnection;
use rustls::unbuffered::{
    AppDataRecord, ConnectionState, EncodeError, EncodeTlsData, EncryptError, UnbufferedStatus,
    WriteTraffic,
};

use super::config::server_name;
use super::error::TlsError;
use super::records::{self, Content, RecordLayer};
use super::staging::Staging;

/// The ciphertext of one full record over its plaintext: header (5), tag (16), content
/// type (1), with room to spare (RFC 8446 §5.2 allows at most 256 bytes of expansion).
const RECORD_OVERHEAD: usize = 64;
/// Largest plaintext per record (RFC 8446 §5.1).
const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;

/// Who protects the records: rustls until the handshake is done, then us.
enum Session {
    /// rustls runs the handshake, and the records too when we cannot take over.
    Rustls(Box<UnbufferedClientConnection>),
    /// After the handshake: we open the records in place (`records.rs`).
    Records(Box<RecordLayer>),
    /// Only inside `take_over`, or after it failed (the session is then over).
    Switching,
}

/// A TLS client session fed by one TCP stream. See the module documentation.
pub struct TlsStream {
    host: String,
    session: Session,
    /// The config lets rustls hand out the traffic secrets (`enable_secret_extraction`).
    may_take_over: bool,
    staging: Staging,
    /// Ciphertext for the peer, from `sent` on not yet taken by TCP.
    outgoing: Vec<u8>,
    sent: usize,
    /// The request, until it is encrypted into `outgoing`.
    request: Option<Vec<u8>>,
    /// Plaintext bytes handed out so far: the next plaintext offset.
    plaintext_len: u64,
    /// The peer sent close_notify: the plaintext stream is complete.
    close_notify: bool,
    handshake_done: bool,
    /// The first error, returned again by every later call.
    error: Option<TlsError>,
}

impl TlsStream {
    /// A session with `host` (checked against the certificate, and sent as SNI when it is a
    /// name) that sends `request` once the handshake allows, and holds up to `window`
    /// ciphertext bytes past the point rustls has consumed.
    pub fn new(
        config: Arc<ClientConfig>,
        host: &str,
        request: Vec<u8>,
        window: usize,
    ) -> Result<TlsStream, TlsError> {
        let name = server_name(host)?;
        let may_take_over = config.enable_secret_extraction;
        let connection = UnbufferedClientConnection::new(config, name)
            .map_err(|e| TlsError::from_rustls(host, e))?;
        let mut stream = TlsStream {
            host: host.to_string(),
            session: Session::Rustls(Box::new(connection)),
            may_take_over,
            staging: Staging::new(window.max(2 * (MAX_RECORD_PLAINTEXT + RECORD_OVERHEAD))),
            outgoing: Vec::with_capacity(4096),
            sent: 0,
            request: Some(request),
            plaintext_len: 0,
            close_notify: false,
            handshake_done: false,
            error: None,
        };
        // Queues the ClientHello.
        stream.process(&mut |_, _| {})?;
        Ok(stream)
    }

    /// Takes ciphertext found at stream `offset`, in any order, overlapping or not.
    pub fn on_stream(&mut self, offset: u64, bytes: &[u8]) -> Result<(), TlsError> {
        self.check()?;
        if !self.staging.store(offset, bytes) {
            // The window we advertised is bounded by `window_end`; a peer that sends past
            // it broke TCP's rules (RFC 9293 §3.10.7.4), and our assembler would wait for
            // the dropped bytes forever.
            return Err(self.fail(TlsError::Handshake {
                host: self.host.clone(),
                reason: "the server sent beyond the advertised receive window".to_string(),
            }));
        }
        Ok(())
    }

    /// Runs the session over the in-order ciphertext: decrypts every complete record and
    /// hands its plaintext to `out(plaintext offset, bytes)`, queues handshake messages and
    /// the encrypted request. Returns the plaintext bytes handed out.
    pub fn process(&mut self, out: &mut dyn FnMut(u64, &[u8])) -> Result<u64, TlsError> {
        self.check()?;
        let before = self.plaintext_len;
        let result = loop {
            let step = match self.session {
                Session::Rustls(_) => self.run(out),
                Session::Records(_) => self.run_records(out).map(|()| false),
                Session::Switching => Ok(false),
            };
            match step {
                // The handshake is done and the request queued: our record layer opens
                // the rest, starting with what is already in the staging buffer.
                Ok(true) => {
                    if let Err(error) = self.take_over() {
                        break Err(error);
                    }
                }
                Ok(false) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        match result {
            Ok(()) => Ok(self.plaintext_len - before),
            Err(error) => {
                self.queue_alert();
                Err(self.fail(error))
            }
        }
    }

    /// Turns the rustls session into a `KernelConnection` and its traffic secrets, and
    /// opens the records from here on ourselves. `run` checked what rustls requires
    /// (handshake complete, nothing queued to send, secret extraction enabled) and what we
    /// require (a suite we implement, no record rustls has half read).
    fn take_over(&mut self) -> Result<(), TlsError> {
        let Session::Rustls(connection) = mem::replace(&mut self.session, Session::Switching)
        else {
            return Ok(());
        };
        let (secrets, kernel) = connection
            .dangerous_into_kernel_connection()
            .map_err(|e| TlsError::from_rustls(&self.host, e))?;
        let version = kernel.protocol_version();
        let layer = RecordLayer::new(version, secrets, Box::new(kernel))
            .map_err(|e| TlsError::from_record(&self.host, e))?;
        self.session = Session::Records(Box::new(layer));
        Ok(())
    }

    /// Our record layer: opens every complete record in the in-order ciphertext in place
    /// and hands out the plaintext as a slice of the staging buffer. On a bad record,
    /// queues the fatal alert (protected with our send key) in `pending_output`.
    fn run_records(&mut self, out: &mut dyn FnMut(u64, &[u8])) -> Result<(), TlsError> {
        let TlsStream {
            host,
            session,
            staging,
            outgoing,
            plaintext_len,
            close_notify,
            ..
        } = self;
        let Session::Records(layer) = session else {
            return Ok(());
        };
        let live = staging.live_mut();
        let mut used = 0;
        let result = loop {
            if *close_notify {
                // RFC 8446 §6.1: "Any data received after a closure alert has been
                // received MUST be ignored."
                used = live.len();
                break Ok(());
            }
            match layer.open(&mut live[used..]) {
                Ok(None) => break Ok(()),
                Ok(Some((len, content))) => {
                    match content {
                        Content::Data(plaintext) if !plaintext.is_empty() => {
                            out(*plaintext_len, plaintext);
                            *plaintext_len += plaintext.len() as u64;
                        }
                        Content::Data(_) | Content::Control => {}
                        Content::Closed => *close_notify = true,
                    }
                    used += len;
                }
                Err(error) => break Err(error),
            }
        };
        staging.consume(used);
        staging.reclaim();
        result.map_err(|error| {
            if let Some(alert) = error.alert() {
                // Best effort: the server learns why, if the alert can be sealed.
                let _ = layer.seal_alert(alert, outgoing);
            }
            TlsError::from_record(host, error)
        })
    }

    /// After rustls rejected the session on our side (the server's certificate, a
    /// malformed or unexpected message), moves the fatal alert it queued into
    /// `pending_output`, so the server learns why (RFC 8446 §6.2: "the implementation
    /// which detects the error SHOULD send an alert"; §6: bad_certificate, unknown_ca,
    /// certificate_expired, ...). rustls hands a queued record out as `EncodeTlsData`
    /// before it reads the input again (given the same input: its handshake deframer
    /// points into it), and returns the error again after that. An alert the server sent
    /// us gets no answer: rustls queues nothing then.
    fn queue_alert(&mut self) {
        let TlsStream {
            host,
            session,
            staging,
            outgoing,
            ..
        } = self;
        // Our record layer queued its alert itself (`run_records`).
        let Session::Rustls(connection) = session else {
            return;
        };
        // A fatal error queues exactly one record, the alert; the run loop already sent
        // everything queued before it. One call only: a second would deframe the same
        // failing input again, and rustls asserts that it never sends a second fatal alert
        // (the fuzz target tls_stream found that panic: fuzz/regressions/tls_stream/).
        let UnbufferedStatus { discard, state } =
            connection.process_tls_records(staging.live_mut());
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = state {
            let _ = encode_into(outgoing, 64, host, &mut encode);
        }
        staging.consume(discard);
    }

    /// rustls's session over the in-order ciphertext. Returns true when the handshake is
    /// done, the request queued, and our record layer can take over (see `take_over`).
    fn run(&mut self, out: &mut dyn FnMut(u64, &[u8])) -> Result<bool, TlsError> {
        let TlsStream {
            host,
            session,
            may_take_over,
            staging,
            outgoing,
            request,
            plaintext_len,
            close_notify,
            handshake_done,
            ..
        } = self;
        let Session::Rustls(connection) = session else {
            return Ok(false);
        };
        let tls_error = |e: rustls::Error| TlsError::from_rustls(host, e);
        loop {
            let UnbufferedStatus { mut discard, state } =
                connection.process_tls_records(staging.live_mut());
            let mut blocked = false;
            let mut writable = false;
            let state = match state {
                Ok(state) => state,
                Err(error) => {
                    // rustls's discard rule holds on errors too: `queue_alert` calls again.
                    staging.consume(discard);
                    return Err(tls_error(error));
                }
            };
            match state {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let AppDataRecord {
                            discard: more,
                            payload,
                        } = record.map_err(tls_error)?;
                        discard += more;
                        if !payload.is_empty() {
                            out(*plaintext_len, payload);
                            *plaintext_len += payload.len() as u64;
                        }
                    }
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    encode_into(outgoing, 1024, host, &mut encode)?;
                }
                ConnectionState::TransmitTlsData(mut transmit) => {
                    // The bytes are in `outgoing`; TCP takes them from there and delivers
                    // them reliably, so for rustls they are transmitted.
                    if let Some(mut write) = transmit.may_encrypt_app_data() {
                        encrypt_request(request, &mut write, outgoing, host)?;
                    }
                    transmit.done();
                }
                ConnectionState::WriteTraffic(mut write) => {
                    *handshake_done = true;
                    if request.is_some() {
                        encrypt_request(request, &mut write, outgoing, host)?;
                    } else {
                        blocked = true;
                        writable = true;
                    }
                }
                ConnectionState::PeerClosed => *close_notify = true,
                // BlockedHandshake: more ciphertext is needed. Closed: nothing more will come.
                _ => blocked = true,
            }
            staging.consume(discard);
            if blocked {
                // rustls reached WriteTraffic only after reading every complete record it
                // was given; one still in the buffer is one it holds half a handshake
                // message of (decrypted in place already): leave that session to rustls.
                let ready = writable
                    && *may_take_over
                    && RecordLayer::complete_record(staging.live_mut()).is_none()
                    && match (
                        connection.negotiated_cipher_suite(),
                        connection.protocol_version(),
                    ) {
                        (Some(suite), Some(version)) => records::supports(suite.suite(), version),
                        _ => false,
                    };
                if !ready {
                    staging.reclaim();
                }
                return Ok(ready);
            }
        }
    }

    /// Ciphertext waiting for room in the TCP send buffer.
    pub fn pending_output(&self) -> &[u8] {
        &self.outgoing[self.sent..]
    }

    /// TCP took `count` bytes of `pending_output`.
    pub fn consume_output(&mut self, count: usize) {
        self.sent = (self.sent + count).min(self.outgoing.len());
        if self.sent == self.outgoing.len() {
            self.outgoing.clear();
            self.sent = 0;
        }
    }

    /// The first TCP stream offset the staging buffer cannot take: the receive window must
    /// not reach past it.
    pub fn window_end(&self) -> u64 {
        self.staging.window_end()
    }

    /// The handshake is complete (the request may have gone out).
    pub fn is_established(&self) -> bool {
        self.handshake_done
    }

    /// Our record layer opens the records (the handshake is over and we took over from
    /// rustls); false while rustls does, or if it keeps doing so (see the module docs).
    pub fn opens_records_itself(&self) -> bool {
        matches!(self.session, Session::Records(_))
    }

    /// Plaintext bytes handed out so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// The TCP stream ended (the peer's FIN, after every byte before it was given to
    /// `on_stream` and `process`). The plaintext length if the peer said `close_notify`
    /// first; otherwise `Truncated`, which the caller ignores if the response was already
    /// complete (many servers close without it once the body is sent).
    pub fn end_of_stream(&mut self) -> Result<u64, TlsError> {
        self.check()?;
        if self.close_notify {
            Ok(self.plaintext_len)
        } else {
            Err(TlsError::Truncated {
                host: self.host.clone(),
            })
        }
    }

    /// The peer said `close_notify`.
    pub fn peer_closed(&self) -> bool {
        self.close_notify
    }

    fn check(&self) -> Result<(), TlsError> {
        self.error.clone().map_or(Ok(()), Err)
    }

    fn fail(&mut self, error: TlsError) -> TlsError {
        self.error.get_or_insert(error).clone()
    }
}

impl core::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // rustls's connection has no Debug: the session state is not shown.
        f.debug_struct("TlsStream")
            .field("host", &self.host)
            .field(
                "records",
                &match self.session {
                    Session::Rustls(_) => "rustls",
                    Session::Records(_) => "ours",
                    Session::Switching => "none",
                },
            )
            .field("staging", &self.staging)
            .field("pending_output", &self.pending_output().len())
            .field("request_sent", &self.request.is_none())
            .field("plaintext_len", &self.plaintext_len)
            .field("close_notify", &self.close_notify)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// Appends the handshake or alert record rustls has ready to `outgoing`.
fn encode_into(
    outgoing: &mut Vec<u8>,
    guess: usize,
    host: &str,
    encode: &mut EncodeTlsData<'_, rustls::client::ClientConnectionData>,
) -> Result<(), TlsError> {
    append(outgoing, guess, host, |buffer| {
        match encode.encode(buffer) {
            Ok(n) => Ok(Ok(n)),
            Err(EncodeError::InsufficientSize(e)) => Ok(Err(e.required_size)),
            Err(e) => Err(TlsError::Handshake {
                host: host.to_string(),
                reason: e.to_string(),
            }),
        }
    })
}

/// Encrypts the request (once) into `outgoing`.
fn encrypt_request(
    request: &mut Option<Vec<u8>>,
    write: &mut WriteTraffic<'_, rustls::client::ClientConnectionData>,
    outgoing: &mut Vec<u8>,
    host: &str,
) -> Result<(), TlsError> {
    let Some(plaintext) = request.take() else {
        return Ok(());
    };
    let records = plaintext.len() / MAX_RECORD_PLAINTEXT + 1;
    append(
        outgoing,
        plaintext.len() + records * RECORD_OVERHEAD,
        host,
        |buffer| match write.encrypt(&plaintext, buffer) {
            Ok(n) => Ok(Ok(n)),
            Err(EncryptError::InsufficientSize(e)) => Ok(Err(e.required_size)),
            Err(e) => Err(TlsError::Handshake {
                host: host.to_string(),
                reason: e.to_string(),
            }),
        },
    )
}

/// Appends what `write` puts into a buffer of `guess` bytes at the end of `outgoing`,
/// growing it when `write` says it needs more (`Ok(Err(required))`).
fn append(
    outgoing: &mut Vec<u8>,
    guess: usize,
    host: &str,
    mut write: impl FnMut(&mut [u8]) -> Result<Result<usize, usize>, TlsError>,
) -> Result<(), TlsError> {
    let at = outgoing.len();
    let mut room = guess;
    loop {
        outgoing.resize(at + room, 0);
        let result = write(&mut outgoing[at..]);
        match result {
            Ok(Ok(written)) => {
                outgoing.truncate(at + written);
                return Ok(());
            }
            Ok(Err(required)) if required > room => room = required,
            Ok(Err(_)) => {
                outgoing.truncate(at);
                return Err(TlsError::Handshake {
                    host: host.to_string(),
                    reason: "a TLS record did not fit the size rustls asked for".to_string(),
                });
            }
            Err(error) => {
                outgoing.truncate(at);
                return Err(error);
            }
        }
    }
}
