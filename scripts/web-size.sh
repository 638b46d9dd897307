#!/usr/bin/env bash
# The web bundle's size against its budget: builds the release bundle into
# dist/ (as the run command does; `--no-build` measures the dist/ that is
# there), then prints, for the .wasm and the JS glue (every .js of the
# bundle), the raw size, the gzip size (-9) and the brotli size (-q 11),
# and the gzip total of the two against the budget of 250 KB (250,000
# bytes). Exits 1 when the total is over the budget. Not part of the test
# command.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

BUDGET=250000

case "${1:-}" in
  --no-build) ensure_apt brotli brotli ;;
  "") build_web_bundle ;;
  *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
esac

mapfile -t files < <(find dist -type f \( -name '*.wasm' -o -name '*.js' \) | sort)
if ! printf '%s\n' "${files[@]}" | grep -q '\.wasm$'; then
  echo "no .wasm in dist/: build the bundle first (scripts/web-size.sh without --no-build)" >&2
  exit 1
fi

row() { printf '%-44s %12s %12s %12s\n' "$@"; }
bytes() { sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' <<<"$1"; }

step "web bundle size (bytes)"
row "file" "raw" "gzip -9" "brotli -q 11"
raw_total=0 gz_total=0 br_total=0
for f in "${files[@]}"; do
  raw=$(wc -c <"$f")
  gz=$(gzip -9 -n -c "$f" | wc -c)
  br=$(brotli -q 11 -c "$f" | wc -c)
  raw_total=$((raw_total + raw)) gz_total=$((gz_total + gz)) br_total=$((br_total + br))
  row "${f#dist/}" "$(bytes "$raw")" "$(bytes "$gz")" "$(bytes "$br")"
done
row "total (.wasm + JS glue)" "$(bytes "$raw_total")" "$(bytes "$gz_total")" "$(bytes "$br_total")"
echo
percent=$((gz_total * 100 / BUDGET))
if [ "$gz_total" -le "$BUDGET" ]; then
  echo "gzip total $(bytes "$gz_total") bytes: ${percent}% of the 250 KB budget ($(bytes "$BUDGET") bytes), within"
else
  echo "gzip total $(bytes "$gz_total") bytes: ${percent}% of the 250 KB budget ($(bytes "$BUDGET") bytes), OVER by $(bytes $((gz_total - BUDGET))) bytes"
  exit 1
fi
