#!/usr/bin/env bash
# Fuzzes the HTTP API against its own OpenAPI description with schemathesis:
# installs schemathesis into .tools/venv when it is missing, builds and starts
# the server on a free loopback port with a fresh data directory, signs a user
# in, runs every check on every operation but sign-out, and exits non-zero
# when schemathesis reports a failure. Answers the contract forces and a
# generic check cannot know are allowed by name below, each with its reason.
#
#   FUZZ_EXAMPLES=N   test cases per operation and phase (default 100, about
#                     20 s of fuzzing here; 500 takes a minute or two)
#   FUZZ_SEED=N       repeat a run exactly (default: random)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
EXAMPLES="${FUZZ_EXAMPLES:-100}"
VENV=.tools/venv
mkdir -p .tools
ensure_apt curl curl

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  step "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$VENV/bin/schemathesis" --version

step "cargo build -p server"
cargo build -p server
server_bin="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/server"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
step "starting the server on $base (data in $work)"
BIND="127.0.0.1:$port" DATA_DIR="$work/data" STATIC_DIR="$work/no-web-app" \
  RATE_LIMIT_PER_USER=0 SIGN_UPS_PER_MINUTE=0 SIGN_INS_PER_MINUTE=0 RUST_LOG="${RUST_LOG:-warn}" \
  "$server_bin" >"$work/server.log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + 60))
until curl -fsS "$base/healthz" >/dev/null 2>&1; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$work/server.log" >&2
    echo "the server exited before answering /healthz" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "the server did not answer /healthz within 60 s" >&2
    exit 1
  fi
  sleep 0.2
done

step "signing up, signing in, creating the room of the document's examples"
credentials='{"userId": "fuzzer", "password": "fuzzer-password"}'
curl -fsS -X POST "$base/api/users" -d "$credentials" >/dev/null
token="$(curl -fsS -X POST "$base/api/sessions" -d "$credentials" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
curl -fsS -X POST "$base/api/rooms" -H "Authorization: Bearer $token" \
  -d '{"roomId": "general", "name": "General"}' >/dev/null

# What the contract forces and a generic check cannot know, named by
# operationId; every other check runs on these operations too.
cat >"$work/schemathesis.toml" <<'TOML'
# Warnings that mean the run did not test what it should fail it too. Not
# "validation_mismatch": the WebSocket route rejects most requests (426, below)
# and warnings cannot be set per operation.
[warnings]
fail-on = ["missing_auth", "unsupported_regex", "unresolvable_reference"]

# A plain GET of the WebSocket route answers 426 upgrade_required (the
# contract): schemathesis sends no upgrade, so 426 is the right answer to
# schema-valid data there.
[[operations]]
include-operation-id = "connect"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "426", "429", "5xx"]

# Time travel and snapshots answer 400 bad_query to an atSeq above the room's
# lastSeq, and to atSeq together with at (the contract); neither can be said
# in a schema (one depends on the room, OpenAPI has no "not both" for query
# parameters).
[[operations]]
include-operation-id = "get_messages"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]

[[operations]]
include-operation-id = "get_snapshot"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
TOML

seed=()
[ -n "${FUZZ_SEED:-}" ] && seed=(--seed "$FUZZ_SEED")
args=(run "$base/api/openapi.json"
  --checks all
  --max-examples "$EXAMPLES"
  "${seed[@]}"
  # Signing out revokes the fuzzer's own token.
  --exclude-operation-id sign_out
  # Appending to a room just created answers 404 message_not_found when the
  # target message does not exist (the contract); this check reads any 404
  # after a creation as "the created room is missing". It cannot be turned
  # off for post_event alone: checks named on the command line (--checks all)
  # override a config file's per-operation settings.
  --exclude-checks ensure_resource_availability
  --no-color)
step "schemathesis --config-file $work/schemathesis.toml ${args[*]} -H 'Authorization: Bearer ***'"
# Run from .tools (gitignored): schemathesis keeps its failure cache in
# ./.schemathesis there (`cd .tools && venv/bin/st replay ID` replays one).
(cd .tools && venv/bin/schemathesis --config-file "$work/schemathesis.toml" "${args[@]}" \
  -H "Authorization: Bearer $token")
