"""POST /v1/embeddings (OpenAI's shape) over an infercore.Embedder.

input: a string, a list of strings, a list of token ids or a list of token-id lists (ids of the
embedder's vocabulary, without [CLS]/[SEP]: the server adds them as for text). At most
MAX_INPUTS inputs; an empty input is a 400; an input longer than the embedder's max_seq_length
(special tokens included) is a 413 `context_length_exceeded` (OpenAI refuses too-long inputs
rather than truncating them). encoding_format "float" (lists of numbers) or "base64" (the
little-endian float32 bytes, what the openai client asks for by default). `dimensions` must be
the embedder's dimension when given (the model has no shorter Matryoshka embeddings).
usage.prompt_tokens counts the tokens the model ran, special tokens included.

Concurrent requests are batched together: one forward pass at a time runs every input that
arrived while the previous pass ran (up to MAX_BATCH_INPUTS), so many small requests cost about
what one large one does. Vectors are L2-normalized and equal `Embedder.encode(texts)`.
Guardrails are not applied to embedding inputs: they are data to index, not instructions, and
redacting them would change the vectors.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from .. import ops
from . import otel
from .context import RouteContext
from .errors import APIError
from .protocol import _Body

MAX_INPUTS = 2048
MAX_BATCH_INPUTS = 256
BATCH_SIZE = 64


class EmbeddingRequest(_Body):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


def embed_token_ids(embedder: Any, seqs: list[list[int]], batch_size: int = BATCH_SIZE) -> np.ndarray:
    """float32 [n, dim] L2-normalized embeddings of tokenized inputs ([CLS] ... [SEP] included), as
    Embedder.encode computes them: sorted by length, packed batches, the embedder's pooling."""
    out = np.zeros((len(seqs), embedder.dim), np.float32)
    if not seqs:
        return out
    order = np.argsort([len(s) for s in seqs], kind="stable")[::-1]
    for b in range(0, len(seqs), batch_size):
        idx = order[b:b + batch_size]
        hidden, cu = embedder.encoder.forward([seqs[i] for i in idx])
        if embedder.pooling == "cls":
            pooled = hidden[cu[:-1]]
        else:
            lens = np.diff(cu).astype(np.float32)
            pooled = np.add.reduceat(hidden, cu[:-1], axis=0) / lens[:, None]
        out[idx] = pooled
    return ops.l2_normalize(out)


class EmbedBatcher:
    """Runs the forward passes of concurrent requests together, one pass at a time, in a worker
    thread (under `lock`, which other users of the embedder share)."""

    def __init__(self, embedder: Any, lock: Any, max_batch_inputs: int = MAX_BATCH_INPUTS) -> None:
        self.embedder, self.lock, self.max_batch_inputs = embedder, lock, max_batch_inputs
        self._queue: list[tuple[list[list[int]], asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self.passes = 0  # forward passes run (for tests and the bench)

    async def embed(self, seqs: list[list[int]]) -> np.ndarray:
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((seqs, fut))
        if self._task is None:
            self._task = asyncio.create_task(self._work())
        return await fut

    def _forward(self, seqs: list[list[int]]) -> np.ndarray:
        with self.lock:
            return embed_token_ids(self.embedder, seqs)

    async def _work(self) -> None:
        try:
            while self._queue:
                take, n = [], 0
                while self._queue and (not take or n + len(self._queue[0][0]) <= self.max_batch_inputs):
                    item = self._queue.pop(0)
                    if not item[1].done():  # a request whose client went away is skipped
                        take.append(item)
                        n += len(item[0])
                if not take:
                    continue
                try:
                    vecs = await asyncio.to_thread(self._forward, [s for seqs, _ in take for s in seqs])
                    self.passes += 1
                except Exception as e:
                    for _, fut in take:
                        if not fut.done():
                            fut.set_exception(e)
                    continue
                at = 0
                for seqs, fut in take:
                    if not fut.done():
                        fut.set_result(vecs[at:at + len(seqs)])
                    at += len(seqs)
        finally:
            self._task = None


def register(app: FastAPI, ctx: RouteContext, embedder: Any, model_name: str) -> None:
    st = ctx.state
    backend = embedder.tokenizer.backend
    vocab = backend.get_vocab_size()
    specials = backend.encode("", add_special_tokens=True).ids  # [CLS], [SEP] for BERT
    prefix, suffix = specials[:1], specials[1:]
    limit = embedder.max_seq_length
    batcher = EmbedBatcher(embedder, st.embed_lock)
    app.state.embed_batcher = batcher
    ctx.bodies["/v1/embeddings"] = (EmbeddingRequest, model_name)
    pending = [0]

    def _too_long(param: str) -> APIError:
        return APIError(413, f"{param}: longer than the embedding model's {limit} tokens (special tokens "
                        "included)", param=param, code="context_length_exceeded")  # fmt: skip

    async def _tokenize(req: EmbeddingRequest) -> list[list[int]]:
        inp = req.input
        items: list[Any]
        if isinstance(inp, str):
            items = [inp]
        elif inp and isinstance(inp[0], int):
            items = [inp]
        else:
            items = list(inp)
        if not items:
            raise APIError(400, "input: expected at least one input", param="input")
        if len(items) > MAX_INPUTS:
            raise APIError(400, f"input: at most {MAX_INPUTS} inputs per request, got {len(items)}", param="input")
        one = len(items) == 1
        texts = [(i, t) for i, t in enumerate(items) if isinstance(t, str)]
        seqs: list[list[int]] = [[] for _ in items]
        for i, t in texts:
            param = "input" if one else f"input.{i}"
            if not t:
                raise APIError(400, f"{param}: empty string", param=param)
            ctx.check_text(t, param)
        if texts:
            encs = await asyncio.to_thread(backend.encode_batch, [t for _, t in texts], add_special_tokens=True)
            for (i, _), enc in zip(texts, encs, strict=True):
                if enc.overflowing:
                    raise _too_long("input" if one else f"input.{i}")
                seqs[i] = list(enc.ids)
        for i, t in enumerate(items):
            if isinstance(t, str):
                continue
            param = "input" if one else f"input.{i}"
            if not t:
                raise APIError(400, f"{param}: empty token list", param=param)
            if any(x < 0 or x >= vocab for x in t):
                raise APIError(400, f"{param}: token ids must be in [0, {vocab})", param=param)
            ids = [*prefix, *t, *suffix]
            if len(ids) > limit:
                raise _too_long(param)
            seqs[i] = ids
        return seqs

    @app.post("/v1/embeddings")
    @ctx.safe
    async def embeddings(request: Request) -> Response:
        ctx.auth(request)
        st.metrics.requests.labels(st.model_name, "/v1/embeddings").inc()
        req: EmbeddingRequest = ctx.validate(EmbeddingRequest, await ctx.body(request))
        if req.model != model_name:
            raise APIError(404, f"model {req.model!r} does not exist; the embedding model is {model_name!r}",
                           param="model", code="model_not_found")  # fmt: skip
        if req.dimensions is not None and req.dimensions != embedder.dim:
            raise APIError(400, f"dimensions: this model has {embedder.dim} dimensions and no shorter ones",
                           param="dimensions")  # fmt: skip
        t0 = time.perf_counter()
        seqs = await _tokenize(req)
        if pending[0] >= st.capacity:
            raise APIError(429, f"server overloaded ({pending[0]} embedding requests waiting); retry later",
                           code="overloaded", headers={"Retry-After": str(st.retry_after_s)})  # fmt: skip
        otel.start_operation("embeddings", model_name, {otel.REQUEST_ENCODING_FORMATS: [req.encoding_format],
                                                        otel.EMBEDDINGS_DIMENSION: embedder.dim})  # fmt: skip
        pending[0] += 1
        try:
            vecs = await batcher.embed(seqs)
        finally:
            pending[0] -= 1
        tokens = sum(len(s) for s in seqs)
        otel.record_usage(tokens)
        st.metrics.observe_embeddings(len(seqs), tokens, time.perf_counter() - t0, model=model_name)
        if req.encoding_format == "base64":
            data = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vecs]
        else:
            data = [v.tolist() for v in vecs]
        return JSONResponse({"object": "list", "model": model_name,
                             "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(data)],
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})  # fmt: skip


__all__ = ["EmbedBatcher", "EmbeddingRequest", "embed_token_ids", "register"]
