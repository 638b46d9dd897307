#!/usr/bin/env bash
# The attack command: every flood of the hardening issues (the HTTP edge and
# the WebSocket) against a release build, on loopback only. Builds the
# server (cargo build --release -p server; nothing when it is up to date)
# and runs scripts/attack.py, which starts the binary on a fresh data
# directory for each flood, runs each flood ROUNDS times (2), and prints a
# report: answers, memory (VmRSS/VmHWM) before and after each round,
# /healthz latency throughout, time to exit on SIGTERM. Exits 1 on a
# correctness failure (a lost, duplicated or unanswered submit, a hung
# socket, /healthz not answering, no exit within 10 s of SIGTERM); times and
# memory are printed, not judged. A few minutes on 2 cores.
#
#   scripts/attack.sh                      every flood
#   scripts/attack.sh ws-pipeline sigterm  only those (--help lists them)
#   SERVER_BIN=/path/to/server scripts/attack.sh rooms-list
#                                          another binary, nothing built
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_apt python3 python3

if [ -n "${SERVER_BIN:-}" ]; then
  step "server binary: $SERVER_BIN (not built here)"
  server_bin="$SERVER_BIN"
else
  rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  git diff --quiet HEAD -- 2>/dev/null || rev="$rev with uncommitted changes"
  step "building the server for release at $rev: cargo build --release -p server"
  cargo build --release -p server
  server_bin="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/server"
fi
step "floods against $server_bin on 127.0.0.1"
exec python3 scripts/attack.py "$server_bin" "$@"
