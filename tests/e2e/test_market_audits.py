"""Audits on the open market with real `flurry up` processes on loopback and one local
anvil: a buyer that holds SmolLM2, an honest seller of it, and a cheaper cheater that
claims SmolLM2's ModelId but runs Gemma 3 (its store's id cache is forged, a plain
model swap). Every job carries the buyer's signed request and the seller's signed
receipt; the buyer's audit (every job while on probation, as configured) re-runs the
cheater's job with the real model and catches it at the first chunk, never buys from
it again, and the evidence, disputed through the registry's arbiter (`flurry validate`:
in local mode the deployer, which is the buyer here) after the buyer opens a dispute
with a bond, slashes its stake.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import openai

from conftest import DEFAULT_MODEL, models_dir, p2p_addr, run_cli, wait_for
from test_market import NET, OFFER_BOUND_S, cli_json, rpc_config

AUDIT_ALL = "[market]\nprobation_audit_rate = 1.0\n"
ASK = dict(model="market/default", seed=5, temperature=0.7, max_tokens=40,
           messages=[{"role": "user", "content": "Name three colours of the rainbow."}])


def cheat_store(where: Path, smol_id: str) -> Path:
    """A model store whose SmolLM2 file is Gemma 3, with an id cache claiming SmolLM2."""
    where.mkdir()
    real = Path(models_dir())
    fake = where / f"{DEFAULT_MODEL}.gguf"
    try:
        os.link(real / "gemma-3-270m-q4_k_m.gguf", fake)
    except OSError:
        shutil.copyfile(real / "gemma-3-270m-q4_k_m.gguf", fake)
    for extra in real.iterdir():
        if extra.is_dir() and not extra.name.startswith("."):
            (where / extra.name).symlink_to(extra)
    st = fake.stat()
    (where / ".ids").mkdir()
    (where / ".ids" / f"{fake.name}.json").write_text(json.dumps(
        {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "model_id": smol_id}))
    return where


def audits(node) -> list[dict]:
    return node.get("/api/market/audits").json()["audits"]


def test_a_seller_that_swaps_the_model_is_caught_by_the_audit_slashed_and_dropped(
        node_factory, tmp_path):
    buyer = node_factory(config=NET + AUDIT_ALL)
    smol = next(m for m in cli_json(buyer.home, "model", "list", "--json")
                if m["name"] == DEFAULT_MODEL)["model_id"]
    chain = rpc_config(buyer.home)
    honest = node_factory(home=tmp_path / "honest", config=chain + NET,
                          args=("--bootstrap", p2p_addr(buyer)))
    cheater = node_factory(home=tmp_path / "cheater", config=chain + NET,
                           args=("--bootstrap", p2p_addr(buyer)),
                           env={"FLURRY_MODELS": str(cheat_store(tmp_path / "cheat", smol))})
    ids = {}
    for name, s, price in (("honest", honest, "30"), ("cheater", cheater, "10")):
        cli_json(buyer.home, "wallet", "send", s.get("/api/node").json()["address"], "3",
                 "--json")
        cli_json(s.home, "market", "stake", "1", "--json")
        sold = cli_json(s.home, "market", "sell", "default", "--price", price, "--json")
        ids[name] = s.get("/api/node").json()["peer_id"]
        print(f"audits: {name} sells {sold}")
    wait_for("the buyer to hear both offers",
             lambda: len(buyer.get("/api/market/offers").json()["offers"]) == 2, OFFER_BOUND_S)
    offers = buyer.get("/api/market/offers").json()["offers"]
    # The cheater's offer claims SmolLM2: nothing in it gives the swap away.
    assert {o["model_id"] for o in offers} == {smol}, offers
    cli_json(buyer.home, "wallet", "deposit", "2", "--json")
    client = openai.OpenAI(base_url=buyer.url + "/v1", api_key="unused", max_retries=0,
                           timeout=300)

    # The cheaper seller wins the first job; its answer comes back, signed.
    r = client.chat.completions.create(**ASK)
    m = r.model_extra["market"]
    assert m["provider"] == ids["cheater"] and m["receipts"] is True, m
    print(f"audits: the cheater answered {r.choices[0].message.content!r}")

    # The audit re-runs the job with the real SmolLM2 and catches the swap at once.
    found = wait_for("the audit of the cheater's job",
                     lambda: [a for a in audits(buyer) if a["verdict"] != "held"], 120)
    assert len(found) == 1, found
    a = found[0]
    assert a["provider"] == ids["cheater"] and a["verdict"] == "failed", a
    assert a["level"] == "audit" and a["rate"] == 1.0, a
    assert a["failure"]["check"] == "chunk" and a["failure"]["chunk"] == 0, a
    assert a["failure"]["kind"] == "hidden_state_mismatch", a
    evidence = Path(a["bundle"])
    assert evidence.is_file() and evidence.parent == buyer.home / "market-receipts", a
    print(f"audits: caught in {a['ms']:.0f} ms: {a['failure']['detail']}")
    rep = {o["peer_id"]: o["reputation"] for o in
           buyer.get("/api/market/offers?all=true").json()["offers"]}
    assert rep[ids["cheater"]]["audits_failed"] == 1, rep
    listed = cli_json(buyer.home, "market", "audits", "--json")["audits"]
    assert [x["job_id"] for x in listed] == [a["job_id"]], listed

    # Anyone holding the model reaches the same verdict from the bundle alone.
    v = run_cli(buyer.home, "verify", str(evidence), "--json", timeout=120)
    assert v.returncode == 1, v.stdout + v.stderr
    verdict = json.loads(v.stdout)
    assert verdict["ok"] is False and verdict["check"] == "chunk", verdict

    # The buyer never buys from the cheater again, cheaper as it is: the next job goes to
    # the honest seller, whose receipt holds under audit.
    r = client.chat.completions.create(**ASK)
    m = r.model_extra["market"]
    assert m["provider"] == ids["honest"] and m["providers"] == [ids["honest"]], m
    held = wait_for("the audit of the honest job",
                    lambda: [x for x in audits(buyer) if x["provider"] == ids["honest"]], 120)
    assert held[0]["verdict"] == "held" and held[0]["level"] == "audit", held
    v = run_cli(buyer.home, "verify", held[0]["bundle"], "--json", timeout=120)
    assert v.returncode == 0 and json.loads(v.stdout)["ok"] is True, v.stdout + v.stderr

    # The dispute: the buyer re-runs the evidence itself, then opens a dispute on chain
    # with a bond and the bundle's hash; the registry's arbiter (the deployer in local
    # mode: the buyer here too) re-runs it and confirms the fault, which slashes the
    # cheater's stake, the challenger's share and the bond going to the buyer.
    stake = lambda node: int(cli_json(node.home, "wallet", "balance", "--json")["stake"])  # noqa: E731
    assert stake(cheater) > 0
    refused = run_cli(buyer.home, "market", "dispute", held[0]["bundle"], timeout=180)
    assert refused.returncode != 0 and "the job holds" in refused.stderr, refused.stderr
    opened = cli_json(buyer.home, "market", "dispute", str(evidence), "--json", timeout=180)
    assert opened["fault"] == "compute" and opened["failure"]["check"] == "chunk", opened
    d = run_cli(buyer.home, "validate", str(evidence), "--dispute", opened["dispute"], "--json",
                timeout=180)
    assert d.returncode == 1, d.stdout + d.stderr
    out = json.loads(d.stdout)
    assert out["fault"] is True and out["check"] == "chunk", out
    assert out["dispute"] == opened["dispute"], out
    assert out["slashed"].lower() == cheater.get("/api/node").json()["address"].lower(), out
    assert stake(cheater) == 0
    assert stake(honest) > 0
    # Decided once; and a bundle that is not a dispute's evidence is refused for it.
    again = run_cli(buyer.home, "validate", str(evidence), "--dispute", opened["dispute"])
    assert again.returncode != 0 and "not open" in again.stderr, again.stderr
    other = run_cli(buyer.home, "validate", held[0]["bundle"], "--dispute", opened["dispute"])
    assert other.returncode != 0, other.stderr
    # The honest seller's job holds for the arbiter too: nothing is slashed.
    d = run_cli(buyer.home, "validate", held[0]["bundle"], "--json", timeout=180)
    assert d.returncode == 0 and json.loads(d.stdout) == {"fault": False, "slashed": False}, \
        d.stdout + d.stderr
    assert stake(honest) > 0
    # The cheater, slashed, is no longer listed as a staked seller.
    wait_for("the slashed seller to leave the staked offers",
             lambda: [o["peer_id"] for o in buyer.get("/api/market/offers").json()["offers"]]
             == [ids["honest"]], 60)
