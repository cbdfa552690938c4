//! `xdpget [OPTIONS] URL...`: downloads over a real interface.
//!
//! The busy-poll engine runs on its own pinned thread, `xdpget-poll`, and owns the network
//! (driver, XDP program, guards); every URL is a task of that one thread (`--parallel N` of
//! them at once, on one host). This thread only draws progress from the engine's atomic
//! counters and prints what the engine reports, so drawing never slows the loop.

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
use crate::engine::lookup::Lookups;
use crate::engine::network::{DriverKind, Families, Family, Network, NicNetwork};
use crate::engine::progress::Progress;
use crate::engine::runtime::{self, Executor, LoopSettings, Reactor};
use crate::engine::stats::{EngineStats, SetupTimes};
use crate::engine::thread_share::ThreadShare;
use crate::engine::transfer::MinSpeed;
use crate::engine::{EngineError, TransferOptions};
use crate::http::auth::{Credentials, redact};
use crate::http::proxy::Proxies;
use crate::http::{Header, Target};
use crate::net::nft::NftGuard;
use crate::net::ports::{PortSet, ReservedPorts};
use crate::sink::naming::file_name_from_url;
use crate::sink::{FsyncPolicy, Prefault, SinkOptions};
use crate::tls::{TlsSettings, TrustOptions};

/// What the engine thread tells this one.
enum Report {
    Started {
        id: usize,
        url: String,
        progress: Arc<Progress>,
    },
    Notice(String),
    /// A line of one download (printed under its bar).
    Said {
        id: usize,
        line: String,
    },
    Done {
        id: usize,
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
    let mut options = match fetch_options(args) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("xdpget: {message}");
            return Exit::Parse.into();
        }
    };
    // wget's proxy variables, unless --no-proxy; a bad one is wget's PROXERR (exit 1).
    if !args.no_proxy {
        match Proxies::from_env(|name| std::env::var(name).ok()) {
            Ok(proxies) => options.proxies = proxies,
            Err(e) => {
                eprintln!("xdpget: {e}");
                return Exit::Generic.into();
            }
        }
    }
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
    let urls = match all_urls(args) {
        Ok(urls) => urls,
        Err(message) => {
            eprintln!("xdpget: {message}");
            return Exit::FileIo.into();
        }
    };
    if urls.is_empty() {
        eprintln!("xdpget: no URLs found");
        return Exit::Generic.into();
    }
    if urls.len() > 1 && matches!(options.output, Output::Path(_)) {
        eprintln!("xdpget: -O FILE takes one URL (wget would concatenate them)");
        return Exit::Parse.into();
    }
    // Every connection at once needs a local port of its own.
    let at_once = urls.len().min(usize::from(args.parallel)) * usize::from(args.connections);
    let port_count = usize::from(ports.end() - ports.start()) + 1;
    if at_once > port_count {
        eprintln!(
            "xdpget: --parallel {} with -x {} runs up to {at_once} connections at once; \
             --port-range has {port_count} ports, give it at least that many",
            args.parallel, args.connections,
        );
        return Exit::Parse.into();
    }
    for url in &urls {
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
    let (reports, received) = mpsc::channel();
    let parallel = usize::from(args.parallel);

    let engine = {
        let iface = args.iface.clone();
        let families = families(args);
        let queue = args.queue;
        let pcap = args.pcap.clone();
        let core = cores.engine;
        std::thread::Builder::new()
            .name("xdpget-poll".into())
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                setup.lap("engine thread start");
                let mut inner = NicNetwork::new(kind, iface, ports, queue, pcap)
                    .with_setup_times(setup)
                    .with_connections(at_once);
                inner.set_families(families);
                let mut network = LeastPrivilege {
                    inner,
                    reports: reports.clone(),
                    transition: None,
                    keeper: None,
                };
                let progresses: Vec<Arc<Progress>> =
                    urls.iter().map(|_| Arc::new(Progress::default())).collect();
                let reactor = Reactor::default();
                let mut executor = Executor::new(parallel);
                for (id, (url, progress)) in urls.iter().zip(&progresses).enumerate() {
                    let reports = reports.clone();
                    let (reactor, options) = (&reactor, &options);
                    executor.spawn(async move {
                        let shown = redact(url);
                        let _ = reports.send(Report::Started {
                            id,
                            url: shown.clone(),
                            progress: Arc::clone(progress),
                        });
                        let mut notices = |line: String| {
                            let _ = reports.send(Report::Said { id, line });
                        };
                        let result =
                            fetch::fetch_on(reactor, url, options, progress, &mut notices).await;
                        let _ = reports.send(Report::Done {
                            id,
                            url: shown,
                            result,
                        });
                    });
                }
                let ran = runtime::run(
                    &reactor,
                    &mut network,
                    &mut executor,
                    &LoopSettings::of(&options.transfer),
                );
                drop(executor);
                for line in network.inner.take_notices() {
                    let _ = reports.send(Report::Notice(line));
                }
                if let Err(e) = ran {
                    let _ = reports.send(Report::Notice(format!("xdpget: {e}")));
                }
                let mut driver = network.describe();
                if let Some(s) = network.driver_stats() {
                    driver.push(format!(
                        "frames: {} received, {} sent, {} receive drops, {} transmit drops, {} blocking waits, {} fill-ring empties",
                        s.rx_frames, s.tx_frames, s.rx_dropped, s.tx_dropped, s.idle_waits, s.fill_ring_empty
                    ));
                }
                driver.extend(reactor.connection_lines());
                driver.extend(ThreadShare::of_this_thread().map(|share| share.line()));
                let _ = reports.send(Report::Finished {
                    stats: Box::new(reactor.take_stats()),
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
    let mut screen = Screen::new(style, parallel, args.quiet);
    loop {
        match received.recv_timeout(Duration::from_millis(100)) {
            Ok(Report::Started { id, url, progress }) => {
                if !args.quiet {
                    screen.println(&format!("--{}--  {url}", super::progress::timestamp_now()));
                }
                screen.start(id, &file_name_from_url(&url), progress);
            }
            Ok(Report::Notice(line)) => {
                if !args.quiet {
                    screen.println(&line);
                }
            }
            Ok(Report::Said { id, line }) => {
                if !args.quiet {
                    screen.println(&screen.tagged(id, &line));
                }
            }
            Ok(Report::Done { id, url, result }) => {
                screen.finish(id);
                let code = match result {
                    Ok(fetched) => {
                        if !args.quiet && !fetched.already_complete {
                            let name = fetched.path.as_ref().map_or_else(
                                || "(spider)".to_string(),
                                |p| p.display().to_string(),
                            );
                            if options_spider(args) {
                                screen.println(&format!("Remote file exists: {url}"));
                            } else {
                                screen.println(&summary_line(
                                    &name,
                                    fetched.file_len,
                                    Some(fetched.file_len),
                                    fetched.elapsed,
                                    fetched.transferred,
                                ));
                            }
                        }
                        Exit::Ok as u8
                    }
                    Err(EngineError::Interrupted) => {
                        let by = signals::received().unwrap_or("a signal");
                        screen.println(&format!("xdpget: {url}: interrupted by {by}"));
                        EngineError::Interrupted.exit_code()
                    }
                    Err(e) => {
                        screen.println(&format!("xdpget: {url}: {e}"));
                        e.exit_code()
                    }
                };
                exit = most_serious(exit, code);
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
                    exit = most_serious(exit, Exit::FileIo as u8);
                }
            }
            Ok(Report::PrivilegesDropped) => {
                // Nothing this thread does from now on needs more than the engine thread.
                if let Err(e) = privileges::drop_for_run() {
                    eprintln!("xdpget: cannot drop privileges: {e}");
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => screen.update(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if engine.join().is_err() {
        eprintln!("xdpget: the engine thread failed");
        return Exit::Generic.into();
    }
    ExitCode::from(exit)
}

/// The exit status of several downloads, by wget's rule: besides 0 and 1, the lower code
/// wins ("with the exceptions of 0 and 1, the lower-numbered exit codes take precedence over
/// higher-numbered ones, when multiple types of errors are encountered"); 1 only when no
/// other error came.
fn most_serious(a: u8, b: u8) -> u8 {
    match (a, b) {
        (0, other) | (other, 0) => other,
        (1, other) | (other, 1) => other,
        (a, b) => a.min(b),
    }
}

/// The URLs of the command line, then those of `-i FILE` (one a line, `-` for standard
/// input; blank lines and `#` comments skipped, as wget).
fn all_urls(args: &DownloadArgs) -> Result<Vec<String>, String> {
    let mut urls = args.urls.clone();
    if let Some(path) = &args.input_file {
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())
                .map_err(|e| format!("cannot read URLs from standard input: {e}"))?
        } else {
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read URLs from {}: {e}", path.display()))?
        };
        urls.extend(urls_of(&text));
    }
    Ok(urls)
}

/// The URLs of an input file's text.
fn urls_of(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
}

/// The progress of every running download: one bar each (a combined view of indicatif's
/// `MultiProgress` when several run at once), dots for a single download, nothing when quiet.
struct Screen {
    style: ProgressStyle,
    multi: Option<indicatif::MultiProgress>,
    running: Vec<(usize, Display, Arc<Progress>)>,
    parallel: bool,
}

impl Screen {
    fn new(style: ProgressStyle, parallel: usize, quiet: bool) -> Screen {
        let parallel = parallel > 1;
        let multi = (parallel && style == ProgressStyle::Bar && !quiet).then(|| {
            indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr_with_hz(10),
            )
        });
        Screen {
            // Dots of several files at once would interleave unreadably.
            style: if parallel && style == ProgressStyle::Dot {
                ProgressStyle::None
            } else {
                style
            },
            multi,
            running: Vec::new(),
            parallel,
        }
    }

    fn start(&mut self, id: usize, name: &str, progress: Arc<Progress>) {
        let display = Display::new(self.style, name, None);
        if let (Some(multi), Display::Bar(bar)) = (&self.multi, &display) {
            multi.add(bar.clone());
        }
        self.running.push((id, display, progress));
    }

    fn update(&mut self) {
        for (_, display, progress) in &mut self.running {
            display.update(progress.snapshot());
        }
    }

    fn finish(&mut self, id: usize) {
        if let Some(at) = self.running.iter().position(|(i, _, _)| *i == id) {
            let (_, mut display, progress) = self.running.remove(at);
            display.update(progress.snapshot());
            display.finish();
            if let (Some(multi), Display::Bar(bar)) = (&self.multi, &display) {
                multi.remove(bar);
            }
        }
    }

    /// A download's line, prefixed with its number when several run at once.
    fn tagged(&self, id: usize, line: &str) -> String {
        if self.parallel {
            format!("[{}] {line}", id + 1)
        } else {
            line.to_string()
        }
    }

    fn println(&self, line: &str) {
        if let Some(multi) = &self.multi {
            let _ = multi.println(line);
            return;
        }
        match self.running.iter().find_map(|(_, d, _)| match d {
            Display::Bar(bar) => Some(bar),
            _ => None,
        }) {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

/// The real network, giving up privileges on the engine thread once it is set up (sockets
/// open, XDP program attached, nft table and port reservation in place; see
/// `privileges`), with a clean-up keeper process for what still needs CAP_NET_ADMIN.
struct LeastPrivilege {
    inner: NicNetwork,
    reports: mpsc::Sender<Report>,
    /// The drop, once tried: the `--stats` line, or why it failed.
    transition: Option<String>,
    /// Declared after `inner`, so it drops after it: the keeper cleans up what `inner`'s
    /// guards could not without CAP_NET_ADMIN (GRO), and is waited for.
    keeper: Option<privileges::CleanupKeeper>,
}

/// The clean-up keeper's command: other xdpget runs of this namespace died and left
/// nftables tables (see `LeastPrivilege::drop`).
const REMOVE_STALE_TABLES: u8 = b'T';

/// The clean-up keeper's work, with CAP_NET_ADMIN, after the main process closed its pipe
/// (or died): GRO that the raw driver of `parent` (or of a dead xdpget) turned off goes
/// back on, and on request the nftables tables of dead runs go. Prints nothing (see
/// `privileges::CleanupKeeper::start`).
pub(super) fn clean_up_with_net_admin(parent: u32, commands: &[u8]) {
    let _ = crate::driver::raw::restore_gro_left_by(parent);
    if commands.contains(&REMOVE_STALE_TABLES) {
        let _ = NftGuard::remove_stale();
    }
}

/// Starts the clean-up keeper, drops this thread's privileges and tells the main thread
/// to do the same; the line for `--stats` (or why it failed, also sent as a notice).
fn drop_privileges(reports: &mpsc::Sender<Report>) -> (String, Option<privileges::CleanupKeeper>) {
    let keeper = match privileges::CleanupKeeper::start(clean_up_with_net_admin) {
        Ok(keeper) => Some(keeper),
        Err(e) => {
            // Without a keeper the main process keeps nothing more; GRO the raw driver
            // turned off stays off until the next run turns it on (as after kill -9).
            let line = format!("xdpget: cannot start the clean-up process: {e}");
            let _ = reports.send(Report::Notice(line));
            None
        }
    };
    let line = match privileges::drop_for_run() {
        Ok(transition) => {
            let _ = reports.send(Report::PrivilegesDropped);
            match &keeper {
                Some(keeper) => format!(
                    "{transition}; clean-up process {} keeps cap_net_admin,cap_net_raw",
                    keeper.pid()
                ),
                None => transition.to_string(),
            }
        }
        Err(e) => {
            let line = format!("xdpget: cannot drop privileges: {e}");
            let _ = reports.send(Report::Notice(line.clone()));
            line
        }
    };
    (line, keeper)
}

impl Network for LeastPrivilege {
    type Driver = <NicNetwork as Network>::Driver;

    fn driver_mut(&mut self) -> Option<&mut Self::Driver> {
        self.inner.driver_mut()
    }

    fn resolve(&mut self, host: &str, port: u16) -> Result<Vec<std::net::SocketAddr>, EngineError> {
        self.inner.resolve(host, port)
    }

    fn open(
        &mut self,
        remote: std::net::SocketAddr,
    ) -> Result<crate::engine::endpoint::Endpoint, EngineError> {
        // Set-up happens in the first open; later opens only look up routes and neighbours
        // (on the lookup thread). So after the first one succeeds, its notices (a fallback
        // to the raw driver, say) are shown at once, and privileges dropped.
        let endpoint = self.inner.open(remote)?;
        if self.transition.is_none() {
            for line in self.inner.take_notices() {
                let _ = self.reports.send(Report::Notice(line));
            }
            let (line, keeper) = drop_privileges(&self.reports);
            self.transition = Some(line);
            self.keeper = keeper;
        }
        Ok(endpoint)
    }

    fn lookups(&mut self) -> Option<Box<dyn Lookups>> {
        self.inner.lookups()
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
        // Another xdpget of this namespace killed (-9) while this one ran left its ports
        // and its nft table; nobody else may come to remove them. The ports need no
        // capability; the tables need CAP_NET_ADMIN, which only the keeper still has.
        match ReservedPorts::release_stale() {
            Ok(0) => {}
            Ok(_) => match self.keeper.as_mut() {
                Some(keeper) => keeper.send(REMOVE_STALE_TABLES),
                None => {
                    if let Err(e) = NftGuard::remove_stale() {
                        eprintln!("xdpget: {e}");
                    }
                }
            },
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
        limit_rate: args.rate_limit(),
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
        connections: usize::from(args.connections),
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
        "window_limited_s": stats.window_limited.as_secs_f64(),
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
