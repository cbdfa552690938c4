#!/usr/bin/env bash
# Installs what xdpget's build, tests and testbed need, from Debian's packages only.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

PACKAGES=(
  # build: the XDP program (clang, bpf headers) and xsk-rs's vendored libbpf/libxdp
  clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make m4 linux-libc-dev
  # testbed and end-to-end tests
  iproute2 ethtool nftables nginx-light procps
  # the peers we compare against in bench/
  wget curl aria2
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts nginx on install; the testbed runs its own instances in namespaces.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
  pkill -x nginx 2>/dev/null || true
fi

command -v cargo >/dev/null 2>&1 || { echo "setup: cargo (Rust stable) is required" >&2; exit 1; }
echo "setup: ok"
