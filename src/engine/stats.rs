//! Latency histograms of the engine loop (`--stats`, `--stats-json`).
//!
//! The engine records into these on its own thread; nothing here takes a lock. Values are
//! nanoseconds (latencies) or counts (batch sizes). The report gives p50, p90, p99, p99.9 and
//! max, the percentiles that show a busy-poll loop's tail.

use hdrhistogram::Histogram;
use serde::Serialize;

/// What a histogram's values measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Nanoseconds,
    Frames,
}

/// One named histogram.
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    histogram: Histogram<u64>,
}

impl Metric {
    fn new(name: &'static str, unit: Unit) -> Metric {
        // Three significant digits from 1 to 10^12 (1000 s in ns): auto-resize is off so that
        // recording never allocates on the hot path; out-of-range values are clamped.
        let histogram = Histogram::new_with_bounds(1, 1_000_000_000_000, 3)
            .expect("constant histogram bounds are valid");
        Metric {
            name,
            unit,
            histogram,
        }
    }

    /// Records one value (clamped into the histogram's range).
    pub fn record(&mut self, value: u64) {
        let value = value.clamp(1, self.histogram.high());
        self.histogram.saturating_record(value);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The summary `--stats` prints.
    pub fn summary(&self) -> Summary {
        let h = &self.histogram;
        let empty = h.is_empty();
        let q = |quantile: f64| {
            if empty {
                0
            } else {
                h.value_at_quantile(quantile)
            }
        };
        Summary {
            name: self.name,
            unit: self.unit,
            count: h.len(),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            max: if empty { 0 } else { h.max() },
        }
    }
}

/// Percentiles of one metric, as printed and as written to JSON.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Summary {
    pub name: &'static str,
    pub unit: Unit,
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// The engine's histograms.
pub struct EngineStats {
    /// From the start of a receive batch to the transmit kick that carries its ACK.
    pub receive_to_ack: Metric,
    /// The part of `receive_to_ack` spent transmitting: building the batch's segments and the
    /// driver's kick (on veth the kick also runs the peer's receive path on our core).
    pub transmit: Metric,
    /// The driver's kick alone (`sendto` on AF_XDP): the kernel's work, not ours. On veth it
    /// runs the server's whole receive path, its TCP and its next transmissions on our core.
    pub kick: Metric,
    /// Our own work per non-empty receive batch (up to 64 frames): parsing and checking the
    /// frames, the TCP engine, the copy into the sink, the ACK decision and building the
    /// transmit batch; everything of the iteration but the kick.
    pub own_work: Metric,
    /// `own_work` by step, each per non-empty receive batch. The receive batch: the driver's
    /// rings, parsing and checking the frames, TCP, and the copy into the sink.
    pub own_receive: Metric,
    /// The dispatch of the sessions after the receive batch: HTTP, the receive window, the
    /// sink's checkpoint and hand-offs to its writer thread, timers.
    pub own_dispatch: Metric,
    /// Building the transmit batch (the ACK decision and the ACK frames), without the kick.
    pub own_transmit: Metric,
    /// Frames per non-empty receive batch.
    pub batch_size: Metric,
    /// Time spent in one loop iteration that did work (idle spins are not counted).
    pub loop_work: Metric,
    /// From our SYN to the connection being established, per connection.
    pub connect: Metric,
    /// From our SYN to the first body byte, per connection.
    pub first_byte: Metric,
    /// Loop iterations that found nothing to do, and blocking waits after a stretch of them.
    pub idle_loops: u64,
    pub idle_waits: u64,
    /// `--limit-rate`: how long the window we advertised, not the server or the path, set
    /// the pace (summed over connections).
    pub window_limited: std::time::Duration,
}

impl Default for EngineStats {
    fn default() -> Self {
        EngineStats {
            receive_to_ack: Metric::new("receive_to_ack", Unit::Nanoseconds),
            transmit: Metric::new("transmit", Unit::Nanoseconds),
            kick: Metric::new("kick", Unit::Nanoseconds),
            own_work: Metric::new("own_work", Unit::Nanoseconds),
            own_receive: Metric::new("own_receive", Unit::Nanoseconds),
            own_dispatch: Metric::new("own_dispatch", Unit::Nanoseconds),
            own_transmit: Metric::new("own_transmit", Unit::Nanoseconds),
            batch_size: Metric::new("batch_size", Unit::Frames),
            loop_work: Metric::new("loop_work", Unit::Nanoseconds),
            connect: Metric::new("connect", Unit::Nanoseconds),
            first_byte: Metric::new("first_byte", Unit::Nanoseconds),
            idle_loops: 0,
            idle_waits: 0,
            window_limited: std::time::Duration::ZERO,
        }
    }
}

impl EngineStats {
    /// Records one host step (`engine::host::Host::poll`).
    pub fn record_step(&mut self, step: &super::host::Step) {
        let total = step.before_transmit + step.transmit + step.kick;
        if step.received > 0 {
            self.batch_size.record(step.received as u64);
            self.own_work.record(nanos(total - step.kick));
            self.own_receive.record(nanos(step.receive));
            self.own_dispatch
                .record(nanos(step.before_transmit.saturating_sub(step.receive)));
            self.own_transmit.record(nanos(step.transmit));
            if step.sent > 0 {
                self.receive_to_ack.record(nanos(total));
                self.transmit.record(nanos(step.transmit + step.kick));
                self.kick.record(nanos(step.kick));
            }
        }
        if step.received > 0 || step.sent > 0 {
            self.loop_work.record(nanos(total));
        }
    }

    /// Every histogram's summary, in report order.
    pub fn summaries(&self) -> Vec<Summary> {
        [
            &self.receive_to_ack,
            &self.transmit,
            &self.kick,
            &self.own_work,
            &self.own_receive,
            &self.own_dispatch,
            &self.own_transmit,
            &self.batch_size,
            &self.loop_work,
            &self.connect,
            &self.first_byte,
        ]
        .iter()
        .map(|m| m.summary())
        .collect()
    }

    /// The table `--stats` prints: one row per metric, latencies in microseconds.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<22} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
            "metric", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        for s in self.summaries() {
            let (label, scale) = match s.unit {
                Unit::Nanoseconds => (format!("{} (µs)", s.name), 1000.0),
                Unit::Frames => (format!("{} (frames)", s.name), 1.0),
            };
            let v = |x: u64| format!("{:.1}", x as f64 / scale);
            out += &format!(
                "{:<22} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
                label,
                s.count,
                v(s.p50),
                v(s.p90),
                v(s.p99),
                v(s.p999),
                v(s.max)
            );
        }
        out += &format!(
            "idle loops {}, blocking waits after idling {}\n",
            self.idle_loops, self.idle_waits
        );
        if !self.window_limited.is_zero() {
            out += &format!(
                "--limit-rate: the advertised window set the pace for {:.2} s\n",
                self.window_limited.as_secs_f64()
            );
        }
        out
    }
}

/// Where the time from the start of the download command to the first SYN went, step by
/// step (`--stats`): argument checks, the engine thread, discovery, the port reservation,
/// the guard, the XDP program, the AF_XDP sockets, the neighbour's MAC. The SYN leaves
/// within microseconds of the last step.
#[derive(Clone, Debug, Serialize)]
pub struct SetupTimes {
    /// Steps in the order they ran.
    pub steps: Vec<SetupStep>,
    /// The end of the last step recorded (the start of the next one).
    #[serde(skip)]
    mark: std::time::Instant,
}

/// One step of [`SetupTimes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SetupStep {
    pub name: &'static str,
    pub micros: u64,
}

impl SetupTimes {
    /// Starts the clock now.
    pub fn start() -> SetupTimes {
        SetupTimes::start_at(std::time::Instant::now())
    }

    /// Starts the clock at `at` (an instant taken earlier).
    pub fn start_at(at: std::time::Instant) -> SetupTimes {
        SetupTimes {
            steps: Vec::new(),
            mark: at,
        }
    }

    /// Ends step `name` now: it took the time since the previous step ended.
    pub fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.push(name, now.saturating_duration_since(self.mark));
        self.mark = now;
    }

    /// Records sub-steps measured elsewhere (a driver's own steps), then ends step `rest`
    /// with what the sub-steps leave of the time since the previous step (zero or more).
    pub fn split(&mut self, parts: &[(&'static str, std::time::Duration)], rest: &'static str) {
        let now = std::time::Instant::now();
        let whole = now.saturating_duration_since(self.mark);
        let mut counted = std::time::Duration::ZERO;
        for &(name, took) in parts {
            self.push(name, took);
            counted += took;
        }
        self.push(rest, whole.saturating_sub(counted));
        self.mark = now;
    }

    fn push(&mut self, name: &'static str, took: std::time::Duration) {
        self.steps.push(SetupStep {
            name,
            micros: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
        });
    }

    /// The sum of the steps.
    pub fn total_micros(&self) -> u64 {
        self.steps.iter().map(|s| s.micros).sum()
    }

    /// The lines `--stats` prints: one per step, in milliseconds, and the total.
    pub fn table(&self) -> String {
        let mut out = String::from("set-up to the first SYN (ms):\n");
        for step in &self.steps {
            out += &format!("  {:<28} {:>8.2}\n", step.name, step.micros as f64 / 1000.0);
        }
        out += &format!(
            "  {:<28} {:>8.2}\n",
            "total",
            self.total_micros() as f64 / 1000.0
        );
        out
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_values() {
        let mut stats = EngineStats::default();
        for v in 1..=1000u64 {
            stats.receive_to_ack.record(v * 1000);
        }
        let s = stats.receive_to_ack.summary();
        assert_eq!(s.count, 1000);
        // Three significant digits: within 0.1 % of the exact rank.
        assert!((499_000..=501_000).contains(&s.p50), "p50 {}", s.p50);
        assert!((989_000..=991_000).contains(&s.p99), "p99 {}", s.p99);
        assert!(s.max >= 999_000);
        assert_eq!(
            stats.batch_size.summary().p99,
            0,
            "empty metric reports zeros"
        );
        let table = stats.table();
        assert!(table.contains("receive_to_ack (µs)"));
        let row = table.lines().nth(1).unwrap();
        assert!(
            row.contains(&format!("{:.1}", s.p50 as f64 / 1000.0)),
            "{row}"
        );
    }

    #[test]
    fn setup_steps_add_up_and_split_keeps_the_rest() {
        let start = std::time::Instant::now() - std::time::Duration::from_millis(5);
        let mut times = SetupTimes::start_at(start);
        times.lap("first");
        assert!(times.steps[0].micros >= 5000, "{:?}", times.steps);
        std::thread::sleep(std::time::Duration::from_millis(3));
        let part = std::time::Duration::from_millis(1);
        times.split(&[("part", part)], "rest");
        let names: Vec<&str> = times.steps.iter().map(|s| s.name).collect();
        assert_eq!(names, ["first", "part", "rest"]);
        assert_eq!(times.steps[1].micros, 1000);
        assert!(times.steps[2].micros >= 2000, "{:?}", times.steps);
        let total: u64 = times.steps.iter().map(|s| s.micros).sum();
        assert_eq!(times.total_micros(), total);
        let table = times.table();
        assert!(
            table
                .lines()
                .any(|l| l.trim_start().starts_with("part") && l.ends_with("1.00")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .last()
                .unwrap()
                .trim_start()
                .starts_with("total")
        );
        // sub-steps longer than the whole leave a zero rest, never an underflow
        times.split(&[("long", std::time::Duration::from_secs(60))], "none left");
        assert_eq!(times.steps.last().unwrap().micros, 0);
    }

    /// A step's own work is split into its receive, dispatch and transmit parts, which add
    /// up to it; the kick is in none of them, and a step that received nothing is not a batch.
    #[test]
    fn own_work_is_split_by_step_and_leaves_the_kick_out() {
        use std::time::Duration;
        let mut stats = EngineStats::default();
        let step = crate::engine::host::Step {
            received: 64,
            sent: 1,
            before_transmit: Duration::from_micros(30),
            receive: Duration::from_micros(21),
            transmit: Duration::from_micros(4),
            kick: Duration::from_micros(500),
        };
        stats.record_step(&step);
        stats.record_step(&crate::engine::host::Step {
            received: 0,
            sent: 1,
            ..step
        });
        let p50 = |m: &Metric| m.summary().p50;
        let near = |value: u64, micros: u64| value.abs_diff(micros * 1000) <= micros;
        assert_eq!(stats.own_work.count(), 1);
        assert!(near(p50(&stats.own_work), 34), "{}", p50(&stats.own_work));
        assert!(near(p50(&stats.own_receive), 21));
        assert!(near(p50(&stats.own_dispatch), 9));
        assert!(near(p50(&stats.own_transmit), 4));
        let names: Vec<&str> = stats.summaries().iter().map(|s| s.name).collect();
        let at = |name: &str| names.iter().position(|n| *n == name).expect(name);
        assert_eq!(at("own_receive"), at("own_work") + 1);
        assert!(stats.table().contains("own_dispatch (µs)"));
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut m = Metric::new("x", Unit::Frames);
        m.record(0);
        m.record(u64::MAX);
        assert_eq!(m.count(), 2);
    }
}
