#!/usr/bin/env bash
# Builds llama.cpp (the reference engine) from the llama-cpp-python sdist on PyPI.
# Used by `make bench` (llama-bench) and by scripts/gen-fixtures.py (reference
# tokens and logits, llama-perplexity figures). The build is cached outside the clone; a second run does nothing.
set -euo pipefail
VERSION=0.3.36
CACHE="${FLURRY_DEV_CACHE:-$HOME/.cache/flurry-dev}"
SRC="$CACHE/llama-cpp-python-$VERSION"
BUILD="$SRC/vendor/llama.cpp/build"
# -march=native (GGML_NATIVE) turns on AMX where CPUID reports it, but some VMs report AMX
# and do not let a process use the tiles: llama.cpp then dies with SIGILL in its AMX
# kernels. scripts/amx-probe.c tries the tiles; where they fail, AMX is compiled out.
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
AMX_FLAGS=""
if cc -O1 -o "$probe_dir/amx-probe" "$(dirname "${BASH_SOURCE[0]}")/amx-probe.c" 2>/dev/null; then
  amx=0; "$probe_dir/amx-probe" || amx=$?
  if [ "$amx" -eq 1 ]; then
    echo "llama.cpp: this CPU reports AMX but the tiles cannot be used here; building without AMX" >&2
    AMX_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  fi
else
  echo "llama.cpp: could not compile the AMX probe; building with -march=native as is" >&2
fi
FLAGS_STAMP="native ${AMX_FLAGS}"
if [ -x "$BUILD/bin/llama-bench" ] && [ -x "$BUILD/bin/llama-tokenize" ] && [ -x "$BUILD/bin/llama-perplexity" ] \
  && [ "$(cat "$BUILD/flurry-flags" 2>/dev/null || echo 'native ')" = "$FLAGS_STAMP" ]; then
  echo "$BUILD/bin"
  exit 0
fi
command -v cmake >/dev/null || { echo "installing cmake (apt)" >&2; apt-get update -qq >&2 && apt-get install -y -qq cmake >&2; }
mkdir -p "$CACHE"
if [ ! -d "$SRC/vendor/llama.cpp" ]; then
  tmp=$(mktemp -d)
  pip download --no-binary :all: --no-deps -d "$tmp" "llama-cpp-python==$VERSION" >&2
  tar -xzf "$tmp"/llama_cpp_python-$VERSION.tar.gz -C "$CACHE"
  mv "$CACHE/llama_cpp_python-$VERSION" "$SRC"
  rm -rf "$tmp"
fi
cd "$SRC/vendor/llama.cpp"
cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_C_FLAGS="$AMX_FLAGS" -DCMAKE_CXX_FLAGS="$AMX_FLAGS" >&2
cmake --build build -j"$(nproc)" --target llama-bench llama-tokenize llama-simple llama-perplexity llama >&2
echo "$FLAGS_STAMP" > "$BUILD/flurry-flags"
echo "$BUILD/bin"
