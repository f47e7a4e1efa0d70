"""The OpenAI-compatible HTTP server: FastAPI over AsyncLLM (continuous batching across requests).

    app = build_app(LLM("smollm2"), model_name="smollm2")   # then uvicorn.run(app, ...)

Admission: at most `max_num_seqs + max_queue` sequences (a request counts n) are in flight;
beyond that the server answers 429 with Retry-After. Bodies over `max_body_bytes` get 413, and so
do prompts that leave no room to generate (prompt >= max_model_len, or more KV blocks than the
cache has). A client that disconnects has its request aborted (its KV blocks are freed).
Guardrails (when a Guard is given) check every system/user message or completion prompt on the
way in (blocked: 400, modified: generation uses the modified text) and every choice's text on the
way out; with output rails and stream=true the answer is buffered, checked, then sent.
/health, /ready and /metrics need no API key; /v1/* do when one is configured.

Route modules: chat and completions live here; POST /v1/embeddings (embeddings.py, when an
embedder is given), POST /v1/rag/query (rag_route.py, when a RAG is given) register themselves
with a RouteContext (context.py) holding the shared helpers; otel.py adds a tracing middleware
(OpenTelemetry spans per /v1 request) when a tracer is given or OTEL_EXPORTER_OTLP_ENDPOINT is set.
Guardrails per route: chat/completions/RAG query and answers as above, RAG's retrieved chunks
through the input rails (blocked chunks are dropped); embedding inputs are not guarded.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engine.async_llm import AsyncLLM
from ..engine.outputs import RequestOutput
from ..engine.sampling_params import SamplingParams
from ..monitor.drift import DriftMonitor
from ..monitor.metrics import CONTENT_TYPE, ServerMetrics
from . import model_swap, otel
from .context import RouteContext
from .errors import APIError, ClientGone, error_body
from .protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    UnsupportedError,
    check_supported,
    describe,
    response_schema,
)
from .sse import Releasing, SSEResponse, sse_data, wait_for_disconnect

log = logging.getLogger("infercore.serve")

def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class _State:
    def __init__(self, llm: Any, model_name: str, api_key: str | None, guard: Any, max_body_bytes: int,
                 max_queue: int, retry_after_s: int, drift_reference: int, drift_window: int) -> None:  # fmt: skip
        self.llm = llm
        self.model_name = model_name
        self.api_key = api_key.encode("utf-8") if api_key else None
        self.guard = guard
        self.max_body_bytes = max_body_bytes
        self.capacity = llm.engine.scheduler.max_num_seqs + max_queue
        self.retry_after_s = retry_after_s
        self.inflight = 0
        self.alm: AsyncLLM | None = None
        self.metrics = ServerMetrics(model_name, llm.engine)
        self.drift = DriftMonitor(drift_reference, drift_window)
        self.created = int(time.time())
        self.embed_lock = threading.Lock()  # one embedder forward at a time (embeddings and RAG share it)
        self.loop: asyncio.AbstractEventLoop | None = None  # the server's, while it runs (model swaps run there)
        self.draining: set[asyncio.Task] = set()  # swapped-out engines finishing their requests (model_swap.py)


def build_app(
    llm: Any,
    *,
    model_name: str,
    api_key: str | None = None,
    guard: Any = None,
    max_body_bytes: int = 1 << 20,
    max_queue: int = 64,
    retry_after_s: int = 1,
    drift_reference: int = 500,
    drift_window: int = 500,
    embedder: Any = None,
    embedding_model_name: str = "minilm",
    rag: Any = None,
    rag_window: int = 100,
    tracer: Any = None,
) -> FastAPI:
    """A FastAPI app serving `llm` (an infercore.LLM) under `model_name`. The engine thread starts
    with the app's lifespan and stops with it; one running app at a time may drive a given LLM
    (a second one fails at startup).

    embedder: an infercore.Embedder served at POST /v1/embeddings as `embedding_model_name`.
    rag: an infercore.rag.RAG (its store and embedder; generation uses `llm`) served at
    POST /v1/rag/query; its rolling quality over the last `rag_window` answers feeds the
    citation-coverage and hallucination-rate gauges. tracer: an OpenTelemetry tracer for
    per-request spans (default: one exporting over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set).
    """
    if not isinstance(model_name, str) or not model_name:
        raise ValueError("model_name: expected a non-empty string")
    for name, v in (("max_body_bytes", max_body_bytes), ("max_queue", max_queue), ("retry_after_s", retry_after_s)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name}: expected a non-negative int, got {v!r}")
    if api_key is not None and (not isinstance(api_key, str) or not api_key):
        raise ValueError("api_key: expected a non-empty string or None")
    if not isinstance(embedding_model_name, str) or not embedding_model_name or embedding_model_name == model_name:
        raise ValueError(f"embedding_model_name: expected a non-empty string other than model_name, got "
                         f"{embedding_model_name!r}")
    if getattr(llm, "tokenizer", None) is None:
        raise ValueError("llm: the server needs a tokenizer (skip_tokenizer_init=False)")
    st = _State(llm, model_name, api_key, guard, max_body_bytes, max_queue, retry_after_s, drift_reference,
                drift_window)  # fmt: skip
    bodies: dict[str, Any] = {"/v1/chat/completions": (ChatCompletionRequest, model_name),
                              "/v1/completions": (CompletionRequest, model_name)}  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Two AsyncLLM threads stepping one engine would each deliver outputs only to their own
        # streams (the other's requests would hang): refuse a second running server on this LLM.
        engine = st.llm.engine
        if getattr(engine, "_infercore_server", None) is not None:
            raise RuntimeError("llm: another running server already drives this LLM's engine; stop it first")
        engine._infercore_server = app
        st.loop = asyncio.get_running_loop()
        try:
            st.alm = AsyncLLM.from_llm(st.llm)
            try:
                yield
            finally:
                await model_swap.stop_draining(st)
                alm, st.alm = st.alm, None
                await asyncio.to_thread(alm.shutdown)
        finally:
            engine._infercore_server = None
            st.llm.engine._infercore_server = None  # the model served at the end, when a swap replaced it
            st.loop = None

    app = FastAPI(title="infercore", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.infercore = st

    def openapi() -> dict[str, Any]:
        """The generated schema plus the request bodies (the routes parse bodies themselves, to
        control the error codes, so FastAPI cannot see them). `model` is documented as an enum of
        the name the route serves: any other name is a 404."""
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for path, (model, served) in bodies.items():
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            comps.update(body.pop("$defs", {}))
            if "model" in body.get("properties", {}):
                body["properties"]["model"] = {"title": "Model", "type": "string", "enum": [served]}
            comps[model.__name__] = body
            schema["paths"][path]["post"]["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}  # fmt: skip
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    # ------------------------------------------------------------------ errors
    def _err(status: int, message: str, param: str | None = None, code: str | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
        st.metrics.observe_error(status)
        return JSONResponse(error_body(status, message, param, code), status_code=status, headers=headers)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return _err(exc.status, exc.message, exc.param, exc.code, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        msg = {404: "no such route", 405: "method not allowed"}.get(exc.status_code, "request failed")
        return _err(exc.status_code, f"{msg}: {request.method} {request.url.path}")

    def _internal(request: Request) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.exception("internal error %s on %s %s", ref, request.method, request.url.path)
        return _err(500, f"internal server error (reference {ref})", code="internal_error")

    @app.exception_handler(Exception)
    async def _last_resort(request: Request, exc: Exception) -> JSONResponse:
        return _internal(request)

    def _safe(fn: Any) -> Any:
        """Unexpected exceptions become a 500 in OpenAI's shape here, on the same connection: the
        app-level handler above also answers, but Starlette re-raises after it, and uvicorn then
        drops the keep-alive connection."""

        @functools.wraps(fn)
        async def wrapper(request: Request) -> Response:
            try:
                return await fn(request)
            except (APIError, StarletteHTTPException):
                raise
            except Exception:
                return _internal(request)

        return wrapper

    # ------------------------------------------------------------------ helpers
    def _auth(request: Request) -> None:
        if st.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip().encode("utf-8") if scheme.lower() == "bearer" else b""
        # compare_digest: time independent of where the strings differ
        if not hmac.compare_digest(given, st.api_key):
            raise APIError(401, "invalid or missing API key (Authorization: Bearer <key>)", code="invalid_api_key",
                           headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    async def _body(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise APIError(400, "Content-Length: not a number")
            if int(declared) > st.max_body_bytes:
                raise APIError(413, f"request body too large ({declared} > {st.max_body_bytes} bytes)",
                               code="request_too_large")  # fmt: skip
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > st.max_body_bytes:
                raise APIError(413, f"request body too large (> {st.max_body_bytes} bytes)", code="request_too_large")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise APIError(400, f"request body is not valid UTF-8 (byte {e.start})") from None
        try:
            return json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as e:
            raise APIError(400, f"request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
                           ) from None  # fmt: skip
        except ValueError as e:  # NaN / Infinity
            raise APIError(400, f"request body is not valid JSON: {e}") from None
        except RecursionError:
            raise APIError(400, "request body is not valid JSON: nested too deeply") from None

    def _parse(cls: type, body: Any) -> Any:
        if not isinstance(body, dict):
            raise APIError(400, "request body must be a JSON object")
        try:
            req = cls.model_validate(body)
        except ValidationError as e:
            msg, param = describe(e)
            raise APIError(400, msg, param=param) from None
        if req.model != st.model_name:
            raise APIError(404, f"model {req.model!r} does not exist; this server serves {st.model_name!r}",
                           param="model", code="model_not_found")  # fmt: skip
        try:
            check_supported(req)
        except UnsupportedError as e:
            raise APIError(400, str(e), param=e.param) from None
        return req

    def _guard(direction: str, text: str, param: str) -> str:
        if st.guard is None:
            return text
        res = st.guard.check_input(text) if direction == "input" else st.guard.check_output(text)
        st.metrics.observe_guard(direction, res)
        if res.status == "blocked":
            rails = sorted({v.rail for v in res.violations}) or ["guard"]
            reasons = "; ".join(v.reason for v in res.violations[-3:])
            what = "input" if direction == "input" else "generated output"
            raise APIError(400, f"{what} blocked by guardrail ({', '.join(rails)}): {reasons}", param=param,
                           code="guardrail_blocked")  # fmt: skip
        return res.text

    def _check_text(s: str, param: str) -> str:
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise APIError(400, f"{param}: contains a lone surrogate (invalid Unicode)", param=param) from None
        return s

    def _params(req: Any, max_tokens: int | None, logprobs: int | None, prompt_len: int) -> SamplingParams:
        if max_tokens is not None and prompt_len + max_tokens > st.llm.max_model_len:
            raise APIError(400, f"this model's maximum context length is {st.llm.max_model_len} tokens; the request "
                           f"asks for {prompt_len + max_tokens} ({prompt_len} in the prompt, {max_tokens} to "
                           "generate)", param="max_tokens", code="context_length_exceeded")  # fmt: skip
        try:
            return SamplingParams(n=req.n, temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
                                  min_p=req.min_p, repetition_penalty=req.repetition_penalty,
                                  presence_penalty=req.presence_penalty, frequency_penalty=req.frequency_penalty,
                                  max_tokens=max_tokens, min_tokens=req.min_tokens, stop=req.stop,
                                  ignore_eos=req.ignore_eos, seed=req.seed, logprobs=logprobs,
                                  skip_special_tokens=req.skip_special_tokens,
                                  json_schema=response_schema(req))  # fmt: skip
        except (TypeError, ValueError) as e:
            param = "response_format" if str(e).startswith("json_schema") else None
            raise APIError(400, str(e).replace("json_schema", "response_format.json_schema.schema", 1)
                           if param else str(e), param=param) from None

    def _check_prompt_len(n: int, param: str) -> None:
        if n == 0:
            raise APIError(400, f"{param}: the prompt is empty", param=param)
        llm = st.llm  # the model now served (serve/model_swap.py may replace it)
        blocks = llm.allocator.blocks_needed(n + 1)
        if n >= llm.max_model_len or blocks > llm.allocator.num_blocks:
            limit = min(llm.max_model_len - 1, llm.allocator.num_blocks * llm.allocator.block_size - 1)
            raise APIError(413, f"{param}: the prompt has {n} tokens; this server accepts at most {limit}",
                           param=param, code="context_length_exceeded")  # fmt: skip

    def _admit(n: int) -> None:
        if st.alm is None:
            raise APIError(503, "the engine is not running")
        if st.inflight + n > st.capacity:
            raise APIError(429, f"server overloaded ({st.inflight} sequences in flight, capacity {st.capacity}); "
                           "retry later", code="overloaded", headers={"Retry-After": str(st.retry_after_s)})
        st.inflight += n

    async def _generate(ids: list[int], params: SamplingParams) -> AsyncIterator[RequestOutput]:
        """One engine request; records its metrics when it finishes, counts an abort otherwise."""
        assert st.alm is not None
        agen = st.alm.generate(ids, params, request_id=f"req-{uuid.uuid4().hex}")
        finished = False
        try:
            async for out in agen:
                if out.finished:
                    finished = True
                    st.metrics.observe_request(out.metrics, [o.finish_reason for o in out.outputs])
                    otel.record_output(out)
                yield out
        except ValueError as e:  # the engine refused the request
            raise APIError(400, str(e)) from None
        finally:
            await agen.aclose()
            if not finished:
                st.metrics.aborted.labels(st.model_name).inc()

    async def _merge(gens: list[AsyncIterator[RequestOutput]]) -> AsyncIterator[tuple[int, RequestOutput]]:
        """Outputs of several engine requests as they come: (prompt index, output)."""
        q: asyncio.Queue = asyncio.Queue()
        end = object()

        async def pump(i: int, g: Any) -> None:
            try:
                async for x in g:
                    q.put_nowait((i, x))
                q.put_nowait((i, end))
            except Exception as e:
                q.put_nowait((i, e))
            finally:
                await g.aclose()

        tasks = [asyncio.create_task(pump(i, g)) for i, g in enumerate(gens)]
        try:
            left = len(tasks)
            while left:
                i, x = await q.get()
                if x is end:
                    left -= 1
                elif isinstance(x, Exception):
                    raise x
                else:
                    yield i, x
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _until_done(request: Request, coro: Any) -> Any:
        work = asyncio.ensure_future(coro)
        gone = asyncio.ensure_future(wait_for_disconnect(request.receive))
        try:
            done, _ = await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (work, gone):
                t.cancel()
            await asyncio.gather(work, gone, return_exceptions=True)
        if work in done and not work.cancelled():
            return work.result()
        raise ClientGone

    tok = llm.tokenizer  # a model swap (serve/model_swap.py) only accepts a model with this same vocabulary

    def _token_str(tid: int) -> str:
        return tok.decode([tid], skip_special_tokens=False)

    def _chat_logprobs(out: Any, start: int, top_n: int) -> dict[str, Any]:
        content = []
        for tid, d in zip(out.token_ids[start:], (out.logprobs or [])[start:], strict=False):
            s = _token_str(tid)
            tops = sorted(d.items(), key=lambda kv: -kv[1])[:top_n]
            content.append({"token": s, "logprob": d.get(tid, 0.0), "bytes": list(s.encode("utf-8")),
                            "top_logprobs": [{"token": (t := _token_str(k)), "logprob": v,
                                              "bytes": list(t.encode("utf-8"))} for k, v in tops]})  # fmt: skip
        return {"content": content}

    def _completion_logprobs(out: Any, start: int, top_n: int, offset: int) -> dict[str, Any]:
        tokens, lps, tops, offsets = [], [], [], []
        for tid, d in zip(out.token_ids[start:], (out.logprobs or [])[start:], strict=False):
            s = _token_str(tid)
            tokens.append(s)
            lps.append(d.get(tid, 0.0))
            tops.append({_token_str(k): v for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top_n]})
            offsets.append(offset)
            offset += len(s)
        return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}

    def _usage(prompt_lens: list[int], finals: list[RequestOutput]) -> dict[str, int]:
        p = sum(prompt_lens)
        c = sum(len(o.token_ids) for f in finals for o in f.outputs)
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def _drift_observe(n_tokens: int) -> None:
        st.drift.observe(n_tokens)

    # ------------------------------------------------------------------ routes
    @app.get("/health")
    async def health() -> Response:
        alm = st.alm
        if alm is None or not alm.healthy:
            return JSONResponse({"status": "unhealthy"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/ready")
    async def ready() -> Response:
        alm = st.alm
        ok = alm is not None and alm.healthy
        body = {"ready": ok, "inflight": st.inflight, "capacity": st.capacity}
        return JSONResponse(body, status_code=200 if ok and st.inflight < st.capacity else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        rep = st.drift.report()
        if rep is not None:
            st.metrics.set_drift("prompt_tokens", rep)
        return Response(st.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    @_safe
    async def models(request: Request) -> Response:
        _auth(request)
        st.metrics.requests.labels(st.model_name, "/v1/models").inc()
        data = [{"id": st.model_name, "object": "model", "created": st.created, "owned_by": "infercore",
                 "max_model_len": st.llm.max_model_len}]  # fmt: skip
        if embedder is not None:
            data.append({"id": embedding_model_name, "object": "model", "created": st.created, "owned_by": "infercore",
                         "max_model_len": embedder.max_seq_length})  # fmt: skip
        return JSONResponse({"object": "list", "data": data})

    @app.post("/v1/chat/completions")
    @_safe
    async def chat_completions(request: Request) -> Response:
        _auth(request)
        st.metrics.requests.labels(st.model_name, "/v1/chat/completions").inc()
        req: ChatCompletionRequest = _parse(ChatCompletionRequest, await _body(request))
        messages = []
        for i, m in enumerate(req.messages):
            text = _check_text(m.text(), f"messages.{i}.content")
            if m.role in ("system", "developer", "user"):
                text = _guard("input", text, f"messages.{i}.content")
            messages.append({"role": "system" if m.role == "developer" else m.role, "content": text})
        try:
            rendered = st.llm.render_chat(messages)
        except ValueError as e:
            raise APIError(400, f"messages: {e}", param="messages") from None
        ids = await asyncio.to_thread(tok.encode, rendered, False)
        _check_prompt_len(len(ids), "messages")
        max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        top_n = req.top_logprobs or 0
        params = _params(req, max_tokens, top_n if req.logprobs else None, len(ids))
        _admit(req.n)
        _drift_observe(len(ids))
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        otel.start_operation("chat", st.model_name,
                             {**otel.sampling_attributes(req, max_tokens), otel.RESPONSE_ID: rid})
        head = {"id": rid, "created": created, "model": st.model_name}
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return SSEResponse(_release(req.n, _chat_stream(head, ids, params, req, top_n, include_usage)))
        try:
            final = await _until_done(request, _final([ids], params))
        except ClientGone:
            return _err(499, "client closed the request")
        finally:
            st.inflight -= req.n
        choices = []
        for o in final[0].outputs:
            text = _guard("output", o.text, f"choices.{o.index}")
            choices.append({"index": o.index, "message": {"role": "assistant", "content": text},
                            "logprobs": _chat_logprobs(o, 0, top_n) if req.logprobs else None,
                            "finish_reason": o.finish_reason})  # fmt: skip
        return JSONResponse({**head, "object": "chat.completion", "choices": choices,
                             "usage": _usage([len(ids)], final)})  # fmt: skip

    @app.post("/v1/completions")
    @_safe
    async def completions(request: Request) -> Response:
        _auth(request)
        st.metrics.requests.labels(st.model_name, "/v1/completions").inc()
        req: CompletionRequest = _parse(CompletionRequest, await _body(request))
        p = req.prompt
        raw: list[str | list[int]]
        if isinstance(p, str):
            raw = [p]
        elif p and isinstance(p[0], int):
            raw = [list(p)]  # type: ignore[arg-type]
        else:
            raw = list(p)  # type: ignore[arg-type]
        prompts: list[list[int]] = []
        texts: list[str] = []
        for i, item in enumerate(raw):
            param = "prompt" if len(raw) == 1 else f"prompt.{i}"
            if isinstance(item, str):
                text = _guard("input", _check_text(item, param), param)
                ids = await asyncio.to_thread(tok.encode, text, True)
            else:
                if any(t < 0 or t >= tok.vocab_size for t in item):
                    raise APIError(400, f"{param}: token ids must be in [0, {tok.vocab_size})", param=param)
                text = tok.decode(item, skip_special_tokens=False)
                ids = list(item)
                if st.guard is not None:
                    checked = _guard("input", text, param)
                    if checked != text:
                        text, ids = checked, await asyncio.to_thread(tok.encode, checked, False)
            _check_prompt_len(len(ids), param)
            prompts.append(ids)
            texts.append(text)
        max_tokens = req.max_tokens if req.max_tokens is not None else 16  # OpenAI's default for completions
        top_n = req.logprobs or 0
        params = [_params(req, max_tokens, req.logprobs, len(ids)) for ids in prompts]
        total_n = req.n * len(prompts)
        _admit(total_n)
        for ids in prompts:
            _drift_observe(len(ids))
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        otel.start_operation("text_completion", st.model_name,
                             {**otel.sampling_attributes(req, max_tokens), otel.RESPONSE_ID: rid})
        head = {"id": rid, "created": created, "model": st.model_name}
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return SSEResponse(_release(total_n, _completion_stream(head, prompts, texts, params[0], req, top_n,
                                                                    include_usage)))  # fmt: skip
        try:
            finals = await _until_done(request, _final(prompts, params[0]))
        except ClientGone:
            return _err(499, "client closed the request")
        finally:
            st.inflight -= total_n
        choices = []
        for pi, f in enumerate(finals):
            for o in f.outputs:
                text = _guard("output", o.text, f"choices.{pi * req.n + o.index}")
                prefix = texts[pi] if req.echo else ""
                choices.append({"index": pi * req.n + o.index, "text": prefix + text,
                                "logprobs": _completion_logprobs(o, 0, top_n, 0) if req.logprobs is not None
                                else None, "finish_reason": o.finish_reason})  # fmt: skip
        return JSONResponse({**head, "object": "text_completion", "choices": choices,
                             "usage": _usage([len(x) for x in prompts], finals)})  # fmt: skip

    # ------------------------------------------------------------------ generation drivers
    async def _final(prompts: list[list[int]], params: SamplingParams) -> list[RequestOutput]:
        finals: list[Any] = [None] * len(prompts)
        async for i, out in _merge([_generate(ids, params) for ids in prompts]):
            if out.finished:
                finals[i] = out
        return finals

    def _release(n: int, gen: AsyncIterator[str]) -> Releasing:
        def release() -> None:
            st.inflight -= n

        return Releasing(gen, release)

    async def _stream_errors(gen: AsyncIterator[str]) -> AsyncIterator[str]:
        """Errors after the 200 header was sent become an error event followed by [DONE]."""
        try:
            async for chunk in gen:
                yield chunk
        except APIError as e:
            st.metrics.observe_error(e.status)
            yield sse_data(error_body(e.status, e.message, e.param, e.code))
        except Exception:
            ref = uuid.uuid4().hex[:12]
            log.exception("internal error %s while streaming", ref)
            st.metrics.observe_error(500)
            yield sse_data(error_body(500, f"internal server error (reference {ref})", code="internal_error"))
        finally:
            await gen.aclose()  # type: ignore[attr-defined]
        yield "data: [DONE]\n\n"

    def _chat_stream(head: dict, ids: list[int], params: SamplingParams, req: ChatCompletionRequest, top_n: int,
                     include_usage: bool) -> AsyncIterator[str]:  # fmt: skip
        buffered = st.guard is not None and bool(getattr(st.guard, "output_rails", True))

        def chunk(i: int, delta: dict, finish: str | None = None, logprobs: Any = None) -> str:
            return sse_data({**head, "object": "chat.completion.chunk", "choices": [
                {"index": i, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]})  # fmt: skip

        async def gen() -> AsyncIterator[str]:
            for i in range(req.n):
                yield chunk(i, {"role": "assistant", "content": ""})
            seen = [0] * req.n
            final = None
            async for _, out in _merge([_generate(ids, params)]):
                final = out
                for o in out.outputs:
                    lp = _chat_logprobs(o, seen[o.index], top_n) if req.logprobs else None
                    seen[o.index] = len(o.token_ids)
                    if buffered:
                        continue
                    if o.delta or (lp and lp["content"]):
                        yield chunk(o.index, {"content": o.delta}, None, lp)
                if out.finished:
                    break
            assert final is not None
            for o in final.outputs:
                if buffered:
                    text = _guard("output", o.text, f"choices.{o.index}")
                    lp = _chat_logprobs(o, 0, top_n) if req.logprobs else None
                    yield chunk(o.index, {"content": text}, None, lp)
                yield chunk(o.index, {}, o.finish_reason)
            if include_usage:
                yield sse_data({**head, "object": "chat.completion.chunk", "choices": [],
                            "usage": _usage([len(ids)], [final])})  # fmt: skip

        return _stream_errors(gen())

    def _completion_stream(head: dict, prompts: list[list[int]], texts: list[str], params: SamplingParams,
                           req: CompletionRequest, top_n: int, include_usage: bool) -> AsyncIterator[str]:  # fmt: skip
        buffered = st.guard is not None and bool(getattr(st.guard, "output_rails", True))
        n = req.n

        def chunk(i: int, text: str, finish: str | None = None, logprobs: Any = None) -> str:
            return sse_data({**head, "object": "text_completion", "choices": [
                {"index": i, "text": text, "logprobs": logprobs, "finish_reason": finish}]})  # fmt: skip

        async def gen() -> AsyncIterator[str]:
            seen: dict[int, int] = {}
            offsets: dict[int, int] = {}
            finals: list[Any] = [None] * len(prompts)
            if req.echo:
                for pi, t in enumerate(texts):
                    for j in range(n):
                        yield chunk(pi * n + j, t)
            async for pi, out in _merge([_generate(ids, params) for ids in prompts]):
                for o in out.outputs:
                    idx = pi * n + o.index
                    lp = None
                    if req.logprobs is not None:
                        lp = _completion_logprobs(o, seen.get(idx, 0), top_n, offsets.get(idx, 0))
                        offsets[idx] = offsets.get(idx, 0) + sum(len(t) for t in lp["tokens"])
                    seen[idx] = len(o.token_ids)
                    if not buffered and (o.delta or (lp and lp["tokens"])):
                        yield chunk(idx, o.delta, None, lp)
                if out.finished:
                    finals[pi] = out
                    for o in out.outputs:
                        idx = pi * n + o.index
                        if buffered:
                            text = _guard("output", o.text, f"choices.{idx}")
                            lp = _completion_logprobs(o, 0, top_n, 0) if req.logprobs is not None else None
                            yield chunk(idx, text, None, lp)
                        yield chunk(idx, "", o.finish_reason)
            if include_usage:
                yield sse_data({**head, "object": "text_completion", "choices": [],
                            "usage": _usage([len(x) for x in prompts], finals)})  # fmt: skip

        return _stream_errors(gen())

    # ------------------------------------------------------------------ route modules
    def _release_n(n: int) -> None:
        st.inflight -= n

    ctx = RouteContext(st, _auth, _body, _guard, _check_text, _check_prompt_len, _params, _admit, _release_n,
                       _final, _until_done, _safe, _err, bodies)  # fmt: skip
    if embedder is not None:
        from .embeddings import register as register_embeddings

        register_embeddings(app, ctx, embedder, embedding_model_name)
    if rag is not None:
        from .rag_route import register as register_rag

        register_rag(app, ctx, rag, window=rag_window)
    if tracer is None:
        tracer = otel.tracer_from_env("infercore-serve")
    if tracer is not None:
        otel.install(app, tracer)
    return app


__all__ = ["APIError", "build_app", "error_body"]
