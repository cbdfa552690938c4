//! The few raw syscalls the AF_XDP driver makes itself: the monotonic clock, poll(2) on the
//! sockets and the busy-poll socket options. Each wraps one libc call.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

use crate::time::Instant;

// <asm-generic/socket.h>; libc does not export these for every architecture.
const SO_BUSY_POLL: libc::c_int = 46;
const SO_PREFER_BUSY_POLL: libc::c_int = 69;
const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

/// CLOCK_MONOTONIC as a crate `Instant` (microseconds since boot).
pub(crate) fn monotonic_now() -> Instant {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux,
    // so the call cannot fail and leaves `now` initialised.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    Instant::from_micros(
        seconds
            .saturating_mul(1_000_000)
            .saturating_add(nanos / 1000),
    )
}

/// Waits until one of `fds` is readable or `timeout_ms` passes (-1: no timeout). Polling
/// an AF_XDP socket also wakes the kernel's rx processing when the fill ring asked for it.
/// `pollfds` is caller-owned scratch so that the wait allocates nothing.
pub(crate) fn poll_readable(pollfds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    for pollfd in pollfds.iter_mut() {
        pollfd.events = libc::POLLIN;
        pollfd.revents = 0;
    }
    let count = libc::nfds_t::try_from(pollfds.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: `pollfds` is a valid slice of `count` pollfd structs that poll may write to.
    let ready = unsafe { libc::poll(pollfds.as_mut_ptr(), count, timeout_ms) };
    if ready < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(error);
    }
    Ok(usize::try_from(ready).unwrap_or(0))
}

/// A pollfd for `fd`, to fill the scratch array with.
pub(crate) fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Turns on busy polling for `fd` (Linux 5.11+ for the preferred mode and budget):
/// SO_PREFER_BUSY_POLL, SO_BUSY_POLL (µs) and SO_BUSY_POLL_BUDGET (packets per poll).
/// Returns the first option the kernel refused, with its error.
pub(crate) fn enable_busy_poll(
    fd: RawFd,
    busy_poll_micros: u32,
    budget: u32,
) -> Result<(), (&'static str, io::Error)> {
    let options = [
        ("SO_PREFER_BUSY_POLL", SO_PREFER_BUSY_POLL, 1),
        ("SO_BUSY_POLL", SO_BUSY_POLL, busy_poll_micros),
        ("SO_BUSY_POLL_BUDGET", SO_BUSY_POLL_BUDGET, budget),
    ];
    for (name, option, value) in options {
        let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
        let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` is a live c_int and `size` is its size; the kernel only reads it.
        let result = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&raw const value).cast::<libc::c_void>(),
                size,
            )
        };
        if result != 0 {
            return Err((name, io::Error::last_os_error()));
        }
    }
    Ok(())
}

// <linux/sockios.h>, <linux/ethtool.h>
const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_channels`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// The number of rx queues in use on `interface` (ETHTOOL_GCHANNELS: rx-only plus combined
/// channels), or `None` when the driver does not report channels. This is the kernel's
/// `real_num_rx_queues`, the bound an AF_XDP bind checks; IFLA_NUM_RX_QUEUES counts the
/// allocated queues, which can be more.
pub(crate) fn rx_queue_count(interface: &str) -> Option<u32> {
    let name = interface.as_bytes();
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    let socket = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0)).ok()?;
    let mut channels = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name) {
        *slot = *byte as libc::c_char;
    }
    request.ifr_ifru.ifru_data = (&raw mut channels).cast::<libc::c_char>();
    use std::os::fd::AsRawFd as _;
    // SAFETY: SIOCETHTOOL with a NUL-terminated name and `ifru_data` pointing at a live,
    // writable ethtool_channels that outlives the call; the kernel writes only that struct.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCETHTOOL, &mut request) };
    if result != 0 {
        return None;
    }
    let count = channels.rx_count.saturating_add(channels.combined_count);
    (count > 0).then_some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_does_not_go_back() {
        let first = monotonic_now();
        let second = monotonic_now();
        assert!(second >= first);
        assert!(first > Instant::ZERO);
    }

    #[test]
    fn loopback_reports_no_channels() {
        assert_eq!(rx_queue_count("lo"), None);
        assert_eq!(rx_queue_count("an-overlong-interface-name"), None);
    }

    #[test]
    fn poll_with_zero_timeout_on_nothing_returns() {
        assert_eq!(poll_readable(&mut [], 0).unwrap(), 0);
    }
}
