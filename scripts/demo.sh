#!/usr/bin/env bash
# The main job: download a 1 GiB file with xdpget (AF_XDP, our own TCP) and with wget (the
# kernel's TCP) from nginx in a testbed of network namespaces (docs/testbed.md), print both
# times and whether both files are byte-exact (sha256 against the server's SHA256SUMS).
#
#   sudo bash scripts/demo.sh
#
# Environment (optional): XG_DEMO_SIZE (default 1G; a testbed.sh size such as 64M),
# XG_DEMO_DRIVER (auto, afxdp or raw; default auto). Everything it creates (namespaces,
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
echo "== cargo build --release"
cargo build --release --quiet
TARGET_DIR=${CARGO_TARGET_DIR:-target}
[[ "$TARGET_DIR" = /* ]] || TARGET_DIR=$(pwd)/$TARGET_DIR
XDPGET=$TARGET_DIR/release/xdpget

WORK=$(mktemp -d /tmp/xdpget-demo.XXXXXX)
cleanup() {
  bash scripts/testbed.sh down --purge >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== testbed $XG_TESTBED_NAME (nginx serving $SIZE.bin)"
bash scripts/testbed.sh up
EXPECTED=$(awk -v f="$SIZE.bin" '$2 == f {print $1}' "$XG_TESTBED_DIR/www/SHA256SUMS")

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
verdict() {
  local sum
  sum=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$sum" = "$EXPECTED" ]; then echo "sha256 matches"; else echo "sha256 MISMATCH ($sum)"; fi
}

echo "== xdpget --driver $DRIVER $URL"
mkdir -p "$WORK/xdpget" "$WORK/wget"
t0=$(now)
(cd "$WORK/xdpget" && ip netns exec "$CLIENT_NS" "$XDPGET" --iface xg-c0 --driver "$DRIVER" \
  --progress none "$URL")
t1=$(now)
XDPGET_TIME=$(elapsed "$t0" "$t1")
XDPGET_SUM=$(verdict "$WORK/xdpget/$SIZE.bin")
rm -f "$WORK/xdpget/$SIZE.bin"

echo "== wget $URL"
t0=$(now)
(cd "$WORK/wget" && ip netns exec "$CLIENT_NS" wget -nv "$URL")
t1=$(now)
# xdpget makes its file durable before it exits (msync, fsync); wget does not. The second
# figure adds the flush, for a like-for-like comparison.
sync -f "$WORK/wget/$SIZE.bin"
t2=$(now)
WGET_TIME=$(elapsed "$t0" "$t1")
WGET_SYNC_TIME=$(elapsed "$t0" "$t2")
WGET_SUM=$(verdict "$WORK/wget/$SIZE.bin")

mib=$(( $(stat -c %s "$WORK/wget/$SIZE.bin") / 1048576 ))
rate() { awk -v m="$mib" -v s="$1" 'BEGIN {printf "%.0f MiB/s", m / s}'; }
echo
echo "== $SIZE.bin ($mib MiB) over the testbed (veth pairs and a bridge), nginx in the server namespace"
printf '  xdpget  %7s s  %12s  %s\n' "$XDPGET_TIME" "$(rate "$XDPGET_TIME")" "$XDPGET_SUM"
printf '  wget    %7s s  %12s  %s\n' "$WGET_TIME" "$(rate "$WGET_TIME")" "$WGET_SUM"
printf '  wget+sync %5s s  %12s  (wget, then its file flushed to disk as xdpget does)\n' \
  "$WGET_SYNC_TIME" "$(rate "$WGET_SYNC_TIME")"
[[ "$XDPGET_SUM" == "sha256 matches" && "$WGET_SUM" == "sha256 matches" ]]
