#!/usr/bin/env bash
# End-to-end tests of a built `flurry` binary through the official OpenAI and Ollama
# clients and raw HTTP. Extra arguments go to pytest:
#   tests/e2e/run.sh                 # the whole suite
#   tests/e2e/run.sh -k ollama -v    # some of it
#   tests/e2e/run.sh --maxfail=1000  # do not stop at the first failure
# FLURRY_BIN picks the binary (default: ~/.cache/flurry/target/debug/flurry, else release);
# FLURRY_MODELS the model store; FLURRY_VENV the virtual environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

venv="${FLURRY_VENV:-$HOME/.cache/flurry/venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi

stamp="$venv/.flurry-e2e-requirements.sha256"
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi

exec "$venv/bin/python" -m pytest -q -x -p no:cacheprovider --durations=5 "$@"
