//! `xdpget serve [DIR]`: the static file server on a real interface.
//!
//! Set-up, in order (each undone on the way out, in reverse, by drop order): the interface
//! and our address, the listening port reserved from the kernel's ephemeral range, the
//! driver (AF_XDP: the XDP program steers our address and the listening port into the
//! sockets and drops what it cannot redirect; raw: a packet socket and an nftables table
//! that keeps the kernel's TCP from answering the port with RSTs). Then the capabilities
//! are dropped (docs/design.md "Least privilege") and the loop runs on this thread until
//! SIGINT, SIGTERM, SIGHUP or SIGQUIT: every connection is reset, the resets are sent, and
//! the driver, guard and reservation go.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::args::{DriverChoice, ServeArgs};
use super::exit::Exit;
use super::privileges;
use super::signals;
use crate::driver::Driver;
use crate::driver::afxdp::loader::SteerConfig;
use crate::driver::afxdp::{AfXdpConfig, AfXdpDriver};
use crate::driver::raw::{RawConfig, RawDriver};
use crate::engine::host::Host;
use crate::engine::network::NicDevice;
use crate::net::iface::Interface;
use crate::net::nft::NftGuard;
use crate::net::ports::ReservedPorts;
use crate::serve::opener::Opener;
use crate::serve::run::{LoopOptions, serve};
use crate::serve::{
    AccessLogEntry, LogSink, Root, ServeConfig, SessionLimits, listen_with_opener,
    server_tcp_config,
};
use crate::tcp;
use crate::wire::EthernetAddress;

/// The port served when `--listen` names none.
pub const DEFAULT_PORT: u16 = 8080;

/// The send buffer of each connection: enough for a LAN's bandwidth-delay product at
/// 10 Gbit/s and 1 ms, and the bound of what one connection holds.
const SEND_BUFFER: usize = 2 << 20;

/// Field order is drop order: the driver (and XDP program) first, then the nftables table,
/// then the port reservation.
struct Served {
    driver: NicDevice,
    _guard: Option<NftGuard>,
    _ports: ReservedPorts,
    interface: Interface,
    local: SocketAddr,
}

/// `--listen`: `ADDR:PORT`, `[V6]:PORT`, `ADDR` or `PORT`.
pub fn parse_listen(text: &str) -> Result<(Option<IpAddr>, u16), String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok((Some(address.ip()), address.port()));
    }
    if let Ok(address) = text.parse::<IpAddr>() {
        return Ok((Some(address), DEFAULT_PORT));
    }
    match text.trim_start_matches(':').parse::<u16>() {
        Ok(port) if port > 0 => Ok((None, port)),
        _ => Err(format!("'{text}' is not ADDR:PORT, ADDR or PORT")),
    }
}

/// Opens the interface, the port reservation, the driver and (raw driver) the guard.
fn set_up(args: &ServeArgs) -> Result<(Served, Vec<String>), String> {
    let (address, port) = match &args.listen {
        Some(text) => parse_listen(text).map_err(|e| format!("--listen: {e}"))?,
        None => (None, DEFAULT_PORT),
    };
    let name = match &args.iface {
        Some(name) => name.clone(),
        None => Interface::default_route_name().map_err(|e| e.to_string())?,
    };
    let interface = Interface::by_name(&name).map_err(|e| e.to_string())?;
    let local = match address {
        Some(address) if !address.is_unspecified() => {
            let own = [
                interface.ipv4.map(IpAddr::V4),
                interface.ipv6.map(IpAddr::V6),
            ];
            if !own.contains(&Some(address)) {
                return Err(format!(
                    "{address} is not the address of {name} (serve listens on one address of \
                     one interface; give --iface or the interface's own address)"
                ));
            }
            address
        }
        _ => IpAddr::V4(interface.require_ipv4().map_err(|e| e.to_string())?),
    };
    let ports = ReservedPorts::reserve(port..=port).map_err(|e| e.to_string())?;
    let mut notices = Vec::new();
    let afxdp = || {
        let steer = SteerConfig {
            address: local,
            ports: port..=port,
        };
        let config = AfXdpConfig {
            frame_size: AfXdpConfig::frame_size_for_mtu(interface.mtu),
            ..AfXdpConfig::default()
        };
        AfXdpDriver::open(&interface, &steer, &config)
    };
    let raw = || RawDriver::open(&RawConfig::new(&interface.name, local, port..=port));
    let driver = match args.driver {
        DriverChoice::Afxdp => NicDevice::AfXdp(Box::new(afxdp().map_err(|e| e.to_string())?)),
        DriverChoice::Raw => NicDevice::Raw(Box::new(raw().map_err(|e| e.to_string())?)),
        DriverChoice::Auto => match afxdp() {
            Ok(driver) => NicDevice::AfXdp(Box::new(driver)),
            Err(e) => {
                notices.push(format!(
                    "AF_XDP is not available on {name} ({e}); using the raw-socket driver"
                ));
                NicDevice::Raw(Box::new(raw().map_err(|e| e.to_string())?))
            }
        },
    };
    // Only the raw driver lets the kernel see the port's segments (docs/design.md).
    let guard = match driver {
        NicDevice::Raw(_) => {
            Some(NftGuard::install(local, port..=port).map_err(|e| e.to_string())?)
        }
        NicDevice::AfXdp(_) => None,
    };
    Ok((
        Served {
            driver,
            _guard: guard,
            _ports: ports,
            interface,
            local: SocketAddr::new(local, port),
        },
        notices,
    ))
}

pub fn main(args: &ServeArgs) -> ExitCode {
    let root = match Root::new(&args.dir) {
        Ok(root) => Arc::new(root),
        Err(e) => {
            eprintln!("xdpget serve: {}: {e}", args.dir.display());
            return Exit::FileIo.into();
        }
    };
    if let Some(Err(e)) = args.listen.as_deref().map(parse_listen) {
        eprintln!("xdpget serve: --listen: {e}");
        return Exit::Parse.into();
    }
    if let Err(message) = privileges::check() {
        eprintln!("xdpget serve: {message}");
        return Exit::Generic.into();
    }
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = signals::install(&stop) {
        eprintln!("xdpget serve: cannot handle signals: {e}");
        return Exit::Generic.into();
    }
    let (mut served, notices) = match set_up(args) {
        Ok(set) => set,
        Err(message) => {
            eprintln!("xdpget serve: {message}");
            return Exit::Network.into();
        }
    };
    for notice in notices {
        eprintln!("xdpget serve: {notice}");
    }
    // What still needs CAP_NET_ADMIN at the end (GRO back on after the raw driver) is done
    // by a clean-up process that keeps it; this one keeps nothing (docs/design.md).
    let keeper = match privileges::CleanupKeeper::start(super::download::clean_up_with_net_admin) {
        Ok(keeper) => Some(keeper),
        Err(e) => {
            eprintln!("xdpget serve: cannot start the clean-up process: {e}");
            None
        }
    };
    if let Err(e) = privileges::drop_for_serve() {
        eprintln!("xdpget serve: cannot drop privileges: {e}");
        return Exit::Generic.into();
    }

    let defaults = tcp::Config::default();
    let tcp = server_tcp_config(
        tcp::Config {
            mtu: served.interface.mtu as usize,
            isn_secret: crate::boot_secret::boot_secret().unwrap_or(defaults.isn_secret),
            // Our sender is NewReno and ignores SACK blocks: not offering SACK keeps the
            // clients' duplicate ACKs uncompressed, which NewReno counts (docs/design.md).
            sack: false,
            ..defaults
        },
        SEND_BUFFER,
    );
    let log: Option<LogSink> = if args.quiet {
        None
    } else {
        Some(Arc::new(|entry: &AccessLogEntry| eprintln!("{entry}")))
    };
    let config = ServeConfig {
        root: Arc::clone(&root),
        limits: SessionLimits {
            idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
            ..SessionLimits::default()
        },
        max_connections: args.max_connections.max(1),
        log,
    };
    // Paths are resolved and files opened and mapped on a thread of their own
    // (serve/opener.rs); its answers come back through the loop.
    let opener = match Opener::start() {
        Ok(opener) => opener,
        Err(e) => {
            eprintln!("xdpget serve: cannot start the opener thread: {e}");
            return Exit::Generic.into();
        }
    };
    let mut host = Host::new(EthernetAddress(served.interface.mac));
    let mtu = served.interface.mtu as usize;
    let submitter = Some(opener.submitter());
    listen_with_opener(&mut host, served.local, tcp, mtu, config, submitter);
    let kind = match served.driver {
        NicDevice::AfXdp(_) => "AF_XDP",
        NicDevice::Raw(_) => "raw socket",
    };
    let url_host = match served.local {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    };
    eprintln!(
        "xdpget serve: serving {} on http://{url_host}/ ({}, {kind}); Ctrl-C stops",
        root.dir().display(),
        served.interface.name
    );
    let result = serve(
        &mut served.driver,
        &mut host,
        Some(&opener),
        LoopOptions::default(),
        &stop,
        |_, _| false,
    );
    let stats = served.driver.stats();
    // The connections' submitters go with the host; then the opener thread can end.
    drop(host);
    drop(opener);
    drop(served);
    if let Some(keeper) = keeper {
        let _ = keeper.finish();
    }
    match result {
        Ok(summary) => {
            let signal = signals::received().unwrap_or("a signal");
            eprintln!(
                "xdpget serve: stopped by {signal}: {} connections, {} requests answered; \
                 {} frames received, {} sent",
                summary.connections, summary.requests, stats.rx_frames, stats.tx_frames
            );
            Exit::Ok.into()
        }
        Err(e) => {
            eprintln!("xdpget serve: {e}");
            Exit::Network.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(
            parse_listen("10.0.0.1:80"),
            Ok((Some("10.0.0.1".parse().unwrap()), 80))
        );
        assert_eq!(
            parse_listen("[fd00::1]:8081"),
            Ok((Some("fd00::1".parse().unwrap()), 8081))
        );
        assert_eq!(
            parse_listen("10.0.0.1"),
            Ok((Some("10.0.0.1".parse().unwrap()), DEFAULT_PORT))
        );
        assert_eq!(parse_listen(":9000"), Ok((None, 9000)));
        assert_eq!(parse_listen("9000"), Ok((None, 9000)));
        assert!(parse_listen("0").is_err());
        assert!(parse_listen("host:80").is_err());
    }
}
