#!/usr/bin/env bash
# Installs what xdpget's build, tests and testbed need, from Debian's packages only.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

PACKAGES=(
  # build: the XDP program (clang, bpf headers) and xsk-rs's vendored libbpf/libxdp
  clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make m4 linux-libc-dev
  # testbed (scripts/testbed.sh) and end-to-end tests (tests/e2e.rs): namespaces, veth,
  # ss; checksum offload; loss and xdpget's drop table; the servers; the data files and
  # their digests; setsid and nohup for the helper; curl fetches the helper's digests
  iproute2 ethtool nftables nginx-light python3 openssl coreutils util-linux procps curl
  # the peers we compare against in bench/
  wget curl aria2
  # a real HTTP proxy (CONNECT included) for the proxy tests
  tinyproxy
  # bench/: GNU time measures peak RSS and CPU time per run; matplotlib draws the report's plots
  time python3-matplotlib
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
  # Debian starts its own nginx on install; the testbed runs its own instances in
  # namespaces. Stop only Debian's (its pid file), never a testbed's.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx tinyproxy >/dev/null 2>&1 || true; fi
  if [ -s /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
fi

# Rust is not a Debian package here (Debian 12's is too old): rustup's stable toolchain.
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo (Rust stable, 1.88 or newer) is required; install it with rustup" >&2; exit 1; }
rust_version=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n' 1.88.0 "$rust_version" | sort -V | head -n1)" != 1.88.0 ]; then
  echo "setup: rustc $rust_version is too old; xdpget needs 1.88 or newer (rustup update stable)" >&2
  exit 1
fi
# cargo-fuzz for the bounded fuzz step of scripts/test.sh, where the nightly toolchain is
# installed (a crates.io package, built from source). Without it the step is skipped, and
# says so.
if cargo +nightly --version >/dev/null 2>&1 && ! cargo +nightly fuzz --help >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install --locked --quiet cargo-fuzz ||
    echo "setup: cargo-fuzz could not be installed; the fuzz step will be skipped" >&2
fi
echo "setup: ok"
