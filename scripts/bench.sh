#!/usr/bin/env bash
# The benchmark command: builds the release server and the benchmark, then
# runs every scenario against its same-run baseline (bench/src/main.rs),
# prints the table, writes it into BENCHMARKS.md and the figures into
# target/bench/results.json. Short mode by default (under 5 minutes);
# `--full` for the sizes of BENCHMARKS.md; `--only 1,2` for some scenarios.
# Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_rust_components
step "building the release server and the benchmark"
cargo build --release -p server --bin server
cargo build --release -p bench --bin bench
# Scenario 7 opens 10,000 WebSockets in full mode: a descriptor each, on
# both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
step "running the benchmarks"
./target/release/bench "$@"
