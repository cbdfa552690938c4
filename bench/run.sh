#!/usr/bin/env bash
# xdpget's benchmark: xdpget with default flags (AF_XDP and raw drivers) against wget, curl
# and aria2c over a testbed of its own. Builds xdpget (release), runs bench/bench.py, then
# bench/report.py.
#
#   bench/run.sh                 # full run (~10 min): 1M x 15 rounds, 64M and 1G x 5, file and
#                                #   /dev/null, 0 and 1 % loss (not 1G at 1 %)
#                                #   -> bench/results/<stamp>.json, docs/benchmarks.md + plots
#   bench/run.sh --tiny --no-doc # 1M, one round, no loss, every tool: the harness's own test
#
# Options of its own (the rest go to bench/bench.py; see bench/bench.py --help):
#   --xdpget PATH   measure this binary instead of building one
#   --no-doc        do not regenerate docs/benchmarks.md (the report is still rendered,
#                   into the output dir, so that it is exercised)
#   --doc PATH      write the report there instead of docs/benchmarks.md
#
# --tiny writes its results into a temporary dir (removed afterwards) unless --out is given,
# and uses a testbed and scratch dir of its own (xgbtiny, /tmp/xdpget-bench-tiny-work), so
# that it can run beside a full benchmark.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in bench/
# Debian's interpreter, the one python3-matplotlib (scripts/setup.sh) installs for; another
# python3 first on PATH (pyenv, a venv) would not see it.
PYTHON=python3
[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

[ "$(id -u)" -eq 0 ] || { echo "bench: must run as root (it creates network namespaces)" >&2; exit 1; }

xdpget=""
work=""
write_doc=1
doc=""
tiny=0
has_out=0
pass=()
while [ $# -gt 0 ]; do
  case $1 in
    --xdpget) xdpget=$2; shift 2 ;;
    --no-doc) write_doc=0; shift ;;
    --doc) doc=$2; shift 2 ;;
    --tiny) tiny=1; pass+=("$1"); shift ;;
    --out) has_out=1; pass+=("$1" "$2"); shift 2 ;;
    --work) work=$2; pass+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; "$PYTHON" "$HERE/bench.py" --help; exit 0 ;;
    *) pass+=("$1"); shift ;;
  esac
done

if [ "$tiny" = 1 ]; then
  [[ " ${pass[*]} " == *" --testbed-name "* ]] || pass+=(--testbed-name xgbtiny)
  [ -n "$work" ] || { work=/tmp/xdpget-bench-tiny-work; pass+=(--work "$work"); }
fi
work=${work:-/tmp/xdpget-bench-work}
mkdir -p "$work"
tmp_out=""
if [ "$tiny" = 1 ] && [ "$has_out" = 0 ]; then
  tmp_out=$(mktemp -d /tmp/xdpget-bench-tiny.XXXXXX)
  trap 'rm -rf "$tmp_out"' EXIT
  pass+=(--out "$tmp_out")
fi

if [ -z "$xdpget" ]; then
  echo "bench: building xdpget (release)" >&2
  (cd "$REPO" && cargo build --release --quiet --bin xdpget)
  xdpget="${CARGO_TARGET_DIR:-$REPO/target}/release/xdpget"
fi
[ -x "$xdpget" ] || { echo "bench: $xdpget is not an executable" >&2; exit 1; }
# Packets go only to our own testbeds: no tool may use a proxy of the machine's environment
# (set after the build and package steps, which may need one).
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
# A private copy: another build into the same target dir must not swap it mid-run.
cp "$xdpget" "$work/xdpget"

rc=0
results=$("$PYTHON" "$HERE/bench.py" --xdpget "$work/xdpget" "${pass[@]}") || rc=$?
[ -n "$results" ] && [ -f "$results" ] || { echo "bench: no results written" >&2; exit 1; }

if [ "$write_doc" = 1 ]; then
  "$PYTHON" "$HERE/report.py" "$results" ${doc:+--doc "$doc"}
else
  dir=$(dirname "$results")
  "$PYTHON" "$HERE/report.py" "$results" --doc "$dir/benchmarks.md" --plot-dir "$dir/plots" >/dev/null
  echo "bench: report rendered to $dir/benchmarks.md" >&2
fi
exit "$rc"
