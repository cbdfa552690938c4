//! Drawing progress like wget: a bar on a terminal, dots, or nothing; and wget's summary line.

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle as BarStyle};

use super::args::ProgressStyle;
use crate::engine::progress::Snapshot;
use crate::http::date::civil_from_days;

/// The style to use when the user did not choose: a bar on a terminal, nothing on a pipe.
pub fn default_style(quiet: bool) -> ProgressStyle {
    if quiet || !std::io::stderr().is_terminal() {
        ProgressStyle::None
    } else {
        ProgressStyle::Bar
    }
}

/// A progress display for one file, fed snapshots by the main thread.
pub enum Display {
    Bar(ProgressBar),
    Dot { printed: u64 },
    None,
}

/// Bytes per dot in the dot style (wget's "mega" style uses 64 KiB dots, 48 per line).
const DOT_BYTES: u64 = 64 * 1024;
const DOTS_PER_LINE: u64 = 48;

impl Display {
    pub fn new(style: ProgressStyle, name: &str, total: Option<u64>) -> Display {
        match style {
            ProgressStyle::Bar => {
                let bar = match total {
                    Some(t) => ProgressBar::new(t),
                    None => ProgressBar::new_spinner(),
                };
                bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
                set_bar_style(&bar, total.is_some());
                bar.set_prefix(name.to_string());
                Display::Bar(bar)
            }
            ProgressStyle::Dot => Display::Dot { printed: 0 },
            ProgressStyle::None => Display::None,
        }
    }

    pub fn update(&mut self, snap: Snapshot) {
        match self {
            Display::Bar(bar) => {
                if let Some(total) = snap.total {
                    // The length becomes known with the response head: from a spinner to a
                    // bar with percent and ETA.
                    if bar.length() != Some(total) {
                        set_bar_style(bar, true);
                        bar.set_length(total);
                    }
                }
                bar.set_position(snap.received);
            }
            Display::Dot { printed } => {
                let mut err = std::io::stderr().lock();
                while (*printed + 1) * DOT_BYTES <= snap.received {
                    *printed += 1;
                    let _ = err.write_all(b".");
                    if *printed % DOTS_PER_LINE == 0 {
                        let done = *printed * DOT_BYTES;
                        let _ = match snap.total {
                            Some(t) if t > 0 => {
                                writeln!(err, " {:>3}% {}", done * 100 / t, human_bytes(done))
                            }
                            _ => writeln!(err, " {}", human_bytes(done)),
                        };
                    }
                }
            }
            Display::None => {}
        }
    }

    pub fn finish(&mut self) {
        match self {
            Display::Bar(bar) => bar.finish(),
            Display::Dot { printed } if *printed % DOTS_PER_LINE != 0 => eprintln!(),
            _ => {}
        }
    }
}

/// wget's look: name, percent, bar, bytes, rate, ETA; a spinner while the length is unknown.
fn set_bar_style(bar: &ProgressBar, known_length: bool) {
    let template = if known_length {
        "{prefix:<20!} {percent:>3}%[{wide_bar:.cyan/blue}] {bytes:>10} {binary_bytes_per_sec:>12}  eta {eta}"
    } else {
        "{prefix:<20!} [{spinner}] {bytes:>10} {binary_bytes_per_sec:>12}"
    };
    if let Ok(style) = BarStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
}

/// "1.5 MiB"-style sizes, as the summary and dot lines print them.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A rate the way wget prints it: "112 MB/s" (decimal units, as wget).
pub fn human_rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-6);
    let rate = bytes as f64 / secs;
    match rate {
        r if r >= 1e9 => format!("{:.2} GB/s", r / 1e9),
        r if r >= 1e6 => format!("{:.1} MB/s", r / 1e6),
        r if r >= 1e3 => format!("{:.1} KB/s", r / 1e3),
        r => format!("{r:.0} B/s"),
    }
}

/// wget's closing line: `2026-11-22 01:50:12 (112 MB/s) - 'out.bin' saved [1048576/1048576]`.
/// The rate is of the `transferred` bytes (less than `bytes` after a resume).
pub fn summary_line(
    name: &str,
    bytes: u64,
    total: Option<u64>,
    elapsed: Duration,
    transferred: u64,
) -> String {
    let size = match total {
        Some(t) => format!("{bytes}/{t}"),
        None => format!("{bytes}"),
    };
    format!(
        "{} ({}) - '{}' saved [{}]",
        timestamp_now(),
        human_rate(transferred, elapsed),
        name,
        size
    )
}

/// Now, as wget prints it at the start of a download (UTC).
pub fn timestamp_now() -> String {
    utc_timestamp(SystemTime::now())
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, without a date library.
fn utc_timestamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_sizes_print_like_wget() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(
            utc_timestamp(UNIX_EPOCH + Duration::from_secs(86_400 + 3_723)),
            "1970-01-02 01:02:03"
        );
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(
            human_rate(112_000_000, Duration::from_secs(1)),
            "112.0 MB/s"
        );
        let line = summary_line("a.bin", 10, Some(10), Duration::from_secs(1), 10);
        assert!(line.ends_with("(10 B/s) - 'a.bin' saved [10/10]"), "{line}");
    }
}
