#!/usr/bin/env bash
# Builds and tests the settlement contracts with the pinned foundry + solc-js from npm.
# Offline after the first `npm ci`; extra arguments go to `forge test`
# (e.g. ./test.sh --match-contract TicketBroker -vvv, or ./test.sh --gas-report).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

./deps.sh

FORGE=node_modules/.bin/forge
"$FORGE" fmt --check
"$FORGE" build
# The Rust bindings (crates/flurry-chain) compile against exported copies of the artifacts.
node export-artifacts.cjs --check
"$FORGE" test "$@"
