# Shared helpers of the run and test commands. Every ensure_* function
# installs one thing when it is missing and does nothing when it is there.

step() { printf '\n==> %s\n' "$*"; }

ensure_rust_components() {
  local have
  have=$(rustup component list --installed 2>/dev/null || true)
  for c in rustfmt clippy; do
    if ! grep -q "^$c" <<<"$have"; then
      step "installing rust component $c"
      rustup component add "$c"
    fi
  done
}

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

# Runs a command as root (directly, or through sudo when not root).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_apt PACKAGE COMMAND: installs the Debian package when COMMAND is
# missing.
ensure_apt() {
  if ! command -v "$2" >/dev/null 2>&1; then
    step "installing $1"
    as_root apt-get install -y "$1" ||
      { as_root apt-get update && as_root apt-get install -y "$1"; }
  fi
}

# The web toolchain, pinned together (trunk uses the wasm-bindgen and
# wasm-opt on PATH only when their versions match Trunk.toml's [tools]).
TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130
BINARYEN_VERSION=132

# ensure_cargo_tool BINARY CRATE VERSION MINUTES [cargo install flags]:
# installs the crate's binaries with cargo when BINARY is missing or another
# version.
ensure_cargo_tool() {
  local bin=$1 crate=$2 version=$3 minutes=$4
  shift 4
  if ! "$bin" --version 2>/dev/null | grep -qF "$version"; then
    step "installing $crate $version with cargo (about $minutes minutes on 2 cores)"
    cargo install "$crate" --version "$version" "$@"
  fi
}

# Everything that builds the web bundle: the wasm32 target, trunk,
# wasm-bindgen-cli and wasm-opt (binaryen from npm, in .tools; Debian's
# binaryen is too old to load).
ensure_web_toolchain() {
  ensure_wasm_target
  ensure_cargo_tool trunk trunk "$TRUNK_VERSION" 10 --locked
  # No --locked: its lock file names a webpki-roots the registry lacks.
  ensure_cargo_tool wasm-bindgen wasm-bindgen-cli "$WASM_BINDGEN_VERSION" 5
  if ! .tools/node_modules/.bin/wasm-opt --version 2>/dev/null | grep -qF "version $BINARYEN_VERSION"; then
    ensure_apt npm npm
    step "installing binaryen $BINARYEN_VERSION (wasm-opt) from npm into .tools (seconds)"
    mkdir -p .tools
    npm install --prefix .tools --no-save --no-audit --no-fund "binaryen@$BINARYEN_VERSION"
  fi
  PATH="$PWD/.tools/node_modules/.bin:$PATH"
  export PATH
}

# Headless Chromium and its driver, for the browser tests.
ensure_chromium() {
  ensure_apt chromium chromium
  ensure_apt chromium-driver chromedriver
}

# The MongoDB-compatible server the tests run the store against (see
# ../shared/TOOLCHAIN.md: no registry here ships a real mongod). Production
# runs a real MongoDB replica set; the code is plain MongoDB.
SECANTUS_VERSION=0.7.0b3
SECANTUS_VENV=.tools/venv-secantus
ensure_mongodb_server() {
  if ! "$SECANTUS_VENV/bin/pip" show SecantusDB 2>/dev/null | grep -qx "Version: $SECANTUS_VERSION"; then
    step "installing SecantusDB $SECANTUS_VERSION (a MongoDB-compatible server, Python build) into $SECANTUS_VENV (seconds)"
    mkdir -p .tools
    [ -x "$SECANTUS_VENV/bin/pip" ] || python3 -m venv "$SECANTUS_VENV"
    "$SECANTUS_VENV/bin/pip" install --quiet --disable-pip-version-check "SecantusDB==$SECANTUS_VERSION"
  fi
}

# SecantusDB's Rust build, on WiredTiger (the engine of mongod): closer to
# a real MongoDB than the Python build, for a second figure of the MongoDB
# benchmarks (scripts/bench.sh --mongodb-rust). A build of about 10
# minutes, so the tests keep the Python build.
SECANTUS_RS_VERSION=0.5.3-beta.196
SECANTUS_RS_ROOT=.tools/secantus-rs
ensure_mongodb_server_rust() {
  if ! grep -qs "secantus-mdb $SECANTUS_RS_VERSION" "$SECANTUS_RS_ROOT/.crates.toml"; then
    ensure_apt cmake cmake
    step "building SecantusDB $SECANTUS_RS_VERSION (a MongoDB-compatible server, Rust build) into $SECANTUS_RS_ROOT (about 10 minutes)"
    cargo install secantus-mdb --version "$SECANTUS_RS_VERSION" --locked --ignore-rust-version \
      --root "$SECANTUS_RS_ROOT"
  fi
}

# start_mongodb_server [rust]: starts it (the Python build, or with `rust`
# the Rust one) on a free loopback port, fsyncing its log at each commit,
# its data in a fresh temporary directory; sets MONGODB_TEST_URI,
# MONGODB_PID, MONGODB_DIR and MONGODB_SERVER (what it is, in words);
# stop_mongodb_server stops it and removes the data.
start_mongodb_server() {
  local port
  port=$(free_port)
  MONGODB_DIR=$(mktemp -d)
  if [ "${1:-}" = rust ]; then
    setsid "$SECANTUS_RS_ROOT/bin/secantusd-rs" --host 127.0.0.1 --port "$port" --sync-on-commit \
      --cache-size 256M --log-file-max 16MB \
      --storage-path "$MONGODB_DIR/data" >"$MONGODB_DIR/log" 2>&1 &
    MONGODB_SERVER="SecantusDB $SECANTUS_RS_VERSION (a Rust MongoDB-compatible server on WiredTiger, --sync-on-commit)"
  else
    setsid "$SECANTUS_VENV/bin/secantusd-py" --host 127.0.0.1 --port "$port" --sync-on-commit \
      --storage-path "$MONGODB_DIR/data" >"$MONGODB_DIR/log" 2>&1 &
    MONGODB_SERVER="SecantusDB $SECANTUS_VERSION (a Python MongoDB-compatible server, --sync-on-commit)"
  fi
  MONGODB_PID=$!
  local deadline=$((SECONDS + 30))
  until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
    if ! kill -0 "$MONGODB_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$MONGODB_DIR/log" >&2
      echo "the MongoDB-compatible server did not start" >&2
      return 1
    fi
    sleep 0.2
  done
  MONGODB_TEST_URI="mongodb://127.0.0.1:$port"
  echo "MongoDB-compatible server ($MONGODB_SERVER) on $MONGODB_TEST_URI, pid $MONGODB_PID"
}

stop_mongodb_server() {
  stop_process "${MONGODB_PID:-}"
  [ -z "${MONGODB_DIR:-}" ] || rm -rf "$MONGODB_DIR"
  MONGODB_PID='' MONGODB_DIR=''
}

# Redis, the bus between server instances in the tests: Debian's
# redis-server (as in production, any Redis ≥ 6 does).
ensure_redis_server() {
  ensure_apt redis-server redis-server
}

# start_redis_server: starts one on a free loopback port, nothing saved to
# disk; sets REDIS_TEST_URL and REDIS_PID (stop_redis_server stops it).
start_redis_server() {
  local port
  port=$(free_port)
  REDIS_LOG=$(mktemp)
  setsid redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    >"$REDIS_LOG" 2>&1 &
  REDIS_PID=$!
  local deadline=$((SECONDS + 10))
  until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do
    if ! kill -0 "$REDIS_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$REDIS_LOG" >&2
      echo "redis-server did not start" >&2
      return 1
    fi
    sleep 0.1
  done
  REDIS_TEST_URL="redis://127.0.0.1:$port/"
  echo "Redis $(redis-server --version | grep -o 'v=[0-9.]*') on $REDIS_TEST_URL, pid $REDIS_PID"
}

stop_redis_server() {
  stop_process "${REDIS_PID:-}"
  [ -z "${REDIS_LOG:-}" ] || rm -f "$REDIS_LOG"
  REDIS_PID='' REDIS_LOG=''
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_http URL PID LOG [SECONDS]: waits until URL answers 2xx; fails,
# showing the end of LOG, when process PID exits first or after SECONDS
# (60 by default).
wait_for_http() {
  local url=$1 pid=$2 log=$3 deadline=$((SECONDS + ${4:-60}))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$log" >&2
      echo "the process serving $url exited before answering" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$log" >&2
      echo "$url did not answer within ${4:-60} s" >&2
      return 1
    fi
    sleep 0.3
  done
}

# stop_process PID: stops a process this script started (SIGTERM, then
# SIGKILL after 10 s) and waits for it. Started with setsid, its whole
# process group goes (trunk's cargo and wasm-bindgen children too).
stop_process() {
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# The release bundle in dist/: `trunk build --release` (the crates fetched
# first: Trunk.toml's `offline` passes --offline to cargo), then every file
# precompressed next to itself (FILE.gz, FILE.br; the originals kept), which
# the server sends to browsers that accept them.
build_web_bundle() {
  local started=$SECONDS f
  ensure_web_toolchain
  ensure_apt brotli brotli
  ensure_apt curl curl
  cargo fetch --quiet
  step "building the web bundle: trunk build --release into dist/"
  trunk build --release
  step "precompressing dist/ (gzip -9 and brotli -q 11 next to each file)"
  find dist -type f ! -name '*.gz' ! -name '*.br' -print0 |
    while IFS= read -r -d '' f; do
      gzip -k -9 -n -f "$f"
      brotli -k -q 11 -f "$f"
    done
  echo "web bundle ready in dist/ ($((SECONDS - started)) s)"
}
