#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a bounded time, SECONDS in all (default 105), split
# evenly over the targets; needs the nightly toolchain and cargo-fuzz.
#
#   bash scripts/fuzz.sh [SECONDS]
#
# The corpus grows in fuzz/corpus/<target>/ (not committed). A crash input libFuzzer
# writes to fuzz/artifacts/<target>/ is copied to fuzz/regressions/<target>/ (committed),
# which tests/fuzz_regressions.rs replays in every `cargo test`; the script then fails.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

total=${1:-105}
mapfile -t targets < <(cargo +nightly fuzz list)
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz: no targets listed" >&2; exit 1; }
each=$(( total / ${#targets[@]} ))
[ "$each" -ge 1 ] || each=1
# Build all targets first, so that the time limit is spent fuzzing.
cargo +nightly fuzz build

failed=()
for target in "${targets[@]}"; do
  echo "fuzz: $target for ${each}s"
  mkdir -p "corpus/$target" "artifacts/$target"
  if ! cargo +nightly fuzz run "$target" -- -max_total_time="$each" \
      -print_final_stats=0 >"artifacts/$target.log" 2>&1; then
    mkdir -p "regressions/$target"
    for crash in artifacts/"$target"/{crash,oom,timeout,leak}-*; do
      [ -e "$crash" ] || continue
      cp "$crash" "regressions/$target/"
      echo "fuzz: $target: kept $(basename "$crash") in fuzz/regressions/$target/" >&2
    done
    tail -n 30 "artifacts/$target.log" >&2
    failed+=("$target")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}; their inputs are now regression tests (fuzz/regressions/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${each}s each, no crash"
