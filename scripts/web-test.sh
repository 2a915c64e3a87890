#!/usr/bin/env bash
# Starts a node on a free loopback port in a fresh home, runs the Playwright/Chromium UI
# test against it, keeps the screenshot, and stops the node.
#   scripts/web-test.sh FLURRY_BINARY [SCREENSHOT.png]
set -euo pipefail
bin="$1"
shot="${2:-artifacts/ui-chat.png}"
mkdir -p "$(dirname "$shot")"
shot="$(cd "$(dirname "$shot")" && pwd)/$(basename "$shot")"
home="$(mktemp -d)"
log="$home/up.log"
cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$home"
}
trap cleanup EXIT
# The UI sends no token limit and a random seed: cap answers so that a rambling sample
# of the tiny model cannot outlast the test's timeouts.
# No mDNS: the network page step expects a node with no peers.
# The UI test's documents go in a folder listed in [memory] roots: the API ingests
# nothing else.
memdir="$home/ui-memory"
mkdir -p "$memdir"
printf '[api]\nmax_tokens_limit = 256\n[net]\nmdns = false\n[memory]\nroots = ["%s"]\n' "$memdir" > "$home/flurry.toml"
FLURRY_HOME="$home" FLURRY_TEST_LIGHT_KDF=1 "$bin" up --listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  [ -f "$home/node.json" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "flurry up exited early" >&2; exit 1; }
  sleep 0.1
done
url="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$home/node.json")"
echo "web UI test against $url" >&2
if ! FLURRY_URL="$url" FLURRY_SCREENSHOT="$shot" FLURRY_UI_MEMORY_DIR="$memdir" tests/web/run.sh; then
  echo "--- node log ---" >&2; tail -50 "$log" >&2
  exit 1
fi
echo "screenshot: $shot" >&2
