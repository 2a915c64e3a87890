"""What a new user meets in the first hour (issue 32): the top-level help, and a node run
from the binary with no environment variables."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from conftest import flurry_bin, run_cli


def test_top_level_help_names_the_product_and_its_commands():
    r = subprocess.run([flurry_bin(), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    first = out.strip().splitlines()[0]
    assert "Flurry" in first and "private AI node" in first, first
    # No crate documentation leaks into what a user reads first.
    for leak in ("clap", "flurry_cli", "command tree", "crate"):
        assert leak not in out, f"{leak!r} in flurry --help:\n{out}"
    commands = re.findall(r"^  (\w[\w-]*)\s", out.split("Commands:", 1)[1], re.M)
    for c in ("up", "ask", "chat", "model", "ingest", "memory", "peers", "wallet"):
        assert c in commands, f"{c} missing from the commands: {commands}"
    # In the order people use them: start the node, talk to it, then everything else.
    assert commands[:3] == ["up", "ask", "chat"], commands
    assert "flurry up" in out and "http://127.0.0.1:7878" in out


def test_node_without_environment_finds_its_local_chain(node_factory, monkeypatch, tmp_path):
    """`make` exports FLURRY_ANVIL; a person running the binary by hand does not. With no
    FLURRY_ANVIL and no anvil on PATH, `flurry up` must still run its local chain and the
    wallet must work (it used to log "running without a chain")."""
    monkeypatch.delenv("FLURRY_ANVIL", raising=False)
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not (Path(d) / "anvil").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    home = tmp_path / "plain"
    node = node_factory(home=home)
    r = run_cli(home, "wallet", "balance", "--json", timeout=120)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n{node.stderr_tail()}"
    balance = json.loads(r.stdout)
    assert int(balance["balance"]) > 0, balance
    shown = run_cli(home, "chain", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["anvil"], shown.stdout
