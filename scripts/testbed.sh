#!/usr/bin/env bash
# xdpget's testbed: a client and a server namespace on one Ethernet segment (a bridge in a
# third, "link", namespace), nginx and a small HTTP helper in the server namespace; loss is
# injected on the bridge. See docs/testbed.md.
#
# nginx also serves HTTPS, with certificates this script makes at "up" time in
# $DIR/tls (never committed): a test CA (ca.pem, what the client passes to
# --ca-certificate) and, on these ports of the server,
#   443  a good certificate for 10.77.0.2, TLS 1.2 and 1.3
#   8443 the same certificate, TLS 1.2 only        8444 the same, TLS 1.3 only
#   8445 an expired certificate                    8446 a certificate for another name
#   8447 a certificate from a CA the client does not know (other-ca.pem)
# Each HTTPS port logs its TLS errors, the alerts clients send included, at "info" level to
# $DIR/nginx/logs/tls-PORT.log.
#
#   scripts/testbed.sh up       # create (idempotent: what already runs is left alone)
#   scripts/testbed.sh up --loss 1   # ... with 1 % of the server's packets dropped
#   scripts/testbed.sh down     # stop everything it started, delete the namespaces
#   scripts/testbed.sh down --purge   # ... and delete the state dir with the data files
#   scripts/testbed.sh status   # what exists and what runs
#
# Environment (all optional):
#   XG_TESTBED_NAME   prefix of the namespace names            (default: xg)
#                     -> namespaces "$NAME-client", "$NAME-link" and "$NAME-server"
#   XG_TESTBED_DIR    state dir: configs, pids, logs, data     (default: /tmp/xdpget-testbed
#                     for the default name, /tmp/xdpget-testbed-$NAME otherwise)
#   XG_TESTBED_SIZES  data files to serve, sizes with K/M/G suffix (default: "1M 64M 1G")
#   XG_TESTBED_LOSS   percent of the server's packets the link drops, 0-100 (default: 0)
#   XG_TESTBED_SEED   seed of the data files' content           (default: xdpget)
#   XG_TESTBED_QUEUES rx and tx queues of every veth end, 1-64 (default: 1); with more
#                     than one, flows spread over the client's rx queues (RSS-like)
#   XG_TESTBED_CC     the server's TCP congestion control (default: what the namespace
#                     inherits, BBR on the development machine); "reno" is the loss-based
#                     sender a namespace may always set (CUBIC's stand-in here)
set -euo pipefail

NAME=${XG_TESTBED_NAME:-xg}
if [ "$NAME" = xg ]; then DEFAULT_DIR=/tmp/xdpget-testbed; else DEFAULT_DIR=/tmp/xdpget-testbed-$NAME; fi
DIR=${XG_TESTBED_DIR:-$DEFAULT_DIR}
SIZES=${XG_TESTBED_SIZES:-1M 64M 1G}
LOSS=${XG_TESTBED_LOSS:-0}
SEED=${XG_TESTBED_SEED:-xdpget}
QUEUES=${XG_TESTBED_QUEUES:-1}
CC=${XG_TESTBED_CC:-}

NS_CLIENT=$NAME-client
NS_SERVER=$NAME-server
NS_LINK=$NAME-link
# Interface names are per namespace, so every testbed can use the same ones.
DEV_CLIENT=xg-c0
DEV_SERVER=xg-s0
DEV_LINK_CLIENT=xg-lc
DEV_LINK_SERVER=xg-ls
DEV_BRIDGE=xg-br
ADDR_CLIENT=10.77.0.1
ADDR_SERVER=10.77.0.2
# IPv6 unique local addresses (RFC 4193), only inside the testbed's namespaces.
ADDR6_CLIENT=fd00:77::1
ADDR6_SERVER=fd00:77::2
PREFIX6_LEN=64
# A second address of the server: "another host" for redirects (credentials must not follow).
ADDR_SERVER_OTHER=10.77.0.3
PREFIX_LEN=24
HTTP_PORT=80
HTTPS_PORT=443
HELPER_PORT=8080
LOSS_TABLE=xg_testbed_loss

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "testbed[$NAME]: $*" >&2; }
die() { log "error: $*"; exit 1; }

in_server() { ip netns exec "$NS_SERVER" "$@"; }
in_client() { ip netns exec "$NS_CLIENT" "$@"; }
in_link() { ip netns exec "$NS_LINK" "$@"; }
ns_exists() { [ -e "/run/netns/$1" ]; }

# True when the pid in file $1 names a live process.
pid_alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

require() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it creates network namespaces)"
  local tool
  for tool in ip ethtool nginx nft python3 openssl sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (run scripts/setup.sh)"
  done
  [[ "$LOSS" =~ ^[0-9]+$ ]] && [ "$LOSS" -le 100 ] || die "XG_TESTBED_LOSS must be 0..100, not '$LOSS'"
  [[ "$QUEUES" =~ ^[0-9]+$ ]] && [ "$QUEUES" -ge 1 ] && [ "$QUEUES" -le 64 ] \
    || die "XG_TESTBED_QUEUES must be 1..64, not '$QUEUES'"
}

# "64M" -> 67108864
size_bytes() {
  local s=$1 n unit
  [[ "$s" =~ ^([0-9]+)([KMG]?)$ ]] || die "bad size '$s' (want e.g. 1M, 64M, 1G)"
  n=${BASH_REMATCH[1]}; unit=${BASH_REMATCH[2]}
  case $unit in
    K) echo $((n * 1024)) ;;
    M) echo $((n * 1024 * 1024)) ;;
    G) echo $((n * 1024 * 1024 * 1024)) ;;
    *) echo "$n" ;;
  esac
}

# ---------------------------------------------------------------------------------- up

net_up() {
  local ns dev
  # Several queues on both ends of both pairs: the server's sockets pick a tx queue each
  # (a hash per socket), the bridge keeps it, and the client receives on that rx queue.
  local queue_args=()
  [ "$QUEUES" -gt 1 ] && queue_args=(numtxqueues "$QUEUES" numrxqueues "$QUEUES")
  for ns in "$NS_CLIENT" "$NS_SERVER" "$NS_LINK"; do ns_exists "$ns" || ip netns add "$ns"; done
  # Every veth end is created directly inside its namespace: nothing in the root one.
  if ! in_client ip link show "$DEV_CLIENT" >/dev/null 2>&1; then
    ip link add "$DEV_CLIENT" netns "$NS_CLIENT" "${queue_args[@]}" type veth \
      peer name "$DEV_LINK_CLIENT" netns "$NS_LINK" "${queue_args[@]}"
  fi
  if ! in_server ip link show "$DEV_SERVER" >/dev/null 2>&1; then
    ip link add "$DEV_SERVER" netns "$NS_SERVER" "${queue_args[@]}" type veth \
      peer name "$DEV_LINK_SERVER" netns "$NS_LINK" "${queue_args[@]}"
  fi
  if ! in_link ip link show "$DEV_BRIDGE" >/dev/null 2>&1; then
    in_link ip link add "$DEV_BRIDGE" type bridge
  fi
  in_link ip link set "$DEV_LINK_CLIENT" master "$DEV_BRIDGE"
  in_link ip link set "$DEV_LINK_SERVER" master "$DEV_BRIDGE"
  for dev in "$DEV_LINK_CLIENT" "$DEV_LINK_SERVER" "$DEV_BRIDGE" lo; do in_link ip link set "$dev" up; done
  in_client ip link set lo up
  in_server ip link set lo up
  in_client ip addr replace "$ADDR_CLIENT/$PREFIX_LEN" dev "$DEV_CLIENT"
  in_server ip addr replace "$ADDR_SERVER/$PREFIX_LEN" dev "$DEV_SERVER"
  # nodad: usable at once, instead of "tentative" for a second of duplicate detection.
  in_client ip -6 addr replace "$ADDR6_CLIENT/$PREFIX6_LEN" dev "$DEV_CLIENT" nodad
  in_server ip -6 addr replace "$ADDR6_SERVER/$PREFIX6_LEN" dev "$DEV_SERVER" nodad
  in_client ip link set "$DEV_CLIENT" up
  in_server ip link set "$DEV_SERVER" up
  # Without this the server's segments cross the veth with partial checksums (and, with
  # TSO, as 64 KB super-segments) that a raw or AF_XDP receiver would take as corrupt.
  in_server ethtool -K "$DEV_SERVER" tx off >/dev/null
  if [ -n "$CC" ]; then
    in_server sysctl -qw net.ipv4.tcp_congestion_control="$CC" \
      || die "the server namespace refuses congestion control '$CC'"
  fi
}

# Loss is injected on the bridge, a hop the server's TCP knows nothing about. (A rule in
# the server's own output hook does not work: TCP learns that the local send failed and
# simply sends the segment again, so the client never sees a gap.)
loss_up() {
  if [ "$LOSS" -gt 0 ]; then
    # Replaces the table atomically, so changing XG_TESTBED_LOSS and re-running up works.
    in_link nft -f - <<EOF
table bridge $LOSS_TABLE
delete table bridge $LOSS_TABLE
table bridge $LOSS_TABLE {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "$DEV_LINK_SERVER" numgen random mod 100 < $LOSS counter drop
  }
}
EOF
  else
    in_link nft delete table bridge "$LOSS_TABLE" 2>/dev/null || true
  fi
}

# Deterministic, incompressible content: AES-128-CTR keystream keyed from the seed.
data_up() {
  local www=$DIR/www size bytes file key
  mkdir -p "$www"
  key=$(printf '%s' "$SEED" | sha256sum | cut -c1-32)
  for size in $SIZES; do
    bytes=$(size_bytes "$size")
    file=$www/$size.bin
    if [ -f "$file" ] && [ "$(stat -c %s "$file")" = "$bytes" ] && [ -f "$file.seed" ] \
       && [ "$(cat "$file.seed")" = "$SEED" ]; then
      continue
    fi
    log "generating $size.bin ($bytes bytes)"
    # openssl dies of SIGPIPE when head has enough; the size check below is the real test.
    { openssl enc -aes-128-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000 \
        </dev/zero 2>/dev/null || true; } | head -c "$bytes" >"$file.tmp"
    [ "$(stat -c %s "$file.tmp")" = "$bytes" ] || die "could not generate $file"
    mv "$file.tmp" "$file"
    printf '%s' "$SEED" >"$file.seed"
  done
  (cd "$www" && sha256sum -- *.bin >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
}

# make_ca DIR NAME: NAME.key + NAME.pem, a self-signed CA.
make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=xdpget testbed $2" -keyout "$1/$2.key" -out "$1/$2.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null
}

# issue DIR NAME CA SAN START END: NAME.key + NAME.pem (the leaf, then its CA), valid from
# START to END (openssl ca can date a certificate in the past; openssl x509 cannot).
issue() {
  local dir=$1 name=$2 ca=$3 san=$4 start=$5 end=$6
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=$name" -keyout "$dir/$name.key" -out "$dir/$name.csr" \
    -addext "subjectAltName=$san" -addext extendedKeyUsage=serverAuth 2>/dev/null
  openssl ca -batch -config "$dir/ca.cnf" -cert "$dir/$ca.pem" -keyfile "$dir/$ca.key" \
    -startdate "$start" -enddate "$end" -in "$dir/$name.csr" -out "$dir/$name.leaf" \
    -notext 2>/dev/null
  cat "$dir/$name.leaf" "$dir/$ca.pem" >"$dir/$name.pem"
}

# The CAs and server certificates of the HTTPS server blocks (see the header).
tls_up() {
  local tls=$DIR/tls
  [ -f "$tls/done" ] && return 0
  mkdir -p "$tls/db"
  make_ca "$tls" ca
  make_ca "$tls" other-ca
  printf '%s\n' "[ca]" "default_ca = testbed" "[testbed]" \
    "database = $tls/db/index.txt" "new_certs_dir = $tls/db" "serial = $tls/db/serial" \
    "default_md = sha256" "policy = anything" "copy_extensions = copy" \
    "unique_subject = no" "[anything]" "commonName = supplied" >"$tls/ca.cnf"
  : >"$tls/db/index.txt"
  echo 1000 >"$tls/db/serial"
  issue "$tls" server ca "IP:$ADDR_SERVER" 20200101000000Z 20491231000000Z
  issue "$tls" expired ca "IP:$ADDR_SERVER" 20200101000000Z 20210101000000Z
  issue "$tls" wrong-name ca "DNS:wrong.example" 20200101000000Z 20491231000000Z
  issue "$tls" stranger other-ca "IP:$ADDR_SERVER" 20200101000000Z 20491231000000Z
  [ -s "$tls/stranger.pem" ] || die "could not make the test certificates in $tls"
  touch "$tls/done"
}

# One HTTPS server block: https_server PORT CERT PROTOCOLS.
https_server() {
  printf '  server {\n    listen %s ssl;\n    root %s;\n' "$1" "$DIR/www"
  printf '    ssl_certificate %s;\n    ssl_certificate_key %s;\n' "$DIR/tls/$2.pem" "$DIR/tls/$2.key"
  # The client's TLS alerts (e.g. "alert unknown ca") are logged at "info" only.
  printf '    error_log %s info;\n' "$DIR/nginx/logs/tls-$1.log"
  printf '    ssl_protocols %s;\n  }\n' "$3"
}

nginx_up() {
  local run=$DIR/nginx
  mkdir -p "$run/logs" "$run/tmp"
  cat >"$run/nginx.conf" <<EOF
# Written by scripts/testbed.sh; runs inside namespace $NS_SERVER.
user root;
worker_processes 1;
pid $run/nginx.pid;
error_log $run/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log $run/logs/access.log;
  client_body_temp_path $run/tmp/body;
  proxy_temp_path $run/tmp/proxy;
  fastcgi_temp_path $run/tmp/fastcgi;
  uwsgi_temp_path $run/tmp/uwsgi;
  scgi_temp_path $run/tmp/scgi;
  types { application/octet-stream bin; text/plain txt; }
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 30s;
  server {
    listen $HTTP_PORT;
    listen [::]:$HTTP_PORT;
    root $DIR/www;
    # Files are served with Content-Length; Range requests are nginx's own.
    location = /redirect/relative { absolute_redirect off; return 302 /1M.bin; }
    location = /redirect/absolute { return 301 http://$ADDR_SERVER/1M.bin; }
    location = /redirect/loop     { absolute_redirect off; return 302 /redirect/loop; }
    # a chain of redirects: six requests, each on a connection of its own source port
    location = /redirect/hop5 { absolute_redirect off; return 302 /redirect/hop4; }
    location = /redirect/hop4 { absolute_redirect off; return 302 /redirect/hop3; }
    location = /redirect/hop3 { absolute_redirect off; return 302 /redirect/hop2; }
    location = /redirect/hop2 { absolute_redirect off; return 302 /redirect/hop1; }
    location = /redirect/hop1 { absolute_redirect off; return 302 /1M.bin; }
    location = /status/500        { return 500; }
    location = /redirect/to-https { return 301 https://$ADDR_SERVER/1M.bin; }
    # Basic authentication (RFC 7617, issue 15) on /private/: the user file is written by
    # the test that needs it ($run/htpasswd, openssl passwd -apr1); until then nginx refuses
    # every request there. /private/elsewhere asks for the same credentials, then redirects
    # to the server's other address, a different host (try_files runs after the access
    # phase; a plain return would redirect before asking).
    location /private/ {
      auth_basic "xdpget e2e"; auth_basic_user_file $run/htpasswd; alias $DIR/www/;
    }
    location = /private/elsewhere {
      auth_basic "xdpget e2e"; auth_basic_user_file $run/htpasswd;
      try_files /nonexistent @elsewhere;
    }
    location @elsewhere { return 302 http://$ADDR_SERVER_OTHER/1M.bin?from-private; }
    # Anything else that does not exist is nginx's own 404. Chunked, close-delimited and
    # early-close bodies come from the helper on port $HELPER_PORT (testbed_http.py), not
    # through nginx, which would re-frame them.
  }
$(https_server "$HTTPS_PORT" server "TLSv1.2 TLSv1.3")
$(https_server 8443 server TLSv1.2)
$(https_server 8444 server TLSv1.3)
$(https_server 8445 expired "TLSv1.2 TLSv1.3")
$(https_server 8446 wrong-name "TLSv1.2 TLSv1.3")
$(https_server 8447 stranger "TLSv1.2 TLSv1.3")
}
EOF
  if pid_alive "$run/nginx.pid"; then
    in_server nginx -p "$run" -c "$run/nginx.conf" -e "$run/logs/error.log" -s reload
  else
    in_server nginx -p "$run" -c "$run/nginx.conf" -e "$run/logs/error.log"
  fi
}

# The server's second IPv4 address (ADDR_SERVER_OTHER), on the same interface.
other_address_up() {
  in_server ip addr replace "$ADDR_SERVER_OTHER/$PREFIX_LEN" dev "$DEV_SERVER"
}

helper_up() {
  local run=$DIR/helper
  mkdir -p "$run"
  pid_alive "$run/helper.pid" && return 0
  # setsid + nohup: the helper outlives this script; its pid is recorded for down.
  in_server setsid nohup python3 "$HERE/testbed_http.py" --port "$HELPER_PORT" --seed "$SEED" \
    >"$run/helper.log" 2>&1 </dev/null &
  echo $! >"$run/helper.pid"
  local i
  for i in $(seq 50); do
    in_server python3 - "$HELPER_PORT" <<'EOF' && return 0
import socket, sys
s = socket.socket()
s.settimeout(0.2)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
    sleep 0.1
  done
  die "the HTTP helper did not start; see $run/helper.log"
}

# Both veth ends report operstate UP only once both are up and the carrier is on.
wait_link_up() {
  local i
  for i in $(seq 50); do
    if in_client ip -br link show "$DEV_CLIENT" | grep -q " UP " \
       && in_server ip -br link show "$DEV_SERVER" | grep -q " UP "; then
      return 0
    fi
    sleep 0.1
  done
  die "the veth pair did not come up"
}

up() {
  require
  # A half-built testbed is worse than none: if any step fails, take everything down.
  trap 'rc=$?; if [ "$rc" -ne 0 ]; then log "up failed; tearing down"; down >/dev/null 2>&1 || true; fi' EXIT
  mkdir -p "$DIR"
  net_up
  loss_up
  data_up
  tls_up
  helper_up
  other_address_up
  nginx_up
  wait_link_up
  log "up: client $NS_CLIENT/$DEV_CLIENT $ADDR_CLIENT, server $NS_SERVER/$DEV_SERVER $ADDR_SERVER," \
      "http://$ADDR_SERVER/ (loss $LOSS%, $(in_server sysctl -n net.ipv4.tcp_congestion_control)), data in $DIR/www"
}

# -------------------------------------------------------------------------------- down

# Sends TERM to the process in pid file $1, waits up to 5 s, then KILL.
stop_pidfile() {
  local file=$1 pid i
  pid_alive "$file" || { rm -f "$file"; return 0; }
  pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

# Whatever still runs inside namespace $1 was started by this testbed (the namespace is
# ours): nginx workers, a helper whose pid file was lost. TERM, then KILL.
stop_namespace_processes() {
  local ns=$1 pids i
  ns_exists "$ns" || return 0
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for i in $(seq 50); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] || return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

down() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  stop_pidfile "$DIR/nginx/nginx.pid"
  stop_pidfile "$DIR/helper/helper.pid"
  stop_namespace_processes "$NS_SERVER"
  stop_namespace_processes "$NS_CLIENT"
  stop_namespace_processes "$NS_LINK"
  # Deleting a namespace destroys its veth ends, and with them the peers and all nft tables.
  local ns
  for ns in "$NS_CLIENT" "$NS_SERVER" "$NS_LINK"; do
    if ns_exists "$ns"; then ip netns del "$ns"; fi
  done
  rm -rf "$DIR/nginx" "$DIR/helper" "$DIR/tls"
  if [ "${1:-}" = --purge ]; then rm -rf "$DIR"; fi
  log "down"
}

# ------------------------------------------------------------------------------ status

status() {
  local ns
  for ns in "$NS_CLIENT" "$NS_LINK" "$NS_SERVER"; do
    if ns_exists "$ns"; then
      echo "namespace $ns:"
      ip netns exec "$ns" ip -brief addr show 2>/dev/null | sed 's/^/  /'
    else
      echo "namespace $ns: absent"
    fi
  done
  if pid_alive "$DIR/nginx/nginx.pid"; then echo "nginx: running (pid $(cat "$DIR/nginx/nginx.pid"))"
  else echo "nginx: not running"; fi
  if pid_alive "$DIR/helper/helper.pid"; then echo "helper: running (pid $(cat "$DIR/helper/helper.pid"))"
  else echo "helper: not running"; fi
  if ns_exists "$NS_LINK" && in_link nft list table bridge "$LOSS_TABLE" >/dev/null 2>&1; then
    echo "loss: on"
  else
    echo "loss: off"
  fi
  [ -f "$DIR/www/SHA256SUMS" ] && { echo "data ($DIR/www):"; sed 's/^/  /' "$DIR/www/SHA256SUMS"; }
  return 0
}

case "${1:-}" in
  up)
    shift
    if [ "${1:-}" = --loss ]; then
      [ $# -ge 2 ] || die "--loss needs a percentage"
      LOSS=$2
    fi
    up
    ;;
  down) shift; down "${1:-}" ;;
  status) status ;;
  *) echo "usage: $0 up [--loss N]|down [--purge]|status" >&2; exit 2 ;;
esac
