#!/usr/bin/env python3
"""Unit tests of the benchmark harness's logic that needs no root and no network: tool
names and variants, rounds and skip patterns, the round order, and the report's verdicts.

    python3 -m unittest discover -s bench -p 'test_*.py'
"""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import report  # noqa: E402


def fake_xdpget(help_text):
    """An executable that prints help_text for --help, as xdpget would."""
    f = tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False)
    f.write(f"#!/bin/sh\ncat <<'EOF'\n{help_text}\nEOF\n")
    f.close()
    os.chmod(f.name, 0o755)
    return f.name


class HarnessTest(unittest.TestCase):
    def args(self, *argv, help_text="  --fsync-policy <POLICY>\n  --ack-every <N>"):
        path = fake_xdpget(help_text)
        self.addCleanup(os.remove, path)
        return bench.parse_args(["--xdpget", path, *argv])

    def test_defaults_are_default_flags_and_the_fsync_variant_when_known(self):
        a = self.args()
        self.assertEqual(a.tools, ["xdpget-afxdp", "xdpget-raw", "xdpget-afxdp-fsync",
                                   "xdpget-afxdp-ipv6", "wget", "wget-sync", "curl",
                                   "aria2c-x1", "aria2c-x8", "serve-curl", "serve-xdpget",
                                   "parallel-xdpget", "parallel-curl"]
                         + bench.HTTPS_TOOLS)
        self.assertEqual(a.rounds, {"1M": 15, "64M": 5, "1G": 5})

    def test_segmented_variants_run_when_xdpget_knows_connections(self):
        a = self.args(help_text="  --fsync-policy <POLICY>\n  -x, --connections <N>")
        for n in (4, 8, 16):
            self.assertIn(f"xdpget-afxdp-x{n}", a.tools)
            self.assertEqual(a.variants[f"x{n}"].flags, ["--connections", str(n)])

    def test_parallel_rows_fetch_four_copies_into_one_directory(self):
        argv = bench.parallel_command("parallel-xdpget", "/x", "http://s/64M.bin", "/d")
        self.assertEqual(argv[-4:], [f"http://s/64M.bin?{i}" for i in range(1, 5)])
        self.assertIn("--parallel", argv)
        curl = bench.parallel_command("parallel-curl", "/x", "http://s/64M.bin", "/d")
        self.assertEqual(curl.count("-o"), 4)
        self.assertIn("--parallel-max", curl)
        self.assertFalse(bench.runs_with_sink("parallel-curl", "null", bench.VARIANTS))

    def test_the_ipv6_variant_downloads_from_the_ipv6_address(self):
        self.assertEqual(bench.url_for("xdpget-afxdp-ipv6", "1G.bin"),
                         "http://[fd00:77::2]/1G.bin")
        self.assertEqual(bench.url_for("xdpget-raw-ipv6", "1M.bin"), "http://[fd00:77::2]/1M.bin")
        self.assertEqual(bench.url_for("xdpget-afxdp", "1G.bin"), "http://10.77.0.2/1G.bin")
        self.assertEqual(bench.url_for("curl-https", "1G.bin"), "https://10.77.0.2/1G.bin")

    def test_serve_tools_download_from_xdpget_serve(self):
        """Issue 14's rows: curl and xdpget (AF_XDP) against `xdpget serve`."""
        self.assertEqual(bench.tool_command("serve-curl", "/x", "URL", "F", "s"),
                         bench.tool_command("curl", "/x", "URL", "F", "s"))
        self.assertEqual(bench.tool_command("serve-xdpget", "/x", "URL", "F", "s")[:5],
                         ["/x", "--iface", bench.CLIENT_IFACE, "--driver", "afxdp"])
        self.assertEqual(self.args("--tools", "curl,serve-curl").tools, ["curl", "serve-curl"])

    def test_auto_variant_left_out_when_the_binary_lacks_its_flag(self):
        a = self.args(help_text="  --ack-every <N>")
        self.assertNotIn("xdpget-afxdp-fsync", a.tools)

    def test_explicit_tools_get_no_auto_variant(self):
        self.assertEqual(self.args("--tools", "curl,xdpget-raw").tools, ["curl", "xdpget-raw"])

    def test_variant_by_name_and_defined_on_the_command_line(self):
        a = self.args("--variants", "ack2", "--define-variant", "big=--ack-every 16")
        self.assertIn("xdpget-afxdp-ack2", a.tools)
        argv = bench.tool_command("xdpget-afxdp-big", "/x", "URL", "/dev/null", "s.json",
                                  a.variants)
        self.assertEqual(argv[argv.index("--driver") + 1:argv.index("-q")],
                         ["afxdp", "--ack-every", "16"])

    def test_default_xdpget_gets_no_extra_flags(self):
        argv = bench.tool_command("xdpget-raw", "/x", "URL", "F", "s.json")
        self.assertEqual(argv, ["/x", "--iface", "xg-c0", "--driver", "raw", "-q",
                                "--stats-json", "s.json", "-O", "F", "URL"])

    def test_unknown_tool_or_variant_is_refused(self):
        for tools in ("xdpget-afxdp-nope", "xdpget-dpdk", "wget2"):
            with self.assertRaises(SystemExit), open(os.devnull, "w") as null:
                stderr, sys.stderr = sys.stderr, null
                try:
                    self.args("--tools", tools)
                finally:
                    sys.stderr = stderr

    def test_rounds_per_size(self):
        self.assertEqual(bench.parse_rounds("3,1M=12", ["1M", "1G"]), {"1M": 12, "1G": 3})
        with self.assertRaises(ValueError):
            bench.parse_rounds("1M=12", ["1M", "1G"])

    def test_skip_patterns(self):
        a = self.args()
        self.assertTrue(bench.skipped(a, "1G", "null", 1))
        self.assertFalse(bench.skipped(a, "1G", "null", 0))
        self.assertFalse(bench.skipped(a, "64M", "file", 1))

    def test_round_order_rotates_and_leaves_file_only_tools_out_of_dev_null(self):
        a = self.args()
        first = bench.round_order(a, 1, "null")
        self.assertNotIn("wget-sync", first)
        self.assertNotIn("xdpget-afxdp-fsync", first)
        second = bench.round_order(a, 2, "null")
        self.assertEqual(second, first[1:] + first[:1])
        self.assertIn("wget-sync", bench.round_order(a, 1, "file"))


def run(tool, size, sink, loss, wall, ok=True, histograms=None):
    return {"tool": tool, "size": size, "size_bytes": bench.size_bytes(size), "sink": sink,
            "loss_percent": loss, "wall_s": wall, "cpu_s": 0.1, "max_rss_kb": 1024,
            "rss_anon_peak_kb": 1024, "ok": ok, "error": None if ok else "exit status 4",
            "xdpget_stats": {"histograms": histograms} if histograms is not None else None}


def results(runs, tools=("xdpget-afxdp", "curl", "wget")):
    return report.Results({"config": {"tools": list(tools), "sizes": ["1M", "64M", "1G"],
                                      "sinks": ["file", "null"], "loss_percent": [0, 1]},
                           "runs": runs})


def verdicts(res, target_text):
    return [row[-1] for row in report.target_rows(res, ["xdpget-afxdp"])
            if row[0] == target_text]


class VerdictTest(unittest.TestCase):
    NULL_1G = report.TARGETS[0].text
    NULL_1M = report.TARGETS[2].text
    FILE_WGET = report.TARGETS[3].text

    def test_no_slower_than_curl_compares_medians(self):
        runs = [run("xdpget-afxdp", "1G", "null", 0, w) for w in (1.0, 1.1, 9.0)]
        runs += [run("curl", "1G", "null", 0, w) for w in (1.05, 1.2, 1.3)]
        self.assertEqual(verdicts(results(runs), self.NULL_1G), ["met"])
        runs += [run("xdpget-afxdp", "1G", "null", 0, w) for w in (2.0, 2.0)]
        self.assertEqual(verdicts(results(runs), self.NULL_1G), ["**not met**"])

    def test_throughput_target_is_a_multiple_of_the_peer(self):
        runs = [run("xdpget-afxdp", "1G", "file", 0, 1.0), run("wget", "1G", "file", 0, 2.1)]
        self.assertEqual(verdicts(results(runs), self.FILE_WGET), ["met"])
        runs = [run("xdpget-afxdp", "1G", "file", 0, 1.0), run("wget", "1G", "file", 0, 1.9)]
        self.assertEqual(verdicts(results(runs), self.FILE_WGET), ["**not met**"])

    def test_one_mib_needs_ten_runs(self):
        runs = [run(t, "1M", "null", 0, 0.01) for t in ("xdpget-afxdp", "curl") for _ in range(9)]
        self.assertEqual(verdicts(results(runs), self.NULL_1M),
                         ["inconclusive: 9 runs, needs ≥ 10"])
        runs += [run(t, "1M", "null", 0, 0.01) for t in ("xdpget-afxdp", "curl")]
        self.assertEqual(verdicts(results(runs), self.NULL_1M), ["met"])

    def test_missing_case_is_not_measured_and_failed_runs_are_named(self):
        runs = [run("xdpget-afxdp", "1G", "null", 0, 1.0, ok=False),
                run("curl", "1G", "null", 0, 1.0)]
        self.assertEqual(verdicts(results(runs), self.NULL_1G),
                         ["not measured (1 failed runs left out)"])

    def test_own_work_row_tolerates_a_missing_histogram(self):
        res = results([run("xdpget-afxdp", "1G", "null", 0, 1.0, histograms=[])])
        self.assertEqual(report.own_work_rows(res, ["xdpget-afxdp"])[0][-1], "not measured")

    def test_own_work_row_reads_the_histogram(self):
        def h(p99):
            return [{"name": "own_work", "count": 10, "p50": 1000, "p90": 2000, "p99": p99,
                     "p999": p99, "max": p99}]
        res = results([run("xdpget-afxdp", "1G", "null", 0, 1.0, histograms=h(12_000)),
                       run("xdpget-afxdp", "1G", "file", 0, 1.0, histograms=h(25_000))])
        row = report.own_work_rows(res, ["xdpget-afxdp"])[0]
        self.assertEqual(row[-1], "**not met**")
        self.assertIn("25.0 µs", row[4])


class HttpsTest(unittest.TestCase):
    """Issue 11's rows: `<tool>-https` is the tool over HTTPS, given the testbed's CA."""

    def args(self, *argv):
        path = fake_xdpget("  --fsync-policy <POLICY>")
        self.addCleanup(os.remove, path)
        return bench.parse_args(["--xdpget", path, *argv])

    def test_https_tools_get_the_ca_and_nothing_else(self):
        plain = bench.tool_command("xdpget-afxdp", "/x", "URL", "F", "s.json")
        https = bench.tool_command("xdpget-afxdp-https", "/x", "URL", "F", "s.json", ca="ca.pem")
        self.assertEqual(https, plain[:1] + ["--ca-certificate", "ca.pem"] + plain[1:])
        self.assertEqual(bench.tool_command("curl-https", "/x", "URL", "F", "s", ca="C")[:3],
                         ["curl", "--cacert", "C"])
        self.assertEqual(bench.tool_command("wget-https", "/x", "URL", "F", "s", ca="C")[:2],
                         ["wget", "--ca-certificate=C"])
        with self.assertRaises(ValueError):
            bench.tool_command("wget-sync-https", "/x", "URL", "F", "s", ca="C")

    def test_schemes_filter_the_tools(self):
        self.assertFalse([t for t in self.args("--schemes", "http").tools
                          if t.endswith("-https")])
        self.assertEqual(self.args("--schemes", "https").tools, bench.HTTPS_TOOLS)
        self.assertEqual(self.args("--tools", "curl,curl-https", "--schemes", "https").tools,
                         ["curl-https"])
        self.assertEqual(bench.split_xdpget("xdpget-raw-https", bench.VARIANTS), ("raw", None))

    def test_https_targets_compare_https_with_https(self):
        text = next(t.text for t in report.TARGETS if t.scheme == "https" and t.sink == "null")
        tools = ("xdpget-afxdp", "curl", "xdpget-afxdp-https", "curl-https")
        # HTTP runs are fast, HTTPS slower: only the HTTPS pair decides.
        runs = [run("xdpget-afxdp", "1G", "null", 0, 1.0), run("curl", "1G", "null", 0, 1.0),
                run("xdpget-afxdp-https", "1G", "null", 0, 2.3),
                run("curl-https", "1G", "null", 0, 2.0)]
        rows = [r for r in report.target_rows(results(runs, tools), ["xdpget-afxdp"])
                if r[0] == text]
        self.assertEqual([(r[1], r[-1]) for r in rows], [("xdpget-afxdp-https", "met")])
        runs[2] = run("xdpget-afxdp-https", "1G", "null", 0, 2.5)
        self.assertEqual(verdicts(results(runs, tools), text), ["**not met**"])


if __name__ == "__main__":
    unittest.main()
