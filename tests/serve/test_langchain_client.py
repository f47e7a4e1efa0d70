"""LangChain's OpenAI chat model pointed at our server's base URL: invoke, stream, and
with_structured_output (a JSON schema, through response_format and constrained decoding)."""

from __future__ import annotations

import pytest

from ._util import running

lc = pytest.importorskip("langchain_openai")


@pytest.fixture(scope="module")
def base_url(llm):
    from infercore.serve import build_app

    with running(build_app(llm, model_name="smollm2")) as url:
        yield url


@pytest.fixture
def chat(base_url):
    return lc.ChatOpenAI(model="smollm2", base_url=base_url + "/v1", api_key="unused", temperature=0, max_tokens=24,
                         max_retries=0, timeout=60)  # fmt: skip


def test_invoke_and_stream(chat):
    msg = chat.invoke([("system", "Answer in one word."), ("user", "What is the capital of France?")])
    assert "Paris" in msg.content
    assert msg.response_metadata["finish_reason"] in ("stop", "length")
    chunks = list(chat.stream("Count: one, two,"))
    assert "".join(c.content for c in chunks).strip()


def test_structured_output(chat):
    schema = {"title": "Capital", "description": "A country's capital city.", "type": "object",
              "properties": {"country": {"type": "string", "maxLength": 30}, "capital": {"type": "string",
                                                                                      "maxLength": 30}},
              "required": ["country", "capital"]}  # fmt: skip
    out = chat.bind(max_tokens=80).with_structured_output(schema, method="json_schema").invoke(
        "What is the capital of France? Reply in JSON.")
    assert set(out) == {"country", "capital"} and all(isinstance(v, str) for v in out.values())
