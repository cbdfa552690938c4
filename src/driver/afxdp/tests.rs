//! AF_XDP driver tests. The root-only ones build a client and a server namespace joined by
//! veth (`testkit::veth`), attach our program to the client side and exchange real frames.

use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use super::loader::{AttachMode, LoaderError, SteerConfig, SteerProgram};
use super::queue::UmemLayout;
use super::{AfXdpConfig, AfXdpDriver, AfXdpError, BindMode};
use crate::driver::Driver;
use crate::net::iface::Interface;
use crate::net::neigh::resolve_mac;
use crate::testkit::root_or_skip;
use crate::testkit::veth::{CLIENT_IF, CLIENT_IP, SERVER_IP, TestNet};

const STEERED_PORTS: std::ops::RangeInclusive<u16> = 40000..=40099;
const STEERED_PORT: u16 = 40007;
const KERNEL_PORT: u16 = 50000;
const UDP_ECHO_PORT: u16 = 9999;
const TX_PAYLOAD: &[u8] = b"xdpget-tx-test";

fn small_config() -> AfXdpConfig {
    AfXdpConfig {
        frame_count: 256,
        batch_size: 32,
        ..AfXdpConfig::default()
    }
}

/// (dst port, TCP flags) of an Ethernet/IPv4/TCP frame, parsed by hand for the test.
fn tcp_port_and_flags(frame: &[u8]) -> Option<(u16, u8)> {
    if frame.len() < 14 + 20 + 20 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 6 {
        return None;
    }
    let tcp = 14 + usize::from(frame[14] & 0x0f) * 4;
    let port = u16::from_be_bytes([*frame.get(tcp + 2)?, *frame.get(tcp + 3)?]);
    Some((port, *frame.get(tcp + 13)?))
}

/// RFC 1071 one's-complement sum, for the test's hand-made IPv4 header.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet + IPv4 + UDP (checksum 0: none, RFC 768) carrying TX_PAYLOAD. Returns its length.
fn write_udp_frame(buf: &mut [u8], src_mac: [u8; 6], dst_mac: [u8; 6]) -> usize {
    let udp_len = 8 + TX_PAYLOAD.len();
    let ip_len = 20 + udp_len;
    let frame_len = 14 + ip_len;
    let frame = &mut buf[..frame_len];
    frame[0..6].copy_from_slice(&dst_mac);
    frame[6..12].copy_from_slice(&src_mac);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut frame[14..34];
    ip.copy_from_slice(&[
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[12..16].copy_from_slice(&CLIENT_IP.octets());
    ip[16..20].copy_from_slice(&SERVER_IP.octets());
    let sum = checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut frame[34..42];
    udp[0..2].copy_from_slice(&40001u16.to_be_bytes());
    udp[2..4].copy_from_slice(&UDP_ECHO_PORT.to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    frame[42..].copy_from_slice(TX_PAYLOAD);
    frame_len
}

fn link_show(net: &TestNet) -> String {
    String::from_utf8_lossy(&net.client(&["ip", "link", "show", CLIENT_IF]).stdout).into_owned()
}

/// `ip link show` prints "prog/xdp id N" for an attached program (the namespace names
/// contain "xdp" too, so a bare "xdp" would not do).
fn has_xdp(shown: &str) -> bool {
    shown.contains("prog/xdp")
}

#[test]
fn config_validation_and_bdp_sizing() {
    assert!(AfXdpConfig::default().validate().is_ok());
    let odd = AfXdpConfig {
        frame_count: 1000,
        ..AfXdpConfig::default()
    };
    assert!(matches!(odd.validate(), Err(AfXdpError::Config(_))));
    let big_batch = AfXdpConfig {
        frame_count: 64,
        batch_size: 64,
        ..AfXdpConfig::default()
    };
    assert!(matches!(big_batch.validate(), Err(AfXdpError::Config(_))));
    // 10 Gbit/s at 10 ms: 12.5 MB in flight, 2 × BDP / 1448 ≈ 17266 rx frames → 65536 total
    let sized = AfXdpConfig::for_bandwidth_delay(10_000_000_000, Duration::from_millis(10));
    assert_eq!(sized.frame_count, 65536);
    assert!(sized.validate().is_ok());
    let tiny = AfXdpConfig::for_bandwidth_delay(1_000_000, Duration::from_millis(1));
    assert_eq!(tiny.frame_count, 512);
}

#[test]
fn the_rings_grow_with_the_connections_up_to_four() {
    let frames = |n| AfXdpConfig::for_connections(n).frame_count;
    assert_eq!(frames(0), 4096);
    assert_eq!(frames(1), AfXdpConfig::default().frame_count);
    assert_eq!(frames(2), 8192);
    // Three round up to the next power of two, as the rings must be.
    assert_eq!(frames(3), 16384);
    assert_eq!(frames(4), 16384);
    assert_eq!(frames(16), 16384);
    assert!(AfXdpConfig::for_connections(16).validate().is_ok());
}

#[test]
fn frame_size_fits_the_mtu_after_the_headroom() {
    assert_eq!(AfXdpConfig::frame_size_for_mtu(1500), 2048);
    assert_eq!(AfXdpConfig::frame_size_for_mtu(1778), 2048);
    assert_eq!(AfXdpConfig::frame_size_for_mtu(1779), 4096);
    assert_eq!(AfXdpConfig::frame_size_for_mtu(9000), 16384);
    assert_eq!(AfXdpConfig::frame_size_for_mtu(u32::MAX), 65536);
}

#[test]
fn steers_range_into_xsk_passes_the_rest_and_transmits() {
    if !root_or_skip("steers_range_into_xsk_passes_the_rest_and_transmits") {
        return;
    }
    let mut net = TestNet::new("xsk");
    let listener = net.in_server(|| UdpSocket::bind((SERVER_IP, UDP_ECHO_PORT)).unwrap());
    listener
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();

    let (interface, driver) = net.in_client(|| {
        let interface = Interface::by_name(CLIENT_IF).unwrap();
        let steer = SteerConfig {
            address: interface.ipv4.unwrap().into(),
            ports: STEERED_PORTS,
        };
        let driver = AfXdpDriver::open(&interface, &steer, &small_config()).unwrap();
        (interface, driver)
    });
    let mut driver = driver;
    assert!(has_xdp(&link_show(&net)), "no XDP program on {CLIENT_IF}");
    // veth has native XDP but no zero-copy AF_XDP
    assert_eq!(driver.attach_mode(), AttachMode::Native);
    assert_eq!(driver.bind_modes(), vec![(0, BindMode::Copy)]);
    assert_eq!(driver.max_frame_len(), 1514);

    // A second program must be refused, not swapped in.
    let attached = net.in_client(|| Interface::by_name(CLIENT_IF).unwrap());
    let refused = SteerProgram::attach(
        &attached,
        &SteerConfig {
            address: CLIENT_IP.into(),
            ports: STEERED_PORTS,
        },
    );
    assert!(matches!(refused, Err(LoaderError::AlreadyAttached { .. })));
    // ... also when our snapshot of the interface is stale (the kernel says EBUSY).
    let stale = net.in_client(|| {
        SteerProgram::attach(
            &interface,
            &SteerConfig {
                address: CLIENT_IP.into(),
                ports: STEERED_PORTS,
            },
        )
    });
    assert!(
        matches!(stale, Err(LoaderError::AlreadyAttached { .. })),
        "{stale:?}"
    );

    // The server opens a TCP connection to a steered port: its SYN must land in the XSK.
    let target = format!("exec 3<>/dev/tcp/{CLIENT_IP}/{STEERED_PORT}");
    net.spawn_server(&["timeout", "3", "bash", "-c", &target]);
    let deadline = driver.now() + Duration::from_secs(4);
    let mut syn_seen = false;
    while !syn_seen && driver.now() < deadline {
        let frames = driver
            .receive(16, |frame| {
                if let Some((port, flags)) = tcp_port_and_flags(frame) {
                    syn_seen |= port == STEERED_PORT && flags & 0x02 != 0;
                }
            })
            .unwrap();
        if frames == 0 {
            driver.wait(Some(deadline)).unwrap();
        }
    }
    assert!(
        syn_seen,
        "no SYN to port {STEERED_PORT} arrived in the AF_XDP socket"
    );
    assert!(driver.stats().rx_frames >= 1);

    // A port outside the range still reaches the kernel, which refuses it with RST.
    let outside = format!("exec 3<>/dev/tcp/{CLIENT_IP}/{KERNEL_PORT}");
    let refused = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.server_ns,
            "timeout",
            "3",
            "bash",
            "-c",
            &outside,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("Connection refused"),
        "kernel did not answer: {stderr}"
    );

    let counters = driver.steer_counters().unwrap();
    assert!(counters.steered >= 1, "{counters:?}");
    assert!(counters.passed >= 1, "{counters:?}");
    assert!(
        counters.seen >= counters.steered + counters.passed,
        "{counters:?}"
    );
    assert_eq!(counters.no_socket, 0, "{counters:?}");

    // Transmit a hand-made UDP datagram; the server's kernel must deliver it.
    let server_mac = net
        .in_client(|| {
            resolve_mac(
                interface.index,
                CLIENT_IF,
                SERVER_IP.into(),
                Duration::from_secs(3),
            )
        })
        .unwrap();
    let mut written = false;
    let queued = driver
        .transmit(4, |buf| {
            if written {
                return 0; // nothing more: ends the batch
            }
            written = true;
            write_udp_frame(buf, interface.mac, server_mac)
        })
        .unwrap();
    assert_eq!(queued, 1);
    driver.flush().unwrap();
    let mut received = [0u8; 64];
    let (len, from) = listener.recv_from(&mut received).unwrap();
    assert_eq!(&received[..len], TX_PAYLOAD);
    assert_eq!(from.ip(), std::net::IpAddr::V4(CLIENT_IP));
    assert_eq!(driver.stats().tx_frames, queued as u64);

    drop(driver);
    assert!(
        !has_xdp(&link_show(&net)),
        "XDP program left on {CLIENT_IF}"
    );
    let (client_ns, server_ns) = (net.client_ns.clone(), net.server_ns.clone());
    drop(net);
    let namespaces = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(!namespaces.contains(&client_ns) && !namespaces.contains(&server_ns));
}

#[test]
fn missing_queue_is_a_clear_error() {
    if !root_or_skip("missing_queue_is_a_clear_error") {
        return;
    }
    let net = TestNet::new("xq");
    let error = net.in_client(|| {
        let interface = Interface::by_name(CLIENT_IF).unwrap();
        let config = AfXdpConfig {
            queue: Some(5),
            ..small_config()
        };
        let steer = SteerConfig {
            address: Ipv4Addr::new(10, 77, 0, 2).into(),
            ports: STEERED_PORTS,
        };
        AfXdpDriver::open(&interface, &steer, &config).unwrap_err()
    });
    assert_eq!(
        error.to_string(),
        "interface xgc0 has 1 rx queue(s); there is no queue 5"
    );
    // nothing was attached on the way to the error
    let shown = link_show(&net);
    assert!(!has_xdp(&shown), "{shown}");
}

#[test]
fn falls_back_to_generic_mode_when_native_attach_fails() {
    if !root_or_skip("falls_back_to_generic_mode_when_native_attach_fails") {
        return;
    }
    let net = TestNet::new("xgen");
    // veth refuses native XDP while its peer's MTU exceeds what one page can hold.
    net.server(&[
        "ip",
        "link",
        "set",
        crate::testkit::veth::SERVER_IF,
        "mtu",
        "9000",
    ]);
    let driver = net.in_client(|| {
        let interface = Interface::by_name(CLIENT_IF).unwrap();
        let steer = SteerConfig {
            address: interface.ipv4.unwrap().into(),
            ports: STEERED_PORTS,
        };
        AfXdpDriver::open(&interface, &steer, &small_config()).unwrap()
    });
    assert_eq!(driver.attach_mode(), AttachMode::Generic);
    assert!(driver.notes().iter().any(|note| note.contains("generic")));
    let shown = link_show(&net);
    assert!(has_xdp(&shown) && shown.contains("xdpgeneric"), "{shown}");
    drop(driver);
    let shown = link_show(&net);
    assert!(!has_xdp(&shown), "{shown}");
}

#[test]
fn umem_layout_shares_the_receive_half_out_over_the_queues() {
    let one = UmemLayout::new(4096, 1);
    assert_eq!((one.tx_frames, one.rx_frames_per_queue), (2048, 2048));
    assert_eq!(one.total_frames(), 4096); // one queue: the layout of one UMEM per socket
    let four = UmemLayout::new(4096, 4);
    assert_eq!((four.tx_frames, four.rx_frames_per_queue), (2048, 512));
    assert_eq!(four.total_frames(), 4096);
    // three queues: a power-of-two share (ring sizes must be), never below the floor
    assert_eq!(UmemLayout::new(4096, 3).rx_frames_per_queue, 512);
    assert_eq!(UmemLayout::new(4096, 64).rx_frames_per_queue, 512);
    assert_eq!(UmemLayout::new(4096, 64).total_frames(), 2048 + 64 * 512);
    // a small UMEM keeps its half for one queue, and no more for many
    assert_eq!(UmemLayout::new(256, 1).rx_frames_per_queue, 128);
    assert_eq!(UmemLayout::new(256, 2).rx_frames_per_queue, 128);
}

#[test]
fn one_socket_per_rx_queue_receives_every_flow() {
    if !root_or_skip("one_socket_per_rx_queue_receives_every_flow") {
        return;
    }
    const QUEUES: u32 = 4;
    let mut net = TestNet::with_queues("xmq", QUEUES);
    let mut driver = net.in_client(|| {
        let interface = Interface::by_name(CLIENT_IF).unwrap();
        let steer = SteerConfig {
            address: interface.ipv4.unwrap().into(),
            ports: STEERED_PORTS,
        };
        AfXdpDriver::open(&interface, &steer, &small_config()).unwrap()
    });
    let all_copy: Vec<(u32, BindMode)> = (0..QUEUES).map(|q| (q, BindMode::Copy)).collect();
    assert_eq!(driver.bind_modes(), all_copy);

    // Sixteen flows: the sender's queue choice (a random hash per socket) spreads them
    // over the veth queues; sixteen all on one of four queues is a 4^-15 chance.
    let ports: Vec<u16> = (40010..40026).collect();
    let script = ports
        .iter()
        .map(|port| format!("(exec 3<>/dev/tcp/{CLIENT_IP}/{port}) 2>/dev/null &"))
        .collect::<Vec<_>>()
        .join(" ")
        + " wait";
    net.spawn_server(&["timeout", "3", "bash", "-c", &script]);
    let mut seen = Vec::new();
    let mut frames = 0u64;
    let deadline = driver.now() + Duration::from_secs(4);
    while seen.len() < ports.len() && driver.now() < deadline {
        let received = driver
            .receive(16, |frame| {
                if let Some((port, flags)) = tcp_port_and_flags(frame)
                    && flags & 0x02 != 0
                    && !seen.contains(&port)
                {
                    seen.push(port);
                }
            })
            .unwrap();
        frames += received as u64;
        if received == 0 {
            driver.wait(Some(deadline)).unwrap();
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, ports);
    let counters = driver.steer_counters().unwrap();
    assert_eq!(counters.no_socket, 0, "{counters:?}");
    // Every frame came out of exactly one socket, and more than one socket had some.
    let by_queue = driver.frames_by_queue();
    assert_eq!(
        by_queue.iter().map(|(_, n)| n).sum::<u64>(),
        frames,
        "{by_queue:?}"
    );
    let busy = by_queue.iter().filter(|(_, n)| *n > 0).count();
    assert!(busy > 1, "all frames on one queue: {by_queue:?}");
}

#[test]
fn one_flush_sends_a_batch_larger_than_the_kernels_copy_budget() {
    if !root_or_skip("one_flush_sends_a_batch_larger_than_the_kernels_copy_budget") {
        return;
    }
    const FRAMES: usize = 100; // copy mode sends at most 32 per sendto
    let net = TestNet::new("xtx");
    let listener = net.in_server(|| UdpSocket::bind((SERVER_IP, UDP_ECHO_PORT)).unwrap());
    listener
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let config = AfXdpConfig {
        frame_count: 512,
        batch_size: 128,
        ..AfXdpConfig::default()
    };
    let (interface, mut driver, server_mac) = net.in_client(|| {
        let interface = Interface::by_name(CLIENT_IF).unwrap();
        let steer = SteerConfig {
            address: interface.ipv4.unwrap().into(),
            ports: STEERED_PORTS,
        };
        let driver = AfXdpDriver::open(&interface, &steer, &config).unwrap();
        let mac = resolve_mac(
            interface.index,
            CLIENT_IF,
            SERVER_IP.into(),
            Duration::from_secs(3),
        );
        (interface, driver, mac.unwrap())
    });
    let mut written = 0;
    let queued = driver
        .transmit(FRAMES, |buf| {
            if written == FRAMES {
                return 0;
            }
            written += 1;
            write_udp_frame(buf, interface.mac, server_mac)
        })
        .unwrap();
    assert_eq!(queued, FRAMES);
    driver.flush().unwrap();
    let mut buf = [0u8; 64];
    for received in 0..FRAMES {
        let result = listener.recv_from(&mut buf);
        assert!(
            result.is_ok(),
            "only {received} of {FRAMES} datagrams arrived"
        );
    }
    assert_eq!(driver.stats().tx_frames, FRAMES as u64);
}

#[test]
fn background_teardown_leaves_nothing_and_the_next_open_waits_for_it() {
    if !root_or_skip("background_teardown_leaves_nothing_and_the_next_open_waits_for_it") {
        return;
    }
    let net = TestNet::with_queues("xbg", 2);
    let open = |background_teardown: bool| {
        net.in_client(|| {
            let interface = Interface::by_name(CLIENT_IF).unwrap();
            let steer = SteerConfig {
                address: interface.ipv4.unwrap().into(),
                ports: STEERED_PORTS,
            };
            let config = AfXdpConfig {
                background_teardown,
                ..small_config()
            };
            AfXdpDriver::open(&interface, &steer, &config)
        })
    };
    let mut waited = 0;
    for round in 0..3 {
        // Dropped at once: a child holds the program and both sockets for a while. (In
        // the namespace it was opened in, as the engine thread does: the child's ledger
        // note is filed under the dropping thread's namespace.)
        let first = open(true).unwrap_or_else(|e| panic!("round {round}: {e}"));
        net.in_client(|| drop(first));
        // The next open finds them still there, waits for the child and gets both
        // queues and a native attach, not "already attached" or EBUSY.
        let second = open(false).unwrap_or_else(|e| panic!("round {round}: {e}"));
        waited += usize::from(
            second
                .setup_steps()
                .iter()
                .any(|(step, _)| step.starts_with("wait for the last run")),
        );
        assert_eq!(second.attach_mode(), AttachMode::Native);
        assert_eq!(second.bind_modes().len(), 2);
        drop(second);
        // A library drop (no child) detaches before it returns, but a process that
        // another test thread forks meanwhile may hold a copy of the link for a moment.
        let shown = xdp_gone_within(&net, Duration::from_secs(2));
        assert!(!has_xdp(&shown), "round {round}: {shown}");
    }
    // The child is still closing when the next open starts (its closes wait for RCU
    // grace periods), so the next open waited for it, at least once in three.
    assert!(waited > 0);
    // The last child-held teardown also goes, on its own.
    let last = open(true).unwrap();
    net.in_client(|| drop(last));
    let shown = xdp_gone_within(&net, Duration::from_secs(2));
    assert!(!has_xdp(&shown), "{shown}");
}

/// `ip link show` once the XDP program is gone, or when `limit` has passed.
fn xdp_gone_within(net: &TestNet, limit: Duration) -> String {
    let started = std::time::Instant::now();
    let mut shown = link_show(net);
    while has_xdp(&shown) && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(10));
        shown = link_show(net);
    }
    shown
}
