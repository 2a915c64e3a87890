"""The open market's offers with real `flurry up` processes on loopback and one local
anvil: staked sellers sign and gossip their offers, a buyer lists them cheapest first
with each seller's stake read from the chain; a seller without stake is refused, and
offers replayed or tampered with by a hostile peer are not believed.
"""

from __future__ import annotations

import json
import time

from conftest import DEFAULT_MODEL, p2p_addr, run_cli, wait_for

NET = """
[net]
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
"""

OFFER_BOUND_S = 75  # sellers publish at once and again every 30 s


def cli_json(home, *args, timeout=120):
    r = run_cli(home, *args, timeout=timeout)
    assert r.returncode == 0, f"{args}: {r.stdout}\n{r.stderr}"
    return json.loads(r.stdout)


def rpc_config(home) -> str:
    """A [chain] section that uses the chain and contracts of the node at `home`."""
    local = json.loads((home / "chain" / "local.json").read_text())
    c = cli_json(home, "wallet", "balance", "--json")["contracts"]
    return (f'[chain]\nmode = "rpc"\nrpc_url = "{local["url"]}"\n'
            f'ticket_broker = "{c["ticket_broker"]}"\n'
            f'provider_registry = "{c["provider_registry"]}"\n'
            f'model_registry = "{c["model_registry"]}"\n')


def test_offers_of_staked_sellers_reach_a_buyer(node_factory, tmp_path):
    buyer = node_factory(config=NET)
    chain = rpc_config(buyer.home)
    sellers = {}
    for name in ("cheap", "dear", "unstaked"):
        s = node_factory(home=tmp_path / name, config=chain + NET,
                         args=("--bootstrap", p2p_addr(buyer)))
        cli_json(buyer.home, "wallet", "send", s.get("/api/node").json()["address"], "3",
                 "--json")
        sellers[name] = s
    cheap, dear, unstaked = sellers["cheap"], sellers["dear"], sellers["unstaked"]
    for s in (cheap, dear):
        cli_json(s.home, "market", "stake", "1", "--json")

    # Selling without stake is refused, with what to do.
    r = run_cli(unstaked.home, "market", "sell", "default", "--price", "0.001")
    assert r.returncode != 0 and "flurry market stake" in r.stderr, r.stderr
    assert unstaked.post("/api/market/sell", json={"model": "default", "price": "0.001"}
                         ).status_code == 409

    sold = cli_json(cheap.home, "market", "sell", "default", "--price", "0.001", "--json")
    cli_json(dear.home, "market", "sell", "default", "--price", "0.005",
             "--prompt-price", "0.002", "--max-jobs", "2", "--json")
    info = cli_json(cheap.home, "model", "info", DEFAULT_MODEL, "--json")
    model_id = sold["offer"]["offer"]["model_id"]
    assert model_id == info["model_id"], (sold, info)

    started = time.monotonic()
    offers = wait_for("the buyer to hear both offers",
                      lambda: (lambda o: o if len(o) == 2 else None)(
                          buyer.get("/api/market/offers").json()["offers"]),
                      OFFER_BOUND_S)
    print(f"market: offers reached the buyer in {time.monotonic() - started:.1f}s")
    ids = {n: s.get("/api/node").json() for n, s in sellers.items()}
    assert [o["peer_id"] for o in offers] == [ids["cheap"]["peer_id"], ids["dear"]["peer_id"]]
    first, second = offers
    assert first["address"] == ids["cheap"]["address"]
    assert first["price_wei_per_mtok"] == str(10**15)
    assert second["price_wei_per_mtok"] == str(5 * 10**15)
    assert second["prompt_price_wei_per_mtok"] == str(2 * 10**15) and second["max_jobs"] == 2
    assert all(o["staked"] and o["stake_wei"] == str(10**18) and o["model_id"] == model_id
               and o["profile"] == "flurry-det-1" and not o["mine"] for o in offers), offers
    # Both sellers are connected to the buyer: the listing shows the measured round trip.
    wait_for("ping round trips to both sellers",
             lambda: all(isinstance(o.get("rtt_ms"), float)
                         for o in buyer.get("/api/market/offers").json()["offers"]), 30)
    # The CLI lists the same, and filters by model.
    listed = cli_json(buyer.home, "market", "offers", "--model", model_id, "--json")["offers"]
    assert [o["peer_id"] for o in listed] == [o["peer_id"] for o in offers]
    assert cli_json(buyer.home, "market", "offers", "--model", "nothing", "--json") == {
        "offers": []}

    # A hostile peer replays the cheap seller's genuine offer as its own publication, and
    # publishes a copy with the price cut after signing: neither is believed.
    before = buyer.get("/api/market").json()["refused"]
    genuine = json.dumps(sold["offer"])
    tampered = json.loads(genuine)
    tampered["offer"]["price_wei_per_mtok"] = "1"
    tampered["offer"]["seq"] += 1
    for i, text in enumerate((genuine, json.dumps(tampered), "not an offer")):
        r = unstaked.post("/api/net/gossip",
                          json={"topic": "flurry/market/offers/1", "text": text})
        # Once cut off, the hostile node has nobody left to publish to.
        assert r.status_code == 200 or (i > 0 and "NoPeersSubscribedToTopic" in r.text), r.text
    # Gossip validation refuses them (not forwarded); the second invalid message takes the
    # sender to the graylist and the buyer disconnects it.
    wait_for("the buyer to refuse the hostile offers",
             lambda: buyer.get("/api/market").json()["refused"] >= before + 2, 30)
    hostile = ids["unstaked"]["peer_id"]
    wait_for("the buyer to disconnect the hostile node",
             lambda: all(p["peer_id"] != hostile
                         for p in buyer.get("/api/net/peers").json()["peers"]), 30)
    now = buyer.get("/api/market/offers").json()["offers"]
    assert [(o["peer_id"], o["price_wei_per_mtok"]) for o in now] == [
        (o["peer_id"], o["price_wei_per_mtok"]) for o in offers], now

    # A sale survives a crash and restart: the node sells again what it sold, once its
    # stake is checked again.
    dear.kill9()
    dear = node_factory(home=dear.home, config=None, args=("--bootstrap", p2p_addr(buyer)))
    again = wait_for("the restarted seller to sell again",
                     lambda: cli_json(dear.home, "market", "status", "--json")["selling"], 60)
    assert again[0]["offer"]["price_wei_per_mtok"] == str(5 * 10**15), again

    # Stopping: the seller sells nothing any more, also after a restart.
    assert cli_json(cheap.home, "market", "status", "--json")["selling"]
    out = run_cli(cheap.home, "market", "stop")
    assert out.returncode == 0 and "Stopped selling" in out.stdout, out.stdout
    assert cli_json(cheap.home, "market", "status", "--json")["selling"] == []
    assert json.loads((cheap.home / "market.json").read_text()) == []
    # Offers routes: a bad query and a bad body are clear errors; selling needs admin.
    assert buyer.get("/api/market/offers?bogus=1").status_code == 400
    r = cheap.post("/api/market/sell", json={"model": "default", "price": "lots"})
    assert r.status_code == 400 and "price" in r.text
