//! Where connections come from: a real interface (AF_XDP or raw socket) or the simulator.
//!
//! A [`Network`] resolves names, chooses local ports, knows the MACs of the next hop and
//! owns the packet driver. The real one also owns the guards that keep the kernel out of our
//! way while xdpget runs (reserved ports, the XDP program, and for the raw driver only the
//! nftables table), so dropping it undoes everything (DESIGN.md: never leave rules or
//! programs behind). It also times its set-up steps for `--stats`.

use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::endpoint::Endpoint;
use super::error::EngineError;
use super::lookup::Lookups;
use super::stats::SetupTimes;
use crate::driver::afxdp::loader::SteerConfig;
use crate::driver::afxdp::{AfXdpConfig, AfXdpDriver, Release, hand_off_unnoted, held_by_teardown};
use crate::driver::handover::{HandOverDriver, Phase, Policy};
use crate::driver::pcap::{PcapDriver, PcapWriter};
use crate::driver::raw::{RawConfig, RawDriver};
use crate::driver::sim::SimDriver;
use crate::driver::{Driver, DriverError, DriverStats};
use crate::engine::sim_server::{CLIENT_ADDRESS, CLIENT_MAC, SERVER_MAC, SimServer};
use crate::net::iface::Interface;
use crate::net::neigh::resolve_mac;
use crate::net::nft::NftGuard;
use crate::net::ports::ReservedPorts;
use crate::net::route::Route;
use crate::time::Instant;
use crate::wire::EthernetAddress;

/// A source of connections and the driver that carries them.
///
/// The loop (`engine::runtime::run`) owns the network. Lookups are answered here, on the
/// busy-poll thread, only until the driver is up (nothing runs yet that they could stall);
/// after that [`Network::lookups`] gives the lookup thread its own resolver.
pub trait Network {
    type Driver: Driver;

    /// The driver, once the first [`Network::open`] set it up.
    fn driver_mut(&mut self) -> Option<&mut Self::Driver>;

    /// The addresses of `host` to try, in order (DNS through the system resolver for real
    /// networks, A and AAAA, then [`Families`] applied).
    fn resolve(&mut self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EngineError>;

    /// Addresses for a new connection to `remote`. The first call sets up the driver.
    fn open(&mut self, remote: SocketAddr) -> Result<Endpoint, EngineError>;

    /// Lookups for the lookup thread, once the driver is up; `None` keeps answering here
    /// (the simulator, whose lookups never block).
    fn lookups(&mut self) -> Option<Box<dyn Lookups>>;

    /// Lines for `--stats` about the driver (mode, counters).
    fn describe(&self) -> Vec<String>;

    /// The driver's counters, if a driver was opened.
    fn driver_stats(&self) -> Option<DriverStats>;
}

/// Which address families to use and in which order: wget's `-4`/`--inet4-only`,
/// `-6`/`--inet6-only` and `--prefer-family`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Families {
    /// Use only this family (`-4` or `-6`).
    pub only: Option<Family>,
    /// Try this family's addresses first, each family in the resolver's order.
    pub prefer: Option<Family>,
}

/// An IP version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    fn of(address: &SocketAddr) -> Family {
        if address.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }
}

impl Families {
    /// The addresses to try, in order: without options the resolver's own order (getaddrinfo
    /// already sorts by RFC 6724); `only` drops the other family; `prefer` moves its family
    /// ahead, keeping the order within each family. A name with no address left is
    /// unresolvable, as wget says for `-6` on a name with only A records.
    pub fn order(&self, addresses: Vec<SocketAddr>) -> Vec<SocketAddr> {
        let mut kept: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|address| self.only.is_none_or(|only| Family::of(address) == only))
            .collect();
        if let Some(prefer) = self.prefer {
            // A stable sort: `false` (preferred) first, the rest in the resolver's order.
            kept.sort_by_key(|address| Family::of(address) != prefer);
        }
        kept
    }
}

/// A set-up failure (interface, route, neighbour, guards, driver) as the user's sentence.
fn setup(error: impl std::fmt::Display) -> EngineError {
    EngineError::Setup(error.to_string())
}

/// Which driver the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverKind {
    /// Start on the raw socket (no ring) and hand over to AF_XDP once the download has
    /// received 8 MiB (`driver::handover`); with `--pcap`, AF_XDP from the start,
    /// falling back to the raw socket with a notice.
    Auto,
    AfXdp,
    Raw,
}

/// A real interface: discovery, guards and a driver, opened on first use.
pub struct NicNetwork {
    kind: DriverKind,
    interface_name: Option<String>,
    ports: RangeInclusive<u16>,
    queue: Option<u32>,
    pcap: Option<PathBuf>,
    next_port: Arc<PortCycle>,
    notices: Vec<String>,
    opened: Option<Opened>,
    families: Families,
    setup: SetupTimes,
    /// Connections the run may have open at once (`-x N` × `--parallel M`): sizes the
    /// AF_XDP receive rings ([`AfXdpConfig::for_connections`]).
    connections: usize,
}

/// Field order is drop order: the driver (and its XDP program) goes first, then the
/// nftables table (raw driver only), then the port reservation.
struct Opened {
    /// Always `Some` until `drop` takes it.
    driver: Option<NicDriver>,
    _nft: Option<NftGuard>,
    _ports: ReservedPorts,
    interface: Interface,
    /// Our address: the source the kernel picked for the route to the server.
    local: IpAddr,
    /// The child that closes the packet socket and the nftables socket after we exit;
    /// dropped last, so that its closes are the final ones.
    _teardown: Option<Release>,
}

impl Opened {
    fn driver(&self) -> &NicDriver {
        self.driver.as_ref().expect("the driver lives until drop")
    }
}

impl Drop for Opened {
    /// Closing a packet socket waits for an RCU grace period (`packet_release`, and one
    /// more with a ring), and closing the socket that owns the nftables table waits for
    /// another (`nft_rcv_nl_event`): 10-40 ms the process would spend after the last byte.
    /// Copies of both go to a forked child that makes those closes after we are gone, as
    /// the AF_XDP driver does with its own (`driver::afxdp::teardown`). The driver is
    /// dropped first, so the fork does not copy a live UMEM's page tables.
    fn drop(&mut self) {
        let raw = self.driver.as_ref().and_then(NicDriver::packet_socket_copy);
        let nft = self._nft.as_ref().and_then(NftGuard::socket_copy);
        let copies: Vec<std::os::fd::OwnedFd> = raw.into_iter().chain(nft).collect();
        drop(self.driver.take());
        if !copies.is_empty() {
            use std::os::fd::AsRawFd;
            let keep: Vec<_> = copies.iter().map(AsRawFd::as_raw_fd).collect();
            self._teardown = hand_off_unnoted(&keep);
            // Ours go now; the child's are the last ones.
            drop(copies);
        }
    }
}

impl NicNetwork {
    pub fn new(
        kind: DriverKind,
        interface_name: Option<String>,
        ports: RangeInclusive<u16>,
        queue: Option<u32>,
        pcap: Option<PathBuf>,
    ) -> NicNetwork {
        // Start at a port that depends on the time, so that consecutive runs do not reuse
        // a four-tuple the server may still hold in TIME-WAIT.
        let span = u32::from(*ports.end() - *ports.start()) + 1;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32);
        let next_port = Arc::new(PortCycle {
            first: *ports.start(),
            span,
            next: AtomicU32::new(seed % span),
        });
        NicNetwork {
            kind,
            interface_name,
            ports,
            queue,
            pcap,
            next_port,
            notices: Vec::new(),
            opened: None,
            families: Families::default(),
            setup: SetupTimes::start(),
            connections: 1,
        }
    }

    /// Sizes the AF_XDP rings for `connections` open at once (`-x N` × `--parallel M`).
    pub fn with_connections(mut self, connections: usize) -> NicNetwork {
        self.connections = connections.max(1);
        self
    }

    /// Sets which address families names resolve to (`-4`, `-6`, `--prefer-family`).
    pub fn set_families(&mut self, families: Families) {
        self.families = families;
    }

    /// Continues `times` (steps before the network existed) with the set-up steps of the
    /// first connection.
    pub fn with_setup_times(mut self, times: SetupTimes) -> NicNetwork {
        self.setup = times;
        self
    }

    /// The set-up steps so far: complete once the first connection is open.
    pub fn setup_times(&self) -> &SetupTimes {
        &self.setup
    }

    /// One-line notices from set-up (fallbacks, generic XDP mode) for the user.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// Finds the interface from the kernel's route to `remote` (what `ip route get` answers);
    /// with `--iface`, checks that the route leaves through it. Then sets up the guards and
    /// the driver on that interface, for the route's source address.
    fn open_interface(&mut self, remote: IpAddr) -> Result<Opened, EngineError> {
        let route = Route::to(remote).map_err(setup)?;
        let name = match &self.interface_name {
            Some(name) => {
                route.expect_interface(name).map_err(setup)?;
                name.clone()
            }
            None => route.interface_name.clone(),
        };
        let interface = Interface::by_name(&name).map_err(setup)?;
        let local = route.source_address().map_err(setup)?;
        self.setup.lap("interface and route");
        let ports = ReservedPorts::reserve(self.ports.clone()).map_err(setup)?;
        self.setup.lap("port reservation");
        // Another live xdpget's program on the interface: no hand-over could succeed, so
        // the previous way (its notice, and the raw driver with its ring). A program that
        // a teardown child is taking away will be gone long before a hand-over starts.
        let taken = interface.xdp_prog_id.is_some() && !held_by_teardown(interface.index);
        if self.kind == DriverKind::Auto && self.pcap.is_none() && !taken {
            return self.open_hand_over(interface, local, ports);
        }
        let device = self.open_driver(&interface, local)?;
        // Only the raw driver lets the kernel see our segments: in AF_XDP mode the XDP
        // program drops what it cannot redirect, so no firewall rule is needed.
        let nft = match device {
            NicDevice::Raw(_) => Some(self.install_guard(local)?),
            NicDevice::AfXdp(_) => None,
        };
        let driver = if let Some(path) = &self.pcap {
            let writer = File::create(path)
                .and_then(|file| PcapWriter::new(BufWriter::new(file)))
                .map_err(|e| EngineError::Setup(format!("cannot write {}: {e}", path.display())))?;
            NicDriver::Recorded(Box::new(PcapDriver::new(device, writer)))
        } else {
            NicDriver::Direct(device)
        };
        Ok(Opened {
            driver: Some(driver),
            _nft: nft,
            _ports: ports,
            interface,
            local,
            _teardown: None,
        })
    }

    /// What the XDP program steers and how the AF_XDP sockets are made, for `interface`.
    fn afxdp_config(&self, interface: &Interface, local: IpAddr) -> (SteerConfig, AfXdpConfig) {
        let steer = SteerConfig {
            address: local,
            ports: self.ports.clone(),
        };
        let config = AfXdpConfig {
            queue: self.queue,
            frame_size: AfXdpConfig::frame_size_for_mtu(interface.mtu),
            background_teardown: true,
            ..AfXdpConfig::for_connections(self.connections)
        };
        (steer, config)
    }

    /// The raw driver's nftables table, timed as a set-up step.
    fn install_guard(&mut self, local: IpAddr) -> Result<NftGuard, EngineError> {
        let guard = NftGuard::install(local, self.ports.clone()).map_err(setup)?;
        self.setup.lap(if guard.dies_with_process() {
            "nftables guard (netlink)"
        } else {
            "nftables guard (nft binary)"
        });
        Ok(guard)
    }

    /// The default driver (`driver::handover`): the packet socket without a ring and the
    /// nftables guard now, AF_XDP later on a thread of its own, if the download is large.
    fn open_hand_over(
        &mut self,
        interface: Interface,
        local: IpAddr,
        ports: ReservedPorts,
    ) -> Result<Opened, EngineError> {
        let raw = RawDriver::open(&RawConfig::without_ring(
            &interface.name,
            local,
            self.ports.clone(),
        ))
        .map_err(setup)?;
        self.setup.lap("raw socket (no ring)");
        let guard = self.install_guard(local)?;
        let (steer, config) = self.afxdp_config(&interface, local);
        let config = AfXdpConfig {
            pass_without_socket: true,
            ..config
        };
        let on = interface.clone();
        let prepare = Box::new(move || AfXdpDriver::open(&on, &steer, &config));
        let driver = HandOverDriver::new(raw, prepare, Policy::default());
        Ok(Opened {
            driver: Some(NicDriver::HandOver(Box::new(driver))),
            _nft: Some(guard),
            _ports: ports,
            interface,
            local,
            _teardown: None,
        })
    }

    fn open_driver(
        &mut self,
        interface: &Interface,
        local: IpAddr,
    ) -> Result<NicDevice, EngineError> {
        let afxdp = || {
            let (steer, config) = self.afxdp_config(interface, local);
            AfXdpDriver::open(interface, &steer, &config)
        };
        let raw = || RawDriver::open(&RawConfig::new(&interface.name, local, self.ports.clone()));
        let afxdp = || {
            afxdp().map(|driver| {
                let steps = driver.setup_steps().to_vec();
                (NicDevice::AfXdp(Box::new(driver)), steps)
            })
        };
        let opened = match self.kind {
            DriverKind::AfXdp => afxdp().map_err(setup)?,
            DriverKind::Raw => (NicDevice::Raw(Box::new(raw().map_err(setup)?)), Vec::new()),
            DriverKind::Auto => match afxdp() {
                Ok(opened) => opened,
                Err(e) => {
                    self.notices.push(format!(
                        "AF_XDP is not available on {} ({e}); using the raw-socket driver",
                        interface.name
                    ));
                    self.setup.lap("AF_XDP attempt (failed)");
                    (NicDevice::Raw(Box::new(raw().map_err(setup)?)), Vec::new())
                }
            },
        };
        let (device, steps) = opened;
        match device {
            NicDevice::AfXdp(_) => self.setup.split(&steps, "AF_XDP driver, other"),
            NicDevice::Raw(_) => self.setup.lap("raw socket and ring"),
        }
        Ok(device)
    }
}

impl Network for NicNetwork {
    type Driver = NicDriver;

    fn driver_mut(&mut self) -> Option<&mut NicDriver> {
        self.opened.as_mut().and_then(|o| o.driver.as_mut())
    }

    fn resolve(&mut self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EngineError> {
        resolve_name(self.families, host, port)
    }

    fn open(&mut self, remote: SocketAddr) -> Result<Endpoint, EngineError> {
        let first = self.opened.is_none();
        if first {
            self.setup.lap("name resolution");
            let opened = self.open_interface(remote.ip())?;
            if let Some(NicDevice::AfXdp(driver)) = opened.driver().device() {
                self.notices.extend(driver.notes().iter().cloned());
            }
            self.opened = Some(opened);
        }
        let Some(opened) = self.opened.as_ref() else {
            return Err(EngineError::Setup("the network is not set up".into()));
        };
        let endpoint = endpoint_to(&opened.interface, opened.local, &self.next_port, remote)?;
        if first {
            self.setup.lap("neighbour MAC");
        }
        Ok(endpoint)
    }

    fn lookups(&mut self) -> Option<Box<dyn Lookups>> {
        let opened = self.opened.as_ref()?;
        Some(Box::new(NicLookups {
            families: self.families,
            interface: opened.interface.clone(),
            local: opened.local,
            ports: Arc::clone(&self.next_port),
        }))
    }

    fn describe(&self) -> Vec<String> {
        let Some(opened) = &self.opened else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        if let NicDriver::HandOver(driver) = opened.driver() {
            return describe_hand_over(driver, &opened.interface.name);
        }
        match opened.driver().device() {
            None => {}
            Some(NicDevice::AfXdp(driver)) => {
                lines.push(format!(
                    "driver: AF_XDP on {}, XDP {:?} mode, sockets {:?}, frames received by rx queue {:?}",
                    opened.interface.name,
                    driver.attach_mode(),
                    driver.bind_modes(),
                    driver.frames_by_queue()
                ));
                if let Ok(c) = driver.steer_counters() {
                    lines.push(c.line(false));
                }
            }
            Some(NicDevice::Raw(_)) => lines.push(format!(
                "driver: raw AF_PACKET socket on {}",
                opened.interface.name
            )),
        }
        lines
    }

    fn driver_stats(&self) -> Option<DriverStats> {
        self.opened.as_ref().map(|o| o.driver().stats())
    }
}

/// The local ports of a run, handed out in turn (by the engine thread, then the lookup
/// thread).
#[derive(Debug)]
struct PortCycle {
    first: u16,
    span: u32,
    next: AtomicU32,
}

impl PortCycle {
    fn take(&self) -> u16 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.first + (n % self.span) as u16
    }
}

/// A name's addresses through getaddrinfo (A and AAAA), in `families`' order; an IPv6
/// literal comes out of the URL without its brackets and parses as itself.
fn resolve_name(families: Families, host: &str, port: u16) -> Result<Vec<SocketAddr>, EngineError> {
    let unresolved = || EngineError::Resolve {
        host: host.to_string(),
    };
    let addresses = (host, port).to_socket_addrs().map_err(|_| unresolved())?;
    let ordered = families.order(addresses.collect());
    if ordered.is_empty() {
        return Err(unresolved());
    }
    Ok(ordered)
}

/// The addresses of a new connection from `local` on `interface` to `remote`: the route
/// (which must leave through `interface` from `local`), its MTU, the next hop's MAC, and
/// the next local port.
fn endpoint_to(
    interface: &Interface,
    local: IpAddr,
    ports: &PortCycle,
    remote: SocketAddr,
) -> Result<Endpoint, EngineError> {
    let route = Route::to(remote.ip()).map_err(setup)?;
    route.expect_interface(&interface.name).map_err(setup)?;
    let source = route.source_address().map_err(setup)?;
    if source != local {
        // The guards and the driver listen on one address (a redirect to the other IP
        // version, or to a host behind another source address).
        return Err(EngineError::Setup(format!(
            "{remote} is reached from {source}, but xdpget set up {local} for this run"
        )));
    }
    // The route may have a smaller MTU than the interface (a route `mtu` attribute, or
    // a Packet Too Big the kernel recorded): never send more than it carries.
    let mtu = route.path_mtu(interface.mtu);
    let mac = resolve_mac(
        interface.index,
        &interface.name,
        route.next_hop(),
        Duration::from_secs(3),
    )
    .map_err(setup)?;
    Ok(Endpoint {
        local_mac: EthernetAddress(interface.mac),
        next_hop_mac: EthernetAddress(mac),
        local: SocketAddr::new(local, ports.take()),
        remote,
        mtu: mtu as usize,
    })
}

/// What the lookup thread needs of a set-up interface.
struct NicLookups {
    families: Families,
    interface: Interface,
    local: IpAddr,
    ports: Arc<PortCycle>,
}

impl Lookups for NicLookups {
    fn resolve(&mut self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EngineError> {
        resolve_name(self.families, host, port)
    }

    fn open(&mut self, remote: SocketAddr) -> Result<Endpoint, EngineError> {
        endpoint_to(&self.interface, self.local, &self.ports, remote)
    }
}

/// The device under a real interface's driver: AF_XDP or the raw socket.
pub enum NicDevice {
    AfXdp(Box<AfXdpDriver>),
    Raw(Box<RawDriver>),
}

/// The driver of a real interface, possibly recorded to a pcap file (`--pcap`), or the
/// default hand-over from the raw socket to AF_XDP.
pub enum NicDriver {
    Direct(NicDevice),
    Recorded(Box<PcapDriver<NicDevice, BufWriter<File>>>),
    HandOver(Box<HandOverDriver>),
}

impl NicDriver {
    /// The device, whether recorded or not; `None` for the hand-over, which has two.
    pub fn device(&self) -> Option<&NicDevice> {
        match self {
            NicDriver::Direct(device) => Some(device),
            NicDriver::Recorded(recorded) => Some(recorded.inner()),
            NicDriver::HandOver(_) => None,
        }
    }

    /// A second descriptor of the packet socket, where there is one.
    fn packet_socket_copy(&self) -> Option<std::os::fd::OwnedFd> {
        let raw = match self {
            NicDriver::HandOver(driver) => driver.raw(),
            _ => match self.device()? {
                NicDevice::Raw(driver) => driver,
                NicDevice::AfXdp(_) => return None,
            },
        };
        raw.socket_copy().ok()
    }
}

/// `--stats` lines of the hand-over: where it stands, when it started and switched, the
/// set-up's steps, and the frames each socket carried.
fn describe_hand_over(driver: &HandOverDriver, interface: &str) -> Vec<String> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let report = driver.report();
    let mut lines = Vec::new();
    let phase = match driver.phase() {
        Phase::Raw => "raw AF_PACKET socket (below the hand-over threshold)",
        Phase::Preparing => "raw AF_PACKET socket (AF_XDP set-up still running)",
        Phase::Draining { .. } | Phase::AfXdp => "raw AF_PACKET socket, then AF_XDP",
        Phase::RawOnly => "raw AF_PACKET socket (AF_XDP set-up failed)",
    };
    lines.push(format!("driver: {phase} on {interface}"));
    let raw = driver.raw().stats();
    if let Some((at, bytes)) = report.started {
        let mut line = format!(
            "hand-over: AF_XDP set-up started at {:.2} ms (after {bytes} bytes on the raw socket)",
            ms(at)
        );
        if let Some(switched) = report.switched {
            line.push_str(&format!(
                ", AF_XDP took over at {:.2} ms (set-up {:.2} ms)",
                ms(switched),
                ms(switched.saturating_sub(at))
            ));
        }
        lines.push(line);
    }
    if let Some(failure) = &report.failure {
        lines.push(format!("hand-over: AF_XDP set-up failed: {failure}"));
    }
    if !report.steps.is_empty() {
        let steps: Vec<String> = report
            .steps
            .iter()
            .map(|(step, took)| format!("{step} {:.2}", ms(*took)))
            .collect();
        lines.push(format!("hand-over set-up steps (ms): {}", steps.join(", ")));
    }
    lines.push(format!(
        "hand-over frames: raw socket {} received, {} sent",
        raw.rx_frames, raw.tx_frames
    ));
    if let Some(afxdp) = driver.afxdp() {
        let x = afxdp.stats();
        lines.push(format!(
            "hand-over frames: AF_XDP {} received, {} sent; XDP {:?} mode, sockets {:?}, frames by rx queue {:?}",
            x.rx_frames,
            x.tx_frames,
            afxdp.attach_mode(),
            afxdp.bind_modes(),
            afxdp.frames_by_queue()
        ));
        if let Ok(c) = afxdp.steer_counters() {
            lines.push(c.line(true));
        }
    }
    lines
}

/// Forwards every `Driver` method to the variant's driver.
macro_rules! delegate_driver {
    ($type:ty, $($variant:path),+) => {
        impl Driver for $type {
            fn now(&self) -> Instant {
                match self { $($variant(d) => d.now(),)+ }
            }
            fn receive<F: FnMut(&[u8])>(&mut self, max: usize, f: F) -> Result<usize, DriverError> {
                match self { $($variant(d) => d.receive(max, f),)+ }
            }
            fn transmit<F: FnMut(&mut [u8]) -> usize>(
                &mut self,
                max: usize,
                f: F,
            ) -> Result<usize, DriverError> {
                match self { $($variant(d) => d.transmit(max, f),)+ }
            }
            fn flush(&mut self) -> Result<(), DriverError> {
                match self { $($variant(d) => d.flush(),)+ }
            }
            fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DriverError> {
                match self { $($variant(d) => d.wait(deadline),)+ }
            }
            fn max_frame_len(&self) -> usize {
                match self { $($variant(d) => d.max_frame_len(),)+ }
            }
            fn stats(&self) -> DriverStats {
                match self { $($variant(d) => d.stats(),)+ }
            }
        }
    };
}

delegate_driver!(NicDevice, NicDevice::AfXdp, NicDevice::Raw);
delegate_driver!(
    NicDriver,
    NicDriver::Direct,
    NicDriver::Recorded,
    NicDriver::HandOver
);

/// The simulator as a network: one server host behind a simulated link. Every host name
/// resolves to it.
pub struct SimNetwork {
    driver: SimDriver<SimServer>,
    mtu: usize,
    next_port: u16,
}

impl SimNetwork {
    pub fn new(driver: SimDriver<SimServer>, mtu: usize) -> SimNetwork {
        SimNetwork {
            driver,
            mtu,
            next_port: CLIENT_ADDRESS.port(),
        }
    }

    pub fn driver(&self) -> &SimDriver<SimServer> {
        &self.driver
    }
}

impl Network for SimNetwork {
    type Driver = SimDriver<SimServer>;

    fn driver_mut(&mut self) -> Option<&mut SimDriver<SimServer>> {
        Some(&mut self.driver)
    }

    fn resolve(&mut self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EngineError> {
        match host.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
            Err(_) => Err(EngineError::Resolve {
                host: host.to_string(),
            }),
        }
    }

    fn open(&mut self, remote: SocketAddr) -> Result<Endpoint, EngineError> {
        let port = self.next_port;
        self.next_port = self.next_port.wrapping_add(1).max(1024);
        Ok(Endpoint {
            local_mac: CLIENT_MAC,
            next_hop_mac: SERVER_MAC,
            local: SocketAddr::new((*CLIENT_ADDRESS.ip()).into(), port),
            remote,
            mtu: self.mtu,
        })
    }

    fn lookups(&mut self) -> Option<Box<dyn Lookups>> {
        None
    }

    fn describe(&self) -> Vec<String> {
        vec!["driver: simulated link".to_string()]
    }

    fn driver_stats(&self) -> Option<DriverStats> {
        Some(self.driver.stats())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|text| SocketAddr::new(text.parse().unwrap(), 80))
            .collect()
    }

    /// A name with both kinds of records, in a resolver's (RFC 6724) order.
    const BOTH: [&str; 4] = ["fd00::2", "10.0.0.2", "fd00::3", "10.0.0.3"];

    #[test]
    fn default_keeps_the_resolver_order() {
        let families = Families::default();
        assert_eq!(families.order(addresses(&BOTH)), addresses(&BOTH));
    }

    #[test]
    fn only_one_family() {
        let v4 = Families {
            only: Some(Family::Ipv4),
            prefer: None,
        };
        assert_eq!(
            v4.order(addresses(&BOTH)),
            addresses(&["10.0.0.2", "10.0.0.3"])
        );
        let v6 = Families {
            only: Some(Family::Ipv6),
            prefer: Some(Family::Ipv4), // -6 wins over a preference, as in wget
        };
        assert_eq!(
            v6.order(addresses(&BOTH)),
            addresses(&["fd00::2", "fd00::3"])
        );
        assert!(v6.order(addresses(&["10.0.0.2"])).is_empty());
    }

    #[test]
    fn preferred_family_first_in_resolver_order() {
        let prefer_v4 = Families {
            only: None,
            prefer: Some(Family::Ipv4),
        };
        assert_eq!(
            prefer_v4.order(addresses(&BOTH)),
            addresses(&["10.0.0.2", "10.0.0.3", "fd00::2", "fd00::3"])
        );
        let prefer_v6 = Families {
            only: None,
            prefer: Some(Family::Ipv6),
        };
        assert_eq!(
            prefer_v6.order(addresses(&["10.0.0.2", "fd00::2"])),
            addresses(&["fd00::2", "10.0.0.2"])
        );
    }
}
