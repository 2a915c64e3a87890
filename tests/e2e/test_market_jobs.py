"""Jobs on the open market with real `flurry up` processes on loopback and one local
anvil: a buyer, two staked sellers at different prices and one seller whose stake is
gone. The buyer's call for proposals goes to the staked sellers, the cheaper one is
awarded and paid per token with tickets over the job's stream; the sellers' redeemers
cash the winning tickets, and the buyer's deposit falls by exactly their face values.
Killing the awarded seller mid-answer (SIGKILL) moves the job to the other seller, and
the answer is identical to an uninterrupted one with the same seed.
"""

from __future__ import annotations

import json
import time

import openai
import pytest
import requests

from conftest import p2p_addr, run_cli, wait_for
from test_market import NET, OFFER_BOUND_S, cli_json, rpc_config

# Tickets of a small face value, so that many win in a short test and are cashed at once.
SELLER_CHAIN = 'ticket_face_value_eth = "0.001"\nredeem_interval_secs = 1\n'
PROMPT = [{"role": "user", "content": "Write a long story about a brave knight and a dragon."}]
ASK = dict(model="market/default", messages=PROMPT, seed=11, temperature=0.8, max_tokens=320)


def client(node):
    return openai.OpenAI(base_url=node.url + "/v1", api_key="unused", max_retries=0,
                         timeout=300)


def deposit_wei(node) -> int:
    return int(node.get("/api/wallet").json()["deposit"])


def redeemed(node) -> tuple[int, int]:
    """(count, face value in wei) of the winning tickets a seller has cashed."""
    t = node.get("/api/wallet").json()["tickets"].get("redeemed", {})
    return t.get("count", 0), int(t.get("face_value", "0"))


def test_a_job_is_awarded_to_the_cheapest_staked_seller_paid_per_token_and_survives_its_death(
        node_factory, tmp_path):
    buyer = node_factory(config=NET)
    chain = rpc_config(buyer.home) + SELLER_CHAIN
    sellers = {}
    for name in ("cheap", "dear", "gone"):
        s = node_factory(home=tmp_path / name, config=chain + NET,
                         args=("--bootstrap", p2p_addr(buyer)))
        cli_json(buyer.home, "wallet", "send", s.get("/api/node").json()["address"], "3",
                 "--json")
        cli_json(s.home, "market", "stake", "1", "--json")
        sellers[name] = s
    cheap, dear, gone = sellers["cheap"], sellers["dear"], sellers["gone"]
    ids = {n: s.get("/api/node").json()["peer_id"] for n, s in sellers.items()}
    # ETH per million tokens: a ticket (16 tokens) is worth 0.0002-0.0005 ETH.
    cli_json(gone.home, "market", "sell", "default", "--price", "10", "--json")
    cli_json(cheap.home, "market", "sell", "default", "--price", "20", "--json")
    cli_json(dear.home, "market", "sell", "default", "--price", "30", "--json")
    # The cheapest seller takes its stake back: its offer still circulates, but a buyer
    # must never award it a job.
    cli_json(gone.home, "market", "unbond", "1", "--json")
    wait_for("the buyer to hear all three offers",
             lambda: len(buyer.get("/api/market/offers?all=true").json()["offers"]) == 3,
             OFFER_BOUND_S)
    listed = buyer.get("/api/market/offers").json()["offers"]
    assert [o["peer_id"] for o in listed] == [ids["cheap"], ids["dear"]], listed
    cli_json(buyer.home, "wallet", "deposit", "2", "--json")
    deposit_before = deposit_wei(buyer)

    # A job through the official OpenAI client goes to the cheaper staked seller.
    started = time.monotonic()
    r = client(buyer).chat.completions.create(**ASK)
    print(f"market: a {r.usage.completion_tokens}-token job took "
          f"{time.monotonic() - started:.2f}s")
    m = r.model_extra["market"]
    assert m["provider"] == ids["cheap"] and m["providers"] == [ids["cheap"]], m
    assert m["failovers"] == 0 and m["bids"] == 2, m
    assert m["tokens"] == r.usage.completion_tokens > 100, (m, r.usage)
    assert r.model.startswith("market/"), r.model
    reference = r.choices[0].message.content
    # What was paid covers what the tokens cost at the seller's price, and by no more
    # than the tokens paid ahead (half a ticket) and the prompt estimate.
    paid = int(m["price_paid_wei"])
    price_per_token = 20 * 10**18 // 10**6
    assert paid >= (r.usage.prompt_tokens + r.usage.completion_tokens) * price_per_token, m
    assert paid <= (r.usage.prompt_tokens + r.usage.completion_tokens + 16 + 64) \
        * price_per_token, m
    assert len(m["receipt"]) == 1 and m["receipt"][0]["tickets"], m
    # The buyer holds the model, so the job carried its signed request and the seller's
    # signed receipt, which holds (audited or not, as the lottery drew it).
    assert m["receipts"] is True, m
    checked = wait_for("the job's receipt to be checked",
                       lambda: buyer.get("/api/market/audits").json()["audits"], 60)
    assert [(a["provider"], a["verdict"]) for a in checked] == [(ids["cheap"], "held")], checked
    assert checked[0]["job_id"] == m["job_id"] and checked[0]["rate"] == 0.45, checked
    sold = cli_json(cheap.home, "market", "jobs", "--json")["jobs"]
    assert len(sold) == 1 and sold[0]["role"] == "sold" and sold[0]["peer"] == \
        buyer.get("/api/node").json()["peer_id"], sold
    assert int(sold[0]["paid_wei"]) == paid and sold[0]["tokens"] == m["tokens"], (sold, m)
    assert cli_json(gone.home, "market", "jobs", "--json")["jobs"] == []
    bought = cli_json(buyer.home, "market", "jobs", "--json")["jobs"]
    assert [(j["role"], j["peer"]) for j in bought] == [("bought", ids["cheap"])], bought
    # The jobs are kept across restarts.
    kept = wait_for("the jobs file", lambda: (buyer.home / "market-jobs.json").exists() and
                    json.loads((buyer.home / "market-jobs.json").read_text()), 10)
    assert [j["id"] for j in kept] == [j["id"] for j in bought], kept

    # The seller's redeemer cashes the winners by itself: the buyer's deposit falls by
    # exactly their face values.
    def settled():
        n, face = redeemed(cheap)
        return n > 0 and deposit_before - deposit_wei(buyer) == face and (n, face)
    n, face = wait_for("the seller to redeem its winning tickets", settled, 60)
    print(f"market: {n} winning tickets redeemed, {face} wei")

    # The same request, streamed; the awarded seller dies (SIGKILL) mid-answer, and the
    # job ends on the other seller with the very same text.
    stream = client(buyer).chat.completions.create(**ASK, stream=True)
    text, chunks, last = [], 0, None
    for c in stream:
        last = c
        if c.choices and c.choices[0].delta.content:
            text.append(c.choices[0].delta.content)
            chunks += 1
            if chunks == 5:
                cheap.kill9()
    assert "".join(text) == reference
    m = last.model_extra["market"]
    assert m["providers"] == [ids["cheap"], ids["dear"]] and m["failovers"] == 1, m
    assert [p["provider"] for p in m["receipt"]] == [ids["cheap"], ids["dear"]], m
    assert m["receipt"][0]["tokens"] >= 5 and m["receipt"][1]["tokens"] > 0, m
    assert m["receipt"][0]["tokens"] + m["receipt"][1]["tokens"] == m["tokens"], m
    print(f"market: failover after {m['receipt'][0]['tokens']} tokens")
    # The provider that took over signed a receipt for the whole answer, which holds.
    checked = wait_for("the failover job's receipt to be checked",
                       lambda: [a for a in buyer.get("/api/market/audits").json()["audits"]
                                if a["job_id"] == m["job_id"]], 60)
    assert [(a["provider"], a["verdict"]) for a in checked] == [(ids["dear"], "held")], checked
    # The buyer remembers who failed it: the dead seller's offer (alive until it expires)
    # carries the failure, the other seller its finished job.
    rep = {o["peer_id"]: o["reputation"] for o in buyer.get("/api/market/offers").json()["offers"]}
    counts = {p: (r["jobs"], r["failed"]) for p, r in rep.items()}
    assert counts[ids["cheap"]] == (1, 1) and counts[ids["dear"]] == (1, 0), rep
    # And how fast each generated for it (per token, after the first).
    assert all(0 < rep[ids[n]]["ms_per_token"] < 5000 for n in ("cheap", "dear")), rep

    # What leaves for a stranger is scrubbed by default, and logged as it left; under
    # `[privacy] market = "never"` nothing leaves.
    token = json.loads((buyer.home / "node.json").read_text())["token"]
    admin = {"Authorization": f"Bearer {token}"}
    secret = "Please email dr.elena.vasquez@quickfix.example about the dragon."
    client(buyer).chat.completions.create(
        model="market/default", max_tokens=8, seed=3,
        messages=[{"role": "user", "content": secret}])
    records = requests.get(buyer.url + "/api/egress", headers=admin, timeout=30).json()["records"]
    last = records[-1]
    assert last["destination"].startswith("market") and last["rule"] == "scrubbed", last
    assert "<EMAIL_1>" in last["content"] and "vasquez" not in last["content"], last
    r = requests.put(buyer.url + "/api/privacy", json={"market": "never"}, timeout=30)
    assert r.status_code == 200, r.text
    with pytest.raises(openai.PermissionDeniedError) as e:
        client(buyer).chat.completions.create(
            model="market/default", max_tokens=8,
            messages=[{"role": "user", "content": secret}])
    assert "market" in str(e.value), e.value
    after = requests.get(buyer.url + "/api/egress", headers=admin, timeout=30).json()["records"]
    assert len(after) == len(records)
    requests.put(buyer.url + "/api/privacy", json={"market": "scrubbed"}, timeout=30)

    # The CLI buys too, and says from whom.
    r = run_cli(buyer.home, "ask", "--market", "--seed", "3", "--max-tokens", "8", "Hi")
    assert r.returncode == 0 and ids["dear"] in r.stderr, r.stderr
    out = run_cli(buyer.home, "ask", "--market", "--json", "--seed", "3", "--max-tokens", "8",
                  "Hi")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["market"]["provider"] == ids["dear"]
    # A price cap leaves the dearer seller out (the cheaper one is dead).
    served = len(cli_json(dear.home, "market", "jobs", "--json")["jobs"])
    r = run_cli(buyer.home, "ask", "--market", "--max-price", "25", "--max-tokens", "8", "Hi")
    assert r.returncode != 0 and ("no staked seller" in r.stderr or "bid" in r.stderr), r.stderr
    assert len(cli_json(dear.home, "market", "jobs", "--json")["jobs"]) == served
