#!/usr/bin/env bash
# The test command: installs what the checks need when it is missing
# (skipping what is there), then runs formatting, lints, the wasm build of
# the domain crate and every test. Benchmarks are not run here (see
# BENCHMARKS.md); clippy still compiles them.
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

step "cargo fmt --check"
cargo fmt --all -- --check
step "modules use each other in one direction"
python3 scripts/module-cycles.py domain server
step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
step "domain for wasm32-unknown-unknown"
cargo build -p domain --target wasm32-unknown-unknown
step "cargo test"
cargo test --workspace
step "the API fuzzed against its OpenAPI description (schemathesis)"
FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-100}" bash scripts/fuzz-api.sh
