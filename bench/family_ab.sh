#!/usr/bin/env bash
# IPv4 against IPv6 side by side (issue 12): 1 GiB downloads on a testbed of its own
# (XG_TESTBED_NAME=xgfam), the cases interleaved and their order rotated by one each round.
# Per run one line in OUT/runs.txt: tool, family, sink, round, wall seconds, exit status, the
# tool's user,sys seconds (GNU time), the server nginx worker's CPU ticks; xdpget's
# --stats-json in OUT/, the server's nstat counters in OUT/*.nstat.
#
#   sudo flock /tmp/xdpget-net.lock bench/family_ab.sh XDPGET [ROUNDS] [OUT] [CASES]
#
# CASES: "TOOL FAMILY SINK|..." with TOOL xdpget (XDPGET), other (the binary in $XDPGET_B,
# for an A/B of two builds) or curl, FAMILY 4 or 6, SINK file or null. Default: xdpget and
# curl, both families, to a file, and xdpget to /dev/null. bench/notes.md has what it showed.
# A TOOL prefixed mNNNN (m1480xdpget) runs with the server's route to the client limited to
# MTU NNNN for that run, so that the server sends smaller segments (IPv4 at 1480 sends the
# 1428-byte payloads of IPv6 at 1500: the session-6 experiment of bench/notes.md). The
# server's TCP metrics are flushed before every run, so no run inherits another's.
set -uo pipefail
BIN=$1
ROUNDS=${2:-3}
OUT=${3:-/tmp/xdpget-family-ab}
CASES=${4:-"xdpget 4 file|xdpget 6 file|curl 4 file|curl 6 file|xdpget 4 null|xdpget 6 null"}
BIN_B=${XDPGET_B:-$BIN}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTBED=$HERE/../scripts/testbed.sh
export XG_TESTBED_NAME=xgfam XG_TESTBED_DIR=${XG_TESTBED_DIR:-/tmp/xdpget-testbed-xgfam}
export XG_TESTBED_SIZES=1G
FILE=$OUT/download.bin
mkdir -p "$OUT"
down() { bash "$TESTBED" down >/dev/null 2>&1; rm -f "$FILE"; }
trap down EXIT
trap 'exit 1' INT TERM
# Descriptors above 2 closed for the daemons the testbed starts: under `flock LOCK this`,
# nginx would otherwise inherit the lock and hold it for as long as it runs.
bash "$TESTBED" up 2>"$OUT/up.log" >/dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- \
  || { cat "$OUT/up.log" >&2; exit 1; }
C="ip netns exec $XG_TESTBED_NAME-client"
S="ip netns exec $XG_TESTBED_NAME-server"
V4=http://10.77.0.2/1G.bin
V6=http://[fd00:77::2]/1G.bin
$C curl -sS -o /dev/null $V4 # nginx serves from the page cache from now on
nginx_pid() {
  local p
  for p in $(pgrep -f "nginx: worker process"); do
    [ "$(ip netns identify "$p")" = "$XG_TESTBED_NAME-server" ] && { echo "$p"; return; }
  done
}
NGINX=$(nginx_pid)
ticks() { awk '{print $14 + $15}' "/proc/$NGINX/stat"; }
# The server's route to the client's subnet of family $1, replaced with the options in $2
# ("mtu 1480", or "" for none).
ROUTE4=$($S ip -4 route show dev xg-s0 | grep -v mtu | head -1)
ROUTE6=$($S ip -6 route show dev xg-s0 | grep -v -e mtu -e fe80 | head -1)
route_mtu() {
  local route=$ROUTE4
  [ "$1" = 6 ] && route=$ROUTE6
  # shellcheck disable=SC2086 # the route and options are words
  $S ip -"$1" route replace $route dev xg-s0 $2
}
IFS='|' read -ra LIST <<< "$CASES"
for r in $(seq 1 "$ROUNDS"); do
  for i in $(seq 0 $((${#LIST[@]} - 1))); do
    read -r tool fam sink <<< "${LIST[$(( (i + r) % ${#LIST[@]} ))]}"
    url=$V4 dst=/dev/null
    [ "$fam" = 6 ] && url=$V6
    [ "$sink" = file ] && dst=$FILE
    rm -f "$FILE"
    sync
    name=$tool-$fam-$sink-$r
    $S ip tcp_metrics flush all 2>/dev/null
    mtu=0 base=$tool
    if [[ $tool =~ ^m([0-9]+)(.+)$ ]]; then mtu=${BASH_REMATCH[1]} base=${BASH_REMATCH[2]}; fi
    [ "$mtu" != 0 ] && route_mtu "$fam" "mtu $mtu"
    $S nstat -n >/dev/null
    n0=$(ticks)
    t0=$(date +%s.%N)
    case $base in
      xdpget | other)
        bin=$BIN
        [ "$base" = other ] && bin=$BIN_B
        $C timeout 60 /usr/bin/time -f "%U,%S" -o "$OUT/time.txt" "$bin" --iface xg-c0 \
          --driver afxdp -q --stats-json "$OUT/$name.json" -O "$dst" "$url"
        ;;
      curl) $C timeout 60 /usr/bin/time -f "%U,%S" -o "$OUT/time.txt" curl -q -sS -f -o "$dst" "$url" ;;
      *) echo "unknown tool $tool" >&2; exit 2 ;;
    esac
    rc=$?
    t1=$(date +%s.%N)
    [ "$mtu" != 0 ] && route_mtu "$fam" ""
    $S nstat >"$OUT/$name.nstat"
    echo "$tool $fam $sink $r $(echo "$t1 - $t0" | bc) rc=$rc user,sys=$(cat "$OUT/time.txt") nginx_ticks=$(($(ticks) - n0))" \
      | tee -a "$OUT/runs.txt"
  done
done
