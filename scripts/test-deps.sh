#!/usr/bin/env bash
# Installs what the end-to-end tests need beyond cargo: Chromium (Debian package) for the
# web UI test, iptables for the network-namespace test and sqlite3 is not needed (rusqlite is bundled). Idempotent; quiet when
# everything is present. Node packages (tests/web) and Python packages (tests/e2e) are
# installed by those suites' own run.sh from their lock/requirements files.
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs npm)
python3 -c 'import venv' 2>/dev/null || need+=(python3-venv)
# NAT in network namespaces for the peer-to-peer test (tests/netns).
command -v iptables >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
command -v openssl >/dev/null || need+=(openssl)  # the https RPC test makes a throwaway CA
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "installing ${need[*]} (apt)…" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
