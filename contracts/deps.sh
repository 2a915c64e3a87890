#!/usr/bin/env bash
# Installs the pinned foundry toolchain (forge, anvil, cast) and solc-js from
# contracts/package-lock.json into contracts/node_modules, when missing or outdated.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

command -v node >/dev/null || { echo "contracts/deps.sh: node (>= 18) is required: apt-get install nodejs npm" >&2; exit 1; }
command -v npm >/dev/null || { echo "contracts/deps.sh: npm is required: apt-get install npm" >&2; exit 1; }

# npm writes node_modules/.package-lock.json on every install: reinstall when it is
# missing or older than the committed lock.
if [ ! -x node_modules/.bin/forge ] || [ ! -x node_modules/.bin/anvil ] \
    || [ ! -f node_modules/.package-lock.json ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi
