//! One server connection's HTTP/1.1 life: request heads in, responses out, keep-alive,
//! timeouts, the access log. Byte-oriented and independent of TCP: whoever drives it (the
//! engine's host, or a test) owns the connection.
//!
//! RFC 9112 §9.3 (persistence), §9.3.2 (pipelining: responses in request order), §9.5–§9.6
//! (closing after `Connection: close`), RFC 9110 §15.5.9 (408 for a head that never
//! completes).
//!
//! Memory per connection is bounded: the request reader's window
//! ([`crate::http::server_request::MAX_REQUEST_HEAD`], about 12 KiB at most with its
//! slack), the current response's head (a few hundred bytes) and, for a directory listing,
//! its page (at most [`super::listing::MAX_ENTRIES`] names). A file body is never held: it
//! is offered as a range of a read-only mapping ([`Outgoing::Lent`], which the connection
//! refers to rather than copies), or, for a file that could not be mapped, read with `pread`
//! straight into the caller's buffer as it is sent.

use std::collections::VecDeque;
use std::fs::File;
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use super::log::AccessLogEntry;
use super::mapped::MappedFile;
use super::paths::Root;
use super::respond::{Body, Response, refusal, respond};
use crate::http::server_request::{RequestHead, RequestReader};
use crate::tcp::send_buffer::SharedBytes;
use crate::time::Instant;

/// The time bounds of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// How long a connection may wait for its next complete request head: counted from the
    /// connection's start or the end of the previous response, and *not* restarted by
    /// bytes of a head that does not complete (a client that trickles a head byte by byte
    /// is cut off all the same).
    pub idle_timeout: Duration,
    /// How long a response may wait with bytes left to send while the caller takes none
    /// (the peer's window stays shut: a client that never reads). TCP's persist timer keeps
    /// probing meanwhile; this is the bound after which the connection is aborted.
    pub send_stall_timeout: Duration,
    /// How long a graceful close may take before the connection is aborted instead (the
    /// FIN and the last bytes stuck behind a zero window).
    pub close_linger: Duration,
    /// Requests served on one connection before it closes.
    pub max_requests: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle_timeout: Duration::from_secs(30),
            send_stall_timeout: Duration::from_secs(60),
            close_linger: Duration::from_secs(10),
            max_requests: 1000,
        }
    }
}

/// How the connection must end, once the session says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Send what is queued, then FIN (TCP `close`).
    Graceful,
    /// Reset at once (TCP `abort`): a response cannot be completed, or a bound ran out.
    Abort,
}

/// The next bytes the session wants sent.
#[derive(Debug)]
pub enum Outgoing<'a> {
    /// Bytes in memory (a response head, an error page, a listing).
    Bytes(&'a [u8]),
    /// `len` bytes of `file` from `offset` on: read them into the transmit buffer (the
    /// `pread` fallback for a file that could not be mapped).
    File {
        file: &'a File,
        offset: u64,
        len: u64,
    },
    /// `len` bytes of the mapped `file` from `offset` on: lend them to the connection
    /// (`Connection::lend`), or copy them out of [`MappedFile::bytes`](crate::tcp::send_buffer::SharedBytes).
    Lent {
        file: &'a Arc<MappedFile>,
        offset: u64,
        len: u64,
    },
}

/// The most access-log lines kept for the caller to take.
const LOG_QUEUE: usize = 256;

/// The response being sent.
#[derive(Debug)]
struct Current {
    response: Response,
    head_sent: usize,
    body_sent: u64,
    log: AccessLogEntry,
}

/// One server connection's HTTP state.
///
/// Calling order (all calls take the caller's `now`):
/// 1. [`ServerSession::new`] when the connection is established.
/// 2. For each run of the peer's stream bytes: [`ServerSession::on_stream`] (never past
///    [`ServerSession::receive_window`]); on the peer's FIN: [`ServerSession::on_peer_fin`];
///    when the peer acknowledges new data: [`ServerSession::on_acked`]. Then
///    [`ServerSession::poll`], which starts the next answer.
/// 3. While there is room to send: [`ServerSession::fill`] (copies the next bytes into the
///    caller's buffer), or [`ServerSession::peek`] then [`ServerSession::advance`] for a
///    caller that copies itself.
/// 4. Drain [`ServerSession::poll_log`]; check [`ServerSession::poll_end`] and close or
///    abort the connection as it says (after sending what `fill` gave).
/// 5. Wake at [`ServerSession::poll_deadline`] and call [`ServerSession::on_timeout`].
#[derive(Debug)]
pub struct ServerSession {
    root: Arc<Root>,
    limits: SessionLimits,
    client: IpAddr,
    reader: RequestReader,
    current: Option<Current>,
    /// Start of the wait for the next request head.
    idle_since: Instant,
    /// The last time the caller took bytes of the current response.
    last_progress: Instant,
    end: Option<SessionEnd>,
    /// When a graceful end was decided.
    end_since: Instant,
    peer_fin: bool,
    /// A head the reader refused, with the status to answer (sticky: nothing after it).
    refused: Option<u16>,
    served: u32,
    log: VecDeque<AccessLogEntry>,
    /// Answers are made by the caller's opener thread (`defer_opens`), not inline.
    deferred: bool,
    /// A request head waiting to be taken by the caller ([`ServerSession::take_open_job`]).
    job: Option<RequestHead>,
    /// The request line of the request whose answer is being made elsewhere.
    awaiting: Option<String>,
}

/// Seconds since the epoch, for `Date` and the access log.
pub(crate) fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl ServerSession {
    /// A session for a connection from `client`, established at `now`.
    pub fn new(root: Arc<Root>, limits: SessionLimits, client: IpAddr, now: Instant) -> Self {
        ServerSession {
            root,
            limits,
            client,
            reader: RequestReader::new(),
            current: None,
            idle_since: now,
            last_progress: now,
            end: None,
            end_since: now,
            peer_fin: false,
            refused: None,
            served: 0,
            log: VecDeque::new(),
            deferred: false,
            job: None,
            awaiting: None,
        }
    }

    /// From now on the answers are made by the caller (off the busy-poll thread,
    /// `serve/opener.rs`): a complete request head waits in
    /// [`ServerSession::take_open_job`], and its answer comes back through
    /// [`ServerSession::on_response`]. Without this, `poll` makes each answer itself.
    pub fn defer_opens(&mut self) {
        self.deferred = true;
    }

    /// The request head to answer, for a session that defers its opens.
    pub fn take_open_job(&mut self) -> Option<RequestHead> {
        self.job.take()
    }

    /// The answer to the request [`ServerSession::take_open_job`] gave out; starts sending
    /// it. Dropped if the session has ended meanwhile.
    pub fn on_response(&mut self, now: Instant, response: Response) {
        let Some(line) = self.awaiting.take() else {
            return;
        };
        if self.end.is_none() {
            self.start(now, response, line);
        }
    }

    /// Starts the session's clocks at `now` (for a caller that made it without a time).
    pub fn start_clock(&mut self, now: Instant) {
        self.idle_since = now;
        self.last_progress = now;
        self.end_since = now;
    }

    /// The peer's stream bytes `[offset, offset + bytes.len())`, staged; they are read as
    /// requests by the next [`ServerSession::poll`] (the host hands bytes over without a
    /// time).
    pub fn on_stream(&mut self, offset: u64, bytes: &[u8]) {
        if self.end.is_some() || self.refused.is_some() {
            return;
        }
        if let Err(error) = self.reader.on_stream(offset, bytes) {
            self.refused = Some(error.status());
        }
    }

    /// Starts answering the next complete request, if the previous answer is done.
    pub fn poll(&mut self, now: Instant) {
        if self.current.is_none()
            && self.end.is_none()
            && let Some(status) = self.refused.take()
        {
            self.start(now, refusal(status, wall_clock()), "-".to_string());
            return;
        }
        self.next_request(now);
    }

    /// The peer acknowledged bytes we sent (or opened its window): the connection moves,
    /// so the stall and linger bounds start again.
    pub fn on_acked(&mut self, now: Instant) {
        self.last_progress = now;
        if self.end == Some(SessionEnd::Graceful) {
            self.end_since = now;
        }
    }

    /// The peer sent FIN: no more requests after those already received.
    pub fn on_peer_fin(&mut self, now: Instant) {
        self.peer_fin = true;
        self.poll(now);
    }

    /// The receive window to advertise, given how far the peer's stream has arrived in
    /// order (`Connection::received_in_order`): the request reader's room.
    pub fn receive_window(&self, received_in_order: u64) -> usize {
        let room = self.reader.window_end().saturating_sub(received_in_order);
        usize::try_from(room).unwrap_or(usize::MAX)
    }

    /// True while a response has bytes left to hand out.
    pub fn has_output(&self) -> bool {
        self.current.is_some()
    }

    /// The next bytes to send, or `None` when nothing is waiting.
    pub fn peek(&self) -> Option<Outgoing<'_>> {
        let current = self.current.as_ref()?;
        let head = &current.response.head[current.head_sent..];
        if !head.is_empty() {
            return Some(Outgoing::Bytes(head));
        }
        match &current.response.body {
            Body::Empty => None,
            Body::Bytes(bytes) => Some(Outgoing::Bytes(&bytes[current.body_sent as usize..])),
            Body::File { file, offset, len } => Some(Outgoing::File {
                file,
                offset: offset + current.body_sent,
                len: len - current.body_sent,
            }),
            Body::Mapped { file, offset, len } => Some(Outgoing::Lent {
                file,
                offset: offset + current.body_sent,
                len: len - current.body_sent,
            }),
        }
    }

    /// The caller sent the first `count` bytes of what [`ServerSession::peek`] offered.
    pub fn advance(&mut self, now: Instant, count: usize) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        if count > 0 {
            self.last_progress = now;
        }
        let head_left = current.response.head.len() - current.head_sent;
        let to_head = count.min(head_left);
        current.head_sent += to_head;
        let to_body = (count - to_head) as u64;
        current.body_sent = (current.body_sent + to_body).min(current.response.body.len());
        current.log.body_bytes = current.body_sent;
        if current.head_sent == current.response.head.len()
            && current.body_sent == current.response.body.len()
        {
            self.finish(now);
        }
    }

    /// Copies the next bytes to send into `out`, across responses (pipelining); returns how
    /// many. A file that shrank under us (or cannot be read) ends the connection with
    /// [`SessionEnd::Abort`]: its Content-Length was promised, and a short body must not
    /// pass for a whole one.
    pub fn fill(&mut self, now: Instant, out: &mut [u8]) -> usize {
        self.poll(now);
        let mut written = 0;
        while written < out.len() && self.end != Some(SessionEnd::Abort) {
            let copied = self.copy_next(now, &mut out[written..]);
            if copied == 0 {
                break;
            }
            written += copied;
        }
        written
    }

    /// Copies bytes of the next thing [`ServerSession::peek`] offers (one head, one body)
    /// into `out` and advances past them; returns how many. A file that cannot be read, or
    /// whose mapping's lease is being broken, aborts the response (see `fill`).
    pub fn copy_next(&mut self, now: Instant, out: &mut [u8]) -> usize {
        let copied = match self.peek() {
            None => return 0,
            Some(Outgoing::Bytes(bytes)) => {
                let n = bytes.len().min(out.len());
                out[..n].copy_from_slice(&bytes[..n]);
                n
            }
            Some(Outgoing::File { file, offset, len }) => {
                let n = usize::try_from(len).unwrap_or(usize::MAX).min(out.len());
                match file.read_at(&mut out[..n], offset) {
                    Ok(0) | Err(_) => {
                        self.abort_response();
                        return 0;
                    }
                    Ok(read) => read,
                }
            }
            Some(Outgoing::Lent { file, offset, len }) => {
                if !file.intact() {
                    self.abort_response();
                    return 0;
                }
                let n = usize::try_from(len).unwrap_or(usize::MAX).min(out.len());
                let start = offset as usize;
                out[..n].copy_from_slice(&file.bytes()[start..start + n]);
                n
            }
        };
        self.advance(now, copied);
        copied
    }

    /// Ends the connection at once with a reset (a mapped file's lease is being broken
    /// while its bytes are still being sent): the current response is logged as it got.
    pub fn abort(&mut self) {
        self.abort_response();
    }

    /// The time of the next timeout, if any.
    pub fn poll_deadline(&self) -> Option<Instant> {
        if self.awaiting.is_some() && self.end.is_none() {
            // The opener always answers; the timeouts start again with the answer.
            return None;
        }
        match self.end {
            Some(SessionEnd::Abort) => None,
            Some(SessionEnd::Graceful) => Some(self.end_since + self.limits.close_linger),
            None if self.current.is_some() => {
                Some(self.last_progress + self.limits.send_stall_timeout)
            }
            None => Some(self.idle_since + self.limits.idle_timeout),
        }
    }

    /// Runs the timeouts due at `now`.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.poll_deadline().is_none_or(|deadline| now < deadline) {
            return;
        }
        match self.end {
            Some(_) => self.end = Some(SessionEnd::Abort),
            None if self.current.is_some() => self.abort_response(),
            None if self.reader.has_pending_bytes() => {
                // RFC 9110 §15.5.9: the head did not complete in time.
                self.start(now, refusal(408, wall_clock()), "-".to_string());
            }
            None => self.end_gracefully(now),
        }
    }

    /// How the connection must end, once decided.
    pub fn poll_end(&self) -> Option<SessionEnd> {
        self.end
    }

    /// The next access-log line.
    pub fn poll_log(&mut self) -> Option<AccessLogEntry> {
        self.log.pop_front()
    }

    /// Requests answered (completely or not) on this connection.
    pub fn served(&self) -> u32 {
        self.served
    }

    /// Starts the next complete request's response, if idle; ends the session when the
    /// peer finished and nothing is left.
    fn next_request(&mut self, now: Instant) {
        if self.current.is_some()
            || self.awaiting.is_some()
            || self.end.is_some()
            || self.refused.is_some()
        {
            return;
        }
        match self.reader.next_head() {
            Ok(Some(mut head)) => {
                let line = format!(
                    "{} {} HTTP/1.{}",
                    head.method.as_str(),
                    head.target,
                    head.version_minor
                );
                if self.served + 1 >= self.limits.max_requests {
                    // The last answer on this connection must say `Connection: close`.
                    head.keep_alive = false;
                }
                if self.deferred {
                    self.job = Some(head);
                    self.awaiting = Some(line);
                } else {
                    let response = respond(&self.root, &head, wall_clock());
                    self.start(now, response, line);
                }
            }
            Ok(None) if self.peer_fin => self.end_gracefully(now),
            Ok(None) => {}
            Err(error) => self.start(now, refusal(error.status(), wall_clock()), "-".to_string()),
        }
    }

    fn start(&mut self, now: Instant, response: Response, request_line: String) {
        let log = AccessLogEntry {
            client: self.client,
            time: wall_clock(),
            request_line,
            status: response.status,
            body_bytes: 0,
        };
        self.last_progress = now;
        self.current = Some(Current {
            response,
            head_sent: 0,
            body_sent: 0,
            log,
        });
    }

    /// The current response is complete.
    fn finish(&mut self, now: Instant) {
        let Some(current) = self.current.take() else {
            return;
        };
        self.push_log(current.log);
        self.served += 1;
        if current.response.close || self.served >= self.limits.max_requests {
            self.end_gracefully(now);
        } else {
            self.idle_since = now;
            self.poll(now);
        }
    }

    fn abort_response(&mut self) {
        if let Some(current) = self.current.take() {
            self.push_log(current.log);
            self.served += 1;
        }
        self.end = Some(SessionEnd::Abort);
    }

    fn end_gracefully(&mut self, now: Instant) {
        if self.end.is_none() {
            self.end = Some(SessionEnd::Graceful);
            self.end_since = now;
        }
    }

    fn push_log(&mut self, entry: AccessLogEntry) {
        if self.log.len() < LOG_QUEUE {
            self.log.push_back(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    struct Fixture {
        tmp: tempfile::TempDir,
        session: ServerSession,
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 256) as u8).collect()
    }

    fn fixture(limits: SessionLimits) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("big.bin"), data(300_000)).unwrap();
        std::fs::write(tmp.path().join("small.txt"), b"small\n").unwrap();
        let root = Arc::new(Root::new(tmp.path()).unwrap());
        let session = ServerSession::new(root, limits, CLIENT, Instant::ZERO);
        Fixture { tmp, session }
    }

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    /// Everything the session has to send now, taken in `chunk`-byte buffers.
    fn drain(session: &mut ServerSession, now: Instant, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0; chunk];
        loop {
            let n = session.fill(now, &mut buf);
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// Splits concatenated responses (all with Content-Length, none to HEAD) into
    /// (status, body) pairs.
    fn responses(mut bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let head = crate::http::parse_head(bytes).unwrap().unwrap();
            let len = head.content_length.unwrap() as usize;
            let body = bytes[head.head_len..head.head_len + len].to_vec();
            out.push((head.status, body));
            bytes = &bytes[head.head_len + len..];
        }
        out
    }

    #[test]
    fn one_request_one_response_then_idle() {
        let mut f = fixture(SessionLimits::default());
        let request = b"GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(f.session.receive_window(0), 8192);
        f.session.on_stream(0, request);
        assert!(!f.session.has_output(), "read by the next poll");
        f.session.poll(at(1));
        assert!(f.session.has_output());
        let sent = drain(&mut f.session, at(2), 1460);
        assert_eq!(responses(&sent), vec![(200, data(300_000))]);
        assert!(!f.session.has_output());
        assert_eq!(f.session.poll_end(), None);
        let line = f.session.poll_log().unwrap();
        assert_eq!(line.request_line, "GET /big.bin HTTP/1.1");
        assert_eq!((line.status, line.body_bytes), (200, 300_000));
        assert_eq!(f.session.receive_window(request.len() as u64), 8192);
        assert_eq!(
            f.session.poll_deadline(),
            Some(at(2) + Duration::from_secs(30))
        );
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_across_fills() {
        let mut f = fixture(SessionLimits::default());
        let requests = b"GET /small.txt HTTP/1.1\r\nHost: h\r\n\r\n\
                         GET /nope HTTP/1.1\r\nHost: h\r\n\r\n\
                         GET /big.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=10-19\r\n\r\n\
                         HEAD /small.txt HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        // Out of order: the second half first.
        f.session.on_stream(40, &requests[40..]);
        f.session.poll(at(0));
        assert!(!f.session.has_output());
        f.session.on_stream(0, &requests[..40]);
        let sent = drain(&mut f.session, at(1), 100);
        // The HEAD's response is last, a head without its body.
        let needle = b"HTTP/1.1 200";
        let head_at = (0..sent.len() - needle.len())
            .rev()
            .find(|&i| sent[i..].starts_with(needle))
            .unwrap();
        let last = String::from_utf8(sent[head_at..].to_vec()).unwrap();
        assert!(last.contains("Content-Length: 6\r\n"));
        assert!(last.ends_with("\r\n\r\n"), "HEAD has no body");
        let first = responses(&sent[..head_at]);
        assert_eq!(first.len(), 3);
        assert_eq!(first[0], (200, b"small\n".to_vec()));
        assert_eq!(first[1].0, 404);
        assert_eq!(first[2], (206, data(300_000)[10..20].to_vec()));
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Graceful));
        let statuses: Vec<u16> = std::iter::from_fn(|| f.session.poll_log())
            .map(|l| l.status)
            .collect();
        assert_eq!(statuses, vec![200, 404, 206, 200]);
    }

    #[test]
    fn a_malformed_head_gets_400_and_a_close() {
        let mut f = fixture(SessionLimits::default());
        f.session
            .on_stream(0, b"GET / HTTP/1.1\r\nHost: a\r\nBad Field\r\n\r\n");
        let sent = drain(&mut f.session, at(0), 4096);
        assert_eq!(responses(&sent)[0].0, 400);
        assert!(String::from_utf8_lossy(&sent).contains("Connection: close\r\n"));
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Graceful));
        assert_eq!(f.session.poll_log().unwrap().request_line, "-");
    }

    #[test]
    fn the_peer_fin_ends_after_the_last_response() {
        let mut f = fixture(SessionLimits::default());
        f.session
            .on_stream(0, b"GET /small.txt HTTP/1.1\r\nHost: h\r\n\r\n");
        f.session.on_peer_fin(at(0));
        assert_eq!(f.session.poll_end(), None, "the response comes first");
        let sent = drain(&mut f.session, at(1), 4096);
        assert_eq!(responses(&sent), vec![(200, b"small\n".to_vec())]);
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Graceful));
        // A FIN on an idle connection ends it at once.
        let mut f = fixture(SessionLimits::default());
        f.session.on_peer_fin(at(0));
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Graceful));
    }

    #[test]
    fn an_idle_connection_times_out_and_a_trickled_head_gets_408() {
        let limits = SessionLimits {
            idle_timeout: Duration::from_secs(5),
            ..SessionLimits::default()
        };
        let mut f = fixture(limits);
        f.session.on_timeout(at(4_999));
        assert_eq!(f.session.poll_end(), None);
        f.session.on_timeout(at(5_000));
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Graceful));

        // Bytes of a head that never completes do not restart the clock.
        let mut f = fixture(limits);
        for (i, byte) in b"GET /small.txt HTT".iter().enumerate() {
            f.session.on_stream(i as u64, &[*byte]);
        }
        assert_eq!(f.session.poll_deadline(), Some(at(5_000)));
        f.session.on_timeout(at(5_000));
        let sent = drain(&mut f.session, at(5_000), 4096);
        assert_eq!(responses(&sent)[0].0, 408);
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Graceful));
        // The close itself is bounded: then the connection is reset.
        assert_eq!(f.session.poll_deadline(), Some(at(15_000)));
        f.session.on_timeout(at(15_000));
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Abort));
        assert_eq!(f.session.poll_deadline(), None);
    }

    #[test]
    fn a_client_that_never_reads_is_aborted_after_the_stall_bound() {
        let limits = SessionLimits {
            send_stall_timeout: Duration::from_secs(20),
            ..SessionLimits::default()
        };
        let mut f = fixture(limits);
        f.session
            .on_stream(0, b"GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\n");
        // The caller's send buffer takes 64 KiB, then the window shuts: no more fills.
        let mut buf = vec![0; 65_536];
        assert_eq!(f.session.fill(at(10), &mut buf), 65_536);
        assert_eq!(f.session.poll_deadline(), Some(at(20_010)));
        f.session.on_timeout(at(20_009));
        assert_eq!(f.session.poll_end(), None);
        f.session.on_timeout(at(20_010));
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Abort));
        let line = f.session.poll_log().unwrap();
        assert_eq!(line.status, 200);
        assert!(line.body_bytes > 0 && line.body_bytes < 300_000);
    }

    #[test]
    fn a_file_that_shrinks_mid_response_aborts_without_a_short_body() {
        let mut f = fixture(SessionLimits::default());
        // Someone has the file open for writing: it cannot be leased, so it is read with
        // pread, which sees the truncation as a short read.
        let writer = std::fs::OpenOptions::new()
            .write(true)
            .open(f.tmp.path().join("big.bin"))
            .unwrap();
        f.session
            .on_stream(0, b"GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\n");
        f.session.poll(at(0));
        let head_len = match f.session.peek() {
            Some(Outgoing::Bytes(head)) => head.len(),
            other => panic!("{other:?}"),
        };
        f.session.advance(at(0), head_len);
        assert!(matches!(f.session.peek(), Some(Outgoing::File { .. })));
        let mut buf = vec![0; 100_000];
        assert_eq!(f.session.fill(at(1), &mut buf), 100_000);
        writer.set_len(150_000).unwrap();
        let mut rest = Vec::new();
        loop {
            let n = f.session.fill(at(2), &mut buf);
            rest.extend_from_slice(&buf[..n]);
            if n == 0 {
                break;
            }
        }
        // What was still in the file went out; then the connection is reset.
        assert!(rest.len() < 300_000 - 100_000);
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Abort));
        assert!(!f.session.has_output());
    }

    #[test]
    fn a_writer_on_a_mapped_file_aborts_the_response_before_anything_changes() {
        let mut f = fixture(SessionLimits::default());
        f.session
            .on_stream(0, b"GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut buf = vec![0; 100_000];
        assert_eq!(f.session.fill(at(1), &mut buf), 100_000);
        assert!(matches!(f.session.peek(), Some(Outgoing::Lent { .. })));
        // A writer (non-blocking, so that this test does not wait out the lease) is held
        // off while the mapping is leased ...
        use std::os::unix::fs::OpenOptionsExt;
        let path = f.tmp.path().join("big.bin");
        let open_for_writing = || {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
        };
        assert_eq!(
            open_for_writing().unwrap_err().raw_os_error(),
            Some(libc::EWOULDBLOCK)
        );
        // ... and the session stops reading the mapping at once and resets.
        assert_eq!(f.session.fill(at(2), &mut buf), 0);
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Abort));
        let line = f.session.poll_log().unwrap();
        assert!(line.body_bytes < 300_000);
        // The mapping is gone with the response: the writer gets in.
        open_for_writing().unwrap();
    }

    #[test]
    fn a_deferring_session_hands_out_each_head_and_sends_its_answer_in_order() {
        let limits = SessionLimits {
            max_requests: 2,
            ..SessionLimits::default()
        };
        let mut f = fixture(limits);
        f.session.defer_opens();
        let requests = b"GET /small.txt HTTP/1.1\r\nHost: h\r\n\r\n\
                         GET /big.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\n\r\n";
        f.session.on_stream(0, requests);
        f.session.poll(at(0));
        // Nothing to send, no timeout, until the answer comes; one head at a time.
        assert!(!f.session.has_output());
        assert_eq!(f.session.poll_deadline(), None);
        let first = f.session.take_open_job().unwrap();
        assert_eq!(first.target, "/small.txt");
        assert!(first.keep_alive);
        assert!(f.session.take_open_job().is_none());
        f.session.poll(at(1));
        assert!(f.session.take_open_job().is_none(), "the second waits");
        let root = Arc::clone(&f.session.root);
        f.session.on_response(at(2), respond(&root, &first, 0));
        let sent = drain(&mut f.session, at(3), 4096);
        assert_eq!(responses(&sent), vec![(200, b"small\n".to_vec())]);
        // The last request allowed on the connection is handed out saying close.
        let second = f.session.take_open_job().unwrap();
        assert_eq!(second.target, "/big.bin");
        assert!(!second.keep_alive);
        f.session.on_response(at(4), respond(&root, &second, 0));
        let sent = drain(&mut f.session, at(5), 4096);
        assert_eq!(responses(&sent), vec![(206, data(300_000)[..10].to_vec())]);
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Graceful));
        // An answer for a session that ended meanwhile is dropped.
        f.session.on_response(at(6), respond(&root, &second, 0));
        assert!(!f.session.has_output());
    }

    #[test]
    fn the_request_limit_closes_with_its_last_response() {
        let limits = SessionLimits {
            max_requests: 2,
            ..SessionLimits::default()
        };
        let mut f = fixture(limits);
        let one = b"GET /small.txt HTTP/1.1\r\nHost: h\r\n\r\n";
        f.session.on_stream(0, one);
        let first = drain(&mut f.session, at(0), 4096);
        assert!(!String::from_utf8_lossy(&first).contains("Connection: close"));
        f.session.on_stream(one.len() as u64, one);
        let second = drain(&mut f.session, at(0), 4096);
        assert!(String::from_utf8_lossy(&second).contains("Connection: close\r\n"));
        assert_eq!(f.session.poll_end(), Some(SessionEnd::Graceful));
        assert_eq!(f.session.served(), 2);
    }

    #[test]
    fn peek_and_advance_let_the_caller_copy() {
        let mut f = fixture(SessionLimits::default());
        f.session
            .on_stream(0, b"GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\n");
        f.session.poll(at(0));
        let Some(Outgoing::Bytes(head)) = f.session.peek() else {
            panic!("the head comes first");
        };
        let head_len = head.len();
        f.session.advance(at(0), head_len);
        match f.session.peek() {
            Some(Outgoing::Lent { file, offset, len }) => {
                assert_eq!((offset, len), (0, 300_000));
                assert_eq!(file.bytes(), data(300_000));
            }
            other => panic!("{other:?}"),
        }
        f.session.advance(at(0), 1000);
        match f.session.peek() {
            Some(Outgoing::Lent { offset, len, .. }) => {
                assert_eq!((offset, len), (1000, 299_000))
            }
            other => panic!("{other:?}"),
        }
        f.session.advance(at(0), 299_000);
        assert!(f.session.peek().is_none());
        assert_eq!(f.session.poll_log().unwrap().body_bytes, 300_000);
    }
}
