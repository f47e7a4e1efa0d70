"""POST /v1/rag/query: retrieve from a RAG store, answer with the served LLM (through the same
continuous batching as /v1/chat/completions), return the answer with citations mapped back to
document spans, the retrieved contexts and the answer's quality metrics.

Body: {"query": str, "k": 4, "filter": {metadata key: value or [values]}, "use_mmr", "hybrid",
"min_score": 0.3, "max_tokens": 96, "temperature": 0.0, "top_p", "seed", "attribute": false,
"include_contexts": true, "model": optional, must be the served model}. No chunk reaching
min_score: the answer is "Not in the documents." without calling the LLM (outcome "no_context").

Metrics: citation coverage and hallucination rate of every scored answer (evals.rag.answer_metrics:
sentences with a valid citation, sentences no retrieved chunk supports) go to the
infercore:rag_citation_coverage / infercore:rag_hallucination_rate histograms, and their means
over the last `window` answers (abstentions excluded) to the infercore:citation_coverage /
infercore:hallucination_rate gauges that the alert rules watch.

Guardrails (when configured): the query goes through the input rails (blocked: 400
guardrail_blocked, as on the chat route); every retrieved chunk too (direction "context": a
blocked chunk - an injection planted in a document - is dropped before the prompt is built, a
modified one is used as modified); the answer through the output rails (blocked: 400).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
import uuid
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from ..engine.sampling_params import SamplingParams
from . import otel
from .context import RouteContext
from .errors import APIError, ClientGone
from .protocol import _Body


class RAGQueryRequest(_Body):
    query: str = Field(min_length=1)
    model: str | None = None
    k: int = Field(4, ge=1, le=32)
    filter: dict[str, str | int | float | bool | list[str | int | float | bool]] | None = None
    use_mmr: bool = False
    hybrid: bool = False
    min_score: float = Field(0.3, ge=-1.0, le=1.0)
    max_tokens: int = Field(96, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    attribute: bool = False
    include_contexts: bool = True
    cite: Literal["auto", "constrained", "free"] = "auto"  # as RAG.answer: constrained = cited-sentence grammar


class QualityWindow:
    """Means of citation coverage and hallucination rate over the last `size` scored answers."""

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"rag_window: expected a positive int, got {size!r}")
        self.rows: collections.deque[tuple[float, float]] = collections.deque(maxlen=size)

    def add(self, coverage: float, hallucination: float) -> tuple[float, float]:
        self.rows.append((float(coverage), float(hallucination)))
        n = len(self.rows)
        return sum(r[0] for r in self.rows) / n, sum(r[1] for r in self.rows) / n


def _context(i: int, h: Any) -> dict[str, Any]:
    return {"index": i, "doc_id": h.doc_id, "chunk_id": h.chunk_id, "score": h.score, "start": h.start, "end": h.end,
            "text": h.text, "metadata": h.metadata, "source": h.source}  # fmt: skip


def register(app: FastAPI, ctx: RouteContext, rag: Any, *, window: int = 100) -> None:
    from ..evals.rag import GROUNDED_THRESHOLD, answer_metrics
    from ..rag import pipeline as rp

    st = ctx.state
    tok = st.llm.tokenizer  # a model swap keeps the vocabulary (serve/model_swap.py); st.llm is read per request
    quality = QualityWindow(window)
    app.state.rag_quality = quality
    ctx.bodies["/v1/rag/query"] = (RAGQueryRequest, st.model_name)

    def _locked(fn: Any, *args: Any, **kw: Any) -> Any:
        with st.embed_lock:  # the store's connection and the embedder are used one thread at a time
            return fn(*args, **kw)

    def _guard_contexts(hits: list[Any]) -> tuple[list[Any], int]:
        if st.guard is None:
            return hits, 0
        kept, dropped = [], 0
        for h in hits:
            res = st.guard.check_input(h.text)
            st.metrics.observe_guard("context", res)
            if res.status == "blocked":
                dropped += 1
            else:
                kept.append(h if res.text == h.text else dataclasses.replace(h, text=res.text))
        return kept, dropped

    @app.post("/v1/rag/query")
    @ctx.safe
    async def rag_query(request: Request) -> Response:
        ctx.auth(request)
        st.metrics.requests.labels(st.model_name, "/v1/rag/query").inc()
        req: RAGQueryRequest = ctx.validate(RAGQueryRequest, await ctx.body(request))
        if req.model is not None and req.model != st.model_name:
            raise APIError(404, f"model {req.model!r} does not exist; this server serves {st.model_name!r}",
                           param="model", code="model_not_found")  # fmt: skip
        if not req.query.strip():
            raise APIError(400, "query: expected a non-blank string", param="query")
        t0 = time.perf_counter()
        rid, created = f"rag-{uuid.uuid4().hex}", int(time.time())
        query = ctx.guard("input", ctx.check_text(req.query, "query"), "query")
        otel.start_operation("chat", st.model_name, {otel.REQUEST_MAX_TOKENS: req.max_tokens,
                                                     otel.REQUEST_TEMPERATURE: req.temperature,
                                                     otel.REQUEST_TOP_P: req.top_p, otel.REQUEST_SEED: req.seed,
                                                     otel.RESPONSE_ID: rid, "infercore.rag.k": req.k})  # fmt: skip
        try:
            hits = await asyncio.to_thread(_locked, rag.retrieve, query, req.k, filter=req.filter,
                                           use_mmr=req.use_mmr, hybrid=req.hybrid)  # fmt: skip
        except (TypeError, ValueError) as e:
            raise APIError(400, str(e), param="filter" if str(e).startswith("filter") else None) from None
        t_ret = time.perf_counter() - t0
        timings = {"retrieve_s": t_ret}
        contexts, dropped = _guard_contexts(hits)
        served = getattr(app.state, "served_prompt", None)  # a registry prompt (serve/served_prompt.py)
        pv = served.current if served is not None else None  # one snapshot for the whole request
        head = {"id": rid, "object": "rag.answer", "created": created, "model": st.model_name,
                "prompt_version": served.ref(pv) if served is not None else rp.PROMPT_VERSION}  # fmt: skip
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        otel.annotate({"infercore.rag.contexts": len(contexts), "infercore.rag.contexts_blocked": dropped})

        def respond(text: str, citations: list[Any], metrics: dict[str, Any], abstained: bool) -> Response:
            timings["total_s"] = time.perf_counter() - t0
            cits = []
            for c in citations:
                d = dataclasses.asdict(c)
                d["source"] = contexts[c.marker - 1].source if c.valid else None
                cits.append(d)
            body = {**head, "answer": text, "abstained": abstained, "citations": cits,
                    "contexts": [_context(i, h) for i, h in enumerate(contexts, start=1)] if req.include_contexts
                    else [], "contexts_blocked": dropped, "metrics": metrics, "usage": usage,
                    "timings": timings}  # fmt: skip
            return JSONResponse(body)

        if not contexts or max(h.score for h in contexts) < req.min_score:
            st.metrics.observe_rag("no_context", time.perf_counter() - t0, t_ret)
            return respond(rp.ABSTAIN_TEXT, [], {"abstained": True}, True)
        try:
            msgs = served.messages(query, contexts, pv) if served is not None else rp.build_messages(query, contexts)
            llm = st.llm
            rendered = llm.render_chat(msgs)
        except ValueError as e:
            raise APIError(400, f"query: {e}", param="query") from None
        ids = await asyncio.to_thread(tok.encode, rendered, False)
        ctx.check_prompt_len(len(ids), "query")
        max_tokens = min(req.max_tokens, llm.max_model_len - len(ids))
        try:
            regex = rp.cited_answer_regex(len(contexts)) if req.cite != "free" else None
            params = SamplingParams(temperature=req.temperature, top_p=req.top_p, max_tokens=max_tokens, seed=req.seed,
                                    regex=regex)  # fmt: skip
        except (TypeError, ValueError) as e:
            raise APIError(400, str(e)) from None
        ctx.admit(1)
        try:
            finals = await ctx.until_done(request, ctx.final([ids], params))
        except ClientGone:
            return ctx.err(499, "client closed the request")
        finally:
            ctx.release(1)
        out = finals[0].outputs[0]
        usage.update(prompt_tokens=len(ids), completion_tokens=len(out.token_ids),
                     total_tokens=len(ids) + len(out.token_ids))  # fmt: skip
        t_gen = time.perf_counter()
        timings["generate_s"] = t_gen - t0 - t_ret
        text = ctx.guard("output", rp.trim_repetition(out.text.strip()), "answer")
        citations = rp.parse_citations(text, contexts)
        ans = rp.Answer(text, citations, contexts, [h.score for h in contexts], {}, timings,
                     abstained=text.startswith(rp.ABSTAIN_TEXT))  # fmt: skip
        metrics = await asyncio.to_thread(_locked, answer_metrics, ans, rag.embedder)
        if req.attribute and not ans.abstained:
            extra = await asyncio.to_thread(_locked, rp.attribute_sentences, text, contexts, citations, rag.embedder,
                                            GROUNDED_THRESHOLD)  # fmt: skip
            citations = citations + extra
            metrics["posthoc_citations"] = len(extra)
        timings["metrics_s"] = time.perf_counter() - t_gen
        if ans.abstained:
            st.metrics.observe_rag("abstained", time.perf_counter() - t0, t_ret)
        else:
            cov, hall = quality.add(metrics["citation_coverage"], metrics["hallucination_rate"])
            st.metrics.set_quality(citation_coverage=cov, hallucination_rate=hall)
            for observe in getattr(app.state, "quality_observers", ()):  # playbooks (serve/admin.py)
                observe(float(metrics["citation_coverage"]), float(metrics["hallucination_rate"]))
            st.metrics.observe_rag("answered", time.perf_counter() - t0, t_ret, metrics)
            otel.annotate({"infercore.rag.citation_coverage": float(metrics["citation_coverage"]),
                           "infercore.rag.hallucination_rate": float(metrics["hallucination_rate"])})
        return respond(text, citations, metrics, ans.abstained)


__all__ = ["QualityWindow", "RAGQueryRequest", "register"]
