#!/usr/bin/env bash
# Installs the C libraries the Rust build links: OpenSSL's libcrypto (SQLCipher, which
# encrypts the private memory, uses it) and pkg-config to find it. Idempotent; quiet
# when everything is present.
set -euo pipefail
need=()
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists libcrypto 2>/dev/null || need+=(libssl-dev)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing ${need[*]} (apt)…" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
