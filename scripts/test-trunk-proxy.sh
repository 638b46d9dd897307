#!/usr/bin/env bash
# The development loop's proxy, tested: starts the server (debug build) and
# `trunk serve` with Trunk.toml's own [[proxy]] entries pointed at it (only
# the ports changed), each on a free loopback port, then checks through
# trunk's port that
#   - the app is served (index.html naming the wasm),
#   - /api goes to the server: sign up, sign in, create a room, list the
#     rooms and read the room's events with the token,
#   - the WebSocket goes to the server: /api/ws/rooms/{id}/ws?token=… is
#     upgraded (Sec-WebSocket-Accept checked), a submitted message is
#     acknowledged, and the server stored it (read back from the server).
# Exits non-zero on the first check that fails. Called by the test command;
# `trunk serve --release` reuses the release bundle's build.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_web_toolchain
ensure_apt curl curl
cargo fetch --quiet
step "cargo build -p server"
cargo build -p server
target_dir="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

work="$(mktemp -d)"
server_pid=""
trunk_pid=""
cleanup() {
  stop_process "$trunk_pid"
  stop_process "$server_pid"
  rm -rf "$work"
}
trap cleanup EXIT

server_port="$(free_port)"
trunk_port="$(free_port)"
server="http://127.0.0.1:$server_port"
trunk="http://127.0.0.1:$trunk_port"

step "starting the server on $server"
BIND="127.0.0.1:$server_port" DATA_DIR="$work/data" STATIC_DIR="$work/no-web-app" \
  RATE_LIMIT_PER_USER=0 RUST_LOG="${RUST_LOG:-warn}" \
  "$target_dir/debug/server" >"$work/server.log" 2>&1 &
server_pid=$!
wait_for_http "$server/healthz" "$server_pid" "$work/server.log"

# Trunk.toml as it is, but for the server's and trunk's ports; relative
# paths in a config file are read from its own directory, so the app's and
# the output's are made absolute.
sed -e "s|127\.0\.0\.1:8080|127.0.0.1:$server_port|g" \
  -e "s|^port = 8081$|port = $trunk_port|" \
  -e "s|^target = \"web/index.html\"$|target = \"$PWD/web/index.html\"|" \
  -e "s|^dist = \"dist\"$|dist = \"$work/dist\"|" \
  Trunk.toml >"$work/Trunk.toml"
for want in "127.0.0.1:$server_port/api\"" "port = $trunk_port" "$PWD/web/index.html" "$work/dist"; do
  grep -qF "$want" "$work/Trunk.toml" || { echo "Trunk.toml no longer has the expected shape ($want)" >&2; exit 1; }
done

step "starting trunk serve on $trunk (building the app first)"
setsid trunk serve --release --no-autoreload --config "$work/Trunk.toml" >"$work/trunk.log" 2>&1 &
trunk_pid=$!
wait_for_http "$trunk/" "$trunk_pid" "$work/trunk.log" 900
grep -E "proxying" "$work/trunk.log" | sed 's/^.*INFO //' || true

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
check() { printf '  ok  %s\n' "$*"; }

step "the app, through trunk"
curl -fsS "$trunk/" | grep -q '_bg.wasm' || { echo "trunk's index.html names no wasm" >&2; exit 1; }
check "GET / is the app's index.html"

step "/api, through trunk's proxy"
credentials='{"userId": "proxied", "password": "proxied-password"}'
status="$(curl -sS -o "$work/out" -w '%{http_code}' -X POST "$trunk/api/users" -d "$credentials")"
[ "$status" = 201 ] || { cat "$work/out" >&2; echo "POST /api/users: $status" >&2; exit 1; }
check "POST /api/users 201"
token="$(curl -fsS -X POST "$trunk/api/sessions" -d "$credentials" | json '["token"]')"
check "POST /api/sessions gave a token"
auth="Authorization: Bearer $token"
status="$(curl -sS -o "$work/out" -w '%{http_code}' -X POST "$trunk/api/rooms" -H "$auth" \
  -d '{"roomId": "proxied-room", "name": "Through the proxy"}')"
[ "$status" = 201 ] || { cat "$work/out" >&2; echo "POST /api/rooms: $status" >&2; exit 1; }
check "POST /api/rooms 201"
rooms="$(curl -fsS "$trunk/api/rooms" -H "$auth" | json '["rooms"]')"
grep -q "proxied-room" <<<"$rooms" || { echo "GET /api/rooms: $rooms" >&2; exit 1; }
check "GET /api/rooms with the token lists the room"
last="$(curl -fsS "$trunk/api/rooms/proxied-room" -H "$auth" | json '["lastSeq"]')"
[ "$last" = 1 ] || { echo "GET /api/rooms/proxied-room: lastSeq $last" >&2; exit 1; }
check "GET /api/rooms/proxied-room (an HTTP route under the WebSocket's path on the server)"

step "the WebSocket, through trunk's proxy"
python3 scripts/ws_probe.py 127.0.0.1 "$trunk_port" \
  "/api/ws/rooms/proxied-room/ws?afterSeq=0&token=$token" >"$work/ws.out" ||
  { cat "$work/ws.out" >&2; exit 1; }
sed -e '$d' -e 's/^/      /' "$work/ws.out"
seq="$(tail -n 1 "$work/ws.out")"
[ "$seq" = 2 ] || { echo "the WebSocket's submit was stored as seq $seq, not 2" >&2; exit 1; }
events="$(curl -fsS "$server/api/rooms/proxied-room/events?afterSeq=1" -H "$auth")"
grep -q "through the proxy" <<<"$events" || { echo "the server has not stored it: $events" >&2; exit 1; }
check "upgraded, submitted, acknowledged, and stored by the server (read back from it directly)"

echo
echo "trunk serve proxies /api and the WebSocket to the server"
