#!/usr/bin/env bash
# Builds and tests the settlement contracts with the pinned foundry + solc-js from npm.
# Offline after the first `npm ci`; extra arguments go to `forge test`
# (e.g. ./test.sh --match-contract TicketBroker -vvv, or ./test.sh --gas-report).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

command -v node >/dev/null || { echo "contracts/test.sh: node (>= 18) is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "contracts/test.sh: npm is required" >&2; exit 1; }

# npm writes node_modules/.package-lock.json on every install: reinstall when it is
# missing or older than the committed lock.
if [ ! -x node_modules/.bin/forge ] || [ ! -f node_modules/.package-lock.json ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi

FORGE=node_modules/.bin/forge
"$FORGE" fmt --check
"$FORGE" build
# The Rust bindings (crates/flurry-chain) compile against exported copies of the artifacts.
node export-artifacts.cjs --check
"$FORGE" test "$@"
