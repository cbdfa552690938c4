#!/usr/bin/env python3
"""Turns bench.py's raw results into docs/benchmarks.md and its SVG plots.

Medians per (tool, size, sink, loss), throughput ratios against wget and curl, the
issue's targets (reported, never pass/fail), xdpget's receive-to-ACK percentiles, the
machine the numbers come from and how to re-run. SVGs are written by hand (stdlib only).

    bench/report.py RESULTS.json [--doc docs/benchmarks.md] [--svg-dir docs/benchmarks]
"""

import argparse
import math
import os
import statistics
import sys
import itertools
import json

TOOL_COLORS = {
    "xdpget-afxdp": "#d62728",
    "xdpget-raw": "#ff7f0e",
    "xdpget-afxdp-ack8": "#e377c2",
    "xdpget-afxdp-inline": "#bcbd22",
    "xdpget-afxdp-sack": "#7f7f7f",
    "wget": "#1f77b4",
    "wget-sync": "#17becf",
    "curl": "#2ca02c",
    "aria2c-x1": "#9467bd",
    "aria2c-x8": "#8c564b",
}
PERCENTILES = [("p50", "#9ecae1"), ("p90", "#4292c6"), ("p99", "#08519c"), ("p999", "#08306b")]
SINK_NAMES = {"file": "file", "null": "/dev/null"}
MIB = 1 << 20


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=2):
    if value is None:
        return "–"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "–"
    return f"{value:.{digits}f}"


def histogram(run, name):
    for h in (run.get("xdpget_stats") or {}).get("histograms", []):
        if h.get("name") == name:
            return h
    return None


class Results:
    def __init__(self, doc):
        self.doc = doc
        self.runs = doc["runs"]
        cfg = doc["config"]
        self.tools = [t for t in cfg["tools"] if any(r["tool"] == t for r in self.runs)]
        self.sizes = [s for s in cfg["sizes"] if any(r["size"] == s for r in self.runs)]
        self.sinks = [s for s in cfg["sinks"] if any(r["sink"] == s for r in self.runs)]
        self.losses = [x for x in cfg["loss_percent"] if any(r["loss_percent"] == x for r in self.runs)]

    def every(self, tools):
        """(loss, size, sink, tool) for every combination, in report order."""
        return itertools.product(self.losses, self.sizes, self.sinks, tools)

    def select(self, tool, size, sink, loss, ok_only=True):
        return [r for r in self.runs
                if r["tool"] == tool and r["size"] == size and r["sink"] == sink
                and r["loss_percent"] == loss and (r["ok"] or not ok_only)]

    def cell(self, tool, size, sink, loss):
        """Medians of one (tool, size, sink, loss), or None without any run."""
        every = self.select(tool, size, sink, loss, ok_only=False)
        if not every:
            return None
        ok = [r for r in every if r["ok"]]
        anon = [r["rss_anon_peak_kb"] for r in ok if r.get("rss_anon_peak_kb") is not None]
        return {
            "runs": len(every),
            "ok": len(ok),
            "wall_s": median(r["wall_s"] for r in ok),
            "throughput": median(r["throughput_mib_s"] for r in ok),
            "cpu_s": median(r["cpu_s"] for r in ok),
            "max_rss_mib": median(r["max_rss_kb"] / 1024 for r in ok),
            "anon_max_mib": max(anon) / 1024 if anon else None,
            "errors": sorted({r["error"] for r in every if not r["ok"]}),
        }

    def latency(self, tool, size, sink, loss, name="receive_to_ack"):
        """Median over runs of each percentile of one xdpget histogram, in µs."""
        hs = [histogram(r, name) for r in self.select(tool, size, sink, loss)]
        hs = [h for h in hs if h and h.get("count")]
        if not hs:
            return None
        out = {p: median(h[p] / 1000 for h in hs) for p, _ in PERCENTILES}
        out["max"] = max(h["max"] for h in hs) / 1000
        out["count"] = median(h["count"] for h in hs)
        return out


# ------------------------------------------------------------------------------- SVG

def esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_max(value):
    if value <= 0:
        return 1
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def bar_panel(x0, y0, width, height, title, groups, series, y_label, log=False, ref=None,
              y_max=None):
    """One bar chart. groups: [(label, [value or None per series])]; series: [(name, color)].
    y_max (linear scale only) lets several panels share one scale."""
    out = []
    left, bottom, top = 56, 34, 24
    plot_w, plot_h = width - left - 10, height - bottom - top
    px, py = x0 + left, y0 + top
    values = [v for _, vs in groups for v in vs if v]
    if ref:
        values.append(ref[0])
    out.append(f'<text x="{x0 + width / 2:.1f}" y="{y0 + 16}" text-anchor="middle" '
               f'font-size="13" font-weight="bold">{esc(title)}</text>')
    if log:
        lo = 10 ** math.floor(math.log10(min(values))) if values else 1
        hi = 10 ** math.ceil(math.log10(max(values))) if values else 10
        if hi <= lo:
            hi = lo * 10

        def y_of(v):
            return py + plot_h - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_h
        ticks = [10 ** e for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]
        base = lo
    else:
        hi = nice_max(y_max or (max(values) if values else 1))

        def y_of(v):
            return py + plot_h - v / hi * plot_h
        ticks = [hi * i / 5 for i in range(6)]
        base = 0
    for t in ticks:
        y = y_of(t)
        label = f"{t:g}"
        out.append(f'<line x1="{px}" y1="{y:.1f}" x2="{px + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{px - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{label}</text>')
    out.append(f'<text x="{x0 + 12}" y="{py + plot_h / 2:.1f}" font-size="11" text-anchor="middle" '
               f'transform="rotate(-90 {x0 + 12} {py + plot_h / 2:.1f})">{esc(y_label)}</text>')
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    for gi, (label, vs) in enumerate(groups):
        gx = px + gi * group_w + group_w * 0.1
        for si, v in enumerate(vs):
            bx = gx + si * bar_w
            if v is None or v <= 0:
                out.append(f'<text x="{bx + bar_w / 2:.1f}" y="{py + plot_h - 3}" font-size="9" '
                           f'text-anchor="middle" fill="#999">×</text>')
                continue
            y = y_of(max(v, base))
            out.append(f'<rect x="{bx:.1f}" y="{y:.1f}" width="{bar_w * 0.92:.1f}" '
                       f'height="{py + plot_h - y:.1f}" fill="{series[si][1]}">'
                       f'<title>{esc(series[si][0])} {esc(label)}: {v:.3g}</title></rect>')
        out.append(f'<text x="{px + (gi + 0.5) * group_w:.1f}" y="{py + plot_h + 14}" '
                   f'text-anchor="middle" font-size="11">{esc(label)}</text>')
    if ref:
        y = y_of(ref[0])
        out.append(f'<line x1="{px}" y1="{y:.1f}" x2="{px + plot_w}" y2="{y:.1f}" stroke="#c00" '
                   f'stroke-dasharray="5,3"/>')
    out.append(f'<rect x="{px}" y="{py}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#666"/>')
    return out


def legend(x0, y0, series, ref_label=None):
    out, x = [], x0
    for name, color in series:
        out.append(f'<rect x="{x}" y="{y0}" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{x + 16}" y="{y0 + 10}" font-size="11">{esc(name)}</text>')
        x += 22 + 7 * len(name)
    if ref_label:
        out.append(f'<line x1="{x}" y1="{y0 + 6}" x2="{x + 24}" y2="{y0 + 6}" stroke="#c00" '
                   f'stroke-dasharray="5,3"/>')
        out.append(f'<text x="{x + 28}" y="{y0 + 10}" font-size="11" fill="#c00">{esc(ref_label)}</text>')
    return out


def svg_document(width, height, body):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif">\n'
            f'<rect width="{width}" height="{height}" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")


def throughput_svg(res):
    panels = [(loss, sink) for loss in res.losses for sink in res.sinks]
    cols = len(res.sinks)
    rows = len(res.losses)
    pw, ph = 460, 280
    series = [(t, TOOL_COLORS[t]) for t in res.tools]
    body = legend(10, 8, series)
    all_groups = []
    for loss, sink in panels:
        groups = []
        for size in res.sizes:
            vs = []
            for tool in res.tools:
                c = res.cell(tool, size, sink, loss)
                vs.append(c["throughput"] if c else None)
            groups.append((size, vs))
        all_groups.append(groups)
    # One scale for every panel, so that bars compare across sinks and loss settings.
    top = max([v for groups in all_groups for _, vs in groups for v in vs if v] or [1])
    for i, ((loss, sink), groups) in enumerate(zip(panels, all_groups)):
        body += bar_panel((i % cols) * pw, 28 + (i // cols) * ph, pw, ph,
                          f"to {SINK_NAMES[sink]}, {loss} % loss (median)", groups, series, "MiB/s",
                          y_max=top)
    return svg_document(cols * pw, 28 + rows * ph, body)


def latency_svg(res):
    drivers = [t for t in res.tools if t.startswith("xdpget-")]
    panels = [(tool, loss) for tool in drivers for loss in res.losses]
    if not panels:
        return None
    cols = len(res.losses)
    pw, ph = 560, 280
    series = [(p, c) for p, c in PERCENTILES]
    body = legend(10, 8, series, "target: p99 ≤ 20 µs")
    for i, (tool, loss) in enumerate(panels):
        groups = []
        for size in res.sizes:
            for sink in res.sinks:
                lat = res.latency(tool, size, sink, loss)
                groups.append((f"{size} {SINK_NAMES[sink]}",
                               [lat[p] if lat else None for p, _ in PERCENTILES]))
        body += bar_panel((i % cols) * pw, 28 + (i // cols) * ph, pw, ph,
                          f"{tool} receive→ACK, {loss} % loss", groups, series, "µs (log)",
                          log=True, ref=(20, "target p99 ≤ 20 µs"))
    return svg_document(cols * pw, 28 + (len(panels) + cols - 1) // cols * ph, body)


# -------------------------------------------------------------------------- markdown

def ratio(a, b):
    return a / b if a and b else None


def targets_section(res):
    lines = ["## The issue's targets", "",
             "Reported, not tested: the benchmark never fails because of them. Throughput is "
             "the median over rounds; \"met\" compares medians.", ""]
    drivers = [t for t in res.tools if t.startswith("xdpget-")]

    def verdict(ok):
        return "met" if ok else "**not met**"

    # 1. xdpget -> file >= 2x wget and >= 1.15x curl.
    if "file" in res.sinks and drivers:
        lines += ["### xdpget → file: ≥ 2× wget's throughput and ≥ 1.15× curl's", "",
                  "xdpget's file is on disk (fsync) when its clock stops, wget's and curl's are "
                  "in the page cache; `× wget+sync` compares with `wget-sync` (wget, then "
                  "`sync FILE`), beside the verdict, not part of it.", "",
                  "| loss | size | driver | xdpget MiB/s | wget MiB/s | × wget | curl MiB/s | × curl | × wget+sync | verdict |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for loss in res.losses:
            for size in res.sizes:
                w = res.cell("wget", size, "file", loss)
                c = res.cell("curl", size, "file", loss)
                ws = res.cell("wget-sync", size, "file", loss)
                for d in drivers:
                    x = res.cell(d, size, "file", loss)
                    if not x:
                        continue
                    rw = ratio(x["throughput"], w and w["throughput"])
                    rc = ratio(x["throughput"], c and c["throughput"])
                    rs = ratio(x["throughput"], ws and ws["throughput"])
                    ok = rw is not None and rc is not None and rw >= 2 and rc >= 1.15
                    lines.append(f"| {loss} % | {size} | {d} | {fmt(x['throughput'], 1)} | "
                                 f"{fmt(w and w['throughput'], 1)} | {fmt(rw)} | "
                                 f"{fmt(c and c['throughput'], 1)} | {fmt(rc)} | {fmt(rs)} | "
                                 f"{verdict(ok)} |")
        lines.append("")
    # 2. xdpget -> /dev/null within 1.5x of curl -> /dev/null (wall time).
    if "null" in res.sinks and drivers:
        lines += ["### xdpget → /dev/null within 1.5× of curl → /dev/null (wall time)", "",
                  "| loss | size | driver | xdpget s | curl s | xdpget / curl | verdict |",
                  "|---|---|---|---:|---:|---:|---|"]
        for loss in res.losses:
            for size in res.sizes:
                c = res.cell("curl", size, "null", loss)
                for d in drivers:
                    x = res.cell(d, size, "null", loss)
                    if not x:
                        continue
                    r = ratio(x["wall_s"], c and c["wall_s"])
                    lines.append(f"| {loss} % | {size} | {d} | {fmt(x['wall_s'], 3)} | "
                                 f"{fmt(c and c['wall_s'], 3)} | {fmt(r)} | "
                                 f"{verdict(r is not None and r <= 1.5)} |")
        lines.append("")
    # 3. receive-to-ACK p99 <= 20 us.
    if drivers:
        lines += ["### Receive-to-ACK p99 ≤ 20 µs", "",
                  "From xdpget's `--stats-json` (`receive_to_ack`: from the start of a receive "
                  "batch to the transmit kick that carries its ACK); median over rounds of each "
                  "run's percentile, in µs. `transmit p50/p99`: the part of it spent building "
                  "the batch's segments and in the driver's kick (recorded by xdpget since "
                  "the `transmit` histogram exists).", "",
                  "| loss | size | sink | driver | ACKs | p50 | p90 | p99 | p99.9 | max | transmit p50 | transmit p99 | verdict |",
                  "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for loss, size, sink, d in res.every(drivers):
            lat = res.latency(d, size, sink, loss)
            if not lat:
                continue
            tx = res.latency(d, size, sink, loss, name="transmit") or {}
            lines.append(
                f"| {loss} % | {size} | {SINK_NAMES[sink]} | {d} | {lat['count']:.0f} | "
                f"{fmt(lat['p50'], 1)} | {fmt(lat['p90'], 1)} | {fmt(lat['p99'], 1)} | "
                f"{fmt(lat['p999'], 1)} | {fmt(lat['max'], 1)} | "
                f"{fmt(tx.get('p50'), 1)} | {fmt(tx.get('p99'), 1)} | "
                f"{verdict(lat['p99'] <= 20)} |")
        lines.append("")
    # 4. anonymous memory <= 64 MiB.
    if drivers:
        lines += ["### Anonymous memory ≤ 64 MiB", "",
                  "Peak `RssAnon` of the xdpget process, sampled from `/proc/PID/status` every "
                  f"{res.doc['config'].get('rss_anon_sample_interval_s', 0.005) * 1000:.0f} ms "
                  "(a lower bound of the true peak); the largest over all rounds. Peak RSS "
                  "(GNU time `%M`, median over rounds) is shown beside it: with a file sink "
                  "it also counts the mmapped output file's pages.", "",
                  "| loss | size | sink | driver | RssAnon peak MiB | peak RSS MiB | verdict |",
                  "|---|---|---|---|---:|---:|---|"]
        for loss, size, sink, d in res.every(drivers):
            x = res.cell(d, size, sink, loss)
            if not x or x["anon_max_mib"] is None:
                continue
            lines.append(f"| {loss} % | {size} | {SINK_NAMES[sink]} | {d} | "
                         f"{fmt(x['anon_max_mib'], 1)} | {fmt(x['max_rss_mib'], 1)} | "
                         f"{verdict(x['anon_max_mib'] <= 64)} |")
        lines.append("")
    return lines


def startup_section(res):
    """Where xdpget's time goes before the body: connect and first byte vs wall time."""
    drivers = [t for t in res.tools if t.startswith("xdpget-")]
    if not drivers:
        return []
    lines = ["## xdpget's start-up", "",
             "Medians over rounds, from `--stats-json`: `connect` is SYN → established, "
             "`first_byte` SYN → first body byte; the rest of the wall time before the SYN "
             "is process start-up (interface setup, XDP program and socket, nft table, port "
             "reservation) and, after the last byte, teardown. Compare the 1M wall times of "
             "wget and curl in the medians below.", "",
             "| loss | size | sink | driver | wall ms | connect ms | first byte ms | driver |",
             "|---|---|---|---|---:|---:|---:|---|"]
    for loss in res.losses:
        for size in res.sizes[:1]:
            for sink in res.sinks:
                for d in drivers:
                    runs = res.select(d, size, sink, loss)
                    if not runs:
                        continue
                    con = median(histogram(r, "connect")["max"] / 1e6 for r in runs
                                 if histogram(r, "connect"))
                    fb = median(histogram(r, "first_byte")["max"] / 1e6 for r in runs
                                if histogram(r, "first_byte"))
                    drv = ((runs[0].get("xdpget_stats") or {}).get("driver") or ["?"])[0]
                    lines.append(f"| {loss} % | {size} | {SINK_NAMES[sink]} | {d} | "
                                 f"{fmt(median(r['wall_s'] for r in runs) * 1000, 1)} | "
                                 f"{fmt(con, 2)} | {fmt(fb, 2)} | {esc(drv)} |")
    lines.append("")
    return lines


def medians_section(res):
    lines = ["## Medians", "",
             "Per (loss, size, sink, tool): successful runs / runs, and medians over the "
             "successful ones. Throughput is size / wall time (wall time includes process "
             "start-up and `ip netns exec`). CPU is user + sys of the tool's process (all "
             "threads). Peak RSS is GNU time's `%M`; RssAnon peak is the largest sample over "
             "the rounds. × wget and × curl are throughput ratios against that tool in the same "
             "(loss, size, sink); above 1 is faster.", "",
             "| loss | size | sink | tool | ok | wall s | MiB/s | × wget | × curl | CPU s | "
             "peak RSS MiB | RssAnon peak MiB |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    failures = []
    for loss in res.losses:
        for size in res.sizes:
            for sink in res.sinks:
                w = res.cell("wget", size, sink, loss)
                c = res.cell("curl", size, sink, loss)
                for tool in res.tools:
                    x = res.cell(tool, size, sink, loss)
                    if not x:
                        continue
                    lines.append(
                        f"| {loss} % | {size} | {SINK_NAMES[sink]} | {tool} | {x['ok']}/{x['runs']} | "
                        f"{fmt(x['wall_s'], 3)} | {fmt(x['throughput'], 1)} | "
                        f"{fmt(ratio(x['throughput'], w and w['throughput']))} | "
                        f"{fmt(ratio(x['throughput'], c and c['throughput']))} | "
                        f"{fmt(x['cpu_s'], 3)} | {fmt(x['max_rss_mib'], 1)} | {fmt(x['anon_max_mib'], 1)} |")
                    for e in x["errors"]:
                        failures.append(f"- {tool}, {size}, {SINK_NAMES[sink]}, {loss} % loss: {e}")
    lines.append("")
    lines += ["### Failed runs", ""]
    lines += failures or ["None: every run exited 0 and every file's sha256 matched."]
    lines.append("")
    return lines


def machine_section(doc, results_rel):
    m = doc["machine"]
    cfg = doc["config"]
    runs = doc["runs"]
    loads = [r["loadavg_1m"] for r in runs if r.get("loadavg_1m") is not None]
    v = m.get("versions", {})
    lines = ["## Machine and run", "",
             f"- Date (UTC): {m['date_utc']}",
             f"- CPU: {m['cpu_model']}, nproc {m['nproc']}",
             f"- Memory: {m['memory_total_kb'] / 1024 / 1024:.1f} GiB" if m.get("memory_total_kb") else "- Memory: unknown",
             f"- Kernel: {m['kernel']}",
             f"- xdpget commit: {m['xdpget_commit']} ({v.get('xdpget', '?')})",
             f"- Peers: {v.get('wget', '?')}; {v.get('curl', '?')}; {v.get('aria2c', '?')}; "
             f"server {v.get('nginx', '?')}",
             f"- Rounds: {cfg['rounds']}, sizes {', '.join(cfg['sizes'])}, sinks "
             f"{', '.join(SINK_NAMES[s] for s in cfg['sinks'])}, loss "
             f"{', '.join(str(x) + ' %' for x in cfg['loss_percent'])}"
             + (f"; left out: {', '.join(cfg['skip'])}" if cfg.get("skip") else ""),
             f"- Runs: {len(runs)}, failed: {sum(not r['ok'] for r in runs)}",
             f"- 1-minute load average at the start of each run: median {fmt(median(loads), 2)}, "
             f"max {fmt(max(loads) if loads else None, 2)}",
             f"- Raw results: [{results_rel}]({results_rel})", ""]
    return lines


def render(doc, results_rel, svg_rel, notes=None):
    res = Results(doc)
    lines = ["# Benchmarks", "",
             "xdpget (AF_XDP driver and raw AF_PACKET driver) against wget, curl and aria2c "
             "(one and eight connections), downloading from nginx over the testbed's veth pairs "
             "and bridge (docs/testbed.md), to a file and to /dev/null, with and without 1 % "
             "loss of the server's frames on the bridge. Generated by `bench/report.py` from the raw results; do not "
             "edit by hand.", "",
             "Read these numbers as what they are: veth pairs on a 2-core VM, server and "
             "client on the same cores, possibly other jobs beside the benchmark (see the load "
             "average below). Tools run interleaved, A B C A B C …, so slow "
             "phases of the machine hit every tool alike.", ""]
    if notes:
        lines += [notes.rstrip(), ""]
    lines += machine_section(doc, results_rel)
    lines += ["## Plots", "",
              f"![Throughput per tool and size]({svg_rel}/throughput.svg)", ""]
    if any(t.startswith("xdpget-") for t in res.tools):
        lines += [f"![xdpget receive-to-ACK percentiles]({svg_rel}/latency.svg)", ""]
    lines += targets_section(res)
    lines += startup_section(res)
    lines += medians_section(res)
    lines += how_to_rerun()
    return "\n".join(lines) + "\n"


def how_to_rerun():
    return ["## How to re-run", "",
            "As root, after `scripts/setup.sh`:", "",
            "```sh",
            "bench/run.sh                      # everything: 3 rounds, 1M 64M 1G, file and /dev/null, 0 and 1 % loss",
            "bench/run.sh --rounds 5 --sizes 1M,64M --loss 0",
            "bench/run.sh --tools xdpget-afxdp,curl --sinks null",
            "bench/run.sh --tiny --no-doc      # 1M, one round, no loss: proves the harness works",
            "bench/report.py bench/results/<stamp>.json --notes bench/notes.md   # regenerate this page",
            "```", "",
            "The section \"What the numbers show\" is `bench/notes.md`, written by hand for one "
            "run and passed with `--notes`; `bench/run.sh` leaves it out, so rewrite it for a new run.", "",
            "`bench/run.sh` builds xdpget in release mode, copies the binary aside (so a "
            "concurrent build cannot swap it mid-run), brings up its own testbed "
            "(`XG_TESTBED_NAME=xgbench`, state under `/tmp/xdpget-bench-work/testbed`), runs, "
            "takes the testbed down (also on failure or Ctrl-C), writes "
            "`bench/results/<stamp>.json` and regenerates this page. Each record holds the "
            "command, exit status, wall/user/sys time, `ru_maxrss`, sampled `RssAnon` peak, "
            "the sha256 check, the load average, the packets the loss rule dropped during the "
            "run and, for xdpget, its whole `--stats-json`.", "",
            "Details of each tool's command line:", "",
            "- xdpget: `xdpget --iface xg-c0 --driver afxdp|raw -q --stats-json F -O FILE|/dev/null URL`",
            "- wget: `wget --no-config -q -O FILE|/dev/null URL`",
            "- curl: `curl -q -sS -f -o FILE|/dev/null URL`",
            "- aria2c: `aria2c --no-conf -q -xN -sN --min-split-size=1M --allow-overwrite=true "
            "--auto-file-renaming=false -d DIR -o NAME URL`; /dev/null is `-d /dev -o null` "
            "(works with aria2 1.36: it opens the device and writes at offsets; the harness "
            "checks after every aria2c run that /dev/null is still a character device).",
            "- Every command runs as `ip netns exec xgbench-client …`. Files written to "
            "/dev/null cannot be checked: those runs count as successful on exit status 0 "
            "alone. Every file written is checked against the testbed's SHA256SUMS and deleted.",
            ""]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", help="a results JSON written by bench/bench.py")
    p.add_argument("--doc", default=None, help="markdown output (default docs/benchmarks.md)")
    p.add_argument("--svg-dir", default=None, help="SVG output dir (default docs/benchmarks)")
    p.add_argument("--notes", default=None,
                   help="markdown put after the introduction: the findings, written by hand")
    args = p.parse_args(argv)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    doc_path = os.path.abspath(args.doc or os.path.join(repo, "docs", "benchmarks.md"))
    svg_dir = os.path.abspath(args.svg_dir or os.path.join(repo, "docs", "benchmarks"))
    with open(args.results) as f:
        doc = json.load(f)
    if not doc["runs"]:
        raise SystemExit("report: the results hold no runs")
    os.makedirs(svg_dir, exist_ok=True)
    res = Results(doc)
    with open(os.path.join(svg_dir, "throughput.svg"), "w") as f:
        f.write(throughput_svg(res))
    lat = latency_svg(res)
    if lat:
        with open(os.path.join(svg_dir, "latency.svg"), "w") as f:
            f.write(lat)
    doc_dir = os.path.dirname(doc_path)
    results_rel = os.path.relpath(os.path.abspath(args.results), doc_dir)
    svg_rel = os.path.relpath(svg_dir, doc_dir)
    with open(doc_path, "w") as f:
        notes = None
        if args.notes:
            with open(args.notes) as n:
                notes = n.read()
        f.write(render(doc, results_rel, svg_rel, notes))
    print(doc_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
