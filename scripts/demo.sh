#!/usr/bin/env bash
# The main job: download a 1 GiB file with xdpget (AF_XDP, our own TCP, default flags), wget
# and curl (the kernel's TCP) from nginx in a testbed of network namespaces
# (docs/testbed.md), and print the three times side by side with whether each file is
# byte-exact (sha256 against the server's SHA256SUMS).
#
#   sudo bash scripts/demo.sh
#
# One run each, in the same testbed against the same server, after one untimed download that
# puts the file in the server's page cache. bench/run.sh measures properly (many rounds,
# interleaved, medians); see docs/benchmarks.md.
#
# Environment (optional): XG_DEMO_SIZE (default 1G; a testbed.sh size such as 64M),
# XG_DEMO_DRIVER (auto, afxdp or raw; default auto), XG_DEMO_XDPGET (a built xdpget to use
# instead of building one with cargo build --release). Everything it creates (namespaces,
# servers, data and downloaded files) is removed at exit, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${XG_DEMO_SIZE:-1G}
DRIVER=${XG_DEMO_DRIVER:-auto}
export XG_TESTBED_NAME=xgdemo
export XG_TESTBED_DIR=/tmp/xdpget-testbed-xgdemo
export XG_TESTBED_SIZES=$SIZE
export XG_TESTBED_LOSS=0
CLIENT_NS=$XG_TESTBED_NAME-client
URL=http://10.77.0.2/$SIZE.bin

[ "$(id -u)" -eq 0 ] || { echo "demo: must run as root (namespaces, XDP)" >&2; exit 1; }

bash scripts/setup.sh
if [ -n "${XG_DEMO_XDPGET:-}" ]; then
  XDPGET=$(realpath "$XG_DEMO_XDPGET")
else
  echo "== cargo build --release"
  cargo build --release --quiet
  TARGET_DIR=${CARGO_TARGET_DIR:-target}
  [[ "$TARGET_DIR" = /* ]] || TARGET_DIR=$(pwd)/$TARGET_DIR
  XDPGET=$TARGET_DIR/release/xdpget
fi

WORK=$(mktemp -d /tmp/xdpget-demo.XXXXXX)
cleanup() {
  bash scripts/testbed.sh down --purge >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== testbed $XG_TESTBED_NAME (nginx serving $SIZE.bin)"
# Packets go only to our own testbeds: no tool may use a proxy of the machine's environment
# (set after the build and package steps, which may need one).
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
bash scripts/testbed.sh up
EXPECTED=$(awk -v f="$SIZE.bin" '$2 == f {print $1}' "$XG_TESTBED_DIR/www/SHA256SUMS")

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
verdict() {
  local sum
  [ -f "$1" ] || { echo "no file"; return; }
  sum=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$sum" = "$EXPECTED" ]; then echo "sha256 matches"; else echo "sha256 MISMATCH ($sum)"; fi
}

# Untimed: nginx reads the file from disk once, so the first tool timed does not pay for it.
ip netns exec "$CLIENT_NS" curl -q -sS -o /dev/null "$URL"

# measure NAME COMMAND...: runs COMMAND in the client namespace inside $WORK/NAME, records
# its wall time and the sha256 verdict of the file it wrote in TIME[NAME] and SUM[NAME], then
# deletes the file (deleting it also drops its dirty pages, so the next tool does not wait
# for their writeback).
declare -A TIME SUM
measure() {
  local name=$1 t0 t1 rc=0
  shift
  echo "== $name"
  mkdir -p "$WORK/$name"
  t0=$(now)
  (cd "$WORK/$name" && ip netns exec "$CLIENT_NS" "$@") || rc=$?
  t1=$(now)
  TIME[$name]=$(elapsed "$t0" "$t1")
  if [ "$rc" -ne 0 ]; then SUM[$name]="FAILED (exit status $rc)"; else SUM[$name]=$(verdict "$WORK/$name/$SIZE.bin"); fi
  rm -f "$WORK/$name/$SIZE.bin"
}

measure xdpget "$XDPGET" --iface xg-c0 --driver "$DRIVER" --progress none "$URL"
measure wget wget --no-config -nv "$URL"
measure curl curl -q -sS -f -O "$URL"

mib=$(( $(stat -c %s "$XG_TESTBED_DIR/www/$SIZE.bin") / 1048576 ))
rate() { awk -v m="$mib" -v s="$1" 'BEGIN {printf "%.0f MiB/s", m / s}'; }
times() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", b / a}'; }
echo
echo "== $SIZE.bin ($mib MiB) over the testbed (veth pairs and a bridge), nginx in the server namespace"
for name in xdpget wget curl; do
  printf '  %-7s %7s s  %12s  %s\n' "$name" "${TIME[$name]}" "$(rate "${TIME[$name]}")" "${SUM[$name]}"
done
echo "  xdpget's speed: $(times "${TIME[xdpget]}" "${TIME[wget]}") wget's, $(times "${TIME[xdpget]}" "${TIME[curl]}") curl's (one run each; bench/run.sh for medians)"
for name in xdpget wget curl; do [ "${SUM[$name]}" = "sha256 matches" ] || exit 1; done
