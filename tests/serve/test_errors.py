"""Error responses: OpenAI's JSON shape and exact status codes; the server stays up after each."""

from __future__ import annotations

import httpx
import pytest

from ._util import running

MODEL = "smollm2"


def _shape(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.fixture(scope="module")
def url(llm):
    from infercore.serve import build_app

    with running(build_app(llm, model_name=MODEL, max_body_bytes=4096)) as u:
        yield u


@pytest.fixture
def h(url):
    with httpx.Client(base_url=url, timeout=30) as c:
        yield c


def _chat(**kw):
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **kw}


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b'{"model": "smollm2", "messages": [', "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"model": "smollm2", "messages": [{"role": "user", "content": "\xff\xfe"}]}', "UTF-8"),
    ],
)
def test_malformed_bodies_are_400(h, content, fragment):
    e = _shape(h.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"}), 400)
    assert fragment in e["message"]
    assert e["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "body, param",
    [
        (_chat(temperature="hot"), "temperature"),
        (_chat(max_tokens=True), "max_tokens"),
        (_chat(max_tokens=0), "max_tokens"),
        (_chat(n=1000), "n"),
        (_chat(top_p=0), "top_p"),
        (_chat(messages=[]), "messages"),
        (_chat(messages=[{"role": "wizard", "content": "x"}]), "messages.0.role"),
        (_chat(frobnicate=1), "frobnicate"),
        (_chat(tools=[{"type": "function", "function": {"name": "f"}}]), "tools"),
        (_chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}}), "response_format"),
        (_chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "string", "pattern": "(?=a)a"}}}), "response_format"),  # lookaround: not enforceable, refused
        (_chat(response_format={"type": "json_object", "json_schema": {"schema": {}}}), "response_format"),
        (_chat(response_format={"type": "yaml"}), "response_format"),
        (_chat(max_tokens=600), "max_tokens"),  # prompt + max_tokens > max_model_len (512)
    ],
)
def test_invalid_fields_are_400(h, body, param):
    e = _shape(h.post("/v1/chat/completions", json=body), 400)
    assert e["param"] is not None and e["param"].startswith(param), e


def test_lone_surrogate_is_400(h):
    raw = b'{"model": "smollm2", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    e = _shape(h.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"}), 400)
    assert "surrogate" in e["message"]


def test_unknown_model_is_404(h):
    e = _shape(h.post("/v1/chat/completions", json=_chat(model="gpt-4")), 404)
    assert e["code"] == "model_not_found" and e["param"] == "model"


def test_unknown_route_is_404_in_openai_shape(h):
    _shape(h.get("/v1/nothing"), 404)
    _shape(h.get("/v1/chat/completions"), 405)


def test_body_too_large_is_413(h):
    big = _chat(messages=[{"role": "user", "content": "x" * 10_000}])
    e = _shape(h.post("/v1/chat/completions", json=big), 413)
    assert e["code"] == "request_too_large"

    def chunked():  # no Content-Length: the limit is enforced while reading
        yield b'{"model": "smollm2", "prompt": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    _shape(h.post("/v1/completions", content=chunked(), headers={"content-type": "application/json"}), 413)


def test_prompt_too_long_is_413(h):
    ids = [100] * 600  # max_model_len is 512; token ids keep the body small
    e = _shape(h.post("/v1/completions", json={"model": MODEL, "prompt": ids, "max_tokens": 1}), 413)
    assert e["code"] == "context_length_exceeded"
    _shape(h.post("/v1/completions", json={"model": MODEL, "prompt": [10**9], "max_tokens": 1}), 400)


def test_server_still_answers_after_errors(h):
    r = h.post("/v1/chat/completions", json=_chat())
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["role"] == "assistant"
    assert h.get("/health").status_code == 200


def test_openapi_schema_describes_the_request_bodies(h):
    doc = h.get("/openapi.json").json()
    for path, name, field in (("/v1/chat/completions", "ChatCompletionRequest", "messages"),
                              ("/v1/completions", "CompletionRequest", "prompt")):  # fmt: skip
        ref = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{name}"
        body = doc["components"]["schemas"][name]
        assert field in body["properties"] and field in body["required"]
        assert body["additionalProperties"] is False
    assert "ChatMessage" in doc["components"]["schemas"]
