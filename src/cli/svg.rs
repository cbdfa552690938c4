//! A small, dependency-free SVG chart writer: line plots (congestion traces) and grouped bar
//! charts (benchmarks).
//!
//! The output is plain SVG 1.1 that any browser, `rsvg-convert` or Inkscape opens. Lines are
//! drawn with at most a few points per pixel column: each series is reduced to the first,
//! lowest, highest and last point of every column before it is written, so a trace of
//! 100 000 samples makes a file of a few hundred kilobytes that still shows every peak and
//! every dip of a sawtooth.

use core::fmt::Write as _;

/// Colours that stay distinct for the colour-blind (Okabe and Ito, 2008).
const PALETTE: [&str; 7] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
];

const MARGIN_LEFT: f64 = 80.0;
const MARGIN_RIGHT: f64 = 24.0;
const MARGIN_TOP: f64 = 56.0;
const MARGIN_BOTTOM: f64 = 84.0;
/// How far below the x axis the legend row sits (the axis label is at 44).
const LEGEND_OFFSET: f64 = 70.0;
const FONT: &str = "font-family=\"sans-serif\"";

/// One line of a [`LinePlot`].
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    /// `(x, y)` points in increasing `x`. Non-finite values are skipped.
    pub points: Vec<(f64, f64)>,
    /// Draw as a staircase (hold each value until the next point), as for a window that
    /// changes in steps, rather than joining the points with slopes.
    pub step: bool,
    /// Dashed line, for a threshold such as ssthresh.
    pub dashed: bool,
}

impl Series {
    /// A solid staircase series.
    pub fn steps(name: &str, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.to_string(),
            points,
            step: true,
            dashed: false,
        }
    }
}

/// A vertical line at `x`, labelled, for an event (a fast retransmit, a timeout).
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub x: f64,
    pub label: String,
    pub color: String,
}

/// A line plot with axes, ticks, a legend and event markers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
}

/// A grouped bar chart: one group per category, one bar per series in each group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    pub categories: Vec<String>,
    /// `(name, one value per category)`.
    pub series: Vec<(String, Vec<f64>)>,
}

/// Escapes text for use inside SVG elements and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// Round tick positions covering `low..=high`: steps of 1, 2 or 5 times a power of ten,
/// about `target` of them.
pub fn nice_ticks(low: f64, high: f64, target: usize) -> Vec<f64> {
    if !(low.is_finite() && high.is_finite()) || high <= low || target == 0 {
        return vec![low];
    }
    let raw_step = (high - low) / target as f64;
    let magnitude = 10f64.powf(raw_step.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= raw_step)
        .unwrap_or(10.0 * magnitude);
    let first = (low / step).ceil() as i64;
    let last = (high / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label: integers without decimals, large numbers with k/M/G, small ones short.
pub fn format_tick(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        trim_decimals(format!("{:.2}", value / 1e9)) + "G"
    } else if magnitude >= 1e6 {
        trim_decimals(format!("{:.2}", value / 1e6)) + "M"
    } else if magnitude >= 1e4 {
        trim_decimals(format!("{:.2}", value / 1e3)) + "k"
    } else if value == value.trunc() {
        format!("{value:.0}")
    } else {
        trim_decimals(format!("{value:.3}"))
    }
}

fn trim_decimals(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Maps data coordinates to pixels.
struct Frame {
    x_min: f64,
    x_max: f64,
    y_min: f64,
    y_max: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    /// The plot area of a `width` × `height` image (inside the margins) for these ranges.
    fn new(
        (x_min, x_max): (f64, f64),
        (y_min, y_max): (f64, f64),
        width: u32,
        height: u32,
    ) -> Frame {
        Frame {
            x_min,
            x_max,
            y_min,
            y_max,
            left: MARGIN_LEFT,
            right: f64::from(width) - MARGIN_RIGHT,
            top: MARGIN_TOP,
            bottom: f64::from(height) - MARGIN_BOTTOM,
        }
    }

    fn px(&self, x: f64) -> f64 {
        self.left + (x - self.x_min) / (self.x_max - self.x_min) * (self.right - self.left)
    }
    fn py(&self, y: f64) -> f64 {
        self.bottom - (y - self.y_min) / (self.y_max - self.y_min) * (self.bottom - self.top)
    }
}

/// Keeps the first, lowest, highest and last point of each pixel column, in x order.
fn reduce_to_columns(points: &[(f64, f64)], frame: &Frame) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut column: Option<(i64, [(f64, f64); 4])> = None;
    let flush = |out: &mut Vec<(f64, f64)>, kept: [(f64, f64); 4]| {
        let [first, low, high, last] = kept;
        let mut middle = [low, high];
        middle.sort_by(|a, b| a.0.total_cmp(&b.0));
        for point in [first, middle[0], middle[1], last] {
            if out.last() != Some(&point) {
                out.push(point);
            }
        }
    };
    for &(x, y) in points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
    {
        let index = frame.px(x).floor() as i64;
        match &mut column {
            Some((current, kept)) if *current == index => {
                if y < kept[1].1 {
                    kept[1] = (x, y);
                }
                if y > kept[2].1 {
                    kept[2] = (x, y);
                }
                kept[3] = (x, y);
            }
            _ => {
                if let Some((_, kept)) = column.take() {
                    flush(&mut out, kept);
                }
                column = Some((index, [(x, y); 4]));
            }
        }
    }
    if let Some((_, kept)) = column {
        flush(&mut out, kept);
    }
    out
}

fn axis_range(values: impl Iterator<Item = f64>, include_zero: bool) -> (f64, f64) {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for value in values.filter(|v| v.is_finite()) {
        low = low.min(value);
        high = high.max(value);
    }
    if low > high {
        return (0.0, 1.0);
    }
    if include_zero {
        low = low.min(0.0);
        high = high.max(0.0);
    }
    if high - low < f64::EPSILON * high.abs().max(1.0) {
        return (low - 1.0, high + 1.0);
    }
    (low, high)
}

fn svg_open(svg: &mut String, width: u32, height: u32, title: &str) {
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\">"
    );
    let _ = writeln!(
        svg,
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" {FONT} font-size=\"18\" text-anchor=\"middle\">{}</text>",
        f64::from(width) / 2.0,
        escape(title)
    );
}

/// Draws the axes, grid lines, ticks and axis labels of `frame`.
fn draw_axes(svg: &mut String, frame: &Frame, x_label: &str, y_label: &str, x_ticks: bool) {
    for y in nice_ticks(frame.y_min, frame.y_max, 6) {
        let py = frame.py(y);
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#e0e0e0\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" {FONT} font-size=\"12\" text-anchor=\"end\">{}</text>",
            frame.left,
            frame.right,
            frame.left - 6.0,
            py + 4.0,
            format_tick(y)
        );
    }
    if x_ticks {
        for x in nice_ticks(frame.x_min, frame.x_max, 8) {
            let px = frame.px(x);
            let _ = writeln!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#000\"/>\n\
                 <text x=\"{px:.1}\" y=\"{:.1}\" {FONT} font-size=\"12\" text-anchor=\"middle\">{}</text>",
                frame.bottom,
                frame.bottom + 5.0,
                frame.bottom + 19.0,
                format_tick(x)
            );
        }
    }
    let _ = writeln!(
        svg,
        "<polyline points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" fill=\"none\" stroke=\"#000\"/>",
        frame.left, frame.top, frame.left, frame.bottom, frame.right, frame.bottom
    );
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" {FONT} font-size=\"14\" text-anchor=\"middle\">{}</text>",
        (frame.left + frame.right) / 2.0,
        frame.bottom + 44.0,
        escape(x_label)
    );
    let _ = writeln!(
        svg,
        "<text transform=\"translate(18,{:.1}) rotate(-90)\" {FONT} font-size=\"14\" \
         text-anchor=\"middle\">{}</text>",
        (frame.top + frame.bottom) / 2.0,
        escape(y_label)
    );
}

/// The legend: one row of entries centred below the x-axis label, where it can never hide
/// a line or a bar.
fn draw_legend(svg: &mut String, frame: &Frame, entries: &[(String, &str, bool, bool)]) {
    const SWATCH: f64 = 24.0;
    const GAP: f64 = 20.0;
    let entry_width = |name: &str| SWATCH + 6.0 + 7.0 * name.chars().count() as f64;
    let total: f64 = entries.iter().map(|e| entry_width(&e.0) + GAP).sum::<f64>() - GAP;
    let mut x = (frame.left + frame.right) / 2.0 - total / 2.0;
    let row = frame.bottom + LEGEND_OFFSET;
    for (name, color, dashed, bar) in entries {
        if *bar {
            let _ = writeln!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{SWATCH}\" height=\"10\" fill=\"{color}\"/>",
                row - 9.0
            );
        } else {
            let dash = if *dashed {
                " stroke-dasharray=\"6,4\""
            } else {
                ""
            };
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" \
                 stroke-width=\"2.5\"{dash}/>",
                row - 4.0,
                x + SWATCH,
                row - 4.0
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{row:.1}\" {FONT} font-size=\"12\">{}</text>",
            x + SWATCH + 6.0,
            escape(name)
        );
        x += entry_width(name) + GAP;
    }
}

impl LinePlot {
    /// Renders the plot as an SVG document `width` × `height` pixels.
    pub fn render(&self, width: u32, height: u32) -> String {
        let width = width.max(200);
        let height = height.max(150);
        let all_points = || self.series.iter().flat_map(|s| s.points.iter());
        let marker_xs = self.markers.iter().map(|m| m.x);
        let (x_min, x_max) = axis_range(all_points().map(|p| p.0).chain(marker_xs), false);
        let (y_min, y_max) = axis_range(all_points().map(|p| p.1), true);
        // Head room above the highest point, so the top of a line is not drawn on the border.
        let y_max = y_max + (y_max - y_min) * 0.05;
        let frame = Frame::new((x_min, x_max), (y_min, y_max), width, height);

        let mut svg = String::new();
        svg_open(&mut svg, width, height, &self.title);
        draw_axes(&mut svg, &frame, &self.x_label, &self.y_label, true);

        for (i, marker) in self.markers.iter().enumerate() {
            let px = frame.px(marker.x);
            let _ = writeln!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"{}\" \
                 stroke-width=\"1\" stroke-dasharray=\"3,3\"><title>{}</title></line>",
                frame.top,
                frame.bottom,
                escape(&marker.color),
                escape(&marker.label)
            );
            // Labels alternate between two rows so that neighbours do not overwrite each other.
            let label_y = frame.top - 4.0 - 11.0 * (i % 2) as f64;
            let _ = writeln!(
                svg,
                "<text x=\"{px:.1}\" y=\"{label_y:.1}\" {FONT} font-size=\"10\" fill=\"{}\" \
                 text-anchor=\"middle\">{}</text>",
                escape(&marker.color),
                escape(&marker.label)
            );
        }

        let _ = writeln!(
            svg,
            "<clipPath id=\"plot-area\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/></clipPath>",
            frame.left,
            frame.top,
            frame.right - frame.left,
            frame.bottom - frame.top
        );
        let mut legend = Vec::new();
        for (i, series) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            legend.push((series.name.clone(), color, series.dashed, false));
            let points = reduce_to_columns(&series.points, &frame);
            if points.is_empty() {
                continue;
            }
            let mut path = String::with_capacity(points.len() * 16);
            for (k, &(x, y)) in points.iter().enumerate() {
                let (px, py) = (frame.px(x), frame.py(y));
                let _ = if k == 0 {
                    write!(path, "M{px:.1},{py:.1}")
                } else if series.step {
                    write!(path, "H{px:.1}V{py:.1}")
                } else {
                    write!(path, "L{px:.1},{py:.1}")
                };
            }
            let dash = if series.dashed {
                " stroke-dasharray=\"6,4\""
            } else {
                ""
            };
            // The first series is the main one: a wider line stays visible under the others.
            let stroke_width = if i == 0 { 3.0 } else { 1.5 };
            let _ = writeln!(
                svg,
                "<path d=\"{path}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{stroke_width}\" \
                 stroke-linejoin=\"round\" clip-path=\"url(#plot-area)\"{dash}/>"
            );
        }
        draw_legend(&mut svg, &frame, &legend);
        svg.push_str("</svg>\n");
        svg
    }
}

impl BarChart {
    /// Renders the chart as an SVG document `width` × `height` pixels.
    pub fn render(&self, width: u32, height: u32) -> String {
        let width = width.max(200);
        let height = height.max(150);
        let values = self
            .series
            .iter()
            .flat_map(|(_, values)| values.iter().copied());
        let (y_min, y_max) = axis_range(values, true);
        let y_max = y_max + (y_max - y_min) * 0.12; // room for the legend and value labels
        let categories = (0.0, self.categories.len().max(1) as f64);
        let frame = Frame::new(categories, (y_min, y_max), width, height);
        let mut svg = String::new();
        svg_open(&mut svg, width, height, &self.title);
        draw_axes(&mut svg, &frame, "", &self.y_label, false);

        let group_width = frame.px(1.0) - frame.px(0.0);
        let bars = self.series.len().max(1) as f64;
        let bar_width = group_width * 0.8 / bars;
        for (c, category) in self.categories.iter().enumerate() {
            let group_left = frame.px(c as f64) + group_width * 0.1;
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" {FONT} font-size=\"12\" text-anchor=\"middle\">{}</text>",
                group_left + group_width * 0.4,
                frame.bottom + 18.0,
                escape(category)
            );
            for (s, (name, values)) in self.series.iter().enumerate() {
                let Some(&value) = values.get(c).filter(|v| v.is_finite()) else {
                    continue;
                };
                let color = PALETTE[s % PALETTE.len()];
                let x = group_left + bar_width * s as f64;
                let (y0, y1) = (frame.py(0.0), frame.py(value));
                let _ = writeln!(
                    svg,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\">\
                     <title>{}: {}</title></rect>",
                    y0.min(y1),
                    (bar_width - 2.0).max(1.0),
                    (y0 - y1).abs(),
                    escape(name),
                    format_tick(value)
                );
                let _ = writeln!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" {FONT} font-size=\"10\" text-anchor=\"middle\">{}</text>",
                    x + bar_width / 2.0 - 1.0,
                    y0.min(y1) - 3.0,
                    format_tick(value)
                );
            }
        }
        let legend: Vec<(String, &str, bool, bool)> = self
            .series
            .iter()
            .enumerate()
            .map(|(s, (name, _))| (name.clone(), PALETTE[s % PALETTE.len()], false, true))
            .collect();
        draw_legend(&mut svg, &frame, &legend);
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(nice_ticks(0.0, 1.0, 4), vec![0.0, 0.5, 1.0]);
        let ticks = nice_ticks(0.0, 730_000.0, 6);
        assert_eq!(ticks.first(), Some(&0.0));
        assert_eq!(ticks, vec![0.0, 200_000.0, 400_000.0, 600_000.0]);
        assert_eq!(nice_ticks(3.0, 3.0, 5), vec![3.0]);
        assert_eq!(nice_ticks(f64::NAN, 1.0, 5).len(), 1);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(250.0), "250");
        assert_eq!(format_tick(0.25), "0.25");
        assert_eq!(format_tick(20_000.0), "20k");
        assert_eq!(format_tick(1_500_000.0), "1.5M");
        assert_eq!(format_tick(2e9), "2G");
    }

    #[test]
    fn columns_keep_extremes() {
        let frame = Frame {
            x_min: 0.0,
            x_max: 10.0,
            y_min: 0.0,
            y_max: 100.0,
            left: 0.0,
            right: 10.0,
            top: 0.0,
            bottom: 100.0,
        };
        // 1000 points in the first pixel column, with a spike and a dip.
        let mut points: Vec<(f64, f64)> = (0..1000).map(|i| (i as f64 / 1000.0, 50.0)).collect();
        points[300].1 = 99.0;
        points[700].1 = 1.0;
        points.push((5.5, 20.0));
        let reduced = reduce_to_columns(&points, &frame);
        assert_eq!(
            reduced,
            vec![
                (0.0, 50.0),
                (0.3, 99.0),
                (0.7, 1.0),
                (0.999, 50.0),
                (5.5, 20.0)
            ]
        );
    }

    #[test]
    fn line_plot_has_series_markers_legend_and_escapes() {
        let plot = LinePlot {
            title: "cwnd <&> \"test\"".into(),
            x_label: "time (s)".into(),
            y_label: "bytes".into(),
            series: vec![
                Series::steps("cwnd", vec![(0.0, 10.0), (1.0, 20.0), (2.0, 5.0)]),
                Series {
                    dashed: true,
                    ..Series::steps("ssthresh", vec![(0.0, 15.0), (2.0, 15.0)])
                },
            ],
            markers: vec![Marker {
                x: 1.5,
                label: "RTO".into(),
                color: "#ff0000".into(),
            }],
        };
        let svg = plot.render(640, 400);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        assert!(svg.contains("cwnd &lt;&amp;&gt; &quot;test&quot;"));
        assert_eq!(svg.matches("<path d=\"M").count(), 2);
        assert!(svg.contains("stroke-dasharray=\"6,4\""));
        assert!(svg.contains("<title>RTO</title>"));
        assert!(svg.contains(">ssthresh</text>"));
        // The staircase goes across, then up or down.
        assert!(svg.contains('H') && svg.contains('V'));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn empty_and_degenerate_inputs_do_not_panic() {
        let empty = LinePlot::default().render(0, 0);
        assert!(empty.ends_with("</svg>\n") && !empty.contains("NaN"));
        let flat = LinePlot {
            series: vec![Series::steps(
                "flat",
                vec![(1.0, 7.0), (1.0, 7.0), (f64::NAN, 1.0)],
            )],
            ..LinePlot::default()
        }
        .render(300, 200);
        assert!(!flat.contains("NaN"));
        let bars = BarChart::default().render(300, 200);
        assert!(bars.ends_with("</svg>\n"));
    }

    #[test]
    fn bar_chart_draws_one_bar_per_value() {
        let chart = BarChart {
            title: "throughput".into(),
            y_label: "Gbit/s".into(),
            categories: vec!["1 MiB".into(), "64 MiB".into()],
            series: vec![
                ("xdpget".into(), vec![1.2, 9.4]),
                ("wget".into(), vec![1.0, 8.1]),
                ("curl".into(), vec![0.9, f64::NAN]),
            ],
        };
        let svg = chart.render(640, 400);
        assert_eq!(
            svg.matches("<rect x=").count(),
            5 + 3,
            "bars and legend swatches"
        );
        assert!(svg.contains("<title>xdpget: 9.4</title>"));
        assert!(svg.contains(">64 MiB</text>"));
    }
}
