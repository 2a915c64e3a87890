#!/usr/bin/env bash
# Builds llama.cpp (the reference engine) from the llama-cpp-python sdist on PyPI.
# Used by `make bench` (llama-bench) and by scripts/gen-fixtures.py (reference
# tokens and logits). The build is cached outside the clone; a second run does nothing.
set -euo pipefail
VERSION=0.3.36
CACHE="${FLURRY_DEV_CACHE:-$HOME/.cache/flurry-dev}"
SRC="$CACHE/llama-cpp-python-$VERSION"
BUILD="$SRC/vendor/llama.cpp/build"
if [ -x "$BUILD/bin/llama-bench" ] && [ -x "$BUILD/bin/llama-tokenize" ]; then
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
  -DLLAMA_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=ON >&2
cmake --build build -j"$(nproc)" --target llama-bench llama-tokenize llama-simple llama >&2
echo "$BUILD/bin"
