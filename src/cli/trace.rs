//! Congestion traces: how cwnd, ssthresh, the peer's window and the bytes in flight moved
//! during a transfer, written as CSV (`--trace FILE.csv`) and plotted as SVG (`--plot FILE.svg`).
//!
//! What to look for in a plot (RFC 5681 names):
//!
//! - **Slow start** (§3.1): cwnd grows by about one segment per ACK, so it doubles every
//!   round trip — an exponential curve from the initial window (RFC 6928: 10 segments).
//! - **Congestion avoidance** (§3.1): once cwnd reaches ssthresh, it grows by about one
//!   segment per round trip — a straight, gentle slope.
//! - **Fast retransmit / fast recovery** (§3.2, RFC 6582): three duplicate ACKs mean one
//!   segment was lost but later ones arrived. ssthresh becomes half the flight size and cwnd
//!   follows it: the repeated halvings and slow climbs make the *sawtooth* of Reno.
//! - **Retransmission timeout** (RFC 6298, RFC 5681 §3.1): no ACK at all for an RTO. ssthresh
//!   becomes half the flight size and cwnd falls to one segment: a cliff, then slow start
//!   again up to the new ssthresh.
//!
//! A 64 MiB transfer changes cwnd on most of its ~50 000 ACKs. The recorder keeps a row only
//! when something changed, and when it reaches its row limit it halves its rows (always
//! keeping events and the row just before each event, which holds the peak of the sawtooth)
//! and from then on samples at most once per interval: the file stays small, the shape stays
//! visible.

use std::io::{self, Write};

use super::svg::{LinePlot, Marker, Series};
use crate::time::Instant;

/// Something the congestion controller did, marked on the plot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// Three duplicate ACKs: a segment was resent without waiting for the timer (RFC 5681 §3.2).
    FastRetransmit,
    /// The retransmission timer expired (RFC 6298 §5).
    Rto,
}

impl TraceEvent {
    /// The name in the CSV's `event` column.
    pub fn name(self) -> &'static str {
        match self {
            TraceEvent::FastRetransmit => "fast_retransmit",
            TraceEvent::Rto => "rto",
        }
    }

    fn short_label(self) -> &'static str {
        match self {
            TraceEvent::FastRetransmit => "FR",
            TraceEvent::Rto => "RTO",
        }
    }

    fn color(self) -> &'static str {
        match self {
            TraceEvent::FastRetransmit => "#E69F00",
            TraceEvent::Rto => "#CC0000",
        }
    }
}

/// The sender's state at one instant, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceSample {
    pub cwnd: u64,
    /// `None` while ssthresh is still "arbitrarily high" (RFC 5681 §3.1), before any loss.
    pub ssthresh: Option<u64>,
    /// The window the peer advertised (after scaling).
    pub rwnd: u64,
    /// Bytes sent and not yet acknowledged (RFC 5681's FlightSize).
    pub in_flight: u64,
}

/// One row of the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRow {
    pub at: Instant,
    pub sample: TraceSample,
    pub event: Option<TraceEvent>,
}

/// Records samples with bounded memory.
#[derive(Clone, Debug)]
pub struct TraceRecorder {
    rows: Vec<TraceRow>,
    max_rows: usize,
    /// Rows without an event are at least this far apart (0 until the first decimation).
    min_interval_micros: u64,
    /// The newest sample offered but not recorded (too soon after the previous row); it is
    /// written before the next recorded row and at the end, so no final state is lost.
    pending: Option<TraceRow>,
    offered: u64,
    /// The counters passed to the last [`Self::observe`]: (fast retransmits, timeouts).
    seen_counters: (u64, u64),
}

impl Default for TraceRecorder {
    fn default() -> TraceRecorder {
        TraceRecorder::new()
    }
}

impl TraceRecorder {
    /// Enough rows for a smooth plot; about 4 MB of CSV.
    pub const DEFAULT_MAX_ROWS: usize = 100_000;

    /// A recorder keeping at most [`Self::DEFAULT_MAX_ROWS`] rows.
    pub fn new() -> TraceRecorder {
        TraceRecorder::with_max_rows(Self::DEFAULT_MAX_ROWS)
    }

    /// A recorder keeping at most `max_rows` rows (at least 16).
    pub fn with_max_rows(max_rows: usize) -> TraceRecorder {
        let max_rows = max_rows.max(16);
        TraceRecorder {
            rows: Vec::with_capacity(max_rows.min(4096)),
            max_rows,
            min_interval_micros: 0,
            pending: None,
            offered: 0,
            seen_counters: (0, 0),
        }
    }

    /// Offers the state at `at`; kept only if it differs from the last row (and, after a
    /// decimation, if the sampling interval has passed).
    pub fn record(&mut self, at: Instant, sample: TraceSample) {
        self.offer(TraceRow {
            at,
            sample,
            event: None,
        });
    }

    /// Records `event` with the state at `at`: always kept.
    pub fn event(&mut self, at: Instant, sample: TraceSample, event: TraceEvent) {
        self.offer(TraceRow {
            at,
            sample,
            event: Some(event),
        });
    }

    /// For hooks that see the sender's cumulative counters (fast retransmits and timeouts so
    /// far) rather than the events themselves: records an event for each counter that grew
    /// since the previous call, or else offers the sample as [`Self::record`] does.
    pub fn observe(&mut self, at: Instant, sample: TraceSample, fast_retransmits: u64, rtos: u64) {
        let (seen_fast_retransmits, seen_rtos) = self.seen_counters;
        self.seen_counters = (fast_retransmits, rtos);
        let mut marked = false;
        if fast_retransmits > seen_fast_retransmits {
            self.event(at, sample, TraceEvent::FastRetransmit);
            marked = true;
        }
        if rtos > seen_rtos {
            self.event(at, sample, TraceEvent::Rto);
            marked = true;
        }
        if !marked {
            self.record(at, sample);
        }
    }

    /// Samples offered so far, kept or not.
    pub fn offered(&self) -> u64 {
        self.offered
    }

    /// The rows kept, oldest first (including a final pending sample).
    pub fn rows(&self) -> Vec<TraceRow> {
        let mut rows = self.rows.clone();
        rows.extend(self.pending);
        rows
    }

    fn offer(&mut self, row: TraceRow) {
        self.offered += 1;
        let last = self.pending.as_ref().or(self.rows.last());
        if row.event.is_none() && last.is_some_and(|last| last.sample == row.sample) {
            return;
        }
        let too_soon = self.rows.last().is_some_and(|last| {
            row.at.total_micros()
                < last
                    .at
                    .total_micros()
                    .saturating_add(self.min_interval_micros)
        });
        if row.event.is_none() && too_soon {
            self.pending = Some(row);
            return;
        }
        // A sample held back is the state just before this row: for an event, the peak.
        if let Some(pending) = self.pending.take() {
            self.push(pending);
        }
        self.push(row);
    }

    fn push(&mut self, row: TraceRow) {
        if self.rows.len() >= self.max_rows {
            self.decimate();
        }
        self.rows.push(row);
    }

    /// Halves the rows: keeps events, the row before each event, the first and the last,
    /// and every other one of the rest; then samples half as often.
    fn decimate(&mut self) {
        let rows = core::mem::take(&mut self.rows);
        let count = rows.len();
        let mut kept = Vec::with_capacity(self.max_rows);
        let mut plain_seen = 0usize;
        for (i, row) in rows.iter().enumerate() {
            let before_event = rows.get(i + 1).is_some_and(|next| next.event.is_some());
            let must_keep = row.event.is_some() || before_event || i == 0 || i + 1 == count;
            if must_keep {
                kept.push(*row);
            } else {
                if plain_seen.is_multiple_of(2) {
                    kept.push(*row);
                }
                plain_seen += 1;
            }
        }
        // If events alone fill the table, drop the older half of everything.
        if kept.len() >= self.max_rows {
            kept.drain(..kept.len() / 2);
        }
        let span = match (kept.first(), kept.last()) {
            (Some(first), Some(last)) => last.at.total_micros() - first.at.total_micros(),
            _ => 0,
        };
        let interval_from_span = span.saturating_mul(2) / self.max_rows as u64;
        self.min_interval_micros = (self.min_interval_micros.saturating_mul(2))
            .max(interval_from_span)
            .max(1);
        self.rows = kept;
    }

    /// Writes the trace as CSV: `t_seconds,cwnd,ssthresh,rwnd,in_flight,event`, one row per
    /// line; an infinite ssthresh is an empty cell, a row without event has an empty event.
    pub fn write_csv<W: Write>(&self, mut out: W) -> io::Result<()> {
        writeln!(out, "t_seconds,cwnd,ssthresh,rwnd,in_flight,event")?;
        for row in self.rows.iter().chain(self.pending.iter()) {
            let micros = row.at.total_micros();
            let ssthresh = row
                .sample
                .ssthresh
                .map(|s| s.to_string())
                .unwrap_or_default();
            writeln!(
                out,
                "{}.{:06},{},{},{},{},{}",
                micros / 1_000_000,
                micros % 1_000_000,
                row.sample.cwnd,
                ssthresh,
                row.sample.rwnd,
                row.sample.in_flight,
                row.event.map(TraceEvent::name).unwrap_or("")
            )?;
        }
        Ok(())
    }

    /// A plot of cwnd, ssthresh and in-flight bytes over time, with a vertical line at each
    /// fast retransmit and timeout. rwnd is drawn only when it is close enough to the others
    /// to matter (a 1 GiB window would flatten every other line).
    pub fn plot(&self, title: &str) -> LinePlot {
        let rows = self.rows();
        let seconds = |row: &TraceRow| row.at.total_micros() as f64 / 1e6;
        let series_of = |value: &dyn Fn(&TraceSample) -> Option<u64>| -> Vec<(f64, f64)> {
            rows.iter()
                .filter_map(|row| value(&row.sample).map(|v| (seconds(row), v as f64)))
                .collect()
        };
        let cwnd = series_of(&|s| Some(s.cwnd));
        let in_flight = series_of(&|s| Some(s.in_flight));
        let ssthresh = series_of(&|s| s.ssthresh);
        let rwnd = series_of(&|s| Some(s.rwnd));

        let peak = |points: &[(f64, f64)]| points.iter().map(|p| p.1).fold(0.0, f64::max);
        let mut series = vec![
            Series::steps("cwnd", cwnd.clone()),
            Series {
                dashed: true,
                ..Series::steps("ssthresh", ssthresh)
            },
            Series::steps("in flight", in_flight.clone()),
        ];
        if peak(&rwnd) <= 2.0 * peak(&cwnd).max(peak(&in_flight)) {
            series.push(Series::steps("rwnd", rwnd));
        }

        let events: Vec<&TraceRow> = rows.iter().filter(|row| row.event.is_some()).collect();
        let labelled = events.len() <= 40;
        let markers = events
            .iter()
            .filter_map(|row| {
                let event = row.event?;
                Some(Marker {
                    x: seconds(row),
                    label: if labelled {
                        event.short_label().to_string()
                    } else {
                        String::new()
                    },
                    color: event.color().to_string(),
                })
            })
            .collect();
        LinePlot {
            title: title.to_string(),
            x_label: "time (s)".to_string(),
            y_label: "bytes".to_string(),
            series,
            markers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cwnd: u64, ssthresh: Option<u64>, in_flight: u64) -> TraceSample {
        TraceSample {
            cwnd,
            ssthresh,
            rwnd: 65_535,
            in_flight,
        }
    }

    #[test]
    fn records_on_change_and_writes_csv() {
        let mut trace = TraceRecorder::new();
        trace.record(Instant::ZERO, sample(14_600, None, 0));
        trace.record(Instant::from_micros(10), sample(14_600, None, 0)); // no change
        trace.record(Instant::from_millis(20), sample(16_060, None, 1460));
        trace.event(
            Instant::from_micros(1_500_000),
            sample(8000, Some(8000), 12_000),
            TraceEvent::FastRetransmit,
        );
        trace.event(
            Instant::from_micros(2_250_001),
            sample(1460, Some(4000), 0),
            TraceEvent::Rto,
        );
        assert_eq!(trace.offered(), 5);
        assert_eq!(trace.rows().len(), 4);
        let mut csv = Vec::new();
        trace.write_csv(&mut csv).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "t_seconds,cwnd,ssthresh,rwnd,in_flight,event\n\
             0.000000,14600,,65535,0,\n\
             0.020000,16060,,65535,1460,\n\
             1.500000,8000,8000,65535,12000,fast_retransmit\n\
             2.250001,1460,4000,65535,0,rto\n"
        );
    }

    #[test]
    fn row_count_stays_bounded_and_events_survive() {
        let mut trace = TraceRecorder::with_max_rows(1000);
        let mut events = Vec::new();
        // 200 000 changing samples, 10 µs apart, a fast retransmit every 10 000.
        for i in 0..200_000u64 {
            let at = Instant::from_micros(i * 10);
            if i % 10_000 == 9_999 {
                trace.event(
                    at,
                    sample(i % 10_000, Some(5000), 0),
                    TraceEvent::FastRetransmit,
                );
                events.push(at);
            } else {
                trace.record(at, sample(i % 10_000, Some(5000), 0));
            }
        }
        let rows = trace.rows();
        assert!(rows.len() <= 1001, "{}", rows.len());
        assert!(rows.len() >= 250, "{}", rows.len());
        let kept_events: Vec<Instant> = rows
            .iter()
            .filter(|r| r.event.is_some())
            .map(|r| r.at)
            .collect();
        assert_eq!(kept_events, events);
        // Each event is preceded by the sample just before it, the peak of the sawtooth.
        for (k, row) in rows.iter().enumerate().filter(|(_, r)| r.event.is_some()) {
            let before = rows[k - 1];
            assert_eq!(
                before.sample.cwnd,
                row.sample.cwnd - 1,
                "peak before {:?}",
                row.at
            );
        }
        assert!(rows.windows(2).all(|w| w[0].at <= w[1].at));
        // The last state offered is still there.
        assert_eq!(rows.last().unwrap().at, Instant::from_micros(199_999 * 10));
        // And the rows spread over the whole run, not just its start.
        let first_half = rows
            .iter()
            .filter(|r| r.at < Instant::from_micros(1_000_000))
            .count();
        assert!(
            first_half > rows.len() / 4 && first_half < rows.len() * 3 / 4,
            "{first_half}"
        );
    }

    #[test]
    fn observe_turns_counter_growth_into_events() {
        let mut trace = TraceRecorder::new();
        let at = Instant::from_millis;
        trace.observe(at(1), sample(10, None, 5), 0, 0);
        trace.observe(at(2), sample(20, None, 5), 0, 0);
        trace.observe(at(3), sample(10, Some(10), 5), 1, 0);
        trace.observe(at(4), sample(11, Some(10), 5), 1, 0);
        trace.observe(at(5), sample(1, Some(5), 0), 1, 1);
        trace.observe(at(6), sample(1, Some(5), 0), 3, 2);
        let events: Vec<(Instant, Option<TraceEvent>)> =
            trace.rows().iter().map(|r| (r.at, r.event)).collect();
        assert_eq!(
            events,
            vec![
                (at(1), None),
                (at(2), None),
                (at(3), Some(TraceEvent::FastRetransmit)),
                (at(4), None),
                (at(5), Some(TraceEvent::Rto)),
                (at(6), Some(TraceEvent::FastRetransmit)),
                (at(6), Some(TraceEvent::Rto)),
            ]
        );
    }

    #[test]
    fn plot_has_the_series_and_markers() {
        let mut trace = TraceRecorder::new();
        // A receive window small enough to limit the sender is worth drawing.
        let limited = |s: TraceSample| TraceSample { rwnd: 40_000, ..s };
        trace.record(Instant::ZERO, limited(sample(14_600, None, 0)));
        trace.record(
            Instant::from_millis(20),
            limited(sample(29_200, None, 14_600)),
        );
        trace.event(
            Instant::from_millis(40),
            limited(sample(14_600, Some(14_600), 20_000)),
            TraceEvent::Rto,
        );
        let plot = trace.plot("test");
        let names: Vec<&str> = plot.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["cwnd", "ssthresh", "in flight", "rwnd"]);
        assert_eq!(plot.series[1].points, vec![(0.04, 14_600.0)]);
        assert_eq!(plot.markers.len(), 1);
        assert_eq!(plot.markers[0].label, "RTO");
        let svg = plot.render(800, 450);
        assert!(svg.contains(">RTO</text>"));

        // A huge rwnd is left out so the other lines stay readable.
        trace.record(
            Instant::from_millis(60),
            TraceSample {
                rwnd: 1 << 30,
                ..sample(16_000, Some(14_600), 0)
            },
        );
        assert_eq!(trace.plot("test").series.len(), 3);
    }
}
