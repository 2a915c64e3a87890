#!/usr/bin/env bash
# Runs the web UI test against a running node.
#   FLURRY_URL=http://127.0.0.1:7878 FLURRY_SCREENSHOT=/tmp/flurry-ui.png tests/web/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "install Chromium: apt-get install -y chromium" >&2
  exit 1
fi

exec node ui-test.mjs
