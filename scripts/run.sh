#!/usr/bin/env bash
# The run command: builds the web app's release bundle into dist/ (installing
# trunk, wasm-bindgen-cli and wasm-opt when missing; every file precompressed
# with gzip and brotli), builds the release server and starts it with the
# embedded store on http://127.0.0.1:8080, serving the API and the app (BIND,
# DATA_DIR, STATIC_DIR, …: see `server --help` and docs/api.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

build_web_bundle
step "building the server"
cargo build --release -p server
step "starting on http://${BIND:-127.0.0.1:8080}"
exec ./target/release/server
