"""The Ollama-compatible API, driven by the official `ollama` client."""

import ollama
import pytest

from conftest import DEFAULT_MODEL

MESSAGES = [{"role": "user", "content": "Write a haiku about the sea."}]
OPTIONS = {"temperature": 0, "seed": 7, "num_predict": 24}


@pytest.fixture(scope="module")
def client(shared_node):
    return ollama.Client(host=shared_node.url, timeout=120)


def test_chat_non_streaming(client):
    r = client.chat(model=DEFAULT_MODEL, messages=MESSAGES, options=OPTIONS, stream=False)
    assert r.done is True
    assert r.message.role == "assistant"
    assert r.message.content.strip()
    assert 0 < r.eval_count <= OPTIONS["num_predict"]
    assert r.prompt_eval_count > 5
    assert r.done_reason in {"stop", "length"}


def test_chat_streaming(client):
    whole = client.chat(model=DEFAULT_MODEL, messages=MESSAGES, options=OPTIONS, stream=False)
    chunks = list(client.chat(model=DEFAULT_MODEL, messages=MESSAGES, options=OPTIONS, stream=True))
    assert len(chunks) >= 3
    text = "".join(c.message.content or "" for c in chunks)
    assert text.strip()
    assert text == whole.message.content
    assert all(c.done is False for c in chunks[:-1])
    last = chunks[-1]
    assert last.done is True
    assert last.eval_count and last.eval_count > 0
    assert last.eval_count == whole.eval_count


def test_generate_non_streaming(client):
    r = client.generate(model=DEFAULT_MODEL, prompt="Why is the sky blue?", options=OPTIONS,
                        stream=False)
    assert r.done is True
    assert r.response.strip()
    assert 0 < r.eval_count <= OPTIONS["num_predict"]


def test_generate_streaming(client):
    chunks = list(client.generate(model=DEFAULT_MODEL, prompt="Why is the sky blue?",
                                  options=OPTIONS, stream=True))
    assert len(chunks) >= 3
    assert "".join(c.response or "" for c in chunks).strip()
    assert chunks[-1].done is True
    assert chunks[-1].eval_count and chunks[-1].eval_count > 0


def test_list_includes_model(client):
    names = [m.model for m in client.list().models]
    assert DEFAULT_MODEL in names


def test_show(client):
    r = client.show(DEFAULT_MODEL)
    assert r.details is not None
    assert r.details.format == "gguf"
    assert r.details.quantization_level == "Q4_1"


def test_ps_lists_loaded_default_model(client):
    # The default model is loaded at start; a generation makes sure of it.
    client.generate(model=DEFAULT_MODEL, prompt="Hi", options={"num_predict": 1}, stream=False)
    names = [m.model for m in client.ps().models]
    assert DEFAULT_MODEL in names


def test_version(shared_node):
    r = shared_node.get("/api/version")
    assert r.status_code == 200
    assert r.json()["version"]


def test_unknown_model_is_404(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="no-such-model", messages=MESSAGES, stream=False)
    assert e.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as e:
        client.generate(model="no-such-model", prompt="hi", stream=False)
    assert e.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as e:
        client.show("no-such-model")
    assert e.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as e:  # streaming: refused before the stream
        list(client.chat(model="no-such-model", messages=MESSAGES, stream=True))
    assert e.value.status_code == 404


def test_logprobs_through_the_ollama_client(client):
    """`logprobs` / `top_logprobs` as the ollama client sends and reads them: one entry per
    token that spells the answer, greedy takes the top alternative (without Ollama's
    default repeat penalty, which moves the choice away from the model's own
    distribution), streamed = whole."""
    greedy = {**OPTIONS, "repeat_penalty": 1.0}
    whole = client.chat(model=DEFAULT_MODEL, messages=MESSAGES, options=greedy, stream=False,
                        logprobs=True, top_logprobs=2)
    lp = whole.logprobs
    assert len(lp) == whole.eval_count
    assert "".join(t.token for t in lp) == whole.message.content
    for t in lp:
        assert t.logprob <= 0.0 and len(t.top_logprobs) == 2
        assert t.top_logprobs[0].token == t.token and t.top_logprobs[0].logprob == t.logprob
    streamed = []
    for c in client.chat(model=DEFAULT_MODEL, messages=MESSAGES, options=greedy, stream=True,
                         logprobs=True, top_logprobs=2):
        streamed.extend(c.logprobs or [])
    assert [(t.token, t.logprob) for t in streamed] == [(t.token, t.logprob) for t in lp]
    g = client.generate(model=DEFAULT_MODEL, prompt="Why is the sky blue?", options=OPTIONS,
                        stream=False, logprobs=True)
    assert len(g.logprobs) == g.eval_count and all(not t.top_logprobs for t in g.logprobs)
    # Not asked for: none. Too many alternatives: refused with the field named.
    assert client.chat(model=DEFAULT_MODEL, messages=MESSAGES, options=OPTIONS,
                       stream=False).logprobs is None
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model=DEFAULT_MODEL, messages=MESSAGES, options=OPTIONS, stream=False,
                    logprobs=True, top_logprobs=50)
    assert e.value.status_code == 400 and "top_logprobs" in str(e.value)
