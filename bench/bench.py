#!/usr/bin/env python3
"""xdpget's benchmark runner: xdpget with its default flags (AF_XDP and raw drivers) against
wget, curl and aria2c.

Brings up a testbed of its own (scripts/testbed.sh under its own name), then runs every
(tool, size, sink) combination, interleaved A B C A B C ... for several rounds (the order
rotated by one tool each round), once per loss setting. Every tool runs inside the testbed's
client namespace, against the same nginx and the same files. Per run it records wall time,
CPU time (user + sys, from wait4's rusage of GNU time running the tool), peak RSS (GNU
time's %M of the tool), peak anonymous memory (RssAnon of the tool, sampled from
/proc/PID/status every few ms) and, for xdpget, its --stats-json. Every file written is
checked against the testbed's SHA256SUMS; a mismatch, a non-zero exit status or a timeout is
a failed run.

xdpget is measured as a user runs it, with default flags. A flag variant
(`xdpget-<driver>-<name>`, e.g. `xdpget-afxdp-fsync` for `--fsync-policy on`) is measured
beside the defaults when named with --variants; see VARIANTS.

Raw results go to OUT/<stamp>.json (machine, config, one record per run), rewritten after
every run so that an interrupted benchmark keeps what it measured. Standard library only.
See bench/README.md and docs/benchmarks.md.
"""

import argparse
import datetime
import fnmatch
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from typing import NamedTuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTBED = os.path.join(REPO, "scripts", "testbed.sh")
SERVER = "10.77.0.2"
CLIENT_IFACE = "xg-c0"

# xdpget's drivers; `xdpget-<driver>` runs xdpget with its default flags and that driver.
# `xdpget-auto` is what a user gets without --driver: the raw socket first, AF_XDP handed
# over to once 8 MiB came in (docs/design.md, "Hand-over from the raw socket to AF_XDP").
DRIVERS = ["afxdp", "raw", "auto"]
# The tools we compare against, with their default flags. wget-sync is wget followed by
# `sync FILE`: a file as durable when the clock stops as xdpget's with `--fsync-policy on`
# (and as every xdpget file was before the default sink stopped syncing).
PEERS = ["wget", "wget-sync", "curl", "aria2c-x1", "aria2c-x8"]
# Every tool run by default, in the order of a round's first pass (later rounds rotate it).
DEFAULT_TOOLS = ["xdpget-auto", "xdpget-afxdp", "xdpget-raw", "wget", "wget-sync", "curl", "aria2c-x1",
                 "aria2c-x8", "serve-curl", "serve-xdpget", "parallel-xdpget", "parallel-curl"]
# Downloads from `xdpget serve` (AF_XDP, port SERVE_PORT in the server namespace) instead of
# nginx: serve-curl is curl <- xdpget serve (the row beside curl <- nginx), serve-xdpget is
# xdpget (AF_XDP) <- xdpget serve, both ends bypassing the kernel. The server starts once
# per loss setting, after the testbed is up.
SERVE_TOOLS = ["serve-curl", "serve-xdpget"]
SERVE_PORT = 8080
SERVER_IFACE = "xg-s0"
SINKS = ["file", "null"]
# Several URLs at once (issue 10): PARALLEL_FILES copies of the file (URL?1, URL?2, ...) into
# one directory, `xdpget --parallel N` (AF_XDP, one process) beside `curl --parallel
# --parallel-max N`. A run's size_bytes counts every file, so its throughput is the sum.
PARALLEL_TOOLS = ["parallel-xdpget", "parallel-curl"]
PARALLEL_FILES = 4
# Tools that only mean something with a file (to /dev/null they repeat another tool).
FILE_ONLY_PEERS = {"wget-sync", *PARALLEL_TOOLS}

# HTTPS (issue 11): `<tool>-https` is <tool> downloading the same file over HTTPS from the
# testbed's nginx (port 443, TLS 1.2 and 1.3, certificate for the server's address). Each
# tool gets the one flag HTTPS needs, the testbed's CA (made at "up" time); nothing else
# changes, so xdpget still runs with its default flags. `--schemes http` leaves these out.
HTTPS_SUFFIX = "-https"
HTTPS_TOOLS = ["xdpget-auto-https", "xdpget-afxdp-https", "xdpget-raw-https", "wget-https",
               "curl-https"]
SCHEMES = ["http", "https"]
# How each tool is told to trust the testbed's CA.
CA_FLAGS = {
    "xdpget": lambda ca: ["--ca-certificate", ca],
    "wget": lambda ca: [f"--ca-certificate={ca}"],
    "curl": lambda ca: ["--cacert", ca],
    "aria2c": lambda ca: [f"--ca-certificate={ca}"],
}


def split_scheme(tool):
    """`curl-https` -> ("curl", "https"); `curl` -> ("curl", "http")."""
    if tool.endswith(HTTPS_SUFFIX):
        return tool[:-len(HTTPS_SUFFIX)], "https"
    return tool, "http"


def with_ca(argv, base, ca):
    """argv of `base` with the CA flags inserted after the program (HTTPS runs)."""
    family = "xdpget" if base.startswith("xdpget-") else base.split("-")[0]
    if family not in CA_FLAGS or base in FILE_ONLY_PEERS:
        raise ValueError(f"{base!r} is not measured over HTTPS")
    return argv[:1] + CA_FLAGS[family](ca) + argv[1:]


class Variant(NamedTuple):
    """xdpget with flags added to its defaults, measured as `xdpget-<driver>-<name>`."""
    flags: list
    about: str
    file_only: bool = False
    # The driver it is measured with by default (`auto`: what a user gets without --driver).
    driver: str = "afxdp"


# Flag variants known by name. To measure one more, add it here (or define it on the command
# line: --variants NAME='--flag value') and name it in --variants.
VARIANTS = {
    "fsync": Variant(["--fsync-policy", "on"],
                     "power-loss durable file: fsync before the rename, as wget2's option",
                     file_only=True),
    "ack2": Variant(["--ack-every", "2"], "RFC 5681's strict one ACK per two segments"),
    "nosack": Variant(["--no-sack"], "no SACK-permitted offered (RFC 2018 off)"),
}
# Segmented downloads (issue 10): one file over N connections, beside aria2c -x 1 and -x 8.
for _n in (4, 8, 16):
    VARIANTS[f"x{_n}"] = Variant(["--connections", str(_n)],
                                 f"-x {_n}: {_n} connections fetch ranges of the one file",
                                 driver="auto")
# Measured by default (--variants auto) when the binary's --help lists every flag of theirs.
DEFAULT_VARIANTS = ["fsync", "x4", "x8", "x16"]

# IPv6 beside IPv4 (issue 12): the same xdpget and flags, the URL with the server's IPv6
# address (scripts/testbed.sh ADDR6_SERVER, a ULA inside the testbed) instead of its IPv4 one.
SERVER6 = "fd00:77::2"
VARIANTS["ipv6"] = Variant([], f"over IPv6: http://[{SERVER6}]/ instead of http://{SERVER}/")
DEFAULT_VARIANTS.append("ipv6")
# curl over IPv6 (not run by default): the row beside `curl` that tells whether the kernel's
# path over IPv6 (nginx, the server's stack, the bridge) is slower for a kernel client too.
CURL_IPV6 = "curl-ipv6"
PEERS.append(CURL_IPV6)


def url_for(tool, name):
    """The URL a tool downloads `name` from: its scheme (split_scheme), the server's IPv6
    address for the ipv6 variant (plain HTTP: the testbed's certificate names the IPv4
    address only), its IPv4 address otherwise."""
    base, scheme = split_scheme(tool)
    over_ipv6 = base.startswith("xdpget-") or base == CURL_IPV6
    host = f"[{SERVER6}]" if over_ipv6 and base.endswith("-ipv6") else SERVER
    return f"{scheme}://{host}/{name}"


# Sizes and rounds of a full run: enough rounds of 1M for a median of >= 10 runs (issue 9's
# start-up target), fewer of the sizes whose runs take seconds.
DEFAULT_SIZES = "1M,64M,1G"
DEFAULT_ROUNDS = "5,1M=15"
# 1 GiB at 1 % loss adds minutes per round and no target needs it.
DEFAULT_SKIP = "1G/*/1"
SAMPLE_INTERVAL_S = 0.005


def size_bytes(size):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if size[-1] in units and size[:-1].isdigit():
        return int(size[:-1]) * units[size[-1]]
    if size.isdigit():
        return int(size)
    raise ValueError(f"bad size {size!r} (want e.g. 1M, 64M, 1G)")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def server_congestion_control():
    """The testbed server's TCP congestion control: XG_TESTBED_CC (scripts/testbed.sh), else
    what a new namespace inherits from this machine."""
    if os.environ.get("XG_TESTBED_CC"):
        return os.environ["XG_TESTBED_CC"]
    try:
        with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


class Testbed:
    """The benchmark's own testbed; `down` is safe to call more than once."""

    def __init__(self, name, state_dir, sizes):
        self.env = dict(os.environ)
        self.env.update(
            XG_TESTBED_NAME=name,
            XG_TESTBED_DIR=state_dir,
            XG_TESTBED_SIZES=" ".join(sizes),
        )
        self.name = name
        self.state_dir = state_dir
        self.is_up = False

    @property
    def client_ns(self):
        return f"{self.name}-client"

    @property
    def server_ns(self):
        return f"{self.name}-server"

    def up(self, loss):
        self.is_up = True  # a failed up tears itself down, but down again is harmless
        subprocess.run(["bash", TESTBED, "up", "--loss", str(loss)], env=self.env, check=True)

    def down(self):
        if self.is_up:
            subprocess.run(["bash", TESTBED, "down"], env=self.env, check=False)
            self.is_up = False

    @property
    def ca_file(self):
        """The test CA that signed the HTTPS server's certificate (made by `up`)."""
        return os.path.join(self.state_dir, "tls", "ca.pem")

    def checksums(self):
        sums = {}
        with open(os.path.join(self.state_dir, "www", "SHA256SUMS")) as f:
            for line in f:
                digest, name = line.split()
                sums[name.lstrip("*")] = digest
        return sums

    def loss_drops(self):
        """Packets the loss rule has dropped so far (None without loss)."""
        out = subprocess.run(
            ["ip", "netns", "exec", f"{self.name}-link", "nft", "list", "table", "bridge",
             "xg_testbed_loss"],
            capture_output=True, text=True, check=False,
        )
        for word_index, word in enumerate(out.stdout.split()):
            if word == "packets":
                try:
                    return int(out.stdout.split()[word_index + 1])
                except (IndexError, ValueError):
                    return None
        return None


def split_xdpget(tool, variants):
    """`xdpget-<driver>[-<variant>]` -> (driver, Variant or None); None if not an xdpget tool.

    Raises ValueError for an unknown driver or variant."""
    tool = split_scheme(tool)[0]
    if not tool.startswith("xdpget-"):
        return None
    driver, _, variant = tool[len("xdpget-"):].partition("-")
    if driver not in DRIVERS:
        raise ValueError(f"unknown xdpget driver in {tool!r}; known: {', '.join(DRIVERS)}")
    if not variant:
        return driver, None
    if variant not in variants:
        raise ValueError(f"unknown variant in {tool!r}; known: {', '.join(variants) or 'none'}")
    return driver, variants[variant]


def runs_with_sink(tool, sink, variants):
    """False for a tool that only means something with a file, when the sink is /dev/null."""
    if sink == "file":
        return True
    xdpget = split_xdpget(tool, variants)
    if xdpget is not None:
        return not (xdpget[1] and xdpget[1].file_only)
    return split_scheme(tool)[0] not in FILE_ONLY_PEERS


def tool_command(tool, xdpget, url, sink_path, stats_json, variants=VARIANTS, ca=None):
    """The argv of one download; sink_path is a file path or /dev/null. A `-https` tool
    gets the CA file `ca` to trust."""
    base, scheme = split_scheme(tool)
    if scheme == "https":
        argv = tool_command(base, xdpget, url, sink_path, stats_json, variants)
        return with_ca(argv, base, ca)
    split = split_xdpget(tool, variants)
    if split is not None:
        driver, variant = split
        flags = variant.flags if variant else []
        return [xdpget, "--iface", CLIENT_IFACE, "--driver", driver, *flags, "-q",
                "--stats-json", stats_json, "-O", sink_path, url]
    if tool == "wget":
        return ["wget", "--no-config", "-q", "-O", sink_path, url]
    if tool == "wget-sync":
        # fsync of the one file (coreutils sync FILE); /dev/null has nothing to flush.
        script = 'wget --no-config -q -O "$1" "$2" && { [ "$1" = /dev/null ] || sync "$1"; }'
        return ["sh", "-c", script, "wget-sync", sink_path, url]
    if tool in ("curl", "serve-curl", CURL_IPV6):
        return ["curl", "-q", "-sS", "-f", "-o", sink_path, url]
    if tool == "serve-xdpget":
        return [xdpget, "--iface", CLIENT_IFACE, "--driver", "afxdp", "-q",
                "--stats-json", stats_json, "-O", sink_path, url]
    if tool.startswith("aria2c-x"):
        conns = tool.split("-x", 1)[1]
        # -s: pieces to split into (default 5); --min-split-size 1M (its floor) so 64 MiB
        # really spreads over all connections. /dev/null works as "-d /dev -o null".
        directory, name = os.path.split(sink_path)
        return ["aria2c", "--no-conf", "-q", f"-x{conns}", f"-s{conns}", "--min-split-size=1M",
                "--allow-overwrite=true", "--auto-file-renaming=false",
                "--console-log-level=error", "-d", directory, "-o", name, url]
    raise ValueError(f"unknown tool {tool!r}")


def read_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def child_pid(pid):
    """The first child of pid (the tool that GNU time started), or None."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            words = f.read().split()
        return int(words[0]) if words else None
    except (OSError, ValueError):
        return None


def run_measured(argv, timeout_s, time_out):
    """Runs argv under GNU time; returns wall, rusage, exit status, peak RssAnon (kB) of the
    tool, timed-out flag and stderr.

    GNU time sits between us and the tool because a child forked from this Python process
    carries the interpreter's ~20 MB peak RSS across exec into its ru_maxrss (and so into
    wait4's rusage of time): the peak RSS recorded is GNU time's %M of the tool, forked from
    time's ~2 MB image. User and sys times come from wait4's rusage of time, which includes
    the tool it waited for.
    """
    start = time.monotonic()
    proc = subprocess.Popen(["/usr/bin/time", "-o", time_out, "-f", "%M"] + argv,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    anon_peak = None
    timed_out = False
    tool = None
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if tool is None:
            tool = child_pid(proc.pid)
        if tool is not None:
            anon = read_status_kb(tool, "RssAnon")
            if anon is not None and (anon_peak is None or anon > anon_peak):
                anon_peak = anon
        if time.monotonic() - start > timeout_s:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(SAMPLE_INTERVAL_S)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
    stderr = proc.stderr.read().decode(errors="replace")[-2000:]
    proc.stderr.close()
    return wall, rusage, proc.returncode, anon_peak, timed_out, stderr


def read_gnu_time_kb(path):
    """GNU time's %M (the tool's own peak RSS in kB), last line of its output file."""
    try:
        with open(path) as f:
            return int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
        return (out.stdout or out.stderr).splitlines()[0].strip()
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine_info(xdpget):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                            capture_output=True, text=True, check=False).stdout.strip()
    return {
        "hostname": socket.gethostname(),
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "memory_total_kb": read_meminfo_total(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "xdpget_commit": commit or "unknown",
        "versions": {
            "xdpget": first_line([xdpget, "--version"]),
            "wget": first_line(["wget", "--version"]),
            "curl": first_line(["curl", "--version"]),
            "aria2c": first_line(["aria2c", "--version"]),
            "nginx": first_line(["nginx", "-v"]),
        },
    }


def read_meminfo_total():
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return None


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def check_dev_null():
    """aria2c writes to /dev/null by name: make sure it is still the character device."""
    mode = os.stat("/dev/null").st_mode
    if not stat.S_ISCHR(mode):
        raise SystemExit("bench: /dev/null is no longer a character device; stopping")


def parallel_command(tool, xdpget, url, directory):
    """The argv of a PARALLEL_TOOLS run: PARALLEL_FILES copies of url into directory."""
    urls = [f"{url}?{i}" for i in range(1, PARALLEL_FILES + 1)]
    if tool == "parallel-xdpget":
        return [xdpget, "--iface", CLIENT_IFACE, "--driver", "afxdp", "-q",
                "--parallel", str(PARALLEL_FILES), "-P", directory, *urls]
    argv = ["curl", "-q", "-sS", "-f", "--parallel", "--parallel-max", str(PARALLEL_FILES),
            "--output-dir", directory]
    for i, u in enumerate(urls, 1):
        argv += ["-o", f"copy{i}", u]
    return argv


def parallel_run(args, testbed, sums, record_base, tool, size, work):
    """One PARALLEL_TOOLS run: every file checked, throughput over all of them."""
    name = f"{size}.bin"
    directory = os.path.join(work, f"{tool}-{size}")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    url = url_for("curl", name)
    argv = ["ip", "netns", "exec", testbed.client_ns] + parallel_command(
        tool, args.xdpget, url, directory)
    nbytes = size_bytes(size) * PARALLEL_FILES
    timeout_s = 30 + nbytes / 4e6
    load = loadavg()
    time_out = os.path.join(work, "time.txt")
    wall, rusage, code, anon_peak, timed_out, stderr = run_measured(argv, timeout_s, time_out)
    files = sorted(os.listdir(directory))
    got = [sha256_file(os.path.join(directory, f)) for f in files]
    shutil.rmtree(directory, ignore_errors=True)
    errors = []
    if timed_out:
        errors.append(f"timed out after {timeout_s:.0f} s")
    if code != 0:
        errors.append(f"exit status {code}")
    if len(files) != PARALLEL_FILES or any(g != sums.get(name) for g in got):
        errors.append(f"{len(files)} files, {sum(g == sums.get(name) for g in got)} byte-exact")
    record = dict(record_base)
    record.update(
        tool=tool, size=size, size_bytes=nbytes, files=PARALLEL_FILES, sink="file", url=url,
        command=argv, exit_code=code, timed_out=timed_out,
        wall_s=wall, user_s=rusage.ru_utime, sys_s=rusage.ru_stime,
        cpu_s=rusage.ru_utime + rusage.ru_stime,
        max_rss_kb=read_gnu_time_kb(time_out), rss_anon_peak_kb=anon_peak,
        throughput_mib_s=nbytes / wall / (1 << 20) if wall > 0 else None,
        loadavg_1m=load, expected_sha256=sums.get(name), sha256=None,
        stderr=stderr.strip() or None,
        ok=not errors, error="; ".join(errors) or None,
    )
    return record


def one_run(args, testbed, sums, record_base, tool, size, sink, work):
    if tool in PARALLEL_TOOLS:
        return parallel_run(args, testbed, sums, record_base, tool, size, work)
    name = f"{size}.bin"
    url = (f"http://{SERVER}:{SERVE_PORT}/{name}" if tool in SERVE_TOOLS
           else url_for(tool, name))
    stats_json = os.path.join(work, "stats.json")
    if os.path.exists(stats_json):
        os.remove(stats_json)
    target = os.path.join(work, f"{tool}-{name}") if sink == "file" else "/dev/null"
    if sink == "file" and os.path.exists(target):
        os.remove(target)
    argv = ["ip", "netns", "exec", testbed.client_ns] + tool_command(
        tool, args.xdpget, url, target, stats_json, args.variants, ca=testbed.ca_file)
    nbytes = size_bytes(size)
    # Generous: 4 MB/s at worst plus start-up; a timeout is a failed run, not a hang.
    timeout_s = 30 + nbytes / 4e6
    load = loadavg()
    drops_before = testbed.loss_drops()
    time_out = os.path.join(work, "time.txt")
    wall, rusage, code, anon_peak, timed_out, stderr = run_measured(argv, timeout_s, time_out)
    drops_after = testbed.loss_drops()
    if tool.startswith("aria2c"):
        check_dev_null()
    record = dict(record_base)
    record.update(
        tool=tool, size=size, size_bytes=nbytes, sink=sink, url=url,
        command=argv, exit_code=code, timed_out=timed_out,
        wall_s=wall, user_s=rusage.ru_utime, sys_s=rusage.ru_stime,
        cpu_s=rusage.ru_utime + rusage.ru_stime,
        max_rss_kb=read_gnu_time_kb(time_out), rss_anon_peak_kb=anon_peak,
        throughput_mib_s=nbytes / wall / (1 << 20) if wall > 0 else None,
        loadavg_1m=load,
        server_packets_dropped=(drops_after - drops_before
                                if drops_before is not None and drops_after is not None else None),
        stderr=stderr.strip() or None,
    )
    errors = []
    if timed_out:
        errors.append(f"timed out after {timeout_s:.0f} s")
    if code != 0:
        errors.append(f"exit status {code}")
    if sink == "file":
        record["expected_sha256"] = sums.get(name)
        if os.path.exists(target):
            got = sha256_file(target)
            record["sha256"] = got
            if got != sums.get(name):
                errors.append("sha256 mismatch")
            os.remove(target)
        else:
            record["sha256"] = None
            errors.append("no output file")
    else:
        # Bytes written to /dev/null cannot be checked; exit status only.
        record["sha256"] = None
    if (tool.startswith("xdpget-") or tool == "serve-xdpget") and os.path.exists(stats_json):
        try:
            with open(stats_json) as f:
                record["xdpget_stats"] = json.load(f)
        except (OSError, ValueError) as e:
            errors.append(f"unreadable --stats-json: {e}")
    record["ok"] = not errors
    record["error"] = "; ".join(errors) or None
    return record


class ServeServer:
    """`xdpget serve` in the server namespace (AF_XDP on the server's veth); `stop` is safe
    to call more than once."""

    def __init__(self, xdpget, testbed, work):
        self.log_path = os.path.join(work, "serve.log")
        self.log = open(self.log_path, "w")
        www = os.path.join(testbed.state_dir, "www")
        # The testbed turns transmit checksum offload off on the server's veth only; with the
        # kernel as the client, its segments would reach our server with partial checksums.
        subprocess.run(["ip", "netns", "exec", testbed.client_ns, "ethtool", "-K",
                        CLIENT_IFACE, "tx", "off"], check=True, stdout=subprocess.DEVNULL)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", testbed.server_ns, xdpget, "serve", www, "--iface",
             SERVER_IFACE, "--driver", "afxdp", "--listen", f"{SERVER}:{SERVE_PORT}", "-q"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 15
        while "Ctrl-C stops" not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"bench: xdpget serve did not start:\n{self.output()}")
            time.sleep(0.05)

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def warm_up(testbed, sizes):
    """One untimed curl per file, so nginx reads every file from the page cache."""
    for size in sizes:
        subprocess.run(["ip", "netns", "exec", testbed.client_ns, "curl", "-q", "-sS", "-o",
                        "/dev/null", f"http://{SERVER}/{size}.bin"], check=False)


def parse_rounds(spec, sizes):
    """`5,1M=15` -> {size: rounds}: 15 rounds of 1M, 5 of every other size."""
    default, per_size = None, {}
    for part in (p for p in spec.split(",") if p):
        size, _, count = part.rpartition("=")
        if int(count) < 1:
            raise ValueError(f"rounds must be at least 1, not {count}")
        if size:
            size_bytes(size)
            per_size[size] = int(count)
        else:
            default = int(count)
    missing = [s for s in sizes if s not in per_size and default is None]
    if missing:
        raise ValueError(f"no number of rounds for {', '.join(missing)}")
    return {size: per_size.get(size, default) for size in sizes}


def flags_supported(xdpget, flags):
    """True when xdpget's --help names every `--flag` of flags."""
    text = subprocess.run([xdpget, "--help"], capture_output=True, text=True,
                          check=False).stdout
    return all(re.search(r"(?<![\w-])" + re.escape(f) + r"(?![\w-])", text)
               for f in flags if f.startswith("--"))


def choose_variants(args, p):
    """Sets args.variants (name -> Variant, every one known) and the variant tools to run."""
    variants = dict(VARIANTS)
    chosen = []
    for definition in args.define_variant:
        name, sep, flags = definition.partition("=")
        if not sep or not name or "-" in name or not shlex.split(flags):
            p.error(f"--define-variant wants NAME=FLAGS (NAME without '-'), not {definition!r}")
        variants[name] = Variant(shlex.split(flags), f"defined on the command line: {flags}")
        chosen.append(name)
    if args.variants == "auto":
        for name in DEFAULT_VARIANTS if args.tools is None else []:
            if flags_supported(args.xdpget, variants[name].flags):
                chosen.append(name)
            else:
                flags = [f for f in variants[name].flags if f.startswith("--")]
                log(f"variant {name} left out: xdpget's --help has no {' '.join(flags)}")
    elif args.variants != "none":
        for name in (v for v in args.variants.split(",") if v):
            if name not in variants:
                p.error(f"unknown variant {name!r}; known: {', '.join(variants)}")
            chosen.append(name)
    args.variants = variants
    return [f"xdpget-{variants[name].driver}-{name}" for name in dict.fromkeys(chosen)]


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="xdpget (default flags) against wget, curl and aria2c.",
        epilog="Variants known by name: " + "; ".join(
            f"{name} = {' '.join(v.flags)} ({v.about})" for name, v in VARIANTS.items()))
    p.add_argument("--rounds", default=DEFAULT_ROUNDS,
                   help="rounds per size: N for every size, SIZE=N for one "
                        f"(default {DEFAULT_ROUNDS})")
    p.add_argument("--sizes", default=DEFAULT_SIZES, help=f"file sizes (default {DEFAULT_SIZES})")
    p.add_argument("--tools", default=None,
                   help=f"tools, in round order (default {','.join(DEFAULT_TOOLS)} and the "
                        "variants); xdpget-<driver>-<variant> names a variant")
    p.add_argument("--variants", default="auto",
                   help="flag variants of xdpget (AF_XDP) to measure beside the defaults: "
                        "NAME,... or none; auto (default): "
                        f"{','.join(DEFAULT_VARIANTS)} if xdpget knows the flags and --tools "
                        "is not given")
    p.add_argument("--define-variant", action="append", default=[], metavar="NAME=FLAGS",
                   help="measure xdpget-afxdp-NAME, xdpget with FLAGS added (repeatable)")
    p.add_argument("--sinks", default=",".join(SINKS), help="file,null (default both)")
    p.add_argument("--schemes", default=",".join(SCHEMES),
                   help="http,https (default both): https adds "
                        f"{','.join(HTTPS_TOOLS)} to the default tools; a scheme left out "
                        "drops its tools from --tools too")
    p.add_argument("--loss", default="0,1", help="loss percentages to run (default 0,1)")
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results"),
                   help="directory for the raw JSON results")
    p.add_argument("--work", default="/tmp/xdpget-bench-work",
                   help="scratch directory for downloaded files")
    p.add_argument("--xdpget", required=True, help="the xdpget binary to measure")
    p.add_argument("--testbed-name", default="xgbench")
    p.add_argument("--skip", default=DEFAULT_SKIP,
                   help="combinations to leave out, SIZE/SINK/LOSS patterns (* matches any), "
                        f"comma-separated (default {DEFAULT_SKIP}; '' for none)")
    p.add_argument("--tiny", action="store_true",
                   help="1M, one round, no loss, every tool: proves the harness works")
    args = p.parse_args(argv)
    if args.tiny:
        args.rounds, args.sizes, args.loss = "1", "1M", "0"
    args.xdpget = os.path.abspath(args.xdpget)
    args.sizes = [s for s in args.sizes.split(",") if s]
    try:
        for s in args.sizes:
            size_bytes(s)
        args.rounds = parse_rounds(args.rounds, args.sizes)
    except ValueError as e:
        p.error(str(e))
    variant_tools = choose_variants(args, p)
    if args.tools is None:
        drivers = [t for t in DEFAULT_TOOLS if t.startswith("xdpget-")]
        args.tools = drivers + variant_tools + [t for t in DEFAULT_TOOLS if t not in drivers]
        args.tools += HTTPS_TOOLS
    else:
        args.tools = [t for t in args.tools.split(",") if t]
        args.tools += [t for t in variant_tools if t not in args.tools]
    args.schemes = [s for s in args.schemes.split(",") if s]
    for s in args.schemes:
        if s not in SCHEMES:
            p.error(f"unknown scheme {s!r}; known: {', '.join(SCHEMES)}")
    args.tools = [t for t in args.tools if split_scheme(t)[1] in args.schemes]
    args.sinks = [s for s in args.sinks.split(",") if s]
    args.loss = [int(x) for x in args.loss.split(",") if x]
    args.skip = [s for s in args.skip.split(",") if s]
    for t in args.tools:
        try:
            known = (split_xdpget(t, args.variants) is not None
                     or split_scheme(t)[0] in PEERS or t in SERVE_TOOLS
                     or t in PARALLEL_TOOLS)
            if split_scheme(t)[1] == "https":
                with_ca(["tool"], split_scheme(t)[0], "ca.pem")
        except ValueError as e:
            p.error(str(e))
        if not known:
            p.error(f"unknown tool {t!r}; known: xdpget-<driver>[-<variant>], "
                    f"{', '.join(PEERS + SERVE_TOOLS + PARALLEL_TOOLS)}")
    for s in args.sinks:
        if s not in SINKS:
            p.error(f"unknown sink {s!r}; known: file, null")
    return args


def skipped(args, size, sink, loss):
    return any(fnmatch.fnmatchcase(f"{size}/{sink}/{loss}", pattern) for pattern in args.skip)


def round_order(args, round_no, sink):
    """The tools of one (round, size, sink), rotated by one each round so that no tool always
    runs right after the same other one (after a 1 GiB file written, say)."""
    tools = [t for t in args.tools if runs_with_sink(t, sink, args.variants)]
    shift = (round_no - 1) % max(len(tools), 1)
    return tools[shift:] + tools[:shift]


def main(argv):
    args = parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench: must run as root (it creates network namespaces)")
    if not os.access("/usr/bin/time", os.X_OK):
        raise SystemExit("bench: /usr/bin/time is missing (apt-get install time)")
    for tool in ("wget", "curl", "aria2c"):
        if any(t.startswith(tool) for t in args.tools) and not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (run scripts/setup.sh)")
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    state_dir = os.path.join(args.work, "testbed")
    testbed = Testbed(args.testbed_name, state_dir, args.sizes)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_path = os.path.join(args.out, f"{'tiny-' if args.tiny else ''}{stamp}.json")
    used_variants = {t.split("-", 2)[2] for t in args.tools
                     if t.startswith("xdpget-") and t.count("-") >= 2}
    doc = {
        "machine": machine_info(args.xdpget),
        "config": {
            "rounds": args.rounds, "sizes": args.sizes, "tools": args.tools,
            "schemes": args.schemes,
            "sinks": args.sinks, "loss_percent": args.loss, "skip": args.skip,
            "tiny": args.tiny, "rss_anon_sample_interval_s": SAMPLE_INTERVAL_S,
            "server_congestion_control": server_congestion_control(),
            "variants": {name: {"flags": v.flags, "about": v.about, "file_only": v.file_only}
                         for name, v in args.variants.items() if name in used_variants},
        },
        "runs": [],
    }

    def save():
        tmp = out_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, out_path)

    # SIGTERM becomes an exception, so the finally below takes the testbed down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    failures = 0
    server = None
    try:
        for loss in args.loss:
            testbed.up(loss)
            sums = testbed.checksums()
            warm_up(testbed, args.sizes)
            if any(t in SERVE_TOOLS for t in args.tools):
                server = ServeServer(args.xdpget, testbed, args.work)
            for round_no in range(1, max(args.rounds.values()) + 1):
                for size in (s for s in args.sizes if round_no <= args.rounds[s]):
                    for sink in args.sinks:
                        if skipped(args, size, sink, loss):
                            continue
                        for position, tool in enumerate(round_order(args, round_no, sink)):
                            base = {"loss_percent": loss, "round": round_no,
                                    "position": position}
                            rec = one_run(args, testbed, sums, base, tool, size, sink, args.work)
                            doc["runs"].append(rec)
                            save()
                            failures += not rec["ok"]
                            log(f"loss {loss}% round {round_no} {size:>4} {sink:<4} {tool:<18}"
                                f" {rec['wall_s']:7.3f} s {rec['throughput_mib_s']:8.1f} MiB/s"
                                + ("" if rec["ok"] else f"  FAILED: {rec['error']}"))
            if server is not None:
                server.stop()
                server = None
    finally:
        if server is not None:
            server.stop()
        # The data files stay in WORK/testbed/www for the next run (1 GiB takes ~10 s to make).
        testbed.down()
        save()
    log(f"{len(doc['runs'])} runs, {failures} failed, {time.monotonic() - started:.0f} s;"
        f" results in {out_path}")
    print(out_path)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
