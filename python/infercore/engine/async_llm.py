"""AsyncLLM: the engine behind an asyncio server.

One background thread owns the LLMEngine (which is not thread-safe) and runs steps while any
request is unfinished; `generate` enqueues a request and yields its RequestOutputs as the engine
produces them; leaving the iteration early (client disconnect, cancellation) aborts the request
and frees its KV blocks.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .core import LLMEngine
from .outputs import RequestOutput
from .sampling_params import SamplingParams


class AsyncLLM:
    def __init__(self, engine: LLMEngine) -> None:
        other = getattr(engine, "_async_driver", None)
        if other is not None and other._thread.is_alive():
            # two loops stepping one engine would each deliver only their own requests' outputs
            raise ValueError("engine: already driven by another AsyncLLM; call its shutdown() first")
        engine._async_driver = self
        self.engine = engine
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._streams: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._ids = itertools.count()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="infercore-engine", daemon=True)
        self._thread.start()

    @classmethod
    def from_llm(cls, llm: Any) -> AsyncLLM:
        return cls(llm.engine)

    async def generate(
        self, prompt_token_ids: Sequence[int], params: SamplingParams, request_id: str | None = None,
        prompt: str | None = None,
    ) -> AsyncIterator[RequestOutput]:  # fmt: skip
        """Yield the request's RequestOutput after every engine step that touches it."""
        if self._error is not None:
            raise RuntimeError("engine: the engine loop has failed") from self._error
        if self._stop:
            raise RuntimeError("engine: this AsyncLLM was shut down")
        rid = request_id if request_id is not None else f"req-{next(self._ids)}"
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        done = threading.Event()
        with self._lock:
            if rid in self._streams:
                raise ValueError(f"request_id: {rid!r} is already running")
            self._streams[rid] = (loop, q)
        self._send("add", (rid, list(prompt_token_ids), params, prompt, done))
        finished = False
        try:
            while True:
                item = await q.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finished:
                    finished = True
                    return
        finally:
            with self._lock:
                self._streams.pop(rid, None)
            if not finished:
                self._send("abort", rid)

    async def abort(self, request_id: str) -> None:
        self._send("abort", request_id)

    def shutdown(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=10)
        if getattr(self.engine, "_async_driver", None) is self:
            self.engine._async_driver = None

    def active(self) -> int:
        """Requests whose streams are still open (a server swapping models drains these first)."""
        with self._lock:
            return len(self._streams)

    @property
    def healthy(self) -> bool:
        """The engine loop is running and has not failed."""
        return self._error is None and self._thread.is_alive()

    # ------------------------------------------------------------------ engine thread
    def _send(self, kind: str, payload: Any) -> None:
        self._commands.put((kind, payload))
        self._wake.set()

    def _post(self, rid: str, item: Any) -> None:
        with self._lock:
            target = self._streams.get(rid)
        if target is not None:
            loop, q = target
            loop.call_soon_threadsafe(q.put_nowait, item)

    def _loop(self) -> None:
        while not self._stop:
            while True:
                try:
                    kind, payload = self._commands.get_nowait()
                except queue.Empty:
                    break
                if kind == "add":
                    rid, ids, params, prompt, _ = payload
                    try:
                        self.engine.add_request(rid, ids, params, prompt)
                    except (ValueError, TypeError) as e:  # bad request: tell its caller only
                        self._post(rid, e)
                else:
                    self.engine.abort_request(payload)
            if not self.engine.has_unfinished_requests():
                self._wake.wait(timeout=0.5)
                self._wake.clear()
                continue
            try:
                outputs = self.engine.step()
            except BaseException as e:  # a kernel failure: fail every waiting request, stop
                self._error = e
                with self._lock:
                    rids = list(self._streams)
                for rid in rids:
                    self._post(rid, RuntimeError(f"engine step failed: {e!r}"))
                return
            for out in outputs:
                self._post(out.request_id, out)
            for rid, err in self.engine.take_failures().items():  # that request only; the loop goes on
                self._post(rid, err)
