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

use super::args::{DownloadArgs, DriverChoice, PrefaultChoice, ProgressStyle};
use super::exit::Exit;
use super::privileges;
use super::progress::{Display, default_style, summary_line};
use crate::engine::fetch::{self, FetchOptions, Fetched, Output};
use crate::engine::network::{DriverKind, Network, NicNetwork};
use crate::engine::progress::Progress;
use crate::engine::stats::{EngineStats, SetupTimes};
use crate::engine::{EngineError, TransferOptions};
use crate::http::{Header, Target};
use crate::sink::naming::file_name_from_url;
use crate::sink::{Prefault, SinkOptions};

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
}

/// Runs the download command.
pub fn main(args: &DownloadArgs) -> ExitCode {
    let mut setup = SetupTimes::start();
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
    for url in &args.urls {
        if let Err(e) = Target::parse(url) {
            eprintln!("xdpget: {e}");
            return ExitCode::from(e.exit_code());
        }
    }
    if let Err(message) = privileges::check() {
        eprintln!("xdpget: {message}");
        return Exit::Generic.into();
    }

    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let interrupt = Arc::clone(&interrupt);
        // A second Ctrl-C while the first is being handled kills the process the hard way;
        // the sink's control record keeps what is durable either way.
        let _ = ctrlc::set_handler(move || {
            interrupt.store(true, std::sync::atomic::Ordering::Relaxed);
        });
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
        let queue = args.queue;
        let pcap = args.pcap.clone();
        let core = cores.engine;
        std::thread::Builder::new()
            .name("xdpget-engine".into())
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                setup.lap("engine thread start");
                let mut network =
                    NicNetwork::new(kind, iface, ports, queue, pcap).with_setup_times(setup);
                let mut stats = EngineStats::default();
                for url in urls {
                    let _ = reports.send(Report::Started { url: url.clone() });
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
                    for line in network.take_notices() {
                        let _ = reports.send(Report::Notice(line));
                    }
                    let failed = result.is_err();
                    let _ = reports.send(Report::Done { url, result });
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
                    setup: network.setup_times().clone(),
                });
                // `network` drops here, on this thread: XDP program, nft table and port
                // reservation go away before the process exits.
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
            PrefaultChoice::Populate | PrefaultChoice::PopulateInline => {
                Prefault::PopulateWrite { window }
            }
        },
        background: defaults_sink
            .background
            .filter(|_| args.prefault == PrefaultChoice::Populate),
        use_pwrite: args.prefault == PrefaultChoice::Pwrite,
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
        tries: args.tries,
        transfer,
        ..FetchOptions::default()
    })
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
    fn port_ranges_parse_strictly() {
        assert_eq!(parse_port_range("61000-61099"), Ok(61000..=61099));
        assert!(parse_port_range("61000").is_err());
        assert!(parse_port_range("80-90").is_err());
        assert!(parse_port_range("5000-4000").is_err());
        assert!(parse_port_range("a-b").is_err());
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
