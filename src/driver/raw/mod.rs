//! `raw` — the fallback driver: an AF_PACKET socket with a TPACKET_V3 receive ring.
//!
//! Follows: packet(7), Documentation/networking/packet_mmap.rst,
//! Documentation/networking/filter.rst.
//!
//! For NICs and kernels without XDP. Receive: the kernel copies every frame that passes our
//! classic-BPF filter ([`filter`]: IPv4 TCP to our address and port range) into an mmapped
//! ring of blocks ([`ring`]); frames are handed to the engine in place and a block goes back
//! to the kernel once all its frames have been handed out. Transmit: frames are written
//! into buffers of our own and leave in one sendmmsg(2) per batch ([`tx`] says why).
//!
//! The kernel still sees every frame we receive: the caller must also hold a
//! [`crate::net::nft::NftGuard`], or the kernel answers our peer's segments with RSTs.
//! AF_PACKET taps frames before netfilter, so that table does not hide them from us. (A
//! tc/tcx drop would: our socket is bound to ETH_P_IP, whose taps run after tc ingress;
//! docs/design.md, "The raw driver's guard", says why the guard is an nftables table.)
//!
//! Generic receive offload would merge consecutive segments into one super-frame larger
//! than the MTU before AF_PACKET sees them; [`RawDriver::open`] turns GRO off on the
//! interface for the driver's lifetime (when it was on) and turns it back on in `Drop`.
//!
//! Outgoing frames: an AF_PACKET socket bound to ETH_P_ALL also gets the frames the host
//! itself sends (never those it sent itself). Ours is bound to ETH_P_IP, which the transmit
//! tap does not serve; it also asks the kernel not to (PACKET_IGNORE_OUTGOING, Linux 4.20),
//! and the ring reader skips any frame marked PACKET_OUTGOING that still arrives. (The
//! outgoing-frame test fails only with all three removed; checked by hand.)

//!
//! A run holds, in this order (dropped in reverse):
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use xdpget::driver::Driver;
//! use xdpget::driver::raw::{RawConfig, RawDriver};
//! use xdpget::net::{nft::NftGuard, ports::ReservedPorts};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (addr, ports) = (Ipv4Addr::new(10, 77, 0, 1), 40000..=40999);
//! let _reserved = ReservedPorts::reserve(ports.clone())?; // the kernel's sockets stay off
//! let _quiet = NftGuard::install(addr, ports.clone())?; // the kernel's TCP stays quiet
//! let mut driver = RawDriver::open(&RawConfig::new("xg-c0", addr, ports))?;
//! let now = driver.now();
//! let _got = driver.receive(64, |frame| println!("{} bytes at {now}", frame.len()))?;
//! # Ok(())
//! # }
//! ```

#![allow(unsafe_code)]

pub mod filter;
mod recv;
mod ring;
mod socket;
mod tx;

#[cfg(test)]
pub(crate) mod testframe;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::{Driver, DriverError, DriverStats};
use crate::ledger;
use crate::time::Instant;
use recv::RecvBatch;
use ring::{RingGeometry, RxRing};
use socket::PacketSocket;
use tx::TxBatch;

/// Bytes of the Ethernet II header in front of every frame.
const ETHERNET_HEADER_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// What [`RawDriver::open`] needs; [`RawConfig::new`] fills in sensible ring sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawConfig {
    /// The interface to send and receive on, e.g. `eth0`.
    pub interface: String,
    /// Our address on that interface (IPv4 or IPv6): the filter passes segments to it only,
    /// and the socket is bound to its ethertype.
    pub local_addr: IpAddr,
    /// Our local port range: the filter passes segments to these ports only.
    pub ports: RangeInclusive<u16>,
    /// Receive ring block size in bytes: a power of two, a multiple of the page size.
    pub block_size: usize,
    /// Receive ring blocks.
    pub block_count: usize,
    /// A block that is not full goes to us after this many milliseconds anyway. This bounds
    /// the extra latency a lightly loaded ring adds (the ACK clock of a slow transfer).
    pub block_timeout_ms: u32,
    /// Frames per transmit batch (at most 64).
    pub tx_batch: usize,
    /// Turn GRO off while the driver runs (restored on drop).
    pub disable_gro: bool,
    /// Receive through a TPACKET_V3 ring (fast for long transfers); false: recvmmsg(2)
    /// from the socket's queue, which spares the RCU grace period the ring's set-up and
    /// teardown each cost (`recv.rs`). The block sizes above then go unused.
    pub rx_ring: bool,
    /// The socket's receive buffer in bytes, when not the system default
    /// (SO_RCVBUFFORCE, or SO_RCVBUF up to `rmem_max` without CAP_NET_ADMIN): what may
    /// queue between two receive calls without a ring.
    pub receive_buffer: Option<usize>,
}

impl RawConfig {
    /// 64 blocks of 256 KiB (16 MiB of ring, about 8000 full-size frames), 1 ms block
    /// timeout, batches of 64 frames, GRO off.
    pub fn new(
        interface: &str,
        local_addr: impl Into<IpAddr>,
        ports: RangeInclusive<u16>,
    ) -> RawConfig {
        RawConfig {
            interface: interface.to_owned(),
            local_addr: local_addr.into(),
            ports,
            block_size: 1 << 18,
            block_count: 64,
            block_timeout_ms: 1,
            tx_batch: tx::MAX_BATCH,
            disable_gro: true,
            rx_ring: true,
            receive_buffer: None,
        }
    }

    /// As [`RawConfig::new`], but without the receive ring and with a 16 MiB receive
    /// buffer: ready in well under a millisecond, for the start of a download
    /// (`driver::handover`).
    pub fn without_ring(
        interface: &str,
        local_addr: impl Into<IpAddr>,
        ports: RangeInclusive<u16>,
    ) -> RawConfig {
        RawConfig {
            rx_ring: false,
            receive_buffer: Some(16 << 20),
            ..RawConfig::new(interface, local_addr, ports)
        }
    }
}

/// Where received frames come from.
#[derive(Debug)]
enum Rx {
    /// A TPACKET_V3 ring mapped from the kernel.
    Ring(RxRing),
    /// recvmmsg(2) from the socket's queue into buffers of our own.
    Socket(RecvBatch),
}

/// The AF_PACKET driver. See the module documentation.
#[derive(Debug)]
pub struct RawDriver {
    // Field order is drop order: the ring is unmapped before the socket closes.
    rx: Rx,
    socket: PacketSocket,
    tx: TxBatch,
    interface: String,
    max_frame_len: usize,
    /// GRO was on and we turned it off: turn it back on in Drop.
    restore_gro: bool,
    /// The ledger note of the GRO change, removed once GRO is back on.
    gro_note: Option<ledger::Note>,
    stats: DriverStats,
    /// Frames the kernel dropped because the ring was full, read from PACKET_STATISTICS
    /// (which resets on every read, so the running sum lives here).
    kernel_drops: Cell<u64>,
}

fn io_error(context: &'static str) -> impl FnOnce(std::io::Error) -> DriverError {
    move |source| DriverError::Io { context, source }
}

impl RawDriver {
    /// Opens the socket, sets up ring and filter, then binds: no frame outside the filter
    /// is ever queued, and nothing is queued before the filter is in place.
    pub fn open(config: &RawConfig) -> Result<RawDriver, DriverError> {
        let (first, last) = (*config.ports.start(), *config.ports.end());
        if first > last {
            return Err(DriverError::Unsupported(format!(
                "the port range {first}-{last} is empty"
            )));
        }
        let socket = PacketSocket::open().map_err(io_error(
            "cannot open an AF_PACKET socket (xdpget needs root or CAP_NET_RAW)",
        ))?;
        let ifindex = socket
            .interface_index(&config.interface)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::ENODEV) => DriverError::Unsupported(format!(
                    "interface {} does not exist",
                    config.interface
                )),
                _ => DriverError::Io {
                    context: "cannot look up the interface",
                    source,
                },
            })?;
        let mtu = socket
            .interface_mtu(&config.interface)
            .map_err(io_error("cannot read the interface's MTU"))?;
        let max_frame_len = mtu + ETHERNET_HEADER_LEN;

        let geometry = RingGeometry {
            block_size: config.block_size,
            block_count: config.block_count,
            // Only a sanity bound for TPACKET_V3, which packs frames by their real length.
            frame_size: (max_frame_len + 128)
                .next_multiple_of(libc::TPACKET_ALIGNMENT)
                .min(config.block_size),
            retire_timeout_ms: config.block_timeout_ms.max(1),
        };
        let rx = if config.rx_ring {
            let request = geometry.request().map_err(DriverError::Unsupported)?;
            socket
                .set_version(libc::tpacket_versions::TPACKET_V3 as libc::c_int)
                .map_err(io_error("this kernel has no TPACKET_V3 packet rings"))?;
            socket
                .set_rx_ring(&request)
                .map_err(io_error("cannot set up the packet receive ring"))?;
            Rx::Ring(
                RxRing::map(&socket, &geometry)
                    .map_err(io_error("cannot map the packet receive ring"))?,
            )
        } else {
            Rx::Socket(RecvBatch::new(max_frame_len))
        };
        if let Some(bytes) = config.receive_buffer {
            socket
                .set_receive_buffer(bytes)
                .map_err(io_error("cannot size the packet socket's receive buffer"))?;
        }
        socket
            .attach_filter(&filter::tcp_to(config.local_addr, config.ports.clone()))
            .map_err(io_error("cannot attach the socket filter"))?;
        socket
            .ignore_outgoing()
            .map_err(io_error("cannot set PACKET_IGNORE_OUTGOING"))?;

        // GRO a crashed xdpget turned off stays off until someone turns it on again.
        for interface in ledger::take_stale(GRO_LEDGER_KIND) {
            let _ = socket.set_gro(interface.trim(), true);
        }
        let mut gro_note = None;
        if config.disable_gro {
            // An interface without ethtool support (EOPNOTSUPP) has no GRO to turn off.
            if let Ok(true) = socket.gro(&config.interface) {
                socket
                    .set_gro(&config.interface, false)
                    .map_err(io_error("cannot turn generic receive offload off"))?;
                // A note for the next run in case this one is killed; without it GRO stays off
                // after a kill -9, which slows the kernel's own TCP but breaks nothing.
                gro_note = Some(ledger::Note::write(GRO_LEDGER_KIND, &config.interface).ok());
            }
        }
        let restore_gro = gro_note.is_some();
        let driver = RawDriver {
            rx,
            socket,
            tx: TxBatch::new(config.tx_batch, max_frame_len),
            interface: config.interface.clone(),
            max_frame_len,
            restore_gro,
            gro_note: gro_note.flatten(),
            stats: DriverStats::default(),
            kernel_drops: Cell::new(0),
        };
        // Built before bind so that Drop turns GRO back on if bind fails.
        driver
            .socket
            .bind(
                ifindex,
                match config.local_addr {
                    IpAddr::V4(_) => ETHERTYPE_IPV4,
                    IpAddr::V6(_) => ETHERTYPE_IPV6,
                },
            )
            .map_err(io_error("cannot bind the packet socket to the interface"))?;
        Ok(driver)
    }

    /// The interface this driver runs on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Bytes received so far (no system call, unlike [`Driver::stats`]).
    pub fn received_bytes(&self) -> u64 {
        self.stats.rx_bytes
    }

    /// A second descriptor of the packet socket, for a teardown that closes it in another
    /// process (closing a packet socket waits for an RCU grace period).
    pub fn socket_copy(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        self.socket.try_clone_fd()
    }
}

/// CLOCK_MONOTONIC as an [`Instant`].
pub fn monotonic_now() -> Instant {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a live, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    Instant::from_micros(secs * 1_000_000 + nanos / 1_000)
}

impl Driver for RawDriver {
    fn now(&self) -> Instant {
        monotonic_now()
    }

    fn receive<F: FnMut(&[u8])>(&mut self, max: usize, mut f: F) -> Result<usize, DriverError> {
        if max == 0 {
            return Ok(0);
        }
        let ring = match &mut self.rx {
            Rx::Ring(ring) => ring,
            Rx::Socket(batch) => {
                let mut handed = 0;
                while handed < max {
                    let got = batch
                        .receive(&self.socket, max - handed, &mut f)
                        .map_err(io_error("cannot receive on the packet socket"))?;
                    handed += got.frames;
                    self.stats.rx_frames += got.frames as u64;
                    self.stats.rx_bytes += got.bytes;
                    self.stats.rx_dropped += got.truncated;
                    if !got.more {
                        break;
                    }
                }
                return Ok(handed);
            }
        };
        let mut handed = 0;
        let stats = &mut self.stats;
        ring.for_each(|frame| {
            if frame.outgoing {
                return true;
            }
            if frame.data.len() < frame.wire_len {
                // Truncated (larger than a block, or snapped by the filter): unusable.
                stats.rx_dropped += 1;
                return true;
            }
            f(frame.data);
            stats.rx_frames += 1;
            stats.rx_bytes += frame.data.len() as u64;
            handed += 1;
            handed < max
        });
        Ok(handed)
    }

    fn transmit<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        mut f: F,
    ) -> Result<usize, DriverError> {
        let mut queued = 0;
        while queued < max {
            if self.tx.is_full() {
                self.flush()?;
            }
            let Some(buffer) = self.tx.next_buffer() else {
                break;
            };
            let len = f(buffer);
            if len == 0 {
                break;
            }
            if len > self.max_frame_len {
                self.stats.tx_dropped += 1;
                continue;
            }
            self.tx.commit(len);
            queued += 1;
        }
        Ok(queued)
    }

    fn flush(&mut self) -> Result<(), DriverError> {
        if self.tx.queued() == 0 {
            return Ok(());
        }
        let outcome = self
            .tx
            .flush(&self.socket)
            .map_err(io_error("cannot send on the packet socket"))?;
        self.stats.tx_frames += outcome.sent_frames;
        self.stats.tx_bytes += outcome.sent_bytes;
        self.stats.tx_dropped += outcome.dropped_frames;
        Ok(())
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DriverError> {
        if let Rx::Ring(ring) = &self.rx
            && ring.has_frames()
        {
            return Ok(());
        }
        self.stats.idle_waits += 1;
        let timeout = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(self.now());
                if left == Duration::ZERO {
                    return Ok(());
                }
                Some(left)
            }
            None => None,
        };
        self.socket
            .poll_readable(timeout)
            .map_err(io_error("cannot wait on the packet socket"))
    }

    fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    fn stats(&self) -> DriverStats {
        if let Ok((_, drops)) = self.socket.take_statistics() {
            self.kernel_drops
                .set(self.kernel_drops.get() + u64::from(drops));
        }
        DriverStats {
            rx_dropped: self.stats.rx_dropped + self.kernel_drops.get(),
            ..self.stats
        }
    }
}

impl Drop for RawDriver {
    fn drop(&mut self) {
        if !self.restore_gro {
            return;
        }
        match self.socket.set_gro(&self.interface, true) {
            Ok(()) => {
                if let Some(note) = self.gro_note.take() {
                    note.remove();
                }
            }
            // CAP_NET_ADMIN was dropped after set-up (cli::privileges): the note stays, and
            // the clean-up keeper, which kept the capability, turns GRO on from it.
            Err(error) if error.raw_os_error() == Some(libc::EPERM) => {}
            Err(error) => eprintln!(
                "xdpget: could not turn generic receive offload back on for {}: {error}",
                self.interface
            ),
        }
    }
}

/// Turns GRO back on where process `pid` (ending, its driver without CAP_NET_ADMIN) or a
/// dead xdpget turned it off, from their ledger notes: the clean-up keeper's work
/// (`cli::privileges::CleanupKeeper`), which has CAP_NET_ADMIN and CAP_NET_RAW.
pub fn restore_gro_left_by(pid: u32) -> std::io::Result<()> {
    let notes = ledger::take_left_by(GRO_LEDGER_KIND, pid);
    if notes.is_empty() {
        return Ok(());
    }
    let socket = PacketSocket::open()?;
    for interface in notes {
        socket.set_gro(interface.trim(), true)?;
    }
    Ok(())
}

/// The ledger kind of interfaces whose GRO the raw driver turned off.
const GRO_LEDGER_KIND: &str = "gro-off";
