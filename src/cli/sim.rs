//! `xdpget sim`: a whole transfer through the TCP engine over a simulated link.

use std::cell::RefCell;
use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;
use std::rc::Rc;

use super::args::SimArgs;
use super::exit::Exit;
use super::progress::human_bytes;
use super::trace::{TraceRecorder, TraceSample};
use crate::driver::sim::impair::Impairments;
use crate::driver::sim::link::PathConfig;
use crate::driver::sim::units::{parse_duration, parse_percent, parse_rate, parse_size};
use crate::engine::simulate::{self, Simulation, SimulationReport};
use crate::tcp::TcpStats;
use crate::time::Instant;

/// Runs `xdpget sim` and prints its report.
pub fn main(args: &SimArgs) -> ExitCode {
    let mut simulation = match simulation_from(args) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("xdpget sim: {message}");
            return Exit::Parse.into();
        }
    };
    let recorder = Rc::new(RefCell::new(TraceRecorder::new()));
    if args.trace.is_some() || args.plot.is_some() {
        let recorder = Rc::clone(&recorder);
        simulation.trace = Some(Box::new(move |at: Instant, stats: &TcpStats| {
            let sample = TraceSample {
                cwnd: stats.cwnd,
                ssthresh: (stats.ssthresh != u64::MAX).then_some(stats.ssthresh),
                rwnd: stats.rwnd,
                in_flight: stats.bytes_in_flight,
            };
            recorder
                .borrow_mut()
                .observe(at, sample, stats.fast_retransmits, stats.rtos);
        }));
    }
    let report = match simulate::run(simulation) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xdpget sim: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    if let Err(message) = write_trace(args, &recorder.borrow()) {
        eprintln!("xdpget sim: {message}");
        return Exit::FileIo.into();
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("xdpget sim: cannot encode the report: {e}");
                return Exit::Generic.into();
            }
        }
    } else {
        print!("{}", human_report(&report));
    }
    if report.intact {
        Exit::Ok.into()
    } else {
        Exit::Network.into()
    }
}

/// Writes `--trace FILE.csv` and `--plot FILE.svg`.
fn write_trace(args: &SimArgs, recorder: &TraceRecorder) -> Result<(), String> {
    if let Some(path) = &args.trace {
        let file =
            File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        recorder
            .write_csv(BufWriter::new(file))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "Reno sender: {} at {}, RTT {}, loss {}",
            args.size, args.rate, args.rtt, args.loss
        );
        let svg = recorder.plot(&title).render(1000, 500);
        std::fs::write(path, svg).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn simulation_from(args: &SimArgs) -> Result<Simulation, String> {
    let size = parse_size(&args.size).map_err(|e| format!("--size: {e}"))?;
    let rate = parse_rate(&args.rate).map_err(|e| format!("--rate: {e}"))?;
    let rtt = parse_duration(&args.rtt).map_err(|e| format!("--rtt: {e}"))?;
    let percent =
        |name: &str, value: &str| parse_percent(value).map_err(|e| format!("--{name}: {e}"));
    let impairments = Impairments {
        loss: percent("loss", &args.loss)?,
        duplicate: percent("duplicate", &args.duplicate)?,
        reorder: percent("reorder", &args.reorder)?,
        // A reordered frame arrives a quarter RTT late: overtaken by a few later frames.
        reorder_delay: (rtt / 4).max(std::time::Duration::from_micros(100)),
        corrupt: percent("corrupt", &args.corrupt)?,
    };
    let bdp = (u128::from(rate) * rtt.as_micros() / 8_000_000) as usize;
    let queue_limit = match &args.queue_limit {
        Some(q) => parse_size(q).map_err(|e| format!("--queue-limit: {e}"))? as usize,
        None => bdp.max(64 * 1024),
    };
    if !(576..=9000).contains(&args.mtu) {
        return Err(format!("--mtu {} is outside 576..=9000", args.mtu));
    }
    Ok(Simulation {
        size,
        path: PathConfig {
            rate_bps: Some(rate),
            delay: rtt / 2,
            queue_limit_bytes: Some(queue_limit),
            queue_limit_packets: None,
            impairments,
        },
        seed: args.seed,
        mtu: usize::from(args.mtu),
        max_events: 50 * (size / 1000 + 10_000),
        receive_window: args
            .window
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(|e| format!("--window: {e}"))?
            .map(|w| w as usize),
        output: None,
        trace: None,
    })
}

fn human_report(r: &SimulationReport) -> String {
    format!(
        "received  {} ({} bytes), {}\n\
         goodput   {:.1} Mbit/s over {:.3} s of simulated time\n\
         sender    {} segments, {} retransmitted ({} fast retransmits, {} RTOs), cwnd now {} B\n\
         link      data path: {} lost, {} queue drops, {} reordered, {} duplicated, {} corrupted\n\
         wall time {:.3} s for {} simulator events\n",
        human_bytes(r.bytes),
        r.bytes,
        if r.intact {
            "intact (SHA-256 matches what was sent)"
        } else {
            "CORRUPT (SHA-256 differs from what was sent)"
        },
        r.goodput_bps / 1e6,
        r.sim_seconds,
        r.sender.segments_sent,
        r.retransmits,
        r.fast_retransmits,
        r.rtos,
        r.sender.cwnd,
        r.data_path.lost,
        r.data_path.dropped_by_queue,
        r.data_path.reordered,
        r.data_path.duplicated,
        r.data_path.corrupted,
        r.wall_seconds,
        r.events,
    )
}
