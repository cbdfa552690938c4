//! The AF_PACKET socket: creation, options, binding and the interface ioctls it answers.
//!
//! Follows: packet(7), netdevice(7), Documentation/networking/packet_mmap.rst,
//! Documentation/networking/filter.rst (SO_ATTACH_FILTER).
//!
//! Every system call here is a thin wrapper that turns the C result into `io::Result`;
//! the order in which they are used lives in `super::RawDriver::open`.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::filter::Instruction;

/// `ETHTOOL_GGRO` / `ETHTOOL_SGRO` from `linux/ethtool.h`.
const ETHTOOL_GGRO: u32 = 0x0000_002b;
const ETHTOOL_SGRO: u32 = 0x0000_002c;

/// `struct ethtool_value` from `linux/ethtool.h`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// An `AF_PACKET`, `SOCK_RAW` socket (frames with their Ethernet header).
#[derive(Debug)]
pub(super) struct PacketSocket {
    fd: OwnedFd,
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

impl PacketSocket {
    /// A packet socket that receives nothing yet: protocol 0 means no frames are queued
    /// until `bind` names a protocol, so the filter is in place before the first frame.
    pub(super) fn open() -> io::Result<PacketSocket> {
        // SAFETY: socket(2) takes plain integers and returns a new descriptor or -1.
        let fd = check(unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PacketSocket { fd })
    }

    fn set_option<T>(&self, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
        let len = libc::socklen_t::try_from(mem::size_of::<T>())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `value` points to a live T of `len` bytes for the duration of the call;
        // the kernel copies it and keeps no pointer.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (value as *const T).cast::<c_void>(),
                len,
            )
        })
        .map(drop)
    }

    /// PACKET_VERSION: the ring layout (must precede PACKET_RX_RING).
    pub(super) fn set_version(&self, version: libc::c_int) -> io::Result<()> {
        self.set_option(libc::SOL_PACKET, libc::PACKET_VERSION, &version)
    }

    /// PACKET_RX_RING: asks the kernel for a ring of `request` geometry.
    pub(super) fn set_rx_ring(&self, request: &libc::tpacket_req3) -> io::Result<()> {
        self.set_option(libc::SOL_PACKET, libc::PACKET_RX_RING, request)
    }

    /// PACKET_IGNORE_OUTGOING (Linux 4.20): frames this host sends are not looped back to
    /// the socket. Returns false where the kernel lacks the option.
    pub(super) fn ignore_outgoing(&self) -> io::Result<bool> {
        match self.set_option(
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &1 as &libc::c_int,
        ) {
            Ok(()) => Ok(true),
            Err(error) if error.raw_os_error() == Some(libc::ENOPROTOOPT) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// SO_ATTACH_FILTER with a classic-BPF program.
    pub(super) fn attach_filter(&self, program: &[Instruction]) -> io::Result<()> {
        let mut filters: Vec<libc::sock_filter> = program
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let program = libc::sock_fprog {
            len: u16::try_from(filters.len())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            filter: filters.as_mut_ptr(),
        };
        // The kernel copies the instructions during the call; `filters` outlives it.
        self.set_option(libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &program)
    }

    /// Binds to one interface and one EtherType; frames start flowing after this.
    pub(super) fn bind(&self, ifindex: libc::c_int, ethertype: u16) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut address: libc::sockaddr_ll = unsafe { mem::zeroed() };
        address.sll_family = libc::AF_PACKET as libc::c_ushort;
        address.sll_protocol = ethertype.to_be();
        address.sll_ifindex = ifindex;
        let len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `address` is a valid sockaddr_ll of `len` bytes, alive during the call.
        check(unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&raw const address).cast::<libc::sockaddr>(),
                len,
            )
        })
        .map(drop)
    }

    /// PACKET_STATISTICS for a TPACKET_V3 socket: (frames seen, frames dropped) since the
    /// last call (the kernel resets the counters on every read).
    pub(super) fn take_statistics(&self) -> io::Result<(u32, u32)> {
        // SAFETY: tpacket_stats_v3 is plain old data; all-zero is a valid value.
        let mut stats: libc::tpacket_stats_v3 = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `stats` and `len` are live and writable; the kernel writes at most `len`
        // bytes into `stats` and the actual length into `len`.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut stats).cast::<c_void>(),
                &mut len,
            )
        })?;
        Ok((stats.tp_packets, stats.tp_drops))
    }

    /// An `ifreq` naming `interface`; InvalidInput if the name cannot be one.
    fn interface_request(interface: &str) -> io::Result<libc::ifreq> {
        // SAFETY: ifreq is plain old data (a name and a union of integers and pointers);
        // all-zero is a valid value.
        let mut request: libc::ifreq = unsafe { mem::zeroed() };
        let name = interface.as_bytes();
        if name.is_empty() || name.len() >= request.ifr_name.len() || name.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("'{interface}' is not a valid interface name"),
            ));
        }
        for (slot, &byte) in request.ifr_name.iter_mut().zip(name) {
            *slot = byte as libc::c_char;
        }
        Ok(request)
    }

    fn interface_ioctl(&self, request: libc::c_ulong, ifreq: &mut libc::ifreq) -> io::Result<()> {
        // SAFETY: `ifreq` is a valid, writable ifreq for the whole call; for the requests
        // used here (SIOCGIFINDEX, SIOCGIFMTU, SIOCETHTOOL) the kernel reads the name and
        // reads/writes the union member the request names.
        check(unsafe { libc::ioctl(self.fd.as_raw_fd(), request, &raw mut *ifreq) }).map(drop)
    }

    /// The interface's index (SIOCGIFINDEX), in this thread's network namespace.
    pub(super) fn interface_index(&self, interface: &str) -> io::Result<libc::c_int> {
        let mut request = Self::interface_request(interface)?;
        self.interface_ioctl(libc::SIOCGIFINDEX, &mut request)?;
        // SAFETY: SIOCGIFINDEX succeeded, so the kernel filled in ifru_ifindex.
        Ok(unsafe { request.ifr_ifru.ifru_ifindex })
    }

    /// The interface's MTU (SIOCGIFMTU): the largest IP packet it carries.
    pub(super) fn interface_mtu(&self, interface: &str) -> io::Result<usize> {
        let mut request = Self::interface_request(interface)?;
        self.interface_ioctl(libc::SIOCGIFMTU, &mut request)?;
        // SAFETY: SIOCGIFMTU succeeded, so the kernel filled in ifru_mtu.
        let mtu = unsafe { request.ifr_ifru.ifru_mtu };
        usize::try_from(mtu).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
    }

    fn ethtool_value(&self, interface: &str, value: &mut EthtoolValue) -> io::Result<()> {
        let mut request = Self::interface_request(interface)?;
        request.ifr_ifru.ifru_data = (value as *mut EthtoolValue).cast::<libc::c_char>();
        self.interface_ioctl(libc::SIOCETHTOOL, &mut request)
    }

    /// Whether generic receive offload is on (ETHTOOL_GGRO).
    pub(super) fn gro(&self, interface: &str) -> io::Result<bool> {
        let mut value = EthtoolValue {
            cmd: ETHTOOL_GGRO,
            data: 0,
        };
        self.ethtool_value(interface, &mut value)?;
        Ok(value.data != 0)
    }

    /// Turns generic receive offload on or off (ETHTOOL_SGRO).
    pub(super) fn set_gro(&self, interface: &str, on: bool) -> io::Result<()> {
        let mut value = EthtoolValue {
            cmd: ETHTOOL_SGRO,
            data: u32::from(on),
        };
        self.ethtool_value(interface, &mut value)
    }

    /// Sends `messages` in one sendmmsg(2) without blocking; returns how many left.
    ///
    /// # Safety
    /// Every `msghdr` in `messages` must point to iovecs, and those to buffers, that are
    /// valid for reads for the duration of the call.
    pub(super) unsafe fn send_batch(&self, messages: &mut [libc::mmsghdr]) -> io::Result<usize> {
        let count = libc::c_uint::try_from(messages.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `messages` is a live, writable array of `count` headers (the kernel writes
        // msg_len), and the caller vouches for the buffers they point to.
        let sent = check(unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                messages.as_mut_ptr(),
                count,
                libc::MSG_DONTWAIT,
            )
        })?;
        usize::try_from(sent).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
    }

    /// A second descriptor of this socket.
    pub(super) fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }

    /// Sets the receive buffer to `bytes`: SO_RCVBUFFORCE (past `rmem_max`, needs
    /// CAP_NET_ADMIN), else SO_RCVBUF (capped by the kernel at `rmem_max`).
    pub(super) fn set_receive_buffer(&self, bytes: usize) -> io::Result<()> {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        self.set_option(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &value)
            .or_else(|_| self.set_option(libc::SOL_SOCKET, libc::SO_RCVBUF, &value))
    }

    /// Waits until the socket is readable or `timeout` passes (None: no limit).
    pub(super) fn poll_readable(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        let mut poll_fd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timespec = timeout.map(|t| libc::timespec {
            tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
        });
        let timespec_ptr = timespec
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `poll_fd` is one live pollfd; `timespec_ptr` is null or points to a live
        // timespec; a null signal mask leaves the mask unchanged.
        match check(unsafe { libc::ppoll(&mut poll_fd, 1, timespec_ptr, std::ptr::null()) }) {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(error) => Err(error),
        }
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
