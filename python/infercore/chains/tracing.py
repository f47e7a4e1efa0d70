"""Spans for chain runs, with OpenTelemetry GenAI semantic-convention attribute names.

infercore records spans itself (no dependency): a Tracer hands finished spans to exporters
(InMemoryExporter, JSONLExporter, ConsoleExporter). When the `opentelemetry` packages are installed,
OTelBridge mirrors every span live into an OpenTelemetry tracer (so the SDK's processors and the OTLP
exporter see the same tree); `otel_tracer_from_env()` builds one with an OTLP exporter when
OTEL_EXPORTER_OTLP_ENDPOINT is set.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from .._fileio import check_path

# attribute names (OpenTelemetry semantic conventions for generative AI, plus infercore.* for ours)
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_SEED = "gen_ai.request.seed"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
AGENT_NAME = "gen_ai.agent.name"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
PROMPT_NAME = "infercore.prompt.name"
PROMPT_VERSION = "infercore.prompt.version"
CHAIN_NAME = "infercore.chain.name"
CHAIN_VERSION = "infercore.chain.version"
RUN_ID = "infercore.run.id"


def _clean(v: Any) -> Any:
    """Attribute values as OpenTelemetry allows: str, bool, int, float or homogeneous lists of them."""
    if isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(x, (str, bool, int, float)) for x in v):
        return list(v)
    return json.dumps(v, default=str)


def _attrs(attributes: Any, arg: str = "attributes") -> Mapping[str, Any]:
    """`attributes` (None: none) as a mapping, or a TypeError naming the argument."""
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping):
        raise TypeError(f"{arg}: expected a mapping of attribute name -> value, got {type(attributes).__name__}")
    return attributes


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_ns: int
    end_ns: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = "UNSET"  # UNSET | OK | ERROR
    status_message: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    _otel: Any = field(default=None, repr=False)

    def set_attribute(self, key: str, value: Any) -> None:
        if value is None:
            return
        value = _clean(value)
        self.attributes[key] = value
        if self._otel is not None:
            self._otel.set_attribute(key, value)

    def set_attributes(self, attrs: Mapping[str, Any]) -> None:
        for k, v in _attrs(attrs, "attrs").items():
            self.set_attribute(k, v)

    def set_status(self, code: str, message: str = "") -> None:
        if code not in ("UNSET", "OK", "ERROR"):
            raise ValueError(f"code: expected 'UNSET', 'OK' or 'ERROR', got {code!r}")
        self.status, self.status_message = code, message

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        attrs = {k: _clean(v) for k, v in _attrs(attributes).items() if v is not None}
        self.events.append({"name": name, "time_unix_nano": time.time_ns(), "attributes": attrs})
        if self._otel is not None:
            self._otel.add_event(name, attrs)

    @property
    def duration_ms(self) -> float | None:
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "trace_id": self.trace_id, "span_id": self.span_id,
                "parent_span_id": self.parent_span_id, "start_time_unix_nano": self.start_ns,
                "end_time_unix_nano": self.end_ns, "duration_ms": self.duration_ms, "attributes": self.attributes,
                "status": {"code": self.status, "message": self.status_message}, "events": self.events}  # fmt: skip


class InMemoryExporter:
    """Keeps finished spans in a list (tests, notebooks)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def export(self, span: Span) -> None:
        with self._lock:
            self.spans.append(span)

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()


class JSONLExporter:
    """Appends one JSON object per finished span to a file (read back by `infercore trace show`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = check_path(path, "path")
        self._lock = threading.Lock()

    def export(self, span: Span) -> None:
        line = json.dumps(span.to_dict(), ensure_ascii=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)


class ConsoleExporter:
    """One line per finished span: duration, name, attributes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def export(self, span: Span) -> None:
        out = self.stream or sys.stderr
        attrs = " ".join(f"{k}={v}" for k, v in span.attributes.items())
        out.write(f"[trace {span.trace_id[:8]}] {span.duration_ms:9.3f} ms  {span.name}  {attrs}\n")


class OTelBridge:
    """Mirrors infercore spans live into an OpenTelemetry tracer (needs opentelemetry-api)."""

    def __init__(self, otel_tracer: Any) -> None:
        try:
            from opentelemetry import trace
        except ImportError as e:
            raise ImportError("OTelBridge needs opentelemetry-api: "
                              "pip install opentelemetry-api opentelemetry-sdk") from e
        self._trace = trace
        self.tracer = otel_tracer

    def start(self, span: Span, parent: Span | None) -> Any:
        ctx = None
        if parent is not None and parent._otel is not None:
            ctx = self._trace.set_span_in_context(parent._otel)
        return self.tracer.start_span(span.name, context=ctx, start_time=span.start_ns,
                                      attributes=dict(span.attributes))  # fmt: skip

    def end(self, span: Span) -> None:
        o = span._otel
        if o is None:
            return
        if span.status == "ERROR":
            o.set_status(self._trace.Status(self._trace.StatusCode.ERROR, span.status_message))
        elif span.status == "OK":
            o.set_status(self._trace.Status(self._trace.StatusCode.OK))
        o.end(end_time=span.end_ns)


def otel_tracer_from_env(service_name: str = "infercore") -> Any | None:
    """An OpenTelemetry tracer exporting over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set and the SDK
    and OTLP exporter packages are installed; None otherwise (the reason is in the warning)."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    import warnings

    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        warnings.warn("OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-sdk is not installed", stacklevel=2)
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            warnings.warn("OTEL_EXPORTER_OTLP_ENDPOINT is set but no OTLP exporter package is installed "
                          "(opentelemetry-exporter-otlp-proto-http)", stacklevel=2)  # fmt: skip
            return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider.get_tracer("infercore.chains")


class Tracer:
    """Creates nested spans (parent from the current context) and exports them when they end.

    exporters: objects with export(span). otel_tracer: an OpenTelemetry tracer to mirror into.
    """

    def __init__(self, exporters: Sequence[Any] = (), *, otel_tracer: Any | None = None) -> None:
        if not isinstance(exporters, (list, tuple)):
            raise TypeError(f"exporters: expected a list of exporters, got {type(exporters).__name__}")
        for i, e in enumerate(exporters):
            if not callable(getattr(e, "export", None)):
                raise TypeError(f"exporters[{i}]: expected an object with an export(span) method")
        self.exporters = list(exporters)
        self.bridge = OTelBridge(otel_tracer) if otel_tracer is not None else None
        self._current: contextvars.ContextVar[Span | None] = contextvars.ContextVar(f"span{id(self)}", default=None)

    @property
    def current(self) -> Span | None:
        return self._current.get()

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
        attributes = _attrs(attributes)  # before the span starts: a bad argument leaves no half-made span
        parent = self._current.get()
        sp = Span(name, parent.trace_id if parent else secrets.token_hex(16), secrets.token_hex(8),
                  parent.span_id if parent else None, time.time_ns())  # fmt: skip
        for k, v in attributes.items():
            if v is not None:
                sp.attributes[k] = _clean(v)
        if self.bridge is not None:
            sp._otel = self.bridge.start(sp, parent)
        token = self._current.set(sp)
        try:
            yield sp
            if sp.status == "UNSET":
                sp.status = "OK"
        except BaseException as e:
            sp.status, sp.status_message = "ERROR", f"{type(e).__name__}: {e}"
            sp.add_event("exception", {"exception.type": type(e).__name__, "exception.message": str(e)})
            raise
        finally:
            self._current.reset(token)
            sp.end_ns = time.time_ns()
            if self.bridge is not None:
                self.bridge.end(sp)
            for ex in self.exporters:
                ex.export(sp)


class _NullSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attrs: Mapping[str, Any]) -> None:
        pass

    def set_status(self, code: str, message: str = "") -> None:
        pass

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        pass


class NullTracer:
    """Tracing off: spans cost one context manager and record nothing."""

    _span = _NullSpan()
    current = None

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
        _attrs(attributes)  # the same argument errors as with tracing on
        yield self._span


# ---------------------------------------------------------------- reading traces back
def load_spans(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    path = check_path(path, "path")
    spans = []
    try:
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{i + 1}: not a JSON span ({e})") from None
                if not isinstance(d, dict) or not {"name", "trace_id", "span_id", "start_time_unix_nano"} <= set(d):
                    raise ValueError(f"{path}:{i + 1}: not a span record")
                spans.append(d)
    except OSError as e:  # a missing file or a directory was a traceback from `infercore trace show`
        raise ValueError(f"path: cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text at byte {e.start}") from None
    return spans


_SHOWN = (OPERATION, REQUEST_MODEL, PROMPT_NAME, PROMPT_VERSION, REQUEST_TEMPERATURE, USAGE_INPUT_TOKENS,
          USAGE_OUTPUT_TOKENS, TOOL_NAME, "infercore.route", CHAIN_VERSION)  # fmt: skip


def format_tree(spans: Sequence[Mapping[str, Any]], *, trace_id: str | None = None) -> str:
    """Spans as an indented tree per trace, children in start order, with durations and key attributes."""
    by_trace: dict[str, list[Mapping[str, Any]]] = {}
    for s in spans:
        if trace_id is None or s["trace_id"].startswith(trace_id):
            by_trace.setdefault(s["trace_id"], []).append(s)
    lines = []
    for tid, group in sorted(by_trace.items(), key=lambda kv: min(s["start_time_unix_nano"] for s in kv[1])):
        ids = {s["span_id"] for s in group}
        children: dict[str | None, list[Mapping[str, Any]]] = {}
        for s in group:
            parent = s.get("parent_span_id")
            children.setdefault(parent if parent in ids else None, []).append(s)
        t0 = min(s["start_time_unix_nano"] for s in group)
        lines.append(f"trace {tid}")

        def walk(parent: str | None, depth: int, children=children, t0=t0) -> None:
            for s in sorted(children.get(parent, []), key=lambda x: x["start_time_unix_nano"]):
                attrs = s.get("attributes", {})
                shown = " ".join(f"{k.split('.', 1)[1] if k.startswith('gen_ai.') else k}={attrs[k]}"
                                 for k in _SHOWN if k in attrs)  # fmt: skip
                status = s.get("status", {}).get("code", "")
                err = f"  ERROR {s['status'].get('message', '')}" if status == "ERROR" else ""
                dur = s.get("duration_ms")
                start = (s["start_time_unix_nano"] - t0) / 1e6
                lines.append(f"{'  ' * (depth + 1)}{s['name']}  +{start:.1f} ms  "
                             f"{'?' if dur is None else f'{dur:.2f}'} ms  {shown}{err}".rstrip())  # fmt: skip
                walk(s["span_id"], depth + 1, children, t0)

        walk(None, 0)
    return "\n".join(lines)
