#!/usr/bin/env bash
# The test command: installs what the checks need when it is missing
# (skipping what is there), then runs formatting, lints, the wasm build of
# the domain crate and every test. Benchmarks are not run here (see
# BENCHMARKS.md); clippy still compiles them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# Property tests: a bounded number of cases here; a longer run is
#   PROPTEST_CASES=5000 cargo test -p domain --test properties --release
export PROPTEST_CASES="${PROPTEST_CASES:-64}"

ensure_rust_components
ensure_wasm_target

step "cargo fmt --check"
cargo fmt --all -- --check
step "modules use each other in one direction"
python3 scripts/module-cycles.py domain
step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
step "domain for wasm32-unknown-unknown"
cargo build -p domain --target wasm32-unknown-unknown
step "cargo test"
cargo test --workspace
