#!/usr/bin/env bash
# Runs every test of xdpget: lints, unit and simulator tests, and (as root) the end-to-end
# tests over the real kernel in network namespaces of their own.
#
#   sudo bash scripts/test.sh
#
# The end-to-end tests (tests/e2e.rs) are ordinary `cargo test` integration tests: they run
# the xdpget binary that `cargo test` builds, bring up their own testbeds with
# scripts/testbed.sh (docs/testbed.md) and tear them down, also when they fail. Without root
# they, and the root-only driver tests, print why they are skipped and pass.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "test: not root: the end-to-end and driver tests will be skipped (run with sudo)" >&2
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== bench harness unit tests"
PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s bench -p 'test_*.py'
# cargo test builds the xdpget binary too (the end-to-end tests run it).
echo "== cargo test"
output=${CARGO_TARGET_DIR:-target}/test-output.txt
mkdir -p "$(dirname "$output")"
cargo test --all-targets 2>&1 | tee "$output"
if [ "$(id -u)" -eq 0 ]; then
  # The benchmark harness, once in its tiny mode (1 MiB, one round), to prove it works;
  # with the binary cargo test just built, so no release build is needed here.
  echo "== bench/run.sh --tiny"
  bench/run.sh --tiny --no-doc --xdpget "${CARGO_TARGET_DIR:-target}/debug/xdpget"
fi
# The fuzz targets (fuzz/), bounded: 105 s of fuzzing in all, split over the targets, where
# the nightly toolchain and cargo-fuzz are installed (`cargo install cargo-fuzz`). A crash
# fails the run, and its input is copied to fuzz/regressions/<target>/, where
# tests/fuzz_regressions.rs replays it on every `cargo test` from then on.
if cargo +nightly fuzz --help >/dev/null 2>&1; then
  echo "== cargo +nightly fuzz (bounded)"
  bash scripts/fuzz.sh 105
else
  echo "test: no nightly toolchain or cargo-fuzz: the fuzz step is skipped" >&2
fi
echo "test: all passed (output in $output)"
