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
ensure_apt valgrind valgrind

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
step "domain for wasm32-unknown-unknown"
cargo build -p domain --target wasm32-unknown-unknown
step "cargo test"
cargo test --workspace
step "domain tests under valgrind (replay reuses the events' buffer with unsafe code)"
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="valgrind --quiet --error-exitcode=1 --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite"
cargo test -p domain --lib recycle
PROPTEST_CASES=8 cargo test -p domain --test reducer --test properties
