//! `xdpget serve` in the simulator, without root: the server's host (`serve::sim`) at the far
//! end of a simulated link, and at the near end a host of tiny test clients, each one TCP
//! connection of our own engine that sends its requests (pipelined) and keeps every byte of
//! the answer at its stream offset. Virtual time; every random choice seeded.
//!
//! Covered: many clients at once, byte for byte (clean and lossy links: the server's
//! NewReno sender recovering); HEAD; ranges (206, 416); 304; 404, 403, 405, 400; the
//! hostile paths over the wire; keep-alive and the idle timeout; a client that never
//! reads (zero window) dropped after the stall bound.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xdpget::driver::Driver;
use xdpget::driver::sim::SimDriver;
use xdpget::driver::sim::impair::Impairments;
use xdpget::driver::sim::link::{Link, LinkConfig, PathConfig};
use xdpget::engine::Endpoint;
use xdpget::engine::host::{Host, Session, SessionStatus};
use xdpget::http::parse_head;
use xdpget::serve::sim::SimFileServer;
use xdpget::serve::{AccessLogEntry, Root, ServeConfig, SessionLimits, server_tcp_config};
use xdpget::tcp::{self, Connection, Event, State};
use xdpget::time::Instant;
use xdpget::wire::EthernetAddress;

const MTU: usize = 1500;
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 8080);
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);

/// Pseudo-random bytes (xorshift), so that a misplaced block cannot match by chance.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The served directory: `big.bin` (1 MiB), `small.txt`, a subdirectory, and a secret
/// beside the directory that a traversal would reach.
struct Site {
    tmp: tempfile::TempDir,
    big: Vec<u8>,
}

impl Site {
    fn new() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let www = tmp.path().join("www");
        std::fs::create_dir_all(www.join("sub")).unwrap();
        let big = content(1 << 20, 7);
        std::fs::write(www.join("big.bin"), &big).unwrap();
        std::fs::write(www.join("small.txt"), b"small\n").unwrap();
        std::fs::write(www.join("sub/index.html"), b"<p>sub</p>").unwrap();
        std::fs::write(tmp.path().join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), www.join("link-out")).unwrap();
        Site { tmp, big }
    }

    fn dir(&self) -> std::path::PathBuf {
        self.tmp.path().join("www")
    }
}

/// How a test client behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// Takes everything (a large window).
    Normally,
    /// Sends its requests, then shuts its window and never reads.
    Never,
}

/// One client connection: its requests out, the answer's bytes kept at their offsets.
struct TestClient {
    requests: Vec<u8>,
    sent: usize,
    received: Vec<u8>,
    /// Responses expected (then it closes), or `None` to wait for the server's FIN.
    expect: Option<usize>,
    heads: usize,
    reading: Reading,
    peer_fin_at: Option<Instant>,
    reset_at: Option<Instant>,
    closed: bool,
}

impl TestClient {
    fn new(requests: &str, expect: Option<usize>, heads: usize, reading: Reading) -> Self {
        TestClient {
            requests: requests.as_bytes().to_vec(),
            sent: 0,
            received: Vec::new(),
            expect,
            heads,
            reading,
            peer_fin_at: None,
            reset_at: None,
            closed: false,
        }
    }
}

impl Session for TestClient {
    fn on_stream(&mut self, offset: u64, bytes: &[u8]) {
        let end = offset as usize + bytes.len();
        if self.received.len() < end {
            self.received.resize(end, 0);
        }
        self.received[offset as usize..end].copy_from_slice(bytes);
    }

    fn poll(&mut self, now: Instant, connection: &mut Connection) -> SessionStatus {
        while let Some(event) = connection.poll_event() {
            match event {
                Event::PeerFin { .. } => {
                    self.peer_fin_at.get_or_insert(now);
                }
                Event::Reset | Event::TimedOut => {
                    self.reset_at.get_or_insert(now);
                }
                _ => {}
            }
        }
        if connection.state() == State::Established || connection.state() == State::CloseWait {
            self.sent += connection.send(&self.requests[self.sent..]);
        }
        if self.reading == Reading::Never && self.sent == self.requests.len() {
            connection.set_receive_window(0);
        }
        let in_order = connection.received_in_order() as usize;
        let complete = self.expect.is_some_and(|n| {
            responses(
                &self.received[..in_order.min(self.received.len())],
                self.heads,
            )
            .len()
                >= n
        });
        if (complete || self.peer_fin_at.is_some()) && !self.closed {
            connection.close();
            self.closed = true;
        }
        let over = matches!(
            connection.state(),
            State::Closed | State::TimeWait | State::FinWait2
        ) && (self.closed || self.reset_at.is_some());
        if over || self.reset_at.is_some() {
            SessionStatus::Done
        } else {
            SessionStatus::Running
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

/// One parsed response: status, head text, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn field(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
    }
}

/// The complete responses at the start of `bytes`; the first `heads` answer HEAD requests
/// (no body whatever Content-Length says).
fn responses(mut bytes: &[u8], heads: usize) -> Vec<Answer> {
    let mut out = Vec::new();
    while let Ok(Some(head)) = parse_head(bytes) {
        let len = if out.len() < heads || head.status == 304 {
            0
        } else {
            head.content_length.unwrap_or(0) as usize
        };
        if bytes.len() < head.head_len + len {
            break;
        }
        out.push(Answer {
            status: head.status,
            head: String::from_utf8_lossy(&bytes[..head.head_len]).into_owned(),
            body: bytes[head.head_len..head.head_len + len].to_vec(),
        });
        bytes = &bytes[head.head_len + len..];
    }
    out
}

/// A network: the test clients' host over a 100 Mbit/s, 2 ms RTT link to the server.
struct Net {
    driver: SimDriver<SimFileServer>,
    host: Host<TestClient>,
    log: Arc<Mutex<Vec<AccessLogEntry>>>,
    next_port: u16,
}

fn net(site: &Site, impairments: Impairments, seed: u64, limits: SessionLimits) -> Net {
    net_with(site, impairments, seed, limits, 4 << 20)
}

fn net_with(
    site: &Site,
    impairments: Impairments,
    seed: u64,
    limits: SessionLimits,
    send_buffer: usize,
) -> Net {
    let path = PathConfig {
        rate_bps: Some(100_000_000),
        delay: Duration::from_millis(1),
        queue_limit_bytes: Some(256 << 10),
        queue_limit_packets: None,
        impairments,
    };
    let log: Arc<Mutex<Vec<AccessLogEntry>>> = Arc::default();
    let sink = Arc::clone(&log);
    let config = ServeConfig {
        root: Arc::new(Root::new(&site.dir()).unwrap()),
        limits,
        max_connections: 64,
        log: Some(Arc::new(move |entry: &AccessLogEntry| {
            sink.lock().unwrap().push(entry.clone())
        })),
    };
    let tcp = server_tcp_config(
        tcp::Config {
            mtu: MTU,
            isn_secret: [seed as u8; 16],
            msl: Duration::from_millis(100),
            // Our sender ignores SACK blocks; a receiver that sees SACK-permitted compresses
            // its duplicate ACKs (docs/design.md).
            sack: false,
            ..tcp::Config::default()
        },
        send_buffer,
    );
    let server = SimFileServer::new(SERVER_MAC, SERVER, tcp, config);
    let link = Link::new(LinkConfig::symmetric(seed, path)).unwrap();
    let driver = SimDriver::new(link, server)
        .with_max_frame_len(MTU + 14)
        .with_max_events(20_000_000);
    Net {
        driver,
        host: Host::new(CLIENT_MAC),
        log,
        next_port: 40_000,
    }
}

impl Net {
    fn connect(&mut self, client: TestClient) -> xdpget::engine::host::Handle {
        let endpoint = Endpoint {
            local_mac: CLIENT_MAC,
            next_hop_mac: SERVER_MAC,
            local: SocketAddr::new(CLIENT_IP, self.next_port),
            remote: SERVER,
            mtu: MTU,
        };
        self.next_port += 1;
        let config = tcp::Config {
            mtu: MTU,
            initial_receive_window: if client.reading == Reading::Never {
                4096
            } else {
                4 << 20
            },
            ..tcp::Config::default()
        };
        let now = self.driver.now();
        self.host.connect(now, &endpoint, config, client)
    }

    /// Runs until every client is done or `limit` of virtual time passed; returns the
    /// clients in the order they were connected, and the time it took.
    fn run(
        &mut self,
        handles: &[xdpget::engine::host::Handle],
        limit: Duration,
    ) -> (Vec<TestClient>, Duration) {
        let start = self.driver.now();
        let mut done: Vec<Option<TestClient>> = handles.iter().map(|_| None).collect();
        while done.iter().any(Option::is_none) {
            let now = self.driver.now();
            assert!(now - start < limit, "clients still running after {limit:?}");
            let step = self.host.poll(&mut self.driver, now).expect("simulation");
            while let Some((handle, client)) = self.host.take_finished() {
                let at = handles.iter().position(|h| *h == handle).unwrap();
                done[at] = Some(client);
            }
            if step.received == 0 && step.sent == 0 {
                let deadline = self.host.poll_timeout();
                self.driver.wait(deadline).expect("simulation");
            }
        }
        let elapsed = self.driver.now() - start;
        (done.into_iter().map(Option::unwrap).collect(), elapsed)
    }

    /// Lets the network run `duration` more (the server finishing its closes).
    fn settle(&mut self, duration: Duration) {
        let end = self.driver.now() + duration;
        while self.driver.now() < end {
            let now = self.driver.now();
            self.host.poll(&mut self.driver, now).expect("simulation");
            while self.host.take_finished().is_some() {}
            let deadline = self.host.poll_timeout().map_or(end, |t| t.min(end));
            self.driver.wait(Some(deadline)).expect("simulation");
        }
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 10.0.0.2:8080\r\n\r\n")
}

fn lossy() -> Impairments {
    Impairments {
        loss: 0.01,
        duplicate: 0.005,
        reorder: 0.02,
        reorder_delay: Duration::from_millis(3),
        corrupt: 0.002,
    }
}

#[test]
fn many_clients_at_once_get_every_byte() {
    let site = Site::new();
    for (impairments, seed) in [(Impairments::NONE, 1), (lossy(), 2)] {
        let mut net = net(&site, impairments, seed, SessionLimits::default());
        let handles: Vec<_> = (0..16)
            .map(|i| {
                // Half close after their answer, half leave it to `Connection: close`.
                let request = if i % 2 == 0 {
                    get("/big.bin")
                } else {
                    "GET /big.bin HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".to_string()
                };
                net.connect(TestClient::new(&request, Some(1), 0, Reading::Normally))
            })
            .collect();
        let (clients, elapsed) = net.run(&handles, Duration::from_secs(120));
        for (i, client) in clients.iter().enumerate() {
            let answers = responses(&client.received, 0);
            assert_eq!(answers.len(), 1, "client {i}");
            assert_eq!(answers[0].status, 200, "client {i}");
            assert!(answers[0].body == site.big, "client {i}: body differs");
            assert!(client.reset_at.is_none(), "client {i} was reset");
        }
        let stats = net.driver.peer().connection_stats();
        let retransmitted: u64 = stats.iter().map(|s| s.retransmits).sum();
        eprintln!(
            "16 clients x 1 MiB, loss {}: {elapsed:?} virtual, {retransmitted} retransmissions",
            impairments.loss
        );
        // 16 MiB over 100 Mbit/s takes at least 1.34 s: the clients shared the link.
        assert!(elapsed > Duration::from_millis(1_300), "{elapsed:?}");
        net.settle(Duration::from_secs(5));
        let server = net.driver.peer();
        assert_eq!(server.counters().accepted, 16);
        assert_eq!(server.live_connections(), 0, "every connection closed");
        assert_eq!(server.requests(), 16);
        let log = net.log.lock().unwrap();
        assert_eq!(log.len(), 16);
        assert!(
            log.iter()
                .all(|l| l.status == 200 && l.body_bytes == 1 << 20)
        );
        if impairments.loss > 0.0 {
            assert!(retransmitted > 0, "the lossy link lost nothing?");
        }
        // The bodies went out of the file's mapping (lent to TCP), not through a buffer.
        let lent: u64 = stats.iter().map(|s| s.lent_bytes_sent).sum();
        assert!(lent >= 16 << 20, "{lent} bytes from the mapping");
    }
}

#[test]
fn a_keep_alive_sequence_is_sent_from_the_mapping_and_lets_the_file_go() {
    let site = Site::new();
    let mut net = net(&site, lossy(), 4, SessionLimits::default());
    let requests = [
        "HEAD /big.bin HTTP/1.1\r\nHost: h\r\n\r\n".to_string(),
        "GET /big.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=100-70099\r\n\r\n".to_string(),
        get("/big.bin"),
        get("/small.txt"),
        "GET /big.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=-5000\r\n\r\n".to_string(),
        get("/big.bin"),
    ]
    .concat();
    let handle = net.connect(TestClient::new(&requests, Some(6), 1, Reading::Normally));
    let (clients, _) = net.run(&[handle], Duration::from_secs(60));
    let answers = responses(&clients[0].received, 1);
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![200, 206, 200, 200, 206, 200]);
    assert!(answers[0].body.is_empty());
    assert!(answers[1].body == site.big[100..70_100]);
    assert!(answers[2].body == site.big);
    assert_eq!(answers[3].body, b"small\n");
    assert!(answers[4].body == site.big[(1 << 20) - 5000..]);
    assert!(answers[5].body == site.big);
    let stats = net.driver.peer().connection_stats();
    let retransmitted: u64 = stats.iter().map(|s| s.retransmits).sum();
    let lent: u64 = stats.iter().map(|s| s.lent_bytes_sent).sum();
    assert!(retransmitted > 0, "the lossy link lost nothing?");
    let bodies = 70_000 + 2 * (1 << 20) + 6 + 5000;
    assert!(
        lent >= bodies,
        "{lent} of {bodies} body bytes from the mappings"
    );
    // Once the answers are acknowledged no mapping (and no lease) is left: a writer that
    // does not wait gets in at once.
    net.settle(Duration::from_secs(1));
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(site.dir().join("big.bin"))
        .expect("no lease left on the served file");
}

/// Another process opening a file for writing while its bytes are being sent from the
/// mapping: the server resets that connection (the body it promised may change) instead of
/// reading a file that may shrink under the mapping (SIGBUS), and lets the writer in.
#[test]
fn a_writer_on_a_file_being_sent_resets_the_connection_and_gets_in() {
    use std::os::unix::fs::OpenOptionsExt;
    let site = Site::new();
    let mut net = net(&site, Impairments::NONE, 5, SessionLimits::default());
    let handle = net.connect(TestClient::new(
        &get("/big.bin"),
        Some(1),
        0,
        Reading::Normally,
    ));
    // 1 MiB over 100 Mbit/s takes more than 80 ms: stop in the middle.
    net.settle(Duration::from_millis(30));
    let open_for_writing = || {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(site.dir().join("big.bin"))
    };
    // Held off by the lease (a blocking open would wait for the server to let go).
    let refused = open_for_writing().unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EWOULDBLOCK));
    let (clients, _) = net.run(&[handle], Duration::from_secs(5));
    let client = &clients[0];
    assert!(client.reset_at.is_some(), "the connection was reset");
    assert!(
        client.received.len() > 100_000 && client.received.len() < (1 << 20),
        "{} bytes arrived",
        client.received.len()
    );
    open_for_writing().expect("the lease is released with the connection");
    assert!(net.log.lock().unwrap()[0].status == 200);
}

#[test]
fn head_ranges_conditionals_and_errors_on_one_connection() {
    let site = Site::new();
    let mut net = net(&site, lossy(), 3, SessionLimits::default());
    let requests = [
        "HEAD /big.bin HTTP/1.1\r\nHost: h\r\n\r\n".to_string(),
        "GET /big.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=1000-1999\r\n\r\n".to_string(),
        "GET /big.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=-100\r\n\r\n".to_string(),
        "GET /big.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=2000000-\r\n\r\n".to_string(),
        "GET /big.bin HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n\r\n"
            .to_string(),
        get("/nothing"),
        get("/link-out"),
        "DELETE /big.bin HTTP/1.1\r\nHost: h\r\n\r\n".to_string(),
        get("/sub"),
        get("/sub/"),
        get("/small.txt"),
    ]
    .concat();
    let handle = net.connect(TestClient::new(&requests, Some(11), 1, Reading::Normally));
    let (clients, _) = net.run(&[handle], Duration::from_secs(60));
    let answers = responses(&clients[0].received, 1);
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        vec![200, 206, 206, 416, 304, 404, 403, 405, 301, 200, 200]
    );
    assert_eq!(answers[0].field("Content-Length"), Some("1048576"));
    assert!(answers[0].body.is_empty());
    assert_eq!(
        answers[1].field("Content-Range"),
        Some("bytes 1000-1999/1048576")
    );
    assert!(answers[1].body == site.big[1000..2000]);
    assert!(answers[2].body == site.big[(1 << 20) - 100..]);
    assert_eq!(answers[3].field("Content-Range"), Some("bytes */1048576"));
    assert!(answers[4].field("ETag").is_some());
    assert_eq!(answers[7].field("Allow"), Some("GET, HEAD"));
    assert_eq!(answers[8].field("Location"), Some("/sub/"));
    assert_eq!(answers[9].body, b"<p>sub</p>");
    assert_eq!(answers[10].body, b"small\n");
    let log = net.log.lock().unwrap();
    let lines: Vec<String> = log.iter().map(|l| l.request_line.clone()).collect();
    assert_eq!(lines[0], "HEAD /big.bin HTTP/1.1");
    assert_eq!(lines[7], "DELETE /big.bin HTTP/1.1");
}

#[test]
fn hostile_paths_over_the_wire() {
    let site = Site::new();
    let mut net = net(&site, Impairments::NONE, 4, SessionLimits::default());
    let table: &[(&str, u16)] = &[
        ("/../secret", 403),
        ("/sub/../../secret", 403),
        ("/%2e%2e/secret", 403),
        ("/%2e%2e%2fsecret", 403),
        ("/..%5csecret", 403),
        ("/..\\secret", 403),
        ("/link-out", 403),
        ("/small.txt%00.html", 400),
        ("/%zz", 400),
        ("secret", 400),
        ("/a%0d%0aX:%20y", 403),
        ("http://evil/../secret", 403),
        ("/sub/%2e%2e/%2e%2e/secret", 403),
        ("/./../secret", 403),
        ("/%252e%252e/secret", 404),
        ("/small.txt/..", 403),
    ];
    assert!(table.len() >= 15);
    let handles: Vec<_> = table
        .iter()
        .map(|(path, _)| net.connect(TestClient::new(&get(path), Some(1), 0, Reading::Normally)))
        .collect();
    let (clients, _) = net.run(&handles, Duration::from_secs(30));
    for ((path, status), client) in table.iter().zip(&clients) {
        let answers = responses(&client.received, 0);
        assert_eq!(answers.len(), 1, "{path}");
        assert_eq!(answers[0].status, *status, "{path}");
        assert!(
            !answers[0].body.windows(6).any(|w| w == b"secret"),
            "{path} leaked the secret"
        );
    }
}

#[test]
fn keep_alive_then_the_idle_timeout_closes() {
    let site = Site::new();
    let limits = SessionLimits {
        idle_timeout: Duration::from_secs(3),
        ..SessionLimits::default()
    };
    let mut net = net(&site, Impairments::NONE, 5, limits);
    // One request, then silence: the server answers, keeps the connection, and closes it
    // when the idle timeout runs out.
    let served = net.connect(TestClient::new(
        &get("/small.txt"),
        None,
        0,
        Reading::Normally,
    ));
    // A client that connects and never sends a request.
    let silent = net.connect(TestClient::new("", None, 0, Reading::Normally));
    // A head that never completes.
    let partial = net.connect(TestClient::new(
        "GET /small.txt HTTP/1.1\r\nHo",
        None,
        0,
        Reading::Normally,
    ));
    let start = net.driver.now();
    let (clients, _) = net.run(&[served, silent, partial], Duration::from_secs(30));
    for client in &clients {
        let fin = client.peer_fin_at.expect("the server closed") - start;
        assert!(
            fin >= Duration::from_secs(3) && fin < Duration::from_millis(3_100),
            "{fin:?}"
        );
        assert!(client.reset_at.is_none());
    }
    assert_eq!(responses(&clients[0].received, 0)[0].body, b"small\n");
    assert!(clients[1].received.is_empty());
    assert_eq!(responses(&clients[2].received, 0)[0].status, 408);
}

#[test]
fn a_client_that_never_reads_is_dropped_after_the_stall_bound() {
    let site = Site::new();
    let limits = SessionLimits {
        send_stall_timeout: Duration::from_secs(5),
        ..SessionLimits::default()
    };
    // A send buffer smaller than the file, so the response waits on the window.
    let mut net = net_with(&site, Impairments::NONE, 6, limits, 64 << 10);
    let stuck = net.connect(TestClient::new(&get("/big.bin"), None, 0, Reading::Never));
    let reader = net.connect(TestClient::new(
        &get("/big.bin"),
        Some(1),
        0,
        Reading::Normally,
    ));
    let start = net.driver.now();
    let (clients, _) = net.run(&[stuck, reader], Duration::from_secs(60));
    let reset = clients[0].reset_at.expect("the stuck client was reset") - start;
    // The window shut about one round trip in; the stall bound counts from the last ACK
    // that moved. TCP's persist probes went on meanwhile (the connection was not idle).
    assert!(
        reset >= Duration::from_secs(5) && reset < Duration::from_secs(7),
        "{reset:?}"
    );
    assert!(clients[0].received.len() < 100_000);
    let probes: u64 = net
        .driver
        .peer()
        .connection_stats()
        .iter()
        .map(|s| s.window_probes)
        .sum();
    assert!(probes > 0, "the persist timer probed the shut window");
    // The other client was served in full meanwhile.
    assert!(responses(&clients[1].received, 0)[0].body == site.big);
    net.settle(Duration::from_secs(3));
    assert_eq!(net.driver.peer().live_connections(), 0);
    let log = net.log.lock().unwrap();
    let stuck_line = log.iter().find(|l| l.body_bytes < 1 << 20).expect("logged");
    assert_eq!(stuck_line.status, 200);
}
