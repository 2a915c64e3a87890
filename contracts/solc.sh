#!/usr/bin/env bash
# Offline solc for forge: a thin wrapper around solc-js (the npm `solc` package,
# pinned in package-lock.json). Forge cannot download native solc here, so
# foundry.toml points `solc` at this script. It answers the two calls forge makes:
#   solc.sh --version          -> "Version: 0.8.x+commit.…" (the line forge parses)
#   solc.sh --standard-json …  -> standard JSON in on stdin, standard JSON out on stdout
set -euo pipefail
exec node "$(dirname "$(readlink -f "$0")")/solc-wrapper.cjs" "$@"
