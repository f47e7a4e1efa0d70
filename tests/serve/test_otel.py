"""OpenTelemetry spans per request (SDK InMemorySpanExporter): an HTTP SERVER span with the HTTP
server attributes and a GenAI child span with the semantic-convention names, for chat (plain and
streamed), completions and embeddings; W3C traceparent is honoured; errors set error.type."""

from __future__ import annotations

import time

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ._util import running, wait_idle


@pytest.fixture(scope="module")
def spans():
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def url(tiny_llm, embedder, spans):
    from infercore.serve import build_app

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = build_app(tiny_llm, model_name="tiny", embedder=embedder, tracer=provider.get_tracer("test"))
    with running(app) as u:
        yield u


@pytest.fixture
def h(url, spans, tiny_llm):
    spans.clear()
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


def _pair(spans, tiny_llm):
    """(server span, its children) once the server span ended (it ends after the last byte was
    sent, so just after the client has read it)."""
    assert wait_idle(tiny_llm)
    deadline = time.monotonic() + 10
    while not [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER] and time.monotonic() < deadline:
        time.sleep(0.01)
    got = spans.get_finished_spans()
    server = [s for s in got if s.kind == SpanKind.SERVER]
    assert len(server) == 1, [s.name for s in got]
    children = [s for s in got if s.parent is not None and s.parent.span_id == server[0].context.span_id]
    return server[0], children


def test_chat_spans_have_genai_and_http_attributes(h, spans, tiny_llm):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "temperature": 0.5,
            "top_p": 0.9, "seed": 7, "ignore_eos": True}  # fmt: skip
    r = h.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    server, (op,) = _pair(spans, tiny_llm)
    assert server.name == "POST /v1/chat/completions"
    a = server.attributes
    assert a["http.request.method"] == "POST" and a["http.route"] == "/v1/chat/completions"
    assert a["url.path"] == "/v1/chat/completions" and a["http.response.status_code"] == 200
    assert a["server.address"] == "127.0.0.1" and isinstance(a["server.port"], int)
    assert a["client.address"] == "127.0.0.1" and a["url.scheme"] == "http"
    assert op.name == "chat tiny" and op.kind == SpanKind.INTERNAL
    g = op.attributes
    usage = r.json()["usage"]
    assert g["gen_ai.operation.name"] == "chat" and g["gen_ai.request.model"] == "tiny"
    assert g["gen_ai.request.max_tokens"] == 5 and g["gen_ai.request.temperature"] == 0.5
    assert g["gen_ai.request.top_p"] == pytest.approx(0.9) and g["gen_ai.request.seed"] == 7
    assert g["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert g["gen_ai.usage.output_tokens"] == usage["completion_tokens"] == 5
    assert tuple(g["gen_ai.response.finish_reasons"]) == ("length",)
    assert g["gen_ai.response.id"] == r.json()["id"]
    assert op.start_time >= server.start_time and op.end_time <= server.end_time
    assert server.status.status_code == StatusCode.UNSET


def test_streamed_completion_span_covers_the_stream(h, spans, tiny_llm):
    body = {"model": "tiny", "prompt": ["a", "b"], "max_tokens": 4, "n": 2, "ignore_eos": True, "stream": True}
    with h.stream("POST", "/v1/completions", json=body) as r:
        assert r.status_code == 200
        lines = [x for x in r.iter_lines() if x.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    _server, (op,) = _pair(spans, tiny_llm)
    g = op.attributes
    assert op.name == "text_completion tiny" and g["gen_ai.request.choice.count"] == 2
    assert g["gen_ai.usage.output_tokens"] == 16  # 2 prompts x n=2 x 4 tokens
    assert g["gen_ai.usage.input_tokens"] == 2  # one byte each (the byte-level tokenizer adds no BOS)
    assert sorted(g["gen_ai.response.finish_reasons"]) == ["length"] * 4


def test_embeddings_span(h, spans, tiny_llm, embedder):
    r = h.post("/v1/embeddings", json={"model": "minilm", "input": ["a b c", "d"]})
    assert r.status_code == 200
    _server, (op,) = _pair(spans, tiny_llm)
    g = op.attributes
    assert op.name == "embeddings minilm" and g["gen_ai.operation.name"] == "embeddings"
    assert g["gen_ai.usage.input_tokens"] == r.json()["usage"]["prompt_tokens"]
    assert g["gen_ai.embeddings.dimension.count"] == embedder.dim
    assert tuple(g["gen_ai.request.encoding_formats"]) == ("float",)


def test_traceparent_is_the_parent_and_errors_set_error_type(h, spans, tiny_llm):
    tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    r = h.post("/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]},
               headers={"traceparent": f"00-{tid}-{sid}-01"})  # fmt: skip
    assert r.status_code == 404
    server, children = _pair(spans, tiny_llm)
    assert children == []  # refused before any model work
    assert format(server.context.trace_id, "032x") == tid and format(server.parent.span_id, "016x") == sid
    assert server.attributes["error.type"] == "404" and server.attributes["http.response.status_code"] == 404
    assert server.status.status_code == StatusCode.UNSET  # a 4xx is the client's error, not the server's


def test_untraced_paths_and_unknown_routes(h, spans, tiny_llm):
    assert h.get("/metrics").status_code == 200 and h.get("/health").status_code == 200
    assert spans.get_finished_spans() == ()
    assert h.post("/v1/nothing", json={}).status_code == 404
    server, _ = _pair(spans, tiny_llm)
    assert server.name == "POST" and "http.route" not in server.attributes  # no route template for unknown paths


def test_otlp_from_env_is_optional(monkeypatch):
    from infercore.serve.otel import tracer_from_env

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert tracer_from_env() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    import importlib.util
    import warnings

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        t = tracer_from_env()
    has_otlp = importlib.util.find_spec("opentelemetry.exporter") is not None
    assert (t is not None) == has_otlp  # without the exporter package: a warning and no tracer, never an error


def test_otlp_export_when_endpoint_is_set(tmp_path, monkeypatch):
    """With OTEL_EXPORTER_OTLP_ENDPOINT set (and the OTLP/HTTP exporter installed), build_app's
    default tracer ships the spans to that collector as OTLP protobuf."""
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    import http.server
    import threading

    from infercore.benchmarks.bench_chains import tiny_llama_dir
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from infercore import LLM
    from infercore.serve import build_app

    llm = LLM(tiny_llama_dir(str(tmp_path / "m")), kv_cache_dtype="float32", kv_cache_bytes=1 << 22)  # own engine
    received: list[tuple[str, str, bytes]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{srv.server_address[1]}")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        with running(build_app(llm, model_name="tiny")) as u:
            body = {"model": "tiny", "prompt": "x", "max_tokens": 3, "ignore_eos": True}
            assert httpx.post(u + "/v1/completions", json=body, timeout=30).status_code == 200
            deadline = time.monotonic() + 15
            names: set[str] = set()
            while time.monotonic() < deadline and not {"POST /v1/completions", "text_completion tiny"} <= names:
                time.sleep(0.05)
                for path, ctype, raw in list(received):
                    assert path == "/v1/traces" and ctype == "application/x-protobuf"
                    req = ExportTraceServiceRequest.FromString(raw)
                    for rs in req.resource_spans:
                        for ss in rs.scope_spans:
                            names |= {s.name for s in ss.spans}
            assert {"POST /v1/completions", "text_completion tiny"} <= names, names
    finally:
        srv.shutdown()
