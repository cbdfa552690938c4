//! `xdpget [OPTIONS] URL...`: downloads over a real interface.
//!
//! The busy-poll engine runs on its own pinned thread and owns the network (driver, XDP
//! program, guards); this thread only draws progress from the engine's atomic counters and
//! prints what the engine reports, so drawing never slows the loop.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::Duration;

use super::args::{
    DownloadArgs, DriverChoice, FsyncChoice, PrefaultChoice, PreferFamily, ProgressStyle,
};
use super::exit::Exit;
use super::privileges;
use super::progress::{Display, default_style, summary_line};
use super::signals;
use crate::engine::fetch::{self, FetchOptions, Fetched, Output};
use crate::engine::network::{DriverKind, Families, Family, Network, NicNetwork};
use crate::engine::progress::Progress;
use crate::engine::stats::{EngineStats, SetupTimes};
use crate::engine::transfer::MinSpeed;
use crate::engine::{EngineError, TransferOptions};
use crate::http::auth::{Credentials, redact};
use crate::http::{Header, Target};
use crate::net::nft::NftGuard;
use crate::net::ports::{PortSet, ReservedPorts};
use crate::sink::naming::file_name_from_url;
use crate::sink::{FsyncPolicy, Prefault, SinkOptions};
use crate::tls::{TlsSettings, TrustOptions};

/// What the engine thread tells this one.
enum Report {
    Started {
        url: String,
    },
    Notice(String),
    Done {
        url: String,
        result: Result<Fetched, EngineError>,
    },
    Finished {
        stats: Box<EngineStats>,
        driver: Vec<String>,
        setup: SetupTimes,
    },
    /// The engine thread is set up and gave up its privileges: this thread does too.
    PrivilegesDropped,
}

/// Runs the download command.
pub fn main(args: &DownloadArgs) -> ExitCode {
    let mut setup = SetupTimes::start();
    if let Err(message) = super::log::redirect(args) {
        eprintln!("xdpget: {message}");
        return Exit::FileIo.into();
    }
    let options = match fetch_options(args) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("xdpget: {message}");
            return Exit::Parse.into();
        }
    };
    let ports = match parse_port_range(&args.port_range) {
        Ok(p) => p,
        Err(message) => {
            eprintln!("xdpget: --port-range: {message}");
            return Exit::Parse.into();
        }
    };
    let ports = if args.port_range == DEFAULT_PORT_RANGE {
        let chosen = unused_port_range(ports.clone(), &ReservedPorts::held_by_others());
        if chosen != ports && !args.quiet {
            eprintln!(
                "xdpget: another xdpget uses ports {}-{}; this one takes {}-{}",
                ports.start(),
                ports.end(),
                chosen.start(),
                chosen.end()
            );
        }
        chosen
    } else {
        ports
    };
    for url in &args.urls {
        if let Err(e) = Target::parse(&redact(url)) {
            eprintln!("xdpget: {e}");
            return ExitCode::from(e.exit_code());
        }
    }
    if let Err(message) = privileges::check() {
        eprintln!("xdpget: {message}");
        return Exit::Generic.into();
    }

    let interrupt = Arc::new(AtomicBool::new(false));
    // SIGINT, SIGTERM, SIGHUP and SIGQUIT all stop the download the same clean way.
    if let Err(e) = signals::install(&interrupt) {
        eprintln!("xdpget: cannot handle signals: {e}");
        return Exit::Generic.into();
    }
    let mut options = options;
    options.transfer.interrupt = Some(Arc::clone(&interrupt));
    setup.lap("argument and privilege checks");
    let cores = Cores::choose(args.core, &receive_cores(args.iface.as_deref()));
    setup.lap("core choice");
    if let Some(background) = &mut options.sink.background {
        background.core = cores.preparer;
    }

    let kind = match args.driver {
        DriverChoice::Auto => DriverKind::Auto,
        DriverChoice::Afxdp => DriverKind::AfXdp,
        DriverChoice::Raw => DriverKind::Raw,
    };
    let style = args.progress.unwrap_or_else(|| default_style(args.quiet));
    let style = if args.quiet {
        ProgressStyle::None
    } else {
        style
    };
    let progress = Arc::new(Progress::default());
    let (reports, received) = mpsc::channel();

    let engine = {
        let progress = Arc::clone(&progress);
        let urls = args.urls.clone();
        let iface = args.iface.clone();
        let families = families(args);
        let queue = args.queue;
        let pcap = args.pcap.clone();
        let core = cores.engine;
        let interrupt = Arc::clone(&interrupt);
        std::thread::Builder::new()
            .name("xdpget-engine".into())
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                setup.lap("engine thread start");
                let mut inner =
                    NicNetwork::new(kind, iface, ports, queue, pcap).with_setup_times(setup);
                inner.set_families(families);
                let mut network = LeastPrivilege {
                    inner,
                    interrupt: Arc::clone(&interrupt),
                    reports: reports.clone(),
                    transition: None,
                };
                let mut stats = EngineStats::default();
                for url in urls {
                    let _ = reports.send(Report::Started { url: redact(&url) });
                    let mut notices = |line: String| {
                        let _ = reports.send(Report::Notice(line));
                    };
                    let result = fetch::fetch(
                        &mut network,
                        &url,
                        &options,
                        &progress,
                        &mut stats,
                        &mut notices,
                    );
                    for line in network.inner.take_notices() {
                        let _ = reports.send(Report::Notice(line));
                    }
                    let failed = result.is_err();
                    let _ = reports.send(Report::Done { url: redact(&url), result });
                    if failed && options.transfer.interrupt.as_ref().is_some_and(|f| {
                        f.load(std::sync::atomic::Ordering::Relaxed)
                    }) {
                        break;
                    }
                }
                let mut driver = network.describe();
                if let Some(s) = network.driver_stats() {
                    driver.push(format!(
                        "frames: {} received, {} sent, {} receive drops, {} transmit drops, {} blocking waits, {} fill-ring empties",
                        s.rx_frames, s.tx_frames, s.rx_dropped, s.tx_dropped, s.idle_waits, s.fill_ring_empty
                    ));
                }
                let _ = reports.send(Report::Finished {
                    stats: Box::new(stats),
                    driver,
                    setup: network.inner.setup_times().clone(),
                });
                // `network` drops here, on this thread (its clean-up capability raised
                // again): XDP program, nft table and port reservation go away before the
                // process exits.
            })
    };
    let engine = match engine {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("xdpget: cannot start the engine thread: {e}");
            return Exit::Generic.into();
        }
    };

    let mut exit = Exit::Ok as u8;
    let mut display: Option<Display> = None;
    loop {
        match received.recv_timeout(Duration::from_millis(100)) {
            Ok(Report::Started { url }) => {
                if !args.quiet {
                    eprintln!("--{}--  {url}", super::progress::timestamp_now());
                }
                display = Some(Display::new(style, &file_name_from_url(&url), None));
            }
            Ok(Report::Notice(line)) => {
                if !args.quiet {
                    if let Some(Display::Bar(bar)) = &display {
                        bar.println(&line);
                    } else {
                        eprintln!("{line}");
                    }
                }
            }
            Ok(Report::Done { url, result }) => {
                if let Some(mut d) = display.take() {
                    d.update(progress.snapshot());
                    d.finish();
                }
                match result {
                    Ok(fetched) => {
                        if !args.quiet && !fetched.already_complete {
                            let name = fetched.path.as_ref().map_or_else(
                                || "(spider)".to_string(),
                                |p| p.display().to_string(),
                            );
                            if options_spider(args) {
                                eprintln!("Remote file exists: {url}");
                            } else {
                                eprintln!(
                                    "{}",
                                    summary_line(
                                        &name,
                                        fetched.file_len,
                                        Some(fetched.file_len),
                                        fetched.elapsed,
                                        fetched.transferred
                                    )
                                );
                            }
                        }
                    }
                    Err(EngineError::Interrupted) => {
                        let by = signals::received().unwrap_or("a signal");
                        eprintln!("xdpget: {url}: interrupted by {by}");
                        exit = EngineError::Interrupted.exit_code();
                    }
                    Err(e) => {
                        eprintln!("xdpget: {url}: {e}");
                        exit = e.exit_code();
                    }
                }
            }
            Ok(Report::Finished {
                stats,
                driver,
                setup,
            }) => {
                if args.stats {
                    eprint!("{}", setup.table());
                    eprint!("{}", stats.table());
                    for line in &driver {
                        eprintln!("{line}");
                    }
                }
                if let Some(path) = &args.stats_json
                    && let Err(e) = write_stats_json(path, &stats, &driver, &setup)
                {
                    eprintln!("xdpget: cannot write {}: {e}", path.display());
                    exit = Exit::FileIo as u8;
                }
            }
            Ok(Report::PrivilegesDropped) => {
                // Nothing this thread does from now on needs more than the engine thread.
                if let Err(e) = privileges::drop_for_run() {
                    eprintln!("xdpget: cannot drop privileges: {e}");
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(d) = display.as_mut() {
                    d.update(progress.snapshot());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if engine.join().is_err() {
        eprintln!("xdpget: the engine thread failed");
        return Exit::Generic.into();
    }
    ExitCode::from(exit)
}

/// The real network, giving up privileges on the engine thread once it is set up (sockets
/// open, XDP program attached, nft table and port reservation in place; see
/// `privileges`), and taking the clean-up capability back before its guards drop.
struct LeastPrivilege {
    inner: NicNetwork,
    /// Set by a stop signal: a pause between tries ends early.
    interrupt: Arc<AtomicBool>,
    reports: mpsc::Sender<Report>,
    /// The drop, once tried: the `--stats` line, or why it failed.
    transition: Option<String>,
}

/// Drops this thread's privileges and tells the main thread to do the same; the line for
/// `--stats` (or why it failed, also sent as a notice).
fn drop_privileges(reports: &mpsc::Sender<Report>) -> String {
    match privileges::drop_for_run() {
        Ok(transition) => {
            let _ = reports.send(Report::PrivilegesDropped);
            transition.to_string()
        }
        Err(e) => {
            let line = format!("xdpget: cannot drop privileges: {e}");
            let _ = reports.send(Report::Notice(line.clone()));
            line
        }
    }
}

impl Network for LeastPrivilege {
    type Driver = <NicNetwork as Network>::Driver;

    fn resolve(&mut self, host: &str, port: u16) -> Result<Vec<std::net::SocketAddr>, EngineError> {
        self.inner.resolve(host, port)
    }

    fn open(
        &mut self,
        remote: std::net::SocketAddr,
    ) -> Result<(&mut Self::Driver, crate::engine::endpoint::Endpoint), EngineError> {
        // Set-up happens in the first open; later opens only look up routes and neighbours
        // (and reuse what the first set up). So after the first one succeeds, its notices
        // (a fallback to the raw driver, say) are shown at once, and privileges dropped.
        if self.transition.is_none() {
            self.inner.open(remote)?;
            for line in self.inner.take_notices() {
                let _ = self.reports.send(Report::Notice(line));
            }
            self.transition = Some(drop_privileges(&self.reports));
        }
        self.inner.open(remote)
    }

    fn pause(&mut self, duration: Duration) -> Result<(), EngineError> {
        let until = std::time::Instant::now() + duration;
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            if self.interrupt.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(EngineError::Interrupted);
            }
            self.inner.pause(left.min(Duration::from_millis(100)))?;
        }
        Ok(())
    }

    fn describe(&self) -> Vec<String> {
        let mut lines = self.inner.describe();
        lines.extend(self.transition.clone());
        lines
    }

    fn driver_stats(&self) -> Option<crate::driver::DriverStats> {
        self.inner.driver_stats()
    }
}

impl Drop for LeastPrivilege {
    fn drop(&mut self) {
        // Runs before `inner` drops: deleting the nft table and turning GRO back on need
        // CAP_NET_ADMIN effective.
        if let Err(e) = privileges::raise_for_cleanup() {
            eprintln!("xdpget: cannot take back CAP_NET_ADMIN for the clean-up: {e}");
        }
        // Another xdpget of this namespace killed (-9) while this one ran left its ports
        // and its nft table; nobody else may come to remove them.
        match ReservedPorts::release_stale() {
            Ok(0) => {}
            Ok(_) => {
                if let Err(e) = NftGuard::remove_stale() {
                    eprintln!("xdpget: {e}");
                }
            }
            Err(e) => eprintln!("xdpget: {e}"),
        }
    }
}

fn options_spider(args: &DownloadArgs) -> bool {
    args.spider
}

fn fetch_options(args: &DownloadArgs) -> Result<FetchOptions, String> {
    let seconds = |name: &str, value: Option<f64>| -> Result<Option<Duration>, String> {
        match value {
            None => Ok(None),
            Some(v) if v.is_finite() && v > 0.0 => Ok(Some(Duration::from_secs_f64(v))),
            Some(v) => Err(format!(
                "--{name} {v}: must be a positive number of seconds"
            )),
        }
    };
    let timeout = seconds("timeout", args.timeout)?;
    let defaults = TransferOptions::default();
    let transfer = TransferOptions {
        tcp: crate::tcp::Config {
            ack_every_segments: usize::from(args.ack_every),
            sack: args.sack,
            // One key per boot, so that a four-tuple's ISN and timestamps only grow from one
            // run to the next (`boot_secret`); a random one for this run if that fails.
            isn_secret: crate::boot_secret::boot_secret().unwrap_or(defaults.tcp.isn_secret),
            ..defaults.tcp.clone()
        },
        connect_timeout: seconds("connect-timeout", args.connect_timeout)?
            .or(timeout)
            .unwrap_or(defaults.connect_timeout),
        read_timeout: seconds("read-timeout", args.read_timeout)?
            .or(timeout)
            .unwrap_or(defaults.read_timeout),
        tls: TlsSettings::new(TrustOptions {
            ca_certificate: args.ca_certificate.clone(),
            ca_directory: args.ca_directory.clone(),
            no_check_certificate: args.no_check_certificate,
        }),
        min_speed: min_speed(args, seconds("speed-time", args.speed_time)?),
        ..defaults
    };
    let headers = args
        .headers
        .iter()
        .map(|h| Header::parse_argument(h).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let output = match &args.output_document {
        Some(p) if p.as_os_str() == "-" => Output::Stdout,
        Some(p) => Output::Path(p.clone()),
        None => Output::Auto {
            directory: args.directory_prefix.clone(),
        },
    };
    if args.timestamping && args.no_clobber {
        return Err("-N and -nc cannot be used together (wget refuses them too)".to_string());
    }
    if args.urls.len() > 1 && matches!(output, Output::Path(_)) {
        return Err("-O FILE takes one URL (wget would concatenate them)".to_string());
    }
    let defaults_sink = SinkOptions::default();
    let window = match defaults_sink.prefault {
        Prefault::PopulateWrite { window } | Prefault::WillNeed { window } => window,
        Prefault::Off => 1 << 20,
    };
    let sink = SinkOptions {
        prefault: match args.prefault {
            PrefaultChoice::Off | PrefaultChoice::Pwrite => Prefault::Off,
            PrefaultChoice::Willneed => Prefault::WillNeed { window },
            PrefaultChoice::Populate | PrefaultChoice::PopulateInline | PrefaultChoice::Staged => {
                Prefault::PopulateWrite { window }
            }
        },
        background: defaults_sink.background.filter(|_| {
            matches!(
                args.prefault,
                PrefaultChoice::Populate | PrefaultChoice::Staged
            )
        }),
        use_pwrite: args.prefault == PrefaultChoice::Pwrite,
        staging: args.prefault == PrefaultChoice::Staged,
        fsync: match args.fsync_policy {
            FsyncChoice::Off => FsyncPolicy::Off,
            FsyncChoice::On => FsyncPolicy::On,
        },
        ..defaults_sink
    };
    Ok(FetchOptions {
        output,
        sink,
        resume: args.resume,
        spider: args.spider,
        headers,
        user_agent: args.user_agent.clone(),
        max_redirect: args.max_redirect,
        https_only: args.https_only,
        tries: args.tries,
        transfer,
        server_response: args.server_response,
        credentials: credentials(args),
        server_timestamps: !args.no_use_server_timestamps,
        timestamping: args.timestamping,
        no_clobber: args.no_clobber,
        content_disposition: args.content_disposition,
        retry_connrefused: args.retry_connrefused,
        retry_on_http_error: args.retry_on_http_error.clone(),
        ignore_length: args.ignore_length,
        max_retry_pause: match args.waitretry {
            s if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s),
            s => return Err(format!("--waitretry {s}: must be a number of seconds")),
        },
        ..FetchOptions::default()
    })
}

/// `--http-user`/`--http-password` over `--user`/`--password`, as wget; a password alone
/// goes with an empty user name.
fn credentials(args: &DownloadArgs) -> Option<Credentials> {
    let user = args.http_user.as_ref().or(args.user.as_ref());
    let password = args.http_password.as_ref().or(args.password.as_ref());
    (user.is_some() || password.is_some()).then(|| Credentials {
        user: user.cloned().unwrap_or_default(),
        password: password.cloned().unwrap_or_default(),
    })
}

/// `--speed-limit`/`--lowest-speed-limit` and `--speed-time`, with curl's defaults: either
/// alone turns the check on, the limit at 1 byte/s, the time at 30 s.
fn min_speed(args: &DownloadArgs, time: Option<Duration>) -> Option<MinSpeed> {
    let limit = args.speed_limit.or(args.lowest_speed_limit);
    if limit.is_none() && time.is_none() {
        return None;
    }
    Some(MinSpeed {
        bytes_per_second: limit.unwrap_or(1),
        period: time.unwrap_or(Duration::from_secs(30)),
    })
}

/// `--port-range`'s default (src/cli/args.rs).
const DEFAULT_PORT_RANGE: &str = "61000-61099";

/// The first range of the same size as `asked`, from `asked` upwards, that overlaps no set
/// in `held` (the ranges other live xdpget processes of this namespace reserved: two runs
/// on one range would steal each other's segments); `asked` when none is free below 65536.
fn unused_port_range(asked: RangeInclusive<u16>, held: &[PortSet]) -> RangeInclusive<u16> {
    let size = u32::from(*asked.end() - *asked.start()) + 1;
    (0..64u32)
        .map(|block| u32::from(*asked.start()) + block * size)
        .take_while(|start| start + size - 1 <= u32::from(u16::MAX))
        .map(|start| start as u16..=(start + size - 1) as u16)
        .find(|range| {
            held.iter()
                .all(|set| !range.clone().any(|port| set.contains(port)))
        })
        .unwrap_or(asked)
}

/// `LOW-HIGH`, both unprivileged ports.
pub fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let (low, high) = text
        .split_once('-')
        .ok_or_else(|| format!("'{text}' is not LOW-HIGH"))?;
    let parse = |s: &str| {
        s.trim()
            .parse::<u16>()
            .map_err(|_| format!("'{s}' is not a port number"))
    };
    let (low, high) = (parse(low)?, parse(high)?);
    if low < 1024 || low > high {
        return Err(format!("{low}-{high} must be ascending and above 1023"));
    }
    Ok(low..=high)
}

/// `-4`, `-6` and `--prefer-family` as the engine's address order.
fn families(args: &DownloadArgs) -> Families {
    let only = match (args.inet4_only, args.inet6_only) {
        (true, _) => Some(Family::Ipv4),
        (_, true) => Some(Family::Ipv6),
        _ => None,
    };
    let prefer = match args.prefer_family {
        Some(PreferFamily::Ipv4) => Some(Family::Ipv4),
        Some(PreferFamily::Ipv6) => Some(Family::Ipv6),
        Some(PreferFamily::None) | None => None,
    };
    Families { only, prefer }
}

/// The cores the interface's receive interrupts land on (`--iface`, else the default
/// route's), where that can be known (see `net::irq`).
fn receive_cores(iface: Option<&str>) -> Vec<usize> {
    let name = match iface {
        Some(name) => name.to_string(),
        None => match crate::net::iface::Interface::default_route_name() {
            Ok(name) => name,
            Err(_) => return Vec::new(),
        },
    };
    crate::net::irq::receive_cores(&name)
}

/// Where the threads of a download run.
#[derive(Clone, Copy, Debug, Default)]
struct Cores {
    /// The busy-poll engine thread: `--core N`, or by default the last core that does not
    /// take the interface's receive interrupts (the last core when that is unknown, or when
    /// every core does: interrupts usually land on core 0 first).
    engine: Option<core_affinity::CoreId>,
    /// The file sink's helper threads: the first other core that takes no receive
    /// interrupts, else the first other core, so that they never take time from the engine
    /// (with a single core they are left to the scheduler).
    preparer: Option<usize>,
}

impl Cores {
    /// Chooses among the cores this process may run on (read before any thread is pinned),
    /// keeping the engine off the cores in `avoid`.
    fn choose(engine: Option<usize>, avoid: &[usize]) -> Cores {
        let Some(cores) = core_affinity::get_core_ids() else {
            return Cores::default();
        };
        Cores::choose_from(&cores, engine, avoid)
    }

    fn choose_from(
        cores: &[core_affinity::CoreId],
        engine: Option<usize>,
        avoid: &[usize],
    ) -> Cores {
        let engine = match engine {
            Some(n) => cores.iter().copied().find(|c| c.id == n),
            None => cores
                .iter()
                .rev()
                .find(|c| !avoid.contains(&c.id))
                .or(cores.last())
                .copied(),
        };
        // Preferably a core that takes no receive interrupts either.
        let others = || cores.iter().filter(|c| Some(**c) != engine);
        let preparer = others()
            .find(|c| !avoid.contains(&c.id))
            .or_else(|| others().next())
            .map(|c| c.id);
        Cores { engine, preparer }
    }
}

fn write_stats_json(
    path: &PathBuf,
    stats: &EngineStats,
    driver: &[String],
    setup: &SetupTimes,
) -> std::io::Result<()> {
    let json = serde_json::json!({
        "setup": setup.steps,
        "histograms": stats.summaries(),
        "idle_loops": stats.idle_loops,
        "idle_waits": stats.idle_waits,
        "driver": driver,
    });
    std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fsync_policy_is_off_by_default_and_on_when_asked() {
        use super::super::args::Cli;
        use clap::Parser;
        let policy = |extra: &[&str]| {
            let argv = ["xdpget"].iter().chain(extra).chain(&["http://h/a"]);
            let cli = Cli::try_parse_from(argv).expect("parses");
            fetch_options(&cli.download).expect("options").sink.fsync
        };
        assert_eq!(policy(&[]), FsyncPolicy::Off);
        assert_eq!(policy(&["--fsync-policy", "on"]), FsyncPolicy::On);
        assert_eq!(policy(&["--fsync-policy", "off"]), FsyncPolicy::Off);
    }

    #[test]
    fn port_ranges_parse_strictly() {
        assert_eq!(parse_port_range("61000-61099"), Ok(61000..=61099));
        assert!(parse_port_range("61000").is_err());
        assert!(parse_port_range("80-90").is_err());
        assert!(parse_port_range("5000-4000").is_err());
        assert!(parse_port_range("a-b").is_err());
    }

    #[test]
    fn a_default_range_moves_past_ranges_other_runs_hold() {
        let held = |text: &str| PortSet::parse(text).expect("port set");
        assert_eq!(unused_port_range(61000..=61099, &[]), 61000..=61099);
        assert_eq!(
            unused_port_range(61000..=61099, &[held("61000-61099")]),
            61100..=61199
        );
        assert_eq!(
            unused_port_range(61000..=61099, &[held("61000-61099"), held("61150")]),
            61200..=61299
        );
        // Nothing free below 65536: the asked range, as before.
        assert_eq!(
            unused_port_range(65000..=65535, &[held("65000-65535")]),
            65000..=65535
        );
    }

    #[test]
    fn the_engine_avoids_the_receive_cores_and_the_preparer_the_engine() {
        use core_affinity::CoreId;
        let cores: Vec<CoreId> = (0..4).map(|id| CoreId { id }).collect();
        let pick = |engine, avoid: &[usize]| {
            let chosen = Cores::choose_from(&cores, engine, avoid);
            (chosen.engine.map(|c| c.id), chosen.preparer)
        };
        // Unknown receive cores: the last core, the preparer on the first.
        assert_eq!(pick(None, &[]), (Some(3), Some(0)));
        // Receive interrupts on 3 and 2: the engine goes to 1, the helpers to 0.
        assert_eq!(pick(None, &[2, 3]), (Some(1), Some(0)));
        // Interrupts on 0 and 3: the engine on 2, the helpers on 1.
        assert_eq!(pick(None, &[0, 3]), (Some(2), Some(1)));
        // Every core takes them: the last core after all.
        assert_eq!(pick(None, &[0, 1, 2, 3]), (Some(3), Some(0)));
        // --core wins; the preparer takes another core.
        assert_eq!(pick(Some(0), &[0]), (Some(0), Some(1)));
        // A single core: nothing to pin the preparer to.
        let one = [CoreId { id: 0 }];
        let chosen = Cores::choose_from(&one, None, &[0]);
        assert_eq!(
            (chosen.engine.map(|c| c.id), chosen.preparer),
            (Some(0), None)
        );
    }
}
