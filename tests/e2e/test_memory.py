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
    # Outside the data folder, but reachable through a symlink inside it: never ingested.
    private = root / "private"
    private.mkdir()
    (private / "pin.txt").write_text("The bank card PIN is 9083.\n")
    (data / "notes" / "pin.txt").symlink_to(private / "pin.txt")
    (data / "private").symlink_to(private)
    node = Node(root / "home", config=NO_CHAIN)
    try:
        node.start()
        # The API ingests only folders the owner listed; the running node sees a folder
        # added with the CLI at its next request.
        r = node.post("/api/memory/ingest", json={"paths": [str(data)]})
        assert r.status_code == 403 and r.json()["error"]["code"] == "path_not_allowed", r.text
        out = run_cli(node.home, "memory", "roots", "add", str(data))
        assert out.returncode == 0, out.stderr
        out = run_cli(node.home, "memory", "roots", "list", "--json")
        assert json.loads(out.stdout)["roots"] == [str(data.resolve())], out.stdout
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
    # API clients get the memory only when they ask for it (issue 25).
    kw.setdefault("extra_body", {"memory": True})
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


def test_api_clients_get_no_memory_unless_they_ask(client):
    r = client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        temperature=0,
        seed=1,
        max_tokens=60,
    )
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
    v = memory_node.post("/api/chat", json={**body, "memory": True}).json()
    assert v["done"] is True
    assert v["citations"][0]["document"].endswith("alice.eml"), v
    v = memory_node.post("/api/chat", json={**body, "memory": False}).json()
    assert "citations" not in v
    v = memory_node.post("/api/chat", json=body).json()
    assert "citations" not in v, "memory is opt-in for API clients"


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
    # The stored answer and its citation quote the mail; on disk they are encrypted.
    assert "technician from Calor" in answers[1]["citations"][0]["snippet"]
    raw = b"".join(
        (memory_node.home / f).read_bytes()
        for f in ["history.db", "history.db-wal"]
        if (memory_node.home / f).exists()
    )
    for secret in [b"technician from Calor", b"alice.eml", b"Boiler service"]:
        assert raw and secret not in raw, secret


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
    # Outside the roots: 403, the same answer whether the path exists or not.
    refusals = []
    for path in ["/etc", "/nonexistent/flurry-xyz", str(memory_node.data / "private"),
                 str(memory_node.data / "notes" / "pin.txt"), str(memory_node.data / ".." / "private")]:
        r = memory_node.post("/api/memory/ingest", json={"paths": [path]})
        assert r.status_code == 403, (path, r.text)
        refusals.append(r.json())
    assert all(v == refusals[0] for v in refusals), refusals
    assert "flurry memory roots add PATH" in refusals[0]["error"]["message"]
    docs = memory_node.get("/api/memory/documents").json()["documents"]
    assert all("pin" not in d["path"] and "private" not in d["path"] for d in docs), docs
    r = memory_node.post("/api/memory/ingest", json={"paths": []})
    assert r.status_code == 400, r.text
    # Re-ingesting unchanged files embeds nothing.
    r = memory_node.post("/api/memory/ingest", json={"paths": [str(memory_node.data)]})
    assert r.json()["unchanged"] == 4 and r.json()["added"] == 0, r.text


def test_forgotten_mail_is_no_longer_cited(client, memory_node):
    # A memory-backed conversation cites the mail before it is forgotten.
    c = memory_node.post("/api/conversations", json={}).json()
    r = memory_node.post(
        f"/api/conversations/{c['id']}/messages",
        json={"content": QUESTION, "temperature": 0, "seed": 1, "max_tokens": 10},
    )
    assert r.status_code == 200, r.text
    stored = memory_node.get(f"/api/conversations/{c['id']}").json()
    assert "alice.eml" in json.dumps(stored), stored
    docs = memory_node.get("/api/memory/documents").json()["documents"]
    alice = next(d for d in docs if d["path"].endswith("alice.eml"))
    d = memory_node.delete(f"/api/memory/documents/{alice['id']}")
    assert d.status_code == 204, d.text
    assert memory_node.get(f"/api/memory/documents/{alice['id']}").status_code == 404
    r = ask(client)
    assert all(not c["document"].endswith("alice.eml") for c in r.model_extra["citations"])
    assert "4471" not in r.choices[0].message.content
    # Forgetting the mail also took its citations (and their snippets) out of the history.
    stored = memory_node.get(f"/api/conversations/{c['id']}").json()
    assert "alice.eml" not in json.dumps(stored), stored


def pdf(objects: list[bytes]) -> bytes:
    """A PDF 1.4 from its objects (object i is `i+1 0 obj`), xref offsets exact."""
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objects):
        offsets.append(len(out))
        out += f"{i + 1} 0 obj\n".encode() + o + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def stream(d: str, data: bytes) -> bytes:
    return f"<< {d} /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream"


PAGES = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"]
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


def test_hostile_documents_cost_one_file_not_the_node(memory_node):
    """Attack: a PDF whose Form XObject draws itself (pdf-extract recursed until the stack
    overflowed, which aborted the whole node) and a 1 MiB PDF whose content stream
    inflates to 1 GiB, dropped into a folder the node ingests. The node must report both,
    ingest the normal file next to them, and still answer."""
    import zlib

    folder = memory_node.data.parent / "inbox-drop"
    folder.mkdir()
    (folder / "a-self.pdf").write_bytes(pdf(PAGES + [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 6 0 R >> /XObject << /X 5 0 R >> >> /Contents 4 0 R >>",
        stream("", b"BT /F1 12 Tf 72 720 Td (before) Tj ET /X Do"),
        stream("/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 6 0 R >> /XObject << /X 5 0 R >> >>",
               b"BT /F1 12 Tf (again) Tj ET /X Do"),
        FONT,
    ]))
    z = zlib.compressobj(9)
    block = bytes(1 << 20)
    bomb = b"".join(z.compress(block) for _ in range(1024)) + z.flush()
    (folder / "b-bomb.pdf").write_bytes(pdf(PAGES + [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        stream("/Filter /FlateDecode", bomb),
    ]))
    (folder / "z-normal.txt").write_text("The kayak paddles are in the garage loft.\n")
    out = run_cli(memory_node.home, "memory", "roots", "add", str(folder))
    assert out.returncode == 0, out.stderr
    r = memory_node.post("/api/memory/ingest", json={"paths": [str(folder)]})
    assert r.status_code == 200, r.text
    summary = r.json()
    reasons = {f["path"].rsplit("/", 1)[-1]: f["reason"] for f in summary["failed"]}
    assert "stack overflow" in reasons.get("a-self.pdf", ""), summary
    assert "decompression bomb" in reasons.get("b-bomb.pdf", ""), summary
    assert summary["added"] == 1, summary
    assert memory_node.get("/api/node").status_code == 200
    docs = memory_node.get("/api/memory/documents").json()["documents"]
    assert any(d["path"].endswith("z-normal.txt") for d in docs), docs


def test_cli_forget_takes_citations_out_of_the_history(memory_node):
    c = memory_node.post("/api/conversations", json={}).json()
    r = memory_node.post(
        f"/api/conversations/{c['id']}/messages",
        json={"content": "How often does the bicycle chain need oil?", "temperature": 0,
              "seed": 1, "max_tokens": 10},
    )
    assert r.status_code == 200, r.text
    stored = memory_node.get(f"/api/conversations/{c['id']}").json()
    assert "bike.txt" in json.dumps(stored), stored
    # The CLI opens the memory and the (encrypted) history itself, next to the node.
    out = run_cli(memory_node.home, "memory", "forget", str(memory_node.data / "notes" / "bike.txt"),
                  "--password-file", str(memory_node.home / "keystore" / "password"))
    assert out.returncode == 0, out.stderr
    stored = memory_node.get(f"/api/conversations/{c['id']}").json()
    assert "bike.txt" not in json.dumps(stored), stored


def test_the_scrubber_knows_the_people_in_memory(memory_node):
    """The privacy router learns the owner's correspondents from the memory, and again
    when the memory changes: a surname alone, lower case, is personal data only once a
    mail names Jonas Lindqvist."""
    text = "ask lindqvist whether the boiler is fixed"
    r = memory_node.post("/api/privacy/scrub", json={"text": text})
    assert r.status_code == 200 and r.json()["entities"] == [], r.text
    (memory_node.data / "mail" / "jonas.eml").write_text(
        ALICE.replace("Alice Martin <alice@example.org>", "Jonas Lindqvist <jonas@example.net>")
        .replace("\r\nAlice\r\n", "\r\nJonas\r\n"),
        newline="",
    )
    r = memory_node.post("/api/memory/ingest", json={"paths": [str(memory_node.data)]})
    assert r.status_code == 200 and r.json()["added"] >= 1, r.text
    r = memory_node.post("/api/privacy/scrub", json={"text": text, "memory": False})
    assert r.status_code == 200 and r.json()["entities"] == [], r.text
    r = memory_node.post("/api/privacy/scrub", json={"text": text})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == "ask <PERSON_1> whether the boiler is fixed", body
    assert body["entities"][0]["source"] == "memory", body
    out = run_cli(memory_node.home, "privacy", "entities", "--json")
    assert out.returncode == 0, out.stderr
    learned = json.loads(out.stdout)
    names = [e["text"] for e in learned["entities"] if e["type"] == "PERSON"]
    assert "Jonas Lindqvist" in names and "Li Wei" in names, learned
