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
