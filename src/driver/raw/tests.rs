//! Root-only tests of the raw driver against a real kernel and nginx, each in a testbed of
//! its own (scripts/testbed.sh under a unique name, torn down on drop).

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::testframe::{TCP_ACK, TCP_RST, TCP_SYN, TcpFrame, TcpSummary, summarize};
use super::{RawConfig, RawDriver};
use crate::driver::Driver;
use crate::net::nft::NftGuard;
use crate::net::ports::{PortSet, RESERVED_PORTS_PATH, ReservedPorts};
use crate::testkit::netns::InNetns;
use crate::testkit::testbed::{CLIENT_ADDR, CLIENT_DEV, SERVER_ADDR, SERVER_DEV, Testbed};
use crate::testkit::{root_or_skip, run, run_in, stdout_of};

const PORTS: RangeInclusive<u16> = 40000..=40099;

/// The MAC address of `dev`, read with `ip -j link` in `ns` (None: this thread's).
fn mac_of(ns: Option<&str>, dev: &str) -> [u8; 6] {
    let args = ["ip", "-j", "link", "show", dev];
    let output = match ns {
        Some(ns) => run_in(ns, &args),
        None => run(args[0], &args[1..]),
    };
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(output, "ip link show")).expect("ip -j output");
    let text = json[0]["address"].as_str().expect("a MAC address");
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(text.split(':')) {
        *byte = u8::from_str_radix(part, 16).expect("hex");
    }
    mac
}

struct Link {
    client_mac: [u8; 6],
    server_mac: [u8; 6],
}

impl Link {
    /// A segment from us (`port`) to the server's port `dst_port`.
    fn segment(
        &self,
        port: u16,
        dst_addr: Ipv4Addr,
        dst_port: u16,
        flags: u8,
        seq: u32,
    ) -> Vec<u8> {
        let mut frame = TcpFrame::new(CLIENT_ADDR, port, dst_addr, dst_port);
        frame.src_mac = self.client_mac;
        frame.dst_mac = self.server_mac;
        frame.flags = flags;
        frame.seq = seq;
        frame.window = 64240;
        // MSS 1460 (RFC 9293 §3.7.1).
        frame.tcp_options = vec![2, 4, 0x05, 0xb4];
        frame.bytes()
    }
}

fn send(driver: &mut RawDriver, frame: &[u8]) {
    let queued = driver
        .transmit(1, |buffer| {
            buffer[..frame.len()].copy_from_slice(frame);
            frame.len()
        })
        .expect("transmit");
    assert_eq!(queued, 1);
    driver.flush().expect("flush");
}

/// Receives for at most `limit`, returning every frame seen, until `done` says enough.
fn receive_until(
    driver: &mut RawDriver,
    limit: Duration,
    mut done: impl FnMut(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let deadline = driver.now() + limit;
    let mut frames = Vec::new();
    while driver.now() < deadline && !done(&frames) {
        let got = driver
            .receive(64, |frame| frames.push(frame.to_vec()))
            .expect("receive");
        if got == 0 {
            let step = driver.now() + Duration::from_millis(50);
            driver.wait(Some(step.min(deadline))).expect("wait");
        }
    }
    frames
}

fn is_syn_ack_for(s: &TcpSummary, port: u16, isn: u32) -> bool {
    s.src_addr == SERVER_ADDR
        && s.src_port == 80
        && s.dst_port == port
        && s.flags & (TCP_SYN | TCP_ACK) == (TCP_SYN | TCP_ACK)
        && s.ack == isn.wrapping_add(1)
}

fn syn_acks_for(frames: &[Vec<u8>], port: u16, isn: u32) -> usize {
    frames
        .iter()
        .filter_map(|f| summarize(f))
        .filter(|s| is_syn_ack_for(s, port, isn))
        .count()
}

/// Packets counted by the RST counter rule in this thread's namespace.
fn rsts_sent() -> u64 {
    let listing = stdout_of(
        run("nft", &["list", "table", "inet", "xg_test_rst"]),
        "nft list table",
    );
    let after = listing.split("counter packets ").nth(1).expect("a counter");
    after
        .split_whitespace()
        .next()
        .expect("a number")
        .parse()
        .expect("a count")
}

fn nft_script(script: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    assert!(child.wait().expect("nft").success());
}

/// Whether every frame is IPv4 TCP to our address and port range.
fn inside_filter(frame: &[u8]) -> bool {
    summarize(frame).is_some_and(|s| s.dst_addr == CLIENT_ADDR && PORTS.contains(&s.dst_port))
}

#[test]
fn syn_ack_from_nginx_filter_outgoing_and_nft_guard() {
    if !root_or_skip("syn_ack_from_nginx_filter_outgoing_and_nft_guard") {
        return;
    }
    let bed = Testbed::up("rawsyn");
    let client = bed.client_ns();
    let server_mac = mac_of(Some(&bed.server_ns()), SERVER_DEV);
    let in_client = InNetns::enter(&client).expect("enter the client namespace");
    let link = Link {
        client_mac: mac_of(None, CLIENT_DEV),
        server_mac,
    };
    // Counts RSTs the client's kernel sends (they pass the output hook).
    nft_script(
        "table inet xg_test_rst {\n chain out {\n  type filter hook output priority 0;\n  \
         tcp flags & rst != 0 counter\n }\n}\n",
    );
    let reserved_before =
        std::fs::read_to_string(RESERVED_PORTS_PATH).expect("read reserved ports");

    // GRO on before the driver opens: the driver must turn it off and back on.
    stdout_of(
        run("ethtool", &["-K", CLIENT_DEV, "gro", "on"]),
        "ethtool gro on",
    );
    let gro_on = || {
        stdout_of(run("ethtool", &["-k", CLIENT_DEV]), "ethtool -k")
            .contains("generic-receive-offload: on")
    };
    assert!(gro_on());

    let reservation = ReservedPorts::reserve(PORTS).expect("reserve ports");
    let reserved = PortSet::parse(&std::fs::read_to_string(RESERVED_PORTS_PATH).unwrap()).unwrap();
    assert!(PORTS.clone().all(|port| reserved.contains(port)));

    let mut driver = RawDriver::open(&RawConfig::new(CLIENT_DEV, CLIENT_ADDR, PORTS))
        .expect("open the raw driver");
    assert!(!gro_on(), "GRO still on while the driver runs");
    assert_eq!(driver.max_frame_len(), 1514);

    // Phase A, no nft table: the driver sees the SYN-ACK, and the kernel, which knows no
    // such connection, answers it with a RST (this is what the guard is for).
    let isn_a = 0x1000_0000;
    send(
        &mut driver,
        &link.segment(40001, SERVER_ADDR, 80, TCP_SYN, isn_a),
    );
    let frames = receive_until(&mut driver, Duration::from_secs(5), |f| {
        syn_acks_for(f, 40001, isn_a) > 0
    });
    assert_eq!(
        syn_acks_for(&frames, 40001, isn_a),
        1,
        "no SYN-ACK for port 40001"
    );
    let mut rst_wait = 0;
    while rsts_sent() == 0 && rst_wait < 50 {
        std::thread::sleep(Duration::from_millis(20));
        rst_wait += 1;
    }
    assert!(
        rsts_sent() > 0,
        "without the guard the kernel should have sent a RST"
    );
    let syn_ack = frames
        .iter()
        .filter_map(|f| summarize(f))
        .find(|s| is_syn_ack_for(s, 40001, isn_a))
        .unwrap();
    assert!(
        syn_ack.checksums_ok,
        "server tx checksum offload should be off"
    );

    // Phase B, with the guard: the server retransmits its SYN-ACK (RFC 6298), which only
    // happens if no RST reached it, and the kernel's RST counter stays where it was.
    let guard = NftGuard::install(CLIENT_ADDR, PORTS).expect("install the nft guard");
    // Linux 5.12+: the table is written over netlink and owned by this process's socket.
    assert!(
        guard.dies_with_process(),
        "the guard fell back to the nft binary"
    );
    let rsts_before = rsts_sent();
    let isn_b = 0x2000_0000;
    send(
        &mut driver,
        &link.segment(40002, SERVER_ADDR, 80, TCP_SYN, isn_b),
    );

    // Meanwhile, traffic outside the filter: the kernel's own HTTP connection (its source
    // port comes from the ephemeral range, from which our range is now reserved) and UDP.
    let curl = std::process::Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download} %{local_port}",
        ])
        .arg(format!("http://{SERVER_ADDR}/64K.bin"))
        .output();
    // UDP to a closed port: the server answers with ICMP port unreachable.
    let udp_script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for _ in range(3): s.sendto(b'x', ('{SERVER_ADDR}', 9))\n"
    );
    let udp = run("python3", &["-c", &udp_script]);

    let frames_b = receive_until(&mut driver, Duration::from_secs(8), |f| {
        syn_acks_for(f, 40002, isn_b) >= 2
    });
    assert!(
        syn_acks_for(&frames_b, 40002, isn_b) >= 2,
        "the server did not retransmit its SYN-ACK: did a RST reach it?"
    );
    assert_eq!(
        rsts_sent(),
        rsts_before,
        "the kernel sent a RST despite the guard"
    );
    assert!(guard.dropped_packets().expect("read the counter") >= 2);
    if let Ok(curl) = curl {
        let text = String::from_utf8_lossy(&curl.stdout).into_owned();
        let mut parts = text.split_whitespace();
        assert_eq!(parts.next(), Some("200"), "curl: {text}");
        assert_eq!(parts.next(), Some("65536"), "curl: {text}");
        let port: u16 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .expect("curl's local port");
        assert!(
            !PORTS.contains(&port),
            "the kernel used reserved port {port}"
        );
    } else {
        eprintln!("curl is not installed; the kernel-connection part is skipped");
    }
    assert!(udp.status.success(), "the UDP sender failed");

    // A frame to ourselves that this host sends out of the interface matches the filter,
    // so only the outgoing-frame rule keeps it away. (Frames a packet socket sends itself
    // never loop back to that same socket, so another socket sends it: a second driver.)
    let own = link.segment(40050, CLIENT_ADDR, 40051, TCP_ACK, 0x3000_0000);
    let mut other_config = RawConfig::new(CLIENT_DEV, CLIENT_ADDR, 50000..=50000);
    other_config.disable_gro = false;
    let mut other = RawDriver::open(&other_config).expect("open a second raw driver");
    send(&mut other, &own);
    drop(other);
    let isn_c = 0x4000_0000;
    send(
        &mut driver,
        &link.segment(40003, SERVER_ADDR, 80, TCP_SYN, isn_c),
    );
    let frames_c = receive_until(&mut driver, Duration::from_secs(5), |f| {
        syn_acks_for(f, 40003, isn_c) > 0
    });
    assert_eq!(syn_acks_for(&frames_c, 40003, isn_c), 1);

    let all: Vec<&Vec<u8>> = frames.iter().chain(&frames_b).chain(&frames_c).collect();
    for frame in &all {
        assert!(
            inside_filter(frame),
            "a frame outside the filter: {frame:02x?}"
        );
        assert_ne!(
            frame.as_slice(),
            own.as_slice(),
            "our own outgoing frame came back"
        );
        let s = summarize(frame).unwrap();
        assert_eq!(
            s.src_addr, SERVER_ADDR,
            "a frame not from the server: {s:?}"
        );
        assert_eq!(s.flags & TCP_RST, 0);
    }
    let stats = driver.stats();
    assert_eq!(stats.rx_frames, all.len() as u64);
    assert_eq!(stats.tx_frames, 3);
    assert_eq!(stats.tx_dropped, 0);

    // Teardown order of a real run: driver, nft table, reservation.
    drop(driver);
    assert!(gro_on(), "GRO was not turned back on");
    let table = guard.table().to_owned();
    drop(guard);
    let tables = stdout_of(run("nft", &["list", "tables"]), "nft list tables");
    assert!(
        !tables.contains(&table),
        "table {table} left behind: {tables}"
    );
    assert!(
        !tables.contains("xdpget_"),
        "an xdpget table left behind: {tables}"
    );
    drop(reservation);
    let reserved_after = std::fs::read_to_string(RESERVED_PORTS_PATH).unwrap();
    assert_eq!(reserved_after, reserved_before);
    drop(in_client);
    drop(bed);
}

#[test]
fn open_reports_a_missing_interface() {
    if !root_or_skip("open_reports_a_missing_interface") {
        return;
    }
    let netns = crate::testkit::netns::Netns::new("rawmiss");
    let _in = InNetns::enter(&netns.name).expect("enter");
    let error = RawDriver::open(&RawConfig::new("xg-nope0", CLIENT_ADDR, PORTS)).unwrap_err();
    assert_eq!(error.to_string(), "interface xg-nope0 does not exist");
}

#[test]
fn testbed_up_down_leaves_nothing_behind() {
    if !root_or_skip("testbed_up_down_leaves_nothing_behind") {
        return;
    }
    let mut bed = Testbed::up("bedup");
    let pid = |file: &str| -> u32 {
        std::fs::read_to_string(bed.dir.join(file))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    };
    let (nginx, helper) = (pid("nginx/nginx.pid"), pid("helper/helper.pid"));
    // Running, as opposed to gone or a zombie waiting for init to reap it. A process may
    // still be on its way out right after `down`; give it up to 5 s.
    let running = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit(')')
                    .next()
                    .map(str::trim)
                    .map(|rest| !rest.starts_with('Z'))
            })
            .unwrap_or(false)
    };
    let alive = |pid: u32| {
        (0..100).all(|_| {
            let still = running(pid);
            if still {
                std::thread::sleep(Duration::from_millis(50));
            }
            still
        })
    };
    assert!(running(nginx) && running(helper));
    let status = bed.status();
    assert!(
        status.contains("nginx: running") && status.contains("helper: running"),
        "{status}"
    );
    let sums = std::fs::read_to_string(bed.dir.join("www/SHA256SUMS")).expect("SHA256SUMS");
    assert!(sums.contains("64K.bin"));
    // Served content is what SHA256SUMS says, and not all zeros.
    let data = std::fs::read(bed.dir.join("www/64K.bin")).unwrap();
    assert_eq!(data.len(), 65536);
    assert!(data.iter().any(|&b| b != 0));
    let served = run_in(
        &bed.client_ns(),
        &["curl", "-sS", &format!("http://{SERVER_ADDR}/64K.bin")],
    );
    if served.status.success() {
        assert_eq!(served.stdout, data);
    }

    // Up again is a no-op for what runs.
    let again = std::process::Command::new("bash")
        .arg(format!("{}/scripts/testbed.sh", env!("CARGO_MANIFEST_DIR")))
        .arg("up")
        .env("XG_TESTBED_NAME", &bed.name)
        .env("XG_TESTBED_DIR", &bed.dir)
        .env("XG_TESTBED_SIZES", "64K")
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(pid("helper/helper.pid"), helper);
    let nginx_pids = stdout_of(
        run("ip", &["netns", "pids", &bed.server_ns()]),
        "ip netns pids",
    );

    let output = bed.down();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let namespaces = stdout_of(run("ip", &["netns", "list"]), "ip netns list");
    assert!(
        !namespaces.contains(&bed.name),
        "namespaces left: {namespaces}"
    );
    for pid in nginx_pids
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
    {
        assert!(
            !alive(pid),
            "process {pid} of the server namespace still runs"
        );
    }
    assert!(!alive(nginx) && !alive(helper));
    assert!(!bed.dir.exists(), "state dir left behind");
}

/// Payload of bulk frame `index`: 64 bytes derived from the index.
fn bulk_payload(index: u32) -> Vec<u8> {
    (0..64u32)
        .map(|i| (index.wrapping_mul(31).wrapping_add(i)) as u8)
        .collect()
}

#[test]
fn bulk_frames_cross_a_small_ring_in_order() {
    if !root_or_skip("bulk_frames_cross_a_small_ring_in_order") {
        return;
    }
    // A small ring (4 blocks of 8 KiB, about 40 of these frames each) that wraps many times.
    let mut config = RawConfig::new(CLIENT_DEV, CLIENT_ADDR, PORTS);
    config.block_size = 8192;
    config.block_count = 4;
    bulk_frames_arrive_in_order("rawbulk", &config);
}

/// The same 3000 frames through the ring-less socket the hand-over driver starts on
/// (recvmmsg batches; batches of 7 leave frames queued between calls).
#[test]
fn bulk_frames_cross_the_ring_less_socket_in_order() {
    if !root_or_skip("bulk_frames_cross_the_ring_less_socket_in_order") {
        return;
    }
    let config = RawConfig::without_ring(CLIENT_DEV, CLIENT_ADDR, PORTS);
    bulk_frames_arrive_in_order("rawrecv", &config);
}

/// Sends 3000 frames from the server namespace with at most 64 in flight and checks that
/// a receiver opened with `config` gets all of them, in order, intact.
fn bulk_frames_arrive_in_order(testbed: &str, config: &RawConfig) {
    const TOTAL: u32 = 3000;
    const IN_FLIGHT: u32 = 64;
    let bed = Testbed::up(testbed);
    let server_mac = mac_of(Some(&bed.server_ns()), SERVER_DEV);
    // The sender is a second raw driver whose socket lives in the server namespace.
    let mut sender = {
        let _in_server = InNetns::enter(&bed.server_ns()).expect("enter the server namespace");
        let mut config = RawConfig::new(SERVER_DEV, SERVER_ADDR, 50000..=50000);
        config.disable_gro = false;
        RawDriver::open(&config).expect("open the sending driver")
    };
    let _in_client = InNetns::enter(&bed.client_ns()).expect("enter the client namespace");
    let client_mac = mac_of(None, CLIENT_DEV);
    let guard = NftGuard::install(CLIENT_ADDR, PORTS).expect("install the nft guard");
    let mut receiver = RawDriver::open(config).expect("open the receiving driver");

    let frame = |index: u32| {
        let port = 40000 + (index % 100) as u16;
        let mut frame = TcpFrame::new(SERVER_ADDR, 80, CLIENT_ADDR, port);
        frame.src_mac = server_mac;
        frame.dst_mac = client_mac;
        frame.seq = index;
        frame.payload = bulk_payload(index);
        frame.bytes()
    };
    let mut sent = 0u32;
    let mut received: Vec<u32> = Vec::with_capacity(TOTAL as usize);
    let mut bad_frames = 0;
    let deadline = receiver.now() + Duration::from_secs(20);
    while received.len() < TOTAL as usize && receiver.now() < deadline {
        let in_flight = sent - received.len() as u32;
        if sent < TOTAL && in_flight < IN_FLIGHT {
            let room = (IN_FLIGHT - in_flight).min(TOTAL - sent) as usize;
            let queued = sender
                .transmit(room, |buffer| {
                    let bytes = frame(sent);
                    buffer[..bytes.len()].copy_from_slice(&bytes);
                    sent += 1;
                    bytes.len()
                })
                .expect("transmit");
            assert_eq!(queued, room);
            sender.flush().expect("flush");
        }
        // An odd batch size, so that blocks are also left half-read between calls.
        let got = receiver
            .receive(7, |bytes| match summarize(bytes) {
                Some(s) if s.checksums_ok && bytes.ends_with(&bulk_payload(s.seq)) => {
                    received.push(s.seq)
                }
                _ => bad_frames += 1,
            })
            .expect("receive");
        if got == 0 {
            let step = receiver.now() + Duration::from_millis(20);
            receiver.wait(Some(step)).expect("wait");
        }
    }
    assert_eq!(bad_frames, 0);
    assert_eq!(received.len(), TOTAL as usize, "frames lost");
    assert!(received.iter().copied().eq(0..TOTAL), "frames out of order");
    let stats = receiver.stats();
    assert_eq!((stats.rx_frames, stats.rx_dropped), (u64::from(TOTAL), 0));
    assert_eq!(sender.stats().tx_frames, u64::from(TOTAL));
    // The kernel saw the same frames after us, and dropped them in prerouting.
    assert!(guard.dropped_packets().expect("read the counter") >= u64::from(TOTAL));
}
