#!/usr/bin/env bash
# The test command: installs what the checks need when it is missing
# (skipping what is there: the rust components, the wasm target, trunk,
# wasm-bindgen-cli, wasm-opt, chromium and its driver, SecantusDB,
# redis-server), then runs
# formatting, lints, the wasm build of the domain crate, builds the web
# app's release bundle into dist/ (once, before the tests: the end-to-end
# tests in e2e/ serve it to headless Chromium), runs every test, runs the
# server's suites again on MongoDB and Redis (a MongoDB-compatible server,
# SecantusDB, and redis-server, each started on a free loopback port and
# stopped by pid), runs the
# web app's tests in headless Chromium, checks that `trunk serve` proxies
# the API and the WebSocket (scripts/test-trunk-proxy.sh) and fuzzes the
# API. Benchmarks (scripts/web-bench.sh among them), the bundle's size
# (scripts/web-size.sh) and Lighthouse (scripts/lighthouse.sh) are not run
# here (see BENCHMARKS.md); clippy still compiles the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# Property tests and the API fuzzer: a bounded number of cases here; longer
# runs are
#   PROPTEST_CASES=5000 cargo test -p domain --test properties --release
#   PROPTEST_CASES=200000 cargo test -p domain --test decoding_fuzz --release
#   FUZZ_EXAMPLES=1000 scripts/fuzz-api.sh
export PROPTEST_CASES="${PROPTEST_CASES:-64}"

ensure_rust_components
ensure_wasm_target
ensure_web_toolchain
ensure_chromium
ensure_mongodb_server
ensure_redis_server

step "cargo fmt --check"
cargo fmt --all -- --check
step "modules use each other in one direction"
python3 scripts/module-cycles.py domain server web
step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p server --features fault-injection --all-targets -- -D warnings
cargo clippy -p web --target wasm32-unknown-unknown --all-targets -- -D warnings
step "domain for wasm32-unknown-unknown"
cargo build -p domain --target wasm32-unknown-unknown
build_web_bundle
step "cargo test"
cargo test --workspace
step "kill -9 between an event and its view (the server built with its fault-injection switch)"
cargo test -p server --features fault-injection --test crash
step "the server's suites again, on MongoDB (SecantusDB, a MongoDB-compatible server) and Redis"
start_mongodb_server
start_redis_server
trap 'stop_mongodb_server; stop_redis_server' EXIT
# The Python test server takes about 1,800 inserts a second, one request at
# a time: the big-room test writes 5,000 events there (100,000 on the
# embedded store), and two test threads share it, so that no commit of a
# loaded 2-core machine waits past the 3 s the contract allows.
# mongo_outage.rs stops and starts a MongoDB server of its own
# (SECANTUS_BIN), instances.rs Redis servers of its own (redis-server);
# crash.rs needs the fault-injection switch.
TEST_MONGODB_URI="$MONGODB_TEST_URI" TEST_REDIS_URL="$REDIS_TEST_URL" BIG_ROOM_N=5000 \
  SECANTUS_BIN="$PWD/$SECANTUS_VENV/bin/secantusd-py" \
  cargo test -p server --features fault-injection --no-fail-fast -- --test-threads=2
stop_mongodb_server
stop_redis_server
trap - EXIT
step "the web app's state handling in headless Chromium (wasm-bindgen-test)"
cargo test -p web --target wasm32-unknown-unknown
step "trunk serve proxies /api and the WebSocket to a running server"
bash scripts/test-trunk-proxy.sh
step "the API fuzzed against its OpenAPI description (schemathesis)"
FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-100}" bash scripts/fuzz-api.sh
