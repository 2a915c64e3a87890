"""The OpenAI-compatible API, driven by the official `openai` client."""

import json
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from openai import OpenAI

from conftest import DEFAULT_MODEL

PROMPT = [{"role": "user", "content": "Write a haiku about the sea."}]
GREEDY = dict(model=DEFAULT_MODEL, messages=PROMPT, temperature=0, seed=7, max_tokens=24)


@pytest.fixture(scope="module")
def client(shared_node):
    return OpenAI(base_url=shared_node.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_chat_non_streaming(client):
    r = client.chat.completions.create(**GREEDY)
    assert r.object == "chat.completion"
    assert r.model == DEFAULT_MODEL
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in {"stop", "length"}
    u = r.usage
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert 1 <= u.completion_tokens <= GREEDY["max_tokens"]
    assert u.prompt_tokens > 5
    if choice.finish_reason == "length":
        assert u.completion_tokens == GREEDY["max_tokens"]


def test_chat_streaming_matches_non_streaming(client):
    whole = client.chat.completions.create(**GREEDY)
    stream = client.chat.completions.create(
        **GREEDY, stream=True, stream_options={"include_usage": True}
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    assert len(pieces) >= 3, pieces
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert usage is not None, "no usage chunk despite include_usage"
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_completions_raw_prompt(client):
    r = client.completions.create(
        model=DEFAULT_MODEL, prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert r.object == "text_completion"
    assert r.choices[0].text.strip()
    assert r.choices[0].finish_reason in {"stop", "length"}
    assert 1 <= r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert DEFAULT_MODEL in ids
    assert client.models.retrieve(DEFAULT_MODEL).id == DEFAULT_MODEL


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(**{**GREEDY, "model": "no-such-model"})
    assert e.value.status_code == 404
    assert e.value.body["code"] == "model_not_found"
    assert e.value.body["param"] == "model"


def test_max_tokens_zero_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**{**GREEDY, "max_tokens": 0})
    assert e.value.status_code == 400
    assert e.value.body["param"] == "max_tokens"
    assert e.value.body["type"] == "invalid_request_error"


def test_temperature_out_of_range_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**{**GREEDY, "temperature": 5})
    assert e.value.status_code == 400
    assert e.value.body["param"] == "temperature"


def test_embeddings_match_sentence_transformers(client):
    """The official client (base64 transport by default) against the committed
    sentence-transformers fixture."""
    import pathlib
    fixture = json.loads((pathlib.Path(__file__).resolve().parents[1]
                          / "fixtures/embeddings/minilm.json").read_text())
    cases = fixture["texts"][:4]
    out = client.embeddings.create(model="all-MiniLM-L6-v2", input=[c["text"] for c in cases])
    assert [d.index for d in out.data] == list(range(len(cases)))
    for d, c in zip(out.data, cases):
        assert len(d.embedding) == 384
        cos = sum(a * b for a, b in zip(d.embedding, c["embedding"]))
        assert cos >= 0.999, (cos, c["text"])
    assert out.usage.prompt_tokens == sum(len(c["token_ids"]) for c in cases)
    floats = client.embeddings.create(model="all-MiniLM-L6-v2", input="hello",
                                      encoding_format="float")
    assert len(floats.data[0].embedding) == 384
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=DEFAULT_MODEL, input="hello")
    assert e.value.status_code == 400
    assert e.value.body["code"] == "model_not_supported"


def test_concurrent_greedy_requests_match_lone_request(client):
    lone = client.chat.completions.create(**GREEDY).choices[0].message.content

    def one(_):
        return client.chat.completions.create(**GREEDY).choices[0].message.content

    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = list(pool.map(one, range(4)))
    assert texts == [lone] * 4


def test_concurrent_different_requests_match_their_lone_answers(client):
    prompts = ["Write a haiku about the sea.", "What is the capital of France?",
               "List three colors.", "Explain gravity to a child in one long sentence, please."]
    reqs = [{**GREEDY, "messages": [{"role": "user", "content": p}], "max_tokens": 16 + 4 * i}
            for i, p in enumerate(prompts)]

    def one(req):
        r = client.chat.completions.create(**req)
        return r.choices[0].message.content, r.usage.completion_tokens

    lone = [one(req) for req in reqs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(one, reqs))
    assert together == lone


def test_chat_logprobs_describe_the_answer(client):
    """`logprobs` / `top_logprobs` as the openai client reads them: one entry per token,
    tokens that spell the answer, greedy picks each step's top alternative, and the
    streamed figures equal the whole answer's."""
    r = client.chat.completions.create(**GREEDY, logprobs=True, top_logprobs=3)
    c = r.choices[0]
    content = c.logprobs.content
    assert len(content) == r.usage.completion_tokens
    assert b"".join(bytes(t.bytes) for t in content).decode() == c.message.content
    for t in content:
        assert t.logprob <= 0.0
        assert len(t.top_logprobs) == 3
        assert t.top_logprobs[0].token == t.token
        assert t.top_logprobs[0].logprob == t.logprob
        assert [a.logprob for a in t.top_logprobs] == sorted(
            (a.logprob for a in t.top_logprobs), reverse=True
        )
    # Without the option: no figures.
    assert client.chat.completions.create(**GREEDY).choices[0].logprobs is None
    streamed = []
    for chunk in client.chat.completions.create(
        **GREEDY, logprobs=True, top_logprobs=3, stream=True
    ):
        for ch in chunk.choices:
            if ch.logprobs and ch.logprobs.content:
                streamed.extend(ch.logprobs.content)
    assert [(t.token, t.logprob) for t in streamed] == [(t.token, t.logprob) for t in content]


def test_completions_logprobs_use_the_legacy_form(client):
    r = client.completions.create(
        model=DEFAULT_MODEL, prompt="The capital of France is", max_tokens=8, temperature=0,
        logprobs=2,
    )
    lp = r.choices[0].logprobs
    n = r.usage.completion_tokens
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == n
    assert "".join(lp.tokens) == r.choices[0].text
    assert lp.text_offset[0] == 0 and lp.text_offset == sorted(lp.text_offset)
    for tok, p, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert p <= 0.0 and 1 <= len(top) <= 2
        assert max(top.values()) == p, (tok, p, top)


@pytest.mark.parametrize(
    "extra, param",
    [
        (dict(logprobs=True, top_logprobs=21), "top_logprobs"),
        (dict(top_logprobs=2), "top_logprobs"),
        (dict(extra_body={"logprobs": 3}), "logprobs"),
    ],
)
def test_bad_logprobs_options_are_400(client, extra, param):
    """Hostile or mistaken options are refused with the field named, before any work."""
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**GREEDY, **extra)
    assert e.value.body["param"] == param
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(
            model=DEFAULT_MODEL, prompt="x", max_tokens=2, extra_body={"logprobs": 10**9}
        )
    assert e.value.body["param"] == "logprobs"
