#!/usr/bin/env bash
# The main job: until the kernel drivers land, a 64 MiB download through the simulator
# at 1 Gbit/s, 20 ms RTT and 1 % loss.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet
./target/release/xdpget sim --size 64MiB --rate 1Gbit --rtt 20ms --loss 1% --seed 7
