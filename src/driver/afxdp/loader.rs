//! Loads `ebpf/xdp_steer.c` (compiled by build.rs, embedded here), fills its config map,
//! attaches it to an interface through a bpf_link and reads its counters.
//!
//! The object is parsed by `aya-obj` and its maps are created by aya, but the program is
//! loaded and linked by our own two bpf(2) calls (`bpf.rs`): aya's `EbpfLoader` parses the
//! kernel's whole BTF and probes kernel features before it loads anything, ~40 ms of every
//! start that this program, without CO-RE relocations, does not need.
//!
//! Attach policy:
//! - native (driver) mode first, generic (SKB) mode as the fallback, with a one-line notice;
//! - never replace someone else's program: an interface that already has one is refused;
//! - a bpf_link is an fd: when xdpget exits or is killed the kernel closes it and the program
//!   leaves the interface. (Kernels before 5.9 have no XDP links: the attach fails there,
//!   and `--driver auto` uses the raw driver.)
//!
//! Why aya rather than libbpf-rs: see docs/xdp.md.
#![allow(unsafe_code)] // one `unsafe impl Pod`, nothing else

use std::collections::HashSet;
use std::error::Error as _;
use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use aya::Pod;
use aya::maps::{Array, Map, MapData, PerCpuArray, XskMap};

use super::bpf::{self, XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE};

use crate::net::iface::Interface;

/// The XDP program, compiled by build.rs.
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_steer.o"));
const PROGRAM_NAME: &str = "xdp_steer";
const XSKS_MAP: &str = "xsks";
const CONFIG_MAP: &str = "steer_config";
const COUNTERS_MAP: &str = "steer_counters";
/// `XSKS_MAX_QUEUES` in xdp_steer.c.
pub const MAX_QUEUES: u32 = 64;

/// `struct steer_config` of xdp_steer.c.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SteerConfigValue {
    /// Network byte order, as it sits in the IPv4 header.
    ipv4_addr: u32,
    port_min: u16,
    port_max: u16,
    /// Our IPv6 address in header order; all zero when we steer IPv4.
    ipv6_addr: [u8; 16],
    /// 1: a segment of the range with no socket on its queue goes to the kernel (during a
    /// hand-over from the raw driver, whose packet socket takes it); 0: it is dropped.
    pass_without_socket: u8,
    reserved: [u8; 3],
}

// SAFETY: `repr(C)` with only integer fields and no padding (4 + 2 + 2 + 16 + 1 + 3), so
// every bit pattern is a valid value and copying its bytes to and from the kernel is sound.
unsafe impl Pod for SteerConfigValue {}

/// What the program steers: TCP to `address` with a destination port in `ports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SteerConfig {
    pub address: IpAddr,
    pub ports: RangeInclusive<u16>,
}

/// How the program runs on the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum AttachMode {
    /// In the driver, before any socket buffer exists (fast).
    Native,
    /// In the kernel's generic receive path, after the socket buffer is built (slower).
    Generic,
}

/// The program's per-CPU counters, summed over CPUs (`enum steer_counter` in the C file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SteerCounters {
    /// Frames the program ran on.
    pub seen: u64,
    /// Frames redirected into an AF_XDP socket.
    pub steered: u64,
    /// Frames handed to the kernel.
    pub passed: u64,
    /// Frames for us that arrived on a queue with no socket, or that the socket could not
    /// take: dropped, so that the kernel's TCP never answers them with a RST.
    pub no_socket: u64,
    /// First fragments of datagrams to our range: dropped (the engine cannot reassemble).
    pub fragments: u64,
}

impl SteerCounters {
    /// The `--stats` line. `passing`: the program hands frames for us that find no socket
    /// to the kernel (`AfXdpConfig::pass_without_socket`, during a hand-over) instead of
    /// dropping them.
    pub fn line(&self, passing: bool) -> String {
        let no_socket = if passing {
            "for us without a socket (passed during the hand-over)"
        } else {
            "for us dropped (no socket on the queue, or its ring full)"
        };
        format!(
            "xdp program: {} frames seen, {} steered to xdpget, {} passed to the kernel, {} {no_socket}, {} first fragments for us dropped",
            self.seen, self.steered, self.passed, self.no_socket, self.fragments
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error("loading an XDP program needs root or CAP_BPF+CAP_NET_ADMIN")]
    PermissionDenied,
    #[error(
        "interface {interface} already has an XDP program attached (id {program_id}); \
         xdpget will not replace it (remove it, or use --driver raw)"
    )]
    AlreadyAttached { interface: String, program_id: u32 },
    #[error("interface {interface} cannot run XDP programs: {source}")]
    AttachFailed {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("the kernel refused the XDP program: {0}")]
    Load(String),
    #[error("XDP map {map}: {message}")]
    Map { map: &'static str, message: String },
    #[error("the port range {0:?} is empty")]
    EmptyPortRange(RangeInclusive<u16>),
    #[error("rx queue {0} is beyond the {MAX_QUEUES} queues xdpget can steer")]
    QueueOutOfRange(u32),
}

/// The loaded and attached program. Dropping it detaches the program and frees its maps.
pub struct SteerProgram {
    // Field order is drop order: the link (detach) before the program and its maps.
    link: OwnedFd,
    loaded: Loaded,
    mode: AttachMode,
    interface: String,
    /// How long loading (parse, maps, verifier) and attaching took (`--stats`).
    timings: [(&'static str, Duration); 2],
}

impl std::fmt::Debug for SteerProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteerProgram")
            .field("interface", &self.interface)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl SteerProgram {
    /// Loads the program, sets its config and attaches it to `interface`, natively if the
    /// driver can, generically otherwise (printing one notice line on stderr).
    pub fn attach(
        interface: &Interface,
        config: &SteerConfig,
    ) -> Result<SteerProgram, LoaderError> {
        Self::load(interface, config)?.attach()
    }

    /// The first half of [`SteerProgram::attach`]: checks the interface and loads the
    /// program (the verifier runs here), without attaching it anywhere.
    pub fn load(interface: &Interface, config: &SteerConfig) -> Result<Unattached, LoaderError> {
        if let Some(program_id) = interface.xdp_prog_id {
            return Err(LoaderError::AlreadyAttached {
                interface: interface.name.clone(),
                program_id,
            });
        }
        if config.ports.is_empty() {
            return Err(LoaderError::EmptyPortRange(config.ports.clone()));
        }
        let started = std::time::Instant::now();
        let loaded = load(config)?;
        Ok(Unattached {
            loaded,
            interface: interface.name.clone(),
            ifindex: interface.index,
            load_time: started.elapsed(),
        })
    }
    /// How long loading and attaching took, as `--stats` set-up steps.
    pub fn timings(&self) -> &[(&'static str, Duration)] {
        &self.timings
    }

    /// The bpf_link's descriptor: the program stays on the interface while it is open.
    pub(crate) fn link_fd(&self) -> RawFd {
        self.link.as_raw_fd()
    }

    /// Where the program runs.
    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// Routes frames of rx queue `queue` into the AF_XDP socket `socket`.
    pub fn set_socket(&mut self, queue: u32, socket: RawFd) -> Result<(), LoaderError> {
        if queue >= MAX_QUEUES {
            return Err(LoaderError::QueueOutOfRange(queue));
        }
        let mut xsks: XskMap<&mut MapData> =
            XskMap::try_from(&mut self.loaded.xsks).map_err(map_error(XSKS_MAP))?;
        xsks.set(queue, socket, 0).map_err(map_error(XSKS_MAP))
    }

    /// The counters so far, summed over CPUs.
    pub fn counters(&self) -> Result<SteerCounters, LoaderError> {
        read_counters(&self.loaded)
    }
}

/// A loaded program that is not attached yet (`SteerProgram::load`). Dropping it unloads it.
pub struct Unattached {
    loaded: Loaded,
    interface: String,
    ifindex: u32,
    load_time: Duration,
}

impl std::fmt::Debug for Unattached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unattached")
            .field("interface", &self.interface)
            .finish_non_exhaustive()
    }
}

impl Unattached {
    /// Makes a segment of the range that finds no socket on its queue go to the kernel
    /// instead of being dropped: for a hand-over from the raw driver, whose packet socket
    /// takes such segments until the AF_XDP sockets are in the XSKMAP (and whose nftables
    /// guard keeps the kernel's TCP from answering them).
    pub fn pass_without_socket(&mut self, config: &SteerConfig) -> Result<(), LoaderError> {
        set_config(&mut self.loaded.config, config, true)
    }

    /// Attaches the program through a bpf_link: natively if the driver can, generically
    /// otherwise (printing one notice line on stderr). The native attach holds the RTNL
    /// lock while it waits for an RCU grace period (the XDP dispatcher's update), so an
    /// AF_XDP bind issued meanwhile waits for it.
    pub fn attach(self) -> Result<SteerProgram, LoaderError> {
        let started = std::time::Instant::now();
        let interface = &self.interface;
        let attach_error = |error: io::Error| match error.raw_os_error() {
            Some(libc::EBUSY | libc::EEXIST) => LoaderError::AlreadyAttached {
                interface: interface.clone(),
                program_id: 0,
            },
            Some(libc::EPERM | libc::EACCES) => LoaderError::PermissionDenied,
            _ => LoaderError::AttachFailed {
                interface: interface.clone(),
                source: error,
            },
        };
        let program = &self.loaded.program;
        let (link, mode) = match bpf::link_xdp(program, self.ifindex, XDP_FLAGS_DRV_MODE) {
            Ok(link) => (link, AttachMode::Native),
            Err(native_error) => {
                let native_error = attach_error(native_error);
                if !matches!(native_error, LoaderError::AttachFailed { .. }) {
                    return Err(native_error);
                }
                let link = bpf::link_xdp(program, self.ifindex, XDP_FLAGS_SKB_MODE)
                    .map_err(attach_error)?;
                let reason = native_error
                    .source()
                    .map_or_else(|| native_error.to_string(), ToString::to_string);
                eprintln!(
                    "xdpget: native XDP attach failed on {interface} ({reason}); using generic (SKB) mode, which is slower",
                );
                (link, AttachMode::Generic)
            }
        };
        let timings = [
            ("XDP program load", self.load_time),
            ("XDP program attach", started.elapsed()),
        ];
        Ok(SteerProgram {
            link,
            loaded: self.loaded,
            mode,
            interface: self.interface,
            timings,
        })
    }
}

/// The program in the kernel and its maps, not attached anywhere.
struct Loaded {
    program: OwnedFd,
    xsks: Map,
    config: Map,
    counters: Map,
}

/// Parses the embedded object, creates its maps, sets the config and loads the program into
/// the kernel (verifier included), without attaching it anywhere.
fn load(config: &SteerConfig) -> Result<Loaded, LoaderError> {
    let load_error = |error: io::Error| match error.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => LoaderError::PermissionDenied,
        _ => LoaderError::Load(error.to_string()),
    };
    let mut object =
        aya_obj::Object::parse(PROGRAM).map_err(|error| LoaderError::Load(error.to_string()))?;
    let mut maps = Vec::with_capacity(object.maps.len());
    for (name, map) in object.maps.drain() {
        // Created from its parameters alone: the object's BTF is not loaded, and the kernel
        // refuses BTF type ids without a BTF fd.
        let plain = aya_obj::Map::new_from_params(
            map.map_type(),
            map.key_size(),
            map.value_size(),
            map.max_entries(),
            map.map_flags(),
        );
        let data = MapData::create(plain, &name, None).map_err(|error| match errno_of(&error) {
            Some(libc::EPERM | libc::EACCES) => LoaderError::PermissionDenied,
            _ => LoaderError::Load(format!("map {name}: {error}")),
        })?;
        maps.push((name, map, data));
    }
    let text_sections: HashSet<usize> = object
        .functions
        .keys()
        .map(|(section_index, _)| *section_index)
        .collect();
    object
        .relocate_maps(
            maps.iter()
                .map(|(name, map, data)| (name.as_str(), data.fd().as_fd().as_raw_fd(), map)),
            &text_sections,
        )
        .map_err(|error| LoaderError::Load(error.to_string()))?;
    object
        .relocate_calls(&text_sections)
        .map_err(|error| LoaderError::Load(error.to_string()))?;
    let program = object
        .programs
        .get(PROGRAM_NAME)
        .ok_or_else(|| LoaderError::Load(format!("no program named {PROGRAM_NAME}")))?;
    let function = object
        .functions
        .get(&program.function_key())
        .ok_or_else(|| LoaderError::Load(format!("no code for {PROGRAM_NAME}")))?;
    let program = bpf::load_xdp(PROGRAM_NAME, &function.instructions, &program.license)
        .map_err(load_error)?;

    let mut take = |wanted: &'static str, wrap: fn(MapData) -> Map| {
        let index =
            maps.iter()
                .position(|(name, _, _)| name == wanted)
                .ok_or(LoaderError::Map {
                    map: wanted,
                    message: "missing from the object file".into(),
                })?;
        Ok::<Map, LoaderError>(wrap(maps.swap_remove(index).2))
    };
    let mut loaded = Loaded {
        program,
        xsks: take(XSKS_MAP, Map::XskMap)?,
        config: take(CONFIG_MAP, Map::Array)?,
        counters: take(COUNTERS_MAP, Map::PerCpuArray)?,
    };
    set_config(&mut loaded.config, config, false)?;
    Ok(loaded)
}

fn read_counters(loaded: &Loaded) -> Result<SteerCounters, LoaderError> {
    let counters: PerCpuArray<&MapData, u64> =
        PerCpuArray::try_from(&loaded.counters).map_err(map_error(COUNTERS_MAP))?;
    let sum = |index: u32| -> Result<u64, LoaderError> {
        let per_cpu = counters.get(&index, 0).map_err(map_error(COUNTERS_MAP))?;
        Ok(per_cpu
            .iter()
            .fold(0u64, |total, value| total.wrapping_add(*value)))
    };
    Ok(SteerCounters {
        seen: sum(0)?,
        steered: sum(1)?,
        passed: sum(2)?,
        no_socket: sum(3)?,
        fragments: sum(4)?,
    })
}

fn set_config(
    map: &mut Map,
    config: &SteerConfig,
    pass_without_socket: bool,
) -> Result<(), LoaderError> {
    let mut array: Array<&mut MapData, SteerConfigValue> =
        Array::try_from(map).map_err(map_error(CONFIG_MAP))?;
    let value = SteerConfigValue {
        ipv4_addr: match config.address {
            IpAddr::V4(v4) => u32::from_ne_bytes(v4.octets()),
            IpAddr::V6(_) => 0,
        },
        port_min: *config.ports.start(),
        port_max: *config.ports.end(),
        ipv6_addr: match config.address {
            IpAddr::V4(_) => [0; 16],
            IpAddr::V6(v6) => v6.octets(),
        },
        pass_without_socket: u8::from(pass_without_socket),
        reserved: [0; 3],
    };
    array.set(0, value, 0).map_err(map_error(CONFIG_MAP))
}

fn map_error<E: std::fmt::Display>(map: &'static str) -> impl Fn(E) -> LoaderError {
    move |error| LoaderError::Map {
        map,
        message: error.to_string(),
    }
}

/// The errno at the bottom of an aya error chain, if there is one (aya's syscall errors
/// keep the `io::Error` as their source).
fn errno_of(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io_error) = error.downcast_ref::<io::Error>() {
            return io_error.raw_os_error();
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::root_or_skip;

    const OUR_IP: [u8; 4] = [10, 77, 0, 2];

    /// Runs the loaded program once over `frame` with BPF_PROG_TEST_RUN (rx queue 0, no
    /// socket in the XSKMAP) and returns its XDP action.
    fn test_run(loaded: &Loaded, frame: &[u8]) -> u32 {
        const BPF_PROG_TEST_RUN: libc::c_long = 10;
        /// The `test` member of `union bpf_attr` (<linux/bpf.h>), up to `batch_size`.
        #[repr(C, align(8))]
        #[derive(Default)]
        struct TestRunAttr {
            prog_fd: u32,
            retval: u32,
            data_size_in: u32,
            data_size_out: u32,
            data_in: u64,
            data_out: u64,
            repeat: u32,
            duration: u32,
            ctx_size_in: u32,
            ctx_size_out: u32,
            ctx_in: u64,
            ctx_out: u64,
            flags: u32,
            cpu: u32,
            batch_size: u32,
            _pad: u32,
        }
        let fd = loaded.program.as_raw_fd();
        let mut attr = TestRunAttr {
            prog_fd: u32::try_from(fd).unwrap(),
            data_size_in: u32::try_from(frame.len()).unwrap(),
            data_in: frame.as_ptr() as u64,
            repeat: 1,
            ..TestRunAttr::default()
        };
        // SAFETY: bpf(2) BPF_PROG_TEST_RUN reads `attr` (its declared size) and `frame`
        // through the pointer in it, both live for the call; no output buffers are given.
        let result = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_TEST_RUN,
                &raw mut attr,
                std::mem::size_of::<TestRunAttr>(),
            )
        };
        assert_eq!(
            result,
            0,
            "BPF_PROG_TEST_RUN: {}",
            io::Error::last_os_error()
        );
        attr.retval
    }

    const XDP_DROP: u32 = 1;
    const XDP_PASS: u32 = 2;

    /// Appends a 20-byte TCP SYN header (RFC 9293 §3.1) to `dst_port`, checksum unset (the
    /// program does not check it).
    fn push_tcp_syn(frame: &mut Vec<u8>, dst_port: u16) {
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&51000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&dst_port.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x02;
        frame.extend_from_slice(&tcp);
    }

    /// The program loaded (not attached) for `address` and ports 40000..=40099.
    fn load_for(address: std::net::IpAddr) -> Loaded {
        load(&SteerConfig {
            address,
            ports: 40000..=40099,
        })
        .unwrap()
    }

    /// Ethernet + IPv4 (+ 4 bytes of options when `ihl` is 6) + TCP SYN.
    fn tcp_frame(dst_ip: [u8; 4], dst_port: u16, frag_off: u16, ihl: u8) -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x40 | ihl, 0, 0, 0, 0, 1, 0, 0, 64, 6, 0, 0, 10, 77, 0, 1];
        ip[6..8].copy_from_slice(&frag_off.to_be_bytes());
        ip.extend_from_slice(&dst_ip);
        ip.resize(usize::from(ihl) * 4, 1); // options: NOPs
        frame.extend_from_slice(&ip);
        push_tcp_syn(&mut frame, dst_port);
        frame
    }

    /// During a hand-over from the raw driver a segment of the range with no socket on its
    /// queue goes to the kernel (where the packet socket takes it), counted as both; a
    /// first fragment is still dropped.
    #[test]
    fn program_passes_without_a_socket_during_a_hand_over() {
        if !root_or_skip("program_passes_without_a_socket_during_a_hand_over") {
            return;
        }
        let address = std::net::Ipv4Addr::from(OUR_IP).into();
        let mut loaded = load_for(address);
        let steer = SteerConfig {
            address,
            ports: 40000..=40099,
        };
        set_config(&mut loaded.config, &steer, true).unwrap();
        assert_eq!(test_run(&loaded, &tcp_frame(OUR_IP, 40007, 0, 5)), XDP_PASS);
        let counters = read_counters(&loaded).unwrap();
        assert_eq!((counters.no_socket, counters.passed), (1, 1));
        assert_eq!(
            test_run(&loaded, &tcp_frame(OUR_IP, 40007, 0x2000, 5)),
            XDP_DROP
        );
        // Back to the AF_XDP-only setting: dropped again.
        set_config(&mut loaded.config, &steer, false).unwrap();
        assert_eq!(test_run(&loaded, &tcp_frame(OUR_IP, 40007, 0, 5)), XDP_DROP);
    }

    #[test]
    fn program_matches_only_unfragmented_tcp_to_our_range() {
        if !root_or_skip("program_matches_only_unfragmented_tcp_to_our_range") {
            return;
        }
        let loaded = load_for(std::net::Ipv4Addr::from(OUR_IP).into());
        // Queue 0 has no socket: a frame the program takes for us is dropped (never passed,
        // or the kernel would answer it with a RST), every other frame passes.
        let cases: [(&str, Vec<u8>, bool); 8] = [
            ("in range", tcp_frame(OUR_IP, 40007, 0, 5), true),
            ("first port", tcp_frame(OUR_IP, 40000, 0, 5), true),
            ("last port", tcp_frame(OUR_IP, 40099, 0, 5), true),
            ("with IP options", tcp_frame(OUR_IP, 40050, 0, 6), true),
            ("DF set", tcp_frame(OUR_IP, 40050, 0x4000, 5), true),
            ("below range", tcp_frame(OUR_IP, 39999, 0, 5), false),
            ("above range", tcp_frame(OUR_IP, 40100, 0, 5), false),
            (
                "other address",
                tcp_frame([10, 77, 0, 3], 40007, 0, 5),
                false,
            ),
        ];
        let mut expected_matches = 0;
        for (name, frame, matches) in &cases {
            let expected = if *matches { XDP_DROP } else { XDP_PASS };
            let verdict = test_run(&loaded, frame);
            assert_eq!(verdict, expected, "{name}: {:?}", read_counters(&loaded));
            expected_matches += u64::from(*matches);
            let counters = read_counters(&loaded).unwrap();
            assert_eq!(counters.no_socket, expected_matches, "{name}");
        }
        // A first fragment to the range is dropped too (reassembled, it would draw a RST);
        // one to another port passes.
        assert_eq!(
            test_run(&loaded, &tcp_frame(OUR_IP, 40007, 0x2000, 5)),
            XDP_DROP
        );
        assert_eq!(
            test_run(&loaded, &tcp_frame(OUR_IP, 80, 0x2000, 5)),
            XDP_PASS
        );
        // a later fragment, a truncated TCP header, UDP and ARP all pass unmatched
        let later_fragment = tcp_frame(OUR_IP, 40007, 0x0010, 5);
        let truncated = tcp_frame(OUR_IP, 40007, 0, 5)[..14 + 20 + 10].to_vec();
        let mut udp = tcp_frame(OUR_IP, 40007, 0, 5);
        udp[14 + 9] = 17;
        let mut arp = tcp_frame(OUR_IP, 40007, 0, 5);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        for frame in [later_fragment, truncated, udp, arp] {
            assert_eq!(test_run(&loaded, &frame), XDP_PASS);
        }
        let counters = read_counters(&loaded).unwrap();
        let runs = cases.len() as u64 + 2 + 4;
        assert_eq!(counters.no_socket, expected_matches);
        assert_eq!(counters.fragments, 1);
        assert_eq!(counters.seen, runs);
        assert_eq!(counters.passed, runs - expected_matches - 1);
        assert_eq!(counters.steered, 0);
    }

    const OUR_IP6: [u8; 16] = [0xfd, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    /// Ethernet + IPv6 (+ an 8-byte Fragment header with `frag_off` when given, RFC 8200
    /// §4.5) + TCP SYN.
    fn tcp6_frame(dst_ip: [u8; 16], dst_port: u16, frag_off: Option<u16>) -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&[0x86, 0xdd]);
        let next_header = if frag_off.is_some() { 44 } else { 6 };
        let payload_len: u16 = if frag_off.is_some() { 28 } else { 20 };
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&payload_len.to_be_bytes());
        ip.extend_from_slice(&[next_header, 64]);
        ip.extend_from_slice(&[0xfd, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        ip.extend_from_slice(&dst_ip);
        frame.extend_from_slice(&ip);
        if let Some(frag_off) = frag_off {
            frame.extend_from_slice(&[6, 0]);
            frame.extend_from_slice(&frag_off.to_be_bytes());
            frame.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        }
        push_tcp_syn(&mut frame, dst_port);
        frame
    }

    #[test]
    fn program_drops_and_counts_ipv6_first_fragments_to_our_range() {
        if !root_or_skip("program_drops_and_counts_ipv6_first_fragments_to_our_range") {
            return;
        }
        let loaded = load_for(std::net::Ipv6Addr::from(OUR_IP6).into());
        const MORE: u16 = 0x0001; // M flag; the offset sits in the top 13 bits
        let mut other_ip = OUR_IP6;
        other_ip[15] = 3;
        let mut not_tcp = tcp6_frame(OUR_IP6, 40007, Some(MORE));
        not_tcp[14 + 40] = 17; // UDP behind the Fragment header
        // (name, frame, verdict, counted as a fragment)
        let cases: [(&str, Vec<u8>, u32, bool); 9] = [
            (
                "unfragmented, in range",
                tcp6_frame(OUR_IP6, 40007, None),
                XDP_DROP,
                false,
            ),
            (
                "first fragment",
                tcp6_frame(OUR_IP6, 40007, Some(MORE)),
                XDP_DROP,
                true,
            ),
            (
                "atomic fragment",
                tcp6_frame(OUR_IP6, 40099, Some(0)),
                XDP_DROP,
                true,
            ),
            (
                "first fragment, other port",
                tcp6_frame(OUR_IP6, 80, Some(MORE)),
                XDP_PASS,
                false,
            ),
            (
                "first fragment, other address",
                tcp6_frame(other_ip, 40007, Some(MORE)),
                XDP_PASS,
                false,
            ),
            (
                "later fragment",
                tcp6_frame(OUR_IP6, 40007, Some(1 << 3 | MORE)),
                XDP_PASS,
                false,
            ),
            (
                "last fragment",
                tcp6_frame(OUR_IP6, 40007, Some(185 << 3)),
                XDP_PASS,
                false,
            ),
            ("UDP fragment", not_tcp, XDP_PASS, false),
            (
                "truncated fragment header",
                tcp6_frame(OUR_IP6, 40007, Some(MORE))[..14 + 40 + 4].to_vec(),
                XDP_PASS,
                false,
            ),
        ];
        let mut fragments = 0;
        for (name, frame, expected, counted) in &cases {
            let verdict = test_run(&loaded, frame);
            assert_eq!(verdict, *expected, "{name}: {:?}", read_counters(&loaded));
            fragments += u64::from(*counted);
            assert_eq!(
                read_counters(&loaded).unwrap().fragments,
                fragments,
                "{name}"
            );
        }
        let counters = read_counters(&loaded).unwrap();
        let passed = cases.iter().filter(|case| case.2 == XDP_PASS).count() as u64;
        assert_eq!(counters.seen, cases.len() as u64);
        assert_eq!(counters.passed, passed);
        assert_eq!(counters.fragments, 2);
        assert_eq!(counters.no_socket, 1);
        assert_eq!(counters.steered, 0);
    }

    #[test]
    fn config_value_layout_matches_c() {
        assert_eq!(std::mem::size_of::<SteerConfigValue>(), 28);
        let value = SteerConfigValue {
            ipv4_addr: u32::from_ne_bytes([10, 0, 0, 2]),
            port_min: 1,
            port_max: 2,
            ipv6_addr: [0; 16],
            pass_without_socket: 0,
            reserved: [0; 3],
        };
        // the address bytes sit in memory in header order
        assert_eq!(value.ipv4_addr.to_ne_bytes(), [10, 0, 0, 2]);
    }

    #[test]
    fn embedded_object_is_bpf_elf() {
        assert_eq!(&PROGRAM[..4], b"\x7fELF");
        // e_machine EM_BPF = 247 (little-endian object on x86_64)
        assert_eq!(u16::from_le_bytes([PROGRAM[18], PROGRAM[19]]), 247);
    }
}
