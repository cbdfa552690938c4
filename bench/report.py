#!/usr/bin/env python3
"""Turns bench.py's raw results into docs/benchmarks.md and its plots.

The page: issue 9's targets with a verdict computed from the results, two plots (wall time
per tool per case; xdpget's throughput as a multiple of wget's and curl's), the medians of
every (loss, size, sink, tool), xdpget's per-batch histograms and start-up, the machine and
how to re-run. Plots are drawn with matplotlib (Debian's python3-matplotlib).

    bench/report.py RESULTS.json [--doc docs/benchmarks.md] [--plot-dir docs/benchmarks]
                    [--notes bench/notes.md]
"""

import argparse
import itertools
import json
import math
import os
import statistics
import sys
from typing import NamedTuple

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # pragma: no cover - depends on the machine
    plt = None

TOOL_COLORS = {
    "xdpget-afxdp": "#d62728",
    "xdpget-raw": "#ff7f0e",
    "wget": "#1f77b4",
    "wget-sync": "#17becf",
    "curl": "#2ca02c",
    "aria2c-x1": "#9467bd",
    "aria2c-x8": "#8c564b",
    # Over HTTPS (issue 11): a darker shade of the same tool's colour.
    "xdpget-afxdp-https": "#8b0000",
    "xdpget-raw-https": "#b35900",
    "wget-https": "#0b3d66",
    "curl-https": "#145214",
}
# Colours for tools not listed above (flag variants, mostly), in order of appearance.
SPARE_COLORS = ["#e377c2", "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#8c6d31"]
SINK_NAMES = {"file": "file", "null": "/dev/null"}
MIB = 1 << 20
# Histograms of xdpget's --stats-json that hold our own work per receive batch (parse,
# engine, copy, ACK decision; not the transmit kick). The first name found is used.
OWN_WORK_NAMES = ("own_work", "batch_work")


class Target(NamedTuple):
    """One of issue 9's targets: xdpget with default flags against a peer in one case.

    kind "time": xdpget's median wall time at most `limit` × the peer's;
    kind "throughput": xdpget's throughput at least `limit` × the peer's."""
    text: str
    size: str
    sink: str
    loss: int
    peer: str
    kind: str
    limit: float
    min_runs: int = 1
    # "https": xdpget-<driver>-https against <peer>-https (issue 11).
    scheme: str = "http"
    # One xdpget tool (a flag variant, issue 10's -x rows) instead of each default driver.
    tool: str = ""

    def speed_needed(self):
        """The target as a lower bound on peer time / xdpget time (1 = as fast)."""
        return 1 / self.limit if self.kind == "time" else self.limit


TARGETS = [
    Target("1 GiB → /dev/null no slower than curl", "1G", "null", 0, "curl", "time", 1.0),
    Target("64 MiB at 1 % loss → /dev/null within 1.2× curl's time", "64M", "null", 1, "curl",
           "time", 1.2),
    Target("1 MiB → /dev/null within 1.5× curl's time (median of ≥ 10 runs)", "1M", "null", 0,
           "curl", "time", 1.5, min_runs=10),
    Target("1 GiB → file ≥ 2× wget's throughput", "1G", "file", 0, "wget", "throughput", 2.0),
    Target("1 GiB → file ≥ 1.15× curl's throughput", "1G", "file", 0, "curl", "throughput",
           1.15),
]
# Issue 11's targets: HTTPS beside HTTP, each tool over HTTPS against the same nginx.
HTTPS_SUFFIX = "-https"
TARGETS += [
    Target("HTTPS: 1 GiB → /dev/null within 1.2× curl's time (issue 11)", "1G", "null", 0,
           "curl", "time", 1.2, scheme="https"),
    Target("HTTPS: 1 GiB → file ≥ 1.5× wget's throughput (issue 11)", "1G", "file", 0,
           "wget", "throughput", 1.5, scheme="https"),
]


# Issue 10's targets: segmented downloads (-x N with the default driver) against curl,
# aria2c -x 8 and xdpget's own one connection.
TARGETS += [
    Target("-x 8: 64 MiB at 1 % loss → /dev/null ≥ 3× curl's throughput (issue 10)", "64M",
           "null", 1, "curl", "throughput", 3.0, tool="xdpget-auto-x8"),
    Target("-x 8: 64 MiB at 1 % loss → /dev/null ≥ 1.3× aria2c -x 8's throughput (issue 10)",
           "64M", "null", 1, "aria2c-x8", "throughput", 1.3, tool="xdpget-auto-x8"),
    Target("-x 4: 1 GiB → file at 0 % loss not slower than -x 1 (issue 10)", "1G", "file", 0,
           "xdpget-auto", "time", 1.0, tool="xdpget-auto-x4"),
]
# Issue 10: the most anonymous memory of a download over 16 connections.
SEGMENT_MEMORY_TOOL, SEGMENT_MEMORY_LIMIT_MIB = "xdpget-auto-x16", 64


def over(tool, scheme):
    """The tool's name over `scheme`: `curl` over https is `curl-https`."""
    return tool + HTTPS_SUFFIX if scheme == "https" else tool


def scheme_of(tool):
    return "https" if tool.endswith(HTTPS_SUFFIX) else "http"


def target_label(target):
    return "issue 11 target (HTTPS)" if target.scheme == "https" else "issue 9 target"


OWN_WORK_TARGET_US = 20


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=2):
    if value is None:
        return "–"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "–"
    return f"{value:.{digits}f}"


def ratio(a, b):
    return a / b if a and b else None


def histogram(run, name):
    for h in (run.get("xdpget_stats") or {}).get("histograms", []):
        if h.get("name") == name:
            return h
    return None


def is_xdpget(tool):
    return tool.startswith("xdpget-")


def is_default_xdpget(tool):
    """xdpget-<driver> with no flag variant."""
    return is_xdpget(tool) and tool.count("-") == 1


class Results:
    def __init__(self, doc):
        self.doc = doc
        self.runs = doc["runs"]
        cfg = doc["config"]
        self.tools = [t for t in cfg["tools"] if any(r["tool"] == t for r in self.runs)]
        self.sizes = [s for s in cfg["sizes"] if any(r["size"] == s for r in self.runs)]
        self.sinks = [s for s in cfg["sinks"] if any(r["sink"] == s for r in self.runs)]
        self.losses = [x for x in cfg["loss_percent"]
                       if any(r["loss_percent"] == x for r in self.runs)]
        spare = iter(SPARE_COLORS * 4)
        self.colors = {t: TOOL_COLORS.get(t) or next(spare) for t in self.tools}
        present = {(r["loss_percent"], r["size"], r["sink"]) for r in self.runs}
        self._cases = [c for c in itertools.product(self.losses, self.sizes, self.sinks)
                       if c in present]

    def cases(self):
        """(loss, size, sink) of every case with at least one run, in report order."""
        return self._cases

    def select(self, tool, size, sink, loss, ok_only=True):
        return [r for r in self.runs
                if r["tool"] == tool and r["size"] == size and r["sink"] == sink
                and r["loss_percent"] == loss and (r["ok"] or not ok_only)]

    def walls(self, tool, size, sink, loss):
        return [r["wall_s"] for r in self.select(tool, size, sink, loss)]

    def cell(self, tool, size, sink, loss):
        """Medians of one (tool, size, sink, loss), or None without any run. Throughput is
        size / median wall time, so that time and throughput ratios agree."""
        every = self.select(tool, size, sink, loss, ok_only=False)
        if not every:
            return None
        ok = [r for r in every if r["ok"]]
        walls = [r["wall_s"] for r in ok]
        wall = median(walls)
        anon = [r["rss_anon_peak_kb"] for r in ok if r.get("rss_anon_peak_kb") is not None]
        rss = [r["max_rss_kb"] / 1024 for r in ok if r.get("max_rss_kb") is not None]
        return {
            "runs": len(every),
            "ok": len(ok),
            "wall_s": wall,
            "wall_min": min(walls) if walls else None,
            "wall_max": max(walls) if walls else None,
            "throughput": every[0]["size_bytes"] / wall / MIB if wall else None,
            "cpu_s": median(r["cpu_s"] for r in ok),
            "max_rss_mib": median(rss),
            "anon_max_mib": max(anon) / 1024 if anon else None,
            "errors": sorted({r["error"] for r in every if not r["ok"]}),
        }

    def speed(self, tool, peer, size, sink, loss):
        """Peer's median wall time / tool's: xdpget's throughput as a multiple of the peer's."""
        x, p = self.cell(tool, size, sink, loss), self.cell(peer, size, sink, loss)
        return ratio(p and p["wall_s"], x and x["wall_s"])

    def percentiles(self, tool, size, sink, loss, name):
        """Median over runs of each percentile of one xdpget histogram (in its unit)."""
        hs = [histogram(r, name) for r in self.select(tool, size, sink, loss)]
        hs = [h for h in hs if h and h.get("count")]
        if not hs:
            return None
        out = {p: median(h[p] for h in hs) for p in ("p50", "p90", "p99", "p999")}
        out["max"] = max(h["max"] for h in hs)
        out["count"] = median(h["count"] for h in hs)
        return out

    def own_work_name(self):
        """The name of xdpget's own-work-per-batch histogram, if the results hold one."""
        names = {h.get("name") for r in self.runs
                 for h in (r.get("xdpget_stats") or {}).get("histograms", [])}
        for wanted in OWN_WORK_NAMES:
            for name in sorted(n for n in names if n):
                if wanted in name:
                    return name
        return None


# ------------------------------------------------------------------------------- plots

def case_title(loss, size, sink):
    return f"{size} → {SINK_NAMES[sink]}, {loss} % loss"


def times_plot(res, path):
    """One panel per case: every tool's wall times as a box (quartiles, whiskers at min and
    max) with each run as a dot and the median written beside it."""
    rows = [(loss, size) for loss, size in itertools.product(res.losses, res.sizes)
            if any((loss, size, sink) in res.cases() for sink in res.sinks)]
    cols = len(res.sinks)
    tools_per_panel = max(len(res.tools), 1)
    fig, axes = plt.subplots(len(rows), cols, squeeze=False,
                             figsize=(6.2 * cols, 0.9 + 0.3 * tools_per_panel * len(rows)
                                      + 0.55 * len(rows)))
    for (row, (loss, size)), (col, sink) in itertools.product(enumerate(rows),
                                                              enumerate(res.sinks)):
        ax = axes[row][col]
        tools = [t for t in res.tools if res.walls(t, size, sink, loss)]
        if not tools:
            ax.set_visible(False)
            continue
        tools.reverse()  # the first tool on top
        data = [res.walls(t, size, sink, loss) for t in tools]
        top = max(max(d) for d in data)
        unit, scale = ("ms", 1000) if top < 1 else ("s", 1)
        data = [[w * scale for w in d] for d in data]
        boxes = ax.boxplot(data, vert=False, whis=(0, 100), widths=0.6, patch_artist=True,
                           showfliers=False, medianprops={"color": "black"})
        for box, tool in zip(boxes["boxes"], tools):
            box.set(facecolor=res.colors[tool], alpha=0.45)
        for i, (values, tool) in enumerate(zip(data, tools), start=1):
            jitter = [i + 0.12 * math.sin(k * 2.4) for k in range(len(values))]
            ax.scatter(values, jitter, s=9, color=res.colors[tool], zorder=3)
            m = statistics.median(values) / scale
            label = f"{m * 1000:.3g} ms" if m < 1 else f"{m:.3g} s"
            ax.text(max(values), i, f"  {label}", va="center", fontsize=8)
        ax.set_yticks(range(1, len(tools) + 1), tools, fontsize=8)
        ax.set_xlim(0, top * scale * 1.22)
        ax.set_xlabel(f"wall time ({unit})", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", color="#e5e5e5")
        ax.set_axisbelow(True)
        ax.set_title(case_title(loss, size, sink), fontsize=10)
    fig.suptitle("Wall time per run: box = quartiles, whiskers = min and max, "
                 "dots = runs, number = median", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    save(fig, path)


def ratios_plot(res, path):
    """xdpget's throughput as a multiple of wget's and curl's (peer's median time / ours),
    one bar per xdpget tool per case, with issue 9's targets marked."""
    ours = [t for t in res.tools if is_xdpget(t)]
    peers = [p for p in ("wget", "curl") if p in res.tools]
    cases = res.cases()
    if not ours or not peers or not cases:
        return False
    height = 1.2 + 0.22 * len(ours) * len(cases) + 0.15 * len(cases)
    fig, axes = plt.subplots(1, len(peers), squeeze=False, sharey=True,
                             figsize=(6.2 * len(peers), height))
    group = 0.8 / len(ours)
    speeds = [res.speed(t, over(p, scheme_of(t)), size, sink, loss) for t in ours
              for p in peers for loss, size, sink in cases]
    known = [s for s in speeds if s] or [1]
    lo, hi = min(min(known), 0.5) / 1.6, max(max(known), 2) * 1.6
    for ax, peer in zip(axes[0], peers):
        for ti, tool in enumerate(ours):
            for ci, (loss, size, sink) in enumerate(cases):
                s = res.speed(tool, over(peer, scheme_of(tool)), size, sink, loss)
                y = ci + (ti - (len(ours) - 1) / 2) * group
                if s is None:
                    continue
                ax.barh(y, s, height=group * 0.9, color=res.colors[tool],
                        label=tool if ci == 0 else None)
                ax.text(s, y, f" {s:.2f}×", va="center", fontsize=7)
        marked = set()
        for ci, case in enumerate(cases):
            for t in TARGETS:
                if t.peer == peer and (t.loss, t.size, t.sink) == case and any(
                        scheme_of(tool) == t.scheme for tool in ours):
                    label = target_label(t)
                    ax.plot([t.speed_needed()] * 2, [ci - 0.45, ci + 0.45],
                            color="black" if t.scheme == "http" else "#8b0000",
                            linewidth=2.2, label=None if label in marked else label)
                    marked.add(label)
        ax.axvline(1, color="#555", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ticks = [t for t in (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8) if lo <= t <= hi]
        ax.set_xticks(ticks, [f"{t:g}×" for t in ticks], fontsize=8)
        ax.minorticks_off()
        ax.set_yticks(range(len(cases)), [case_title(*c) for c in cases], fontsize=8)
        ax.grid(axis="x", color="#e5e5e5")
        ax.set_axisbelow(True)
        https = any(scheme_of(t) == "https" for t in ours)
        ax.set_title(f"xdpget's throughput ÷ {peer}'s"
                     + (f" (-https: ÷ {peer}-https's)" if https else "")
                     + " (median times; > 1 is faster)", fontsize=10)
    axes[0][0].invert_yaxis()  # once: the axes share y, a second call would undo it
    legend = {}
    for ax in axes[0]:
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
    for label in ("issue 9 target", "issue 11 target (HTTPS)"):  # last, after the tools
        target = legend.pop(label, None)
        if target:
            legend[label] = target
    fig.legend(legend.values(), legend.keys(), loc="upper center", ncol=min(len(legend), 6),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / height))
    save(fig, path)
    return True


def save(fig, path):
    # No software or date stamp in the file, so the same results give the same bytes.
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


# ---------------------------------------------------------------------------- markdown

def target_rows(res, drivers):
    """(row cells) of the targets table: one row per target and default xdpget driver."""
    rows = []
    pairs = [(t, d) for t in TARGETS for d in ([t.tool] if t.tool else drivers)]
    for t, d in pairs:
        d, peer = over(d, t.scheme), over(t.peer, t.scheme)
        x = res.cell(d, t.size, t.sink, t.loss)
        p = res.cell(peer, t.size, t.sink, t.loss)
        if t.kind == "time":
            value = ratio(x and x["wall_s"], p and p["wall_s"])
            measured = f"{fmt(value)}× {peer}'s time" if value else "–"
            needed = f"≤ {t.limit:g}× {peer}'s"
            met = value is not None and value <= t.limit
        else:
            value = res.speed(d, peer, t.size, t.sink, t.loss)
            measured = f"{fmt(value)}× {peer}'s throughput" if value else "–"
            needed = f"≥ {t.limit:g}× {peer}'s"
            met = value is not None and value >= t.limit
        n = min(x["ok"] if x else 0, p["ok"] if p else 0)
        if value is None:
            verdict = "not measured"
        elif n < t.min_runs:
            verdict = f"inconclusive: {n} run{'s' * (n != 1)}, needs ≥ {t.min_runs}"
        else:
            verdict = "met" if met else "**not met**"
        failed = sum(c["runs"] - c["ok"] for c in (x, p) if c)
        if failed:
            verdict += f" ({failed} failed runs left out)"
        rows.append([t.text, d, spread(x), f"{peer} {spread(p)}", measured, needed,
                     str(n), verdict])
    return rows


def spread(c):
    """`median (min–max)` of a cell's wall times, in seconds."""
    if not c or c["wall_s"] is None:
        return "–"
    return f"{c['wall_s']:.3f} s ({c['wall_min']:.3f}–{c['wall_max']:.3f})"


def own_work_rows(res, drivers):
    """The own-work target: each driver's worst median p99 over the largest size's cases at
    0 % loss (the long downloads, where batches are full)."""
    name = res.own_work_name()
    rows = []
    text = f"p99 of our own work per receive batch ≤ {OWN_WORK_TARGET_US} µs"
    for d in drivers:
        if name is None:
            rows.append([text, d, "–", "–", "no `own_work` histogram in `--stats-json`",
                         f"≤ {OWN_WORK_TARGET_US} µs", "0", "not measured"])
            continue
        worst = None
        for loss, size, sink in res.cases():
            if loss != 0 or size != res.sizes[-1]:
                continue
            pct = res.percentiles(d, size, sink, loss, name)
            if pct and (worst is None or pct["p99"] / 1000 > worst[0]):
                worst = (pct["p99"] / 1000, f"{size} → {SINK_NAMES[sink]}",
                         len(res.select(d, size, sink, loss)))
        if worst is None:
            rows.append([text, d, "–", "–", f"no `{name}` samples", "", "0", "not measured"])
            continue
        p99, case, n = worst
        rows.append([text, d, "–", "–", f"{p99:.1f} µs (`{name}` p99, worst case: {case})",
                     f"≤ {OWN_WORK_TARGET_US} µs", str(n),
                     "met" if p99 <= OWN_WORK_TARGET_US else "**not met**"])
    return rows


def memory_rows(res):
    """Issue 10: the peak anonymous memory (RssAnon) of any run over 16 connections."""
    peaks = [r["rss_anon_peak_kb"] for r in res.runs
             if r["tool"] == SEGMENT_MEMORY_TOOL and r["ok"] and r.get("rss_anon_peak_kb")]
    text = f"-x 16: anonymous memory < {SEGMENT_MEMORY_LIMIT_MIB} MiB (issue 10)"
    if not peaks:
        return [[text, SEGMENT_MEMORY_TOOL, "–", "–", "no run", "", "0", "not measured"]]
    peak = max(peaks) / 1024
    return [[text, SEGMENT_MEMORY_TOOL, "–", "–", f"{peak:.1f} MiB (RssAnon, the most of any run)",
             f"< {SEGMENT_MEMORY_LIMIT_MIB} MiB", str(len(peaks)),
             "met" if peak < SEGMENT_MEMORY_LIMIT_MIB else "**not met**"]]


def table(header, rows, align=None):
    align = align or ["---"] * len(header)
    return (["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
            + ["| " + " | ".join(r) + " |" for r in rows])


def targets_section(res):
    drivers = [t for t in res.tools if is_default_xdpget(t)]
    lines = ["## Targets (issue 9; HTTPS: issue 11; -x: issue 10)", "",
             "xdpget with default flags (`xdpget-auto`: no `--driver`, the raw socket first "
             "and AF_XDP handed over to after 8 MiB; `--driver afxdp` and `--driver raw` "
             "beside it) against the peer in the same case. Times are medians "
             "of the successful runs, with min–max; a ratio compares medians. A target with a "
             "minimum number of runs is inconclusive below it. The own-work row reads the "
             "`own_work` histogram of `--stats-json` where xdpget records it. HTTPS rows "
             "compare `xdpget-<driver>-https` with the peer over HTTPS (`<peer>-https`), "
             "every tool given the testbed's CA and nothing else.", ""]
    if not drivers:
        return lines + ["No run of xdpget with default flags in these results.", ""]
    rows = target_rows(res, drivers) + own_work_rows(res, drivers) + memory_rows(res)
    lines += table(["target", "xdpget", "xdpget time", "peer time", "measured", "needed",
                    "runs", "verdict"], rows)
    return lines + [""]


def medians_section(res):
    lines = ["## Medians", "",
             "Per (loss, size, sink, tool): successful runs / runs, the median wall time over "
             "the successful ones with its min–max, and medians of the rest. Wall time "
             "includes process start-up and `ip netns exec`; MiB/s is size / median wall "
             "time. × wget and × curl: throughput as a multiple of that tool's in the same "
             "case (above 1 is faster; a `-https` tool against that tool over HTTPS). CPU is user + sys of the tool's process (all threads). "
             "Peak RSS is GNU time's `%M`; RssAnon peak is the largest sample over the rounds.",
             ""]
    rows, failures = [], []
    for loss, size, sink in res.cases():
        for tool in res.tools:
            x = res.cell(tool, size, sink, loss)
            if not x:
                continue
            rows.append([f"{loss} %", size, SINK_NAMES[sink], tool, f"{x['ok']}/{x['runs']}",
                         fmt(x["wall_s"], 3),
                         f"{fmt(x['wall_min'], 3)}–{fmt(x['wall_max'], 3)}",
                         fmt(x["throughput"], 1),
                         fmt(res.speed(tool, over("wget", scheme_of(tool)), size, sink,
                                       loss)),
                         fmt(res.speed(tool, over("curl", scheme_of(tool)), size, sink,
                                       loss)),
                         fmt(x["cpu_s"], 3), fmt(x["max_rss_mib"], 1),
                         fmt(x["anon_max_mib"], 1)])
            failures += [f"- {tool}, {size}, {SINK_NAMES[sink]}, {loss} % loss: {e}"
                         for e in x["errors"]]
    lines += table(["loss", "size", "sink", "tool", "ok", "wall s", "min–max s", "MiB/s",
                    "× wget", "× curl", "CPU s", "peak RSS MiB", "RssAnon peak MiB"], rows,
                   ["---"] * 5 + ["--:"] * 8)
    lines += ["", "### Failed runs", ""]
    lines += failures or ["None: every run exited 0 and every file's sha256 matched."]
    return lines + [""]


def batches_section(res):
    """xdpget's per-receive-batch histograms from --stats-json, medians over runs."""
    ours = [t for t in res.tools if is_xdpget(t)]
    own = res.own_work_name()
    # The kick alone where xdpget records it, else `transmit` (building segments + the kick).
    kick = "kick" if any(histogram(r, "kick") for r in res.runs) else "transmit"
    rows = []
    for (loss, size, sink), tool in itertools.product(res.cases(), ours):
        rta = res.percentiles(tool, size, sink, loss, "receive_to_ack")
        if not rta:
            continue
        tx = res.percentiles(tool, size, sink, loss, kick) or {}
        frames = res.percentiles(tool, size, sink, loss, "batch_size") or {}
        work = (res.percentiles(tool, size, sink, loss, own) if own else None) or {}

        def us(h, p):
            return fmt(h[p] / 1000, 1) if h.get(p) is not None else "–"
        rows.append([f"{loss} %", size, SINK_NAMES[sink], tool, f"{rta['count']:.0f}",
                     fmt(frames.get("p50"), 0), us(work, "p50"), us(work, "p99"),
                     us(tx, "p50"), us(tx, "p99"), us(rta, "p50"), us(rta, "p99")])
    if not rows:
        return []
    lines = ["## xdpget per receive batch", "",
             "From `--stats-json`, medians over runs of each run's percentile, in µs. "
             + (f"Own work (`{own}`): parsing, the TCP engine, the copy and the ACK decision of "
                "one batch, without the transmit kick. " if own else
                "Own work: not recorded by this xdpget (no `own_work` histogram). ")
             + "Receive→ACK: from the start of a receive batch to the end of the transmit kick "
             "that carries its ACK; "
             + ("kick: the driver's transmit kick alone, " if kick == "kick" else
                "transmit: the part of it spent building segments and in the kick, ")
             + "which on veth runs the server's kernel on our core.", ""]
    lines += table(["loss", "size", "sink", "tool", "batches", "frames p50", "own p50",
                    "own p99", f"{kick} p50", f"{kick} p99", "receive→ACK p50",
                    "receive→ACK p99"], rows, ["---"] * 4 + ["--:"] * 8)
    return lines + [""]


def startup_section(res):
    """Where xdpget's time goes before the body, for the smallest size without loss."""
    ours = [t for t in res.tools if is_xdpget(t)]
    if not ours or not res.sizes:
        return []
    names = sorted({h["name"] for r in res.runs
                    for h in (r.get("xdpget_stats") or {}).get("histograms", [])
                    if h.get("name", "").startswith("setup")})
    rows = []
    for (loss, size, sink), tool in itertools.product(res.cases(), ours):
        runs = res.select(tool, size, sink, loss)
        if loss != 0 or size != res.sizes[0] or not runs:
            continue

        def ms(name):
            return fmt(median(histogram(r, name)["max"] / 1e6 for r in runs
                              if histogram(r, name)), 2)
        rows.append([f"{loss} %", size, SINK_NAMES[sink], tool,
                     fmt(median(r["wall_s"] for r in runs) * 1000, 1), ms("connect"),
                     ms("first_byte")] + [ms(n) for n in names])
    if not rows:
        return []
    lines = ["## xdpget's start-up", "",
             "Medians over runs, in ms, from `--stats-json`: `connect` is SYN → established, "
             "`first byte` SYN → first body byte"
             + (", `setup…` the set-up steps xdpget times" if names else "")
             + "; the rest of the wall time before the SYN is process start-up (interface, XDP "
             "program and socket, guard, port reservation) and, after the last byte, "
             "teardown. Compare with wget's and curl's wall times in the medians.", ""]
    lines += table(["loss", "size", "sink", "tool", "wall", "connect", "first byte"] + names,
                   rows, ["---"] * 4 + ["--:"] * (3 + len(names)))
    return lines + [""]


def variants_section(doc):
    variants = doc["config"].get("variants") or {}
    if not variants:
        return []
    lines = ["## Flag variants", "",
             "Measured beside the defaults; not part of any target.", ""]
    lines += [f"- `xdpget-<driver>-{name}`: `{' '.join(v['flags'])}`: {v['about']}"
              + (" (to a file only)" if v.get("file_only") else "")
              for name, v in variants.items()]
    return lines + [""]


def rounds_text(rounds):
    if isinstance(rounds, dict):
        return ", ".join(f"{size} × {n}" for size, n in rounds.items())
    return str(rounds)


def machine_section(doc, results_rel):
    m = doc["machine"]
    cfg = doc["config"]
    runs = doc["runs"]
    loads = [r["loadavg_1m"] for r in runs if r.get("loadavg_1m") is not None]
    v = m.get("versions", {})
    memory = (f"{m['memory_total_kb'] / 1024 / 1024:.1f} GiB" if m.get("memory_total_kb")
              else "unknown")
    return ["## Machine and run", "",
            f"- Date (UTC): {m['date_utc']}",
            f"- CPU: {m['cpu_model']}, nproc {m['nproc']}",
            f"- Memory: {memory}",
            f"- Kernel: {m['kernel']}",
            f"- xdpget commit: {m['xdpget_commit']} ({v.get('xdpget', '?')})",
            f"- Peers: {v.get('wget', '?')}; {v.get('curl', '?')}; {v.get('aria2c', '?')}; "
            f"server {v.get('nginx', '?')}",
            f"- Rounds: {rounds_text(cfg['rounds'])}; sinks "
            f"{', '.join(SINK_NAMES[s] for s in cfg['sinks'])}; loss "
            f"{', '.join(str(x) + ' %' for x in cfg['loss_percent'])}"
            + (f"; left out: {', '.join(cfg['skip'])}" if cfg.get("skip") else ""),
            f"- Runs: {len(runs)}, failed: {sum(not r['ok'] for r in runs)}",
            f"- 1-minute load average at the start of each run: median "
            f"{fmt(median(loads), 2)}, max {fmt(max(loads) if loads else None, 2)}",
            f"- Raw results: [{results_rel}]({results_rel})", ""]


def render(doc, results_rel, plot_rel, plots, notes=None):
    res = Results(doc)
    lines = ["# Benchmarks", "",
             "xdpget with its default flags (no --driver: the raw socket first, AF_XDP after 8 MiB; and each driver forced) against "
             "wget, curl and aria2c (one and eight connections), downloading from nginx over "
             "the testbed's veth pairs and bridge (docs/testbed.md), to a file and to "
             "/dev/null, with and without 1 % loss of the server's frames on the bridge. "
             "Generated by `bench/report.py` from the raw results; do not edit by hand.", "",
             "Read these numbers as what they are: veth pairs on a small VM, server and client "
             "on the same cores. Every tool runs against the same testbed, server and files; "
             "tools run interleaved, A B C A B C …, the order rotated each round, so slow "
             "phases of the machine hit every tool alike.", ""]
    if notes:
        lines += [notes.rstrip(), ""]
    lines += targets_section(res)
    lines += ["## Plots", ""]
    lines += [f"![{alt}]({plot_rel}/{name})" + "\n" for name, alt in plots]
    lines += medians_section(res)
    lines += batches_section(res)
    lines += startup_section(res)
    lines += variants_section(doc)
    lines += machine_section(doc, results_rel)
    lines += how_to_rerun()
    return "\n".join(lines) + "\n"


def how_to_rerun():
    return ["## How to re-run", "",
            "As root, after `scripts/setup.sh`, on a machine with nothing else running "
            "(about 10 minutes; see bench/README.md):", "",
            "```sh",
            "bench/run.sh                      # the full run; rewrites this page",
            "bench/run.sh --rounds 3,1M=10 --sizes 1M,64M --loss 0",
            "bench/run.sh --tools xdpget-afxdp,curl --sinks null",
            "bench/run.sh --variants ack2      # also xdpget-afxdp --ack-every 2",
            "bench/run.sh --tiny --no-doc      # 1M, one round, no loss: proves the harness works",
            "bench/report.py bench/results/<stamp>.json --notes bench/notes.md   # this page",
            "```", "",
            "The section before \"Targets\" is `bench/notes.md`, written by hand for one run and "
            "passed with `--notes`; `bench/run.sh` leaves it out, so rewrite it for a new run.",
            "",
            "Each tool's command line (every one runs as `ip netns exec xgbench-client …`):", "",
            "- xdpget: `xdpget --iface xg-c0 --driver afxdp|raw [variant flags] -q "
            "--stats-json F -O FILE|/dev/null URL`",
            "- wget: `wget --no-config -q -O FILE|/dev/null URL`; wget-sync: the same, then "
            "`sync FILE` (to a file only)",
            "- curl: `curl -q -sS -f -o FILE|/dev/null URL`",
            "- aria2c: `aria2c --no-conf -q -xN -sN --min-split-size=1M --allow-overwrite=true "
            "--auto-file-renaming=false -d DIR -o NAME URL`; /dev/null is `-d /dev -o null` "
            "(the harness checks after every aria2c run that /dev/null is still a character "
            "device).",
            "- Over HTTPS (`<tool>-https`): the same command with `https://` and the "
            "testbed's CA, `--ca-certificate CA` (xdpget, wget, aria2c) or `--cacert CA` "
            "(curl); `--schemes http` leaves them out.",
            "- Every file written is checked against the testbed's SHA256SUMS and deleted; "
            "runs to /dev/null count as successful on exit status 0 alone.", ""]


PLOTS = [("times.png", "Wall time per tool and case", times_plot),
         ("ratios.png", "xdpget's throughput as a multiple of wget's and curl's", ratios_plot)]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", help="a results JSON written by bench/bench.py")
    p.add_argument("--doc", default=None, help="markdown output (default docs/benchmarks.md)")
    p.add_argument("--plot-dir", default=None, help="plot output dir (default docs/benchmarks)")
    p.add_argument("--notes", default=None,
                   help="markdown put after the introduction: the findings, written by hand")
    args = p.parse_args(argv)
    if plt is None:
        raise SystemExit("report: matplotlib is missing (apt-get install python3-matplotlib, "
                         "or run scripts/setup.sh)")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    doc_path = os.path.abspath(args.doc or os.path.join(repo, "docs", "benchmarks.md"))
    plot_dir = os.path.abspath(args.plot_dir or os.path.join(repo, "docs", "benchmarks"))
    with open(args.results) as f:
        doc = json.load(f)
    if not doc["runs"]:
        raise SystemExit("report: the results hold no runs")
    os.makedirs(plot_dir, exist_ok=True)
    res = Results(doc)
    plots = []
    for name, alt, draw in PLOTS:
        if draw(res, os.path.join(plot_dir, name)) is not False:
            plots.append((name, alt))
    doc_dir = os.path.dirname(doc_path)
    results_rel = os.path.relpath(os.path.abspath(args.results), doc_dir)
    plot_rel = os.path.relpath(plot_dir, doc_dir)
    notes = None
    if args.notes:
        with open(args.notes) as n:
            notes = n.read()
    with open(doc_path, "w") as f:
        f.write(render(doc, results_rel, plot_rel, plots, notes))
    print(doc_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
