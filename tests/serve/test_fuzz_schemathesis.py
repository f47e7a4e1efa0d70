"""Schemathesis against the app's generated OpenAPI schema, in-process (ASGI transport), positive
and negative examples for every route, a few per route (benchmarks/fuzz_serve.py is the soak):
no 5xx, every 4xx in OpenAI's error shape, /health still answers."""

from __future__ import annotations

import pytest

pytest.importorskip("schemathesis")

MAX_EXAMPLES = 10


def test_schemathesis_no_server_errors(tmp_path):
    from infercore.benchmarks.fuzz_serve import fuzz_app, run_fuzz

    counts = run_fuzz(fuzz_app(str(tmp_path)), MAX_EXAMPLES)
    assert {"POST /v1/chat/completions", "POST /v1/completions", "GET /v1/models", "GET /health"} <= set(counts)
    assert all(code < 500 for c in counts.values() for code in c)
    chat = counts["POST /v1/chat/completions"]
    assert chat[200] >= 1 and sum(n for code, n in chat.items() if 400 <= code < 500) >= 1  # both kinds reached
