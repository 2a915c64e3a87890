"""Peer to peer with real `flurry up` processes on loopback: five nodes find one another
through the DHT, gossip reaches all of them, the network heals after two are killed and
restarted; and a trusted circle runs inference across nodes through the real API
(official openai client) and CLI.

Bounds (documented in docs/p2p.md): every node finds every other within DHT_BOUND_S of
the last start; a gossip message reaches every subscriber within GOSSIP_BOUND_S.
"""

from __future__ import annotations

import json
import time

import openai
import requests
import pytest

from conftest import DEFAULT_MODEL, p2p_addr, run_cli, wait_for

DHT_BOUND_S = 60
GOSSIP_BOUND_S = 30
TOPIC = "flurry/test/1"

NET_CONFIG = """
[chain]
mode = "off"
[api]
max_tokens_limit = 64
[net]
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
autonat_private_addresses = true
"""

# The DHT test needs no model: nodes start faster and lighter without one.
NO_MODEL = '[model]\ndefault = "no-model-in-this-test"\n'


def peer_id(node) -> str:
    return node.get("/api/net/status").json()["peer_id"]


def all_find_all(nodes) -> bool:
    ids = [peer_id(n) for n in nodes]
    for n in nodes:
        for pid in ids:
            if pid == peer_id(n):
                continue
            r = n.post("/api/net/find", json={"peer_id": pid}, timeout=40)
            if r.status_code != 200 or not r.json()["addrs"]:
                return False
    return True


def gossip_reaches(sender, receivers, label: str) -> float:
    """Publishes until every receiver has one of the messages; returns the seconds taken."""
    for n in [sender, *receivers]:
        assert n.post("/api/net/gossip/subscribe", json={"topic": TOPIC}).status_code == 200
    start = time.monotonic()
    attempt = 0

    def delivered():
        nonlocal attempt
        attempt += 1
        r = sender.post("/api/net/gossip", json={"topic": TOPIC, "text": f"{label}-{attempt}"})
        assert r.status_code == 200, r.text
        time.sleep(0.5)
        for n in receivers:
            msgs = n.get("/api/net/gossip", params={"topic": TOPIC}).json()["messages"]
            mine = [m for m in msgs if m["text"].startswith(f"{label}-")]
            if not mine:
                return False
            assert mine[0]["source"] == peer_id(sender)
        return True

    wait_for(f"gossip {label} on every node", delivered, GOSSIP_BOUND_S)
    return time.monotonic() - start


def test_five_nodes_find_each_other_gossip_and_heal(node_factory, tmp_path):
    config = NET_CONFIG + NO_MODEL
    first = node_factory(config=config)
    nodes = [first]
    for i in range(1, 5):
        # Each joins through the first node and the one before it.
        boots = {p2p_addr(first), p2p_addr(nodes[-1])}
        args = tuple(x for b in sorted(boots) for x in ("--bootstrap", b))
        nodes.append(node_factory(config=config, args=args))
    started = time.monotonic()
    wait_for("every node to find every other through the DHT", lambda: all_find_all(nodes),
             DHT_BOUND_S)
    found_s = time.monotonic() - started
    for n in nodes:
        s = n.get("/api/net/status").json()
        assert s["routing_table"] >= 1, s
        assert s["connected"] >= 1, s
    gossip_s = gossip_reaches(nodes[2], [n for i, n in enumerate(nodes) if i != 2], "hello")

    # Kill two nodes outright, restart them (same key, new ports): the network heals.
    for n in nodes[3:]:
        n.kill9()
    restarted = []
    for n in nodes[3:]:
        r = node_factory(home=n.home, config=None,
                         args=("--bootstrap", p2p_addr(first)))
        restarted.append(r)
    healed_nodes = nodes[:3] + restarted
    started = time.monotonic()
    wait_for("the network to heal after two nodes restarted",
             lambda: all_find_all(healed_nodes), DHT_BOUND_S)
    heal_s = time.monotonic() - started
    gossip_reaches(restarted[0], [n for n in healed_nodes if n is not restarted[0]], "again")
    print(f"p2p: 5 nodes found each other in {found_s:.1f}s, gossip {gossip_s:.1f}s, "
          f"healed in {heal_s:.1f}s")


# The default reachability settings: AutoNAT counts only global addresses, so on loopback
# no node is ever found public and none becomes a DHT server.
PRIVATE_NET_CONFIG = NET_CONFIG.replace("autonat_private_addresses = true\n", "")


def test_nodes_that_share_only_a_bootstrap_peer_reach_each_other_by_peer_id(node_factory):
    """Three nodes that only share a `--bootstrap` peer, none of them publicly reachable:
    the DHT lists none of them, yet each finds the others by peer id alone (signed peer
    records kept by the bootstrap peer) and a circle request reaches one by its id."""
    hub = node_factory(config=PRIVATE_NET_CONFIG + NO_MODEL)
    boot = ("--bootstrap", p2p_addr(hub))
    alice = node_factory(config=PRIVATE_NET_CONFIG, args=boot)
    carol = node_factory(config=PRIVATE_NET_CONFIG, args=boot)
    dave = node_factory(config=PRIVATE_NET_CONFIG + NO_MODEL, args=boot)
    a_id, c_id = peer_id(alice), peer_id(carol)
    nodes = [alice, carol, dave]
    started = time.monotonic()
    wait_for("each node to find the others by peer id", lambda: all_find_all(nodes),
             DHT_BOUND_S)
    print(f"p2p: private nodes found each other in {time.monotonic() - started:.1f}s")
    assert hub.get("/api/net/status").json()["nat"] != "public"
    found = alice.post("/api/net/find", json={"peer_id": c_id}, timeout=40).json()["addrs"]
    carol_listen = carol.get("/api/net/status").json()["listen"]
    assert any(a.startswith(carol_listen[0]) for a in found), (found, carol_listen)

    # The circle by peer id alone: no address given anywhere.
    assert run_cli(carol.home, "circle", "add", a_id, "--name", "alice").returncode == 0
    assert run_cli(alice.home, "circle", "add", c_id, "--name", "carol").returncode == 0
    out = run_cli(alice.home, "ask", "--peer", "carol", "--json", "-n", "8", "--seed", "1",
                  "Say hello.", timeout=120)
    assert out.returncode == 0, out.stderr
    v = json.loads(out.stdout)
    assert v["peer"]["peer_id"] == c_id and v["text"].strip(), v


@pytest.fixture
def circle(node_factory):
    """Two nodes with the default model, connected on loopback; returns (alice, bob)."""
    bob = node_factory(config=NET_CONFIG)
    alice = node_factory(config=NET_CONFIG, args=("--bootstrap", p2p_addr(bob)))
    wait_for("alice to connect to bob",
             lambda: any(p["peer_id"] == peer_id(bob)
                         for p in alice.get("/api/net/peers").json()["peers"]), 30)
    return alice, bob


def test_circle_inference_through_the_api_and_cli(circle):
    alice, bob = circle
    a_id, b_id = peer_id(alice), peer_id(bob)

    # Alice names bob in her circle; bob has not authorised her yet.
    out = run_cli(alice.home, "circle", "add", b_id, "--name", "bob")
    assert out.returncode == 0, out.stderr
    client = openai.OpenAI(base_url=alice.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as e:
        client.chat.completions.create(model="bob", max_tokens=8,
                                       messages=[{"role": "user", "content": "hi"}])
    assert "not in this node's trusted circle" in str(e.value)
    assert f"flurry circle add {a_id}" in str(e.value)

    out = run_cli(bob.home, "circle", "add", a_id, "--name", "alice")
    assert out.returncode == 0, out.stderr
    listed = json.loads(run_cli(bob.home, "circle", "list", "--json").stdout)
    assert [m["name"] for m in listed["members"]] == ["alice"]

    # The official client, model written PEER/MODEL; the answer says who ran it.
    r = client.chat.completions.create(
        model=f"bob/{DEFAULT_MODEL}", max_tokens=12, temperature=0, seed=7,
        messages=[{"role": "user", "content": "What is the capital of France?"}])
    text = r.choices[0].message.content
    assert text.strip()
    assert r.model == DEFAULT_MODEL
    assert r.usage.completion_tokens >= 1
    extra = r.model_extra
    assert extra["peer"]["peer_id"] == b_id and extra["peer"]["name"] == "bob"
    assert extra["peer"]["relayed"] is False

    # Bob signed a receipt for the job; alice, who holds the model, checked that bob ran
    # the request she sent, countersigned it, and keeps the bundle, which any node with
    # the model verifies bit for bit.
    receipts = wait_for("alice's receipt of the circle job",
                        lambda: list((alice.home / "circle-receipts").glob("*.json")), 30)
    assert len(receipts) == 1, receipts
    v = run_cli(bob.home, "verify", str(receipts[0]), "--json", timeout=120)
    assert v.returncode == 0 and json.loads(v.stdout)["ok"] is True, v.stdout + v.stderr

    # Same request run on bob itself: the same seed gives the same text.
    local = openai.OpenAI(base_url=bob.url + "/v1", api_key="unused", max_retries=0)
    r2 = local.chat.completions.create(
        model=DEFAULT_MODEL, max_tokens=12, temperature=0, seed=7, extra_body={"memory": False},
        messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert r2.choices[0].message.content == text

    # Streaming, with the `peer` field instead of a prefixed model.
    chunks = list(client.chat.completions.create(
        model="default", max_tokens=12, temperature=0, seed=7, stream=True,
        extra_body={"peer": "bob"},
        messages=[{"role": "user", "content": "What is the capital of France?"}]))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text

    # Every request sent was logged, by destination and purpose (the refused one too: its
    # bytes left the node before bob refused it); bob's log is untouched.
    eg = json.loads(run_cli(alice.home, "egress", "--json").stdout)
    sent = [x for x in eg["records"] if b_id in x["destination"]]
    assert len(sent) == 3 and all(x["purpose"] == "inference request" and x["bytes"] > 0
                                  for x in sent), eg
    assert json.loads(run_cli(bob.home, "egress", "--json").stdout)["records"] == []

    # The CLI: ask --peer, peers, net status.
    out = run_cli(alice.home, "ask", "--peer", "bob", "--json", "-n", "8", "--seed", "1",
                  "Say hello.", timeout=120)
    assert out.returncode == 0, out.stderr
    v = json.loads(out.stdout)
    assert v["text"].strip() and v["peer"]["peer_id"] == b_id and v["relayed"] is False
    assert v["tokens_per_s"] > 0
    peers = json.loads(run_cli(alice.home, "peers", "--json").stdout)["peers"]
    pb = next(p for p in peers if p["peer_id"] == b_id)
    assert pb["name"] == "bob" and pb["relayed"] is False and pb["agent"].startswith("flurry/")
    assert pb["addresses"][0].startswith("/ip4/127.0.0.1/tcp/")
    out = run_cli(alice.home, "ask", "--peer", "bob", "-n", "4", "Hi", timeout=120)
    assert out.returncode == 0 and out.stdout.strip(), out.stderr
    assert f"answered by bob {b_id} over a direct connection" in out.stderr
    human = run_cli(alice.home, "peers").stdout
    assert "bob" in human and "direct" in human
    status = run_cli(alice.home, "net", "status").stdout
    assert a_id in status and "DHT routing" in status

    # Unknown names are refused before anything is sent; removal takes effect at once.
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="default", extra_body={"peer": "carol"},
                                       messages=[{"role": "user", "content": "hi"}])
    assert "flurry circle add" in str(e.value)
    assert run_cli(bob.home, "circle", "remove", "alice").returncode == 0
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="bob", max_tokens=8,
                                       messages=[{"role": "user", "content": "hi"}])


def test_network_routes_reject_bad_input(circle):
    alice, _ = circle
    assert alice.post("/api/net/dial", json={"addr": "not a multiaddr"}).status_code == 400
    assert alice.post("/api/net/find", json={"peer_id": "nope"}).status_code == 400
    r = alice.post("/api/circle", json={"peer_id": peer_id(alice), "name": "me"})
    assert r.status_code == 400 and "own peer id" in r.json()["error"]["message"]
    r = alice.post("/api/circle", json={"peer_id": "xyz", "name": "x"})
    assert r.status_code == 400
    r = alice.post("/api/net/gossip", json={"topic": TOPIC, "text": "x" * (64 * 1024 + 1)})
    assert r.status_code == 400 and "limit" in r.json()["error"]["message"]
    assert alice.delete("/api/circle/nobody").status_code == 404
    status = alice.get("/api/net/status").json()
    assert set(status) >= {"peer_id", "listen", "external", "nat", "reservations",
                           "relayed_addrs", "routing_table", "connected", "relay_server",
                           "diagnosis"}


def metric(node, name: str) -> float:
    for line in node.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_privacy_policy_decides_what_reaches_a_circle_peer(circle):
    """The owner's [privacy] rule for the circle, set through the API as the web UI does:
    `scrubbed` sends placeholders (the egress log shows exactly what left, encrypted at
    rest), a request marked `local-only` and the rule `never` send nothing at all."""
    alice, bob = circle
    a_id, b_id = peer_id(alice), peer_id(bob)
    assert run_cli(alice.home, "circle", "add", b_id, "--name", "bob").returncode == 0
    assert run_cli(bob.home, "circle", "add", a_id, "--name", "alice").returncode == 0
    token = json.loads((alice.home / "node.json").read_text())["token"]
    admin = {"Authorization": f"Bearer {token}"}

    r = requests.put(alice.url + "/api/privacy", json={"circle": "scrubbed"}, timeout=30)
    assert r.status_code == 200 and r.json()["circle"] == "scrubbed", r.text
    client = openai.OpenAI(base_url=alice.url + "/v1", api_key="unused", max_retries=0)
    secret = "Please email dr.elena.vasquez@quickfix.example or call +44 20 7946 0958."
    r = client.chat.completions.create(
        model="bob", max_tokens=8, temperature=0, seed=3,
        messages=[{"role": "user", "content": secret}])
    assert r.model_extra["peer"]["peer_id"] == b_id
    eg = requests.get(alice.url + "/api/egress", headers=admin, timeout=30).json()
    last = eg["records"][-1]
    assert b_id in last["destination"] and last["rule"] == "scrubbed", last
    assert "<EMAIL_1>" in last["content"] and "<PHONE_1>" in last["content"], last
    assert "vasquez" not in last["content"] and "7946" not in last["content"], last
    cli = json.loads(run_cli(alice.home, "egress", "--json").stdout)
    assert cli["records"][-1]["content"] == last["content"]
    raw = (alice.home / "egress.db").read_bytes()
    assert b"EMAIL_1" not in raw and b"inference request" not in raw, "egress.db is plaintext"

    # Kept local: refused with what to do; nothing logged, bob served nothing.
    sent = len(eg["records"])
    served = metric(bob, "flurry_prompt_tokens_total")
    with pytest.raises(openai.PermissionDeniedError) as e:
        client.chat.completions.create(
            model="bob", max_tokens=8, extra_body={"privacy": "local-only"},
            messages=[{"role": "user", "content": secret}])
    assert "local-only" in str(e.value) and "without a peer" in str(e.value)
    r = requests.put(alice.url + "/api/privacy", json={"circle": "never"}, timeout=30)
    assert r.status_code == 200, r.text
    r = requests.post(alice.url + "/api/chat", timeout=60, json={
        "model": "bob", "stream": False, "messages": [{"role": "user", "content": secret}]})
    assert r.status_code == 403 and "never" in r.json()["error"], r.text
    eg = requests.get(alice.url + "/api/egress", headers=admin, timeout=30).json()
    assert len(eg["records"]) == sent, eg["records"][sent:]
    assert metric(bob, "flurry_prompt_tokens_total") == served

    # The same request without a peer runs here, whatever the rule.
    r = client.chat.completions.create(
        model=DEFAULT_MODEL, max_tokens=4, extra_body={"privacy": "local-only"},
        messages=[{"role": "user", "content": secret}])
    assert (r.model_extra or {}).get("peer") is None, r.model_extra
