#!/usr/bin/env bash
# Runs every test of xdpget: unit and simulator tests, lints, and (as root) the
# end-to-end tests over the real kernel in network namespaces of their own.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets 2>&1 | tee target/test-output.txt
