#!/usr/bin/env bash
# The run command: builds the server and starts it with the embedded store
# on http://127.0.0.1:8080 (BIND, DATA_DIR, …: see `server --help` and docs/api.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

step "building the server"
cargo build --release -p server
step "starting on http://${BIND:-127.0.0.1:8080}"
exec ./target/release/server
