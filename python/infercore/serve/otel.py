"""OpenTelemetry traces per API request (optional: needs opentelemetry-api; the OTLP exporter
only when OTEL_EXPORTER_OTLP_ENDPOINT is set and opentelemetry-exporter-otlp is installed).

Every /v1/* request gets a SERVER span named "{method} {route}" with the HTTP server attributes
(http.request.method, http.route, url.path, url.scheme, server.address, server.port,
client.address, http.response.status_code, error.type); its parent is the caller's W3C
`traceparent` when one is sent. Routes that run a model open a child span named
"{gen_ai.operation.name} {gen_ai.request.model}" with the GenAI semantic-convention attributes
(the names of infercore.chains.tracing): request model/max_tokens/temperature/top_p/seed, usage
input/output tokens summed over the request's engine requests, response finish reasons and id.
Both spans end when the last byte of the response is sent (for SSE: when the stream ends), so a
streamed request's span covers its whole generation. A 5xx marks the spans ERROR; any status
>= 400 sets error.type to the status code, a client that went away sets it to "cancelled".
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from typing import Any

from ..chains.tracing import (
    OPERATION,
    PROVIDER,
    REQUEST_MAX_TOKENS,
    REQUEST_MODEL,
    REQUEST_SEED,
    REQUEST_TEMPERATURE,
    REQUEST_TOP_P,
    RESPONSE_FINISH_REASONS,
    USAGE_INPUT_TOKENS,
    USAGE_OUTPUT_TOKENS,
)

RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
REQUEST_STOP = "gen_ai.request.stop_sequences"
REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"
EMBEDDINGS_DIMENSION = "gen_ai.embeddings.dimension.count"
ERROR_TYPE = "error.type"
TTFT = "infercore.time_to_first_token_s"

_current: contextvars.ContextVar[_RequestTrace | None] = contextvars.ContextVar("infercore_serve_trace",
                                                                                default=None)  # fmt: skip


def _clean(v: Any) -> Any:
    if isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return list(v)
    return str(v)


class _RequestTrace:
    """The spans of one HTTP request and what the engine reported for it."""

    def __init__(self, tracer: Any, server_span: Any) -> None:
        self.tracer = tracer
        self.server = server_span
        self.op: Any = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.finish_reasons: list[str] = []
        self.ttft: float | None = None
        self.usage_set = False

    def finish(self, status: int | None, error: str | None) -> None:
        from opentelemetry.trace import Status, StatusCode

        for sp in (self.op, self.server):
            if sp is None:
                continue
            if sp is self.op:
                if self.finish_reasons:
                    sp.set_attribute(RESPONSE_FINISH_REASONS, list(self.finish_reasons))
                if self.input_tokens or self.output_tokens or self.usage_set:
                    sp.set_attribute(USAGE_INPUT_TOKENS, self.input_tokens)
                    sp.set_attribute(USAGE_OUTPUT_TOKENS, self.output_tokens)
                if self.ttft is not None:
                    sp.set_attribute(TTFT, self.ttft)
            if status is not None and sp is self.server:
                sp.set_attribute("http.response.status_code", status)
            if error is not None:
                sp.set_attribute(ERROR_TYPE, error)
                if error != "cancelled":  # an exception in the server; a client hanging up is not one
                    sp.set_status(Status(StatusCode.ERROR, error))
            elif status is not None and status >= 400:
                sp.set_attribute(ERROR_TYPE, str(status))
                if status >= 500:
                    sp.set_status(Status(StatusCode.ERROR, str(status)))
            sp.end()


def start_operation(operation: str, model: str, attributes: Mapping[str, Any] | None = None) -> None:
    """Open the request's GenAI span (no-op when tracing is off or outside a traced request)."""
    rt = _current.get()
    if rt is None or rt.op is not None:
        return
    from opentelemetry import trace

    attrs = {OPERATION: operation, REQUEST_MODEL: model, PROVIDER: "infercore", RESPONSE_MODEL: model}
    attrs.update({k: _clean(v) for k, v in (attributes or {}).items() if v is not None})
    rt.op = rt.tracer.start_span(f"{operation} {model}", context=trace.set_span_in_context(rt.server),
                                 kind=trace.SpanKind.INTERNAL, attributes=attrs)  # fmt: skip


def annotate(attributes: Mapping[str, Any]) -> None:
    rt = _current.get()
    if rt is not None and rt.op is not None:
        for k, v in attributes.items():
            if v is not None:
                rt.op.set_attribute(k, _clean(v))


def sampling_attributes(req: Any, max_tokens: int | None) -> dict[str, Any]:
    stop = req.stop if isinstance(req.stop, list) else ([req.stop] if req.stop else None)
    return {REQUEST_MAX_TOKENS: max_tokens, REQUEST_TEMPERATURE: float(req.temperature),
            REQUEST_TOP_P: float(req.top_p), REQUEST_SEED: req.seed, REQUEST_CHOICE_COUNT: req.n,
            REQUEST_STOP: stop}  # fmt: skip


def record_output(out: Any) -> None:
    """One finished engine request (a RequestOutput): add its usage and finish reasons."""
    rt = _current.get()
    if rt is None:
        return
    rt.input_tokens += len(out.prompt_token_ids or ())
    rt.output_tokens += sum(len(o.token_ids) for o in out.outputs)
    rt.finish_reasons += [str(o.finish_reason) for o in out.outputs]
    m = getattr(out, "metrics", None)
    if m is not None and m.time_to_first_token is not None and rt.ttft is None:
        rt.ttft = float(m.time_to_first_token)


def record_usage(input_tokens: int, output_tokens: int = 0) -> None:
    rt = _current.get()
    if rt is not None:
        rt.input_tokens += int(input_tokens)
        rt.output_tokens += int(output_tokens)
        rt.usage_set = True


class TracingMiddleware:
    """ASGI middleware: a SERVER span per traced request (paths under `prefix`)."""

    def __init__(self, app: Any, tracer: Any, routes: frozenset[str], prefix: str = "/v1/") -> None:
        self.app, self.tracer, self.routes, self.prefix = app, tracer, routes, prefix

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        from opentelemetry import propagate, trace

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        method, path = scope["method"], scope["path"]
        route = path if path in self.routes else None
        attrs: dict[str, Any] = {"http.request.method": method, "url.path": path,
                                 "url.scheme": scope.get("scheme", "http"),
                                 "network.protocol.version": scope.get("http_version", "1.1")}  # fmt: skip
        if route:
            attrs["http.route"] = route
        server, client = scope.get("server"), scope.get("client")
        if server:
            attrs["server.address"], attrs["server.port"] = server[0], server[1]
        if client:
            attrs["client.address"] = client[0]
        if "user-agent" in headers:
            attrs["user_agent.original"] = headers["user-agent"]
        span = self.tracer.start_span(f"{method} {route}" if route else method, context=propagate.extract(headers),
                                      kind=trace.SpanKind.SERVER, attributes=attrs)  # fmt: skip
        rt = _RequestTrace(self.tracer, span)
        token = _current.set(rt)
        status: list[int] = []
        completed = [False]

        async def send_wrapper(msg: Any) -> None:
            if msg["type"] == "http.response.start":
                status.append(int(msg["status"]))
            elif msg["type"] == "http.response.body" and not msg.get("more_body", False):
                completed[0] = True
            await send(msg)

        error: str | None = None
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as e:
            error = type(e).__name__
            raise
        finally:
            _current.reset(token)
            if error is None and not completed[0]:
                error = "cancelled"  # the client went away before the response ended
            rt.finish(status[0] if status else None, error)


def tracer_from_env(service_name: str = "infercore") -> Any | None:
    """An OpenTelemetry tracer exporting over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set and the SDK
    and an OTLP exporter are installed; None otherwise (with a warning saying what is missing)."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    from ..chains.tracing import otel_tracer_from_env

    return otel_tracer_from_env(service_name)


def install(app: Any, tracer: Any) -> None:
    """Trace every /v1/* request of `app` with `tracer` (an opentelemetry.trace.Tracer)."""
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError as e:
        raise ImportError("tracing needs opentelemetry-api (pip install 'infercore[otel]')") from e
    if not callable(getattr(tracer, "start_span", None)):
        raise TypeError(f"tracer: expected an opentelemetry Tracer, got {type(tracer).__name__}")
    routes = frozenset(getattr(r, "path", "") for r in app.routes)
    app.add_middleware(TracingMiddleware, tracer=tracer, routes=routes)


__all__ = ["TracingMiddleware", "annotate", "install", "record_output", "record_usage", "sampling_attributes",
           "start_operation", "tracer_from_env"]
