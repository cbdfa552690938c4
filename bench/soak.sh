#!/usr/bin/env bash
# Soak test, run by hand (not in CI): many downloads in a row on a bridged testbed with
# loss, alternating the AF_XDP and raw drivers, checking after each one that the file is
# byte-exact and that nothing accumulates: the process's open descriptors and RSS (sampled
# while it runs), the kernel's AF_XDP sockets in the client namespace (`ss --xdp`),
# nftables tables of xdpget and reserved ports (after it exits).
#
#   sudo bench/soak.sh                       # 200 downloads of 64 MiB at 1 % loss
#   sudo bench/soak.sh --count 6             # a short run, to check the script itself
#   sudo bench/soak.sh --xdpget target/release/xdpget --size 64M --loss 1
#
# Uses a testbed of its own (XG_TESTBED_NAME=xgsoak, state under /tmp/xdpget-soak), taken
# down at the end, also on failure or Ctrl-C. Prints one line per download and a summary;
# exits 1 at the first download that is not byte-exact or leaves anything behind, or when
# descriptors or RSS at the end differ from the first download's by more than the slack.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

count=200
size=64M
loss=1
xdpget=""
while [ $# -gt 0 ]; do
  case $1 in
    --count) count=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --loss) loss=$2; shift 2 ;;
    --xdpget) xdpget=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "soak: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "soak: must run as root (it creates network namespaces)" >&2; exit 1; }
[[ "$count" =~ ^[0-9]+$ ]] && [ "$count" -ge 1 ] || { echo "soak: --count must be >= 1" >&2; exit 2; }

if [ -z "$xdpget" ]; then
  echo "soak: building xdpget (release)" >&2
  (cd "$REPO" && cargo build --release --quiet)
  xdpget=${CARGO_TARGET_DIR:-$REPO/target}/release/xdpget
fi
work=/tmp/xdpget-soak
export XG_TESTBED_NAME=xgsoak XG_TESTBED_DIR=$work/testbed XG_TESTBED_SIZES=$size
mkdir -p "$work/out"
# A copy, so that a build meanwhile cannot swap the binary mid-soak.
cp "$xdpget" "$work/xdpget"
cleanup() {
  bash "$REPO/scripts/testbed.sh" down --purge >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# Packets go only to our own testbeds: no tool may use a proxy of the machine's environment
# (set after the build and package steps, which may need one).
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
bash "$REPO/scripts/testbed.sh" up --loss "$loss" >/dev/null

ns=$XG_TESTBED_NAME-client
file=$size.bin
url=http://10.77.0.2/$file
expected=$(cd "$work/testbed/www" && sha256sum "$file" | cut -d' ' -f1)
ports_before=$(ip netns exec "$ns" cat /proc/sys/net/ipv4/ip_local_reserved_ports)
# AF_XDP sockets in the client namespace: by the kernel's socket diagnostics (xsk_diag;
# `ss --xdp` prints a header line, then one line per socket), else, on a kernel without
# xsk_diag, by the namespace's in-use count of the XDP protocol in /proc/net/protocols.
xdp_sockets() {
  local n
  n=$({ ip netns exec "$ns" ss -a -n --xdp 2>/dev/null || true; } | tail -n +2 | wc -l)
  if [ "$n" -eq 0 ]; then
    n=$(ip netns exec "$ns" awk '$1 == "XDP" {print $3}' /proc/net/protocols 2>/dev/null || true)
  fi
  echo "${n:-0}"
}
# After an AF_XDP run the teardown child may hold the sockets a few tens of ms past the
# process's exit: wait for the count to come back, at most 2 s.
xdp_settled() {
  local n deadline=$((SECONDS + 2))
  n=$(xdp_sockets)
  while [ "$n" -ne "$xdp_before" ] && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.05; n=$(xdp_sockets)
  done
  echo "$n"
}
xdp_before=$(xdp_sockets)

declare -a last_fds last_rss
max_fd_slack=2            # descriptors
max_rss_slack_kib=8192    # 8 MiB
started=$(date +%s)
for i in $(seq 1 "$count"); do
  if [ $((i % 2)) -eq 1 ]; then driver=afxdp; else driver=raw; fi
  out=$work/out/$file
  rm -f "$out" "$out".part "$out".part.xdpget
  ip netns exec "$ns" "$work/xdpget" --iface xg-c0 --driver "$driver" --progress none \
    --timeout 60 -O "$out" "$url" 2>"$work/run.log" &
  pid=$!
  # Sample the running process: the most descriptors and the largest RSS seen.
  fds=0; rss=0; xdp_during=0
  while kill -0 "$pid" 2>/dev/null; do
    n=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l || true)
    [ "$n" -gt "$fds" ] && fds=$n
    r=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$r" ] && [ "$r" -gt "$rss" ] && rss=$r
    x=$(xdp_sockets)
    [ "$x" -gt "$xdp_during" ] && xdp_during=$x
    sleep 0.05
  done
  status=0; wait "$pid" || status=$?
  actual=$(sha256sum "$out" 2>/dev/null | cut -d' ' -f1 || true)
  tables=$(ip netns exec "$ns" nft list tables inet 2>/dev/null | grep -c ' xdpget_' || true)
  ports=$(ip netns exec "$ns" cat /proc/sys/net/ipv4/ip_local_reserved_ports)
  xdp_after=$(xdp_settled)
  printf 'soak: %3d/%d %-5s exit %d, %s, max %d fds, max RSS %d KiB, %d AF_XDP sockets during, %d after, %d nft tables, ports "%s"\n' \
    "$i" "$count" "$driver" "$status" "$([ "$actual" = "$expected" ] && echo byte-exact || echo WRONG)" \
    "$fds" "$rss" "$xdp_during" "$xdp_after" "$tables" "$ports"
  fail=""
  [ "$status" -eq 0 ] || fail="exit status $status: $(tail -n 3 "$work/run.log")"
  [ "$actual" = "$expected" ] || fail="$fail; sha256 $actual, wanted $expected"
  [ "$tables" -eq 0 ] || fail="$fail; $tables nft tables of xdpget left"
  [ "$ports" = "$ports_before" ] || fail="$fail; reserved ports '$ports', were '$ports_before'"
  [ "$xdp_after" -eq "$xdp_before" ] || fail="$fail; $xdp_after AF_XDP sockets left, $xdp_before before"
  if [ -n "$fail" ]; then echo "soak: download $i ($driver) failed: ${fail#; }" >&2; exit 1; fi
  if [ "$driver" = afxdp ] && [ "$xdp_during" -eq 0 ] && [ -z "${xdp_warned:-}" ]; then
    echo "soak: no AF_XDP socket seen during an AF_XDP download (neither ss --xdp nor /proc/net/protocols): the socket count is not checked" >&2
    xdp_warned=1
  fi
  last_fds[$i]=$fds; last_rss[$i]=$rss
done

# The last download of each driver against the first of the same driver.
verdict=0
for driver_index in 1 2; do
  [ "$count" -ge "$driver_index" ] || continue
  last=$count; [ $(( (last - driver_index) % 2 )) -eq 0 ] || last=$((last - 1))
  d_fds=$(( last_fds[last] - last_fds[driver_index] ))
  d_rss=$(( last_rss[last] - last_rss[driver_index] ))
  name=$([ "$driver_index" -eq 1 ] && echo afxdp || echo raw)
  echo "soak: $name: download $driver_index -> $last: max fds ${last_fds[driver_index]} -> ${last_fds[last]}, max RSS ${last_rss[driver_index]} -> ${last_rss[last]} KiB"
  if [ "${d_fds#-}" -gt "$max_fd_slack" ] || [ "${d_rss#-}" -gt "$max_rss_slack_kib" ]; then
    echo "soak: $name: descriptors or RSS drifted beyond the slack ($max_fd_slack fds, $max_rss_slack_kib KiB)" >&2
    verdict=1
  fi
done
echo "soak: $count downloads of $size at $loss % loss in $(( $(date +%s) - started )) s, all byte-exact, nothing left behind"
exit "$verdict"
