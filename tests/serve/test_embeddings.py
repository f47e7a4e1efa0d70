"""POST /v1/embeddings through the official openai client and raw HTTP: vectors equal the
in-process Embedder's, base64 and float agree, token-id inputs, errors, batching, metrics."""

from __future__ import annotations

import base64
import concurrent.futures

import httpx
import numpy as np
import openai
import pytest

from infercore.monitor import parse_exposition, sample

from ._util import running

EMB = "minilm"


@pytest.fixture(scope="module")
def url(tiny_llm, embedder):
    from infercore.serve import build_app

    app = build_app(tiny_llm, model_name="tiny", embedder=embedder, embedding_model_name=EMB, max_body_bytes=1 << 16)
    with running(app) as u:
        yield u


@pytest.fixture
def client(url):
    with openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60) as c:
        yield c


@pytest.fixture
def h(url):
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


TEXTS = ["The cat sat on the mat.", "Paged attention stores keys and values in blocks.", "x"]


def test_openai_client_default_base64_equals_in_process(client, embedder):
    r = client.embeddings.create(model=EMB, input=TEXTS)  # the client asks for base64 and decodes it
    assert r.object == "list" and r.model == EMB
    assert [d.index for d in r.data] == [0, 1, 2]
    got = np.array([d.embedding for d in r.data], dtype=np.float32)
    ref = embedder.encode(TEXTS)
    assert got.shape == (3, embedder.dim)
    np.testing.assert_allclose(got, ref, atol=1e-6)
    n_tokens = sum(len(s) for s in embedder.tokenize(TEXTS))
    assert r.usage.prompt_tokens == r.usage.total_tokens == n_tokens


def test_float_format_and_single_string(client, embedder):
    r = client.embeddings.create(model=EMB, input="hello world", encoding_format="float")
    assert len(r.data) == 1
    v = np.array(r.data[0].embedding, dtype=np.float32)
    np.testing.assert_allclose(v, embedder.encode("hello world"), atol=1e-6)
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5


def test_raw_base64_is_little_endian_float32(h, embedder):
    r = h.post("/v1/embeddings", json={"model": EMB, "input": ["hi"], "encoding_format": "base64"})
    assert r.status_code == 200, r.text
    v = np.frombuffer(base64.b64decode(r.json()["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(v, embedder.encode("hi"), atol=1e-6)


def test_token_id_inputs_equal_text_inputs(client, embedder):
    ids = embedder.tokenizer.backend.encode("The cat sat on the mat.", add_special_tokens=False).ids
    one = client.embeddings.create(model=EMB, input=ids, encoding_format="float")
    many = client.embeddings.create(model=EMB, input=[ids, ids[:3]], encoding_format="float")
    text = embedder.encode("The cat sat on the mat.")
    np.testing.assert_allclose(np.array(one.data[0].embedding), text, atol=1e-6)
    np.testing.assert_allclose(np.array(many.data[0].embedding), text, atol=1e-6)
    assert len(many.data) == 2 and one.usage.prompt_tokens == len(ids) + 2  # [CLS] ... [SEP]


def _error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    return r.json()["error"]


@pytest.mark.parametrize(
    "body, status, param",
    [
        ({"model": EMB, "input": ""}, 400, "input"),
        ({"model": EMB, "input": []}, 400, "input"),
        ({"model": EMB, "input": ["ok", ""]}, 400, "input.1"),
        ({"model": EMB, "input": [[1, 2], []]}, 400, "input.1"),
        ({"model": EMB, "input": [1, 99999999]}, 400, "input"),
        ({"model": EMB, "input": [-1]}, 400, "input"),
        ({"model": EMB, "input": 5}, 400, "input"),
        ({"model": EMB, "input": ["a", 1]}, 400, "input"),
        ({"model": EMB, "input": "a", "encoding_format": "int8"}, 400, "encoding_format"),
        ({"model": EMB, "input": "a", "dimensions": 64}, 400, "dimensions"),
        ({"model": EMB, "input": "a", "extra": 1}, 400, "extra"),
        ({"model": "tiny", "input": "a"}, 404, "model"),
        ({"model": EMB, "input": "word " * 400}, 413, "input"),
        ({"model": EMB, "input": [[1000, 1001], list(range(1000, 1300))]}, 413, "input.1"),
    ],
)
def test_bad_requests(h, body, status, param):
    e = _error(h.post("/v1/embeddings", json=body), status)
    assert e["param"] == param or (param in (e["param"] or "")), e


def test_body_limit_and_encoding(h):
    _error(h.post("/v1/embeddings", content=b'{"model": "minilm", "input": "\xff"}'), 400)
    _error(h.post("/v1/embeddings", content=b'{"model": "minilm", "input": ['), 400)
    big = {"model": EMB, "input": ["word"] * 20000}
    assert _error(h.post("/v1/embeddings", json=big), 413)["code"] == "request_too_large"


def test_models_lists_the_embedder(client, embedder):
    ids = {m.id for m in client.models.list().data}
    assert ids == {"tiny", EMB}


def test_concurrent_requests_are_batched_and_counted(url, h, embedder):
    from infercore.serve.embeddings import EmbedBatcher

    before = parse_exposition(h.get("/metrics").text)
    texts = [f"sentence number {i} about embeddings" for i in range(24)]

    def one(t):
        with httpx.Client(base_url=url, timeout=60) as c:
            r = c.post("/v1/embeddings", json={"model": EMB, "input": t, "encoding_format": "float"})
            assert r.status_code == 200, r.text
            return np.array(r.json()["data"][0]["embedding"], dtype=np.float32)

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        got = list(ex.map(one, texts))
    np.testing.assert_allclose(np.stack(got), embedder.encode(texts), atol=1e-5)
    after = parse_exposition(h.get("/metrics").text)

    def d(name):
        return sample(after, name, model_name=EMB) - sample(before, name, model_name=EMB)

    assert d("infercore:embedding_inputs_total") == 24
    assert d("infercore:embedding_tokens_total") == sum(len(s) for s in embedder.tokenize(texts))
    assert d("infercore:embedding_request_latency_seconds_count") == 24
    assert isinstance(EmbedBatcher, type)


def test_batcher_merges_waiting_requests(embedder):
    """Requests queued while a pass runs share the next pass (deterministic: all queued at once)."""
    import asyncio
    import threading

    from infercore.serve.embeddings import EmbedBatcher

    b = EmbedBatcher(embedder, threading.Lock(), max_batch_inputs=8)
    seqs = embedder.tokenize([f"text {i}" for i in range(10)])

    async def main():
        return await asyncio.gather(*[b.embed([s]) for s in seqs])

    out = asyncio.run(main())
    assert b.passes == 2  # 8 + 2 inputs
    # 8 + 2 inputs against one pass of 10: with precision "high" (bf16x3 on AMX CPUs) a pass of
    # fewer than 16 tokens runs full float32, so embeddings may differ by a few 1e-6
    np.testing.assert_allclose(np.concatenate(out), embedder.encode([f"text {i}" for i in range(10)]), atol=1e-5)
