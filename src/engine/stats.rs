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
}

impl Default for EngineStats {
    fn default() -> Self {
        EngineStats {
            receive_to_ack: Metric::new("receive_to_ack", Unit::Nanoseconds),
            transmit: Metric::new("transmit", Unit::Nanoseconds),
            kick: Metric::new("kick", Unit::Nanoseconds),
            own_work: Metric::new("own_work", Unit::Nanoseconds),
            batch_size: Metric::new("batch_size", Unit::Frames),
            loop_work: Metric::new("loop_work", Unit::Nanoseconds),
            connect: Metric::new("connect", Unit::Nanoseconds),
            first_byte: Metric::new("first_byte", Unit::Nanoseconds),
            idle_loops: 0,
            idle_waits: 0,
        }
    }
}

impl EngineStats {
    /// Every histogram's summary, in report order.
    pub fn summaries(&self) -> Vec<Summary> {
        [
            &self.receive_to_ack,
            &self.transmit,
            &self.kick,
            &self.own_work,
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
        out
    }
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
    fn out_of_range_values_are_clamped_not_lost() {
        let mut m = Metric::new("x", Unit::Frames);
        m.record(0);
        m.record(u64::MAX);
        assert_eq!(m.count(), 2);
    }
}
