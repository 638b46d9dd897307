#!/usr/bin/env bash
# The web benchmark (not part of the test command; figures in BENCHMARKS.md
# under "Web"):
#   1. time from navigation to the newest messages painted, for rooms of
#      100, 10,000 and 100,000 events (e2e/src/bin/web-bench.rs: the release
#      server and bundle on localhost, headless Chromium);
#   2. the in-browser replay per 1,000 events (WASM, in headless Chromium,
#      the bundle's size-focused profile) next to the native figure, same
#      log, same machine, one after the other (web/tests/replay_speed.rs).
# `--no-build` uses the dist/ that is there.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_chromium
[[ "${1:-}" == "--no-build" ]] || build_web_bundle
ensure_web_toolchain

step "navigation → newest messages painted"
cargo run --quiet --release -p e2e --bin web-bench

step "replay per 1,000 events: native, then WASM in headless Chromium"
native=$(cargo test --quiet --release -p web --test replay_speed -- --ignored --nocapture 2>&1 | grep '^REPLAY')
wasm=$(cargo test --profile wasm-release -p web --target wasm32-unknown-unknown \
  --test replay_speed -- --include-ignored --nocapture 2>&1 | grep '^REPLAY')
printf '%s\n%s\n' "$native" "$wasm"
per1000() { sed -E 's/.*= ([0-9.]+) ms per 1,000 events.*/\1/' <<<"$1"; }
awk -v n="$(per1000 "$native")" -v w="$(per1000 "$wasm")" \
  'BEGIN { printf "WASM replay speed = %.2f x native (target: at least 0.4)\n", n / w }'
