"""Tests that start their own server (API key, overload, a failing rail, metrics on a fresh app,
drift). One running server at a time may drive an LLM, so they live apart from the modules whose
module-scoped server stays up for the whole module."""

from __future__ import annotations

import time

import httpx
import pytest

from infercore.guardrails import Guard, RailDecision
from infercore.monitor import parse_exposition, sample

from ._util import running, wait_idle

MODEL = "smollm2"


def _shape(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    return body["error"]


def _chat(**kw):
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **kw}


def _metrics(h) -> dict:
    r = h.get("/metrics")
    assert r.status_code == 200
    return parse_exposition(r.text)


def test_second_running_server_on_one_llm_is_refused(llm):
    from infercore.serve import build_app

    with running(build_app(llm, model_name=MODEL)):
        with pytest.raises(RuntimeError, match="did not start"):
            with running(build_app(llm, model_name=MODEL)):
                pass
    with running(build_app(llm, model_name=MODEL)) as u:  # the first one released the engine
        assert httpx.post(u + "/v1/chat/completions", json=_chat(), timeout=30).status_code == 200


def test_api_key(llm):
    openai = pytest.importorskip("openai")
    from infercore.serve import build_app

    with running(build_app(llm, model_name=MODEL, api_key="s3cret-key")) as u:
        with httpx.Client(base_url=u, timeout=30) as h:
            e = _shape(h.get("/v1/models"), 401)
            assert e["code"] == "invalid_api_key"
            _shape(h.get("/v1/models", headers={"Authorization": "Bearer s3cret-kez"}), 401)
            _shape(h.get("/v1/models", headers={"Authorization": "Basic s3cret-key"}), 401)
            _shape(h.post("/v1/chat/completions", json=_chat()), 401)
            assert h.get("/health").status_code == 200  # probes need no key
        with openai.OpenAI(base_url=u + "/v1", api_key="wrong", max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError):
                bad.models.list()
        with openai.OpenAI(base_url=u + "/v1", api_key="s3cret-key", max_retries=0) as good:
            assert good.models.list().data[0].id == MODEL


def test_overload_is_429_with_retry_after(llm):
    from infercore.serve import build_app

    cap = llm.engine.scheduler.max_num_seqs  # max_queue=0: capacity = max_num_seqs sequences
    body = {"model": MODEL, "prompt": "Count: 1, 2,", "max_tokens": 300, "ignore_eos": True, "stream": True}
    with running(build_app(llm, model_name=MODEL, max_queue=0, retry_after_s=2)) as u:
        with httpx.Client(base_url=u, timeout=30) as h:
            streams = []
            try:
                for _ in range(cap):
                    s = h.stream("POST", "/v1/completions", json=body)
                    r = s.__enter__()
                    streams.append(s)
                    assert r.status_code == 200
                r = h.post("/v1/completions", json={**body, "stream": False})
                e = _shape(r, 429)
                assert r.headers["retry-after"] == "2"
                assert e["type"] == "rate_limit_error"
                assert h.get("/ready").status_code == 503
            finally:
                for s in streams:
                    s.__exit__(None, None, None)
            assert wait_idle(llm)
            r = h.post("/v1/completions", json={**body, "stream": False, "max_tokens": 2})
            assert r.status_code == 200  # capacity is back


class _BrokenRail:
    """A user-supplied rail that fails: the server must answer 500 without leaking the error."""

    name = "broken"
    can_modify = False

    def check(self, text, context=None):
        raise RuntimeError("SECRET-INTERNAL-DETAIL /etc/passwd")


class _EchoRail:
    name = "noop"
    can_modify = False

    def check(self, text, context=None):
        return RailDecision("passed", text)


def test_internal_error_is_500_without_internals(llm):
    from infercore.serve import build_app

    guard = Guard([_EchoRail(), _BrokenRail()], [])
    with running(build_app(llm, model_name=MODEL, guard=guard)) as u, httpx.Client(base_url=u, timeout=30) as h:
        r = h.post("/v1/chat/completions", json=_chat())
        e = _shape(r, 500)
        assert "SECRET" not in r.text and "passwd" not in r.text and "Traceback" not in r.text
        assert e["type"] == "internal_error"
        assert h.get("/health").status_code == 200


def test_kv_usage_gauge_sees_a_running_request(llm):
    from infercore.serve import build_app

    body = {"model": MODEL, "prompt": "Count: 1, 2,", "max_tokens": 300, "ignore_eos": True, "stream": True}
    with running(build_app(llm, model_name=MODEL)) as u, httpx.Client(base_url=u, timeout=30) as h:
        with h.stream("POST", "/v1/completions", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    break
            # the first chunk can be written before the engine thread admits the request: poll
            # (generously: on a loaded 2-core CI machine admission has taken over 10 s)
            deadline = time.monotonic() + 40
            m = _metrics(h)
            while sample(m, "infercore:num_requests_running") != 1 and time.monotonic() < deadline:
                time.sleep(0.02)
                m = _metrics(h)
            state = {k: v for k, v in m.items() if "bucket" not in k[0]}
            assert sample(m, "infercore:num_requests_running") == 1, state
            assert sample(m, "infercore:kv_cache_usage_perc") > 0
        assert wait_idle(llm)
        m = _metrics(h)
        assert sample(m, "infercore:request_aborted_total") == 1


def test_prompt_length_drift_is_exported(llm):
    from infercore.serve import build_app

    app = build_app(llm, model_name=MODEL, drift_reference=8, drift_window=8)
    with running(app) as u, httpx.Client(base_url=u, timeout=30) as h:
        for i in range(8):  # reference window: short prompts
            r = h.post("/v1/completions", json={"model": MODEL, "prompt": [100 + i] * 4, "max_tokens": 1})
            assert r.status_code == 200
        m = _metrics(h)
        assert sample(m, "infercore:drift_score", feature="prompt_tokens", statistic="kl") == 0.0  # not reported yet
        for i in range(8):  # current window: prompts 10x longer
            r = h.post("/v1/completions", json={"model": MODEL, "prompt": [100 + i] * 40, "max_tokens": 1})
            assert r.status_code == 200
        m = _metrics(h)
        kl = sample(m, "infercore:drift_score", feature="prompt_tokens", statistic="kl")
        assert kl >= 0.1
        assert sample(m, "infercore:drift_alert", feature="prompt_tokens") == 1.0
        assert sample(m, "infercore:drift_score", feature="prompt_tokens", statistic="wasserstein") == pytest.approx(36)


class _NoDigitsRail:
    """An output rail that blocks any answer with a digit (the model will count when asked to)."""

    name = "no_digits"
    can_modify = False

    def check(self, text, context=None):
        from infercore.guardrails import Violation

        if any(c.isdigit() for c in text):
            return RailDecision("blocked", text, [Violation("no_digits", "answer contains digits")])
        return RailDecision("passed", text)


def test_output_rail_blocks_streamed_and_plain_answers(llm):
    import json

    from infercore.serve import build_app

    guard = Guard([], [_NoDigitsRail()])
    body = {"model": MODEL, "prompt": "1, 2, 3, 4,", "max_tokens": 6, "temperature": 0}
    with running(build_app(llm, model_name=MODEL, guard=guard)) as u, httpx.Client(base_url=u, timeout=30) as h:
        e = _shape(h.post("/v1/completions", json=body), 400)
        assert e["code"] == "guardrail_blocked" and "generated output" in e["message"] and "no_digits" in e["message"]
        with h.stream("POST", "/v1/completions", json={**body, "stream": True}) as r:
            assert r.status_code == 200
            events = [x[6:] for x in r.iter_lines() if x.startswith("data: ")]
        assert events[-1] == "[DONE]"
        msgs = [json.loads(x) for x in events[:-1]]
        assert "error" in msgs[-1] and msgs[-1]["error"]["code"] == "guardrail_blocked"
        assert not any(c.get("text") for m in msgs for c in m.get("choices", []))  # nothing unchecked leaked
        m = _metrics(h)
        assert sample(m, "infercore:guardrail_blocks_total", rail="no_digits", direction="output") == 2
