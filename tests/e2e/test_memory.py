"""Answers from the private memory: ingest through the API, then ask through the official
`openai` client, the Ollama API, conversations and the CLI; citations name the source."""

import base64
import json
import textwrap

import pytest
from openai import OpenAI

from conftest import DEFAULT_MODEL, run_cli

QUESTION = "What is the gate code for the boiler technician?"
NO_CHAIN = '[chain]\nmode = "off"\n'

ALICE = textwrap.dedent(
    """\
    From: Alice Martin <alice@example.org>
    To: Bob <bob@example.org>
    Subject: Boiler service on Thursday
    Date: Tue, 10 Nov 2026 09:30:00 +0100
    MIME-Version: 1.0
    Content-Type: text/plain; charset=utf-8
    Content-Transfer-Encoding: quoted-printable

    Hi Bob, the technician from Calor=C3=A9 comes Thursday at 8 to service the =
    boiler. The gate code is 4471.
    Alice
    """
).replace("\n", "\r\n")


def chinese_mail() -> bytes:
    subject = base64.b64encode("周五聚餐".encode("gb2312")).decode()
    body = base64.b64encode("周五晚上七点在老地方聚餐，记得带伞。".encode("gb2312")).decode()
    return (
        "From: Li Wei <liwei@example.cn>\r\nSubject: =?GB2312?B?" + subject + "?=\r\n"
        "Date: Wed, 11 Nov 2026 14:00:00 +0800\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + body + "\r\n"
    ).encode()


@pytest.fixture(scope="module")
def memory_node(tmp_path_factory):
    from conftest import Node

    root = tmp_path_factory.mktemp("memory")
    data = root / "data"
    (data / "mail").mkdir(parents=True)
    (data / "notes").mkdir()
    (data / "mail" / "alice.eml").write_text(ALICE, newline="")
    (data / "mail" / "liwei.eml").write_bytes(chinese_mail())
    (data / "notes" / "bread.md").write_text(
        "# Sourdough\n\nMix flour, water and starter. Bake at 230 degrees for 40 minutes.\n"
    )
    (data / "notes" / "bike.txt").write_text("The bicycle chain needs oil every 300 km.\n")
    node = Node(root / "home", config=NO_CHAIN)
    try:
        node.start()
        r = node.post("/api/memory/ingest", json={"paths": [str(data)]})
        assert r.status_code == 200, r.text
        summary = r.json()
        assert summary["added"] == 4 and summary["failed"] == [], summary
        node.data = data
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def client(memory_node):
    return OpenAI(base_url=memory_node.url + "/v1", api_key="unused", max_retries=0, timeout=180)


def ask(client, content=QUESTION, **kw):
    return client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": content}],
        temperature=0,
        seed=1,
        max_tokens=60,
        **kw,
    )


def test_the_answer_cites_the_mail_it_came_from(client, memory_node):
    r = ask(client)
    cites = r.model_extra["citations"]
    assert cites, "no citation for a question the memory answers"
    first = cites[0]
    assert first["document"] == str(memory_node.data / "mail" / "alice.eml")
    assert first["title"] == "Boiler service on Thursday"
    assert first["index"] == 1 and first["chunk"] == 0
    assert 0 <= first["start"] < first["end"]
    assert "4471" in r.choices[0].message.content, r.choices[0].message.content
    # The citation leads to the passage.
    doc = memory_node.get(f"/api/memory/documents/{first['doc_id']}").json()
    assert doc["kind"] == "email" and doc["sender"] == "Alice Martin <alice@example.org>"
    assert "4471" in doc["chunks"][first["chunk"]]["text"]


def test_memory_can_be_switched_off_per_request(client):
    r = ask(client, extra_body={"memory": False})
    assert r.model_extra["citations"] == []
    assert "4471" not in r.choices[0].message.content


def test_streaming_carries_citations_on_the_last_chunk(client, memory_node):
    stream = ask(client, stream=True)
    text, cites = [], None
    for chunk in stream:
        for c in chunk.choices:
            if c.delta.content:
                text.append(c.delta.content)
            if c.finish_reason:
                cites = chunk.model_extra.get("citations")
    assert cites and cites[0]["document"].endswith("alice.eml"), cites
    assert "".join(text) == ask(client).choices[0].message.content


def test_unrelated_questions_use_no_memory(client):
    r = ask(client, "Tell me a joke about cats.")
    assert r.model_extra["citations"] == []


def test_chinese_mail_is_found(client, memory_node):
    r = ask(client, "周五聚餐在几点？")
    docs = [c["document"] for c in r.model_extra["citations"]]
    assert docs and docs[0].endswith("liwei.eml"), docs


def test_ollama_chat_returns_citations_when_done(memory_node):
    body = {
        "model": DEFAULT_MODEL,
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": False,
        "options": {"temperature": 0, "seed": 1, "num_predict": 40},
    }
    v = memory_node.post("/api/chat", json=body).json()
    assert v["done"] is True
    assert v["citations"][0]["document"].endswith("alice.eml"), v
    v = memory_node.post("/api/chat", json={**body, "memory": False}).json()
    assert "citations" not in v


def test_conversation_switch_and_stored_citations(memory_node):
    c = memory_node.post("/api/conversations", json={"memory": False}).json()
    assert c["memory"] is False

    def turn():
        r = memory_node.post(
            f"/api/conversations/{c['id']}/messages",
            json={"content": QUESTION, "temperature": 0, "seed": 1, "max_tokens": 30},
            stream=True,
        )
        assert r.status_code == 200, r.text
        # SSE is UTF-8 by definition (requests would guess Latin-1 from the content type).
        lines = (raw.decode("utf-8") for raw in r.iter_lines())
        events = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
        assert events[0]["type"] == "start" and events[-1]["type"] == "done", events[-1]
        return events[0]["citations"]

    assert turn() == []
    p = memory_node.patch(f"/api/conversations/{c['id']}", json={"memory": True})
    assert p.status_code == 200 and p.json()["memory"] is True, p.text
    cites = turn()
    assert cites and cites[0]["document"].endswith("alice.eml")
    stored = memory_node.get(f"/api/conversations/{c['id']}").json()
    answers = [m for m in stored["messages"] if m["role"] == "assistant"]
    assert "citations" not in answers[0]
    assert answers[1]["citations"] == cites
    bad = memory_node.patch(f"/api/conversations/{c['id']}", json={"memory": "yes"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "memory", bad.text


def test_cli_ask_lists_sources(memory_node):
    out = run_cli(memory_node.home, "ask", "--temperature", "0", "-n", "30", QUESTION, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "Sources from your memory" in out.stderr and "alice.eml" in out.stderr, out.stderr
    out = run_cli(memory_node.home, "ask", "--no-memory", "-n", "10", QUESTION, timeout=180)
    assert out.returncode == 0 and "Sources" not in out.stderr, out.stderr
    out = run_cli(memory_node.home, "ask", "--json", "-n", "10", QUESTION, timeout=180)
    v = json.loads(out.stdout)
    assert v["citations"][0]["document"].endswith("alice.eml"), v


def test_ingest_rejects_bad_paths(memory_node):
    r = memory_node.post("/api/memory/ingest", json={"paths": ["relative/dir"]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "paths[0]", r.text
    r = memory_node.post("/api/memory/ingest", json={"paths": ["/nonexistent/flurry-xyz"]})
    assert r.status_code == 400 and "does not exist" in r.json()["error"]["message"], r.text
    r = memory_node.post("/api/memory/ingest", json={"paths": []})
    assert r.status_code == 400, r.text
    # Re-ingesting unchanged files embeds nothing.
    r = memory_node.post("/api/memory/ingest", json={"paths": [str(memory_node.data)]})
    assert r.json()["unchanged"] == 4 and r.json()["added"] == 0, r.text


def test_forgotten_mail_is_no_longer_cited(client, memory_node):
    docs = memory_node.get("/api/memory/documents").json()["documents"]
    alice = next(d for d in docs if d["path"].endswith("alice.eml"))
    d = memory_node.delete(f"/api/memory/documents/{alice['id']}")
    assert d.status_code == 204, d.text
    assert memory_node.get(f"/api/memory/documents/{alice['id']}").status_code == 404
    r = ask(client)
    assert all(not c["document"].endswith("alice.eml") for c in r.model_extra["citations"])
    assert "4471" not in r.choices[0].message.content
