"""The network-namespace test must never pass without running (issue 25: it used to print
SKIPPED and exit 0 inside `make test`). These run tests/netns/netns_test.py with an `ip`
that cannot make namespaces, as on a machine without root, and check the exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "netns" / "netns_test.py"


def run_without_namespaces(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    # `ip` fails the way it does without CAP_NET_ADMIN; iptables only needs to exist.
    (fake / "ip").write_text("#!/bin/sh\necho 'mount --make-shared /run/netns failed: Operation not permitted' >&2\nexit 1\n")
    (fake / "iptables").write_text("#!/bin/sh\nexit 0\n")
    for f in ("ip", "iptables"):
        (fake / f).chmod(0o755)
    e = {k: v for k, v in os.environ.items() if k not in ("CI", "FLURRY_NETNS_OPT_OUT")}
    e["PATH"] = f"{fake}:{e.get('PATH', '')}"
    e.update(env)
    return subprocess.run([sys.executable, str(SCRIPT), "/nonexistent/flurry"],
                          capture_output=True, text=True, env=e, timeout=60)


def test_fails_when_namespaces_cannot_be_made(tmp_path):
    r = run_without_namespaces(tmp_path)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "FAILED: network namespaces unavailable" in r.stderr
    assert "FLURRY_NETNS_OPT_OUT=1" in r.stderr


def test_explicit_opt_out_outside_ci(tmp_path):
    r = run_without_namespaces(tmp_path, FLURRY_NETNS_OPT_OUT="1")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "NOT RUN" in r.stdout


def test_opt_out_refused_under_ci(tmp_path):
    r = run_without_namespaces(tmp_path, FLURRY_NETNS_OPT_OUT="1", CI="true")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "ignored under CI" in r.stderr
