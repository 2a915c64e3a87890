"""Model sharing between real `flurry up` nodes on loopback (docs/sharing.md).

Three nodes publish SmolLM2 with each peer paced to PACE bytes a second; a fourth, with
an empty model store, pulls it: from one peer, then from all three (at least twice as
fast), byte-identical and with the right ModelId. The puller is killed in the middle of
a pull and resumes from what it had verified. The official `ollama` client's `pull()`
streams progress and leaves a model that answers. A stranger that publishes another
model under the same name makes the name ambiguous: the pull is refused, naming both.
(A peer that sends bad bytes is banned: `crates/flurry-share/tests/pull.rs`, with a
hostile server that real nodes do not contain.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

import ollama

from conftest import DEFAULT_MODEL, models_dir, p2p_addr, run_cli, wait_for

MODEL_FILE = DEFAULT_MODEL + ".gguf"
PACE = 24 << 20  # bytes per second per peer

CONFIG = f"""
[chain]
mode = "off"
[api]
max_tokens_limit = 16
[net]
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
autonat_private_addresses = true
[share]
bytes_per_peer_per_min = {PACE * 60}
"""
NO_MODEL = '[model]\ndefault = "no-model-in-this-test"\n'


def digest(path) -> bytes:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).digest()


def peer_id(node) -> str:
    return node.get("/api/net/status").json()["peer_id"]


def announced(node) -> list[dict]:
    r = node.get("/api/models/announced")
    assert r.status_code == 200, r.text
    return r.json()["models"]


def pull(node, model: str, **extra) -> dict:
    r = node.post("/api/pull", json={"model": model, "stream": False, **extra}, timeout=300)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return body


def test_a_model_is_pulled_from_three_publishers_verified_resumed_and_named_safely(
    node_factory, tmp_path
):
    store = tmp_path / "store"
    store.mkdir()
    source = os.path.join(models_dir(), MODEL_FILE)
    source_digest = digest(source)
    size = os.path.getsize(source)

    pubs = [node_factory(config=CONFIG)]
    for _ in range(2):
        pubs.append(node_factory(config=CONFIG, args=("--bootstrap", p2p_addr(pubs[0]))))
    boots = tuple(x for p in pubs for x in ("--bootstrap", p2p_addr(p)))
    puller = node_factory(config=CONFIG + NO_MODEL, args=boots,
                          env={"FLURRY_MODELS": str(store)})
    pub_ids = [peer_id(p) for p in pubs]
    r = run_cli(pubs[0].home, "model", "info", DEFAULT_MODEL, "--json")
    assert r.returncode == 0, r.stderr
    want_id = json.loads(r.stdout)["model_id"]

    # Publish through the CLI; announcements go out at once and every minute, so publish
    # again (idempotent) until the gossip mesh has carried all three to the puller.
    def heard_all():
        for p in pubs:
            r = run_cli(p.home, "model", "publish", DEFAULT_MODEL, "--json")
            assert r.returncode == 0, r.stderr
        got = {a["publisher"] for a in announced(puller) if a["model"] == want_id}
        return got == set(pub_ids)

    wait_for("three announcements at the puller", heard_all, 60, every=2)
    a = next(a for a in announced(puller) if a["model"] == want_id)
    assert a["name"] == DEFAULT_MODEL and a["size"] == size, a
    listed = json.loads(run_cli(pubs[0].home, "model", "published", "--json").stdout)
    assert [m["model"] for m in listed] == [want_id]

    # From one peer, then from three: byte-identical, and paced peers add up.
    t = time.monotonic()
    one = pull(puller, DEFAULT_MODEL, **{"from": pub_ids[0]})
    from_one = time.monotonic() - t
    landed = store / MODEL_FILE
    assert one["model_id"] == want_id and digest(landed) == source_digest
    assert list(one["pulled"]["from"]) == [pub_ids[0]]
    landed.unlink()
    shutil.rmtree(store / ".ids", ignore_errors=True)
    t = time.monotonic()
    three = pull(puller, DEFAULT_MODEL)
    from_three = time.monotonic() - t
    assert three["model_id"] == want_id and digest(landed) == source_digest
    assert set(three["pulled"]["from"]) == set(pub_ids), three["pulled"]
    speedup = from_one / from_three
    print(f"share: {size} bytes paced at {PACE >> 20} MiB/s per peer: 1 peer {from_one:.2f} s, "
          f"3 peers {from_three:.2f} s ({speedup:.2f}x)")
    assert speedup >= 2.0, (from_one, from_three)

    # Pulling what the store has is a no-op.
    again = pull(puller, want_id)
    assert again["pulled"] is None

    # Kill the puller's node in the middle of a pull from one peer, restart it, pull again.
    landed.unlink()
    shutil.rmtree(store / ".ids", ignore_errors=True)
    with puller.post("/api/pull", json={"model": want_id, "from": pub_ids[0]},
                     stream=True, timeout=120) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            p = json.loads(line)
            assert "error" not in p, p
            if p.get("completed", 0) > size // 3:
                puller.kill9()
                break
    part = store / ".pulls" / f"{want_id}.part"
    assert part.exists()
    puller = node_factory(home=puller.home, config=None, args=boots,
                          env={"FLURRY_MODELS": str(store)})
    body = pull(puller, want_id, **{"from": pub_ids[0]})
    resumed = body["pulled"]
    # Pulled by id before any announcement was heard again: no name, so it lands
    # under its id.
    by_id = store / f"{body['model']}.gguf"
    assert body["model"] == f"model-{want_id[:12]}", body
    assert digest(by_id) == source_digest
    assert size // 3 <= resumed["resumed"] < size, resumed
    assert resumed["downloaded"] == size - resumed["resumed"], resumed
    print(f"share: resumed after {resumed['resumed']} of {size} bytes; "
          f"{resumed['downloaded']} downloaded again "
          f"({100 * resumed['downloaded'] / size:.0f}%)")

    # The official ollama client pulls (streaming progress) and the model answers.
    by_id.unlink()
    wait_for("announcements after the restart", heard_all, 90, every=2)
    shutil.rmtree(store / ".ids", ignore_errors=True)
    client = ollama.Client(host=puller.url)
    statuses = [p.status for p in client.pull(DEFAULT_MODEL, stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success", statuses
    assert any(s.startswith("pulling blake3:") for s in statuses), statuses
    assert digest(landed) == source_digest
    out = client.generate(model=DEFAULT_MODEL, prompt="Say hi.", options={"num_predict": 4})
    assert out.done and out.eval_count >= 1

    # A stranger publishes Gemma under SmolLM2's name: the name is ambiguous, and the
    # honest publisher's model is still reachable by id or --from.
    fake_store = tmp_path / "fake-store"
    fake_store.mkdir()
    os.symlink(os.path.join(models_dir(), "gemma-3-270m-q4_k_m.gguf"), fake_store / MODEL_FILE)
    stranger = node_factory(config=CONFIG + NO_MODEL, args=boots,
                            env={"FLURRY_MODELS": str(fake_store)})

    def conflict_heard():
        r = run_cli(stranger.home, "model", "publish", DEFAULT_MODEL)
        assert r.returncode == 0, r.stderr
        return any(a["name"] == DEFAULT_MODEL and a["model"] != want_id
                   for a in announced(puller))

    wait_for("the stranger's announcement", conflict_heard, 60, every=2)
    landed.unlink()
    shutil.rmtree(store / ".ids", ignore_errors=True)
    r = puller.post("/api/pull", json={"model": DEFAULT_MODEL, "stream": False})
    assert r.status_code == 404, r.text
    err = r.json()["error"]
    assert "different models" in err and want_id in err and peer_id(stranger) in err, err
    cli = run_cli(puller.home, "model", "pull", DEFAULT_MODEL, timeout=120)
    assert cli.returncode != 0 and "--from" in cli.stderr, cli.stderr
    cli = run_cli(puller.home, "model", "pull", DEFAULT_MODEL, "--from", pub_ids[1], timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert digest(landed) == source_digest


def test_pull_and_publish_refuse_bad_requests(node_factory, tmp_path):
    node = node_factory(config=CONFIG + NO_MODEL, env={"FLURRY_MODELS": str(tmp_path)})
    r = node.post("/api/pull", json={"model": "nobody-announced-this"})
    assert r.status_code == 404 and "announced" in r.json()["error"], r.text
    r = node.post("/api/pull", json={"model": "x", "path": "/etc/passwd"})
    assert r.status_code == 400, r.text
    r = node.post("/api/pull", json={})
    assert r.status_code == 400, r.text
    r = node.post("/api/models/publish", json={"model": "../../etc/passwd"})
    assert r.status_code == 404, r.text
    # Cross-site: a page cannot start a pull with a form post.
    r = node.post("/api/pull", data="model=x", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"})
    assert r.status_code == 403, r.text
    cli = run_cli(node.home, "model", "pull", "f" * 64, timeout=60)
    assert cli.returncode != 0 and "no peer" in cli.stderr, cli.stderr
