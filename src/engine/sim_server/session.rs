//! One connection of the simulated HTTP server, as a [`Session`] of the host: the request
//! in, the answer of [`super::routes`] out (through TLS on the HTTPS port), then FIN.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::routes::{DRIP_INTERVAL, Response, respond};
use super::tls::TlsServerSession;
use crate::engine::host::{Session, SessionStatus};
use crate::tcp::{Connection, State};
use crate::time::Instant;

/// The longest request head the server reads.
const MAX_REQUEST: usize = 64 * 1024;

/// The server's side of one connection.
pub(super) struct HttpSession {
    /// The request stream as it arrived (any order); `request_new` when it grew.
    request: Vec<u8>,
    request_new: bool,
    response: Option<Response>,
    closed: bool,
    /// Requests answered so far, shared with every connection (`/flaky`).
    requests: Arc<AtomicU64>,
    /// The TLS session of an HTTPS connection, and its handshake bytes still to queue.
    tls: Option<TlsServerSession>,
    tls_out: Vec<u8>,
    tls_out_sent: usize,
    /// `https://ADDRESS:PORT` of this host, for `/tohttps`.
    secure_origin: Option<String>,
}

impl HttpSession {
    pub(super) fn new(
        requests: Arc<AtomicU64>,
        tls: Option<TlsServerSession>,
        secure_origin: Option<String>,
    ) -> HttpSession {
        HttpSession {
            request: Vec::new(),
            request_new: false,
            response: None,
            closed: false,
            requests,
            tls,
            tls_out: Vec::new(),
            tls_out_sent: 0,
            secure_origin,
        }
    }

    /// Answers once the request head is complete in order.
    fn read_request(&mut self, in_order: u64) {
        let in_order = usize::try_from(in_order)
            .unwrap_or(usize::MAX)
            .min(self.request.len());
        let origin = self.secure_origin.as_deref();
        let served = self.requests.load(Ordering::Relaxed);
        let response = match self.tls.as_mut() {
            Some(tls) => respond(
                tls.on_ciphertext(&self.request[..in_order], &mut self.tls_out),
                served,
                origin,
            ),
            None => respond(&self.request[..in_order], served, origin),
        };
        if let Some(response) = response {
            self.requests.fetch_add(1, Ordering::Relaxed);
            self.response = Some(response);
        }
    }

    /// Queues the TLS handshake's bytes; true when all are queued.
    fn pump_handshake(&mut self, connection: &mut Connection) -> bool {
        let pending = &self.tls_out[self.tls_out_sent..];
        self.tls_out_sent += connection.send(pending);
        if self.tls_out_sent < self.tls_out.len() {
            return false;
        }
        self.tls_out.clear();
        self.tls_out_sent = 0;
        true
    }

    /// Moves response bytes into the connection's send buffer as room allows.
    fn pump(&mut self, now: Instant, connection: &mut Connection) {
        if !self.pump_handshake(connection) {
            return;
        }
        let Some(response) = self.response.as_mut() else {
            return;
        };
        loop {
            if response.outbox_sent == response.outbox.len() {
                if response.next_drip().is_some_and(|at| at > now) {
                    return;
                }
                if response.dripping() {
                    response.drip_at = Some(now + DRIP_INTERVAL);
                }
                if !response.refill() {
                    let complete = !response.cut && !response.close_notify_queued;
                    if let Some(tls) = self.tls.as_mut().filter(|_| !self.closed && complete) {
                        // RFC 8446 §6.1: the response is complete.
                        response.outbox.clear();
                        response.outbox_sent = 0;
                        tls.close_notify(&mut response.outbox);
                        response.sealed = true;
                        response.close_notify_queued = true;
                        continue;
                    }
                    if !self.closed {
                        connection.close();
                        self.closed = true;
                    }
                    return;
                }
            }
            if let Some(tls) = self.tls.as_mut()
                && response.outbox_sent == 0
                && !response.sealed
            {
                let plaintext = core::mem::take(&mut response.outbox);
                tls.seal(&plaintext, &mut response.outbox);
                response.sealed = true;
            }
            let pending = &response.outbox[response.outbox_sent..];
            let taken = connection.send(pending);
            response.outbox_sent += taken;
            if taken < pending.len() {
                return;
            }
        }
    }
}

impl Session for HttpSession {
    fn on_stream(&mut self, offset: u64, bytes: &[u8]) {
        let Ok(offset) = usize::try_from(offset) else {
            return;
        };
        let end = offset + bytes.len();
        if end > MAX_REQUEST || self.response.is_some() {
            return;
        }
        if self.request.len() < end {
            self.request.resize(end, 0);
        }
        self.request[offset..end].copy_from_slice(bytes);
        self.request_new = true;
    }

    fn poll(&mut self, now: Instant, connection: &mut Connection) -> SessionStatus {
        while connection.poll_event().is_some() {}
        if core::mem::take(&mut self.request_new) && self.response.is_none() {
            self.read_request(connection.received_in_order());
        }
        self.pump(now, connection);
        if connection.state() == State::Closed {
            SessionStatus::Done
        } else {
            SessionStatus::Running
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.response.as_ref().and_then(Response::next_drip)
    }
}
