#!/usr/bin/env bash
# Lighthouse on the web app: installs lighthouse 12 from npm into
# .tools/lighthouse when it is missing (and chromium, npm, curl), builds the release bundle
# (as the run command does; `--no-build` uses the dist/ that is there) and
# the release server, starts it on a free loopback port with a fresh data
# directory, signs a user up and in, creates a room with 40 messages, then
# runs Lighthouse (performance, accessibility, best practices; Debian's
# chromium, headless) on
#   - the sign-in page (/), in a fresh browser profile, and
#   - the open room (/rooms/{id}), signed in: the session is put into the
#     page's localStorage first (key SESSION_KEY, default `chat.session`,
#     value the JSON of POST /api/sessions) by a one-line page served next to
#     the bundle, in a chromium that Lighthouse then drives with its storage
#     kept (--disable-storage-reset).
# Prints the scores next to the issue's targets (performance ≥ 0.9,
# accessibility and best practices ≥ 0.95); the reports are kept in
# target/lighthouse/. Exits non-zero only when Lighthouse cannot run. Not
# part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

LIGHTHOUSE_VERSION=12
SESSION_KEY="${SESSION_KEY:-chat.session}"
CHROME_PATH=/usr/bin/chromium
export CHROME_PATH
CHROME_FLAGS="--headless=new --no-sandbox --disable-gpu"

ensure_apt npm npm
ensure_apt curl curl
ensure_chromium
# Its own prefix: an npm install without a package.json removes what else
# is in its node_modules (binaryen's wasm-opt in .tools).
lighthouse=.tools/lighthouse/node_modules/.bin/lighthouse
if ! "$lighthouse" --version 2>/dev/null | grep -q "^$LIGHTHOUSE_VERSION\."; then
  step "installing lighthouse@$LIGHTHOUSE_VERSION from npm into .tools/lighthouse (seconds)"
  mkdir -p .tools/lighthouse
  npm install --prefix .tools/lighthouse --no-save --no-audit --no-fund "lighthouse@$LIGHTHOUSE_VERSION"
fi
echo "lighthouse $("$lighthouse" --version), $("$CHROME_PATH" --version)"

case "${1:-}" in
  --no-build) ;;
  "") build_web_bundle ;;
  *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
esac
[ -f dist/index.html ] || { echo "no dist/index.html: build the bundle first" >&2; exit 1; }
step "building the release server"
cargo build --release -p server

work="$(mktemp -d)"
server_pid=""
chrome_pid=""
cleanup() {
  stop_process "$chrome_pid"
  stop_process "$server_pid"
  rm -rf "$work"
}
trap cleanup EXIT

# The bundle as built, plus the page that puts a session into localStorage
# (from its URL's fragment) for the signed-in run.
cp -r dist "$work/static"
cat >"$work/static/lighthouse-session.html" <<HTML
<!doctype html><meta charset="utf-8"><title>session</title>
<script>localStorage.setItem("$SESSION_KEY", decodeURIComponent(location.hash.slice(1))); document.title = "session set";</script>
HTML

port="$(free_port)"
base="http://127.0.0.1:$port"
step "starting the release server on $base (data in $work/data)"
BIND="127.0.0.1:$port" DATA_DIR="$work/data" STATIC_DIR="$work/static" \
  RATE_LIMIT_PER_USER=0 RUST_LOG="${RUST_LOG:-warn}" \
  ./target/release/server >"$work/server.log" 2>&1 &
server_pid=$!
wait_for_http "$base/healthz" "$server_pid" "$work/server.log"

step "a user, a room and 40 messages"
credentials='{"userId": "lighthouse", "password": "lighthouse-password"}'
curl -fsS -X POST "$base/api/users" -d "$credentials" >/dev/null
session="$(curl -fsS -X POST "$base/api/sessions" -d "$credentials")"
token="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$session")"
room=general
curl -fsS -X POST "$base/api/rooms" -H "Authorization: Bearer $token" \
  -d "{\"roomId\": \"$room\", \"name\": \"General\"}" >/dev/null
for i in $(seq 40); do
  id="$(python3 -c 'import uuid; print(uuid.uuid4())')"
  curl -fsS -X POST "$base/api/rooms/$room/events" -H "Authorization: Bearer $token" \
    -d "{\"eventId\": \"$id\", \"eventType\": \"MESSAGE_SENT\", \"content\": \"message $i of the Lighthouse room\"}" >/dev/null
done
echo "user lighthouse, room $room with 40 messages"

reports=target/lighthouse
mkdir -p "$reports"
categories=performance,accessibility,best-practices

# run_lighthouse NAME URL [lighthouse flags…]: a report with a runtime
# error (a page that paints nothing: NO_FCP) is still a report.
run_lighthouse() {
  local name=$1 url=$2
  shift 2
  step "Lighthouse: $name ($url)"
  rm -f "$reports/$name.report.json" "$reports/$name.report.html"
  "$lighthouse" "$url" --quiet --only-categories="$categories" \
    --output=json --output=html --output-path="$reports/$name" "$@" ||
    [ -s "$reports/$name.report.json" ] ||
    { echo "Lighthouse failed on $url" >&2; return 1; }
}

run_lighthouse signin "$base/" --chrome-flags="$CHROME_FLAGS"

# Signed in: a chromium whose localStorage holds the session, driven by
# Lighthouse over its debugging port, its storage kept.
debug_port="$(free_port)"
setsid "$CHROME_PATH" $CHROME_FLAGS --user-data-dir="$work/profile-room" \
  --remote-debugging-address=127.0.0.1 --remote-debugging-port="$debug_port" \
  --no-first-run --disable-background-networking --disable-component-update --disable-sync \
  "$base/lighthouse-session.html#$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$session")" \
  >"$work/chrome.log" 2>&1 &
chrome_pid=$!
wait_for_http "http://127.0.0.1:$debug_port/json/version" "$chrome_pid" "$work/chrome.log"
deadline=$((SECONDS + 20))
until curl -fsS "http://127.0.0.1:$debug_port/json/list" | grep -q '"session set"'; do
  [ "$SECONDS" -lt "$deadline" ] || { echo "the session page did not run" >&2; exit 1; }
  sleep 0.2
done
run_lighthouse room "$base/rooms/$room" --port="$debug_port" --disable-storage-reset

step "scores (targets: performance ≥ 0.9, accessibility ≥ 0.95, best practices ≥ 0.95)"
python3 - "$reports" <<'PY'
import json, sys
targets = {"performance": 0.9, "accessibility": 0.95, "best-practices": 0.95}
print(f"{'page':<10} {'performance':>12} {'accessibility':>14} {'best-practices':>15}")
for name in ("signin", "room"):
    r = json.load(open(f"{sys.argv[1]}/{name}.report.json"))
    cells = []
    for cat, target in targets.items():
        score = r["categories"][cat]["score"]
        if score is None:
            cells.append("error")
        else:
            cells.append(f"{score:.2f}{'' if score >= target else ' (low)'}")
    print(f"{name:<10} {cells[0]:>12} {cells[1]:>14} {cells[2]:>15}")
    if r.get("runtimeError", {}).get("code"):
        print(f"           {r['runtimeError']['code']}: {r['runtimeError'].get('message', '')[:160]}")
    print(f"           {r['finalDisplayedUrl']}")
print(f"\nreports: {sys.argv[1]}/{{signin,room}}.report.{{html,json}}")
PY
