#!/usr/bin/env bash
# The benchmark command: builds the release server and the benchmark, then
# runs every scenario against its same-run baseline (bench/src/main.rs),
# prints the table, writes it into BENCHMARKS.md and the figures into
# target/bench/results.json. Short mode by default (under 5 minutes);
# `--full` for the sizes of BENCHMARKS.md; `--only 1,2` for some scenarios;
# `--mongodb-rust` for SecantusDB's Rust build under scenarios 3 and 5.
# Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# --mongodb-rust: scenarios 3 and 5 on SecantusDB's Rust build (see
# scripts/lib.sh) instead of the Python one; the bench binary does not see
# this argument.
mongodb=python
args=()
for a in "$@"; do
  if [ "$a" = --mongodb-rust ]; then mongodb=rust; else args+=("$a"); fi
done
set -- ${args[@]+"${args[@]}"}

ensure_rust_components
if [ "$mongodb" = rust ]; then ensure_mongodb_server_rust; else ensure_mongodb_server; fi
ensure_redis_server
step "building the release server and the benchmark"
cargo build --release -p server --bin server
cargo build --release -p bench --bin bench
# Scenario 7 opens 10,000 WebSockets in full mode: a descriptor each, on
# both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# The scenarios of --only (all without it; repeated --only add up, as in
# the bench binary), for the browser halves below.
only=''
for ((i = 1; i <= $#; i++)); do
  case "${!i}" in
    --only) j=$((i + 1)); only="$only,${!j:-}" ;;
    --only=*) only="$only,${!i#--only=}" ;;
  esac
done
wanted() { [ -z "$only" ] || [[ "$only," == *",$1,"* ]]; }
# Scenario 1's WASM half: the replay test in headless Chromium, next to the
# same test natively.
if wanted 1; then
  ensure_chromium
  ensure_web_toolchain
  step "scenario 1's WASM half: replay natively, then in headless Chromium"
  BENCH_REPLAY_NATIVE=$(cargo test --quiet --release -p web --test replay_speed -- --ignored --nocapture 2>&1 | grep '^REPLAY')
  BENCH_REPLAY_WASM=$(cargo test --profile wasm-release -p web --target wasm32-unknown-unknown \
    --test replay_speed -- --include-ignored --nocapture 2>&1 | grep '^REPLAY')
  export BENCH_REPLAY_NATIVE BENCH_REPLAY_WASM
fi
# Scenario 6's browser half: the web benchmark (its own server, the release
# bundle, headless Chromium), which the bench binary runs on its room sizes.
# The bundle is rebuilt from the tree into dist/ first.
if wanted 6; then
  ensure_chromium
  build_web_bundle
  step "building the web benchmark (scenario 6 in the browser)"
  cargo build --release -p e2e --bin web-bench
  export BENCH_WEB_BENCH="$PWD/target/release/web-bench"
fi
# Scenarios 3 (MongoDB) and 5 (two instances over Redis) use these; each
# on a free loopback port, stopped at the end.
start_mongodb_server "$mongodb"
start_redis_server
trap 'stop_mongodb_server; stop_redis_server' EXIT
step "running the benchmarks"
# Scenario 8 on MongoDB after 1,000,000 events in full mode: on the Rust
# build only (the Python one appends about 400 events a second).
fill=0
if [ "$mongodb" = rust ]; then fill=1000000; fi
# That MongoDB server is this run's own, its data removed at the end.
BENCH_MONGODB_SCRATCH=1 BENCH_MONGODB_FILL=$fill BENCH_MONGODB_URI="$MONGODB_TEST_URI" BENCH_MONGODB_SERVER="$MONGODB_SERVER" \
  BENCH_REDIS_URL="$REDIS_TEST_URL" \
  ./target/release/bench "$@"
