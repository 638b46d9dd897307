#!/usr/bin/env bash
# The floods of the edge-hardening issue against a release build, on
# loopback only: builds the server (--release) and runs
# scripts/attack.py, which prints memory and /healthz latency for two
# identical rounds of each flood. Name floods to run only those:
#   scripts/attack.sh [methods|sign-in-ids|sign-ups|connections|timing ...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

step "cargo build --release -p server"
cargo build --release -p server
server_bin="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/server"
step "floods"
python3 scripts/attack.py "$server_bin" "$@"
